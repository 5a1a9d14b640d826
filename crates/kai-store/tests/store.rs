//! The store's behaviour, run against whichever backend `KAI_TEST_DATABASE_URL` selects
//! (SQLite when unset). `scripts/test` runs this file against both.

#![allow(clippy::unwrap_used)] // helpers outside #[test] functions unwrap too

use std::time::Duration;

use kai_config::{DatabaseKind, DatabaseUrl};
use kai_core::{Role, Scope, Scopes, UserId, Username};
use kai_store::testing::TestDatabase;
use kai_store::{
    LoginAttempt, NewApiKey, NewSession, NewUser, RotateOutcome, Store, StoreError, UserUpdate,
};
use sqlx::{Connection, Executor};
use time::OffsetDateTime;

fn name(raw: &str) -> Username {
    raw.parse().unwrap()
}

async fn user(store: &Store, raw: &str, role: Role) -> kai_core::User {
    store
        .create_user(&NewUser {
            username: name(raw),
            password_hash: "$argon2id$fake".into(),
            role,
        })
        .await
        .unwrap()
}

fn hash(byte: u8) -> [u8; 32] {
    [byte; 32]
}

fn in_days(days: i64) -> OffsetDateTime {
    OffsetDateTime::now_utc() + time::Duration::days(days)
}

async fn session(store: &Store, user_id: UserId, token: u8) -> kai_store::Session {
    store
        .create_session(&NewSession {
            user_id,
            client_addr: Some("127.0.0.1".into()),
            user_agent: Some("test".into()),
            refresh_token_hash: hash(token),
            refresh_expires_at: in_days(30),
            verified_password_hash: "$argon2id$fake".into(),
        })
        .await
        .unwrap()
        .expect("the session opens")
}

/// Runs `sql` directly against the test database, bypassing the store, to simulate damage done
/// outside kai.
async fn raw_sql(db: &TestDatabase, sql: &str) {
    match db.url().kind() {
        DatabaseKind::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(db.url().expose())
                .await
                .unwrap();
            conn.execute(sqlx::AssertSqlSafe(sql.to_owned()))
                .await
                .unwrap();
        }
        DatabaseKind::Postgres => {
            let mut conn = sqlx::PgConnection::connect(db.url().expose())
                .await
                .unwrap();
            conn.execute(sqlx::AssertSqlSafe(sql.to_owned()))
                .await
                .unwrap();
        }
    }
}

