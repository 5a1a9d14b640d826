import { useId } from "react";
import { useTranslation } from "react-i18next";

export interface Bar {
  /** What the bar stands for, as shown. */
  label: string;
  value: number;
}

const ROW = 22;
const LABEL_WIDTH = 150;
const VALUE_WIDTH = 90;
const WIDTH = 640;
const COLUMN_HEIGHT = 160;

function shorten(text: string, max: number) {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/**
 * A bar chart drawn as SVG: horizontal bars for categories, columns for a time series. The
 * picture is described for screen readers (its title and a summary), and the same numbers are
 * offered as a table.
 */
export function BarChart({
  title,
  bars,
  format,
  columns = false,
  labelHeader,
  valueHeader,
  tick = (label) => label,
}: {
  title: string;
  bars: Bar[];
  format: (value: number) => string;
  /** Columns (a time series) instead of horizontal bars. */
  columns?: boolean;
  labelHeader: string;
  valueHeader: string;
  /** A column's label under the axis, shortened. */
  tick?: (label: string) => string;
}) {
  const { t } = useTranslation("settings");
  const id = useId();
  const max = Math.max(0, ...bars.map((bar) => bar.value));
  const total = bars.reduce((sum, bar) => sum + bar.value, 0);
  const top = bars.reduce<Bar | null>((best, bar) => (best === null || bar.value > best.value ? bar : best), null);
  const summary =
    top && max > 0
      ? t("chart.summary", { count: bars.length, total: format(total), top: top.label, topValue: format(top.value) })
      : t("chart.empty");
  const scale = (value: number, length: number) => (max > 0 ? (value / max) * length : 0);

  let picture;
  if (columns) {
    const gap = 2;
    const width = bars.length > 0 ? WIDTH / bars.length : WIDTH;
    const every = Math.max(1, Math.ceil(bars.length / 8));
    picture = (
      <svg
        role="img"
        aria-labelledby={`${id}-title ${id}-desc`}
        viewBox={`0 0 ${WIDTH} ${COLUMN_HEIGHT + 20}`}
        className="h-auto w-full"
      >
        <title id={`${id}-title`}>{title}</title>
        <desc id={`${id}-desc`}>{summary}</desc>
        <line x1={0} x2={WIDTH} y1={COLUMN_HEIGHT} y2={COLUMN_HEIGHT} className="stroke-border" />
        {bars.map((bar, index) => {
          const height = scale(bar.value, COLUMN_HEIGHT - 4);
          return (
            <g key={bar.label}>
              <rect
                x={index * width + gap / 2}
                y={COLUMN_HEIGHT - height}
                width={Math.max(1, width - gap)}
                height={height}
                className="fill-primary"
              >
                <title>{t("chart.bar", { label: bar.label, value: format(bar.value) })}</title>
              </rect>
              {index % every === 0 && (
                <text
                  x={index * width + width / 2}
                  y={COLUMN_HEIGHT + 14}
                  textAnchor="middle"
                  className="fill-muted-foreground text-[10px]"
                >
                  {tick(bar.label)}
                </text>
              )}
            </g>
          );
        })}
      </svg>
    );
  } else {
    const height = Math.max(ROW, bars.length * ROW);
    const length = WIDTH - LABEL_WIDTH - VALUE_WIDTH;
    picture = (
      <svg
        role="img"
        aria-labelledby={`${id}-title ${id}-desc`}
        viewBox={`0 0 ${WIDTH} ${height}`}
        className="h-auto w-full"
      >
        <title id={`${id}-title`}>{title}</title>
        <desc id={`${id}-desc`}>{summary}</desc>
        {bars.map((bar, index) => (
          <g key={bar.label} transform={`translate(0 ${index * ROW})`}>
            <text x={LABEL_WIDTH - 8} y={ROW / 2 + 4} textAnchor="end" className="fill-foreground text-[11px]">
              {shorten(bar.label, 22)}
            </text>
            <rect
              x={LABEL_WIDTH}
              y={3}
              width={Math.max(bar.value > 0 ? 1 : 0, scale(bar.value, length))}
              height={ROW - 6}
              rx={2}
              className="fill-primary"
            >
              <title>{t("chart.bar", { label: bar.label, value: format(bar.value) })}</title>
            </rect>
            <text
              x={LABEL_WIDTH + scale(bar.value, length) + 6}
              y={ROW / 2 + 4}
              className="fill-muted-foreground text-[11px]"
            >
              {format(bar.value)}
            </text>
          </g>
        ))}
      </svg>
    );
  }

  return (
    <figure aria-labelledby={`${id}-caption`} className="flex flex-col gap-2">
      <figcaption id={`${id}-caption`} className="text-sm font-medium">
        {title}
      </figcaption>
      {bars.length === 0 ? <p className="text-muted-foreground text-sm">{t("chart.empty")}</p> : picture}
      {bars.length > 0 && (
        <details>
          <summary className="text-muted-foreground cursor-pointer text-xs">{t("chart.asTable")}</summary>
          <table className="mt-2 w-full text-sm">
            <caption className="sr-only">{title}</caption>
            <thead>
              <tr className="text-muted-foreground text-left">
                <th scope="col" className="py-1 pr-4 font-medium">
                  {labelHeader}
                </th>
                <th scope="col" className="py-1 text-right font-medium">
                  {valueHeader}
                </th>
              </tr>
            </thead>
            <tbody>
              {bars.map((bar) => (
                <tr key={bar.label} className="border-t">
                  <th scope="row" className="py-1 pr-4 text-left font-normal">
                    {bar.label}
                  </th>
                  <td className="py-1 text-right tabular-nums">{format(bar.value)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </details>
      )}
    </figure>
  );
}
