import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";

import { renderWithProviders } from "@/test/render";
import { calls, fakeApi, json } from "./fake-api";
import { Component as AuditPage } from "./index";
import vectors from "./verify.vectors.json";

const RUN_ID = "0190f1e2-0000-7000-8000-0000000000bb";

function routes(overrides: Record<string, (url: URL) => unknown> = {}) {
  return fakeApi({
    "GET /api/v1/audit": () => ({ entries: vectors.entries, next_after: null }),
    "GET /api/v1/audit/checkpoints": () => [vectors.checkpoint],
    "GET /api/v1/identity": () => ({ did: vectors.did, kid: "kid:x", agreement: "did:key:y" }),
    "GET /api/v1/audit/proofs/inclusion": (url) => {
      const seq = Number(url.searchParams.get("seq"));
      return {
        seq,
        size: Number(url.searchParams.get("size")),
        root: vectors.checkpoint.root,
        proof: vectors.proofs[String(seq) as keyof typeof vectors.proofs],
      };
    },
    ...overrides,
  });
}

describe("audit page", () => {
  afterEach(() => vi.unstubAllGlobals());

  it("verifies the checkpoint and an entry in the browser", async () => {
    const fetch = routes();
    renderWithProviders(<AuditPage />);

    expect(await screen.findByText("Checkpoint signature verified")).toBeInTheDocument();
    expect(screen.getByRole("heading", { level: 1, name: "Audit log" })).toBeInTheDocument();

    await userEvent.click(screen.getByRole("button", { name: "Verify entry 1" }));
    const row = screen.getByRole("row", { name: /agent\.tool\.call/ });
    expect(await within(row).findByText("Verified")).toBeInTheDocument();
    expect(within(row).getByText(/hash matches · signature valid · in the signed tree/)).toBeInTheDocument();
    const [proofCall] = calls(fetch, "GET", "/api/v1/audit/proofs/inclusion");
    expect(proofCall?.searchParams.get("seq")).toBe("1");
    expect(proofCall?.searchParams.get("size")).toBe("3");
  });

  it("links an agent's entry to its run", async () => {
    routes();
    renderWithProviders(<AuditPage />);
    const link = await screen.findByRole("link", { name: `Run ${RUN_ID}` });
    expect(link).toHaveAttribute("href", `/agents/runs/${RUN_ID}`);
  });

  it("reports an entry whose proof does not lead to the signed root", async () => {
    routes({
      "GET /api/v1/audit/proofs/inclusion": (url) => ({
        seq: Number(url.searchParams.get("seq")),
        size: 3,
        root: vectors.checkpoint.root,
        proof: vectors.proofs["1"],
      }),
    });
    renderWithProviders(<AuditPage />);
    await userEvent.click(await screen.findByRole("button", { name: "Verify entry 2" }));
    const row = screen.getByRole("row", { name: /secret\.read/ });
    expect(await within(row).findByText("Failed")).toBeInTheDocument();
    expect(within(row).getByText(/not in the signed tree/)).toBeInTheDocument();
  });

  it("reports a checkpoint signed by another key", async () => {
    routes({
      "GET /api/v1/identity": () => ({
        did: "did:key:z6MkmjY8GnV5i9YTDtPETC2uUAW6ejw3nk5mXF5yci5ab7th",
        kid: "kid:x",
        agreement: "did:key:y",
      }),
    });
    renderWithProviders(<AuditPage />);
    expect(await screen.findByText("Checkpoint verification failed")).toBeInTheDocument();
    expect(screen.getByText("The signature does not match the node's key.")).toBeInTheDocument();
    expect(screen.getAllByText("No verified checkpoint")).toHaveLength(3);
  });

  it("says so when the node has no identity yet", async () => {
    routes({
      "GET /api/v1/identity": () =>
        json({ type: "about:blank", title: "Conflict", status: 409, detail: "no vault" }, 409),
    });
    renderWithProviders(<AuditPage />);
    expect(await screen.findByText(/The node has no identity yet/)).toBeInTheDocument();
  });

  it("filters by actor, action and time, and pages forwards and back", async () => {
    const fetch = routes({
      "GET /api/v1/audit": (url) =>
        url.searchParams.get("after") === "1"
          ? { entries: vectors.entries.slice(2), next_after: null }
          : { entries: vectors.entries.slice(0, 2), next_after: 1 },
    });
    renderWithProviders(<AuditPage />);
    await screen.findByText("Checkpoint signature verified");

    await userEvent.click(screen.getByRole("button", { name: "Next page" }));
    expect(await screen.findByRole("row", { name: /secret\.read/ })).toBeInTheDocument();
    expect(screen.getByText("Page 2")).toBeInTheDocument();
    expect(screen.getByRole("button", { name: "Next page" })).toBeDisabled();
    await userEvent.click(screen.getByRole("button", { name: "Previous page" }));
    expect(await screen.findByRole("row", { name: /auth\.login/ })).toBeInTheDocument();

    await userEvent.type(screen.getByLabelText("Actor"), "user:1");
    await userEvent.type(screen.getByLabelText("Action"), "auth.login");
    await userEvent.type(screen.getByLabelText("From"), "2025-11-24T10:00");
    await userEvent.click(screen.getByRole("button", { name: "Apply filters" }));

    await vi.waitFor(() => {
      const last = calls(fetch, "GET", "/api/v1/audit").at(-1);
      expect(last?.searchParams.get("actor")).toBe("user:1");
      expect(last?.searchParams.get("action")).toBe("auth.login");
      expect(last?.searchParams.get("since")).toBe(new Date("2025-11-24T10:00").toISOString());
      expect(last?.searchParams.has("after")).toBe(false);
    });
  });

  it("refuses a time range that ends before it starts", async () => {
    routes();
    renderWithProviders(<AuditPage />);
    await userEvent.type(await screen.findByLabelText("From"), "2025-11-24T10:00");
    await userEvent.type(screen.getByLabelText("Until"), "2025-11-23T10:00");
    await userEvent.click(screen.getByRole("button", { name: "Apply filters" }));
    expect(await screen.findByText("The end must be after the start.")).toBeInTheDocument();
  });
});
