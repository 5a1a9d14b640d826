import { useCallback, useEffect, useState, type DragEvent } from "react";
import { useTranslation } from "react-i18next";

import { useRoom } from "@/realtime/connection";
import { useTurnsStore } from "@/stores/turns";
import { cn } from "@/lib/utils";
import { NEW_CHAT, useChatSettings, useConversationSettings } from "./chat-settings";
import { Composer } from "./Composer";
import { KnowledgePicker } from "./KnowledgePicker";
import { MessageList } from "./MessageList";
import { ModelPicker } from "./ModelPicker";
import { useConversation } from "./queries";
import { uploadFiles } from "./upload";
import { useSendMessage } from "./useSendMessage";

/** One conversation (or a new one): its messages, its settings, and the box to write in. */
export function ConversationPane({ conversationId }: { conversationId: string | undefined }) {
  const { t } = useTranslation("chat");
  const key = conversationId ?? NEW_CHAT;
  const conversation = useConversation(conversationId);
  const settings = useConversationSettings(key);
  const update = useChatSettings((state) => state.update);
  const settle = useTurnsStore((state) => state.settle);
  const send = useSendMessage(conversationId);
  const [dragging, setDragging] = useState(false);
  useRoom(conversationId ? `conversation:${conversationId}` : null);

  useEffect(() => {
    if (conversationId && conversation.data) settle(conversationId, conversation.data.messages);
  }, [conversationId, conversation.data, settle]);

  const onSend = useCallback((text: string) => void send(text), [send]);
  const onFiles = (files: File[]) => {
    const collection = settings.knowledge ? (settings.collections[0] ?? null) : null;
    void uploadFiles(files, collection);
  };
  const onDrop = (event: DragEvent) => {
    event.preventDefault();
    setDragging(false);
    onFiles([...event.dataTransfer.files]);
  };

  return (
    <section
      aria-label={conversation.data?.title ?? t("newChat")}
      className={cn("flex h-full min-w-0 flex-1 flex-col", dragging && "ring-ring ring-2 ring-inset")}
      onDragOver={(event) => {
        if (event.dataTransfer.types.includes("Files")) {
          event.preventDefault();
          setDragging(true);
        }
      }}
      onDragLeave={() => setDragging(false)}
      onDrop={onDrop}
    >
      <header className="flex flex-wrap items-center gap-2 border-b px-4 py-2">
        <h1 className="min-w-0 flex-1 truncate font-medium">
          {conversation.data?.title ?? t("newChat")}
        </h1>
        <ModelPicker
          value={settings.model}
          fallback={conversation.data?.model ?? null}
          onChange={(model) => update(key, { model })}
        />
        <KnowledgePicker settings={settings} onChange={(change) => update(key, change)} />
      </header>
      {conversation.error && !conversation.data ? (
        <p role="alert" className="text-destructive p-4">
          {conversation.error.message}
        </p>
      ) : (
        <MessageList
          conversationId={key}
          messages={conversation.data?.messages ?? []}
          onSend={onSend}
        />
      )}
      <Composer onSend={send} onFiles={onFiles} />
      {dragging && <p className="sr-only">{t("upload.drop")}</p>}
    </section>
  );
}
