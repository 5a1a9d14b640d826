//! The real-time channel, `GET /api/v1/ws` (docs/realtime.md): one WebSocket per browser tab
//! carrying the user's events (from kai-events' hub) and their chat messages.
//!
//! A socket is a loop over three things: the client's messages, the hub's events of its user
//! (forwarded when the socket is in the event's room; durable ones once each, in id order,
//! by a cursor that the replay after `hello` starts), and the credential's expiry. A `chat`
//! runs as a task of its own, publishing its answer into the conversation's room, so that a
//! socket that drops does not cut it short and the user's other devices watch it too.

use std::collections::HashSet;
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures_util::StreamExt;
use http::{HeaderMap, StatusCode};
use kai_auth::Principal;
use kai_core::{ConversationId, Scope, UserId};
use kai_events::{Event, Events, Received, Room, Subscription};
use kai_models::chat::{ChatEvent, FinishReason};
use kai_proto::openai::{ChatMessage, CompletionUsage, MessageContent};
use kai_proto::{
    ChatFailed, ChatFinished, ChatStarted, ChatToken, ConversationChange, KnowledgeOptions,
    Problem, WsClientMessage, WsServerMessage,
};
use time::OffsetDateTime;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::caller;
use crate::state::AppState;

/// How long a client has to say `hello`.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// How often a socket's credential is checked again even before it expires: a session
/// ended by logging out, or a key revoked, closes its sockets within this time.
const AUTH_RECHECK: Duration = Duration::from_secs(60);

/// Durable events read at a time when replaying.
const REPLAY_BATCH: u32 = 500;

/// The most rooms one socket may be in, so that a client cannot make every event cost it
/// unbounded work.
const MAX_ROOMS: usize = 256;

/// Close codes of the contract.
const CLOSE_UNAUTHORIZED: u16 = 4401;
const CLOSE_HELLO_TIMEOUT: u16 = 4408;
/// RFC 6455's "internal error".
const CLOSE_INTERNAL: u16 = 1011;

/// The route where the real-time channel starts.
const PATH: &str = "/api/v1/ws";

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(open_socket))
}

/// Opens the real-time channel: a WebSocket whose messages are `WsClientMessage` (from the
/// client) and `WsServerMessage` (from the server), one JSON text frame each. The first
/// message must be a `hello` with an access token or API key, within 10 seconds (else the
/// socket is closed with 4408; a refused token closes it with 4401). No credential travels in
/// the URL. A browser page may connect only from kai's own origin or one listed in
/// `http.cors_origins`. See docs/realtime.md.
#[utoipa::path(get, path = "", tag = "realtime",
    responses(
        (status = 101, description = "Switching to the WebSocket protocol"),
        (status = 400, description = "Not a WebSocket upgrade request", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A browser page of an origin that is neither kai's own nor listed in `http.cors_origins`", body = Problem, content_type = "application/problem+json"),
    ))]
async fn open_socket(
    State(state): State<AppState>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    crate::origin::require_allowed(&headers, &state.http)?;
    let upgrade = upgrade.map_err(|rejection| {
        ApiError::bad_request(format!(
            "this is kai's WebSocket: open it with a WebSocket client ({})",
            rejection.body_text()
        ))
    })?;
    let limit = usize::try_from(state.http.max_body_size.as_u64()).unwrap_or(usize::MAX);
    Ok(upgrade
        .max_message_size(limit)
        .on_upgrade(move |socket| serve(state, socket)))
}

/// Why a socket ends.
enum End {
    /// The client closed it or went away.
    Gone,
    /// The server closes it with this code and reason.
    Close(u16, String),
}

/// A socket that said `hello`.
struct Session {
    state: AppState,
    events: Events,
    subscription: Subscription,
    principal: Principal,
    token: String,
    rooms: HashSet<String>,
    /// The id of the last durable event sent (or passed over as not the client's concern).
    cursor: u64,
}

async fn serve(state: AppState, mut socket: WebSocket) {
    let end = match hello(state, &mut socket).await {
        Ok(mut session) => session.run(&mut socket).await,
        Err(end) => end,
    };
    if let End::Close(code, reason) = end {
        close(socket, code, &reason).await;
    }
}

