import type { ReactNode } from "react";
import ReactMarkdown, { type Components } from "react-markdown";
import { Link } from "react-router";
import remarkGfm from "remark-gfm";

import { wikiLinksToMarkdown } from "./wikilinks";

export interface PreviewProps {
  text: string;
  /** Note ids by lower-cased title, to link `[[Title]]` to its note. */
  noteIds: Map<string, string>;
  /** What a link to a note no note has yet says (for screen readers too). */
  missingLabel: (title: string) => string;
}

function noteLink(href: string, children: ReactNode, props: PreviewProps) {
  const title = decodeURIComponent(href.slice("#note:".length));
  const id = props.noteIds.get(title.toLowerCase());
  if (!id) {
    return (
      <span className="text-muted-foreground underline decoration-dashed" title={props.missingLabel(title)}>
        {children}
      </span>
    );
  }
  return <Link to={`/knowledge/notes/${id}`}>{children}</Link>;
}

/** A note's Markdown rendered (GitHub's extensions, no raw HTML), its `[[links]]` as links. */
export default function NotePreviewRenderer(props: PreviewProps) {
  const components: Components = {
    // The preview sits under the page's and the editor's headings: its own start at h3.
    h1: ({ children }) => <h3 className="mt-4 mb-2 text-xl font-semibold">{children}</h3>,
    h2: ({ children }) => <h4 className="mt-4 mb-2 text-lg font-semibold">{children}</h4>,
    h3: ({ children }) => <h5 className="mt-3 mb-1 font-semibold">{children}</h5>,
    h4: ({ children }) => <h6 className="mt-3 mb-1 font-medium">{children}</h6>,
    h5: ({ children }) => <h6 className="mt-3 mb-1 font-medium">{children}</h6>,
    h6: ({ children }) => <h6 className="mt-3 mb-1 font-medium">{children}</h6>,
    a: ({ href = "", children }) => {
      if (href.startsWith("#note:")) return noteLink(href, children, props);
      if (href.startsWith("#artifact:")) return <span className="underline decoration-dotted">{children}</span>;
      return (
        <a href={href} target="_blank" rel="noopener noreferrer">
          {children}
        </a>
      );
    },
  };
  return (
    <div className="markdown">
      <ReactMarkdown remarkPlugins={[remarkGfm]} components={components}>
        {wikiLinksToMarkdown(props.text)}
      </ReactMarkdown>
    </div>
  );
}
