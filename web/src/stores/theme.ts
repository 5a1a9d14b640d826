import { create } from "zustand";
import { persist } from "zustand/middleware";

export type ThemePreference = "system" | "light" | "dark";

interface ThemeState {
  preference: ThemePreference;
  setPreference: (preference: ThemePreference) => void;
  /** Light to dark to system, for a single toggle button. */
  cycle: () => void;
}

const order: ThemePreference[] = ["light", "dark", "system"];

export const useThemeStore = create<ThemeState>()(
  persist(
    (set, get) => ({
      preference: "system",
      setPreference: (preference) => set({ preference }),
      cycle: () => {
        const next = order[(order.indexOf(get().preference) + 1) % order.length] ?? "system";
        set({ preference: next });
      },
    }),
    { name: "kai.theme" },
  ),
);

const darkQuery = () => window.matchMedia("(prefers-color-scheme: dark)");

export function resolveTheme(preference: ThemePreference): "light" | "dark" {
  if (preference !== "system") return preference;
  return darkQuery().matches ? "dark" : "light";
}

function apply(preference: ThemePreference) {
  const theme = resolveTheme(preference);
  document.documentElement.classList.toggle("dark", theme === "dark");
  document.documentElement.style.colorScheme = theme;
}

/** Keeps the document's `dark` class in line with the preference and, for `system`, the OS. */
export function bindTheme(): () => void {
  apply(useThemeStore.getState().preference);
  const unsubscribe = useThemeStore.subscribe((state) => apply(state.preference));
  const media = darkQuery();
  const onSystemChange = () => apply(useThemeStore.getState().preference);
  media.addEventListener("change", onSystemChange);
  return () => {
    unsubscribe();
    media.removeEventListener("change", onSystemChange);
  };
}
