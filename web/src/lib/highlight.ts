import type { HLJSApi, LanguageFn } from "highlight.js";

type Loader = () => Promise<{ default: LanguageFn }>;

/** The languages the highlighter knows, each fetched the first time a code block uses it. */
const loaders: Record<string, Loader> = {
  bash: () => import("highlight.js/lib/languages/bash"),
  c: () => import("highlight.js/lib/languages/c"),
  cpp: () => import("highlight.js/lib/languages/cpp"),
  css: () => import("highlight.js/lib/languages/css"),
  diff: () => import("highlight.js/lib/languages/diff"),
  go: () => import("highlight.js/lib/languages/go"),
  java: () => import("highlight.js/lib/languages/java"),
  javascript: () => import("highlight.js/lib/languages/javascript"),
  json: () => import("highlight.js/lib/languages/json"),
  markdown: () => import("highlight.js/lib/languages/markdown"),
  python: () => import("highlight.js/lib/languages/python"),
  rust: () => import("highlight.js/lib/languages/rust"),
  sql: () => import("highlight.js/lib/languages/sql"),
  typescript: () => import("highlight.js/lib/languages/typescript"),
  xml: () => import("highlight.js/lib/languages/xml"),
  yaml: () => import("highlight.js/lib/languages/yaml"),
};

const aliases: Record<string, string> = {
  sh: "bash",
  shell: "bash",
  zsh: "bash",
  "c++": "cpp",
  golang: "go",
  js: "javascript",
  jsx: "javascript",
  md: "markdown",
  py: "python",
  rs: "rust",
  ts: "typescript",
  tsx: "typescript",
  html: "xml",
  svg: "xml",
  yml: "yaml",
  toml: "yaml",
};

let core: Promise<HLJSApi> | null = null;

/** Highlighted HTML of the code (highlight.js escapes the text), or null for a language it lacks. */
export async function highlight(code: string, language: string): Promise<string | null> {
  const name = aliases[language.toLowerCase()] ?? language.toLowerCase();
  const load = loaders[name];
  if (!load) return null;
  core ??= import("highlight.js/lib/core").then((module) => module.default);
  const hljs = await core;
  if (!hljs.getLanguage(name)) hljs.registerLanguage(name, (await load()).default);
  return hljs.highlight(code, { language: name, ignoreIllegals: true }).value;
}
