import { useTranslation } from "react-i18next";

import { useConnectionStore } from "@/realtime/connection";
import { cn } from "@/lib/utils";

/** A dot and a word saying whether the real-time channel is up. */
export function ConnectionBadge() {
  const { t } = useTranslation();
  const status = useConnectionStore((state) => state.status);
  const live = status === "ready";
  return (
    <span className="text-muted-foreground flex items-center gap-2 text-xs" role="status">
      <span
        aria-hidden
        className={cn("size-2 rounded-full", live ? "bg-emerald-500" : "bg-amber-500")}
      />
      {t(`connection.${status}`)}
    </span>
  );
}
