import { StrictMode } from "react";
import { createRoot } from "react-dom/client";

import "./index.css";
import { App } from "./app/App";
import { restoreSession } from "./auth/session";
import { i18nReady } from "./i18n";
import { bindRealtimeToSession, restoreQueuedTurns } from "./realtime/connection";
import { bindTheme } from "./stores/theme";

bindTheme();
bindRealtimeToSession();
void restoreQueuedTurns();
restoreSession();

if (import.meta.env.PROD) {
  void import("virtual:pwa-register").then(({ registerSW }) => registerSW({ immediate: true }));
}

void i18nReady.then(() => {
  const root = document.getElementById("root");
  if (!root) throw new Error("index.html lacks #root");
  createRoot(root).render(
    <StrictMode>
      <App />
    </StrictMode>,
  );
});
