import { useTranslation } from "react-i18next";

import { useSources } from "./queries";

/** The passages of the user's knowledge an answer drew on, numbered as the answer cites them. */
export function Sources({
  question,
  collections,
}: {
  question: string | null;
  collections: string[] | null;
}) {
  const { t } = useTranslation("chat");
  const { data: hits } = useSources(question, collections);
  if (!hits?.length) return null;
  return (
    <details className="text-sm">
      <summary className="text-muted-foreground cursor-pointer text-xs">
        {t("sources.summary", { count: hits.length })}
      </summary>
      <ol className="mt-2 flex flex-col gap-2">
        {hits.map((hit, index) => (
          <li key={`${hit.item_id}:${hit.version}:${index}`} className="rounded-md border p-2">
            <p className="font-medium">
              {t("sources.item", { number: index + 1, title: hit.title })}
            </p>
            {hit.heading && <p className="text-muted-foreground text-xs">{hit.heading}</p>}
            <p className="text-muted-foreground mt-1 line-clamp-4 text-xs whitespace-pre-wrap">
              {hit.passage.text}
            </p>
          </li>
        ))}
      </ol>
    </details>
  );
}
