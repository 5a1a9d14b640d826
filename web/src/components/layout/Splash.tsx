import { LoaderCircle } from "lucide-react";
import { useTranslation } from "react-i18next";

export function Splash() {
  const { t } = useTranslation();
  return (
    <div className="flex h-full items-center justify-center" role="status">
      <LoaderCircle className="text-muted-foreground size-6 animate-spin" aria-hidden />
      <span className="sr-only">{t("loading")}</span>
    </div>
  );
}
