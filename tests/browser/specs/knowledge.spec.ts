import { expect, expectAccessible, logIn, screenshot, test } from "../support/fixtures";

const DOCUMENT = `The lighthouse keeper of Skerrivore is called Maren Oystrand.
She lights the lamp at dusk and logs every passing ship in a green ledger.
The lighthouse stands on a granite rock eleven miles off the coast.
`;

test("an uploaded document is found by search and answers a question with its source", async ({ page }) => {
  await logIn(page, "/knowledge");
  await expectAccessible(page);
  await screenshot(page, "knowledge");

  await page.getByRole("button", { name: "New collection" }).click();
  await page.getByLabel("Name").fill("Lighthouses");
  await page.getByRole("button", { name: "Create collection" }).click();
  await page.getByText("Lighthouses").first().click();
  await page.getByLabel("Choose files").setInputFiles({
    name: "skerrivore.md",
    mimeType: "text/markdown",
    buffer: Buffer.from(DOCUMENT),
  });
  await expect(page.getByText("skerrivore.md").first()).toBeVisible();
  await expect(page.getByText(/Indexed|Keywords only/).first()).toBeVisible({ timeout: 60_000 });
  await screenshot(page, "knowledge-collection");

  await page.getByRole("link", { name: "Search" }).click();
  await page.getByLabel("Search your knowledge").fill("green ledger");
  await page.getByRole("button", { name: "Search", exact: true }).click();
  await expect(page.locator("mark").filter({ hasText: /ledger/i }).first()).toBeVisible();
  await expectAccessible(page);
  await screenshot(page, "knowledge-search");

  // A question answered from it, citing it.
  await page.getByRole("link", { name: "Chat", exact: true }).click();
  await page.getByLabel("Model").selectOption("local/smollm2");
  await page.getByRole("button", { name: "No knowledge" }).click();
  await page.getByText("Lighthouses").last().click();
  await page.keyboard.press("Escape");
  await page.getByLabel("Write a message").fill("Who is the lighthouse keeper of Skerrivore?");
  await page.getByLabel("Write a message").press("Enter");
  await expect(page.getByText(/1 source|\d sources/).first()).toBeVisible({ timeout: 120_000 });
  await page.getByText(/1 source|\d sources/).first().click();
  await expect(page.getByText("skerrivore.md").last()).toBeVisible();
  await screenshot(page, "chat-sources");
});

test("settings pages are reachable and accessible", async ({ page }) => {
  await logIn(page, "/settings");
  await expectAccessible(page);
  await screenshot(page, "settings");
});
