//! The trust service: each action is done, the gateway follows what it depends on, and the
//! action is in the audit log before the caller hears of it, or the caller hears of an error.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use kai_audit::{Action, Actor, AuditLog};
use kai_auth::{Accounts, ClientInfo, UserChanges};
use kai_config::{CredentialRef, ProviderKind, ProviderSettings, Settings};
use kai_core::Role;
use kai_gateway::Gateway;
use kai_store::testing::TestDatabase;
use kai_store::{AuditFilter, AuditRow, Store};
use kai_trust::{Trust, TrustError};
use kai_vault::{Owner, Passphrase, SecretValue, UnlockKey, Vault};

const PASSPHRASE: &str = "a passphrase long enough";

struct Fixture {
    store: Store,
    trust: Trust,
    gateway: Gateway,
    _db: TestDatabase,
}

fn passphrase() -> UnlockKey {
    UnlockKey::Passphrase(Passphrase::new(PASSPHRASE.into()))
}

/// A trust service over a fresh database and a gateway with one provider whose key is the
/// node secret `upstream-key`; the vault is created unless `vault` is false.
async fn fixture(vault: bool) -> Fixture {
    let db = TestDatabase::new().await;
    let mut settings = Settings::defaults(db.dir().to_owned());
    settings.vault.kdf_memory = kai_config::ByteSize::mib(19);
    settings.vault.kdf_iterations = 2;
    let mut provider = ProviderSettings::new("upstream", ProviderKind::OpenaiCompatible);
    provider.base_url = Some("http://127.0.0.1:9/v1".parse().unwrap());
    provider.api_key = Some(CredentialRef::Vault("upstream-key".into()));
    settings.providers.push(provider);
    let store = db.store().await;
    let accounts = Arc::new(
        Accounts::new(store.clone(), settings.auth.clone())
            .await
            .unwrap(),
    );
    let vault_service = Vault::new(store.clone(), &settings.vault);
    let audit = AuditLog::new(store.clone(), vault_service.clone(), &settings.audit);
    let gateway = Gateway::new(
        store.clone(),
        &settings,
        kai_config::Environment::default(),
        None,
        Some(vault_service.clone()),
    )
    .await
    .unwrap();
    let trust = Trust::new(accounts, vault_service, audit, Some(gateway.clone()));
    if vault {
        trust.init_vault(Actor::Cli, &[passphrase()]).await.unwrap();
    }
    Fixture {
        store,
        trust,
        gateway,
        _db: db,
    }
}

async fn entries(trust: &Trust) -> Vec<AuditRow> {
    trust
        .audit()
        .entries(&AuditFilter {
            limit: 1000,
            ..AuditFilter::default()
        })
        .await
        .unwrap()
}

async fn last(trust: &Trust) -> AuditRow {
    entries(trust).await.pop().unwrap()
}

fn problem(gateway: &Gateway) -> Option<String> {
    gateway
        .table()
        .provider("upstream")
        .unwrap()
        .problem
        .clone()
}

#[tokio::test]
async fn secrets_are_recorded_and_node_secrets_reach_the_gateway() {
    let f = fixture(true).await;
    let user = f
        .trust
        .create_user(Actor::Cli, "alice", "correct horse battery", Role::User)
        .await
        .unwrap();
    let alice = Actor::User(user.id);
    assert!(problem(&f.gateway).is_some(), "no key yet");

    let value = SecretValue::new("sk-live".into());
    f.trust
        .write_secret(alice, Owner::Node, "upstream-key", &value, None)
        .await
        .unwrap();
    let entry = last(&f.trust).await;
    assert_eq!(
        (entry.actor.as_str(), entry.action.as_str()),
        (format!("user:{}", user.id).as_str(), "secret.write")
    );
    assert!(
        entry.entry.contains("secret:node/upstream-key"),
        "{}",
        entry.entry
    );
    assert_eq!(
        problem(&f.gateway),
        None,
        "the gateway reloaded with the key"
    );

    let (_, read) = f
        .trust
        .read_secret(alice, Owner::Node, "upstream-key")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.expose(), "sk-live");
    assert!(last(&f.trust).await.entry.contains("\"success\""));

    // A read of nothing is recorded as a failure.
    assert!(
        f.trust
            .read_secret(alice, Owner::User(user.id), "missing")
            .await
            .unwrap()
            .is_none()
    );
    let entry = last(&f.trust).await;
    assert_eq!(entry.action, "secret.read");
    assert!(entry.entry.contains("\"failure\""), "{}", entry.entry);

    // Deleting the node secret takes the key from the gateway again.
    assert!(
        f.trust
            .delete_secret(alice, Owner::Node, "upstream-key")
            .await
            .unwrap()
    );
    assert_eq!(last(&f.trust).await.action, "secret.delete");
    assert!(problem(&f.gateway).is_some());
    // Deleting what is not there is no action, and records none.
    let before = entries(&f.trust).await.len();
    assert!(
        !f.trust
            .delete_secret(alice, Owner::Node, "upstream-key")
            .await
            .unwrap()
    );
    assert_eq!(entries(&f.trust).await.len(), before);
}

