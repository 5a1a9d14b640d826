import { keepPreviousData, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";

import { api, unwrap } from "@/api/client";
import { queryKeys } from "@/api/keys";
import type { components } from "@/api/schema";

export type Collection = components["schemas"]["Collection"];
export type Artifact = components["schemas"]["Artifact"];
export type IndexState = components["schemas"]["IndexState"];
export type SearchMode = components["schemas"]["SearchMode"];
export type SearchHit = components["schemas"]["SearchHit"];
export type NoteSummary = components["schemas"]["NoteSummary"];
export type Note = components["schemas"]["Note"];
export type NoteVersion = components["schemas"]["NoteVersion"];
export type Memory = components["schemas"]["Memory"];

/**
 * This page's query keys. Collections, artifacts and the indexing status sit under the shared
 * roots (the chat's picker reads the same collections; the real-time channel invalidates
 * artifacts and status when indexing moves on).
 */
export const knowledgeKeys = {
  collections: queryKeys.collections,
  artifacts: (collection: string | null) => [...queryKeys.artifacts, "list", collection] as const,
  status: queryKeys.knowledgeStatus,
  search: (query: string, mode: SearchMode) => ["knowledge", "search", query, mode] as const,
  notes: ["knowledge", "notes"] as const,
  noteList: (tag: string | null) => ["knowledge", "notes", "list", tag] as const,
  note: (id: string) => ["knowledge", "notes", "detail", id] as const,
  noteVersions: (id: string) => ["knowledge", "notes", "versions", id] as const,
  noteDiff: (id: string, from: number, to: number) =>
    ["knowledge", "notes", "diff", id, from, to] as const,
  memory: ["knowledge", "memory"] as const,
  memoryList: (query: string, history: boolean) =>
    ["knowledge", "memory", "list", query, history] as const,
};

/** Indexing states that will change on their own: worth polling for. */
const IN_PROGRESS: IndexState[] = ["pending", "keyword_only"];

export function isIndexing(state: IndexState) {
  return IN_PROGRESS.includes(state);
}

// --- Collections -----------------------------------------------------------------------------

export function useCollections() {
  return useQuery({
    queryKey: knowledgeKeys.collections,
    queryFn: () => unwrap(api.GET("/api/v1/collections")),
    select: (list) => list.collections,
  });
}

export function useCreateCollection() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (body: { name: string; description: string }) =>
      unwrap(api.POST("/api/v1/collections", { body })),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: knowledgeKeys.collections }),
  });
}

export function useDeleteCollection() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (id: string) =>
      unwrap(api.DELETE("/api/v1/collections/{id}", { params: { path: { id } } })),
    onSuccess: () => {
      void queryClient.invalidateQueries({ queryKey: knowledgeKeys.collections });
      void queryClient.invalidateQueries({ queryKey: queryKeys.artifacts });
    },
  });
}

// --- Artifacts -------------------------------------------------------------------------------

export function useArtifacts(collection: string | null) {
  return useQuery({
    queryKey: knowledgeKeys.artifacts(collection),
    queryFn: () =>
      unwrap(
        api.GET("/api/v1/artifacts", {
          params: { query: { collection: collection ?? undefined, limit: 200 } },
        }),
      ),
    select: (page) => page.artifacts,
    // Until every version is indexed, look again now and then (the real-time channel also
    // invalidates this when indexing moves on).
    refetchInterval: (query) =>
      query.state.data?.artifacts.some((artifact) => isIndexing(artifact.current.index_state))
        ? 3000
        : false,
  });
}

export function useDeleteArtifact() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (id: string) =>
      unwrap(api.DELETE("/api/v1/artifacts/{id}", { params: { path: { id } } })),
    onSuccess: () => {
      void queryClient.invalidateQueries({ queryKey: queryKeys.artifacts });
      void queryClient.invalidateQueries({ queryKey: knowledgeKeys.status });
    },
  });
}

export function useKnowledgeStatus() {
  return useQuery({
    queryKey: knowledgeKeys.status,
    queryFn: () => unwrap(api.GET("/api/v1/knowledge/status")),
    refetchInterval: (query) => {
      const status = query.state.data;
      return status && status.pending + status.keyword_only > 0 ? 5000 : false;
    },
  });
}

// --- Search ----------------------------------------------------------------------------------

