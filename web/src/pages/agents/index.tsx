import { useQuery } from "@tanstack/react-query";
import { useTranslation } from "react-i18next";

import { api, unwrap } from "@/api/client";
import { queryKeys } from "@/api/keys";
import { PageSection } from "@/components/page/PageSection";
import { QueryState } from "@/components/page/QueryState";
import { Badge } from "@/components/ui/badge";

function useAgents() {
  return useQuery({
    queryKey: queryKeys.agents,
    queryFn: () => unwrap(api.GET("/api/v1/agents")),
    select: (list) => list.agents,
  });
}

function useRuns() {
  return useQuery({
    queryKey: queryKeys.runs,
    queryFn: () => unwrap(api.GET("/api/v1/runs")),
    select: (list) => list.runs,
  });
}

export function Component() {
  const { t } = useTranslation("agents");
  const agents = useAgents();
  const runs = useRuns();
  const agentName = (id: string) => agents.data?.find((agent) => agent.id === id)?.name ?? id;
  return (
    <PageSection title={t("title")}>
      <section className="flex flex-col gap-2">
        <h2 className="font-medium">{t("agents", { count: agents.data?.length ?? 0 })}</h2>
        <QueryState
          isPending={agents.isPending}
          error={agents.error}
          isEmpty={agents.data?.length === 0}
          empty={t("noAgents")}
        >
          <ul className="flex flex-col gap-1">
            {agents.data?.map((agent) => (
              <li key={agent.id} className="rounded-md border px-3 py-2">
                <p className="font-medium">{agent.name}</p>
                {agent.definition.description && (
                  <p className="text-muted-foreground text-sm">{agent.definition.description}</p>
                )}
              </li>
            ))}
          </ul>
        </QueryState>
      </section>
      <section className="flex flex-col gap-2">
        <h2 className="font-medium">{t("runs", { count: runs.data?.length ?? 0 })}</h2>
        <QueryState
          isPending={runs.isPending}
          error={runs.error}
          isEmpty={runs.data?.length === 0}
          empty={t("noRuns")}
        >
          <ul className="flex flex-col gap-1">
            {runs.data?.map((run) => (
              <li key={run.id} className="flex items-center gap-2 rounded-md border px-3 py-2">
                <span className="min-w-0 flex-1 truncate">{run.goal}</span>
                <span className="text-muted-foreground text-xs">{agentName(run.agent_id)}</span>
                <Badge variant="outline">{t(`status.${run.status}`)}</Badge>
              </li>
            ))}
          </ul>
        </QueryState>
      </section>
    </PageSection>
  );
}
