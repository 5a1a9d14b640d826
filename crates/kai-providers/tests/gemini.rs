//! The Gemini adapter against a loopback server replaying Google's documented wire format:
//! what kai sends upstream, and what it makes of every answer.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use futures_util::StreamExt;
use kai_config::ProviderKind;
use kai_models::chat::{
    ChatEvent, ChatRequest, EmbedRequest, FinishReason, ImageSource, InputType, Message, Part,
    ResponseBuilder, ResponseFormat, Role, ToolCall, ToolChoice, ToolDefinition,
};
use kai_models::{ErrorKind, Provider, ProviderError};
use kai_providers::ProviderSpec;
use kai_providers::testing::{MockUpstream, Reply, StreamEnd};
use serde_json::{Value, json};

const KEY: &str = "AIza-test-0123456789";
const GENERATE: &str = "/v1beta/models/gemini-2.0-flash:generateContent";
const STREAM: &str = "/v1beta/models/gemini-2.0-flash:streamGenerateContent";
const NO_SIGNATURE: &str = "skip_thought_signature_validator";

fn spec(upstream: &MockUpstream) -> ProviderSpec {
    ProviderSpec {
        name: "google".into(),
        kind: ProviderKind::Gemini,
        base_url: upstream.url("").parse().unwrap(),
        api_key: Some(kai_config::Secret::new(KEY.into())),
        connect_timeout: Duration::from_secs(2),
        timeout: Duration::from_secs(2),
        stream_idle_timeout: Duration::from_millis(400),
        headers: [("x-goog-user-project".to_owned(), "kai-test".to_owned())].into(),
        proxies: Default::default(),
    }
}

