import { useForm } from "react-hook-form";
import { useTranslation } from "react-i18next";

import { Button } from "@/components/ui/button";
import { Input } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import type { AuditFilters } from "./queries";

/** The actions kai records (crates/kai-audit/src/action.rs), offered as suggestions. */
export const KNOWN_ACTIONS = [
  "auth.login",
  "auth.password",
  "user.create",
  "user.update",
  "user.delete",
  "api_key.create",
  "api_key.revoke",
  "secret.read",
  "secret.write",
  "secret.delete",
  "vault.init",
  "vault.unlock",
  "vault.lock",
  "vault.passwd",
  "vault.rotate",
  "config.provider.create",
  "config.provider.update",
  "config.provider.delete",
  "config.model.create",
  "config.model.update",
  "config.model.delete",
  "agent.create",
  "agent.update",
  "agent.delete",
  "agent.run.start",
  "agent.run.end",
  "agent.tool.call",
  "agent.tool.result",
  "agent.consent.request",
  "agent.consent.decision",
  "agent.hook.veto",
];

interface FormValues {
  actor: string;
  action: string;
  since: string;
  until: string;
}

/** `datetime-local` text (the user's local time) as RFC 3339 in UTC; empty stays empty. */
export function localToRfc3339(local: string): string {
  if (!local) return "";
  const date = new Date(local);
  return Number.isNaN(date.getTime()) ? "" : date.toISOString();
}

/** RFC 3339 as `datetime-local` text in the user's time zone. */
export function rfc3339ToLocal(text: string): string {
  if (!text) return "";
  const date = new Date(text);
  if (Number.isNaN(date.getTime())) return "";
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

export function FilterForm({
  filters,
  onApply,
}: {
  filters: AuditFilters;
  onApply: (filters: AuditFilters) => void;
}) {
  const { t } = useTranslation("audit");
  const initial: FormValues = {
    actor: filters.actor,
    action: filters.action,
    since: rfc3339ToLocal(filters.since),
    until: rfc3339ToLocal(filters.until),
  };
  const {
    register,
    handleSubmit,
    reset,
    getValues,
    formState: { errors },
  } = useForm<FormValues>({ values: initial });

  const submit = handleSubmit((values) =>
    onApply({
      actor: values.actor.trim(),
      action: values.action.trim(),
      since: localToRfc3339(values.since),
      until: localToRfc3339(values.until),
    }),
  );

  const clear = () => {
    const empty = { actor: "", action: "", since: "", until: "" };
    reset(empty);
    onApply(empty);
  };

  return (
    <form
      role="search"
      aria-label={t("filter.label")}
      onSubmit={(event) => void submit(event)}
      className="grid gap-3 sm:grid-cols-2"
    >
      <div className="flex flex-col gap-1.5">
        <Label htmlFor="audit-actor">{t("filter.actor")}</Label>
        <Input
          id="audit-actor"
          placeholder={t("filter.actorPlaceholder")}
          aria-describedby="audit-actor-hint"
          {...register("actor")}
        />
        <p id="audit-actor-hint" className="text-muted-foreground text-xs">
          {t("filter.actorHint")}
        </p>
      </div>
      <div className="flex flex-col gap-1.5">
        <Label htmlFor="audit-action">{t("filter.action")}</Label>
        <Input
          id="audit-action"
          list="audit-actions"
          placeholder={t("filter.actionPlaceholder")}
          {...register("action")}
        />
        <datalist id="audit-actions">
          {KNOWN_ACTIONS.map((action) => (
            <option key={action} value={action} />
          ))}
        </datalist>
      </div>
      <div className="flex flex-col gap-1.5">
        <Label htmlFor="audit-since">{t("filter.since")}</Label>
        <Input id="audit-since" type="datetime-local" {...register("since")} />
      </div>
      <div className="flex flex-col gap-1.5">
        <Label htmlFor="audit-until">{t("filter.until")}</Label>
        <Input
          id="audit-until"
          type="datetime-local"
          aria-invalid={errors.until ? true : undefined}
          aria-describedby={errors.until ? "audit-until-error" : undefined}
          {...register("until", {
            validate: (until) => {
              const since = getValues("since");
              return !since || !until || since < until || t("filter.rangeInvalid");
            },
          })}
        />
        {errors.until && (
          <p id="audit-until-error" className="text-destructive text-sm">
            {errors.until.message}
          </p>
        )}
      </div>
      <div className="flex gap-2 sm:col-span-2">
        <Button type="submit">{t("filter.apply")}</Button>
        <Button type="button" variant="outline" onClick={clear}>
          {t("filter.clear")}
        </Button>
      </div>
    </form>
  );
}
