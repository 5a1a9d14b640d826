import { useTranslation } from "react-i18next";

import type { AnswerMeta } from "@/stores/turns";
import { useSources } from "./queries";

interface Passage {
  key: string;
  title: string;
  heading: string | null | undefined;
  text: string;
}

/**
 * The passages of the user's knowledge an answer drew on, numbered as the answer cites them:
 * those `chat.finished` listed, or, for an answer whose list this page never saw (stored
 * before a reload), the same search again.
 */
export function Sources({ meta }: { meta: AnswerMeta }) {
  const { t } = useTranslation("chat");
  const searched = useSources(meta.sources ? null : meta.question, meta.collections);
  const passages: Passage[] = meta.sources
    ? meta.sources.map((source) => ({
        key: `${source.item_id}:${source.version}:${source.number}`,
        title: source.title,
        heading: source.heading,
        text: source.text,
      }))
    : (searched.data ?? []).map((hit, index) => ({
        key: `${hit.item_id}:${hit.version}:${index}`,
        title: hit.title,
        heading: hit.heading,
        text: hit.passage.text,
      }));
  if (!passages.length) return null;
  return (
    <details className="text-sm">
      <summary className="text-muted-foreground cursor-pointer text-xs">
        {t("sources.summary", { count: passages.length })}
      </summary>
      <ol className="mt-2 flex flex-col gap-2">
        {passages.map((passage, index) => (
          <li key={passage.key} className="rounded-md border p-2">
            <p className="font-medium">{t("sources.item", { number: index + 1, title: passage.title })}</p>
            {passage.heading && <p className="text-muted-foreground text-xs">{passage.heading}</p>}
            <p className="text-muted-foreground mt-1 line-clamp-4 text-xs whitespace-pre-wrap">{passage.text}</p>
          </li>
        ))}
      </ol>
    </details>
  );
}