async fn provider() -> (MockUpstream, std::sync::Arc<dyn Provider>) {
    let upstream = MockUpstream::start().await;
    let provider = kai_providers::connect(&spec(&upstream)).unwrap();
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

fn tool_answer(id: &str, output: &str) -> Message {
    Message {
        tool_call_id: Some(id.into()),
        ..message(Role::Tool, vec![text(output)])
    }
}

fn call(id: &str, name: &str, arguments: &str) -> ToolCall {
    ToolCall {
        id: id.into(),
        name: name.into(),
        arguments: arguments.into(),
    }
}

fn weather_tool() -> ToolDefinition {
    ToolDefinition {
        name: "get_weather".into(),
        description: Some("The weather in a city".into()),
        parameters: json!({"type": "object", "properties": {"city": {"type": "string"}},
                           "required": ["city"], "additionalProperties": false}),
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

fn ask(words: &str) -> ChatRequest {
    ChatRequest::new("gemini-2.0-flash", vec![Message::text(Role::User, words)])
}

/// System and developer instructions, an inline image, a finished round of two tool calls
/// with their answers, then the user's next question; tools, a tool choice naming one,
/// sampling, stop sequences and a JSON schema for the answer.
fn rich_request() -> ChatRequest {
    let mut request = ChatRequest::new(
        "gemini-2.0-flash",
        vec![
            Message::text(Role::System, "You are kai."),
            Message::text(Role::Developer, "Be brief."),
            message(
                Role::User,
                vec![
                    text("What is in this picture?"),
                    Part::Image {
                        source: ImageSource::Base64 {
                            media_type: "image/png".into(),
                            data: "iVBORw0KGgo=".into(),
                        },
                        detail: Some("low".into()),
                    },
                ],
            ),
            Message {
                tool_calls: vec![
                    call("call_0", "get_weather", "{\"city\":\"Paris\"}"),
                    call("call_1", "get_time", ""),
                ],
                ..message(Role::Assistant, vec![text("Let me check.")])
            },
            tool_answer("call_1", "{\"time\": \"12:00\"}"),
            tool_answer("call_0", "18°C, sun"),
            Message::text(Role::User, "And tomorrow?"),
        ],
    );
    request.tools = vec![weather_tool(), time_tool()];
    request.tool_choice = Some(ToolChoice::Tool("get_weather".into()));
    request.parallel_tool_calls = Some(false);
    request.response_format = Some(ResponseFormat::JsonSchema {
        name: "answer".into(),
        description: None,
        schema: json!({"type": "object", "properties": {"a": {"type": "string"}}}),
        strict: Some(true),
    });
    request.sampling.temperature = Some(0.5);
    request.sampling.top_p = Some(0.25);
    request.sampling.top_k = Some(40);
    request.sampling.max_tokens = Some(64);
    request.sampling.stop = vec!["\n\n".into()];
    request.sampling.seed = Some(7);
    request.sampling.presence_penalty = Some(0.5);
    request.sampling.frequency_penalty = Some(-0.25);
    request.user = Some("u-1".into());
    request.extra.insert("logprobs".into(), json!(false));
    request
}

/// An answer as Gemini sends it, whole or as one chunk of a stream.
fn answer(parts: Value, finish: Option<&str>, usage: Option<Value>) -> Value {
    let mut candidate = json!({"content": {"parts": parts, "role": "model"}, "index": 0});
    if let Some(finish) = finish {
        candidate["finishReason"] = json!(finish);
    }
    let mut answer = json!({"candidates": [candidate], "modelVersion": "gemini-2.0-flash",
                            "responseId": "resp-1"});
    if let Some(usage) = usage {
        answer["usageMetadata"] = usage;
    }
    answer
}

fn usage(prompt: u64, candidates: u64, thoughts: u64) -> Value {
    json!({"promptTokenCount": prompt, "candidatesTokenCount": candidates,
           "thoughtsTokenCount": thoughts, "totalTokenCount": prompt + candidates + thoughts})
}

#[tokio::test]
async fn a_chat_sends_geminis_format_and_reads_the_answer() {
    let (upstream, provider) = provider().await;
    upstream.push(
        GENERATE,
        Reply::json(
            200,
            answer(
                json!([{"text": "Hello"}, {"text": ", world!"}]),
                Some("STOP"),
                Some(usage(12, 5, 3)),
            ),
        ),
    );
    let response = provider.chat(&rich_request()).await.unwrap();
    assert_eq!(response.message.joined_text(), "Hello, world!");
    assert_eq!(response.message.role, Role::Assistant);
    assert!(response.message.tool_calls.is_empty());
    assert_eq!(response.finish_reason, FinishReason::Stop);
    assert_eq!(response.id.as_deref(), Some("resp-1"));
    let usage = response.usage.unwrap();
    assert_eq!((usage.input_tokens, usage.output_tokens), (12, 8));

    let sent = upstream.last_request();
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.path, GENERATE);
    assert_eq!(sent.query, None, "the key never goes in the query");
    assert_eq!(sent.header("x-goog-api-key"), Some(KEY));
    assert_eq!(sent.header("authorization"), None);
    assert_eq!(sent.header("x-goog-user-project"), Some("kai-test"));
    assert_eq!(sent.header("content-type"), Some("application/json"));
    assert_eq!(
        sent.json,
        json!({
            "contents": [
                {"role": "user", "parts": [
                    {"text": "What is in this picture?"},
                    {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}
                ]},
                {"role": "model", "parts": [
                    {"text": "Let me check."},
                    {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                     "thoughtSignature": NO_SIGNATURE},
                    {"functionCall": {"name": "get_time", "args": {}},
                     "thoughtSignature": NO_SIGNATURE}
                ]},
                // The tool answers and the next question are one user turn; each answer is
                // named by the function of the call it answers.
                {"role": "user", "parts": [
                    {"functionResponse": {"name": "get_time", "response": {"time": "12:00"}}},
                    {"functionResponse": {"name": "get_weather",
                                          "response": {"result": "18°C, sun"}}},
                    {"text": "And tomorrow?"}
                ]}
            ],
            "systemInstruction": {"parts": [{"text": "You are kai."}, {"text": "Be brief."}]},
            "tools": [{"functionDeclarations": [
                {"name": "get_weather", "description": "The weather in a city",
                 "parametersJsonSchema": {"type": "object",
                                          "properties": {"city": {"type": "string"}},
                                          "required": ["city"],
                                          "additionalProperties": false}},
                {"name": "get_time", "parametersJsonSchema": {"type": "object", "properties": {}}}
            ]}],
            "toolConfig": {"functionCallingConfig": {"mode": "ANY",
                                                     "allowedFunctionNames": ["get_weather"]}},
            "generationConfig": {
                "temperature": 0.5,
                "topP": 0.25,
                "topK": 40,
                "maxOutputTokens": 64,
                "stopSequences": ["\n\n"],
                "seed": 7,
                "presencePenalty": 0.5,
                "frequencyPenalty": -0.25,
                "responseMimeType": "application/json",
                "responseJsonSchema": {"type": "object", "properties": {"a": {"type": "string"}}}
            }
        })
    );
}

#[tokio::test]
async fn a_plain_request_sends_only_what_was_asked() {
    let (upstream, provider) = provider().await;
    upstream.push(
        GENERATE,
        Reply::json(200, answer(json!([{"text": "Hi"}]), Some("STOP"), None)),
    );
    let mut request = ask("Hi");
    request.response_format = Some(ResponseFormat::JsonObject);
    // A tool choice without tools has nothing to choose from.
    request.tool_choice = Some(ToolChoice::Required);
    let response = provider.chat(&request).await.unwrap();
    assert_eq!(response.usage, None);
    assert_eq!(
        upstream.last_request().json,
        json!({
            "contents": [{"role": "user", "parts": [{"text": "Hi"}]}],
            "generationConfig": {"responseMimeType": "application/json"}
        })
    );

    let mut request = ask("Hi");
    request.tools = vec![time_tool()];
    for (choice, config) in [
        (ToolChoice::Auto, json!({"mode": "AUTO"})),
        (ToolChoice::None, json!({"mode": "NONE"})),
        (ToolChoice::Required, json!({"mode": "ANY"})),
    ] {
        upstream.push(
            GENERATE,
            Reply::json(200, answer(json!([{"text": "Hi"}]), Some("STOP"), None)),
        );
        request.tool_choice = Some(choice);
        provider.chat(&request).await.unwrap();
        assert_eq!(
            upstream.last_request().json["toolConfig"],
            json!({"functionCallingConfig": config})
        );
    }
}

#[tokio::test]
async fn function_calls_get_ids_and_their_answers_go_back_by_name() {
    let (upstream, provider) = provider().await;
    upstream.push(
        GENERATE,
        Reply::json(
            200,
            answer(
                json!([
                    {"text": "I should look this up.", "thought": true},
                    {"text": "Checking both."},
                    {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                     "thoughtSignature": "c2lnbmF0dXJl"},
                    {"functionCall": {"name": "get_time"}}
                ]),
                Some("STOP"),
                Some(usage(20, 9, 0)),
            ),
        ),
    );
    let mut request = ask("Weather and time in Paris?");
    request.tools = vec![weather_tool(), time_tool()];
    let response = provider.chat(&request).await.unwrap();
    assert_eq!(response.finish_reason, FinishReason::ToolCalls);
    assert_eq!(
        response.message.joined_text(),
        "Checking both.",
        "thoughts are not the answer"
    );
    assert_eq!(
        response.message.tool_calls,
        vec![
            call("call_0", "get_weather", "{\"city\":\"Paris\"}"),
            call("call_1", "get_time", "{}"),
        ]
    );

    // The next turn: the calls go back as the model made them, the answers by name.
    request.messages.push(response.message.clone());
    request.messages.push(tool_answer("call_0", "[\"sun\"]"));
    request.messages.push(tool_answer("call_1", "12:00"));
    upstream.push(
        GENERATE,
        Reply::json(
            200,
            answer(json!([{"text": "Sunny, noon."}]), Some("STOP"), None),
        ),
    );
    let response = provider.chat(&request).await.unwrap();
    assert_eq!(response.finish_reason, FinishReason::Stop);
    let sent = upstream.last_request().json;
    assert_eq!(
        sent["contents"],
        json!([
            {"role": "user", "parts": [{"text": "Weather and time in Paris?"}]},
            {"role": "model", "parts": [
                {"text": "Checking both."},
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                 "thoughtSignature": NO_SIGNATURE},
                {"functionCall": {"name": "get_time", "args": {}},
                 "thoughtSignature": NO_SIGNATURE}
            ]},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"result": "[\"sun\"]"}}},
                {"functionResponse": {"name": "get_time", "response": {"result": "12:00"}}}
            ]}
        ])
    );

    // Ids restart with every answer: an answer goes to the latest call with its id.
    request.messages.push(response.message);
    request.messages.push(Message {
        tool_calls: vec![call("call_0", "get_time", "{}")],
        ..message(Role::Assistant, vec![])
    });
    request.messages.push(tool_answer("call_0", "13:00"));
    upstream.push(
        GENERATE,
        Reply::json(200, answer(json!([{"text": "One."}]), Some("STOP"), None)),
    );
    provider.chat(&request).await.unwrap();
    let sent = upstream.last_request().json;
    // Two assistant messages in a row are one model turn.
    assert_eq!(
        sent["contents"][3],
        json!({"role": "model", "parts": [
            {"text": "Sunny, noon."},
            {"functionCall": {"name": "get_time", "args": {}}, "thoughtSignature": NO_SIGNATURE}
        ]})
    );
    assert_eq!(
        sent["contents"][4],
        json!({"role": "user", "parts": [
            {"functionResponse": {"name": "get_time", "response": {"result": "13:00"}}}
        ]})
    );
}

