import { eventCursor, outbox } from "@/realtime/connection";
import { useTurnsStore } from "@/stores/turns";
import { clearPersistedQueries } from "./query-client";

const USER_KEY = "kai.user";

/** Forgets everything kept about the signed-in user on this device. */
export async function clearLocalData() {
  useTurnsStore.getState().reset();
  eventCursor.clear();
  localStorage.removeItem(USER_KEY);
  await Promise.all([outbox.clear(), clearPersistedQueries()]);
}

/** Clears what another user left on this device before showing this one's data. */
export async function claimDeviceFor(userId: string) {
  const previous = localStorage.getItem(USER_KEY);
  if (previous !== null && previous !== userId) await clearLocalData();
  localStorage.setItem(USER_KEY, userId);
}
