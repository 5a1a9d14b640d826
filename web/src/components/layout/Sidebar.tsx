import { SquarePen } from "lucide-react";
import { useTranslation } from "react-i18next";
import { NavLink } from "react-router";

import { pages } from "@/app/pages";
import { Button } from "@/components/ui/button";
import { NEW_CHAT_EVENT } from "@/hooks/useShortcuts";
import { cn } from "@/lib/utils";
import { ConnectionBadge } from "./ConnectionBadge";
import { ThemeToggle } from "./ThemeToggle";
import { UserMenu } from "./UserMenu";

export function Sidebar() {
  const { t } = useTranslation();
  return (
    <nav
      aria-label={t("nav.label")}
      className="bg-sidebar text-sidebar-foreground border-sidebar-border flex w-full shrink-0 flex-col gap-2 border-b p-3 md:h-full md:w-56 md:border-r md:border-b-0"
    >
      <div className="flex items-center justify-between gap-2 px-2">
        <span className="text-lg font-semibold tracking-tight">{t("appName")}</span>
        <ThemeToggle />
      </div>
      <Button asChild variant="outline" className="justify-start">
        <NavLink
          to="/chat"
          onClick={() => window.dispatchEvent(new Event(NEW_CHAT_EVENT))}
          aria-keyshortcuts="Control+K Meta+K"
        >
          <SquarePen aria-hidden />
          {t("nav.newChat")}
        </NavLink>
      </Button>
      <ul className="flex flex-row flex-wrap gap-1 md:flex-col">
        {pages.map(({ to, label, icon: Icon }, index) => (
          <li key={to}>
            <NavLink
              to={to}
              aria-keyshortcuts={`Alt+${index + 1}`}
              className={({ isActive }) =>
                cn(
                  "hover:bg-sidebar-accent focus-visible:ring-ring/50 flex items-center gap-2 rounded-md px-2 py-1.5 text-sm outline-none focus-visible:ring-[3px]",
                  isActive && "bg-sidebar-accent text-sidebar-accent-foreground font-medium",
                )
              }
            >
              <Icon className="size-4" aria-hidden />
              {t(label)}
            </NavLink>
          </li>
        ))}
      </ul>
      <div className="mt-auto flex flex-col gap-2">
        <div className="px-2">
          <ConnectionBadge />
        </div>
        <UserMenu />
      </div>
    </nav>
  );
}
