//! kai's configuration: one typed [`Settings`] struct, built from four layers, each overriding
//! the one before:
//!
//! 1. built-in defaults, which work with no file at all;
//! 2. one TOML file: `--config PATH` (or `KAI_CONFIG`), else `$XDG_CONFIG_HOME/kai/kai.toml` if
//!    it exists;
//! 3. `KAI_…` environment variables, one per key ([`KEYS`]);
//! 4. command-line flags.
//!
//! Anything unknown or ill-typed is refused with one line that names the key and where it came
//! from. The process environment is passed in as an [`Environment`], never read behind the
//! caller's back, so tests can load configurations side by side.

mod gateway;
mod keys;
mod settings;
mod values;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

pub use bytesize::ByteSize;
pub use gateway::{
    CredentialRef, DeploymentSettings, GatewaySettings, LOCAL_PROVIDER, ModelSettings,
    PriceSettings, ProviderKind, ProviderSettings, Strategy, VaultSecrets, check_model, check_name,
    check_price, check_provider,
};
pub use keys::{KEYS, Key, KeyKind, find as find_key, reference_markdown};
pub use settings::{
    AgentSettings, AuditSettings, AuthSettings, ClientSettings, DatabaseSettings, Fusion,
    HttpSettings, KnowledgeSettings, LocalSettings, LogFormat, LogSettings, RealtimeSettings,
    SearchIndex, Settings, VaultSettings,
};
pub use values::{DatabaseKind, DatabaseUrl, REDACTED, Secret};

/// The environment variable that names the configuration file, like `--config`.
pub const CONFIG_ENV_VAR: &str = "KAI_CONFIG";

/// `KAI_` variables with these prefixes belong to kai's own tooling (test suite, CI, benchmarks)
/// and are not configuration keys.
const TOOLING_PREFIXES: [&str; 3] = ["KAI_TEST_", "KAI_CI_", "KAI_BENCH_"];

/// The sections of the file, each a TOML table.
const SECTIONS: [&str; 12] = [
    "log",
    "database",
    "http",
    "auth",
    "gateway",
    "local",
    "vault",
    "audit",
    "knowledge",
    "agents",
    "realtime",
    "client",
];

/// The lists of tables in the file, taken whole: `[[providers]]`, `[[models]]`, `[[prices]]`,
/// `[[mcp_servers]]`.
const LISTS: [&str; 4] = ["providers", "models", "prices", "mcp_servers"];

/// A snapshot of environment variables.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    vars: BTreeMap<String, String>,
}

impl Environment {
    /// The current process's variables (those that are valid Unicode).
    #[must_use]
    pub fn from_process() -> Self {
        std::env::vars().collect()
    }

    /// The value of `name`, if set and not empty.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|value| !value.is_empty())
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Environment {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self {
            vars: iter
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }
}

/// A value given on the command line, which overrides every other layer.
#[derive(Debug, Clone)]
pub struct Flag {
    /// The key it sets, e.g. `bind`.
    pub key: &'static str,
    /// The flag as the user typed it, e.g. `--bind`, for error messages.
    pub flag: &'static str,
    /// The value, as text.
    pub value: String,
}

/// Where configuration comes from.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// An explicit file (`--config`); it must exist.
    pub config_file: Option<PathBuf>,
    /// The process environment.
    pub env: Environment,
    /// Flags from the command line.
    pub flags: Vec<Flag>,
}

/// The effective settings and the file they were read from, if any.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The settings.
    pub settings: Settings,
    /// The configuration file that was read, if one was.
    pub file: Option<PathBuf>,
}

/// Where a value came from, so an error can point at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The built-in default.
    Default,
    /// The configuration file.
    File(PathBuf),
    /// An environment variable.
    Env(String),
    /// A command-line flag.
    Flag(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("the built-in default"),
            Origin::File(path) => write!(f, "{}", path.display()),
            Origin::Env(name) => write!(f, "environment variable {name}"),
            Origin::Flag(flag) => write!(f, "flag {flag}"),
        }
    }
}

/// Why configuration could not be loaded. Each displays as one line that names the key, the
/// file or the variable at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read configuration file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("{}:{line}:{column}: invalid TOML: {message}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What the parser said.
        message: String,
    },
    /// A key or variable that kai does not know.
    #[error("{}{}", unknown_what(key, origin), suggestion.as_ref().map(|s| format!("; did you mean `{s}`?")).unwrap_or_default())]
    UnknownKey {
        /// The key (or variable) as written.
        key: String,
        /// Where it was written.
        origin: Origin,
        /// The closest known key.
        suggestion: Option<String>,
    },
    /// A known key with a value of the wrong type or out of range.
    #[error("invalid configuration: `{key}` from {origin}: {message}")]
    Invalid {
        /// The key.
        key: String,
        /// Where the bad value came from.
        origin: Origin,
        /// What is wrong and what would be accepted.
        message: String,
    },
    /// No data directory could be chosen.
    #[error(
        "cannot choose a data directory: neither HOME nor XDG_DATA_HOME is set; set KAI_DATA_DIR"
    )]
    NoDataDir,
}

