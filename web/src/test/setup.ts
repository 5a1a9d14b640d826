import "@testing-library/jest-dom/vitest";
import "fake-indexeddb/auto";
import { cleanup } from "@testing-library/react";
import { afterEach, beforeAll, vi } from "vitest";

import i18n, { i18nReady, namespaces } from "@/i18n";

Object.defineProperty(window, "matchMedia", {
  writable: true,
  value: vi.fn((query: string) => ({
    matches: false,
    media: query,
    onchange: null,
    addEventListener: vi.fn(),
    removeEventListener: vi.fn(),
    addListener: vi.fn(),
    removeListener: vi.fn(),
    dispatchEvent: vi.fn(),
  })),
});

beforeAll(async () => {
  await i18nReady;
  await i18n.changeLanguage("en");
  await i18n.loadLanguages(["en", "de"]);
  await i18n.loadNamespaces([...namespaces]);
});

afterEach(() => {
  cleanup();
});
