//! The Anthropic adapter against a loopback server replaying Anthropic's documented Messages
//! API: what kai sends upstream, and what it makes of every answer.

#![allow(clippy::unwrap_used)]

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

const KEY: &str = "sk-ant-test-0123456789";
const PATH: &str = "/v1/messages";

fn spec(upstream: &MockUpstream) -> ProviderSpec {
    ProviderSpec {
        name: "claude".into(),
        kind: ProviderKind::Anthropic,
        // Anthropic's base URL has no `/v1`: the adapter adds it.
        base_url: upstream.url("").parse().unwrap(),
        api_key: Some(kai_config::Secret::new(KEY.into())),
        connect_timeout: Duration::from_secs(2),
        timeout: Duration::from_secs(2),
        stream_idle_timeout: Duration::from_millis(400),
        headers: [(
            "anthropic-beta".to_owned(),
            "prompt-caching-2024-07-31".to_owned(),
        )]
        .into(),
        proxies: Default::default(),
    }
}

async fn provider() -> (MockUpstream, std::sync::Arc<dyn Provider>) {
    let upstream = MockUpstream::start().await;
    let provider = kai_providers::connect(&spec(&upstream)).unwrap();
    (upstream, provider)
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

fn tool_answer(id: &str, answer: &str) -> Message {
    Message {
        tool_call_id: Some(id.into()),
        ..Message::text(Role::Tool, answer)
    }
}

/// A conversation with everything Anthropic's format must express: instructions in two
/// places, images inline and by URL, an assistant turn with text and a tool call, the tool's
/// answer and a user turn after it (which Anthropic wants merged into one turn).
fn rich_request() -> ChatRequest {
    let mut request = ChatRequest::new(
        "claude-sonnet-4-5",
        vec![
            Message::text(Role::System, "You are kai."),
            Message::text(Role::Developer, "Be brief."),
            message(
                Role::User,
                vec![
                    text("What is in these pictures?"),
                    Part::Image {
                        source: ImageSource::Base64 {
                            media_type: "image/png".into(),
                            data: "iVBORw0KGgo=".into(),
                        },
                        detail: Some("low".into()),
                    },
                    Part::Image {
                        source: ImageSource::Url {
                            url: "https://example.com/cat.jpg".into(),
                        },
                        detail: None,
                    },
                ],
            ),
            Message {
                tool_calls: vec![ToolCall {
                    id: "toolu_01".into(),
                    name: "get_weather".into(),
                    arguments: "{\"city\": \"Paris\"}".into(),
                }],
                ..Message::text(Role::Assistant, "A cat in Paris. Let me check the weather.")
            },
            tool_answer("toolu_01", "18°C, sun"),
            Message::text(Role::User, "And tomorrow?"),
        ],
    );
    request.tools = vec![weather_tool(), time_tool()];
    request.tool_choice = Some(ToolChoice::Required);
    request.parallel_tool_calls = Some(false);
    request.sampling.temperature = Some(0.5);
    request.sampling.top_p = Some(0.75);
    request.sampling.top_k = Some(40);
    request.sampling.max_tokens = Some(64);
    request.sampling.stop = vec!["\n\nHuman:".into()];
    // No Anthropic equivalent: not sent.
    request.sampling.seed = Some(7);
    request.sampling.presence_penalty = Some(0.5);
    request.user = Some("u-1".into());
    request.extra.insert("logprobs".into(), json!(false));
    request
}

fn answer(content: Value, stop_reason: &str) -> Value {
    json!({
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": null,
        "usage": {"input_tokens": 12, "output_tokens": 5,
                  "cache_creation_input_tokens": 100, "cache_read_input_tokens": 1000}
    })
}

fn hi() -> ChatRequest {
    ChatRequest::new("claude-sonnet-4-5", vec![Message::text(Role::User, "Hi")])
}

#[tokio::test]
async fn a_chat_sends_anthropics_format_and_reads_the_answer() {
    let (upstream, provider) = provider().await;
    upstream.push(
        PATH,
        Reply::json(
            200,
            answer(
                json!([{"type": "text", "text": "Rain, "}, {"type": "text", "text": "sadly."}]),
                "end_turn",
            ),
        ),
    );
    let response = provider.chat(&rich_request()).await.unwrap();
    assert_eq!(response.id.as_deref(), Some("msg_01"));
    assert_eq!(response.message.role, Role::Assistant);
    assert_eq!(response.message.joined_text(), "Rain, sadly.");
    assert!(response.message.tool_calls.is_empty());
    assert_eq!(response.finish_reason, FinishReason::Stop);
    // Cached prompt tokens were read too: they count as input.
    assert_eq!(
        response.usage,
        Some(Usage {
            input_tokens: 1112,
            output_tokens: 5
        })
    );

    let sent = upstream.last_request();
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.path, PATH);
    assert_eq!(sent.header("x-api-key"), Some(KEY));
    assert_eq!(sent.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(
        sent.header("anthropic-beta"),
        Some("prompt-caching-2024-07-31")
    );
    assert_eq!(sent.header("content-type"), Some("application/json"));
    assert_eq!(sent.header("authorization"), None);
    assert_eq!(
        sent.json,
        json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 64,
            "system": "You are kai.\n\nBe brief.",
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "What is in these pictures?"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}
                ]},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "A cat in Paris. Let me check the weather."},
                    {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_01", "content": "18°C, sun"},
                    {"type": "text", "text": "And tomorrow?"}
                ]}
            ],
            "tools": [
                {"name": "get_weather", "description": "The weather in a city",
                 "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
                {"name": "get_time", "input_schema": {"type": "object", "properties": {}}}
            ],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
            "temperature": 0.5,
            "top_p": 0.75,
            "top_k": 40,
            "stop_sequences": ["\n\nHuman:"],
            "metadata": {"user_id": "u-1"}
        })
    );
}