fn unknown_what(key: &str, origin: &Origin) -> String {
    match origin {
        Origin::Env(_) => format!("unknown environment variable `{key}`"),
        origin => format!("unknown configuration key `{key}` in {origin}"),
    }
}

/// Loads the effective settings from `sources`.
pub fn load(sources: &Sources) -> Result<Loaded, ConfigError> {
    let env = &sources.env;
    let file = config_file(sources)?;

    let mut overlay: Vec<(String, toml::Value, Origin)> = Vec::new();
    if let Some(path) = &file {
        let table = read_file(path)?;
        let mut leaves = Vec::new();
        flatten(&table, "", path, &mut leaves)?;
        overlay.extend(
            leaves
                .into_iter()
                .map(|(key, value)| (key, value, Origin::File(path.clone()))),
        );
    }
    for (name, value) in &env.vars {
        let Some(suffix) = name.strip_prefix("KAI_") else {
            continue;
        };
        // An empty variable counts as unset, as `Environment::get` has it everywhere.
        if value.trim().is_empty() {
            continue;
        }
        if name == CONFIG_ENV_VAR
            || suffix.is_empty()
            || TOOLING_PREFIXES.iter().any(|p| name.starts_with(p))
        {
            continue;
        }
        let origin = Origin::Env(name.clone());
        let Some(key) = KEYS.iter().find(|key| key.env_var() == *name) else {
            return Err(ConfigError::UnknownKey {
                key: name.clone(),
                suggestion: keys::closest(name, KEYS.iter().map(Key::env_var)),
                origin,
            });
        };
        overlay.push((
            key.path.to_owned(),
            text_value(key, value, &origin)?,
            origin,
        ));
    }
    for flag in &sources.flags {
        let origin = Origin::Flag(flag.flag);
        let key = keys::find(flag.key).ok_or_else(|| ConfigError::UnknownKey {
            key: flag.key.to_owned(),
            origin: origin.clone(),
            suggestion: None,
        })?;
        overlay.push((
            key.path.to_owned(),
            text_value(key, &flag.value, &origin)?,
            origin,
        ));
    }

    // The data directory decides other defaults (the SQLite path), so it is settled first.
    let data_dir = match overlay.iter().rev().find(|(key, ..)| key == "data_dir") {
        Some((_, toml::Value::String(dir), _)) => expand_home(dir, env),
        Some((_, other, origin)) => {
            return Err(ConfigError::Invalid {
                key: "data_dir".into(),
                origin: origin.clone(),
                message: format!("expected a path, found {}", other.type_str()),
            });
        }
        None => default_data_dir(env)?,
    };

    let mut merged =
        toml::Table::try_from(Settings::defaults(data_dir.clone())).map_err(|err| {
            ConfigError::Invalid {
                key: "(defaults)".into(),
                origin: Origin::Default,
                message: err.to_string(),
            }
        })?;
    let mut origins: HashMap<String, Origin> = HashMap::new();
    for (key, value, origin) in overlay {
        let value = match (key.as_str(), value) {
            ("data_dir", _) => toml::Value::String(data_dir.display().to_string()),
            (
                "local.models_dir" | "vault.key_file" | "vault.passphrase_file",
                toml::Value::String(dir),
            ) => toml::Value::String(expand_home(&dir, env).display().to_string()),
            (_, value) => value,
        };
        set_path(&mut merged, &key, value);
        origins.insert(key, origin);
    }

    let settings: Settings = serde_path_to_error::deserialize(merged).map_err(|err| {
        let key = err.path().to_string();
        let origin = origin_of(&origins, &key);
        ConfigError::Invalid {
            message: err.into_inner().message().to_owned(),
            key,
            origin,
        }
    })?;
    validate(&settings, &origins)?;
    Ok(Loaded { settings, file })
}

/// The file to read: `--config`/`KAI_CONFIG` (which must exist), else the XDG default if it
/// exists, else none.
fn config_file(sources: &Sources) -> Result<Option<PathBuf>, ConfigError> {
    let explicit = sources.config_file.clone().or_else(|| {
        sources
            .env
            .get(CONFIG_ENV_VAR)
            .map(|path| expand_home(path, &sources.env))
    });
    if let Some(path) = explicit {
        return Ok(Some(path));
    }
    let config_home = sources
        .env
        .get("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| {
            sources
                .env
                .get("HOME")
                .map(|home| Path::new(home).join(".config"))
        });
    Ok(config_home
        .map(|dir| dir.join("kai").join("kai.toml"))
        .filter(|path| path.is_file()))
}

