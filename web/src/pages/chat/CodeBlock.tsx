import { Check, Copy } from "lucide-react";
import { useEffect, useState } from "react";
import { useTranslation } from "react-i18next";

import { Button } from "@/components/ui/button";
import { highlight } from "@/lib/highlight";

export function CodeBlock({ code, language }: { code: string; language: string | null }) {
  const { t } = useTranslation("chat");
  const [html, setHtml] = useState<string | null>(null);
  const [copied, setCopied] = useState(false);

  useEffect(() => {
    let current = true;
    setHtml(null);
    if (language) {
      void highlight(code, language).then((highlighted) => {
        if (current) setHtml(highlighted);
      });
    }
    return () => {
      current = false;
    };
  }, [code, language]);

  const copy = () => {
    void navigator.clipboard.writeText(code).then(() => {
      setCopied(true);
      setTimeout(() => setCopied(false), 1500);
    });
  };

  return (
    <div className="group bg-muted relative my-2 rounded-md border">
      <div className="text-muted-foreground flex items-center justify-between border-b px-3 py-1 text-xs">
        <span>{language ?? t("code")}</span>
        <Button variant="ghost" size="sm" onClick={copy} aria-label={t("copyCode")}>
          {copied ? <Check aria-hidden /> : <Copy aria-hidden />}
        </Button>
      </div>
      <pre className="overflow-x-auto p-3 text-sm">
        {html === null ? (
          <code>{code}</code>
        ) : (
          <code className="hljs" dangerouslySetInnerHTML={{ __html: html }} />
        )}
      </pre>
    </div>
  );
}
