import { Copy } from "lucide-react";
import { useState } from "react";
import { useForm } from "react-hook-form";
import { useTranslation } from "react-i18next";

import { QueryState } from "@/components/page/QueryState";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Input } from "@/components/ui/input";
import { useMe } from "@/hooks/useMe";
import { KeyBudgets } from "./KeyBudgets";
import { useFormat } from "./format";
import { useApiKeys, useCreateKey, useRevokeKey, type ApiKey, type CreatedApiKey, type Scope } from "./queries";
import { Checkbox, ConfirmButton, described, ErrorText, Field, Select } from "@/components/page/form";

const expiries = ["never", "7", "30", "90", "365", "date"] as const;
type Expiry = (typeof expiries)[number];

interface KeyFormValues {
  name: string;
  scopes: Scope[];
  expiry: Expiry;
  date: string;
}

/** When a key chosen to expire after `expiry` stops working, as RFC 3339; null for never. */
export function expiresAt(expiry: Expiry, date: string, now = new Date()): string | null {
  if (expiry === "never") return null;
  if (expiry === "date") return new Date(`${date}T00:00:00`).toISOString();
  return new Date(now.getTime() + Number(expiry) * 24 * 60 * 60 * 1000).toISOString();
}

function asScopes(value: unknown): Scope[] {
  const list = Array.isArray(value) ? value : typeof value === "string" && value ? [value] : [];
  return list.filter((scope): scope is Scope => scope === "read" || scope === "write" || scope === "admin");
}

function NewKey({ created, onDone }: { created: CreatedApiKey; onDone: () => void }) {
  const { t } = useTranslation("settings");
  const [copied, setCopied] = useState<boolean | null>(null);
  const copy = () =>
    navigator.clipboard
      .writeText(created.key)
      .then(() => setCopied(true))
      .catch(() => setCopied(false));
  return (
    <div role="status" className="border-primary/50 bg-accent/40 flex flex-col gap-3 rounded-lg border p-4">
      <h3 className="font-medium">{t("keys.createdHeading", { name: created.name })}</h3>
      <p className="text-sm">{t("keys.createdHint")}</p>
      <div className="flex gap-2">
        <Input
          readOnly
          value={created.key}
          aria-label={t("keys.theKey")}
          className="font-mono"
          onFocus={(event) => event.currentTarget.select()}
        />
        <Button type="button" variant="outline" onClick={() => void copy()}>
          <Copy aria-hidden />
          {t("keys.copy")}
        </Button>
      </div>
      <p aria-live="polite" className="text-muted-foreground text-xs">
        {copied === true ? t("keys.copied") : copied === false ? t("keys.copyFailed") : ""}
      </p>
      <Button type="button" className="self-start" onClick={onDone}>
        {t("keys.stored")}
      </Button>
    </div>
  );
}

function CreateKey({ admin }: { admin: boolean }) {
  const { t } = useTranslation("settings");
  const create = useCreateKey();
  const [created, setCreated] = useState<CreatedApiKey | null>(null);
  const {
    register,
    handleSubmit,
    watch,
    reset,
    formState: { errors, isSubmitting },
  } = useForm<KeyFormValues>({ defaultValues: { name: "", scopes: ["read"], expiry: "never", date: "" } });
  const expiry = watch("expiry");
  const onSubmit = handleSubmit(async (values) => {
    const key = await create
      .mutateAsync({
        name: values.name.trim(),
        scopes: asScopes(values.scopes),
        expires_at: expiresAt(values.expiry, values.date),
      })
      .catch(() => null);
    if (key) {
      setCreated(key);
      reset();
    }
  });
  const scopes: Scope[] = admin ? ["read", "write", "admin"] : ["read", "write"];
  const today = new Date().toISOString().slice(0, 10);
  if (created) return <NewKey created={created} onDone={() => setCreated(null)} />;
  return (
    <form
      onSubmit={(event) => void onSubmit(event)}
      aria-labelledby="new-key-heading"
      className="flex flex-col gap-4 rounded-lg border p-4"
      noValidate
    >
      <h3 id="new-key-heading" className="font-medium">
        {t("keys.new")}
      </h3>
      <Field id="key-name" label={t("keys.name")} hint={t("keys.nameHint")} error={errors.name?.message}>
        <Input
          {...described("key-name", true, errors.name?.message)}
          autoComplete="off"
          {...register("name", {
            validate: (value) => value.trim() !== "" || t("form.required"),
            maxLength: { value: 100, message: t("keys.nameTooLong") },
          })}
        />
      </Field>
      <fieldset className="flex flex-col gap-2">
        <legend className="mb-1 text-sm font-medium">{t("keys.scopes")}</legend>
        <div className="flex flex-wrap gap-4">
          {scopes.map((scope) => (
            <Checkbox
              key={scope}
              value={scope}
              label={t(`scopes.${scope}`)}
              {...register("scopes", {
                validate: (value) => asScopes(value).length > 0 || t("keys.scopeRequired"),
              })}
            />
          ))}
        </div>
        {errors.scopes?.message && (
          <p role="alert" className="text-destructive text-xs">
            {errors.scopes.message}
          </p>
        )}
      </fieldset>
      <div className="grid gap-4 sm:grid-cols-2">
        <Field id="key-expiry" label={t("keys.expiry")}>
          <Select id="key-expiry" {...register("expiry")}>
            {expiries.map((choice) => (
              <option key={choice} value={choice}>
                {t(`keys.expiries.${choice}`)}
              </option>
            ))}
          </Select>
        </Field>
        {expiry === "date" && (
          <Field id="key-date" label={t("keys.date")} error={errors.date?.message}>
            <Input
              {...described("key-date", false, errors.date?.message)}
              type="date"
              min={today}
              {...register("date", {
                validate: (value) => (value !== "" && value > today) || t("keys.dateInvalid"),
              })}
            />
          </Field>
        )}
      </div>
      <ErrorText error={create.error} />
      <Button type="submit" className="self-start" disabled={isSubmitting}>
        {t("keys.create")}
      </Button>
    </form>
  );
}

