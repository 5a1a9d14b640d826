//! [`Trust`]: do it, update the gateway where needed, record it.

use std::sync::Arc;

use kai_audit::{Action, Actor, AuditError, AuditLog, Event, Outcome};
use kai_auth::{Accounts, AuthError, ClientInfo, Principal, TokenPair, UserChanges};
use kai_config::{ModelSettings, ProviderSettings};
use kai_core::{ApiKey, ApiKeyId, Role, Scopes, User, UserId};
use kai_gateway::{Gateway, GatewayError};
use kai_vault::{Owner, PublicIdentity, SecretInfo, SecretValue, UnlockKey, Vault, VaultError};
use time::OffsetDateTime;

/// Why a trusted action failed, or was done but could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// The vault refused or failed.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// Accounts refused or failed.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The gateway refused a catalog change, or could not reload.
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    /// The audit entry could not be written.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// A change to the model catalog, asked of a service built without a gateway (the command
    /// line's): the catalog is a server's.
    #[error("the model catalog is changed through a running server's API")]
    NoGateway,
}

/// The audited trust service. Cheap to clone: clones share everything.
#[derive(Clone, Debug)]
pub struct Trust {
    accounts: Arc<Accounts>,
    vault: Vault,
    audit: AuditLog,
    /// The gateway to reload when what it depends on changes; `None` on the command line,
    /// where a running server picks changes up at its next reload.
    gateway: Option<Gateway>,
}

/// What a secret is, as audit entries name it: `secret:node/NAME`, `secret:user:ID/NAME`.
fn secret_target(owner: Owner, name: &str) -> String {
    match owner {
        Owner::Node => format!("secret:node/{name}"),
        Owner::User(id) => format!("secret:user:{id}/{name}"),
    }
}

fn user_target(id: UserId) -> String {
    format!("user:{id}")
}

impl Trust {
    /// The service over these; `gateway` is the one to reload, when there is one.
    #[must_use]
    pub fn new(
        accounts: Arc<Accounts>,
        vault: Vault,
        audit: AuditLog,
        gateway: Option<Gateway>,
    ) -> Trust {
        Trust {
            accounts,
            vault,
            audit,
            gateway,
        }
    }

    /// Accounts, for what is not recorded: authentication, token refresh, logout, listings.
    #[must_use]
    pub fn accounts(&self) -> &Arc<Accounts> {
        &self.accounts
    }

    /// The vault, for what is not recorded: its state, the node's identity, secret names.
    #[must_use]
    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    /// The audit log, to read, prove and verify.
    #[must_use]
    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    async fn record(&self, event: Event) -> Result<(), TrustError> {
        self.audit.record(event).await?;
        Ok(())
    }

    async fn reload_gateway(&self) -> Result<(), TrustError> {
        if let Some(gateway) = &self.gateway {
            gateway.reload().await?;
        }
        Ok(())
    }

    fn gateway(&self) -> Result<&Gateway, TrustError> {
        self.gateway.as_ref().ok_or(TrustError::NoGateway)
    }

    // ---- the vault ----

    /// Creates the vault with these unlockers and a new node identity, and holds it unlocked.
    pub async fn init_vault(
        &self,
        actor: Actor,
        keys: &[UnlockKey],
    ) -> Result<PublicIdentity, TrustError> {
        let public = self.vault.init(keys).await?;
        self.record(
            Event::new(actor, Action::VaultInit, "vault", Outcome::Success)
                .with("node", public.did()),
        )
        .await?;
        Ok(public)
    }

    /// Unlocks the vault. Entries written while it was locked are signed, the gateway is
    /// reloaded (providers whose credentials are `vault:NAME` can now be built), and the
    /// unlock is recorded; a failed one is recorded too, with its reason.
    pub async fn unlock_vault(
        &self,
        actor: Actor,
        key: &UnlockKey,
    ) -> Result<PublicIdentity, TrustError> {
        match self.vault.unlock(key).await {
            Ok(public) => {
                let signed = self.audit.sign_pending().await?;
                tracing::info!(node = %public.did(), signed, "vault unlocked");
                self.reload_gateway().await?;
                self.record(Event::new(
                    actor,
                    Action::VaultUnlock,
                    "vault",
                    Outcome::Success,
                ))
                .await?;
                Ok(public)
            }
            Err(err) => {
                self.record(
                    Event::new(actor, Action::VaultUnlock, "vault", Outcome::Failure)
                        .with("reason", err.to_string()),
                )
                .await?;
                Err(err.into())
            }
        }
    }

