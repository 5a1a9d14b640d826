import { useTranslation } from "react-i18next";

import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { useRevokeGrant, type Agent } from "./queries";
import { ErrorText } from "@/components/page/form";

/** The owner's standing answers ("always" or "never") for an agent's tools, each revocable. */
export function Grants({ agent }: { agent: Agent }) {
  const { t } = useTranslation("agents");
  const revoke = useRevokeGrant(agent.name);
  if (agent.grants.length === 0) {
    return <p className="text-muted-foreground text-sm">{t("grants.none")}</p>;
  }
  return (
    <div className="flex flex-col gap-2">
      <ul className="flex flex-col gap-1">
        {agent.grants.map((grant) => (
          <li key={grant.tool} className="flex items-center gap-3 rounded-md border px-3 py-2">
            <code className="min-w-0 flex-1 truncate text-sm">{grant.tool}</code>
            <Badge variant={grant.allow ? "secondary" : "destructive"}>
              {grant.allow ? t("grants.always") : t("grants.never")}
            </Badge>
            <Button
              size="sm"
              variant="outline"
              disabled={revoke.isPending}
              onClick={() => revoke.mutate(grant.tool)}
              aria-label={t("grants.revokeTool", { tool: grant.tool })}
            >
              {t("grants.revoke")}
            </Button>
          </li>
        ))}
      </ul>
      <ErrorText error={revoke.error} />
    </div>
  );
}