#[tokio::test]
async fn defaults_fill_what_anthropic_requires_and_caps_what_it_refuses() {
    let (upstream, provider) = provider().await;
    upstream.always(
        PATH,
        Reply::json(
            200,
            answer(json!([{"type": "text", "text": "Hi"}]), "end_turn"),
        ),
    );

    // Anthropic requires max_tokens; the bare request gets the documented default.
    provider.chat(&hi()).await.unwrap();
    assert_eq!(
        upstream.last_request().json,
        json!({"model": "claude-sonnet-4-5", "max_tokens": 4096,
               "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]})
    );

    // OpenAI's temperatures above 1 are Anthropic's hottest.
    let mut request = hi();
    request.sampling.temperature = Some(1.5);
    provider.chat(&request).await.unwrap();
    assert_eq!(upstream.last_request().json["temperature"], 1.0);

    // Consecutive messages of one role become one turn; empty ones none.
    let request = ChatRequest::new(
        "claude-sonnet-4-5",
        vec![
            Message::text(Role::User, "One."),
            Message::text(Role::User, ""),
            Message::text(Role::User, "Two."),
            Message::text(Role::Assistant, "Three."),
            Message::text(Role::System, "Late instructions."),
            Message::text(Role::Assistant, "Four."),
        ],
    );
    provider.chat(&request).await.unwrap();
    let sent = upstream.last_request().json;
    assert_eq!(sent["system"], "Late instructions.");
    assert_eq!(
        sent["messages"],
        json!([
            {"role": "user", "content": [{"type": "text", "text": "One."}, {"type": "text", "text": "Two."}]},
            {"role": "assistant", "content": [{"type": "text", "text": "Three."}, {"type": "text", "text": "Four."}]}
        ])
    );
}

#[tokio::test]
async fn tool_choices_map_to_anthropics() {
    let (upstream, provider) = provider().await;
    upstream.always(
        PATH,
        Reply::json(
            200,
            answer(json!([{"type": "text", "text": "Hi"}]), "end_turn"),
        ),
    );
    let cases: [(Option<ToolChoice>, Option<bool>, Value); 7] = [
        (None, None, Value::Null),
        (None, Some(true), Value::Null),
        (
            None,
            Some(false),
            json!({"type": "auto", "disable_parallel_tool_use": true}),
        ),
        (Some(ToolChoice::Auto), None, json!({"type": "auto"})),
        (Some(ToolChoice::Required), None, json!({"type": "any"})),
        (
            Some(ToolChoice::Tool("get_time".into())),
            Some(false),
            json!({"type": "tool", "name": "get_time", "disable_parallel_tool_use": true}),
        ),
        // `none` takes no other field.
        (Some(ToolChoice::None), Some(false), json!({"type": "none"})),
    ];
    for (choice, parallel, expected) in cases {
        let mut request = hi();
        request.tools = vec![time_tool()];
        request.tool_choice = choice.clone();
        request.parallel_tool_calls = parallel;
        provider.chat(&request).await.unwrap();
        let sent = upstream.last_request().json;
        assert_eq!(
            sent.get("tool_choice").cloned().unwrap_or(Value::Null),
            expected,
            "{choice:?} {parallel:?}"
        );
    }

    // Without tools there is nothing to choose from, and no choice is sent.
    let mut request = hi();
    request.tool_choice = Some(ToolChoice::Required);
    provider.chat(&request).await.unwrap();
    let sent = upstream.last_request().json;
    assert!(sent.get("tool_choice").is_none(), "{sent}");
    assert!(sent.get("tools").is_none(), "{sent}");
}

#[tokio::test]
async fn tool_calls_come_back_whole_and_go_back_as_results() {
    let (upstream, provider) = provider().await;
    upstream.push(
        PATH,
        Reply::json(
            200,
            answer(
                json!([
                    {"type": "text", "text": "Checking both."},
                    {"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {"city": "Paris"}},
                    {"type": "tool_use", "id": "toolu_b", "name": "get_time", "input": {}}
                ]),
                "tool_use",
            ),
        ),
    );
    let mut request = ChatRequest::new(
        "claude-sonnet-4-5",
        vec![Message::text(Role::User, "Weather and time?")],
    );
    request.tools = vec![weather_tool(), time_tool()];
    let response = provider.chat(&request).await.unwrap();
    assert_eq!(response.finish_reason, FinishReason::ToolCalls);
    assert_eq!(response.message.joined_text(), "Checking both.");
    assert_eq!(
        response.message.tool_calls,
        vec![
            ToolCall {
                id: "toolu_a".into(),
                name: "get_weather".into(),
                arguments: "{\"city\":\"Paris\"}".into()
            },
            ToolCall {
                id: "toolu_b".into(),
                name: "get_time".into(),
                arguments: "{}".into()
            },
        ]
    );

    // The calls and the tools' answers go back as Anthropic has them: both results in one
    // user turn, an image among a result's content.
    upstream.push(
        PATH,
        Reply::json(
            200,
            answer(
                json!([{"type": "text", "text": "Sunny, noon."}]),
                "end_turn",
            ),
        ),
    );
    request.messages.push(response.message.clone());
    request.messages.push(tool_answer("toolu_a", "18°C, sun"));
    request.messages.push(Message {
        tool_call_id: Some("toolu_b".into()),
        ..message(
            Role::Tool,
            vec![
                text("12:00"),
                Part::Image {
                    source: ImageSource::Base64 {
                        media_type: "image/png".into(),
                        data: "Y2xvY2s=".into(),
                    },
                    detail: None,
                },
            ],
        )
    });
    let response = provider.chat(&request).await.unwrap();
    assert_eq!(response.message.joined_text(), "Sunny, noon.");
    let sent = upstream.last_request().json;
    assert_eq!(
        sent["messages"],
        json!([
            {"role": "user", "content": [{"type": "text", "text": "Weather and time?"}]},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Checking both."},
                {"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "toolu_b", "name": "get_time", "input": {}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_a", "content": "18°C, sun"},
                {"type": "tool_result", "tool_use_id": "toolu_b", "content": [
                    {"type": "text", "text": "12:00"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "Y2xvY2s="}}
                ]}
            ]}
        ])
    );
}

