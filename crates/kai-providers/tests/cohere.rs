//! The Cohere adapter against a loopback server replaying Cohere's documented v2 wire format:
//! what kai sends upstream, and what it makes of every answer.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use kai_config::ProviderKind;
use kai_models::chat::{
    ChatEvent, ChatRequest, EmbedRequest, FinishReason, ImageSource, InputType, Message, Part,
    ResponseBuilder, ResponseFormat, Role, ToolCall, ToolChoice, ToolDefinition, Usage,
};
use kai_models::{ErrorKind, Provider, ProviderError};
use kai_providers::ProviderSpec;
use kai_providers::testing::{MockUpstream, Reply, StreamEnd};
use serde_json::{Value, json};

const KEY: &str = "co-test-0123456789";
const CHAT: &str = "/v2/chat";
const EMBED: &str = "/v2/embed";
const MODELS: &str = "/v1/models";

fn spec(upstream: &MockUpstream) -> ProviderSpec {
    ProviderSpec {
        name: "cohere".into(),
        kind: ProviderKind::Cohere,
        base_url: upstream.url("").parse().unwrap(),
        api_key: Some(kai_config::Secret::new(KEY.into())),
        connect_timeout: Duration::from_secs(2),
        timeout: Duration::from_secs(2),
        stream_idle_timeout: Duration::from_millis(400),
        headers: [("X-Client-Name".to_owned(), "kai-tests".to_owned())].into(),
        proxies: Default::default(),
    }
}

async fn provider() -> (MockUpstream, Arc<dyn Provider>) {
    let upstream = MockUpstream::start().await;
    let provider = kai_providers::connect(&spec(&upstream)).unwrap();
    (upstream, provider)
}

fn tool(name: &str, description: &str, strict: Option<bool>) -> ToolDefinition {
    ToolDefinition {
        name: name.into(),
        description: Some(description.into()),
        parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
        strict,
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

fn hi() -> ChatRequest {
    ChatRequest::new("command-a-03-2025", vec![Message::text(Role::User, "Hi")])
}

/// A request with everything kai can say: instructions of both kinds, images by URL and
/// inline, a finished tool-call round trip, tools with one forced, structured output and every
/// sampling parameter, plus what Cohere has no place for.
fn rich_request() -> ChatRequest {
    let mut user = message(
        Role::User,
        vec![
            text("What is in these pictures, and what is the weather there?"),
            Part::Image {
                source: ImageSource::Url {
                    url: "https://example.com/zurich.jpg".into(),
                },
                detail: None,
            },
            Part::Image {
                source: ImageSource::Base64 {
                    media_type: "image/png".into(),
                    data: "iVBORw0KGgo=".into(),
                },
                detail: Some("low".into()),
            },
        ],
    );
    user.name = Some("alice".into());
    let mut assistant = message(Role::Assistant, vec![text("I will look up the weather.")]);
    assistant.tool_calls = vec![ToolCall {
        id: "get_weather_1".into(),
        name: "get_weather".into(),
        arguments: "{\"city\":\"Zürich\"}".into(),
    }];
    let mut answer = message(Role::Tool, vec![text("18°C, sun")]);
    answer.tool_call_id = Some("get_weather_1".into());
    let mut request = ChatRequest::new(
        "command-a-03-2025",
        vec![
            Message::text(Role::System, "You are kai."),
            Message::text(Role::Developer, "Be brief."),
            user,
            assistant,
            answer,
            Message::text(Role::User, "And tomorrow?"),
        ],
    );
    request.tools = vec![
        tool("get_time", "The time in a city", None),
        tool("get_weather", "The weather in a city", Some(true)),
    ];
    request.tool_choice = Some(ToolChoice::Tool("get_weather".into()));
    request.parallel_tool_calls = Some(false);
    request.response_format = Some(ResponseFormat::JsonSchema {
        name: "forecast".into(),
        description: Some("A forecast".into()),
        schema: json!({"type": "object", "properties": {"sky": {"type": "string"}}, "required": ["sky"]}),
        strict: Some(true),
    });
    request.sampling.temperature = Some(0.5);
    request.sampling.top_p = Some(0.9);
    request.sampling.top_k = Some(40);
    request.sampling.max_tokens = Some(256);
    request.sampling.stop = vec!["\n\n".into(), "END".into()];
    request.sampling.seed = Some(7);
    request.sampling.frequency_penalty = Some(0.25);
    request.sampling.presence_penalty = Some(0.5);
    request.user = Some("u-1".into());
    request.extra.insert("logprobs".into(), json!(false));
    request
}

/// A whole answer as Cohere writes it.
fn answer(message: Value, finish: &str, usage: Value) -> Value {
    json!({"id": "5a2e1c3b-0000-4000-8000-000000000001", "finish_reason": finish,
           "message": message, "usage": usage})
}

fn both_usages() -> Value {
    json!({"billed_units": {"input_tokens": 21, "output_tokens": 5},
           "tokens": {"input_tokens": 186, "output_tokens": 5}})
}

#[tokio::test]
async fn a_chat_sends_coheres_format_and_reads_the_answer() {
    let (upstream, provider) = provider().await;
    upstream.push(
        CHAT,
        Reply::json(
            200,
            answer(
                json!({"role": "assistant", "content": [
                    {"type": "text", "text": "{\"sky\": "},
                    {"type": "text", "text": "\"clear\"}"}
                ]}),
                "COMPLETE",
                both_usages(),
            ),
        ),
    );
    let response = provider.chat(&rich_request()).await.unwrap();
    assert_eq!(response.message.role, Role::Assistant);
    assert_eq!(response.message.joined_text(), "{\"sky\": \"clear\"}");
    assert!(response.message.tool_calls.is_empty());
    assert_eq!(response.finish_reason, FinishReason::Stop);
    assert_eq!(
        response.id.as_deref(),
        Some("5a2e1c3b-0000-4000-8000-000000000001")
    );
    // `tokens` counts what the model really read, Cohere's template included.
    assert_eq!(
        response.usage,
        Some(Usage {
            input_tokens: 186,
            output_tokens: 5
        })
    );

    let sent = upstream.last_request();
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.path, CHAT);
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(sent.header("x-client-name"), Some("kai-tests"));
    assert_eq!(sent.header("content-type"), Some("application/json"));
    assert_eq!(
        sent.json,
        json!({
            "model": "command-a-03-2025",
            "messages": [
                {"role": "system", "content": "You are kai."},
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [
                    {"type": "text", "text": "What is in these pictures, and what is the weather there?"},
                    {"type": "image_url", "image_url": {"url": "https://example.com/zurich.jpg"}},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}}
                ]},
                {"role": "assistant", "tool_plan": "I will look up the weather.", "tool_calls": [
                    {"id": "get_weather_1", "type": "function",
                     "function": {"name": "get_weather", "arguments": "{\"city\":\"Zürich\"}"}}
                ]},
                {"role": "tool", "tool_call_id": "get_weather_1", "content": "18°C, sun"},
                {"role": "user", "content": "And tomorrow?"}
            ],
            // One named tool: REQUIRED, with that tool alone on offer.
            "tools": [{"type": "function", "function": {
                "name": "get_weather", "description": "The weather in a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
            }}],
            "strict_tools": true,
            "tool_choice": "REQUIRED",
            "response_format": {"type": "json_object", "json_schema":
                {"type": "object", "properties": {"sky": {"type": "string"}}, "required": ["sky"]}},
            "temperature": 0.5,
            "p": 0.9,
            "k": 40,
            "max_tokens": 256,
            "stop_sequences": ["\n\n", "END"],
            "seed": 7,
            "frequency_penalty": 0.25,
            "presence_penalty": 0.5
        })
    );
}