fn default_data_dir(env: &Environment) -> Result<PathBuf, ConfigError> {
    env.get("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| {
            env.get("HOME")
                .map(|home| Path::new(home).join(".local/share"))
        })
        .map(|dir| dir.join("kai"))
        .ok_or(ConfigError::NoDataDir)
}

fn expand_home(path: &str, env: &Environment) -> PathBuf {
    match (path.strip_prefix("~/"), env.get("HOME")) {
        (Some(rest), Some(home)) => Path::new(home).join(rest),
        _ => PathBuf::from(path),
    }
}

fn read_file(path: &Path) -> Result<toml::Table, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    text.parse::<toml::Table>().map_err(|err| {
        let offset = err.span().map_or(0, |span| span.start);
        let before = &text[..offset.min(text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        ConfigError::Syntax {
            path: path.to_owned(),
            line,
            column,
            message: err.message().trim().to_owned(),
        }
    })
}

/// Lists the file's keys as dotted paths, refusing any that kai does not know.
fn flatten(
    table: &toml::Table,
    prefix: &str,
    file: &Path,
    out: &mut Vec<(String, toml::Value)>,
) -> Result<(), ConfigError> {
    for (name, value) in table {
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        match value {
            toml::Value::Table(inner) if prefix.is_empty() && SECTIONS.contains(&name.as_str()) => {
                flatten(inner, &path, file, out)?;
            }
            toml::Value::Array(_) if prefix.is_empty() && LISTS.contains(&name.as_str()) => {
                out.push((path, value.clone()));
            }
            _ if keys::find(&path).is_some() => out.push((path, value.clone())),
            _ => {
                let candidates = KEYS
                    .iter()
                    .map(|key| key.path.to_owned())
                    .chain(SECTIONS.iter().chain(&LISTS).map(|s| (*s).to_owned()));
                return Err(ConfigError::UnknownKey {
                    suggestion: keys::closest(&path, candidates),
                    key: path,
                    origin: Origin::File(file.to_owned()),
                });
            }
        }
    }
    Ok(())
}

/// Reads a value given as text according to its key's kind.
fn text_value(key: &Key, text: &str, origin: &Origin) -> Result<toml::Value, ConfigError> {
    let invalid = |message: String| ConfigError::Invalid {
        key: key.path.to_owned(),
        origin: origin.clone(),
        message,
    };
    let text = text.trim();
    match key.kind {
        KeyKind::Text => Ok(toml::Value::String(text.to_owned())),
        KeyKind::Integer => text
            .parse::<i64>()
            .map(toml::Value::Integer)
            .map_err(|_| invalid(format!("expected a whole number, found `{text}`"))),
        KeyKind::Bool => match text.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(toml::Value::Boolean(true)),
            "false" | "0" | "no" | "off" => Ok(toml::Value::Boolean(false)),
            _ => Err(invalid(format!("expected true or false, found `{text}`"))),
        },
    }
}

fn set_path(table: &mut toml::Table, path: &str, value: toml::Value) {
    match path.split_once('.') {
        Some((section, rest)) => {
            let entry = table
                .entry(section.to_owned())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(inner) = entry {
                set_path(inner, rest, value);
            }
        }
        None => {
            table.insert(path.to_owned(), value);
        }
    }
}

/// Where `key` came from; a list entry's field (`providers[0].kind`) came from its list.
fn origin_of(origins: &HashMap<String, Origin>, key: &str) -> Origin {
    origins
        .get(key)
        .or_else(|| {
            let list = key.split(['[', '.']).next().unwrap_or(key);
            origins.get(list)
        })
        .cloned()
        .unwrap_or(Origin::Default)
}