#[tokio::test]
async fn users_are_created_found_updated_and_deleted() {
    let db = TestDatabase::new().await;
    let store = db.store().await;
    assert_eq!(store.count_users().await.unwrap(), 0);

    let alice = user(&store, "alice", Role::Admin).await;
    let found = store.user_by_name(&name("ALICE")).await.unwrap().unwrap();
    assert_eq!(found.user, alice);
    assert_eq!(found.password_hash, "$argon2id$fake");
    assert_eq!(store.user(alice.id).await.unwrap().unwrap().user, alice);
    assert!(store.user(UserId::new()).await.unwrap().is_none());

    let err = store
        .create_user(&NewUser {
            username: name("Alice"),
            password_hash: "x".into(),
            role: Role::User,
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");

    let bob = user(&store, "bob", Role::User).await;
    let listed: Vec<_> = store
        .users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.id)
        .collect();
    assert_eq!(listed, vec![alice.id, bob.id]);

    let updated = store
        .update_user(
            bob.id,
            &UserUpdate {
                role: Some(Role::Admin),
                disabled: Some(true),
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(updated.role, Role::Admin);
    assert!(updated.disabled);
    assert_eq!(
        store.user(bob.id).await.unwrap().unwrap().password_hash,
        "$argon2id$fake"
    );
    assert!(
        store
            .update_user(UserId::new(), &UserUpdate::default())
            .await
            .unwrap()
            .is_none()
    );

    // bob is an admin but disabled, so alice is the only active admin besides... nobody.
    assert_eq!(store.count_other_active_admins(alice.id).await.unwrap(), 0);
    assert!(store.delete_user(bob.id).await.unwrap());
    assert!(!store.delete_user(bob.id).await.unwrap());
    assert_eq!(store.count_users().await.unwrap(), 1);
}

/// Starts a password check on `id` now and ends it as a wrong password.
async fn fail_login(
    store: &kai_store::Store,
    id: UserId,
    limit: u32,
    lock_until: OffsetDateTime,
) -> u32 {
    assert_eq!(
        store
            .begin_login_attempt(id, limit, OffsetDateTime::now_utc())
            .await
            .unwrap(),
        LoginAttempt::Allowed
    );
    store.login_failed(id, limit, lock_until).await.unwrap()
}

#[tokio::test]
async fn checks_in_flight_wait_failures_lock_and_success_clears() {
    let db = TestDatabase::new().await;
    let store = db.store().await;
    let alice = user(&store, "alice", Role::User).await;
    let now = OffsetDateTime::now_utc();
    // Three checks in flight fill a limit of three: the fourth waits, and nothing is locked.
    for _ in 0..3 {
        assert_eq!(
            store.begin_login_attempt(alice.id, 3, now).await.unwrap(),
            LoginAttempt::Allowed
        );
    }
    assert_eq!(
        store.begin_login_attempt(alice.id, 3, now).await.unwrap(),
        LoginAttempt::Busy
    );
    let record = store.user(alice.id).await.unwrap().unwrap();
    assert_eq!((record.failed_logins, record.locked_until), (0, None));

    // They end as wrong passwords: the third failure locks.
    let until = in_days(1);
    assert_eq!(store.login_failed(alice.id, 3, until).await.unwrap(), 1);
    assert_eq!(store.login_failed(alice.id, 3, until).await.unwrap(), 2);
    assert_eq!(store.login_failed(alice.id, 3, until).await.unwrap(), 3);
    let LoginAttempt::Locked(locked) = store.begin_login_attempt(alice.id, 3, now).await.unwrap()
    else {
        panic!("the account is locked");
    };
    assert!((locked - until).abs() < time::Duration::milliseconds(1));

    store
        .record_login(alice.id, OffsetDateTime::now_utc())
        .await
        .unwrap();
    let record = store.user(alice.id).await.unwrap().unwrap();
    assert_eq!(record.failed_logins, 0);
    assert_eq!(record.locked_until, None);
    assert!(record.user.last_login_at.is_some());
}

#[tokio::test]
async fn an_expired_lock_starts_the_count_afresh_and_dead_checks_are_forgotten() {
    let db = TestDatabase::new().await;
    let store = db.store().await;
    let alice = user(&store, "alice", Role::User).await;
    let already_over = OffsetDateTime::now_utc() - time::Duration::seconds(1);
    fail_login(&store, alice.id, 2, already_over).await;
    assert_eq!(fail_login(&store, alice.id, 2, already_over).await, 2);
    // The lock set by the second failure is already over: the next check is let through, and
    // a failure then is the first of a new run, not the third.
    assert_eq!(fail_login(&store, alice.id, 2, in_days(1)).await, 1);
    let record = store.user(alice.id).await.unwrap().unwrap();
    assert_eq!(record.locked_until, None);

    // Checks begun two minutes ago by a process that died never ended: they are forgotten.
    let bob = user(&store, "bob", Role::User).await;
    let then = OffsetDateTime::now_utc() - time::Duration::minutes(2);
    for _ in 0..2 {
        store.begin_login_attempt(bob.id, 2, then).await.unwrap();
    }
    assert_eq!(
        store
            .begin_login_attempt(bob.id, 2, OffsetDateTime::now_utc())
            .await
            .unwrap(),
        LoginAttempt::Allowed
    );
}

#[tokio::test]
async fn a_burst_of_attempts_gets_no_more_than_the_limit_through() {
    let db = TestDatabase::new().await;
    let store = db.store().await;
    let alice = user(&store, "alice", Role::User).await;
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .begin_login_attempt(alice.id, 5, OffsetDateTime::now_utc())
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut allowed = 0;
    for task in tasks {
        match task.await.unwrap() {
            LoginAttempt::Allowed => allowed += 1,
            LoginAttempt::Busy => {}
            LoginAttempt::Locked(_) => panic!("nothing failed, so nothing locks"),
        }
    }
    assert_eq!(allowed, 5);
}

#[tokio::test]
async fn setting_a_password_ends_sessions_and_unlocks_at_once() {
    let db = TestDatabase::new().await;
    let store = db.store().await;
    let alice = user(&store, "alice", Role::User).await;
    let opened = session(&store, alice.id, 1).await;
    for _ in 0..3 {
        fail_login(&store, alice.id, 3, in_days(1)).await;
    }
    assert!(
        store
            .user(alice.id)
            .await
            .unwrap()
            .unwrap()
            .locked_until
            .is_some()
    );
    store
        .set_password(alice.id, "$argon2id$new", "password changed")
        .await
        .unwrap()
        .unwrap();
    let record = store.user(alice.id).await.unwrap().unwrap();
    assert_eq!(record.password_hash, "$argon2id$new");
    assert_eq!((record.failed_logins, record.locked_until), (0, None));
    let (ended, _) = store.session_with_user(opened.id).await.unwrap().unwrap();
    assert_eq!(ended.revoked_reason.as_deref(), Some("password changed"));
    assert!(
        store
            .set_password(UserId::new(), "x", "r")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_login_that_raced_a_password_change_opens_no_session() {
    let db = TestDatabase::new().await;
    let store = db.store().await;
    let alice = user(&store, "alice", Role::User).await;
    // The login verified the old hash; meanwhile the password changed.
    store
        .set_password(alice.id, "$argon2id$new", "password changed")
        .await
        .unwrap();
    let stale = NewSession {
        user_id: alice.id,
        client_addr: None,
        user_agent: None,
        refresh_token_hash: hash(1),
        refresh_expires_at: in_days(30),
        verified_password_hash: "$argon2id$fake".into(),
    };
    assert!(store.create_session(&stale).await.unwrap().is_none());
    assert!(matches!(
        store
            .rotate_refresh_token(&hash(1), &hash(2), in_days(30))
            .await
            .unwrap(),
        RotateOutcome::Unknown
    ));
    // Disabled users get no session either.
    store
        .update_user(
            alice.id,
            &UserUpdate {
                disabled: Some(true),
                ..UserUpdate::default()
            },
        )
        .await
        .unwrap();
    let current = NewSession {
        verified_password_hash: "$argon2id$new".into(),
        ..stale
    };
    assert!(store.create_session(&current).await.unwrap().is_none());
}

#[tokio::test]
async fn disabling_a_user_ends_their_sessions() {
    let db = TestDatabase::new().await;
    let store = db.store().await;
    let alice = user(&store, "alice", Role::User).await;
    let opened = session(&store, alice.id, 1).await;
    store
        .update_user(
            alice.id,
            &UserUpdate {
                disabled: Some(true),
                ..UserUpdate::default()
            },
        )
        .await
        .unwrap();
    let (ended, _) = store.session_with_user(opened.id).await.unwrap().unwrap();
    assert_eq!(ended.revoked_reason.as_deref(), Some("account disabled"));
}

#[cfg(unix)]
#[tokio::test]
async fn a_new_sqlite_database_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("fresh");
    let url = DatabaseUrl::sqlite_in(&data);
    let store = Store::connect(&url, &TestDatabase::settings())
        .await
        .unwrap();
    store.close().await;
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("kai.db")), 0o600);
}

#[tokio::test]
async fn an_in_memory_database_keeps_its_data() {
    let url = DatabaseUrl::parse("sqlite::memory:").unwrap();
    let store = Store::connect(&url, &TestDatabase::settings())
        .await
        .unwrap();
    user(&store, "alice", Role::User).await;
    assert_eq!(store.pool_stats().max, 1);
    assert_eq!(store.count_users().await.unwrap(), 1);
}

#[tokio::test]
async fn refresh_tokens_rotate_once_and_reuse_revokes_the_family() {
    let db = TestDatabase::new().await;
    let store = db.store().await;
    let alice = user(&store, "alice", Role::User).await;
    let opened = session(&store, alice.id, 1).await;

    let RotateOutcome::Rotated {
        session: rotated,
        user,
    } = store
        .rotate_refresh_token(&hash(1), &hash(2), in_days(30))
        .await
        .unwrap()
    else {
        panic!("a fresh token rotates");
    };
    assert_eq!(rotated.id, opened.id);
    assert_eq!(user.user.id, alice.id);

    // The new token works once more...
    assert!(matches!(
        store
            .rotate_refresh_token(&hash(2), &hash(3), in_days(30))
            .await
            .unwrap(),
        RotateOutcome::Rotated { .. }
    ));
    // ...but presenting the first one again is theft: the session ends.
    match store
        .rotate_refresh_token(&hash(1), &hash(4), in_days(30))
        .await
        .unwrap()
    {
        RotateOutcome::Reused(id) => assert_eq!(id, opened.id),
        other => panic!("expected reuse, got {other:?}"),
    }
    let (ended, _) = store.session_with_user(opened.id).await.unwrap().unwrap();
    assert!(ended.revoked_at.is_some());
    assert_eq!(
        ended.revoked_reason.as_deref(),
        Some("refresh token reused")
    );
    // Even the latest token of the family is now worthless.
    match store
        .rotate_refresh_token(&hash(3), &hash(5), in_days(30))
        .await
        .unwrap()
    {
        RotateOutcome::Revoked(id) => assert_eq!(id, opened.id),
        other => panic!("expected revoked, got {other:?}"),
    }
    assert!(matches!(
        store
            .rotate_refresh_token(&hash(99), &hash(6), in_days(30))
            .await
            .unwrap(),
        RotateOutcome::Unknown
    ));
}

#[tokio::test]
async fn expired_refresh_tokens_do_not_rotate_and_are_pruned() {
    let db = TestDatabase::new().await;
    let store = db.store().await;
    let alice = user(&store, "alice", Role::User).await;
    store
        .create_session(&NewSession {
            user_id: alice.id,
            client_addr: None,
            user_agent: None,
            refresh_token_hash: hash(1),
            refresh_expires_at: in_days(-1),
            verified_password_hash: "$argon2id$fake".into(),
        })
        .await
        .unwrap();
    let live = session(&store, alice.id, 2).await;
    assert!(matches!(
        store
            .rotate_refresh_token(&hash(1), &hash(3), in_days(30))
            .await
            .unwrap(),
        RotateOutcome::Expired
    ));
    assert_eq!(
        store
            .prune_expired_sessions(OffsetDateTime::now_utc())
            .await
            .unwrap(),
        1
    );
    assert!(matches!(
        store
            .rotate_refresh_token(&hash(1), &hash(3), in_days(30))
            .await
            .unwrap(),
        RotateOutcome::Unknown
    ));
    assert!(store.session_with_user(live.id).await.unwrap().is_some());
}

#[tokio::test]
async fn concurrent_rotations_of_one_token_succeed_once() {
    let db = TestDatabase::new().await;
    let store = db.store().await;
    let alice = user(&store, "alice", Role::User).await;
    session(&store, alice.id, 1).await;
    let tasks: Vec<_> = (0..8u8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .rotate_refresh_token(&hash(1), &hash(10 + i), in_days(30))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut rotated = 0;
    for task in tasks {
        match task.await.unwrap() {
            RotateOutcome::Rotated { .. } => rotated += 1,
            RotateOutcome::Reused(_) | RotateOutcome::Revoked(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(rotated, 1);
}

#[tokio::test]
async fn sessions_end_by_token_by_id_and_by_user() {
    let db = TestDatabase::new().await;
    let store = db.store().await;
    let alice = user(&store, "alice", Role::User).await;
    let first = session(&store, alice.id, 1).await;
    let second = session(&store, alice.id, 2).await;
    let third = session(&store, alice.id, 3).await;

    assert_eq!(
        store
            .revoke_session_of_token(&hash(1), "logout")
            .await
            .unwrap(),
        Some(first.id)
    );
    assert_eq!(
        store
            .revoke_session_of_token(&hash(42), "logout")
            .await
            .unwrap(),
        None
    );
    assert!(store.revoke_session(second.id, "admin").await.unwrap());
    assert!(!store.revoke_session(second.id, "admin").await.unwrap());
    store
        .set_password(alice.id, "$argon2id$new", "password changed")
        .await
        .unwrap();
    let (ended, _) = store.session_with_user(third.id).await.unwrap().unwrap();
    assert_eq!(ended.revoked_reason.as_deref(), Some("password changed"));
    let (ended, _) = store.session_with_user(first.id).await.unwrap().unwrap();
    assert_eq!(ended.revoked_reason.as_deref(), Some("logout"));

    // Everywhere: every open session of the user ends, one already ended keeps its reason,
    // and other users' sessions stay open.
    let carol = user(&store, "carol", Role::User).await;
    let ended_before = session(&store, carol.id, 4).await;
    let fifth = session(&store, carol.id, 5).await;
    let sixth = session(&store, carol.id, 6).await;
    let bob = user(&store, "bob", Role::User).await;
    let bobs = session(&store, bob.id, 7).await;
    assert!(
        store
            .revoke_session(ended_before.id, "admin")
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .revoke_user_sessions(carol.id, "logout everywhere")
            .await
            .unwrap(),
        2
    );
    for id in [fifth.id, sixth.id] {
        let (ended, _) = store.session_with_user(id).await.unwrap().unwrap();
        assert_eq!(ended.revoked_reason.as_deref(), Some("logout everywhere"));
    }
    let (kept, _) = store
        .session_with_user(ended_before.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.revoked_reason.as_deref(), Some("admin"));
    let (open, _) = store.session_with_user(bobs.id).await.unwrap().unwrap();
    assert!(open.revoked_at.is_none());
}

#[tokio::test]
async fn api_keys_belong_to_their_owner() {
    let db = TestDatabase::new().await;
    let store = db.store().await;
    let alice = user(&store, "alice", Role::User).await;
    let bob = user(&store, "bob", Role::User).await;
    let key = store
        .create_api_key(&NewApiKey {
            user_id: alice.id,
            name: "laptop".into(),
            prefix: "kai_abcd".into(),
            key_hash: hash(7),
            scopes: Scopes::from_iter([Scope::Read]),
            expires_at: Some(in_days(90)),
        })
        .await
        .unwrap();
    assert_eq!(
        store.api_keys_of(alice.id).await.unwrap(),
        vec![key.clone()]
    );
    assert!(store.api_keys_of(bob.id).await.unwrap().is_empty());
    assert_eq!(
        store.api_key_of(alice.id, key.id).await.unwrap(),
        Some(key.clone())
    );
    assert_eq!(
        store.api_key_of(bob.id, key.id).await.unwrap(),
        None,
        "bob cannot see alice's key"
    );
    assert_eq!(
        store.revoke_api_key(bob.id, key.id).await.unwrap(),
        None,
        "nor revoke it"
    );

    let (found, owner) = store.api_key_by_hash(&hash(7)).await.unwrap().unwrap();
    assert_eq!(found, key);
    assert_eq!(owner.user.id, alice.id);
    assert!(store.api_key_by_hash(&hash(8)).await.unwrap().is_none());

    let revoked = store
        .revoke_api_key(alice.id, key.id)
        .await
        .unwrap()
        .unwrap();
    let first_revocation = revoked.revoked_at.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let again = store
        .revoke_api_key(alice.id, key.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        again.revoked_at,
        Some(first_revocation),
        "revoking twice keeps the first time"
    );
}

#[tokio::test]
async fn key_use_is_recorded_at_most_once_per_interval() {
    let db = TestDatabase::new().await;
    let store = db.store().await;
    let alice = user(&store, "alice", Role::User).await;
    let key = store
        .create_api_key(&NewApiKey {
            user_id: alice.id,
            name: "ci".into(),
            prefix: "kai_x".into(),
            key_hash: hash(9),
            scopes: Scopes::ALL,
            expires_at: None,
        })
        .await
        .unwrap();
    let now = OffsetDateTime::now_utc();
    let minute = time::Duration::minutes(1);
    store
        .touch_api_key(key.id, now, now - minute)
        .await
        .unwrap();
    let first = store
        .api_key_of(alice.id, key.id)
        .await
        .unwrap()
        .unwrap()
        .last_used_at
        .unwrap();
    store
        .touch_api_key(
            key.id,
            now + time::Duration::seconds(10),
            now + time::Duration::seconds(10) - minute,
        )
        .await
        .unwrap();
    let second = store
        .api_key_of(alice.id, key.id)
        .await
        .unwrap()
        .unwrap()
        .last_used_at
        .unwrap();
    assert_eq!(first, second, "a use within the interval is not written");
    store
        .touch_api_key(key.id, now + 2 * minute, now + minute)
        .await
        .unwrap();
    let third = store
        .api_key_of(alice.id, key.id)
        .await
        .unwrap()
        .unwrap()
        .last_used_at
        .unwrap();
    assert!(third > first);
}

#[tokio::test]
async fn deleting_a_user_deletes_what_they_own() {
    let db = TestDatabase::new().await;
    let store = db.store().await;
    let alice = user(&store, "alice", Role::User).await;
    let opened = session(&store, alice.id, 1).await;
    store
        .create_api_key(&NewApiKey {
            user_id: alice.id,
            name: "k".into(),
            prefix: "kai_k".into(),
            key_hash: hash(5),
            scopes: Scopes::ALL,
            expires_at: None,
        })
        .await
        .unwrap();
    assert!(store.delete_user(alice.id).await.unwrap());
    assert!(store.api_key_by_hash(&hash(5)).await.unwrap().is_none());
    assert!(store.session_with_user(opened.id).await.unwrap().is_none());
}

#[tokio::test]
async fn server_secrets_are_generated_once() {
    let db = TestDatabase::new().await;
    let store = db.store().await;
    let first = store
        .server_secret("signing", || vec![1; 32])
        .await
        .unwrap();
    let second = store
        .server_secret("signing", || vec![2; 32])
        .await
        .unwrap();
    assert_eq!(first, vec![1; 32]);
    assert_eq!(second, first);
}

#[tokio::test]
async fn reopening_is_ready_and_idempotent() {
    let db = TestDatabase::new().await;
    let store = db.store().await;
    user(&store, "alice", Role::User).await;
    store.check_ready().await.unwrap();
    let stats = store.pool_stats();
    assert_eq!(stats.max, TestDatabase::settings().max_connections);
    assert!(stats.size >= 1);
    store.close().await;

    let reopened = db.store().await;
    reopened.check_ready().await.unwrap();
    assert_eq!(
        reopened.count_users().await.unwrap(),
        1,
        "reopening keeps the data"
    );
}

#[tokio::test]
async fn a_database_from_a_newer_kai_is_refused() {
    let db = TestDatabase::new().await;
    db.store().await.close().await;
    let checksum = match db.url().kind() {
        DatabaseKind::Sqlite => "X'00'",
        DatabaseKind::Postgres => "'\\x00'::bytea",
    };
    raw_sql(
        &db,
        &format!(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (9999, 'from the future', TRUE, {checksum}, 0)"
        ),
    )
    .await;
    let err = kai_store::Store::connect(db.url(), &TestDatabase::settings())
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("9999") && message.contains("newer kai"),
        "{message}"
    );
}

#[tokio::test]
async fn corrupt_rows_are_errors_not_panics() {
    let db = TestDatabase::new().await;
    let store = db.store().await;
    let alice = user(&store, "alice", Role::User).await;
    raw_sql(
        &db,
        &format!(
            "UPDATE users SET username = 'not valid!' WHERE id = '{}'",
            alice.id
        ),
    )
    .await;
    let err = store.user(alice.id).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Corrupt { table: "users", .. }),
        "{err}"
    );
}

#[tokio::test]
async fn an_unreachable_database_is_reported_with_its_url_redacted() {
    let url = DatabaseUrl::parse("postgres://kai:hunter2@127.0.0.1:1/kai").unwrap();
    let err = Store::connect(&url, &TestDatabase::settings())
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with("cannot connect to database postgres://kai:<redacted>@127.0.0.1:1/kai"),
        "{message}"
    );
    assert!(!message.contains("hunter2"), "{message}");
}

#[tokio::test]
async fn an_unwritable_sqlite_path_is_reported() {
    let url = DatabaseUrl::parse("sqlite:///proc/kai/kai.db").unwrap();
    let err = Store::connect(&url, &TestDatabase::settings())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("/proc/kai"), "{err}");
}
