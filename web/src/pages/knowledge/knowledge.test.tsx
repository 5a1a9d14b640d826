import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { act, fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { MemoryRouter, Route, Routes } from "react-router";

import { calls, fakeApi, json } from "@/pages/audit/fake-api";
import { Component as KnowledgePage } from "./index";

const COLLECTION = "0190f1e2-0000-7000-8000-00000000c001";
const GARDEN = "0190f1e2-0000-7000-8000-00000000a001";
const RECIPES = "0190f1e2-0000-7000-8000-00000000a002";
const NOW = "2026-01-02T10:00:00Z";

function renderAt(path: string) {
  const queryClient = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  return render(
    <QueryClientProvider client={queryClient}>
      <MemoryRouter initialEntries={[path]}>
        <Routes>
          <Route path="/knowledge/*" element={<KnowledgePage />} />
        </Routes>
      </MemoryRouter>
    </QueryClientProvider>,
  );
}

function artifact(id: string, title: string, state: string) {
  return {
    id,
    title,
    collection_id: COLLECTION,
    created_at: NOW,
    updated_at: NOW,
    created_by: "user:1",
    metadata: {},
    tags: [],
    current: {
      blake3: "00",
      chunk_count: 0,
      created_at: NOW,
      created_by: "user:1",
      index_state: state,
      mime: "text/markdown",
      size: 2048,
      version: 1,
    },
  };
}

function note(id: string, title: string, body: string, extra: object = {}) {
  return {
    id,
    title,
    body,
    tags: ["garden"],
    created_at: NOW,
    updated_at: NOW,
    index_state: "indexed",
    version: 2,
    links: [],
    backlinks: [],
    ...extra,
  };
}

const summaries = [
  { ...note(GARDEN, "Garden plan", ""), body: undefined },
  { ...note(RECIPES, "Recipes", ""), tags: ["food"], body: undefined },
];

const status = {
  chunks: 1,
  chunks_embedded: 1,
  embedding_model: "m",
  failed: 0,
  indexed: 3,
  jobs_dead: 0,
  jobs_queued: 0,
  jobs_running: 0,
  keyword_only: 0,
  pending: 0,
  search_index: "embedded",
  skipped: 0,
  vectors_from: "m",
};

/** XMLHttpRequest as the upload uses it, driven by the test. */
class FakeXhr {
  static sent: FakeXhr[] = [];
  upload: { onprogress: ((event: Partial<ProgressEvent>) => void) | null } = { onprogress: null };
  onload: (() => void) | null = null;
  onerror: (() => void) | null = null;
  onabort: (() => void) | null = null;
  status = 0;
  statusText = "";
  responseText = "";
  url = "";
  body: unknown = null;
  open(_method: string, url: URL | string) {
    this.url = String(url);
  }
  setRequestHeader() {}
  send(body: unknown) {
    this.body = body;
    FakeXhr.sent.push(this);
  }
  abort() {
    this.onabort?.();
  }
  progress(loaded: number, total: number) {
    act(() => this.upload.onprogress?.({ lengthComputable: true, loaded, total }));
  }
  respond(status: number, body: unknown) {
    this.status = status;
    this.responseText = JSON.stringify(body);
    act(() => this.onload?.());
  }
}

describe("knowledge page", () => {
  beforeEach(() => {
    FakeXhr.sent = [];
    vi.stubGlobal("XMLHttpRequest", FakeXhr);
  });
  afterEach(() => vi.unstubAllGlobals());

  it("lists, creates and deletes collections", async () => {
    let collections = [{ id: COLLECTION, name: "Work", description: "Job things", created_at: NOW }];
    const fetch = fakeApi({
      "GET /api/v1/collections": () => ({ collections }),
      "GET /api/v1/knowledge/status": () => status,
      "POST /api/v1/collections": async (_url, request) => {
        const body = (await request.json()) as { name: string; description: string };
        const created = { id: "new", created_at: NOW, ...body };
        collections = [...collections, created];
        return json(created, 201);
      },
      "DELETE /api/v1/collections/new": () => {
        collections = collections.filter((c) => c.id !== "new");
        return json(null, 204);
      },
    });
    renderAt("/knowledge");

    expect(await screen.findByRole("link", { name: "Work" })).toHaveAttribute(
      "href",
      `/knowledge/collections/${COLLECTION}`,
    );
    expect(screen.getByRole("heading", { level: 1, name: "Knowledge" })).toBeInTheDocument();
    expect(await screen.findByRole("heading", { name: "Indexing" })).toBeInTheDocument();

    await userEvent.click(screen.getByRole("button", { name: "New collection" }));
    await userEvent.click(screen.getByRole("button", { name: "Create collection" }));
    expect(await screen.findByText("Give it a name of 1 to 100 characters.")).toBeInTheDocument();

    await userEvent.type(screen.getByLabelText("Name"), "Garden");
    await userEvent.type(screen.getByLabelText("Description"), "Plants");
    await userEvent.click(screen.getByRole("button", { name: "Create collection" }));
    expect(await screen.findByRole("link", { name: "Garden" })).toBeInTheDocument();
    // The form closes once the collection is made.
    expect(screen.getByRole("button", { name: "New collection" })).toBeInTheDocument();
    expect(screen.queryByLabelText("Name")).not.toBeInTheDocument();

    await userEvent.click(screen.getByRole("button", { name: "Delete collection Garden" }));
    await userEvent.click(screen.getByRole("button", { name: "Delete for good" }));
    await waitFor(() => expect(screen.queryByRole("link", { name: "Garden" })).not.toBeInTheDocument());
    expect(calls(fetch, "DELETE", "/api/v1/collections/new")).toHaveLength(1);
  });

  it("uploads into a collection with progress, then shows the artifact's indexing state", async () => {
    let artifacts: ReturnType<typeof artifact>[] = [];
    fakeApi({
      "GET /api/v1/collections": () => ({
        collections: [{ id: COLLECTION, name: "Work", description: "", created_at: NOW }],
      }),
      "GET /api/v1/artifacts": () => ({ artifacts, next_after: null }),
      "GET /api/v1/knowledge/status": () => status,
    });
    renderAt(`/knowledge/collections/${COLLECTION}`);
    expect(await screen.findByRole("heading", { level: 2, name: "Work" })).toBeInTheDocument();
    expect(await screen.findByText(/No artifacts yet/)).toBeInTheDocument();

    const file = new File(["# Notes"], "notes.md", { type: "text/markdown" });
    await userEvent.upload(screen.getByLabelText("Choose files"), file);
    const [upload] = FakeXhr.sent;
    if (!upload) throw new Error("nothing uploaded");
    expect(upload.body).toBe(file);
    const url = new URL(upload.url);
    expect(url.pathname).toBe("/api/v1/artifacts");
    expect(url.searchParams.get("collection")).toBe(COLLECTION);
    expect(url.searchParams.get("name")).toBe("notes.md");

    upload.progress(512, 1024);
    const bar = screen.getByRole("progressbar", { name: "Uploading notes.md" });
    expect(bar).toHaveAttribute("aria-valuenow", "50");
    expect(screen.getByText("50 % sent")).toBeInTheDocument();

    artifacts = [artifact("a1", "notes.md", "pending")];
    upload.respond(201, artifacts[0]);
    expect(await screen.findByText("Stored; indexing follows.")).toBeInTheDocument();
    const list = await screen.findByRole("list", { name: "Artifacts" });
    expect(await within(list).findByText("Pending")).toBeInTheDocument();
  });

  it("uploads files dropped on the drop zone", async () => {
    fakeApi({
      "GET /api/v1/artifacts": () => ({ artifacts: [], next_after: null }),
    });
    renderAt("/knowledge/artifacts");
    const file = new File(["x"], "drop.txt");
    fireEvent.drop(await screen.findByTestId("drop-zone"), { dataTransfer: { files: [file] } });
    await waitFor(() => expect(FakeXhr.sent).toHaveLength(1));
    expect(new URL(FakeXhr.sent[0]?.url ?? "").searchParams.has("collection")).toBe(false);
    FakeXhr.sent[0]?.respond(413, {
      type: "about:blank",
      title: "Payload Too Large",
      status: 413,
      detail: "larger than knowledge.max_upload_size",
    });
    expect(await screen.findByText("Failed: larger than knowledge.max_upload_size")).toBeInTheDocument();
  });

  it("deletes an artifact after asking", async () => {
    let artifacts = [artifact("a1", "report.pdf", "failed")];
    const fetch = fakeApi({
      "GET /api/v1/artifacts": () => ({ artifacts, next_after: null }),
      "DELETE /api/v1/artifacts/a1": () => {
        artifacts = [];
        return json(null, 204);
      },
    });
    renderAt("/knowledge/artifacts");
    await userEvent.click(await screen.findByRole("button", { name: "Delete artifact report.pdf" }));
    await userEvent.click(screen.getByRole("button", { name: "Keep" }));
    expect(calls(fetch, "DELETE", "/api/v1/artifacts/a1")).toHaveLength(0);
    await userEvent.click(screen.getByRole("button", { name: "Delete artifact report.pdf" }));
    await userEvent.click(screen.getByRole("button", { name: "Delete for good" }));
    expect(await screen.findByText(/No artifacts yet/)).toBeInTheDocument();
  });

  it("searches in the chosen mode and marks the matched words", async () => {
    const passage = "Water the <b>tomatoes</b> daily; tomatoes like sun.";
    const start = passage.indexOf("tomatoes");
    const fetch = fakeApi({
      "POST /api/v1/search": () => ({
        hits: [
          {
            item_id: GARDEN,
            kind: "note",
            mime: "text/markdown",
            title: "Garden plan",
            heading: "Summer",
            score: 0.5,
            version: 1,
            passage: { text: passage, highlights: [[start, start + 8]] },
          },
        ],
      }),
    });
    renderAt("/knowledge/search");
    await userEvent.type(await screen.findByLabelText("Search your knowledge"), "tomatoes");
    await userEvent.click(screen.getByRole("radio", { name: "Keyword" }));
    await userEvent.click(screen.getByRole("button", { name: "Search" }));

    expect(await screen.findByText("1 result")).toBeInTheDocument();
    const marks = document.querySelectorAll("mark");
    expect(Array.from(marks, (mark) => mark.textContent)).toEqual(["tomatoes"]);
    // The passage's markup stays text.
    expect(document.querySelector("li b")).toBeNull();
    expect(screen.getByRole("link", { name: "Garden plan" })).toHaveAttribute(
      "href",
      `/knowledge/notes/${GARDEN}`,
    );
    const [request] = fetch.mock.calls.map(([input]) => input as Request);
    expect(await request?.json()).toMatchObject({ query: "tomatoes", mode: "keyword" });
  });

  it("edits a note with [[link]] completion, preview, backlinks and saving", async () => {
    let stored = note(RECIPES, "Recipes", "Bread and soup.", {
      backlinks: [{ id: GARDEN, title: "Garden plan" }],
    });
    const fetch = fakeApi({
      "GET /api/v1/notes": () => ({ notes: summaries }),
      [`GET /api/v1/notes/${RECIPES}`]: () => stored,
      [`PATCH /api/v1/notes/${RECIPES}`]: async (_url, request) => {
        const change = (await request.json()) as { body: string };
        stored = { ...stored, ...change, version: stored.version + 1 };
        return stored;
      },
    });
    renderAt(`/knowledge/notes/${RECIPES}`);

    const body = await screen.findByLabelText("Text (Markdown)");
    expect(body).toHaveValue("Bread and soup.");
    expect(screen.getByRole("link", { name: "Garden plan", current: false })).toBeInTheDocument();
    expect(screen.getByRole("heading", { name: "1 note links here" })).toBeInTheDocument();

    await userEvent.click(body);
    await userEvent.keyboard("{End} See [[[[gar");
    const listbox = await screen.findByRole("listbox", { name: "Notes to link to" });
    expect(within(listbox).getByRole("option", { name: "Garden plan" })).toHaveAttribute(
      "aria-selected",
      "true",
    );
    await userEvent.keyboard("{Enter}");
    expect(body).toHaveValue("Bread and soup. See [[Garden plan]]");
    expect(screen.queryByRole("listbox")).not.toBeInTheDocument();

    const preview = screen.getByRole("region", { name: "Preview" });
    const link = await within(preview).findByRole("link", { name: "Garden plan" });
    expect(link).toHaveAttribute("href", `/knowledge/notes/${GARDEN}`);

    expect(screen.getByText("Unsaved changes")).toBeInTheDocument();
    await userEvent.click(screen.getByRole("button", { name: "Save" }));
    expect(await screen.findByText("All changes saved")).toBeInTheDocument();
    const [patch] = calls(fetch, "PATCH", `/api/v1/notes/${RECIPES}`);
    expect(patch).toBeDefined();
    expect(stored.body).toBe("Bread and soup. See [[Garden plan]]");
  });

  it("shows a note's history as a diff and restores an old version", async () => {
    fakeApi({
      "GET /api/v1/notes": () => ({ notes: summaries }),
      [`GET /api/v1/notes/${RECIPES}`]: () => note(RECIPES, "Recipes", "Bread and soup."),
      [`GET /api/v1/notes/${RECIPES}/versions`]: () => ({
        versions: [
          { version: 1, title: "Recipes", body: "Bread.", created_at: NOW, created_by: "user:1" },
          { version: 2, title: "Recipes", body: "Bread and soup.", created_at: NOW, created_by: "user:1" },
        ],
      }),
      [`GET /api/v1/notes/${RECIPES}/diff`]: (url) =>
        new Response(
          `--- v${url.searchParams.get("from")}\n+++ v${url.searchParams.get("to")}\n@@ -1 +1 @@\n-Bread.\n+Bread and soup.\n`,
          { status: 200, headers: { "Content-Type": "text/x-diff" } },
        ),
    });
    renderAt(`/knowledge/notes/${RECIPES}`);
    await userEvent.click(await screen.findByRole("button", { name: "Show history" }));
    const diff = await screen.findByLabelText("Differences");
    expect(within(diff).getByText("-Bread.")).toHaveAttribute("data-kind", "removed");
    expect(within(diff).getByText("+Bread and soup.")).toHaveAttribute("data-kind", "added");
    expect(within(diff).getByText("--- v1")).toBeInTheDocument();

    await userEvent.click(screen.getByRole("button", { name: "Restore version 1 into the editor" }));
    expect(screen.getByLabelText("Text (Markdown)")).toHaveValue("Bread.");
    expect(screen.getByText("Unsaved changes")).toBeInTheDocument();
  });

  it("creates notes from built-in and the API's templates, and filters by tag", async () => {
    const fetch = fakeApi({
      "GET /api/v1/notes": (url) =>
        url.searchParams.get("tag") === "template"
          ? { notes: [{ ...summaries[0], id: "t1", title: "Daily", tags: ["template"] }] }
          : url.searchParams.get("tag") === "food"
            ? { notes: [summaries[1]] }
            : { notes: summaries },
      "POST /api/v1/notes": async (_url, request) => {
        const body = (await request.json()) as { title: string };
        return json(note("n-new", body.title, ""), 201);
      },
      "GET /api/v1/notes/n-new": () => note("n-new", "Standup", ""),
    });
    renderAt("/knowledge/notes");

    await screen.findByRole("option", { name: "food" });
    await userEvent.selectOptions(screen.getByLabelText("Tag"), "food");
    const list = await screen.findByRole("list", { name: "Notes" });
    await waitFor(() => expect(within(list).queryByText("Garden plan")).not.toBeInTheDocument());
    expect(within(list).getByText("Recipes")).toBeInTheDocument();

    await userEvent.type(screen.getByLabelText("Title"), "Standup");
    await screen.findByRole("option", { name: "Daily" });
    await userEvent.selectOptions(screen.getByLabelText("Start from"), "Meeting notes");
    await userEvent.click(screen.getByRole("button", { name: "Create note" }));
    await waitFor(() => expect(calls(fetch, "POST", "/api/v1/notes")).toHaveLength(1));
    const post = fetch.mock.calls
      .map(([input]) => input as Request)
      .find((request) => request.method === "POST");
    const sent = (await post?.clone().json()) as { title: string; body: string };
    expect(sent.title).toBe("Standup");
    expect(sent.body).toContain("## Attendees");
    expect(await screen.findByRole("heading", { name: "Standup" })).toBeInTheDocument();
  });

  it("uses the API's template by its title", async () => {
    const fetch = fakeApi({
      "GET /api/v1/notes": (url) =>
        url.searchParams.get("tag") === "template"
          ? { notes: [{ ...summaries[0], id: "t1", title: "Daily", tags: ["template"] }] }
          : { notes: [] },
      "POST /api/v1/notes": () => json(note("n-new", "Monday", ""), 201),
      "GET /api/v1/notes/n-new": () => note("n-new", "Monday", ""),
    });
    renderAt("/knowledge/notes");
    await userEvent.type(await screen.findByLabelText("Title"), "Monday");
    await screen.findByRole("option", { name: "Daily" });
    await userEvent.selectOptions(screen.getByLabelText("Start from"), "Daily");
    await userEvent.click(screen.getByRole("button", { name: "Create note" }));
    await waitFor(() => expect(calls(fetch, "POST", "/api/v1/notes")).toHaveLength(1));
    const post = fetch.mock.calls
      .map(([input]) => input as Request)
      .find((request) => request.method === "POST");
    expect(await post?.clone().json()).toEqual({ title: "Monday", tags: [], template: "Daily" });
  });

  it("corrects and forgets memory entries", async () => {
    let memories: object[] = [
      {
        id: "m1",
        text: "Likes tea",
        created_at: NOW,
        relates_to: [],
        source: { kind: "conversation", id: "c1" },
      },
    ];
    const fetch = fakeApi({
      "GET /api/v1/memory": () => ({ memories }),
      "POST /api/v1/memory": async (_url, request) => {
        const body = (await request.json()) as { text: string; supersedes: string };
        const entry = { ...body, id: "m2", created_at: NOW, relates_to: [], source: { kind: "user" } };
        memories = [entry];
        return json(entry, 201);
      },
      "DELETE /api/v1/memory/m2": () => {
        memories = [];
        return json(null, 204);
      },
    });
    renderAt("/knowledge/memory");
    expect(await screen.findByText("Likes tea")).toBeInTheDocument();
    expect(screen.getByText("From a conversation")).toBeInTheDocument();

    await userEvent.click(screen.getByRole("button", { name: "Correct: Likes tea" }));
    const field = screen.getByLabelText("Corrected fact");
    await userEvent.clear(field);
    await userEvent.type(field, "Likes green tea");
    await userEvent.click(screen.getByRole("button", { name: "Save correction" }));
    expect(await screen.findByText("Likes green tea")).toBeInTheDocument();
    const post = fetch.mock.calls
      .map(([input]) => input as Request)
      .find((request) => request.method === "POST");
    expect(await post?.clone().json()).toEqual({ text: "Likes green tea", supersedes: "m1" });

    await userEvent.click(screen.getByRole("button", { name: "Forget: Likes green tea" }));
    await userEvent.click(screen.getByRole("button", { name: "Delete for good" }));
    expect(await screen.findByText("Nothing remembered yet.")).toBeInTheDocument();
  });
});
