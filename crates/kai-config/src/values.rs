//! Value types with their own parsing and redaction rules.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What every secret looks like when printed.
pub const REDACTED: &str = "<redacted>";

/// A configuration value that must never be shown: `Debug`, `Display` and serialisation all
/// print [`REDACTED`]. Read it with [`Secret::expose`], at the one place that needs it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    #[must_use]
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// The secret itself.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(REDACTED)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret)
    }
}

/// Which database engine a [`DatabaseUrl`] names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseKind {
    /// An embedded SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// A database URL: `sqlite://PATH` or `postgres://USER:PASSWORD@HOST/DB`. Its password is a
/// secret: `Debug`, `Display` and serialisation show the URL with the password (and any
/// `password` query parameter) replaced by [`REDACTED`].
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    raw: String,
    kind: DatabaseKind,
}

impl DatabaseUrl {
    /// Parses and checks a URL, saying what is wrong with it.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        let kind = if raw.starts_with("sqlite:") {
            DatabaseKind::Sqlite
        } else if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            url::Url::parse(raw).map_err(|err| {
                format!(
                    "not a valid PostgreSQL URL ({err}); expected postgres://USER:PASSWORD@HOST:PORT/DATABASE"
                )
            })?;
            DatabaseKind::Postgres
        } else {
            return Err(format!(
                "unsupported database URL `{}`; expected sqlite://PATH or postgres://USER:PASSWORD@HOST/DATABASE",
                redact(raw)
            ));
        };
        Ok(Self {
            raw: raw.to_owned(),
            kind,
        })
    }

    /// The default: a SQLite file `kai.db` inside `data_dir`.
    #[must_use]
    pub fn sqlite_in(data_dir: &Path) -> Self {
        Self {
            raw: format!("sqlite://{}", data_dir.join("kai.db").display()),
            kind: DatabaseKind::Sqlite,
        }
    }

    /// Which engine the URL names.
    #[must_use]
    pub fn kind(&self) -> DatabaseKind {
        self.kind
    }

    /// The URL with its password, for the one place that connects.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.raw
    }

    /// The URL with any password replaced by [`REDACTED`]: safe for logs and error messages.
    #[must_use]
    pub fn redacted(&self) -> String {
        redact(&self.raw)
    }
}

fn redact(raw: &str) -> String {
    let Ok(mut url) = url::Url::parse(raw) else {
        // Not a URL we can take apart: show only the scheme, in case the rest holds a secret.
        return match raw.split_once(':') {
            Some((scheme, _)) => format!("{scheme}:{REDACTED}"),
            None => REDACTED.to_owned(),
        };
    };
    if url.password().is_some() {
        // Only fails for URLs that cannot have a password, which this one has.
        let _ = url.set_password(Some(REDACTED));
    }
    if url
        .query_pairs()
        .any(|(key, _)| key.eq_ignore_ascii_case("password"))
    {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(key, value)| {
                let value = if key.eq_ignore_ascii_case("password") {
                    REDACTED.into()
                } else {
                    value.into_owned()
                };
                (key.into_owned(), value)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    // `url` percent-encodes the marker's angle brackets; undo that so people can read it.
    url.to_string().replace("%3Credacted%3E", REDACTED)
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl Serialize for DatabaseUrl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.redacted())
    }
}

impl<'de> Deserialize<'de> for DatabaseUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        DatabaseUrl::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// Durations written the way people write them: `30s`, `15m`, `1h 30m`, `30d`.
pub(crate) mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(
        value: &Duration,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&humantime::format_duration(*value).to_string())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        let value = humantime::parse_duration(&text).map_err(|err| {
            serde::de::Error::custom(format!(
                "`{text}` is not a duration ({err}); write it like `30s`, `15m` or `2h`"
            ))
        })?;
        if value.is_zero() {
            return Err(serde::de::Error::custom("must be longer than zero"));
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_passwords_never_show() {
        let url =
            DatabaseUrl::parse("postgres://kai:hunter2@db.local:5432/kai?sslmode=require").unwrap();
        assert_eq!(url.kind(), DatabaseKind::Postgres);
        let shown = format!("{url} {url:?} {}", url.redacted());
        assert!(!shown.contains("hunter2"), "{shown}");
        assert_eq!(
            url.redacted(),
            "postgres://kai:<redacted>@db.local:5432/kai?sslmode=require"
        );
        assert!(url.expose().contains("hunter2"));
    }

    #[test]
    fn password_query_parameters_are_redacted() {
        let url = DatabaseUrl::parse("postgres://db.local/kai?user=kai&password=hunter2").unwrap();
        assert!(!url.redacted().contains("hunter2"), "{}", url.redacted());
    }

    #[test]
    fn unsupported_urls_are_refused_without_echoing_secrets() {
        let err = DatabaseUrl::parse("mysql://root:hunter2@localhost/kai").unwrap_err();
        assert!(err.contains("unsupported database URL"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        // A socket directory instead of a host is a valid PostgreSQL URL.
        assert!(DatabaseUrl::parse("postgres:///kai?host=/run/postgresql").is_ok());
    }

    #[test]
    fn secrets_never_show() {
        let secret = Secret::new("hunter2".into());
        assert_eq!(format!("{secret:?}"), REDACTED);
        assert_eq!(secret.expose(), "hunter2");
    }
}
