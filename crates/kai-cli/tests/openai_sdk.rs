//! OpenAI's own Python SDK against the real `kai serve`: chat completions whole and streamed,
//! tool calls, structured output, embeddings, the model list and errors, each checked by
//! `tests/python/openai_sdk.py` as a program written for OpenAI would see them, and here by
//! what the upstream received.
//!
//! The upstream is a loopback server replaying OpenAI's wire format, its streams cut at
//! awkward places. The interpreter is `KAI_TEST_PYTHON` (default `python3`); `scripts/test`
//! points it at a virtualenv with the pinned `openai` package.

#![allow(clippy::unwrap_used)]

mod support;

use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use kai_providers::testing::{MockUpstream, Recorded, Reply, StreamEnd};
use serde_json::{Value, json};
use support::{Kai, Server};

const CHAT: &str = "/v1/chat/completions";
const EMBEDDINGS: &str = "/v1/embeddings";
const UPSTREAM_KEY: &str = "sk-upstream-for-the-sdk-test";
const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/python/openai_sdk.py"
);
const REQUIREMENTS: &str = "tests/python/requirements.txt";

/// The interpreter to run the script with, after checking that it has the `openai` package.
/// A missing package fails the test rather than skipping it: a skipped check is one nobody
/// sees fail.
fn python() -> String {
    let (python, named) = match std::env::var("KAI_TEST_PYTHON") {
        Ok(python) if !python.is_empty() => (python.clone(), format!("KAI_TEST_PYTHON={python}")),
        _ => (
            "python3".to_owned(),
            "python3 (KAI_TEST_PYTHON is not set)".to_owned(),
        ),
    };
    let how = format!(
        "run the suite through scripts/test, which installs it in a virtualenv and sets \
         KAI_TEST_PYTHON, or run `{python} -m pip install -r {REQUIREMENTS}` in the repository"
    );
    let probe = Command::new(&python)
        .args(["-c", "import openai"])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|err| panic!("cannot run {named}: {err}\n{how}"));
    assert!(
        probe.status.success(),
        "{named} cannot import the openai package: {}\n{how}",
        String::from_utf8_lossy(&probe.stderr).trim()
    );
    python
}

fn completion(message: Value, finish: &str, usage: (u64, u64)) -> Reply {
    Reply::json(
        200,
        json!({"id": "chatcmpl-up", "object": "chat.completion", "created": 1_700_000_000,
               "model": "model-chat-1", "system_fingerprint": "fp_up",
               "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
               "usage": {"prompt_tokens": usage.0, "completion_tokens": usage.1,
                         "total_tokens": usage.0 + usage.1}}),
    )
}

fn text(content: &str, usage: (u64, u64)) -> Reply {
    completion(
        json!({"role": "assistant", "content": content, "refusal": null}),
        "stop",
        usage,
    )
}

