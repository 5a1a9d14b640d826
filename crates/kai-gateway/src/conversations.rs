//! Conversations: chats kept per user, so the UI and `kai chat` can show history and continue.
//! Messages are stored in the internal chat model, as JSON the store does not interpret.

use kai_core::{ConversationId, UserId};
use kai_models::chat::{ChatRequest, Message, Role};
use kai_store::{ConversationRecord, NewMessage, StoredMessage};
use time::OffsetDateTime;

use crate::error::GatewayError;
use crate::gateway::Gateway;

/// The longest title kept.
const MAX_TITLE: usize = 200;

/// How much of the first message becomes a conversation's title when none is given.
const DERIVED_TITLE: usize = 60;

/// The title of a conversation started without one or any message; its first message
/// replaces it.
const UNTITLED: &str = "New conversation";

/// A conversation, without its messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    /// The conversation's id.
    pub id: ConversationId,
    /// Its title.
    pub title: String,
    /// The model the user chose for it, if any.
    pub model: Option<String>,
    /// How many messages it holds.
    pub message_count: u64,
    /// When it was started.
    pub created_at: OffsetDateTime,
    /// When messages were last added (or it was started): what orders a user's list.
    pub updated_at: OffsetDateTime,
}

impl From<ConversationRecord> for Conversation {
    fn from(record: ConversationRecord) -> Conversation {
        Conversation {
            id: record.id,
            title: record.title,
            model: record.model,
            message_count: record.message_count,
            created_at: record.created_at,
            updated_at: record.updated_at,
        }
    }
}

/// A message of a conversation, as kept.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversationMessage {
    /// Its place in the conversation, counting from 1.
    pub seq: u64,
    /// The message.
    pub message: Message,
    /// The model that wrote it, for answers.
    pub model: Option<String>,
    /// When it was stored.
    pub created_at: OffsetDateTime,
}

/// A conversation with its messages, in order.
#[derive(Debug, Clone)]
pub struct ConversationHistory {
    /// The conversation.
    pub conversation: Conversation,
    /// Its messages.
    pub messages: Vec<ConversationMessage>,
}

/// A user's turn, stored, and the request that continues the conversation.
#[derive(Debug, Clone)]
pub struct ConversationTurn {
    /// The conversation.
    pub conversation: Conversation,
    /// The model to ask.
    pub model: String,
    /// The whole history, the new turn last.
    pub request: ChatRequest,
}

fn check_title(title: &str) -> Result<String, GatewayError> {
    let title = title.trim();
    if title.is_empty() {
        return Err(GatewayError::Invalid {
            field: "title".into(),
            message: "must not be empty".into(),
        });
    }
    if title.chars().count() > MAX_TITLE {
        return Err(GatewayError::Invalid {
            field: "title".into(),
            message: format!("must be at most {MAX_TITLE} characters"),
        });
    }
    Ok(title.to_owned())
}

/// A title from the first user message's first line.
fn derive_title(messages: &[Message]) -> String {
    let first = messages
        .iter()
        .find(|m| m.role == Role::User)
        .map(Message::joined_text)
        .unwrap_or_default();
    let line = first
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    if line.is_empty() {
        return UNTITLED.to_owned();
    }
    let mut title: String = line.chars().take(DERIVED_TITLE).collect();
    if line.chars().count() > DERIVED_TITLE {
        title.push('…');
    }
    title
}

fn encode(message: &Message, model: Option<&str>) -> Result<NewMessage, GatewayError> {
    Ok(NewMessage {
        role: message.role.as_str().to_owned(),
        body: serde_json::to_string(message).map_err(|err| GatewayError::Invalid {
            field: "messages".into(),
            message: err.to_string(),
        })?,
        model: model.map(str::to_owned),
    })
}

fn not_found() -> GatewayError {
    GatewayError::NotFound("conversation".into())
}

fn decode(stored: StoredMessage) -> Result<ConversationMessage, GatewayError> {
    let message: Message = serde_json::from_str(&stored.body).map_err(|err| {
        GatewayError::Store(kai_store::StoreError::Corrupt {
            table: "conversation_messages",
            message: format!("message {} does not parse: {err}", stored.seq),
        })
    })?;
    Ok(ConversationMessage {
        seq: stored.seq,
        message,
        model: stored.model,
        created_at: stored.created_at,
    })
}

impl Gateway {
    /// Starts a conversation, with `messages` (which may be empty) as its beginning.
    pub async fn create_conversation(
        &self,
        user: UserId,
        title: Option<&str>,
        model: Option<&str>,
        messages: &[Message],
    ) -> Result<ConversationHistory, GatewayError> {
        let title = match title {
            Some(title) => check_title(title)?,
            None => derive_title(messages),
        };
        if let Some(model) = model {
            self.known_model(model)?;
        }
        let record = self
            .inner
            .store
            .create_conversation(user, &title, model)
            .await?;
        let mut stored = Vec::new();
        if !messages.is_empty() {
            let new = messages
                .iter()
                .map(|m| encode(m, None))
                .collect::<Result<Vec<_>, _>>()?;
            stored = self
                .inner
                .store
                .append_messages(user, record.id, &new)
                .await?
                .unwrap_or_default();
        }
        let record = self
            .inner
            .store
            .conversation(user, record.id)
            .await?
            .unwrap_or(record);
        Ok(ConversationHistory {
            conversation: record.into(),
            messages: stored
                .into_iter()
                .map(decode)
                .collect::<Result<Vec<_>, _>>()?,
        })
    }

