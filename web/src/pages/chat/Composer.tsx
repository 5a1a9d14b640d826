import { Paperclip, SendHorizontal } from "lucide-react";
import { useEffect, useRef, useState, type FormEvent, type KeyboardEvent } from "react";
import { useTranslation } from "react-i18next";

import { Button } from "@/components/ui/button";
import { Textarea } from "@/components/ui/textarea";
import { useOnline } from "@/hooks/useOnline";
import { NEW_CHAT_EVENT } from "@/hooks/useShortcuts";
import { UploadList } from "./UploadList";

export function Composer({
  onSend,
  onFiles,
}: {
  onSend: (text: string) => Promise<void>;
  onFiles: (files: File[]) => void;
}) {
  const { t } = useTranslation("chat");
  const [text, setText] = useState("");
  const [sending, setSending] = useState(false);
  // A new chat written offline waits for the connection to start its conversation.
  const online = useOnline();
  const [error, setError] = useState<string | null>(null);
  const input = useRef<HTMLTextAreaElement>(null);
  const files = useRef<HTMLInputElement>(null);

  useEffect(() => {
    const focus = () => input.current?.focus();
    window.addEventListener(NEW_CHAT_EVENT, focus);
    return () => window.removeEventListener(NEW_CHAT_EVENT, focus);
  }, []);

  const submit = async (event?: FormEvent) => {
    event?.preventDefault();
    const message = text.trim();
    if (!message || sending) return;
    setSending(true);
    setError(null);
    try {
      await onSend(message);
      setText("");
    } catch (failure) {
      setError(failure instanceof Error && failure.message ? failure.message : t("sendFailed"));
    } finally {
      setSending(false);
      input.current?.focus();
    }
  };

  const onKeyDown = (event: KeyboardEvent<HTMLTextAreaElement>) => {
    if (event.key === "Enter" && !event.shiftKey && !event.nativeEvent.isComposing) {
      event.preventDefault();
      void submit();
    }
  };

  return (
    <form onSubmit={(event) => void submit(event)} className="mx-auto flex w-full max-w-3xl flex-col gap-2 p-4">
      <UploadList />
      {error && (
        <p role="alert" className="text-destructive text-sm">
          {error}
        </p>
      )}
      {sending && !online && (
        <p role="status" className="text-muted-foreground text-sm">
          {t("message.queued")}
        </p>
      )}
      <div className="flex items-end gap-2">
        <input
          ref={files}
          type="file"
          multiple
          hidden
          onChange={(event) => {
            onFiles([...(event.target.files ?? [])]);
            event.target.value = "";
          }}
        />
        <Button
          type="button"
          variant="ghost"
          size="icon"
          onClick={() => files.current?.click()}
          aria-label={t("attach")}
          title={t("attach")}
        >
          <Paperclip aria-hidden />
        </Button>
        <Textarea
          ref={input}
          value={text}
          onChange={(event) => setText(event.target.value)}
          onKeyDown={onKeyDown}
          placeholder={t("placeholder")}
          aria-label={t("placeholder")}
          rows={1}
          className="max-h-48 min-h-10 resize-none"
          autoFocus
        />
        <Button type="submit" size="icon" disabled={sending || !text.trim()} aria-label={t("send")}>
          <SendHorizontal aria-hidden />
        </Button>
      </div>
    </form>
  );
}
