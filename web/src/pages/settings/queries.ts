import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";

import { api, unwrap } from "@/api/client";
import { queryKeys } from "@/api/keys";
import type { components } from "@/api/schema";

type Schemas = components["schemas"];
export type ApiKey = Schemas["ApiKey"];
export type CreatedApiKey = Schemas["CreatedApiKey"];
export type Scope = Schemas["Scope"];
export type KeyBudget = Schemas["KeyBudget"];
export type UsageGroup = Schemas["UsageGroupTotals"];
export type VaultStatus = Schemas["VaultStatus"];
export type SecretInfo = Schemas["SecretInfo"];
export type Provider = Schemas["Provider"];
export type ProviderDefinition = Schemas["ProviderDefinition"];
export type ModelInfo = Schemas["ModelInfo"];
export type ModelDefinition = Schemas["ModelDefinition"];
export type User = Schemas["User"];
export type Role = Schemas["Role"];

export type UsageGrouping = "day" | "model" | "key";

/** This page's query keys, all under `settings`. */
export const settingsKeys = {
  all: ["settings"] as const,
  keys: ["settings", "keys"] as const,
  budgets: (id: string) => ["settings", "keys", id, "budgets"] as const,
  usage: (group: UsageGrouping, from: string, to: string) => ["settings", "usage", group, from, to] as const,
  vault: ["settings", "vault"] as const,
  secrets: ["settings", "secrets"] as const,
  providers: ["settings", "providers"] as const,
  providerModels: (name: string) => ["settings", "providers", name, "models"] as const,
  models: ["settings", "models"] as const,
  users: ["settings", "users"] as const,
};

export function useChangePassword() {
  return useMutation({
    mutationFn: (body: Schemas["ChangePasswordRequest"]) =>
      unwrap(api.POST("/api/v1/me/password", { body })),
  });
}

export function useApiKeys() {
  return useQuery({
    queryKey: settingsKeys.keys,
    queryFn: () => unwrap(api.GET("/api/v1/keys")),
  });
}

export function useCreateKey() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (body: Schemas["CreateApiKeyRequest"]) => unwrap(api.POST("/api/v1/keys", { body })),
    onSuccess: () => void queryClient.invalidateQueries({ queryKey: settingsKeys.keys, exact: true }),
  });
}

export function useRevokeKey() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (id: string) => unwrap(api.DELETE("/api/v1/keys/{id}", { params: { path: { id } } })),
    onSuccess: () => void queryClient.invalidateQueries({ queryKey: settingsKeys.keys, exact: true }),
  });
}

export function useKeyBudgets(id: string) {
  return useQuery({
    queryKey: settingsKeys.budgets(id),
    queryFn: () => unwrap(api.GET("/api/v1/keys/{id}/budgets", { params: { path: { id } } })),
    select: (answer) => answer.budgets,
  });
}

export function useSaveBudgets(id: string) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (budgets: KeyBudget[]) =>
      unwrap(api.PUT("/api/v1/keys/{id}/budgets", { params: { path: { id } }, body: { budgets } })),
    onSuccess: (saved) => queryClient.setQueryData(settingsKeys.budgets(id), saved),
  });
}

export function useUsage(group: UsageGrouping, from: string, to: string) {
  return useQuery({
    queryKey: settingsKeys.usage(group, from, to),
    queryFn: () => unwrap(api.GET("/api/v1/usage", { params: { query: { group_by: group, from, to } } })),
  });
}

export function useVault() {
  return useQuery({
    queryKey: settingsKeys.vault,
    queryFn: () => unwrap(api.GET("/api/v1/vault")),
  });
}

export function useUnlockVault() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (passphrase: string) => unwrap(api.POST("/api/v1/vault/unlock", { body: { passphrase } })),
    onSettled: () => void queryClient.invalidateQueries({ queryKey: settingsKeys.vault }),
  });
}

