import { Pencil } from "lucide-react";
import type { ReactNode } from "react";
import { useTranslation } from "react-i18next";
import { Link, useNavigate } from "react-router";

import { PageSection } from "@/components/page/PageSection";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { limitFields } from "./definition";
import { Grants } from "./Grants";
import { useCollections, useDeleteAgent, type Agent } from "./queries";
import { RunList } from "./RunList";
import { Schedules } from "./Schedules";
import { StartRun } from "./StartRun";
import { ConfirmButton, ErrorText } from "@/components/page/form";

function Section({ id, title, children }: { id: string; title: string; children: ReactNode }) {
  return (
    <section aria-labelledby={id} className="flex flex-col gap-3">
      <h2 id={id} className="text-lg font-medium">
        {title}
      </h2>
      {children}
    </section>
  );
}

function Definition({ agent }: { agent: Agent }) {
  const { t } = useTranslation("agents");
  const collections = useCollections();
  const definition = agent.definition;
  const consent = definition.consent ?? {};
  const limits = definition.limits ?? {};
  const collectionName = (id: string) =>
    collections.data?.find((collection) => collection.id === id)?.name ?? id;
  const setLimits = limitFields.filter((field) => limits[field] !== null && limits[field] !== undefined);
  return (
    <dl className="grid gap-x-4 gap-y-2 text-sm sm:grid-cols-[10rem_1fr]">
      <dt className="text-muted-foreground">{t("form.model")}</dt>
      <dd>{definition.model ?? t("form.defaultModel")}</dd>
      <dt className="text-muted-foreground">{t("form.instructions")}</dt>
      <dd>
        {definition.prompt ? (
          <span>{t("detail.fromPrompt", { prompt: definition.prompt })}</span>
        ) : (
          <pre className="bg-muted max-h-48 overflow-auto rounded-md p-2 text-xs whitespace-pre-wrap">
            {definition.instructions}
          </pre>
        )}
      </dd>
      <dt className="text-muted-foreground">{t("form.tools")}</dt>
      <dd>
        {(definition.tools ?? []).length === 0 ? (
          t("detail.noTools")
        ) : (
          <ul className="flex flex-wrap gap-1.5">
            {definition.tools?.map((tool) => (
              <li key={tool}>
                <Badge variant="outline">
                  <code>{tool}</code>
                  {consent[tool] && <span>{t(`policy.${consent[tool]}`)}</span>}
                </Badge>
              </li>
            ))}
          </ul>
        )}
      </dd>
      <dt className="text-muted-foreground">{t("form.mcpServers")}</dt>
      <dd>{(definition.mcp_servers ?? []).join(", ") || t("detail.none")}</dd>
      <dt className="text-muted-foreground">{t("form.collections")}</dt>
      <dd>
        {(definition.collections ?? []).length === 0
          ? t("detail.allCollections")
          : definition.collections?.map(collectionName).join(", ")}
      </dd>
      <dt className="text-muted-foreground">{t("form.memory")}</dt>
      <dd>{definition.memory ? t("detail.yes") : t("detail.no")}</dd>
      <dt className="text-muted-foreground">{t("form.limits")}</dt>
      <dd>
        {setLimits.length === 0 ? (
          t("detail.defaultLimits")
        ) : (
          <ul>
            {setLimits.map((field) => (
              <li key={field}>{t("detail.limit", { limit: t(`limits.${field}`), value: limits[field] })}</li>
            ))}
          </ul>
        )}
      </dd>
    </dl>
  );
}

/** `/agents/<name>`: an agent's definition, standing answers, schedules and runs. */
export function AgentDetail({ agent }: { agent: Agent }) {
  const { t } = useTranslation("agents");
  const navigate = useNavigate();
  const remove = useDeleteAgent();
  const deleteAgent = () =>
    remove.mutate(agent.name, { onSuccess: () => void navigate("/agents", { replace: true }) });
  return (
    <PageSection title={agent.name}>
      <div className="flex flex-col gap-2">
        {agent.definition.description && <p className="text-muted-foreground">{agent.definition.description}</p>}
        <div className="flex flex-wrap gap-2">
          <Button asChild size="sm" variant="outline">
            <Link to={`/agents/${encodeURIComponent(agent.name)}/edit`}>
              <Pencil aria-hidden />
              {t("detail.edit")}
            </Link>
          </Button>
          <ConfirmButton
            label={t("detail.delete")}
            title={t("detail.deleteTitle", { name: agent.name })}
            description={t("detail.deleteDescription")}
            confirm={t("detail.delete")}
            disabled={remove.isPending}
            onConfirm={deleteAgent}
          />
          <Button asChild size="sm" variant="ghost">
            <Link to="/agents">{t("detail.back")}</Link>
          </Button>
        </div>
        <ErrorText error={remove.error} />
      </div>
      <Section id="start-heading" title={t("start.heading")}>
        <StartRun agent={agent.name} />
      </Section>
      <Section id="definition-heading" title={t("detail.definition")}>
        <Definition agent={agent} />
      </Section>
      <Section id="grants-heading" title={t("grants.heading")}>
        <p className="text-muted-foreground text-sm">{t("grants.hint")}</p>
        <Grants agent={agent} />
      </Section>
      <Section id="schedules-heading" title={t("schedules.heading")}>
        <Schedules agent={agent} />
      </Section>
      <Section id="agent-runs-heading" title={t("runs.heading")}>
        <RunList agent={agent.name} />
      </Section>
    </PageSection>
  );
}
