//! The Ollama adapter against a loopback server replaying Ollama's native wire format
//! (`api/chat`, `api/embed`, `api/tags`): what kai sends upstream, and what it makes of every
//! answer, whole, streamed, broken or refused.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use kai_config::ProviderKind;
use kai_models::chat::{
    ChatEvent, ChatRequest, EmbedRequest, FinishReason, ImageSource, Message, Part,
    ResponseBuilder, ResponseFormat, Role, ToolCall, ToolChoice, ToolDefinition, Usage,
};
use kai_models::{ErrorKind, Provider, ProviderError};
use kai_providers::ProviderSpec;
use kai_providers::testing::{MockUpstream, Reply, StreamEnd};
use serde_json::{Value, json};

const KEY: &str = "ollama-key-0123456789";
const CHAT: &str = "/api/chat";

/// A spec for the mock at `base` (a path under it), with or without a key.
fn spec(upstream: &MockUpstream, base: &str, key: Option<&str>) -> ProviderSpec {
    ProviderSpec {
        name: "local".into(),
        kind: ProviderKind::Ollama,
        base_url: upstream.url(base).parse().unwrap(),
        api_key: key.map(|key| kai_config::Secret::new(key.into())),
        connect_timeout: Duration::from_secs(2),
        timeout: Duration::from_secs(2),
        stream_idle_timeout: Duration::from_millis(400),
        headers: Default::default(),
        proxies: Default::default(),
    }
}

/// A local Ollama: the server's root as base, no key.
async fn provider() -> (MockUpstream, Arc<dyn Provider>) {
    let upstream = MockUpstream::start().await;
    let provider = kai_providers::connect(&spec(&upstream, "", None)).unwrap();
    (upstream, provider)
}

fn message(role: Role, content: Vec<Part>) -> Message {
    Message {
        role,
        content,
        tool_calls: vec![],
        tool_call_id: None,
        name: None,
        refusal: None,
    }
}

fn text(text: &str) -> Part {
    Part::Text { text: text.into() }
}

fn tool_answer(call_id: &str, answer: &str) -> Message {
    Message {
        tool_call_id: Some(call_id.into()),
        ..message(Role::Tool, vec![text(answer)])
    }
}

fn weather_tool() -> ToolDefinition {
    ToolDefinition {
        name: "get_weather".into(),
        description: Some("The weather in a city".into()),
        parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
        strict: Some(true),
    }
}

fn time_tool() -> ToolDefinition {
    ToolDefinition {
        name: "get_time".into(),
        description: None,
        parameters: json!({"type": "object", "properties": {}}),
        strict: None,
    }
}

fn hi() -> ChatRequest {
    ChatRequest::new("llama3.2", vec![Message::text(Role::User, "Hi")])
}

/// A conversation with everything Ollama can carry: instructions in both roles, an image, a
/// tool-call round trip, tools, structured output and every sampling parameter.
fn rich_request() -> ChatRequest {
    let mut request = ChatRequest::new(
        "llama3.2-vision",
        vec![
            Message::text(Role::System, "You are kai."),
            Message::text(Role::Developer, "Be brief."),
            message(
                Role::User,
                vec![
                    text("What is in this picture? "),
                    Part::Image {
                        source: ImageSource::Base64 {
                            media_type: "image/png".into(),
                            data: "iVBORw0KGgo=".into(),
                        },
                        detail: Some("low".into()),
                    },
                    text("And the weather?"),
                ],
            ),
            Message {
                tool_calls: vec![ToolCall {
                    id: "call_0".into(),
                    name: "get_weather".into(),
                    arguments: "{\"city\":\"Paris\"}".into(),
                }],
                ..message(Role::Assistant, vec![text("Let me look.")])
            },
            tool_answer("call_0", "18°C, sun"),
        ],
    );
    request.tools = vec![weather_tool(), time_tool()];
    request.tool_choice = Some(ToolChoice::Auto);
    request.parallel_tool_calls = Some(false);
    request.response_format = Some(ResponseFormat::JsonSchema {
        name: "answer".into(),
        description: Some("The answer".into()),
        schema: json!({"type": "object", "properties": {"a": {"type": "string"}}}),
        strict: Some(true),
    });
    request.sampling.temperature = Some(0.5);
    request.sampling.top_p = Some(0.875);
    request.sampling.top_k = Some(40);
    request.sampling.max_tokens = Some(64);
    request.sampling.stop = vec!["\n\n".into(), "END".into()];
    request.sampling.seed = Some(7);
    request.sampling.presence_penalty = Some(0.25);
    request.sampling.frequency_penalty = Some(-0.5);
    request.user = Some("u-1".into());
    request.extra.insert("logprobs".into(), json!(false));
    request
}