#[tokio::test]
async fn requests_anthropic_cannot_take_are_refused_before_sending() {
    let (upstream, provider) = provider().await;
    let with_call = |arguments: &str| {
        ChatRequest::new(
            "claude-sonnet-4-5",
            vec![
                Message::text(Role::User, "Weather?"),
                Message {
                    tool_calls: vec![ToolCall {
                        id: "toolu_x".into(),
                        name: "get_weather".into(),
                        arguments: arguments.into(),
                    }],
                    ..message(Role::Assistant, vec![])
                },
                tool_answer("toolu_x", "rain"),
            ],
        )
    };

    let err = provider
        .chat(&with_call("{\"city\": \"Par"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadRequest, "{err}");
    assert!(err.message.contains("toolu_x"), "{err}");
    assert!(err.message.contains("not valid JSON"), "{err}");

    let err = provider
        .chat_stream(&with_call("[\"Paris\"]"))
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind, ErrorKind::BadRequest, "{err}");
    assert!(err.message.contains("not an object"), "{err}");

    let mut request = hi();
    request.messages.push(Message::text(Role::Tool, "orphan"));
    let err = provider.chat(&request).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadRequest, "{err}");
    assert!(err.message.contains("tool_call_id"), "{err}");

    let mut request = hi();
    request.tools = vec![weather_tool()];
    request.response_format = Some(ResponseFormat::JsonSchema {
        name: "get_weather".into(),
        description: None,
        schema: json!({"type": "object"}),
        strict: None,
    });
    let err = provider.chat(&request).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadRequest, "{err}");
    assert!(err.message.contains("rename"), "{err}");

    assert!(upstream.requests().is_empty(), "nothing went upstream");

    // No arguments at all is a call without parameters: an empty object.
    upstream.push(
        PATH,
        Reply::json(
            200,
            answer(json!([{"type": "text", "text": "ok"}]), "end_turn"),
        ),
    );
    provider.chat(&with_call("")).await.unwrap();
    assert_eq!(
        upstream.last_request().json["messages"][1]["content"][0]["input"],
        json!({})
    );
}