async fn close(mut socket: WebSocket, code: u16, reason: &str) {
    // A close frame's reason is at most 123 bytes.
    let mut cut = reason.len().min(123);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    let frame = CloseFrame {
        code,
        reason: reason[..cut].into(),
    };
    let _ = socket.send(Message::Close(Some(frame))).await;
}

/// The next text message; `None` when the socket closed. Binary messages are not part of
/// the protocol; pings are answered by the WebSocket layer.
async fn next_text(socket: &mut WebSocket) -> Option<Result<String, String>> {
    loop {
        match socket.recv().await? {
            Ok(Message::Text(text)) => return Some(Ok(text.to_string())),
            Ok(Message::Binary(_)) => {
                return Some(Err("messages are JSON text frames, not binary".into()));
            }
            Ok(Message::Ping(_) | Message::Pong(_)) => {}
            Ok(Message::Close(_)) | Err(_) => return None,
        }
    }
}

async fn send(socket: &mut WebSocket, message: &WsServerMessage) -> Result<(), End> {
    let text = serde_json::to_string(message).unwrap_or_default();
    socket
        .send(Message::Text(text.into()))
        .await
        .map_err(|_| End::Gone)
}

fn unauthorized(reason: impl Into<String>) -> End {
    End::Close(CLOSE_UNAUTHORIZED, reason.into())
}

fn internal(err: &dyn std::fmt::Display) -> End {
    tracing::error!(error = %err, "the real-time channel failed");
    End::Close(
        CLOSE_INTERNAL,
        "kai failed; the server log has details".into(),
    )
}

fn refused(code: &str, detail: impl Into<String>) -> WsServerMessage {
    WsServerMessage::Error {
        code: code.into(),
        detail: detail.into(),
        client_id: None,
        room: None,
    }
}

/// The principal of `token`, which must carry the `read` scope; a refusal closes with 4401
/// and says why.
async fn authenticate(state: &AppState, token: &str) -> Result<Principal, End> {
    let principal = state
        .accounts()
        .authenticate(token)
        .await
        .map_err(|err| unauthorized(err.to_string()))?;
    principal
        .require(Scope::Read)
        .map_err(|err| unauthorized(err.to_string()))?;
    Ok(principal)
}

/// Reads the `hello`, authenticates it, answers `ready` and replays what the client missed.
async fn hello(state: AppState, socket: &mut WebSocket) -> Result<Session, End> {
    let first = match tokio::time::timeout(HELLO_TIMEOUT, next_text(socket)).await {
        Err(_) => {
            return Err(End::Close(
                CLOSE_HELLO_TIMEOUT,
                "no hello within 10 seconds".into(),
            ));
        }
        Ok(None) => return Err(End::Gone),
        Ok(Some(Err(reason))) => return Err(unauthorized(reason)),
        Ok(Some(Ok(text))) => text,
    };
    let (token, after) = match serde_json::from_str::<WsClientMessage>(&first) {
        Ok(WsClientMessage::Hello { token, after }) => (token, after),
        Ok(_) => return Err(unauthorized("the first message must be a hello")),
        Err(err) => return Err(unauthorized(format!("not a valid hello: {err}"))),
    };
    let principal = authenticate(&state, &token).await?;
    let user = principal.user.id;
    let events = state.events.clone();
    // Subscribed before the newest id is read: nothing published in between is lost.
    let subscription = events.subscribe(user);
    let latest = events.latest(user).await.map_err(|err| internal(&err))?;
    send(
        socket,
        &WsServerMessage::Ready {
            user_id: user.as_uuid(),
            last_event_id: latest,
        },
    )
    .await?;
    let mut session = Session {
        state,
        events,
        subscription,
        principal,
        token,
        rooms: HashSet::from([Room::User.to_string()]),
        cursor: after.unwrap_or(latest),
    };
    // Every durable event the client has not seen, whatever its room.
    session.replay(socket, true).await?;
    Ok(session)
}

impl Session {
    fn user(&self) -> UserId {
        self.principal.user.id
    }

