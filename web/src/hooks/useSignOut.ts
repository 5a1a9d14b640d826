import { useNavigate } from "react-router";

import { clearLocalData } from "@/app/local-data";
import { logout, logoutEverywhere } from "@/auth/session";

/** Signs out of this session (or all of them) and forgets the user's data on this device. */
export function useSignOut() {
  const navigate = useNavigate();
  return async (everywhere = false) => {
    await (everywhere ? logoutEverywhere() : logout());
    await clearLocalData();
    await navigate("/login", { replace: true });
  };
}
