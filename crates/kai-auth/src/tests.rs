use std::net::Ipv4Addr;

use kai_config::Settings;
use kai_store::testing::TestDatabase;

use super::*;

fn settings() -> AuthSettings {
    let mut settings = Settings::defaults("/unused".into()).auth;
    settings.lockout_after = 3;
    settings.client_failure_limit = 5;
    settings
}

async fn accounts(db: &TestDatabase, settings: AuthSettings) -> Accounts {
    Accounts::new(db.store().await, settings).await.unwrap()
}

fn client(last: u8) -> ClientInfo {
    ClientInfo {
        addr: Some(Ipv4Addr::new(192, 0, 2, last).into()),
        user_agent: Some("test".into()),
    }
}

#[tokio::test]
async fn login_refresh_and_logout() {
    let db = TestDatabase::new().await;
    let accounts = accounts(&db, settings()).await;
    let alice = accounts
        .create_user("alice", "correct horse", Role::User)
        .await
        .unwrap();

    let pair = accounts
        .login("Alice", "correct horse", client(1))
        .await
        .unwrap();
    assert_eq!(pair.expires_in, 900);
    let principal = accounts.authenticate(&pair.access_token).await.unwrap();
    assert_eq!(principal.user.id, alice.id);
    assert_eq!(
        principal.scopes(),
        Scopes::from_iter([Scope::Read, Scope::Write])
    );
    assert!(principal.require_admin().is_err());

    let next = accounts.refresh(&pair.refresh_token).await.unwrap();
    assert_ne!(next.refresh_token, pair.refresh_token);
    accounts.authenticate(&next.access_token).await.unwrap();

    accounts.logout(&next.refresh_token).await.unwrap();
    let err = accounts.authenticate(&next.access_token).await.unwrap_err();
    assert!(
        matches!(err, AuthError::SessionEnded(ref reason) if reason == "logout"),
        "{err}"
    );
    assert!(matches!(
        accounts.refresh(&next.refresh_token).await,
        Err(AuthError::SessionEnded(_))
    ));
}

#[tokio::test]
async fn the_signing_key_is_shared_through_the_database() {
    let db = TestDatabase::new().await;
    let first = accounts(&db, settings()).await;
    first
        .create_user("alice", "correct horse", Role::User)
        .await
        .unwrap();
    let pair = first
        .login("alice", "correct horse", client(1))
        .await
        .unwrap();
    // A second process on the same database accepts the first one's tokens.
    let second = accounts(&db, settings()).await;
    second.authenticate(&pair.access_token).await.unwrap();
}

#[tokio::test]
async fn unknown_users_and_wrong_passwords_look_alike() {
    let db = TestDatabase::new().await;
    let accounts = accounts(&db, settings()).await;
    accounts
        .create_user("alice", "correct horse", Role::User)
        .await
        .unwrap();
    let unknown = accounts
        .login("mallory", "whatever1", client(1))
        .await
        .unwrap_err();
    let wrong = accounts
        .login("alice", "whatever1", client(1))
        .await
        .unwrap_err();
    let invalid_name = accounts
        .login("no spaces allowed", "whatever1", client(1))
        .await
        .unwrap_err();
    assert_eq!(unknown.to_string(), wrong.to_string());
    assert_eq!(unknown.to_string(), invalid_name.to_string());
}

#[tokio::test]
async fn accounts_lock_after_repeated_failures() {
    let db = TestDatabase::new().await;
    let accounts = accounts(&db, settings()).await;
    accounts
        .create_user("alice", "correct horse", Role::User)
        .await
        .unwrap();
    for last in 1..=3 {
        // Different addresses, so only the account counter trips.
        let err = accounts
            .login("alice", "wrong password", client(last))
            .await
            .unwrap_err();
        assert!(matches!(err, AuthError::InvalidCredentials), "{err}");
    }
    let err = accounts
        .login("alice", "correct horse", client(9))
        .await
        .unwrap_err();
    let AuthError::AccountLocked { retry_after } = err else {
        panic!("expected a lock, got {err}")
    };
    assert!(retry_after > Duration::from_secs(200) && retry_after <= Duration::from_secs(300));
}

#[tokio::test]
async fn addresses_are_throttled_across_accounts() {
    let db = TestDatabase::new().await;
    let accounts = accounts(&db, settings()).await;
    for attempt in 0..5 {
        let name = format!("user{attempt}");
        assert!(matches!(
            accounts.login(&name, "wrong password", client(7)).await,
            Err(AuthError::InvalidCredentials)
        ));
    }
    assert!(matches!(
        accounts.login("anyone", "wrong password", client(7)).await,
        Err(AuthError::ClientThrottled { .. })
    ));
    assert!(matches!(
        accounts.login("anyone", "wrong password", client(8)).await,
        Err(AuthError::InvalidCredentials)
    ));
}

