//! kai's storage seam. [`Store`] is the only way the rest of kai reaches the database, and this
//! crate is the only one that knows SQL.
//!
//! One API, two backends, picked from the database URL at start: SQLite (the default: WAL,
//! foreign keys, a busy timeout) and PostgreSQL. The two share their queries: both speak `$N`
//! placeholders and `RETURNING`, and the schemas keep to types both read the same way (text ids,
//! integer Unix-millisecond times, blobs). Each backend has its own migrations under
//! `migrations/`, applied at start and never edited once released.

mod agents;
mod api_keys;
mod artifacts;
mod audit;
mod catalog;
mod chunks;
mod conversations;
mod events;
mod jobs;
mod memories;
mod migrations;
mod notes;
mod row;
mod runs;
mod schedules;
mod search;
mod secrets;
mod sessions;
#[cfg(feature = "testing")]
pub mod testing;
mod usage;
mod users;
mod vault;

use kai_config::{DatabaseKind, DatabaseSettings, DatabaseUrl};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, PgPool, SqlitePool};
use std::str::FromStr;

pub use agents::{AgentRecord, ConsentGrant, NewAgent, NewPrompt, PromptRecord};
pub use api_keys::NewApiKey;
pub use artifacts::{
    ArtifactFilter, ArtifactRecord, ArtifactUpdate, CollectionRecord, IndexState, ItemFilter,
    ItemKind, NewArtifact, NewVersion, VersionRecord,
};
pub use audit::{AuditFilter, AuditHead, AuditRow, CheckpointRow};
pub use catalog::{CatalogEntry, CatalogKind};
pub use chunks::{ChunkHit, ChunkRecord, NewChunk, Searchable};
pub use conversations::{ConversationRecord, NewMessage, StoredMessage};
pub use events::{EVENTS_CHANNEL, EventListener, EventNotice, EventRecord, NewEvent};
pub use jobs::{FailOutcome, Job, JobState, NewJob};
pub use memories::{MemoryRecord, NewMemory};
pub use notes::{LinkTarget, NewNote, NoteLink, NoteRecord, NoteUpdate, NoteVersionRecord};
pub use runs::{
    NewRun, NewRunEvent, NewRunRequest, RunEventRecord, RunRecord, RunRequestKind,
    RunRequestRecord, RunRequestStatus, RunRequested, RunSave, RunStatus, ToolCallRecord,
};
pub use schedules::{
    FireOutcome, MissedRuns, NewSchedule, ScheduleFire, ScheduleRecord, ScheduledJob,
};
pub use sessions::{NewSession, RotateOutcome, Session};
pub use usage::USAGE_ROWS_PER_INSERT;
pub use users::{LoginAttempt, NewUser, UserRecord, UserUpdate};
pub use vault::{DataKeyRecord, KeyringRecord, RotatedKeyring, SecretRecord, UnlockerRecord};

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached at start.
    #[error("cannot connect to database {url}: {message}")]
    Connect {
        /// The URL, password redacted.
        url: String,
        /// Why, in the driver's words.
        message: String,
    },
    /// The schema could not be brought up to date.
    #[error("cannot migrate database {url}: {message}")]
    Migrate {
        /// The URL, password redacted.
        url: String,
        /// What went wrong and what to do.
        message: String,
    },
    /// A row with the same unique value (named here) already exists.
    #[error("{0} already exists")]
    Conflict(&'static str),
    /// A stored value could not be read back: the database was changed outside kai.
    #[error("corrupt row in {table}: {message}")]
    Corrupt {
        /// The table holding the bad row.
        table: &'static str,
        /// What could not be read.
        message: String,
    },
    /// A number is larger than the database's signed 64-bit integers hold.
    #[error("{what} is {value}, more than the database can store (at most {max})", max = i64::MAX)]
    TooLarge {
        /// What the number counts.
        what: &'static str,
        /// The number.
        value: u64,
    },
    /// The database stopped answering: the pool timed out or a connection broke. Worth a retry.
    #[error("database unavailable: {0}")]
    Unavailable(sqlx::Error),
    /// Any other database error.
    #[error("database error: {0}")]
    Database(sqlx::Error),
    /// The database cannot do what was asked (search inside SQLite, pgvector missing); the
    /// message says what to do.
    #[error("{0}")]
    Unsupported(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match err {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_) => StoreError::Unavailable(err),
            other => StoreError::Database(other),
        }
    }
}

/// A connection pool's state, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// Open connections, idle or in use.
    pub size: u32,
    /// Open connections waiting for work.
    pub idle: u32,
    /// The most connections the pool may open.
    pub max: u32,
}

