import { useEffect } from "react";
import { useNavigate } from "react-router";

import { pages } from "@/app/pages";

export const NEW_CHAT_EVENT = "kai:new-chat";

function isModifier(event: KeyboardEvent) {
  return event.metaKey || event.ctrlKey;
}

/**
 * Global shortcuts: Ctrl/Cmd+K starts a new chat; Alt+1 to Alt+5 open the sidebar's sections.
 */
export function useShortcuts() {
  const navigate = useNavigate();
  useEffect(() => {
    const onKeyDown = (event: KeyboardEvent) => {
      if (isModifier(event) && !event.altKey && event.key.toLowerCase() === "k") {
        event.preventDefault();
        void navigate("/chat");
        window.dispatchEvent(new Event(NEW_CHAT_EVENT));
        return;
      }
      if (event.altKey && !isModifier(event) && /^Digit[1-9]$/.test(event.code)) {
        const page = pages[Number(event.code.slice("Digit".length)) - 1];
        if (page) {
          event.preventDefault();
          void navigate(page.to);
        }
      }
    };
    window.addEventListener("keydown", onKeyDown);
    return () => window.removeEventListener("keydown", onKeyDown);
  }, [navigate]);
}
