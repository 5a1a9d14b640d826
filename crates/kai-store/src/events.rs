//! The real-time channel's events (docs/realtime.md): durable ones stored with a global,
//! increasing id and replayed to clients that reconnect, and, with PostgreSQL, word of every
//! event (durable or not) to the other processes sharing the database over `LISTEN`/`NOTIFY`.
//!
//! The store does not read an event's data: it is the JSON its publisher wrote.

use kai_core::UserId;
use sqlx::postgres::PgListener;
use time::OffsetDateTime;

use crate::row::Columns;
use crate::{Pool, Store, StoreError, count_from_row, from_millis, millis, stored_int, with_pool};

/// The channel processes tell each other of events on, in the `public` schema; in another
/// schema (each test's own) the schema's name follows it, so that databases in one server
/// that share nothing hear nothing of each other.
pub const EVENTS_CHANNEL: &str = "kai_events";

/// The largest NOTIFY payload sent whole. PostgreSQL refuses payloads of 8000 bytes or more;
/// a larger event travels as its id, and listeners read it from the table.
const MAX_NOTIFY_PAYLOAD: usize = 7900;

/// The advisory lock every append takes for the rest of its transaction, so that events
/// commit in the order of their ids: a reader that saw id N can never later find an id below
/// N committed after it. (An arbitrary constant: ASCII "kaievts".)
const APPEND_LOCK: i64 = 0x006b_6169_6576_7473;

/// An event to store or to tell other processes of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewEvent<'a> {
    /// Whose it is: only this user's clients see it.
    pub user_id: UserId,
    /// The room it belongs to (`user`, `conversation:<id>`, `run:<id>`).
    pub room: &'a str,
    /// What happened (`run.status`, `chat.token`, …).
    pub kind: &'a str,
    /// Its data, as JSON.
    pub data: &'a str,
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    /// Its id: global, increasing, never reused.
    pub id: u64,
    /// Whose it is.
    pub user_id: UserId,
    /// Its room.
    pub room: String,
    /// What happened.
    pub kind: String,
    /// Its data, as JSON.
    pub data: String,
    /// When it was stored.
    pub created_at: OffsetDateTime,
}

/// What a [`EventListener`] heard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventNotice {
    /// An event was stored. `event` is `None` when it was too large to travel: read it by
    /// `id`.
    Stored {
        /// The process that stored it, as it named itself.
        origin: String,
        /// Its id.
        id: u64,
        /// The event, when it travelled whole.
        event: Option<EventRecord>,
    },
    /// An event that is not stored (a token of an answer being written).
    Ephemeral {
        /// The process that published it.
        origin: String,
        /// Whose it is.
        user_id: UserId,
        /// Its room.
        room: String,
        /// What happened.
        kind: String,
        /// Its data, as JSON.
        data: String,
    },
    /// The connection broke and was made again: whatever was sent meanwhile was not heard,
    /// and stored events should be read from the table.
    Lost,
}

/// A notice as it travels in a NOTIFY payload.
#[derive(serde::Serialize, serde::Deserialize)]
struct Payload {
    origin: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    room: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    at: Option<i64>,
}

impl Payload {
    fn event(origin: &str, id: Option<i64>, event: &NewEvent<'_>, at: i64) -> String {
        let whole = Payload {
            origin: origin.to_owned(),
            id,
            user_id: Some(event.user_id.to_string()),
            room: Some(event.room.to_owned()),
            kind: Some(event.kind.to_owned()),
            data: Some(event.data.to_owned()),
            at: Some(at),
        };
        serde_json::to_string(&whole).unwrap_or_default()
    }

    fn read(text: &str) -> Result<EventNotice, String> {
        let payload: Payload = serde_json::from_str(text).map_err(|err| err.to_string())?;
        let user_id = payload
            .user_id
            .as_deref()
            .map(|id| {
                id.parse::<UserId>()
                    .map_err(|_| format!("bad user id `{id}`"))
            })
            .transpose()?;
        let id = payload
            .id
            .map(|id| u64::try_from(id).map_err(|_| format!("bad id {id}")))
            .transpose()?;
        match (id, user_id, payload.room, payload.kind, payload.data) {
            (Some(id), Some(user_id), Some(room), Some(kind), Some(data)) => {
                Ok(EventNotice::Stored {
                    origin: payload.origin,
                    id,
                    event: Some(EventRecord {
                        id,
                        user_id,
                        room,
                        kind,
                        data,
                        created_at: from_millis(payload.at.unwrap_or_default()),
                    }),
                })
            }
            (Some(id), ..) => Ok(EventNotice::Stored {
                origin: payload.origin,
                id,
                event: None,
            }),
            (None, Some(user_id), Some(room), Some(kind), Some(data)) => {
                Ok(EventNotice::Ephemeral {
                    origin: payload.origin,
                    user_id,
                    room,
                    kind,
                    data,
                })
            }
            _ => Err("neither an id nor a whole event".into()),
        }
    }
}