    /// When the credential must be checked again: at its expiry, and at least every
    /// `AUTH_RECHECK`.
    fn recheck_at(&self) -> tokio::time::Instant {
        let soon = tokio::time::Instant::now() + AUTH_RECHECK;
        match self.principal.expires_at() {
            Some(at) => {
                let left = at - OffsetDateTime::now_utc();
                let left = Duration::try_from(left).unwrap_or(Duration::ZERO);
                soon.min(tokio::time::Instant::now() + left)
            }
            None => soon,
        }
    }

    /// Sends the stored events above the cursor: all of them after `hello`, those of the
    /// rooms the socket is in after it fell behind.
    async fn replay(&mut self, socket: &mut WebSocket, every_room: bool) -> Result<(), End> {
        loop {
            let batch = self
                .events
                .replay(self.user(), self.cursor, REPLAY_BATCH)
                .await
                .map_err(|err| internal(&err))?;
            let done = batch.len() < REPLAY_BATCH as usize;
            for event in batch {
                self.cursor = event.id.unwrap_or(self.cursor);
                if every_room || self.rooms.contains(&event.room) {
                    send(socket, &event_message(&event)).await?;
                }
            }
            if done {
                return Ok(());
            }
        }
    }

    async fn run(&mut self, socket: &mut WebSocket) -> End {
        let recheck = tokio::time::sleep_until(self.recheck_at());
        tokio::pin!(recheck);
        loop {
            let step = tokio::select! {
                message = next_text(socket) => match message {
                    None => Err(End::Gone),
                    Some(Err(reason)) => send(socket, &refused("invalid-message", reason)).await,
                    Some(Ok(text)) => {
                        let renewed = self.handle(socket, &text).await;
                        recheck.as_mut().reset(self.recheck_at());
                        renewed
                    }
                },
                received = self.subscription.recv() => match received {
                    Some(Received::Event(event)) => self.forward(socket, &event).await,
                    Some(Received::Missed) => self.replay(socket, false).await,
                    None => Err(End::Close(CLOSE_INTERNAL, "kai is shutting down".into())),
                },
                () = &mut recheck => {
                    match self.state.accounts().authenticate(&self.token).await {
                        Ok(principal) => {
                            self.principal = principal;
                            recheck.as_mut().reset(self.recheck_at());
                            Ok(())
                        }
                        Err(err) => Err(unauthorized(format!(
                            "{err}; renew the token with an `auth` message before it expires"
                        ))),
                    }
                }
            };
            if let Err(end) = step {
                return end;
            }
        }
    }

    /// Sends an event of the hub's when the socket is in its room; a durable one only once.
    async fn forward(&mut self, socket: &mut WebSocket, event: &Event) -> Result<(), End> {
        if let Some(id) = event.id {
            if id <= self.cursor {
                return Ok(());
            }
            self.cursor = id;
        }
        if self.rooms.contains(&event.room) {
            send(socket, &event_message(event)).await?;
        }
        Ok(())
    }

    async fn handle(&mut self, socket: &mut WebSocket, text: &str) -> Result<(), End> {
        let message = match serde_json::from_str::<WsClientMessage>(text) {
            Ok(message) => message,
            Err(err) => {
                return send(
                    socket,
                    &refused("invalid-message", format!("not a valid message: {err}")),
                )
                .await;
            }
        };
        match message {
            WsClientMessage::Hello { .. } => {
                send(
                    socket,
                    &refused("invalid-message", "this socket said hello already"),
                )
                .await
            }
            WsClientMessage::Auth { token } => {
                let principal = authenticate(&self.state, &token).await?;
                if principal.user.id != self.user() {
                    return Err(unauthorized("the new token is another user's"));
                }
                self.principal = principal;
                self.token = token;
                Ok(())
            }
            WsClientMessage::Ping => send(socket, &WsServerMessage::Pong).await,
            WsClientMessage::Stop { client_id } => {
                self.state.answers.stop(self.user(), client_id);
                Ok(())
            }
            WsClientMessage::Leave { room } => {
                self.rooms.remove(&room);
                Ok(())
            }
            WsClientMessage::Join { room } => match self.may_join(&room).await? {
                Ok(()) => {
                    self.rooms.insert(room);
                    Ok(())
                }
                Err(detail) => {
                    send(
                        socket,
                        &WsServerMessage::Error {
                            code: "room-refused".into(),
                            detail,
                            client_id: None,
                            room: Some(room),
                        },
                    )
                    .await
                }
            },
            WsClientMessage::Chat {
                client_id,
                conversation_id,
                content,
                model,
                knowledge,
            } => {
                let chat = Chat {
                    client_id,
                    conversation: conversation_id.into(),
                    content,
                    model,
                    knowledge,
                };
                self.chat(socket, chat).await
            }
        }
    }

