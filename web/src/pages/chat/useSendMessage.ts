import { useQueryClient } from "@tanstack/react-query";
import { useCallback } from "react";
import { useNavigate } from "react-router";

import { queryKeys } from "@/api/keys";
import type { ChatMessage } from "@/api/realtime";
import { realtime } from "@/realtime/connection";
import { useTurnsStore } from "@/stores/turns";
import { NEW_CHAT, useChatSettings } from "./chat-settings";
import { useCreateConversation, type ConversationDetail } from "./queries";

/**
 * Sends what the user wrote over the real-time channel (queued while offline), starting the
 * conversation first when there is none yet.
 */
export function useSendMessage(conversationId: string | undefined) {
  const queryClient = useQueryClient();
  const navigate = useNavigate();
  const { mutateAsync: createConversation } = useCreateConversation();

  return useCallback(async (text: string) => {
    const settings = useChatSettings.getState();
    const chosen = settings.byConversation[conversationId ?? NEW_CHAT];
    let id = conversationId;
    if (!id) {
      const conversation = await createConversation(chosen?.model ?? null);
      id = conversation.id;
      settings.adopt(id);
      void navigate(`/chat/${id}`);
    }
    const stored = queryClient.getQueryData<ConversationDetail>(queryKeys.conversation(id));
    const collections = chosen?.knowledge ? chosen.collections : null;
    const message: ChatMessage = {
      type: "chat",
      client_id: crypto.randomUUID(),
      conversation_id: id,
      content: text,
      ...(chosen?.model ? { model: chosen.model } : {}),
      ...(collections ? { knowledge: { collections } } : {}),
    };
    useTurnsStore.getState().add({
      clientId: message.client_id,
      conversationId: id,
      userText: text,
      afterSeq: stored?.messages.at(-1)?.seq ?? 0,
      collections,
    });
    await realtime.sendChat(message);
  }, [conversationId, createConversation, navigate, queryClient]);
}