#[tokio::test]
async fn finish_reasons_map_to_kais() {
    let (upstream, provider) = provider().await;
    let cases = [
        ("MAX_TOKENS", FinishReason::Length),
        ("SAFETY", FinishReason::ContentFilter),
        ("RECITATION", FinishReason::ContentFilter),
        ("BLOCKLIST", FinishReason::ContentFilter),
        ("PROHIBITED_CONTENT", FinishReason::ContentFilter),
        ("SPII", FinishReason::ContentFilter),
        (
            "MALFORMED_FUNCTION_CALL",
            FinishReason::Other("MALFORMED_FUNCTION_CALL".into()),
        ),
    ];
    for (reason, expected) in cases {
        upstream.push(
            GENERATE,
            Reply::json(200, answer(json!([{"text": "Partly"}]), Some(reason), None)),
        );
        let response = provider.chat(&ask("Hi")).await.unwrap();
        assert_eq!(response.finish_reason, expected, "{reason}");
    }

    // A candidate cut off by a filter may come with no content at all.
    upstream.push(
        GENERATE,
        Reply::json(
            200,
            json!({"candidates": [{"finishReason": "SAFETY", "index": 0}],
                   "usageMetadata": {"promptTokenCount": 4, "totalTokenCount": 4}}),
        ),
    );
    let response = provider.chat(&ask("Hi")).await.unwrap();
    assert_eq!(response.finish_reason, FinishReason::ContentFilter);
    assert!(response.message.content.is_empty());
    assert_eq!(response.usage.unwrap().total(), 4);
}