    /// Whether the socket may join `room`: the user's own conversation or run. The outer
    /// error ends the socket (the database failed); the inner one says why the room is
    /// refused.
    async fn may_join(&self, room: &str) -> Result<Result<(), String>, End> {
        if self.rooms.len() >= MAX_ROOMS && !self.rooms.contains(room) {
            return Ok(Err(format!(
                "a socket may be in at most {MAX_ROOMS} rooms; leave one first"
            )));
        }
        let owned = match room.parse::<Room>() {
            Err(reason) => return Ok(Err(reason)),
            Ok(Room::User) => Ok(()),
            Ok(Room::Conversation(id)) => self
                .state
                .gateway
                .conversation(self.user(), id)
                .await
                .map(drop)
                .map_err(ApiError::from),
            Ok(Room::Run(id)) => self
                .state
                .agents
                .run(self.user(), id)
                .await
                .map(drop)
                .map_err(ApiError::from),
        };
        match owned {
            Ok(()) => Ok(Ok(())),
            Err(err) if err.status() == StatusCode::NOT_FOUND => {
                Ok(Err(format!("{room} is not one of yours")))
            }
            Err(err) => Err(internal(&err.detail())),
        }
    }

    /// Acknowledges a `chat` and starts answering it, unless it was received before.
    async fn chat(&mut self, socket: &mut WebSocket, chat: Chat) -> Result<(), End> {
        let refuse = |code: &str, detail: String| WsServerMessage::Error {
            code: code.into(),
            detail,
            client_id: Some(chat.client_id),
            room: None,
        };
        if let Err(err) = self.principal.require(Scope::Write) {
            return send(socket, &refuse("forbidden", err.to_string())).await;
        }
        match self
            .state
            .gateway
            .conversation(self.user(), chat.conversation)
            .await
        {
            Ok(_) => {}
            Err(err) => {
                let err = ApiError::from(err);
                if err.status() != StatusCode::NOT_FOUND {
                    return Err(internal(&err.detail()));
                }
                return send(
                    socket,
                    &refuse(
                        "not-found",
                        format!("conversation {} is not one of yours", chat.conversation),
                    ),
                )
                .await;
            }
        }
        let first = self
            .events
            .claim_chat(self.user(), chat.client_id, chat.conversation)
            .await
            .map_err(|err| internal(&err))?;
        // The answer's events go to the conversation's room: the sender is in it.
        self.rooms
            .insert(Room::Conversation(chat.conversation).to_string());
        send(
            socket,
            &WsServerMessage::Ack {
                client_id: chat.client_id,
                duplicate: !first,
            },
        )
        .await?;
        if first {
            tokio::spawn(answer(self.state.clone(), self.principal.clone(), chat));
        }
        Ok(())
    }
}

fn event_message(event: &Event) -> WsServerMessage {
    WsServerMessage::Event {
        id: event.id,
        room: event.room.clone(),
        kind: event.kind.clone(),
        data: event.data.clone(),
    }
}

/// A chat message to answer.
struct Chat {
    client_id: Uuid,
    conversation: ConversationId,
    content: MessageContent,
    model: Option<String>,
    knowledge: Option<KnowledgeOptions>,
}

