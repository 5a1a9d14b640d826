import { useCallback, useState } from "react";
import { useTranslation } from "react-i18next";
import { Link } from "react-router";

import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { fetchInclusionProof, type AuditEntry } from "./queries";
import type { TrustedCheckpoint } from "./useCheckpoint";
import { parseEntry, verifyEntry, type EntryCheck, type EntryFields } from "./verify";

const OUTCOMES = ["success", "failure", "denied"] as const;

function isOutcome(text: string): text is (typeof OUTCOMES)[number] {
  return OUTCOMES.some((outcome) => outcome === text);
}

type Verification =
  | { state: "checking" }
  | { state: "done"; check: EntryCheck }
  | { state: "error"; message: string };

/** The run an agent's entry is about: `run:<id>` targets, or a `run` detail. */
export function runIdOf(fields: EntryFields): string | null {
  const isAgent = fields.actor.startsWith("agent:") || fields.action.startsWith("agent.");
  if (!isAgent) return null;
  const target = /^run:(.+)$/.exec(fields.target);
  if (target?.[1]) return target[1];
  const detail = fields.details.run;
  return typeof detail === "string" ? detail : null;
}

function VerificationBadge({ verification }: { verification: Verification }) {
  const { t } = useTranslation("audit");
  if (verification.state === "checking") {
    return <span className="text-muted-foreground text-xs">{t("entry.checking")}</span>;
  }
  if (verification.state === "error") {
    return (
      <span className="text-destructive text-xs" role="alert">
        {t("entry.error", { message: verification.message })}
      </span>
    );
  }
  const { check } = verification;
  const parts = [
    t(check.hash ? "entry.hashOk" : "entry.hashBad"),
    t(
      check.signature === null
        ? "entry.unsigned"
        : check.signature
          ? "entry.signatureOk"
          : "entry.signatureBad",
    ),
    t(check.inclusion ? "entry.inclusionOk" : "entry.inclusionBad"),
  ];
  return (
    <span className="flex flex-col items-start gap-0.5">
      <Badge variant={check.ok ? "secondary" : "destructive"}>
        {t(check.ok ? "entry.verified" : "entry.failed")}
      </Badge>
      <span className="text-muted-foreground text-xs">{parts.join(" · ")}</span>
    </span>
  );
}

export function EntryTable({
  entries,
  checkpoint,
}: {
  entries: AuditEntry[];
  /** The verified checkpoint entries are checked against; null while there is none. */
  checkpoint: TrustedCheckpoint | null;
}) {
  const { t, i18n } = useTranslation("audit");
  const date = new Intl.DateTimeFormat(i18n.language, { dateStyle: "short", timeStyle: "medium" });
  const [results, setResults] = useState<Record<number, Verification>>({});

  const verify = useCallback(
    async (entry: AuditEntry) => {
      if (!checkpoint) return;
      setResults((current) => ({ ...current, [entry.seq]: { state: "checking" } }));
      try {
        const proof = await fetchInclusionProof(entry.seq, checkpoint.size);
        const check = await verifyEntry(entry, proof, checkpoint, checkpoint.publicKey);
        setResults((current) => ({ ...current, [entry.seq]: { state: "done", check } }));
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        setResults((current) => ({ ...current, [entry.seq]: { state: "error", message } }));
      }
    },
    [checkpoint],
  );

  const provable = entries.filter((entry) => checkpoint && entry.seq < checkpoint.size);
  const verifyAll = async () => {
    for (const entry of provable) await verify(entry);
  };

  return (
    <div className="flex flex-col gap-3">
      <div className="flex flex-wrap items-center gap-2">
        <Button
          variant="outline"
          size="sm"
          disabled={provable.length === 0}
          onClick={() => void verifyAll()}
        >
          {t("entry.verifyPage", { count: provable.length })}
        </Button>
      </div>
      <div className="overflow-x-auto">
        <table className="w-full text-left text-sm">
          <caption className="sr-only">{t("table.caption")}</caption>
          <thead className="text-muted-foreground">
            <tr>
              <th scope="col" className="py-1 pr-2 font-medium">
                {t("seq")}
              </th>
              <th scope="col" className="py-1 pr-2 font-medium">
                {t("time")}
              </th>
              <th scope="col" className="py-1 pr-2 font-medium">
                {t("actor")}
              </th>
              <th scope="col" className="py-1 pr-2 font-medium">
                {t("action")}
              </th>
              <th scope="col" className="py-1 pr-2 font-medium">
                {t("target")}
              </th>
              <th scope="col" className="py-1 pr-2 font-medium">
                {t("outcome")}
              </th>
              <th scope="col" className="py-1 pr-2 font-medium">
                {t("verification")}
              </th>
            </tr>
          </thead>
          <tbody>
            {entries.map((entry) => {
              const fields = parseEntry(entry.entry);
              const runId = fields ? runIdOf(fields) : null;
              const result = results[entry.seq];
              const inCheckpoint = checkpoint !== null && entry.seq < checkpoint.size;
              return (
                <tr key={entry.seq} className="border-t align-top">
                  <td className="py-2 pr-2 tabular-nums">{entry.seq}</td>
                  <td className="py-2 pr-2 whitespace-nowrap">
                    {fields ? (
                      <time dateTime={fields.time}>{date.format(new Date(fields.time))}</time>
                    ) : null}
                  </td>
                  <td className="py-2 pr-2 break-all">
                    {fields?.actor}
                    {fields?.actor.startsWith("agent:") && (
                      <Badge variant="outline" className="ml-1">
                        {t("agentBadge")}
                      </Badge>
                    )}
                  </td>
                  <td className="py-2 pr-2">
                    <code className="text-xs">{fields?.action}</code>
                  </td>
                  <td className="py-2 pr-2 break-all">
                    {runId ? (
                      <Link
                        to={`/agents/runs/${encodeURIComponent(runId)}`}
                        className="text-primary underline underline-offset-2"
                      >
                        {t("run", { id: runId })}
                      </Link>
                    ) : (
                      fields?.target
                    )}
                    {fields && Object.keys(fields.details).length > 0 && (
                      <details className="mt-1">
                        <summary className="text-muted-foreground cursor-pointer text-xs">
                          {t("details")}
                        </summary>
                        <pre className="bg-muted mt-1 max-w-md overflow-x-auto rounded p-2 text-xs">
                          {JSON.stringify(fields.details, null, 2)}
                        </pre>
                      </details>
                    )}
                    {!fields && <span className="text-destructive">{t("unreadable")}</span>}
                  </td>
                  <td className="py-2 pr-2">
                    {fields && (
                      <Badge variant={fields.outcome === "success" ? "outline" : "destructive"}>
                        {isOutcome(fields.outcome) ? t(`outcomes.${fields.outcome}`) : fields.outcome}
                      </Badge>
                    )}
                  </td>
                  <td className="py-2 pr-2">
                    {result ? (
                      <VerificationBadge verification={result} />
                    ) : inCheckpoint ? (
                      <Button
                        variant="outline"
                        size="sm"
                        onClick={() => void verify(entry)}
                        aria-label={t("entry.verifyOne", { seq: entry.seq })}
                      >
                        {t("entry.verify")}
                      </Button>
                    ) : (
                      <span className="text-muted-foreground text-xs">
                        {t(checkpoint ? "entry.notYetCheckpointed" : "entry.noCheckpoint")}
                      </span>
                    )}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
    </div>
  );
}
