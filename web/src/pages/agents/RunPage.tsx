import { useTranslation } from "react-i18next";
import { Link } from "react-router";

import { PageSection } from "@/components/page/PageSection";
import { QueryState } from "@/components/page/QueryState";
import { Button } from "@/components/ui/button";
import { useConnectionStore, useRoom } from "@/realtime/connection";
import { useFormat } from "./format";
import {
  isFinished,
  useAgents,
  useRun,
  useRunAction,
  useRunEvents,
  type Run,
  type RunAction,
} from "./queries";
import { RunRequests } from "./RunRequests";
import { RunStatusBadge } from "./RunStatusBadge";
import { RunTimeline } from "./RunTimeline";
import { ConfirmButton, ErrorText } from "@/components/page/form";

/** How often the timeline is fetched while the real-time channel is down and the run goes on. */
const POLL_MS = 5000;

function Controls({ run }: { run: Run }) {
  const { t } = useTranslation("agents");
  const action = useRunAction(run.id);
  const act = (which: RunAction) => action.mutate(which);
  if (isFinished(run.status)) return null;
  return (
    <div className="flex flex-col gap-2">
      <div className="flex flex-wrap gap-2" role="group" aria-label={t("run.controls")}>
        {run.status === "paused" ? (
          <Button size="sm" disabled={action.isPending} onClick={() => act("resume")}>
            {t("run.resume")}
          </Button>
        ) : (
          <Button size="sm" variant="secondary" disabled={action.isPending} onClick={() => act("pause")}>
            {t("run.pause")}
          </Button>
        )}
        <ConfirmButton
          label={t("run.cancel")}
          title={t("run.cancelTitle")}
          description={t("run.cancelDescription")}
          confirm={t("run.cancelConfirm")}
          disabled={action.isPending}
          onConfirm={() => act("cancel")}
        />
      </div>
      <ErrorText error={action.error} />
    </div>
  );
}

function Summary({ run }: { run: Run }) {
  const { t } = useTranslation("agents");
  const format = useFormat();
  const usage = run.usage;
  return (
    <dl className="grid grid-cols-2 gap-x-4 gap-y-1 text-sm sm:grid-cols-4">
      <div>
        <dt className="text-muted-foreground text-xs">{t("run.created")}</dt>
        <dd>{format.dateTime(run.created_at)}</dd>
      </div>
      <div>
        <dt className="text-muted-foreground text-xs">{t("run.steps")}</dt>
        <dd>{format.number(usage.steps)}</dd>
      </div>
      <div>
        <dt className="text-muted-foreground text-xs">{t("run.modelCalls")}</dt>
        <dd>{format.number(usage.model_calls)}</dd>
      </div>
      <div>
        <dt className="text-muted-foreground text-xs">{t("run.toolCalls")}</dt>
        <dd>{format.number(usage.tool_calls)}</dd>
      </div>
      <div>
        <dt className="text-muted-foreground text-xs">{t("run.tokens")}</dt>
        <dd>{format.number(usage.input_tokens + usage.output_tokens)}</dd>
      </div>
      <div>
        <dt className="text-muted-foreground text-xs">{t("run.cost")}</dt>
        <dd>{format.money(usage.cost_usd)}</dd>
      </div>
      <div>
        <dt className="text-muted-foreground text-xs">{t("run.duration")}</dt>
        <dd>{t("run.seconds", { value: format.number(Math.round(usage.running_ms / 100) / 10) })}</dd>
      </div>
      {run.finished_at && (
        <div>
          <dt className="text-muted-foreground text-xs">{t("run.finished")}</dt>
          <dd>{format.dateTime(run.finished_at)}</dd>
        </div>
      )}
    </dl>
  );
}

function Plan({ run }: { run: Run }) {
  const { t } = useTranslation("agents");
  if (run.plan.length === 0) return null;
  return (
    <section aria-labelledby="plan-heading" className="flex flex-col gap-2">
      <h2 id="plan-heading" className="text-lg font-medium">
        {t("run.plan")}
      </h2>
      <ol className="list-decimal pl-6 text-sm">
        {run.plan.map((title, index) => {
          const number = index + 1;
          const current = number === run.step && !isFinished(run.status);
          return (
            <li
              key={`${number}-${title}`}
              aria-current={current ? "step" : undefined}
              className={current ? "font-medium" : number < run.step ? "text-muted-foreground" : undefined}
            >
              {title}
            </li>
          );
        })}
      </ol>
    </section>
  );
}

function RunView({ run }: { run: Run }) {
  const { t } = useTranslation("agents");
  const agents = useAgents();
  const live = useConnectionStore((state) => state.status === "ready");
  const finished = isFinished(run.status);
  useRoom(finished ? null : `run:${run.id}`);
  const events = useRunEvents(run.id, !live && !finished ? POLL_MS : false);
  const agent = agents.data?.find((known) => known.id === run.agent_id);
  return (
    <PageSection title={t("run.title", { agent: agent?.name ?? t("run.unknownAgent") })}>
      <div className="flex flex-col gap-3">
        <p className="text-base">{run.goal}</p>
        <div className="flex flex-wrap items-center gap-3">
          <span className="sr-only">{t("run.status")}</span>
          <span aria-live="polite">
            <RunStatusBadge status={run.status} />
          </span>
          {agent && (
            <Link to={`/agents/${encodeURIComponent(agent.name)}`} className="text-sm underline-offset-4 hover:underline">
              {t("run.agentLink", { agent: agent.name })}
            </Link>
          )}
        </div>
        <Controls run={run} />
        <Summary run={run} />
        {run.answer && (
          <section aria-labelledby="answer-heading" className="flex flex-col gap-1">
            <h2 id="answer-heading" className="text-lg font-medium">
              {t("run.answer")}
            </h2>
            <p className="rounded-md border p-3 text-sm whitespace-pre-wrap">{run.answer}</p>
          </section>
        )}
        {run.error && (
          <p role="alert" className="text-destructive text-sm">
            {t("run.error", { error: run.error })}
          </p>
        )}
      </div>
      <RunRequests runId={run.id} />
      <Plan run={run} />
      <section aria-labelledby="timeline-heading" className="flex flex-col gap-2">
        <h2 id="timeline-heading" className="text-lg font-medium">
          {t("timeline.heading")}
        </h2>
        <QueryState isPending={events.isPending} error={events.error} isEmpty={false} empty="">
          <RunTimeline events={events.data ?? []} />
        </QueryState>
      </section>
    </PageSection>
  );
}

/** `/agents/runs/<id>`: a run, its timeline live, its pending requests, pause, resume, cancel. */
export function RunPage({ runId }: { runId: string }) {
  const { t } = useTranslation("agents");
  const run = useRun(runId);
  if (!run.data) {
    return (
      <PageSection title={t("run.loadingTitle")}>
        <QueryState isPending={run.isPending} error={run.error} isEmpty={false} empty="">
          {null}
        </QueryState>
      </PageSection>
    );
  }
  return <RunView run={run.data} />;
}
