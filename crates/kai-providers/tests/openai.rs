//! The OpenAI and OpenAI-compatible adapters against a loopback server replaying OpenAI's
//! documented wire format: what kai sends upstream, and what it makes of every answer.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use futures_util::StreamExt;
use kai_config::ProviderKind;
use kai_models::chat::{
    ChatEvent, ChatRequest, EmbedRequest, FinishReason, ImageSource, Message, Part,
    ResponseBuilder, ResponseFormat, Role, ToolChoice, ToolDefinition,
};
use kai_models::{ErrorKind, Provider};
use kai_providers::ProviderSpec;
use kai_providers::testing::{MockUpstream, Reply, StreamEnd};
use serde_json::{Value, json};

const KEY: &str = "sk-test-0123456789";

fn spec(upstream: &MockUpstream, kind: ProviderKind) -> ProviderSpec {
    ProviderSpec {
        name: "upstream".into(),
        kind,
        base_url: upstream.url("/v1").parse().unwrap(),
        api_key: Some(kai_config::Secret::new(KEY.into())),
        connect_timeout: Duration::from_secs(2),
        timeout: Duration::from_secs(2),
        stream_idle_timeout: Duration::from_millis(400),
        headers: [("OpenAI-Organization".to_owned(), "org-kai".to_owned())].into(),
        proxies: Default::default(),
    }
}

async fn provider(kind: ProviderKind) -> (MockUpstream, std::sync::Arc<dyn Provider>) {
    let upstream = MockUpstream::start().await;
    let provider = kai_providers::connect(&spec(&upstream, kind)).unwrap();
    (upstream, provider)
}

fn weather_tool() -> ToolDefinition {
    ToolDefinition {
        name: "get_weather".into(),
        description: Some("The weather in a city".into()),
        parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
        strict: None,
    }
}

fn rich_request() -> ChatRequest {
    let mut request = ChatRequest::new(
        "model-a",
        vec![
            Message::text(Role::Developer, "Be brief."),
            Message {
                role: Role::User,
                content: vec![
                    Part::Text {
                        text: "What is in this picture?".into(),
                    },
                    Part::Image {
                        source: ImageSource::Base64 {
                            media_type: "image/png".into(),
                            data: "iVBORw0KGgo=".into(),
                        },
                        detail: Some("low".into()),
                    },
                ],
                tool_calls: vec![],
                tool_call_id: None,
                name: None,
                refusal: None,
            },
        ],
    );
    request.tools = vec![weather_tool()];
    request.tool_choice = Some(ToolChoice::Auto);
    request.response_format = Some(ResponseFormat::JsonSchema {
        name: "answer".into(),
        description: None,
        schema: json!({"type": "object", "properties": {"a": {"type": "string"}}}),
        strict: Some(true),
    });
    request.sampling.temperature = Some(0.5);
    request.sampling.top_k = Some(40);
    request.sampling.max_tokens = Some(64);
    request.sampling.stop = vec!["\n\n".into()];
    request.sampling.seed = Some(7);
    request.user = Some("u-1".into());
    request.extra.insert("logprobs".into(), json!(false));
    request
}

fn completion(content: Value, tool_calls: Option<Value>, finish: &str) -> Value {
    let mut message = json!({"role": "assistant", "content": content});
    if let Some(calls) = tool_calls {
        message["tool_calls"] = calls;
    }
    json!({
        "id": "chatcmpl-123",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "model-a-2024",
        "system_fingerprint": "fp_1",
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17,
                  "prompt_tokens_details": {"cached_tokens": 0}}
    })
}

