import { RefreshCw } from "lucide-react";
import { memo } from "react";
import { useTranslation } from "react-i18next";

import { Button } from "@/components/ui/button";
import { useRenderCount } from "@/hooks/useRenderCount";
import { metaKey, plainText, useTurnsStore } from "@/stores/turns";
import { AnswerFigures } from "./AnswerFigures";
import { Markdown } from "./Markdown";
import { MessageFrame } from "./MessageFrame";
import type { StoredMessage } from "./queries";
import { Sources } from "./Sources";

interface Props {
  conversationId: string;
  message: StoredMessage;
  /** Set on the conversation's last answer: asks the last question again. */
  onRegenerate?: () => void;
}

/** A message as the server stored it, with what this device knows of its answer's figures. */
export const StoredMessageView = memo(function StoredMessageView({
  conversationId,
  message,
  onRegenerate,
}: Props) {
  const { t } = useTranslation("chat");
  const ref = useRenderCount<HTMLElement>();
  const key = metaKey(conversationId, message.seq);
  const meta = useTurnsStore((state) => state.meta[key]);
  const failure = useTurnsStore((state) => state.failures[key]);
  const text = plainText(message.content);

  if (message.role === "user") {
    return (
      <MessageFrame role="user" frameRef={ref} label={t("message.user")}>
        <p className="whitespace-pre-wrap">{text}</p>
        {failure !== undefined && (
          <p role="alert" className="text-destructive text-sm">
            {failure || t("message.failed")}
          </p>
        )}
      </MessageFrame>
    );
  }
  return (
    <MessageFrame role="assistant" frameRef={ref} label={t("message.assistant")}>
      {message.refusal ? (
        <p className="text-muted-foreground italic">{message.refusal}</p>
      ) : (
        <Markdown text={text} />
      )}
      {meta && <Sources meta={meta} />}
      <div className="flex items-center gap-2">
        {meta && <AnswerFigures meta={meta} />}
        {message.model && <span className="text-muted-foreground text-xs">{message.model}</span>}
        {onRegenerate && (
          <Button variant="ghost" size="sm" onClick={onRegenerate}>
            <RefreshCw aria-hidden />
            {t("regenerate")}
          </Button>
        )}
      </div>
    </MessageFrame>
  );
});
