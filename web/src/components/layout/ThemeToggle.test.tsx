import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it } from "vitest";

import { bindTheme, useThemeStore } from "@/stores/theme";
import { ThemeToggle } from "./ThemeToggle";

describe("ThemeToggle", () => {
  beforeEach(() => {
    useThemeStore.setState({ preference: "system" });
  });

  it("follows the system by default and cycles light, dark and system, keeping the choice", async () => {
    const unbind = bindTheme();
    render(<ThemeToggle />);
    const root = document.documentElement;
    expect(root).not.toHaveClass("dark");

    await userEvent.click(screen.getByRole("button", { name: /Theme: System/ }));
    expect(useThemeStore.getState().preference).toBe("light");
    expect(root).not.toHaveClass("dark");

    await userEvent.click(screen.getByRole("button", { name: /Theme: Light/ }));
    expect(root).toHaveClass("dark");
    expect(JSON.parse(localStorage.getItem("kai.theme") ?? "{}")).toMatchObject({
      state: { preference: "dark" },
    });

    await userEvent.click(screen.getByRole("button", { name: /Theme: Dark/ }));
    expect(useThemeStore.getState().preference).toBe("system");
    expect(root).not.toHaveClass("dark");
    unbind();
  });
});
