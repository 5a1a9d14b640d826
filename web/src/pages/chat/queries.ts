import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";

import { api, unwrap } from "@/api/client";
import { queryKeys } from "@/api/keys";
import type { components } from "@/api/schema";

type ConversationPage = components["schemas"]["ConversationPage"];
export type ConversationSummary = components["schemas"]["ConversationSummary"];
export type ConversationDetail = components["schemas"]["ConversationDetail"];
export type StoredMessage = components["schemas"]["ConversationMessage"];

export function useConversations() {
  return useQuery({
    queryKey: queryKeys.conversationList,
    queryFn: () => unwrap(api.GET("/api/v1/conversations", { params: { query: { limit: 200 } } })),
    select: (page) => page.conversations,
  });
}

export function useConversation(id: string | undefined) {
  return useQuery({
    queryKey: queryKeys.conversation(id ?? ""),
    enabled: Boolean(id),
    queryFn: () =>
      unwrap(api.GET("/api/v1/conversations/{id}", { params: { path: { id: id ?? "" } } })),
  });
}

function patchList(
  page: ConversationPage | undefined,
  change: (conversations: ConversationSummary[]) => ConversationSummary[],
): ConversationPage | undefined {
  return page && { ...page, conversations: change(page.conversations) };
}

export function useCreateConversation() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (model: string | null) =>
      unwrap(api.POST("/api/v1/conversations", { body: { model } })),
    onSuccess: (conversation) => {
      queryClient.setQueryData(queryKeys.conversation(conversation.id), conversation);
      void queryClient.invalidateQueries({ queryKey: queryKeys.conversationList });
    },
  });
}

export function useRenameConversation() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: ({ id, title }: { id: string; title: string }) =>
      unwrap(
        api.PATCH("/api/v1/conversations/{id}", { params: { path: { id } }, body: { title } }),
      ),
    onSuccess: (renamed) => {
      queryClient.setQueryData<ConversationPage>(queryKeys.conversationList, (page) =>
        patchList(page, (list) =>
          list.map((item) => (item.id === renamed.id ? { ...item, title: renamed.title } : item)),
        ),
      );
      queryClient.setQueryData<ConversationDetail>(queryKeys.conversation(renamed.id), (detail) =>
        detail && { ...detail, title: renamed.title },
      );
    },
  });
}

export function useDeleteConversation() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (id: string) =>
      unwrap(api.DELETE("/api/v1/conversations/{id}", { params: { path: { id } } })),
    onSuccess: (_deleted, id) => {
      queryClient.setQueryData<ConversationPage>(queryKeys.conversationList, (page) =>
        patchList(page, (list) => list.filter((item) => item.id !== id)),
      );
      queryClient.removeQueries({ queryKey: queryKeys.conversation(id) });
    },
  });
}

export function useModels() {
  return useQuery({
    queryKey: queryKeys.models,
    staleTime: 5 * 60_000,
    queryFn: () => unwrap(api.GET("/v1/models")),
    select: (list) => list.data,
  });
}

export function useCollections() {
  return useQuery({
    queryKey: queryKeys.collections,
    queryFn: () => unwrap(api.GET("/api/v1/collections")),
    select: (list) => list.collections,
  });
}

/**
 * The passages kai's knowledge holds for a question: the same search the server ran to answer it,
 * shown as the answer's sources.
 */
export function useSources(question: string | null, collections: string[] | null) {
  return useQuery({
    queryKey: queryKeys.sources(question ?? "", collections ?? []),
    enabled: Boolean(question) && collections !== null,
    staleTime: Infinity,
    queryFn: () =>
      unwrap(
        api.POST("/api/v1/search", {
          body: { query: question ?? "", collections: collections ?? [], limit: 5 },
        }),
      ),
    select: (response) => response.hits,
  });
}