#[tokio::test]
async fn a_blocked_prompt_is_a_content_filter_error() {
    let (upstream, provider) = provider().await;
    let blocked = json!({
        "promptFeedback": {"blockReason": "PROHIBITED_CONTENT",
                           "blockReasonMessage": "The prompt breaks the policy."},
        "usageMetadata": {"promptTokenCount": 7, "totalTokenCount": 7}
    });
    upstream.push(GENERATE, Reply::json(200, blocked.clone()));
    let err = provider.chat(&ask("Something bad")).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::ContentFiltered);
    assert!(err.message.contains("PROHIBITED_CONTENT"), "{err}");
    assert!(err.message.contains("breaks the policy"), "{err}");

    // The same refusal as the only chunk of a stream.
    upstream.push(STREAM, Reply::sse(&[&blocked.to_string()]));
    let (events, error) = collect(provider.as_ref(), &ask("Something bad")).await;
    assert!(events.is_empty());
    assert_eq!(error.unwrap().kind, ErrorKind::ContentFiltered);

    // No candidates and no reason is not an answer.
    upstream.push(
        GENERATE,
        Reply::json(200, json!({"usageMetadata": {"promptTokenCount": 7}})),
    );
    let err = provider.chat(&ask("Hi")).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Malformed);
}

#[tokio::test]
async fn what_gemini_cannot_take_is_refused_before_sending() {
    let (upstream, provider) = provider().await;

    let mut request = ask("Hi");
    request.messages[0].content.push(Part::Image {
        source: ImageSource::Url {
            url: "https://example.com/cat.png".into(),
        },
        detail: None,
    });
    let err = provider.chat(&request).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unsupported);
    assert!(err.message.contains("data: URL"), "{err}");
    let err = provider.chat_stream(&request).await.err().unwrap();
    assert_eq!(err.kind, ErrorKind::Unsupported);

    let mut request = ask("Weather?");
    request.messages.push(Message {
        tool_calls: vec![call("call_0", "get_weather", "{\"city\": \"Par")],
        ..message(Role::Assistant, vec![])
    });
    request.messages.push(tool_answer("call_0", "sun"));
    let err = provider.chat(&request).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadRequest);
    assert!(err.message.contains("messages[1]"), "{err}");
    assert!(err.message.contains("not JSON"), "{err}");

    request.messages[1].tool_calls[0].arguments = "[\"Paris\"]".into();
    let err = provider.chat(&request).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadRequest);
    assert!(err.message.contains("not an object"), "{err}");

    let mut request = ask("Weather?");
    request.messages.push(tool_answer("call_9", "sun"));
    let err = provider.chat(&request).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadRequest);
    assert!(err.message.contains("call_9"), "{err}");

    let request = ChatRequest::new("gemini-2.0-flash", vec![Message::text(Role::System, "Hi")]);
    let err = provider.chat(&request).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadRequest);

    assert!(upstream.requests().is_empty(), "nothing went upstream");
}

