import { useState } from "react";
import { useTranslation } from "react-i18next";
import { useSearchParams } from "react-router";

import { PageSection } from "@/components/page/PageSection";
import { QueryState } from "@/components/page/QueryState";
import { Button } from "@/components/ui/button";
import { CheckpointPanel } from "./CheckpointPanel";
import { EntryTable } from "./EntryTable";
import { FilterForm } from "./FilterForm";
import { useAuditPage, type AuditFilters } from "./queries";
import { trusted, useLatestCheckpoint } from "./useCheckpoint";

const FILTER_NAMES = ["actor", "action", "since", "until"] as const;

function filtersFrom(params: URLSearchParams): AuditFilters {
  return {
    actor: params.get("actor") ?? "",
    action: params.get("action") ?? "",
    since: params.get("since") ?? "",
    until: params.get("until") ?? "",
  };
}

/** The audit log: filtered and paged, each entry checkable against the signed checkpoint. */
export function Component() {
  const { t } = useTranslation("audit");
  const [params, setParams] = useSearchParams();
  const filters = filtersFrom(params);
  // The cursors of the pages before this one, for going back (the API pages forwards only).
  const [cursors, setCursors] = useState<(number | null)[]>([]);
  const [after, setAfter] = useState<number | null>(null);
  const page = useAuditPage(filters, after);
  const checkpointState = useLatestCheckpoint();
  const checkpoint = trusted(checkpointState);

  const apply = (next: AuditFilters) => {
    const search = new URLSearchParams();
    for (const name of FILTER_NAMES) if (next[name]) search.set(name, next[name]);
    setParams(search);
    setCursors([]);
    setAfter(null);
  };

  const nextAfter = page.data?.next_after ?? null;
  const entries = page.data?.entries ?? [];
  const pageNumber = cursors.length + 1;

  return (
    <PageSection title={t("title")}>
      <section aria-labelledby="audit-checkpoint" className="flex flex-col gap-2">
        <h2 id="audit-checkpoint" className="text-lg font-medium">
          {t("checkpoint.heading")}
        </h2>
        <p className="text-muted-foreground text-sm">{t("checkpoint.explain")}</p>
        <CheckpointPanel state={checkpointState} />
      </section>

      <section aria-labelledby="audit-entries" className="flex flex-col gap-4">
        <h2 id="audit-entries" className="text-lg font-medium">
          {t("entries")}
        </h2>
        <FilterForm filters={filters} onApply={apply} />
        <QueryState
          isPending={page.isPending}
          error={page.error}
          isEmpty={entries.length === 0}
          empty={t("empty")}
        >
          <EntryTable
            key={checkpoint ? `${checkpoint.size}` : "none"}
            entries={entries}
            checkpoint={checkpoint}
          />
        </QueryState>
        <nav aria-label={t("pagination.label")} className="flex items-center gap-2">
          <Button
            variant="outline"
            size="sm"
            disabled={cursors.length === 0}
            onClick={() => {
              setAfter(cursors.at(-1) ?? null);
              setCursors(cursors.slice(0, -1));
            }}
          >
            {t("pagination.previous")}
          </Button>
          <span className="text-muted-foreground text-sm" aria-live="polite">
            {t("pagination.page", { page: pageNumber })}
          </span>
          <Button
            variant="outline"
            size="sm"
            disabled={nextAfter === null || page.isPlaceholderData}
            onClick={() => {
              setCursors([...cursors, after]);
              setAfter(nextAfter);
            }}
          >
            {t("pagination.next")}
          </Button>
        </nav>
      </section>
    </PageSection>
  );
}
