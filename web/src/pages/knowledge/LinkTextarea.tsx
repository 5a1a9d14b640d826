import { useId, useLayoutEffect, useRef, useState, type KeyboardEvent } from "react";
import { useTranslation } from "react-i18next";

import { Textarea } from "@/components/ui/textarea";
import { cn } from "@/lib/utils";
import { completeLink, linkQueryAt, suggestTitles, type LinkQuery } from "./wikilinks";

/**
 * A Markdown textarea that, while a `[[link` is being typed, offers the titles of notes that
 * match: arrows move through them, Enter or Tab takes one, Escape closes the list.
 */
export function LinkTextarea({
  id,
  value,
  onChange,
  titles,
  describedBy,
}: {
  id: string;
  value: string;
  onChange: (value: string) => void;
  titles: string[];
  describedBy?: string;
}) {
  const { t } = useTranslation("knowledge");
  const listId = useId();
  const textarea = useRef<HTMLTextAreaElement>(null);
  const [link, setLink] = useState<LinkQuery | null>(null);
  const [active, setActive] = useState(0);
  const pendingCaret = useRef<number | null>(null);

  const suggestions = link ? suggestTitles(titles, link.query) : [];
  const open = link !== null && suggestions.length > 0;

  useLayoutEffect(() => {
    if (pendingCaret.current !== null && textarea.current) {
      textarea.current.setSelectionRange(pendingCaret.current, pendingCaret.current);
      pendingCaret.current = null;
    }
  }, [value]);

  const track = (text: string, caret: number) => {
    const next = linkQueryAt(text, caret);
    setLink(next);
    if (next?.query !== link?.query) setActive(0);
  };

  const accept = (title: string) => {
    const element = textarea.current;
    if (!link || !element) return;
    const completed = completeLink(value, link, element.selectionStart, title);
    pendingCaret.current = completed.caret;
    setLink(null);
    onChange(completed.text);
    element.focus();
  };

  const onKeyDown = (event: KeyboardEvent<HTMLTextAreaElement>) => {
    if (!open) return;
    if (event.key === "ArrowDown") {
      event.preventDefault();
      setActive((active + 1) % suggestions.length);
    } else if (event.key === "ArrowUp") {
      event.preventDefault();
      setActive((active - 1 + suggestions.length) % suggestions.length);
    } else if (event.key === "Enter" || event.key === "Tab") {
      event.preventDefault();
      const title = suggestions[active];
      if (title) accept(title);
    } else if (event.key === "Escape") {
      event.preventDefault();
      setLink(null);
    }
  };

  const optionId = (index: number) => `${listId}-option-${index}`;

  return (
    <div className="relative">
      <Textarea
        ref={textarea}
        id={id}
        value={value}
        rows={16}
        spellCheck
        className="min-h-64 font-mono text-sm"
        aria-describedby={describedBy}
        aria-autocomplete="list"
        aria-controls={open ? listId : undefined}
        aria-activedescendant={open ? optionId(active) : undefined}
        onChange={(event) => {
          onChange(event.target.value);
          track(event.target.value, event.target.selectionStart);
        }}
        onSelect={(event) => track(event.currentTarget.value, event.currentTarget.selectionStart)}
        onBlur={() => setLink(null)}
        onKeyDown={onKeyDown}
      />
      <span className="sr-only" role="status">
        {open ? t("notes.suggestionCount", { count: suggestions.length }) : ""}
      </span>
      {open && (
        <ul
          id={listId}
          role="listbox"
          aria-label={t("notes.linkSuggestions")}
          className="bg-popover text-popover-foreground absolute right-2 left-2 z-10 mt-1 max-h-56 overflow-y-auto rounded-md border p-1 shadow-md"
        >
          {suggestions.map((title, index) => (
            <li
              key={title}
              id={optionId(index)}
              role="option"
              aria-selected={index === active}
              className={cn(
                "cursor-pointer rounded-sm px-2 py-1 text-sm",
                index === active && "bg-accent text-accent-foreground",
              )}
              // Keep the textarea focused (and its caret) while choosing with the mouse.
              onMouseDown={(event) => event.preventDefault()}
              onClick={() => accept(title)}
            >
              {title}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
