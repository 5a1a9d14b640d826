import { useState } from "react";
import { useTranslation } from "react-i18next";

import { Button } from "@/components/ui/button";
import { Input } from "@/components/ui/input";
import {
  useDecide,
  usePendingRequests,
  type Decision,
  type RunRequest,
} from "@/components/consent/useConsentRequests";
import { useFormat } from "./format";
import { ErrorText } from "@/components/page/form";

function PendingRequest({ request }: { request: RunRequest }) {
  const { t } = useTranslation("agents");
  const format = useFormat();
  const decide = useDecide();
  const [answer, setAnswer] = useState("");
  const question = request.kind === "question";
  const send = (decision: Decision) => decide.mutate({ id: request.id, decision });
  const headingId = `request-${request.id}`;
  const answerId = `request-answer-${request.id}`;
  return (
    <li aria-labelledby={headingId} className="border-primary/40 bg-accent/40 flex flex-col gap-2 rounded-lg border p-3">
      <h3 id={headingId} className="text-sm font-medium">
        {t(`requests.${request.kind}`, { tool: request.tool })}
      </h3>
      <pre className="bg-background max-h-48 overflow-auto rounded-md p-2 text-xs whitespace-pre-wrap">
        {JSON.stringify(request.details, null, 2)}
      </pre>
      <p className="text-muted-foreground text-xs">
        {t("requests.expires", { when: format.dateTime(request.expires_at) })}
      </p>
      {question && (
        <div className="flex flex-col gap-1">
          <label htmlFor={answerId} className="text-sm font-medium">
            {t("requests.answer")}
          </label>
          <Input id={answerId} value={answer} onChange={(event) => setAnswer(event.target.value)} />
        </div>
      )}
      <ErrorText error={decide.error} />
      <div className="flex flex-wrap gap-2">
        <Button
          size="sm"
          disabled={decide.isPending || (question && answer.trim() === "")}
          onClick={() => send(question ? { approve: true, answer: answer.trim() } : { approve: true })}
        >
          {question ? t("requests.reply") : t("requests.approve")}
        </Button>
        {request.kind === "consent" && (
          <Button
            size="sm"
            variant="secondary"
            disabled={decide.isPending}
            onClick={() => send({ approve: true, remember: true })}
          >
            {t("requests.always")}
          </Button>
        )}
        <Button size="sm" variant="outline" disabled={decide.isPending} onClick={() => send({ approve: false })}>
          {t("requests.deny")}
        </Button>
        {request.kind === "consent" && (
          <Button
            size="sm"
            variant="outline"
            disabled={decide.isPending}
            onClick={() => send({ approve: false, remember: true })}
          >
            {t("requests.never")}
          </Button>
        )}
      </div>
    </li>
  );
}

/** What a run waits on its owner for, answered here (the same requests the global panel shows). */
export function RunRequests({ runId }: { runId: string }) {
  const { t } = useTranslation("agents");
  const pending = usePendingRequests();
  const mine = pending.data?.requests.filter((request) => request.run_id === runId) ?? [];
  if (mine.length === 0) return null;
  return (
    <section aria-labelledby="run-requests-heading" className="flex flex-col gap-2">
      <h2 id="run-requests-heading" className="text-lg font-medium">
        {t("requests.heading", { count: mine.length })}
      </h2>
      <ul className="flex flex-col gap-2">
        {mine.map((request) => (
          <PendingRequest key={request.id} request={request} />
        ))}
      </ul>
    </section>
  );
}
