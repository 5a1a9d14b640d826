import { useState } from "react";
import { useForm } from "react-hook-form";
import { useTranslation } from "react-i18next";

import { QueryState } from "@/components/page/QueryState";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Input } from "@/components/ui/input";
import { Textarea } from "@/components/ui/textarea";
import { useMe } from "@/hooks/useMe";
import { useFormat } from "./format";
import {
  useDeleteSecret,
  useInitVault,
  useLockVault,
  usePutSecret,
  useSecrets,
  useUnlockVault,
  useVault,
  type VaultStatus,
} from "./queries";
import { ConfirmButton, described, ErrorText, Field } from "@/components/page/form";

const SECRET_NAME = /^[A-Za-z0-9._-]+$/;
const MIN_PASSPHRASE = 12;

/** Creates the vault (admins): its passphrase, asked twice. */
function Create() {
  const { t } = useTranslation("settings");
  const init = useInitVault();
  const {
    register,
    handleSubmit,
    formState: { errors, isSubmitting },
  } = useForm<{ passphrase: string; repeat: string }>({ defaultValues: { passphrase: "", repeat: "" } });
  const onSubmit = handleSubmit(async ({ passphrase }) => {
    await init.mutateAsync(passphrase).catch(() => undefined);
  });
  return (
    <form onSubmit={(event) => void onSubmit(event)} className="flex max-w-md flex-col gap-3" noValidate>
      <p className="text-muted-foreground text-sm">{t("vault.createHint")}</p>
      <Field
        id="vault-new-passphrase"
        label={t("vault.newPassphrase")}
        hint={t("vault.newPassphraseHint", { count: MIN_PASSPHRASE })}
        error={errors.passphrase?.message}
      >
        <Input
          {...described("vault-new-passphrase", true, errors.passphrase?.message)}
          type="password"
          autoComplete="new-password"
          {...register("passphrase", {
            required: t("form.required"),
            minLength: { value: MIN_PASSPHRASE, message: t("password.tooShort", { count: MIN_PASSPHRASE }) },
          })}
        />
      </Field>
      <Field id="vault-repeat" label={t("vault.repeat")} error={errors.repeat?.message}>
        <Input
          {...described("vault-repeat", false, errors.repeat?.message)}
          type="password"
          autoComplete="new-password"
          {...register("repeat", {
            validate: (value, form) => value === form.passphrase || t("vault.mismatch"),
          })}
        />
      </Field>
      <ErrorText error={init.error} />
      <Button type="submit" className="self-start" disabled={isSubmitting}>
        {t("vault.create")}
      </Button>
    </form>
  );
}

function Unlock() {
  const { t } = useTranslation("settings");
  const unlock = useUnlockVault();
  const {
    register,
    handleSubmit,
    reset,
    formState: { errors, isSubmitting },
  } = useForm<{ passphrase: string }>({ defaultValues: { passphrase: "" } });
  const onSubmit = handleSubmit(async ({ passphrase }) => {
    await unlock.mutateAsync(passphrase).catch(() => undefined);
    reset();
  });
  return (
    <form onSubmit={(event) => void onSubmit(event)} className="flex max-w-md flex-col gap-3" noValidate>
      <Field id="vault-passphrase" label={t("vault.passphrase")} error={errors.passphrase?.message}>
        <Input
          {...described("vault-passphrase", false, errors.passphrase?.message)}
          type="password"
          autoComplete="current-password"
          {...register("passphrase", { required: t("form.required") })}
        />
      </Field>
      <ErrorText error={unlock.error} />
      <Button type="submit" className="self-start" disabled={isSubmitting}>
        {t("vault.unlock")}
      </Button>
    </form>
  );
}

function State({ vault, admin }: { vault: VaultStatus; admin: boolean }) {
  const { t } = useTranslation("settings");
  const format = useFormat();
  const lock = useLockVault();
  if (!vault.initialized) {
    return admin ? <Create /> : <p className="text-sm">{t("vault.notInitialized")}</p>;
  }
  return (
    <div className="flex flex-col gap-3">
      <p className="flex items-center gap-2 text-sm" role="status">
        <span>{t("vault.state")}</span>
        <Badge variant={vault.unlocked ? "secondary" : "outline"}>
          {vault.unlocked ? t("vault.unlocked") : t("vault.locked")}
        </Badge>
      </p>
      <dl className="text-muted-foreground grid grid-cols-[auto_1fr] gap-x-4 gap-y-0.5 text-xs">
        {vault.created_at && (
          <>
            <dt>{t("vault.created")}</dt>
            <dd>{format.dateTime(vault.created_at)}</dd>
          </>
        )}
        {vault.rotated_at && (
          <>
            <dt>{t("vault.rotated")}</dt>
            <dd>{format.dateTime(vault.rotated_at)}</dd>
          </>
        )}
        <dt>{t("vault.unlockers")}</dt>
        <dd>{vault.unlockers.map((unlocker) => t(`vault.unlocker.${unlocker === "key_file" ? "key_file" : "passphrase"}`)).join(", ")}</dd>
        {(vault.failed_unlocks ?? 0) > 0 && (
          <>
            <dt>{t("vault.failures")}</dt>
            <dd>{format.number(vault.failed_unlocks ?? 0)}</dd>
          </>
        )}
      </dl>
      {vault.unlock_retry_after_s ? (
        <p role="alert" className="text-destructive text-sm">
          {t("vault.retryAfter", { count: vault.unlock_retry_after_s })}
        </p>
      ) : null}
      {!admin ? (
        <p className="text-muted-foreground text-sm">{t("vault.adminOnly")}</p>
      ) : vault.unlocked ? (
        <div className="flex flex-col gap-2">
          <Button variant="outline" className="self-start" disabled={lock.isPending} onClick={() => lock.mutate()}>
            {t("vault.lock")}
          </Button>
          <ErrorText error={lock.error} />
        </div>
      ) : (
        vault.unlockers.includes("passphrase") && <Unlock />
      )}
    </div>
  );
}

