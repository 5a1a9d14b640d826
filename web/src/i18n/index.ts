import i18n, { type BackendModule, type ResourceKey } from "i18next";
import { initReactI18next } from "react-i18next";

export const languages = ["en", "de"] as const;
export type Language = (typeof languages)[number];

export const namespaces = [
  "common",
  "auth",
  "chat",
  "knowledge",
  "agents",
  "settings",
  "audit",
] as const;

const LANGUAGE_KEY = "kai.language";

/** One JSON file per language and namespace, each loaded when first needed. */
const files = import.meta.glob<ResourceKey>("../locales/*/*.json", { import: "default" });

const lazyJson: BackendModule = {
  type: "backend",
  init() {},
  read(language, namespace, callback) {
    const load = files[`../locales/${language}/${namespace}.json`];
    if (!load) {
      callback(new Error(`no translations for ${language}/${namespace}`), false);
      return;
    }
    load().then(
      (resources) => callback(null, resources),
      (error: unknown) => callback(error instanceof Error ? error : new Error(String(error)), false),
    );
  },
};

function isLanguage(value: string | null): value is Language {
  return languages.some((language) => language === value);
}

function initialLanguage(): Language {
  const saved = localStorage.getItem(LANGUAGE_KEY);
  if (isLanguage(saved)) return saved;
  const preferred = navigator.languages.map((tag) => tag.split("-")[0] ?? "");
  return preferred.find(isLanguage) ?? "en";
}

export function changeLanguage(language: Language) {
  localStorage.setItem(LANGUAGE_KEY, language);
  return i18n.changeLanguage(language);
}

i18n.on("languageChanged", (language) => {
  document.documentElement.lang = language;
});

export const i18nReady = i18n
  .use(lazyJson)
  .use(initReactI18next)
  .init({
    lng: initialLanguage(),
    fallbackLng: "en",
    supportedLngs: [...languages],
    ns: ["common"],
    defaultNS: "common",
    interpolation: { escapeValue: false },
  });

export default i18n;
