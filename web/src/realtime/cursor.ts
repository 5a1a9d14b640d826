/** Where the id of the last durable event this tab has seen is kept between reconnects and reloads. */
export interface EventCursor {
  get(): number | null;
  set(id: number): void;
  clear(): void;
}

const KEY = "kai.realtime.after";

export function sessionCursor(storage: Storage = sessionStorage): EventCursor {
  return {
    get() {
      const value = storage.getItem(KEY);
      return value === null ? null : Number(value);
    },
    set: (id) => storage.setItem(KEY, String(id)),
    clear: () => storage.removeItem(KEY),
  };
}