fn answer_schema() -> ResponseFormat {
    ResponseFormat::JsonSchema {
        name: "forecast".into(),
        description: Some("A forecast".into()),
        schema: json!({"type": "object", "properties": {"sky": {"type": "string"}}, "required": ["sky"]}),
        strict: Some(true),
    }
}

#[tokio::test]
async fn structured_output_is_a_forced_tool_call_read_back_as_text() {
    let (upstream, provider) = provider().await;
    upstream.push(
        PATH,
        Reply::json(
            200,
            answer(
                json!([{"type": "tool_use", "id": "toolu_s", "name": "forecast", "input": {"sky": "clear"}}]),
                "tool_use",
            ),
        ),
    );
    let mut request = hi();
    request.response_format = Some(answer_schema());
    let response = provider.chat(&request).await.unwrap();
    assert_eq!(response.message.joined_text(), "{\"sky\":\"clear\"}");
    assert!(response.message.tool_calls.is_empty());
    assert_eq!(response.finish_reason, FinishReason::Stop);
    let sent = upstream.last_request().json;
    assert_eq!(
        sent["tools"],
        json!([{"name": "forecast", "description": "A forecast",
                "input_schema": {"type": "object", "properties": {"sky": {"type": "string"}}, "required": ["sky"]}}])
    );
    assert_eq!(
        sent["tool_choice"],
        json!({"type": "tool", "name": "forecast", "disable_parallel_tool_use": true})
    );

    // With tools of its own, the model may call one of them or answer: any tool will do.
    upstream.push(
        PATH,
        Reply::json(
            200,
            answer(
                json!([{"type": "tool_use", "id": "toolu_w", "name": "get_weather", "input": {"city": "Oslo"}}]),
                "tool_use",
            ),
        ),
    );
    request.tools = vec![weather_tool()];
    request.tool_choice = Some(ToolChoice::Auto);
    let response = provider.chat(&request).await.unwrap();
    assert_eq!(response.finish_reason, FinishReason::ToolCalls);
    assert_eq!(response.message.tool_calls[0].name, "get_weather");
    assert_eq!(response.message.joined_text(), "");
    let sent = upstream.last_request().json;
    assert_eq!(sent["tool_choice"], json!({"type": "any"}));
    assert_eq!(sent["tools"][1]["name"], "forecast");

    // A request that may call no tool still answers through the answer tool; an answer cut
    // short says so.
    upstream.push(
        PATH,
        Reply::json(
            200,
            answer(
                json!([{"type": "tool_use", "id": "toolu_s", "name": "forecast", "input": {}}]),
                "max_tokens",
            ),
        ),
    );
    request.tool_choice = Some(ToolChoice::None);
    let response = provider.chat(&request).await.unwrap();
    assert_eq!(response.finish_reason, FinishReason::Length);
    assert_eq!(
        upstream.last_request().json["tool_choice"],
        json!({"type": "tool", "name": "forecast", "disable_parallel_tool_use": true})
    );
}

#[tokio::test]
async fn a_json_object_is_asked_for_in_the_system_prompt() {
    let (upstream, provider) = provider().await;
    upstream.always(
        PATH,
        Reply::json(
            200,
            answer(json!([{"type": "text", "text": "{\"a\":1}"}]), "end_turn"),
        ),
    );
    let mut request = hi();
    request.response_format = Some(ResponseFormat::JsonObject);
    let response = provider.chat(&request).await.unwrap();
    assert_eq!(response.message.joined_text(), "{\"a\":1}");
    let system = upstream.last_request().json["system"].clone();
    assert!(
        system
            .as_str()
            .unwrap()
            .starts_with("Answer with one JSON object only"),
        "{system}"
    );

    request
        .messages
        .insert(0, Message::text(Role::System, "You are kai."));
    provider.chat(&request).await.unwrap();
    let system = upstream.last_request().json["system"].clone();
    let system = system.as_str().unwrap();
    assert!(
        system.starts_with("You are kai.\n\nAnswer with one JSON object only"),
        "{system}"
    );
    assert!(upstream.last_request().json.get("tools").is_none());
}

