import { LoaderCircle, RefreshCw, Square } from "lucide-react";
import { memo } from "react";
import { useTranslation } from "react-i18next";

import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { useRenderCount } from "@/hooks/useRenderCount";
import { realtime } from "@/realtime/connection";
import { useTurnsStore } from "@/stores/turns";
import { AnswerFigures } from "./AnswerFigures";
import { Markdown } from "./Markdown";
import { MessageFrame } from "./MessageFrame";
import { Sources } from "./Sources";

/** The question of a turn, with whether it is still queued (offline) or on its way. */
const TurnQuestion = memo(function TurnQuestion({ clientId }: { clientId: string }) {
  const { t } = useTranslation("chat");
  const ref = useRenderCount<HTMLElement>();
  const text = useTurnsStore((state) => state.turns[clientId]?.userText ?? null);
  const queued = useTurnsStore((state) => state.turns[clientId]?.status === "queued");
  if (text === null) return null;
  return (
    <MessageFrame role="user" frameRef={ref} label={t("message.user")}>
      <p className="whitespace-pre-wrap">{text}</p>
      {queued && (
        <Badge variant="outline" className="self-end">
          {t("message.queued")}
        </Badge>
      )}
    </MessageFrame>
  );
});

/** The answer being written: the only component that re-renders for each token. */
const TurnAnswer = memo(function TurnAnswer({
  clientId,
  onRetry,
}: {
  clientId: string;
  onRetry: (text: string) => void;
}) {
  const { t } = useTranslation("chat");
  const ref = useRenderCount<HTMLElement>();
  const text = useTurnsStore((state) => state.turns[clientId]?.text ?? "");
  const status = useTurnsStore((state) => state.turns[clientId]?.status);
  const error = useTurnsStore((state) => state.turns[clientId]?.error ?? null);
  const question = useTurnsStore((state) => state.turns[clientId]?.userText ?? null);
  const meta = useTurnsStore((state) => state.finished[clientId]);
  const stop = useTurnsStore((state) => state.stop);
  const writing = status === "queued" || status === "sent" || status === "streaming";

  return (
    <MessageFrame role="assistant" frameRef={ref} label={t("message.assistant")}>
      {text ? (
        <Markdown text={text} />
      ) : (
        writing && (
          <span className="text-muted-foreground flex items-center gap-2 text-sm">
            <LoaderCircle className="size-4 animate-spin" aria-hidden />
            {t("message.thinking")}
          </span>
        )
      )}
      {status === "failed" && (
        <p role="alert" className="text-destructive text-sm">
          {error || t("message.failed")}
        </p>
      )}
      {meta && <Sources meta={meta} />}
      <div className="flex items-center gap-2">
        {meta && <AnswerFigures meta={meta} />}
        {status === "stopped" && <Badge variant="outline">{t("message.stopped")}</Badge>}
        {writing && (
          <Button
            variant="ghost"
            size="sm"
            onClick={() => {
              stop(clientId);
              realtime.stopAnswer(clientId);
            }}
          >
            <Square aria-hidden />
            {t("stop")}
          </Button>
        )}
        {(status === "failed" || status === "stopped") && question !== null && (
          <Button variant="ghost" size="sm" onClick={() => onRetry(question)}>
            <RefreshCw aria-hidden />
            {t("regenerate")}
          </Button>
        )}
      </div>
    </MessageFrame>
  );
});

/** A question sent from this device (or an answer begun on another) and its answer. */
export function TurnView({
  clientId,
  onRetry,
}: {
  clientId: string;
  onRetry: (text: string) => void;
}) {
  return (
    <>
      <TurnQuestion clientId={clientId} />
      <TurnAnswer clientId={clientId} onRetry={onRetry} />
    </>
  );
}
