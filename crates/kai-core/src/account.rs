//! Accounts: users, their roles, the scopes a credential carries, and API keys.

use std::fmt;
use std::str::FromStr;

use time::OffsetDateTime;

use crate::{ApiKeyId, UserId};

/// Raw input that failed validation: which field, and a sentence saying what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidInput {
    /// The name of the offending field, as the caller spelled it.
    pub field: &'static str,
    /// What is wrong and what would be accepted.
    pub message: String,
}

impl InvalidInput {
    /// An error for `field` with a message that says what to fix.
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// What a user may do. Admins manage other users; users manage only what they own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Manages users and the node.
    Admin,
    /// Owns their own resources and nothing else.
    User,
}

impl Role {
    /// The stable lower-case name used in storage, configuration and the API.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
        }
    }

    /// Every scope a credential of this role may hold.
    #[must_use]
    pub fn allowed_scopes(self) -> Scopes {
        match self {
            Role::Admin => Scopes::ALL,
            Role::User => Scopes::from_iter([Scope::Read, Scope::Write]),
        }
    }
}

impl FromStr for Role {
    type Err = InvalidInput;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Role::Admin),
            "user" => Ok(Role::User),
            other => Err(InvalidInput::new(
                "role",
                format!("unknown role `{other}`; expected `admin` or `user`"),
            )),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One permission a credential carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Read what the user owns.
    Read,
    /// Create, change and delete what the user owns.
    Write,
    /// Manage users and the node; only effective for admins.
    Admin,
}

impl Scope {
    /// Every scope, in display order.
    pub const ALL: [Scope; 3] = [Scope::Read, Scope::Write, Scope::Admin];

    /// The stable lower-case name used in storage and the API.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }

    fn bit(self) -> u8 {
        match self {
            Scope::Read => 1,
            Scope::Write => 2,
            Scope::Admin => 4,
        }
    }
}

impl FromStr for Scope {
    type Err = InvalidInput;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| {
                InvalidInput::new(
                    "scopes",
                    format!("unknown scope `{s}`; expected `read`, `write` or `admin`"),
                )
            })
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of scopes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Scopes(u8);

impl Scopes {
    /// No scope at all.
    pub const NONE: Scopes = Scopes(0);
    /// Every scope.
    pub const ALL: Scopes = Scopes(1 | 2 | 4);

    /// Whether `scope` is in the set.
    #[must_use]
    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    /// Whether every scope of `other` is in this set.
    #[must_use]
    pub fn is_superset(self, other: Scopes) -> bool {
        self.0 & other.0 == other.0
    }

    /// The scopes in both sets.
    #[must_use]
    pub fn intersection(self, other: Scopes) -> Scopes {
        Scopes(self.0 & other.0)
    }

    /// Whether the set is empty.
    #[must_use]
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The scopes in display order.
    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL
            .into_iter()
            .filter(move |scope| self.contains(*scope))
    }

    /// Parses scope names, rejecting unknown ones and an empty list.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Scopes, InvalidInput> {
        let mut scopes = Scopes::NONE;
        for name in names {
            scopes = scopes.with(name.trim().parse()?);
        }
        if scopes.is_empty() {
            return Err(InvalidInput::new(
                "scopes",
                "give at least one scope: `read`, `write` or `admin`",
            ));
        }
        Ok(scopes)
    }

    /// The set with `scope` added.
    #[must_use]
    pub fn with(self, scope: Scope) -> Scopes {
        Scopes(self.0 | scope.bit())
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        iter.into_iter().fold(Scopes::NONE, Scopes::with)
    }
}

impl fmt::Display for Scopes {
    /// Space-separated, as in OAuth 2.0's `scope` parameter.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for scope in self.iter() {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(scope.as_str())?;
            first = false;
        }
        Ok(())
    }
}

impl fmt::Debug for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// A validated user name: 2 to 64 characters of ASCII letters, digits, `.`, `_` and `-`,
/// starting with a letter or digit. Names are case-insensitive and kept in lower case, so
/// `Alice` and `alice` are the same account.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Username(String);

