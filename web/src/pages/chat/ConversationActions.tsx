import { Pencil, Trash2 } from "lucide-react";
import { lazy, Suspense, useState } from "react";
import { useTranslation } from "react-i18next";

import { Button } from "@/components/ui/button";
import type { ConversationAction } from "./ConversationDialog";
import type { ConversationSummary } from "./queries";

const ConversationDialog = lazy(() => import("./ConversationDialog"));

/** Rename and delete buttons next to a conversation in the list. */
export function ConversationActions({
  conversation,
  active,
}: {
  conversation: ConversationSummary;
  active: boolean;
}) {
  const { t } = useTranslation("chat");
  const [action, setAction] = useState<ConversationAction | null>(null);
  return (
    <div className="flex shrink-0 opacity-0 group-hover:opacity-100 group-focus-within:opacity-100">
      <Button
        variant="ghost"
        size="icon"
        className="size-7"
        onClick={() => setAction("rename")}
        aria-label={t("conversation.renameItem", { title: conversation.title })}
      >
        <Pencil aria-hidden />
      </Button>
      <Button
        variant="ghost"
        size="icon"
        className="size-7"
        onClick={() => setAction("delete")}
        aria-label={t("conversation.deleteItem", { title: conversation.title })}
      >
        <Trash2 aria-hidden />
      </Button>
      {action && (
        <Suspense>
          <ConversationDialog
            conversation={conversation}
            action={action}
            active={active}
            onClose={() => setAction(null)}
          />
        </Suspense>
      )}
    </div>
  );
}
