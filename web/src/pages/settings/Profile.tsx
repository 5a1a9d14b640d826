import { useState } from "react";
import { useForm } from "react-hook-form";
import { useTranslation } from "react-i18next";

import { Button } from "@/components/ui/button";
import { Input } from "@/components/ui/input";
import { useMe } from "@/hooks/useMe";
import { useSignOut } from "@/hooks/useSignOut";
import { changeLanguage, languages, type Language } from "@/i18n";
import { useThemeStore, type ThemePreference } from "@/stores/theme";
import { useFormat } from "./format";
import { useChangePassword } from "./queries";
import { described, ErrorText, Field, Select } from "@/components/page/form";

const themes: ThemePreference[] = ["system", "light", "dark"];
const MIN_PASSWORD = 8;

interface PasswordValues {
  current: string;
  next: string;
  repeat: string;
}

function Appearance() {
  const { t, i18n } = useTranslation("settings");
  const { t: common } = useTranslation();
  const preference = useThemeStore((state) => state.preference);
  const setPreference = useThemeStore((state) => state.setPreference);
  return (
    <section aria-labelledby="appearance-heading" className="flex flex-col gap-4">
      <h3 id="appearance-heading" className="text-base font-medium">
        {t("appearance")}
      </h3>
      <div className="grid gap-4 sm:grid-cols-2">
        <Field id="theme" label={t("theme")}>
          <Select
            id="theme"
            value={preference}
            onChange={(event) => setPreference(event.target.value as ThemePreference)}
          >
            {themes.map((theme) => (
              <option key={theme} value={theme}>
                {common(`theme.${theme}`)}
              </option>
            ))}
          </Select>
        </Field>
        <Field id="language" label={common("language.label")}>
          <Select
            id="language"
            value={i18n.resolvedLanguage}
            onChange={(event) => void changeLanguage(event.target.value as Language)}
          >
            {languages.map((language) => (
              <option key={language} value={language}>
                {common(`language.${language}`)}
              </option>
            ))}
          </Select>
        </Field>
      </div>
    </section>
  );
}

function ChangePassword() {
  const { t } = useTranslation("settings");
  const change = useChangePassword();
  const signOut = useSignOut();
  const {
    register,
    handleSubmit,
    formState: { errors, isSubmitting },
  } = useForm<PasswordValues>({ defaultValues: { current: "", next: "", repeat: "" } });
  const onSubmit = handleSubmit(async ({ current, next }) => {
    const changed = await change
      .mutateAsync({ current_password: current, new_password: next })
      .then(() => true)
      .catch(() => false);
    // Every session ended with the change, this one too: log in again with the new password.
    if (changed) await signOut().catch(() => undefined);
  });
  return (
    <section aria-labelledby="password-heading" className="flex flex-col gap-4">
      <h3 id="password-heading" className="text-base font-medium">
        {t("password.heading")}
      </h3>
      <p className="text-muted-foreground text-sm">{t("password.hint")}</p>
      <form onSubmit={(event) => void onSubmit(event)} className="flex max-w-md flex-col gap-4" noValidate>
        <Field id="password-current" label={t("password.current")} error={errors.current?.message}>
          <Input
            {...described("password-current", false, errors.current?.message)}
            type="password"
            autoComplete="current-password"
            {...register("current", { required: t("form.required") })}
          />
        </Field>
        <Field
          id="password-new"
          label={t("password.new")}
          hint={t("password.newHint", { count: MIN_PASSWORD })}
          error={errors.next?.message}
        >
          <Input
            {...described("password-new", true, errors.next?.message)}
            type="password"
            autoComplete="new-password"
            {...register("next", {
              required: t("form.required"),
              minLength: { value: MIN_PASSWORD, message: t("password.tooShort", { count: MIN_PASSWORD }) },
            })}
          />
        </Field>
        <Field id="password-repeat" label={t("password.repeat")} error={errors.repeat?.message}>
          <Input
            {...described("password-repeat", false, errors.repeat?.message)}
            type="password"
            autoComplete="new-password"
            {...register("repeat", {
              validate: (value, form) => value === form.next || t("password.mismatch"),
            })}
          />
        </Field>
        <ErrorText error={change.error} />
        <Button type="submit" className="self-start" disabled={isSubmitting}>
          {t("password.submit")}
        </Button>
      </form>
    </section>
  );
}

function Account() {
  const { t } = useTranslation("settings");
  const { t: common } = useTranslation();
  const me = useMe();
  const format = useFormat();
  const signOut = useSignOut();
  const [failure, setFailure] = useState<string | null>(null);
  const signOutEverywhere = () => {
    setFailure(null);
    signOut(true).catch((error: unknown) =>
      setFailure(error instanceof Error ? error.message : t("signOutFailed")),
    );
  };
  return (
    <section aria-labelledby="account-heading" className="flex flex-col gap-3">
      <h3 id="account-heading" className="text-base font-medium">
        {t("account")}
      </h3>
      {me.data && (
        <dl className="grid grid-cols-[auto_1fr] gap-x-4 gap-y-1 text-sm">
          <dt className="text-muted-foreground">{t("profile.username")}</dt>
          <dd>{me.data.username}</dd>
          <dt className="text-muted-foreground">{t("profile.role")}</dt>
          <dd>{t(`roles.${me.data.role}`)}</dd>
          <dt className="text-muted-foreground">{t("profile.since")}</dt>
          <dd>{format.dateTime(me.data.created_at)}</dd>
        </dl>
      )}
      <p className="text-muted-foreground text-sm">{t("profile.everywhereHint")}</p>
      {failure && (
        <p role="alert" className="text-destructive text-sm">
          {failure}
        </p>
      )}
      <div className="flex flex-wrap gap-2">
        <Button variant="outline" onClick={() => void signOut().catch(() => undefined)}>
          {common("account.signOut")}
        </Button>
        <Button variant="destructive" onClick={signOutEverywhere}>
          {t("signOutEverywhere")}
        </Button>
      </div>
    </section>
  );
}

/** `/settings/profile`: appearance, the account, its password, and signing out everywhere. */
export function Profile() {
  const { t } = useTranslation("settings");
  return (
    <div className="flex flex-col gap-8">
      <h2 className="text-xl font-medium">{t("nav.profile")}</h2>
      <Account />
      <ChangePassword />
      <Appearance />
    </div>
  );
}
