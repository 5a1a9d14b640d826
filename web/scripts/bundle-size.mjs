// Sums the gzipped JavaScript a visit to the login page and then the chat page downloads, from
// the Vite manifest of a build, and fails above the budget. Chunks those pages import lazily
// (the Markdown renderer, the highlighter and its languages) are reported apart.
import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";

const BUDGET_KB = 200;
const manifest = JSON.parse(readFileSync("dist/.vite/manifest.json", "utf8"));

function gzipKb(file) {
  return gzipSync(readFileSync(`dist/${file}`), { level: 9 }).length / 1024;
}

function staticClosure(keys, seen = new Set()) {
  for (const key of keys) {
    if (seen.has(key)) continue;
    seen.add(key);
    staticClosure(manifest[key].imports ?? [], seen);
  }
  return seen;
}

const firstPage = staticClosure(["index.html", "src/pages/login/index.tsx", "src/pages/chat/index.tsx"]);
const locales = Object.keys(manifest).filter((key) => /locales\/en\/(common|auth|chat)\.json$/.test(key));
for (const key of locales) firstPage.add(key);
const lazy = staticClosure(["src/pages/chat/MarkdownRenderer.tsx"]);
for (const key of firstPage) lazy.delete(key);

const total = (keys) => [...keys].reduce((sum, key) => sum + gzipKb(manifest[key].file), 0);
const first = total(firstPage);
console.log(`login + chat pages: ${first.toFixed(1)} KB gzipped (budget ${BUDGET_KB} KB)`);
console.log(`Markdown renderer, loaded with the first answer shown: ${total(lazy).toFixed(1)} KB gzipped`);
if (first > BUDGET_KB) process.exit(1);
