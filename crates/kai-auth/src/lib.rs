//! kai's accounts: users, password logins with lockout, access and refresh tokens, API keys, and
//! the [`Principal`] every authenticated request acts as.
//!
//! This crate decides who someone is and what they may do; it knows nothing of HTTP. The server
//! maps [`AuthError`] to responses, the CLI calls [`Accounts`] directly on the local database.
//!
//! Credentials:
//! - **Access tokens** are HS256 JWTs that live `auth.access_token_ttl` (15 minutes). Each names
//!   its session, and every check looks the session up, so logout and password changes take
//!   effect at once rather than when the token expires.
//! - **Refresh tokens** are opaque, stored as SHA-256 hashes, and single-use: each refresh
//!   returns a new one. Presenting a used one again means it was stolen (or the client is
//!   broken); the whole session ends.
//! - **API keys** (`kai_…`) are opaque, stored as SHA-256 hashes, scoped, optionally expiring,
//!   and revocable.

mod access;
mod keycache;
mod limiter;
mod secrets;

use std::net::IpAddr;
use std::time::Duration;

use kai_config::AuthSettings;
use kai_core::{
    ApiKey, ApiKeyId, InvalidInput, Role, Scope, Scopes, SessionId, User, UserId, Username,
    validate_password,
};
use kai_store::{
    LoginAttempt, NewApiKey, NewSession, NewUser, RotateOutcome, Store, StoreError, UserUpdate,
};
use time::OffsetDateTime;

use crate::access::{AccessClaims, AccessError, AccessTokens};
use crate::keycache::{CachedKey, KeyCache};
use crate::limiter::{Admission, ClientLimiter};
pub use crate::secrets::{API_KEY_PREFIX, HashError, PasswordHasher, REFRESH_TOKEN_PREFIX};

/// The name under which the generated token-signing key is kept in the database.
const SIGNING_KEY_NAME: &str = "auth.access_token_key";
/// A key's last use is written at most this often.
const KEY_USE_RESOLUTION: time::Duration = time::Duration::minutes(1);
/// The longest name an API key may have.
const MAX_KEY_NAME_LEN: usize = 100;

/// How long a login waits for the password checks in flight on its account to make room,
/// longer than a burst of Argon2id checks takes on a small machine.
const BUSY_WAIT: Duration = Duration::from_secs(10);

