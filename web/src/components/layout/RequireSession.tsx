import { Navigate, Outlet, useLocation } from "react-router";

import { useAuthStore } from "@/auth/store";
import { useMe } from "@/hooks/useMe";
import { Splash } from "./Splash";

/** Shows its routes to a signed-in user (or offline, from the cache); others go to the login page. */
export function RequireSession() {
  const status = useAuthStore((state) => state.status);
  const location = useLocation();
  const me = useMe();

  if (status === "signed-out") {
    const next = `${location.pathname}${location.search}`;
    return <Navigate to={`/login?next=${encodeURIComponent(next)}`} replace />;
  }
  if (status === "restoring" || (status === "signed-in" && me.isPending)) return <Splash />;
  return <Outlet />;
}
