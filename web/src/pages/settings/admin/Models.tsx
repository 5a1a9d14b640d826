import { useId, useState } from "react";
import { useFieldArray, useForm } from "react-hook-form";
import { useTranslation } from "react-i18next";

import { QueryState } from "@/components/page/QueryState";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Input } from "@/components/ui/input";
import {
  useAddModel,
  useAddProvider,
  useAdminModels,
  useProviderModels,
  useProviders,
  useRemoveModel,
  useRemoveProvider,
  type ModelInfo,
  type Provider,
} from "../queries";
import { ConfirmButton, described, ErrorText, Field, Select } from "@/components/page/form";

const providerKinds = ["openai", "openai-compatible", "anthropic", "gemini", "cohere", "ollama"] as const;
const strategies = ["priority", "weighted", "least-busy", "latency"] as const;
function isStrategy(value: string): value is (typeof strategies)[number] {
  return (strategies as readonly string[]).includes(value);
}

const NAME = /^[A-Za-z0-9._/:-]+$/;
const CREDENTIAL = /^(env|file|vault):.+$/;

interface ProviderValues {
  name: string;
  kind: (typeof providerKinds)[number];
  baseUrl: string;
  apiKey: string;
}

function AddProvider({ onDone }: { onDone: () => void }) {
  const { t } = useTranslation("settings");
  const add = useAddProvider();
  const {
    register,
    handleSubmit,
    formState: { errors, isSubmitting },
  } = useForm<ProviderValues>({ defaultValues: { name: "", kind: "openai-compatible", baseUrl: "", apiKey: "" } });
  const onSubmit = handleSubmit(async (values) => {
    const added = await add
      .mutateAsync({
        name: values.name.trim(),
        kind: values.kind,
        base_url: values.baseUrl.trim() || null,
        api_key: values.apiKey.trim() || null,
      })
      .catch(() => null);
    if (added) onDone();
  });
  return (
    <form
      onSubmit={(event) => void onSubmit(event)}
      aria-labelledby="provider-form-heading"
      className="flex flex-col gap-3 rounded-lg border p-4"
      noValidate
    >
      <h4 id="provider-form-heading" className="font-medium">
        {t("providers.add")}
      </h4>
      <div className="grid gap-3 sm:grid-cols-2">
        <Field id="provider-name" label={t("providers.name")} error={errors.name?.message}>
          <Input
            {...described("provider-name", false, errors.name?.message)}
            autoComplete="off"
            {...register("name", {
              required: t("form.required"),
              pattern: { value: NAME, message: t("form.nameInvalid") },
            })}
          />
        </Field>
        <Field id="provider-kind" label={t("providers.kind")}>
          <Select id="provider-kind" {...register("kind")}>
            {providerKinds.map((kind) => (
              <option key={kind} value={kind}>
                {kind}
              </option>
            ))}
          </Select>
        </Field>
        <Field id="provider-url" label={t("providers.baseUrl")} hint={t("providers.baseUrlHint")} error={errors.baseUrl?.message}>
          <Input
            {...described("provider-url", true, errors.baseUrl?.message)}
            type="url"
            inputMode="url"
            {...register("baseUrl", {
              validate: (value) => value.trim() === "" || URL.canParse(value.trim()) || t("providers.urlInvalid"),
            })}
          />
        </Field>
        <Field id="provider-key" label={t("providers.apiKey")} hint={t("providers.apiKeyHint")} error={errors.apiKey?.message}>
          <Input
            {...described("provider-key", true, errors.apiKey?.message)}
            autoComplete="off"
            {...register("apiKey", {
              validate: (value) => value.trim() === "" || CREDENTIAL.test(value.trim()) || t("providers.apiKeyInvalid"),
            })}
          />
        </Field>
      </div>
      <ErrorText error={add.error} />
      <div className="flex gap-2">
        <Button type="submit" disabled={isSubmitting}>
          {t("providers.save")}
        </Button>
        <Button type="button" variant="outline" onClick={onDone}>
          {t("form.cancel")}
        </Button>
      </div>
    </form>
  );
}

function ProviderItem({ provider }: { provider: Provider }) {
  const { t } = useTranslation("settings");
  const remove = useRemoveProvider();
  return (
    <li className="flex flex-col gap-1 rounded-md border px-3 py-2">
      <div className="flex flex-wrap items-center gap-2">
        <span className="font-medium">{provider.name}</span>
        <Badge variant="outline">{provider.kind}</Badge>
        <Badge variant="secondary">{t(`source.${provider.source === "api" ? "api" : provider.source === "local" ? "local" : "config"}`)}</Badge>
        <span className="flex-1" />
        {provider.source === "api" && (
          <ConfirmButton
            label={t("providers.remove")}
            accessibleLabel={t("providers.removeNamed", { name: provider.name })}
            title={t("providers.removeTitle", { name: provider.name })}
            description={t("providers.removeDescription")}
            confirm={t("providers.remove")}
            disabled={remove.isPending}
            onConfirm={() => remove.mutate(provider.name)}
          />
        )}
      </div>
      <p className="text-muted-foreground text-xs">
        {[provider.base_url, provider.api_key].filter(Boolean).join(" · ")}
      </p>
      {provider.problem && (
        <p className="text-destructive text-xs">{t("providers.problem", { problem: provider.problem })}</p>
      )}
      <ErrorText error={remove.error} />
    </li>
  );
}

