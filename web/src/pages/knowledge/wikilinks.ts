/** An unfinished `[[link` before the caret: where its title starts, and what is typed so far. */
export interface LinkQuery {
  /** Index just after the `[[`. */
  start: number;
  query: string;
}

/**
 * The `[[title` being typed at `caret`, if any: the nearest `[[` before the caret with no `]]`,
 * `|`, `#` or line break between (after those, the title is finished).
 */
export function linkQueryAt(text: string, caret: number): LinkQuery | null {
  const before = text.slice(0, caret);
  const open = before.lastIndexOf("[[");
  if (open < 0) return null;
  const query = before.slice(open + 2);
  if (/\]\]|[|#\n]/.test(query)) return null;
  return { start: open + 2, query };
}

/** Inserts `title]]` for the link being typed, replacing what was typed; the new text and caret. */
export function completeLink(
  text: string,
  link: LinkQuery,
  caret: number,
  title: string,
): { text: string; caret: number } {
  const after = text.slice(caret);
  // Keep a `]]` the user (or an editor) already put after the caret.
  const closing = after.startsWith("]]") ? "" : "]]";
  const inserted = `${title}${closing}`;
  const next = text.slice(0, link.start) + inserted + after;
  return { text: next, caret: link.start + inserted.length + (closing ? 0 : 2) };
}

/** Titles that match what is typed: those starting with it first, then those containing it. */
export function suggestTitles(titles: string[], query: string, limit = 8): string[] {
  const needle = query.trim().toLowerCase();
  const starts: string[] = [];
  const contains: string[] = [];
  for (const title of titles) {
    const lower = title.toLowerCase();
    if (lower.startsWith(needle)) starts.push(title);
    else if (lower.includes(needle)) contains.push(title);
  }
  return [...starts, ...contains].slice(0, limit);
}

/**
 * Markdown with `[[Title]]`, `[[Title|text]]` and `[[Title#Heading]]` turned into ordinary links
 * to `#note:<title>` (what the preview renders as a link to that note), and `[[artifact:ID]]` to
 * `#artifact:<id>`. Code spans and fenced blocks are left alone, as kai does.
 */
export function wikiLinksToMarkdown(markdown: string): string {
  const escape = (text: string) => text.replace(/([\\[\]()])/g, "\\$1");
  const href = (text: string) =>
    encodeURIComponent(text).replace(/\(/g, "%28").replace(/\)/g, "%29");
  const convert = (text: string) =>
    text.replace(/\[\[([^[\]\n]+?)\]\]/g, (_whole, inner: string) => {
      const [target = "", shown] = inner.split("|");
      const [title = "", heading] = target.split("#");
      const label = shown?.trim() || (heading ? `${title.trim()} › ${heading.trim()}` : title.trim());
      if (title.startsWith("artifact:")) {
        const id = title.slice("artifact:".length).trim();
        return `[${escape(shown?.trim() || id)}](#artifact:${href(id)})`;
      }
      return `[${escape(label)}](#note:${href(title.trim())})`;
    });
  // Split off fenced blocks, then inline code spans, converting only what lies outside them.
  return markdown
    .split(/(^```[\s\S]*?^```[^\n]*$|^~~~[\s\S]*?^~~~[^\n]*$)/m)
    .map((part, i) =>
      i % 2 === 1
        ? part
        : part
            .split(/(`+[^`]*`+)/)
            .map((piece, j) => (j % 2 === 1 ? piece : convert(piece)))
            .join(""),
    )
    .join("");
}