/// A whole (non-streamed) answer as Ollama sends it.
fn answer(content: &str, tool_calls: Option<Value>, done_reason: &str) -> Value {
    let mut message = json!({"role": "assistant", "content": content});
    if let Some(calls) = tool_calls {
        message["tool_calls"] = calls;
    }
    json!({
        "model": "llama3.2",
        "created_at": "2025-05-27T22:54:57.641643Z",
        "message": message,
        "done": true,
        "done_reason": done_reason,
        "total_duration": 2_347_998_750_u64,
        "load_duration": 19_605_625,
        "prompt_eval_count": 26,
        "prompt_eval_duration": 321_024_542,
        "eval_count": 9,
        "eval_duration": 2_005_950_875_u64
    })
}

#[tokio::test]
async fn a_chat_sends_ollamas_format_and_reads_the_answer() {
    let (upstream, provider) = provider().await;
    upstream.push(
        CHAT,
        Reply::json(200, answer("A cat. Sunny.", None, "stop")),
    );
    let response = provider.chat(&rich_request()).await.unwrap();
    assert_eq!(response.message.role, Role::Assistant);
    assert_eq!(response.message.joined_text(), "A cat. Sunny.");
    assert!(response.message.tool_calls.is_empty());
    assert_eq!(response.finish_reason, FinishReason::Stop);
    assert_eq!(
        response.usage,
        Some(Usage {
            input_tokens: 26,
            output_tokens: 9
        })
    );

    let sent = upstream.last_request();
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.path, "/api/chat");
    assert_eq!(sent.header("authorization"), None, "no key, no header");
    assert_eq!(sent.header("content-type"), Some("application/json"));
    // The end user, parallel_tool_calls, strictness, the schema's name and extra fields have
    // no place on Ollama's wire.
    assert_eq!(
        sent.json,
        json!({
            "model": "llama3.2-vision",
            "messages": [
                {"role": "system", "content": "You are kai."},
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "What is in this picture? And the weather?",
                 "images": ["iVBORw0KGgo="]},
                {"role": "assistant", "content": "Let me look.",
                 "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
                {"role": "tool", "content": "18°C, sun", "tool_name": "get_weather"}
            ],
            "tools": [
                {"type": "function", "function": {
                    "name": "get_weather", "description": "The weather in a city",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
                }},
                {"type": "function", "function": {
                    "name": "get_time", "parameters": {"type": "object", "properties": {}}
                }}
            ],
            "format": {"type": "object", "properties": {"a": {"type": "string"}}},
            "options": {
                "temperature": 0.5,
                "top_p": 0.875,
                "top_k": 40,
                "num_predict": 64,
                "stop": ["\n\n", "END"],
                "seed": 7,
                "presence_penalty": 0.25,
                "frequency_penalty": -0.5
            },
            "stream": false
        })
    );
}

#[tokio::test]
async fn a_plain_request_sends_no_options_and_json_mode_is_json() {
    let (upstream, provider) = provider().await;
    upstream.push(CHAT, Reply::json(200, answer("Hello!", None, "stop")));
    provider.chat(&hi()).await.unwrap();
    // Ollama streams unless told otherwise: `stream` goes even when nothing else does.
    assert_eq!(
        upstream.last_request().json,
        json!({"model": "llama3.2", "messages": [{"role": "user", "content": "Hi"}], "stream": false})
    );

    upstream.push(CHAT, Reply::json(200, answer("{}", None, "stop")));
    let mut request = hi();
    request.response_format = Some(ResponseFormat::JsonObject);
    provider.chat(&request).await.unwrap();
    assert_eq!(upstream.last_request().json["format"], "json");

    upstream.push(CHAT, Reply::json(200, answer("Hi", None, "stop")));
    request.response_format = Some(ResponseFormat::Text);
    provider.chat(&request).await.unwrap();
    assert!(upstream.last_request().json.get("format").is_none());
}