function Providers() {
  const { t } = useTranslation("settings");
  const providers = useProviders();
  const [adding, setAdding] = useState(false);
  return (
    <section aria-labelledby="providers-heading" className="flex flex-col gap-3">
      <h3 id="providers-heading" className="text-base font-medium">
        {t("providers.heading")}
      </h3>
      <QueryState
        isPending={providers.isPending}
        error={providers.error}
        isEmpty={providers.data?.length === 0}
        empty={t("providers.none")}
      >
        <ul className="flex flex-col gap-2">
          {providers.data?.map((provider) => (
            <ProviderItem key={provider.name} provider={provider} />
          ))}
        </ul>
      </QueryState>
      {adding ? (
        <AddProvider onDone={() => setAdding(false)} />
      ) : (
        <Button variant="outline" size="sm" className="self-start" onClick={() => setAdding(true)}>
          {t("providers.add")}
        </Button>
      )}
    </section>
  );
}

interface ModelValues {
  name: string;
  strategy: (typeof strategies)[number];
  deployments: { provider: string; model: string }[];
  fallbacks: string;
}

function DeploymentModel({ index, provider, register }: {
  index: number;
  provider: string;
  register: ReturnType<typeof useForm<ModelValues>>["register"];
}) {
  const { t } = useTranslation("settings");
  const listId = useId();
  const offered = useProviderModels(provider || null);
  return (
    <>
      <Input
        aria-label={t("models.deploymentModel", { number: index + 1 })}
        list={listId}
        autoComplete="off"
        className="w-56"
        {...register(`deployments.${index}.model`, { required: t("form.required") })}
      />
      <datalist id={listId}>
        {offered.data?.map((name) => (
          <option key={name} value={name} />
        ))}
      </datalist>
    </>
  );
}

function AddModel({ providers, onDone }: { providers: Provider[]; onDone: () => void }) {
  const { t } = useTranslation("settings");
  const add = useAddModel();
  const {
    register,
    handleSubmit,
    control,
    watch,
    formState: { errors, isSubmitting },
  } = useForm<ModelValues>({
    defaultValues: {
      name: "",
      strategy: "priority",
      deployments: [{ provider: providers[0]?.name ?? "", model: "" }],
      fallbacks: "",
    },
  });
  const deployments = useFieldArray({ control, name: "deployments" });
  const chosen = watch("deployments");
  const onSubmit = handleSubmit(async (values) => {
    const added = await add
      .mutateAsync({
        name: values.name.trim(),
        strategy: values.strategy,
        deployments: values.deployments.map(({ provider, model }) => ({ provider, model: model.trim() })),
        fallbacks: values.fallbacks
          .split(",")
          .map((name) => name.trim())
          .filter(Boolean),
      })
      .catch(() => null);
    if (added) onDone();
  });
  return (
    <form
      onSubmit={(event) => void onSubmit(event)}
      aria-labelledby="model-form-heading"
      className="flex flex-col gap-3 rounded-lg border p-4"
      noValidate
    >
      <h4 id="model-form-heading" className="font-medium">
        {t("models.add")}
      </h4>
      <div className="grid gap-3 sm:grid-cols-2">
        <Field id="model-name" label={t("models.name")} hint={t("models.nameHint")} error={errors.name?.message}>
          <Input
            {...described("model-name", true, errors.name?.message)}
            autoComplete="off"
            {...register("name", {
              required: t("form.required"),
              pattern: { value: NAME, message: t("form.nameInvalid") },
            })}
          />
        </Field>
        <Field id="model-strategy" label={t("models.strategy")}>
          <Select id="model-strategy" {...register("strategy")}>
            {strategies.map((strategy) => (
              <option key={strategy} value={strategy}>
                {t(`models.strategies.${strategy}`)}
              </option>
            ))}
          </Select>
        </Field>
      </div>
      <fieldset className="flex flex-col gap-2">
        <legend className="mb-1 text-sm font-medium">{t("models.deployments")}</legend>
        <p className="text-muted-foreground text-xs">{t("models.deploymentsHint")}</p>
        <ol className="flex flex-col gap-2">
          {deployments.fields.map((item, index) => (
            <li key={item.id} className="flex flex-wrap items-center gap-2">
              <Select
                aria-label={t("models.deploymentProvider", { number: index + 1 })}
                className="w-48"
                {...register(`deployments.${index}.provider`, { required: t("form.required") })}
              >
                {providers.map((provider) => (
                  <option key={provider.name} value={provider.name}>
                    {provider.name}
                  </option>
                ))}
              </Select>
              <DeploymentModel index={index} provider={chosen[index]?.provider ?? ""} register={register} />
              {deployments.fields.length > 1 && (
                <Button type="button" variant="ghost" size="sm" onClick={() => deployments.remove(index)}>
                  {t("models.removeDeployment", { number: index + 1 })}
                </Button>
              )}
            </li>
          ))}
        </ol>
        {errors.deployments && (
          <p role="alert" className="text-destructive text-xs">
            {t("models.deploymentInvalid")}
          </p>
        )}
        <Button
          type="button"
          variant="outline"
          size="sm"
          className="self-start"
          onClick={() => deployments.append({ provider: providers[0]?.name ?? "", model: "" })}
        >
          {t("models.addDeployment")}
        </Button>
      </fieldset>
      <Field id="model-fallbacks" label={t("models.fallbacks")} hint={t("models.fallbacksHint")}>
        <Input {...described("model-fallbacks", true, undefined)} autoComplete="off" {...register("fallbacks")} />
      </Field>
      <ErrorText error={add.error} />
      <div className="flex gap-2">
        <Button type="submit" disabled={isSubmitting}>
          {t("models.save")}
        </Button>
        <Button type="button" variant="outline" onClick={onDone}>
          {t("form.cancel")}
        </Button>
      </div>
    </form>
  );
}

