//! The real-time event hub (docs/realtime.md). [`Events::publish`] takes an event of one
//! user's, in one [`Room`]; each of the user's [`Subscription`]s receives it, and the socket
//! holding the subscription forwards it when its client is in that room.
//!
//! Durable events are stored first (kai-store's `events` table, with a global, increasing id)
//! so that a client that reconnects is sent what it missed ([`Events::replay`]); ephemeral ones
//! (stream tokens) are only passed on. With SQLite one process owns the data and events stay
//! inside it. With PostgreSQL, every process publishes through the database (`NOTIFY` on
//! `kai_events`) and a task of each hub listens: durable events, this process's own included,
//! reach subscribers from there, in the order of their ids, which is the order they committed
//! in; ephemeral ones reach this process's subscribers at once and the others' from there.
//!
//! *Invariant:* a subscriber sees the durable events of its user in increasing id order; one
//! that fell behind is told so ([`Received::Missed`]) and reads the table again.

mod room;
pub mod wire;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use kai_core::{ArtifactId, ConversationId, UserId};
use kai_proto::{
    ConsentDecided, ConversationChange, ConversationChanged, KnowledgeProgress, RunStatusChanged,
};
use kai_store::{
    EventListener, EventNotice, EventRecord, IndexState, NewEvent, NewRunEvent, RunEventRecord,
    RunRecord, RunRequestRecord, Store, StoreError,
};
use serde_json::Value;
use time::OffsetDateTime;
use tokio::sync::broadcast;

pub use crate::room::Room;

/// Events a subscriber may fall behind by before it is told it missed some.
const SUBSCRIBER_BUFFER: usize = 1024;

/// Stored events read at a time, when catching up.
const BATCH: u32 = 500;

/// How long the listener waits before trying the database again after a failure.
const RETRY: Duration = Duration::from_secs(1);

/// One event, as subscribers receive it.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Its id when it is durable; `None` when it is ephemeral.
    pub id: Option<u64>,
    /// Whose it is.
    pub user_id: UserId,
    /// Its room, as the wire names it (`user`, `run:<id>`, …).
    pub room: String,
    /// What happened (`run.status`, `chat.token`, …).
    pub kind: String,
    /// Its data.
    pub data: Value,
}

impl Event {
    fn stored(record: EventRecord) -> Event {
        Event {
            id: Some(record.id),
            user_id: record.user_id,
            data: serde_json::from_str(&record.data).unwrap_or(Value::Null),
            room: record.room,
            kind: record.kind,
        }
    }
}

/// What a [`Subscription`] received.
#[derive(Debug, Clone)]
pub enum Received {
    /// An event.
    Event(Arc<Event>),
    /// The subscriber fell behind and events were dropped: durable ones are to be read again
    /// with [`Events::replay`]; ephemeral ones are gone.
    Missed,
}

/// One subscriber's events: every event of its user, in every room.
#[derive(Debug)]
pub struct Subscription {
    events: broadcast::Receiver<Arc<Event>>,
}

impl Subscription {
    /// The next event; `None` once the hub is gone.
    pub async fn recv(&mut self) -> Option<Received> {
        match self.events.recv().await {
            Ok(event) => Some(Received::Event(event)),
            Err(broadcast::error::RecvError::Lagged(_)) => Some(Received::Missed),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}

struct Inner {
    store: Store,
    /// This process's name in the notices it sends, to know its own ephemeral events.
    origin: String,
    /// Whether other processes share the database (PostgreSQL).
    shared: bool,
    /// Each user's subscribers.
    users: Mutex<HashMap<UserId, broadcast::Sender<Arc<Event>>>>,
    /// With SQLite, durable events are stored and passed on one at a time, so that
    /// subscribers receive them in the order of their ids.
    order: tokio::sync::Mutex<()>,
    /// The task listening to the other processes, stopped with the hub.
    listener: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(task) = self
            .listener
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            task.abort();
        }
    }
}

impl Inner {
    /// Passes an event to its user's subscribers in this process.
    fn deliver(&self, event: Event) {
        let mut users = self.users.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(sender) = users.get(&event.user_id) else {
            return;
        };
        if sender.receiver_count() == 0 {
            users.remove(&event.user_id);
            return;
        }
        let _ = sender.send(Arc::new(event));
    }
}

/// The event hub. Cheap to clone: clones share it.
#[derive(Clone)]
pub struct Events {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events")
            .field("origin", &self.inner.origin)
            .field("shared", &self.inner.shared)
            .finish_non_exhaustive()
    }
}