    /// Locks the vault: this process forgets its keys. Recorded (and signed) first, while the
    /// key is still held.
    pub async fn lock_vault(&self, actor: Actor) -> Result<(), TrustError> {
        self.record(Event::new(
            actor,
            Action::VaultLock,
            "vault",
            Outcome::Success,
        ))
        .await?;
        self.vault.lock();
        Ok(())
    }

    /// Replaces the unlocker of `key`'s kind (a new passphrase, a new key file).
    pub async fn set_unlocker(&self, actor: Actor, key: &UnlockKey) -> Result<(), TrustError> {
        self.vault.set_unlocker(key).await?;
        self.record(Event::new(
            actor,
            Action::VaultPasswd,
            "vault",
            Outcome::Success,
        ))
        .await
    }

    /// Rotates the master key, rewrapping it under every unlocker in `keys`.
    pub async fn rotate_master_key(
        &self,
        actor: Actor,
        keys: &[UnlockKey],
    ) -> Result<(), TrustError> {
        self.vault.rotate_master(keys).await?;
        self.record(Event::new(
            actor,
            Action::VaultRotate,
            "vault",
            Outcome::Success,
        ))
        .await
    }

    // ---- secrets ----

    /// A secret with its value; `None` when there is none of that name. Every read is
    /// recorded: found, not found, or refused (the vault is locked).
    pub async fn read_secret(
        &self,
        actor: Actor,
        owner: Owner,
        name: &str,
    ) -> Result<Option<(SecretInfo, SecretValue)>, TrustError> {
        let found = self.vault.get_secret(owner, name).await;
        let outcome = match &found {
            Ok(Some(_)) => Outcome::Success,
            Ok(None) => Outcome::Failure,
            Err(_) => Outcome::Denied,
        };
        self.record(Event::new(
            actor,
            Action::SecretRead,
            secret_target(owner, name),
            outcome,
        ))
        .await?;
        Ok(found?)
    }

    /// Stores a secret, or replaces its value. A node secret may be a provider's credential:
    /// the gateway is reloaded.
    pub async fn write_secret(
        &self,
        actor: Actor,
        owner: Owner,
        name: &str,
        value: &SecretValue,
        description: Option<String>,
    ) -> Result<SecretInfo, TrustError> {
        let info = self
            .vault
            .put_secret(owner, name, value, description)
            .await?;
        if owner == Owner::Node {
            self.reload_gateway().await?;
        }
        self.record(Event::new(
            actor,
            Action::SecretWrite,
            secret_target(owner, name),
            Outcome::Success,
        ))
        .await?;
        Ok(info)
    }

    /// Deletes a secret; `false` (and nothing recorded) when there is none of that name.
    pub async fn delete_secret(
        &self,
        actor: Actor,
        owner: Owner,
        name: &str,
    ) -> Result<bool, TrustError> {
        if !self.vault.delete_secret(owner, name).await? {
            return Ok(false);
        }
        if owner == Owner::Node {
            self.reload_gateway().await?;
        }
        self.record(Event::new(
            actor,
            Action::SecretDelete,
            secret_target(owner, name),
            Outcome::Success,
        ))
        .await?;
        Ok(true)
    }

    // ---- accounts ----

