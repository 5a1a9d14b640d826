import { screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";

import { renderWithProviders } from "@/test/render";
import { Sources } from "./Sources";

describe("an answer's sources", () => {
  afterEach(() => vi.restoreAllMocks());

  it("are the passages chat.finished listed, numbered, without searching again", async () => {
    const fetch = vi.spyOn(globalThis, "fetch");
    renderWithProviders(
      <Sources
        meta={{
          usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 },
          costMicros: 0,
          finishReason: "stop",
          collections: ["c0ffee00-0000-4000-8000-0000000000c1"],
          question: "Who keeps the lighthouse?",
          sources: [
            {
              item_id: "c0ffee00-0000-4000-8000-0000000000a1",
              version: 1,
              number: 1,
              score: 0.9,
              title: "skerrivore.md",
              heading: "Keepers",
              text: "The keeper is Maren Oystrand.",
            },
          ],
        }}
      />,
    );
    await userEvent.click(screen.getByText("1 source"));
    expect(screen.getByText("[1] skerrivore.md")).toBeInTheDocument();
    expect(screen.getByText("The keeper is Maren Oystrand.")).toBeInTheDocument();
    expect(fetch).not.toHaveBeenCalled();
  });
});
