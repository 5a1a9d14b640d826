//! Users' chat history: conversations and their messages, in order.
//!
//! Every operation names the user as well as the conversation, and another user's conversation
//! is treated exactly like a missing one.

use kai_core::{ConversationId, UserId};
use time::OffsetDateTime;

use crate::row::Columns;
use crate::truncate;
use crate::{Store, StoreError, count_from_row, from_millis, millis, stored_int, with_pool};

macro_rules! conversation_columns {
    () => {
        "id, user_id, title, model, created_at, updated_at, message_count"
    };
}

/// A conversation, without its messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationRecord {
    /// The conversation's id.
    pub id: ConversationId,
    /// Whose it is.
    pub user_id: UserId,
    /// Its title.
    pub title: String,
    /// The model the user chose for it, if any.
    pub model: Option<String>,
    /// When it was started.
    pub created_at: OffsetDateTime,
    /// When messages were last added (or it was started): what orders a user's list. Renaming
    /// or choosing another model does not move a conversation up the list.
    pub updated_at: OffsetDateTime,
    /// How many messages it holds.
    pub message_count: u64,
}

/// A message as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// Its place in the conversation, counting from 1.
    pub seq: u64,
    /// Who wrote it, such as `user` or `assistant`.
    pub role: String,
    /// Its content, as the JSON the gateway writes.
    pub body: String,
    /// The model that wrote it, for answers.
    pub model: Option<String>,
    /// When it was stored.
    pub created_at: OffsetDateTime,
}

/// A message to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// Who wrote it, such as `user` or `assistant`.
    pub role: String,
    /// Its content, as JSON.
    pub body: String,
    /// The model that wrote it, for answers.
    pub model: Option<String>,
}

fn conversation(row: &impl Columns) -> Result<ConversationRecord, StoreError> {
    let corrupt = |message: String| StoreError::Corrupt {
        table: "conversations",
        message,
    };
    let id = row.text("id")?;
    let user_id = row.text("user_id")?;
    Ok(ConversationRecord {
        id: id
            .parse()
            .map_err(|_| corrupt(format!("id `{id}` is not a UUID")))?,
        user_id: user_id
            .parse()
            .map_err(|_| corrupt(format!("conversation {id}: bad user id")))?,
        title: row.text("title")?,
        model: row.opt_text("model")?,
        created_at: from_millis(row.int("created_at")?),
        updated_at: from_millis(row.int("updated_at")?),
        message_count: count_from_row(row.int("message_count")?, "conversations", "message_count")?,
    })
}

/// The message in a row of [`Store::conversation_messages`]' join; `None` for the row of a
/// conversation without messages.
fn joined_message(row: &impl Columns) -> Result<Option<StoredMessage>, StoreError> {
    let Some(seq) = row.opt_int("seq")? else {
        return Ok(None);
    };
    let missing = |column: &str| StoreError::Corrupt {
        table: "conversation_messages",
        message: format!("message {seq} has no {column}"),
    };
    Ok(Some(StoredMessage {
        seq: count_from_row(seq, "conversation_messages", "seq")?,
        role: row.opt_text("role")?.ok_or_else(|| missing("role"))?,
        body: row.opt_text("body")?.ok_or_else(|| missing("body"))?,
        model: row.opt_text("message_model")?,
        created_at: from_millis(
            row.opt_int("message_created_at")?
                .ok_or_else(|| missing("created_at"))?,
        ),
    }))
}