#[tokio::test]
async fn tool_choices_and_formats_map_to_coheres_modes() {
    let (upstream, provider) = provider().await;
    let reply = Reply::json(
        200,
        answer(
            json!({"role": "assistant", "content": [{"type": "text", "text": "ok"}]}),
            "COMPLETE",
            both_usages(),
        ),
    );
    upstream.always(CHAT, reply);
    let mut request = hi();
    request.tools = vec![
        tool("get_weather", "The weather", None),
        tool("get_time", "The time", Some(false)),
    ];

    // Auto is Cohere's default: nothing is sent, and every tool is offered.
    request.tool_choice = Some(ToolChoice::Auto);
    request.response_format = Some(ResponseFormat::JsonObject);
    provider.chat(&request).await.unwrap();
    let sent = upstream.last_request().json;
    assert!(sent.get("tool_choice").is_none(), "{sent}");
    assert!(sent.get("strict_tools").is_none(), "{sent}");
    assert_eq!(sent["tools"].as_array().unwrap().len(), 2);
    assert_eq!(sent["response_format"], json!({"type": "json_object"}));
    assert!(sent.get("stream").is_none(), "{sent}");

    request.tool_choice = Some(ToolChoice::Required);
    request.response_format = Some(ResponseFormat::Text);
    provider.chat(&request).await.unwrap();
    let sent = upstream.last_request().json;
    assert_eq!(sent["tool_choice"], "REQUIRED");
    assert_eq!(sent["tools"].as_array().unwrap().len(), 2);
    assert_eq!(sent["response_format"], json!({"type": "text"}));

    request.tool_choice = Some(ToolChoice::None);
    provider.chat(&request).await.unwrap();
    assert_eq!(upstream.last_request().json["tool_choice"], "NONE");

    // A named tool that is not on offer is refused before anything is sent.
    let before = upstream.requests().len();
    request.tool_choice = Some(ToolChoice::Tool("get_news".into()));
    let err = provider.chat(&request).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadRequest);
    assert!(err.message.contains("`get_news`"), "{err}");
    let err = provider.chat_stream(&request).await.err().unwrap();
    assert_eq!(err.kind, ErrorKind::BadRequest);
    assert_eq!(upstream.requests().len(), before);

    // A bare request sends only the model and the messages.
    provider.chat(&hi()).await.unwrap();
    assert_eq!(
        upstream.last_request().json,
        json!({"model": "command-a-03-2025", "messages": [{"role": "user", "content": "Hi"}]})
    );
}