fn chunk(delta: Value, finish: Value) -> String {
    json!({"id": "chatcmpl-up", "object": "chat.completion.chunk", "created": 1_700_000_000,
           "model": "model-chat-1", "system_fingerprint": "fp_up",
           "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]})
    .to_string()
}

fn usage_chunk(prompt: u64, completion: u64) -> String {
    json!({"id": "chatcmpl-up", "object": "chat.completion.chunk", "created": 1_700_000_000,
           "model": "model-chat-1", "choices": [],
           "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                     "total_tokens": prompt + completion}})
    .to_string()
}

fn call_delta(index: u32, id: Option<&str>, arguments: &str) -> Value {
    let mut call = json!({"index": index, "function": {"arguments": arguments}});
    if let Some(id) = id {
        call["id"] = json!(id);
        call["type"] = json!("function");
        call["function"]["name"] = json!("get_weather");
    }
    json!({"tool_calls": [call]})
}

fn sse(data: &[String]) -> Reply {
    let data: Vec<&str> = data.iter().map(String::as_str).collect();
    Reply::sse(&data)
}

/// Queues the upstream's replies in the order the script's checks ask for them.
fn script_replies(upstream: &MockUpstream, down: &MockUpstream) {
    // plain chat completion
    upstream.push(CHAT, text("The capital of France is Paris.", (21, 7)));

    // streamed chat completion: cut every 5 bytes, through the "ö" and the emoji.
    let mut stream = vec![chunk(
        json!({"role": "assistant", "content": "", "refusal": null}),
        Value::Null,
    )];
    for piece in ["Hel", "lo, ", "wörld", "! 👋"] {
        stream.push(chunk(json!({"content": piece}), Value::Null));
    }
    stream.push(chunk(json!({}), json!("stop")));
    stream.push(usage_chunk(9, 6));
    stream.push("[DONE]".into());
    upstream.push(CHAT, sse(&stream).split(5));

    // tool call, then the answer to the tool's result
    upstream.push(
        CHAT,
        completion(
            json!({"role": "assistant", "content": null, "refusal": null,
                   "tool_calls": [{"id": "call_w3ath3r", "type": "function",
                                   "function": {"name": "get_weather",
                                                "arguments": "{\"city\": \"Paris\", \"unit\": \"celsius\"}"}}]}),
            "tool_calls",
            (60, 18),
        ),
    );
    upstream.push(CHAT, text("It is 18 °C in Paris.", (90, 9)));

    // streamed tool calls: two, their arguments in fragments, cut every 3 bytes
    let stream = vec![
        chunk(
            json!({"role": "assistant", "content": null, "tool_calls": call_delta(0, Some("call_l0nd0n"), "")["tool_calls"]}),
            Value::Null,
        ),
        chunk(call_delta(0, None, "{\"ci"), Value::Null),
        chunk(call_delta(0, None, "ty\": \"London\"}"), Value::Null),
        chunk(call_delta(1, Some("call_0sl0"), ""), Value::Null),
        chunk(call_delta(1, None, "{\"city\": \"Os"), Value::Null),
        chunk(call_delta(1, None, "lo\", \"unit\": \"cel"), Value::Null),
        chunk(call_delta(1, None, "sius\"}"), Value::Null),
        chunk(json!({}), json!("tool_calls")),
        usage_chunk(70, 30),
        "[DONE]".into(),
    ];
    upstream.push(CHAT, sse(&stream).split(3));

    // the SDK's streaming helper: text, then a strict tool's call
    let stream = vec![
        chunk(json!({"role": "assistant", "content": ""}), Value::Null),
        chunk(json!({"content": "Let me "}), Value::Null),
        chunk(json!({"content": "check."}), Value::Null),
        chunk(call_delta(0, Some("call_p4r1s"), ""), Value::Null),
        chunk(call_delta(0, None, "{\"city\":\"Par"), Value::Null),
        chunk(
            call_delta(0, None, "is\",\"unit\":\"celsius\"}"),
            Value::Null,
        ),
        chunk(json!({}), json!("tool_calls")),
        usage_chunk(48, 12),
        "[DONE]".into(),
    ];
    upstream.push(CHAT, sse(&stream).split(11));

    // structured output: a JSON schema, then a pydantic model through parse()
    upstream.push(
        CHAT,
        text("{\"city\": \"Paris\", \"population\": 2102650}", (30, 12)),
    );
    upstream.push(
        CHAT,
        text("{\"city\":\"Lyon\",\"population\":522250}", (30, 11)),
    );

    // a stream that breaks off after some text
    let stream = vec![
        chunk(json!({"role": "assistant", "content": ""}), Value::Null),
        chunk(json!({"content": "Once upon "}), Value::Null),
        chunk(json!({"content": "a time"}), Value::Null),
    ];
    upstream.push(CHAT, sse(&stream).then(StreamEnd::Reset));

    // embeddings: the SDK's default (base64 to kai), then floats
    upstream.push(
        EMBEDDINGS,
        Reply::json(
            200,
            json!({"object": "list", "model": "model-embed-1",
                   "data": [{"object": "embedding", "index": 0, "embedding": [0.5, -0.25, 0.125, 1.0]},
                            {"object": "embedding", "index": 1, "embedding": [-1.5, 0.0, 2.0, 0.75]}],
                   "usage": {"prompt_tokens": 2, "total_tokens": 2}}),
        ),
    );
    upstream.push(
        EMBEDDINGS,
        Reply::json(
            200,
            json!({"object": "list", "model": "model-embed-1",
                   "data": [{"object": "embedding", "index": 0, "embedding": [0.1, -0.2, 0.3]}],
                   "usage": {"prompt_tokens": 1, "total_tokens": 1}}),
        ),
    );

    // the model whose upstream keeps failing
    down.always(
        CHAT,
        Reply::json(
            500,
            json!({"error": {"message": "the GPU caught fire", "type": "server_error"}}),
        ),
    );
}

fn config(upstream: &MockUpstream, down: &MockUpstream) -> String {
    format!(
        r#"
[gateway]
retry_base_delay = "5ms"
retry_max_delay = "20ms"

[[providers]]
name = "mock"
kind = "openai-compatible"
base_url = "{upstream}"
api_key = "env:UPSTREAM_KEY"
stream_idle_timeout = "5s"

[[providers]]
name = "down"
kind = "openai-compatible"
base_url = "{down}"
api_key = "env:UPSTREAM_KEY"

[[models]]
name = "chat"
deployments = [{{ provider = "mock", model = "model-chat-1" }}]

[[models]]
name = "embed"
deployments = [{{ provider = "mock", model = "model-embed-1" }}]

[[models]]
name = "broken"
deployments = [{{ provider = "down", model = "model-broken" }}]
"#,
        upstream = upstream.url("/v1"),
        down = down.url("/v1"),
    )
}

/// Runs `command` to the end, killing it after `limit`.
fn run_with_limit(mut command: Command, limit: Duration) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        out.read_to_end(&mut buf).unwrap();
        buf
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        err.read_to_end(&mut buf).unwrap();
        buf
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

fn requests_to(upstream: &MockUpstream, path: &str) -> Vec<Recorded> {
    upstream
        .requests()
        .into_iter()
        .filter(|r| r.path == path)
        .collect()
}

#[tokio::test]
async fn openais_python_sdk_works_against_kai() {
    let python = python();
    let (upstream, down) = (MockUpstream::start().await, MockUpstream::start().await);
    script_replies(&upstream, &down);

    let kai = Kai::new().await;
    let config_path = kai.home.path().join("kai.toml");
    std::fs::write(&config_path, config(&upstream, &down)).unwrap();
    kai.create_admin("alice");
    let mut serve = kai.command(&["serve", "--bind", "127.0.0.1:0"]);
    serve
        .env("KAI_CONFIG", &config_path)
        .env("UPSTREAM_KEY", UPSTREAM_KEY);
    let server = Server::spawn(serve);
    let key = server.api_key("alice", &["read", "write"]).await;
    let read_only = server.api_key("alice", &["read"]).await;

    let mut script = Command::new(&python);
    script
        .arg(SCRIPT)
        .args(["--base-url", &format!("{}/v1", server.base)])
        .env("OPENAI_API_KEY", &key)
        .env("KAI_READ_ONLY_KEY", &read_only)
        .env("PYTHONUNBUFFERED", "1");
    // Nothing of the developer's OpenAI settings reaches the SDK, and loopback is never sent
    // through a proxy.
    for (name, _) in std::env::vars() {
        if (name.starts_with("OPENAI_") && name != "OPENAI_API_KEY")
            || name.to_ascii_lowercase().ends_with("_proxy")
        {
            script.env_remove(&name);
        }
    }
    let out = tokio::task::spawn_blocking(move || run_with_limit(script, Duration::from_secs(120)))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{python} {SCRIPT} failed ({}).\n--- stdout\n{stdout}\n--- stderr\n{}\n--- kai's log\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        server.log_text()
    );
    assert!(stdout.contains("checks passed"), "{stdout}");

    // What the upstream received.
    let chats = requests_to(&upstream, CHAT);
    assert_eq!(chats.len(), 9, "one upstream request per check, no retries");
    for sent in &chats {
        assert_eq!(sent.method, "POST");
        assert_eq!(
            sent.header("authorization"),
            Some(format!("Bearer {UPSTREAM_KEY}").as_str()),
            "the provider's key, never the client's"
        );
        assert_eq!(sent.json["model"], "model-chat-1", "{}", sent.json);
    }
    let [
        plain,
        streamed,
        tool,
        answer,
        streamed_tools,
        helper,
        schema,
        parsed,
        broken,
    ] = <[Recorded; 9]>::try_from(chats).unwrap();

    assert_eq!(
        plain.json["messages"],
        json!([{"role": "system", "content": "Answer in one sentence."},
               {"role": "user", "content": "What is the capital of France?"}])
    );
    assert_eq!(plain.json["temperature"], 0.2);
    // An OpenAI-compatible server takes the older name of the limit.
    assert_eq!(plain.json["max_tokens"], 50, "{}", plain.json);
    assert!(plain.json.get("stream").is_none_or(|s| s == false));
    assert!(plain.json.get("stream_options").is_none());

    assert_eq!(streamed.json["stream"], true);
    assert_eq!(
        streamed.json["stream_options"],
        json!({"include_usage": true})
    );

    assert_eq!(tool.json["tools"][0]["type"], "function");
    assert_eq!(tool.json["tools"][0]["function"]["name"], "get_weather");
    assert_eq!(
        tool.json["tools"][0]["function"]["parameters"]["required"],
        json!(["city"])
    );
    assert_eq!(
        tool.json["tool_choice"],
        json!({"type": "function", "function": {"name": "get_weather"}})
    );
    assert_eq!(tool.json["parallel_tool_calls"], false);

    // The tool call's round trip: the assistant's call as the upstream made it, then the result.
    let history = answer.json["messages"].as_array().unwrap();
    assert_eq!(history.len(), 3, "{}", answer.json);
    assert_eq!(history[1]["role"], "assistant");
    assert_eq!(
        history[1]["tool_calls"],
        json!([{"id": "call_w3ath3r", "type": "function",
                "function": {"name": "get_weather",
                             "arguments": "{\"city\": \"Paris\", \"unit\": \"celsius\"}"}}])
    );
    assert!(
        history[1].get("content").is_none_or(Value::is_null),
        "{}",
        history[1]
    );
    assert_eq!(
        history[2],
        json!({"role": "tool", "tool_call_id": "call_w3ath3r", "content": "{\"celsius\": 18}"})
    );

    // Usage is always asked for upstream, for accounting, even when the client did not.
    assert_eq!(streamed_tools.json["stream"], true);
    assert_eq!(
        streamed_tools.json["stream_options"],
        json!({"include_usage": true})
    );
    assert_eq!(streamed_tools.json["tool_choice"], "required");

    // A tool made from a pydantic model is strict, its schema closed.
    let function = &helper.json["tools"][0]["function"];
    assert_eq!(function["name"], "get_weather", "{function}");
    assert_eq!(function["strict"], true, "{function}");
    assert_eq!(
        function["parameters"]["additionalProperties"], false,
        "{function}"
    );
    assert_eq!(
        function["parameters"]["required"],
        json!(["city", "unit"]),
        "{function}"
    );

    assert_eq!(
        schema.json["response_format"],
        json!({"type": "json_schema",
               "json_schema": {"name": "city", "strict": true,
                               "schema": {"type": "object",
                                          "properties": {"city": {"type": "string"},
                                                         "population": {"type": "integer"}},
                                          "required": ["city", "population"],
                                          "additionalProperties": false}}})
    );
    let format = &parsed.json["response_format"];
    assert_eq!(format["type"], "json_schema", "{format}");
    assert_eq!(format["json_schema"]["name"], "City", "{format}");
    assert_eq!(format["json_schema"]["strict"], true, "{format}");
    assert_eq!(
        format["json_schema"]["schema"]["required"],
        json!(["city", "population"]),
        "{format}"
    );
    assert_eq!(broken.json["stream"], true);

    let embeds = requests_to(&upstream, EMBEDDINGS);
    assert_eq!(embeds.len(), 2);
    assert_eq!(embeds[0].json["model"], "model-embed-1");
    assert_eq!(embeds[0].json["input"], json!(["one", "two"]));
    // kai asks for floats whatever the client wants, and encodes them itself.
    assert_eq!(embeds[0].json["encoding_format"], "float");
    assert_eq!(embeds[1].json["input"], json!(["three"]));
    assert_eq!(embeds[1].json["encoding_format"], "float");

    // The failing model: the first try and its two retries.
    let failed = requests_to(&down, CHAT);
    assert_eq!(failed.len(), 3);
    assert!(failed.iter().all(|r| r.json["model"] == "model-broken"));

    let (status, log) = server.terminate();
    assert!(status.success(), "{status}: {log}");
}