#[tokio::test]
async fn a_chat_sends_openais_format_and_reads_the_answer() {
    let (upstream, provider) = provider(ProviderKind::Openai).await;
    upstream.push(
        "/v1/chat/completions",
        Reply::json(200, completion(json!("Hello!"), None, "stop")),
    );
    let response = provider.chat(&rich_request()).await.unwrap();
    assert_eq!(response.message.joined_text(), "Hello!");
    assert_eq!(response.finish_reason, FinishReason::Stop);
    assert_eq!(response.usage.unwrap().input_tokens, 12);
    assert_eq!(response.usage.unwrap().output_tokens, 5);
    assert_eq!(response.system_fingerprint.as_deref(), Some("fp_1"));

    let sent = upstream.last_request();
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(sent.header("openai-organization"), Some("org-kai"));
    assert_eq!(sent.header("content-type"), Some("application/json"));
    assert_eq!(
        sent.json,
        json!({
            "model": "model-a",
            "messages": [
                {"role": "developer", "content": "Be brief."},
                {"role": "user", "content": [
                    {"type": "text", "text": "What is in this picture?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}}
                ]}
            ],
            "tools": [{"type": "function", "function": {
                "name": "get_weather", "description": "The weather in a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
            }}],
            "tool_choice": "auto",
            "response_format": {"type": "json_schema", "json_schema": {
                "name": "answer", "schema": {"type": "object", "properties": {"a": {"type": "string"}}}, "strict": true
            }},
            "temperature": 0.5,
            "stop": ["\n\n"],
            "max_completion_tokens": 64,
            "seed": 7,
            "user": "u-1",
            "logprobs": false
        })
    );
}

#[tokio::test]
async fn compatible_servers_get_system_max_tokens_and_top_k() {
    let (upstream, provider) = provider(ProviderKind::OpenaiCompatible).await;
    upstream.push(
        "/v1/chat/completions",
        Reply::json(200, completion(json!("Hi"), None, "stop")),
    );
    provider.chat(&rich_request()).await.unwrap();
    let sent = upstream.last_request().json;
    assert_eq!(sent["messages"][0]["role"], "system");
    assert_eq!(sent["max_tokens"], 64);
    assert!(sent.get("max_completion_tokens").is_none(), "{sent}");
    assert_eq!(sent["top_k"], 40);
}

#[tokio::test]
async fn tool_calls_come_back_whole() {
    let (upstream, provider) = provider(ProviderKind::Openai).await;
    upstream.push(
        "/v1/chat/completions",
        Reply::json(
            200,
            completion(
                Value::Null,
                Some(json!([{"id": "call_1", "type": "function",
                    "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}])),
                "tool_calls",
            ),
        ),
    );
    let mut request = ChatRequest::new("model-a", vec![Message::text(Role::User, "Weather?")]);
    request.tools = vec![weather_tool()];
    request.tool_choice = Some(ToolChoice::Tool("get_weather".into()));
    let response = provider.chat(&request).await.unwrap();
    assert_eq!(response.finish_reason, FinishReason::ToolCalls);
    assert_eq!(response.message.tool_calls.len(), 1);
    assert_eq!(response.message.tool_calls[0].id, "call_1");
    assert_eq!(
        response.message.tool_calls[0].arguments,
        "{\"city\":\"Paris\"}"
    );
    assert_eq!(
        upstream.last_request().json["tool_choice"],
        json!({"type": "function", "function": {"name": "get_weather"}})
    );

    // The tool's answer goes back upstream as OpenAI has it.
    upstream.push(
        "/v1/chat/completions",
        Reply::json(200, completion(json!("Sunny."), None, "stop")),
    );
    request.messages.push(response.message.clone());
    request.messages.push(Message {
        role: Role::Tool,
        content: vec![Part::Text {
            text: "18°C, sun".into(),
        }],
        tool_calls: vec![],
        tool_call_id: Some("call_1".into()),
        name: None,
        refusal: None,
    });
    provider.chat(&request).await.unwrap();
    let sent = upstream.last_request().json;
    assert_eq!(
        sent["messages"][1],
        json!({"role": "assistant", "tool_calls": [{"id": "call_1", "type": "function",
              "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]})
    );
    assert_eq!(
        sent["messages"][2],
        json!({"role": "tool", "content": "18°C, sun", "tool_call_id": "call_1"})
    );
}

/// A stream as OpenAI sends it: role first, text in pieces, two tool calls whose arguments
/// arrive in fragments, the finish reason, then usage in a chunk with no choices.
fn openai_stream() -> Vec<String> {
    let chunk = |delta: Value, finish: Value| {
        json!({"id": "chatcmpl-9", "object": "chat.completion.chunk", "created": 1, "model": "m",
               "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
               "usage": null})
        .to_string()
    };
    vec![
        chunk(json!({"role": "assistant", "content": ""}), Value::Null),
        chunk(json!({"content": "Paris, "}), Value::Null),
        chunk(json!({"content": "naïve café ☕ "}), Value::Null),
        chunk(json!({"tool_calls": [{"index": 0, "id": "call_a", "type": "function",
                      "function": {"name": "get_weather", "arguments": ""}}]}), Value::Null),
        chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"ci"}}]}), Value::Null),
        chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": "ty\":\"Paris\"}"}}]}), Value::Null),
        chunk(json!({"tool_calls": [{"index": 1, "id": "call_b", "type": "function",
                      "function": {"name": "get_time", "arguments": "{}"}}]}), Value::Null),
        chunk(json!({}), json!("tool_calls")),
        json!({"id": "chatcmpl-9", "object": "chat.completion.chunk", "created": 1, "model": "m",
               "choices": [], "usage": {"prompt_tokens": 20, "completion_tokens": 9, "total_tokens": 29}})
        .to_string(),
        "[DONE]".to_owned(),
    ]
}

