import { createStore } from "idb-keyval";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import type { ChatMessage, WsClientMessage, WsEvent } from "@/api/realtime";
import { CLOSE_UNAUTHORIZED, RealtimeClient, type RealtimeOptions } from "./client";
import { sessionCursor } from "./cursor";
import { indexedDbOutbox } from "./outbox";

class MockSocket {
  static instances: MockSocket[] = [];
  readyState: number = WebSocket.CONNECTING;
  sent: WsClientMessage[] = [];
  onopen: (() => void) | null = null;
  onmessage: ((event: MessageEvent) => void) | null = null;
  onclose: ((event: CloseEvent) => void) | null = null;

  constructor(readonly url: string) {
    MockSocket.instances.push(this);
  }

  send(data: string) {
    this.sent.push(JSON.parse(data) as WsClientMessage);
  }

  close() {
    this.readyState = WebSocket.CLOSED;
  }

  open() {
    this.readyState = WebSocket.OPEN;
    this.onopen?.();
  }

  receive(message: object) {
    this.onmessage?.(new MessageEvent("message", { data: JSON.stringify(message) }));
  }

  drop(code = 1006) {
    this.readyState = WebSocket.CLOSED;
    this.onclose?.(new CloseEvent("close", { code }));
  }

  types() {
    return this.sent.map((message) => message.type);
  }
}

const latest = () => MockSocket.instances.at(-1) as MockSocket;

let storeNumber = 0;

function setup(overrides: Partial<RealtimeOptions> = {}) {
  storeNumber += 1;
  const store = createStore(`outbox-test-${storeNumber}`, "chats");
  const outbox = indexedDbOutbox(store);
  const cursor = sessionCursor();
  const events: WsEvent[] = [];
  const client = new RealtimeClient({
    url: "ws://kai.test/api/v1/ws",
    getToken: () => "token-1",
    cursor,
    outbox,
    onEvent: (event) => events.push(event),
    renewToken: vi.fn(async () => true),
    createSocket: (url) => new MockSocket(url) as unknown as WebSocket,
    random: () => 1,
    ...overrides,
  });
  return { client, outbox, cursor, events, store };
}

function chat(clientId: string): ChatMessage {
  return { type: "chat", client_id: clientId, conversation_id: "conv-1", content: "hi" };
}

function durable(id: number): WsEvent {
  return {
    type: "event",
    id,
    room: "user",
    kind: "conversation.changed",
    data: { conversation_id: "conv-1", change: "message" },
  };
}

