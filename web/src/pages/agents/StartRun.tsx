import { useForm } from "react-hook-form";
import { useTranslation } from "react-i18next";
import { useNavigate } from "react-router";

import { Button } from "@/components/ui/button";
import { Textarea } from "@/components/ui/textarea";
import { useStartRun } from "./queries";
import { described, ErrorText, Field } from "@/components/page/form";

/** Starts a run of an agent towards a goal, then shows its timeline. */
export function StartRun({ agent }: { agent: string }) {
  const { t } = useTranslation("agents");
  const navigate = useNavigate();
  const start = useStartRun(agent);
  const {
    register,
    handleSubmit,
    formState: { errors, isSubmitting },
  } = useForm<{ goal: string }>({ defaultValues: { goal: "" } });
  const onSubmit = handleSubmit(async ({ goal }) => {
    const run = await start.mutateAsync(goal.trim()).catch(() => null);
    if (run) await navigate(`/agents/runs/${run.id}`);
  });
  const error = errors.goal?.message;
  return (
    <form onSubmit={(event) => void onSubmit(event)} className="flex flex-col gap-3" noValidate>
      <Field id="run-goal" label={t("start.goal")} hint={t("start.goalHint")} error={error}>
        <Textarea
          {...described("run-goal", true, error)}
          rows={3}
          {...register("goal", {
            validate: (value) => value.trim() !== "" || t("form.required"),
          })}
        />
      </Field>
      <ErrorText error={start.error} />
      <Button type="submit" className="self-start" disabled={isSubmitting}>
        {t("start.submit")}
      </Button>
    </form>
  );
}