#[tokio::test]
async fn a_model_named_models_slash_and_a_versioned_base_url_reach_the_same_path() {
    let upstream = MockUpstream::start().await;
    let mut spec = spec(&upstream);
    spec.base_url = upstream.url("/v1beta").parse().unwrap();
    let provider = kai_providers::connect(&spec).unwrap();
    upstream.push(
        GENERATE,
        Reply::json(200, answer(json!([{"text": "Hi"}]), Some("STOP"), None)),
    );
    let mut request = ask("Hi");
    request.model = "models/gemini-2.0-flash".into();
    provider.chat(&request).await.unwrap();
    assert_eq!(upstream.last_request().path, GENERATE);

    // A base URL with a path of its own (a proxy) keeps it; odd characters are escaped.
    spec.base_url = upstream.url("/proxy/gemini").parse().unwrap();
    let provider = kai_providers::connect(&spec).unwrap();
    let path = "/proxy/gemini/v1beta/models/my%20model%3F:generateContent";
    upstream.push(
        path,
        Reply::json(200, answer(json!([{"text": "Hi"}]), Some("STOP"), None)),
    );
    request.model = "my model?".into();
    provider.chat(&request).await.unwrap();
    assert_eq!(upstream.last_request().path, path);
}

/// A stream as Gemini sends it: text in pieces (multi-byte characters included), usage in
/// every chunk and growing, a chunk of two whole function calls, and the finish reason with
/// the final usage in the last chunk. No end marker.
fn gemini_stream() -> Vec<String> {
    vec![
        answer(json!([{"text": "Paris, "}]), None, Some(usage(20, 2, 0))).to_string(),
        answer(
            json!([{"text": "I think", "thought": true}, {"text": "naïve café ☕ "}]),
            None,
            Some(usage(20, 6, 4)),
        )
        .to_string(),
        answer(
            json!([
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris", "unit": "°C"}}},
                {"functionCall": {"name": "get_time", "args": {}}}
            ]),
            None,
            Some(usage(20, 8, 4)),
        )
        .to_string(),
        answer(json!([{"text": ""}]), Some("STOP"), Some(usage(20, 9, 4))).to_string(),
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
async fn streams_split_at_awkward_places_decode_whole() {
    let (upstream, provider) = provider().await;
    let data = gemini_stream();
    let data: Vec<&str> = data.iter().map(String::as_str).collect();
    for size in [2, 3, 13, 64, 4096] {
        upstream.push(STREAM, Reply::sse(&data).split(size));
        let (events, error) = collect(provider.as_ref(), &ask("Hi")).await;
        assert!(error.is_none(), "split {size}: {error:?}");
        assert_eq!(
            events,
            vec![
                ChatEvent::Text("Paris, ".into()),
                ChatEvent::Text("naïve café ☕ ".into()),
                ChatEvent::ToolCall {
                    index: 0,
                    id: Some("call_0".into()),
                    name: Some("get_weather".into()),
                    arguments: "{\"city\":\"Paris\",\"unit\":\"°C\"}".into(),
                },
                ChatEvent::ToolCall {
                    index: 1,
                    id: Some("call_1".into()),
                    name: Some("get_time".into()),
                    arguments: "{}".into(),
                },
                ChatEvent::Finish(FinishReason::ToolCalls),
                ChatEvent::Usage(kai_models::chat::Usage {
                    input_tokens: 20,
                    output_tokens: 13,
                }),
            ],
            "split {size}"
        );
        let mut builder = ResponseBuilder::default();
        for event in &events {
            builder.push(event);
        }
        let response = builder.finish();
        assert_eq!(response.message.joined_text(), "Paris, naïve café ☕ ");
        assert_eq!(response.message.tool_calls.len(), 2);
    }
    let sent = upstream.last_request();
    assert_eq!(sent.path, STREAM);
    assert_eq!(sent.query.as_deref(), Some("alt=sse"));
    assert_eq!(sent.header("x-goog-api-key"), Some(KEY));
    assert_eq!(
        sent.json["contents"],
        json!([{"role": "user", "parts": [{"text": "Hi"}]}])
    );
}

#[tokio::test]
async fn a_streamed_text_answer_stops_and_counts() {
    let (upstream, provider) = provider().await;
    let chunks = [
        answer(json!([{"text": "Hel"}]), None, None).to_string(),
        answer(
            json!([{"text": "lo"}]),
            Some("MAX_TOKENS"),
            Some(usage(3, 2, 0)),
        )
        .to_string(),
    ];
    upstream.push(STREAM, Reply::sse(&[&chunks[0], &chunks[1]]).split(3));
    let (events, error) = collect(provider.as_ref(), &ask("Hi")).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(
        events,
        vec![
            ChatEvent::Text("Hel".into()),
            ChatEvent::Text("lo".into()),
            ChatEvent::Finish(FinishReason::Length),
            ChatEvent::Usage(kai_models::chat::Usage {
                input_tokens: 3,
                output_tokens: 2,
            }),
        ]
    );
}

#[tokio::test]
async fn error_answers_are_classified_with_the_providers_message() {
    let (upstream, provider) = provider().await;
    let error = |code: u16, message: &str, status: &str| json!({"error": {"code": code, "message": message, "status": status}});
    upstream.push(
        GENERATE,
        Reply::json(
            401,
            error(
                401,
                &format!("API key not valid: {KEY}. Please pass a valid API key."),
                "UNAUTHENTICATED",
            ),
        ),
    );
    upstream.push(
        GENERATE,
        Reply::json(
            403,
            error(
                403,
                "Method doesn't allow unregistered callers.",
                "PERMISSION_DENIED",
            ),
        ),
    );
    upstream.push(
        GENERATE,
        Reply::json(
            429,
            error(
                429,
                "Resource has been exhausted (e.g. check quota).",
                "RESOURCE_EXHAUSTED",
            ),
        )
        .header("retry-after", "3"),
    );
    upstream.push(
        GENERATE,
        Reply::json(
            500,
            error(500, "An internal error has occurred.", "INTERNAL"),
        ),
    );
    upstream.push(
        GENERATE,
        Reply::json(
            503,
            error(
                503,
                "The model is overloaded. Please try again later.",
                "UNAVAILABLE",
            ),
        ),
    );
    upstream.push(
        GENERATE,
        Reply::json(
            400,
            error(
                400,
                "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).",
                "INVALID_ARGUMENT",
            ),
        ),
    );
    upstream.push(
        GENERATE,
        Reply::json(
            404,
            error(
                404,
                "models/gemini-9 is not found for API version v1beta",
                "NOT_FOUND",
            ),
        ),
    );
    upstream.push(
        GENERATE,
        Reply::raw(200, "application/json", "{\"candidates\": [ oops"),
    );
    let request = ask("Hi");

    let err = provider.chat(&request).await.unwrap_err();
    assert_eq!(
        (err.kind, err.status),
        (ErrorKind::Authentication, Some(401))
    );
    assert!(err.message.contains("API key not valid"), "{err}");
    assert!(!err.to_string().contains(KEY), "the key leaked: {err}");

    let err = provider.chat(&request).await.unwrap_err();
    assert_eq!(
        (err.kind, err.status),
        (ErrorKind::PermissionDenied, Some(403))
    );

    let err = provider.chat(&request).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::RateLimited);
    assert_eq!(err.retry_after, Some(Duration::from_secs(3)));
    assert!(err.message.contains("Resource has been exhausted"), "{err}");

    let err = provider.chat(&request).await.unwrap_err();
    assert_eq!((err.kind, err.status), (ErrorKind::Server, Some(500)));
    assert!(err.message.contains("internal error"), "{err}");

    let err = provider.chat(&request).await.unwrap_err();
    assert_eq!((err.kind, err.status), (ErrorKind::Overloaded, Some(503)));
    assert!(err.message.contains("overloaded"), "{err}");

    let err = provider.chat(&request).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::ContextLengthExceeded);

    let err = provider.chat(&request).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound);

    let err = provider.chat(&request).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Malformed);
    assert!(err.message.contains("oops"), "{err}");
}

