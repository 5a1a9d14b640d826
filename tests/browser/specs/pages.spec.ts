import { expect, expectAccessible, logIn, screenshot, test } from "../support/fixtures";

// Every page of the UI, in both themes: no serious or critical accessibility violation, and a
// screenshot for a person to look at.
const PAGES: [name: string, path: string][] = [
  ["chat-new", "/chat"],
  ["knowledge-collections", "/knowledge"],
  ["knowledge-artifacts", "/knowledge/artifacts"],
  ["knowledge-search-empty", "/knowledge/search"],
  ["knowledge-notes", "/knowledge/notes"],
  ["knowledge-memory", "/knowledge/memory"],
  ["agents-list", "/agents"],
  ["agents-new", "/agents/new"],
  ["settings-profile", "/settings/profile"],
  ["settings-keys", "/settings/keys"],
  ["settings-usage", "/settings/usage"],
  ["settings-vault", "/settings/vault"],
  ["settings-models", "/settings/models"],
  ["settings-users", "/settings/users"],
  ["audit-log", "/audit"],
];

for (const scheme of ["light", "dark"] as const) {
  test(`every page is accessible in the ${scheme} theme`, async ({ page }) => {
    await page.emulateMedia({ colorScheme: scheme });
    await logIn(page, "/chat");
    for (const [name, path] of PAGES) {
      await test.step(path, async () => {
        await page.goto(path);
        await expect(page.getByRole("main")).toBeVisible();
        await page.waitForLoadState("networkidle");
        await expectAccessible(page);
        await screenshot(page, `${name}-${scheme}`);
      });
    }
  });
}
