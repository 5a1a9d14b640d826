/**
 * The messages of the real-time channel at /api/v1/ws (docs/realtime.md), taken from the
 * OpenAPI document's components `WsClientMessage`, `WsServerMessage` and `WsEventData`
 * (generated into ./schema.d.ts), so that the UI cannot drift from the server.
 *
 * The document describes an event's `kind` as a string and its `data` as the union of every
 * kind's data; {@link WsEventData} pairs each kind with its data as the server's
 * `kai_proto::realtime::WsEventData` does, and {@link WsEvent} is the discriminated union built
 * from it. Compile-time checks below fail when the generated union gains or loses a member.
 */
import type { components } from "./schema";

type Schemas = components["schemas"];

/**
 * A room of the channel. The document types rooms as strings; these are the forms the server
 * accepts (`user`, `conversation:<id>`, `run:<id>`), for the rooms the UI joins.
 */
export type Room = "user" | `conversation:${string}` | `run:${string}`;

/** A message from the client, as the document describes it. */
export type WsClientMessage = Schemas["WsClientMessage"];

type ClientMessageOf<T extends WsClientMessage["type"]> = Extract<WsClientMessage, { type: T }>;

/** `chat`: a message for a conversation; its `client_id` is a UUID the client makes, so that a retry is stored and answered once. */
export type ChatMessage = ClientMessageOf<"chat">;

export type ChatStarted = Schemas["ChatStarted"];
export type ChatToken = Schemas["ChatToken"];
export type ChatFinished = Schemas["ChatFinished"];
export type ChatFailed = Schemas["ChatFailed"];
export type ConversationChanged = Schemas["ConversationChanged"];
export type RunStatusChanged = Schemas["RunStatusChanged"];
export type ConsentDecided = Schemas["ConsentDecided"];
export type KnowledgeProgress = Schemas["KnowledgeProgress"];

/** The data of each kind of event (the kinds `kai_proto::realtime::WsEventData` lists). */
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

// The kinds' data are exactly the members of the generated `WsEventData` union: a schema added
// to (or dropped from) the document without a kind here fails to compile.
type Equals<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Assert<T extends true> = T;
export type WsEventDataMatchesDocument = Assert<
  Equals<WsEventData[WsEventKind], Schemas["WsEventData"]>
>;

/** An `event` message as the document describes it: any `kind`, any kind's `data`. */
export type WsEventMessage = Extract<Schemas["WsServerMessage"], { type: "event" }>;

/**
 * An event, its `data` narrowed by its `kind`. `id` is a number for durable events (replayed
 * after a reconnect), null (or absent) for ephemeral ones.
 */
export type WsEvent = {
  [K in WsEventKind]: Omit<WsEventMessage, "kind" | "data"> & { kind: K; data: WsEventData[K] };
}[WsEventKind];

/** A message from the server, with events narrowed by kind. */
export type WsServerMessage = Exclude<Schemas["WsServerMessage"], { type: "event" }> | WsEvent;

export type WsError = Extract<WsServerMessage, { type: "error" }>;

/** Every kind the UI knows; `satisfies` keeps it in step with {@link WsEventData}. */
const eventKinds = {
  "chat.started": true,
  "chat.token": true,
  "chat.finished": true,
  "chat.failed": true,
  "conversation.changed": true,
  "run.event": true,
  "run.status": true,
  "consent.requested": true,
  "consent.decided": true,
  "knowledge.progress": true,
} as const satisfies Record<WsEventKind, true>;

export function isWsEventKind(kind: string): kind is WsEventKind {
  return Object.hasOwn(eventKinds, kind);
}

/**
 * The event with its data typed by its kind, or null for a kind this UI does not know (from a
 * newer server). The data is trusted to be the kind's, as the server pairs them.
 */
export function asWsEvent(message: WsEventMessage): WsEvent | null {
  return isWsEventKind(message.kind) ? (message as WsEvent) : null;
}
