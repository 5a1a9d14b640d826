import { useTranslation } from "react-i18next";

import { Badge } from "@/components/ui/badge";
import type { RunStatus } from "./queries";

const variants: Record<RunStatus, "default" | "secondary" | "destructive" | "outline"> = {
  queued: "outline",
  running: "default",
  waiting: "secondary",
  paused: "secondary",
  succeeded: "outline",
  failed: "destructive",
  cancelled: "outline",
};

export function RunStatusBadge({ status }: { status: RunStatus }) {
  const { t } = useTranslation("agents");
  return <Badge variant={variants[status]}>{t(`status.${status}`)}</Badge>;
}