#[tokio::test]
async fn stop_reasons_map_to_finish_reasons() {
    let (upstream, provider) = provider().await;
    let cases = [
        ("end_turn", FinishReason::Stop),
        ("stop_sequence", FinishReason::Stop),
        ("max_tokens", FinishReason::Length),
        ("model_context_window_exceeded", FinishReason::Length),
        ("refusal", FinishReason::ContentFilter),
        ("pause_turn", FinishReason::Other("pause_turn".into())),
    ];
    for (stop_reason, expected) in cases {
        upstream.push(
            PATH,
            Reply::json(
                200,
                answer(json!([{"type": "text", "text": "…"}]), stop_reason),
            ),
        );
        let response = provider.chat(&hi()).await.unwrap();
        assert_eq!(response.finish_reason, expected, "{stop_reason}");
    }

    // Blocks kai does not read are passed over; an answer without usage has none.
    upstream.push(
        PATH,
        Reply::json(
            200,
            json!({"id": "msg_2", "type": "message", "role": "assistant", "model": "m",
                   "content": [
                       {"type": "thinking", "thinking": "Hmm.", "signature": "c2ln"},
                       {"type": "text", "text": "Done."}
                   ],
                   "stop_reason": "end_turn"}),
        ),
    );
    let response = provider.chat(&hi()).await.unwrap();
    assert_eq!(response.message.joined_text(), "Done.");
    assert_eq!(response.usage, None);
}

/// Anthropic's documented event sequence: the message with its prompt usage, a text block in
/// pieces (multi-byte characters among them), a ping, two tool calls whose input arrives in
/// fragments (the first fragment empty, as Anthropic sends it), the stop reason with the
/// output usage, and the end.
fn anthropic_stream() -> Vec<(&'static str, String)> {
    let event = |kind: &'static str, data: Value| (kind, data.to_string());
    vec![
        event(
            "message_start",
            json!({"type": "message_start", "message": {"id": "msg_9", "type": "message", "role": "assistant",
                   "content": [], "model": "claude-sonnet-4-5", "stop_reason": null, "stop_sequence": null,
                   "usage": {"input_tokens": 20, "cache_read_input_tokens": 5, "output_tokens": 1}}}),
        ),
        event(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        event("ping", json!({"type": "ping"})),
        event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Paris, "}}),
        ),
        event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "naïve café ☕ 東京 "}}),
        ),
        event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ),
        event(
            "content_block_start",
            json!({"type": "content_block_start", "index": 1, "content_block":
                   {"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {}}}),
        ),
        event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": ""}}),
        ),
        event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"ci"}}),
        ),
        event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "ty\": \"Zürich\"}"}}),
        ),
        event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 1}),
        ),
        event(
            "content_block_start",
            json!({"type": "content_block_start", "index": 2, "content_block":
                   {"type": "tool_use", "id": "toolu_b", "name": "get_time", "input": {}}}),
        ),
        event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "{\"zone\":"}}),
        ),
        event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": " \"CET\"}"}}),
        ),
        event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 2}),
        ),
        event(
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null},
                   "usage": {"output_tokens": 42}}),
        ),
        event("message_stop", json!({"type": "message_stop"})),
    ]
}

fn sse(events: &[(&str, String)]) -> Reply {
    let pairs: Vec<(&str, &str)> = events
        .iter()
        .map(|(kind, data)| (*kind, data.as_str()))
        .collect();
    Reply::sse_named(&pairs)
}

