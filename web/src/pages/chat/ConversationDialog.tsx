import { useState, type FormEvent } from "react";
import { useTranslation } from "react-i18next";
import { useNavigate } from "react-router";

import { Button } from "@/components/ui/button";
import {
  Dialog,
  DialogContent,
  DialogDescription,
  DialogFooter,
  DialogHeader,
  DialogTitle,
} from "@/components/ui/dialog";
import { Input } from "@/components/ui/input";
import { useDeleteConversation, useRenameConversation, type ConversationSummary } from "./queries";

export type ConversationAction = "rename" | "delete";

/** The dialog renaming or deleting a conversation; loaded the first time one is asked for. */
export default function ConversationDialog({
  conversation,
  action,
  active,
  onClose,
}: {
  conversation: ConversationSummary;
  action: ConversationAction;
  active: boolean;
  onClose: () => void;
}) {
  const { t } = useTranslation("chat");
  const { t: common } = useTranslation();
  const navigate = useNavigate();
  const [title, setTitle] = useState(conversation.title);
  const rename = useRenameConversation();
  const remove = useDeleteConversation();

  const submitRename = (event: FormEvent) => {
    event.preventDefault();
    const trimmed = title.trim();
    if (!trimmed) return;
    rename.mutate({ id: conversation.id, title: trimmed }, { onSuccess: onClose });
  };
  const confirmDelete = () =>
    remove.mutate(conversation.id, {
      onSuccess: () => {
        onClose();
        if (active) void navigate("/chat");
      },
    });
  const failure = rename.error ?? remove.error;
  const failureText = failure && (
    <p role="alert" className="text-destructive text-sm">
      {failure.message}
    </p>
  );

  return (
    <Dialog open onOpenChange={(open) => !open && onClose()}>
      <DialogContent closeLabel={common("close")}>
        {action === "rename" ? (
          <form onSubmit={submitRename} className="flex flex-col gap-4">
            <DialogHeader>
              <DialogTitle>{t("conversation.renameTitle")}</DialogTitle>
              <DialogDescription className="sr-only">{conversation.title}</DialogDescription>
            </DialogHeader>
            <Input
              value={title}
              onChange={(event) => setTitle(event.target.value)}
              aria-label={t("conversation.titleLabel")}
              autoFocus
            />
            {failureText}
            <DialogFooter>
              <Button type="button" variant="outline" onClick={onClose}>
                {common("cancel")}
              </Button>
              <Button type="submit" disabled={rename.isPending || !title.trim()}>
                {common("save")}
              </Button>
            </DialogFooter>
          </form>
        ) : (
          <>
            <DialogHeader>
              <DialogTitle>{t("conversation.deleteTitle")}</DialogTitle>
              <DialogDescription>
                {t("conversation.deleteDescription", { title: conversation.title })}
              </DialogDescription>
            </DialogHeader>
            {failureText}
            <DialogFooter>
              <Button variant="outline" onClick={onClose}>
                {common("cancel")}
              </Button>
              <Button variant="destructive" disabled={remove.isPending} onClick={confirmDelete}>
                {t("conversation.delete")}
              </Button>
            </DialogFooter>
          </>
        )}
      </DialogContent>
    </Dialog>
  );
}
