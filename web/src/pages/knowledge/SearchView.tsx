import { useForm } from "react-hook-form";
import { useTranslation } from "react-i18next";
import { Link, useSearchParams } from "react-router";

import { Button } from "@/components/ui/button";
import { Input } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import { highlightSegments } from "./highlight";
import { useSearch, type SearchHit, type SearchMode } from "./queries";

const MODES: SearchMode[] = ["hybrid", "keyword", "semantic"];

function isMode(text: string | null): text is SearchMode {
  return MODES.some((mode) => mode === text);
}

/** The passage with the words that matched in `<mark>`s: text nodes only, never HTML. */
export function Highlighted({ text, ranges }: { text: string; ranges: number[][] }) {
  return (
    <>
      {highlightSegments(text, ranges).map((segment, i) =>
        segment.match ? (
          <mark key={i} className="bg-primary/15 text-foreground rounded-sm px-0.5">
            {segment.text}
          </mark>
        ) : (
          <span key={i}>{segment.text}</span>
        ),
      )}
    </>
  );
}

function HitView({ hit }: { hit: SearchHit }) {
  const { t } = useTranslation("knowledge");
  const title =
    hit.kind === "note" ? (
      <Link to={`/knowledge/notes/${hit.item_id}`} className="font-medium underline-offset-2 hover:underline">
        {hit.title}
      </Link>
    ) : (
      <span className="font-medium">{hit.title}</span>
    );
  return (
    <li className="flex flex-col gap-1 rounded-md border px-3 py-2">
      <div className="flex flex-wrap items-baseline gap-2">
        <h3 className="text-base">{title}</h3>
        <span className="text-muted-foreground text-xs">
          {t(hit.kind === "note" ? "search.kindNote" : "search.kindArtifact")} ·{" "}
          {t("search.score", { score: hit.score.toFixed(3) })}
        </span>
      </div>
      {hit.heading && <p className="text-muted-foreground text-xs">{hit.heading}</p>}
      <p className="text-sm whitespace-pre-wrap">
        <Highlighted text={hit.passage.text} ranges={hit.passage.highlights} />
      </p>
    </li>
  );
}

export function SearchView() {
  const { t } = useTranslation("knowledge");
  const [params, setParams] = useSearchParams();
  const query = params.get("q") ?? "";
  const modeParam = params.get("mode");
  const mode: SearchMode = isMode(modeParam) ? modeParam : "hybrid";
  const { register, handleSubmit } = useForm({ values: { q: query, mode } });
  const search = useSearch(query, mode);

  const submit = handleSubmit((values) => {
    const next = new URLSearchParams();
    if (values.q.trim()) next.set("q", values.q.trim());
    next.set("mode", values.mode);
    setParams(next);
  });

  const hits = search.data?.hits ?? [];
  return (
    <section aria-labelledby="search-heading" className="flex flex-col gap-4">
      <h2 id="search-heading" className="text-lg font-medium">
        {t("search.heading")}
      </h2>
      <form role="search" onSubmit={(event) => void submit(event)} className="flex flex-col gap-3">
        <div className="flex flex-col gap-1.5">
          <Label htmlFor="search-query">{t("search.query")}</Label>
          <div className="flex gap-2">
            <Input id="search-query" type="search" {...register("q", { required: true })} />
            <Button type="submit">{t("search.submit")}</Button>
          </div>
        </div>
        <fieldset className="flex flex-wrap items-center gap-4">
          <legend className="mb-1 text-sm font-medium">{t("search.mode")}</legend>
          {MODES.map((value) => (
            <label key={value} className="flex items-center gap-1.5 text-sm">
              <input type="radio" value={value} className="accent-primary" {...register("mode")} />
              {t(`search.modes.${value}`)}
            </label>
          ))}
        </fieldset>
      </form>
      {search.data?.degraded && (
        <p role="status" className="text-muted-foreground text-sm">
          {t("search.degraded", { reason: search.data.degraded })}
        </p>
      )}
      {search.error && (
        <p role="alert" className="text-destructive text-sm">
          {search.error.message}
        </p>
      )}
      {query && search.isFetching && !search.data && (
        <p className="text-muted-foreground text-sm">{t("search.searching")}</p>
      )}
      {query && search.data && (
        <div className="flex flex-col gap-2">
          <p role="status" className="text-muted-foreground text-sm">
            {t("search.results", { count: hits.length })}
          </p>
          <ul className="flex flex-col gap-2">
            {hits.map((hit) => (
              <HitView key={`${hit.item_id}-${hit.version}-${hit.passage.text.slice(0, 32)}`} hit={hit} />
            ))}
          </ul>
        </div>
      )}
    </section>
  );
}