/// The length of [`sse`]'s body, to cut it at a known place.
fn sse_len(events: &[(&str, String)]) -> usize {
    events
        .iter()
        .map(|(kind, data)| format!("event: {kind}\ndata: {data}\n\n").len())
        .sum()
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

fn tool_event(index: u32, id: Option<&str>, name: Option<&str>, arguments: &str) -> ChatEvent {
    ChatEvent::ToolCall {
        index,
        id: id.map(str::to_owned),
        name: name.map(str::to_owned),
        arguments: arguments.into(),
    }
}

#[tokio::test]
async fn streams_split_at_awkward_places_decode_whole() {
    let (upstream, provider) = provider().await;
    let events = anthropic_stream();
    let expected = vec![
        ChatEvent::Text("Paris, ".into()),
        ChatEvent::Text("naïve café ☕ 東京 ".into()),
        tool_event(0, Some("toolu_a"), Some("get_weather"), ""),
        tool_event(0, None, None, "{\"ci"),
        tool_event(0, None, None, "ty\": \"Zürich\"}"),
        tool_event(1, Some("toolu_b"), Some("get_time"), ""),
        tool_event(1, None, None, "{\"zone\":"),
        tool_event(1, None, None, " \"CET\"}"),
        ChatEvent::Finish(FinishReason::ToolCalls),
        ChatEvent::Usage(Usage {
            input_tokens: 25,
            output_tokens: 42,
        }),
    ];
    for size in [2, 3, 7, 13, 64, usize::MAX] {
        upstream.push(PATH, sse(&events).split(size));
        let mut request = hi();
        request.tools = vec![weather_tool(), time_tool()];
        let (got, error) = collect(provider.as_ref(), &request).await;
        assert!(error.is_none(), "split {size}: {error:?}");
        assert_eq!(got, expected, "split {size}");

        let mut builder = ResponseBuilder::default();
        for event in &got {
            builder.push(event);
        }
        let response = builder.finish();
        assert_eq!(response.message.joined_text(), "Paris, naïve café ☕ 東京 ");
        assert_eq!(response.finish_reason, FinishReason::ToolCalls);
        assert_eq!(
            response.message.tool_calls,
            vec![
                ToolCall {
                    id: "toolu_a".into(),
                    name: "get_weather".into(),
                    arguments: "{\"city\": \"Zürich\"}".into()
                },
                ToolCall {
                    id: "toolu_b".into(),
                    name: "get_time".into(),
                    arguments: "{\"zone\": \"CET\"}".into()
                },
            ]
        );
    }
    let sent = upstream.last_request().json;
    assert_eq!(sent["stream"], true);
    assert_eq!(sent["max_tokens"], 4096);
}

#[tokio::test]
async fn a_streamed_structured_answer_comes_as_text() {
    let (upstream, provider) = provider().await;
    let event = |kind: &'static str, data: Value| (kind, data.to_string());
    let events = vec![
        event(
            "message_start",
            json!({"type": "message_start", "message": {"id": "msg_s", "type": "message", "role": "assistant",
                   "content": [], "model": "m", "usage": {"input_tokens": 30, "output_tokens": 1}}}),
        ),
        event(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block":
                   {"type": "tool_use", "id": "toolu_s", "name": "forecast", "input": {}}}),
        ),
        event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "{\"sky\": \"cl"}}),
        ),
        event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "éar ☀\"}"}}),
        ),
        event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ),
        event(
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 9}}),
        ),
        event("message_stop", json!({"type": "message_stop"})),
    ];
    let mut request = hi();
    request.response_format = Some(answer_schema());
    for size in [3, 7, usize::MAX] {
        upstream.push(PATH, sse(&events).split(size));
        let (got, error) = collect(provider.as_ref(), &request).await;
        assert!(error.is_none(), "split {size}: {error:?}");
        assert_eq!(
            got,
            vec![
                ChatEvent::Text("{\"sky\": \"cl".into()),
                ChatEvent::Text("éar ☀\"}".into()),
                ChatEvent::Finish(FinishReason::Stop),
                ChatEvent::Usage(Usage {
                    input_tokens: 30,
                    output_tokens: 9
                }),
            ],
            "split {size}"
        );
    }
    let sent = upstream.last_request().json;
    assert_eq!(sent["stream"], true);
    assert_eq!(
        sent["tool_choice"],
        json!({"type": "tool", "name": "forecast", "disable_parallel_tool_use": true})
    );
}

#[tokio::test]
async fn a_streamed_call_without_input_fragments_gets_an_empty_object() {
    let (upstream, provider) = provider().await;
    let event = |kind: &'static str, data: Value| (kind, data.to_string());
    let events = vec![
        event(
            "message_start",
            json!({"type": "message_start", "message": {"id": "msg_t", "usage": {"input_tokens": 8, "output_tokens": 1}}}),
        ),
        event(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block":
                   {"type": "tool_use", "id": "toolu_t", "name": "get_time", "input": {}}}),
        ),
        event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ),
        // A kind of event Anthropic may add later is passed over.
        event("future_event", json!({"type": "future_event", "detail": 1})),
        event(
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 3}}),
        ),
        event("message_stop", json!({"type": "message_stop"})),
    ];
    upstream.push(PATH, sse(&events));
    let (got, error) = collect(provider.as_ref(), &hi()).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(
        got,
        vec![
            tool_event(0, Some("toolu_t"), Some("get_time"), ""),
            tool_event(0, None, None, "{}"),
            ChatEvent::Finish(FinishReason::ToolCalls),
            ChatEvent::Usage(Usage {
                input_tokens: 8,
                output_tokens: 3
            }),
        ]
    );
}

