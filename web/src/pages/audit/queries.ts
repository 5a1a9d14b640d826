import { useQuery } from "@tanstack/react-query";

import { api, unwrap } from "@/api/client";
import type { components } from "@/api/schema";

export type AuditEntry = components["schemas"]["AuditEntry"];
export type AuditCheckpoint = components["schemas"]["AuditCheckpoint"];

/** What the log can be filtered by (the API's AuditQuery); empty strings are no filter. */
export interface AuditFilters {
  actor: string;
  action: string;
  /** RFC 3339, or empty. */
  since: string;
  /** RFC 3339, or empty. */
  until: string;
}

export const PAGE_SIZE = 50;

/** This page's TanStack Query keys, all under the shared `audit` root. */
export const auditKeys = {
  all: ["audit"] as const,
  entries: (filters: AuditFilters, after: number | null) =>
    ["audit", "entries", filters, after] as const,
  checkpoints: ["audit", "checkpoints"] as const,
  identity: ["audit", "identity"] as const,
};

function orUndefined(text: string): string | undefined {
  return text === "" ? undefined : text;
}

export function useAuditPage(filters: AuditFilters, after: number | null) {
  return useQuery({
    queryKey: auditKeys.entries(filters, after),
    placeholderData: (previous) => previous,
    queryFn: () =>
      unwrap(
        api.GET("/api/v1/audit", {
          params: {
            query: {
              actor: orUndefined(filters.actor),
              action: orUndefined(filters.action),
              since: orUndefined(filters.since),
              until: orUndefined(filters.until),
              after: after ?? undefined,
              limit: PAGE_SIZE,
            },
          },
        }),
      ),
  });
}

export function useCheckpoints() {
  return useQuery({
    queryKey: auditKeys.checkpoints,
    queryFn: () => unwrap(api.GET("/api/v1/audit/checkpoints")),
  });
}

export function useIdentity() {
  return useQuery({
    queryKey: auditKeys.identity,
    staleTime: Infinity,
    retry: false,
    queryFn: () => unwrap(api.GET("/api/v1/identity")),
  });
}

export function fetchInclusionProof(seq: number, size: number) {
  return unwrap(api.GET("/api/v1/audit/proofs/inclusion", { params: { query: { seq, size } } }));
}
