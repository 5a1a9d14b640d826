import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { render } from "@testing-library/react";
import type { ReactElement } from "react";
import { MemoryRouter, Route, Routes, useLocation } from "react-router";
import { vi } from "vitest";

export type Handler = (url: URL, request: Request) => unknown;

export function json(body: unknown, status = 200): Response {
  if (status === 204) return new Response(null, { status });
  const type = status >= 400 ? "application/problem+json" : "application/json";
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": type } });
}

export function problem(status: number, detail: string): Response {
  return json({ type: "about:blank", title: "Error", status, detail }, status);
}

/**
 * Stubs `fetch` with handlers keyed `"METHOD /path"`: a handler returns a Response, or a body sent
 * as JSON with 200. Unknown routes answer 404. Returns the mock, to read the requests it got.
 */
export function fakeApi(routes: Record<string, Handler>) {
  const fetch = vi.fn(async (input: Request | string | URL, init?: RequestInit) => {
    const request = input instanceof Request ? input : new Request(input, init);
    const url = new URL(request.url);
    const handler = routes[`${request.method} ${decodeURIComponent(url.pathname)}`];
    if (!handler) return problem(404, `${request.method} ${url.pathname}`);
    const answer = await handler(url, request.clone());
    return answer instanceof Response ? answer : json(answer);
  });
  vi.stubGlobal("fetch", fetch);
  return fetch;
}

/** The requests the mock got for a method and path, with their URLs and JSON bodies. */
export async function requests(
  fetch: ReturnType<typeof fakeApi>,
  method: string,
  path: string,
): Promise<{ url: URL; body: unknown }[]> {
  const matching = fetch.mock.calls
    .map(([input, init]) => (input instanceof Request ? input : new Request(input, init)))
    .filter(
      (request) => request.method === method && decodeURIComponent(new URL(request.url).pathname) === path,
    );
  return Promise.all(
    matching.map(async (request) => {
      const text = await request.clone().text();
      return { url: new URL(request.url), body: text ? (JSON.parse(text) as unknown) : null };
    }),
  );
}

function CurrentPath() {
  const location = useLocation();
  return <output data-testid="location">{location.pathname}</output>;
}

/** Renders a section page at a path under its route (`agents/*`), with a fresh query cache. */
export function renderPage(section: string, path: string, page: ReactElement) {
  const queryClient = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  return {
    queryClient,
    ...render(
      <QueryClientProvider client={queryClient}>
        <MemoryRouter initialEntries={[path]}>
          <Routes>
            <Route path={`/${section}/*`} element={page} />
            <Route path="*" element={null} />
          </Routes>
          <CurrentPath />
        </MemoryRouter>
      </QueryClientProvider>,
    ),
  };
}
