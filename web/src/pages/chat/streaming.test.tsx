import { act, screen, within } from "@testing-library/react";
import { beforeEach, describe, expect, it } from "vitest";

import type { WsEvent } from "@/api/realtime";
import { dispatchEvent } from "@/realtime/dispatch";
import { useTurnsStore } from "@/stores/turns";
import { renderWithProviders } from "@/test/render";
import { MessageList } from "./MessageList";
import type { StoredMessage } from "./queries";

const conversationId = "c0ffee00-0000-4000-8000-000000000001";
const clientId = "c0ffee00-0000-4000-8000-0000000000aa";

const stored: StoredMessage[] = [
  { seq: 1, role: "user", content: "Hello", created_at: "2026-01-01T00:00:00Z" },
  { seq: 2, role: "assistant", content: "Hi! How can I help?", created_at: "2026-01-01T00:00:01Z" },
  { seq: 3, role: "user", content: "Tell me more", created_at: "2026-01-01T00:00:02Z" },
  { seq: 4, role: "assistant", content: "Gladly.", created_at: "2026-01-01T00:00:03Z" },
];

function event(kind: WsEvent["kind"], data: object): WsEvent {
  return { type: "event", id: null, room: `conversation:${conversationId}`, kind, data } as WsEvent;
}

function renderCounts(): number[] {
  return screen.getAllByRole("article").map((article) => Number(article.dataset.renders));
}

describe("streaming an answer", () => {
  beforeEach(() => useTurnsStore.getState().reset());

  it("re-renders only the message being written, once per token", async () => {
    useTurnsStore.getState().add({
      clientId,
      conversationId,
      userText: "And now?",
      afterSeq: 4,
      collections: null,
    });
    const { queryClient } = renderWithProviders(
      <MessageList conversationId={conversationId} messages={stored} onSend={() => undefined} />,
    );
    act(() => useTurnsStore.getState().acknowledge(clientId));
    act(() =>
      dispatchEvent(event("chat.started", { conversation_id: conversationId, client_id: clientId, model: "m" }), queryClient),
    );

    const articles = screen.getAllByRole("article");
    expect(articles).toHaveLength(6);
    const before = renderCounts();

    for (let index = 0; index < 1000; index++) {
      act(() =>
        dispatchEvent(
          event("chat.token", { conversation_id: conversationId, client_id: clientId, index, text: "x" }),
          queryClient,
        ),
      );
    }

    const after = renderCounts();
    const answer = articles.at(-1);
    expect(after.slice(0, -1)).toEqual(before.slice(0, -1));
    expect(after.at(-1)).toBe((before.at(-1) ?? 0) + 1000);
    expect(within(answer as HTMLElement).getByText("x".repeat(1000))).toBeInTheDocument();
  });

  it("puts tokens that arrive out of order back in order and ignores repeats", () => {
    const turns = useTurnsStore.getState();
    turns.add({ clientId, conversationId, userText: "q", afterSeq: 0, collections: null });
    turns.append(clientId, 1, "b");
    turns.append(clientId, 0, "a");
    turns.append(clientId, 0, "a");
    turns.append(clientId, 2, "c");
    expect(useTurnsStore.getState().turns[clientId]?.text).toBe("abc");
  });

  it("stops rendering tokens once stopped", () => {
    const turns = useTurnsStore.getState();
    turns.add({ clientId, conversationId, userText: "q", afterSeq: 0, collections: null });
    turns.append(clientId, 0, "a");
    turns.stop(clientId);
    turns.append(clientId, 1, "b");
    expect(useTurnsStore.getState().turns[clientId]).toMatchObject({ text: "a", status: "stopped" });
  });
});