/// Runs `attempt` until it lets a password check start (`Ok(true)`) or refuses it (`Err`),
/// waiting while it answers that the checks in flight fill a limit (`Ok(false)`): 5 ms at
/// first, doubling up to 100 ms, for at most [`BUSY_WAIT`].
async fn when_room<F, Fut>(mut attempt: F) -> Result<(), AuthError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool, AuthError>>,
{
    let deadline = tokio::time::Instant::now() + BUSY_WAIT;
    let mut pause = Duration::from_millis(5);
    while !attempt().await? {
        if tokio::time::Instant::now() + pause > deadline {
            return Err(AuthError::LoginsBusy {
                retry_after: Duration::from_secs(1),
            });
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    }
    Ok(())
}

/// Why an account operation was refused. Each variant says, in its message, what to do next.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Wrong user name or password (deliberately not saying which).
    #[error("invalid username or password")]
    InvalidCredentials,
    /// Too many failed logins on this account.
    #[error("account locked after too many failed logins; try again in {} s", retry_after.as_secs().max(1))]
    AccountLocked {
        /// How long until the lock ends.
        retry_after: Duration,
    },
    /// The password checks already in flight on this account (or from this address) reach its
    /// limit, and did not end within seconds.
    #[error("too many logins are being checked at once; try again in {} s", retry_after.as_secs().max(1))]
    LoginsBusy {
        /// How long to wait before trying again.
        retry_after: Duration,
    },
    /// Too many failed logins from this client address.
    #[error("too many failed logins from this address; try again in {} s", retry_after.as_secs().max(1))]
    ClientThrottled {
        /// How long until the address may try again.
        retry_after: Duration,
    },
    /// The account is disabled.
    #[error("this account is disabled; ask an administrator to enable it")]
    AccountDisabled,
    /// The access token's lifetime is over.
    #[error("access token expired; get a new one from /api/v1/auth/refresh")]
    TokenExpired,
    /// The token is not one kai issued or has been altered.
    #[error("invalid access token: {0}")]
    InvalidToken(&'static str),
    /// The session was ended (logout, password change, or theft detected).
    #[error("session has ended ({0}); log in again")]
    SessionEnded(String),
    /// The refresh token is unknown or expired.
    #[error("invalid or expired refresh token; log in again")]
    InvalidRefreshToken,
    /// The refresh token had already been used: the session has been ended.
    #[error(
        "refresh token was already used, so it may have been stolen; the session has been ended, log in again"
    )]
    RefreshTokenReused,
    /// No such API key.
    #[error("invalid API key")]
    InvalidApiKey,
    /// The API key was revoked.
    #[error("API key `{0}` has been revoked")]
    ApiKeyRevoked(String),
    /// The API key expired.
    #[error("API key `{0}` has expired")]
    ApiKeyExpired(String),
    /// The credential lacks a scope the operation needs.
    #[error("this credential lacks the `{0}` scope")]
    MissingScope(Scope),
    /// The operation is not allowed to this user.
    #[error("{0}")]
    Forbidden(String),
    /// No such thing, or not visible to this user (the two are indistinguishable on purpose).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The operation conflicts with existing state.
    #[error("{0}")]
    Conflict(String),
    /// Input failed validation.
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    /// Password hashing failed.
    #[error(transparent)]
    Hash(#[from] HashError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The credentials a login or refresh returns. `Debug` shows neither token.
#[derive(Clone)]
pub struct TokenPair {
    /// The JWT to send as `Authorization: Bearer`.
    pub access_token: String,
    /// The single-use token to exchange for the next pair.
    pub refresh_token: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Seconds until the refresh token expires (a browser's cookie lives as long).
    pub refresh_expires_in: u64,
}

impl std::fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenPair")
            .field("access_token", &"<redacted>")
            .field("refresh_token", &"<redacted>")
            .field("expires_in", &self.expires_in)
            .field("refresh_expires_in", &self.refresh_expires_in)
            .finish()
    }
}

/// Where a login came from, recorded with the session.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    /// The client's address, if known.
    pub addr: Option<IpAddr>,
    /// The client's `User-Agent`, if sent.
    pub user_agent: Option<String>,
}

/// How a request proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// An access token from a login session.
    Session(SessionId),
    /// An API key.
    ApiKey(ApiKeyId),
}

/// Who a request acts as, and with which scopes.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The user.
    pub user: User,
    /// The credential used.
    pub credential: Credential,
    scopes: Scopes,
    expires_at: Option<OffsetDateTime>,
}

impl Principal {
    /// When the credential stops being accepted: an access token's expiry, an API key's if it
    /// has one. A long-lived connection (the WebSocket) closes then unless it is renewed.
    #[must_use]
    pub fn expires_at(&self) -> Option<OffsetDateTime> {
        self.expires_at
    }

    /// The scopes in effect: the credential's, limited by the user's role.
    #[must_use]
    pub fn scopes(&self) -> Scopes {
        self.scopes
    }

    /// Succeeds if the credential carries `scope`.
    pub fn require(&self, scope: Scope) -> Result<(), AuthError> {
        if self.scopes.contains(scope) {
            Ok(())
        } else {
            Err(AuthError::MissingScope(scope))
        }
    }

    /// Succeeds for an admin whose credential carries the `admin` scope.
    pub fn require_admin(&self) -> Result<(), AuthError> {
        if self.user.role != Role::Admin {
            return Err(AuthError::Forbidden("this needs an admin account".into()));
        }
        self.require(Scope::Admin)
    }
}

/// Changes an admin makes to a user; `None` leaves a field as it is. `Debug` hides the
/// password.
#[derive(Clone, Default)]
pub struct UserChanges {
    /// A new role.
    pub role: Option<Role>,
    /// Disable (ending every session) or re-enable.
    pub disabled: Option<bool>,
    /// A new password (ending every session).
    pub password: Option<String>,
}

