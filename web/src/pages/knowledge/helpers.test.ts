import { describe, expect, it } from "vitest";

import { highlightSegments } from "./highlight";
import { completeLink, linkQueryAt, suggestTitles, wikiLinksToMarkdown } from "./wikilinks";

describe("highlightSegments", () => {
  it("cuts the passage at the matched byte ranges", () => {
    expect(highlightSegments("the quick fox", [[4, 9]])).toEqual([
      { text: "the ", match: false },
      { text: "quick", match: true },
      { text: " fox", match: false },
    ]);
  });

  it("counts UTF-8 bytes, not UTF-16 units", () => {
    // "Grüße" is 7 bytes: ü and ß take two each. "😀" takes four bytes and two UTF-16 units.
    const text = "Grüße 😀 Welt";
    const start = new TextEncoder().encode("Grüße 😀 ").length;
    expect(highlightSegments(text, [[0, 7], [start, start + 4]])).toEqual([
      { text: "Grüße", match: true },
      { text: " 😀 ", match: false },
      { text: "Welt", match: true },
    ]);
  });

  it("merges, sorts and clips ranges, and never loses text", () => {
    const text = "abcdefghij";
    const segments = highlightSegments(text, [[6, 8], [0, 2], [1, 3], [9, 50], [4, 4], [7]]);
    expect(segments.filter((s) => s.match).map((s) => s.text)).toEqual(["abc", "gh", "j"]);
    expect(segments.map((s) => s.text).join("")).toBe(text);
    expect(highlightSegments("", [[0, 3]])).toEqual([]);
  });

  it("keeps markup in the passage as text", () => {
    const segments = highlightSegments("<b>x</b>", [[3, 4]]);
    expect(segments.map((s) => s.text)).toEqual(["<b>", "x", "</b>"]);
  });
});

describe("wiki links", () => {
  it("finds the title being typed after [[", () => {
    expect(linkQueryAt("See [[Gar", 9)).toEqual({ start: 6, query: "Gar" });
    expect(linkQueryAt("See [[", 6)).toEqual({ start: 6, query: "" });
    expect(linkQueryAt("See [[Garden]] and", 18)).toBeNull();
    expect(linkQueryAt("See [[Garden|the", 16)).toBeNull();
    expect(linkQueryAt("[[a\nb", 5)).toBeNull();
    expect(linkQueryAt("no link", 7)).toBeNull();
  });

  it("completes the title and closes the link", () => {
    const text = "See [[Gar and more";
    const link = linkQueryAt(text, 9);
    if (!link) throw new Error("no link");
    expect(completeLink(text, link, 9, "Garden plan")).toEqual({
      text: "See [[Garden plan]] and more",
      caret: 19,
    });
    const closed = "See [[Gar]]";
    const inside = linkQueryAt(closed, 9);
    if (!inside) throw new Error("no link");
    expect(completeLink(closed, inside, 9, "Garden")).toEqual({ text: "See [[Garden]]", caret: 14 });
  });

  it("suggests titles that start with the query first", () => {
    const titles = ["Recipes", "Garden plan", "Old garden", "garage"];
    expect(suggestTitles(titles, "gar")).toEqual(["Garden plan", "garage", "Old garden"]);
    expect(suggestTitles(titles, "", 2)).toEqual(["Recipes", "Garden plan"]);
  });

  it("turns links into Markdown links outside code", () => {
    const markdown =
      "See [[Garden plan]], [[garden plan|the plan]], [[Recipes#Bread]] and [[artifact:0190]].\n\n`[[not a link]]`\n\n```\n[[nor this]]\n```\n";
    expect(wikiLinksToMarkdown(markdown)).toBe(
      "See [Garden plan](#note:Garden%20plan), [the plan](#note:garden%20plan), [Recipes › Bread](#note:Recipes) and [0190](#artifact:0190).\n\n`[[not a link]]`\n\n```\n[[nor this]]\n```\n",
    );
    expect(wikiLinksToMarkdown("[[A (b)]]")).toBe("[A \\(b\\)](#note:A%20%28b%29)");
  });
});
