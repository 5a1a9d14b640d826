import { CircleAlert, CircleCheck, CircleX } from "lucide-react";
import { useTranslation } from "react-i18next";

import { Alert, AlertDescription, AlertTitle } from "@/components/ui/alert";
import type { CheckpointState } from "./useCheckpoint";
import { parseCheckpointBody } from "./verify";

/** The newest signed checkpoint and whether its signature verified in this browser. */
export function CheckpointPanel({ state }: { state: CheckpointState }) {
  const { t, i18n } = useTranslation("audit");
  const date = new Intl.DateTimeFormat(i18n.language, { dateStyle: "medium", timeStyle: "medium" });

  if (state.status === "loading") {
    return (
      <p role="status" className="text-muted-foreground text-sm">
        {t("checkpoint.loading")}
      </p>
    );
  }
  if (state.status === "error") {
    return (
      <Alert variant="destructive">
        <CircleX aria-hidden />
        <AlertTitle>{t("checkpoint.error")}</AlertTitle>
        <AlertDescription>{state.message}</AlertDescription>
      </Alert>
    );
  }
  if (state.status === "noIdentity" || state.status === "none") {
    return (
      <Alert role="status">
        <CircleAlert aria-hidden />
        <AlertTitle>{t(`checkpoint.${state.status}`)}</AlertTitle>
      </Alert>
    );
  }

  const body = parseCheckpointBody(state.checkpoint.body);
  const facts = (
    <dl className="grid grid-cols-[auto_1fr] gap-x-3 gap-y-1 text-sm">
      <dt className="text-muted-foreground">{t("checkpoint.size")}</dt>
      <dd className="tabular-nums">{state.checkpoint.size}</dd>
      {body && (
        <>
          <dt className="text-muted-foreground">{t("checkpoint.signedAt")}</dt>
          <dd>{date.format(new Date(body.time))}</dd>
        </>
      )}
      <dt className="text-muted-foreground">{t("checkpoint.root")}</dt>
      <dd className="font-mono text-xs break-all">{state.checkpoint.root}</dd>
      <dt className="text-muted-foreground">{t("checkpoint.key")}</dt>
      <dd className="font-mono text-xs break-all">{state.did}</dd>
    </dl>
  );

  if (state.status === "unsupported") {
    return (
      <Alert role="status">
        <CircleAlert aria-hidden />
        <AlertTitle>{t("checkpoint.unsupported")}</AlertTitle>
        <AlertDescription>{facts}</AlertDescription>
      </Alert>
    );
  }

  const verified = state.status === "verified";
  return (
    <Alert
      variant={verified ? "default" : "destructive"}
      role={verified ? "status" : "alert"}
      data-testid="checkpoint-status"
    >
      {verified ? <CircleCheck aria-hidden /> : <CircleX aria-hidden />}
      <AlertTitle>{t(verified ? "checkpoint.verified" : "checkpoint.failed")}</AlertTitle>
      <AlertDescription>
        {!verified && (
          <ul className="list-disc pl-4 text-sm">
            {!state.check.signature && <li>{t("checkpoint.badSignature")}</li>}
            {!state.check.body && <li>{t("checkpoint.badBody")}</li>}
          </ul>
        )}
        {facts}
      </AlertDescription>
    </Alert>
  );
}
