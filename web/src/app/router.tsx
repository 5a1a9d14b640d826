import { createBrowserRouter, Navigate, type RouteObject } from "react-router";

import { AppShell } from "@/components/layout/AppShell";
import { RequireSession } from "@/components/layout/RequireSession";
import { RouteError } from "@/components/layout/RouteError";
import { pages } from "./pages";

export const routes: RouteObject[] = [
  {
    path: "/login",
    lazy: () => import("@/pages/login"),
    errorElement: <RouteError />,
  },
  {
    element: <RequireSession />,
    errorElement: <RouteError />,
    children: [
      {
        element: <AppShell />,
        children: [
          { index: true, element: <Navigate to="/chat" replace /> },
          ...pages.map(({ path, lazy }) => ({ path, lazy, errorElement: <RouteError /> })),
          { path: "*", lazy: () => import("@/pages/not-found") },
        ],
      },
    ],
  },
];

export function createRouter() {
  return createBrowserRouter(routes);
}