#[tokio::test]
async fn broken_streams_end_with_the_right_error() {
    let (upstream, provider) = provider().await;
    let data = gemini_stream();
    let data: Vec<&str> = data.iter().map(String::as_str).collect();
    let whole = Reply::sse(&data);
    let request = ask("Hi");
    // Past the first chunk, short of the last.
    let cut = data[0].len() + 40;

    // The connection resets mid-answer.
    upstream.push(STREAM, whole.clone().cut_after(cut, StreamEnd::Reset));
    let (events, error) = collect(provider.as_ref(), &request).await;
    assert_eq!(events, vec![ChatEvent::Text("Paris, ".into())]);
    assert_eq!(error.unwrap().kind, ErrorKind::Interrupted);

    // The server stops sending but keeps the connection open.
    upstream.push(STREAM, whole.clone().cut_after(cut, StreamEnd::Stall));
    let (events, error) = collect(provider.as_ref(), &request).await;
    assert_eq!(events, vec![ChatEvent::Text("Paris, ".into())]);
    assert_eq!(error.unwrap().kind, ErrorKind::Stalled);

    // The server closes cleanly between chunks, but no finish reason came.
    upstream.push(STREAM, Reply::sse(&data[..3]));
    let (events, error) = collect(provider.as_ref(), &request).await;
    assert_eq!(events.len(), 4, "{events:?}");
    let error = error.unwrap();
    assert_eq!(error.kind, ErrorKind::Interrupted);
    assert!(error.message.contains("ended before"), "{error}");

    // An error reported inside the stream, classified by its code.
    upstream.push(
        STREAM,
        Reply::sse(&[
            data[0],
            r#"{"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}"#,
        ]),
    );
    let (events, error) = collect(provider.as_ref(), &request).await;
    assert_eq!(events, vec![ChatEvent::Text("Paris, ".into())]);
    let error = error.unwrap();
    assert_eq!((error.kind, error.status), (ErrorKind::Overloaded, None));
    assert!(error.message.contains("overloaded"), "{error}");

    // A chunk that is not JSON.
    upstream.push(STREAM, Reply::sse(&["{not json"]));
    let (_, error) = collect(provider.as_ref(), &request).await;
    assert_eq!(error.unwrap().kind, ErrorKind::Malformed);

    // Refused before the stream began: the error comes from the call itself.
    upstream.push(
        STREAM,
        Reply::json(
            429,
            json!({"error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED"}}),
        )
        .header("retry-after", "1"),
    );
    let err = provider.chat_stream(&request).await.err().unwrap();
    assert_eq!(err.kind, ErrorKind::RateLimited);
    assert_eq!(err.retry_after, Some(Duration::from_secs(1)));
}

