//! The real-time channel's events, run against whichever backend `KAI_TEST_DATABASE_URL`
//! selects (SQLite when unset). `scripts/test` runs it against both.

#![allow(clippy::unwrap_used)] // helpers outside #[test] functions unwrap too

use std::time::Duration;

use kai_config::DatabaseKind;
use kai_core::{ConversationId, Role, UserId};
use kai_store::testing::TestDatabase;
use kai_store::{EventNotice, NewEvent, NewUser, Store};
use time::OffsetDateTime;

async fn user(store: &Store, name: &str) -> UserId {
    store
        .create_user(&NewUser {
            username: name.parse().unwrap(),
            password_hash: "$argon2id$fake".into(),
            role: Role::User,
        })
        .await
        .unwrap()
        .id
}

fn new<'a>(user: UserId, kind: &'a str, data: &'a str) -> NewEvent<'a> {
    NewEvent {
        user_id: user,
        room: "user",
        kind,
        data,
    }
}

#[tokio::test]
async fn events_are_replayed_per_user_in_order_after_an_id() {
    let db = TestDatabase::new().await;
    let store = db.store().await;
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    assert_eq!(store.latest_event_id(None).await.unwrap(), None);
    let first = store
        .append_event(&new(alice, "a.one", r#"{"n":1}"#), "test")
        .await
        .unwrap();
    let other = store
        .append_event(&new(bob, "b.one", "{}"), "test")
        .await
        .unwrap();
    let second = store
        .append_event(&new(alice, "a.two", r#"{"n":2}"#), "test")
        .await
        .unwrap();
    assert!(first.id < other.id && other.id < second.id, "ids increase");
    assert_eq!(first.room, "user");
    let all = store.events_after(alice, 0, 100).await.unwrap();
    assert_eq!(
        all.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
        ["a.one", "a.two"],
        "another user's events are not replayed"
    );
    assert_eq!(all[1].data, r#"{"n":2}"#);
    assert_eq!(all[0], first);
    let after = store.events_after(alice, first.id, 100).await.unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].id, second.id);
    assert_eq!(store.events_after(alice, 0, 1).await.unwrap().len(), 1);
    assert_eq!(
        store.latest_event_id(Some(alice)).await.unwrap(),
        Some(second.id)
    );
    assert_eq!(
        store.latest_event_id(Some(bob)).await.unwrap(),
        Some(other.id)
    );
    assert_eq!(store.latest_event_id(None).await.unwrap(), Some(second.id));
    assert_eq!(
        store
            .all_events_after(first.id, 10)
            .await
            .unwrap()
            .iter()
            .map(|e| e.id)
            .collect::<Vec<_>>(),
        [other.id, second.id]
    );
    assert_eq!(store.event(other.id).await.unwrap().unwrap(), other);
    assert_eq!(store.event(second.id + 100).await.unwrap(), None);
}

#[tokio::test]
async fn old_events_and_chat_requests_are_pruned() {
    let db = TestDatabase::new().await;
    let store = db.store().await;
    let alice = user(&store, "alice").await;
    let conversation = ConversationId::new();
    store
        .append_event(&new(alice, "old", "{}"), "test")
        .await
        .unwrap();
    assert!(
        store
            .claim_chat_request(alice, "c-1", conversation)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .prune_events(OffsetDateTime::now_utc() - Duration::from_secs(60))
            .await
            .unwrap(),
        0,
        "nothing is that old"
    );
    assert!(
        !store
            .claim_chat_request(alice, "c-1", conversation)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .prune_events(OffsetDateTime::now_utc() + Duration::from_secs(1))
            .await
            .unwrap(),
        1
    );
    assert!(store.events_after(alice, 0, 10).await.unwrap().is_empty());
    assert!(
        store
            .claim_chat_request(alice, "c-1", conversation)
            .await
            .unwrap(),
        "a pruned client id is forgotten"
    );
}

#[tokio::test]
async fn a_chat_request_is_claimed_once_per_user_until_released() {
    let db = TestDatabase::new().await;
    let store = db.store().await;
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let conversation = ConversationId::new();
    assert!(
        store
            .claim_chat_request(alice, "same", conversation)
            .await
            .unwrap()
    );
    assert!(
        !store
            .claim_chat_request(alice, "same", conversation)
            .await
            .unwrap()
    );
    assert!(
        store
            .claim_chat_request(bob, "same", conversation)
            .await
            .unwrap(),
        "client ids are per user"
    );
    store.release_chat_request(alice, "same").await.unwrap();
    assert!(
        store
            .claim_chat_request(alice, "same", conversation)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn processes_on_postgres_hear_of_stored_and_ephemeral_events() {
    let db = TestDatabase::new().await;
    let store = db.store().await;
    let alice = user(&store, "alice").await;
    if db.url().kind() == DatabaseKind::Sqlite {
        assert!(store.listen_events().await.unwrap().is_none());
        assert!(
            !store
                .notify_event(&new(alice, "chat.token", "{}"), "a")
                .await
                .unwrap(),
            "SQLite keeps events inside its one process"
        );
        return;
    }
    // Another process's store on the same database.
    let other = db.store().await;
    let mut listener = other.listen_events().await.unwrap().unwrap();
    let stored = store
        .append_event(&new(alice, "run.status", r#"{"x":1}"#), "process-a")
        .await
        .unwrap();
    let heard = tokio::time::timeout(Duration::from_secs(10), listener.recv())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        heard,
        EventNotice::Stored {
            origin: "process-a".into(),
            id: stored.id,
            event: Some(stored.clone()),
        }
    );
    assert!(
        store
            .notify_event(&new(alice, "chat.token", r#"{"text":"hi"}"#), "process-a")
            .await
            .unwrap()
    );
    let heard = tokio::time::timeout(Duration::from_secs(10), listener.recv())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        heard,
        EventNotice::Ephemeral {
            origin: "process-a".into(),
            user_id: alice,
            room: "user".into(),
            kind: "chat.token".into(),
            data: r#"{"text":"hi"}"#.into(),
        }
    );
    // Too large for NOTIFY: only its id travels.
    let big = format!(r#"{{"text":"{}"}}"#, "x".repeat(10_000));
    let stored = store
        .append_event(&new(alice, "run.event", &big), "process-a")
        .await
        .unwrap();
    let heard = tokio::time::timeout(Duration::from_secs(10), listener.recv())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        heard,
        EventNotice::Stored {
            origin: "process-a".into(),
            id: stored.id,
            event: None,
        }
    );
    assert_eq!(other.event(stored.id).await.unwrap().unwrap().data, big);
    assert!(
        !store
            .notify_event(&new(alice, "chat.token", &big), "process-a")
            .await
            .unwrap(),
        "an ephemeral event too large for NOTIFY stays in its process"
    );
}
