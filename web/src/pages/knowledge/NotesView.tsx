import { useForm } from "react-hook-form";
import { useTranslation } from "react-i18next";
import { Link, NavLink, useNavigate, useParams, useSearchParams } from "react-router";

import { QueryState } from "@/components/page/QueryState";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Input } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import { NativeSelect, NativeSelectOption } from "@/components/ui/native-select";
import { cn } from "@/lib/utils";
import { NoteEditor, parseTags } from "./NoteEditor";
import { useCreateNote, useNotes, useTemplates, type NewNote } from "./queries";

/** Starting texts offered when the API has no templates of the user's own. */
export const BUILT_IN_TEMPLATES = ["meeting", "journal", "project"] as const;
type BuiltIn = (typeof BUILT_IN_TEMPLATES)[number];

interface NewNoteForm {
  title: string;
  /** `""` for an empty note, `builtin:<name>`, or `api:<title>` of a note tagged `template`. */
  template: string;
  tags: string;
}

function NewNote() {
  const { t } = useTranslation("knowledge");
  const navigate = useNavigate();
  const create = useCreateNote();
  const templates = useTemplates();
  const {
    register,
    handleSubmit,
    formState: { errors },
  } = useForm<NewNoteForm>({ defaultValues: { title: "", template: "", tags: "" } });

  const submit = handleSubmit((values) => {
    const note: NewNote = { title: values.title.trim(), tags: parseTags(values.tags) };
    if (values.template.startsWith("api:")) note.template = values.template.slice(4);
    if (values.template.startsWith("builtin:")) {
      const name = values.template.slice(8) as BuiltIn;
      note.body = t(`templates.${name}.body`);
    }
    create.mutate(note, { onSuccess: (created) => void navigate(`/knowledge/notes/${created.id}`) });
  });

  return (
    <form
      onSubmit={(event) => void submit(event)}
      aria-labelledby="new-note"
      className="flex flex-col gap-3 rounded-lg border p-3"
    >
      <h3 id="new-note" className="font-medium">
        {t("notes.new")}
      </h3>
      <div className="flex flex-col gap-1.5">
        <Label htmlFor="new-note-title">{t("notes.title")}</Label>
        <Input
          id="new-note-title"
          aria-invalid={errors.title ? true : undefined}
          aria-describedby={errors.title ? "new-note-title-error" : undefined}
          {...register("title", {
            validate: (title) => {
              const trimmed = title.trim();
              return (
                (trimmed.length >= 1 && trimmed.length <= 200 && !/\[\[|\]\]|[|#]/.test(trimmed)) ||
                t("notes.titleInvalid")
              );
            },
          })}
        />
        {errors.title && (
          <p id="new-note-title-error" className="text-destructive text-sm">
            {errors.title.message}
          </p>
        )}
      </div>
      <div className="flex flex-col gap-1.5">
        <Label htmlFor="new-note-template">{t("notes.template")}</Label>
        <NativeSelect id="new-note-template" className="w-full" {...register("template")}>
          <NativeSelectOption value="">{t("templates.blank")}</NativeSelectOption>
          {(templates.data ?? []).map((template) => (
            <NativeSelectOption key={template.id} value={`api:${template.title}`}>
              {template.title}
            </NativeSelectOption>
          ))}
          {BUILT_IN_TEMPLATES.map((name) => (
            <NativeSelectOption key={name} value={`builtin:${name}`}>
              {t(`templates.${name}.name`)}
            </NativeSelectOption>
          ))}
        </NativeSelect>
      </div>
      <div className="flex flex-col gap-1.5">
        <Label htmlFor="new-note-tags">{t("notes.tags")}</Label>
        <Input id="new-note-tags" aria-describedby="new-note-tags-hint" {...register("tags")} />
        <p id="new-note-tags-hint" className="text-muted-foreground text-xs">
          {t("notes.tagsHint")}
        </p>
      </div>
      {create.error && (
        <p role="alert" className="text-destructive text-sm">
          {create.error.message}
        </p>
      )}
      <div>
        <Button type="submit" disabled={create.isPending}>
          {t("notes.create")}
        </Button>
      </div>
    </form>
  );
}

export function NotesView() {
  const { t } = useTranslation("knowledge");
  const { noteId } = useParams();
  const [params, setParams] = useSearchParams();
  const tag = params.get("tag");
  const all = useNotes();
  const filtered = useNotes(tag);
  const tags = [...new Set((all.data ?? []).flatMap((note) => note.tags))].sort();
  const search = tag ? `?tag=${encodeURIComponent(tag)}` : "";

  return (
    <section aria-labelledby="notes-heading" className="flex flex-col gap-4">
      <h2 id="notes-heading" className="text-lg font-medium">
        {t("notes.heading")}
      </h2>
      <div className="grid gap-6 md:grid-cols-[16rem_minmax(0,1fr)]">
        <div className="flex flex-col gap-3">
          <div className="flex flex-col gap-1.5">
            <Label htmlFor="notes-tag">{t("notes.filterTag")}</Label>
            <NativeSelect
              id="notes-tag"
              className="w-full"
              value={tag ?? ""}
              onChange={(event) => {
                const next = new URLSearchParams(params);
                if (event.target.value) next.set("tag", event.target.value);
                else next.delete("tag");
                setParams(next);
              }}
            >
              <NativeSelectOption value="">{t("notes.allTags")}</NativeSelectOption>
              {tags.map((name) => (
                <NativeSelectOption key={name} value={name}>
                  {name}
                </NativeSelectOption>
              ))}
            </NativeSelect>
          </div>
          <QueryState
            isPending={filtered.isPending}
            error={filtered.error}
            isEmpty={filtered.data?.length === 0}
            empty={t("notes.empty")}
          >
            <ul className="flex flex-col gap-1" aria-label={t("notes.list")}>
              {filtered.data?.map((note) => (
                <li key={note.id}>
                  <NavLink
                    to={`/knowledge/notes/${note.id}${search}`}
                    className={({ isActive }) =>
                      cn(
                        "hover:bg-accent flex flex-col rounded-md px-2 py-1.5 text-sm",
                        isActive && "bg-accent text-accent-foreground",
                      )
                    }
                  >
                    <span className="truncate font-medium">{note.title}</span>
                    {note.tags.length > 0 && (
                      <span className="flex flex-wrap gap-1">
                        {note.tags.map((name) => (
                          <Badge key={name} variant="outline" className="text-xs">
                            {name}
                          </Badge>
                        ))}
                      </span>
                    )}
                  </NavLink>
                </li>
              ))}
            </ul>
          </QueryState>
          {noteId && (
            <Button asChild variant="outline" size="sm">
              <Link to={`/knowledge/notes${search}`}>{t("notes.new")}</Link>
            </Button>
          )}
        </div>
        <div className="min-w-0">{noteId ? <NoteEditor key={noteId} id={noteId} /> : <NewNote />}</div>
      </div>
    </section>
  );
}
