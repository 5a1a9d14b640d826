import type { LucideIcon } from "lucide-react";
import { BookOpen, Bot, MessageSquare, ScrollText, Settings } from "lucide-react";
import type { LazyRouteFunction, RouteObject } from "react-router";

type NavLabel = "nav.chat" | "nav.knowledge" | "nav.agents" | "nav.settings" | "nav.audit";

export interface PageEntry {
  /** The path of the section under `/`; its own sub-paths are declared by the page. */
  path: string;
  /** Where the sidebar links to. */
  to: string;
  label: NavLabel;
  icon: LucideIcon;
  /** The page module: it exports `Component` (and optionally `children`, `ErrorBoundary`). */
  lazy: LazyRouteFunction<RouteObject>;
}

/** The app's sections: each is one directory under src/pages, loaded when first visited. */
export const pages: PageEntry[] = [
  {
    path: "chat/:conversationId?",
    to: "/chat",
    label: "nav.chat",
    icon: MessageSquare,
    lazy: () => import("@/pages/chat"),
  },
  {
    path: "knowledge/*",
    to: "/knowledge",
    label: "nav.knowledge",
    icon: BookOpen,
    lazy: () => import("@/pages/knowledge"),
  },
  {
    path: "agents/*",
    to: "/agents",
    label: "nav.agents",
    icon: Bot,
    lazy: () => import("@/pages/agents"),
  },
  {
    path: "settings/*",
    to: "/settings",
    label: "nav.settings",
    icon: Settings,
    lazy: () => import("@/pages/settings"),
  },
  {
    path: "audit/*",
    to: "/audit",
    label: "nav.audit",
    icon: ScrollText,
    lazy: () => import("@/pages/audit"),
  },
];