#[tokio::test]
async fn tool_calls_come_back_whole_without_the_plan_and_go_back_upstream() {
    let (upstream, provider) = provider().await;
    upstream.push(
        CHAT,
        Reply::json(
            200,
            answer(
                json!({"role": "assistant",
                "tool_plan": "I will look up the weather in Zürich and the time.",
                "tool_calls": [
                    {"id": "get_weather_k88p", "type": "function",
                     "function": {"name": "get_weather", "arguments": "{\"city\":\"Zürich\"}"}},
                    {"id": "get_time_9xq2", "type": "function",
                     "function": {"name": "get_time", "arguments": "{\"city\":\"Zürich\"}"}}
                ]}),
                "TOOL_CALL",
                // Only what Cohere bills for, as some answers count.
                json!({"billed_units": {"input_tokens": 30, "output_tokens": 12}}),
            ),
        ),
    );
    let mut request = hi();
    request.tools = vec![
        tool("get_weather", "The weather", None),
        tool("get_time", "The time", None),
    ];
    let response = provider.chat(&request).await.unwrap();
    assert_eq!(response.finish_reason, FinishReason::ToolCalls);
    assert!(response.message.content.is_empty(), "the plan is no answer");
    assert_eq!(
        response.message.tool_calls,
        vec![
            ToolCall {
                id: "get_weather_k88p".into(),
                name: "get_weather".into(),
                arguments: "{\"city\":\"Zürich\"}".into()
            },
            ToolCall {
                id: "get_time_9xq2".into(),
                name: "get_time".into(),
                arguments: "{\"city\":\"Zürich\"}".into()
            },
        ]
    );
    assert_eq!(
        response.usage,
        Some(Usage {
            input_tokens: 30,
            output_tokens: 12
        })
    );

    // The calls and their answers go back as Cohere has them.
    upstream.push(
        CHAT,
        Reply::json(
            200,
            answer(
                json!({"role": "assistant", "content": [{"type": "text", "text": "18°C at 14:00."}]}),
                "COMPLETE",
                both_usages(),
            ),
        ),
    );
    request.messages.push(response.message.clone());
    for (id, result) in [("get_weather_k88p", "18°C"), ("get_time_9xq2", "14:00")] {
        let mut answer = message(Role::Tool, vec![text(result)]);
        answer.tool_call_id = Some(id.into());
        request.messages.push(answer);
    }
    let response = provider.chat(&request).await.unwrap();
    assert_eq!(response.message.joined_text(), "18°C at 14:00.");
    let sent = upstream.last_request().json;
    assert_eq!(
        sent["messages"].as_array().unwrap()[1..],
        [
            json!({"role": "assistant", "tool_calls": [
                {"id": "get_weather_k88p", "type": "function",
                 "function": {"name": "get_weather", "arguments": "{\"city\":\"Zürich\"}"}},
                {"id": "get_time_9xq2", "type": "function",
                 "function": {"name": "get_time", "arguments": "{\"city\":\"Zürich\"}"}}
            ]}),
            json!({"role": "tool", "tool_call_id": "get_weather_k88p", "content": "18°C"}),
            json!({"role": "tool", "tool_call_id": "get_time_9xq2", "content": "14:00"}),
        ]
    );
}

#[tokio::test]
async fn assistant_turns_from_other_providers_replay_as_cohere_expects() {
    let (upstream, provider) = provider().await;
    upstream.push(
        CHAT,
        Reply::json(
            200,
            answer(
                json!({"role": "assistant", "content": [{"type": "text", "text": "ok"}]}),
                "COMPLETE",
                both_usages(),
            ),
        ),
    );
    let mut refused = message(Role::Assistant, vec![]);
    refused.refusal = Some("I can't help with that.".into());
    let request = ChatRequest::new(
        "command-a-03-2025",
        vec![
            Message::text(Role::User, "Do something bad"),
            refused,
            Message::text(Role::User, "Then say hi"),
            Message::text(Role::Assistant, "Hi!"),
        ],
    );
    provider.chat(&request).await.unwrap();
    let sent = upstream.last_request().json;
    assert_eq!(
        sent["messages"][1],
        json!({"role": "assistant", "content": "I can't help with that."})
    );
    assert_eq!(
        sent["messages"][3],
        json!({"role": "assistant", "content": "Hi!"})
    );
}

