import { useTranslation } from "react-i18next";

import type { AnswerMeta } from "@/stores/turns";

function formatCost(micros: number, language: string): string {
  const dollars = micros / 1_000_000;
  return new Intl.NumberFormat(language, {
    style: "currency",
    currency: "USD",
    maximumFractionDigits: dollars > 0 && dollars < 0.01 ? 6 : 2,
  }).format(dollars);
}

/** Tokens and cost of an answer, from its `chat.finished`. */
export function AnswerFigures({ meta }: { meta: AnswerMeta }) {
  const { t, i18n } = useTranslation("chat");
  const { prompt_tokens, completion_tokens } = meta.usage;
  return (
    <span
      className="text-muted-foreground text-xs"
      title={t("usage.breakdown", { prompt: prompt_tokens, completion: completion_tokens })}
    >
      {t("usage.tokens", { count: meta.usage.total_tokens })}
      {" · "}
      {formatCost(meta.costMicros, i18n.language)}
    </span>
  );
}