export function useInitVault() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (passphrase: string) => unwrap(api.POST("/api/v1/vault/init", { body: { passphrase } })),
    onSettled: () => void queryClient.invalidateQueries({ queryKey: settingsKeys.vault }),
  });
}

export function useLockVault() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: () => unwrap(api.POST("/api/v1/vault/lock")),
    onSettled: () => void queryClient.invalidateQueries({ queryKey: settingsKeys.vault }),
  });
}

export function useSecrets() {
  return useQuery({
    queryKey: settingsKeys.secrets,
    queryFn: () => unwrap(api.GET("/api/v1/secrets")),
  });
}

export function usePutSecret() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: ({ name, value, description }: { name: string; value: string; description: string | null }) =>
      unwrap(api.PUT("/api/v1/secrets/{name}", { params: { path: { name } }, body: { value, description } })),
    onSuccess: () => void queryClient.invalidateQueries({ queryKey: settingsKeys.secrets }),
  });
}

export function useDeleteSecret() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (name: string) => unwrap(api.DELETE("/api/v1/secrets/{name}", { params: { path: { name } } })),
    onSuccess: () => void queryClient.invalidateQueries({ queryKey: settingsKeys.secrets }),
  });
}

export function useProviders() {
  return useQuery({
    queryKey: settingsKeys.providers,
    queryFn: () => unwrap(api.GET("/api/v1/providers")),
  });
}

/** The models a provider itself offers, asked of it when wanted. */
export function useProviderModels(name: string | null) {
  return useQuery({
    queryKey: settingsKeys.providerModels(name ?? ""),
    enabled: Boolean(name),
    staleTime: 5 * 60_000,
    queryFn: () => unwrap(api.GET("/api/v1/providers/{name}/models", { params: { path: { name: name ?? "" } } })),
  });
}

export function useAddProvider() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (body: ProviderDefinition) => unwrap(api.POST("/api/v1/providers", { body })),
    onSuccess: () => void queryClient.invalidateQueries({ queryKey: settingsKeys.providers, exact: true }),
  });
}

export function useRemoveProvider() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (name: string) => unwrap(api.DELETE("/api/v1/providers/{name}", { params: { path: { name } } })),
    onSuccess: () => void queryClient.invalidateQueries({ queryKey: settingsKeys.providers, exact: true }),
  });
}

export function useAdminModels() {
  return useQuery({
    queryKey: settingsKeys.models,
    queryFn: () => unwrap(api.GET("/api/v1/models")),
  });
}

export function useAddModel() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (body: ModelDefinition) => unwrap(api.POST("/api/v1/models", { body })),
    onSuccess: () => {
      void queryClient.invalidateQueries({ queryKey: settingsKeys.models });
      // The names everyone may use (GET /v1/models) change with it.
      void queryClient.invalidateQueries({ queryKey: queryKeys.models });
    },
  });
}

export function useRemoveModel() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (name: string) => unwrap(api.DELETE("/api/v1/models/{name}", { params: { path: { name } } })),
    onSuccess: () => {
      void queryClient.invalidateQueries({ queryKey: settingsKeys.models });
      void queryClient.invalidateQueries({ queryKey: queryKeys.models });
    },
  });
}

export function useUsers() {
  return useQuery({
    queryKey: settingsKeys.users,
    queryFn: () => unwrap(api.GET("/api/v1/users")),
  });
}

export function useCreateUser() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (body: Schemas["CreateUserRequest"]) => unwrap(api.POST("/api/v1/users", { body })),
    onSuccess: () => void queryClient.invalidateQueries({ queryKey: settingsKeys.users }),
  });
}

export function useUpdateUser() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: ({ id, change }: { id: string; change: Schemas["UpdateUserRequest"] }) =>
      unwrap(api.PATCH("/api/v1/users/{id}", { params: { path: { id } }, body: change })),
    onSuccess: (user) => {
      queryClient.setQueryData<User[]>(settingsKeys.users, (list) =>
        list?.map((known) => (known.id === user.id ? user : known)),
      );
    },
  });
}