#[tokio::test]
async fn a_key_goes_as_bearer_under_any_base_path() {
    let upstream = MockUpstream::start().await;
    let provider = kai_providers::connect(&spec(&upstream, "/ollama", Some(KEY))).unwrap();
    upstream.push(
        "/ollama/api/chat",
        Reply::json(200, answer("Hi", None, "stop")),
    );
    provider.chat(&hi()).await.unwrap();
    let sent = upstream.last_request();
    assert_eq!(sent.path, "/ollama/api/chat");
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );

    // An empty key is no key: no header a proxy would refuse.
    let provider = kai_providers::connect(&spec(&upstream, "/ollama", Some(""))).unwrap();
    upstream.push(
        "/ollama/api/chat",
        Reply::json(200, answer("Hi", None, "stop")),
    );
    provider.chat(&hi()).await.unwrap();
    assert_eq!(upstream.last_request().header("authorization"), None);
}

#[tokio::test]
async fn tool_calls_come_back_with_ids_and_go_back_with_tool_names() {
    let (upstream, provider) = provider().await;
    upstream.push(
        CHAT,
        Reply::json(
            200,
            answer(
                "",
                Some(json!([
                    {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
                    {"function": {"name": "get_time", "arguments": {}}}
                ])),
                "stop",
            ),
        ),
    );
    let mut request = ChatRequest::new("llama3.2", vec![Message::text(Role::User, "Weather?")]);
    request.tools = vec![weather_tool(), time_tool()];
    let response = provider.chat(&request).await.unwrap();
    // Ollama says `stop` after tool calls; kai says what happened.
    assert_eq!(response.finish_reason, FinishReason::ToolCalls);
    assert!(response.message.content.is_empty(), "{response:?}");
    assert_eq!(
        response.message.tool_calls,
        vec![
            ToolCall {
                id: "call_0".into(),
                name: "get_weather".into(),
                arguments: "{\"city\":\"Paris\"}".into()
            },
            ToolCall {
                id: "call_1".into(),
                name: "get_time".into(),
                arguments: "{}".into()
            },
        ]
    );

    // The answers go back naming their tools, and the calls with their arguments as objects.
    upstream.push(
        CHAT,
        Reply::json(200, answer("Sunny at noon.", None, "stop")),
    );
    request.messages.push(response.message.clone());
    request.messages.push(tool_answer("call_1", "12:00"));
    request.messages.push(tool_answer("call_0", "18°C, sun"));
    let response = provider.chat(&request).await.unwrap();
    assert_eq!(response.finish_reason, FinishReason::Stop);
    let sent = upstream.last_request().json;
    assert_eq!(
        sent["messages"][1],
        json!({"role": "assistant", "content": "", "tool_calls": [
            {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
            {"function": {"name": "get_time", "arguments": {}}}
        ]})
    );
    assert_eq!(
        sent["messages"][2],
        json!({"role": "tool", "content": "12:00", "tool_name": "get_time"})
    );
    assert_eq!(
        sent["messages"][3],
        json!({"role": "tool", "content": "18°C, sun", "tool_name": "get_weather"})
    );
}

#[tokio::test]
async fn ids_that_repeat_across_turns_name_the_latest_call() {
    let (upstream, provider) = provider().await;
    upstream.push(CHAT, Reply::json(200, answer("Done.", None, "stop")));
    // Every answer numbers its calls from `call_0`: each tool answer belongs to the call just
    // before it.
    let call = |name: &str| ToolCall {
        id: "call_0".into(),
        name: name.into(),
        arguments: "{}".into(),
    };
    let mut request = hi();
    request.messages.extend([
        Message {
            tool_calls: vec![call("get_time")],
            ..message(Role::Assistant, vec![])
        },
        tool_answer("call_0", "12:00"),
        Message {
            tool_calls: vec![call("get_weather")],
            ..message(Role::Assistant, vec![])
        },
        tool_answer("call_0", "sun"),
    ]);
    provider.chat(&request).await.unwrap();
    let sent = upstream.last_request().json;
    assert_eq!(sent["messages"][2]["tool_name"], "get_time");
    assert_eq!(sent["messages"][4]["tool_name"], "get_weather");
}

#[tokio::test]
async fn tool_call_ids_from_newer_servers_are_kept() {
    let (upstream, provider) = provider().await;
    upstream.push(
        CHAT,
        Reply::json(
            200,
            answer(
                "",
                Some(json!([
                    {"id": "call_x7", "function": {"index": 0, "name": "get_weather", "arguments": {"city": "Oslo"}}}
                ])),
                "stop",
            ),
        ),
    );
    let response = provider.chat(&hi()).await.unwrap();
    assert_eq!(response.message.tool_calls[0].id, "call_x7");
}

#[tokio::test]
async fn an_unknown_tool_answer_goes_unnamed_or_by_its_participant_name() {
    let (upstream, provider) = provider().await;
    upstream.push(CHAT, Reply::json(200, answer("ok", None, "stop")));
    upstream.push(CHAT, Reply::json(200, answer("ok", None, "stop")));
    let mut request = hi();
    request.messages.push(tool_answer("call_9", "orphan"));
    provider.chat(&request).await.unwrap();
    assert_eq!(
        upstream.last_request().json["messages"][1],
        json!({"role": "tool", "content": "orphan"})
    );
    request.messages[1].name = Some("get_time".into());
    provider.chat(&request).await.unwrap();
    assert_eq!(
        upstream.last_request().json["messages"][1]["tool_name"],
        "get_time"
    );
}

#[tokio::test]
async fn tool_choice_decides_which_tools_are_offered() {
    let (upstream, provider) = provider().await;
    upstream.always(CHAT, Reply::json(200, answer("ok", None, "stop")));
    let mut request = hi();
    request.tools = vec![weather_tool(), time_tool()];
    let offered = |sent: &Value| -> Vec<String> {
        sent.get("tools")
            .map(|tools| {
                tools
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|tool| tool["function"]["name"].as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };

    request.tool_choice = Some(ToolChoice::None);
    provider.chat(&request).await.unwrap();
    let sent = upstream.last_request().json;
    assert!(sent.get("tools").is_none(), "{sent}");

    request.tool_choice = Some(ToolChoice::Tool("get_time".into()));
    provider.chat(&request).await.unwrap();
    assert_eq!(offered(&upstream.last_request().json), ["get_time"]);

    // Ollama cannot be made to call a tool: every tool is offered, as for `auto`.
    for choice in [Some(ToolChoice::Required), Some(ToolChoice::Auto), None] {
        request.tool_choice = choice;
        provider.chat(&request).await.unwrap();
        assert_eq!(
            offered(&upstream.last_request().json),
            ["get_weather", "get_time"]
        );
    }

    // Choosing a tool the request does not define is refused before anything is sent.
    upstream.clear_requests();
    request.tool_choice = Some(ToolChoice::Tool("get_news".into()));
    let err = provider.chat(&request).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadRequest);
    assert!(err.message.contains("get_news"), "{err}");
    assert!(upstream.requests().is_empty());
}

#[tokio::test]
async fn done_reasons_map_to_finish_reasons() {
    let (upstream, provider) = provider().await;
    for (reason, expected) in [
        ("stop", FinishReason::Stop),
        ("length", FinishReason::Length),
        ("load", FinishReason::Other("load".into())),
    ] {
        upstream.push(CHAT, Reply::json(200, answer("Once upon", None, reason)));
        let response = provider.chat(&hi()).await.unwrap();
        assert_eq!(response.finish_reason, expected, "{reason}");
    }

    // Counts of zero are left out by Ollama; with neither, there is no usage to report.
    let mut bare = answer("cached", None, "stop");
    bare.as_object_mut().unwrap().remove("prompt_eval_count");
    upstream.push(CHAT, Reply::json(200, bare.clone()));
    let response = provider.chat(&hi()).await.unwrap();
    assert_eq!(
        response.usage,
        Some(Usage {
            input_tokens: 0,
            output_tokens: 9
        })
    );
    bare.as_object_mut().unwrap().remove("eval_count");
    upstream.push(CHAT, Reply::json(200, bare));
    assert_eq!(provider.chat(&hi()).await.unwrap().usage, None);
}

#[tokio::test]
async fn requests_ollama_cannot_carry_are_refused_before_sending() {
    let (upstream, provider) = provider().await;

    // An image by URL: Ollama takes only inline data.
    let request = ChatRequest::new(
        "llava",
        vec![message(
            Role::User,
            vec![
                text("What is this?"),
                Part::Image {
                    source: ImageSource::Url {
                        url: "https://example.com/cat.png".into(),
                    },
                    detail: None,
                },
            ],
        )],
    );
    let err = provider.chat(&request).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unsupported);
    assert!(err.message.contains("data:"), "{err}");
    assert!(err.message.contains("messages[0]"), "{err}");
    let err = provider.chat_stream(&request).await.err().unwrap();
    assert_eq!(err.kind, ErrorKind::Unsupported);

    // Tool-call arguments that are not a JSON object.
    for arguments in ["{\"city\": \"Par", "[1, 2]"] {
        let mut request = hi();
        request.messages.push(Message {
            tool_calls: vec![ToolCall {
                id: "call_0".into(),
                name: "get_weather".into(),
                arguments: arguments.into(),
            }],
            ..message(Role::Assistant, vec![])
        });
        let err = provider.chat(&request).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::BadRequest, "{arguments}");
        assert!(err.message.contains("messages[1]"), "{err}");
        assert!(err.message.contains("get_weather"), "{err}");
        assert!(err.message.contains("JSON object"), "{err}");
    }
    assert!(upstream.requests().is_empty());

    // No arguments at all is an empty object.
    upstream.push(CHAT, Reply::json(200, answer("ok", None, "stop")));
    let mut request = hi();
    request.messages.push(Message {
        tool_calls: vec![ToolCall {
            id: "call_0".into(),
            name: "get_time".into(),
            arguments: String::new(),
        }],
        ..message(Role::Assistant, vec![])
    });
    provider.chat(&request).await.unwrap();
    assert_eq!(
        upstream.last_request().json["messages"][1]["tool_calls"][0]["function"]["arguments"],
        json!({})
    );
}

/// A stream as Ollama sends it: text in pieces (multi-byte characters among them), two tool
/// calls each whole in its own line, then the last line with the reason and counts.
fn ollama_stream() -> Vec<Value> {
    let line = |content: &str, tool_calls: Option<Value>| {
        let mut message = json!({"role": "assistant", "content": content});
        if let Some(calls) = tool_calls {
            message["tool_calls"] = calls;
        }
        json!({"model": "qwen3", "created_at": "2025-05-27T22:54:57.1Z", "message": message, "done": false})
    };
    vec![
        line("Paris, ", None),
        line("naïve café ☕ ", None),
        line("", None),
        line(
            "",
            Some(
                json!([{"function": {"name": "get_weather", "arguments": {"city": "Paris", "units": "°C"}}}]),
            ),
        ),
        line(
            "",
            Some(json!([{"function": {"name": "get_time", "arguments": {}}}])),
        ),
        json!({"model": "qwen3", "created_at": "2025-05-27T22:54:58.1Z",
               "message": {"role": "assistant", "content": ""},
               "done": true, "done_reason": "stop", "total_duration": 1_000_000,
               "prompt_eval_count": 20, "eval_count": 9}),
    ]
}

async fn collect(
    provider: &dyn Provider,
    request: &ChatRequest,
) -> (Vec<ChatEvent>, Option<ProviderError>) {
    let mut stream = provider.chat_stream(request).await.unwrap();
    let mut events = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(event) => events.push(event),
            Err(err) => return (events, Some(err)),
        }
    }
    (events, None)
}

