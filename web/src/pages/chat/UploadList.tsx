import { FileUp, X } from "lucide-react";
import { useTranslation } from "react-i18next";

import { Button } from "@/components/ui/button";
import { Progress } from "@/components/ui/progress";
import { useUploadsStore, type Upload } from "@/stores/uploads";

function UploadItem({ upload }: { upload: Upload }) {
  const { t } = useTranslation("chat");
  const dismiss = useUploadsStore((state) => state.dismiss);
  const state =
    upload.status === "failed"
      ? upload.error || t("upload.failed")
      : upload.status === "uploading"
        ? t("upload.percent", { percent: upload.percent })
        : t(`upload.index.${upload.indexState ?? "pending"}`);
  return (
    <li className="flex items-center gap-2 rounded-md border px-2 py-1 text-xs">
      <FileUp className="size-4 shrink-0" aria-hidden />
      <div className="flex min-w-0 flex-1 flex-col gap-1">
        <span className="truncate font-medium">{upload.name}</span>
        {upload.status === "uploading" && (
          <Progress value={upload.percent} aria-label={t("upload.progress", { name: upload.name })} />
        )}
        <span className={upload.status === "failed" ? "text-destructive" : "text-muted-foreground"}>
          {state}
        </span>
      </div>
      <Button
        variant="ghost"
        size="icon"
        className="size-6"
        onClick={() => dismiss(upload.id)}
        aria-label={t("upload.dismiss", { name: upload.name })}
      >
        <X aria-hidden />
      </Button>
    </li>
  );
}

/** Files dropped into the chat, with their upload's progress and then their indexing. */
export function UploadList() {
  const uploads = useUploadsStore((state) => state.uploads);
  if (uploads.length === 0) return null;
  return (
    <ul className="flex flex-wrap gap-2">
      {uploads.map((upload) => (
        <UploadItem key={upload.id} upload={upload} />
      ))}
    </ul>
  );
}
