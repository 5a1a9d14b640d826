import { useState } from "react";
import { useTranslation } from "react-i18next";

import { Button } from "@/components/ui/button";

/**
 * A delete button that asks once more in place: the first press offers "Delete" and "Keep",
 * so nothing is deleted by a stray click, and no dialog steals focus.
 */
export function ConfirmDelete({
  label,
  onConfirm,
  pending = false,
}: {
  /** The accessible name of the first button, naming what is deleted. */
  label: string;
  onConfirm: () => void;
  pending?: boolean;
}) {
  const { t } = useTranslation("knowledge");
  const [asking, setAsking] = useState(false);
  if (!asking) {
    return (
      <Button type="button" variant="outline" size="sm" aria-label={label} onClick={() => setAsking(true)}>
        {t("delete.delete")}
      </Button>
    );
  }
  return (
    <span role="group" aria-label={label} className="flex items-center gap-1">
      <Button
        type="button"
        variant="destructive"
        size="sm"
        disabled={pending}
        autoFocus
        onClick={() => {
          onConfirm();
          setAsking(false);
        }}
      >
        {t("delete.confirm")}
      </Button>
      <Button type="button" variant="ghost" size="sm" onClick={() => setAsking(false)}>
        {t("delete.keep")}
      </Button>
    </span>
  );
}
