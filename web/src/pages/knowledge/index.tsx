import { useTranslation } from "react-i18next";
import { Navigate, NavLink, Route, Routes } from "react-router";

import { PageSection } from "@/components/page/PageSection";
import { cn } from "@/lib/utils";
import { ArtifactsView, CollectionDetail, CollectionsView } from "./CollectionsView";
import { MemoryView } from "./MemoryView";
import { NotesView } from "./NotesView";
import { SearchView } from "./SearchView";

const SECTIONS = [
  { to: "/knowledge", key: "collections", end: true },
  { to: "/knowledge/artifacts", key: "artifacts", end: false },
  { to: "/knowledge/search", key: "search", end: false },
  { to: "/knowledge/notes", key: "notes", end: false },
  { to: "/knowledge/memory", key: "memory", end: false },
] as const;

/** Knowledge: collections and uploads, search, notes and memory, each under its own path. */
export function Component() {
  const { t } = useTranslation("knowledge");
  return (
    <PageSection title={t("title")}>
      <nav aria-label={t("sections.label")}>
        <ul className="flex flex-wrap gap-1 border-b pb-2">
          {SECTIONS.map((section) => (
            <li key={section.key}>
              <NavLink
                to={section.to}
                end={section.end}
                className={({ isActive }) =>
                  cn(
                    "hover:bg-accent focus-visible:ring-ring/50 inline-flex rounded-md px-3 py-1.5 text-sm outline-none focus-visible:ring-[3px]",
                    isActive ? "bg-accent text-accent-foreground font-medium" : "text-muted-foreground",
                  )
                }
              >
                {t(`sections.${section.key}`)}
              </NavLink>
            </li>
          ))}
        </ul>
      </nav>
      <Routes>
        <Route index element={<CollectionsView />} />
        <Route path="collections/:collectionId" element={<CollectionDetail />} />
        <Route path="artifacts" element={<ArtifactsView />} />
        <Route path="search" element={<SearchView />} />
        <Route path="notes" element={<NotesView />} />
        <Route path="notes/:noteId" element={<NotesView />} />
        <Route path="memory" element={<MemoryView />} />
        <Route path="*" element={<Navigate to="/knowledge" replace />} />
      </Routes>
    </PageSection>
  );
}
