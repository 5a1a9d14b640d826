import { vi } from "vitest";

export type Handler = (url: URL, request: Request) => unknown;

export function json(body: unknown, status = 200): Response {
  if (status === 204) return new Response(null, { status });
  const type = status >= 400 ? "application/problem+json" : "application/json";
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": type } });
}

/**
 * Stubs `fetch` with handlers keyed `"METHOD /path"`; a handler returns a Response, or a body
 * sent as JSON with 200. Unknown routes answer 404. Returns the mock to inspect calls.
 */
export function fakeApi(routes: Record<string, Handler>) {
  const fetch = vi.fn(async (input: Request | string | URL, init?: RequestInit) => {
    const request = input instanceof Request ? input : new Request(input, init);
    const url = new URL(request.url);
    const handler = routes[`${request.method} ${url.pathname}`];
    if (!handler) {
      return json({ type: "about:blank", title: "Not Found", status: 404, detail: url.pathname }, 404);
    }
    const answer = await handler(url, request.clone());
    return answer instanceof Response ? answer : json(answer);
  });
  vi.stubGlobal("fetch", fetch);
  return fetch;
}

/** The requests the mock received to a path, as URLs. */
export function calls(fetch: ReturnType<typeof fakeApi>, method: string, path: string): URL[] {
  return fetch.mock.calls
    .map(([input, init]) => (input instanceof Request ? input : new Request(input, init)))
    .filter((request) => request.method === method && new URL(request.url).pathname === path)
    .map((request) => new URL(request.url));
}