#[tokio::test]
async fn finish_reasons_map_to_kais() {
    let (upstream, provider) = provider().await;
    let cases = [
        ("COMPLETE", FinishReason::Stop),
        ("STOP_SEQUENCE", FinishReason::Stop),
        ("MAX_TOKENS", FinishReason::Length),
        ("TOOL_CALL", FinishReason::ToolCalls),
        ("ERROR_TOXIC", FinishReason::ContentFilter),
        ("complete", FinishReason::Stop),
        ("ERROR", FinishReason::Other("ERROR".into())),
        ("TIMEOUT", FinishReason::Other("TIMEOUT".into())),
    ];
    for (reason, expected) in cases {
        upstream.push(
            CHAT,
            Reply::json(
                200,
                answer(
                    json!({"role": "assistant", "content": [{"type": "text", "text": "…"}]}),
                    reason,
                    both_usages(),
                ),
            ),
        );
        let response = provider.chat(&hi()).await.unwrap();
        assert_eq!(response.finish_reason, expected, "{reason}");
    }

    // Reasoning models add `thinking` parts: kai keeps only the text.
    upstream.push(
        CHAT,
        Reply::json(
            200,
            json!({"id": "x", "finish_reason": "COMPLETE", "message": {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "The user greets me."},
                {"type": "text", "text": "Hello!"}
            ]}}),
        ),
    );
    let response = provider.chat(&hi()).await.unwrap();
    assert_eq!(response.message.content, vec![text("Hello!")]);
    assert_eq!(response.usage, None);
}

/// A streamed answer to a question, as Cohere sends it: `message-start`, a content block in
/// pieces (multi-byte characters included), a citation, `message-end` with both usage shapes.
fn text_stream() -> Vec<(&'static str, String)> {
    let content = |text: &str| json!({"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": text}}}});
    let events = [
        (
            "message-start",
            json!({"id": "29f14a5a-0000-4000-8000-000000000002", "type": "message-start",
            "delta": {"message": {"role": "assistant", "content": [], "tool_plan": "", "tool_calls": [], "citations": []}}}),
        ),
        (
            "content-start",
            json!({"type": "content-start", "index": 0,
            "delta": {"message": {"content": {"type": "text", "text": ""}}}}),
        ),
        ("content-delta", content("Il fait 18 °C à ")),
        ("content-delta", content("Zürich — ")),
        ("content-delta", content("☀️ ensoleillé, 日本語も。")),
        (
            "citation-start",
            json!({"type": "citation-start", "index": 0, "delta": {"message": {"citations":
            {"start": 8, "end": 13, "text": "18 °C", "sources": [{"type": "tool", "id": "get_weather_1:0",
             "tool_output": {"temperature": "18C"}}]}}}}),
        ),
        ("citation-end", json!({"type": "citation-end", "index": 0})),
        ("content-end", json!({"type": "content-end", "index": 0})),
        (
            "message-end",
            json!({"type": "message-end", "delta": {"finish_reason": "COMPLETE",
            "usage": {"billed_units": {"input_tokens": 21, "output_tokens": 14},
                      "tokens": {"input_tokens": 186, "output_tokens": 14}}}}),
        ),
    ];
    events
        .into_iter()
        .map(|(name, data)| (name, data.to_string()))
        .collect()
}

/// A streamed tool-calling step, as Cohere sends it: the plan in pieces, then two calls whose
/// arguments arrive in fragments, then `message-end` with billed units only.
fn tool_stream() -> Vec<(&'static str, String)> {
    let plan =
        |text: &str| json!({"type": "tool-plan-delta", "delta": {"message": {"tool_plan": text}}});
    let start = |index: u32, id: &str, name: &str, arguments: &str| {
        json!({"type": "tool-call-start", "index": index, "delta": {"message": {"tool_calls":
            {"id": id, "type": "function", "function": {"name": name, "arguments": arguments}}}}})
    };
    let delta = |index: u32, arguments: &str| {
        json!({"type": "tool-call-delta", "index": index,
               "delta": {"message": {"tool_calls": {"function": {"arguments": arguments}}}}})
    };
    let end = |index: u32| json!({"type": "tool-call-end", "index": index});
    let events = [
        (
            "message-start",
            json!({"id": "29f14a5a-0000-4000-8000-000000000003", "type": "message-start",
            "delta": {"message": {"role": "assistant", "content": [], "tool_plan": "", "tool_calls": [], "citations": []}}}),
        ),
        ("tool-plan-delta", plan("I will look up")),
        ("tool-plan-delta", plan(" the weather and the time.")),
        (
            "tool-call-start",
            start(0, "get_weather_a1", "get_weather", ""),
        ),
        ("tool-call-delta", delta(0, "{\n    \"")),
        ("tool-call-delta", delta(0, "city\": \"Zü")),
        ("tool-call-delta", delta(0, "rich\"\n}")),
        ("tool-call-end", end(0)),
        (
            "tool-call-start",
            start(1, "get_time_b2", "get_time", "{\"city\":"),
        ),
        ("tool-call-delta", delta(1, " \"東京\"}")),
        ("tool-call-end", end(1)),
        (
            "message-end",
            json!({"type": "message-end", "delta": {"finish_reason": "TOOL_CALL",
            "usage": {"billed_units": {"input_tokens": 40, "output_tokens": 31}}}}),
        ),
    ];
    events
        .into_iter()
        .map(|(name, data)| (name, data.to_string()))
        .collect()
}

