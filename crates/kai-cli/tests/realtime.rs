//! The real-time channel across processes (docs/realtime.md, "Across processes"): two `kai
//! serve` processes of the built binary on one PostgreSQL database, each with a data directory
//! of its own as on two machines. A browser's socket on one receives what happens on the other,
//! durable events with their ids and the stream tokens of an answer being written, and a
//! reconnect to either process replays what it missed, once.
//!
//! SQLite keeps one process per database, so the test runs only with `KAI_TEST_DATABASE_URL`
//! set and says it was skipped otherwise.

#![allow(clippy::unwrap_used)] // helpers outside #[test] functions unwrap too

mod support;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use kai_config::DatabaseKind;
use kai_providers::testing::{MockUpstream, Reply};
use serde_json::{Value, json};
use support::{Kai, PASSWORD, Server};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const CHAT: &str = "/v1/chat/completions";

/// How long a socket waits for a message before the test fails.
const PATIENCE: Duration = Duration::from_secs(20);

/// The sandbox, unless the database is SQLite, where this test has nothing to run on.
#[allow(clippy::print_stderr)] // a skipped test says so
async fn on_postgres() -> Option<Kai> {
    let kai = Kai::new().await;
    if kai.db.url().kind() == DatabaseKind::Postgres {
        return Some(kai);
    }
    eprintln!(
        "skipped: several kai processes share only a PostgreSQL database; set \
         KAI_TEST_DATABASE_URL to run this test"
    );
    None
}

/// One model, `smart`, answered by the mock.
fn configure(kai: &Kai, upstream: &MockUpstream) {
    let dir = kai.home.path().join("config/kai");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("kai.toml"),
        format!(
            r#"
[gateway]
retry_base_delay = "5ms"

[[providers]]
name = "mock"
kind = "openai-compatible"
base_url = "{}"
stream_idle_timeout = "5s"

[[models]]
name = "smart"
deployments = [{{ provider = "mock", model = "model-a" }}]
"#,
            upstream.url("/v1")
        ),
    )
    .unwrap();
}

fn chunk(delta: Value, finish: Value) -> String {
    json!({"id": "up-1", "object": "chat.completion.chunk", "created": 1, "model": "model-a",
           "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    .to_string()
}

/// An upstream answer streamed as `pieces`.
fn streamed(pieces: &[&str]) -> Reply {
    let mut data = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    data.extend(
        pieces
            .iter()
            .map(|piece| chunk(json!({"content": piece}), Value::Null)),
    );
    data.push(chunk(json!({}), json!("stop")));
    data.push("[DONE]".into());
    let data: Vec<&str> = data.iter().map(String::as_str).collect();
    Reply::sse(&data)
}

/// The two processes.
struct Pair {
    a: Server,
    b: Server,
}

impl Pair {
    fn server(&self, name: char) -> &Server {
        if name == 'A' { &self.a } else { &self.b }
    }

    /// The last lines of both logs, for a failure message.
    fn logs(&self) -> String {
        let tail = |server: &Server| {
            let text = server.log_text();
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(40)..].join("\n")
        };
        format!(
            "--- log of process A ---\n{}\n--- log of process B ---\n{}",
            tail(&self.a),
            tail(&self.b)
        )
    }

    /// Calls process `name`'s API as `token` and returns the status and body.
    async fn call(
        &self,
        name: char,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let url = format!("{}{path}", self.server(name).base);
        let mut request = reqwest::Client::new()
            .request(method.clone(), &url)
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let reply = tokio::time::timeout(PATIENCE, request.send())
            .await
            .unwrap_or_else(|_| panic!("{method} {url}: no answer in time\n{}", self.logs()))
            .unwrap_or_else(|err| panic!("{method} {url}: {err}\n{}", self.logs()));
        let status = reply.status().as_u16();
        let text = reply.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, body)
    }

    /// A browser's socket on process `name` that said hello with `token` and `after`, with
    /// the `ready` it got.
    async fn connect(&self, name: char, token: &str, after: Option<u64>) -> (Browser<'_>, Value) {
        let base = &self.server(name).base;
        let mut request = format!("{}/api/v1/ws", base.replacen("http://", "ws://", 1))
            .into_client_request()
            .unwrap();
        // A browser names the page's origin: kai's own, here.
        request
            .headers_mut()
            .insert("origin", base.parse().unwrap());
        let socket = tokio::time::timeout(PATIENCE, tokio_tungstenite::connect_async(request))
            .await
            .unwrap_or_else(|_| panic!("no WebSocket to {name} in time\n{}", self.logs()))
            .unwrap_or_else(|err| panic!("no WebSocket to {name}: {err}\n{}", self.logs()))
            .0;
        let mut browser = Browser {
            label: format!("the socket on {name} (after {after:?})"),
            socket,
            pair: self,
            received: Vec::new(),
        };
        browser
            .send(json!({"type": "hello", "token": token, "after": after}))
            .await;
        let ready = browser.next("the ready answering hello").await;
        assert_eq!(ready["type"], "ready", "{}: {ready}", browser.label);
        (browser, ready)
    }
}