#[tokio::test]
async fn the_last_admin_cannot_be_removed() {
    let db = TestDatabase::new().await;
    let accounts = accounts(&db, settings()).await;
    let root = accounts
        .create_user("root", "correct horse", Role::Admin)
        .await
        .unwrap();
    let demote = UserChanges {
        role: Some(Role::User),
        ..UserChanges::default()
    };
    assert!(matches!(
        accounts.update_user(root.id, demote.clone()).await,
        Err(AuthError::Conflict(_))
    ));
    let disable = UserChanges {
        disabled: Some(true),
        ..UserChanges::default()
    };
    assert!(matches!(
        accounts.update_user(root.id, disable).await,
        Err(AuthError::Conflict(_))
    ));
    assert!(matches!(
        accounts.delete_user(root.id).await,
        Err(AuthError::Conflict(_))
    ));

    let second = accounts
        .create_user("second", "correct horse", Role::Admin)
        .await
        .unwrap();
    accounts.update_user(root.id, demote).await.unwrap();
    assert!(matches!(
        accounts.delete_user(second.id).await,
        Err(AuthError::Conflict(_))
    ));
}

#[tokio::test]
async fn password_changes_end_sessions() {
    let db = TestDatabase::new().await;
    let accounts = accounts(&db, settings()).await;
    accounts
        .create_user("alice", "correct horse", Role::User)
        .await
        .unwrap();
    let pair = accounts
        .login("alice", "correct horse", client(1))
        .await
        .unwrap();
    let session = accounts.authenticate(&pair.access_token).await.unwrap();
    assert!(matches!(
        accounts
            .change_password(&session, "wrong", "new password")
            .await,
        Err(AuthError::Forbidden(_))
    ));
    assert!(matches!(
        accounts
            .change_password(&session, "correct horse", "short")
            .await,
        Err(AuthError::Invalid(_))
    ));
    accounts
        .change_password(&session, "correct horse", "battery staple")
        .await
        .unwrap();
    assert!(matches!(
        accounts.authenticate(&pair.access_token).await,
        Err(AuthError::SessionEnded(_))
    ));
    accounts
        .login("alice", "battery staple", client(1))
        .await
        .unwrap();
}

#[tokio::test]
async fn wrong_current_passwords_count_towards_the_lockout() {
    let db = TestDatabase::new().await;
    let accounts = accounts(&db, settings()).await;
    accounts
        .create_user("alice", "correct horse", Role::User)
        .await
        .unwrap();
    let pair = accounts
        .login("alice", "correct horse", client(1))
        .await
        .unwrap();
    let session = accounts.authenticate(&pair.access_token).await.unwrap();
    for _ in 0..3 {
        assert!(matches!(
            accounts
                .change_password(&session, "guess", "new password")
                .await,
            Err(AuthError::Forbidden(_))
        ));
    }
    assert!(matches!(
        accounts
            .change_password(&session, "correct horse", "new password")
            .await,
        Err(AuthError::AccountLocked { .. })
    ));
}

#[tokio::test]
async fn api_keys_cannot_change_passwords_or_make_keys() {
    let db = TestDatabase::new().await;
    let accounts = accounts(&db, settings()).await;
    accounts
        .create_user("alice", "correct horse", Role::User)
        .await
        .unwrap();
    let pair = accounts
        .login("alice", "correct horse", client(1))
        .await
        .unwrap();
    let session = accounts.authenticate(&pair.access_token).await.unwrap();
    let (_, secret) = accounts
        .create_api_key(&session, "all", session.scopes(), None)
        .await
        .unwrap();
    let key = accounts.authenticate(&secret).await.unwrap();
    let err = accounts
        .change_password(&key, "correct horse", "new password")
        .await
        .unwrap_err();
    assert!(
        matches!(err, AuthError::Forbidden(ref m) if m.contains("login session")),
        "{err}"
    );
    let err = accounts
        .create_api_key(&key, "child", Scopes::parse(["read"]).unwrap(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, AuthError::Forbidden(ref m) if m.contains("login session")),
        "{err}"
    );
}

