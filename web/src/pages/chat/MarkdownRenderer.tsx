import ReactMarkdown, { type Components } from "react-markdown";
import remarkGfm from "remark-gfm";

import { CodeBlock } from "./CodeBlock";

const components: Components = {
  pre: ({ children }) => <>{children}</>,
  code: ({ className, children }) => {
    const language = /language-([\w+#-]+)/.exec(className ?? "")?.[1] ?? null;
    const text = String(children);
    if (!language && !text.includes("\n")) return <code className="inline-code">{children}</code>;
    return <CodeBlock code={text.replace(/\n$/, "")} language={language} />;
  },
  a: ({ href, children }) => (
    <a href={href} target="_blank" rel="noopener noreferrer">
      {children}
    </a>
  ),
};

/** Markdown with GitHub's extensions; loaded with the first answer shown. */
export default function MarkdownRenderer({ text }: { text: string }) {
  return (
    <div className="markdown">
      <ReactMarkdown remarkPlugins={[remarkGfm]} components={components}>
        {text}
      </ReactMarkdown>
    </div>
  );
}