#[tokio::test]
async fn embeddings_carry_task_types_and_dimensions() {
    let (upstream, provider) = provider().await;
    let path = "/v1beta/models/text-embedding-004:batchEmbedContents";
    upstream.push(
        path,
        Reply::json(
            200,
            json!({"embeddings": [{"values": [0.25, 0.75]}, {"values": [0.5, -1.0]}]}),
        ),
    );
    let mut request = EmbedRequest::new("text-embedding-004", vec!["one".into(), "two".into()]);
    request.dimensions = Some(2);
    request.input_type = Some(InputType::Query);
    let response = provider.embed(&request).await.unwrap();
    assert_eq!(response.vectors, vec![vec![0.25, 0.75], vec![0.5, -1.0]]);
    assert_eq!(response.usage, None);
    let sent = upstream.last_request();
    assert_eq!(sent.path, path);
    assert_eq!(sent.query, None);
    assert_eq!(sent.header("x-goog-api-key"), Some(KEY));
    assert_eq!(
        sent.json,
        json!({"requests": [
            {"model": "models/text-embedding-004", "content": {"parts": [{"text": "one"}]},
             "taskType": "RETRIEVAL_QUERY", "outputDimensionality": 2},
            {"model": "models/text-embedding-004", "content": {"parts": [{"text": "two"}]},
             "taskType": "RETRIEVAL_QUERY", "outputDimensionality": 2}
        ]})
    );

    for (input_type, task) in [
        (Some(InputType::Document), json!("RETRIEVAL_DOCUMENT")),
        (Some(InputType::Classification), json!("CLASSIFICATION")),
        (Some(InputType::Clustering), json!("CLUSTERING")),
        (None, Value::Null),
    ] {
        upstream.push(
            path,
            Reply::json(200, json!({"embeddings": [{"values": [1.0]}]})),
        );
        let mut request = EmbedRequest::new("models/text-embedding-004", vec!["x".into()]);
        request.input_type = input_type;
        provider.embed(&request).await.unwrap();
        let sent = upstream.last_request().json;
        assert_eq!(sent["requests"][0]["taskType"], task);
        assert_eq!(sent["requests"][0]["model"], "models/text-embedding-004");
        assert!(
            sent["requests"][0].get("outputDimensionality").is_none(),
            "{sent}"
        );
    }

    // Fewer vectors than texts is not an answer.
    upstream.push(
        path,
        Reply::json(200, json!({"embeddings": [{"values": [1.0]}]})),
    );
    let err = provider.embed(&request).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Malformed);
    assert!(err.message.contains("1 embeddings for 2 texts"), "{err}");
}

