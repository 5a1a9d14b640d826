import path from "node:path";
import { defineConfig } from "@playwright/test";

const target = process.env.CARGO_TARGET_DIR ?? path.resolve(import.meta.dirname, "../../target");

/** Where the run leaves its screenshots (one per page, kept by CI), traces and kai's log. */
export const outputDir = path.join(target, "browser-tests");

export default defineConfig({
  testDir: "specs",
  outputDir: path.join(outputDir, "results"),
  globalSetup: "./global-setup.ts",
  // One browser at a time: the local model answers one chat at a time on a small machine.
  workers: 1,
  fullyParallel: false,
  timeout: 120_000,
  expect: { timeout: 30_000 },
  reporter: [["list"]],
  use: {
    browserName: "chromium",
    headless: true,
    screenshot: "only-on-failure",
    trace: "retain-on-failure",
    launchOptions: {
      executablePath: process.env.KAI_CHROMIUM ?? "/usr/bin/chromium",
      // Without these Chromium keeps calling hosts this machine cannot reach.
      args: [
        "--no-sandbox",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
      ],
    },
  },
});