fn sse(events: &[(&'static str, String)]) -> Reply {
    let events: Vec<(&str, &str)> = events
        .iter()
        .map(|(name, data)| (*name, data.as_str()))
        .collect();
    Reply::sse_named(&events)
}

/// The body [`sse`] sends, to cut it at a known place.
fn sse_body(events: &[(&'static str, String)]) -> String {
    events
        .iter()
        .map(|(name, data)| format!("event: {name}\ndata: {data}\n\n"))
        .collect()
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

fn build(events: &[ChatEvent]) -> kai_models::chat::ChatResponse {
    let mut builder = ResponseBuilder::default();
    for event in events {
        builder.push(event);
    }
    builder.finish()
}

#[tokio::test]
async fn a_streamed_answer_decodes_event_by_event() {
    let (upstream, provider) = provider().await;
    upstream.push(CHAT, sse(&text_stream()));
    let (events, error) = collect(provider.as_ref(), &hi()).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(
        events,
        vec![
            ChatEvent::Text("Il fait 18 °C à ".into()),
            ChatEvent::Text("Zürich — ".into()),
            ChatEvent::Text("☀️ ensoleillé, 日本語も。".into()),
            ChatEvent::Finish(FinishReason::Stop),
            ChatEvent::Usage(Usage {
                input_tokens: 186,
                output_tokens: 14
            }),
        ]
    );
    let sent = upstream.last_request();
    assert_eq!(sent.path, CHAT);
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(
        sent.json,
        json!({"model": "command-a-03-2025", "messages": [{"role": "user", "content": "Hi"}],
               "stream": true})
    );

    upstream.push(CHAT, sse(&tool_stream()));
    let (events, error) = collect(provider.as_ref(), &hi()).await;
    assert!(error.is_none(), "{error:?}");
    let call =
        |index: u32, id: Option<&str>, name: Option<&str>, arguments: &str| ChatEvent::ToolCall {
            index,
            id: id.map(str::to_owned),
            name: name.map(str::to_owned),
            arguments: arguments.into(),
        };
    assert_eq!(
        events,
        vec![
            call(0, Some("get_weather_a1"), Some("get_weather"), ""),
            call(0, None, None, "{\n    \""),
            call(0, None, None, "city\": \"Zü"),
            call(0, None, None, "rich\"\n}"),
            call(1, Some("get_time_b2"), Some("get_time"), "{\"city\":"),
            call(1, None, None, " \"東京\"}"),
            ChatEvent::Finish(FinishReason::ToolCalls),
            ChatEvent::Usage(Usage {
                input_tokens: 40,
                output_tokens: 31
            }),
        ]
    );
}

#[tokio::test]
async fn streams_split_at_awkward_places_decode_whole() {
    let (upstream, provider) = provider().await;
    for size in [3, 7, 13, 64] {
        upstream.push(CHAT, sse(&text_stream()).split(size));
        let (events, error) = collect(provider.as_ref(), &hi()).await;
        assert!(error.is_none(), "split {size}: {error:?}");
        let response = build(&events);
        assert_eq!(
            response.message.joined_text(),
            "Il fait 18 °C à Zürich — ☀️ ensoleillé, 日本語も。",
            "split {size}"
        );
        assert_eq!(response.finish_reason, FinishReason::Stop);
        assert_eq!(response.usage.unwrap().total(), 200);
        assert!(matches!(events.last(), Some(ChatEvent::Usage(_))));

        upstream.push(CHAT, sse(&tool_stream()).split(size));
        let (events, error) = collect(provider.as_ref(), &hi()).await;
        assert!(error.is_none(), "split {size}: {error:?}");
        let response = build(&events);
        assert_eq!(response.message.joined_text(), "", "the plan is no answer");
        assert_eq!(response.finish_reason, FinishReason::ToolCalls);
        assert_eq!(
            response.message.tool_calls,
            vec![
                ToolCall {
                    id: "get_weather_a1".into(),
                    name: "get_weather".into(),
                    arguments: "{\n    \"city\": \"Zürich\"\n}".into()
                },
                ToolCall {
                    id: "get_time_b2".into(),
                    name: "get_time".into(),
                    arguments: "{\"city\": \"東京\"}".into()
                },
            ],
            "split {size}"
        );
        assert_eq!(
            events
                .iter()
                .filter(|event| matches!(event, ChatEvent::Usage(_)))
                .count(),
            1,
            "usage comes once"
        );
        assert_eq!(response.usage.unwrap().total(), 71);
    }
}

#[tokio::test]
async fn coheres_tool_call_indexes_become_kais_in_order_of_appearance() {
    let (upstream, provider) = provider().await;
    // Indexes that do not start at 0, calls that interleave, and an event kai does not know.
    let events = [
        json!({"type": "tool-call-start", "index": 2, "delta": {"message": {"tool_calls":
            {"id": "a", "type": "function", "function": {"name": "first", "arguments": ""}}}}}),
        json!({"type": "tool-call-start", "index": 5, "delta": {"message": {"tool_calls":
            {"id": "b", "type": "function", "function": {"name": "second", "arguments": "{"}}}}}),
        json!({"type": "tool-call-delta", "index": 5, "delta": {"message": {"tool_calls": {"function": {"arguments": "}"}}}}}),
        json!({"type": "debug-info", "delta": {"anything": true}}),
        json!({"type": "tool-call-delta", "index": 2, "delta": {"message": {"tool_calls": {"function": {"arguments": "{}"}}}}}),
        json!({"type": "message-end", "delta": {}}),
    ]
    .map(|event| event.to_string());
    let data: Vec<&str> = events.iter().map(String::as_str).collect();
    upstream.push(CHAT, Reply::sse(&data));
    let (events, error) = collect(provider.as_ref(), &hi()).await;
    assert!(error.is_none(), "{error:?}");
    let response = build(&events);
    let calls: Vec<(&str, &str, &str)> = response
        .message
        .tool_calls
        .iter()
        .map(|call| {
            (
                call.id.as_str(),
                call.name.as_str(),
                call.arguments.as_str(),
            )
        })
        .collect();
    assert_eq!(calls, [("a", "first", "{}"), ("b", "second", "{}")]);
    // No finish reason given: calls were made, so that is why it stopped. No usage either.
    assert_eq!(
        events.last(),
        Some(&ChatEvent::Finish(FinishReason::ToolCalls))
    );

    // A call continued without a start cannot be placed.
    upstream.push(
        CHAT,
        Reply::sse(&[
            r#"{"type": "tool-call-delta", "index": 9, "delta": {"message": {"tool_calls": {"function": {"arguments": "{}"}}}}}"#,
        ]),
    );
    let (_, error) = collect(provider.as_ref(), &hi()).await;
    let error = error.unwrap();
    assert_eq!(error.kind, ErrorKind::Malformed);
    assert!(error.message.contains("tool call 9"), "{error}");
}

#[tokio::test]
async fn error_answers_are_classified_with_coheres_message() {
    let (upstream, provider) = provider().await;
    let error =
        |message: &str| json!({"id": "0b6a7c7e-0000-4000-8000-00000000000e", "message": message});
    upstream.push(
        CHAT,
        Reply::json(401, error(&format!("invalid api token {KEY}"))),
    );
    upstream.push(
        CHAT,
        Reply::json(
            429,
            error("You are using a Trial key, which is limited to 20 API calls / minute."),
        )
        .header("retry-after", "3"),
    );
    upstream.push(
        CHAT,
        Reply::json(
            500,
            error("internal server error, this has been reported to our developers"),
        ),
    );
    upstream.push(
        CHAT,
        Reply::raw(503, "text/html", "<html>Service Unavailable</html>"),
    );
    upstream.push(
        CHAT,
        Reply::json(
            400,
            error("too many tokens: total number of tokens in the prompt cannot exceed 128000"),
        ),
    );
    upstream.push(
        CHAT,
        Reply::json(400, error("invalid request: message must not be empty")),
    );
    upstream.push(
        CHAT,
        Reply::raw(
            200,
            "application/json",
            "{\"id\": \"x\", \"message\": [ oops",
        ),
    );
    upstream.push(
        CHAT,
        Reply::json(200, json!({"id": "x", "finish_reason": "COMPLETE"})),
    );

    let err = provider.chat(&hi()).await.unwrap_err();
    assert_eq!(
        (err.kind, err.status),
        (ErrorKind::Authentication, Some(401))
    );
    assert!(err.message.contains("invalid api token"), "{err}");
    assert!(!err.to_string().contains(KEY), "the key leaked: {err}");

    let err = provider.chat(&hi()).await.unwrap_err();
    assert_eq!((err.kind, err.status), (ErrorKind::RateLimited, Some(429)));
    assert_eq!(err.retry_after, Some(Duration::from_secs(3)));
    assert!(err.message.contains("Trial key"), "{err}");

    let err = provider.chat(&hi()).await.unwrap_err();
    assert_eq!((err.kind, err.status), (ErrorKind::Server, Some(500)));
    assert!(err.message.contains("internal server error"), "{err}");

    let err = provider.chat(&hi()).await.unwrap_err();
    assert_eq!((err.kind, err.status), (ErrorKind::Overloaded, Some(503)));
    assert!(err.message.contains("Service Unavailable"), "{err}");

    let err = provider.chat(&hi()).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::ContextLengthExceeded);

    let err = provider.chat(&hi()).await.unwrap_err();
    assert_eq!((err.kind, err.status), (ErrorKind::BadRequest, Some(400)));
    assert!(err.message.contains("must not be empty"), "{err}");

    let err = provider.chat(&hi()).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Malformed);
    assert!(err.message.contains("oops"), "{err}");

    // JSON, but no message.
    let err = provider.chat(&hi()).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Malformed);
    assert!(err.message.contains("message"), "{err}");
}

#[tokio::test]
async fn broken_streams_end_with_the_right_error() {
    let (upstream, provider) = provider().await;
    let stream = text_stream();
    let whole = sse(&stream);
    // Everything but `message-end`: all the text has arrived, the end has not.
    let before_end = sse_body(&stream).find("event: message-end").unwrap();
    let all_text = || {
        vec![
            ChatEvent::Text("Il fait 18 °C à ".into()),
            ChatEvent::Text("Zürich — ".into()),
            ChatEvent::Text("☀️ ensoleillé, 日本語も。".into()),
        ]
    };

    // The connection resets.
    upstream.push(CHAT, whole.clone().cut_after(before_end, StreamEnd::Reset));
    let (events, error) = collect(provider.as_ref(), &hi()).await;
    assert_eq!(events, all_text());
    assert_eq!(error.unwrap().kind, ErrorKind::Interrupted);

    // The connection resets in the middle of an event, and of a character: the events that
    // came whole are kept.
    let mid_char = sse_body(&stream).find("☀️").unwrap() + 1;
    upstream.push(CHAT, whole.clone().cut_after(mid_char, StreamEnd::Reset));
    let (events, error) = collect(provider.as_ref(), &hi()).await;
    assert_eq!(events, all_text()[..2]);
    assert_eq!(error.unwrap().kind, ErrorKind::Interrupted);

    // The server stops sending but keeps the connection open.
    upstream.push(CHAT, whole.clone().cut_after(before_end, StreamEnd::Stall));
    let (events, error) = collect(provider.as_ref(), &hi()).await;
    assert_eq!(events, all_text());
    assert_eq!(error.unwrap().kind, ErrorKind::Stalled);

    // The server closes cleanly, but without `message-end`.
    upstream.push(CHAT, whole.clone().cut_after(before_end, StreamEnd::Close));
    let (events, error) = collect(provider.as_ref(), &hi()).await;
    assert_eq!(events, all_text());
    let error = error.unwrap();
    assert_eq!(error.kind, ErrorKind::Interrupted);
    assert!(error.message.contains("message-end"), "{error}");

    // Generation failed part-way, as `message-end` says.
    upstream.push(
        CHAT,
        Reply::sse(&[
            r#"{"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": "Half"}}}}"#,
            r#"{"type": "message-end", "delta": {"error": "internal error during generation", "finish_reason": "ERROR"}}"#,
        ]),
    );
    let (events, error) = collect(provider.as_ref(), &hi()).await;
    assert_eq!(events, vec![ChatEvent::Text("Half".into())]);
    let error = error.unwrap();
    assert_eq!(error.kind, ErrorKind::Server);
    assert!(
        error.message.contains("internal error during generation"),
        "{error}"
    );

    // An event that is not JSON, or has no type.
    for data in ["{not json", r#"{"delta": {}}"#] {
        upstream.push(CHAT, Reply::sse(&[data]));
        let (_, error) = collect(provider.as_ref(), &hi()).await;
        assert_eq!(error.unwrap().kind, ErrorKind::Malformed, "{data}");
    }

    // Refused before the stream began: the error comes from the call itself.
    upstream.push(
        CHAT,
        Reply::json(429, json!({"id": "x", "message": "slow down"})).header("retry-after", "1"),
    );
    let err = provider.chat_stream(&hi()).await.err().unwrap();
    assert_eq!(err.kind, ErrorKind::RateLimited);
    assert_eq!(err.retry_after, Some(Duration::from_secs(1)));
}

fn embeddings(vectors: &[Vec<f32>], input_tokens: u64) -> Value {
    json!({
        "id": "e1b2c3d4-0000-4000-8000-000000000004",
        "embeddings": {"float": vectors},
        "texts": vec!["…"; vectors.len()],
        "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": input_tokens}},
        "response_type": "embeddings_by_type"
    })
}

