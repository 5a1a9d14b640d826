import type { ReactNode, Ref } from "react";

import { cn } from "@/lib/utils";

/** One message's box; user messages sit on the right. */
export function MessageFrame({
  role,
  frameRef,
  label,
  children,
}: {
  role: "user" | "assistant";
  frameRef: Ref<HTMLElement>;
  label: string;
  children: ReactNode;
}) {
  return (
    <article
      ref={frameRef}
      aria-label={label}
      data-role={role}
      className={cn(
        "flex max-w-[min(48rem,100%)] flex-col gap-2 rounded-lg px-4 py-3",
        role === "user" ? "bg-secondary self-end" : "self-start",
      )}
    >
      {children}
    </article>
  );
}
