import { create } from "zustand";

/** `offline`: the session could not be checked for want of a network; cached data stays readable. */
export type AuthStatus = "restoring" | "signed-in" | "signed-out" | "offline";

interface AuthState {
  status: AuthStatus;
  /** The access token: kept in memory only, never in storage. */
  accessToken: string | null;
  /** When the access token expires, in epoch milliseconds. */
  expiresAt: number | null;
  signIn: (accessToken: string, expiresInSeconds: number) => void;
  signOut: () => void;
  goOffline: () => void;
}

export const useAuthStore = create<AuthState>()((set) => ({
  status: "restoring",
  accessToken: null,
  expiresAt: null,
  signIn: (accessToken, expiresInSeconds) =>
    set({ status: "signed-in", accessToken, expiresAt: Date.now() + expiresInSeconds * 1000 }),
  signOut: () => set({ status: "signed-out", accessToken: null, expiresAt: null }),
  goOffline: () => set({ status: "offline" }),
}));
