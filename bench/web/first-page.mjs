// First-page weight and time to an interactive chat page, measured the same way for kai and
// for Open WebUI: a fresh Chromium context (empty cache) per run, logged in, opening the chat
// page; "interactive" is the moment the message box exists and accepts input. Every script
// the page loads until then, and until the network is idle (at most five seconds more), is counted: as sent (transfer
// size), uncompressed, and gzipped here at one level for both (Open WebUI's server does not
// compress, so its transfer size alone would not compare).
//
//   node first-page.mjs --kind kai --url http://127.0.0.1:8420 --user alice --password …
//   node first-page.mjs --kind open-webui --url http://127.0.0.1:8080 --user a@b.c --password …
import { gzipSync } from "node:zlib";
import { parseArgs } from "node:util";
import { chromium } from "playwright-core";

const { values: args } = parseArgs({
  options: {
    kind: { type: "string" },
    url: { type: "string" },
    user: { type: "string" },
    password: { type: "string" },
    runs: { type: "string", default: "7" },
    chromium: { type: "string", default: "/usr/bin/chromium" },
  },
});
if (!["kai", "open-webui"].includes(args.kind) || !args.url || !args.user || !args.password) {
  console.error("usage: first-page.mjs --kind kai|open-webui --url URL --user USER --password PASSWORD [--runs N]");
  process.exit(2);
}

/** How each system logs a browser in, and what its chat page's message box is. */
const systems = {
  kai: {
    chatPath: "/chat",
    input: 'textarea[aria-label="Write a message"]',
    // Log in through the page once; the refresh cookie in the saved state signs later runs in.
    async login(browser) {
      const context = await browser.newContext();
      const page = await context.newPage();
      await page.goto(`${args.url}/login`);
      await page.getByLabel("User name").fill(args.user);
      await page.getByLabel("Password").fill(args.password);
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.waitForURL(/\/chat/);
      const state = await context.storageState();
      await context.close();
      return { storageState: state };
    },
  },
  "open-webui": {
    chatPath: "/",
    input: "#chat-input",
    // Open WebUI keeps its token in localStorage; take one from its API.
    async login() {
      const response = await fetch(`${args.url}/api/v1/auths/signin`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ email: args.user, password: args.password }),
      });
      if (!response.ok) throw new Error(`Open WebUI sign-in failed: ${response.status} ${await response.text()}`);
      const { token } = await response.json();
      return { init: (value) => localStorage.setItem("token", value), token };
    },
  },
};

const system = systems[args.kind];
const browser = await chromium.launch({
  executablePath: args.chromium,
  args: ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
});
const session = await system.login(browser);

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
};

const runs = [];
for (let run = 0; run < Number(args.runs); run++) {
  const context = await browser.newContext(session.storageState ? { storageState: session.storageState } : {});
  if (session.init) await context.addInitScript(session.init, session.token);
  const page = await context.newPage();
  const scripts = [];
  page.on("response", async (response) => {
    if (response.request().resourceType() !== "script") return;
    try {
      const body = await response.body();
      const sizes = await response.request().sizes();
      scripts.push({ url: response.url(), raw: body.length, gzip: gzipSync(body).length, sent: sizes.responseBodySize });
    } catch {
      // A script whose body went away (a redirect): nothing to count.
    }
  });
  await page.goto(`${args.url}${system.chatPath}`, { waitUntil: "commit" });
  await page.waitForSelector(system.input, { state: "visible" });
  await page.waitForFunction((selector) => {
    const input = document.querySelector(selector);
    return input && !input.disabled && input.getAttribute("aria-disabled") !== "true";
  }, system.input);
  const interactive = await page.evaluate(() => performance.now());
  // Scripts the page still fetches right after: until the network is idle, or five seconds
  // (Open WebUI keeps a long-polling request open, so its network is never idle).
  await page.waitForLoadState("networkidle", { timeout: 5_000 }).catch(() => {});
  const sum = (key) => scripts.reduce((total, script) => total + script[key], 0);
  runs.push({ interactive, scripts: scripts.length, raw: sum("raw"), gzip: sum("gzip"), sent: sum("sent") });
  // kai's refresh token works once: the next run starts from the one this run was given.
  if (session.storageState) session.storageState = await context.storageState();
  await context.close();
}
await browser.close();

const kb = (bytes) => (bytes / 1024).toFixed(1);
const result = {
  kind: args.kind,
  runs: runs.length,
  interactive_ms_median: Math.round(median(runs.map((run) => run.interactive))),
  interactive_ms_all: runs.map((run) => Math.round(run.interactive)),
  scripts: median(runs.map((run) => run.scripts)),
  js_kib_uncompressed: kb(median(runs.map((run) => run.raw))),
  js_kib_gzip: kb(median(runs.map((run) => run.gzip))),
  js_kib_sent: kb(median(runs.map((run) => run.sent))),
};
console.log(JSON.stringify(result, null, 2));
