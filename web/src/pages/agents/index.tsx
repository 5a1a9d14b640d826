import { useTranslation } from "react-i18next";
import { Route, Routes, useParams } from "react-router";

import { PageSection } from "@/components/page/PageSection";
import { QueryState } from "@/components/page/QueryState";
import { AgentDetail } from "./AgentDetail";
import { AgentForm } from "./AgentForm";
import { AgentsHome } from "./AgentsHome";
import { useAgent } from "./queries";
import { RunPage } from "./RunPage";

function NewAgent() {
  const { t } = useTranslation("agents");
  return (
    <PageSection title={t("form.newTitle")}>
      <AgentForm agent={null} />
    </PageSection>
  );
}

/** Loads the agent the URL names, then shows it (or its form). */
function WithAgent({ edit }: { edit: boolean }) {
  const { t } = useTranslation("agents");
  const { agentName = "" } = useParams();
  const agent = useAgent(agentName);
  if (!agent.data) {
    return (
      <PageSection title={agentName}>
        <QueryState isPending={agent.isPending} error={agent.error} isEmpty={false} empty="">
          {null}
        </QueryState>
      </PageSection>
    );
  }
  if (!edit) return <AgentDetail key={agent.data.id} agent={agent.data} />;
  return (
    <PageSection title={t("form.editTitle", { name: agent.data.name })}>
      <AgentForm key={agent.data.updated_at} agent={agent.data} />
    </PageSection>
  );
}

function Run() {
  const { runId = "" } = useParams();
  return <RunPage key={runId} runId={runId} />;
}

/** The agents section: its own routes under `/agents`. */
export function Component() {
  return (
    <Routes>
      <Route index element={<AgentsHome />} />
      <Route path="new" element={<NewAgent />} />
      <Route path="runs/:runId" element={<Run />} />
      <Route path=":agentName" element={<WithAgent edit={false} />} />
      <Route path=":agentName/edit" element={<WithAgent edit />} />
    </Routes>
  );
}