/// A WebSocket client as the web UI is one, with what it received so far (for failure
/// messages).
struct Browser<'a> {
    label: String,
    socket: Socket,
    pair: &'a Pair,
    received: Vec<Value>,
}

impl Browser<'_> {
    #[track_caller]
    fn fail(&self, what: &str) -> ! {
        let recent = &self.received[self.received.len().saturating_sub(20)..];
        panic!(
            "{}: {what}\nits last messages: {recent:#?}\n{}",
            self.label,
            self.pair.logs()
        )
    }

    async fn send(&mut self, message: Value) {
        if let Err(err) = self
            .socket
            .send(Message::Text(message.to_string().into()))
            .await
        {
            self.fail(&format!("cannot send {message}: {err}"));
        }
    }

    /// The server's next message, waiting for `what`; a close frame reads as `{"closed":
    /// code, "reason": …}`.
    async fn next(&mut self, what: &str) -> Value {
        loop {
            let Ok(message) = tokio::time::timeout(PATIENCE, self.socket.next()).await else {
                self.fail(&format!(
                    "nothing arrived within {PATIENCE:?} while waiting for {what}"
                ));
            };
            let value = match message {
                Some(Ok(Message::Text(text))) => serde_json::from_str(&text).unwrap(),
                Some(Ok(Message::Close(frame))) => match frame {
                    Some(frame) => {
                        json!({"closed": u16::from(frame.code), "reason": frame.reason.as_str()})
                    }
                    None => json!({"closed": null}),
                },
                Some(Ok(_)) => continue,
                other => self.fail(&format!(
                    "the socket ended ({other:?}) while waiting for {what}"
                )),
            };
            self.received.push(value.clone());
            return value;
        }
    }

    /// Reads messages until one that `wanted` accepts; fails on an error or a close.
    async fn until(&mut self, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        loop {
            let message = self.next(what).await;
            if message.get("closed").is_some() || message["type"] == "error" {
                self.fail(&format!("got {message} while waiting for {what}"));
            }
            if wanted(&message) {
                return message;
            }
        }
    }

    /// Pings and waits for the pong: everything the server sent before it, which it returns,
    /// has arrived.
    async fn settle(&mut self) -> Vec<Value> {
        self.send(json!({"type": "ping"})).await;
        let mut before = Vec::new();
        loop {
            let message = self.next("the pong").await;
            if message["type"] == "pong" {
                return before;
            }
            before.push(message);
        }
    }

    /// Closes the socket as a browser tab does, and waits until the server has let it go.
    async fn close(mut self) {
        if let Err(err) = self.socket.close(None).await {
            self.fail(&format!("cannot close: {err}"));
        }
        loop {
            match tokio::time::timeout(PATIENCE, self.socket.next()).await {
                Err(_) => self.fail("the server did not answer the close in time"),
                Ok(None | Some(Err(_))) => return,
                Ok(Some(Ok(_))) => {}
            }
        }
    }
}

/// The ids of the durable events among `messages`, checked to be increasing (each once, in
/// order).
#[track_caller]
fn durable_ids(label: &str, messages: &[Value]) -> Vec<u64> {
    let ids: Vec<u64> = messages
        .iter()
        .filter(|m| m["type"] == "event")
        .filter_map(|m| m["id"].as_u64())
        .collect();
    assert!(
        ids.windows(2).all(|pair| pair[0] < pair[1]),
        "{label}: durable events not each once and in order: {ids:?}"
    );
    ids
}