impl std::fmt::Debug for UserChanges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserChanges")
            .field("role", &self.role)
            .field("disabled", &self.disabled)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// The accounts service. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Accounts {
    store: Store,
    settings: AuthSettings,
    access: AccessTokens,
    passwords: PasswordHasher,
    clients: ClientLimiter,
    keys: KeyCache,
}

impl Accounts {
    /// The service over `store`. The token-signing key is `settings.token_secret` when set, else
    /// a random key generated on first start and kept in the database.
    pub async fn new(store: Store, settings: AuthSettings) -> Result<Self, AuthError> {
        let key = match &settings.token_secret {
            Some(secret) => secret.expose().as_bytes().to_vec(),
            None => {
                store
                    .server_secret(SIGNING_KEY_NAME, || {
                        let mut key = vec![0; 32];
                        rand::fill(&mut key[..]);
                        key
                    })
                    .await?
            }
        };
        Ok(Self {
            access: AccessTokens::new(&key, settings.access_token_ttl),
            clients: ClientLimiter::new(
                settings.client_failure_limit,
                settings.client_failure_window,
            ),
            passwords: PasswordHasher::new()?,
            keys: KeyCache::new(settings.api_key_cache),
            store,
            settings,
        })
    }

    /// The store this service works on.
    #[must_use]
    pub fn store(&self) -> &Store {
        &self.store
    }

    // ---- users ----

    /// Creates a user after checking the name and the password policy.
    pub async fn create_user(
        &self,
        username: &str,
        password: &str,
        role: Role,
    ) -> Result<User, AuthError> {
        let username: Username = username.parse()?;
        validate_password(password)?;
        let password_hash = self.passwords.hash(password).await?;
        self.store
            .create_user(&NewUser {
                username,
                password_hash,
                role,
            })
            .await
            .map_err(|err| match err {
                StoreError::Conflict(_) => {
                    AuthError::Conflict("a user with that name already exists".into())
                }
                other => other.into(),
            })
    }

    /// Every user.
    pub async fn users(&self) -> Result<Vec<User>, AuthError> {
        Ok(self.store.users().await?)
    }

    /// One user.
    pub async fn user(&self, id: UserId) -> Result<User, AuthError> {
        Ok(self
            .store
            .user(id)
            .await?
            .ok_or(AuthError::NotFound("user"))?
            .user)
    }

    /// One user, by name.
    pub async fn user_by_name(&self, username: &str) -> Result<User, AuthError> {
        let username: Username = username.parse()?;
        Ok(self
            .store
            .user_by_name(&username)
            .await?
            .ok_or(AuthError::NotFound("user"))?
            .user)
    }

    /// Applies an admin's changes to a user. The last enabled admin can be neither demoted nor
    /// disabled, so that the node always has someone who can manage it. Disabling a user or
    /// setting their password ends their sessions; setting a password also lifts a lockout.
    pub async fn update_user(&self, id: UserId, changes: UserChanges) -> Result<User, AuthError> {
        let current = self.user(id).await?;
        let stays_active_admin = changes.role.unwrap_or(current.role) == Role::Admin
            && !changes.disabled.unwrap_or(current.disabled);
        if current.role == Role::Admin && !current.disabled && !stays_active_admin {
            self.ensure_other_admin(id, "demote or disable").await?;
        }
        let password_hash = match &changes.password {
            Some(password) => {
                validate_password(password)?;
                Some(self.passwords.hash(password).await?)
            }
            None => None,
        };
        let mut user = current;
        if changes.role.is_some() || changes.disabled.is_some() {
            let update = UserUpdate {
                role: changes.role,
                disabled: changes.disabled,
            };
            user = self
                .store
                .update_user(id, &update)
                .await?
                .ok_or(AuthError::NotFound("user"))?;
        }
        if let Some(hash) = password_hash {
            user = self
                .store
                .set_password(id, &hash, "password set by an administrator")
                .await?
                .ok_or(AuthError::NotFound("user"))?;
        }
        self.keys.forget_user(id);
        Ok(user)
    }