    /// Logs in with a password. Every attempt is recorded: a success as the user, a failure as
    /// `anonymous` with the name tried (cut to 64 characters) and the reason.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        client: ClientInfo,
    ) -> Result<TokenPair, TrustError> {
        let address = client.addr.map(|addr| addr.to_string()).unwrap_or_default();
        let result = self.accounts.login(username, password, client).await;
        let event = match &result {
            Ok(_) => {
                let user = self.accounts.user_by_name(username).await?;
                Event::new(
                    Actor::User(user.id),
                    Action::AuthLogin,
                    user_target(user.id),
                    Outcome::Success,
                )
            }
            Err(err) => Event::new(Actor::Anonymous, Action::AuthLogin, "", Outcome::Failure)
                .with("username", username.chars().take(64).collect::<String>())
                .with("reason", err.to_string()),
        };
        self.record(event.with("client", address)).await?;
        Ok(result?)
    }

    /// Changes the principal's own password, ending their sessions.
    pub async fn change_password(
        &self,
        principal: &Principal,
        current: &str,
        new: &str,
    ) -> Result<(), TrustError> {
        self.accounts
            .change_password(principal, current, new)
            .await?;
        let id = principal.user.id;
        self.record(Event::new(
            Actor::User(id),
            Action::AuthPassword,
            user_target(id),
            Outcome::Success,
        ))
        .await
    }

    /// Creates a user.
    pub async fn create_user(
        &self,
        actor: Actor,
        username: &str,
        password: &str,
        role: Role,
    ) -> Result<User, TrustError> {
        let user = self.accounts.create_user(username, password, role).await?;
        self.record(Event::new(
            actor,
            Action::UserCreate,
            user_target(user.id),
            Outcome::Success,
        ))
        .await?;
        Ok(user)
    }

    /// Changes a user's role, state or password.
    pub async fn update_user(
        &self,
        actor: Actor,
        id: UserId,
        changes: UserChanges,
    ) -> Result<User, TrustError> {
        let user = self.accounts.update_user(id, changes).await?;
        self.record(Event::new(
            actor,
            Action::UserUpdate,
            user_target(id),
            Outcome::Success,
        ))
        .await?;
        Ok(user)
    }

    /// Deletes a user with everything they own.
    pub async fn delete_user(&self, actor: Actor, id: UserId) -> Result<(), TrustError> {
        self.accounts.delete_user(id).await?;
        self.record(Event::new(
            actor,
            Action::UserDelete,
            user_target(id),
            Outcome::Success,
        ))
        .await
    }

    /// Creates an API key for the principal; returns it with the key itself.
    pub async fn create_api_key(
        &self,
        principal: &Principal,
        name: &str,
        scopes: Scopes,
        expires_at: Option<OffsetDateTime>,
    ) -> Result<(ApiKey, String), TrustError> {
        let (key, secret) = self
            .accounts
            .create_api_key(principal, name, scopes, expires_at)
            .await?;
        self.record(Event::new(
            Actor::User(principal.user.id),
            Action::ApiKeyCreate,
            format!("api_key:{}", key.id),
            Outcome::Success,
        ))
        .await?;
        Ok((key, secret))
    }

    /// Revokes one of the principal's API keys.
    pub async fn revoke_api_key(
        &self,
        principal: &Principal,
        id: ApiKeyId,
    ) -> Result<ApiKey, TrustError> {
        let key = self.accounts.revoke_api_key(principal.user.id, id).await?;
        self.record(Event::new(
            Actor::User(principal.user.id),
            Action::ApiKeyRevoke,
            format!("api_key:{id}"),
            Outcome::Success,
        ))
        .await?;
        Ok(key)
    }

    // ---- the model catalog ----

    /// Adds a provider to the catalog.
    pub async fn create_provider(
        &self,
        actor: Actor,
        settings: ProviderSettings,
    ) -> Result<(), TrustError> {
        let target = format!("provider:{}", settings.name);
        self.gateway()?.create_provider(settings).await?;
        self.record(Event::new(
            actor,
            Action::ProviderCreate,
            target,
            Outcome::Success,
        ))
        .await
    }

    /// Replaces a provider of the catalog.
    pub async fn update_provider(
        &self,
        actor: Actor,
        settings: ProviderSettings,
    ) -> Result<(), TrustError> {
        let target = format!("provider:{}", settings.name);
        self.gateway()?.update_provider(settings).await?;
        self.record(Event::new(
            actor,
            Action::ProviderUpdate,
            target,
            Outcome::Success,
        ))
        .await
    }

    /// Removes a provider from the catalog.
    pub async fn delete_provider(&self, actor: Actor, name: &str) -> Result<(), TrustError> {
        self.gateway()?.delete_provider(name).await?;
        self.record(Event::new(
            actor,
            Action::ProviderDelete,
            format!("provider:{name}"),
            Outcome::Success,
        ))
        .await
    }

    /// Adds a model to the catalog.
    pub async fn create_model(
        &self,
        actor: Actor,
        settings: ModelSettings,
    ) -> Result<(), TrustError> {
        let target = format!("model:{}", settings.name);
        self.gateway()?.create_model(settings).await?;
        self.record(Event::new(
            actor,
            Action::ModelCreate,
            target,
            Outcome::Success,
        ))
        .await
    }

    /// Replaces a model of the catalog.
    pub async fn update_model(
        &self,
        actor: Actor,
        settings: ModelSettings,
    ) -> Result<(), TrustError> {
        let target = format!("model:{}", settings.name);
        self.gateway()?.update_model(settings).await?;
        self.record(Event::new(
            actor,
            Action::ModelUpdate,
            target,
            Outcome::Success,
        ))
        .await
    }

    /// Removes a model from the catalog.
    pub async fn delete_model(&self, actor: Actor, name: &str) -> Result<(), TrustError> {
        self.gateway()?.delete_model(name).await?;
        self.record(Event::new(
            actor,
            Action::ModelDelete,
            format!("model:{name}"),
            Outcome::Success,
        ))
        .await
    }
}
