import type { ReactNode } from "react";
import { useTranslation } from "react-i18next";
import { Navigate, NavLink, Route, Routes } from "react-router";

import { PageSection } from "@/components/page/PageSection";
import { useMe } from "@/hooks/useMe";
import { cn } from "@/lib/utils";
import { ApiKeys } from "./ApiKeys";
import { Models } from "./admin/Models";
import { Users } from "./admin/Users";
import { Profile } from "./Profile";
import { Usage } from "./Usage";
import { Vault } from "./Vault";

type SectionId = "profile" | "keys" | "usage" | "vault" | "models" | "users";

const sections: { id: SectionId; admin: boolean; element: ReactNode }[] = [
  { id: "profile", admin: false, element: <Profile /> },
  { id: "keys", admin: false, element: <ApiKeys /> },
  { id: "usage", admin: false, element: <Usage /> },
  { id: "vault", admin: false, element: <Vault /> },
  { id: "models", admin: true, element: <Models /> },
  { id: "users", admin: true, element: <Users /> },
];

/** The settings section: profile, API keys, usage, vault, and for admins the catalog and users. */
export function Component() {
  const { t } = useTranslation("settings");
  const me = useMe();
  const admin = me.data?.role === "admin";
  const visible = sections.filter((section) => !section.admin || admin);
  return (
    <PageSection title={t("title")}>
      <nav aria-label={t("nav.label")} className="-mt-2 border-b">
        <ul className="flex flex-wrap gap-1">
          {visible.map((section) => (
            <li key={section.id}>
              <NavLink
                to={`/settings/${section.id}`}
                className={({ isActive }) =>
                  cn(
                    "focus-visible:ring-ring/50 -mb-px inline-block border-b-2 px-3 py-2 text-sm outline-none focus-visible:ring-[3px]",
                    isActive
                      ? "border-primary text-foreground font-medium"
                      : "text-muted-foreground hover:text-foreground border-transparent",
                  )
                }
              >
                {t(`nav.${section.id}`)}
              </NavLink>
            </li>
          ))}
        </ul>
      </nav>
      <Routes>
        <Route index element={<Navigate to="profile" replace />} />
        {visible.map((section) => (
          <Route key={section.id} path={section.id} element={section.element} />
        ))}
        <Route
          path="*"
          element={
            me.isPending ? null : (
              <p role="alert" className="text-muted-foreground text-sm">
                {t("nav.unavailable")}
              </p>
            )
          }
        />
      </Routes>
    </PageSection>
  );
}
