import { useTranslation } from "react-i18next";
import { Link, useRouteError } from "react-router";

import { Button } from "@/components/ui/button";

export function RouteError() {
  const { t } = useTranslation();
  const error = useRouteError();
  const detail = error instanceof Error ? error.message : null;
  return (
    <div role="alert" className="mx-auto flex max-w-md flex-col items-start gap-3 p-8">
      <h1 className="text-lg font-semibold">{t("error.title")}</h1>
      {detail && <p className="text-muted-foreground text-sm">{detail}</p>}
      <Button asChild variant="outline">
        <Link to="/">{t("error.home")}</Link>
      </Button>
    </div>
  );
}
