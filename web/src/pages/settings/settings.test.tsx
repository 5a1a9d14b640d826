import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import type { components } from "@/api/schema";
import { useAuthStore } from "@/auth/store";
import { fakeApi, json, renderPage, requests, type Handler } from "@/pages/agents/testing";
import { toBudgets, toBudgetValues } from "./KeyBudgets";
import { Component as SettingsPage } from "./index";
import { expiresAt } from "./ApiKeys";
import { usageWindow } from "./Usage";

type Schemas = components["schemas"];

const ME_ID = "0a000000-0000-4000-8000-000000000001";
const OTHER_ID = "0a000000-0000-4000-8000-000000000002";
const KEY_ID = "0a000000-0000-4000-8000-0000000000k1";

function me(role: Schemas["Role"]): Schemas["Me"] {
  return {
    id: ME_ID,
    username: "alice",
    role,
    disabled: false,
    created_at: "2026-01-01T00:00:00Z",
    updated_at: "2026-01-01T00:00:00Z",
    auth: { method: "session", id: "0a000000-0000-4000-8000-0000000000s1", scopes: ["read", "write", "admin"] },
  };
}

const laptopKey: Schemas["ApiKey"] = {
  id: KEY_ID,
  name: "laptop",
  prefix: "kai_Xy7Qp2Lm",
  scopes: ["read"],
  created_at: "2026-01-01T00:00:00Z",
};

function routes(role: Schemas["Role"], overrides: Record<string, Handler> = {}) {
  return fakeApi({
    "GET /api/v1/me": () => me(role),
    "GET /api/v1/keys": () => [laptopKey],
    "POST /api/v1/auth/logout": () => json(null, 204),
    ...overrides,
  });
}

function navigation() {
  return screen.getByRole("navigation", { name: "Settings sections" });
}

