import { useQuery } from "@tanstack/react-query";
import { useTranslation } from "react-i18next";

import { api, unwrap } from "@/api/client";
import { queryKeys } from "@/api/keys";
import { PageSection } from "@/components/page/PageSection";
import { QueryState } from "@/components/page/QueryState";

interface EntryFields {
  time?: string;
  actor?: string;
  action?: string;
  target?: string;
  outcome?: string;
}

/** The fields of an entry's canonical JSON that the list shows. */
function fields(entry: string): EntryFields {
  try {
    return JSON.parse(entry) as EntryFields;
  } catch {
    return {};
  }
}

function useAuditEntries() {
  return useQuery({
    queryKey: queryKeys.audit,
    queryFn: () => unwrap(api.GET("/api/v1/audit")),
    select: (page) => [...page.entries].reverse(),
  });
}

export function Component() {
  const { t, i18n } = useTranslation("audit");
  const entries = useAuditEntries();
  const date = new Intl.DateTimeFormat(i18n.language, { dateStyle: "short", timeStyle: "medium" });
  return (
    <PageSection title={t("title")}>
      <QueryState
        isPending={entries.isPending}
        error={entries.error}
        isEmpty={entries.data?.length === 0}
        empty={t("empty")}
      >
        <table className="w-full text-left text-sm">
          <thead className="text-muted-foreground">
            <tr>
              <th className="py-1 pr-2 font-medium">{t("seq")}</th>
              <th className="py-1 pr-2 font-medium">{t("time")}</th>
              <th className="py-1 pr-2 font-medium">{t("actor")}</th>
              <th className="py-1 pr-2 font-medium">{t("action")}</th>
              <th className="py-1 pr-2 font-medium">{t("outcome")}</th>
            </tr>
          </thead>
          <tbody>
            {entries.data?.map((entry) => {
              const { time, actor, action, outcome } = fields(entry.entry);
              return (
                <tr key={entry.seq} className="border-t">
                  <td className="py-1 pr-2 tabular-nums">{entry.seq}</td>
                  <td className="py-1 pr-2">{time ? date.format(new Date(time)) : ""}</td>
                  <td className="py-1 pr-2">{actor}</td>
                  <td className="py-1 pr-2">{action}</td>
                  <td className="py-1 pr-2">{outcome}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </QueryState>
    </PageSection>
  );
}
