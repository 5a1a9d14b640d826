import { useState } from "react";
import { useTranslation } from "react-i18next";

import { QueryState } from "@/components/page/QueryState";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Input } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import { Textarea } from "@/components/ui/textarea";
import { ConfirmDelete } from "./ConfirmDelete";
import { useForget, useMemory, useRemember, type Memory } from "./queries";

const MAX_LENGTH = 4000;

function MemoryItem({ memory }: { memory: Memory }) {
  const { t, i18n } = useTranslation("knowledge");
  const [editing, setEditing] = useState(false);
  const [text, setText] = useState(memory.text);
  const correct = useRemember();
  const forget = useForget();
  const date = new Intl.DateTimeFormat(i18n.language, { dateStyle: "medium" });
  const history = Boolean(memory.superseded_by);
  const editId = `memory-edit-${memory.id}`;
  const valid = text.trim().length > 0 && text.length <= MAX_LENGTH;
  const sourceKind = memory.source.kind;

  return (
    <li className="flex flex-col gap-2 rounded-md border px-3 py-2">
      {editing ? (
        <form
          className="flex flex-col gap-2"
          onSubmit={(event) => {
            event.preventDefault();
            if (!valid) return;
            correct.mutate(
              { text: text.trim(), supersedes: memory.id },
              { onSuccess: () => setEditing(false) },
            );
          }}
        >
          <Label htmlFor={editId}>{t("memory.correction")}</Label>
          <Textarea
            id={editId}
            value={text}
            autoFocus
            aria-invalid={valid ? undefined : true}
            onChange={(event) => setText(event.target.value)}
          />
          {correct.error && (
            <p role="alert" className="text-destructive text-sm">
              {correct.error.message}
            </p>
          )}
          <div className="flex gap-2">
            <Button type="submit" size="sm" disabled={!valid || correct.isPending}>
              {t("memory.saveCorrection")}
            </Button>
            <Button
              type="button"
              size="sm"
              variant="ghost"
              onClick={() => {
                setText(memory.text);
                setEditing(false);
              }}
            >
              {t("memory.cancel")}
            </Button>
          </div>
        </form>
      ) : (
        <p className={history ? "text-muted-foreground line-through" : undefined}>{memory.text}</p>
      )}
      <div className="flex flex-wrap items-center gap-2 text-xs">
        <span className="text-muted-foreground">
          {t("memory.kept", { date: date.format(new Date(memory.created_at)) })}
        </span>
        <Badge variant="outline">
          {sourceKind === "conversation" || sourceKind === "run" || sourceKind === "user"
            ? t(`memory.source.${sourceKind}`)
            : sourceKind}
        </Badge>
        {memory.supersedes && <Badge variant="secondary">{t("memory.isCorrection")}</Badge>}
        {history && <Badge variant="outline">{t("memory.corrected")}</Badge>}
        <span className="flex-1" />
        {!history && !editing && (
          <Button
            type="button"
            variant="outline"
            size="sm"
            aria-label={t("memory.editLabel", { text: memory.text.slice(0, 60) })}
            onClick={() => setEditing(true)}
          >
            {t("memory.edit")}
          </Button>
        )}
        <ConfirmDelete
          label={t("memory.delete", { text: memory.text.slice(0, 60) })}
          pending={forget.isPending}
          onConfirm={() => forget.mutate(memory.id)}
        />
      </div>
      {forget.error && (
        <p role="alert" className="text-destructive text-sm">
          {forget.error.message}
        </p>
      )}
    </li>
  );
}

function RememberForm() {
  const { t } = useTranslation("knowledge");
  const remember = useRemember();
  const [text, setText] = useState("");
  const valid = text.trim().length > 0 && text.length <= MAX_LENGTH;
  return (
    <form
      className="flex flex-col gap-2 rounded-lg border p-3"
      aria-labelledby="memory-new"
      onSubmit={(event) => {
        event.preventDefault();
        if (!valid) return;
        remember.mutate({ text: text.trim() }, { onSuccess: () => setText("") });
      }}
    >
      <h3 id="memory-new" className="font-medium">
        {t("memory.new")}
      </h3>
      <Label htmlFor="memory-new-text">{t("memory.fact")}</Label>
      <Textarea id="memory-new-text" value={text} onChange={(event) => setText(event.target.value)} />
      {remember.error && (
        <p role="alert" className="text-destructive text-sm">
          {remember.error.message}
        </p>
      )}
      <div>
        <Button type="submit" size="sm" disabled={!valid || remember.isPending}>
          {t("memory.remember")}
        </Button>
      </div>
    </form>
  );
}

/** What kai remembers about the user: read, correct (kept as history), forget. */
export function MemoryView() {
  const { t } = useTranslation("knowledge");
  const [query, setQuery] = useState("");
  const [history, setHistory] = useState(false);
  const memory = useMemory(query.trim(), history);
  return (
    <section aria-labelledby="memory-heading" className="flex flex-col gap-4">
      <h2 id="memory-heading" className="text-lg font-medium">
        {t("memory.heading")}
      </h2>
      <p className="text-muted-foreground text-sm">{t("memory.explain")}</p>
      <div className="flex flex-wrap items-end gap-4">
        <div className="flex flex-1 flex-col gap-1.5">
          <Label htmlFor="memory-filter">{t("memory.filter")}</Label>
          <Input
            id="memory-filter"
            type="search"
            value={query}
            onChange={(event) => setQuery(event.target.value)}
          />
        </div>
        <label className="flex items-center gap-2 text-sm">
          <input
            type="checkbox"
            className="accent-primary size-4"
            checked={history}
            onChange={(event) => setHistory(event.target.checked)}
          />
          {t("memory.showHistory")}
        </label>
      </div>
      <QueryState
        isPending={memory.isPending}
        error={memory.error}
        isEmpty={memory.data?.length === 0}
        empty={t("memory.empty")}
      >
        <ul className="flex flex-col gap-2">
          {memory.data?.map((item) => <MemoryItem key={item.id} memory={item} />)}
        </ul>
      </QueryState>
      <RememberForm />
    </section>
  );
}