fn event(row: &impl Columns) -> Result<EventRecord, StoreError> {
    let id = row.int("id")?;
    let user_id = row.text("user_id")?;
    Ok(EventRecord {
        id: count_from_row(id, "events", "id")?,
        user_id: user_id.parse().map_err(|_| StoreError::Corrupt {
            table: "events",
            message: format!("event {id}: bad user id"),
        })?,
        room: row.text("room")?,
        kind: row.text("kind")?,
        data: row.text("data")?,
        created_at: from_millis(row.int("created_at")?),
    })
}

/// Hears of the events other processes (and this one) publish, on PostgreSQL.
#[derive(Debug)]
pub struct EventListener {
    listener: PgListener,
}

impl EventListener {
    /// The next notice; `None` once the store's pool is closed. A notice that cannot be read
    /// (not written by kai) is skipped with a warning. Fails when the database cannot be
    /// reached (again).
    pub async fn recv(&mut self) -> Result<Option<EventNotice>, StoreError> {
        loop {
            let notification = match self.listener.try_recv().await {
                Ok(Some(notification)) => notification,
                Ok(None) => return Ok(Some(EventNotice::Lost)),
                Err(sqlx::Error::PoolClosed) => return Ok(None),
                Err(err) => return Err(err.into()),
            };
            match Payload::read(notification.payload()) {
                Ok(notice) => return Ok(Some(notice)),
                Err(err) => tracing::warn!(error = %err, "unreadable event notice skipped"),
            }
        }
    }
}

