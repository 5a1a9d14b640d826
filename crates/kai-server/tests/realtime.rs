//! The real-time channel (`/api/v1/ws`, docs/realtime.md) over a real WebSocket on a loopback
//! port: the hello and its deadlines, origins, replay across reconnects, rooms and their
//! owners, chat streamed to every socket in a conversation's room and stored once, consent
//! requests as an agent asks, and events published by another process on PostgreSQL.

#![allow(clippy::unwrap_used)] // helpers outside #[test] functions unwrap too

mod support;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use http::StatusCode;
use kai_config::{DeploymentSettings, ModelSettings, ProviderKind, ProviderSettings};
use kai_providers::testing::{MockUpstream, Reply};
use serde_json::{Value, json};
use support::TestServer;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use utoipa_axum::router::OpenApiRouter;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const CHAT: &str = "/v1/chat/completions";

/// How long a test waits for a message before it fails.
const PATIENCE: Duration = Duration::from_secs(20);

async fn server(upstream: &MockUpstream, ttl: Option<Duration>) -> TestServer {
    let url = upstream.url("/v1");
    TestServer::start_with(
        move |settings| {
            let mut provider = ProviderSettings::new("scripted", ProviderKind::OpenaiCompatible);
            provider.base_url = Some(url.parse().unwrap());
            settings.providers = vec![provider];
            settings.models = vec![ModelSettings::new(
                "scripted",
                vec![DeploymentSettings::new("scripted", "scripted-1")],
            )];
            settings.agents.default_model = "scripted".into();
            settings.http.cors_origins = "https://app.example".into();
            if let Some(ttl) = ttl {
                settings.auth.access_token_ttl = ttl;
            }
        },
        OpenApiRouter::new(),
    )
    .await
}

fn ws_url(server: &TestServer) -> String {
    format!("{}/api/v1/ws", server.base.replacen("http://", "ws://", 1))
}

async fn open(server: &TestServer) -> Socket {
    tokio_tungstenite::connect_async(ws_url(server))
        .await
        .unwrap()
        .0
}

async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::Text(message.to_string().into()))
        .await
        .unwrap();
}

/// The next message of the server's, or how the socket was closed (`{"closed": code,
/// "reason": …}`).
async fn next(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(PATIENCE, socket.next())
            .await
            .expect("a message in time");
        match message {
            Some(Ok(Message::Text(text))) => return serde_json::from_str(&text).unwrap(),
            Some(Ok(Message::Close(frame))) => {
                let frame = frame.unwrap();
                return json!({"closed": u16::from(frame.code), "reason": frame.reason.as_str()});
            }
            Some(Ok(_)) => {}
            other => panic!("the socket ended without a close frame: {other:?}"),
        }
    }
}

/// Reads messages until an event of `kind`, returning it.
async fn event(socket: &mut Socket, kind: &str) -> Value {
    loop {
        let message = next(socket).await;
        assert!(message.get("closed").is_none(), "closed: {message}");
        if message["type"] == "event" && message["kind"] == kind {
            return message;
        }
    }
}

/// A socket that said hello, with the `ready` it got.
async fn hello(server: &TestServer, token: &str, after: Option<u64>) -> (Socket, Value) {
    let mut socket = open(server).await;
    send(
        &mut socket,
        json!({"type": "hello", "token": token, "after": after}),
    )
    .await;
    let ready = next(&mut socket).await;
    assert_eq!(ready["type"], "ready", "{ready}");
    (socket, ready)
}

/// Pings and waits for the pong: everything the server sent before it has arrived.
async fn settle(socket: &mut Socket) -> Vec<Value> {
    send(socket, json!({"type": "ping"})).await;
    let mut before = Vec::new();
    loop {
        let message = next(socket).await;
        if message["type"] == "pong" {
            return before;
        }
        before.push(message);
    }
}

fn chunk(delta: Value, finish: Value) -> String {
    json!({"id": "up-1", "object": "chat.completion.chunk", "created": 1, "model": "scripted-1",
           "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    .to_string()
}

fn streamed(words: &[&str]) -> Reply {
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
    data.push("[DONE]".into());
    let data: Vec<&str> = data.iter().map(String::as_str).collect();
    Reply::sse(&data)
}

fn says(text: &str) -> Reply {
    Reply::json(
        200,
        json!({"id": "c", "object": "chat.completion", "created": 1, "model": "scripted-1",
               "choices": [{"index": 0, "finish_reason": "stop",
                            "message": {"role": "assistant", "content": text}}],
               "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}),
    )
}

fn calls(name: &str, arguments: Value) -> Reply {
    Reply::json(
        200,
        json!({"id": "c", "object": "chat.completion", "created": 1, "model": "scripted-1",
               "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                   "role": "assistant", "content": null, "tool_calls": [{"id": "call_1",
                   "type": "function", "function": {"name": name,
                   "arguments": arguments.to_string()}}]}}]}),
    )
}