async fn collect(
    provider: &dyn Provider,
    request: &ChatRequest,
) -> (Vec<ChatEvent>, Option<kai_models::ProviderError>) {
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
    let (upstream, provider) = provider(ProviderKind::Openai).await;
    let data = openai_stream();
    let data: Vec<&str> = data.iter().map(String::as_str).collect();
    for size in [2, 5, 13, 64] {
        upstream.push("/v1/chat/completions", Reply::sse(&data).split(size));
        let request = ChatRequest::new("model-a", vec![Message::text(Role::User, "Hi")]);
        let (events, error) = collect(provider.as_ref(), &request).await;
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
        assert_eq!(response.message.tool_calls.len(), 2);
        assert_eq!(response.message.tool_calls[0].id, "call_a");
        assert_eq!(
            response.message.tool_calls[0].arguments,
            "{\"city\":\"Paris\"}"
        );
        assert_eq!(response.message.tool_calls[1].name, "get_time");
        assert_eq!(response.usage.unwrap().total(), 29);
        assert!(
            matches!(events.last(), Some(ChatEvent::Usage(_))),
            "usage comes last"
        );
    }
    let sent = upstream.last_request().json;
    assert_eq!(sent["stream"], true);
    assert_eq!(sent["stream_options"], json!({"include_usage": true}));
}

#[tokio::test]
async fn error_answers_are_classified_with_the_providers_message() {
    let (upstream, provider) = provider(ProviderKind::Openai).await;
    let error = |message: &str, kind: &str| json!({"error": {"message": message, "type": kind, "param": null, "code": null}});
    let path = "/v1/chat/completions";
    upstream.push(
        path,
        Reply::json(
            401,
            error(
                &format!("Incorrect API key provided: {KEY}"),
                "invalid_request_error",
            ),
        ),
    );
    upstream.push(
        path,
        Reply::json(429, error("Rate limit reached", "requests")).header("retry-after", "3"),
    );
    upstream.push(
        path,
        Reply::json(500, error("The server had an error", "server_error")),
    );
    upstream.push(
        path,
        Reply::raw(503, "text/html", "<html>Service Unavailable</html>"),
    );
    upstream.push(
        path,
        Reply::json(
            400,
            error(
                "This model's maximum context length is 4096 tokens.",
                "invalid_request_error",
            ),
        ),
    );
    upstream.push(
        path,
        Reply::raw(
            200,
            "application/json",
            "{\"id\": \"x\", \"choices\": [ oops",
        ),
    );
    let request = ChatRequest::new("model-a", vec![Message::text(Role::User, "Hi")]);

    let err = provider.chat(&request).await.unwrap_err();
    assert_eq!(
        (err.kind, err.status),
        (ErrorKind::Authentication, Some(401))
    );
    assert!(err.message.contains("Incorrect API key provided"), "{err}");
    assert!(!err.to_string().contains(KEY), "the key leaked: {err}");

    let err = provider.chat(&request).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::RateLimited);
    assert_eq!(err.retry_after, Some(Duration::from_secs(3)));

    let err = provider.chat(&request).await.unwrap_err();
    assert_eq!((err.kind, err.status), (ErrorKind::Server, Some(500)));
    assert!(err.message.contains("The server had an error"), "{err}");

    let err = provider.chat(&request).await.unwrap_err();
    assert_eq!((err.kind, err.status), (ErrorKind::Overloaded, Some(503)));
    assert!(err.message.contains("Service Unavailable"), "{err}");

    let err = provider.chat(&request).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::ContextLengthExceeded);

    let err = provider.chat(&request).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Malformed);
    assert!(err.message.contains("oops"), "{err}");
}