    /// The user's conversations, most recently active first.
    pub async fn conversations(
        &self,
        user: UserId,
        limit: u32,
        after: Option<(OffsetDateTime, ConversationId)>,
    ) -> Result<Vec<Conversation>, GatewayError> {
        let records = self.inner.store.conversations(user, limit, after).await?;
        Ok(records.into_iter().map(Conversation::from).collect())
    }

    /// One of the user's conversations with its messages.
    pub async fn conversation(
        &self,
        user: UserId,
        id: ConversationId,
    ) -> Result<ConversationHistory, GatewayError> {
        Ok(ConversationHistory {
            conversation: self.stored_conversation(user, id).await?.into(),
            messages: self.kept_messages(user, id).await?,
        })
    }

    /// One of the user's conversations as stored; not found when it is another user's.
    async fn stored_conversation(
        &self,
        user: UserId,
        id: ConversationId,
    ) -> Result<ConversationRecord, GatewayError> {
        self.inner
            .store
            .conversation(user, id)
            .await?
            .ok_or_else(not_found)
    }

    /// The messages of one of the user's conversations, in order.
    async fn kept_messages(
        &self,
        user: UserId,
        id: ConversationId,
    ) -> Result<Vec<ConversationMessage>, GatewayError> {
        self.inner
            .store
            .conversation_messages(user, id)
            .await?
            .ok_or_else(not_found)?
            .into_iter()
            .map(decode)
            .collect()
    }

    /// Renames one of the user's conversations.
    pub async fn rename_conversation(
        &self,
        user: UserId,
        id: ConversationId,
        title: &str,
    ) -> Result<Conversation, GatewayError> {
        let title = check_title(title)?;
        self.inner
            .store
            .rename_conversation(user, id, &title)
            .await?
            .map(Conversation::from)
            .ok_or_else(not_found)
    }

    /// Deletes one of the user's conversations and its messages.
    pub async fn delete_conversation(
        &self,
        user: UserId,
        id: ConversationId,
    ) -> Result<(), GatewayError> {
        if self.inner.store.delete_conversation(user, id).await? {
            Ok(())
        } else {
            Err(GatewayError::NotFound("conversation".into()))
        }
    }

    /// Stores the user's new messages and returns the request that continues the conversation
    /// with `model` (or the conversation's own model, which `model` replaces when given).
    pub async fn begin_turn(
        &self,
        user: UserId,
        id: ConversationId,
        messages: &[Message],
        model: Option<&str>,
    ) -> Result<ConversationTurn, GatewayError> {
        if messages.is_empty() {
            return Err(GatewayError::Invalid {
                field: "messages".into(),
                message: "give at least one message to add".into(),
            });
        }
        let record = self.stored_conversation(user, id).await?;
        let model = match model.or(record.model.as_deref()) {
            Some(model) => model.to_owned(),
            None => {
                return Err(GatewayError::Invalid {
                    field: "model".into(),
                    message: "this conversation has no model yet; name one (GET /v1/models)".into(),
                });
            }
        };
        self.known_model(&model)?;
        if record.model.as_deref() != Some(model.as_str()) {
            self.inner
                .store
                .set_conversation_model(user, id, &model)
                .await?;
        }
        if record.message_count == 0 && record.title == UNTITLED {
            let title = derive_title(messages);
            if title != UNTITLED {
                self.inner
                    .store
                    .rename_conversation(user, id, &title)
                    .await?;
            }
        }
        let new = messages
            .iter()
            .map(|m| encode(m, None))
            .collect::<Result<Vec<_>, _>>()?;
        self.inner
            .store
            .append_messages(user, id, &new)
            .await?
            .ok_or_else(not_found)?;
        let history = self
            .kept_messages(user, id)
            .await?
            .into_iter()
            .map(|kept| kept.message)
            .collect();
        Ok(ConversationTurn {
            conversation: self.stored_conversation(user, id).await?.into(),
            request: ChatRequest::new(model.clone(), history),
            model,
        })
    }

    /// Stores the model's answer to a turn.
    pub async fn finish_turn(
        &self,
        user: UserId,
        id: ConversationId,
        answer: &Message,
        model: &str,
    ) -> Result<ConversationMessage, GatewayError> {
        let stored = self
            .inner
            .store
            .append_messages(user, id, &[encode(answer, Some(model))?])
            .await?
            .and_then(|mut stored| stored.pop())
            .ok_or_else(not_found)?;
        decode(stored)
    }

    fn known_model(&self, model: &str) -> Result<(), GatewayError> {
        if self.table().router.route(model).is_none() {
            return Err(GatewayError::Invalid {
                field: "model".into(),
                message: format!("there is no model named `{model}` (GET /v1/models)"),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_come_from_the_first_user_line() {
        let messages = vec![
            Message::text(Role::System, "Be brief."),
            Message::text(Role::User, "\n  What is the capital of France?\nThanks"),
        ];
        assert_eq!(derive_title(&messages), "What is the capital of France?");
        let long = vec![Message::text(Role::User, "x".repeat(100))];
        assert_eq!(derive_title(&long).chars().count(), DERIVED_TITLE + 1);
        assert_eq!(derive_title(&[]), UNTITLED);
        assert!(check_title("   ").is_err());
    }
}
