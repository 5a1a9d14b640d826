import { act, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import { queryKeys } from "@/api/keys";
import type { components } from "@/api/schema";
import { useAuthStore } from "@/auth/store";
import { dispatchEvent } from "@/realtime/dispatch";
import { renderWithProviders } from "@/test/render";
import { ConsentRequests } from "./ConsentRequests";

type RunRequest = components["schemas"]["RunRequest"];

const request: RunRequest = {
  id: "0a000000-0000-4000-8000-000000000001",
  run_id: "0a000000-0000-4000-8000-0000000000r1",
  agent_id: "0a000000-0000-4000-8000-0000000000a1",
  kind: "consent",
  tool: "web__fetch",
  details: {},
  status: "pending",
  remember: false,
  expires_at: "2030-01-01T00:00:00Z",
  created_at: "2026-01-01T00:00:00Z",
};

describe("ConsentRequests", () => {
  beforeEach(() => useAuthStore.getState().signIn("token", 900));
  afterEach(() => {
    vi.unstubAllGlobals();
    useAuthStore.getState().signOut();
  });

  it("shows a requested consent and answers Always with remember", async () => {
    const fetch = vi.fn(async (incoming: Request) => {
      if (incoming.method === "GET") {
        return Response.json({ requests: [] });
      }
      return Response.json({ ...request, status: "approved", remember: true });
    });
    vi.stubGlobal("fetch", fetch);
    const { queryClient } = renderWithProviders(<ConsentRequests />);
    await vi.waitFor(() => expect(queryClient.getQueryData(queryKeys.pendingRequests)).toBeDefined());

    act(() =>
      dispatchEvent(
        { type: "event", id: 7, room: "user", kind: "consent.requested", data: request },
        queryClient,
      ),
    );
    expect(await screen.findByText("An agent asks to use web__fetch")).toBeInTheDocument();

    await userEvent.click(screen.getByRole("button", { name: "Always" }));

    await vi.waitFor(() => expect(screen.queryByText(/web__fetch/)).not.toBeInTheDocument());
    const decision = fetch.mock.calls.map(([call]) => call).find((call) => call.method === "POST");
    expect(decision?.url).toMatch(new RegExp(`/api/v1/requests/${request.id}$`));
    expect(await decision?.json()).toEqual({ approve: true, remember: true });
  });

  it("drops a request decided elsewhere", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => Response.json({ requests: [request] })));
    const { queryClient } = renderWithProviders(<ConsentRequests />);
    expect(await screen.findByText("An agent asks to use web__fetch")).toBeInTheDocument();

    act(() =>
      dispatchEvent(
        {
          type: "event",
          id: 8,
          room: "user",
          kind: "consent.decided",
          data: { request_id: request.id, run_id: request.run_id, decision: "denied" },
        },
        queryClient,
      ),
    );
    await vi.waitFor(() =>
      expect(screen.queryByText("An agent asks to use web__fetch")).not.toBeInTheDocument(),
    );
  });
});
