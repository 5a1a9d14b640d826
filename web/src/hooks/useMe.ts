import { useQuery } from "@tanstack/react-query";

import { api, unwrap } from "@/api/client";
import { queryKeys } from "@/api/keys";
import { claimDeviceFor } from "@/app/local-data";
import { useAuthStore } from "@/auth/store";

/** The signed-in user; fetching it first clears what another user left on this device. */
export function useMe() {
  const signedIn = useAuthStore((state) => state.status === "signed-in");
  return useQuery({
    queryKey: queryKeys.me,
    enabled: signedIn,
    staleTime: Infinity,
    queryFn: async () => {
      const me = await unwrap(api.GET("/api/v1/me"));
      await claimDeviceFor(me.id);
      return me;
    },
  });
}
