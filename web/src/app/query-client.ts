import { createAsyncStoragePersister } from "@tanstack/query-async-storage-persister";
import { QueryClient } from "@tanstack/react-query";
import type { PersistQueryClientOptions } from "@tanstack/react-query-persist-client";
import { clear, createStore, del, get, set } from "idb-keyval";

import { ApiError } from "@/api/problem";
import { queryKeys } from "@/api/keys";

const DAY_MS = 24 * 60 * 60 * 1000;

export const queryClient = new QueryClient({
  defaultOptions: {
    queries: {
      staleTime: 30_000,
      gcTime: 7 * DAY_MS,
      networkMode: "offlineFirst",
      retry: (failures, error) =>
        !(error instanceof ApiError && error.status < 500) && failures < 2,
    },
  },
});

const cacheStore = createStore("kai-query-cache", "queries");

const persister = createAsyncStoragePersister({
  storage: {
    getItem: (key) => get<string>(key, cacheStore).then((value) => value ?? null),
    setItem: (key, value) => set(key, value, cacheStore),
    removeItem: (key) => del(key, cacheStore),
  },
  key: "kai",
  throttleTime: 1000,
});

/** Keeps the conversations seen in IndexedDB, so that they stay readable offline. */
export const persistOptions: Omit<PersistQueryClientOptions, "queryClient"> = {
  persister,
  maxAge: 7 * DAY_MS,
  dehydrateOptions: {
    shouldDehydrateQuery: (query) =>
      query.queryKey[0] === queryKeys.conversations[0] && query.state.status === "success",
  },
};

export async function clearPersistedQueries() {
  queryClient.clear();
  await clear(cacheStore);
}
