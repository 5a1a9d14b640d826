import { useState } from "react";
import { useTranslation } from "react-i18next";

import { Button } from "@/components/ui/button";
import { Label } from "@/components/ui/label";
import { NativeSelect, NativeSelectOption } from "@/components/ui/native-select";
import { cn } from "@/lib/utils";
import { useNoteDiff, useNoteVersions, type NoteVersion } from "./queries";

/** A unified diff, its added and removed lines marked by colour and by their `+`/`-`. */
export function DiffView({ diff }: { diff: string }) {
  const { t } = useTranslation("knowledge");
  const lines = diff.replace(/\n$/, "").split("\n");
  return (
    <pre
      role="group"
      className="bg-muted/40 overflow-x-auto rounded-md border p-2 text-xs leading-5"
      aria-label={t("history.diffLabel")}
    >
      {lines.map((line, i) => {
        const kind =
          line.startsWith("+++") || line.startsWith("---")
            ? "file"
            : line.startsWith("+")
              ? "added"
              : line.startsWith("-")
                ? "removed"
                : line.startsWith("@@")
                  ? "hunk"
                  : "same";
        return (
          <div
            key={i}
            data-kind={kind}
            className={cn(
              "px-1 whitespace-pre-wrap",
              kind === "added" && "bg-primary/10 font-medium",
              kind === "removed" && "bg-destructive/10 text-destructive",
              (kind === "hunk" || kind === "file") && "text-muted-foreground",
            )}
          >
            {line || " "}
          </div>
        );
      })}
    </pre>
  );
}

/** A note's versions, the differences between any two, and bringing an old one back. */
export function NoteHistory({
  noteId,
  onRestore,
}: {
  noteId: string;
  onRestore: (version: NoteVersion) => void;
}) {
  const { t, i18n } = useTranslation("knowledge");
  const versions = useNoteVersions(noteId, true);
  const list = versions.data ?? [];
  const newest = list.at(-1)?.version ?? null;
  const [from, setFrom] = useState<number | null>(null);
  const [to, setTo] = useState<number | null>(null);
  const fromVersion = from ?? (newest !== null && newest > 1 ? newest - 1 : null);
  const toVersion = to ?? newest;
  const diff = useNoteDiff(noteId, fromVersion, toVersion);
  const date = new Intl.DateTimeFormat(i18n.language, { dateStyle: "medium", timeStyle: "short" });

  if (versions.isPending) return <p className="text-muted-foreground text-sm">{t("history.loading")}</p>;
  if (versions.error) {
    return (
      <p role="alert" className="text-destructive text-sm">
        {versions.error.message}
      </p>
    );
  }

  return (
    <div className="flex flex-col gap-3">
      <ol className="flex flex-col gap-1 text-sm">
        {[...list].reverse().map((version) => (
          <li key={version.version} className="flex flex-wrap items-center gap-2">
            <span className="font-medium tabular-nums">
              {t("history.version", { version: version.version })}
            </span>
            <span className="text-muted-foreground">{date.format(new Date(version.created_at))}</span>
            <span className="text-muted-foreground truncate">{version.title}</span>
            {version.version !== newest && (
              <Button
                type="button"
                variant="ghost"
                size="sm"
                onClick={() => onRestore(version)}
                aria-label={t("history.restoreLabel", { version: version.version })}
              >
                {t("history.restore")}
              </Button>
            )}
          </li>
        ))}
      </ol>
      {list.length > 1 ? (
        <>
          <div className="flex flex-wrap items-end gap-3">
            <div className="flex flex-col gap-1.5">
              <Label htmlFor={`diff-from-${noteId}`}>{t("history.from")}</Label>
              <NativeSelect
                id={`diff-from-${noteId}`}
                value={fromVersion ?? ""}
                onChange={(event) => setFrom(Number(event.target.value))}
              >
                {list.map((version) => (
                  <NativeSelectOption key={version.version} value={version.version}>
                    {t("history.version", { version: version.version })}
                  </NativeSelectOption>
                ))}
              </NativeSelect>
            </div>
            <div className="flex flex-col gap-1.5">
              <Label htmlFor={`diff-to-${noteId}`}>{t("history.to")}</Label>
              <NativeSelect
                id={`diff-to-${noteId}`}
                value={toVersion ?? ""}
                onChange={(event) => setTo(Number(event.target.value))}
              >
                {list.map((version) => (
                  <NativeSelectOption key={version.version} value={version.version}>
                    {t("history.version", { version: version.version })}
                  </NativeSelectOption>
                ))}
              </NativeSelect>
            </div>
          </div>
          {fromVersion === toVersion ? (
            <p className="text-muted-foreground text-sm">{t("history.sameVersion")}</p>
          ) : diff.error ? (
            <p role="alert" className="text-destructive text-sm">
              {diff.error.message}
            </p>
          ) : diff.data === undefined ? (
            <p className="text-muted-foreground text-sm">{t("history.loading")}</p>
          ) : diff.data.trim() === "" ? (
            <p className="text-muted-foreground text-sm">{t("history.noChanges")}</p>
          ) : (
            <DiffView diff={diff.data} />
          )}
        </>
      ) : (
        <p className="text-muted-foreground text-sm">{t("history.onlyOne")}</p>
      )}
    </div>
  );
}