#[tokio::test]
async fn error_answers_are_classified_with_anthropics_message() {
    let (upstream, provider) = provider().await;
    let error = |kind: &str, message: &str| json!({"type": "error", "error": {"type": kind, "message": message}});
    upstream.push(
        PATH,
        Reply::json(
            401,
            error("authentication_error", &format!("invalid x-api-key: {KEY}")),
        ),
    );
    upstream.push(
        PATH,
        Reply::json(
            429,
            error(
                "rate_limit_error",
                "Number of request tokens has exceeded your per-minute rate limit",
            ),
        )
        .header("retry-after", "7"),
    );
    upstream.push(
        PATH,
        Reply::json(500, error("api_error", "Internal server error")),
    );
    upstream.push(
        PATH,
        Reply::json(529, error("overloaded_error", "Overloaded")),
    );
    upstream.push(
        PATH,
        Reply::json(
            400,
            error(
                "invalid_request_error",
                "prompt is too long: 210000 tokens > 200000 maximum",
            ),
        ),
    );
    upstream.push(
        PATH,
        Reply::json(
            400,
            error(
                "invalid_request_error",
                "messages.0.content: Field required",
            ),
        ),
    );
    upstream.push(
        PATH,
        Reply::raw(
            200,
            "application/json",
            "{\"id\": \"msg_x\", \"content\": [ oops",
        ),
    );

    let err = provider.chat(&hi()).await.unwrap_err();
    assert_eq!(
        (err.kind, err.status),
        (ErrorKind::Authentication, Some(401))
    );
    assert!(err.message.contains("invalid x-api-key"), "{err}");
    assert!(!err.to_string().contains(KEY), "the key leaked: {err}");

    let err = provider.chat(&hi()).await.unwrap_err();
    assert_eq!((err.kind, err.status), (ErrorKind::RateLimited, Some(429)));
    assert_eq!(err.retry_after, Some(Duration::from_secs(7)));
    assert!(err.message.contains("rate limit"), "{err}");

    let err = provider.chat(&hi()).await.unwrap_err();
    assert_eq!((err.kind, err.status), (ErrorKind::Server, Some(500)));
    assert!(err.message.contains("Internal server error"), "{err}");

    let err = provider.chat(&hi()).await.unwrap_err();
    assert_eq!((err.kind, err.status), (ErrorKind::Overloaded, Some(529)));
    assert_eq!(err.message, "Overloaded");

    let err = provider.chat(&hi()).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::ContextLengthExceeded);

    let err = provider.chat(&hi()).await.unwrap_err();
    assert_eq!((err.kind, err.status), (ErrorKind::BadRequest, Some(400)));
    assert!(err.message.contains("Field required"), "{err}");

    let err = provider.chat(&hi()).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Malformed);
    assert!(err.message.contains("oops"), "{err}");

    // Refused before the stream began: the error comes from the call itself.
    upstream.push(
        PATH,
        Reply::json(529, error("overloaded_error", "Overloaded")),
    );
    let err = provider.chat_stream(&hi()).await.err().unwrap();
    assert_eq!(err.kind, ErrorKind::Overloaded);
}

