import type { QueryClient } from "@tanstack/react-query";

import { queryKeys } from "@/api/keys";
import type { WsEvent } from "@/api/realtime";
import type { components } from "@/api/schema";
import { useTurnsStore } from "@/stores/turns";
import { useUploadsStore } from "@/stores/uploads";

type RunRequestList = components["schemas"]["RunRequestList"];

function runIdOf(room: string): string | null {
  return room.startsWith("run:") ? room.slice("run:".length) : null;
}

/** Applies an event of the real-time channel to the stores and the query cache. */
export function dispatchEvent(event: WsEvent, queryClient: QueryClient) {
  const turns = useTurnsStore.getState();
  switch (event.kind) {
    case "chat.started":
      turns.start(event.data.conversation_id, event.data.client_id, event.data.model);
      break;
    case "chat.token":
      turns.append(event.data.client_id, event.data.index, event.data.text);
      break;
    case "chat.finished":
      turns.finish(event.data);
      void queryClient.invalidateQueries({ queryKey: queryKeys.conversation(event.data.conversation_id) });
      void queryClient.invalidateQueries({ queryKey: queryKeys.conversationList });
      break;
    case "chat.failed":
      turns.fail(event.data.client_id, event.data.problem.detail);
      void queryClient.invalidateQueries({ queryKey: queryKeys.conversation(event.data.conversation_id) });
      break;
    case "conversation.changed": {
      const key = queryKeys.conversation(event.data.conversation_id);
      if (event.data.change === "deleted") queryClient.removeQueries({ queryKey: key });
      else void queryClient.invalidateQueries({ queryKey: key });
      void queryClient.invalidateQueries({ queryKey: queryKeys.conversationList });
      break;
    }
    case "run.event": {
      const runId = runIdOf(event.room);
      // The run's own figures (status, steps, usage) change with its timeline: every query
      // of that run is read again, its events and its details alike.
      if (runId) {
        void queryClient.invalidateQueries({
          predicate: (query) => query.queryKey[0] === queryKeys.runs[0] && query.queryKey.includes(runId),
        });
      }
      break;
    }
    case "run.status":
      void queryClient.invalidateQueries({ queryKey: queryKeys.runs });
      break;
    case "consent.requested": {
      const request = event.data;
      queryClient.setQueryData<RunRequestList>(queryKeys.pendingRequests, (list) => ({
        requests: [...(list?.requests ?? []).filter((known) => known.id !== request.id), request],
      }));
      // Its run is waiting now.
      void queryClient.invalidateQueries({ queryKey: queryKeys.runs });
      break;
    }
    case "consent.decided": {
      const { request_id } = event.data;
      queryClient.setQueryData<RunRequestList>(queryKeys.pendingRequests, (list) =>
        list && { requests: list.requests.filter((request) => request.id !== request_id) },
      );
      break;
    }
    case "knowledge.progress":
      useUploadsStore.getState().progress(event.data.artifact_id, event.data.status);
      void queryClient.invalidateQueries({ queryKey: queryKeys.artifacts });
      void queryClient.invalidateQueries({ queryKey: queryKeys.knowledgeStatus });
      break;
  }
}