#[tokio::test]
async fn embeddings_say_what_the_texts_are_for() {
    let (upstream, provider) = provider().await;
    upstream.push(
        EMBED,
        Reply::json(200, embeddings(&[vec![0.25, 0.75], vec![0.5, -1.0]], 6)),
    );
    let mut request = EmbedRequest::new("embed-v4.0", vec!["one".into(), "two".into()]);
    request.input_type = Some(InputType::Query);
    request.dimensions = Some(256);
    request.user = Some("u-1".into());
    let response = provider.embed(&request).await.unwrap();
    assert_eq!(response.vectors, vec![vec![0.25, 0.75], vec![0.5, -1.0]]);
    assert_eq!(
        response.usage,
        Some(Usage {
            input_tokens: 6,
            output_tokens: 0
        })
    );
    let sent = upstream.last_request();
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.path, EMBED);
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(
        sent.json,
        json!({"model": "embed-v4.0", "texts": ["one", "two"], "input_type": "search_query",
               "embedding_types": ["float"], "output_dimension": 256})
    );

    // Cohere's v3+ models need an input type: a request that does not say gets documents.
    for (input_type, expected) in [
        (None, "search_document"),
        (Some(InputType::Document), "search_document"),
        (Some(InputType::Classification), "classification"),
        (Some(InputType::Clustering), "clustering"),
    ] {
        upstream.push(EMBED, Reply::json(200, embeddings(&[vec![1.0]], 1)));
        let mut request = EmbedRequest::new("embed-english-v3.0", vec!["one".into()]);
        request.input_type = input_type;
        provider.embed(&request).await.unwrap();
        let sent = upstream.last_request().json;
        assert_eq!(sent["input_type"], expected, "{input_type:?}");
        assert!(sent.get("output_dimension").is_none(), "{sent}");
    }
}