function ModelItem({ model }: { model: ModelInfo }) {
  const { t } = useTranslation("settings");
  const remove = useRemoveModel();
  return (
    <li className="flex flex-col gap-1 rounded-md border px-3 py-2">
      <div className="flex flex-wrap items-center gap-2">
        <span className="font-medium">{model.name}</span>
        <Badge variant="secondary">{t(`source.${model.source === "api" ? "api" : "config"}`)}</Badge>
        {model.strategy && (
          <Badge variant="outline">
            {isStrategy(model.strategy) ? t(`models.strategies.${model.strategy}`) : model.strategy}
          </Badge>
        )}
        <span className="flex-1" />
        {model.source === "api" && (
          <ConfirmButton
            label={t("models.remove")}
            accessibleLabel={t("models.removeNamed", { name: model.name })}
            title={t("models.removeTitle", { name: model.name })}
            description={t("models.removeDescription")}
            confirm={t("models.remove")}
            disabled={remove.isPending}
            onConfirm={() => remove.mutate(model.name)}
          />
        )}
      </div>
      <ul className="text-muted-foreground flex flex-col text-xs">
        {model.deployments.map((deployment, index) => {
          const state = model.status[index]?.state;
          return (
            <li key={`${deployment.provider}/${deployment.model}/${index}`} className="flex flex-wrap gap-2">
              <span>{t("models.deployment", { provider: deployment.provider, model: deployment.model })}</span>
              {state && (
                <span className={state === "healthy" ? undefined : "text-destructive"}>
                  {t(`models.states.${state === "cooling_down" ? "cooling_down" : state === "probing" ? "probing" : "healthy"}`)}
                </span>
              )}
            </li>
          );
        })}
      </ul>
      <ErrorText error={remove.error} />
    </li>
  );
}

function Catalog() {
  const { t } = useTranslation("settings");
  const models = useAdminModels();
  const providers = useProviders();
  const [adding, setAdding] = useState(false);
  const usable = providers.data?.filter((provider) => !provider.problem) ?? [];
  return (
    <section aria-labelledby="models-heading" className="flex flex-col gap-3">
      <h3 id="models-heading" className="text-base font-medium">
        {t("models.heading")}
      </h3>
      <QueryState
        isPending={models.isPending}
        error={models.error}
        isEmpty={models.data?.length === 0}
        empty={t("models.none")}
      >
        <ul className="flex flex-col gap-2">
          {models.data?.map((model) => (
            <ModelItem key={model.name} model={model} />
          ))}
        </ul>
      </QueryState>
      {adding ? (
        <AddModel providers={usable} onDone={() => setAdding(false)} />
      ) : (
        <Button
          variant="outline"
          size="sm"
          className="self-start"
          disabled={usable.length === 0}
          onClick={() => setAdding(true)}
        >
          {t("models.add")}
        </Button>
      )}
    </section>
  );
}

/** `/settings/models` (admins): the providers models are served by, and the models. */
export function Models() {
  const { t } = useTranslation("settings");
  return (
    <div className="flex flex-col gap-8">
      <h2 className="text-xl font-medium">{t("nav.models")}</h2>
      <Providers />
      <Catalog />
    </div>
  );
}