#[tokio::test]
async fn a_burst_of_guesses_is_held_to_the_limit() {
    let db = TestDatabase::new().await;
    let mut settings = settings();
    settings.lockout_after = 3;
    settings.client_failure_limit = 1000;
    let accounts = std::sync::Arc::new(accounts(&db, settings).await);
    accounts
        .create_user("alice", "correct horse", Role::User)
        .await
        .unwrap();
    let guesses: Vec<_> = (0..12u8)
        .map(|i| {
            let accounts = accounts.clone();
            tokio::spawn(async move {
                accounts
                    .login("alice", &format!("guess number {i}"), client(i))
                    .await
            })
        })
        .collect();
    let mut checked = 0;
    for guess in guesses {
        match guess.await.unwrap() {
            Err(AuthError::InvalidCredentials) => checked += 1,
            Err(AuthError::AccountLocked { .. }) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        checked, 3,
        "only `lockout_after` guesses reach the password check"
    );
}

#[tokio::test]
async fn simultaneous_right_passwords_all_log_in() {
    let db = TestDatabase::new().await;
    let mut settings = settings();
    settings.lockout_after = 5;
    settings.client_failure_limit = 5;
    let accounts = std::sync::Arc::new(accounts(&db, settings).await);
    accounts
        .create_user("alice", "correct horse", Role::User)
        .await
        .unwrap();
    // Twelve at once from one address: more than either limit lets be checked together.
    let logins: Vec<_> = (0..12)
        .map(|_| {
            let accounts = accounts.clone();
            tokio::spawn(async move { accounts.login("alice", "correct horse", client(1)).await })
        })
        .collect();
    for login in logins {
        let result = login.await.unwrap();
        assert!(result.is_ok(), "{:?}", result.err());
    }
    // Nothing failed, so nothing counts: five wrong passwords are still allowed before a lock.
    for _ in 0..4 {
        assert!(matches!(
            accounts.login("alice", "wrong", client(2)).await,
            Err(AuthError::InvalidCredentials)
        ));
    }
    accounts
        .login("alice", "correct horse", client(3))
        .await
        .unwrap();
}

#[tokio::test]
async fn absurd_durations_saturate_instead_of_panicking() {
    let db = TestDatabase::new().await;
    let mut settings = settings();
    settings.lockout_duration = Duration::from_secs(u64::MAX / 4);
    settings.refresh_token_ttl = Duration::from_secs(u64::MAX / 4);
    let accounts = accounts(&db, settings).await;
    accounts
        .create_user("alice", "correct horse", Role::User)
        .await
        .unwrap();
    accounts
        .login("alice", "correct horse", client(1))
        .await
        .unwrap();
    for _ in 0..3 {
        let _ = accounts.login("alice", "wrong", client(2)).await;
    }
    assert!(matches!(
        accounts.login("alice", "correct horse", client(3)).await,
        Err(AuthError::AccountLocked { .. })
    ));
}

#[tokio::test]
async fn keys_cannot_exceed_their_creator() {
    let db = TestDatabase::new().await;
    let accounts = accounts(&db, settings()).await;
    accounts
        .create_user("alice", "correct horse", Role::User)
        .await
        .unwrap();
    let pair = accounts
        .login("alice", "correct horse", client(1))
        .await
        .unwrap();
    let session = accounts.authenticate(&pair.access_token).await.unwrap();

    let err = accounts
        .create_api_key(&session, "root", Scopes::ALL, None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("`admin`"), "{err}");

    let (key, secret) = accounts
        .create_api_key(&session, "reader", Scopes::parse(["read"]).unwrap(), None)
        .await
        .unwrap();
    assert!(secret.starts_with(&key.prefix));
    let reader = accounts.authenticate(&secret).await.unwrap();
    assert_eq!(reader.credential, Credential::ApiKey(key.id));
    assert!(matches!(
        reader.require(Scope::Write),
        Err(AuthError::MissingScope(Scope::Write))
    ));
    let err = accounts
        .create_api_key(&reader, "writer", Scopes::parse(["write"]).unwrap(), None)
        .await
        .unwrap_err();
    assert!(matches!(err, AuthError::Forbidden(_)), "{err}");

    let past = OffsetDateTime::now_utc() - time::Duration::hours(1);
    assert!(matches!(
        accounts
            .create_api_key(
                &session,
                "old",
                Scopes::ALL.intersection(session.scopes()),
                Some(past)
            )
            .await,
        Err(AuthError::Invalid(_))
    ));
    assert!(matches!(
        accounts
            .create_api_key(&session, "  ", session.scopes(), None)
            .await,
        Err(AuthError::Invalid(_))
    ));
}

#[tokio::test]
async fn a_disabled_user_is_shut_out_everywhere() {
    let db = TestDatabase::new().await;
    let accounts = accounts(&db, settings()).await;
    accounts
        .create_user("root", "correct horse", Role::Admin)
        .await
        .unwrap();
    let bob = accounts
        .create_user("bob", "correct horse", Role::User)
        .await
        .unwrap();
    let pair = accounts
        .login("bob", "correct horse", client(1))
        .await
        .unwrap();
    let session = accounts.authenticate(&pair.access_token).await.unwrap();
    let (_, key) = accounts
        .create_api_key(&session, "k", session.scopes(), None)
        .await
        .unwrap();

    accounts
        .update_user(
            bob.id,
            UserChanges {
                disabled: Some(true),
                ..UserChanges::default()
            },
        )
        .await
        .unwrap();
    assert!(matches!(
        accounts.authenticate(&key).await,
        Err(AuthError::AccountDisabled)
    ));
    assert!(accounts.authenticate(&pair.access_token).await.is_err());
    assert!(accounts.refresh(&pair.refresh_token).await.is_err());
    assert!(matches!(
        accounts.login("bob", "correct horse", client(1)).await,
        Err(AuthError::AccountDisabled)
    ));
}

#[tokio::test]
async fn cached_keys_follow_revocation_here_at_once_and_elsewhere_within_the_ttl() {
    let db = TestDatabase::new().await;
    let mut cached = settings();
    cached.api_key_cache = Duration::from_millis(300);
    let here = accounts(&db, cached.clone()).await;
    let elsewhere = accounts(&db, cached).await;
    let alice = here
        .create_user("alice", "correct horse", Role::Admin)
        .await
        .unwrap();
    let pair = here
        .login("alice", "correct horse", client(1))
        .await
        .unwrap();
    let session = here.authenticate(&pair.access_token).await.unwrap();
    let (first, first_secret) = here
        .create_api_key(&session, "first", session.scopes(), None)
        .await
        .unwrap();
    let (_, second_secret) = here
        .create_api_key(&session, "second", session.scopes(), None)
        .await
        .unwrap();
    // Both processes have seen both keys.
    for secret in [&first_secret, &second_secret] {
        here.authenticate(secret).await.unwrap();
        elsewhere.authenticate(secret).await.unwrap();
    }

    // Revoked here: refused here at once; the other process still trusts its copy until the
    // copy expires, then asks the database and refuses too.
    here.revoke_api_key(alice.id, first.id).await.unwrap();
    assert!(matches!(
        here.authenticate(&first_secret).await,
        Err(AuthError::ApiKeyRevoked(_))
    ));
    assert!(elsewhere.authenticate(&first_secret).await.is_ok());
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(matches!(
        elsewhere.authenticate(&first_secret).await,
        Err(AuthError::ApiKeyRevoked(_))
    ));

    // Demoting the user drops their cached keys here: the key's admin scope goes at once.
    // (Another admin first: the last one cannot be demoted.)
    here.create_user("bob", "battery staple", Role::Admin)
        .await
        .unwrap();
    assert!(
        here.authenticate(&second_secret)
            .await
            .unwrap()
            .scopes()
            .contains(Scope::Admin)
    );
    here.update_user(
        alice.id,
        UserChanges {
            role: Some(Role::User),
            disabled: None,
            password: None,
        },
    )
    .await
    .unwrap();
    let demoted = here.authenticate(&second_secret).await.unwrap();
    assert!(!demoted.scopes().contains(Scope::Admin));
}

#[tokio::test]
async fn a_zero_ttl_asks_the_database_every_time() {
    let db = TestDatabase::new().await;
    let mut uncached = settings();
    uncached.api_key_cache = Duration::ZERO;
    let here = accounts(&db, uncached).await;
    let elsewhere = accounts(&db, settings()).await;
    let alice = here
        .create_user("alice", "correct horse", Role::User)
        .await
        .unwrap();
    let pair = here
        .login("alice", "correct horse", client(1))
        .await
        .unwrap();
    let session = here.authenticate(&pair.access_token).await.unwrap();
    let (key, secret) = here
        .create_api_key(&session, "k", session.scopes(), None)
        .await
        .unwrap();
    here.authenticate(&secret).await.unwrap();
    elsewhere.revoke_api_key(alice.id, key.id).await.unwrap();
    assert!(matches!(
        here.authenticate(&secret).await,
        Err(AuthError::ApiKeyRevoked(_))
    ));
}
