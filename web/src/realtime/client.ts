import {
  asWsEvent,
  type ChatMessage,
  type Room,
  type WsClientMessage,
  type WsError,
  type WsEvent,
  type WsEventMessage,
} from "@/api/realtime";
import type { components } from "@/api/schema";
import type { EventCursor } from "./cursor";
import type { Outbox } from "./outbox";

export type ConnectionStatus = "idle" | "connecting" | "ready" | "reconnecting";

/** Close code the server uses for a missing, refused or expired token. */
export const CLOSE_UNAUTHORIZED = 4401;

export interface RealtimeOptions {
  url: string;
  getToken: () => string | null;
  cursor: EventCursor;
  outbox: Outbox;
  onEvent: (event: WsEvent) => void;
  onAck?: (clientId: string, duplicate: boolean) => void;
  onError?: (error: WsError) => void;
  onStatus?: (status: ConnectionStatus) => void;
  /** Renews the token after the server refused it; false ends the connection attempts. */
  renewToken: () => Promise<boolean>;
  createSocket?: (url: string) => WebSocket;
  /** A number in [0, 1): the jitter of reconnect delays. */
  random?: () => number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  pingIntervalMs?: number;
}

/**
 * The client end of kai's real-time channel: one socket, authenticated with `hello`, resumed
 * after the last durable event seen, reconnected with exponential backoff and jitter, with rooms
 * rejoined and queued chat messages sent again after every `ready`.
 */
export class RealtimeClient {
  private readonly options: Required<
    Omit<RealtimeOptions, "onAck" | "onError" | "onStatus">
  > &
    Pick<RealtimeOptions, "onAck" | "onError" | "onStatus">;
  private socket: WebSocket | null = null;
  private ready = false;
  private running = false;
  private attempt = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private pingTimer: ReturnType<typeof setInterval> | undefined;
  private readonly rooms = new Map<Room, number>();
  private status: ConnectionStatus = "idle";

  constructor(options: RealtimeOptions) {
    this.options = {
      createSocket: (url) => new WebSocket(url),
      random: Math.random,
      baseDelayMs: 500,
      maxDelayMs: 30_000,
      pingIntervalMs: 25_000,
      ...options,
    };
  }

  get connectionStatus(): ConnectionStatus {
    return this.status;
  }

  start() {
    if (this.running) return;
    this.running = true;
    this.open();
  }

  stop() {
    this.running = false;
    clearTimeout(this.reconnectTimer);
    this.dropSocket();
    this.setStatus("idle");
  }

  /** Reconnects at once, forgetting the backoff (the browser just came back online). */
  reconnectNow() {
    if (!this.running || this.ready) return;
    clearTimeout(this.reconnectTimer);
    this.attempt = 0;
    this.dropSocket();
    this.open();
  }

  /**
   * Drops the socket until `reconnectNow` (the browser went offline). A socket can outlive the
   * network by minutes before it notices; until then what the user writes would be sent into
   * it and lost, instead of waiting in the outbox.
   */
  suspend() {
    if (!this.running) return;
    clearTimeout(this.reconnectTimer);
    this.dropSocket();
    this.setStatus("reconnecting");
  }

  /** Asks the server to stop writing the answer to a chat message; what it wrote is kept. */
  stopAnswer(clientId: string) {
    this.send({ type: "stop", client_id: clientId });
  }

  /** Tells the server about a renewed access token. */
  updateToken(token: string) {
    this.send({ type: "auth", token });
  }

  /** Joins a room; rooms are counted, so that two views of one conversation share it. */
  join(room: Room) {
    const count = this.rooms.get(room) ?? 0;
    this.rooms.set(room, count + 1);
    if (count === 0) this.send({ type: "join", room });
  }

  leave(room: Room) {
    const count = this.rooms.get(room) ?? 0;
    if (count <= 1) {
      this.rooms.delete(room);
      if (count === 1) this.send({ type: "leave", room });
    } else {
      this.rooms.set(room, count - 1);
    }
  }

  /** Queues a chat message (persisted until acknowledged) and sends it when connected. */
  async sendChat(message: ChatMessage): Promise<void> {
    await this.options.outbox.put({ message, queuedAt: Date.now() });
    this.sendInRoom(message);
  }