#[tokio::test]
async fn a_stream_decodes_into_events() {
    let (upstream, provider) = provider().await;
    upstream.push(CHAT, Reply::ndjson(&ollama_stream()));
    let (events, error) = collect(provider.as_ref(), &hi()).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(
        events,
        vec![
            ChatEvent::Text("Paris, ".into()),
            ChatEvent::Text("naïve café ☕ ".into()),
            ChatEvent::ToolCall {
                index: 0,
                id: Some("call_0".into()),
                name: Some("get_weather".into()),
                arguments: "{\"city\":\"Paris\",\"units\":\"°C\"}".into(),
            },
            ChatEvent::ToolCall {
                index: 1,
                id: Some("call_1".into()),
                name: Some("get_time".into()),
                arguments: "{}".into(),
            },
            ChatEvent::Finish(FinishReason::ToolCalls),
            ChatEvent::Usage(Usage {
                input_tokens: 20,
                output_tokens: 9
            }),
        ]
    );
    let sent = upstream.last_request();
    assert_eq!(sent.path, "/api/chat");
    assert_eq!(sent.json["stream"], true);
}

#[tokio::test]
async fn streams_split_at_awkward_places_decode_whole() {
    let (upstream, provider) = provider().await;
    for size in [1, 2, 3, 5, 13, 64, 1000] {
        upstream.push(CHAT, Reply::ndjson(&ollama_stream()).split(size));
        let (events, error) = collect(provider.as_ref(), &hi()).await;
        assert!(error.is_none(), "split {size}: {error:?}");
        let mut builder = ResponseBuilder::default();
        for event in &events {
            builder.push(event);
        }
        let response = builder.finish();
        assert_eq!(
            response.message.joined_text(),
            "Paris, naïve café ☕ ",
            "split {size}"
        );
        assert_eq!(response.finish_reason, FinishReason::ToolCalls);
        assert_eq!(response.message.tool_calls.len(), 2, "split {size}");
        assert_eq!(response.message.tool_calls[0].id, "call_0");
        assert_eq!(
            response.message.tool_calls[0].arguments,
            "{\"city\":\"Paris\",\"units\":\"°C\"}"
        );
        assert_eq!(response.message.tool_calls[1].id, "call_1");
        assert_eq!(response.usage.unwrap().total(), 29);
        assert!(
            matches!(events.last(), Some(ChatEvent::Usage(_))),
            "usage comes last, once"
        );
        assert_eq!(
            events
                .iter()
                .filter(|e| matches!(e, ChatEvent::Usage(_)))
                .count(),
            1
        );
    }
}

