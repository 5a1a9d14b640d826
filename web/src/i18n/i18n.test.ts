import { describe, expect, it } from "vitest";

import i18n, { languages, namespaces } from ".";

function keys(value: unknown, prefix = ""): string[] {
  if (typeof value !== "object" || value === null) return [prefix];
  return Object.entries(value).flatMap(([key, inner]) => keys(inner, prefix ? `${prefix}.${key}` : key));
}

describe("translations", () => {
  it("pluralises with _one and _other in English and German", () => {
    const en = i18n.getFixedT("en", "chat");
    const de = i18n.getFixedT("de", "chat");
    expect(en("usage.tokens", { count: 1 })).toBe("1 token");
    expect(en("usage.tokens", { count: 1000 })).toBe("1000 tokens");
    expect(de("usage.tokens", { count: 1 })).toBe("1 Token");
    expect(de("usage.tokens", { count: 2 })).toBe("2 Tokens");
    expect(de("knowledge.some", { count: 3 })).toBe("3 Sammlungen");
  });

  it("has the same keys in every language", () => {
    for (const namespace of namespaces) {
      const [first, ...others] = languages.map((language) =>
        keys(i18n.getResourceBundle(language, namespace)).sort(),
      );
      for (const other of others) expect(other).toEqual(first);
    }
  });
});
