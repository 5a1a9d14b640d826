import { useState } from "react";
import { useTranslation } from "react-i18next";

import { PageSection } from "@/components/page/PageSection";
import { Button } from "@/components/ui/button";
import { Label } from "@/components/ui/label";
import { NativeSelect, NativeSelectOption } from "@/components/ui/native-select";
import { useMe } from "@/hooks/useMe";
import { useSignOut } from "@/hooks/useSignOut";
import { changeLanguage, languages, type Language } from "@/i18n";
import { useThemeStore, type ThemePreference } from "@/stores/theme";

const themes: ThemePreference[] = ["system", "light", "dark"];

export function Component() {
  const { t, i18n } = useTranslation("settings");
  const { t: common } = useTranslation();
  const me = useMe();
  const preference = useThemeStore((state) => state.preference);
  const setPreference = useThemeStore((state) => state.setPreference);
  const signOut = useSignOut();
  const [failure, setFailure] = useState<string | null>(null);

  const signOutEverywhere = () => {
    setFailure(null);
    signOut(true).catch((error: unknown) =>
      setFailure(error instanceof Error ? error.message : t("signOutFailed")),
    );
  };

  return (
    <PageSection title={t("title")}>
      <section className="flex flex-col gap-4">
        <h2 className="font-medium">{t("appearance")}</h2>
        <div className="flex items-center gap-4">
          <Label htmlFor="theme" className="w-32">
            {t("theme")}
          </Label>
          <NativeSelect
            id="theme"
            className="w-48"
            value={preference}
            onChange={(event) => setPreference(event.target.value as ThemePreference)}
          >
            {themes.map((theme) => (
              <NativeSelectOption key={theme} value={theme}>
                {common(`theme.${theme}`)}
              </NativeSelectOption>
            ))}
          </NativeSelect>
        </div>
        <div className="flex items-center gap-4">
          <Label htmlFor="language" className="w-32">
            {common("language.label")}
          </Label>
          <NativeSelect
            id="language"
            className="w-48"
            value={i18n.resolvedLanguage}
            onChange={(event) => void changeLanguage(event.target.value as Language)}
          >
            {languages.map((language) => (
              <NativeSelectOption key={language} value={language}>
                {common(`language.${language}`)}
              </NativeSelectOption>
            ))}
          </NativeSelect>
        </div>
      </section>
      <section className="flex flex-col gap-3">
        <h2 className="font-medium">{t("account")}</h2>
        {me.data && (
          <p className="text-sm">
            {t("signedInAs", { username: me.data.username, role: me.data.role })}
          </p>
        )}
        {failure && (
          <p role="alert" className="text-destructive text-sm">
            {failure}
          </p>
        )}
        <div className="flex flex-wrap gap-2">
          <Button variant="outline" onClick={() => void signOut()}>
            {common("account.signOut")}
          </Button>
          <Button variant="destructive" onClick={signOutEverywhere}>
            {t("signOutEverywhere")}
          </Button>
        </div>
      </section>
    </PageSection>
  );
}