interface SecretValues {
  name: string;
  value: string;
  description: string;
}

function AddSecret({ unlocked }: { unlocked: boolean }) {
  const { t } = useTranslation("settings");
  const put = usePutSecret();
  const [saved, setSaved] = useState<string | null>(null);
  const {
    register,
    handleSubmit,
    reset,
    formState: { errors, isSubmitting },
  } = useForm<SecretValues>({ defaultValues: { name: "", value: "", description: "" } });
  const onSubmit = handleSubmit(async (values) => {
    const name = values.name.trim();
    const stored = await put
      .mutateAsync({ name, value: values.value, description: values.description.trim() || null })
      .catch(() => null);
    if (stored) {
      setSaved(stored.name);
      reset();
    }
  });
  return (
    <form
      onSubmit={(event) => void onSubmit(event)}
      aria-labelledby="secret-form-heading"
      className="flex flex-col gap-3 rounded-lg border p-4"
      noValidate
    >
      <h4 id="secret-form-heading" className="font-medium">
        {t("secrets.add")}
      </h4>
      {!unlocked && <p className="text-muted-foreground text-sm">{t("secrets.lockedHint")}</p>}
      <div className="grid gap-3 sm:grid-cols-2">
        <Field id="secret-name" label={t("secrets.name")} hint={t("secrets.nameHint")} error={errors.name?.message}>
          <Input
            {...described("secret-name", true, errors.name?.message)}
            autoComplete="off"
            {...register("name", {
              required: t("form.required"),
              pattern: { value: SECRET_NAME, message: t("secrets.nameInvalid") },
            })}
          />
        </Field>
        <Field id="secret-value" label={t("secrets.value")} hint={t("secrets.valueHint")} error={errors.value?.message}>
          <Input
            {...described("secret-value", true, errors.value?.message)}
            type="password"
            autoComplete="new-password"
            {...register("value", { required: t("form.required") })}
          />
        </Field>
      </div>
      <Field id="secret-description" label={t("secrets.description")}>
        <Textarea id="secret-description" rows={2} {...register("description")} />
      </Field>
      <ErrorText error={put.error} />
      <div className="flex items-center gap-3">
        <Button type="submit" disabled={isSubmitting || !unlocked}>
          {t("secrets.save")}
        </Button>
        <span role="status" className="text-muted-foreground text-xs">
          {saved ? t("secrets.saved", { name: saved }) : ""}
        </span>
      </div>
    </form>
  );
}

function Secrets({ unlocked }: { unlocked: boolean }) {
  const { t } = useTranslation("settings");
  const format = useFormat();
  const secrets = useSecrets();
  const remove = useDeleteSecret();
  return (
    <section aria-labelledby="secrets-heading" className="flex flex-col gap-3">
      <h3 id="secrets-heading" className="text-base font-medium">
        {t("secrets.heading")}
      </h3>
      <p className="text-muted-foreground text-sm">{t("secrets.hint")}</p>
      <QueryState
        isPending={secrets.isPending}
        error={secrets.error}
        isEmpty={secrets.data?.length === 0}
        empty={t("secrets.none")}
      >
        <ul className="flex flex-col gap-1">
          {secrets.data?.map((secret) => (
            <li key={secret.name} className="flex flex-wrap items-center gap-x-3 gap-y-1 rounded-md border px-3 py-2">
              <code className="font-medium">{secret.name}</code>
              {secret.description && <span className="text-muted-foreground text-sm">{secret.description}</span>}
              <span className="flex-1" />
              <span className="text-muted-foreground text-xs">
                {t("secrets.updated", { when: format.dateTime(secret.updated_at) })}
              </span>
              <ConfirmButton
                label={t("secrets.delete")}
                accessibleLabel={t("secrets.deleteNamed", { name: secret.name })}
                title={t("secrets.deleteTitle", { name: secret.name })}
                description={t("secrets.deleteDescription")}
                confirm={t("secrets.delete")}
                disabled={remove.isPending}
                onConfirm={() => remove.mutate(secret.name)}
              />
            </li>
          ))}
        </ul>
      </QueryState>
      <ErrorText error={remove.error} />
      <AddSecret unlocked={unlocked} />
    </section>
  );
}

/** `/settings/vault`: the vault's state, unlocking and locking it (admins), and the user's secrets. */
export function Vault() {
  const { t } = useTranslation("settings");
  const vault = useVault();
  const me = useMe();
  return (
    <div className="flex flex-col gap-6">
      <h2 className="text-xl font-medium">{t("nav.vault")}</h2>
      <section aria-labelledby="vault-heading" className="flex flex-col gap-3">
        <h3 id="vault-heading" className="text-base font-medium">
          {t("vault.heading")}
        </h3>
        <QueryState isPending={vault.isPending} error={vault.error} isEmpty={false} empty="">
          {vault.data && <State vault={vault.data} admin={me.data?.role === "admin"} />}
        </QueryState>
      </section>
      <Secrets unlocked={vault.data?.unlocked ?? false} />
    </div>
  );
}
