import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";

import { api, unwrap } from "@/api/client";
import { queryKeys } from "@/api/keys";
import type { components } from "@/api/schema";
import { useAuthStore } from "@/auth/store";

type RunRequestList = components["schemas"]["RunRequestList"];
export type RunRequest = components["schemas"]["RunRequest"];
export type Decision = components["schemas"]["DecideRequest"];

/** The requests waiting for the user: loaded once, then kept current by `consent.*` events. */
export function usePendingRequests() {
  const signedIn = useAuthStore((state) => state.status === "signed-in");
  return useQuery({
    queryKey: queryKeys.pendingRequests,
    enabled: signedIn,
    queryFn: () => unwrap(api.GET("/api/v1/requests")),
  });
}

export function useDecide() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: ({ id, decision }: { id: string; decision: Decision }) =>
      unwrap(api.POST("/api/v1/requests/{id}", { params: { path: { id } }, body: decision })),
    onSuccess: (_answered, { id }) => {
      queryClient.setQueryData<RunRequestList>(queryKeys.pendingRequests, (list) =>
        list && { requests: list.requests.filter((request) => request.id !== id) },
      );
    },
  });
}
