import { useId, useState } from "react";
import { useTranslation } from "react-i18next";
import { Link } from "react-router";

import { QueryState } from "@/components/page/QueryState";
import { useFormat } from "./format";
import { useAgents, useRuns, type RunStatus } from "./queries";
import { RunStatusBadge } from "./RunStatusBadge";
import { Select } from "@/components/page/form";

const statuses: RunStatus[] = ["queued", "running", "waiting", "paused", "succeeded", "failed", "cancelled"];

/** Runs, newest first, each linking to its timeline; of one agent when named. */
export function RunList({ agent }: { agent: string | null }) {
  const { t } = useTranslation("agents");
  const format = useFormat();
  const runs = useRuns(agent);
  const agents = useAgents();
  const filterId = useId();
  const [status, setStatus] = useState<RunStatus | "">("");
  const agentName = (id: string) => agents.data?.find((known) => known.id === id)?.name ?? id;
  const shown = runs.data?.filter((run) => status === "" || run.status === status);
  return (
    <div className="flex flex-col gap-2">
      <div className="flex items-center gap-2">
        <label htmlFor={filterId} className="text-muted-foreground text-sm">
          {t("runs.filter")}
        </label>
        <Select
          id={filterId}
          className="w-48"
          value={status}
          onChange={(event) => setStatus(event.target.value as RunStatus | "")}
        >
          <option value="">{t("runs.all")}</option>
          {statuses.map((choice) => (
            <option key={choice} value={choice}>
              {t(`status.${choice}`)}
            </option>
          ))}
        </Select>
      </div>
      <QueryState
        isPending={runs.isPending}
        error={runs.error}
        isEmpty={shown?.length === 0}
        empty={status === "" ? t("runs.none") : t("runs.noneMatching")}
      >
        <ul className="flex flex-col gap-1" aria-label={t("runs.listLabel")}>
          {shown?.map((run) => (
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
    </div>
  );
}