    /// Deletes a user and everything they own. The last enabled admin cannot be deleted.
    pub async fn delete_user(&self, id: UserId) -> Result<(), AuthError> {
        let current = self.user(id).await?;
        if current.role == Role::Admin && !current.disabled {
            self.ensure_other_admin(id, "delete").await?;
        }
        self.keys.forget_user(id);
        if self.store.delete_user(id).await? {
            Ok(())
        } else {
            Err(AuthError::NotFound("user"))
        }
    }

    async fn ensure_other_admin(&self, id: UserId, action: &str) -> Result<(), AuthError> {
        if self.store.count_other_active_admins(id).await? == 0 {
            return Err(AuthError::Conflict(format!(
                "cannot {action} the last enabled admin; make another user an admin first"
            )));
        }
        Ok(())
    }

    /// Changes the principal's own password after checking the current one, and ends all their
    /// sessions: whoever knew the old password is logged out everywhere. Only a login session
    /// may do this, not an API key, and a wrong current password counts towards the lockout
    /// like a failed login.
    pub async fn change_password(
        &self,
        principal: &Principal,
        current: &str,
        new: &str,
    ) -> Result<(), AuthError> {
        require_session(principal, "changing the password")?;
        validate_password(new)?;
        let id = principal.user.id;
        let record = self
            .store
            .user(id)
            .await?
            .ok_or(AuthError::NotFound("user"))?;
        self.begin_attempt(id).await?;
        if !self
            .passwords
            .verify(current, &record.password_hash)
            .await?
        {
            self.attempt_failed(id).await?;
            return Err(AuthError::Forbidden("the current password is wrong".into()));
        }
        self.store.clear_login_failures(id).await?;
        let password_hash = self.passwords.hash(new).await?;
        self.store
            .set_password(id, &password_hash, "password changed")
            .await?
            .ok_or(AuthError::NotFound("user"))?;
        Ok(())
    }

    /// Starts a password check on the account; refused while it is locked. While the checks
    /// already in flight fill the lockout limit (a burst of simultaneous logins), waits for
    /// them to end: each either clears the way (a right password) or brings the account
    /// nearer its lock (a wrong one), so no more than the limit are ever checked at once and
    /// right passwords are never turned away for failures that did not happen.
    async fn begin_attempt(&self, id: UserId) -> Result<(), AuthError> {
        when_room(|| async move {
            let now = OffsetDateTime::now_utc();
            match self
                .store
                .begin_login_attempt(id, self.settings.lockout_after, now)
                .await?
            {
                LoginAttempt::Allowed => Ok(true),
                LoginAttempt::Busy => Ok(false),
                LoginAttempt::Locked(until) => Err(AuthError::AccountLocked {
                    retry_after: to_std(until - now),
                }),
            }
        })
        .await
    }

    /// Ends a password check that found the password wrong, locking the account when that
    /// makes `lockout_after` failures in a row.
    async fn attempt_failed(&self, id: UserId) -> Result<(), AuthError> {
        let lock_until = later(OffsetDateTime::now_utc(), self.settings.lockout_duration);
        let failures = self
            .store
            .login_failed(id, self.settings.lockout_after, lock_until)
            .await?;
        if failures >= self.settings.lockout_after {
            tracing::warn!(user = %id, failures, "account locked after failed logins");
        }
        Ok(())
    }

    // ---- sessions ----

