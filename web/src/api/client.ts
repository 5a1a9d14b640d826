import createClient, { type Middleware } from "openapi-fetch";

import { useAuthStore } from "@/auth/store";
import { ApiError, toProblem } from "./problem";
import type { paths } from "./schema";

/** Absolute URL of an API path on kai's own origin (the UI is served by kai itself). */
export function apiUrl(path: string): string {
  return new URL(path, window.location.origin).toString();
}

type Renewer = () => Promise<boolean>;

let renewSession: Renewer = async () => false;

/** Lets the session module renew the access token when a call is answered 401. */
export function setSessionRenewer(renewer: Renewer) {
  renewSession = renewer;
}

function withToken(request: Request, token: string | null): Request {
  if (token) request.headers.set("Authorization", `Bearer ${token}`);
  return request;
}

const bearer: Middleware = {
  onRequest({ request }) {
    return withToken(request, useAuthStore.getState().accessToken);
  },
  async onResponse({ request, response }) {
    if (response.status !== 401 || request.method !== "GET") return response;
    if (!(await renewSession())) return response;
    return fetch(withToken(new Request(request), useAuthStore.getState().accessToken));
  },
};

export const api = createClient<paths>({
  baseUrl: window.location.origin,
  fetch: (request) => globalThis.fetch(request),
});
api.use(bearer);

interface FetchResult<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

/** The data of a call, or an ApiError carrying the problem the server answered with. */
export async function unwrap<T>(call: Promise<FetchResult<T>>): Promise<T> {
  const { data, error, response } = await call;
  if (!response.ok) throw new ApiError(toProblem(error, response.status, response.statusText));
  return data as T;
}