#[derive(Debug, Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the concrete pool of whichever backend is in use. The body
/// is compiled once per backend, so it may use anything both drivers accept.
macro_rules! with_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.pool {
            $crate::Pool::Sqlite($pool) => $body,
            $crate::Pool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

/// The database. Cheap to clone: clones share one connection pool.
#[derive(Debug, Clone)]
pub struct Store {
    pool: Pool,
    max_connections: u32,
    url: String,
    /// The channel processes sharing this database tell each other of events on.
    events_channel: String,
}

impl Store {
    /// Connects to the database at `url` and brings its schema up to date. Fails, with the
    /// driver's reason and the URL (password redacted), when the database cannot be reached
    /// within `settings.connect_timeout`.
    pub async fn connect(
        url: &DatabaseUrl,
        settings: &DatabaseSettings,
    ) -> Result<Store, StoreError> {
        let redacted = url.redacted();
        let connect_error = |message: String| StoreError::Connect {
            url: redacted.clone(),
            message,
        };
        let timeout = settings.connect_timeout;
        let (pool, max_connections) = match url.kind() {
            DatabaseKind::Sqlite => {
                let options = SqliteConnectOptions::from_str(url.expose())
                    .map_err(|err| connect_error(err.to_string()))?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    // In WAL mode NORMAL loses no committed data on an application crash and is
                    // much faster than FULL; only a power loss can drop the last transactions.
                    .synchronous(SqliteSynchronous::Normal)
                    .foreign_keys(true)
                    .busy_timeout(settings.busy_timeout)
                    .log_statements(log::LevelFilter::Trace);
                // sqlx turns `:memory:` into a shared-cache URI, so look at what the user wrote.
                let in_memory =
                    url.expose().contains(":memory:") || url.expose().contains("mode=memory");
                if !in_memory {
                    prepare_private_file(options.get_filename()).map_err(connect_error)?;
                    check_writable(options.get_filename()).map_err(connect_error)?;
                }
                // An in-memory database lives only while a connection to it is open: keep exactly
                // one, forever.
                let max = if in_memory {
                    1
                } else {
                    settings.max_connections
                };
                let pool_options = SqlitePoolOptions::new()
                    .max_connections(max)
                    .acquire_timeout(timeout);
                let pool_options = if in_memory {
                    pool_options
                        .min_connections(1)
                        .idle_timeout(None)
                        .max_lifetime(None)
                } else {
                    pool_options
                };
                let pool = tokio::time::timeout(timeout, pool_options.connect_with(options))
                    .await
                    .map_err(|_| {
                        connect_error(format!("no answer within {}s", timeout.as_secs_f32()))
                    })?
                    .map_err(|err| connect_error(err.to_string()))?;
                (Pool::Sqlite(pool), max)
            }
            DatabaseKind::Postgres => {
                let options = PgConnectOptions::from_str(url.expose())
                    .map_err(|err| connect_error(err.to_string()))?
                    .log_statements(log::LevelFilter::Trace);
                // One direct connection first: the pool would report only "timed out", where
                // this says "connection refused" or "password authentication failed".
                let probe =
                    tokio::time::timeout(timeout, sqlx::PgConnection::connect_with(&options))
                        .await
                        .map_err(|_| {
                            connect_error(format!("no answer within {}s", timeout.as_secs_f32()))
                        })?
                        .map_err(|err| connect_error(err.to_string()))?;
                probe
                    .close()
                    .await
                    .map_err(|err| connect_error(err.to_string()))?;
                let pool = PgPoolOptions::new()
                    .max_connections(settings.max_connections)
                    .acquire_timeout(timeout)
                    .connect_lazy_with(options);
                (Pool::Postgres(pool), settings.max_connections)
            }
        };
        let mut store = Store {
            pool,
            max_connections,
            url: redacted,
            events_channel: events::EVENTS_CHANNEL.to_owned(),
        };
        store.migrate().await?;
        if let Pool::Postgres(pool) = &store.pool {
            let schema: String = sqlx::query_scalar("SELECT current_schema()")
                .fetch_one(pool)
                .await?;
            if schema != "public" {
                store.events_channel = format!("{}_{schema}", events::EVENTS_CHANNEL);
            }
        }
        Ok(store)
    }

    /// Which backend this store uses.
    #[must_use]
    pub fn backend(&self) -> DatabaseKind {
        match self.pool {
            Pool::Sqlite(_) => DatabaseKind::Sqlite,
            Pool::Postgres(_) => DatabaseKind::Postgres,
        }
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let result = with_pool!(self, |pool| migrations::for_backend(self.backend())
            .run(pool)
            .await);
        result.map_err(|err| StoreError::Migrate {
            url: self.url.clone(),
            message: migrations::explain(&err),
        })
    }

    /// Whether the database answers and its schema is the one this build expects: what
    /// `/readyz` reports.
    pub async fn check_ready(&self) -> Result<(), StoreError> {
        let latest = migrations::for_backend(self.backend())
            .iter()
            .map(|m| m.version)
            .max()
            .unwrap_or(0);
        let applied: Option<i64> = with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
                .fetch_one(pool)
                .await?
        });
        match applied {
            Some(version) if version == latest => Ok(()),
            applied => Err(StoreError::Migrate {
                url: self.url.clone(),
                message: format!(
                    "schema is at migration {}, this build expects {latest}",
                    applied.map_or_else(|| "none".to_owned(), |v| v.to_string())
                ),
            }),
        }
    }

    /// The pool's current state.
    #[must_use]
    pub fn pool_stats(&self) -> PoolStats {
        let (size, idle) = with_pool!(self, |pool| (pool.size(), pool.num_idle()));
        PoolStats {
            size,
            idle: u32::try_from(idle).unwrap_or(u32::MAX),
            max: self.max_connections,
        }
    }

    /// Waits for checked-out connections to come back, then closes them all. Later calls fail.
    pub async fn close(&self) {
        with_pool!(self, |pool| pool.close().await);
    }
}

