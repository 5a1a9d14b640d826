//! Users, logins, tokens and API keys on the wire.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

/// A password in a request. Its `Debug` is redacted, so a logged request never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// The password itself.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Password {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl<'de> Deserialize<'de> for Password {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Password)
    }
}

impl Serialize for Password {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// `POST /api/v1/auth/login`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// The user name (case-insensitive).
    #[schema(example = "alice")]
    pub username: String,
    /// The password.
    #[schema(value_type = String, format = Password)]
    pub password: Password,
    /// For browsers: keep the refresh token in an httpOnly cookie (`kai_refresh`, with a
    /// `kai_csrf` cookie whose value goes back as `X-CSRF-Token`) instead of the body, where
    /// page scripts could read it.
    #[serde(default)]
    pub cookie: bool,
}

/// `POST /api/v1/auth/refresh`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The refresh token from the last login or refresh; it is spent by this call. Left out,
    /// the `kai_refresh` cookie is used, with the `X-CSRF-Token` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Password)]
    pub refresh_token: Option<Password>,
}

/// `POST /api/v1/auth/logout`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LogoutRequest {
    /// A refresh token of the session to end. Left out, the `kai_refresh` cookie's session
    /// ends, with the `X-CSRF-Token` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Password)]
    pub refresh_token: Option<Password>,
}

/// The credentials a login or refresh returns. `Debug` shows neither token.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    /// Send as `Authorization: Bearer <access_token>`.
    pub access_token: String,
    /// Exchange at `/api/v1/auth/refresh` for the next pair; usable once. Absent when it went
    /// into the `kai_refresh` cookie instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Always `Bearer`.
    #[schema(example = "Bearer")]
    pub token_type: String,
    /// Seconds until the access token expires.
    #[schema(example = 900)]
    pub expires_in: u64,
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"<redacted>")
            .field("refresh_token", &"<redacted>")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// `POST /api/v1/me/password`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    /// The password now.
    #[schema(value_type = String, format = Password)]
    pub current_password: Password,
    /// The new password: at least 8 characters.
    #[schema(value_type = String, format = Password)]
    pub new_password: Password,
}

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Manages users and the node.
    Admin,
    /// Owns their own resources.
    User,
}

impl From<kai_core::Role> for Role {
    fn from(role: kai_core::Role) -> Self {
        match role {
            kai_core::Role::Admin => Role::Admin,
            kai_core::Role::User => Role::User,
        }
    }
}

impl From<Role> for kai_core::Role {
    fn from(role: Role) -> Self {
        match role {
            Role::Admin => kai_core::Role::Admin,
            Role::User => kai_core::Role::User,
        }
    }
}

/// A permission carried by a credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Read what the user owns.
    Read,
    /// Create, change and delete what the user owns.
    Write,
    /// Manage users and the node (admins only).
    Admin,
}

impl From<kai_core::Scope> for Scope {
    fn from(scope: kai_core::Scope) -> Self {
        match scope {
            kai_core::Scope::Read => Scope::Read,
            kai_core::Scope::Write => Scope::Write,
            kai_core::Scope::Admin => Scope::Admin,
        }
    }
}

impl From<Scope> for kai_core::Scope {
    fn from(scope: Scope) -> Self {
        match scope {
            Scope::Read => kai_core::Scope::Read,
            Scope::Write => kai_core::Scope::Write,
            Scope::Admin => kai_core::Scope::Admin,
        }
    }
}

fn scopes(set: kai_core::Scopes) -> Vec<Scope> {
    set.iter().map(Scope::from).collect()
}

/// A user account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct User {
    /// The account's id.
    pub id: Uuid,
    /// The unique, lower-case name.
    #[schema(example = "alice")]
    pub username: String,
    /// What the user may do.
    pub role: Role,
    /// A disabled user can neither log in nor use their tokens and keys.
    pub disabled: bool,
    /// When the account was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When the account last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// When the user last logged in with a password.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_login_at: Option<OffsetDateTime>,
}

impl From<kai_core::User> for User {
    fn from(user: kai_core::User) -> Self {
        User {
            id: user.id.as_uuid(),
            username: user.username.to_string(),
            role: user.role.into(),
            disabled: user.disabled,
            created_at: user.created_at,
            updated_at: user.updated_at,
            last_login_at: user.last_login_at,
        }
    }
}

/// How the current request authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// An access token from a password login.
    Session,
    /// An API key.
    ApiKey,
}

/// The credential behind the current request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Credential {
    /// Session or API key.
    pub method: AuthMethod,
    /// The session's or the key's id.
    pub id: Uuid,
    /// The scopes in effect.
    pub scopes: Vec<Scope>,
}

