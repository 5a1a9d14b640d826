import { useTranslation } from "react-i18next";
import { Link } from "react-router";

import { Button } from "@/components/ui/button";

export function Component() {
  const { t } = useTranslation();
  return (
    <div className="flex flex-col items-start gap-3 p-8">
      <h1 className="text-lg font-semibold">{t("notFound.title")}</h1>
      <Button asChild variant="outline">
        <Link to="/chat">{t("error.home")}</Link>
      </Button>
    </div>
  );
}