#[tokio::test]
async fn a_read_while_locked_is_recorded_as_denied() {
    let f = fixture(true).await;
    f.trust.lock_vault(Actor::Cli).await.unwrap();
    assert_eq!(last(&f.trust).await.action, "vault.lock");
    let err = f
        .trust
        .read_secret(Actor::Cli, Owner::Node, "anything")
        .await
        .unwrap_err();
    assert!(matches!(err, TrustError::Vault(_)), "{err:?}");
    let entry = last(&f.trust).await;
    assert_eq!(entry.action, "secret.read");
    assert!(entry.entry.contains("\"denied\""), "{}", entry.entry);
}

#[tokio::test]
async fn unlocking_signs_what_waited_and_failures_are_recorded_with_their_reason() {
    let f = fixture(true).await;
    f.trust.lock_vault(Actor::Cli).await.unwrap();
    let wrong = UnlockKey::Passphrase(Passphrase::new("not the passphrase at all".into()));
    assert!(f.trust.unlock_vault(Actor::Node, &wrong).await.is_err());
    f.trust
        .unlock_vault(Actor::Node, &passphrase())
        .await
        .unwrap();
    let rows = entries(&f.trust).await;
    let unlocks: Vec<&AuditRow> = rows.iter().filter(|r| r.action == "vault.unlock").collect();
    assert_eq!(unlocks.len(), 2);
    assert!(unlocks[0].entry.contains("\"failure\"") && unlocks[0].entry.contains("reason"));
    assert!(unlocks[1].entry.contains("\"success\"") && unlocks[1].actor == "node");
    // The failed attempt, written while locked, was signed at the unlock.
    assert!(rows.iter().all(|row| row.signature.is_some()), "{rows:?}");
}

#[tokio::test]
async fn accounts_and_keys_are_recorded_with_who_did_it() {
    let f = fixture(true).await;
    let admin = f
        .trust
        .create_user(Actor::Cli, "root", "correct horse battery", Role::Admin)
        .await
        .unwrap();
    let tokens = f
        .trust
        .login("root", "correct horse battery", ClientInfo::default())
        .await
        .unwrap();
    let login = last(&f.trust).await;
    assert_eq!(
        (login.actor.clone(), login.action.as_str()),
        (format!("user:{}", admin.id), "auth.login")
    );
    assert!(
        f.trust
            .login("root", "wrong password!", ClientInfo::default())
            .await
            .is_err()
    );
    let failed = last(&f.trust).await;
    assert_eq!(failed.actor, "anonymous");
    assert!(
        failed.entry.contains("\"username\":\"root\""),
        "{}",
        failed.entry
    );

    let principal = f
        .trust
        .accounts()
        .authenticate(&tokens.access_token)
        .await
        .unwrap();
    let (key, _) = f
        .trust
        .create_api_key(&principal, "script", principal.scopes(), None)
        .await
        .unwrap();
    f.trust.revoke_api_key(&principal, key.id).await.unwrap();
    let bob = f
        .trust
        .create_user(
            Actor::User(admin.id),
            "bob",
            "another good password",
            Role::User,
        )
        .await
        .unwrap();
    f.trust
        .update_user(
            Actor::User(admin.id),
            bob.id,
            UserChanges {
                disabled: Some(true),
                ..UserChanges::default()
            },
        )
        .await
        .unwrap();
    f.trust
        .delete_user(Actor::User(admin.id), bob.id)
        .await
        .unwrap();
    let actions: Vec<String> = entries(&f.trust)
        .await
        .into_iter()
        .map(|row| row.action)
        .collect();
    let expected = [
        Action::VaultInit,
        Action::UserCreate,
        Action::AuthLogin,
        Action::AuthLogin,
        Action::ApiKeyCreate,
        Action::ApiKeyRevoke,
        Action::UserCreate,
        Action::UserUpdate,
        Action::UserDelete,
    ];
    assert_eq!(
        actions,
        expected.map(|action| action.as_str().to_owned()).to_vec()
    );
}

#[tokio::test]
async fn an_action_whose_entry_cannot_be_written_is_reported_as_failed() {
    let f = fixture(true).await;
    f.store.tamper("DROP TABLE audit_entries").await;
    let err = f
        .trust
        .create_user(Actor::Cli, "carol", "correct horse battery", Role::User)
        .await
        .unwrap_err();
    assert!(matches!(err, TrustError::Audit(_)), "{err:?}");
}

#[tokio::test]
async fn the_catalog_needs_a_gateway() {
    let f = fixture(false).await;
    let without = Trust::new(
        Arc::clone(f.trust.accounts()),
        f.trust.vault().clone(),
        f.trust.audit().clone(),
        None,
    );
    let err = without
        .delete_provider(Actor::Cli, "upstream")
        .await
        .unwrap_err();
    assert!(matches!(err, TrustError::NoGateway), "{err:?}");
    assert!(entries(&without).await.is_empty());
    // Through a server's gateway, a refused change records nothing either.
    let err = f
        .trust
        .delete_provider(Actor::Cli, "upstream")
        .await
        .unwrap_err();
    assert!(matches!(err, TrustError::Gateway(_)), "{err:?}");
    assert!(entries(&f.trust).await.is_empty());
}
