import { Check, Languages, LogOut, UserRound } from "lucide-react";
import { useTranslation } from "react-i18next";

import { Button } from "@/components/ui/button";
import {
  DropdownMenu,
  DropdownMenuContent,
  DropdownMenuItem,
  DropdownMenuLabel,
  DropdownMenuSeparator,
  DropdownMenuTrigger,
} from "@/components/ui/dropdown-menu";
import { useMe } from "@/hooks/useMe";
import { useSignOut } from "@/hooks/useSignOut";
import { changeLanguage, languages } from "@/i18n";

export function UserMenu() {
  const { t, i18n } = useTranslation();
  const me = useMe();
  const signOut = useSignOut();
  return (
    <DropdownMenu>
      <DropdownMenuTrigger asChild>
        <Button variant="ghost" className="w-full justify-start" aria-label={t("account.menu")}>
          <UserRound aria-hidden />
          <span className="truncate">{me.data?.username ?? t("account.offline")}</span>
        </Button>
      </DropdownMenuTrigger>
      <DropdownMenuContent align="start" className="w-56">
        <DropdownMenuLabel className="flex items-center gap-2">
          <Languages className="size-4" aria-hidden />
          {t("language.label")}
        </DropdownMenuLabel>
        {languages.map((language) => (
          <DropdownMenuItem key={language} onSelect={() => void changeLanguage(language)}>
            <Check
              aria-hidden
              className={i18n.resolvedLanguage === language ? "opacity-100" : "opacity-0"}
            />
            {t(`language.${language}`)}
          </DropdownMenuItem>
        ))}
        <DropdownMenuSeparator />
        <DropdownMenuItem onSelect={() => void signOut()}>
          <LogOut aria-hidden />
          {t("account.signOut")}
        </DropdownMenuItem>
      </DropdownMenuContent>
    </DropdownMenu>
  );
}
