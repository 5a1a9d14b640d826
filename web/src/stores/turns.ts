import { create } from "zustand";

import type { ChatFinished } from "@/api/realtime";
import type { components } from "@/api/schema";

type StoredMessage = components["schemas"]["ConversationMessage"];
type KnowledgeSource = components["schemas"]["KnowledgeSource"];

export type TurnStatus = "queued" | "sent" | "streaming" | "finished" | "failed" | "stopped";

/** A message being sent and its answer being written, until the stored conversation holds both. */
export interface Turn {
  clientId: string;
  conversationId: string;
  /** What the user wrote; null for an answer started on another device. */
  userText: string | null;
  /** The highest message seq the conversation had when this was sent. */
  afterSeq: number;
  /** The collections the answer was asked to draw from (empty: all); null without knowledge. */
  collections: string[] | null;
  status: TurnStatus;
  model: string | null;
  text: string;
  /** The index the next token should have; later ones wait in `early`. */
  nextIndex: number;
  early: Record<number, string>;
  error: string | null;
}

/** Figures from `chat.finished` kept for an answer once it is stored. */
export interface AnswerMeta {
  usage: ChatFinished["usage"];
  costMicros: number;
  finishReason: string | null;
  collections: string[] | null;
  /** The question asked, to look up the passages the answer drew on. */
  question: string | null;
  /** The passages the answer was given, as `chat.finished` listed them. */
  sources: KnowledgeSource[] | null;
}

interface TurnsState {
  turns: Record<string, Turn>;
  /** Figures of answers already stored, by `<conversation id>:<seq>`. */
  meta: Record<string, AnswerMeta>;
  /** Figures of finished turns, waiting to be attached to their stored answer. */
  finished: Record<string, AnswerMeta>;
  /** Why stored questions got no answer, by `<conversation id>:<seq>` of the question. */
  failures: Record<string, string>;
  add: (turn: Pick<Turn, "clientId" | "conversationId" | "userText" | "afterSeq" | "collections">) => void;
  acknowledge: (clientId: string) => void;
  start: (conversationId: string, clientId: string, model: string) => void;
  append: (clientId: string, index: number, text: string) => void;
  finish: (data: ChatFinished) => void;
  fail: (clientId: string, detail: string) => void;
  stop: (clientId: string) => void;
  /** Drops the turns the stored conversation now holds, keeping their answers' figures. */
  settle: (conversationId: string, messages: StoredMessage[]) => void;
  reset: () => void;
}

export function metaKey(conversationId: string, seq: number): string {
  return `${conversationId}:${seq}`;
}

export function plainText(content: StoredMessage["content"]): string {
  if (typeof content === "string") return content;
  if (!content) return "";
  return content.map((part) => ("text" in part ? part.text : "")).join("");
}

function update(
  state: TurnsState,
  clientId: string,
  change: (turn: Turn) => Partial<Turn> | null,
): Partial<TurnsState> {
  const turn = state.turns[clientId];
  if (!turn) return {};
  const patch = change(turn);
  if (!patch) return {};
  return { turns: { ...state.turns, [clientId]: { ...turn, ...patch } } };
}

function appendToken(turn: Turn, index: number, text: string): Partial<Turn> | null {
  if (turn.status === "stopped" || index < turn.nextIndex) return null;
  if (index > turn.nextIndex) return { early: { ...turn.early, [index]: text } };
  let next = index + 1;
  let written = turn.text + text;
  const early = { ...turn.early };
  while (early[next] !== undefined) {
    written += early[next];
    delete early[next];
    next += 1;
  }
  return { text: written, nextIndex: next, early, status: "streaming" };
}

const settledStatuses: TurnStatus[] = ["finished", "stopped", "failed"];

export const useTurnsStore = create<TurnsState>()((set) => ({
  turns: {},
  meta: {},
  finished: {},
  failures: {},
  add: (turn) =>
    set((state) => ({
      turns: {
        ...state.turns,
        [turn.clientId]: {
          ...turn,
          status: "queued",
          model: null,
          text: "",
          nextIndex: 0,
          early: {},
          error: null,
        },
      },
    })),
  acknowledge: (clientId) =>
    set((state) =>
      update(state, clientId, (turn) => (turn.status === "queued" ? { status: "sent" } : null)),
    ),
  start: (conversationId, clientId, model) =>
    set((state) => {
      if (state.turns[clientId]) return update(state, clientId, () => ({ model, status: "streaming" }));
      return {
        turns: {
          ...state.turns,
          [clientId]: {
            clientId,
            conversationId,
            userText: null,
            afterSeq: Number.MAX_SAFE_INTEGER,
            collections: null,
            status: "streaming",
            model,
            text: "",
            nextIndex: 0,
            early: {},
            error: null,
          },
        },
      };
    }),
  append: (clientId, index, text) =>
    set((state) => update(state, clientId, (turn) => appendToken(turn, index, text))),
  finish: (data) =>
    set((state) => {
      const turn = state.turns[data.client_id];
      if (!turn) return {};
      return {
        ...update(state, data.client_id, (current) => ({
          status: current.status === "stopped" ? "stopped" : "finished",
        })),
        finished: {
          ...state.finished,
          [data.client_id]: {
            usage: data.usage,
            costMicros: data.cost_micros,
            finishReason: data.finish_reason,
            collections: turn.collections,
            question: turn.userText,
            sources: data.sources ?? null,
          },
        },
      };
    }),
  fail: (clientId, detail) =>
    set((state) => update(state, clientId, () => ({ status: "failed", error: detail }))),
  stop: (clientId) =>
    set((state) =>
      update(state, clientId, (turn) =>
        turn.status === "finished" || turn.status === "failed" ? null : { status: "stopped" },
      ),
    ),
  settle: (conversationId, messages) =>
    set((state) => {
      const turns = { ...state.turns };
      const meta = { ...state.meta };
      const finished = { ...state.finished };
      const failures = { ...state.failures };
      let changed = false;
      for (const turn of Object.values(state.turns)) {
        if (turn.conversationId !== conversationId || !settledStatuses.includes(turn.status)) continue;
        if (turn.userText === null) {
          delete turns[turn.clientId];
          changed = true;
          continue;
        }
        const asked = messages.find(
          (message) =>
            message.role === "user" &&
            message.seq > turn.afterSeq &&
            plainText(message.content) === turn.userText,
        );
        const answer = asked
          ? messages.find((message) => message.role === "assistant" && message.seq > asked.seq)
          : undefined;
        if (!asked || (turn.status !== "failed" && !answer)) continue;
        const figures = finished[turn.clientId];
        if (answer && figures) meta[metaKey(conversationId, answer.seq)] = figures;
        if (turn.status === "failed") failures[metaKey(conversationId, asked.seq)] = turn.error ?? "";
        delete finished[turn.clientId];
        delete turns[turn.clientId];
        changed = true;
      }
      return changed ? { turns, meta, finished, failures } : {};
    }),
  reset: () => set({ turns: {}, meta: {}, finished: {}, failures: {} }),
}));
