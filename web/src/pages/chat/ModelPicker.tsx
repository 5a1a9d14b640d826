import { useTranslation } from "react-i18next";

import { NativeSelect, NativeSelectOption } from "@/components/ui/native-select";
import { useModels } from "./queries";

/** The models `GET /v1/models` offers, local ones included; unset means the conversation's own. */
export function ModelPicker({
  value,
  fallback,
  onChange,
}: {
  value: string | null;
  fallback: string | null;
  onChange: (model: string) => void;
}) {
  const { t } = useTranslation("chat");
  const { data: models = [] } = useModels();
  const current = value ?? fallback ?? "";
  return (
    <NativeSelect
      value={current}
      onChange={(event) => onChange(event.target.value)}
      aria-label={t("model.label")}
      className="h-8 max-w-56"
    >
      {current === "" && <NativeSelectOption value="">{t("model.default")}</NativeSelectOption>}
      {models.map((model) => (
        <NativeSelectOption key={model.id} value={model.id}>
          {model.id}
        </NativeSelectOption>
      ))}
    </NativeSelect>
  );
}