/// Answers a chat message: stores it, streams the answer into the conversation's room as
/// ephemeral events, stores the answer. Runs on its own, whatever becomes of the socket.
async fn answer(state: AppState, principal: Principal, chat: Chat) {
    let user = principal.user.id;
    let events = state.events.clone();
    let room = Room::Conversation(chat.conversation);
    let (conversation_id, client_id) = (chat.conversation.as_uuid(), chat.client_id);
    let instance = format!("{PATH}#chat:{client_id}");
    let failed = |err: ApiError| {
        let data = ChatFailed {
            conversation_id,
            client_id,
            problem: err.problem(&instance, &client_id.to_string()),
        };
        let events = events.clone();
        async move {
            events
                .announce(
                    user,
                    &room,
                    "chat.failed",
                    &serde_json::to_value(data).unwrap_or_default(),
                    false,
                )
                .await;
        }
    };
    let question = crate::routes::conversations::read_messages(vec![ChatMessage {
        role: "user".into(),
        content: Some(chat.content),
        name: None,
        tool_calls: None,
        tool_call_id: None,
        refusal: None,
    }]);
    let begun = match question {
        Ok(question) => state
            .gateway
            .begin_turn(user, chat.conversation, &question, chat.model.as_deref())
            .await
            .map_err(ApiError::from),
        Err(err) => Err(err),
    };
    let mut turn = match begun {
        Ok(turn) => turn,
        Err(err) => {
            // Nothing was stored: the client may send the message again as it is.
            if let Err(err) = events.release_chat(user, client_id).await {
                tracing::warn!(error = %err, "cannot forget a chat message's client id");
            }
            return failed(err).await;
        }
    };
    events
        .conversation_changed(user, chat.conversation, ConversationChange::Message)
        .await;
    let sources = match chat.knowledge {
        Some(options) => match crate::routes::openai::ground(
            &state,
            &principal,
            &mut turn.request.messages,
            options,
        )
        .await
        {
            Ok(sources) => Some(sources),
            Err(err) => return failed(err).await,
        },
        None => None,
    };
    let caller = caller(&principal, client_id.to_string());
    let mut stream = match state
        .gateway
        .chat_stream(&caller, &turn.model, &turn.request)
        .await
    {
        Ok(stream) => stream,
        Err(err) => return failed(err.into()).await,
    };
    let started = ChatStarted {
        conversation_id,
        client_id,
        model: stream.model().to_owned(),
    };
    let publish = |kind: &'static str, data: serde_json::Value| {
        let events = events.clone();
        async move { events.announce(user, &room, kind, &data, false).await }
    };
    publish(
        "chat.started",
        serde_json::to_value(started).unwrap_or_default(),
    )
    .await;
    let stop = state.answers.start(user, client_id);
    let mut stopped = false;
    let mut index = 0;
    loop {
        let item = tokio::select! {
            item = stream.next() => item,
            () = stop.cancelled() => {
                stopped = true;
                break;
            }
        };
        let Some(item) = item else { break };
        match item {
            Ok(ChatEvent::Text(text)) => {
                let token = ChatToken {
                    conversation_id,
                    client_id,
                    index,
                    text,
                };
                publish(
                    "chat.token",
                    serde_json::to_value(token).unwrap_or_default(),
                )
                .await;
                index += 1;
            }
            Ok(_) => {}
            Err(err) => {
                return failed(ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "upstream-failed",
                    "Upstream failed",
                    format!(
                        "the answer broke off: {}/{} failed: {err}",
                        stream.provider(),
                        stream.upstream_model()
                    ),
                ))
                .await;
            }
        }
    }
    state.answers.end(client_id);
    let mut response = stream.response();
    if stopped {
        response.finish_reason = FinishReason::Other("stopped".into());
    }
    if let Err(err) = state
        .gateway
        .finish_turn(user, chat.conversation, &response.message, stream.model())
        .await
    {
        return failed(err.into()).await;
    }
    let usage = stream.usage();
    let finished = ChatFinished {
        conversation_id,
        client_id,
        finish_reason: response.finish_reason.as_str().to_owned(),
        usage: CompletionUsage {
            prompt_tokens: usage.input_tokens,
            completion_tokens: usage.output_tokens,
            total_tokens: usage.total(),
        },
        cost_micros: stream.cost_micros(),
        sources,
    };
    publish(
        "chat.finished",
        serde_json::to_value(finished).unwrap_or_default(),
    )
    .await;
    events
        .conversation_changed(user, chat.conversation, ConversationChange::Message)
        .await;
}
