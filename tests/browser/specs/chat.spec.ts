import type { Page } from "@playwright/test";

import { expect, expectAccessible, logIn, screenshot, test } from "../support/fixtures";

/** Starts a new chat with the local model and sends `text`. */
async function ask(page: Page, text: string): Promise<void> {
  await page.getByRole("link", { name: "New chat" }).or(page.getByRole("button", { name: "New chat" })).first().click();
  await page.getByLabel("Model").selectOption("local/smollm2");
  await page.getByLabel("Write a message").fill(text);
  await page.getByLabel("Write a message").press("Enter");
}

const answers = (page: Page) => page.locator('article[data-role="assistant"]');

test("an answer streams in token by token, and only the message being written re-renders", async ({ page }) => {
  await logIn(page, "/chat");
  await ask(page, "Write three sentences about the sea.");
  const answer = answers(page).last();
  // Streaming: the text is seen growing before the answer is finished.
  await expect(answer).toContainText(/\w+/);
  const early = (await answer.innerText()).length;
  await expect.poll(async () => (await answer.innerText()).length, { timeout: 60_000 }).toBeGreaterThan(early);
  await expect(answer.getByText(/\d+ tokens?/)).toBeVisible({ timeout: 90_000 });

  const renders = async (locator: ReturnType<Page["locator"]>) => Number(await locator.getAttribute("data-renders"));
  const question = page.locator('article[data-role="user"]').last();
  expect(await renders(question)).toBeLessThanOrEqual(3);
  expect(await renders(answer)).toBeGreaterThan(5);

  // The conversation is listed, and its answer is kept.
  await expect(page.getByRole("navigation").or(page.locator("aside")).getByText(/sea|Untitled/i).first()).toBeVisible();
  await page.reload();
  await expect(answers(page).last()).toContainText(/\w+/);
  await expectAccessible(page);
  await screenshot(page, "chat");
});

test("reloading in the middle of an answer reconnects and shows the whole answer", async ({ page }) => {
  await logIn(page, "/chat");
  await ask(page, "Count slowly from one to forty, one number per line.");
  await expect(answers(page).last()).toContainText(/\w+/);
  await page.reload();
  // The answer went on being written on the server; after the reconnect it arrives whole.
  await expect(page.locator('article[data-role="user"]').last()).toContainText("Count slowly");
  await expect(answers(page).last()).toContainText(/\w+/, { timeout: 90_000 });
  await expect(page.getByText("Reconnecting")).toHaveCount(0);
});

test("a message written offline waits, and is sent when the connection returns", async ({ page, context }) => {
  await logIn(page, "/chat");
  await page.getByLabel("Model").selectOption("local/smollm2");
  await context.setOffline(true);
  await page.getByLabel("Write a message").fill("Say hello.");
  await page.getByLabel("Write a message").press("Enter");
  await expect(page.getByText("Waiting for a connection")).toBeVisible();
  await screenshot(page, "chat-offline");
  await context.setOffline(false);
  await expect(page.getByText("Waiting for a connection")).toHaveCount(0, { timeout: 60_000 });
  await expect(answers(page).last().getByText(/\d+ tokens?/)).toBeVisible({ timeout: 90_000 });
});