#[tokio::test]
async fn a_stream_of_text_only_ends_with_stop_or_length() {
    let (upstream, provider) = provider().await;
    let lines = |reason: &str| {
        vec![
            json!({"message": {"role": "assistant", "content": "Bonjour"}, "done": false}),
            json!({"message": {"role": "assistant", "content": ""}, "done": true,
                   "done_reason": reason, "prompt_eval_count": 3, "eval_count": 1}),
        ]
    };
    for (reason, expected) in [
        ("stop", FinishReason::Stop),
        ("length", FinishReason::Length),
    ] {
        upstream.push(CHAT, Reply::ndjson(&lines(reason)));
        let (events, error) = collect(provider.as_ref(), &hi()).await;
        assert!(error.is_none(), "{error:?}");
        assert_eq!(
            events,
            vec![
                ChatEvent::Text("Bonjour".into()),
                ChatEvent::Finish(expected),
                ChatEvent::Usage(Usage {
                    input_tokens: 3,
                    output_tokens: 1
                }),
            ]
        );
    }
}

#[tokio::test]
async fn error_answers_are_classified_with_ollamas_message() {
    let upstream = MockUpstream::start().await;
    let provider = kai_providers::connect(&spec(&upstream, "", Some(KEY))).unwrap();
    let error = |message: &str| json!({"error": message});
    upstream.push(
        CHAT,
        Reply::json(404, error("model 'llama9' not found, try pulling it first")),
    );
    upstream.push(
        CHAT,
        Reply::json(401, error(&format!("unauthorized: key {KEY} is not valid"))),
    );
    upstream.push(
        CHAT,
        Reply::json(429, error("too many requests")).header("retry-after", "3"),
    );
    upstream.push(
        CHAT,
        Reply::json(
            500,
            error("llama runner process has terminated: exit status 2"),
        ),
    );
    upstream.push(
        CHAT,
        Reply::json(
            503,
            error("server busy, please try again.  maximum pending requests exceeded"),
        ),
    );
    upstream.push(
        CHAT,
        Reply::json(
            400,
            error("registry.ollama.ai/library/gemma:2b does not support tools"),
        ),
    );
    upstream.push(
        CHAT,
        Reply::json(
            400,
            error("invalid options: num_predict must be an integer"),
        ),
    );
    upstream.push(
        CHAT,
        Reply::raw(
            200,
            "application/json",
            "{\"model\": \"llama3.2\", \"message\": oops",
        ),
    );
    let request = hi();

    let err = provider.chat(&request).await.unwrap_err();
    assert_eq!((err.kind, err.status), (ErrorKind::NotFound, Some(404)));
    assert!(err.message.contains("try pulling it first"), "{err}");

    let err = provider.chat(&request).await.unwrap_err();
    assert_eq!(
        (err.kind, err.status),
        (ErrorKind::Authentication, Some(401))
    );
    assert!(err.message.contains("unauthorized"), "{err}");
    assert!(!err.to_string().contains(KEY), "the key leaked: {err}");

    let err = provider.chat(&request).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::RateLimited);
    assert_eq!(err.retry_after, Some(Duration::from_secs(3)));

    let err = provider.chat(&request).await.unwrap_err();
    assert_eq!((err.kind, err.status), (ErrorKind::Server, Some(500)));
    assert!(err.message.contains("llama runner"), "{err}");

    let err = provider.chat(&request).await.unwrap_err();
    assert_eq!((err.kind, err.status), (ErrorKind::Overloaded, Some(503)));
    assert!(err.message.contains("server busy"), "{err}");

    // A model without a capability is the deployment's limit: another may have it.
    let err = provider.chat(&request).await.unwrap_err();
    assert_eq!((err.kind, err.status), (ErrorKind::Unsupported, Some(400)));
    assert!(err.message.contains("does not support tools"), "{err}");

    let err = provider.chat(&request).await.unwrap_err();
    assert_eq!((err.kind, err.status), (ErrorKind::BadRequest, Some(400)));

    let err = provider.chat(&request).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Malformed);
    assert!(err.message.contains("oops"), "{err}");

    // JSON, but not a finished chat answer (another API at the base URL, say).
    upstream.push(
        CHAT,
        Reply::json(
            200,
            json!({"model": "llama3.2", "created_at": "2025-05-27T22:54:57Z"}),
        ),
    );
    let err = provider.chat(&request).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Malformed);
    assert!(err.message.contains("done"), "{err}");

    // An error in a successful answer's body is Ollama failing on its side.
    upstream.push(
        CHAT,
        Reply::json(200, error("llama runner process no longer running: -1")),
    );
    let err = provider.chat(&request).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Server);
    assert!(err.message.contains("llama runner"), "{err}");

    // Refused before a stream began: the error comes from the call itself.
    upstream.push(
        CHAT,
        Reply::json(404, error("model 'llama9' not found, try pulling it first")),
    );
    let err = provider.chat_stream(&request).await.err().unwrap();
    assert_eq!(err.kind, ErrorKind::NotFound);
}