/// `GET /api/v1/me`: the current user and the credential in use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Me {
    /// The user.
    #[serde(flatten)]
    pub user: User,
    /// The credential.
    pub auth: Credential,
}

impl Me {
    /// The user behind a credential, and the scopes in effect.
    #[must_use]
    pub fn new(
        user: kai_core::User,
        method: AuthMethod,
        id: Uuid,
        scopes_in_effect: kai_core::Scopes,
    ) -> Self {
        Me {
            user: user.into(),
            auth: Credential {
                method,
                id,
                scopes: scopes(scopes_in_effect),
            },
        }
    }
}

/// `POST /api/v1/users`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    /// 2 to 64 ASCII letters, digits, `.`, `_` or `-`, starting with a letter or digit.
    #[schema(example = "bob")]
    pub username: String,
    /// At least 8 characters.
    #[schema(value_type = String, format = Password)]
    pub password: Password,
    /// Defaults to `user`.
    #[serde(default)]
    pub role: Option<Role>,
}

/// `PATCH /api/v1/users/{id}`: fields left out stay as they are.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserRequest {
    /// A new role.
    #[serde(default)]
    pub role: Option<Role>,
    /// Disable (ending every session) or re-enable the account.
    #[serde(default)]
    pub disabled: Option<bool>,
    /// A new password (ending every session).
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Password)]
    pub password: Option<Password>,
}

/// An API key's metadata; the key itself is only ever shown in [`CreatedApiKey`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApiKey {
    /// The key's id.
    pub id: Uuid,
    /// The owner's name for it.
    #[schema(example = "laptop backup script")]
    pub name: String,
    /// The key's first characters, to recognise it.
    #[schema(example = "kai_Xy7Qp2Lm")]
    pub prefix: String,
    /// What it may do (further limited by the owner's role).
    pub scopes: Vec<Scope>,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it stops working, if ever.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// When it was last used, to within a minute.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    /// When it was revoked, if it was.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

impl From<kai_core::ApiKey> for ApiKey {
    fn from(key: kai_core::ApiKey) -> Self {
        ApiKey {
            id: key.id.as_uuid(),
            name: key.name,
            prefix: key.prefix,
            scopes: scopes(key.scopes),
            created_at: key.created_at,
            expires_at: key.expires_at,
            last_used_at: key.last_used_at,
            revoked_at: key.revoked_at,
        }
    }
}

/// `POST /api/v1/keys`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKeyRequest {
    /// A name to recognise the key by: 1 to 100 characters.
    #[schema(example = "laptop backup script")]
    pub name: String,
    /// What the key may do; at most what the creating credential may.
    pub scopes: Vec<Scope>,
    /// When the key stops working (RFC 3339); never, if left out.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
}

/// A new API key: the only time the key itself is shown. `Debug` hides it.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedApiKey {
    /// The key, `kai_…`. Store it now: kai keeps only its hash.
    pub key: String,
    /// Its metadata.
    #[serde(flatten)]
    pub api_key: ApiKey,
}

impl fmt::Debug for CreatedApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreatedApiKey")
            .field("key", &"<redacted>")
            .field("api_key", &self.api_key)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show_in_debug() {
        let request: LoginRequest =
            serde_json::from_str(r#"{"username":"a","password":"hunter2"}"#).unwrap();
        assert!(!format!("{request:?}").contains("hunter2"));
        assert_eq!(request.password.expose(), "hunter2");
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err =
            serde_json::from_str::<LoginRequest>(r#"{"usrname":"a","password":"p"}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field `usrname`"), "{err}");
    }

    #[test]
    fn created_keys_flatten_their_metadata() {
        let key = CreatedApiKey {
            key: "kai_x".into(),
            api_key: ApiKey {
                id: Uuid::nil(),
                name: "n".into(),
                prefix: "kai_x".into(),
                scopes: vec![Scope::Read],
                created_at: OffsetDateTime::UNIX_EPOCH,
                expires_at: None,
                last_used_at: None,
                revoked_at: None,
            },
        };
        let debug = format!(
            "{:?}",
            CreatedApiKey {
                key: "kai_secretvalue".into(),
                ..key.clone()
            }
        );
        assert!(!debug.contains("secretvalue"), "{debug}");
        let json = serde_json::to_value(&key).unwrap();
        assert_eq!(json["key"], "kai_x");
        assert_eq!(json["scopes"][0], "read");
        assert_eq!(json["created_at"], "1970-01-01T00:00:00Z");
    }
}