impl Events {
    /// The hub over `store`. With PostgreSQL it first listens to the other processes, so that
    /// nothing they publish once this returns is missed.
    pub async fn start(store: Store) -> Result<Events, StoreError> {
        let listener = store.listen_events().await?;
        let inner = Arc::new(Inner {
            shared: listener.is_some(),
            store,
            origin: uuid::Uuid::now_v7().to_string(),
            users: Mutex::default(),
            order: tokio::sync::Mutex::new(()),
            listener: Mutex::new(None),
        });
        if let Some(listener) = listener {
            let last = inner.store.latest_event_id(None).await?.unwrap_or(0);
            let task = tokio::spawn(follow(Arc::downgrade(&inner), listener, last));
            *inner
                .listener
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(task);
        }
        Ok(Events { inner })
    }

    /// Every event of `user` from now on, in every room.
    #[must_use]
    pub fn subscribe(&self, user: UserId) -> Subscription {
        let mut users = self
            .inner
            .users
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let sender = users
            .entry(user)
            .or_insert_with(|| broadcast::channel(SUBSCRIBER_BUFFER).0);
        Subscription {
            events: sender.subscribe(),
        }
    }

    /// Publishes an event of `user`'s in `room`: stored first when `durable` (and then its id
    /// returned), passed on to subscribers in this process and, on PostgreSQL, in the others.
    pub async fn publish(
        &self,
        user: UserId,
        room: &Room,
        kind: &str,
        data: &Value,
        durable: bool,
    ) -> Result<Option<u64>, StoreError> {
        let room = room.to_string();
        let text = data.to_string();
        let new = NewEvent {
            user_id: user,
            room: &room,
            kind,
            data: &text,
        };
        let inner = &self.inner;
        if durable {
            if inner.shared {
                // Subscribers here receive it from the listener, in order with the others'.
                let stored = inner.store.append_event(&new, &inner.origin).await?;
                return Ok(Some(stored.id));
            }
            let _order = inner.order.lock().await;
            let stored = inner.store.append_event(&new, &inner.origin).await?;
            let id = stored.id;
            inner.deliver(Event::stored(stored));
            return Ok(Some(id));
        }
        inner.deliver(Event {
            id: None,
            user_id: user,
            room: room.clone(),
            kind: kind.to_owned(),
            data: data.clone(),
        });
        if inner.shared && !inner.store.notify_event(&new, &inner.origin).await? {
            tracing::debug!(
                kind,
                "an ephemeral event too large for NOTIFY stays in this process"
            );
        }
        Ok(None)
    }

    /// [`Events::publish`] for a publisher whose own work is done whether or not the event
    /// goes out: a failure is logged, not returned.
    pub async fn announce(
        &self,
        user: UserId,
        room: &Room,
        kind: &str,
        data: &Value,
        durable: bool,
    ) {
        if let Err(err) = self.publish(user, room, kind, data, durable).await {
            tracing::warn!(kind, error = %err, "cannot publish a real-time event");
        }
    }

    /// The user's durable events with an id above `after`, oldest first, at most `limit`.
    pub async fn replay(
        &self,
        user: UserId,
        after: u64,
        limit: u32,
    ) -> Result<Vec<Event>, StoreError> {
        Ok(self
            .inner
            .store
            .events_after(user, after, limit)
            .await?
            .into_iter()
            .map(Event::stored)
            .collect())
    }

    /// The id of the user's newest durable event, 0 when there is none.
    pub async fn latest(&self, user: UserId) -> Result<u64, StoreError> {
        Ok(self
            .inner
            .store
            .latest_event_id(Some(user))
            .await?
            .unwrap_or(0))
    }

    /// Deletes durable events (and remembered chat ids) older than `retention`; returns how
    /// many events went.
    pub async fn prune(&self, retention: Duration) -> Result<u64, StoreError> {
        self.inner
            .store
            .prune_events(OffsetDateTime::now_utc() - retention)
            .await
    }

    /// Remembers a chat message by its client's id; `false` when it was sent before.
    pub async fn claim_chat(
        &self,
        user: UserId,
        client_id: uuid::Uuid,
        conversation: ConversationId,
    ) -> Result<bool, StoreError> {
        self.inner
            .store
            .claim_chat_request(user, &client_id.to_string(), conversation)
            .await
    }

    /// Forgets a chat message's client id: it was not stored, and may be sent again.
    pub async fn release_chat(
        &self,
        user: UserId,
        client_id: uuid::Uuid,
    ) -> Result<(), StoreError> {
        self.inner
            .store
            .release_chat_request(user, &client_id.to_string())
            .await
    }

