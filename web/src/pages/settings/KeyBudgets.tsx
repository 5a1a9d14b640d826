import { useForm } from "react-hook-form";
import { useTranslation } from "react-i18next";

import { Button } from "@/components/ui/button";
import { Input } from "@/components/ui/input";
import { useKeyBudgets, useSaveBudgets, type ApiKey, type KeyBudget } from "./queries";
import { described, ErrorText, Field } from "@/components/page/form";

const periods = ["day", "month"] as const;
type Period = (typeof periods)[number];
type BudgetField = `${Period}_${"tokens" | "usd"}`;
type BudgetValues = Record<BudgetField, string>;

export function toBudgetValues(budgets: KeyBudget[]): BudgetValues {
  const values: BudgetValues = { day_tokens: "", day_usd: "", month_tokens: "", month_usd: "" };
  for (const budget of budgets) {
    const period = budget.period === "month" ? "month" : "day";
    if (budget.tokens !== null && budget.tokens !== undefined) values[`${period}_tokens`] = String(budget.tokens);
    if (budget.usd !== null && budget.usd !== undefined) values[`${period}_usd`] = String(budget.usd);
  }
  return values;
}

/** The budgets the form's values set: at most one token and one dollar budget per period. */
export function toBudgets(values: BudgetValues): KeyBudget[] {
  const budgets: KeyBudget[] = [];
  for (const period of periods) {
    const tokens = values[`${period}_tokens`].trim();
    const usd = values[`${period}_usd`].trim();
    if (tokens !== "") budgets.push({ period, tokens: Number.parseInt(tokens, 10) });
    if (usd !== "") budgets.push({ period, usd: Number(usd) });
  }
  return budgets;
}

function BudgetForm({ apiKey, budgets }: { apiKey: ApiKey; budgets: KeyBudget[] }) {
  const { t } = useTranslation("settings");
  const save = useSaveBudgets(apiKey.id);
  const {
    register,
    handleSubmit,
    formState: { errors, isSubmitting, isSubmitSuccessful },
  } = useForm<BudgetValues>({ defaultValues: toBudgetValues(budgets) });
  const onSubmit = handleSubmit(async (values) => {
    await save.mutateAsync(toBudgets(values)).catch(() => undefined);
  });
  const fields: { name: BudgetField; kind: "tokens" | "usd" }[] = [
    { name: "day_tokens", kind: "tokens" },
    { name: "day_usd", kind: "usd" },
    { name: "month_tokens", kind: "tokens" },
    { name: "month_usd", kind: "usd" },
  ];
  return (
    <form
      onSubmit={(event) => void onSubmit(event)}
      aria-label={t("budgets.formLabel", { name: apiKey.name })}
      className="flex flex-col gap-3 pt-2"
      noValidate
    >
      <p className="text-muted-foreground text-xs">{t("budgets.hint")}</p>
      <div className="grid gap-3 sm:grid-cols-2">
        {fields.map(({ name, kind }) => {
          const id = `budget-${apiKey.id}-${name}`;
          const error = errors[name]?.message;
          return (
            <Field key={name} id={id} label={t(`budgets.${name}`)} error={error}>
              <Input
                {...described(id, false, error)}
                inputMode={kind === "usd" ? "decimal" : "numeric"}
                {...register(name, {
                  validate: (value) => {
                    const trimmed = value.trim();
                    if (trimmed === "") return true;
                    if (kind === "tokens") return (/^\d+$/.test(trimmed) && Number(trimmed) >= 1) || t("budgets.invalid");
                    const amount = Number(trimmed);
                    return (Number.isFinite(amount) && amount > 0) || t("budgets.invalid");
                  },
                })}
              />
            </Field>
          );
        })}
      </div>
      <ErrorText error={save.error} />
      <div className="flex items-center gap-3">
        <Button type="submit" size="sm" disabled={isSubmitting}>
          {t("budgets.save")}
        </Button>
        <span role="status" className="text-muted-foreground text-xs">
          {isSubmitSuccessful && save.isSuccess ? t("budgets.saved") : ""}
        </span>
      </div>
    </form>
  );
}

/** One API key's spending limits per UTC day and month. */
export function KeyBudgets({ apiKey }: { apiKey: ApiKey }) {
  const { t } = useTranslation();
  const budgets = useKeyBudgets(apiKey.id);
  if (budgets.error) return <ErrorText error={budgets.error} />;
  if (!budgets.data) return <p className="text-muted-foreground text-sm">{t("loading")}</p>;
  return <BudgetForm apiKey={apiKey} budgets={budgets.data} />;
}
