import type { ReactNode } from "react";
import { useTranslation } from "react-i18next";

/** What a list shows while it loads, when it failed, and when it is empty. */
export function QueryState({
  isPending,
  error,
  isEmpty,
  empty,
  children,
}: {
  isPending: boolean;
  error: Error | null;
  isEmpty: boolean;
  empty: string;
  children: ReactNode;
}) {
  const { t } = useTranslation();
  if (error) {
    return (
      <p role="alert" className="text-destructive text-sm">
        {error.message}
      </p>
    );
  }
  if (isPending) return <p className="text-muted-foreground text-sm">{t("loading")}</p>;
  if (isEmpty) return <p className="text-muted-foreground text-sm">{empty}</p>;
  return <>{children}</>;
}