#[tokio::test]
async fn broken_streams_end_with_the_right_error() {
    let (upstream, provider) = provider(ProviderKind::Openai).await;
    let data = openai_stream();
    let data: Vec<&str> = data.iter().map(String::as_str).collect();
    let whole = Reply::sse(&data);
    let path = "/v1/chat/completions";
    let request = ChatRequest::new("model-a", vec![Message::text(Role::User, "Hi")]);

    // The connection resets after the first few chunks.
    upstream.push(path, whole.clone().cut_after(400, StreamEnd::Reset));
    let (events, error) = collect(provider.as_ref(), &request).await;
    assert!(!events.is_empty());
    assert_eq!(error.unwrap().kind, ErrorKind::Interrupted);

    // The server stops sending but keeps the connection open.
    upstream.push(path, whole.clone().cut_after(400, StreamEnd::Stall));
    let (events, error) = collect(provider.as_ref(), &request).await;
    assert!(!events.is_empty());
    assert_eq!(error.unwrap().kind, ErrorKind::Stalled);

    // The server closes cleanly, but before the answer was finished.
    upstream.push(path, whole.clone().cut_after(400, StreamEnd::Close));
    let (_, error) = collect(provider.as_ref(), &request).await;
    assert_eq!(error.unwrap().kind, ErrorKind::Interrupted);

    // An error reported inside the stream.
    upstream.push(
        path,
        Reply::sse(&[data[1], r#"{"error": {"message": "overloaded mid-way"}}"#]),
    );
    let (events, error) = collect(provider.as_ref(), &request).await;
    assert_eq!(events, vec![ChatEvent::Text("Paris, ".into())]);
    assert!(error.unwrap().message.contains("overloaded mid-way"));

    // A chunk that is not JSON.
    upstream.push(path, Reply::sse(&["{not json"]));
    let (_, error) = collect(provider.as_ref(), &request).await;
    assert_eq!(error.unwrap().kind, ErrorKind::Malformed);

    // Refused before the stream began: the error comes from the call itself.
    upstream.push(
        path,
        Reply::json(429, json!({"error": {"message": "slow down"}})).header("retry-after", "1"),
    );
    let err = provider.chat_stream(&request).await.err().unwrap();
    assert_eq!(err.kind, ErrorKind::RateLimited);
}

#[tokio::test]
async fn unreachable_and_slow_servers_fail_clearly() {
    // Nothing listens on a port a just-dropped listener had.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let upstream = MockUpstream::start().await;
    let mut dead = spec(&upstream, ProviderKind::Openai);
    dead.base_url = format!("http://127.0.0.1:{port}/v1").parse().unwrap();
    let provider = kai_providers::connect(&dead).unwrap();
    let request = ChatRequest::new("model-a", vec![Message::text(Role::User, "Hi")]);
    let err = provider.chat(&request).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Connect, "{err}");

    let mut slow = spec(&upstream, ProviderKind::Openai);
    slow.timeout = Duration::from_millis(200);
    let provider = kai_providers::connect(&slow).unwrap();
    upstream.push(
        "/v1/chat/completions",
        Reply::json(200, completion(json!("late"), None, "stop")).after(Duration::from_secs(2)),
    );
    let err = provider.chat(&request).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Timeout, "{err}");
}

#[tokio::test]
async fn a_redirect_is_an_error_that_names_where_it_points() {
    let (upstream, provider) = provider(ProviderKind::Openai).await;
    upstream.push(
        "/v1/chat/completions",
        Reply::raw(307, "text/plain", "")
            .header("location", "https://elsewhere.test/v1/chat/completions"),
    );
    let request = ChatRequest::new("model-a", vec![Message::text(Role::User, "Hi")]);
    let err = provider.chat(&request).await.unwrap_err();
    assert!(
        err.message
            .contains("https://elsewhere.test/v1/chat/completions")
            && err.message.contains("base_url"),
        "{err}"
    );
    // Not followed: the credential went nowhere else.
    assert_eq!(upstream.requests().len(), 1);
}

