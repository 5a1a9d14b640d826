import { Search } from "lucide-react";
import { useDeferredValue, useState } from "react";
import { useTranslation } from "react-i18next";
import { NavLink } from "react-router";

import { Input } from "@/components/ui/input";
import { cn } from "@/lib/utils";
import { ConversationActions } from "./ConversationActions";
import { useConversations } from "./queries";

export function ConversationList({ activeId }: { activeId: string | undefined }) {
  const { t } = useTranslation("chat");
  const { data: conversations = [], isPending, error } = useConversations();
  const [search, setSearch] = useState("");
  const query = useDeferredValue(search.trim().toLocaleLowerCase());
  const shown = query
    ? conversations.filter((conversation) => conversation.title.toLocaleLowerCase().includes(query))
    : conversations;

  return (
    <nav
      aria-label={t("conversations")}
      className="flex max-h-64 shrink-0 flex-col gap-2 border-b p-3 md:max-h-none md:w-64 md:border-r md:border-b-0"
    >
      <div className="relative">
        <Search className="text-muted-foreground absolute top-2.5 left-2 size-4" aria-hidden />
        <Input
          type="search"
          value={search}
          onChange={(event) => setSearch(event.target.value)}
          placeholder={t("search")}
          aria-label={t("search")}
          className="pl-8"
        />
      </div>
      {error && (
        <p role="alert" className="text-destructive text-sm">
          {error.message}
        </p>
      )}
      {!isPending && shown.length === 0 && (
        <p className="text-muted-foreground px-2 text-sm">
          {query ? t("noMatches") : t("noConversations")}
        </p>
      )}
      <ul className="flex min-h-0 flex-col gap-0.5 overflow-y-auto">
        {shown.map((conversation) => (
          <li key={conversation.id} className="group flex items-center gap-1">
            <NavLink
              to={`/chat/${conversation.id}`}
              className={({ isActive }) =>
                cn(
                  "hover:bg-accent focus-visible:ring-ring/50 min-w-0 flex-1 truncate rounded-md px-2 py-1.5 text-sm outline-none focus-visible:ring-[3px]",
                  isActive && "bg-accent font-medium",
                )
              }
            >
              {conversation.title || t("untitled")}
            </NavLink>
            <ConversationActions
              conversation={conversation}
              active={conversation.id === activeId}
            />
          </li>
        ))}
      </ul>
    </nav>
  );
}
