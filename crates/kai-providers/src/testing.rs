//! A loopback HTTP server that stands in for a provider in tests: it records every request and
//! answers from a script of replies, including streams cut into awkward pieces, streams that
//! break off or stall, and error answers with their headers.
//!
//! ```text
//! let upstream = MockUpstream::start().await;
//! upstream.push("/v1/chat/completions", Reply::json(200, json!({...})));
//! upstream.push("/v1/chat/completions", Reply::sse(&[r#"{"choices":[]}"#, "[DONE]"]).split(7));
//! // … call the adapter with upstream.url("/v1") as its base URL …
//! let sent = upstream.requests();
//! ```

#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::Response;
use futures_util::StreamExt;
use serde_json::Value;

/// A request the mock received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query string, if any.
    pub query: Option<String>,
    /// Header names (lower case) and values.
    pub headers: HashMap<String, String>,
    /// The body as JSON (`Value::Null` when empty or not JSON).
    pub json: Value,
    /// The raw body.
    pub body: Bytes,
}

impl Recorded {
    /// A header's value.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// How a streamed body ends after its pieces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    /// Normally.
    Close,
    /// The connection breaks off.
    Reset,
    /// Nothing more is sent, and the connection stays open.
    Stall,
}

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    pieces: Vec<Bytes>,
    delay: Duration,
    end: StreamEnd,
    /// Wait this long before answering at all.
    before: Duration,
}

impl Reply {
    /// A JSON answer.
    #[must_use]
    pub fn json(status: u16, body: Value) -> Reply {
        Reply::raw(status, "application/json", body.to_string())
    }

    /// An answer with any content type and body.
    #[must_use]
    pub fn raw(status: u16, content_type: &str, body: impl Into<String>) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            pieces: vec![Bytes::from(body.into())],
            delay: Duration::ZERO,
            end: StreamEnd::Close,
            before: Duration::ZERO,
        }
    }

    /// A server-sent event stream of `data:` lines, one event per item.
    #[must_use]
    pub fn sse(data: &[&str]) -> Reply {
        let text: String = data.iter().map(|d| format!("data: {d}\n\n")).collect();
        Reply::raw(200, "text/event-stream", text)
    }

    /// A server-sent event stream of named events: `(event, data)` pairs.
    #[must_use]
    pub fn sse_named(events: &[(&str, &str)]) -> Reply {
        let text: String = events
            .iter()
            .map(|(event, data)| format!("event: {event}\ndata: {data}\n\n"))
            .collect();
        Reply::raw(200, "text/event-stream", text)
    }

    /// Newline-delimited JSON, one line per item.
    #[must_use]
    pub fn ndjson(lines: &[Value]) -> Reply {
        let text: String = lines.iter().map(|line| format!("{line}\n")).collect();
        Reply::raw(200, "application/x-ndjson", text)
    }

    /// Adds a header.
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }

    /// Sends the body in pieces of `size` bytes, cutting through lines, JSON and multi-byte
    /// characters alike, with a short pause between pieces so they arrive apart.
    #[must_use]
    pub fn split(mut self, size: usize) -> Reply {
        let whole: Vec<u8> = self.pieces.iter().flat_map(|p| p.to_vec()).collect();
        self.pieces = whole
            .chunks(size.max(1))
            .map(Bytes::copy_from_slice)
            .collect();
        self.delay = Duration::from_millis(2);
        self
    }

    /// Sends only the first `keep` bytes of the body, then breaks the connection.
    #[must_use]
    pub fn cut_after(mut self, keep: usize, end: StreamEnd) -> Reply {
        let whole: Vec<u8> = self.pieces.iter().flat_map(|p| p.to_vec()).collect();
        self.pieces = vec![Bytes::copy_from_slice(&whole[..keep.min(whole.len())])];
        self.end = end;
        self
    }

    /// Ends the body this way after its pieces.
    #[must_use]
    pub fn then(mut self, end: StreamEnd) -> Reply {
        self.end = end;
        self
    }

    /// Waits before answering.
    #[must_use]
    pub fn after(mut self, wait: Duration) -> Reply {
        self.before = wait;
        self
    }

    fn into_response(self) -> Response {
        let mut builder = Response::builder().status(self.status);
        for (name, value) in &self.headers {
            builder = builder.header(name, value);
        }
        let delay = self.delay;
        let end = self.end;
        let pieces = futures_util::stream::iter(self.pieces).then(move |piece| async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            Ok::<_, std::io::Error>(piece)
        });
        let body = match end {
            StreamEnd::Close => Body::from_stream(pieces),
            StreamEnd::Reset => {
                Body::from_stream(pieces.chain(futures_util::stream::once(async {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionReset,
                        "mock: connection reset",
                    ))
                })))
            }
            StreamEnd::Stall => Body::from_stream(pieces.chain(futures_util::stream::pending())),
        };
        builder.body(body).unwrap()
    }
}

#[derive(Default)]
struct Script {
    queued: HashMap<String, VecDeque<Reply>>,
    always: HashMap<String, Reply>,
    requests: Vec<Recorded>,
}

/// A running mock provider on a loopback port. Stops when dropped.
pub struct MockUpstream {
    addr: SocketAddr,
    script: Arc<Mutex<Script>>,
    task: tokio::task::JoinHandle<()>,
}

impl MockUpstream {
    /// Starts a mock on an ephemeral port. Unscripted paths answer 404.
    pub async fn start() -> MockUpstream {
        let script = Arc::new(Mutex::new(Script::default()));
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        MockUpstream { addr, script, task }
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    #[must_use]
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The address it listens on.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Queues a reply for the next request to `path`.
    pub fn push(&self, path: &str, reply: Reply) {
        self.script
            .lock()
            .unwrap()
            .queued
            .entry(path.to_owned())
            .or_default()
            .push_back(reply);
    }

    /// Answers every request to `path` with `reply` once its queue is empty.
    pub fn always(&self, path: &str, reply: Reply) {
        self.script
            .lock()
            .unwrap()
            .always
            .insert(path.to_owned(), reply);
    }

    /// The requests received so far, oldest first.
    #[must_use]
    pub fn requests(&self) -> Vec<Recorded> {
        self.script.lock().unwrap().requests.clone()
    }

    /// The last request received.
    #[must_use]
    pub fn last_request(&self) -> Recorded {
        self.requests()
            .pop()
            .expect("the mock upstream received no request")
    }

    /// Forgets the requests received so far.
    pub fn clear_requests(&self) {
        self.script.lock().unwrap().requests.clear();
    }
}

impl Drop for MockUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(State(script): State<Arc<Mutex<Script>>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let path = parts.uri.path().to_owned();
    let recorded = Recorded {
        method: parts.method.to_string(),
        path: path.clone(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    value.to_str().unwrap_or_default().to_owned(),
                )
            })
            .collect(),
        json: serde_json::from_slice(&body).unwrap_or(Value::Null),
        body,
    };
    let reply = {
        let mut script = script.lock().unwrap();
        script.requests.push(recorded);
        script
            .queued
            .get_mut(&path)
            .and_then(VecDeque::pop_front)
            .or_else(|| script.always.get(&path).cloned())
    };
    let reply = reply.unwrap_or_else(|| {
        Reply::json(
            404,
            serde_json::json!({"error": {"message": format!("mock: nothing scripted for {path}")}}),
        )
    });
    if !reply.before.is_zero() {
        tokio::time::sleep(reply.before).await;
    }
    reply.into_response()
}
