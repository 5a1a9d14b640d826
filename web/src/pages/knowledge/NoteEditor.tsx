import { useMemo, useState } from "react";
import { useTranslation } from "react-i18next";
import { Link, useNavigate } from "react-router";

import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Input } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import { ConfirmDelete } from "./ConfirmDelete";
import { LinkTextarea } from "./LinkTextarea";
import { NoteHistory } from "./NoteHistory";
import { NotePreview } from "./NotePreview";
import { useDeleteNote, useNote, useNotes, useUpdateNote, type Note, type NoteChange } from "./queries";

export function parseTags(text: string): string[] {
  const tags = text
    .split(",")
    .map((tag) => tag.trim())
    .filter(Boolean);
  return [...new Set(tags)].sort();
}

function sameTags(a: string[], b: string[]) {
  return a.length === b.length && a.every((tag, i) => tag === b[i]);
}

function Editor({ note }: { note: Note }) {
  const { t, i18n } = useTranslation("knowledge");
  const navigate = useNavigate();
  const notes = useNotes();
  const update = useUpdateNote(note.id);
  const remove = useDeleteNote();
  const [title, setTitle] = useState(note.title);
  const [body, setBody] = useState(note.body);
  const [tags, setTags] = useState(note.tags.join(", "));
  const [showHistory, setShowHistory] = useState(false);
  const [saved, setSaved] = useState(note);

  const noteIds = useMemo(
    () => new Map((notes.data ?? []).map((item) => [item.title.toLowerCase(), item.id])),
    [notes.data],
  );
  const titles = useMemo(
    () => (notes.data ?? []).filter((item) => item.id !== note.id).map((item) => item.title),
    [notes.data, note.id],
  );

  const change: NoteChange = {};
  if (title.trim() !== saved.title) change.title = title.trim();
  if (body !== saved.body) change.body = body;
  const tagList = parseTags(tags);
  if (!sameTags(tagList, saved.tags)) change.tags = tagList;
  const dirty = Object.keys(change).length > 0;
  const titleValid = title.trim().length > 0 && !/\[\[|\]\]|[|#]/.test(title);

  const save = () => {
    if (!dirty || !titleValid) return;
    update.mutate(change, { onSuccess: (next) => setSaved(next) });
  };

  const date = new Intl.DateTimeFormat(i18n.language, { dateStyle: "medium", timeStyle: "short" });
  const headingId = `note-${note.id}`;

  return (
    <article aria-labelledby={headingId} className="flex flex-col gap-4">
      <div className="flex flex-wrap items-center gap-2">
        <h3 id={headingId} className="min-w-0 flex-1 truncate text-lg font-medium">
          {saved.title}
        </h3>
        <span className="text-muted-foreground text-xs">
          {t("notes.versionInfo", { version: saved.version, date: date.format(new Date(saved.updated_at)) })}
        </span>
        <Badge variant="outline">{t(`index.${saved.index_state}`)}</Badge>
      </div>
      <form
        className="flex flex-col gap-3"
        onSubmit={(event) => {
          event.preventDefault();
          save();
        }}
        onKeyDown={(event) => {
          if ((event.ctrlKey || event.metaKey) && event.key === "s") {
            event.preventDefault();
            save();
          }
        }}
      >
        <div className="grid gap-3 sm:grid-cols-2">
          <div className="flex flex-col gap-1.5">
            <Label htmlFor="note-title">{t("notes.title")}</Label>
            <Input
              id="note-title"
              value={title}
              aria-invalid={titleValid ? undefined : true}
              aria-describedby={titleValid ? undefined : "note-title-error"}
              onChange={(event) => setTitle(event.target.value)}
            />
            {!titleValid && (
              <p id="note-title-error" className="text-destructive text-sm">
                {t("notes.titleInvalid")}
              </p>
            )}
          </div>
          <div className="flex flex-col gap-1.5">
            <Label htmlFor="note-tags">{t("notes.tags")}</Label>
            <Input
              id="note-tags"
              value={tags}
              aria-describedby="note-tags-hint"
              onChange={(event) => setTags(event.target.value)}
            />
            <p id="note-tags-hint" className="text-muted-foreground text-xs">
              {t("notes.tagsHint")}
            </p>
          </div>
        </div>
        <div className="grid gap-4 lg:grid-cols-2">
          <div className="flex flex-col gap-1.5">
            <Label htmlFor="note-body">{t("notes.body")}</Label>
            <LinkTextarea
              id="note-body"
              value={body}
              onChange={setBody}
              titles={titles}
              describedBy="note-body-hint"
            />
            <p id="note-body-hint" className="text-muted-foreground text-xs">
              {t("notes.bodyHint")}
            </p>
          </div>
          <section aria-labelledby="note-preview" className="flex min-w-0 flex-col gap-1.5">
            <h4 id="note-preview" className="text-sm font-medium">
              {t("notes.preview")}
            </h4>
            <div className="min-h-64 overflow-x-auto rounded-md border p-3 text-sm">
              <NotePreview
                text={body}
                noteIds={noteIds}
                missingLabel={(missing) => t("notes.missingLink", { title: missing })}
              />
            </div>
          </section>
        </div>
        {update.error && (
          <p role="alert" className="text-destructive text-sm">
            {update.error.message}
          </p>
        )}
        <div className="flex flex-wrap items-center gap-2">
          <Button type="submit" disabled={!dirty || !titleValid || update.isPending}>
            {update.isPending ? t("notes.saving") : t("notes.save")}
          </Button>
          <span className="text-muted-foreground text-xs" aria-live="polite">
            {dirty ? t("notes.unsaved") : t("notes.allSaved")}
          </span>
          <span className="flex-1" />
          <ConfirmDelete
            label={t("notes.delete", { title: saved.title })}
            pending={remove.isPending}
            onConfirm={() =>
              remove.mutate(note.id, { onSuccess: () => void navigate("/knowledge/notes") })
            }
          />
        </div>
      </form>

      <section aria-labelledby="note-backlinks" className="flex flex-col gap-1">
        <h4 id="note-backlinks" className="text-sm font-medium">
          {t("notes.backlinks", { count: saved.backlinks.length })}
        </h4>
        {saved.backlinks.length === 0 ? (
          <p className="text-muted-foreground text-sm">{t("notes.noBacklinks")}</p>
        ) : (
          <ul className="flex flex-wrap gap-2">
            {saved.backlinks.map((backlink) => (
              <li key={backlink.id}>
                <Link
                  to={`/knowledge/notes/${backlink.id}`}
                  className="text-sm underline underline-offset-2"
                >
                  {backlink.title}
                </Link>
              </li>
            ))}
          </ul>
        )}
      </section>

      <section aria-labelledby="note-history" className="flex flex-col gap-2">
        <div className="flex items-center gap-2">
          <h4 id="note-history" className="text-sm font-medium">
            {t("history.heading")}
          </h4>
          <Button
            type="button"
            variant="outline"
            size="sm"
            aria-expanded={showHistory}
            aria-controls="note-history-panel"
            onClick={() => setShowHistory(!showHistory)}
          >
            {showHistory ? t("history.hide") : t("history.show")}
          </Button>
        </div>
        {showHistory && (
          <div id="note-history-panel">
            <NoteHistory
              key={saved.version}
              noteId={note.id}
              onRestore={(version) => {
                setTitle(version.title);
                setBody(version.body);
              }}
            />
          </div>
        )}
      </section>
    </article>
  );
}

/** One note, editable, with its preview, backlinks and history. */
export function NoteEditor({ id }: { id: string }) {
  const { t } = useTranslation("knowledge");
  const note = useNote(id);
  if (note.error) {
    return (
      <p role="alert" className="text-destructive text-sm">
        {note.error.message}
      </p>
    );
  }
  if (!note.data) return <p className="text-muted-foreground text-sm">{t("notes.loading")}</p>;
  return <Editor key={note.data.id} note={note.data} />;
}