#[tokio::test]
async fn large_embedding_batches_go_in_coheres_sized_requests() {
    let (upstream, provider) = provider().await;
    let inputs: Vec<String> = (0..100).map(|i| format!("text {i}")).collect();
    let vectors: Vec<Vec<f32>> = (0..100u8).map(|i| vec![f32::from(i)]).collect();
    upstream.push(EMBED, Reply::json(200, embeddings(&vectors[..96], 500)));
    upstream.push(EMBED, Reply::json(200, embeddings(&vectors[96..], 20)));
    let response = provider
        .embed(&EmbedRequest::new("embed-v4.0", inputs.clone()))
        .await
        .unwrap();
    assert_eq!(response.vectors, vectors);
    assert_eq!(response.usage.unwrap().input_tokens, 520);
    let sent = upstream.requests();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].json["texts"], json!(inputs[..96]));
    assert_eq!(sent[1].json["texts"], json!(inputs[96..]));
}

#[tokio::test]
async fn embeddings_that_do_not_match_the_texts_are_refused() {
    let (upstream, provider) = provider().await;
    let request = EmbedRequest::new("embed-v4.0", vec!["one".into(), "two".into()]);

    upstream.push(EMBED, Reply::json(200, embeddings(&[vec![1.0]], 1)));
    let err = provider.embed(&request).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Malformed);
    assert!(err.message.contains("1 embeddings for 2 texts"), "{err}");

    upstream.push(
        EMBED,
        Reply::json(
            200,
            json!({"id": "x", "embeddings": {"int8": [[1], [2]]}, "meta": {}}),
        ),
    );
    let err = provider.embed(&request).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Malformed);
    assert!(err.message.contains("`float`"), "{err}");

    upstream.push(
        EMBED,
        Reply::json(400, json!({"id": "x", "message": "invalid request: output_dimension must be one of 256, 512, 1024, 1536"})),
    );
    let err = provider.embed(&request).await.unwrap_err();
    assert_eq!((err.kind, err.status), (ErrorKind::BadRequest, Some(400)));
    assert!(err.message.contains("output_dimension"), "{err}");
}