impl Store {
    /// Starts an empty conversation for the user.
    pub async fn create_conversation(
        &self,
        user: UserId,
        title: &str,
        model: Option<&str>,
    ) -> Result<ConversationRecord, StoreError> {
        let now = truncate(OffsetDateTime::now_utc());
        let record = ConversationRecord {
            id: ConversationId::new(),
            user_id: user,
            title: title.to_owned(),
            model: model.map(str::to_owned),
            created_at: now,
            updated_at: now,
            message_count: 0,
        };
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO conversations (id, user_id, title, model, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $5)",
            )
            .bind(record.id.to_string())
            .bind(user.to_string())
            .bind(title)
            .bind(model)
            .bind(millis(now))
            .execute(pool)
            .await?;
        });
        Ok(record)
    }

    /// The user's conversations, most recently updated first, at most `limit`. With `after`,
    /// the (updated_at, id) of the previous page's last item, only those that come after it
    /// (keyset pagination).
    pub async fn conversations(
        &self,
        user: UserId,
        limit: u32,
        after: Option<(OffsetDateTime, ConversationId)>,
    ) -> Result<Vec<ConversationRecord>, StoreError> {
        with_pool!(self, |pool| {
            let rows =
                match after {
                    None => {
                        sqlx::query(concat!(
                            "SELECT ",
                            conversation_columns!(),
                            " FROM conversations WHERE user_id = $1 \
                         ORDER BY updated_at DESC, id DESC LIMIT $2"
                        ))
                        .bind(user.to_string())
                        .bind(i64::from(limit))
                        .fetch_all(pool)
                        .await?
                    }
                    Some((updated_at, id)) => sqlx::query(concat!(
                        "SELECT ",
                        conversation_columns!(),
                        " FROM conversations WHERE user_id = $1 AND (updated_at, id) < ($3, $4) \
                         ORDER BY updated_at DESC, id DESC LIMIT $2"
                    ))
                    .bind(user.to_string())
                    .bind(i64::from(limit))
                    .bind(millis(updated_at))
                    .bind(id.to_string())
                    .fetch_all(pool)
                    .await?,
                };
            rows.iter().map(conversation).collect()
        })
    }

    /// One of the user's conversations. `None` if it does not exist or is someone else's.
    pub async fn conversation(
        &self,
        user: UserId,
        id: ConversationId,
    ) -> Result<Option<ConversationRecord>, StoreError> {
        with_pool!(self, |pool| {
            let row = sqlx::query(concat!(
                "SELECT ",
                conversation_columns!(),
                " FROM conversations WHERE id = $1 AND user_id = $2"
            ))
            .bind(id.to_string())
            .bind(user.to_string())
            .fetch_optional(pool)
            .await?;
            row.as_ref().map(conversation).transpose()
        })
    }

    /// The messages of one of the user's conversations, in order. `None` if it does not exist
    /// or is someone else's.
    pub async fn conversation_messages(
        &self,
        user: UserId,
        id: ConversationId,
    ) -> Result<Option<Vec<StoredMessage>>, StoreError> {
        // One statement, so that ownership and messages are read from the same snapshot.
        let rows = with_pool!(self, |pool| {
            let rows = sqlx::query(
                "SELECT m.seq, m.role, m.body, m.model AS message_model, \
                     m.created_at AS message_created_at \
                 FROM conversations c \
                 LEFT JOIN conversation_messages m ON m.conversation_id = c.id \
                 WHERE c.id = $1 AND c.user_id = $2 \
                 ORDER BY m.seq",
            )
            .bind(id.to_string())
            .bind(user.to_string())
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(joined_message)
                .collect::<Result<Vec<_>, StoreError>>()?
        });
        if rows.is_empty() {
            return Ok(None);
        }
        Ok(Some(rows.into_iter().flatten().collect()))
    }

    /// Retitles one of the user's conversations. `None` if it does not exist or is someone
    /// else's.
    pub async fn rename_conversation(
        &self,
        user: UserId,
        id: ConversationId,
        title: &str,
    ) -> Result<Option<ConversationRecord>, StoreError> {
        with_pool!(self, |pool| {
            let row = sqlx::query(concat!(
                "UPDATE conversations SET title = $3 WHERE id = $1 AND user_id = $2 RETURNING ",
                conversation_columns!()
            ))
            .bind(id.to_string())
            .bind(user.to_string())
            .bind(title)
            .fetch_optional(pool)
            .await?;
            row.as_ref().map(conversation).transpose()
        })
    }

    /// Sets the model of one of the user's conversations. `false` if it does not exist or is
    /// someone else's.
    pub async fn set_conversation_model(
        &self,
        user: UserId,
        id: ConversationId,
        model: &str,
    ) -> Result<bool, StoreError> {
        let changed = with_pool!(self, |pool| {
            sqlx::query("UPDATE conversations SET model = $3 WHERE id = $1 AND user_id = $2")
                .bind(id.to_string())
                .bind(user.to_string())
                .bind(model)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(changed > 0)
    }

    /// Deletes one of the user's conversations with its messages. `false` if it does not exist
    /// or is someone else's.
    pub async fn delete_conversation(
        &self,
        user: UserId,
        id: ConversationId,
    ) -> Result<bool, StoreError> {
        let deleted = with_pool!(self, |pool| {
            sqlx::query("DELETE FROM conversations WHERE id = $1 AND user_id = $2")
                .bind(id.to_string())
                .bind(user.to_string())
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(deleted > 0)
    }

    /// Appends `messages` to one of the user's conversations with the next sequence numbers, and
    /// makes it the most recently updated (appending nothing changes nothing). Returns the
    /// stored messages, or `None` if the conversation does not exist or is someone else's.
    ///
    /// Concurrent appends to one conversation neither share a number nor lose a message: the
    /// transaction starts by bumping the conversation's message count, which waits for any
    /// other append to commit and reserves this one's numbers, and (conversation, seq) is unique.
    pub async fn append_messages(
        &self,
        user: UserId,
        id: ConversationId,
        messages: &[NewMessage],
    ) -> Result<Option<Vec<StoredMessage>>, StoreError> {
        if messages.is_empty() {
            return Ok(self.conversation(user, id).await?.map(|_| Vec::new()));
        }
        let added = u64::try_from(messages.len()).unwrap_or(u64::MAX);
        let added = stored_int(added, "the number of messages")?;
        let now = truncate(OffsetDateTime::now_utc());
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let count: Option<i64> = sqlx::query_scalar(
                "UPDATE conversations SET message_count = message_count + $3, updated_at = $4 \
                 WHERE id = $1 AND user_id = $2 RETURNING message_count",
            )
            .bind(id.to_string())
            .bind(user.to_string())
            .bind(added)
            .bind(millis(now))
            .fetch_optional(&mut *tx)
            .await?;
            let Some(count) = count else {
                tx.rollback().await?;
                return Ok(None);
            };
            let mut stored = Vec::with_capacity(messages.len());
            for (seq, message) in (count - added + 1..).zip(messages) {
                sqlx::query(
                    "INSERT INTO conversation_messages \
                     (conversation_id, seq, role, body, model, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(id.to_string())
                .bind(seq)
                .bind(&message.role)
                .bind(&message.body)
                .bind(message.model.as_deref())
                .bind(millis(now))
                .execute(&mut *tx)
                .await?;
                stored.push(StoredMessage {
                    seq: count_from_row(seq, "conversations", "message_count")?,
                    role: message.role.clone(),
                    body: message.body.clone(),
                    model: message.model.clone(),
                    created_at: now,
                });
            }
            tx.commit().await?;
            Ok(Some(stored))
        })
    }
}