describe("RealtimeClient", () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "setInterval", "clearInterval"] });
    MockSocket.instances = [];
    sessionStorage.clear();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("says hello with the token and no cursor on a first connection, then takes the server's", () => {
    const { client, cursor } = setup();
    client.start();
    latest().open();
    expect(latest().sent).toEqual([{ type: "hello", token: "token-1", after: null }]);

    latest().receive({ type: "ready", user_id: "u", last_event_id: 41 });
    expect(client.connectionStatus).toBe("ready");
    expect(cursor.get()).toBe(41);
  });

  it("reconnects with exponentially growing delays, capped, and resets them once ready", () => {
    const { client } = setup({ baseDelayMs: 100, maxDelayMs: 1000 });
    client.start();
    const delays = [100, 200, 400, 800, 1000, 1000];
    for (const delay of delays) {
      const count = MockSocket.instances.length;
      latest().drop();
      vi.advanceTimersByTime(delay - 1);
      expect(MockSocket.instances).toHaveLength(count);
      vi.advanceTimersByTime(1);
      expect(MockSocket.instances).toHaveLength(count + 1);
    }
    latest().open();
    latest().receive({ type: "ready", user_id: "u", last_event_id: 0 });
    latest().drop();
    vi.advanceTimersByTime(100);
    expect(client.connectionStatus).toBe("reconnecting");
    expect(MockSocket.instances).toHaveLength(delays.length + 2);
  });

  it("spreads reconnects with jitter between half and all of the delay", () => {
    const { client } = setup({ baseDelayMs: 1000, random: () => 0 });
    client.start();
    latest().drop();
    vi.advanceTimersByTime(499);
    expect(MockSocket.instances).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(MockSocket.instances).toHaveLength(2);
  });

  it("resumes after the last durable event seen and ignores events already seen", () => {
    const { client, events } = setup();
    client.start();
    latest().open();
    latest().receive({ type: "ready", user_id: "u", last_event_id: 10 });
    latest().receive(durable(11));
    latest().receive(durable(12));
    latest().receive({ ...durable(12) });
    latest().receive({ type: "event", id: null, room: "conversation:conv-1", kind: "chat.token", data: {} });
    expect(events.map((event) => event.id)).toEqual([11, 12, null]);

    latest().drop();
    vi.advanceTimersByTime(1000);
    latest().open();
    expect(latest().sent[0]).toEqual({ type: "hello", token: "token-1", after: 12 });
    latest().receive({ type: "ready", user_id: "u", last_event_id: 14 });
    latest().receive(durable(12));
    latest().receive(durable(13));
    expect(events.map((event) => event.id)).toEqual([11, 12, null, 13]);
  });

  it("moves past a durable event of a kind it does not know without handing it on", () => {
    const { client, events, cursor } = setup();
    client.start();
    latest().open();
    latest().receive({ type: "ready", user_id: "u", last_event_id: 10 });
    latest().receive({ type: "event", id: 11, room: "user", kind: "something.new", data: {} });
    latest().receive(durable(12));
    expect(events.map((event) => event.kind)).toEqual(["conversation.changed"]);
    expect(cursor.get()).toBe(12);
  });

  it("rejoins its rooms after every ready", () => {
    const { client } = setup();
    client.start();
    client.join("conversation:a");
    client.join("conversation:a");
    client.join("run:r");
    latest().open();
    latest().receive({ type: "ready", user_id: "u", last_event_id: 0 });
    expect(latest().sent.filter((message) => message.type === "join")).toEqual([
      { type: "join", room: "conversation:a" },
      { type: "join", room: "run:r" },
    ]);
    client.leave("conversation:a");
    expect(latest().types()).not.toContain("leave");
    client.leave("conversation:a");
    expect(latest().sent.at(-1)).toEqual({ type: "leave", room: "conversation:a" });
  });

  it("queues chat messages written offline in IndexedDB and sends them, oldest first, after ready", async () => {
    const { client, outbox, store } = setup();
    client.start();
    await client.sendChat(chat("first"));
    await client.sendChat(chat("second"));
    expect(latest().sent).toEqual([]);

    const afterReload = indexedDbOutbox(store);
    expect((await afterReload.list()).map((entry) => entry.message.client_id)).toEqual(["first", "second"]);

    latest().open();
    latest().receive({ type: "ready", user_id: "u", last_event_id: 0 });
    await vi.waitFor(() => expect(latest().types()).toEqual(["hello", "join", "chat", "join", "chat"]));
    const chats = latest().sent.filter((message) => message.type === "chat");
    expect(chats.map((message) => message.client_id)).toEqual(["first", "second"]);

    latest().receive({ type: "ack", client_id: "first" });
    latest().receive({ type: "ack", client_id: "second", duplicate: true });
    await vi.waitFor(async () => expect(await outbox.list()).toEqual([]));
  });

  it("sends a queued message again after a dropped connection until it is acknowledged", async () => {
    const { client, outbox } = setup();
    client.start();
    latest().open();
    latest().receive({ type: "ready", user_id: "u", last_event_id: 0 });
    await client.sendChat(chat("once"));
    expect(latest().types()).toEqual(["hello", "join", "chat"]);

    latest().drop();
    vi.advanceTimersByTime(1000);
    latest().open();
    latest().receive({ type: "ready", user_id: "u", last_event_id: 0 });
    await vi.waitFor(() => expect(latest().types()).toEqual(["hello", "join", "chat"]));
    expect(await outbox.list()).toHaveLength(1);
  });

  it("holds messages while the browser is offline, even on a socket that looks open, and sends them when it is back", async () => {
    const { client, outbox } = setup();
    client.start();
    latest().open();
    latest().receive({ type: "ready", user_id: "u", last_event_id: 0 });
    const before = latest();

    client.suspend();
    expect(client.connectionStatus).toBe("reconnecting");
    await client.sendChat(chat("offline"));
    expect(before.types()).toEqual(["hello"]);
    vi.advanceTimersByTime(60_000);
    expect(MockSocket.instances).toHaveLength(1);

    client.reconnectNow();
    latest().open();
    latest().receive({ type: "ready", user_id: "u", last_event_id: 0 });
    await vi.waitFor(() => expect(latest().types()).toEqual(["hello", "join", "chat"]));
    expect((await outbox.list()).map((entry) => entry.message.client_id)).toEqual(["offline"]);
  });

  it("asks the server to stop an answer being written", () => {
    const { client } = setup();
    client.start();
    latest().open();
    latest().receive({ type: "ready", user_id: "u", last_event_id: 0 });
    client.stopAnswer("answer-1");
    expect(latest().sent.at(-1)).toEqual({ type: "stop", client_id: "answer-1" });
  });

  it("renews the token when the server closes with 4401, then reconnects", async () => {
    const renewToken = vi.fn(async () => true);
    const { client } = setup({ renewToken });
    client.start();
    latest().open();
    latest().drop(CLOSE_UNAUTHORIZED);
    expect(renewToken).toHaveBeenCalledOnce();
    await vi.advanceTimersByTimeAsync(1000);
    expect(MockSocket.instances).toHaveLength(2);
  });

  it("gives up when the token cannot be renewed", async () => {
    const { client } = setup({ renewToken: async () => false });
    client.start();
    latest().open();
    latest().drop(CLOSE_UNAUTHORIZED);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(MockSocket.instances).toHaveLength(1);
    expect(client.connectionStatus).toBe("idle");
  });

  it("sends a renewed token with auth", () => {
    const { client } = setup();
    client.start();
    latest().open();
    latest().receive({ type: "ready", user_id: "u", last_event_id: 0 });
    client.updateToken("token-2");
    expect(latest().sent.at(-1)).toEqual({ type: "auth", token: "token-2" });
  });
});
