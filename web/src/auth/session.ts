import { api, setSessionRenewer, unwrap } from "@/api/client";
import { ApiError, toProblem } from "@/api/problem";
import type { components } from "@/api/schema";
import { csrfToken } from "./csrf";
import { useAuthStore } from "./store";

/** What login and refresh answer; with `cookie: true` the refresh token travels as an httpOnly cookie. */
type TokenResponse = components["schemas"]["TokenResponse"];

/** Renew this long before the access token expires. */
const RENEW_MARGIN_MS = 60_000;

let renewTimer: ReturnType<typeof setTimeout> | undefined;
let refreshing: Promise<boolean> | null = null;

function scheduleRenewal(expiresInSeconds: number) {
  clearTimeout(renewTimer);
  const lifetime = expiresInSeconds * 1000;
  const delay = Math.max(lifetime - RENEW_MARGIN_MS, lifetime / 2);
  renewTimer = setTimeout(() => void refreshSession(), delay);
}

function accept(tokens: TokenResponse) {
  useAuthStore.getState().signIn(tokens.access_token, tokens.expires_in);
  scheduleRenewal(tokens.expires_in);
}

function endSession() {
  clearTimeout(renewTimer);
  useAuthStore.getState().signOut();
}

/** Runs `task` while holding a lock shared by every tab, so that two tabs never spend one refresh cookie. */
async function exclusively<T>(task: () => Promise<T>): Promise<T> {
  if (typeof navigator !== "undefined" && navigator.locks) {
    return await navigator.locks.request("kai-auth-refresh", task);
  }
  return task();
}

export async function login(username: string, password: string): Promise<void> {
  accept(
    await unwrap(
      api.POST("/api/v1/auth/login", { body: { username, password, cookie: true } }),
    ),
  );
}

/** Exchanges the refresh cookie for a new access token; false (and signed out) when the session is over. */
export function refreshSession(): Promise<boolean> {
  refreshing ??= exclusively(async () => {
    try {
      const { data } = await api.POST("/api/v1/auth/refresh", {
        body: {},
        params: { header: { "X-CSRF-Token": csrfToken() } },
      });
      if (!data) {
        endSession();
        return false;
      }
      accept(data);
      return true;
    } catch {
      if (useAuthStore.getState().status === "restoring") useAuthStore.getState().goOffline();
      return false;
    }
  }).finally(() => {
    refreshing = null;
  });
  return refreshing;
}

export async function logout(): Promise<void> {
  try {
    await api.POST("/api/v1/auth/logout", {
      body: {},
      params: { header: { "X-CSRF-Token": csrfToken() } },
    });
  } finally {
    endSession();
  }
}

export async function logoutEverywhere(): Promise<void> {
  const { error, response } = await api.POST("/api/v1/auth/logout-all");
  if (error !== undefined && response.status !== 401) {
    throw new ApiError(toProblem(error, response.status, response.statusText));
  }
  endSession();
}

/** Restores the session kept in the refresh cookie, now and whenever the network returns after failing. */
export function restoreSession(): () => void {
  const retry = () => {
    if (useAuthStore.getState().status === "offline") void refreshSession();
  };
  window.addEventListener("online", retry);
  void refreshSession();
  return () => window.removeEventListener("online", retry);
}

setSessionRenewer(refreshSession);
