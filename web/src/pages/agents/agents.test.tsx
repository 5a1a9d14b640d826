import { act, render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import type { components } from "@/api/schema";
import { useAuthStore } from "@/auth/store";
import { realtime } from "@/realtime/connection";
import { dispatchEvent } from "@/realtime/dispatch";
import { toRequest, toFormValues } from "./definition";
import { Component as AgentsPage } from "./index";
import { toSpec } from "./Schedules";
import { fakeApi, json, renderPage, requests } from "./testing";
import i18n from "@/i18n";
import { RunTimeline } from "./RunTimeline";
import { mergeEvents } from "./timeline";

type Schemas = components["schemas"];

/** A free-form JSON object, which the generated types know as `Record<string, never>`. */
function loose(value: Record<string, unknown>): Record<string, never> {
  return value as Record<string, never>;
}

const AGENT_ID = "0a000000-0000-4000-8000-0000000000a1";
const RUN_ID = "0a000000-0000-4000-8000-0000000000b1";
const COLLECTION_ID = "0a000000-0000-4000-8000-0000000000c1";

const researcher: Schemas["Agent"] = {
  id: AGENT_ID,
  name: "researcher",
  definition: {
    description: "Finds things out",
    instructions: "Work towards {{ goal }}.",
    model: "smart",
    tools: ["search_knowledge", "http_request", "web__fetch"],
    consent: { http_request: "ask", web__fetch: "allow" },
    mcp_servers: ["web"],
    collections: [],
    memory: true,
    limits: { max_steps: 5 },
    hooks: [{ webhook: "https://hooks.example/run", veto: false }],
    variables: loose({ tone: "dry" }),
  },
  grants: [
    { tool: "shell", allow: true },
    { tool: "http_request", allow: false },
  ],
  created_at: "2026-01-01T00:00:00Z",
  updated_at: "2026-01-01T00:00:00Z",
};

const run: Schemas["Run"] = {
  id: RUN_ID,
  agent_id: AGENT_ID,
  goal: "Summarise the news",
  status: "running",
  plan: ["Search", "Write"],
  step: 1,
  usage: {
    steps: 1,
    model_calls: 2,
    tool_calls: 1,
    input_tokens: 100,
    output_tokens: 50,
    running_ms: 1500,
    cost_usd: 0.01,
  },
  last_event: 2,
  created_at: "2026-01-01T10:00:00Z",
  updated_at: "2026-01-01T10:00:01Z",
};

function event(seq: number, kind: string, data: Record<string, unknown> = {}): Schemas["RunEvent"] {
  return { seq, kind, at: `2026-01-01T10:00:0${seq}Z`, data: loose({ type: kind, ...data }) };
}

const baseRoutes = {
  "GET /api/v1/agents": () => ({ agents: [researcher] }),
  "GET /api/v1/agents/researcher": () => researcher,
  "GET /v1/models": () => ({
    object: "list",
    data: [
      { id: "smart", object: "model", created: 0, owned_by: "kai" },
      { id: "fast", object: "model", created: 0, owned_by: "kai" },
    ],
  }),
  "GET /api/v1/collections": () => ({
    collections: [{ id: COLLECTION_ID, name: "papers", created_at: "2026-01-01T00:00:00Z" }],
  }),
  "GET /api/v1/runs": () => ({ runs: [run] }),
  "GET /api/v1/schedules": () => ({ schedules: [] }),
  "GET /api/v1/requests": () => ({ requests: [] }),
};

describe("agents page", () => {
  beforeEach(() => useAuthStore.getState().signIn("token", 900));
  afterEach(() => {
    vi.unstubAllGlobals();
    vi.restoreAllMocks();
    useAuthStore.getState().signOut();
  });

  it("lists the agents and their runs", async () => {
    fakeApi(baseRoutes);
    renderPage("agents", "/agents", <AgentsPage />);
    expect(await screen.findByRole("heading", { level: 1, name: "Agents" })).toBeInTheDocument();
    const link = await screen.findByRole("link", { name: /^researcher/ });
    expect(link).toHaveAttribute("href", "/agents/researcher");
    const runLink = await screen.findByRole("link", { name: /Summarise the news/ });
    expect(runLink).toHaveAttribute("href", `/agents/runs/${RUN_ID}`);
    expect(within(runLink).getByText("Running")).toBeInTheDocument();

    await userEvent.selectOptions(screen.getByLabelText("Status"), "failed");
    expect(screen.getByText("No runs with this status.")).toBeInTheDocument();
    await userEvent.selectOptions(screen.getByLabelText("Status"), "running");
    expect(screen.getByRole("link", { name: /Summarise the news/ })).toBeInTheDocument();
  });

  it("defines an agent with tools, consent, collections and limits", async () => {
    const created = { ...researcher, name: "writer", id: "0a000000-0000-4000-8000-0000000000a2" };
    const fetch = fakeApi({
      ...baseRoutes,
      "POST /api/v1/agents": () => json(created, 201),
      "GET /api/v1/agents/writer": () => created,
    });
    const user = userEvent.setup();
    renderPage("agents", "/agents/new", <AgentsPage />);

    await user.click(await screen.findByRole("button", { name: "Create agent" }));
    expect(await screen.findAllByText("This field is required.")).toHaveLength(2);
    expect(screen.getByLabelText("Name")).toHaveAttribute("aria-invalid", "true");
    expect(await requests(fetch, "POST", "/api/v1/agents")).toHaveLength(0);

    await user.type(screen.getByLabelText("Name"), "writer");
    await user.type(screen.getByLabelText("Instructions text"), "Write well.");
    await screen.findByRole("option", { name: "fast" });
    await user.selectOptions(screen.getByLabelText("Model"), "fast");
    const consent = screen.getByLabelText("Consent for shell");
    expect(consent).toBeDisabled();
    await user.click(screen.getByRole("checkbox", { name: /^shell/ }));
    await user.click(screen.getByRole("checkbox", { name: /^write_note/ }));
    expect(consent).toBeEnabled();
    await user.selectOptions(consent, "ask");
    await user.click(await screen.findByRole("checkbox", { name: "papers" }));
    await user.type(screen.getByLabelText("Steps"), "200");
    await user.click(screen.getByRole("button", { name: "Create agent" }));
    expect(await screen.findByText("Between 1 and 100.")).toBeInTheDocument();

    await user.clear(screen.getByLabelText("Steps"));
    await user.type(screen.getByLabelText("Steps"), "8");
    await user.type(screen.getByLabelText("Running time"), "1h");
    await user.click(screen.getByRole("button", { name: "Create agent" }));

    await waitFor(() => expect(screen.getByTestId("location")).toHaveTextContent("/agents/writer"));
    const [post] = await requests(fetch, "POST", "/api/v1/agents");
    expect(post?.body).toEqual({
      name: "writer",
      definition: {
        description: "",
        instructions: "Write well.",
        prompt: null,
        model: "fast",
        tools: ["shell", "write_note"],
        consent: { shell: "ask" },
        mcp_servers: [],
        collections: [COLLECTION_ID],
        memory: false,
        limits: {
          max_steps: 8,
          max_model_calls: null,
          max_tool_calls: null,
          max_tokens: null,
          max_duration: "1h",
          ask_after_usd: null,
        },
      },
    });
  });

  it("edits an agent keeping what the form does not show", async () => {
    const fetch = fakeApi({
      ...baseRoutes,
      "PUT /api/v1/agents/researcher": async (_url, request) => {
        const body = (await request.json()) as Schemas["AgentRequest"];
        return { ...researcher, definition: body.definition };
      },
    });
    const user = userEvent.setup();
    renderPage("agents", "/agents/researcher/edit", <AgentsPage />);

    const description = await screen.findByLabelText("Description");
    expect(description).toHaveValue("Finds things out");
    expect(screen.getByLabelText("Tool of rule 1")).toHaveValue("web__fetch");
    await user.selectOptions(screen.getByLabelText("Consent for http_request"), "deny");
    await user.click(screen.getByRole("button", { name: "Save agent" }));

    await waitFor(() => expect(screen.getByTestId("location")).toHaveTextContent("/agents/researcher"));
    const [put] = await requests(fetch, "PUT", "/api/v1/agents/researcher");
    const definition = (put?.body as Schemas["AgentRequest"]).definition;
    expect(definition.tools).toEqual(["search_knowledge", "http_request", "web__fetch"]);
    expect(definition.consent).toEqual({ http_request: "deny", web__fetch: "allow" });
    expect(definition.hooks).toEqual(researcher.definition.hooks);
    expect(definition.variables).toEqual({ tone: "dry" });
    expect(definition.mcp_servers).toEqual(["web"]);
    expect(definition.limits?.max_steps).toBe(5);
  });

  it("shows standing answers and revokes one", async () => {
    let agent = researcher;
    const fetch = fakeApi({
      ...baseRoutes,
      "GET /api/v1/agents/researcher": () => agent,
      "DELETE /api/v1/agents/researcher/grants/shell": () => {
        agent = { ...researcher, grants: researcher.grants.filter((grant) => grant.tool !== "shell") };
        return json(null, 204);
      },
    });
    const user = userEvent.setup();
    renderPage("agents", "/agents/researcher", <AgentsPage />);

    const grants = await screen.findByRole("region", { name: "Standing answers" });
    expect(within(grants).getByText("Always")).toBeInTheDocument();
    expect(within(grants).getByText("Never")).toBeInTheDocument();
    await user.click(within(grants).getByRole("button", { name: "Revoke the standing answer for shell" }));

    await waitFor(() => expect(within(grants).queryByText("shell")).not.toBeInTheDocument());
    expect(await requests(fetch, "DELETE", "/api/v1/agents/researcher/grants/shell")).toHaveLength(1);
  });

  it("adds a schedule, disables and deletes it", async () => {
    const schedule: Schemas["Schedule"] = {
      id: "0a000000-0000-4000-8000-0000000000d1",
      name: "morning",
      agent_id: AGENT_ID,
      goal: "Read the news",
      spec: "every 15m",
      time_zone: "Europe/Berlin",
      missed: "run_once",
      enabled: true,
      upcoming: ["2026-01-02T08:00:00Z"],
      created_at: "2026-01-01T00:00:00Z",
    };
    let schedules: Schemas["Schedule"][] = [];
    const fetch = fakeApi({
      ...baseRoutes,
      "GET /api/v1/schedules": () => ({ schedules }),
      "POST /api/v1/schedules": () => {
        schedules = [schedule];
        return json(schedule, 201);
      },
      [`POST /api/v1/schedules/${schedule.id}/disable`]: () => {
        schedules = [{ ...schedule, enabled: false, upcoming: [] }];
        return schedules[0];
      },
      [`DELETE /api/v1/schedules/${schedule.id}`]: () => {
        schedules = [];
        return json(null, 204);
      },
    });
    const user = userEvent.setup();
    renderPage("agents", "/agents/researcher", <AgentsPage />);

    const region = await screen.findByRole("region", { name: "Schedules" });
    expect(await within(region).findByText("No schedules.")).toBeInTheDocument();
    await user.click(within(region).getByRole("button", { name: "New schedule" }));
    const form = within(region).getByRole("form", { name: "New schedule" });
    await user.type(within(form).getByLabelText("Name"), "morning");
    await user.type(within(form).getByLabelText("Goal of each run"), "Read the news");
    await user.selectOptions(within(form).getByLabelText("Repeats"), "every");
    await user.type(within(form).getByLabelText("Interval"), "15m");
    const zone = within(form).getByLabelText("Time zone");
    await user.clear(zone);
    await user.type(zone, "Europe/Berlin");
    await user.selectOptions(within(form).getByLabelText("Missed fires"), "run_once");
    await user.click(within(form).getByRole("button", { name: "Add schedule" }));

    expect(await within(region).findByText("morning")).toBeInTheDocument();
    const [post] = await requests(fetch, "POST", "/api/v1/schedules");
    expect(post?.body).toEqual({
      name: "morning",
      agent: "researcher",
      goal: "Read the news",
      spec: "every 15m",
      time_zone: "Europe/Berlin",
      missed: "run_once",
      enabled: true,
    });

    await user.click(within(region).getByRole("button", { name: "Disable morning" }));
    expect(await within(region).findByText("Disabled")).toBeInTheDocument();

    await user.click(within(region).getByRole("button", { name: "Delete morning" }));
    const dialog = await screen.findByRole("dialog", { name: "Delete the schedule morning?" });
    await user.click(within(dialog).getByRole("button", { name: "Delete" }));
    expect(await within(region).findByText("No schedules.")).toBeInTheDocument();
    expect(await requests(fetch, "DELETE", `/api/v1/schedules/${schedule.id}`)).toHaveLength(1);
  });

  it("starts a run with a goal and opens its page", async () => {
    const started = { ...run, id: "0a000000-0000-4000-8000-0000000000b2", status: "queued" as const };
    const fetch = fakeApi({
      ...baseRoutes,
      "POST /api/v1/agents/researcher/runs": () => json(started, 201),
      [`GET /api/v1/runs/${started.id}`]: () => started,
      [`GET /api/v1/runs/${started.id}/events`]: () => ({ events: [] }),
    });
    const user = userEvent.setup();
    renderPage("agents", "/agents/researcher", <AgentsPage />);

    await user.type(await screen.findByLabelText("Goal"), "Summarise the news");
    await user.click(screen.getByRole("button", { name: "Start run" }));

    await waitFor(() =>
      expect(screen.getByTestId("location")).toHaveTextContent(`/agents/runs/${started.id}`),
    );
    const [post] = await requests(fetch, "POST", "/api/v1/agents/researcher/runs");
    expect(post?.body).toEqual({ goal: "Summarise the news" });
    expect(await screen.findByRole("heading", { level: 1, name: "Run of researcher" })).toBeInTheDocument();
  });

  it("deletes an agent after asking", async () => {
    const fetch = fakeApi({
      ...baseRoutes,
      "DELETE /api/v1/agents/researcher": () => json(null, 204),
    });
    const user = userEvent.setup();
    renderPage("agents", "/agents/researcher", <AgentsPage />);

    await user.click(await screen.findByRole("button", { name: "Delete agent" }));
    const dialog = await screen.findByRole("dialog", { name: "Delete researcher?" });
    await user.click(within(dialog).getByRole("button", { name: "Delete agent" }));
    await waitFor(() => expect(screen.getByTestId("location")).toHaveTextContent(/^\/agents$/));
    expect(await requests(fetch, "DELETE", "/api/v1/agents/researcher")).toHaveLength(1);
  });
});

describe("run page", () => {
  beforeEach(() => useAuthStore.getState().signIn("token", 900));
  afterEach(() => {
    vi.unstubAllGlobals();
    vi.restoreAllMocks();
    useAuthStore.getState().signOut();
  });

  it("shows the history, then appends live events once each", async () => {
    const join = vi.spyOn(realtime, "join");
    const leave = vi.spyOn(realtime, "leave");
    const history = [event(1, "created", { goal: "x", model: "smart" }), event(2, "step_started", { number: 1, title: "Search" })];
    let later: Schemas["RunEvent"][] = [];
    const fetch = fakeApi({
      ...baseRoutes,
      [`GET /api/v1/runs/${RUN_ID}`]: () => run,
      [`GET /api/v1/runs/${RUN_ID}/events`]: (url) => {
        const after = Number(url.searchParams.get("after") ?? 0);
        // Answers with one event the page already has, as a late page could.
        return { events: [...history, ...later].filter((known) => known.seq >= after) };
      },
    });
    const { queryClient, unmount } = renderPage("agents", `/agents/runs/${RUN_ID}`, <AgentsPage />);

    const log = await screen.findByRole("log", { name: "Run timeline" });
    expect(await within(log).findByText("Step 1: Search")).toBeInTheDocument();
    expect(within(log).getAllByRole("listitem")).toHaveLength(2);
    expect(join).toHaveBeenCalledWith(`run:${RUN_ID}`);

    later = [event(3, "tool_call", { key: "k", tool: "search_knowledge", arguments: { query: "news" } })];
    act(() =>
      dispatchEvent(
        { type: "event", id: 41, room: `run:${RUN_ID}`, kind: "run.event", data: later[0]! },
        queryClient,
      ),
    );

    expect(await within(log).findByText("Calling search_knowledge")).toBeInTheDocument();
    expect(within(log).getAllByRole("listitem")).toHaveLength(3);
    const fetched = await requests(fetch, "GET", `/api/v1/runs/${RUN_ID}/events`);
    expect(fetched.map(({ url }) => url.searchParams.get("after"))).toEqual(["0", "2"]);

    unmount();
    expect(leave).toHaveBeenCalledWith(`run:${RUN_ID}`);
  });

  it("pauses, resumes and cancels", async () => {
    let current = run;
    const fetch = fakeApi({
      ...baseRoutes,
      [`GET /api/v1/runs/${RUN_ID}`]: () => current,
      [`GET /api/v1/runs/${RUN_ID}/events`]: () => ({ events: [] }),
      [`POST /api/v1/runs/${RUN_ID}/pause`]: () => (current = { ...run, status: "paused" }),
      [`POST /api/v1/runs/${RUN_ID}/resume`]: () => (current = { ...run, status: "queued" }),
      [`POST /api/v1/runs/${RUN_ID}/cancel`]: () => (current = { ...run, status: "cancelled" }),
    });
    const user = userEvent.setup();
    renderPage("agents", `/agents/runs/${RUN_ID}`, <AgentsPage />);

    await user.click(await screen.findByRole("button", { name: "Pause" }));
    expect(await screen.findByText("Paused")).toBeInTheDocument();
    await user.click(screen.getByRole("button", { name: "Resume" }));
    expect(await screen.findByText("Queued")).toBeInTheDocument();
    await user.click(screen.getByRole("button", { name: "Cancel run" }));
    const dialog = await screen.findByRole("dialog", { name: "Cancel this run?" });
    await user.click(within(dialog).getByRole("button", { name: "Cancel run" }));
    expect(await screen.findByText("Cancelled")).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: "Pause" })).not.toBeInTheDocument();
    expect(await requests(fetch, "POST", `/api/v1/runs/${RUN_ID}/cancel`)).toHaveLength(1);
  });

  it("answers the run's pending requests inline", async () => {
    const request: Schemas["RunRequest"] = {
      id: "0a000000-0000-4000-8000-0000000000e1",
      run_id: RUN_ID,
      agent_id: AGENT_ID,
      kind: "consent",
      tool: "http_request",
      details: loose({ url: "https://example.org" }),
      status: "pending",
      remember: false,
      expires_at: "2030-01-01T00:00:00Z",
      created_at: "2026-01-01T00:00:00Z",
    };
    const other = { ...request, id: "0a000000-0000-4000-8000-0000000000e2", run_id: "someone-else" };
    const fetch = fakeApi({
      ...baseRoutes,
      "GET /api/v1/requests": () => ({ requests: [request, other] }),
      [`GET /api/v1/runs/${RUN_ID}`]: () => ({ ...run, status: "waiting", waiting_on: request.id }),
      [`GET /api/v1/runs/${RUN_ID}/events`]: () => ({ events: [] }),
      [`POST /api/v1/requests/${request.id}`]: () => ({ ...request, status: "approved", remember: true }),
    });
    const user = userEvent.setup();
    renderPage("agents", `/agents/runs/${RUN_ID}`, <AgentsPage />);

    const region = await screen.findByRole("region", { name: "1 request waits for you" });
    const item = within(region).getByRole("listitem", { name: "It asks to use http_request" });
    expect(within(item).getByText(/example\.org/)).toBeInTheDocument();
    await user.click(within(item).getByRole("button", { name: "Always" }));

    await waitFor(() => expect(screen.queryByRole("region", { name: /request/ })).not.toBeInTheDocument());
    const [decision] = await requests(fetch, "POST", `/api/v1/requests/${request.id}`);
    expect(decision?.body).toEqual({ approve: true, remember: true });
  });
});