/// Checks that go beyond types.
fn validate(settings: &Settings, origins: &HashMap<String, Origin>) -> Result<(), ConfigError> {
    let invalid = |key: &str, message: &str| ConfigError::Invalid {
        key: key.to_owned(),
        origin: origin_of(origins, key),
        message: message.to_owned(),
    };
    if settings.database.max_connections == 0 {
        return Err(invalid("database.max_connections", "must be at least 1"));
    }
    if settings.auth.lockout_after == 0 {
        return Err(invalid("auth.lockout_after", "must be at least 1"));
    }
    if settings.auth.client_failure_limit == 0 {
        return Err(invalid("auth.client_failure_limit", "must be at least 1"));
    }
    if settings.vault.kdf_memory < ByteSize::mib(19) {
        return Err(invalid(
            "vault.kdf_memory",
            "must be at least 19MiB, OWASP's minimum for Argon2id",
        ));
    }
    if settings.vault.kdf_memory > ByteSize::gib(4) {
        return Err(invalid("vault.kdf_memory", "must be at most 4GiB"));
    }
    if settings.vault.kdf_iterations < 2 {
        return Err(invalid(
            "vault.kdf_iterations",
            "must be at least 2, OWASP's minimum for Argon2id",
        ));
    }
    if !(1..=16).contains(&settings.vault.kdf_parallelism) {
        return Err(invalid("vault.kdf_parallelism", "must be from 1 to 16"));
    }
    if settings.audit.checkpoint_entries == 0 {
        return Err(invalid("audit.checkpoint_entries", "must be at least 1"));
    }
    if settings.audit.checkpoint_interval.is_zero() {
        return Err(invalid(
            "audit.checkpoint_interval",
            "must be longer than zero",
        ));
    }
    if settings.http.max_body_size.as_u64() < 1024 {
        return Err(invalid("http.max_body_size", "must be at least 1 KiB"));
    }
    if settings.http.max_model_body_size.as_u64() < 1024 {
        return Err(invalid(
            "http.max_model_body_size",
            "must be at least 1 KiB",
        ));
    }
    if settings.http.header_read_timeout.is_zero() {
        return Err(invalid(
            "http.header_read_timeout",
            "must be longer than zero",
        ));
    }
    if let Err(message) = settings.http.cors_origin_list() {
        return Err(invalid("http.cors_origins", &message));
    }
    if settings.log.level.trim().is_empty() {
        return Err(invalid("log.level", "must name a level such as `info`"));
    }
    if settings.gateway.cooldown_after == 0 {
        return Err(invalid("gateway.cooldown_after", "must be at least 1"));
    }
    if settings.gateway.cooldown.is_zero() {
        return Err(invalid("gateway.cooldown", "must be longer than zero"));
    }
    if settings.gateway.retry_max_delay < settings.gateway.retry_base_delay {
        return Err(invalid(
            "gateway.retry_max_delay",
            "must be at least gateway.retry_base_delay",
        ));
    }
    gateway::validate(
        &settings.providers,
        &settings.models,
        &settings.prices,
        &origin_of(origins, "providers"),
    )?;
    if settings.local.threads > 1024 {
        return Err(invalid(
            "local.threads",
            "must be at most 1024 (0 means one per core)",
        ));
    }
    let knowledge = &settings.knowledge;
    if knowledge.embedding_model.trim().is_empty() {
        return Err(invalid(
            "knowledge.embedding_model",
            "must name a model, such as local/minilm",
        ));
    }
    if !(16..=8192).contains(&knowledge.chunk_tokens) {
        return Err(invalid("knowledge.chunk_tokens", "must be from 16 to 8192"));
    }
    if knowledge.chunk_overlap >= knowledge.chunk_tokens {
        return Err(invalid(
            "knowledge.chunk_overlap",
            "must be less than knowledge.chunk_tokens",
        ));
    }
    if knowledge.max_upload_size.as_u64() == 0 {
        return Err(invalid(
            "knowledge.max_upload_size",
            "must be at least 1 byte",
        ));
    }
    if knowledge.rrf_k == 0 {
        return Err(invalid("knowledge.rrf_k", "must be at least 1"));
    }
    if knowledge.keyword_weight_percent > 100 {
        return Err(invalid(
            "knowledge.keyword_weight_percent",
            "must be from 0 to 100",
        ));
    }
    if !(1..=64).contains(&knowledge.index_workers) {
        return Err(invalid("knowledge.index_workers", "must be from 1 to 64"));
    }
    if settings.agents.default_model.trim().is_empty() {
        return Err(invalid(
            "agents.default_model",
            "must name a model, such as local/smollm2",
        ));
    }
    if !(1..=256).contains(&settings.agents.run_workers) {
        return Err(invalid("agents.run_workers", "must be from 1 to 256"));
    }
    if settings.agents.consent_timeout < std::time::Duration::from_secs(1) {
        return Err(invalid("agents.consent_timeout", "must be at least 1s"));
    }
    if settings.local.max_concurrent == 0 {
        return Err(invalid("local.max_concurrent", "must be at least 1"));
    }
    for (key, url) in [
        ("local.pypi_index", &settings.local.pypi_index),
        ("local.huggingface_url", &settings.local.huggingface_url),
    ] {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid(key, "must be an http:// or https:// URL"));
        }
    }
    if let Some(url) = &settings.client.url
        && !matches!(url.scheme(), "http" | "https")
    {
        return Err(invalid(
            "client.url",
            "must be an http:// or https:// URL, such as http://127.0.0.1:8420",
        ));
    }
    if let Some(secret) = &settings.auth.token_secret
        && secret.expose().len() < 32
    {
        return Err(invalid(
            "auth.token_secret",
            "must be at least 32 bytes long; generate one with `openssl rand -base64 48`",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
