//! The real-time channel, `GET /api/v1/ws` (docs/realtime.md): the messages a client sends
//! ([`WsClientMessage`]) and those the server sends ([`WsServerMessage`]), one JSON text frame
//! each, told apart by `type`, and the data of each kind of event.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::openai::{CompletionUsage, MessageContent};
use crate::{
    IndexState, KnowledgeOptions, KnowledgeSource, Problem, RequestStatus, RunEvent, RunRequest,
    RunStatus,
};

/// A message from the client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum WsClientMessage {
    /// The first message: who the client is, and the last durable event it saw.
    Hello {
        /// An access token or API key.
        token: String,
        /// The id of the last durable event the client saw; left out (or `null`) on a first
        /// connection, when nothing is replayed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<u64>,
    },
    /// A renewed access token, sent before the previous one expires.
    Auth {
        /// The new access token (or an API key).
        token: String,
    },
    /// Joins a room: `conversation:<id>` or `run:<id>` of the caller's own.
    Join {
        /// The room.
        room: String,
    },
    /// Leaves a room.
    Leave {
        /// The room.
        room: String,
    },
    /// Sends a message to a conversation: acknowledged, then answered with `chat.*` events in
    /// the conversation's room. Sent again with the same `client_id`, it is stored once.
    Chat {
        /// A UUID the client makes for this message, to recognise a retry.
        client_id: Uuid,
        /// The conversation.
        conversation_id: Uuid,
        /// The user's message: text, or parts with images.
        content: MessageContent,
        /// The model to ask; by default the conversation's. Given, it becomes the
        /// conversation's.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        model: Option<String>,
        /// Answer from the caller's knowledge, as with `POST …/messages`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        knowledge: Option<KnowledgeOptions>,
    },
    /// Stops an answer being written (a `chat` this user sent to this process): what it wrote
    /// so far is kept, and `chat.finished` says `stopped`.
    Stop {
        /// The `client_id` of the `chat`.
        client_id: Uuid,
    },
    /// Asks for a `pong`.
    Ping,
}

/// A message from the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WsServerMessage {
    /// The `hello` was accepted; replay and live events follow.
    Ready {
        /// The caller.
        user_id: Uuid,
        /// The id of the newest durable event of the caller's (0 when there is none): where a
        /// client that connected without `after` resumes from next time.
        last_event_id: u64,
    },
    /// Something happened in one of the rooms the client is in.
    Event {
        /// The event's id when it is durable (stored, replayed after a reconnect); `null` for
        /// an ephemeral one.
        id: Option<u64>,
        /// The room: `user`, `conversation:<id>` or `run:<id>`.
        room: String,
        /// What happened: `chat.started`, `chat.token`, `chat.finished`, `chat.failed`,
        /// `conversation.changed`, `run.event`, `run.status`, `consent.requested`,
        /// `consent.decided` or `knowledge.progress`.
        kind: String,
        /// The event's data, whose shape its kind decides.
        #[schema(value_type = WsEventData)]
        data: Value,
    },
    /// A `chat` was received (or, with `duplicate`, had been already).
    Ack {
        /// The `client_id` of the `chat`.
        client_id: Uuid,
        /// The message had been received before: it is not stored or answered again.
        #[serde(default)]
        duplicate: bool,
    },
    /// A message was refused; nothing changed.
    Error {
        /// A stable name of what went wrong (`invalid-message`, `room-refused`,
        /// `forbidden`, `not-found`, `validation-failed`).
        code: String,
        /// What went wrong and what to do.
        detail: String,
        /// The `client_id` of the `chat` refused, when it was one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_id: Option<Uuid>,
        /// The room refused, when it was a `join`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
    },
    /// The answer to a `ping`.
    Pong,
}

/// The data of an event, by its kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum WsEventData {
    /// `chat.started`.
    ChatStarted(ChatStarted),
    /// `chat.token`.
    ChatToken(ChatToken),
    /// `chat.finished`.
    ChatFinished(ChatFinished),
    /// `chat.failed`.
    ChatFailed(ChatFailed),
    /// `conversation.changed`.
    ConversationChanged(ConversationChanged),
    /// `run.event`: a run's timeline event, as `/api/v1/runs/{id}/events` gives it.
    RunEvent(RunEvent),
    /// `run.status`.
    RunStatusChanged(RunStatusChanged),
    /// `consent.requested`: the request, as `/api/v1/requests` gives it.
    ConsentRequested(RunRequest),
    /// `consent.decided`.
    ConsentDecided(ConsentDecided),
    /// `knowledge.progress`.
    KnowledgeProgress(KnowledgeProgress),
}

