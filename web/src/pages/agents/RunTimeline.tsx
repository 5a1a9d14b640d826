import { useTranslation } from "react-i18next";

import { cn } from "@/lib/utils";
import { useFormat } from "./format";
import type { RunEvent } from "./queries";
import { eventDetails, field, isFailure, isKnownKind } from "./timeline";

function useDescribe() {
  const { t } = useTranslation("agents");
  return (event: RunEvent): string => {
    if (!isKnownKind(event.kind)) return event.kind;
    const data = event.data as Record<string, unknown>;
    switch (event.kind) {
      case "created":
        return t("timeline.created", { model: field(event, "model") });
      case "started":
        return data.resumed === true ? t("timeline.resumed") : t("timeline.started");
      case "plan": {
        const steps = Array.isArray(data.steps) ? data.steps.length : 0;
        return t("timeline.plan", { count: steps });
      }
      case "step_started":
        return t("timeline.step_started", { number: field(event, "number"), title: field(event, "title") });
      case "model_call":
        return t("timeline.model_call", {
          model: field(event, "model"),
          input: field(event, "input_tokens"),
          output: field(event, "output_tokens"),
        });
      case "tool_call":
        return t("timeline.tool_call", { tool: field(event, "tool") });
      case "tool_result":
        return data.ok === false
          ? t("timeline.tool_failed", { tool: field(event, "tool") })
          : t("timeline.tool_result", { tool: field(event, "tool") });
      case "requested":
        return t("timeline.requested", { tool: field(event, "tool") });
      case "decided": {
        const status = field(event, "status");
        if (status === "approved" || status === "denied" || status === "expired") {
          return t(`timeline.decided.${status}`);
        }
        return t("timeline.decided.other", { status });
      }
      case "step_finished":
        return t("timeline.step_finished", { number: field(event, "number") });
      case "step_failed":
        return t("timeline.step_failed", { number: field(event, "number"), error: field(event, "error") });
      case "vetoed":
        return t("timeline.vetoed", { reason: field(event, "reason") });
      case "error":
        return t("timeline.error", { message: field(event, "message") });
      case "paused":
        return t("timeline.paused");
      case "queued":
        return t("timeline.queued");
      case "finished": {
        const status = field(event, "status");
        const known = status === "succeeded" || status === "failed" || status === "cancelled";
        return t("timeline.finished", { status: known ? t(`status.${status}`) : status });
      }
    }
  };
}

/** What of an event's details is worth unfolding (beyond what its line says). */
function extra(event: RunEvent): Record<string, unknown> | null {
  const details = eventDetails(event);
  const shown: Record<string, string[]> = {
    started: ["resumed"],
    step_started: ["number", "title"],
    step_finished: ["number"],
    step_failed: ["number", "error"],
    error: ["message"],
    decided: ["status"],
    tool_call: ["tool"],
    tool_result: ["tool", "ok"],
    created: ["model"],
    model_call: ["model", "input_tokens", "output_tokens"],
    vetoed: ["reason"],
  };
  for (const key of shown[event.kind] ?? []) delete details[key];
  return Object.keys(details).length > 0 ? details : null;
}

/** A run's timeline, oldest first; new events are announced politely as they arrive. */
export function RunTimeline({ events }: { events: RunEvent[] }) {
  const { t } = useTranslation("agents");
  const format = useFormat();
  const describe = useDescribe();
  if (events.length === 0) {
    return <p className="text-muted-foreground text-sm">{t("timeline.empty")}</p>;
  }
  return (
    <div role="log" aria-live="polite" aria-label={t("timeline.label")}>
      <ol className="flex flex-col">
        {events.map((event) => {
          const details = extra(event);
          const failed = isFailure(event);
          return (
            <li
              key={event.seq}
              data-seq={event.seq}
              className={cn("border-l-2 py-1.5 pl-3", failed ? "border-destructive" : "border-border")}
            >
              <div className="flex flex-wrap items-baseline gap-x-3">
                <time dateTime={event.at} className="text-muted-foreground font-mono text-xs">
                  {format.time(event.at)}
                </time>
                <span className={cn("text-sm", failed && "text-destructive font-medium")}>{describe(event)}</span>
              </div>
              {details && (
                <details className="mt-1">
                  <summary className="text-muted-foreground cursor-pointer text-xs">
                    {t("timeline.details")}
                  </summary>
                  <pre className="bg-muted mt-1 max-h-64 overflow-auto rounded-md p-2 text-xs whitespace-pre-wrap">
                    {JSON.stringify(details, null, 2)}
                  </pre>
                </details>
              )}
            </li>
          );
        })}
      </ol>
    </div>
  );
}
