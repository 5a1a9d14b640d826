import { Monitor, Moon, Sun } from "lucide-react";
import { useTranslation } from "react-i18next";

import { Button } from "@/components/ui/button";
import { useThemeStore } from "@/stores/theme";

const icons = { light: Sun, dark: Moon, system: Monitor };

/** Cycles light, dark and the system's theme; the choice is kept on this device. */
export function ThemeToggle() {
  const { t } = useTranslation();
  const preference = useThemeStore((state) => state.preference);
  const cycle = useThemeStore((state) => state.cycle);
  const Icon = icons[preference];
  const label = t("theme.toggle", { theme: t(`theme.${preference}`) });
  return (
    <Button variant="ghost" size="icon" onClick={cycle} aria-label={label} title={label}>
      <Icon aria-hidden />
    </Button>
  );
}