#[tokio::test]
async fn broken_streams_end_with_the_right_error() {
    let (upstream, provider) = provider().await;
    let lines = ollama_stream();
    let whole = Reply::ndjson(&lines);
    // The first two lines whole: the text arrives, the rest does not.
    let two_lines: usize = lines[..2].iter().map(|l| l.to_string().len() + 1).sum();
    let request = hi();
    let text_so_far = vec![
        ChatEvent::Text("Paris, ".into()),
        ChatEvent::Text("naïve café ☕ ".into()),
    ];

    // The connection resets.
    upstream.push(CHAT, whole.clone().cut_after(two_lines, StreamEnd::Reset));
    let (events, error) = collect(provider.as_ref(), &request).await;
    assert_eq!(events, text_so_far);
    assert_eq!(error.unwrap().kind, ErrorKind::Interrupted);

    // The server stops sending but keeps the connection open.
    upstream.push(CHAT, whole.clone().cut_after(two_lines, StreamEnd::Stall));
    let (events, error) = collect(provider.as_ref(), &request).await;
    assert_eq!(events, text_so_far);
    assert_eq!(error.unwrap().kind, ErrorKind::Stalled);

    // The server closes cleanly, but without the `done` line.
    upstream.push(CHAT, whole.clone().cut_after(two_lines, StreamEnd::Close));
    let (events, error) = collect(provider.as_ref(), &request).await;
    assert_eq!(events, text_so_far);
    let err = error.unwrap();
    assert_eq!(err.kind, ErrorKind::Interrupted);
    assert!(err.message.contains("done"), "{err}");

    // An empty answer is no answer.
    upstream.push(CHAT, Reply::raw(200, "application/x-ndjson", ""));
    let (events, error) = collect(provider.as_ref(), &request).await;
    assert!(events.is_empty());
    assert_eq!(error.unwrap().kind, ErrorKind::Interrupted);

    // An error reported inside the stream: Ollama failed on its side.
    upstream.push(
        CHAT,
        Reply::ndjson(&[
            lines[0].clone(),
            json!({"error": "an error was encountered while running the model: unexpected EOF"}),
            lines[5].clone(),
        ]),
    );
    let (events, error) = collect(provider.as_ref(), &request).await;
    assert_eq!(events, vec![ChatEvent::Text("Paris, ".into())]);
    let err = error.unwrap();
    assert_eq!(err.kind, ErrorKind::Server);
    assert!(err.message.contains("unexpected EOF"), "{err}");

    // … unless its words say otherwise.
    upstream.push(
        CHAT,
        Reply::ndjson(&[
            json!({"error": "input is too long for the context window (num_ctx 2048)"}),
        ]),
    );
    let (_, error) = collect(provider.as_ref(), &request).await;
    assert_eq!(error.unwrap().kind, ErrorKind::ContextLengthExceeded);

    // A line that is not JSON.
    upstream.push(CHAT, Reply::raw(200, "application/x-ndjson", "{not json\n"));
    let (_, error) = collect(provider.as_ref(), &request).await;
    let err = error.unwrap();
    assert_eq!(err.kind, ErrorKind::Malformed);
    assert!(err.message.contains("{not json"), "{err}");
}

