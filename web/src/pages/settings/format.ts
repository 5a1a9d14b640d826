import { useTranslation } from "react-i18next";

/** Formats dates, numbers and money in the UI's language. */
export function useFormat() {
  const { i18n } = useTranslation();
  const locale = i18n.resolvedLanguage ?? "en";
  const dateTime = new Intl.DateTimeFormat(locale, { dateStyle: "medium", timeStyle: "short" });
  const time = new Intl.DateTimeFormat(locale, { timeStyle: "medium" });
  const number = new Intl.NumberFormat(locale);
  const money = new Intl.NumberFormat(locale, {
    style: "currency",
    currency: "USD",
    maximumFractionDigits: 4,
  });
  return {
    dateTime: (value: string | null | undefined) => (value ? dateTime.format(new Date(value)) : ""),
    time: (value: string) => time.format(new Date(value)),
    number: (value: number) => number.format(value),
    money: (value: number) => money.format(value),
  };
}