/// `chat.started`: the model began answering a `chat`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChatStarted {
    /// The conversation.
    pub conversation_id: Uuid,
    /// The `client_id` of the `chat`.
    pub client_id: Uuid,
    /// The model answering.
    pub model: String,
}

/// `chat.token`: more of the answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChatToken {
    /// The conversation.
    pub conversation_id: Uuid,
    /// The `client_id` of the `chat`.
    pub client_id: Uuid,
    /// This piece's place in the answer, from 0.
    pub index: u64,
    /// The text.
    pub text: String,
}

/// `chat.finished`: the answer is complete and stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ChatFinished {
    /// The conversation.
    pub conversation_id: Uuid,
    /// The `client_id` of the `chat`.
    pub client_id: Uuid,
    /// Why the model stopped: `stop`, `length`, `tool_calls`, `content_filter`, or `stopped`
    /// when the user stopped it.
    pub finish_reason: String,
    /// Tokens used.
    pub usage: CompletionUsage,
    /// What it cost, in millionths of a dollar.
    pub cost_micros: u64,
    /// The passages the answer was given, when the `chat` asked for knowledge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sources: Option<Vec<KnowledgeSource>>,
}

/// `chat.failed`: no answer (or only part of one) came.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ChatFailed {
    /// The conversation.
    pub conversation_id: Uuid,
    /// The `client_id` of the `chat`.
    pub client_id: Uuid,
    /// What went wrong, as the HTTP API would have said it.
    pub problem: Problem,
}

/// What changed in a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConversationChange {
    /// It was started.
    Created,
    /// A message was stored in it.
    Message,
    /// It was renamed.
    Renamed,
    /// It was deleted.
    Deleted,
}

/// `conversation.changed`: one of the user's conversations changed, perhaps on another
/// device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ConversationChanged {
    /// The conversation.
    pub conversation_id: Uuid,
    /// What changed.
    pub change: ConversationChange,
}

/// `run.status`: a run moved to another status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RunStatusChanged {
    /// The run.
    pub run_id: Uuid,
    /// Its agent's id.
    pub agent: Uuid,
    /// Where it stands now.
    pub status: RunStatus,
}

/// `consent.decided`: a request was answered, or expired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ConsentDecided {
    /// The request.
    pub request_id: Uuid,
    /// The run that asked.
    pub run_id: Uuid,
    /// How it was decided.
    pub decision: RequestStatus,
}

/// `knowledge.progress`: indexing an artifact's version moved on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KnowledgeProgress {
    /// The artifact.
    pub artifact_id: Uuid,
    /// How far indexing has come.
    pub status: IndexState,
    /// How many chunks of it are searchable.
    pub chunks: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_messages_read_as_the_contract_writes_them() {
        let hello: WsClientMessage =
            serde_json::from_str(r#"{"type": "hello", "token": "t", "after": 1234}"#).unwrap();
        assert_eq!(
            hello,
            WsClientMessage::Hello {
                token: "t".into(),
                after: Some(1234)
            }
        );
        let first: WsClientMessage =
            serde_json::from_str(r#"{"type": "hello", "token": "t", "after": null}"#).unwrap();
        assert_eq!(
            first,
            WsClientMessage::Hello {
                token: "t".into(),
                after: None
            }
        );
        let ping: WsClientMessage = serde_json::from_str(r#"{"type": "ping"}"#).unwrap();
        assert_eq!(ping, WsClientMessage::Ping);
        assert!(
            serde_json::from_str::<WsClientMessage>(r#"{"type": "join", "room": "x", "y": 1}"#)
                .is_err(),
            "unknown fields are refused"
        );
    }

    #[test]
    fn server_messages_are_written_as_the_contract_reads_them() {
        let event = WsServerMessage::Event {
            id: None,
            room: "user".into(),
            kind: "chat.token".into(),
            data: serde_json::json!({"text": "hi"}),
        };
        assert_eq!(
            serde_json::to_value(&event).unwrap(),
            serde_json::json!({"type": "event", "id": null, "room": "user", "kind": "chat.token", "data": {"text": "hi"}})
        );
        assert_eq!(
            serde_json::to_value(WsServerMessage::Pong).unwrap(),
            serde_json::json!({"type": "pong"})
        );
    }
}