#[tokio::test]
async fn many_texts_are_embedded_in_batches_of_a_hundred() {
    let (upstream, provider) = provider().await;
    let path = "/v1beta/models/text-embedding-004:batchEmbedContents";
    let vectors = |from: usize, count: usize| {
        let embeddings: Vec<Value> = (from..from + count)
            .map(|i| json!({"values": [i as f32]}))
            .collect();
        json!({ "embeddings": embeddings })
    };
    upstream.push(path, Reply::json(200, vectors(0, 100)));
    upstream.push(path, Reply::json(200, vectors(100, 5)));
    let inputs: Vec<String> = (0..105).map(|i| format!("text {i}")).collect();
    let response = provider
        .embed(&EmbedRequest::new("text-embedding-004", inputs))
        .await
        .unwrap();
    assert_eq!(response.vectors.len(), 105);
    assert!(
        response
            .vectors
            .iter()
            .enumerate()
            .all(|(i, v)| v == &vec![i as f32])
    );
    let sent = upstream.requests();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].json["requests"].as_array().unwrap().len(), 100);
    assert_eq!(sent[1].json["requests"].as_array().unwrap().len(), 5);
    assert_eq!(
        sent[1].json["requests"][4]["content"]["parts"][0]["text"],
        "text 104"
    );
}

#[tokio::test]
async fn models_are_listed_across_pages() {
    let (upstream, provider) = provider().await;
    upstream.push(
        "/v1beta/models",
        Reply::json(
            200,
            json!({"models": [
                {"name": "models/gemini-2.0-flash", "displayName": "Gemini 2.0 Flash",
                 "supportedGenerationMethods": ["generateContent", "countTokens"]},
                {"name": "models/aqa", "supportedGenerationMethods": ["generateAnswer"]}
            ], "nextPageToken": "page two/+="}),
        ),
    );
    upstream.push(
        "/v1beta/models",
        Reply::json(
            200,
            json!({"models": [
                {"name": "models/text-embedding-004",
                 "supportedGenerationMethods": ["embedContent"]}
            ]}),
        ),
    );
    assert_eq!(
        provider.list_models().await.unwrap(),
        vec!["gemini-2.0-flash", "text-embedding-004"]
    );
    let sent = upstream.requests();
    assert_eq!(sent.len(), 2);
    assert!(sent.iter().all(|r| r.method == "GET"));
    assert!(sent.iter().all(|r| r.header("x-goog-api-key") == Some(KEY)));
    assert_eq!(sent[0].query.as_deref(), Some("pageSize=1000"));
    assert_eq!(
        sent[1].query.as_deref(),
        Some("pageSize=1000&pageToken=page+two%2F%2B%3D")
    );
}