    /// `run.event` for each event just appended to a run's timeline: `run` as it was read
    /// back with them, so its `last_seq` numbers the last.
    pub async fn run_events(&self, run: &RunRecord, appended: &[NewRunEvent]) {
        let first = (run.last_seq + 1).saturating_sub(appended.len() as u64);
        let room = Room::Run(run.id);
        for (seq, event) in (first..).zip(appended) {
            let record = RunEventRecord {
                seq,
                at: run.updated_at,
                kind: event.kind.clone(),
                data: event.data.clone(),
            };
            let data = serde_json::to_value(wire::run_event(record)).unwrap_or_default();
            self.announce(run.owner_id, &room, "run.event", &data, true)
                .await;
        }
    }

    /// `run.status`: the run is now in the status `run` shows.
    pub async fn run_status(&self, run: &RunRecord) {
        let data = RunStatusChanged {
            run_id: run.id.as_uuid(),
            agent: run.agent_id.as_uuid(),
            status: wire::run_status(run.status),
        };
        self.announce(
            run.owner_id,
            &Room::User,
            "run.status",
            &serde_json::to_value(data).unwrap_or_default(),
            true,
        )
        .await;
    }

    /// `consent.requested`: a run asked its owner.
    pub async fn consent_requested(&self, request: &RunRequestRecord) {
        let data = serde_json::to_value(wire::run_request(request.clone())).unwrap_or_default();
        self.announce(
            request.owner_id,
            &Room::User,
            "consent.requested",
            &data,
            true,
        )
        .await;
    }

    /// `consent.decided`: a request was answered, or expired.
    pub async fn consent_decided(&self, request: &RunRequestRecord) {
        let data = ConsentDecided {
            request_id: request.id.as_uuid(),
            run_id: request.run_id.as_uuid(),
            decision: wire::request_status(request.status),
        };
        self.announce(
            request.owner_id,
            &Room::User,
            "consent.decided",
            &serde_json::to_value(data).unwrap_or_default(),
            true,
        )
        .await;
    }

    /// `conversation.changed`.
    pub async fn conversation_changed(
        &self,
        user: UserId,
        conversation: ConversationId,
        change: ConversationChange,
    ) {
        let data = ConversationChanged {
            conversation_id: conversation.as_uuid(),
            change,
        };
        self.announce(
            user,
            &Room::User,
            "conversation.changed",
            &serde_json::to_value(data).unwrap_or_default(),
            true,
        )
        .await;
    }

    /// `knowledge.progress`: indexing an artifact moved on.
    pub async fn knowledge_progress(
        &self,
        user: UserId,
        artifact: ArtifactId,
        state: IndexState,
        chunks: u64,
    ) {
        let data = KnowledgeProgress {
            artifact_id: artifact.as_uuid(),
            status: wire::index_state(state),
            chunks,
        };
        self.announce(
            user,
            &Room::User,
            "knowledge.progress",
            &serde_json::to_value(data).unwrap_or_default(),
            true,
        )
        .await;
    }
}

/// The listener's loop (PostgreSQL): passes on what every process publishes, this one's
/// durable events included, reading the table again after a notice too large to carry its
/// event or a broken connection. Ends with the hub, or when the pool is closed.
async fn follow(hub: Weak<Inner>, mut listener: EventListener, mut last: u64) {
    let mut behind = false;
    loop {
        if behind {
            let Some(inner) = hub.upgrade() else { return };
            match catch_up(&inner, &mut last).await {
                Ok(()) => behind = false,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot read the events other processes stored");
                    drop(inner);
                    tokio::time::sleep(RETRY).await;
                    continue;
                }
            }
        }
        let notice = match listener.recv().await {
            Ok(Some(notice)) => notice,
            Ok(None) => return,
            Err(err) => {
                tracing::warn!(error = %err, "lost the other processes' events; retrying");
                behind = true;
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        let Some(inner) = hub.upgrade() else { return };
        match notice {
            EventNotice::Stored { id, .. } if id <= last => {}
            EventNotice::Stored {
                event: Some(record),
                ..
            } => {
                last = record.id;
                inner.deliver(Event::stored(record));
            }
            EventNotice::Stored { event: None, .. } | EventNotice::Lost => behind = true,
            EventNotice::Ephemeral { origin, .. } if origin == inner.origin => {}
            EventNotice::Ephemeral {
                user_id,
                room,
                kind,
                data,
                ..
            } => inner.deliver(Event {
                id: None,
                user_id,
                room,
                kind,
                data: serde_json::from_str(&data).unwrap_or(Value::Null),
            }),
        }
    }
}

/// Passes on every stored event above `last`, moving `last` on.
async fn catch_up(inner: &Inner, last: &mut u64) -> Result<(), StoreError> {
    loop {
        let batch = inner.store.all_events_after(*last, BATCH).await?;
        let done = batch.len() < BATCH as usize;
        for record in batch {
            *last = record.id;
            inner.deliver(Event::stored(record));
        }
        if done {
            return Ok(());
        }
    }
}
