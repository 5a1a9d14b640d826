import { useId, useMemo, useState } from "react";
import { useForm } from "react-hook-form";
import { useTranslation } from "react-i18next";

import { QueryState } from "@/components/page/QueryState";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Input } from "@/components/ui/input";
import { useFormat } from "./format";
import {
  useCreateSchedule,
  useDeleteSchedule,
  useSchedules,
  useToggleSchedule,
  type Agent,
  type Schedule,
} from "./queries";
import { Checkbox, ConfirmButton, described, ErrorText, Field, Select } from "@/components/page/form";

interface ScheduleFormValues {
  name: string;
  goal: string;
  kind: "cron" | "every";
  when: string;
  timeZone: string;
  missed: "skip" | "run_once";
  enabled: boolean;
}

/** The spec the API reads: `cron: …` or `every …`. */
export function toSpec(kind: ScheduleFormValues["kind"], when: string): string {
  const value = when.trim();
  if (kind === "every") return value.startsWith("every ") ? value : `every ${value}`;
  return value.startsWith("cron:") ? value : `cron: ${value}`;
}

function localTimeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
}

function timeZones(): string[] {
  const intl = Intl as typeof Intl & { supportedValuesOf?: (key: string) => string[] };
  return intl.supportedValuesOf?.("timeZone") ?? [];
}

function ScheduleForm({ agent, onDone }: { agent: Agent; onDone: () => void }) {
  const { t } = useTranslation("agents");
  const create = useCreateSchedule();
  const zonesId = useId();
  const zones = useMemo(timeZones, []);
  const {
    register,
    handleSubmit,
    watch,
    formState: { errors, isSubmitting },
  } = useForm<ScheduleFormValues>({
    defaultValues: {
      name: "",
      goal: "",
      kind: "cron",
      when: "",
      timeZone: localTimeZone(),
      missed: "skip",
      enabled: true,
    },
  });
  const kind = watch("kind");
  const onSubmit = handleSubmit(async (values) => {
    const created = await create
      .mutateAsync({
        name: values.name.trim(),
        agent: agent.name,
        goal: values.goal.trim(),
        spec: toSpec(values.kind, values.when),
        time_zone: values.timeZone.trim() || null,
        missed: values.missed,
        enabled: values.enabled,
      })
      .catch(() => null);
    if (created) onDone();
  });
  const required = (value: string) => value.trim() !== "" || t("form.required");
  return (
    <form
      onSubmit={(event) => void onSubmit(event)}
      className="flex flex-col gap-4 rounded-lg border p-4"
      aria-labelledby="schedule-form-heading"
      noValidate
    >
      <h3 id="schedule-form-heading" className="font-medium">
        {t("schedules.new")}
      </h3>
      <div className="grid gap-4 sm:grid-cols-2">
        <Field id="schedule-name" label={t("schedules.name")} error={errors.name?.message}>
          <Input
            {...described("schedule-name", false, errors.name?.message)}
            autoComplete="off"
            {...register("name", { validate: required })}
          />
        </Field>
        <Field id="schedule-kind" label={t("schedules.kind")}>
          <Select id="schedule-kind" {...register("kind")}>
            <option value="cron">{t("schedules.kindCron")}</option>
            <option value="every">{t("schedules.kindEvery")}</option>
          </Select>
        </Field>
      </div>
      <Field id="schedule-goal" label={t("schedules.goal")} error={errors.goal?.message}>
        <Input
          {...described("schedule-goal", false, errors.goal?.message)}
          {...register("goal", { validate: required })}
        />
      </Field>
      <div className="grid gap-4 sm:grid-cols-2">
        <Field
          id="schedule-when"
          label={kind === "cron" ? t("schedules.cron") : t("schedules.every")}
          hint={kind === "cron" ? t("schedules.cronHint") : t("schedules.everyHint")}
          error={errors.when?.message}
        >
          <Input
            {...described("schedule-when", true, errors.when?.message)}
            className="font-mono"
            autoComplete="off"
            placeholder={kind === "cron" ? t("schedules.cronPlaceholder") : t("schedules.everyPlaceholder")}
            {...register("when", { validate: required })}
          />
        </Field>
        <Field id="schedule-zone" label={t("schedules.timeZone")} hint={t("schedules.timeZoneHint")}>
          <Input
            {...described("schedule-zone", true, undefined)}
            list={zonesId}
            autoComplete="off"
            {...register("timeZone")}
          />
          <datalist id={zonesId}>
            {zones.map((zone) => (
              <option key={zone} value={zone} />
            ))}
          </datalist>
        </Field>
      </div>
      <Field id="schedule-missed" label={t("schedules.missed")} hint={t("schedules.missedHint")}>
        <Select {...described("schedule-missed", true, undefined)} {...register("missed")}>
          <option value="skip">{t("schedules.missedSkip")}</option>
          <option value="run_once">{t("schedules.missedRunOnce")}</option>
        </Select>
      </Field>
      <Checkbox label={t("schedules.startEnabled")} {...register("enabled")} />
      <ErrorText error={create.error} />
      <div className="flex gap-2">
        <Button type="submit" disabled={isSubmitting}>
          {t("schedules.add")}
        </Button>
        <Button type="button" variant="outline" onClick={onDone}>
          {t("form.cancel")}
        </Button>
      </div>
    </form>
  );
}

