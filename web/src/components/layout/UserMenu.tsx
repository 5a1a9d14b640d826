import { LogOut, UserRound } from "lucide-react";
import { useTranslation } from "react-i18next";

import { Button } from "@/components/ui/button";
import { useMe } from "@/hooks/useMe";
import { useSignOut } from "@/hooks/useSignOut";

/** Who is signed in, and the way out. */
export function UserMenu() {
  const { t } = useTranslation();
  const me = useMe();
  const signOut = useSignOut();
  return (
    <div className="flex items-center gap-2 px-2">
      <UserRound className="size-4 shrink-0" aria-hidden />
      <span className="min-w-0 flex-1 truncate text-sm">
        {me.data?.username ?? t("account.offline")}
      </span>
      <Button
        variant="ghost"
        size="icon"
        onClick={() => void signOut()}
        aria-label={t("account.signOut")}
        title={t("account.signOut")}
      >
        <LogOut aria-hidden />
      </Button>
    </div>
  );
}
