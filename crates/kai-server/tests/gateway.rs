//! The model gateway through HTTP: the OpenAI-compatible `/v1` API over loopback upstreams,
//! fail-over, budgets, usage, the admin catalog, conversations and metrics.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use futures_util::StreamExt;
use kai_config::{
    DeploymentSettings, ModelSettings, PriceSettings, ProviderKind, ProviderSettings,
};
use kai_providers::testing::{MockUpstream, Reply as Upstream, StreamEnd};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::TestServer;
use utoipa_axum::router::OpenApiRouter;

const CHAT: &str = "/v1/chat/completions";

fn completion(text: &str) -> Upstream {
    Upstream::json(
        200,
        json!({"id": "up-1", "object": "chat.completion", "created": 1, "model": "m",
               "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
               "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}}),
    )
}

fn chunk(delta: Value, finish: Value) -> String {
    json!({"id": "up-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
           "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    .to_string()
}

fn stream_of(words: &[&str]) -> Vec<String> {
    let mut data = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    data.extend(
        words
            .iter()
            .map(|w| chunk(json!({"content": w}), Value::Null)),
    );
    data.push(chunk(json!({}), json!("stop")));
    data.push(
        json!({"id": "up-1", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [],
               "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}})
        .to_string(),
    );
    data.push("[DONE]".into());
    data
}

fn sse(data: &[String]) -> Upstream {
    let data: Vec<&str> = data.iter().map(String::as_str).collect();
    Upstream::sse(&data)
}

/// A server with two upstreams behind `smart` (priority a, then b), `embed` on a, a price for
/// model-a, and short retry delays.
async fn gateway_server(a: &MockUpstream, b: &MockUpstream) -> TestServer {
    let provider = |name: &str, upstream: &MockUpstream| {
        let mut p = ProviderSettings::new(name, ProviderKind::OpenaiCompatible);
        p.base_url = Some(upstream.url("/v1").parse().unwrap());
        p.api_key = Some("env:UPSTREAM_KEY".parse().unwrap());
        p.stream_idle_timeout = Duration::from_millis(500);
        p
    };
    let providers = vec![provider("a", a), provider("b", b)];
    TestServer::start_with(
        move |settings| {
            settings.providers = providers;
            settings.models = vec![
                ModelSettings::new(
                    "smart",
                    vec![
                        DeploymentSettings::new("a", "model-a"),
                        DeploymentSettings::new("b", "model-b"),
                    ],
                ),
                ModelSettings::new("embed", vec![DeploymentSettings::new("a", "embed-a")]),
            ];
            settings.prices = vec![PriceSettings {
                model: "model-a".into(),
                input: 1_000.0,
                output: 2_000.0,
            }];
            settings.gateway.retry_base_delay = Duration::from_millis(5);
            settings.gateway.cooldown = Duration::from_secs(60);
        },
        OpenApiRouter::new(),
    )
    .await
}

async fn new_key(server: &TestServer, scopes: &[&str]) -> (String, String) {
    let admin = server.admin_token().await;
    let created = server.create_key(&admin, scopes).await;
    (
        created["key"].as_str().unwrap().to_owned(),
        created["id"].as_str().unwrap().to_owned(),
    )
}

/// Asserts an OpenAI-shaped error.
#[track_caller]
fn assert_openai_error(reply: &support::Reply, status: StatusCode, kind: &str, code: &str) {
    assert_eq!(reply.status, status, "{}", reply.text);
    assert_eq!(
        reply.headers.get("content-type").unwrap(),
        "application/json",
        "{}",
        reply.text
    );
    assert_eq!(reply.body["error"]["type"], kind, "{}", reply.text);
    assert_eq!(reply.body["error"]["code"], code, "{}", reply.text);
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{}",
        reply.text
    );
    assert!(reply.headers.get("x-request-id").is_some());
}

#[tokio::test]
async fn a_chat_completion_goes_upstream_and_comes_back_in_openais_shape() {
    let (a, b) = (MockUpstream::start().await, MockUpstream::start().await);
    let server = gateway_server(&a, &b).await;
    let (key, _) = new_key(&server, &["read", "write"]).await;
    a.push(CHAT, completion("Paris."));
    let reply = server
        .post(
            CHAT,
            Some(&key),
            json!({"model": "smart", "messages": [{"role": "user", "content": "Capital of France?"}],
                   "temperature": 0.2, "max_tokens": 20}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["object"], "chat.completion");
    assert_eq!(reply.body["model"], "smart");
    assert!(reply.body["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(reply.body["choices"][0]["message"]["content"], "Paris.");
    assert_eq!(reply.body["choices"][0]["finish_reason"], "stop");
    assert_eq!(reply.body["usage"]["total_tokens"], 17);
    assert_eq!(reply.headers.get("x-kai-provider").unwrap(), "a");

    let sent = a.last_request();
    assert_eq!(
        sent.header("authorization"),
        Some("Bearer sk-upstream-test-key")
    );
    assert_eq!(sent.json["model"], "model-a");
    assert_eq!(sent.json["max_tokens"], 20);
    assert_eq!(sent.json["messages"][0]["content"], "Capital of France?");
}

/// The `data:` payloads of a server-sent event stream.
async fn sse_data(response: reqwest::Response) -> Vec<String> {
    let text = response.text().await.unwrap();
    text.split("\n\n")
        .filter_map(|event| {
            event
                .lines()
                .find_map(|line| {
                    line.strip_prefix("data: ")
                        .or_else(|| line.strip_prefix("data:"))
                })
                .map(|d| d.trim().to_owned())
        })
        .collect()
}

#[tokio::test]
async fn a_streamed_completion_is_openais_chunks_then_done() {
    let (a, b) = (MockUpstream::start().await, MockUpstream::start().await);
    let server = gateway_server(&a, &b).await;
    let (key, _) = new_key(&server, &["write"]).await;
    a.push(CHAT, sse(&stream_of(&["Hel", "lo ", "wörld"])).split(7));
    let response = server
        .client
        .post(server.url(CHAT))
        .bearer_auth(&key)
        .json(
            &json!({"model": "smart", "stream": true, "stream_options": {"include_usage": true},
                      "messages": [{"role": "user", "content": "Hi"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let data = sse_data(response).await;
    assert_eq!(data.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk")
    );
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Hello wörld");
    let finish = chunks
        .iter()
        .find_map(|c| c["choices"][0]["finish_reason"].as_str())
        .unwrap();
    assert_eq!(finish, "stop");
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"], json!([]));
    assert_eq!(last["usage"]["total_tokens"], 12);
}

#[tokio::test]
async fn errors_on_v1_take_openais_shape() {
    let (a, b) = (MockUpstream::start().await, MockUpstream::start().await);
    let server = gateway_server(&a, &b).await;
    let (key, _) = new_key(&server, &["read", "write"]).await;
    let (read_only, _) = new_key(&server, &["read"]).await;
    let hi = json!([{"role": "user", "content": "Hi"}]);

    let reply = server
        .post(CHAT, None, json!({"model": "smart", "messages": hi}))
        .await;
    assert_openai_error(
        &reply,
        StatusCode::UNAUTHORIZED,
        "authentication_error",
        "unauthorized",
    );

    let reply = server
        .post(
            CHAT,
            Some("kai_not-a-key"),
            json!({"model": "smart", "messages": hi}),
        )
        .await;
    assert_openai_error(
        &reply,
        StatusCode::UNAUTHORIZED,
        "authentication_error",
        "invalid_api_key",
    );

    let reply = server
        .post(
            CHAT,
            Some(&read_only),
            json!({"model": "smart", "messages": hi}),
        )
        .await;
    assert_openai_error(
        &reply,
        StatusCode::FORBIDDEN,
        "permission_error",
        "insufficient_scope",
    );

    let reply = server
        .post(CHAT, Some(&key), json!({"model": "dumb", "messages": hi}))
        .await;
    assert_openai_error(
        &reply,
        StatusCode::NOT_FOUND,
        "not_found_error",
        "model_not_found",
    );
    assert!(reply.text.contains("smart, embed"), "{}", reply.text);

    // A name of ten thousand characters is not echoed back whole.
    let long = "m".repeat(10_000);
    let reply = server
        .post(CHAT, Some(&key), json!({"model": long, "messages": hi}))
        .await;
    assert_openai_error(
        &reply,
        StatusCode::NOT_FOUND,
        "not_found_error",
        "model_not_found",
    );
    assert!(reply.text.len() < 1_000, "{}", reply.text);
    assert!(reply.text.contains("(10000 characters)"), "{}", reply.text);

    let reply = server
        .post(
            CHAT,
            Some(&key),
            json!({"model": "smart", "messages": hi, "temperature": 7}),
        )
        .await;
    assert_openai_error(
        &reply,
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        "invalid_request",
    );
    assert_eq!(reply.body["error"]["param"], "temperature");

    // A zero token limit is named as the client named it.
    for param in ["max_tokens", "max_completion_tokens"] {
        let reply = server
            .post(
                CHAT,
                Some(&key),
                json!({"model": "smart", "messages": hi, param: 0}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
        assert_eq!(reply.body["error"]["param"], param, "{}", reply.text);
        let message = reply.body["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(&format!("{param}: ")), "{message}");
    }

    let reply = server
        .post(
            CHAT,
            Some(&key),
            json!({"model": "smart", "messages": [{"role": "wizard", "content": "x"}]}),
        )
        .await;
    assert_eq!(
        reply.body["error"]["param"], "messages[0].role",
        "{}",
        reply.text
    );

    let reply = server
        .client
        .post(server.url(CHAT))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body("{\"model\": ")
        .send()
        .await
        .unwrap();
    let reply = support::Reply::read(reply).await;
    assert_openai_error(
        &reply,
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        "invalid_json",
    );

    let reply = server.send(Method::GET, CHAT, Some(&key), None).await;
    assert_openai_error(
        &reply,
        StatusCode::METHOD_NOT_ALLOWED,
        "invalid_request_error",
        "method_not_allowed",
    );

    // The rest of the API keeps RFC 9457 problems.
    let reply = server
        .send(Method::GET, "/api/v1/nothing", Some(&key), None)
        .await;
    reply.assert_problem(StatusCode::NOT_FOUND, "not-found");
    assert_eq!(a.requests().len(), 0, "nothing bad reached the upstream");
}

#[tokio::test]
async fn a_failing_deployment_fails_over_and_every_failure_is_one_clear_error() {
    let (a, b) = (MockUpstream::start().await, MockUpstream::start().await);
    let server = gateway_server(&a, &b).await;
    let (key, _) = new_key(&server, &["write"]).await;
    a.always(
        CHAT,
        Upstream::json(503, json!({"error": {"message": "a is overloaded"}})),
    );
    b.always(CHAT, completion("from b"));
    for _ in 0..4 {
        let reply = server
            .post(
                CHAT,
                Some(&key),
                json!({"model": "smart", "messages": [{"role": "user", "content": "Hi"}]}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        assert_eq!(reply.body["choices"][0]["message"]["content"], "from b");
    }
    // `a` was cooled down after three failures and left alone since.
    assert_eq!(a.requests().len(), 3);
    let admin = server.admin_token().await;
    let model = server.get("/api/v1/models/smart", &admin).await;
    assert_eq!(
        model.body["status"][0]["state"], "cooling_down",
        "{}",
        model.text
    );
    assert_eq!(model.body["status"][1]["state"], "healthy");

    b.always(
        CHAT,
        Upstream::json(500, json!({"error": {"message": "b broke"}})),
    );
    let reply = server
        .post(
            CHAT,
            Some(&key),
            json!({"model": "smart", "messages": [{"role": "user", "content": "Hi"}]}),
        )
        .await;
    assert_openai_error(
        &reply,
        StatusCode::BAD_GATEWAY,
        "upstream_error",
        "upstream_failed",
    );
    let message = reply.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("b/model-b: HTTP 500: b broke"),
        "{message}"
    );
    assert!(message.contains("a/model-a is cooling down"), "{message}");
}

#[tokio::test]
async fn embeddings_come_back_as_floats_or_base64() {
    let (a, b) = (MockUpstream::start().await, MockUpstream::start().await);
    let server = gateway_server(&a, &b).await;
    let (key, _) = new_key(&server, &["write"]).await;
    let upstream = Upstream::json(
        200,
        json!({"object": "list", "model": "embed-a", "usage": {"prompt_tokens": 4, "total_tokens": 4},
               "data": [{"object": "embedding", "index": 0, "embedding": [0.5, -0.25]},
                        {"object": "embedding", "index": 1, "embedding": [1.0, 0.0]}]}),
    );
    a.push("/v1/embeddings", upstream.clone());
    let reply = server
        .post(
            "/v1/embeddings",
            Some(&key),
            json!({"model": "embed", "input": ["one", "two"]}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["data"][1]["embedding"], json!([1.0, 0.0]));
    assert_eq!(reply.body["usage"]["prompt_tokens"], 4);

    a.push("/v1/embeddings", upstream);
    let reply = server
        .post(
            "/v1/embeddings",
            Some(&key),
            json!({"model": "embed", "input": ["one", "two"], "encoding_format": "base64"}),
        )
        .await;
    let encoded = reply.body["data"][0]["embedding"].as_str().unwrap();
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap();
    assert_eq!(f32::from_le_bytes(bytes[4..8].try_into().unwrap()), -0.25);

    let reply = server
        .post(
            "/v1/embeddings",
            Some(&key),
            json!({"model": "embed", "input": [1, 2, 3]}),
        )
        .await;
    assert_openai_error(
        &reply,
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        "invalid_request",
    );
}

#[tokio::test]
async fn models_are_listed_for_clients() {
    let (a, b) = (MockUpstream::start().await, MockUpstream::start().await);
    let server = gateway_server(&a, &b).await;
    let (key, _) = new_key(&server, &["read"]).await;
    let reply = server.get("/v1/models", &key).await;
    assert_eq!(reply.body["object"], "list");
    let ids: Vec<&str> = reply.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["smart", "embed"]);
}

#[tokio::test]
async fn budgets_refuse_a_key_once_spent_and_say_when_they_reset() {
    let (a, b) = (MockUpstream::start().await, MockUpstream::start().await);
    let server = gateway_server(&a, &b).await;
    let admin = server.admin_token().await;
    let (key, key_id) = new_key(&server, &["write"]).await;
    let budgets = format!("/api/v1/keys/{key_id}/budgets");

    // A key cannot lift its own limits.
    let reply = server
        .send(
            Method::PUT,
            &budgets,
            Some(&key),
            Some(json!({"budgets": []})),
        )
        .await;
    reply.assert_problem(StatusCode::FORBIDDEN, "forbidden");
    let reply = server
        .send(
            Method::PUT,
            &budgets,
            Some(&admin),
            Some(json!({"budgets": [{"period": "week", "tokens": 10}]})),
        )
        .await;
    reply.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation-failed");
    // More tokens than the database can count: refused, naming the field, not a 500.
    let reply = server
        .send(
            Method::PUT,
            &budgets,
            Some(&admin),
            Some(json!({"budgets": [{"period": "day", "tokens": u64::MAX}]})),
        )
        .await;
    reply.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation-failed");
    assert!(
        reply.detail().contains("budgets[0].tokens"),
        "{}",
        reply.text
    );
    let reply = server
        .send(
            Method::PUT,
            &budgets,
            Some(&admin),
            Some(json!({"budgets": [{"period": "day", "tokens": 20}, {"period": "month", "usd": 5.0}]})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(
        reply.body["budgets"][1],
        json!({"period": "month", "usd": 5.0})
    );

    a.always(CHAT, completion("ok"));
    let ask = || {
        server.post(
            CHAT,
            Some(&key),
            json!({"model": "smart", "messages": [{"role": "user", "content": "Hi"}]}),
        )
    };
    assert_eq!(ask().await.status, StatusCode::OK);
    assert_eq!(ask().await.status, StatusCode::OK);
    // 2 × 17 tokens: the 20-token daily budget is spent.
    let reply = ask().await;
    assert_openai_error(
        &reply,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limit_error",
        "budget_exceeded",
    );
    let message = reply.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("daily budget of 20 tokens is spent (34 used)"),
        "{message}"
    );
    assert!(message.contains("resets at"), "{message}");
    let retry: u64 = reply.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=86_400).contains(&retry));
    assert_eq!(a.requests().len(), 2);

    // Lifting the budget lets the key through again.
    let reply = server
        .send(
            Method::PUT,
            &budgets,
            Some(&admin),
            Some(json!({"budgets": []})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(ask().await.status, StatusCode::OK);

    // Another user cannot see or touch this key's budgets.
    let other = server.user_token("mallory").await;
    server
        .get(&budgets, &other)
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not-found");
}

#[tokio::test]
async fn usage_is_recorded_priced_and_queryable() {
    let (a, b) = (MockUpstream::start().await, MockUpstream::start().await);
    let server = gateway_server(&a, &b).await;
    let (key, key_id) = new_key(&server, &["read", "write"]).await;
    a.always(CHAT, completion("ok"));
    for _ in 0..3 {
        server
            .post(
                CHAT,
                Some(&key),
                json!({"model": "smart", "messages": [{"role": "user", "content": "Hi"}]}),
            )
            .await;
    }
    server
        .post(
            CHAT,
            Some(&key),
            json!({"model": "nope", "messages": [{"role": "user", "content": "Hi"}]}),
        )
        .await;
    server.state.gateway().flush().await;

    let report = server.get("/api/v1/usage?group_by=model", &key).await;
    assert_eq!(report.status, StatusCode::OK, "{}", report.text);
    assert_eq!(
        report.body["totals"]["requests"], 3,
        "unknown models are not usage"
    );
    assert_eq!(report.body["totals"]["input_tokens"], 36);
    assert_eq!(report.body["totals"]["output_tokens"], 15);
    // 12 × $1000/M + 5 × $2000/M = $0.022 a request.
    let cost = report.body["totals"]["cost_usd"].as_f64().unwrap();
    assert!((cost - 0.066).abs() < 1e-9, "{cost}");
    assert_eq!(report.body["groups"][0]["key"], "smart");

    let records = server.get("/api/v1/usage/records?limit=2", &key).await;
    assert_eq!(records.body["records"].as_array().unwrap().len(), 2);
    let record = &records.body["records"][0];
    assert_eq!(record["api_key_id"], key_id.as_str());
    assert_eq!(record["provider"], "a");
    assert_eq!(record["upstream_model"], "model-a");
    assert_eq!(record["status"], "ok");
    let next = records.body["next_before"].as_str().unwrap();
    let rest = server
        .get(
            &format!("/api/v1/usage/records?limit=2&before={next}"),
            &key,
        )
        .await;
    assert_eq!(rest.body["records"].as_array().unwrap().len(), 1);

    // Only admins see other users' usage.
    let user = server.user_token("bob").await;
    server
        .get("/api/v1/usage?user=all", &user)
        .await
        .assert_problem(StatusCode::FORBIDDEN, "forbidden");
    let mine = server.get("/api/v1/usage", &user).await;
    assert_eq!(mine.body["totals"]["requests"], 0);
    server
        .get("/api/v1/usage?from=yesterday", &user)
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "bad-request");

    let metrics = server
        .client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap();
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains("kai_gateway_requests_total{model=\"smart\",provider=\"a\",status=\"ok\"} 3"),
        "{text}"
    );
    assert!(
        text.contains(
            "kai_gateway_deployment_healthy{provider=\"a\",upstream_model=\"model-a\"} 1"
        )
    );
}

#[tokio::test]
async fn a_client_that_goes_away_cancels_the_stream_upstream() {
    let (a, b) = (MockUpstream::start().await, MockUpstream::start().await);
    let server = gateway_server(&a, &b).await;
    let (key, _) = new_key(&server, &["read", "write"]).await;
    // The upstream sends two words, then nothing, holding the connection open.
    let data = stream_of(&["one ", "two "]);
    a.push(CHAT, sse(&data[..3]).then(StreamEnd::Stall));
    let response = server
        .client
        .post(server.url(CHAT))
        .bearer_auth(&key)
        .json(&json!({"model": "smart", "stream": true, "messages": [{"role": "user", "content": "Hi"}]}))
        .send()
        .await
        .unwrap();
    let mut body = response.bytes_stream();
    let first = body.next().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("data:"));
    drop(body);
    // The gateway notices, records the request as cancelled, and frees the deployment.
    let mut status = Value::Null;
    for _ in 0..50 {
        server.state.gateway().flush().await;
        let records = server.get("/api/v1/usage/records", &key).await;
        status = records.body["records"][0]["status"].clone();
        if status == "cancelled" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, "cancelled");
    let admin = server.admin_token().await;
    let model = server.get("/api/v1/models/smart", &admin).await;
    assert_eq!(model.body["status"][0]["in_flight"], 0);
}

#[tokio::test]
async fn a_client_that_goes_away_before_a_whole_answer_is_accounted_as_cancelled() {
    let (a, b) = (MockUpstream::start().await, MockUpstream::start().await);
    let server = gateway_server(&a, &b).await;
    let (key, _) = new_key(&server, &["read", "write"]).await;
    a.push(CHAT, completion("late").after(Duration::from_secs(30)));
    let request = server
        .client
        .post(server.url(CHAT))
        .bearer_auth(&key)
        .json(&json!({"model": "smart", "messages": [{"role": "user", "content": "Hi"}]}))
        .send();
    // The client gives up while the upstream is still thinking.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), request)
            .await
            .is_err()
    );
    let mut record = Value::Null;
    for _ in 0..50 {
        server.state.gateway().flush().await;
        let records = server.get("/api/v1/usage/records", &key).await;
        record = records.body["records"][0].clone();
        if record["status"] == "cancelled" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(record["status"], "cancelled", "{record}");
    assert_eq!(record["stream"], false, "{record}");
    let admin = server.admin_token().await;
    let model = server.get("/api/v1/models/smart", &admin).await;
    assert_eq!(model.body["status"][0]["in_flight"], 0);
}

#[tokio::test]
async fn admins_manage_providers_and_models_through_the_api() {
    let (a, b) = (MockUpstream::start().await, MockUpstream::start().await);
    let server = gateway_server(&a, &b).await;
    let admin = server.admin_token().await;
    let third = MockUpstream::start().await;
    third.always(CHAT, completion("from the third"));

    // Credentials are references, never values.
    let reply = server
        .post(
            "/api/v1/providers",
            Some(&admin),
            json!({"name": "third", "kind": "openai-compatible", "base_url": third.url("/v1"), "api_key": "sk-live-123"}),
        )
        .await;
    reply.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation-failed");
    assert!(!reply.text.contains("sk-live-123"));
    let reply = server
        .post(
            "/api/v1/providers",
            Some(&admin),
            json!({"name": "third", "kind": "openai-compatible", "base_url": third.url("/v1"), "api_key": "env:MISSING_KEY"}),
        )
        .await;
    reply.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation-failed");
    assert!(
        reply.text.contains("MISSING_KEY is not set"),
        "{}",
        reply.text
    );

    let reply = server
        .post(
            "/api/v1/providers",
            Some(&admin),
            json!({"name": "third", "kind": "openai-compatible", "base_url": third.url("/v1"), "api_key": "env:UPSTREAM_KEY", "timeout_s": 30}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert_eq!(reply.body["source"], "api");
    assert_eq!(reply.body["api_key"], "env:UPSTREAM_KEY");
    assert_eq!(reply.body["timeout_s"], 30.0);

    let reply = server
        .post(
            "/api/v1/models",
            Some(&admin),
            json!({"name": "fresh", "deployments": [{"provider": "nowhere", "model": "x"}]}),
        )
        .await;
    reply.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation-failed");
    let reply = server
        .post(
            "/api/v1/models",
            Some(&admin),
            json!({"name": "fresh", "strategy": "weighted", "deployments": [{"provider": "third", "model": "t-1", "weight": 2}]}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert_eq!(reply.body["status"][0]["state"], "healthy");

    // The new model is served at once.
    let (key, _) = new_key(&server, &["read", "write"]).await;
    let reply = server
        .post(
            CHAT,
            Some(&key),
            json!({"model": "fresh", "messages": [{"role": "user", "content": "Hi"}]}),
        )
        .await;
    assert_eq!(
        reply.body["choices"][0]["message"]["content"], "from the third",
        "{}",
        reply.text
    );
    assert_eq!(third.last_request().json["model"], "t-1");

    // Configuration entries are read-only; a provider in use cannot go.
    server
        .send(Method::DELETE, "/api/v1/models/smart", Some(&admin), None)
        .await
        .assert_problem(StatusCode::CONFLICT, "read-only");
    server
        .send(
            Method::DELETE,
            "/api/v1/providers/third",
            Some(&admin),
            None,
        )
        .await
        .assert_problem(StatusCode::CONFLICT, "conflict");
    let reply = server
        .send(Method::DELETE, "/api/v1/models/fresh", Some(&admin), None)
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let reply = server
        .send(
            Method::DELETE,
            "/api/v1/providers/third",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let reply = server
        .post(
            CHAT,
            Some(&key),
            json!({"model": "fresh", "messages": [{"role": "user", "content": "Hi"}]}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);

    // Only admins.
    let user = server.user_token("carol").await;
    server
        .get("/api/v1/providers", &user)
        .await
        .assert_problem(StatusCode::FORBIDDEN, "forbidden");
    let providers = server.get("/api/v1/providers", &admin).await;
    assert_eq!(providers.body.as_array().unwrap().len(), 2);
    assert_eq!(providers.body[0]["source"], "config");
}

#[tokio::test]
async fn conversations_keep_history_and_continue() {
    let (a, b) = (MockUpstream::start().await, MockUpstream::start().await);
    let server = gateway_server(&a, &b).await;
    let token = server.user_token("dave").await;
    let reply = server
        .post(
            "/api/v1/conversations",
            Some(&token),
            json!({"model": "smart"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let id = reply.body["id"].as_str().unwrap().to_owned();
    let messages = format!("/api/v1/conversations/{id}/messages");

    a.push(CHAT, completion("Paris."));
    let reply = server
        .post(
            &messages,
            Some(&token),
            json!({"content": "Capital of France?"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["message"]["content"], "Paris.");
    assert_eq!(reply.body["message"]["seq"], 2);

    // The next turn carries the history upstream, and streams.
    a.push(CHAT, sse(&stream_of(&["Lyon", "."])));
    let response = server
        .client
        .post(server.url(&messages))
        .bearer_auth(&token)
        .json(&json!({"content": "And the second city?", "stream": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(sse_data(response).await.last().unwrap(), "[DONE]");
    let history = &a.last_request().json["messages"];
    assert_eq!(history.as_array().unwrap().len(), 3);
    assert_eq!(history[1]["content"], "Paris.");

    let detail = server
        .get(&format!("/api/v1/conversations/{id}"), &token)
        .await;
    assert_eq!(detail.body["title"], "Capital of France?");
    assert_eq!(detail.body["message_count"], 4);
    assert_eq!(detail.body["messages"][3]["content"], "Lyon.");
    assert_eq!(detail.body["messages"][3]["model"], "smart");

    let renamed = server
        .send(
            Method::PATCH,
            &format!("/api/v1/conversations/{id}"),
            Some(&token),
            Some(json!({"title": "Cities"})),
        )
        .await;
    assert_eq!(renamed.body["title"], "Cities");
    let list = server.get("/api/v1/conversations", &token).await;
    assert_eq!(list.body["conversations"][0]["id"], id.as_str());

    // Another user's conversation does not exist for them.
    let other = server.user_token("eve").await;
    server
        .get(&format!("/api/v1/conversations/{id}"), &other)
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not-found");
    server
        .post(&messages, Some(&other), json!({"content": "hi"}))
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not-found");

    let reply = server
        .send(
            Method::DELETE,
            &format!("/api/v1/conversations/{id}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    server
        .get(&format!("/api/v1/conversations/{id}"), &token)
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not-found");
}

#[tokio::test]
async fn refusals_that_leave_the_body_unread_close_the_connection() {
    let (a, b) = (MockUpstream::start().await, MockUpstream::start().await);
    let server = gateway_server(&a, &b).await;
    // The credential is refused before the body is read; hyper then closes the connection,
    // and says so, so that clients do not send the next request into a closed socket.
    let response = server
        .client
        .post(server.url(CHAT))
        .bearer_auth("kai_wrong")
        .json(&json!({"model": "smart", "messages": [{"role": "user", "content": "x".repeat(100_000)}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()["connection"], "close");
    // A request whose body was read keeps its connection.
    let (key, _) = new_key(&server, &["read", "write"]).await;
    a.push(CHAT, completion("ok"));
    let response = server
        .client
        .post(server.url(CHAT))
        .bearer_auth(&key)
        .json(&json!({"model": "smart", "messages": [{"role": "user", "content": "Hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get("connection").is_none());
}

#[tokio::test]
async fn answers_that_retrying_cannot_change_say_so() {
    let (a, b) = (MockUpstream::start().await, MockUpstream::start().await);
    let server = gateway_server(&a, &b).await;
    let (key, _) = new_key(&server, &["read", "write"]).await;
    a.always(
        CHAT,
        Upstream::json(500, json!({"error": {"message": "a broke"}})),
    );
    b.always(
        CHAT,
        Upstream::json(500, json!({"error": {"message": "b broke"}})),
    );
    let reply = server
        .post(
            CHAT,
            Some(&key),
            json!({"model": "smart", "messages": [{"role": "user", "content": "Hi"}]}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
    // kai retried and failed over already: OpenAI's SDKs obey this and do not retry again.
    assert_eq!(reply.headers["x-should-retry"], "false");

    // Shapes kai does not accept are a 400 naming the field, as OpenAI answers.
    let reply = server
        .post(
            CHAT,
            Some(&key),
            json!({"model": "smart", "messages": [{"role": "user", "content": [
                {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}]}]}),
        )
        .await;
    assert_openai_error(
        &reply,
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        "invalid_request",
    );
    assert_eq!(reply.body["error"]["param"], "messages[0].content[0]");
    assert!(
        reply.text.contains("audio input is not supported"),
        "{}",
        reply.text
    );
    let reply = server
        .post(
            CHAT,
            Some(&key),
            json!({"model": "smart", "messages": [{"role": "user", "content": "Hi"}],
                   "tools": [{"type": "custom", "custom": {"name": "x"}}]}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
    assert_eq!(reply.body["error"]["param"], "tools[0].type");
    let reply = server
        .post(
            CHAT,
            Some(&key),
            json!({"model": "smart", "messages": "Hi"}),
        )
        .await;
    assert_openai_error(
        &reply,
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        "invalid_request",
    );
    assert_eq!(reply.body["error"]["param"], "messages", "{}", reply.text);
}

#[tokio::test]
async fn a_model_is_retrieved_by_name_even_with_slashes() {
    let (a, b) = (MockUpstream::start().await, MockUpstream::start().await);
    let server = gateway_server(&a, &b).await;
    let admin = server.admin_token().await;
    let reply = server
        .post(
            "/api/v1/models",
            Some(&admin),
            json!({"name": "team/smart", "deployments": [{"provider": "a", "model": "model-a"}]}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let (key, _) = new_key(&server, &["read"]).await;
    let reply = server.get("/v1/models/smart", &key).await;
    assert_eq!(reply.body["id"], "smart", "{}", reply.text);
    assert_eq!(reply.body["object"], "model");
    let reply = server.get("/v1/models/team/smart", &key).await;
    assert_eq!(reply.body["id"], "team/smart", "{}", reply.text);
    let reply = server.get("/v1/models/nothing/here", &key).await;
    assert_openai_error(
        &reply,
        StatusCode::NOT_FOUND,
        "not_found_error",
        "model_not_found",
    );
}

#[tokio::test]
async fn provider_credentials_come_from_the_vault() {
    let (a, b) = (MockUpstream::start().await, MockUpstream::start().await);
    let server = gateway_server(&a, &b).await;
    let admin = server.admin_token().await;
    let upstream = MockUpstream::start().await;
    upstream.always(CHAT, completion("from the vault's provider"));
    let provider = json!({"name": "vaulted", "kind": "openai-compatible",
        "base_url": upstream.url("/v1"), "api_key": "vault:upstream-key"});

    // No vault, then no such secret: refused, naming what to do.
    let reply = server
        .post("/api/v1/providers", Some(&admin), provider.clone())
        .await;
    reply.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation-failed");
    assert!(reply.text.contains("vault:upstream-key"), "{}", reply.text);
    let init = server
        .post(
            "/api/v1/vault/init",
            Some(&admin),
            json!({"passphrase": "correct horse battery staple"}),
        )
        .await;
    assert_eq!(init.status, StatusCode::CREATED);
    let reply = server
        .post("/api/v1/providers", Some(&admin), provider.clone())
        .await;
    reply.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation-failed");
    assert!(
        reply.text.contains("kai secret set upstream-key"),
        "{}",
        reply.text
    );

    // With the node secret stored, the provider is created and calls carry the secret.
    let stored = server
        .send(
            reqwest::Method::PUT,
            "/api/v1/secrets/upstream-key?scope=node",
            Some(&admin),
            Some(json!({"value": "sk-from-vault"})),
        )
        .await;
    assert_eq!(stored.status, StatusCode::OK, "{}", stored.text);
    let reply = server
        .post("/api/v1/providers", Some(&admin), provider)
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert_eq!(reply.body["api_key"], "vault:upstream-key");
    // Configuration changes are in the audit log.
    let audited = server
        .get("/api/v1/audit?action=config.provider.create", &admin)
        .await;
    let entries = audited.body["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{}", audited.text);
    assert!(
        entries[0]["entry"]
            .as_str()
            .unwrap()
            .contains("provider:vaulted")
    );
    let reply = server
        .post(
            "/api/v1/models",
            Some(&admin),
            json!({"name": "vaulted-model", "deployments": [{"provider": "vaulted", "model": "v-1"}]}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let (key, _) = new_key(&server, &["read", "write"]).await;
    let ask = json!({"model": "vaulted-model", "messages": [{"role": "user", "content": "Hi"}]});
    let reply = server.post(CHAT, Some(&key), ask.clone()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(
        upstream.last_request().header("authorization"),
        Some("Bearer sk-from-vault")
    );

    // Locked and reloaded, the provider cannot be used, and says why.
    server
        .send(
            reqwest::Method::POST,
            "/api/v1/vault/lock",
            Some(&admin),
            None,
        )
        .await;
    server.state.gateway().reload().await.unwrap();
    let reply = server.post(CHAT, Some(&key), ask).await;
    assert!(!reply.status.is_success());
    assert!(reply.text.contains("locked"), "{}", reply.text);
    assert!(!reply.text.contains("sk-from-vault"));
}