impl Username {
    /// The name, in lower case.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Username {
    type Err = InvalidInput;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let name = raw.trim();
        let problem = if name.len() < 2 || name.len() > 64 {
            Some("must be 2 to 64 characters long")
        } else if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            Some("may only contain ASCII letters, digits, `.`, `_` and `-`")
        } else if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            Some("must start with a letter or a digit")
        } else {
            None
        };
        match problem {
            Some(problem) => Err(InvalidInput::new("username", problem)),
            None => Ok(Username(name.to_ascii_lowercase())),
        }
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// The shortest password kai accepts, in characters.
pub const MIN_PASSWORD_LEN: usize = 8;
/// The longest password kai accepts, in bytes: long enough for any passphrase, short enough that
/// hashing it cannot be used to exhaust the server.
pub const MAX_PASSWORD_LEN: usize = 1024;

/// Checks a new password against kai's policy: at least [`MIN_PASSWORD_LEN`] characters, at
/// most [`MAX_PASSWORD_LEN`] bytes. Length is what makes a password strong; kai imposes no
/// character-class rules (NIST SP 800-63B).
pub fn validate_password(password: &str) -> Result<(), InvalidInput> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(InvalidInput::new(
            "password",
            format!("must be at least {MIN_PASSWORD_LEN} characters long"),
        ));
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(InvalidInput::new(
            "password",
            format!("must be at most {MAX_PASSWORD_LEN} bytes long"),
        ));
    }
    Ok(())
}

/// A user account. The password hash is deliberately absent: it never leaves `kai-store` and
/// `kai-auth`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The account's identifier.
    pub id: UserId,
    /// The unique, lower-case user name.
    pub username: Username,
    /// What the user may do.
    pub role: Role,
    /// A disabled user cannot log in, and their tokens and keys stop working.
    pub disabled: bool,
    /// When the account was created.
    pub created_at: OffsetDateTime,
    /// When the account last changed.
    pub updated_at: OffsetDateTime,
    /// When the user last logged in with a password.
    pub last_login_at: Option<OffsetDateTime>,
}

/// An API key's metadata. The key itself is shown once, at creation; only its SHA-256 hash is
/// kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// The key's identifier.
    pub id: ApiKeyId,
    /// The user the key acts for.
    pub user_id: UserId,
    /// A name the owner chose to recognise the key.
    pub name: String,
    /// The first characters of the key, enough to recognise it in a list.
    pub prefix: String,
    /// What the key may do (further limited by the owner's role).
    pub scopes: Scopes,
    /// When the key was created.
    pub created_at: OffsetDateTime,
    /// When the key stops working, if ever.
    pub expires_at: Option<OffsetDateTime>,
    /// When the key was last used, to within a minute.
    pub last_used_at: Option<OffsetDateTime>,
    /// When the key was revoked, if it was.
    pub revoked_at: Option<OffsetDateTime>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_normalised_and_checked() {
        assert_eq!("Alice".parse::<Username>().unwrap().as_str(), "alice");
        assert_eq!(
            " bob.smith-2 ".parse::<Username>().unwrap().as_str(),
            "bob.smith-2"
        );
        for bad in ["", "a", "-lead", "white space", "naïve", &"x".repeat(65)] {
            let err = bad.parse::<Username>().unwrap_err();
            assert_eq!(err.field, "username", "{bad:?}");
        }
    }

    #[test]
    fn scopes_parse_and_display() {
        let scopes = Scopes::parse(["write", "read"]).unwrap();
        assert_eq!(scopes.to_string(), "read write");
        assert!(scopes.contains(Scope::Read));
        assert!(!scopes.contains(Scope::Admin));
        assert!(Scopes::ALL.is_superset(scopes));
        assert!(!scopes.is_superset(Scopes::ALL));
        assert!(
            Scopes::parse(["root"])
                .unwrap_err()
                .message
                .contains("`root`")
        );
        assert!(Scopes::parse([]).is_err());
    }

    #[test]
    fn roles_limit_scopes() {
        assert!(!Role::User.allowed_scopes().contains(Scope::Admin));
        assert_eq!(Role::Admin.allowed_scopes(), Scopes::ALL);
        assert_eq!("admin".parse::<Role>().unwrap(), Role::Admin);
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn password_policy() {
        assert!(validate_password("short").is_err());
        assert!(validate_password("long enough").is_ok());
        assert!(validate_password(&"x".repeat(MAX_PASSWORD_LEN + 1)).is_err());
        // Length is counted in characters, so a short password of wide characters is refused.
        assert!(validate_password("ééééééé").is_err());
    }
}
