import { useCallback, useEffect, useRef } from "react";
import { useTranslation } from "react-i18next";
import { useShallow } from "zustand/react/shallow";

import { plainText, useTurnsStore } from "@/stores/turns";
import type { StoredMessage } from "./queries";
import { StoredMessageView } from "./StoredMessageView";
import { TurnView } from "./TurnView";

function isShown(message: StoredMessage): boolean {
  if (message.role === "user") return true;
  return message.role === "assistant" && (message.content !== null || Boolean(message.refusal));
}

/** Keeps the view scrolled to the end while it grows, unless the user scrolled up. */
function useStickToBottom() {
  const scroller = useRef<HTMLDivElement>(null);
  const content = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const outer = scroller.current;
    const inner = content.current;
    if (!outer || !inner || typeof ResizeObserver === "undefined") return;
    let pinned = true;
    const onScroll = () => {
      pinned = outer.scrollHeight - outer.scrollTop - outer.clientHeight < 48;
    };
    const observer = new ResizeObserver(() => {
      if (pinned) outer.scrollTop = outer.scrollHeight;
    });
    outer.addEventListener("scroll", onScroll, { passive: true });
    observer.observe(inner);
    return () => {
      outer.removeEventListener("scroll", onScroll);
      observer.disconnect();
    };
  }, []);
  return { scroller, content };
}

export function MessageList({
  conversationId,
  messages,
  onSend,
}: {
  conversationId: string;
  messages: StoredMessage[];
  onSend: (text: string) => void;
}) {
  const { t } = useTranslation("chat");
  const { scroller, content } = useStickToBottom();
  const turnIds = useTurnsStore(
    useShallow((state) =>
      Object.values(state.turns)
        .filter((turn) => turn.conversationId === conversationId)
        .map((turn) => turn.clientId),
    ),
  );
  const shown = messages.filter(isShown);
  const lastQuestion = [...shown].reverse().find((message) => message.role === "user");
  const lastAnswer = shown.at(-1)?.role === "assistant" ? shown.at(-1) : undefined;
  const questionText = lastQuestion ? plainText(lastQuestion.content) : null;
  const regenerate = useCallback(() => {
    if (questionText !== null) onSend(questionText);
  }, [onSend, questionText]);

  return (
    <div ref={scroller} className="min-h-0 flex-1 overflow-y-auto" tabIndex={0} aria-label={t("messages")}>
      <div ref={content} className="mx-auto flex max-w-3xl flex-col gap-4 p-4">
        {shown.length === 0 && turnIds.length === 0 && (
          <p className="text-muted-foreground py-16 text-center">{t("empty")}</p>
        )}
        {shown.map((message) => (
          <StoredMessageView
            key={message.seq}
            conversationId={conversationId}
            message={message}
            onRegenerate={
              message === lastAnswer && turnIds.length === 0 && questionText !== null
                ? regenerate
                : undefined
            }
          />
        ))}
        {turnIds.map((clientId) => (
          <TurnView key={clientId} clientId={clientId} onRetry={onSend} />
        ))}
      </div>
    </div>
  );
}
