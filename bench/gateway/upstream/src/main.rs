//! A model provider that answers at once, for measuring what a gateway adds in front of it.
//!
//! ```text
//! kai-bench-upstream 127.0.0.1:9000 [KEY]
//! ```
//!
//! - `POST /v1/chat/completions`: a fixed OpenAI chat completion (with `usage`); or, when the
//!   body has `"stream": true`, a fixed server-sent event stream of 10 content chunks, a
//!   chunk with `finish_reason`, a usage chunk and `data: [DONE]`, in OpenAI's chunk format.
//! - `GET /v1/models`: one model, `mock`.
//!
//! With `KEY`, requests without `Authorization: Bearer KEY` get 401, so a gateway that drops
//! the credential is caught. Every body is built once at start; a request costs a JSON scan
//! of its body for `stream` and nothing else: no recording, no locks, no waiting. It runs on
//! one thread (tokio's current-thread runtime) and sets `TCP_NODELAY` on every connection.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use serde_json::{Value, json};

const CREATED: u64 = 1_764_000_000;
const ID: &str = "chatcmpl-kai-bench-mock";
const MODEL: &str = "mock";
const WORDS: [&str; 10] = [
    "The", " quick", " brown", " fox", " jumps", " over", " the", " lazy", " dog", ".",
];

struct Answers {
    /// `Bearer KEY`, when a key is required.
    expected_auth: Option<HeaderValue>,
    completion: Bytes,
    stream: Vec<Bytes>,
    models: Bytes,
}

/// Only the field that picks the answer; every other field is skipped unread.
#[derive(serde::Deserialize)]
struct Probe {
    #[serde(default)]
    stream: bool,
}

fn chunk(delta: &Value, finish_reason: Option<&str>) -> Value {
    json!({
        "id": ID, "object": "chat.completion.chunk", "created": CREATED, "model": MODEL,
        "system_fingerprint": "fp_kai_bench",
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason}],
    })
}

fn usage() -> Value {
    json!({"prompt_tokens": 12, "completion_tokens": WORDS.len(), "total_tokens": 12 + WORDS.len()})
}

fn answers(expected_auth: Option<HeaderValue>) -> Answers {
    let completion = json!({
        "id": ID, "object": "chat.completion", "created": CREATED, "model": MODEL,
        "system_fingerprint": "fp_kai_bench",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": WORDS.concat(), "refusal": null},
            "logprobs": null,
            "finish_reason": "stop",
        }],
        "usage": usage(),
    });
    let mut events: Vec<Value> = WORDS
        .iter()
        .enumerate()
        .map(|(i, word)| {
            let delta = if i == 0 {
                json!({"role": "assistant", "content": word})
            } else {
                json!({"content": word})
            };
            chunk(&delta, None)
        })
        .collect();
    events.push(chunk(&json!({}), Some("stop")));
    events.push(json!({
        "id": ID, "object": "chat.completion.chunk", "created": CREATED, "model": MODEL,
        "system_fingerprint": "fp_kai_bench", "choices": [], "usage": usage(),
    }));
    let mut stream: Vec<Bytes> = events
        .iter()
        .map(|event| Bytes::from(format!("data: {event}\n\n")))
        .collect();
    stream.push(Bytes::from_static(b"data: [DONE]\n\n"));
    let models = json!({
        "object": "list",
        "data": [{"id": MODEL, "object": "model", "created": CREATED, "owned_by": "kai-bench"}],
    });
    Answers {
        expected_auth,
        completion: Bytes::from(completion.to_string()),
        stream,
        models: Bytes::from(models.to_string()),
    }
}

fn refused(answers: &Answers, headers: &HeaderMap) -> Option<Response> {
    let expected = answers.expected_auth.as_ref()?;
    if headers.get(header::AUTHORIZATION) == Some(expected) {
        return None;
    }
    let body = r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#;
    Some(json_response(
        StatusCode::UNAUTHORIZED,
        Bytes::from_static(body.as_bytes()),
    ))
}

fn json_response(status: StatusCode, body: Bytes) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn chat_completions(
    State(answers): State<Arc<Answers>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(response) = refused(&answers, &headers) {
        return response;
    }
    let probe: Probe = match serde_json::from_slice(&body) {
        Ok(probe) => probe,
        Err(err) => {
            let body = json!({"error": {"message": format!("invalid JSON body: {err}"),
                "type": "invalid_request_error", "param": null, "code": null}});
            return json_response(StatusCode::BAD_REQUEST, Bytes::from(body.to_string()));
        }
    };
    if !probe.stream {
        return json_response(StatusCode::OK, answers.completion.clone());
    }
    // One frame per event, as a provider sends them (chunked transfer encoding), all ready at
    // once.
    let frames = answers.stream.clone().into_iter().map(Ok::<_, Infallible>);
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(futures_util::stream::iter(frames)),
    )
        .into_response()
}

async fn models(State(answers): State<Arc<Answers>>, headers: HeaderMap) -> Response {
    if let Some(response) = refused(&answers, &headers) {
        return response;
    }
    json_response(StatusCode::OK, answers.models.clone())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(addr), key, None) = (args.next(), args.next(), args.next()) else {
        eprintln!("usage: kai-bench-upstream ADDR [KEY]   (e.g. 127.0.0.1:9000 sk-mock)");
        std::process::exit(2);
    };
    let expected_auth = key.map(|key| {
        HeaderValue::from_str(&format!("Bearer {key}")).unwrap_or_else(|_| {
            eprintln!("kai-bench-upstream: the key is not a valid header value");
            std::process::exit(2);
        })
    });
    let app = Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/models", get(models))
        .with_state(Arc::new(answers(expected_auth)));
    let listener = match tokio::net::TcpListener::bind(&addr).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("kai-bench-upstream: cannot listen on {addr}: {err}");
            std::process::exit(1);
        }
    };
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    eprintln!("kai-bench-upstream: listening on {addr}");
    if let Err(err) = axum::serve(listener, app).await {
        eprintln!("kai-bench-upstream: {err}");
        std::process::exit(1);
    }
}