async fn conversation(server: &TestServer, token: &str) -> String {
    let reply = server
        .post(
            "/api/v1/conversations",
            Some(token),
            json!({"model": "scripted"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    reply.body["id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_socket_must_say_hello_in_time_with_a_good_token() {
    let upstream = MockUpstream::start().await;
    let server = server(&upstream, None).await;
    let token = server.user_token("ada").await;

    let mut socket = open(&server).await;
    send(
        &mut socket,
        json!({"type": "hello", "token": "not-a-token"}),
    )
    .await;
    let closed = next(&mut socket).await;
    assert_eq!(closed["closed"], 4401, "{closed}");
    assert!(!closed["reason"].as_str().unwrap().is_empty());

    let mut socket = open(&server).await;
    send(&mut socket, json!({"type": "ping"})).await;
    assert_eq!(next(&mut socket).await["closed"], 4401);

    let mut socket = open(&server).await;
    send(&mut socket, json!({"type": "hello"})).await;
    assert_eq!(
        next(&mut socket).await["closed"],
        4401,
        "a hello without a token"
    );

    let (mut socket, ready) = hello(&server, &token, None).await;
    assert_eq!(ready["last_event_id"], 0);
    assert!(ready["user_id"].is_string());
    send(&mut socket, json!({"type": "ping"})).await;
    assert_eq!(next(&mut socket).await, json!({"type": "pong"}));
    send(&mut socket, json!({"type": "dance"})).await;
    let refused = next(&mut socket).await;
    assert_eq!(refused["type"], "error");
    assert_eq!(refused["code"], "invalid-message");

    let mut silent = open(&server).await;
    let closed = next(&mut silent).await;
    assert_eq!(closed["closed"], 4408, "{closed}");
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_of_other_origins_are_refused_before_the_upgrade() {
    let upstream = MockUpstream::start().await;
    let server = server(&upstream, None).await;

    let mut request = ws_url(&server).into_client_request().unwrap();
    request
        .headers_mut()
        .insert("origin", "https://evil.example".parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), StatusCode::FORBIDDEN);
        }
        other => panic!("expected a 403, got {other:?}"),
    }
    for origin in [
        "https://app.example".to_owned(),
        server.base.clone(), // kai's own
    ] {
        let mut request = ws_url(&server).into_client_request().unwrap();
        request
            .headers_mut()
            .insert("origin", origin.parse().unwrap());
        assert!(
            tokio_tungstenite::connect_async(request).await.is_ok(),
            "{origin} may connect"
        );
    }
    // Not an upgrade: a problem, not a socket.
    let reply = server
        .send(reqwest::Method::GET, "/api/v1/ws", None, None)
        .await;
    reply.assert_problem(StatusCode::BAD_REQUEST, "bad-request");
}

#[tokio::test(flavor = "multi_thread")]
async fn durable_events_are_replayed_once_and_in_order_after_a_reconnect() {
    let upstream = MockUpstream::start().await;
    let server = server(&upstream, None).await;
    let token = server.user_token("ada").await;

    let (mut socket, _) = hello(&server, &token, None).await;
    let first = conversation(&server, &token).await;
    let created = event(&mut socket, "conversation.changed").await;
    assert_eq!(created["room"], "user");
    assert_eq!(
        created["data"],
        json!({"conversation_id": first, "change": "created"})
    );
    let seen = created["id"].as_u64().unwrap();
    drop(socket);

    // While the client is away.
    let second = conversation(&server, &token).await;
    let renamed = server
        .send(
            reqwest::Method::PATCH,
            &format!("/api/v1/conversations/{first}"),
            Some(&token),
            Some(json!({"title": "Renamed"})),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.text);

    let (mut socket, ready) = hello(&server, &token, Some(seen)).await;
    let replayed = settle(&mut socket).await;
    let changes: Vec<(Value, Value)> = replayed
        .iter()
        .map(|m| {
            (
                m["data"]["conversation_id"].clone(),
                m["data"]["change"].clone(),
            )
        })
        .collect();
    assert_eq!(
        changes,
        [
            (json!(second), json!("created")),
            (json!(first), json!("renamed"))
        ],
        "what was missed, once, oldest first: {replayed:?}"
    );
    let ids: Vec<u64> = replayed.iter().map(|m| m["id"].as_u64().unwrap()).collect();
    assert!(ids[0] > seen && ids[0] < ids[1]);
    assert_eq!(ready["last_event_id"], ids[1]);

    // Live from here on, and nothing again.
    let deleted = server
        .send(
            reqwest::Method::DELETE,
            &format!("/api/v1/conversations/{second}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let live = event(&mut socket, "conversation.changed").await;
    assert_eq!(live["data"]["change"], "deleted");
    assert!(live["id"].as_u64().unwrap() > ids[1]);
    assert!(settle(&mut socket).await.is_empty());

    // Another user's events never reach this socket, and replay holds only this user's.
    let bob = server.user_token("bob").await;
    conversation(&server, &bob).await;
    assert!(settle(&mut socket).await.is_empty());
    let (mut again, _) = hello(&server, &token, Some(0)).await;
    assert_eq!(settle(&mut again).await.len(), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn rooms_of_another_user_are_refused() {
    let upstream = MockUpstream::start().await;
    let server = server(&upstream, None).await;
    let ada = server.user_token("ada").await;
    let bob = server.user_token("bob").await;
    let created = server
        .post(
            "/api/v1/agents",
            Some(&ada),
            json!({"name": "quiet", "definition": {"instructions": "Do {{ goal }}."}}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    upstream.always(
        CHAT,
        says(r#"{"steps": [{"title": "Do", "instructions": "do"}]}"#),
    );
    let started = server
        .post(
            "/api/v1/agents/quiet/runs",
            Some(&ada),
            json!({"goal": "nothing"}),
        )
        .await;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.text);
    let run = started.body["id"].as_str().unwrap().to_owned();
    let chat = conversation(&server, &ada).await;

    let (mut socket, _) = hello(&server, &bob, None).await;
    for room in [format!("run:{run}"), format!("conversation:{chat}")] {
        send(&mut socket, json!({"type": "join", "room": room})).await;
        let refused = next(&mut socket).await;
        assert_eq!(refused["type"], "error", "{refused}");
        assert_eq!(refused["code"], "room-refused");
        assert_eq!(refused["room"], room.as_str());
    }
    send(&mut socket, json!({"type": "join", "room": "lobby"})).await;
    assert_eq!(next(&mut socket).await["code"], "room-refused");
    // Bob's chat into Ada's conversation is refused too.
    send(
        &mut socket,
        json!({"type": "chat", "client_id": uuid::Uuid::now_v7(), "conversation_id": chat,
               "content": "hi"}),
    )
    .await;
    assert_eq!(next(&mut socket).await["code"], "not-found");

    // The owner may join, and sees the run's timeline there.
    let (mut own, _) = hello(&server, &ada, None).await;
    send(
        &mut own,
        json!({"type": "join", "room": format!("run:{run}")}),
    )
    .await;
    assert!(
        settle(&mut own).await.iter().all(|m| m["type"] == "event"),
        "joined without an error"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chat_streams_to_every_socket_in_the_room_and_is_stored_once() {
    let upstream = MockUpstream::start().await;
    let server = server(&upstream, None).await;
    let token = server.user_token("ada").await;
    let id = conversation(&server, &token).await;
    let room = format!("conversation:{id}");

    let (mut phone, _) = hello(&server, &token, None).await;
    send(&mut phone, json!({"type": "join", "room": room})).await;
    assert!(settle(&mut phone).await.iter().all(|m| m["room"] == "user"));
    let (mut laptop, _) = hello(&server, &token, None).await;

    upstream.push(CHAT, streamed(&["Par", "is."]));
    let client_id = uuid::Uuid::now_v7();
    let chat = json!({"type": "chat", "client_id": client_id, "conversation_id": id,
                      "content": "Capital of France?"});
    send(&mut laptop, chat.clone()).await;
    let ack = next(&mut laptop).await;
    assert_eq!(
        ack,
        json!({"type": "ack", "client_id": client_id, "duplicate": false})
    );

    for socket in [&mut laptop, &mut phone] {
        let started = event(socket, "chat.started").await;
        assert_eq!(started["room"], room.as_str());
        assert_eq!(started["id"], Value::Null, "stream events are ephemeral");
        assert_eq!(started["data"]["model"], "scripted");
        let mut text = String::new();
        loop {
            let message = next(socket).await;
            match message["kind"].as_str() {
                Some("chat.token") => {
                    assert_eq!(message["data"]["client_id"], client_id.to_string());
                    text.push_str(message["data"]["text"].as_str().unwrap());
                }
                Some("chat.finished") => {
                    assert_eq!(message["data"]["finish_reason"], "stop");
                    break;
                }
                _ => {}
            }
        }
        assert_eq!(text, "Paris.");
    }
    let stored = server
        .get(&format!("/api/v1/conversations/{id}"), &token)
        .await;
    assert_eq!(stored.body["messages"].as_array().unwrap().len(), 2);
    assert_eq!(stored.body["messages"][1]["content"], "Paris.");

    // Sent again after a reconnect: acknowledged as a duplicate, not stored or answered.
    drop(laptop);
    let (mut laptop, _) = hello(&server, &token, None).await;
    send(&mut laptop, chat).await;
    let ack = next(&mut laptop).await;
    assert_eq!(
        ack,
        json!({"type": "ack", "client_id": client_id, "duplicate": true})
    );
    assert!(settle(&mut laptop).await.is_empty());
    let stored = server
        .get(&format!("/api/v1/conversations/{id}"), &token)
        .await;
    assert_eq!(stored.body["messages"].as_array().unwrap().len(), 2);
    assert_eq!(upstream.requests().len(), 1);

    // A failure reaches the room as a problem.
    upstream.push(
        CHAT,
        Reply::json(
            400,
            json!({"error": {"message": "no", "type": "invalid_request_error"}}),
        ),
    );
    let failing = uuid::Uuid::now_v7();
    send(
        &mut laptop,
        json!({"type": "chat", "client_id": failing, "conversation_id": id, "content": "again"}),
    )
    .await;
    let failed = event(&mut phone, "chat.failed").await;
    assert_eq!(failed["data"]["client_id"], failing.to_string());
    assert!(
        failed["data"]["problem"]["type"]
            .as_str()
            .unwrap()
            .starts_with("urn:kai:problem:")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn consent_requests_arrive_as_the_agent_asks() {
    let upstream = MockUpstream::start().await;
    let server = server(&upstream, None).await;
    let token = server.user_token("ada").await;
    let created = server
        .post(
            "/api/v1/agents",
            Some(&token),
            json!({"name": "scribe", "definition": {"instructions": "Write for {{ goal }}.",
                   "tools": ["write_file"], "consent": {"write_file": "ask"}}}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let (mut socket, _) = hello(&server, &token, None).await;

    upstream.push(
        CHAT,
        says(r#"{"steps": [{"title": "Write", "instructions": "write"}]}"#),
    );
    upstream.push(
        CHAT,
        calls("write_file", json!({"path": "a.txt", "content": "hi"})),
    );
    upstream.push(CHAT, says("Wrote a.txt."));
    let started = server
        .post(
            "/api/v1/agents/scribe/runs",
            Some(&token),
            json!({"goal": "write hi"}),
        )
        .await;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.text);
    let run = started.body["id"].as_str().unwrap().to_owned();
    send(
        &mut socket,
        json!({"type": "join", "room": format!("run:{run}")}),
    )
    .await;

    let requested = event(&mut socket, "consent.requested").await;
    assert_eq!(requested["room"], "user");
    assert_eq!(requested["data"]["run_id"], run.as_str());
    assert_eq!(requested["data"]["tool"], "write_file");
    assert_eq!(requested["data"]["status"], "pending");
    let request = requested["data"]["id"].as_str().unwrap().to_owned();

    let decided = server
        .post(
            &format!("/api/v1/requests/{request}"),
            Some(&token),
            json!({"approve": true}),
        )
        .await;
    assert_eq!(decided.status, StatusCode::OK, "{}", decided.text);
    let decided = event(&mut socket, "consent.decided").await;
    assert_eq!(
        decided["data"],
        json!({"request_id": request, "run_id": run, "decision": "approved"})
    );
    loop {
        let status = event(&mut socket, "run.status").await;
        if status["data"]["status"] == "succeeded" {
            break;
        }
    }
    // The run's room carried its timeline, which replays as the API lists it.
    let (mut replay, _) = hello(&server, &token, Some(0)).await;
    let replayed = settle(&mut replay).await;
    let timeline: Vec<&Value> = replayed
        .iter()
        .filter(|m| m["kind"] == "run.event")
        .map(|m| &m["data"])
        .collect();
    let listed = server
        .get(&format!("/api/v1/runs/{run}/events"), &token)
        .await;
    assert_eq!(
        timeline,
        listed.body["events"]
            .as_array()
            .unwrap()
            .iter()
            .collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_token_closes_the_socket_unless_renewed() {
    let upstream = MockUpstream::start().await;
    let server = server(&upstream, Some(Duration::from_secs(3))).await;
    let login = server.login(support::ADMIN, support::PASSWORD).await;
    let token = login["access_token"].as_str().unwrap().to_owned();
    let (mut renewed, _) = hello(&server, &token, None).await;
    let (mut expiring, _) = hello(&server, &token, None).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let fresh = server.login(support::ADMIN, support::PASSWORD).await;
    send(
        &mut renewed,
        json!({"type": "auth", "token": fresh["access_token"]}),
    )
    .await;
    let closed = next(&mut expiring).await;
    assert_eq!(closed["closed"], 4401, "{closed}");
    assert!(
        settle(&mut renewed).await.is_empty(),
        "the renewed socket stays open"
    );
}

/// With PostgreSQL, an event published by another process (a hub of its own on the same
/// database) reaches this server's sockets, durable and ephemeral, once each.
#[tokio::test(flavor = "multi_thread")]
async fn events_of_another_process_arrive_on_postgres() {
    let upstream = MockUpstream::start().await;
    let server = server(&upstream, None).await;
    if server.db.url().kind() != kai_config::DatabaseKind::Postgres {
        return;
    }
    let token = server.user_token("ada").await;
    let (mut socket, ready) = hello(&server, &token, None).await;
    let user: kai_core::UserId = ready["user_id"].as_str().unwrap().parse().unwrap();
    let other = kai_events::Events::start(server.db.store().await)
        .await
        .unwrap();
    let id = other
        .publish(
            user,
            &kai_events::Room::User,
            "conversation.changed",
            &json!({"conversation_id": uuid::Uuid::now_v7(), "change": "created"}),
            true,
        )
        .await
        .unwrap()
        .unwrap();
    let durable = event(&mut socket, "conversation.changed").await;
    assert_eq!(durable["id"], id);
    other
        .publish(
            user,
            &kai_events::Room::User,
            "chat.token",
            &json!({"text": "hi"}),
            false,
        )
        .await
        .unwrap();
    let ephemeral = event(&mut socket, "chat.token").await;
    assert_eq!(ephemeral["id"], Value::Null);
    assert!(settle(&mut socket).await.is_empty(), "each arrives once");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_answer_keeps_what_it_wrote() {
    let upstream = MockUpstream::start().await;
    let server = server(&upstream, None).await;
    let token = server.user_token("ada").await;
    let id = conversation(&server, &token).await;
    let (mut socket, _) = hello(&server, &token, None).await;

    // A long answer that arrives slowly: two hundred words, a few bytes every 2 ms.
    let words: Vec<String> = (0..200).map(|i| format!("w{i} ")).collect();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    upstream.push(CHAT, streamed(&words).split(8));
    let client_id = uuid::Uuid::now_v7();
    send(
        &mut socket,
        json!({"type": "chat", "client_id": client_id, "conversation_id": id,
               "content": "Talk for a while."}),
    )
    .await;
    event(&mut socket, "chat.token").await;
    // Another user's stop does nothing; the owner's stops it.
    let (mut other, _) = hello(&server, &server.user_token("bob").await, None).await;
    send(&mut other, json!({"type": "stop", "client_id": client_id})).await;
    send(&mut socket, json!({"type": "stop", "client_id": client_id})).await;
    let finished = event(&mut socket, "chat.finished").await;
    assert_eq!(finished["data"]["finish_reason"], "stopped");

    let stored = server
        .get(&format!("/api/v1/conversations/{id}"), &token)
        .await;
    let answer = stored.body["messages"][1]["content"].as_str().unwrap();
    assert!(answer.starts_with("w0 "), "{answer}");
    assert!(
        !answer.contains("w199"),
        "the whole answer was written: {answer}"
    );
}
