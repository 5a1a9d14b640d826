#!/usr/bin/env python3
"""Streams a reply from kai's local model with the official `openai` package, and embeds with
its local embedding model.

Run by `crates/kai-cli/tests/local_models.rs` against the real `kai serve` with the default
local models installed.

    python3 tests/python/openai_local.py --base-url http://127.0.0.1:PORT/v1 --api-key kai_...
"""

from __future__ import annotations

import argparse
import math
import os
import sys

try:
    import openai
except ImportError as err:  # pragma: no cover - the message is the point
    sys.exit(
        f"cannot import openai ({err}); run the suite through scripts/test, which installs it, "
        "or `pip install -r tests/python/requirements.txt`"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", default=os.environ.get("OPENAI_BASE_URL"))
    parser.add_argument("--api-key", default=os.environ.get("OPENAI_API_KEY"))
    args = parser.parse_args()
    client = openai.OpenAI(base_url=args.base_url, api_key=args.api_key, max_retries=0)

    names = [model.id for model in client.models.list()]
    assert "local/smollm2" in names and "local/minilm" in names, names

    pieces = []
    finish = None
    with client.chat.completions.create(
        model="local/smollm2",
        # Without a system message SmolLM2's template adds its own, after which this 135M
        # model drifts into French.
        messages=[
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "What is the capital of France?"},
        ],
        temperature=0,
        max_tokens=40,
        stream=True,
        stream_options={"include_usage": True},
    ) as stream:
        usage = None
        for chunk in stream:
            if chunk.usage is not None:
                usage = chunk.usage
            for choice in chunk.choices:
                if choice.delta.content:
                    pieces.append(choice.delta.content)
                if choice.finish_reason:
                    finish = choice.finish_reason
    text = "".join(pieces)
    assert len(pieces) > 3, f"not streamed token by token: {pieces!r}"
    assert "Paris" in text, text
    assert finish in ("stop", "length"), finish
    assert usage is not None and usage.prompt_tokens > 0 and usage.completion_tokens > 0, usage
    print(f"ok  streamed from local/smollm2 in {len(pieces)} pieces: {text.strip()!r}")

    sentences = [
        "How do I reset my password?",
        "What are the steps to change my password?",
        "The tide comes in twice a day.",
    ]
    vectors = [item.embedding for item in client.embeddings.create(model="local/minilm", input=sentences).data]
    assert all(len(v) == 384 for v in vectors), [len(v) for v in vectors]
    cosine = lambda a, b: sum(x * y for x, y in zip(a, b))  # noqa: E731 - unit vectors
    assert all(abs(math.sqrt(cosine(v, v)) - 1) < 1e-3 for v in vectors)
    close, far = cosine(vectors[0], vectors[1]), cosine(vectors[0], vectors[2])
    assert close > far, (close, far)
    print(f"ok  local/minilm: paraphrases {close:.3f}, unrelated {far:.3f}")
    print("checks passed")


if __name__ == "__main__":
    main()