function KeyItem({ apiKey }: { apiKey: ApiKey }) {
  const { t } = useTranslation("settings");
  const format = useFormat();
  const revoke = useRevokeKey();
  const [budgets, setBudgets] = useState(false);
  const revoked = apiKey.revoked_at !== null && apiKey.revoked_at !== undefined;
  const expired = !revoked && apiKey.expires_at ? new Date(apiKey.expires_at) <= new Date() : false;
  return (
    <li className="flex flex-col gap-2 rounded-md border px-3 py-2">
      <div className="flex flex-wrap items-center gap-2">
        <span className="font-medium">{apiKey.name}</span>
        <code className="text-muted-foreground text-xs">{apiKey.prefix}</code>
        {apiKey.scopes.map((scope) => (
          <Badge key={scope} variant="outline">
            {t(`scopes.${scope}`)}
          </Badge>
        ))}
        {revoked && <Badge variant="destructive">{t("keys.revoked")}</Badge>}
        {expired && <Badge variant="secondary">{t("keys.expired")}</Badge>}
        <span className="flex-1" />
        {!revoked && (
          <>
            <Button
              size="sm"
              variant="ghost"
              aria-expanded={budgets}
              aria-controls={`budgets-${apiKey.id}`}
              onClick={() => setBudgets((open) => !open)}
            >
              {t("budgets.toggle")}
            </Button>
            <ConfirmButton
              label={t("keys.revoke")}
              accessibleLabel={t("keys.revokeNamed", { name: apiKey.name })}
              title={t("keys.revokeTitle", { name: apiKey.name })}
              description={t("keys.revokeDescription")}
              confirm={t("keys.revoke")}
              disabled={revoke.isPending}
              onConfirm={() => revoke.mutate(apiKey.id)}
            />
          </>
        )}
      </div>
      <dl className="text-muted-foreground flex flex-wrap gap-x-4 gap-y-0.5 text-xs">
        <div className="flex gap-1">
          <dt>{t("keys.createdAt")}</dt>
          <dd>{format.dateTime(apiKey.created_at)}</dd>
        </div>
        <div className="flex gap-1">
          <dt>{t("keys.lastUsed")}</dt>
          <dd>{apiKey.last_used_at ? format.dateTime(apiKey.last_used_at) : t("keys.never")}</dd>
        </div>
        <div className="flex gap-1">
          <dt>{t("keys.expires")}</dt>
          <dd>{apiKey.expires_at ? format.dateTime(apiKey.expires_at) : t("keys.never")}</dd>
        </div>
        {revoked && (
          <div className="flex gap-1">
            <dt>{t("keys.revokedAt")}</dt>
            <dd>{format.dateTime(apiKey.revoked_at)}</dd>
          </div>
        )}
      </dl>
      <ErrorText error={revoke.error} />
      {budgets && !revoked && (
        <div id={`budgets-${apiKey.id}`}>
          <KeyBudgets apiKey={apiKey} />
        </div>
      )}
    </li>
  );
}

/** `/settings/keys`: API keys listed, created (shown once), revoked, and their budgets. */
export function ApiKeys() {
  const { t } = useTranslation("settings");
  const keys = useApiKeys();
  const me = useMe();
  const [showRevoked, setShowRevoked] = useState(false);
  const all = keys.data ?? [];
  const shown = showRevoked ? all : all.filter((key) => !key.revoked_at);
  return (
    <div className="flex flex-col gap-6">
      <h2 className="text-xl font-medium">{t("nav.keys")}</h2>
      <p className="text-muted-foreground text-sm">{t("keys.hint")}</p>
      <CreateKey admin={me.data?.role === "admin"} />
      <section aria-labelledby="keys-heading" className="flex flex-col gap-3">
        <div className="flex flex-wrap items-center justify-between gap-2">
          <h3 id="keys-heading" className="text-base font-medium">
            {t("keys.heading", { count: shown.length })}
          </h3>
          <Checkbox
            label={t("keys.showRevoked")}
            checked={showRevoked}
            onChange={(event) => setShowRevoked(event.target.checked)}
          />
        </div>
        <QueryState isPending={keys.isPending} error={keys.error} isEmpty={shown.length === 0} empty={t("keys.none")}>
          <ul className="flex flex-col gap-2">
            {shown.map((apiKey) => (
              <KeyItem key={apiKey.id} apiKey={apiKey} />
            ))}
          </ul>
        </QueryState>
      </section>
    </div>
  );
}
