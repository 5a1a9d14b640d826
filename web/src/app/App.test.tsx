import { render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";

import { restoreSession } from "@/auth/session";
import { useAuthStore } from "@/auth/store";
import { bindRealtimeToSession, realtime } from "@/realtime/connection";
import { App } from "./App";

class IdleSocket {
  readyState = 0;
  onopen = null;
  onmessage = null;
  onclose = null;
  send() {}
  close() {}
}

const routes: Record<string, unknown> = {
  "POST /api/v1/auth/refresh": { access_token: "t", token_type: "Bearer", expires_in: 900 },
  "GET /api/v1/me": { id: "u1", username: "alice", role: "admin", disabled: false, created_at: "", updated_at: "", auth: {} },
  "GET /api/v1/conversations": {
    conversations: [
      { id: "c1", title: "Trip to Lisbon", message_count: 2, created_at: "", updated_at: "" },
    ],
  },
  "GET /api/v1/requests": { requests: [] },
  "GET /v1/models": { object: "list", data: [{ id: "local/smollm2", object: "model", created: 0, owned_by: "kai" }] },
  "GET /api/v1/collections": { collections: [] },
};

describe("App", () => {
  afterEach(() => {
    realtime.stop();
    vi.unstubAllGlobals();
  });

  it("restores the session from the refresh cookie and opens the chat, then navigates by keyboard", async () => {
    vi.stubGlobal("WebSocket", IdleSocket);
    vi.stubGlobal(
      "fetch",
      vi.fn(async (request: Request) => {
        const body = routes[`${request.method} ${new URL(request.url).pathname}`];
        return body ? Response.json(body) : new Response(null, { status: 404 });
      }),
    );
    const unbind = bindRealtimeToSession();
    const stopRestoring = restoreSession();
    render(<App />);

    expect(await screen.findByRole("link", { name: "Trip to Lisbon" })).toBeInTheDocument();
    expect(useAuthStore.getState().status).toBe("signed-in");
    expect(screen.getByText("alice")).toBeInTheDocument();
    const models = screen.getByRole("combobox", { name: "Model" });
    expect(await within(models).findByRole("option", { name: "local/smollm2" })).toBeInTheDocument();
    expect(models).toHaveValue("");
    expect(screen.getByRole("link", { name: "Skip to content" })).toHaveAttribute("href", "#main-content");

    await userEvent.keyboard("{Alt>}3{/Alt}");
    await vi.waitFor(() =>
      expect(screen.getByRole("link", { name: "Agents" })).toHaveAttribute("aria-current", "page"),
    );

    await userEvent.keyboard("{Control>}k{/Control}");
    expect(await screen.findByRole("textbox", { name: "Write a message" })).toBeInTheDocument();
    unbind();
    stopRestoring();
  });
});