#[tokio::test]
async fn embeddings_come_back_one_per_input() {
    let (upstream, provider) = provider().await;
    upstream.push(
        "/api/embed",
        Reply::json(
            200,
            json!({
                "model": "nomic-embed-text",
                "embeddings": [[0.25, -0.75, 0.5], [1.0, 0.0, -1.0]],
                "total_duration": 14_143_917,
                "load_duration": 1_019_500,
                "prompt_eval_count": 8
            }),
        ),
    );
    let mut request = EmbedRequest::new("nomic-embed-text", vec!["one".into(), "two €".into()]);
    request.dimensions = Some(3);
    request.user = Some("u-1".into());
    let response = provider.embed(&request).await.unwrap();
    assert_eq!(
        response.vectors,
        vec![vec![0.25, -0.75, 0.5], vec![1.0, 0.0, -1.0]]
    );
    assert_eq!(
        response.usage,
        Some(Usage {
            input_tokens: 8,
            output_tokens: 0
        })
    );
    let sent = upstream.last_request();
    assert_eq!(
        (sent.method.as_str(), sent.path.as_str()),
        ("POST", "/api/embed")
    );
    assert_eq!(sent.header("authorization"), None);
    assert_eq!(
        sent.json,
        json!({"model": "nomic-embed-text", "input": ["one", "two €"], "dimensions": 3})
    );

    // Without dimensions nothing is said about them; without a count there is no usage.
    upstream.push(
        "/api/embed",
        Reply::json(
            200,
            json!({"model": "nomic-embed-text", "embeddings": [[0.5]]}),
        ),
    );
    let request = EmbedRequest::new("nomic-embed-text", vec!["one".into()]);
    let response = provider.embed(&request).await.unwrap();
    assert_eq!(response.vectors, vec![vec![0.5]]);
    assert_eq!(response.usage, None);
    assert_eq!(
        upstream.last_request().json,
        json!({"model": "nomic-embed-text", "input": ["one"]})
    );

    // A vector missing is a broken answer, not a shorter one.
    upstream.push(
        "/api/embed",
        Reply::json(
            200,
            json!({"model": "m", "embeddings": [[0.5]], "prompt_eval_count": 2}),
        ),
    );
    let request = EmbedRequest::new("nomic-embed-text", vec!["one".into(), "two".into()]);
    let err = provider.embed(&request).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Malformed);
    assert!(err.message.contains("1 embeddings for 2 inputs"), "{err}");

    // A chat model asked to embed.
    upstream.push(
        "/api/embed",
        Reply::json(
            400,
            json!({"error": "\"llama3.2\" does not support embeddings"}),
        ),
    );
    let err = provider.embed(&request).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unsupported);

    upstream.push(
        "/api/embed",
        Reply::json(
            404,
            json!({"error": "model \"nomic\" not found, try pulling it first"}),
        ),
    );
    let err = provider.embed(&request).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound);
}

#[tokio::test]
async fn models_are_listed() {
    let (upstream, provider) = provider().await;
    upstream.push(
        "/api/tags",
        Reply::json(
            200,
            json!({"models": [
                {"name": "llama3.2:latest", "model": "llama3.2:latest",
                 "modified_at": "2025-05-04T17:37:44.706015396-07:00", "size": 2_019_393_189_u64,
                 "digest": "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
                 "details": {"parent_model": "", "format": "gguf", "family": "llama",
                             "families": ["llama"], "parameter_size": "3.2B",
                             "quantization_level": "Q4_K_M"}},
                {"name": "nomic-embed-text:latest", "model": "nomic-embed-text:latest",
                 "size": 274_302_450, "digest": "0a109f422b47"}
            ]}),
        ),
    );
    assert_eq!(
        provider.list_models().await.unwrap(),
        vec!["llama3.2:latest", "nomic-embed-text:latest"]
    );
    let sent = upstream.last_request();
    assert_eq!(
        (sent.method.as_str(), sent.path.as_str()),
        ("GET", "/api/tags")
    );

    upstream.push("/api/tags", Reply::json(200, json!({"models": []})));
    assert!(provider.list_models().await.unwrap().is_empty());
}