describe("agent definitions", () => {
  it("round-trip through the form's values", () => {
    const request = toRequest(toFormValues(researcher), researcher);
    expect(request.name).toBe("researcher");
    expect(request.definition).toMatchObject({
      instructions: researcher.definition.instructions,
      prompt: null,
      model: "smart",
      consent: { http_request: "ask", web__fetch: "allow" },
      mcp_servers: ["web"],
      memory: true,
      hooks: researcher.definition.hooks,
    });
    expect(request.definition.tools?.sort()).toEqual([...(researcher.definition.tools ?? [])].sort());
  });

  it("take a prompt template instead of instructions", () => {
    const values = { ...toFormValues(null), name: "a", source: "prompt" as const, prompt: " daily@2 " };
    expect(toRequest(values, null).definition).toMatchObject({ prompt: "daily@2", instructions: null, limits: null });
  });
});

describe("schedule specs", () => {
  it("are written as the API reads them", () => {
    expect(toSpec("every", "15m")).toBe("every 15m");
    expect(toSpec("every", "every 1h")).toBe("every 1h");
    expect(toSpec("cron", "0 9 * * 1-5")).toBe("cron: 0 9 * * 1-5");
    expect(toSpec("cron", "@daily")).toBe("cron: @daily");
  });
});

describe("mergeEvents", () => {
  it("appends later events and drops those already known", () => {
    const known = [event(1, "created"), event(2, "started")];
    expect(mergeEvents(known, [event(3, "paused")]).map((item) => item.seq)).toEqual([1, 2, 3]);
    expect(mergeEvents(known, [event(2, "started"), event(3, "paused")]).map((item) => item.seq)).toEqual([1, 2, 3]);
    expect(mergeEvents(known, [event(4, "queued"), event(3, "paused")]).map((item) => item.seq)).toEqual([1, 2, 3, 4]);
    expect(mergeEvents(known, [])).toBe(known);
  });
});