export function useSearch(query: string, mode: SearchMode) {
  return useQuery({
    queryKey: knowledgeKeys.search(query, mode),
    enabled: query.trim() !== "",
    placeholderData: keepPreviousData,
    queryFn: () => unwrap(api.POST("/api/v1/search", { body: { query, mode, limit: 20 } })),
  });
}

// --- Notes -----------------------------------------------------------------------------------

export function useNotes(tag: string | null = null) {
  return useQuery({
    queryKey: knowledgeKeys.noteList(tag),
    queryFn: () =>
      unwrap(api.GET("/api/v1/notes", { params: { query: { tag: tag ?? undefined, limit: 500 } } })),
    select: (list) => list.notes,
  });
}

/** Notes tagged `template`: what a new note can start from. */
export function useTemplates() {
  return useNotes("template");
}

export function useNote(id: string | undefined) {
  return useQuery({
    queryKey: knowledgeKeys.note(id ?? ""),
    enabled: Boolean(id),
    queryFn: () => unwrap(api.GET("/api/v1/notes/{id}", { params: { path: { id: id ?? "" } } })),
  });
}

export interface NewNote {
  title: string;
  body?: string;
  tags?: string[];
  template?: string | null;
  collection_id?: string | null;
}

export function useCreateNote() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (body: NewNote) => unwrap(api.POST("/api/v1/notes", { body })),
    onSuccess: (note) => {
      queryClient.setQueryData(knowledgeKeys.note(note.id), note);
      void queryClient.invalidateQueries({ queryKey: knowledgeKeys.notes });
    },
  });
}

export interface NoteChange {
  title?: string;
  body?: string;
  tags?: string[];
}

export function useUpdateNote(id: string) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (body: NoteChange) =>
      unwrap(api.PATCH("/api/v1/notes/{id}", { params: { path: { id } }, body })),
    onSuccess: (note) => {
      queryClient.setQueryData(knowledgeKeys.note(note.id), note);
      // Other notes' backlinks and the list's titles and tags may have changed.
      void queryClient.invalidateQueries({ queryKey: knowledgeKeys.notes });
    },
  });
}

export function useDeleteNote() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (id: string) =>
      unwrap(api.DELETE("/api/v1/notes/{id}", { params: { path: { id } } })),
    onSuccess: (_nothing, id) => {
      queryClient.removeQueries({ queryKey: knowledgeKeys.note(id) });
      void queryClient.invalidateQueries({ queryKey: knowledgeKeys.notes });
    },
  });
}

export function useNoteVersions(id: string, enabled: boolean) {
  return useQuery({
    queryKey: knowledgeKeys.noteVersions(id),
    enabled,
    queryFn: () =>
      unwrap(api.GET("/api/v1/notes/{id}/versions", { params: { path: { id } } })),
    select: (list) => list.versions,
  });
}

export function useNoteDiff(id: string, from: number | null, to: number | null) {
  return useQuery({
    queryKey: knowledgeKeys.noteDiff(id, from ?? 0, to ?? 0),
    enabled: from !== null && to !== null && from !== to,
    staleTime: Infinity,
    queryFn: () =>
      unwrap(
        api.GET("/api/v1/notes/{id}/diff", {
          params: { path: { id }, query: { from: from ?? 1, to: to ?? 1 } },
          parseAs: "text",
        }),
      ),
  });
}

// --- Memory ----------------------------------------------------------------------------------

export function useMemory(query: string, history: boolean) {
  return useQuery({
    queryKey: knowledgeKeys.memoryList(query, history),
    placeholderData: keepPreviousData,
    queryFn: () =>
      unwrap(
        api.GET("/api/v1/memory", {
          params: { query: { q: query || undefined, history: history || undefined } },
        }),
      ),
    select: (list) => list.memories,
  });
}

export function useRemember() {
  const queryClient = useQueryClient();
  return useMutation({
    /** A new fact, or with `supersedes` the correction of an earlier one (kept as history). */
    mutationFn: (body: { text: string; supersedes?: string | null }) =>
      unwrap(api.POST("/api/v1/memory", { body })),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: knowledgeKeys.memory }),
  });
}

export function useForget() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (id: string) =>
      unwrap(api.DELETE("/api/v1/memory/{id}", { params: { path: { id } } })),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: knowledgeKeys.memory }),
  });
}
