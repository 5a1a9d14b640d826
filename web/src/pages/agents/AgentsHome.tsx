import { Plus } from "lucide-react";
import { useTranslation } from "react-i18next";
import { Link } from "react-router";

import { PageSection } from "@/components/page/PageSection";
import { QueryState } from "@/components/page/QueryState";
import { Button } from "@/components/ui/button";
import { useAgents } from "./queries";
import { RunList } from "./RunList";

/** `/agents`: the caller's agents and their latest runs. */
export function AgentsHome() {
  const { t } = useTranslation("agents");
  const agents = useAgents();
  return (
    <PageSection title={t("title")}>
      <section aria-labelledby="agents-heading" className="flex flex-col gap-3">
        <div className="flex flex-wrap items-center justify-between gap-2">
          <h2 id="agents-heading" className="text-lg font-medium">
            {t("list.heading", { count: agents.data?.length ?? 0 })}
          </h2>
          <Button asChild size="sm">
            <Link to="/agents/new">
              <Plus aria-hidden />
              {t("list.new")}
            </Link>
          </Button>
        </div>
        <QueryState
          isPending={agents.isPending}
          error={agents.error}
          isEmpty={agents.data?.length === 0}
          empty={t("list.none")}
        >
          <ul className="grid gap-2 sm:grid-cols-2">
            {agents.data?.map((agent) => (
              <li key={agent.id}>
                <Link
                  to={`/agents/${encodeURIComponent(agent.name)}`}
                  className="hover:bg-accent focus-visible:ring-ring/50 flex h-full flex-col gap-1 rounded-lg border p-3 outline-none focus-visible:ring-[3px]"
                >
                  <span className="font-medium">{agent.name}</span>
                  {agent.definition.description && (
                    <span className="text-muted-foreground line-clamp-2 text-sm">
                      {agent.definition.description}
                    </span>
                  )}
                  <span className="text-muted-foreground flex flex-wrap gap-x-3 text-xs">
                    <span>{t("list.tools", { count: agent.definition.tools?.length ?? 0 })}</span>
                    <span>{agent.definition.model ?? t("form.defaultModel")}</span>
                  </span>
                </Link>
              </li>
            ))}
          </ul>
        </QueryState>
      </section>
      <section aria-labelledby="runs-heading" className="flex flex-col gap-3">
        <h2 id="runs-heading" className="text-lg font-medium">
          {t("runs.recent")}
        </h2>
        <RunList agent={null} />
      </section>
    </PageSection>
  );
}
