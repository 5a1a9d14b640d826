import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";

import { useAuthStore } from "@/auth/store";
import { LoginForm } from "./LoginForm";

function jsonResponse(body: unknown, status: number, type = "application/json") {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": type } });
}

describe("LoginForm", () => {
  afterEach(() => {
    vi.unstubAllGlobals();
    useAuthStore.getState().signOut();
  });

  it("asks for both fields before sending anything", async () => {
    const fetch = vi.fn();
    vi.stubGlobal("fetch", fetch);
    render(<LoginForm onSignedIn={vi.fn()} />);

    await userEvent.click(screen.getByRole("button", { name: "Sign in" }));

    expect(await screen.findByText("Enter your user name.")).toBeInTheDocument();
    expect(screen.getByText("Enter your password.")).toBeInTheDocument();
    expect(screen.getByLabelText("User name")).toHaveAttribute("aria-invalid", "true");
    expect(fetch).not.toHaveBeenCalled();
  });

  it("logs in asking for the refresh cookie and keeps the access token in memory", async () => {
    const fetch = vi.fn(async (_request: Request) =>
      jsonResponse({ access_token: "token-1", token_type: "Bearer", expires_in: 900 }, 200),
    );
    vi.stubGlobal("fetch", fetch);
    const onSignedIn = vi.fn();
    render(<LoginForm onSignedIn={onSignedIn} />);

    await userEvent.type(screen.getByLabelText("User name"), "alice");
    await userEvent.type(screen.getByLabelText("Password"), "secret");
    await userEvent.click(screen.getByRole("button", { name: "Sign in" }));

    await vi.waitFor(() => expect(onSignedIn).toHaveBeenCalled());
    const request = fetch.mock.calls[0]?.[0];
    expect(request?.url).toMatch(/\/api\/v1\/auth\/login$/);
    expect(await request?.json()).toEqual({ username: "alice", password: "secret", cookie: true });
    expect(useAuthStore.getState()).toMatchObject({ status: "signed-in", accessToken: "token-1" });
    expect(JSON.stringify({ ...localStorage })).not.toContain("token-1");
  });

  it("shows the problem's detail when the server refuses", async () => {
    vi.stubGlobal(
      "fetch",
      vi.fn(async () =>
        jsonResponse(
          {
            type: "urn:kai:problem:invalid-credentials",
            title: "Invalid credentials",
            status: 401,
            detail: "invalid username or password",
          },
          401,
          "application/problem+json",
        ),
      ),
    );
    const onSignedIn = vi.fn();
    render(<LoginForm onSignedIn={onSignedIn} />);

    await userEvent.type(screen.getByLabelText("User name"), "alice");
    await userEvent.type(screen.getByLabelText("Password"), "wrong");
    await userEvent.click(screen.getByRole("button", { name: "Sign in" }));

    expect(await screen.findByRole("alert")).toHaveTextContent("invalid username or password");
    expect(onSignedIn).not.toHaveBeenCalled();
  });
});
