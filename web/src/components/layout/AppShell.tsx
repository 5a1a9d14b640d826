import { Suspense } from "react";
import { Outlet } from "react-router";

import { ConsentRequests } from "@/components/consent/ConsentRequests";
import { useShortcuts } from "@/hooks/useShortcuts";
import { Sidebar } from "./Sidebar";
import { MAIN_CONTENT_ID, SkipLink } from "./SkipLink";
import { Splash } from "./Splash";

export function AppShell() {
  useShortcuts();
  return (
    <div className="flex h-full flex-col md:flex-row">
      <SkipLink />
      <Sidebar />
      <main id={MAIN_CONTENT_ID} tabIndex={-1} className="min-h-0 min-w-0 flex-1 outline-none">
        <Suspense fallback={<Splash />}>
          <Outlet />
        </Suspense>
      </main>
      <ConsentRequests />
    </div>
  );
}
