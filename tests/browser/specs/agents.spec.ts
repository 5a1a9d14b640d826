import { ADMIN, PASSWORD } from "../support/kai";
import { expect, expectAccessible, logIn, screenshot, test } from "../support/fixtures";

test("an agent that asks for consent is approved from another page, and its audit entry verifies", async ({
  page,
  request,
}) => {
  // The agent is defined through the API; its model is the scripted one, which plans one
  // step and calls write_file, a tool this agent must ask about.
  const login = await request.post("/api/v1/auth/login", { data: { username: ADMIN, password: PASSWORD } });
  const { access_token: token } = (await login.json()) as { access_token: string };
  const name = `scribe-${Date.now()}`;
  const created = await request.post("/api/v1/agents", {
    headers: { authorization: `Bearer ${token}` },
    data: {
      name,
      definition: {
        instructions: "Do what is asked: {{ goal }}",
        model: "scripted",
        tools: ["write_file"],
        consent: { write_file: "ask" },
      },
    },
  });
  expect(created.status()).toBe(201);

  await logIn(page, "/agents");
  await expect(page.getByText(name).first()).toBeVisible();
  await expectAccessible(page);
  await screenshot(page, "agents");
  await page.getByText(name).first().click();
  await page.getByLabel("Goal").fill("Write a note that says hello.");
  await page.getByRole("button", { name: "Start run" }).click();
  await expect(page).toHaveURL(/\/agents\/runs\//);
  await expect(page.getByText("Waiting for you").first()).toBeVisible();
  await screenshot(page, "agent-run-waiting");

  // Answered from another page: the request reaches every page as it is made.
  await page.getByRole("link", { name: "Knowledge" }).click();
  await expect(page).toHaveURL(/\/knowledge/);
  await page.getByRole("button", { name: "Approve" }).first().click();
  await page.goBack();
  await expect(page.getByText("Succeeded").first()).toBeVisible();
  await expectAccessible(page);
  await screenshot(page, "agent-run");

  // The tool call is in the audit log; the browser checks its proof against the signed root.
  await page.getByRole("link", { name: "Audit" }).click();
  await expect(page.getByText("Checkpoint signature verified")).toBeVisible();
  const entry = page.getByRole("row").filter({ hasText: "agent.tool" }).first();
  await expect(entry).toBeVisible();
  await expectAccessible(page);
  await screenshot(page, "audit");
  await expect(async () => {
    await page.reload();
    const row = page.getByRole("row").filter({ hasText: "agent.tool" }).first();
    await row.getByRole("button", { name: /Verify entry/ }).click();
    await expect(row.getByText("Verified")).toBeVisible({ timeout: 5_000 });
  }).toPass({ timeout: 30_000 });
});
