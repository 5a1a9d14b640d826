import type { components } from "@/api/schema";

type RunEvent = components["schemas"]["RunEvent"];

/** `known` and `incoming` as one timeline in `seq` order, each event once (the later copy wins). */
export function mergeEvents(known: RunEvent[], incoming: RunEvent[]): RunEvent[] {
  if (incoming.length === 0) return known;
  const last = known.at(-1)?.seq ?? 0;
  // The usual case: only events after the last one known, in order.
  if (incoming.every((event, index) => event.seq > (index === 0 ? last : incoming[index - 1]!.seq))) {
    return [...known, ...incoming];
  }
  const bySeq = new Map<number, RunEvent>();
  for (const event of known) bySeq.set(event.seq, event);
  for (const event of incoming) bySeq.set(event.seq, event);
  return [...bySeq.values()].sort((a, b) => a.seq - b.seq);
}

/** The kinds of timeline events the page names; others are shown by their own name. */
export const eventKinds = [
  "created",
  "started",
  "plan",
  "step_started",
  "model_call",
  "tool_call",
  "tool_result",
  "requested",
  "decided",
  "step_finished",
  "step_failed",
  "vetoed",
  "error",
  "paused",
  "queued",
  "finished",
] as const;

export type EventKind = (typeof eventKinds)[number];

export function isKnownKind(kind: string): kind is EventKind {
  return (eventKinds as readonly string[]).includes(kind);
}

/** Whether an event reports something that went wrong. */
export function isFailure(event: RunEvent): boolean {
  const data = event.data as Record<string, unknown>;
  if (event.kind === "tool_result") return data.ok === false;
  if (event.kind === "finished") return data.status === "failed";
  return event.kind === "error" || event.kind === "step_failed" || event.kind === "vetoed";
}

/** A field of an event's details as text ("" when absent). */
export function field(event: RunEvent, name: string): string {
  const value = (event.data as Record<string, unknown>)[name];
  if (value === undefined || value === null) return "";
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return JSON.stringify(value);
}

/** The details of an event worth showing, without the `type` that repeats its kind. */
export function eventDetails(event: RunEvent): Record<string, unknown> {
  const details: Record<string, unknown> = { ...(event.data as Record<string, unknown>) };
  delete details.type;
  return details;
}