/// Creates `dir` and its missing parents, enterable by their owner only: kai's data
/// directories hold password hashes and signing keys. An existing directory is left as it is.
pub fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    if std::fs::metadata(dir).is_ok_and(|metadata| !metadata.is_dir()) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotADirectory,
            "it is a file, not a directory",
        ));
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// The SQLite file `url` names, unless it is an in-memory database or not SQLite at all.
#[must_use]
pub fn sqlite_file(url: &DatabaseUrl) -> Option<std::path::PathBuf> {
    if url.kind() != DatabaseKind::Sqlite
        || url.expose().contains(":memory:")
        || url.expose().contains("mode=memory")
    {
        return None;
    }
    let options = SqliteConnectOptions::from_str(url.expose()).ok()?;
    Some(options.get_filename().to_owned())
}

/// Refuses a database that this process could read but not write, naming the file or
/// directory and the user who needs access: SQLite would open it and fail at the first write
/// with "attempt to write a readonly database". The directory must be writable too, for the
/// `-wal` and `-shm` files beside it.
fn check_writable(path: &std::path::Path) -> Result<(), String> {
    let user = std::env::var("USER").map_or_else(
        |_| "the user kai runs as".to_owned(),
        |name| format!("the user kai runs as ({name})"),
    );
    let denied = |what: String| {
        format!("{what} is not writable; give {user} write access to it, or run kai as its owner")
    };
    if let Err(err) = std::fs::OpenOptions::new().write(true).open(path) {
        return Err(if err.kind() == std::io::ErrorKind::PermissionDenied {
            denied(format!("the database file {}", path.display()))
        } else {
            format!("cannot open {}: {err}", path.display())
        });
    }
    let dir = path
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let probe = dir.join(format!(".kai-write-check-{}", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(err) if err.kind() == std::io::ErrorKind::PermissionDenied => Err(denied(format!(
            "the database's directory {}",
            dir.display()
        ))),
        Err(_) => Ok(()),
    }
}

/// Makes sure the SQLite file's directory exists and, for a new database, that the file is
/// readable by its owner only: it holds password hashes and the token-signing key. SQLite
/// gives its `-wal` and `-shm` files the same permissions as the database file.
fn prepare_private_file(path: &std::path::Path) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        create_private_dir(dir)
            .map_err(|err| format!("cannot create directory {}: {err}", dir.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
            #[cfg(unix)]
            if let Ok(metadata) = std::fs::metadata(path) {
                use std::os::unix::fs::PermissionsExt;
                if metadata.permissions().mode() & 0o077 != 0 {
                    tracing::warn!(
                        path = %path.display(),
                        "the database file is readable by other users; `chmod 600` it (and its -wal and -shm files)"
                    );
                }
            }
            Ok(())
        }
        Err(err) => Err(format!("cannot create {}: {err}", path.display())),
    }
}

/// A place where the tests that kill kai in the middle of a change do so: with the
/// `crash-points` feature, the process aborts here (no unwinding, no destructors, no flushing:
/// as `kill -9` would) when `KAI_TEST_CRASH_AT` names `point`. Without the feature it is nothing.
#[inline]
pub fn crash_point(point: &str) {
    #[cfg(feature = "crash-points")]
    if std::env::var("KAI_TEST_CRASH_AT").is_ok_and(|at| at == point) {
        std::process::abort();
    }
    #[cfg(not(feature = "crash-points"))]
    let _ = point;
}

/// Unix milliseconds, as the schema stores time.
pub(crate) fn millis(at: time::OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// The instant `ms` Unix milliseconds denote; out-of-range values (a corrupt row) saturate.
pub(crate) fn from_millis(ms: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// `at` to the millisecond, as it will read back from the database.
pub(crate) fn truncate(at: time::OffsetDateTime) -> time::OffsetDateTime {
    from_millis(millis(at))
}

/// `value` as the database stores it, refused rather than wrapped when it does not fit.
pub(crate) fn stored_int(value: u64, what: &'static str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::TooLarge { what, value })
}

/// A stored count or amount read back; a negative one means the row was changed outside kai.
pub(crate) fn count_from_row(
    value: i64,
    table: &'static str,
    column: &str,
) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt {
        table,
        message: format!("{column} is negative ({value})"),
    })
}

/// Whether `err` is a unique-constraint violation.
pub(crate) fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// Whether a write named a row that does not exist (a collection id, say).
pub(crate) fn is_foreign_key_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_foreign_key_violation())
}
