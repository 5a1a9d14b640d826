import { useTranslation } from "react-i18next";

import { QueryState } from "@/components/page/QueryState";
import { Badge } from "@/components/ui/badge";
import { ConfirmDelete } from "./ConfirmDelete";
import { isIndexing, useArtifacts, useDeleteArtifact, type IndexState } from "./queries";

function formatSize(bytes: number, language: string) {
  const units = ["B", "kB", "MB", "GB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  const number = new Intl.NumberFormat(language, { maximumFractionDigits: unit === 0 ? 0 : 1 });
  return `${number.format(value)} ${units[unit]}`;
}

const stateVariant: Record<IndexState, "default" | "secondary" | "destructive" | "outline"> = {
  pending: "outline",
  keyword_only: "outline",
  indexed: "secondary",
  failed: "destructive",
  skipped: "outline",
  superseded: "outline",
};

/** The caller's artifacts (in one collection, or all), with their indexing state. */
export function ArtifactList({ collection }: { collection: string | null }) {
  const { t, i18n } = useTranslation("knowledge");
  const artifacts = useArtifacts(collection);
  const remove = useDeleteArtifact();
  return (
    <QueryState
      isPending={artifacts.isPending}
      error={artifacts.error ?? remove.error}
      isEmpty={artifacts.data?.length === 0}
      empty={t("artifacts.empty")}
    >
      <ul className="flex flex-col gap-1" aria-label={t("artifacts.heading")}>
        {artifacts.data?.map((artifact) => {
          const state = artifact.current.index_state;
          return (
            <li key={artifact.id} className="flex flex-wrap items-center gap-2 rounded-md border px-3 py-2">
              <div className="flex min-w-0 flex-1 flex-col">
                <span className="truncate font-medium">{artifact.title}</span>
                <span className="text-muted-foreground text-xs">
                  {artifact.current.mime} · {formatSize(artifact.current.size, i18n.language)} ·{" "}
                  {t("artifacts.version", { version: artifact.current.version })}
                </span>
                {artifact.current.index_error && (
                  <span className="text-destructive text-xs">{artifact.current.index_error}</span>
                )}
              </div>
              <Badge variant={stateVariant[state]} aria-live={isIndexing(state) ? "polite" : undefined}>
                {t(`index.${state}`)}
              </Badge>
              <ConfirmDelete
                label={t("artifacts.delete", { title: artifact.title })}
                pending={remove.isPending}
                onConfirm={() => remove.mutate(artifact.id)}
              />
            </li>
          );
        })}
      </ul>
    </QueryState>
  );
}