#[tokio::test]
async fn broken_streams_end_with_the_right_error() {
    let (upstream, provider) = provider().await;
    let events = anthropic_stream();
    let whole = sse(&events);
    let half = sse_len(&events) / 2;

    // The connection resets midway.
    upstream.push(PATH, whole.clone().cut_after(half, StreamEnd::Reset));
    let (got, error) = collect(provider.as_ref(), &hi()).await;
    assert!(!got.is_empty());
    assert_eq!(error.unwrap().kind, ErrorKind::Interrupted);

    // The server stops sending but keeps the connection open.
    upstream.push(PATH, whole.clone().cut_after(half, StreamEnd::Stall));
    let (got, error) = collect(provider.as_ref(), &hi()).await;
    assert!(!got.is_empty());
    assert_eq!(error.unwrap().kind, ErrorKind::Stalled);

    // The server closes cleanly midway.
    upstream.push(PATH, whole.clone().cut_after(half, StreamEnd::Close));
    let (_, error) = collect(provider.as_ref(), &hi()).await;
    assert_eq!(error.unwrap().kind, ErrorKind::Interrupted);

    // Everything but `message_stop`: the events arrive, then the error; no usage.
    upstream.push(PATH, sse(&events[..events.len() - 1]));
    let (got, error) = collect(provider.as_ref(), &hi()).await;
    let error = error.unwrap();
    assert_eq!(error.kind, ErrorKind::Interrupted);
    assert!(error.message.contains("message_stop"), "{error}");
    assert_eq!(
        got.last(),
        Some(&ChatEvent::Finish(FinishReason::ToolCalls))
    );
    assert!(!got.iter().any(|event| matches!(event, ChatEvent::Usage(_))));

    // An error event midway, classified by its type.
    let cases = [
        ("overloaded_error", "Overloaded", ErrorKind::Overloaded),
        (
            "rate_limit_error",
            "Too many tokens",
            ErrorKind::RateLimited,
        ),
        ("api_error", "Internal server error", ErrorKind::Server),
    ];
    for (kind, message, expected) in cases {
        let mut cut: Vec<(&str, String)> = events[..4].to_vec();
        cut.push((
            "error",
            json!({"type": "error", "error": {"type": kind, "message": message}}).to_string(),
        ));
        upstream.push(PATH, sse(&cut));
        let (got, error) = collect(provider.as_ref(), &hi()).await;
        assert_eq!(got, vec![ChatEvent::Text("Paris, ".into())], "{kind}");
        let error = error.unwrap();
        assert_eq!(error.kind, expected, "{kind}");
        assert!(error.message.contains(message), "{error}");
        assert!(error.message.contains(kind), "{error}");
    }

    // An error event kai cannot read is still an error.
    upstream.push(PATH, sse(&[("error", "upstream exploded".to_owned())]));
    let (_, error) = collect(provider.as_ref(), &hi()).await;
    let error = error.unwrap();
    assert_eq!(error.kind, ErrorKind::Server);
    assert!(error.message.contains("upstream exploded"), "{error}");

    // An event that is not JSON.
    upstream.push(PATH, sse(&[("message_start", "{not json".to_owned())]));
    let (_, error) = collect(provider.as_ref(), &hi()).await;
    assert_eq!(error.unwrap().kind, ErrorKind::Malformed);

    // A delta for a block that never began.
    upstream.push(PATH, sse(&[events[0].clone(), events[3].clone()]));
    let (_, error) = collect(provider.as_ref(), &hi()).await;
    let error = error.unwrap();
    assert_eq!(error.kind, ErrorKind::Malformed);
    assert!(error.message.contains("never began"), "{error}");
}

#[tokio::test]
async fn embeddings_are_unsupported() {
    let (upstream, provider) = provider().await;
    let err = provider
        .embed(&EmbedRequest::new("claude-sonnet-4-5", vec!["one".into()]))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unsupported);
    assert!(err.message.contains("no embeddings"), "{err}");
    assert!(err.message.contains("route embedding models"), "{err}");
    assert!(upstream.requests().is_empty());
}

#[tokio::test]
async fn models_are_listed_across_pages() {
    let (upstream, provider) = provider().await;
    let model = |id: &str| json!({"type": "model", "id": id, "display_name": id, "created_at": "2025-02-19T00:00:00Z"});
    upstream.push(
        "/v1/models",
        Reply::json(
            200,
            json!({"data": [model("claude-opus-4-1"), model("claude-sonnet-4-5")],
                   "has_more": true, "first_id": "claude-opus-4-1", "last_id": "claude-sonnet-4-5"}),
        ),
    );
    upstream.push(
        "/v1/models",
        Reply::json(
            200,
            json!({"data": [model("claude-3-5-haiku-20241022")],
                   "has_more": false, "first_id": "claude-3-5-haiku-20241022",
                   "last_id": "claude-3-5-haiku-20241022"}),
        ),
    );
    assert_eq!(
        provider.list_models().await.unwrap(),
        vec![
            "claude-opus-4-1",
            "claude-sonnet-4-5",
            "claude-3-5-haiku-20241022"
        ]
    );
    let sent = upstream.requests();
    assert_eq!(sent.len(), 2);
    for request in &sent {
        assert_eq!(request.method, "GET");
        assert_eq!(request.path, "/v1/models");
        assert_eq!(request.header("x-api-key"), Some(KEY));
        assert_eq!(request.header("anthropic-version"), Some("2023-06-01"));
    }
    assert_eq!(sent[0].query.as_deref(), Some("limit=1000"));
    assert_eq!(
        sent[1].query.as_deref(),
        Some("limit=1000&after_id=claude-sonnet-4-5")
    );

    upstream.push(
        "/v1/models",
        Reply::json(401, json!({"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}})),
    );
    let err = provider.list_models().await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Authentication);
}