impl Store {
    /// Stores a durable event and returns it with its id. On PostgreSQL the other processes
    /// are told of it in the same transaction (they hear of it once it is committed), named
    /// as coming from `origin`.
    pub async fn append_event(
        &self,
        new: &NewEvent<'_>,
        origin: &str,
    ) -> Result<EventRecord, StoreError> {
        let now = millis(OffsetDateTime::now_utc());
        let insert = "INSERT INTO events (user_id, room, kind, data, created_at) \
                      VALUES ($1, $2, $3, $4, $5) RETURNING id";
        let id: i64 = match &self.pool {
            Pool::Sqlite(pool) => {
                sqlx::query_scalar(insert)
                    .bind(new.user_id.to_string())
                    .bind(new.room)
                    .bind(new.kind)
                    .bind(new.data)
                    .bind(now)
                    .fetch_one(pool)
                    .await?
            }
            Pool::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(APPEND_LOCK)
                    .execute(&mut *tx)
                    .await?;
                let id: i64 = sqlx::query_scalar(insert)
                    .bind(new.user_id.to_string())
                    .bind(new.room)
                    .bind(new.kind)
                    .bind(new.data)
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await?;
                let mut payload = Payload::event(origin, Some(id), new, now);
                if payload.len() > MAX_NOTIFY_PAYLOAD {
                    payload = serde_json::to_string(&Payload {
                        origin: origin.to_owned(),
                        id: Some(id),
                        user_id: None,
                        room: None,
                        kind: None,
                        data: None,
                        at: None,
                    })
                    .unwrap_or_default();
                }
                sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(&self.events_channel)
                    .bind(payload)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                id
            }
        };
        Ok(EventRecord {
            id: count_from_row(id, "events", "id")?,
            user_id: new.user_id,
            room: new.room.to_owned(),
            kind: new.kind.to_owned(),
            data: new.data.to_owned(),
            created_at: from_millis(now),
        })
    }

    /// Tells the other processes sharing a PostgreSQL database of an event that is not
    /// stored; `false`, sending nothing, when it is too large for NOTIFY or the database is
    /// SQLite (whose one process keeps its events to itself).
    pub async fn notify_event(&self, new: &NewEvent<'_>, origin: &str) -> Result<bool, StoreError> {
        let Pool::Postgres(pool) = &self.pool else {
            return Ok(false);
        };
        let payload = Payload::event(origin, None, new, millis(OffsetDateTime::now_utc()));
        if payload.len() > MAX_NOTIFY_PAYLOAD {
            return Ok(false);
        }
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(&self.events_channel)
            .bind(payload)
            .execute(pool)
            .await?;
        Ok(true)
    }

    /// Starts listening for the events processes sharing this database publish; `None` on
    /// SQLite. Holds one of the pool's connections for as long as it lives.
    pub async fn listen_events(&self) -> Result<Option<EventListener>, StoreError> {
        let Pool::Postgres(pool) = &self.pool else {
            return Ok(None);
        };
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen(&self.events_channel).await?;
        Ok(Some(EventListener { listener }))
    }

    /// The user's stored events with an id above `after`, oldest first, at most `limit`.
    pub async fn events_after(
        &self,
        user: UserId,
        after: u64,
        limit: u32,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let after = stored_int(after, "an event id")?;
        with_pool!(self, |pool| {
            sqlx::query(
                "SELECT id, user_id, room, kind, data, created_at FROM events \
                 WHERE user_id = $1 AND id > $2 ORDER BY id LIMIT $3",
            )
            .bind(user.to_string())
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
            .iter()
            .map(event)
            .collect()
        })
    }

    /// Every user's stored events with an id above `after`, oldest first, at most `limit`:
    /// what a process that lost its connection to the other processes' notices missed.
    pub async fn all_events_after(
        &self,
        after: u64,
        limit: u32,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let after = stored_int(after, "an event id")?;
        with_pool!(self, |pool| {
            sqlx::query(
                "SELECT id, user_id, room, kind, data, created_at FROM events \
                 WHERE id > $1 ORDER BY id LIMIT $2",
            )
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
            .iter()
            .map(event)
            .collect()
        })
    }

    /// One stored event.
    pub async fn event(&self, id: u64) -> Result<Option<EventRecord>, StoreError> {
        let id = stored_int(id, "an event id")?;
        with_pool!(self, |pool| {
            sqlx::query(
                "SELECT id, user_id, room, kind, data, created_at FROM events WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?
            .as_ref()
            .map(event)
            .transpose()
        })
    }

    /// The id of the newest stored event (of `user`, when given); `None` when there is none.
    pub async fn latest_event_id(&self, user: Option<UserId>) -> Result<Option<u64>, StoreError> {
        let latest: Option<i64> = with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT MAX(id) FROM events WHERE ($1 IS NULL OR user_id = $1)")
                .bind(user.map(|user| user.to_string()))
                .fetch_one(pool)
                .await?
        });
        latest
            .map(|id| count_from_row(id, "events", "id"))
            .transpose()
    }

    /// Deletes events, and the chat requests remembered for duplicates, stored before
    /// `before`. Returns how many events went.
    pub async fn prune_events(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let before = millis(before);
        with_pool!(self, |pool| {
            let events = sqlx::query("DELETE FROM events WHERE created_at < $1")
                .bind(before)
                .execute(pool)
                .await?
                .rows_affected();
            sqlx::query("DELETE FROM chat_requests WHERE created_at < $1")
                .bind(before)
                .execute(pool)
                .await?;
            Ok(events)
        })
    }

    /// Remembers a chat message by the id its client gave it; `false` when the user already
    /// sent one with that id (a retry, to be answered without storing it again).
    pub async fn claim_chat_request(
        &self,
        user: UserId,
        client_id: &str,
        conversation: kai_core::ConversationId,
    ) -> Result<bool, StoreError> {
        let claimed = with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO chat_requests (user_id, client_id, conversation_id, created_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, client_id) DO NOTHING",
            )
            .bind(user.to_string())
            .bind(client_id)
            .bind(conversation.to_string())
            .bind(millis(OffsetDateTime::now_utc()))
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(claimed == 1)
    }

    /// Forgets a chat message's id, so that the client may send it again: its question was
    /// never stored.
    pub async fn release_chat_request(
        &self,
        user: UserId,
        client_id: &str,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query("DELETE FROM chat_requests WHERE user_id = $1 AND client_id = $2")
                .bind(user.to_string())
                .bind(client_id)
                .execute(pool)
                .await?;
        });
        Ok(())
    }
}
