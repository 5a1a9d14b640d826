import { ShieldQuestion } from "lucide-react";
import { useState } from "react";
import { useTranslation } from "react-i18next";

import { Button } from "@/components/ui/button";
import { Input } from "@/components/ui/input";
import { useDecide, usePendingRequests, type Decision, type RunRequest } from "./useConsentRequests";

function ConsentRequest({ request }: { request: RunRequest }) {
  const { t } = useTranslation();
  const decide = useDecide();
  const [answer, setAnswer] = useState("");
  const send = (decision: Decision) => decide.mutate({ id: request.id, decision });
  const question = request.kind === "question";
  const titleId = `consent-${request.id}`;
  return (
    <section
      aria-labelledby={titleId}
      className="bg-popover text-popover-foreground flex flex-col gap-3 rounded-lg border p-4 shadow-lg"
    >
      <div className="flex items-start gap-2">
        <ShieldQuestion className="mt-0.5 size-4 shrink-0" aria-hidden />
        <div className="min-w-0">
          <h2 id={titleId} className="text-sm font-medium">
            {t(`consent.title.${request.kind}`, { tool: request.tool })}
          </h2>
          <pre className="text-muted-foreground mt-1 max-h-32 overflow-auto text-xs whitespace-pre-wrap">
            {JSON.stringify(request.details, null, 2)}
          </pre>
        </div>
      </div>
      {question && (
        <Input
          value={answer}
          onChange={(event) => setAnswer(event.target.value)}
          aria-label={t("consent.answer")}
          placeholder={t("consent.answer")}
        />
      )}
      {decide.error && (
        <p role="alert" className="text-destructive text-xs">
          {decide.error.message}
        </p>
      )}
      <div className="flex flex-wrap justify-end gap-2">
        <Button
          size="sm"
          variant="outline"
          disabled={decide.isPending}
          onClick={() => send({ approve: false })}
        >
          {t("consent.deny")}
        </Button>
        {!question && (
          <Button
            size="sm"
            variant="secondary"
            disabled={decide.isPending}
            onClick={() => send({ approve: true, remember: true })}
          >
            {t("consent.always")}
          </Button>
        )}
        <Button
          size="sm"
          disabled={decide.isPending || (question && answer.trim() === "")}
          onClick={() => send(question ? { approve: true, answer } : { approve: true })}
        >
          {question ? t("consent.reply") : t("consent.approve")}
        </Button>
      </div>
    </section>
  );
}

/** What agents' runs ask the user, shown over every page until answered. */
export function ConsentRequests() {
  const { t } = useTranslation();
  const { data } = usePendingRequests();
  const requests = data?.requests ?? [];
  return (
    <aside
      aria-label={t("consent.region")}
      aria-live="polite"
      className="pointer-events-none fixed right-4 bottom-4 z-40 flex w-[min(24rem,calc(100%-2rem))] flex-col gap-2 [&>*]:pointer-events-auto"
    >
      {requests.map((request) => (
        <ConsentRequest key={request.id} request={request} />
      ))}
    </aside>
  );
}
