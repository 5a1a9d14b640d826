import { useTranslation } from "react-i18next";

import { useKnowledgeStatus } from "./queries";

/** How far indexing of the caller's knowledge has come. */
export function IndexStatus() {
  const { t } = useTranslation("knowledge");
  const status = useKnowledgeStatus();
  if (!status.data) return null;
  const { indexed, pending, keyword_only, failed, skipped, jobs_queued, jobs_running } = status.data;
  return (
    <section aria-labelledby="knowledge-status" className="rounded-lg border p-3">
      <h2 id="knowledge-status" className="mb-2 text-sm font-medium">
        {t("status.heading")}
      </h2>
      <dl className="grid grid-cols-2 gap-x-4 gap-y-1 text-sm sm:grid-cols-4">
        {(
          [
            ["indexed", indexed],
            ["pending", pending],
            ["keyword_only", keyword_only],
            ["failed", failed],
            ["skipped", skipped],
          ] as const
        ).map(([state, count]) => (
          <div key={state} className="flex justify-between gap-2">
            <dt className="text-muted-foreground">{t(`index.${state}`)}</dt>
            <dd className="tabular-nums">{count}</dd>
          </div>
        ))}
        <div className="flex justify-between gap-2">
          <dt className="text-muted-foreground">{t("status.jobs")}</dt>
          <dd className="tabular-nums">{jobs_queued + jobs_running}</dd>
        </div>
      </dl>
    </section>
  );
}
