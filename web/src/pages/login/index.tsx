import { useTranslation } from "react-i18next";
import { Navigate, useNavigate, useSearchParams } from "react-router";

import { useAuthStore } from "@/auth/store";
import { Splash } from "@/components/layout/Splash";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { LoginForm } from "./LoginForm";

/** Only paths inside the app: never an absolute URL from the query string. */
function safeNext(next: string | null): string {
  return next?.startsWith("/") && !next.startsWith("//") ? next : "/chat";
}

export function Component() {
  const { t } = useTranslation("auth");
  const status = useAuthStore((state) => state.status);
  const navigate = useNavigate();
  const [params] = useSearchParams();
  const next = safeNext(params.get("next"));

  if (status === "restoring") return <Splash />;
  if (status === "signed-in") return <Navigate to={next} replace />;

  return (
    <main className="flex min-h-full items-center justify-center p-4">
      <Card className="w-full max-w-sm">
        <CardHeader>
          <CardTitle>
            <h1 className="text-xl">{t("title")}</h1>
          </CardTitle>
          <CardDescription>{t("subtitle")}</CardDescription>
        </CardHeader>
        <CardContent>
          <LoginForm onSignedIn={() => void navigate(next, { replace: true })} />
        </CardContent>
      </Card>
    </main>
  );
}
