import { ADMIN } from "../support/kai";
import { expect, expectAccessible, logIn, screenshot, test } from "../support/fixtures";

test("a wrong password is refused with the server's reason, and the right one logs in", async ({ page }) => {
  await page.goto("/chat");
  await expect(page).toHaveURL(/\/login/);
  await expectAccessible(page);
  await screenshot(page, "login");

  await page.getByLabel("User name").fill(ADMIN);
  await page.getByLabel("Password").fill("not the password");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("alert")).toBeVisible();

  await logIn(page, "/chat");
  await expect(page).toHaveURL(/\/chat/);
});

test("a reload keeps the session through the refresh cookie, and signing out ends it", async ({ page, context }) => {
  await logIn(page);
  const cookies = await context.cookies();
  const refresh = cookies.find((cookie) => cookie.name === "kai_refresh");
  expect(refresh?.httpOnly).toBe(true);
  expect(refresh?.sameSite).toBe("Strict");
  // No token where a script could read it.
  const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }));
  expect(stored).not.toContain("kairt_");
  expect(stored).not.toMatch(/eyJ[\w-]+\.eyJ/);

  await page.reload();
  await expect(page).not.toHaveURL(/\/login/);

  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page).toHaveURL(/\/login/);
  expect((await context.cookies()).find((cookie) => cookie.name === "kai_refresh")).toBeUndefined();
  await page.goto("/chat");
  await expect(page).toHaveURL(/\/login/);
});
