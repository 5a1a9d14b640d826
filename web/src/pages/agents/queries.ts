import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";

import { api, unwrap } from "@/api/client";
import { queryKeys } from "@/api/keys";
import type { components } from "@/api/schema";
import { mergeEvents } from "./timeline";

type Schemas = components["schemas"];
export type Agent = Schemas["Agent"];
export type AgentDefinition = Schemas["AgentDefinition"];
export type AgentRequest = Schemas["AgentRequest"];
export type Run = Schemas["Run"];
export type RunEvent = Schemas["RunEvent"];
export type RunStatus = Schemas["RunStatus"];
export type Schedule = Schemas["Schedule"];
export type ScheduleRequest = Schemas["ScheduleRequest"];
export type ConsentPolicy = Schemas["ConsentPolicy"];

/**
 * This page's query keys. The lists reuse the shared keys, whose cached shape is the API's answer,
 * so that the real-time dispatcher's invalidations (`runs`, a run's events) reach them.
 */
export const agentKeys = {
  list: queryKeys.agents,
  detail: (agent: string) => [...queryKeys.agents, "detail", agent] as const,
  runs: queryKeys.runs,
  runList: (agent: string | null) => [...queryKeys.runs, "list", agent ?? "*"] as const,
  run: (id: string) => [...queryKeys.runs, "detail", id] as const,
  runEvents: queryKeys.runEvents,
  schedules: ["schedules"] as const,
  models: queryKeys.models,
  collections: queryKeys.collections,
};

/** Runs in these states are over: nothing more happens to them. */
export const finishedStatuses: readonly RunStatus[] = ["succeeded", "failed", "cancelled"];

export function isFinished(status: RunStatus) {
  return finishedStatuses.includes(status);
}

export function useAgents() {
  return useQuery({
    queryKey: agentKeys.list,
    queryFn: () => unwrap(api.GET("/api/v1/agents")),
    select: (list) => list.agents,
  });
}

export function useAgent(name: string) {
  return useQuery({
    queryKey: agentKeys.detail(name),
    queryFn: () => unwrap(api.GET("/api/v1/agents/{agent}", { params: { path: { agent: name } } })),
  });
}

export function useModelNames() {
  return useQuery({
    queryKey: agentKeys.models,
    staleTime: 5 * 60_000,
    queryFn: () => unwrap(api.GET("/v1/models")),
    select: (list) => list.data.map((model) => model.id),
  });
}

export function useCollections() {
  return useQuery({
    queryKey: agentKeys.collections,
    queryFn: () => unwrap(api.GET("/api/v1/collections")),
    select: (list) => list.collections,
  });
}

export function useSaveAgent(existing: string | null) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (request: AgentRequest) =>
      existing
        ? unwrap(
            api.PUT("/api/v1/agents/{agent}", { params: { path: { agent: existing } }, body: request }),
          )
        : unwrap(api.POST("/api/v1/agents", { body: request })),
    onSuccess: (agent) => {
      if (existing && existing !== agent.name) {
        queryClient.removeQueries({ queryKey: agentKeys.detail(existing) });
      }
      queryClient.setQueryData(agentKeys.detail(agent.name), agent);
      void queryClient.invalidateQueries({ queryKey: agentKeys.list, exact: true });
    },
  });
}

export function useDeleteAgent() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (name: string) =>
      unwrap(api.DELETE("/api/v1/agents/{agent}", { params: { path: { agent: name } } })),
    onSuccess: (_deleted, name) => {
      queryClient.removeQueries({ queryKey: agentKeys.detail(name) });
      void queryClient.invalidateQueries({ queryKey: agentKeys.list, exact: true });
      void queryClient.invalidateQueries({ queryKey: agentKeys.runs });
      void queryClient.invalidateQueries({ queryKey: agentKeys.schedules });
    },
  });
}

export function useRevokeGrant(agent: string) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (tool: string) =>
      unwrap(
        api.DELETE("/api/v1/agents/{agent}/grants/{tool}", { params: { path: { agent, tool } } }),
      ),
    onSuccess: (_revoked, tool) => {
      queryClient.setQueryData<Agent>(agentKeys.detail(agent), (current) =>
        current && { ...current, grants: current.grants.filter((grant) => grant.tool !== tool) },
      );
      void queryClient.invalidateQueries({ queryKey: agentKeys.detail(agent) });
    },
  });
}

/** The caller's runs, newest first; of one agent when named. */
export function useRuns(agent: string | null = null) {
  return useQuery({
    queryKey: agentKeys.runList(agent),
    queryFn: () =>
      unwrap(api.GET("/api/v1/runs", { params: { query: agent ? { agent, limit: 100 } : { limit: 100 } } })),
    select: (list) => list.runs,
  });
}