#[tokio::test]
async fn a_proxy_from_the_environment_carries_the_requests() {
    // The mock plays the proxy: a forward proxy gets the whole target address in the request.
    let proxy = MockUpstream::start().await;
    proxy.push(
        "/v1/chat/completions",
        Reply::json(200, completion(json!("via the proxy"), None, "stop")),
    );
    let env: kai_config::Environment = [("HTTP_PROXY", proxy.url(""))].into_iter().collect();
    let mut through = spec(&proxy, ProviderKind::Openai);
    through.base_url = "http://provider.invalid/v1".parse().unwrap();
    through.proxies = kai_providers::Proxies::from_env(&env);
    let proxied = kai_providers::connect(&through).unwrap();
    let request = ChatRequest::new("model-a", vec![Message::text(Role::User, "Hi")]);
    let answer = proxied.chat(&request).await.unwrap();
    assert_eq!(answer.message.joined_text(), "via the proxy");
    let sent = proxy.last_request();
    assert_eq!(sent.header("host"), Some("provider.invalid"));
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );

    // A host NO_PROXY names goes direct.
    let (upstream, _) = provider(ProviderKind::Openai).await;
    upstream.push(
        "/v1/chat/completions",
        Reply::json(200, completion(json!("direct"), None, "stop")),
    );
    let env: kai_config::Environment = [
        ("HTTP_PROXY", proxy.url("")),
        ("NO_PROXY", "localhost,127.0.0.1".to_owned()),
    ]
    .into_iter()
    .collect();
    let mut direct = spec(&upstream, ProviderKind::Openai);
    direct.proxies = kai_providers::Proxies::from_env(&env);
    let direct = kai_providers::connect(&direct).unwrap();
    let answer = direct.chat(&request).await.unwrap();
    assert_eq!(answer.message.joined_text(), "direct");
    assert_eq!(proxy.requests().len(), 1);
}

#[tokio::test]
async fn embeddings_come_back_in_input_order_as_floats_or_base64() {
    let (upstream, provider) = provider(ProviderKind::Openai).await;
    let base64_of = |v: &[f32]| {
        use base64::Engine;
        let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        base64::engine::general_purpose::STANDARD.encode(bytes)
    };
    upstream.push(
        "/v1/embeddings",
        Reply::json(
            200,
            json!({
                "object": "list",
                "data": [
                    {"object": "embedding", "index": 1, "embedding": base64_of(&[0.5, -1.0])},
                    {"object": "embedding", "index": 0, "embedding": [0.25, 0.75]}
                ],
                "model": "text-embedding-3-small",
                "usage": {"prompt_tokens": 6, "total_tokens": 6}
            }),
        ),
    );
    let mut request = EmbedRequest::new("text-embedding-3-small", vec!["one".into(), "two".into()]);
    request.dimensions = Some(2);
    let response = provider.embed(&request).await.unwrap();
    assert_eq!(response.vectors, vec![vec![0.25, 0.75], vec![0.5, -1.0]]);
    assert_eq!(response.usage.unwrap().input_tokens, 6);
    let sent = upstream.last_request();
    assert_eq!(sent.path, "/v1/embeddings");
    assert_eq!(
        sent.json,
        json!({"model": "text-embedding-3-small", "input": ["one", "two"],
               "encoding_format": "float", "dimensions": 2})
    );

    upstream.push(
        "/v1/embeddings",
        Reply::json(200, json!({"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [1.0]}],
                               "model": "m", "usage": {"prompt_tokens": 1, "total_tokens": 1}})),
    );
    let err = provider.embed(&request).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Malformed);
    assert!(err.message.contains("no embedding for input 1"), "{err}");
}

#[tokio::test]
async fn models_are_listed() {
    let (upstream, provider) = provider(ProviderKind::OpenaiCompatible).await;
    upstream.push(
        "/v1/models",
        Reply::json(
            200,
            json!({"object": "list", "data": [
                {"id": "llama-3.1-8b", "object": "model", "created": 0, "owned_by": "vllm"},
                {"id": "qwen2.5-7b", "object": "model", "created": 0, "owned_by": "vllm"}
            ]}),
        ),
    );
    assert_eq!(
        provider.list_models().await.unwrap(),
        vec!["llama-3.1-8b", "qwen2.5-7b"]
    );
    assert_eq!(upstream.last_request().method, "GET");
}
