/**
 * The messages of the real-time channel at /api/v1/ws, as docs/realtime.md describes them.
 * Written by hand until the OpenAPI document carries `WsClientMessage` and `WsServerMessage`;
 * then these become aliases of the generated components.
 */
import type { components } from "./schema";

type Schemas = components["schemas"];

export type Room = "user" | `conversation:${string}` | `run:${string}`;

export interface ChatMessage {
  type: "chat";
  /** A UUID the client makes, so that a retry is stored and answered once. */
  client_id: string;
  conversation_id: string;
  content: Schemas["MessageContent"];
  model?: string;
  knowledge?: Schemas["KnowledgeOptions"];
}

export type WsClientMessage =
  | { type: "hello"; token: string; after?: number | null }
  | { type: "auth"; token: string }
  | { type: "join"; room: Room }
  | { type: "leave"; room: Room }
  | ChatMessage
  | { type: "ping" };

export interface ChatStarted {
  conversation_id: string;
  client_id: string;
  model: string;
}

export interface ChatToken {
  conversation_id: string;
  client_id: string;
  /** The piece's place in the answer, from 0. */
  index: number;
  text: string;
}

export interface ChatFinished {
  conversation_id: string;
  client_id: string;
  finish_reason: string | null;
  usage: Schemas["CompletionUsage"];
  /** What the answer cost, in millionths of a dollar. */
  cost_micros: number;
}

export interface ChatFailed {
  conversation_id: string;
  client_id: string;
  problem: Schemas["Problem"];
}

export interface ConversationChanged {
  conversation_id: string;
  change: "created" | "message" | "renamed" | "deleted";
}

export interface RunStatusChanged {
  run_id: string;
  agent: string;
  status: Schemas["RunStatus"];
}

export interface ConsentDecided {
  request_id: string;
  run_id: string;
  decision: Schemas["RequestStatus"];
}

export interface KnowledgeProgress {
  artifact_id: string;
  status: Schemas["IndexState"];
  chunks: number;
}

/** The data of each kind of event. */
export interface WsEventData {
  "chat.started": ChatStarted;
  "chat.token": ChatToken;
  "chat.finished": ChatFinished;
  "chat.failed": ChatFailed;
  "conversation.changed": ConversationChanged;
  "run.event": Schemas["RunEvent"];
  "run.status": RunStatusChanged;
  "consent.requested": Schemas["RunRequest"];
  "consent.decided": ConsentDecided;
  "knowledge.progress": KnowledgeProgress;
}

export type WsEventKind = keyof WsEventData;

export type WsEvent = {
  [K in WsEventKind]: {
    type: "event";
    /** A number for durable events (replayed after a reconnect), null for ephemeral ones. */
    id: number | null;
    room: Room;
    kind: K;
    data: WsEventData[K];
  };
}[WsEventKind];

export type WsServerMessage =
  | { type: "ready"; user_id: string; last_event_id: number }
  | WsEvent
  | { type: "ack"; client_id: string; duplicate?: boolean }
  | { type: "error"; code: string; detail: string; client_id?: string; room?: string }
  | { type: "pong" };

export type WsError = Extract<WsServerMessage, { type: "error" }>;
