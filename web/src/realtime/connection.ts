import { useEffect } from "react";
import { create } from "zustand";

import type { Room } from "@/api/realtime";
import { queryClient } from "@/app/query-client";
import { refreshSession } from "@/auth/session";
import { useAuthStore } from "@/auth/store";
import { useTurnsStore } from "@/stores/turns";
import { RealtimeClient, type ConnectionStatus } from "./client";
import { sessionCursor } from "./cursor";
import { dispatchEvent } from "./dispatch";
import { indexedDbOutbox } from "./outbox";

export const useConnectionStore = create<{ status: ConnectionStatus }>()(() => ({
  status: "idle",
}));

function socketUrl(): string {
  const url = new URL("/api/v1/ws", window.location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.toString();
}

export const outbox = indexedDbOutbox();
export const eventCursor = sessionCursor();

/** The tab's one connection to kai's real-time channel. */
export const realtime = new RealtimeClient({
  url: socketUrl(),
  getToken: () => useAuthStore.getState().accessToken,
  cursor: eventCursor,
  outbox,
  onEvent: (event) => dispatchEvent(event, queryClient),
  onAck: (clientId) => useTurnsStore.getState().acknowledge(clientId),
  onError: (error) => {
    if (error.client_id) useTurnsStore.getState().fail(error.client_id, error.detail);
  },
  onStatus: (status) => useConnectionStore.setState({ status }),
  renewToken: refreshSession,
});

/** Connects while signed in, tells the server of renewed tokens, waits while the browser is offline and reconnects when it is back. */
export function bindRealtimeToSession(): () => void {
  const unsubscribe = useAuthStore.subscribe((state, previous) => {
    if (state.status === "signed-in" && state.accessToken !== previous.accessToken) {
      if (previous.status === "signed-in") realtime.updateToken(state.accessToken ?? "");
      realtime.start();
    }
    if (state.status === "signed-out") realtime.stop();
  });
  const online = () => realtime.reconnectNow();
  const offline = () => realtime.suspend();
  window.addEventListener("online", online);
  window.addEventListener("offline", offline);
  return () => {
    unsubscribe();
    window.removeEventListener("online", online);
    window.removeEventListener("offline", offline);
  };
}

/** Shows the messages still waiting in the outbox (written offline before a reload) as queued. */
export async function restoreQueuedTurns() {
  const turns = useTurnsStore.getState();
  for (const { message } of await outbox.list()) {
    turns.add({
      clientId: message.client_id,
      conversationId: message.conversation_id,
      userText: typeof message.content === "string" ? message.content : null,
      afterSeq: 0,
      collections: message.knowledge?.collections ?? null,
    });
  }
}

/** Joins a room of the real-time channel while the calling component is mounted. */
export function useRoom(room: Room | null) {
  useEffect(() => {
    if (!room) return;
    realtime.join(room);
    return () => realtime.leave(room);
  }, [room]);
}
