// What every browser test shares: the server's address, logging in, the accessibility check
// and the screenshots CI keeps.
import AxeBuilder from "@axe-core/playwright";
import { expect, test as base, type Page } from "@playwright/test";
import path from "node:path";

import { ADMIN, PASSWORD } from "./kai";
import { outputDir } from "../playwright.config";

export const test = base.extend({
  baseURL: async ({}, use) => {
    const url = process.env.KAI_E2E_URL;
    if (!url) throw new Error("KAI_E2E_URL is unset: the global setup starts kai serve");
    await use(url);
  },
});
export { expect };

/** Logs in through the login page, as a person does. */
export async function logIn(page: Page, to = "/"): Promise<void> {
  await page.goto(to);
  await page.getByLabel("User name").fill(ADMIN);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).not.toHaveURL(/\/login/);
}

/** Fails on any serious or critical accessibility violation (axe-core, WCAG 2.1 A and AA). */
export async function expectAccessible(page: Page): Promise<void> {
  const results = await new AxeBuilder({ page }).withTags(["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]).analyze();
  const blocking = results.violations.filter((violation) => ["serious", "critical"].includes(violation.impact ?? ""));
  expect(
    blocking.map((violation) => `${violation.id} (${violation.impact}): ${violation.help} — ${violation.nodes.map((node) => node.target.join(" ")).join(", ")}`),
  ).toEqual([]);
}

/** Keeps a full-page screenshot as a file, for a person to look at. */
export async function screenshot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(outputDir, "screenshots", `${name}.png`), fullPage: true });
}