/// A chat written through process B streams to a socket on process A, which also receives
/// B's durable events; after a reconnect either process replays what was missed, once.
#[tokio::test(flavor = "multi_thread")]
async fn events_reach_a_socket_on_another_process_and_replay_on_either() {
    let Some(kai) = on_postgres().await else {
        return;
    };
    let upstream = MockUpstream::start().await;
    configure(&kai, &upstream);
    kai.create_admin("alice");
    let a = Server::start(&kai, &[]);
    // As on another machine: only the database is shared.
    let mut command = kai.command(&["serve", "--bind", "127.0.0.1:0"]);
    command.env("KAI_DATA_DIR", kai.home.path().join("data-of-b"));
    let b = Server::spawn(command);
    let pair = Pair { a, b };

    // Logged in on B; the token is good on A, which finds the session in the database.
    let login = reqwest::Client::new()
        .post(format!("{}/api/v1/auth/login", pair.b.base))
        .json(&json!({"username": "alice", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200, "login on B\n{}", pair.logs());
    let login: Value = login.json().await.unwrap();
    let token = login["access_token"].as_str().unwrap().to_owned();

    let (mut on_a, ready) = pair.connect('A', &token, None).await;
    let user = ready["user_id"].clone();
    assert!(user.is_string(), "{ready}");
    let before = ready["last_event_id"].as_u64().unwrap();

    // (1) A durable event: a conversation created through B.
    let (status, created) = pair
        .call(
            'B',
            reqwest::Method::POST,
            "/api/v1/conversations",
            &token,
            Some(json!({"model": "smart"})),
        )
        .await;
    assert_eq!(status, 201, "create a conversation on B: {created}");
    let conversation = created["id"].as_str().unwrap().to_owned();
    let room = format!("conversation:{conversation}");
    let announced = on_a
        .until("conversation.changed (created) from B", |m| {
            m["kind"] == "conversation.changed" && m["data"]["conversation_id"] == *conversation
        })
        .await;
    assert_eq!(announced["room"], "user", "{announced}");
    assert_eq!(
        announced["data"],
        json!({"conversation_id": conversation, "change": "created"})
    );
    let created_id = announced["id"]
        .as_u64()
        .unwrap_or_else(|| panic!("a durable event has a numeric id: {announced}"));
    assert!(created_id > before, "{created_id} after {before}");

    // (2) Ephemeral events: the socket on A joins the conversation's room, a second socket,
    // on B, writes in it, and B asks the upstream.
    on_a.send(json!({"type": "join", "room": room})).await;
    let joined = on_a.settle().await;
    assert!(
        joined.iter().all(|m| m["type"] == "event"),
        "joining the room was refused: {joined:?}"
    );
    let (mut on_b, ready_b) = pair.connect('B', &token, None).await;
    assert_eq!(ready_b["user_id"], user, "the same user on either process");
    let b_from = ready_b["last_event_id"].as_u64().unwrap();
    assert!(
        b_from >= created_id,
        "B's ready names the event A received: {ready_b}"
    );
    upstream.push(CHAT, streamed(&["Grüße ", "aus ", "Prozess ", "B."]));
    let client_id = uuid::Uuid::now_v7().to_string();
    on_b.send(
        json!({"type": "chat", "client_id": client_id, "conversation_id": conversation,
                     "content": "Who answers?"}),
    )
    .await;
    let ack = on_b
        .until("the ack of the chat", |m| m["type"] == "ack")
        .await;
    assert_eq!(
        ack,
        json!({"type": "ack", "client_id": client_id, "duplicate": false})
    );

    // A receives the answer as it is written, every token once, in order.
    let started = on_a
        .until("chat.started from B", |m| m["kind"] == "chat.started")
        .await;
    assert_eq!(started["room"], room.as_str(), "{started}");
    assert_eq!(started["id"], Value::Null, "stream events are ephemeral");
    assert_eq!(started["data"]["client_id"], client_id.as_str());
    assert_eq!(started["data"]["conversation_id"], conversation.as_str());
    assert_eq!(started["data"]["model"], "smart");
    let mut text = String::new();
    let mut indexes = Vec::new();
    let finished = loop {
        let message = on_a
            .until("chat.token or chat.finished from B", |m| {
                m["type"] == "event"
                    && (m["room"] == room.as_str() || m["kind"] == "conversation.changed")
            })
            .await;
        match message["kind"].as_str().unwrap() {
            "chat.token" => {
                assert_eq!(message["id"], Value::Null, "{message}");
                assert_eq!(message["data"]["client_id"], client_id.as_str());
                indexes.push(message["data"]["index"].as_u64().unwrap());
                text.push_str(message["data"]["text"].as_str().unwrap());
            }
            "chat.finished" => break message,
            "chat.failed" => on_a.fail(&format!("the chat failed: {message}")),
            "conversation.changed" => {
                assert_eq!(message["data"]["change"], "message", "{message}");
            }
            _ => on_a.fail(&format!("unexpected in the room: {message}")),
        }
    };
    assert_eq!(finished["id"], Value::Null, "{finished}");
    assert_eq!(finished["data"]["client_id"], client_id.as_str());
    assert_eq!(finished["data"]["finish_reason"], "stop", "{finished}");
    assert_eq!(text, "Grüße aus Prozess B.");
    let expected: Vec<u64> = (0..indexes.len() as u64).collect();
    assert_eq!(indexes, expected, "every token once, in order");
    assert_eq!(upstream.requests().len(), 1, "B alone asked the upstream");
    // B's own socket watched the same answer.
    on_b.until("chat.finished on B", |m| m["kind"] == "chat.finished")
        .await;

    // What A has seen, durable, before it goes away: nothing twice, nothing out of order, and
    // nothing ephemeral twice either.
    on_a.settle().await;
    let seen_on_a = on_a.received.clone();
    let a_ids = durable_ids("the socket on A", &seen_on_a);
    let tokens = seen_on_a
        .iter()
        .filter(|m| m["kind"] == "chat.token")
        .count();
    assert_eq!(tokens, indexes.len(), "no token arrived twice on A");
    let last_seen = *a_ids.last().unwrap();
    assert!(a_ids.contains(&created_id));
    on_a.close().await;

    // Another durable event on B while A's socket is away; B's socket sees it, so it is
    // stored and announced.
    let (status, renamed) = pair
        .call(
            'B',
            reqwest::Method::PATCH,
            &format!("/api/v1/conversations/{conversation}"),
            &token,
            Some(json!({"title": "Written on B"})),
        )
        .await;
    assert_eq!(status, 200, "rename on B: {renamed}");
    let renamed = on_b
        .until("conversation.changed (renamed) on B", |m| {
            m["kind"] == "conversation.changed" && m["data"]["change"] == "renamed"
        })
        .await;
    let renamed_id = renamed["id"].as_u64().unwrap();
    assert!(renamed_id > last_seen, "{renamed_id} after {last_seen}");
    // Every durable event above A's last one, as B's socket received them live (it was
    // there since before any of them).
    assert!(b_from <= last_seen, "B's socket came before {last_seen}");
    on_b.settle().await;
    let seen_on_b = on_b.received.clone();
    let missed: Vec<Value> = seen_on_b
        .iter()
        .filter(|m| m["type"] == "event" && m["id"].as_u64().is_some_and(|id| id > last_seen))
        .cloned()
        .collect();
    let missed_ids = durable_ids("the socket on B", &missed);
    assert_eq!(missed_ids.last(), Some(&renamed_id), "{missed:?}");

    // Back on A from the last id it saw: what it missed, exactly once, in order.
    let (mut again, ready) = pair.connect('A', &token, Some(last_seen)).await;
    assert_eq!(ready["last_event_id"], renamed_id, "{ready}");
    let replayed = again.settle().await;
    assert_eq!(
        replayed, missed,
        "A replays each missed event once, as B announced it"
    );
    assert_eq!(
        replayed
            .iter()
            .filter(|m| m["id"] == renamed_id)
            .map(|m| &m["data"])
            .collect::<Vec<_>>(),
        [&json!({"conversation_id": conversation, "change": "renamed"})]
    );
    // Nothing more comes, not even the live copy of what was replayed.
    let extra = again.settle().await;
    assert!(extra.is_empty(), "after the replay: {extra:?}");

    // B serves the same replay.
    let (mut on_b_again, ready) = pair.connect('B', &token, Some(last_seen)).await;
    assert_eq!(ready["last_event_id"], renamed_id, "{ready}");
    let replayed_by_b = on_b_again.settle().await;
    assert_eq!(replayed_by_b, replayed, "B replays what A replays");

    // Live again after the replay: the next event on B reaches A once.
    let (status, deleted) = pair
        .call(
            'B',
            reqwest::Method::DELETE,
            &format!("/api/v1/conversations/{conversation}"),
            &token,
            None,
        )
        .await;
    assert_eq!(status, 204, "delete on B: {deleted}");
    let gone = again
        .until("conversation.changed (deleted) from B", |m| {
            m["kind"] == "conversation.changed" && m["data"]["change"] == "deleted"
        })
        .await;
    assert!(gone["id"].as_u64().unwrap() > renamed_id, "{gone}");
    let extra = again.settle().await;
    assert!(extra.is_empty(), "after the deletion: {extra:?}");

    again.close().await;
    on_b.close().await;
    on_b_again.close().await;
    let Pair { a, b } = pair;
    for (name, server) in [("A", a), ("B", b)] {
        let (status, log) = server.terminate();
        assert!(
            status.success(),
            "process {name} stopped with {status}:\n{log}"
        );
    }
}