  /** Sends a chat message, joining its conversation's room first so that no token of the answer is missed. */
  private sendInRoom(message: ChatMessage): boolean {
    const room: Room = `conversation:${message.conversation_id}`;
    if (!this.rooms.has(room) && !this.send({ type: "join", room })) return false;
    return this.send(message);
  }

  private send(message: WsClientMessage): boolean {
    if (!this.ready || !this.socket) return false;
    this.socket.send(JSON.stringify(message));
    return true;
  }

  private setStatus(status: ConnectionStatus) {
    if (status === this.status) return;
    this.status = status;
    this.options.onStatus?.(status);
  }

  private open() {
    const token = this.options.getToken();
    if (!token) {
      this.scheduleReconnect();
      return;
    }
    const socket = this.options.createSocket(this.options.url);
    this.socket = socket;
    this.setStatus(this.attempt === 0 ? "connecting" : "reconnecting");
    socket.onopen = () => {
      if (socket !== this.socket) return;
      const hello: WsClientMessage = { type: "hello", token, after: this.options.cursor.get() };
      socket.send(JSON.stringify(hello));
    };
    socket.onmessage = (event: MessageEvent) => {
      if (socket === this.socket && typeof event.data === "string") this.receive(event.data);
    };
    socket.onclose = (event: CloseEvent) => {
      if (socket === this.socket) this.closed(event.code);
    };
  }

  private dropSocket() {
    clearInterval(this.pingTimer);
    const socket = this.socket;
    this.socket = null;
    this.ready = false;
    if (socket && socket.readyState <= WebSocket.OPEN) socket.close(1000);
  }

  private receive(raw: string) {
    let message: components["schemas"]["WsServerMessage"];
    try {
      message = JSON.parse(raw) as components["schemas"]["WsServerMessage"];
    } catch {
      return;
    }
    switch (message.type) {
      case "ready":
        this.onReady(message.last_event_id);
        break;
      case "event":
        this.onEvent(message);
        break;
      case "ack":
        void this.options.outbox.remove(message.client_id);
        this.options.onAck?.(message.client_id, message.duplicate ?? false);
        break;
      case "error":
        if (message.client_id) void this.options.outbox.remove(message.client_id);
        this.options.onError?.(message);
        break;
      case "pong":
        break;
    }
  }

  private onReady(lastEventId: number) {
    this.ready = true;
    this.attempt = 0;
    if (this.options.cursor.get() === null) this.options.cursor.set(lastEventId);
    this.setStatus("ready");
    for (const room of this.rooms.keys()) this.send({ type: "join", room });
    void this.flush();
    clearInterval(this.pingTimer);
    this.pingTimer = setInterval(() => this.send({ type: "ping" }), this.options.pingIntervalMs);
  }

  /** Moves the cursor past a durable event (of any kind, so that none is replayed), then hands on those of known kinds. */
  private onEvent(message: WsEventMessage) {
    if (typeof message.id === "number") {
      const seen = this.options.cursor.get();
      if (seen !== null && message.id <= seen) return;
      this.options.cursor.set(message.id);
    }
    const event = asWsEvent(message);
    if (event) this.options.onEvent(event);
  }

  private async flush() {
    for (const { message } of await this.options.outbox.list()) {
      if (!this.sendInRoom(message)) return;
    }
  }

  private closed(code: number) {
    clearInterval(this.pingTimer);
    this.socket = null;
    this.ready = false;
    if (!this.running) return;
    this.setStatus("reconnecting");
    if (code === CLOSE_UNAUTHORIZED) {
      void this.options.renewToken().then((renewed) => {
        if (!renewed) this.stop();
        else if (this.running) this.scheduleReconnect();
      });
      return;
    }
    this.scheduleReconnect();
  }

  /** Waits a random time between half and all of an exponentially growing ceiling. */
  private scheduleReconnect() {
    const { baseDelayMs, maxDelayMs, random } = this.options;
    const ceiling = Math.min(maxDelayMs, baseDelayMs * 2 ** this.attempt);
    this.attempt += 1;
    const delay = Math.round(ceiling / 2 + (random() * ceiling) / 2);
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => {
      if (this.running) this.open();
    }, delay);
  }
}
