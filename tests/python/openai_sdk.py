#!/usr/bin/env python3
"""Drives kai's OpenAI-compatible API (`/v1`) with the official `openai` package.

Run by `crates/kai-cli/tests/openai_sdk.rs`, which starts the real `kai serve` in front of a
loopback upstream that replays OpenAI's wire format. That test queues the upstream's replies
in the order the checks below make their requests, and knows the values they expect: change
one side, change the other.

    python3 tests/python/openai_sdk.py --base-url http://127.0.0.1:PORT/v1 --api-key kai_...

The base URL and keys may also come from OPENAI_BASE_URL, OPENAI_API_KEY and
KAI_READ_ONLY_KEY. Each check prints one line; the first failure stops the run (later
checks would get replies queued for earlier ones) and exits non-zero with a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from typing import Literal

try:
    import openai
except ImportError as err:  # pragma: no cover - the message is the point
    sys.exit(
        f"cannot import openai ({err}); run the suite through scripts/test, which installs it, "
        "or `pip install -r tests/python/requirements.txt`"
    )

import pydantic

# Models kai serves in the test's configuration: `chat` and `embed` answer, `broken` is a
# deployment whose upstream fails every request.
CHAT = "chat"
EMBED = "embed"
BROKEN = "broken"
BROKEN_DEPLOYMENT = "down/model-broken"

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}

CITY_SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "population": {"type": "integer"},
    },
    "required": ["city", "population"],
    "additionalProperties": False,
}


class GetWeather(pydantic.BaseModel):
    """The current weather in a city: a strict tool, its arguments parsed by the SDK."""

    city: str
    unit: Literal["celsius", "fahrenheit"]


class City(pydantic.BaseModel):
    """What `parse()` turns the structured answer into."""

    city: str
    population: int


CHECKS = []


def check(fn):
    CHECKS.append(fn)
    return fn


def expect_error(cls, call, what):
    """Runs `call`, which must raise `cls`; returns the exception."""
    try:
        result = call()
    except cls as err:
        return err
    except Exception as err:  # noqa: BLE001 - the wrong class is the failure reported
        raise AssertionError(
            f"{what}: expected {cls.__name__}, got {type(err).__name__}: {err}"
        ) from err
    raise AssertionError(f"{what}: expected {cls.__name__}, got a result: {result!r}")


# ---------------------------------------------------------------- chat completions


@check
def plain_chat_completion(client, _):
    raw = client.chat.completions.with_raw_response.create(
        model=CHAT,
        messages=[
            {"role": "system", "content": "Answer in one sentence."},
            {"role": "user", "content": "What is the capital of France?"},
        ],
        temperature=0.2,
        max_completion_tokens=50,
    )
    assert raw.headers.get("x-kai-model") == CHAT, f"x-kai-model: {raw.headers!r}"
    assert raw.headers.get("x-kai-provider") == "mock", f"x-kai-provider: {raw.headers!r}"
    assert raw.headers.get("x-request-id"), f"no x-request-id: {raw.headers!r}"
    completion = raw.parse()
    assert isinstance(completion, openai.types.chat.ChatCompletion), type(completion)
    assert completion.object == "chat.completion", completion.object
    assert completion.id.startswith("chatcmpl-"), completion.id
    assert completion.model == CHAT, f"model: {completion.model!r} (the client's name for it)"
    assert len(completion.choices) == 1, completion.choices
    choice = completion.choices[0]
    assert choice.index == 0, choice.index
    assert choice.message.role == "assistant", choice.message
    assert choice.message.content == "The capital of France is Paris.", choice.message.content
    assert choice.message.tool_calls is None, choice.message.tool_calls
    assert choice.finish_reason == "stop", choice.finish_reason
    usage = completion.usage
    assert usage is not None, "no usage"
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (21, 7, 28), usage


@check
def streamed_chat_completion(client, _):
    stream = client.chat.completions.create(
        model=CHAT,
        messages=[{"role": "user", "content": "Say hello to the world."}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks, "no chunks"
    for chunk in chunks:
        assert isinstance(chunk, openai.types.chat.ChatCompletionChunk), type(chunk)
        assert chunk.object == "chat.completion.chunk", chunk.object
        assert chunk.model == CHAT, chunk.model
        assert chunk.id == chunks[0].id, f"ids differ: {chunk.id} vs {chunks[0].id}"
    with_choices = [c for c in chunks if c.choices]
    assert with_choices[0].choices[0].delta.role == "assistant", with_choices[0]
    text = "".join(c.choices[0].delta.content or "" for c in with_choices)
    assert text == "Hello, wörld! 👋", f"reassembled text: {text!r}"
    finishes = [c.choices[0].finish_reason for c in with_choices if c.choices[0].finish_reason]
    assert finishes == ["stop"], f"finish reasons: {finishes}"
    last = chunks[-1]
    assert last.choices == [], f"the usage chunk has choices: {last}"
    assert last.usage is not None, f"no usage in the last chunk: {last}"
    assert (last.usage.prompt_tokens, last.usage.completion_tokens, last.usage.total_tokens) == (
        9,
        6,
        15,
    ), last.usage
    assert all(c.usage is None for c in chunks[:-1]), "usage before the last chunk"


@check
def tool_call_and_its_answer(client, _):
    messages = [{"role": "user", "content": "What's the weather in Paris?"}]
    first = client.chat.completions.create(
        model=CHAT,
        messages=messages,
        tools=[WEATHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        parallel_tool_calls=False,
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls", choice.finish_reason
    message = choice.message
    assert message.content in (None, ""), f"content next to a tool call: {message.content!r}"
    assert message.tool_calls and len(message.tool_calls) == 1, message.tool_calls
    call = message.tool_calls[0]
    assert call.type == "function", call.type
    assert call.id == "call_w3ath3r", call.id
    assert call.function.name == "get_weather", call.function.name
    arguments = json.loads(call.function.arguments)
    assert arguments == {"city": "Paris", "unit": "celsius"}, arguments

    # The usual loop: the assistant's message goes back as the SDK returned it, then the
    # tool's answer.
    messages.append(message)
    messages.append(
        {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"celsius": 18})}
    )
    second = client.chat.completions.create(model=CHAT, messages=messages, tools=[WEATHER_TOOL])
    assert second.choices[0].message.content == "It is 18 °C in Paris.", second.choices[0].message
    assert second.choices[0].finish_reason == "stop", second.choices[0].finish_reason


@check
def streamed_tool_calls(client, _):
    stream = client.chat.completions.create(
        model=CHAT,
        messages=[{"role": "user", "content": "Weather in London and Oslo?"}],
        tools=[WEATHER_TOOL],
        tool_choice="required",
        stream=True,
    )
    calls = {}
    finish = []
    for chunk in stream:
        assert chunk.usage is None, f"usage without include_usage: {chunk}"
        for choice in chunk.choices:
            if choice.finish_reason:
                finish.append(choice.finish_reason)
            for delta in choice.delta.tool_calls or []:
                call = calls.setdefault(delta.index, {"id": None, "name": None, "arguments": ""})
                if delta.id:
                    assert call["id"] is None, f"a second id for call {delta.index}: {delta}"
                    call["id"] = delta.id
                if delta.function and delta.function.name:
                    call["name"] = delta.function.name
                if delta.function and delta.function.arguments:
                    call["arguments"] += delta.function.arguments
    assert finish == ["tool_calls"], f"finish reasons: {finish}"
    assert sorted(calls) == [0, 1], f"call indexes: {sorted(calls)}"
    assert calls[0]["id"] == "call_l0nd0n" and calls[1]["id"] == "call_0sl0", calls
    assert calls[0]["name"] == calls[1]["name"] == "get_weather", calls
    assert json.loads(calls[0]["arguments"]) == {"city": "London"}, calls[0]["arguments"]
    assert json.loads(calls[1]["arguments"]) == {"city": "Oslo", "unit": "celsius"}, calls[1][
        "arguments"
    ]


@check
def the_streaming_helper_accumulates_text_and_a_strict_tool_call(client, _):
    # `.stream()` feeds every chunk to the SDK's accumulator, which is stricter than iterating
    # over chunks: it rebuilds the whole completion and parses a strict tool's arguments.
    events = []
    with client.chat.completions.stream(
        model=CHAT,
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[openai.pydantic_function_tool(GetWeather, name="get_weather")],
        stream_options={"include_usage": True},
    ) as stream:
        for event in stream:
            events.append(event)
        final = stream.get_final_completion()
    kinds = {event.type for event in events}
    for kind in ("chunk", "content.delta", "content.done", "tool_calls.function.arguments.delta",
                 "tool_calls.function.arguments.done"):
        assert kind in kinds, f"no {kind} event among {sorted(kinds)}"
    done = next(e for e in events if e.type == "tool_calls.function.arguments.done")
    assert done.name == "get_weather", done
    assert done.parsed_arguments == GetWeather(city="Paris", unit="celsius"), done
    message = final.choices[0].message
    assert message.content == "Let me check.", f"content: {message.content!r}"
    assert final.choices[0].finish_reason == "tool_calls", final.choices[0].finish_reason
    assert len(message.tool_calls) == 1, message.tool_calls
    call = message.tool_calls[0]
    assert call.id == "call_p4r1s", call.id
    assert call.function.parsed_arguments == GetWeather(city="Paris", unit="celsius"), call
    assert final.usage is not None and final.usage.total_tokens == 60, final.usage


@check
def structured_output_with_a_json_schema(client, _):
    completion = client.chat.completions.create(
        model=CHAT,
        messages=[{"role": "user", "content": "Paris, as JSON."}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "city", "schema": CITY_SCHEMA, "strict": True},
        },
    )
    content = completion.choices[0].message.content
    assert json.loads(content) == {"city": "Paris", "population": 2102650}, content


@check
def structured_output_parsed_into_a_pydantic_model(client, _):
    # `parse()` writes the schema from the model itself (strict, every field required) and
    # reads the answer back into it.
    completion = client.chat.completions.parse(
        model=CHAT,
        messages=[{"role": "user", "content": "Lyon, as JSON."}],
        response_format=City,
    )
    parsed = completion.choices[0].message.parsed
    assert parsed == City(city="Lyon", population=522250), parsed


@check
def a_stream_that_breaks_off_raises(client, _):
    stream = client.chat.completions.create(
        model=CHAT,
        messages=[{"role": "user", "content": "Tell me a long story."}],
        stream=True,
    )
    received = []

    def read_all():
        for chunk in stream:
            for choice in chunk.choices:
                received.append(choice.delta.content or "")

    err = expect_error(openai.APIError, read_all, "a stream cut short upstream")
    assert not isinstance(err, openai.APIStatusError), f"a status error mid-stream: {err!r}"
    assert "Once upon" in "".join(received), f"the text before the break: {received!r}"
    assert "broke off" in err.message, err.message
    assert "mock/" in err.message, f"the provider is not named: {err.message}"
    assert err.type == "upstream_error", f"type: {err.type!r} ({err.body!r})"
    assert err.code, f"no code: {err.body!r}"


# ---------------------------------------------------------------- embeddings


@check
def embeddings_in_the_sdks_default_encoding(client, _):
    # Without encoding_format the SDK asks for base64 and decodes it into floats.
    result = client.embeddings.create(model=EMBED, input=["one", "two"])
    assert result.object == "list", result.object
    assert result.model == EMBED, result.model
    assert [e.index for e in result.data] == [0, 1], result.data
    vectors = [e.embedding for e in result.data]
    assert vectors == [[0.5, -0.25, 0.125, 1.0], [-1.5, 0.0, 2.0, 0.75]], vectors
    assert (result.usage.prompt_tokens, result.usage.total_tokens) == (2, 2), result.usage


@check
def embeddings_as_floats(client, _):
    result = client.embeddings.create(model=EMBED, input="three", encoding_format="float")
    assert len(result.data) == 1, result.data
    # 32-bit floats written as JSON: the shortest text that reads back as the same float,
    # so 0.1 comes back as 0.1, not 0.10000000149011612.
    assert result.data[0].embedding == [0.1, -0.2, 0.3], result.data[0].embedding
    assert result.usage.prompt_tokens == 1, result.usage


# ---------------------------------------------------------------- models


@check
def the_model_list(client, _):
    models = list(client.models.list())
    assert [m.id for m in models] == [CHAT, EMBED, BROKEN], models
    for model in models:
        assert model.object == "model", model
        assert model.owned_by == "kai", model
        assert isinstance(model.created, int) and model.created > 0, model


# ---------------------------------------------------------------- errors


@check
def an_unknown_model_is_not_found(client, _):
    hi = [{"role": "user", "content": "Hi"}]
    err = expect_error(
        openai.NotFoundError,
        lambda: client.chat.completions.create(model="no-such-model", messages=hi),
        "an unknown chat model",
    )
    assert err.status_code == 404, err.status_code
    assert err.code == "model_not_found", f"code: {err.code!r}"
    assert err.type == "not_found_error", f"type: {err.type!r}"
    assert err.request_id, "no request id"
    assert CHAT in err.body["message"], err.body
    # The status arrives before any stream does, so create() raises it too.
    expect_error(
        openai.NotFoundError,
        lambda: client.chat.completions.create(model="no-such-model", messages=hi, stream=True),
        "an unknown model, streamed",
    )
    expect_error(
        openai.NotFoundError,
        lambda: client.embeddings.create(model="no-such-model", input="x"),
        "an unknown embedding model",
    )


@check
def a_bad_key_is_an_authentication_error(client, args):
    # A client of its own, and the POST last: kai answers a bad key before reading the
    # request's body and then drops the connection without saying so (no `Connection:
    # close`), so a request reusing that connection could fail with "Server disconnected".
    with openai.OpenAI(base_url=args.base_url, api_key="kai_not-a-real-key", max_retries=0) as bad:
        expect_error(openai.AuthenticationError, lambda: list(bad.models.list()), "a bad key, models")
        err = expect_error(
            openai.AuthenticationError,
            lambda: bad.chat.completions.create(
                model=CHAT, messages=[{"role": "user", "content": "Hi"}]
            ),
            "a bad API key",
        )
    assert err.status_code == 401, err.status_code
    assert err.code == "invalid_api_key", f"code: {err.code!r}"
    assert err.type == "authentication_error", f"type: {err.type!r}"


@check
def a_read_only_key_may_not_generate(client, args):
    if not args.read_only_key:
        return "skipped: no read-only key given"
    reader = client.with_options(api_key=args.read_only_key)
    err = expect_error(
        openai.PermissionDeniedError,
        lambda: reader.embeddings.create(model=EMBED, input="x"),
        "a read-only key asking for embeddings",
    )
    assert err.status_code == 403, err.status_code
    assert [m.id for m in reader.models.list()] == [CHAT, EMBED, BROKEN]


@check
def a_bad_parameter_names_itself(client, _):
    err = expect_error(
        openai.BadRequestError,
        lambda: client.chat.completions.create(
            model=CHAT, messages=[{"role": "user", "content": "Hi"}], temperature=7
        ),
        "temperature 7",
    )
    assert err.param == "temperature", f"param: {err.param!r}"
    assert err.type == "invalid_request_error", f"type: {err.type!r}"


@check
def a_failing_upstream_is_a_server_error_naming_the_deployment(client, _):
    err = expect_error(
        openai.InternalServerError,
        lambda: client.chat.completions.create(
            model=BROKEN, messages=[{"role": "user", "content": "Hi"}]
        ),
        "a model whose upstream keeps failing",
    )
    assert isinstance(err, openai.APIStatusError)
    assert err.status_code == 502, err.status_code
    assert err.code == "upstream_failed", f"code: {err.code!r}"
    assert BROKEN_DEPLOYMENT in err.body["message"], err.body
    assert "HTTP 500" in err.body["message"], err.body


# ---------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", default=os.environ.get("OPENAI_BASE_URL"))
    parser.add_argument("--api-key", default=os.environ.get("OPENAI_API_KEY"))
    parser.add_argument("--read-only-key", default=os.environ.get("KAI_READ_ONLY_KEY"))
    args = parser.parse_args()
    if not args.base_url or not args.api_key:
        parser.error("--base-url and --api-key (or OPENAI_BASE_URL and OPENAI_API_KEY) are required")

    print(f"openai {openai.__version__} on Python {sys.version.split()[0]}, against {args.base_url}")
    # No retries: the failing cases should fail at once, and a retry of a good one would take
    # a reply queued for the next check.
    client = openai.OpenAI(base_url=args.base_url, api_key=args.api_key, max_retries=0, timeout=30)
    for fn in CHECKS:
        name = fn.__name__.replace("_", " ")
        try:
            note = fn(client, args)
        except Exception:  # noqa: BLE001 - report any failure with its traceback
            print(f"FAIL  {name}", flush=True)
            traceback.print_exc()
            return 1
        print(f"ok    {name}{f' ({note})' if note else ''}", flush=True)
    print(f"all {len(CHECKS)} checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
