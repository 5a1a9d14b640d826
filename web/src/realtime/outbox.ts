import { clear, createStore, del, entries, set, type UseStore } from "idb-keyval";

import type { ChatMessage } from "@/api/realtime";

export interface QueuedChat {
  message: ChatMessage;
  /** When it was written, in epoch milliseconds: the order in which queued messages are sent. */
  queuedAt: number;
}

/** Chat messages not yet acknowledged by the server, kept until their `ack`. */
export interface Outbox {
  put(entry: QueuedChat): Promise<void>;
  remove(clientId: string): Promise<void>;
  /** Every queued message, oldest first. */
  list(): Promise<QueuedChat[]>;
  clear(): Promise<void>;
}

/** An outbox in IndexedDB, so that messages written offline survive a reload. */
export function indexedDbOutbox(store: UseStore = createStore("kai-outbox", "chats")): Outbox {
  return {
    put: (entry) => set(entry.message.client_id, entry, store),
    remove: (clientId) => del(clientId, store),
    async list() {
      const all = await entries<string, QueuedChat>(store);
      return all.map(([, entry]) => entry).sort((a, b) => a.queuedAt - b.queuedAt);
    },
    clear: () => clear(store),
  };
}