describe("run timeline", () => {
  afterEach(() => void i18n.changeLanguage("en"));

  const events = [
    event(1, "plan", { steps: ["Search", "Write"] }),
    event(2, "tool_result", { key: "k", tool: "shell", ok: false, output: "exit 1" }),
    event(3, "decided", { request: "r", status: "expired" }),
    event(4, "finished", { status: "succeeded", answer: "Done" }),
    event(5, "something_new", { detail: 1 }),
  ];

  it("says what each event was, marking failures, with the rest of its details unfoldable", () => {
    render(<RunTimeline events={events} />);
    const items = within(screen.getByRole("log", { name: "Run timeline" })).getAllByRole("listitem");
    expect(items.map((item) => item.querySelector("span")?.textContent)).toEqual([
      "Planned 2 steps",
      "shell failed",
      "The request expired",
      "Ended: Succeeded",
      "something_new",
    ]);
    expect(items[1]?.querySelector("span")).toHaveClass("text-destructive");
    expect(within(items[1]!).getByText(/exit 1/)).toBeInTheDocument();
  });

  it("reads in German", async () => {
    await i18n.changeLanguage("de");
    render(<RunTimeline events={events} />);
    const log = screen.getByRole("log", { name: "Verlauf des Laufs" });
    expect(within(log).getByText("2 Schritte geplant")).toBeInTheDocument();
    expect(within(log).getByText("Die Anfrage ist abgelaufen")).toBeInTheDocument();
    expect(within(log).getByText("Beendet: Erfolgreich")).toBeInTheDocument();
  });
});
