import { useFieldArray, useForm } from "react-hook-form";
import { useTranslation } from "react-i18next";
import { Link, useNavigate } from "react-router";

import { Button } from "@/components/ui/button";
import { Input } from "@/components/ui/input";
import { Textarea } from "@/components/ui/textarea";
import {
  asList,
  builtinTools,
  consentPolicies,
  limitFields,
  toFormValues,
  toRequest,
  type AgentFormValues,
} from "./definition";
import { useCollections, useModelNames, useSaveAgent, type Agent } from "./queries";
import { Checkbox, described, ErrorText, Field, Select } from "@/components/page/form";

const NAME_PATTERN = /^[A-Za-z0-9._-]+$/;
const DURATION_PATTERN = /^(\d+[smhd])+$/;

/** Defines a new agent, or edits one: its instructions, model, tools and their consent, and limits. */
export function AgentForm({ agent }: { agent: Agent | null }) {
  const { t } = useTranslation("agents");
  const navigate = useNavigate();
  const models = useModelNames();
  const collections = useCollections();
  const save = useSaveAgent(agent?.name ?? null);
  const {
    register,
    handleSubmit,
    watch,
    control,
    formState: { errors, isSubmitting },
  } = useForm<AgentFormValues>({ defaultValues: toFormValues(agent) });
  const otherConsent = useFieldArray({ control, name: "otherConsent" });
  const source = watch("source");
  const chosenTools = watch("tools");

  const onSubmit = handleSubmit(async (values) => {
    const saved = await save.mutateAsync(toRequest(values, agent)).catch(() => null);
    if (saved) await navigate(`/agents/${encodeURIComponent(saved.name)}`);
  });

  const limitError = (field: (typeof limitFields)[number]) => errors.limits?.[field]?.message;

  return (
    <form onSubmit={(event) => void onSubmit(event)} className="flex flex-col gap-6" noValidate>
      <fieldset className="flex flex-col gap-4">
        <legend className="mb-2 text-lg font-medium">{t("form.general")}</legend>
        <Field id="agent-name" label={t("form.name")} hint={t("form.nameHint")} error={errors.name?.message}>
          <Input
            {...described("agent-name", true, errors.name?.message)}
            autoComplete="off"
            {...register("name", {
              required: t("form.required"),
              pattern: { value: NAME_PATTERN, message: t("form.nameInvalid") },
            })}
          />
        </Field>
        <Field id="agent-description" label={t("form.description")}>
          <Input id="agent-description" {...register("description")} />
        </Field>
        <Field id="agent-model" label={t("form.model")} hint={t("form.modelHint")}>
          <Select {...described("agent-model", true, undefined)} {...register("model")}>
            <option value="">{t("form.defaultModel")}</option>
            {agent?.definition.model && !models.data?.includes(agent.definition.model) && (
              <option value={agent.definition.model}>{agent.definition.model}</option>
            )}
            {models.data?.map((model) => (
              <option key={model} value={model}>
                {model}
              </option>
            ))}
          </Select>
        </Field>
      </fieldset>

      <fieldset className="flex flex-col gap-4">
        <legend className="mb-2 text-lg font-medium">{t("form.instructions")}</legend>
        <div role="radiogroup" aria-label={t("form.source")} className="flex flex-wrap gap-4">
          <label className="flex items-center gap-2 text-sm">
            <input type="radio" value="instructions" className="accent-primary" {...register("source")} />
            {t("form.sourceInstructions")}
          </label>
          <label className="flex items-center gap-2 text-sm">
            <input type="radio" value="prompt" className="accent-primary" {...register("source")} />
            {t("form.sourcePrompt")}
          </label>
        </div>
        {source === "instructions" ? (
          <Field
            id="agent-instructions"
            label={t("form.instructionsText")}
            hint={t("form.instructionsHint")}
            error={errors.instructions?.message}
          >
            <Textarea
              {...described("agent-instructions", true, errors.instructions?.message)}
              rows={8}
              className="font-mono text-sm"
              {...register("instructions", {
                validate: (value, form) =>
                  form.source !== "instructions" || value.trim() !== "" || t("form.required"),
              })}
            />
          </Field>
        ) : (
          <Field
            id="agent-prompt"
            label={t("form.prompt")}
            hint={t("form.promptHint")}
            error={errors.prompt?.message}
          >
            <Input
              {...described("agent-prompt", true, errors.prompt?.message)}
              {...register("prompt", {
                validate: (value, form) =>
                  form.source !== "prompt" || value.trim() !== "" || t("form.required"),
              })}
            />
          </Field>
        )}
        <Checkbox label={t("form.memory")} {...register("memory")} />
      </fieldset>

      <fieldset className="flex flex-col gap-3">
        <legend className="mb-2 text-lg font-medium">{t("form.tools")}</legend>
        <p className="text-muted-foreground text-sm">{t("form.toolsHint")}</p>
        <div className="overflow-x-auto">
          <table className="w-full text-sm">
            <caption className="sr-only">{t("form.toolsCaption")}</caption>
            <thead>
              <tr className="text-muted-foreground text-left">
                <th scope="col" className="py-1 pr-4 font-medium">
                  {t("form.tool")}
                </th>
                <th scope="col" className="py-1 font-medium">
                  {t("form.consent")}
                </th>
              </tr>
            </thead>
            <tbody>
              {builtinTools.map((tool) => (
                <tr key={tool} className="border-t">
                  <td className="py-1.5 pr-4">
                    <Checkbox
                      value={tool}
                      label={
                        <>
                          <code>{tool}</code>
                          <span className="text-muted-foreground"> — {t(`tools.${tool}`)}</span>
                        </>
                      }
                      {...register("tools")}
                    />
                  </td>
                  <td className="py-1.5">
                    <Select
                      aria-label={t("form.consentFor", { tool })}
                      className="w-40"
                      disabled={!asList(chosenTools).includes(tool)}
                      {...register(`consent.${tool}`)}
                    >
                      <option value="">{t("policy.default")}</option>
                      {consentPolicies.map((policy) => (
                        <option key={policy} value={policy}>
                          {t(`policy.${policy}`)}
                        </option>
                      ))}
                    </Select>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </fieldset>

      <fieldset className="flex flex-col gap-3">
        <legend className="mb-2 text-lg font-medium">{t("form.mcp")}</legend>
        <Field id="agent-mcp" label={t("form.mcpServers")} hint={t("form.mcpHint")}>
          <Textarea {...described("agent-mcp", true, undefined)} rows={2} {...register("mcpServers")} />
        </Field>
        <div className="flex flex-col gap-2">
          <p id="other-consent-label" className="text-sm font-medium">
            {t("form.otherConsent")}
          </p>
          {otherConsent.fields.length === 0 && (
            <p className="text-muted-foreground text-sm">{t("form.noOtherConsent")}</p>
          )}
          <ul aria-labelledby="other-consent-label" className="flex flex-col gap-2">
            {otherConsent.fields.map((item, index) => (
              <li key={item.id} className="flex flex-wrap items-center gap-2">
                <Input
                  aria-label={t("form.otherTool", { number: index + 1 })}
                  placeholder={t("form.otherToolPlaceholder")}
                  className="w-64"
                  {...register(`otherConsent.${index}.tool`, { required: t("form.required") })}
                />
                <Select
                  aria-label={t("form.otherPolicy", { number: index + 1 })}
                  className="w-40"
                  {...register(`otherConsent.${index}.policy`)}
                >
                  {consentPolicies.map((policy) => (
                    <option key={policy} value={policy}>
                      {t(`policy.${policy}`)}
                    </option>
                  ))}
                </Select>
                <Button
                  type="button"
                  variant="ghost"
                  size="sm"
                  onClick={() => otherConsent.remove(index)}
                >
                  {t("form.removeRule", { number: index + 1 })}
                </Button>
              </li>
            ))}
          </ul>
          <Button
            type="button"
            variant="outline"
            size="sm"
            className="self-start"
            onClick={() => otherConsent.append({ tool: "", policy: "ask" })}
          >
            {t("form.addRule")}
          </Button>
        </div>
      </fieldset>

      <fieldset className="flex flex-col gap-3">
        <legend className="mb-2 text-lg font-medium">{t("form.collections")}</legend>
        <p className="text-muted-foreground text-sm">{t("form.collectionsHint")}</p>
        {collections.data?.length === 0 && (
          <p className="text-muted-foreground text-sm">{t("form.noCollections")}</p>
        )}
        <div className="flex flex-wrap gap-x-6 gap-y-2">
          {collections.data?.map((collection) => (
            <Checkbox
              key={collection.id}
              value={collection.id}
              label={collection.name}
              {...register("collections")}
            />
          ))}
        </div>
      </fieldset>

      <fieldset className="flex flex-col gap-3">
        <legend className="mb-2 text-lg font-medium">{t("form.limits")}</legend>
        <p className="text-muted-foreground text-sm">{t("form.limitsHint")}</p>
        <div className="grid gap-4 sm:grid-cols-2">
          {limitFields.map((field) => {
            const id = `agent-limit-${field}`;
            const error = limitError(field);
            const numeric = field !== "max_duration";
            return (
              <Field key={field} id={id} label={t(`limits.${field}`)} hint={t(`limits.${field}Hint`)} error={error}>
                <Input
                  {...described(id, true, error)}
                  inputMode={field === "ask_after_usd" ? "decimal" : numeric ? "numeric" : "text"}
                  {...register(`limits.${field}`, {
                    validate: (value) => {
                      const trimmed = value.trim();
                      if (trimmed === "") return true;
                      if (field === "max_duration") {
                        return DURATION_PATTERN.test(trimmed) || t("form.durationInvalid");
                      }
                      if (field === "ask_after_usd") {
                        const amount = Number(trimmed);
                        return (Number.isFinite(amount) && amount >= 0) || t("form.numberInvalid");
                      }
                      if (!/^\d+$/.test(trimmed)) return t("form.numberInvalid");
                      if (field === "max_steps") {
                        const steps = Number(trimmed);
                        return (steps >= 1 && steps <= 100) || t("form.stepsInvalid");
                      }
                      return true;
                    },
                  })}
                />
              </Field>
            );
          })}
        </div>
      </fieldset>

      <ErrorText error={save.error} />
      <div className="flex flex-wrap gap-2">
        <Button type="submit" disabled={isSubmitting}>
          {agent ? t("form.save") : t("form.create")}
        </Button>
        <Button asChild variant="outline">
          <Link to={agent ? `/agents/${encodeURIComponent(agent.name)}` : "/agents"}>{t("form.cancel")}</Link>
        </Button>
      </div>
    </form>
  );
}