function ScheduleItem({ schedule }: { schedule: Schedule }) {
  const { t } = useTranslation("agents");
  const format = useFormat();
  const toggle = useToggleSchedule();
  const remove = useDeleteSchedule();
  const next = schedule.upcoming[0];
  return (
    <li className="flex flex-col gap-2 rounded-md border px-3 py-2">
      <div className="flex flex-wrap items-center gap-2">
        <span className="font-medium">{schedule.name}</span>
        <Badge variant={schedule.enabled ? "secondary" : "outline"}>
          {schedule.enabled ? t("schedules.enabled") : t("schedules.disabled")}
        </Badge>
        <span className="flex-1" />
        <Button
          size="sm"
          variant="outline"
          disabled={toggle.isPending}
          aria-label={
            schedule.enabled
              ? t("schedules.disableNamed", { name: schedule.name })
              : t("schedules.enableNamed", { name: schedule.name })
          }
          onClick={() => toggle.mutate({ id: schedule.id, enable: !schedule.enabled })}
        >
          {schedule.enabled ? t("schedules.disable") : t("schedules.enable")}
        </Button>
        <ConfirmButton
          label={t("schedules.delete")}
          accessibleLabel={t("schedules.deleteNamed", { name: schedule.name })}
          title={t("schedules.deleteTitle", { name: schedule.name })}
          description={t("schedules.deleteDescription")}
          confirm={t("schedules.delete")}
          disabled={remove.isPending}
          onConfirm={() => remove.mutate(schedule.id)}
        />
      </div>
      <p className="text-sm">{schedule.goal}</p>
      <dl className="text-muted-foreground grid grid-cols-[auto_1fr] gap-x-3 gap-y-0.5 text-xs">
        <dt>{t("schedules.spec")}</dt>
        <dd>
          <code>{schedule.spec}</code>
        </dd>
        <dt>{t("schedules.timeZone")}</dt>
        <dd>{schedule.time_zone}</dd>
        <dt>{t("schedules.missed")}</dt>
        <dd>{schedule.missed === "run_once" ? t("schedules.missedRunOnce") : t("schedules.missedSkip")}</dd>
        <dt>{t("schedules.next")}</dt>
        <dd>{next ? format.dateTime(next) : t("schedules.never")}</dd>
        <dt>{t("schedules.last")}</dt>
        <dd>{schedule.last_fire_at ? format.dateTime(schedule.last_fire_at) : t("schedules.never")}</dd>
      </dl>
      <ErrorText error={toggle.error ?? remove.error} />
    </li>
  );
}

/** An agent's schedules: listed, added, enabled or disabled, deleted. */
export function Schedules({ agent }: { agent: Agent }) {
  const { t } = useTranslation("agents");
  const schedules = useSchedules();
  const [adding, setAdding] = useState(false);
  const mine = schedules.data?.filter((schedule) => schedule.agent_id === agent.id);
  return (
    <div className="flex flex-col gap-3">
      <QueryState
        isPending={schedules.isPending}
        error={schedules.error}
        isEmpty={mine?.length === 0}
        empty={t("schedules.none")}
      >
        <ul className="flex flex-col gap-2">
          {mine?.map((schedule) => (
            <ScheduleItem key={schedule.id} schedule={schedule} />
          ))}
        </ul>
      </QueryState>
      {adding ? (
        <ScheduleForm agent={agent} onDone={() => setAdding(false)} />
      ) : (
        <Button variant="outline" size="sm" className="self-start" onClick={() => setAdding(true)}>
          {t("schedules.new")}
        </Button>
      )}
    </div>
  );
}