describe("settings page", () => {
  beforeEach(() => useAuthStore.getState().signIn("token", 900));
  afterEach(() => {
    vi.unstubAllGlobals();
    vi.restoreAllMocks();
    useAuthStore.getState().signOut();
    localStorage.clear();
  });

  it("shows the admin sections to admins only", async () => {
    routes("user");
    const { unmount } = renderPage("settings", "/settings/users", <SettingsPage />);
    expect(await screen.findByText("This section does not exist or is for admins only.")).toBeInTheDocument();
    const links = within(navigation()).getAllByRole("link").map((link) => link.textContent);
    expect(links).toEqual(["Profile", "API keys", "Usage", "Vault"]);
    unmount();

    routes("admin", { "GET /api/v1/users": () => [] });
    renderPage("settings", "/settings/users", <SettingsPage />);
    expect(await screen.findByRole("heading", { level: 2, name: "Users" })).toBeInTheDocument();
    expect(within(navigation()).getByRole("link", { name: "Providers and models" })).toBeInTheDocument();
    expect(within(navigation()).getByRole("link", { name: "Users" })).toHaveAttribute("aria-current", "page");
  });

  it("changes the password, then asks to sign in again", async () => {
    const fetch = routes("user", { "POST /api/v1/me/password": () => json(null, 204) });
    const user = userEvent.setup();
    renderPage("settings", "/settings/profile", <SettingsPage />);

    await user.type(await screen.findByLabelText("Current password"), "old-password");
    await user.type(screen.getByLabelText("New password"), "new-password");
    await user.type(screen.getByLabelText("Repeat the new password"), "new-passwort");
    await user.click(screen.getByRole("button", { name: "Change password" }));
    expect(await screen.findByText("The passwords differ.")).toBeInTheDocument();
    expect(await requests(fetch, "POST", "/api/v1/me/password")).toHaveLength(0);

    await user.clear(screen.getByLabelText("Repeat the new password"));
    await user.type(screen.getByLabelText("Repeat the new password"), "new-password");
    await user.click(screen.getByRole("button", { name: "Change password" }));

    await waitFor(() => expect(screen.getByTestId("location")).toHaveTextContent("/login"));
    const [change] = await requests(fetch, "POST", "/api/v1/me/password");
    expect(change?.body).toEqual({ current_password: "old-password", new_password: "new-password" });
    expect(useAuthStore.getState().status).toBe("signed-out");
  });

  it("shows why a password change was refused", async () => {
    routes("user", {
      "POST /api/v1/me/password": () =>
        json({ type: "about:blank", title: "Unauthorized", status: 401, detail: "wrong current password" }, 401),
    });
    const user = userEvent.setup();
    renderPage("settings", "/settings/profile", <SettingsPage />);
    await user.type(await screen.findByLabelText("Current password"), "nope");
    await user.type(screen.getByLabelText("New password"), "new-password");
    await user.type(screen.getByLabelText("Repeat the new password"), "new-password");
    await user.click(screen.getByRole("button", { name: "Change password" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("wrong current password");
    expect(screen.getByTestId("location")).toHaveTextContent("/settings/profile");
  });

  it("signs out everywhere", async () => {
    const fetch = routes("user", { "POST /api/v1/auth/logout-all": () => json(null, 204) });
    const user = userEvent.setup();
    renderPage("settings", "/settings/profile", <SettingsPage />);
    await user.click(await screen.findByRole("button", { name: "Sign out everywhere" }));
    await waitFor(() => expect(screen.getByTestId("location")).toHaveTextContent("/login"));
    expect(await requests(fetch, "POST", "/api/v1/auth/logout-all")).toHaveLength(1);
  });

  it("creates an API key, shows it once with a copy button, and revokes one", async () => {
    const created: Schemas["CreatedApiKey"] = {
      ...laptopKey,
      id: "0a000000-0000-4000-8000-0000000000k2",
      name: "backup",
      scopes: ["read", "write"],
      key: "kai_secret_value_123",
    };
    let keys = [laptopKey];
    const fetch = routes("user", {
      "GET /api/v1/keys": () => keys,
      "POST /api/v1/keys": () => {
        keys = [...keys, created];
        return json(created, 201);
      },
      [`DELETE /api/v1/keys/${KEY_ID}`]: () => {
        keys = keys.map((key) => (key.id === KEY_ID ? { ...key, revoked_at: "2026-02-01T00:00:00Z" } : key));
        return json(null, 204);
      },
    });
    const user = userEvent.setup();
    const writeText = vi.spyOn(navigator.clipboard, "writeText");
    renderPage("settings", "/settings/keys", <SettingsPage />);

    const form = await screen.findByRole("form", { name: "New API key" });
    expect(within(form).queryByRole("checkbox", { name: "Admin" })).not.toBeInTheDocument();
    await user.type(within(form).getByLabelText("Name"), "backup");
    await user.click(within(form).getByRole("checkbox", { name: "Write" }));
    await user.selectOptions(within(form).getByLabelText("Expires"), "30");
    const before = Date.now();
    await user.click(within(form).getByRole("button", { name: "Create key" }));

    const shown = await screen.findByLabelText("The new API key");
    expect(shown).toHaveValue("kai_secret_value_123");
    await user.click(screen.getByRole("button", { name: "Copy" }));
    expect(writeText).toHaveBeenCalledWith("kai_secret_value_123");
    expect(await screen.findByText("Copied to the clipboard.")).toBeInTheDocument();
    const [post] = await requests(fetch, "POST", "/api/v1/keys");
    const body = post?.body as Schemas["CreateApiKeyRequest"];
    expect(body.name).toBe("backup");
    expect(body.scopes).toEqual(["read", "write"]);
    const expiry = new Date(body.expires_at ?? "").getTime();
    expect(expiry - before).toBeGreaterThan(29.9 * 24 * 3600 * 1000);
    expect(expiry - before).toBeLessThan(30.1 * 24 * 3600 * 1000);

    await user.click(screen.getByRole("button", { name: "I have stored it" }));
    expect(screen.queryByText("kai_secret_value_123")).not.toBeInTheDocument();
    expect(screen.queryByLabelText("The new API key")).not.toBeInTheDocument();

    await user.click(await screen.findByRole("button", { name: "Revoke laptop" }));
    const dialog = await screen.findByRole("dialog", { name: "Revoke the key laptop?" });
    await user.click(within(dialog).getByRole("button", { name: "Revoke" }));
    await waitFor(() => expect(screen.queryByText("laptop")).not.toBeInTheDocument());
    await user.click(screen.getByRole("checkbox", { name: "Show revoked keys" }));
    expect(await screen.findByText("laptop")).toBeInTheDocument();
    expect(screen.getAllByText("Revoked").length).toBeGreaterThan(0);
  });

  it("sets a key's budgets", async () => {
    const fetch = routes("user", {
      [`GET /api/v1/keys/${KEY_ID}/budgets`]: () => ({ budgets: [{ period: "month", tokens: 1000000 }] }),
      [`PUT /api/v1/keys/${KEY_ID}/budgets`]: async (_url, request) => request.json(),
    });
    const user = userEvent.setup();
    renderPage("settings", "/settings/keys", <SettingsPage />);

    await user.click(await screen.findByRole("button", { name: "Budgets" }));
    const form = await screen.findByRole("form", { name: "Budgets of laptop" });
    expect(within(form).getByLabelText("Tokens per month")).toHaveValue("1000000");
    await user.type(within(form).getByLabelText("US dollars per day"), "2.5");
    await user.click(within(form).getByRole("button", { name: "Save budgets" }));

    expect(await within(form).findByText("Budgets saved.")).toBeInTheDocument();
    const [put] = await requests(fetch, "PUT", `/api/v1/keys/${KEY_ID}/budgets`);
    expect(put?.body).toEqual({
      budgets: [
        { period: "day", usd: 2.5 },
        { period: "month", tokens: 1000000 },
      ],
    });
  });

  it("draws usage by day, model and key, each with a table", async () => {
    const day = usageWindow(7).days[6]!;
    const totals = { requests: 12, errors: 1, input_tokens: 900, output_tokens: 100, cost_usd: 0.42 };
    const fetch = routes("user", {
      "GET /api/v1/usage": (url) => {
        const group = url.searchParams.get("group_by");
        const groups =
          group === "day"
            ? [{ ...totals, key: day }]
            : group === "model"
              ? [
                  { ...totals, key: "smart", cost_usd: 0.4 },
                  { ...totals, key: "fast", cost_usd: 0.02 },
                ]
              : [
                  { ...totals, key: KEY_ID, cost_usd: 0.3 },
                  { ...totals, key: "", cost_usd: 0.12 },
                ];
        return { totals, groups };
      },
    });
    const user = userEvent.setup();
    renderPage("settings", "/settings/usage", <SettingsPage />);

    const byModel = await screen.findByRole("img", { name: /Cost by model/ });
    expect(byModel).toHaveAccessibleName(expect.stringMatching(/highest is smart/));
    const byKey = await screen.findByRole("img", { name: /Cost by API key/ });
    expect(byKey).toHaveAccessibleName(expect.stringMatching(/highest is laptop/));
    const byDay = await screen.findByRole("img", { name: /Cost by day/ });
    expect(byDay.querySelectorAll("rect")).toHaveLength(30);

    const keyFigure = byKey.closest("figure")!;
    await user.click(within(keyFigure as HTMLElement).getByText("Show as a table"));
    const table = within(keyFigure as HTMLElement).getByRole("table");
    expect(within(table).getByRole("rowheader", { name: "Signed in (no key)" })).toBeInTheDocument();
    expect(within(table).getByRole("rowheader", { name: "laptop" })).toBeInTheDocument();

    await user.selectOptions(screen.getByLabelText("Show"), "requests");
    expect(await screen.findByRole("img", { name: /Requests by model/ })).toBeInTheDocument();
    await user.selectOptions(screen.getByLabelText("Period"), "7");
    await waitFor(() => expect(screen.getByRole("img", { name: /Requests by day/ }).querySelectorAll("rect")).toHaveLength(7));
    const asked = await requests(fetch, "GET", "/api/v1/usage");
    expect(new Set(asked.map(({ url }) => url.searchParams.get("group_by")))).toEqual(new Set(["day", "model", "key"]));
  });

  it("unlocks the vault, stores a secret write-only and deletes one", async () => {
    let unlocked = false;
    let secrets: Schemas["SecretInfo"][] = [
      { name: "github", created_at: "2026-01-01T00:00:00Z", updated_at: "2026-01-01T00:00:00Z" },
    ];
    const fetch = routes("admin", {
      "GET /api/v1/vault": () => ({ initialized: true, unlocked, unlockers: ["passphrase"] }),
      "POST /api/v1/vault/unlock": () => {
        unlocked = true;
        return json(null, 204);
      },
      "GET /api/v1/secrets": () => secrets,
      "PUT /api/v1/secrets/openai": () => {
        const stored = { name: "openai", created_at: "2026-01-02T00:00:00Z", updated_at: "2026-01-02T00:00:00Z" };
        secrets = [...secrets, stored];
        return stored;
      },
      "DELETE /api/v1/secrets/github": () => {
        secrets = secrets.filter((secret) => secret.name !== "github");
        return json(null, 204);
      },
    });
    const user = userEvent.setup();
    renderPage("settings", "/settings/vault", <SettingsPage />);

    expect(await screen.findByText("locked")).toBeInTheDocument();
    expect(screen.getByRole("button", { name: "Store secret" })).toBeDisabled();
    await user.type(screen.getByLabelText("Passphrase"), "correct horse battery");
    await user.click(screen.getByRole("button", { name: "Unlock" }));
    expect(await screen.findByText("unlocked")).toBeInTheDocument();
    const [unlock] = await requests(fetch, "POST", "/api/v1/vault/unlock");
    expect(unlock?.body).toEqual({ passphrase: "correct horse battery" });

    const value = screen.getByLabelText("Value");
    expect(value).toHaveAttribute("type", "password");
    await user.type(screen.getByLabelText("Name"), "openai");
    await user.type(value, "sk-123");
    await user.click(screen.getByRole("button", { name: "Store secret" }));
    expect(await screen.findByText("openai stored.")).toBeInTheDocument();
    expect(value).toHaveValue("");
    const [put] = await requests(fetch, "PUT", "/api/v1/secrets/openai");
    expect(put?.body).toEqual({ value: "sk-123", description: null });

    await user.click(screen.getByRole("button", { name: "Delete github" }));
    const dialog = await screen.findByRole("dialog", { name: "Delete the secret github?" });
    await user.click(within(dialog).getByRole("button", { name: "Delete" }));
    await waitFor(() => expect(screen.queryByText("github")).not.toBeInTheDocument());
  });

  it("lets an admin create the vault", async () => {
    let initialized = false;
    const fetch = routes("admin", {
      "GET /api/v1/vault": () => ({ initialized, unlocked: initialized, unlockers: initialized ? ["passphrase"] : [] }),
      "POST /api/v1/vault/init": () => {
        initialized = true;
        return json({}, 201);
      },
      "GET /api/v1/secrets": () => [],
    });
    const user = userEvent.setup();
    renderPage("settings", "/settings/vault", <SettingsPage />);

    await user.type(await screen.findByLabelText("New passphrase"), "too short");
    await user.type(screen.getByLabelText("Repeat the passphrase"), "too short");
    await user.click(screen.getByRole("button", { name: "Create the vault" }));
    expect(await screen.findByText("Use at least 12 characters.")).toBeInTheDocument();
    await user.clear(screen.getByLabelText("New passphrase"));
    await user.type(screen.getByLabelText("New passphrase"), "correct horse battery");
    await user.clear(screen.getByLabelText("Repeat the passphrase"));
    await user.type(screen.getByLabelText("Repeat the passphrase"), "correct horse battery");
    await user.click(screen.getByRole("button", { name: "Create the vault" }));

    expect(await screen.findByText("unlocked")).toBeInTheDocument();
    const [init] = await requests(fetch, "POST", "/api/v1/vault/init");
    expect(init?.body).toEqual({ passphrase: "correct horse battery" });
  });

  it("keeps the vault's controls from non-admins", async () => {
    routes("user", {
      "GET /api/v1/vault": () => ({ initialized: true, unlocked: false, unlockers: ["passphrase"] }),
      "GET /api/v1/secrets": () => [],
    });
    renderPage("settings", "/settings/vault", <SettingsPage />);
    expect(await screen.findByText("Only an admin can unlock or lock the vault.")).toBeInTheDocument();
    expect(screen.queryByLabelText("Passphrase")).not.toBeInTheDocument();
  });

  it("lets admins create users, change their role and disable them", async () => {
    const bob: Schemas["User"] = {
      id: OTHER_ID,
      username: "bob",
      role: "user",
      disabled: false,
      created_at: "2026-01-01T00:00:00Z",
      updated_at: "2026-01-01T00:00:00Z",
    };
    let users: Schemas["User"][] = [{ ...me("admin") }, bob];
    const fetch = routes("admin", {
      "GET /api/v1/users": () => users,
      "POST /api/v1/users": () => {
        const carol = { ...bob, id: "0a000000-0000-4000-8000-000000000003", username: "carol" };
        users = [...users, carol];
        return json(carol, 201);
      },
      [`PATCH /api/v1/users/${OTHER_ID}`]: async (_url, request) => {
        const change = (await request.json()) as Schemas["UpdateUserRequest"];
        const updated = { ...users.find((known) => known.id === OTHER_ID)!, ...(change as object) } as Schemas["User"];
        users = users.map((known) => (known.id === OTHER_ID ? updated : known));
        return updated;
      },
    });
    const user = userEvent.setup();
    renderPage("settings", "/settings/users", <SettingsPage />);

    const table = await screen.findByRole("table", { name: "Users" });
    expect(within(table).getByRole("combobox", { name: "Role of alice" })).toBeDisabled();
    expect(within(table).queryByRole("button", { name: "Disable alice" })).not.toBeInTheDocument();

    await user.selectOptions(within(table).getByRole("combobox", { name: "Role of bob" }), "admin");
    await user.click(within(table).getByRole("button", { name: "Disable bob" }));
    expect(await within(table).findByRole("button", { name: "Enable bob" })).toBeInTheDocument();
    const patches = await requests(fetch, "PATCH", `/api/v1/users/${OTHER_ID}`);
    expect(patches.map(({ body }) => body)).toEqual([{ role: "admin" }, { disabled: true }]);

    await user.click(screen.getByRole("button", { name: "Create a user" }));
    const form = screen.getByRole("form", { name: "Create a user" });
    await user.type(within(form).getByLabelText("User name"), "carol");
    await user.type(within(form).getByLabelText("Password"), "short");
    await user.click(within(form).getByRole("button", { name: "Create user" }));
    expect(await within(form).findByText("Use at least 8 characters.")).toBeInTheDocument();
    await user.clear(within(form).getByLabelText("Password"));
    await user.type(within(form).getByLabelText("Password"), "long enough");
    await user.click(within(form).getByRole("button", { name: "Create user" }));
    expect(await within(table).findByText("carol")).toBeInTheDocument();
    const [post] = await requests(fetch, "POST", "/api/v1/users");
    expect(post?.body).toEqual({ username: "carol", password: "long enough", role: "user" });
  });

  it("lets admins add a provider and remove models added through the API", async () => {
    let providers: Schemas["Provider"][] = [
      { name: "upstream", kind: "openai-compatible", source: "config", created_at: "2026-01-01T00:00:00Z" },
    ];
    const deployment = { provider: "upstream", model: "model-a" };
    const status = {
      provider: "upstream",
      model: "model-a",
      state: "healthy",
      in_flight: 0,
      consecutive_failures: 0,
      requests_last_minute: 0,
      tokens_last_minute: 0,
    };
    let models: Schemas["ModelInfo"][] = [
      { name: "smart", source: "config", deployments: [deployment], status: [status], created_at: "2026-01-01T00:00:00Z" },
      { name: "extra", source: "api", deployments: [deployment], status: [status], created_at: "2026-01-01T00:00:00Z" },
    ];
    const fetch = routes("admin", {
      "GET /api/v1/providers": () => providers,
      "POST /api/v1/providers": async (_url, request) => {
        const definition = (await request.json()) as Schemas["ProviderDefinition"];
        const added = { ...definition, source: "api", created_at: "2026-01-02T00:00:00Z" } as Schemas["Provider"];
        providers = [...providers, added];
        return json(added, 201);
      },
      "GET /api/v1/models": () => models,
      "DELETE /api/v1/models/extra": () => {
        models = models.filter((model) => model.name !== "extra");
        return json(null, 204);
      },
    });
    const user = userEvent.setup();
    renderPage("settings", "/settings/models", <SettingsPage />);

    const catalog = await screen.findByRole("region", { name: "Models" });
    expect(await within(catalog).findByText("smart")).toBeInTheDocument();
    expect(within(catalog).queryByRole("button", { name: "Remove smart" })).not.toBeInTheDocument();
    await user.click(within(catalog).getByRole("button", { name: "Remove extra" }));
    await user.click(within(await screen.findByRole("dialog")).getByRole("button", { name: "Remove" }));
    await waitFor(() => expect(within(catalog).queryByText("extra")).not.toBeInTheDocument());

    const region = screen.getByRole("region", { name: "Providers" });
    await user.click(within(region).getByRole("button", { name: "Add a provider" }));
    const form = within(region).getByRole("form", { name: "Add a provider" });
    await user.type(within(form).getByLabelText("Name"), "local-llm");
    await user.selectOptions(within(form).getByLabelText("Kind"), "ollama");
    await user.type(within(form).getByLabelText("Address"), "http://127.0.0.1:11434");
    await user.type(within(form).getByLabelText("Where its API key is kept"), "the-key-itself");
    await user.click(within(form).getByRole("button", { name: "Add provider" }));
    expect(await within(form).findByText("Write env:NAME or file:PATH.")).toBeInTheDocument();
    await user.clear(within(form).getByLabelText("Where its API key is kept"));
    await user.click(within(form).getByRole("button", { name: "Add provider" }));
    expect(await within(region).findByText("local-llm")).toBeInTheDocument();
    const [post] = await requests(fetch, "POST", "/api/v1/providers");
    expect(post?.body).toEqual({ name: "local-llm", kind: "ollama", base_url: "http://127.0.0.1:11434", api_key: null });
  });
});

describe("settings helpers", () => {
  it("write key expiries as RFC 3339", () => {
    const now = new Date("2026-03-01T12:00:00Z");
    expect(expiresAt("never", "", now)).toBeNull();
    expect(expiresAt("7", "", now)).toBe("2026-03-08T12:00:00.000Z");
    expect(expiresAt("date", "2026-04-01", now)).toBe(new Date("2026-04-01T00:00:00").toISOString());
  });

  it("keep at most one token and one dollar budget per period", () => {
    const budgets = [
      { period: "day", tokens: 5000 },
      { period: "month", usd: 12.5 },
    ];
    expect(toBudgets(toBudgetValues(budgets))).toEqual(budgets);
    expect(toBudgets({ day_tokens: "", day_usd: "", month_tokens: "", month_usd: "" })).toEqual([]);
  });

  it("cover whole UTC days", () => {
    const window = usageWindow(3, new Date("2026-03-10T15:00:00Z"));
    expect(window.days).toEqual(["2026-03-08", "2026-03-09", "2026-03-10"]);
    expect(window.from).toBe("2026-03-08T00:00:00.000Z");
    expect(window.to).toBe("2026-03-11T00:00:00.000Z");
  });
});
