//! The embedded migrations, one list per backend. A released migration is never edited: sqlx
//! keeps each one's checksum and refuses a database whose history does not match this build.

use std::borrow::Cow;
use std::sync::LazyLock;

use kai_config::DatabaseKind;
use sqlx::SqlSafeStr;
use sqlx::migrate::{MigrateError, Migration, MigrationType, Migrator};

macro_rules! migrations {
    ($dir:literal: $($version:literal $name:literal),+ $(,)?) => {
        vec![$(Migration::new(
            $version,
            Cow::Borrowed($name),
            MigrationType::Simple,
            include_str!(concat!("../migrations/", $dir, "/", $name, ".sql")).into_sql_str(),
            false,
        )),+]
    };
}

// Version 8 is the agents' migration, written on another branch at the same time as 9: each
// list takes it when that branch lands, and sqlx applies a missing version whatever its place.
static SQLITE: LazyLock<Migrator> = LazyLock::new(|| {
    Migrator::with_migrations(migrations!(
        "sqlite": 1 "0001_accounts", 2 "0002_gateway", 3 "0003_vault_audit",
        4 "0004_login_checks", 5 "0005_jobs", 6 "0006_knowledge", 7 "0007_chunk_vectors",
        8 "0008_agents", 9 "0009_schedules", 10 "0010_events"
    ))
});

static POSTGRES: LazyLock<Migrator> = LazyLock::new(|| {
    Migrator::with_migrations(migrations!(
        "postgres": 1 "0001_accounts", 2 "0002_gateway", 3 "0003_vault_audit",
        4 "0004_login_checks", 5 "0005_jobs", 6 "0006_knowledge", 7 "0007_chunk_vectors",
        8 "0008_agents", 9 "0009_schedules", 10 "0010_events"
    ))
});

/// The migrations for `backend`.
pub(crate) fn for_backend(backend: DatabaseKind) -> &'static Migrator {
    match backend {
        DatabaseKind::Sqlite => &SQLITE,
        DatabaseKind::Postgres => &POSTGRES,
    }
}

/// A sentence saying what went wrong and what to do about it.
pub(crate) fn explain(err: &MigrateError) -> String {
    match err {
        MigrateError::VersionMissing(version) => format!(
            "the database has migration {version}, which this build of kai does not know: it was \
             last used by a newer kai; run that version or newer"
        ),
        MigrateError::VersionMismatch(version) => format!(
            "migration {version} in the database differs from this build's: the database was \
             changed outside kai, or by a development build; restore it from a backup"
        ),
        MigrateError::Dirty(version) => format!(
            "migration {version} was interrupted and left the schema half-changed; restore the \
             database from a backup"
        ),
        other => other.to_string(),
    }
}