#[tokio::test]
async fn models_are_listed_across_pages() {
    let (upstream, provider) = provider().await;
    upstream.push(
        MODELS,
        Reply::json(
            200,
            json!({"models": [
                {"name": "command-a-03-2025", "endpoints": ["generate", "chat", "summarize"],
                 "finetuned": false, "context_length": 256000},
                {"name": "rerank-v3.5", "endpoints": ["rerank"], "finetuned": false}
            ], "next_page_token": "page-2"}),
        ),
    );
    upstream.push(
        MODELS,
        Reply::json(
            200,
            json!({"models": [
                {"name": "embed-v4.0", "endpoints": ["embed", "classify"], "finetuned": false},
                {"name": "command-r7b-12-2024"}
            ]}),
        ),
    );
    assert_eq!(
        provider.list_models().await.unwrap(),
        vec!["command-a-03-2025", "embed-v4.0", "command-r7b-12-2024"]
    );
    let sent = upstream.requests();
    assert_eq!(sent.len(), 2);
    assert!(
        sent.iter()
            .all(|request| request.method == "GET" && request.path == MODELS)
    );
    assert_eq!(sent[0].query.as_deref(), Some("page_size=1000"));
    assert_eq!(
        sent[1].query.as_deref(),
        Some("page_size=1000&page_token=page-2")
    );
    assert_eq!(
        sent[1].header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
}

#[tokio::test]
async fn a_model_list_that_never_ends_is_read_a_few_pages_deep() {
    let (upstream, provider) = provider().await;
    upstream.always(
        MODELS,
        Reply::json(
            200,
            json!({"models": [{"name": "command-a-03-2025", "endpoints": ["chat"]}],
                   "next_page_token": "again"}),
        ),
    );
    let models = provider.list_models().await.unwrap();
    assert!((2..=10).contains(&models.len()), "{models:?}");
    assert_eq!(upstream.requests().len(), models.len());

    upstream.push(
        MODELS,
        Reply::json(401, json!({"id": "x", "message": "invalid api token"})),
    );
    let err = provider.list_models().await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Authentication);
}