/** Statuses after which a run changes no more. */
const FINISHED = new Set(["succeeded", "failed", "cancelled"]);

export function useRun(id: string) {
  return useQuery({
    queryKey: agentKeys.run(id),
    queryFn: () => unwrap(api.GET("/api/v1/runs/{id}", { params: { path: { id } } })),
    // Its events bring changes as they happen; reading it again every few seconds while it
    // works also catches a change whose event a reconnect fell between.
    refetchInterval: (query) => (query.state.data && FINISHED.has(query.state.data.status) ? false : 3_000),
  });
}

export function useStartRun(agent: string) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (goal: string) =>
      unwrap(
        api.POST("/api/v1/agents/{agent}/runs", { params: { path: { agent } }, body: { goal } }),
      ),
    onSuccess: (run) => {
      queryClient.setQueryData(agentKeys.run(run.id), run);
      void queryClient.invalidateQueries({ queryKey: [...agentKeys.runs, "list"] });
    },
  });
}

export type RunAction = "pause" | "resume" | "cancel";

export function useRunAction(id: string) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (action: RunAction) => {
      const options = { params: { path: { id } } };
      switch (action) {
        case "pause":
          return unwrap(api.POST("/api/v1/runs/{id}/pause", options));
        case "resume":
          return unwrap(api.POST("/api/v1/runs/{id}/resume", options));
        case "cancel":
          return unwrap(api.POST("/api/v1/runs/{id}/cancel", options));
      }
    },
    onSuccess: (run) => {
      queryClient.setQueryData(agentKeys.run(id), run);
      void queryClient.invalidateQueries({ queryKey: [...agentKeys.runs, "list"] });
    },
  });
}

/** The most events one request asks for (the API's maximum). */
const EVENTS_PAGE = 1000;

/** Every event of a run after `after`, a page at a time. */
async function eventsAfter(id: string, after: number): Promise<RunEvent[]> {
  const events: RunEvent[] = [];
  let cursor = after;
  for (;;) {
    const page = await unwrap(
      api.GET("/api/v1/runs/{id}/events", {
        params: { path: { id }, query: { after: cursor, limit: EVENTS_PAGE } },
      }),
    );
    events.push(...page.events);
    const last = page.events.at(-1);
    if (!last || page.events.length < EVENTS_PAGE) return events;
    cursor = last.seq;
  }
}

/**
 * A run's timeline: its history first, then (each time the real-time channel tells of a new
 * event in the run's room, which invalidates this query) only the events after the last one
 * known, merged by `seq` so that none is shown twice.
 */
export function useRunEvents(id: string, pollMs: number | false = false) {
  const queryClient = useQueryClient();
  return useQuery({
    queryKey: agentKeys.runEvents(id),
    staleTime: Infinity,
    refetchInterval: pollMs,
    queryFn: async () => {
      const known = queryClient.getQueryData<Schemas["RunEvents"]>(agentKeys.runEvents(id));
      const after = known?.events.at(-1)?.seq ?? 0;
      const fresh = await eventsAfter(id, after);
      return { events: mergeEvents(known?.events ?? [], fresh) };
    },
    select: (list) => list.events,
  });
}

/** Adds events that arrived over the real-time channel to the cached timeline. */
export function appendRunEvents(
  queryClient: ReturnType<typeof useQueryClient>,
  id: string,
  events: RunEvent[],
) {
  queryClient.setQueryData<Schemas["RunEvents"]>(agentKeys.runEvents(id), (list) =>
    list && { events: mergeEvents(list.events, events) },
  );
}

export function useSchedules() {
  return useQuery({
    queryKey: agentKeys.schedules,
    queryFn: () => unwrap(api.GET("/api/v1/schedules")),
    select: (list) => list.schedules,
  });
}

export function useCreateSchedule() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (request: ScheduleRequest) => unwrap(api.POST("/api/v1/schedules", { body: request })),
    onSuccess: () => void queryClient.invalidateQueries({ queryKey: agentKeys.schedules }),
  });
}

export function useToggleSchedule() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: ({ id, enable }: { id: string; enable: boolean }) => {
      const options = { params: { path: { schedule: id } } };
      return enable
        ? unwrap(api.POST("/api/v1/schedules/{schedule}/enable", options))
        : unwrap(api.POST("/api/v1/schedules/{schedule}/disable", options));
    },
    onSuccess: () => void queryClient.invalidateQueries({ queryKey: agentKeys.schedules }),
  });
}

export function useDeleteSchedule() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (id: string) =>
      unwrap(api.DELETE("/api/v1/schedules/{schedule}", { params: { path: { schedule: id } } })),
    onSuccess: () => void queryClient.invalidateQueries({ queryKey: agentKeys.schedules }),
  });
}
