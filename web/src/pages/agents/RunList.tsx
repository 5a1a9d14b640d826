import { useTranslation } from "react-i18next";
import { Link } from "react-router";

import { QueryState } from "@/components/page/QueryState";
import { useFormat } from "./format";
import { useAgents, useRuns } from "./queries";
import { RunStatusBadge } from "./RunStatusBadge";

/** Runs, newest first, each linking to its timeline; of one agent when named. */
export function RunList({ agent }: { agent: string | null }) {
  const { t } = useTranslation("agents");
  const format = useFormat();
  const runs = useRuns(agent);
  const agents = useAgents();
  const agentName = (id: string) => agents.data?.find((known) => known.id === id)?.name ?? id;
  return (
    <QueryState
      isPending={runs.isPending}
      error={runs.error}
      isEmpty={runs.data?.length === 0}
      empty={t("runs.none")}
    >
      <ul className="flex flex-col gap-1" aria-label={t("runs.listLabel")}>
        {runs.data?.map((run) => (
          <li key={run.id}>
            <Link
              to={`/agents/runs/${run.id}`}
              className="hover:bg-accent focus-visible:ring-ring/50 flex flex-wrap items-center gap-x-3 gap-y-1 rounded-md border px-3 py-2 outline-none focus-visible:ring-[3px]"
            >
              <span className="min-w-0 flex-1 truncate">{run.goal}</span>
              {agent === null && (
                <span className="text-muted-foreground text-xs">{agentName(run.agent_id)}</span>
              )}
              <time dateTime={run.created_at} className="text-muted-foreground text-xs">
                {format.dateTime(run.created_at)}
              </time>
              <RunStatusBadge status={run.status} />
            </Link>
          </li>
        ))}
      </ul>
    </QueryState>
  );
}
