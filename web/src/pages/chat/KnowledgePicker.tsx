import { Library } from "lucide-react";
import { useTranslation } from "react-i18next";

import { Button } from "@/components/ui/button";
import { useDisclosure } from "@/hooks/useDisclosure";
import type { ConversationSettings } from "./chat-settings";
import { useCollections } from "./queries";

/** Whether answers draw on the user's knowledge, and from which collections. */
export function KnowledgePicker({
  settings,
  onChange,
}: {
  settings: ConversationSettings;
  onChange: (change: Partial<ConversationSettings>) => void;
}) {
  const { t } = useTranslation("chat");
  const { data: collections = [] } = useCollections();
  const { open, container, buttonProps, panelId } = useDisclosure();
  const toggle = (id: string, checked: boolean) =>
    onChange({
      knowledge: true,
      collections: checked
        ? [...settings.collections, id]
        : settings.collections.filter((known) => known !== id),
    });
  const label = !settings.knowledge
    ? t("knowledge.off")
    : settings.collections.length === 0
      ? t("knowledge.all")
      : t("knowledge.some", { count: settings.collections.length });

  return (
    <div ref={container} className="relative">
      <Button variant="outline" size="sm" {...buttonProps}>
        <Library aria-hidden />
        <span className="sr-only">{t("knowledge.label")}</span>
        {label}
      </Button>
      {open && (
        <fieldset
          id={panelId}
          className="bg-popover text-popover-foreground absolute right-0 z-30 mt-1 flex w-64 flex-col gap-1 rounded-md border p-2 text-sm shadow-md"
        >
          <legend className="sr-only">{t("knowledge.label")}</legend>
          <label className="hover:bg-accent flex items-center gap-2 rounded-sm px-2 py-1.5">
            <input
              type="checkbox"
              className="accent-primary size-4"
              checked={settings.knowledge}
              onChange={(event) => onChange({ knowledge: event.target.checked, collections: [] })}
            />
            {t("knowledge.use")}
          </label>
          <p className="text-muted-foreground border-t px-2 pt-2 text-xs">
            {collections.length ? t("knowledge.collections") : t("knowledge.none")}
          </p>
          {collections.map((collection) => (
            <label
              key={collection.id}
              className="hover:bg-accent flex items-center gap-2 rounded-sm px-2 py-1.5"
            >
              <input
                type="checkbox"
                className="accent-primary size-4"
                checked={settings.knowledge && settings.collections.includes(collection.id)}
                onChange={(event) => toggle(collection.id, event.target.checked)}
              />
              {collection.name}
            </label>
          ))}
        </fieldset>
      )}
    </div>
  );
}
