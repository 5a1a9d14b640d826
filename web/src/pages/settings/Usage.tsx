import { useMemo, useState } from "react";
import { useTranslation } from "react-i18next";

import { BarChart, type Bar } from "./BarChart";
import { useFormat } from "./format";
import { useApiKeys, useUsage, type UsageGroup } from "./queries";
import { ErrorText, Field, Select } from "@/components/page/form";

const windows = [7, 30, 90] as const;
const metrics = ["cost", "requests", "tokens"] as const;
type Metric = (typeof metrics)[number];

const DAY_MS = 24 * 60 * 60 * 1000;

/** The UTC days of a window ending today, oldest first, and its bounds. */
export function usageWindow(days: number, now = new Date()) {
  const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  const start = today - (days - 1) * DAY_MS;
  const list = Array.from({ length: days }, (_, index) => new Date(start + index * DAY_MS).toISOString().slice(0, 10));
  return { from: new Date(start).toISOString(), to: new Date(today + DAY_MS).toISOString(), days: list };
}

export function metricOf(group: UsageGroup, metric: Metric): number {
  switch (metric) {
    case "cost":
      return group.cost_usd;
    case "requests":
      return group.requests;
    case "tokens":
      return group.input_tokens + group.output_tokens;
  }
}

/** `/settings/usage`: what model requests cost, by day, by model and by API key. */
export function Usage() {
  const { t } = useTranslation("settings");
  const format = useFormat();
  const [days, setDays] = useState<number>(30);
  const [metric, setMetric] = useState<Metric>("cost");
  const window = useMemo(() => usageWindow(days), [days]);
  const byDay = useUsage("day", window.from, window.to);
  const byModel = useUsage("model", window.from, window.to);
  const byKey = useUsage("key", window.from, window.to);
  const keys = useApiKeys();
  const formatMetric = (value: number) => (metric === "cost" ? format.money(value) : format.number(value));
  const keyName = (id: string) =>
    id === "" ? t("usage.noKey") : (keys.data?.find((key) => key.id === id)?.name ?? id);

  const dayBars: Bar[] = window.days.map((day) => {
    const group = byDay.data?.groups?.find((known) => known.key.slice(0, 10) === day);
    return { label: day, value: group ? metricOf(group, metric) : 0 };
  });
  const groupBars = (groups: UsageGroup[] | null | undefined, name: (key: string) => string): Bar[] =>
    [...(groups ?? [])]
      .map((group) => ({ label: name(group.key), value: metricOf(group, metric) }))
      .sort((a, b) => b.value - a.value);
  const totals = byDay.data?.totals;
  const valueHeader = t(`usage.metrics.${metric}`);

  return (
    <div className="flex flex-col gap-6">
      <h2 className="text-xl font-medium">{t("nav.usage")}</h2>
      <div className="grid gap-4 sm:grid-cols-2">
        <Field id="usage-window" label={t("usage.window")}>
          <Select id="usage-window" value={days} onChange={(event) => setDays(Number(event.target.value))}>
            {windows.map((count) => (
              <option key={count} value={count}>
                {t("usage.lastDays", { count })}
              </option>
            ))}
          </Select>
        </Field>
        <Field id="usage-metric" label={t("usage.metric")}>
          <Select id="usage-metric" value={metric} onChange={(event) => setMetric(event.target.value as Metric)}>
            {metrics.map((choice) => (
              <option key={choice} value={choice}>
                {t(`usage.metrics.${choice}`)}
              </option>
            ))}
          </Select>
        </Field>
      </div>
      {totals && (
        <dl className="grid grid-cols-2 gap-4 sm:grid-cols-4" aria-label={t("usage.totals")}>
          <div className="rounded-lg border p-3">
            <dt className="text-muted-foreground text-xs">{t("usage.metrics.cost")}</dt>
            <dd className="text-lg font-medium">{format.money(totals.cost_usd)}</dd>
          </div>
          <div className="rounded-lg border p-3">
            <dt className="text-muted-foreground text-xs">{t("usage.metrics.requests")}</dt>
            <dd className="text-lg font-medium">{format.number(totals.requests)}</dd>
          </div>
          <div className="rounded-lg border p-3">
            <dt className="text-muted-foreground text-xs">{t("usage.errors")}</dt>
            <dd className="text-lg font-medium">{format.number(totals.errors)}</dd>
          </div>
          <div className="rounded-lg border p-3">
            <dt className="text-muted-foreground text-xs">{t("usage.metrics.tokens")}</dt>
            <dd className="text-lg font-medium">{format.number(totals.input_tokens + totals.output_tokens)}</dd>
          </div>
        </dl>
      )}
      <section aria-labelledby="usage-day-heading" className="flex flex-col gap-2">
        <h3 id="usage-day-heading" className="text-base font-medium">
          {t("usage.byDay")}
        </h3>
        <ErrorText error={byDay.error} />
        {byDay.data && (
          <BarChart
            title={t("usage.chartTitle.day", { metric: valueHeader })}
            bars={dayBars}
            format={formatMetric}
            columns
            tick={(day) => day.slice(5)}
            labelHeader={t("usage.day")}
            valueHeader={valueHeader}
          />
        )}
      </section>
      <section aria-labelledby="usage-model-heading" className="flex flex-col gap-2">
        <h3 id="usage-model-heading" className="text-base font-medium">
          {t("usage.byModel")}
        </h3>
        <ErrorText error={byModel.error} />
        {byModel.data && (
          <BarChart
            title={t("usage.chartTitle.model", { metric: valueHeader })}
            bars={groupBars(byModel.data.groups, (name) => name)}
            format={formatMetric}
            labelHeader={t("usage.model")}
            valueHeader={valueHeader}
          />
        )}
      </section>
      <section aria-labelledby="usage-key-heading" className="flex flex-col gap-2">
        <h3 id="usage-key-heading" className="text-base font-medium">
          {t("usage.byKey")}
        </h3>
        <ErrorText error={byKey.error} />
        {byKey.data && (
          <BarChart
            title={t("usage.chartTitle.key", { metric: valueHeader })}
            bars={groupBars(byKey.data.groups, keyName)}
            format={formatMetric}
            labelHeader={t("usage.key")}
            valueHeader={valueHeader}
          />
        )}
      </section>
    </div>
  );
}