    /// Logs in with a password. Refused while the client address or the account is locked out.
    ///
    /// Password checks in flight are counted against both limits before they are made, apart
    /// from the failures that lock: a burst of simultaneous guesses gets no more of them
    /// checked than the limits allow, and simultaneous right passwords wait their turn rather
    /// than being told of failures that did not happen.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        client: ClientInfo,
    ) -> Result<TokenPair, AuthError> {
        if let Some(addr) = client.addr {
            self.admit_client(addr).await?;
        }
        let result = self.login_account(username, password, &client).await;
        if let Some(addr) = client.addr {
            // Only wrong passwords count against the address; a lockout answer tested nothing.
            self.clients
                .finish(addr, matches!(result, Err(AuthError::InvalidCredentials)));
        }
        result
    }

    /// Starts a password check for a client address, waiting (as [`Accounts::begin_attempt`]
    /// does for an account) while its checks in flight fill its limit.
    async fn admit_client(&self, addr: std::net::IpAddr) -> Result<(), AuthError> {
        when_room(|| async move {
            match self.clients.try_acquire(addr) {
                Admission::Allowed => Ok(true),
                Admission::Busy => Ok(false),
                Admission::Throttled(retry_after) => {
                    Err(AuthError::ClientThrottled { retry_after })
                }
            }
        })
        .await
    }

    async fn login_account(
        &self,
        username: &str,
        password: &str,
        client: &ClientInfo,
    ) -> Result<TokenPair, AuthError> {
        let record = match username.parse::<Username>() {
            Ok(name) => self.store.user_by_name(&name).await?,
            Err(_) => None,
        };
        let Some(record) = record else {
            self.passwords.verify_decoy(password).await?;
            return Err(AuthError::InvalidCredentials);
        };
        self.begin_attempt(record.user.id).await?;
        if !self
            .passwords
            .verify(password, &record.password_hash)
            .await?
        {
            self.attempt_failed(record.user.id).await?;
            return Err(AuthError::InvalidCredentials);
        }
        if record.user.disabled {
            self.store.clear_login_failures(record.user.id).await?;
            return Err(AuthError::AccountDisabled);
        }
        let now = OffsetDateTime::now_utc();
        self.store.record_login(record.user.id, now).await?;
        let refresh_token = secrets::generate(REFRESH_TOKEN_PREFIX);
        let session = self
            .store
            .create_session(&NewSession {
                user_id: record.user.id,
                client_addr: client.addr.map(|addr| addr.to_string()),
                user_agent: client
                    .user_agent
                    .as_ref()
                    .map(|agent| agent.chars().take(256).collect()),
                refresh_token_hash: secrets::digest(&refresh_token),
                refresh_expires_at: self.refresh_expiry(now),
                verified_password_hash: record.password_hash,
            })
            .await?
            // The password changed, or the account was disabled, while this login was checked.
            .ok_or(AuthError::InvalidCredentials)?;
        Ok(self.token_pair(record.user.id, session.id, refresh_token, now))
    }

    /// Exchanges a refresh token for a new pair. The old token is spent; presenting it again
    /// ends the session.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair, AuthError> {
        if !secrets::well_formed(refresh_token, REFRESH_TOKEN_PREFIX) {
            return Err(AuthError::InvalidRefreshToken);
        }
        let now = OffsetDateTime::now_utc();
        let next = secrets::generate(REFRESH_TOKEN_PREFIX);
        let outcome = self
            .store
            .rotate_refresh_token(
                &secrets::digest(refresh_token),
                &secrets::digest(&next),
                self.refresh_expiry(now),
            )
            .await?;
        match outcome {
            RotateOutcome::Rotated { session, user } => {
                if user.user.disabled {
                    self.store
                        .revoke_session(session.id, "account disabled")
                        .await?;
                    return Err(AuthError::AccountDisabled);
                }
                Ok(self.token_pair(user.user.id, session.id, next, now))
            }
            RotateOutcome::Reused(session) => {
                tracing::warn!(%session, "refresh token reused; session revoked");
                Err(AuthError::RefreshTokenReused)
            }
            RotateOutcome::Revoked(_) => Err(AuthError::SessionEnded("revoked".into())),
            RotateOutcome::Expired | RotateOutcome::Unknown => Err(AuthError::InvalidRefreshToken),
        }
    }

    /// Ends the session a refresh token belongs to. Logging out twice is not an error.
    pub async fn logout(&self, refresh_token: &str) -> Result<(), AuthError> {
        if !secrets::well_formed(refresh_token, REFRESH_TOKEN_PREFIX) {
            return Err(AuthError::InvalidRefreshToken);
        }
        match self
            .store
            .revoke_session_of_token(&secrets::digest(refresh_token), "logout")
            .await?
        {
            Some(_) => Ok(()),
            None => Err(AuthError::InvalidRefreshToken),
        }
    }

    /// Ends every session of the user ("log out everywhere"): each device's refresh token and
    /// access tokens stop working at once. API keys are left alone; they are revoked one by
    /// one. Returns how many sessions ended.
    pub async fn logout_everywhere(&self, user: UserId) -> Result<u64, AuthError> {
        Ok(self
            .store
            .revoke_user_sessions(user, "logged out everywhere")
            .await?)
    }

    /// Deletes expired refresh tokens and the sessions they leave empty.
    pub async fn prune(&self) -> Result<u64, AuthError> {
        Ok(self
            .store
            .prune_expired_sessions(OffsetDateTime::now_utc())
            .await?)
    }

    fn token_pair(
        &self,
        user_id: UserId,
        session_id: SessionId,
        refresh_token: String,
        now: OffsetDateTime,
    ) -> TokenPair {
        TokenPair {
            access_token: self.access.issue(
                AccessClaims {
                    user_id,
                    session_id,
                },
                now,
            ),
            refresh_token,
            expires_in: self.access.ttl().as_secs(),
            refresh_expires_in: self.settings.refresh_token_ttl.as_secs(),
        }
    }

    fn refresh_expiry(&self, now: OffsetDateTime) -> OffsetDateTime {
        later(now, self.settings.refresh_token_ttl)
    }

    // ---- authentication ----

    /// Who the bearer of `credential` (an access token or an API key) is.
    pub async fn authenticate(&self, credential: &str) -> Result<Principal, AuthError> {
        if credential.starts_with(API_KEY_PREFIX) {
            return self.authenticate_key(credential).await;
        }
        let (claims, expires_at) = self.access.check(credential).map_err(|err| match err {
            AccessError::Expired => AuthError::TokenExpired,
            AccessError::BadSignature => AuthError::InvalidToken("signature does not match"),
            AccessError::Malformed => AuthError::InvalidToken("not a kai access token or API key"),
        })?;
        let (session, record) = self
            .store
            .session_with_user(claims.session_id)
            .await?
            .ok_or_else(|| AuthError::SessionEnded("expired".into()))?;
        if session.user_id != claims.user_id {
            return Err(AuthError::InvalidToken("token does not match its session"));
        }
        if let Some(reason) = session
            .revoked_at
            .map(|_| session.revoked_reason.unwrap_or_else(|| "revoked".into()))
        {
            return Err(AuthError::SessionEnded(reason));
        }
        if record.user.disabled {
            return Err(AuthError::AccountDisabled);
        }
        let scopes = record.user.role.allowed_scopes();
        Ok(Principal {
            user: record.user,
            credential: Credential::Session(session.id),
            scopes,
            expires_at: Some(expires_at),
        })
    }

    async fn authenticate_key(&self, key: &str) -> Result<Principal, AuthError> {
        if !secrets::well_formed(key, API_KEY_PREFIX) {
            return Err(AuthError::InvalidApiKey);
        }
        let digest = secrets::digest(key);
        let CachedKey { api_key, user } = match self.keys.get(&digest) {
            Some(cached) => cached,
            None => {
                let (api_key, record) = self
                    .store
                    .api_key_by_hash(&digest)
                    .await?
                    .ok_or(AuthError::InvalidApiKey)?;
                let found = CachedKey {
                    api_key,
                    user: record.user,
                };
                self.keys.put(digest, found.clone());
                found
            }
        };
        if api_key.revoked_at.is_some() {
            return Err(AuthError::ApiKeyRevoked(api_key.prefix));
        }
        let now = OffsetDateTime::now_utc();
        if api_key.expires_at.is_some_and(|at| at <= now) {
            return Err(AuthError::ApiKeyExpired(api_key.prefix));
        }
        if user.disabled {
            return Err(AuthError::AccountDisabled);
        }
        let stale_before = now - KEY_USE_RESOLUTION;
        if api_key.last_used_at.is_none_or(|at| at < stale_before) {
            match self
                .store
                .touch_api_key(api_key.id, now, stale_before)
                .await
            {
                Ok(_) => self.keys.touched(&digest, now),
                // Bookkeeping: a busy database must not turn a valid request into an error.
                Err(err) => tracing::warn!(error = %err, "could not record the API key's use"),
            }
        }
        let scopes = api_key.scopes.intersection(user.role.allowed_scopes());
        Ok(Principal {
            user,
            credential: Credential::ApiKey(api_key.id),
            scopes,
            expires_at: api_key.expires_at,
        })
    }

    // ---- API keys ----

    /// Creates an API key for the principal's user and returns it with the key itself, which is
    /// never available again. Only a login session may create keys, so a leaked key cannot mint
    /// others that outlive it; and a key cannot carry a scope its creator lacks.
    pub async fn create_api_key(
        &self,
        principal: &Principal,
        name: &str,
        scopes: Scopes,
        expires_at: Option<OffsetDateTime>,
    ) -> Result<(ApiKey, String), AuthError> {
        require_session(principal, "creating an API key")?;
        let name = name.trim();
        if name.is_empty() || name.chars().count() > MAX_KEY_NAME_LEN {
            return Err(InvalidInput::new(
                "name",
                format!("must be 1 to {MAX_KEY_NAME_LEN} characters long"),
            )
            .into());
        }
        if name.chars().any(char::is_control) {
            return Err(InvalidInput::new("name", "must not contain control characters").into());
        }
        if scopes.is_empty() {
            return Err(InvalidInput::new(
                "scopes",
                "give at least one scope: `read`, `write` or `admin`",
            )
            .into());
        }
        if let Some(missing) = scopes
            .iter()
            .find(|scope| !principal.scopes().contains(*scope))
        {
            return Err(AuthError::Forbidden(format!(
                "cannot grant the `{missing}` scope, which this credential does not have"
            )));
        }
        if expires_at.is_some_and(|at| at <= OffsetDateTime::now_utc()) {
            return Err(InvalidInput::new("expires_at", "must be in the future").into());
        }
        let key = secrets::generate(API_KEY_PREFIX);
        let stored = self
            .store
            .create_api_key(&NewApiKey {
                user_id: principal.user.id,
                name: name.to_owned(),
                prefix: secrets::shown_prefix(&key),
                key_hash: secrets::digest(&key),
                scopes,
                expires_at,
            })
            .await?;
        Ok((stored, key))
    }

    /// The user's keys.
    pub async fn api_keys(&self, user_id: UserId) -> Result<Vec<ApiKey>, AuthError> {
        Ok(self.store.api_keys_of(user_id).await?)
    }

    /// One of the user's keys; another user's is not found.
    pub async fn api_key(&self, user_id: UserId, id: ApiKeyId) -> Result<ApiKey, AuthError> {
        self.store
            .api_key_of(user_id, id)
            .await?
            .ok_or(AuthError::NotFound("API key"))
    }

    /// Revokes one of the user's keys; another user's is not found.
    pub async fn revoke_api_key(&self, user_id: UserId, id: ApiKeyId) -> Result<ApiKey, AuthError> {
        let revoked = self
            .store
            .revoke_api_key(user_id, id)
            .await?
            .ok_or(AuthError::NotFound("API key"))?;
        self.keys.forget_key(id);
        Ok(revoked)
    }
}

/// `now` plus `duration`, saturating at the largest time representable rather than panicking
/// on an absurd configured duration.
fn later(now: OffsetDateTime, duration: Duration) -> OffsetDateTime {
    time::Duration::try_from(duration)
        .ok()
        .and_then(|duration| now.checked_add(duration))
        .unwrap_or(time::macros::datetime!(9999-12-31 23:59:59 UTC))
}

/// Succeeds only for a credential from a password login: some operations must not be within
/// reach of a key that leaked from a script.
fn require_session(principal: &Principal, what: &str) -> Result<(), AuthError> {
    match principal.credential {
        Credential::Session(_) => Ok(()),
        Credential::ApiKey(_) => Err(AuthError::Forbidden(format!(
            "{what} needs a login session; API keys cannot do it"
        ))),
    }
}

fn to_std(duration: time::Duration) -> Duration {
    Duration::try_from(duration).unwrap_or_default()
}

#[cfg(test)]
mod tests;
