import { useQueryClient } from "@tanstack/react-query";
import { Upload as UploadIcon, X } from "lucide-react";
import { useId, useRef, useState, type DragEvent } from "react";
import { useTranslation } from "react-i18next";

import { queryKeys } from "@/api/keys";
import { Button } from "@/components/ui/button";
import { Progress } from "@/components/ui/progress";
import { cn } from "@/lib/utils";
import { uploadArtifact } from "@/api/upload";

interface Upload {
  id: string;
  name: string;
  percent: number;
  status: "uploading" | "stored" | "failed";
  error: string | null;
}

/** Files dropped or picked, uploaded one after another into the collection (if any). */
export function UploadZone({ collection }: { collection: string | null }) {
  const { t } = useTranslation("knowledge");
  const queryClient = useQueryClient();
  const input = useRef<HTMLInputElement>(null);
  const hintId = useId();
  const [dragging, setDragging] = useState(false);
  const [uploads, setUploads] = useState<Upload[]>([]);

  const patch = (id: string, change: Partial<Upload>) =>
    setUploads((list) => list.map((upload) => (upload.id === id ? { ...upload, ...change } : upload)));

  const send = async (files: File[]) => {
    const queued = files.map((file) => ({ file, id: crypto.randomUUID() }));
    setUploads((list) => [
      ...list,
      ...queued.map(({ file, id }) => ({
        id,
        name: file.name,
        percent: 0,
        status: "uploading" as const,
        error: null,
      })),
    ]);
    for (const { file, id } of queued) {
      try {
        await uploadArtifact(file, collection, (percent) => patch(id, { percent }));
        patch(id, { status: "stored", percent: 100 });
        void queryClient.invalidateQueries({ queryKey: queryKeys.artifacts });
        void queryClient.invalidateQueries({ queryKey: queryKeys.knowledgeStatus });
      } catch (error) {
        patch(id, { status: "failed", error: error instanceof Error ? error.message : "" });
      }
    }
  };

  const onDrop = (event: DragEvent) => {
    event.preventDefault();
    setDragging(false);
    const files = Array.from(event.dataTransfer.files);
    if (files.length > 0) void send(files);
  };

  return (
    <div className="flex flex-col gap-3">
      <div
        onDragOver={(event) => {
          event.preventDefault();
          setDragging(true);
        }}
        onDragLeave={() => setDragging(false)}
        onDrop={onDrop}
        data-testid="drop-zone"
        className={cn(
          "flex flex-col items-center gap-2 rounded-lg border-2 border-dashed p-6 text-center",
          dragging ? "border-primary bg-accent" : "border-border",
        )}
      >
        <UploadIcon aria-hidden className="text-muted-foreground size-6" />
        <p id={hintId} className="text-muted-foreground text-sm">
          {t("upload.hint")}
        </p>
        <Button
          type="button"
          variant="outline"
          size="sm"
          aria-describedby={hintId}
          onClick={() => input.current?.click()}
        >
          {t("upload.choose")}
        </Button>
        <input
          ref={input}
          type="file"
          multiple
          className="hidden"
          tabIndex={-1}
          aria-label={t("upload.choose")}
          onChange={(event) => {
            const files = Array.from(event.target.files ?? []);
            event.target.value = "";
            if (files.length > 0) void send(files);
          }}
        />
      </div>
      {uploads.length > 0 && (
        <ul className="flex flex-col gap-2" aria-label={t("upload.list")}>
          {uploads.map((upload) => (
            <li key={upload.id} className="flex items-center gap-3 rounded-md border px-3 py-2">
              <div className="flex min-w-0 flex-1 flex-col gap-1">
                <span className="truncate text-sm">{upload.name}</span>
                {upload.status === "uploading" && (
                  <Progress
                    value={upload.percent}
                    aria-label={t("upload.progress", { name: upload.name })}
                  />
                )}
                <span
                  className={cn(
                    "text-xs",
                    upload.status === "failed" ? "text-destructive" : "text-muted-foreground",
                  )}
                  aria-live="polite"
                >
                  {upload.status === "uploading"
                    ? t("upload.percent", { percent: upload.percent })
                    : upload.status === "stored"
                      ? t("upload.stored")
                      : t("upload.failed", { error: upload.error ?? "" })}
                </span>
              </div>
              {upload.status !== "uploading" && (
                <Button
                  type="button"
                  variant="ghost"
                  size="icon"
                  aria-label={t("upload.dismiss", { name: upload.name })}
                  onClick={() => setUploads((list) => list.filter((item) => item.id !== upload.id))}
                >
                  <X aria-hidden />
                </Button>
              )}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
