//! Disposable databases for tests, in this crate and the ones above it.
//!
//! With `KAI_TEST_DATABASE_URL` unset, each [`TestDatabase`] is a SQLite file in a fresh
//! temporary directory. Set it to a PostgreSQL URL and each is a fresh schema in that database,
//! dropped again when the `TestDatabase` is. The same tests thus run against either backend;
//! `scripts/test` runs them against both.

use std::path::Path;
use std::time::Duration;

use kai_config::{DatabaseKind, DatabaseSettings, DatabaseUrl};
use sqlx::{Connection, Executor};

use crate::Store;

/// The variable naming the PostgreSQL database that tests use.
pub const TEST_DATABASE_URL_VAR: &str = "KAI_TEST_DATABASE_URL";

/// A database that exists for one test.
#[derive(Debug)]
pub struct TestDatabase {
    url: DatabaseUrl,
    dir: tempfile::TempDir,
    schema: Option<(String, String)>,
}

impl TestDatabase {
    /// A fresh, empty database on the backend the environment selects.
    ///
    /// # Panics
    /// If the PostgreSQL test database cannot be reached: a test run that asked for PostgreSQL
    /// must not quietly fall back to SQLite.
    pub async fn new() -> TestDatabase {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        match std::env::var(TEST_DATABASE_URL_VAR)
            .ok()
            .filter(|url| !url.is_empty())
        {
            None => {
                let url = DatabaseUrl::sqlite_in(dir.path());
                TestDatabase {
                    url,
                    dir,
                    schema: None,
                }
            }
            Some(base) => {
                let schema = format!("test_{}", uuid::Uuid::now_v7().simple());
                let mut conn = sqlx::PgConnection::connect(&base)
                    .await
                    .unwrap_or_else(|err| panic!("{TEST_DATABASE_URL_VAR}: cannot connect: {err}"));
                conn.execute(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                    .await
                    .expect("create a test schema");
                conn.close().await.ok();
                let separator = if base.contains('?') { '&' } else { '?' };
                // Connections carry the schema's name, so that cleanup can end those a test
                // left behind (a task frozen mid-transaction holds locks DROP SCHEMA waits on).
                // `public` follows it: extensions (pgvector's `vector` type) live there.
                let url = DatabaseUrl::parse(&format!(
                    "{base}{separator}options[search_path]={schema},public&application_name={schema}"
                ))
                .expect("a valid PostgreSQL URL");
                assert_eq!(
                    url.kind(),
                    DatabaseKind::Postgres,
                    "{TEST_DATABASE_URL_VAR} must be a postgres:// URL"
                );
                TestDatabase {
                    url,
                    dir,
                    schema: Some((base, schema)),
                }
            }
        }
    }

    /// The database's URL.
    #[must_use]
    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// A temporary directory that lives as long as the database: the SQLite file's home, and
    /// usable as a data directory in either case.
    #[must_use]
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Pool settings suited to tests.
    #[must_use]
    pub fn settings() -> DatabaseSettings {
        DatabaseSettings {
            max_connections: 8,
            connect_timeout: Duration::from_secs(10),
            busy_timeout: Duration::from_secs(10),
        }
    }

    /// A store on this database, migrated.
    ///
    /// # Panics
    /// If the database cannot be opened.
    pub async fn store(&self) -> Store {
        Store::connect(&self.url, &Self::settings())
            .await
            .expect("open the test database")
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((base, schema)) = self.schema.take() else {
            return;
        };
        // Drop runs outside async context (or inside a runtime that must not block), so the
        // cleanup gets a thread and a small runtime of its own.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&base).await.ok()?;
                conn.execute(sqlx::AssertSqlSafe(format!(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE application_name = '{schema}' AND pid <> pg_backend_pid()"
                )))
                .await
                .ok()?;
                conn.execute(sqlx::AssertSqlSafe(format!(
                    "DROP SCHEMA IF EXISTS {schema} CASCADE"
                )))
                .await
                .ok()?;
                conn.close().await.ok()
            })
        });
        let _ = cleanup.join();
    }
}

/// What an attacker holding the database file could do, for tests that check kai notices.
impl Store {
    /// Runs `sql` as it is and returns the rows it changed.
    ///
    /// # Panics
    /// If the statement fails.
    pub async fn tamper(&self, sql: &str) -> u64 {
        crate::with_pool!(self, |pool| {
            pool.execute(sqlx::AssertSqlSafe(sql.to_owned()))
                .await
                .unwrap_or_else(|err| panic!("{sql}: {err}"))
                .rows_affected()
        })
    }

    /// Flips bit `bit` (modulo its length) of the blob in `table.column` on the row where
    /// `key_column` is `key`.
    ///
    /// # Panics
    /// If there is no such row or the value is empty.
    pub async fn flip_bit(
        &self,
        table: &str,
        column: &str,
        key_column: &str,
        key: &str,
        bit: usize,
    ) {
        crate::with_pool!(self, |pool| {
            let select =
                format!("SELECT {column} FROM {table} WHERE CAST({key_column} AS TEXT) = $1");
            let mut value: Vec<u8> = sqlx::query_scalar(sqlx::AssertSqlSafe(select))
                .bind(key)
                .fetch_one(pool)
                .await
                .unwrap_or_else(|err| panic!("{table}.{column} where {key_column} = {key}: {err}"));
            assert!(!value.is_empty(), "{table}.{column} is empty");
            let bit = bit % (value.len() * 8);
            value[bit / 8] ^= 1 << (bit % 8);
            let update =
                format!("UPDATE {table} SET {column} = $1 WHERE CAST({key_column} AS TEXT) = $2");
            sqlx::query(sqlx::AssertSqlSafe(update))
                .bind(value)
                .bind(key)
                .execute(pool)
                .await
                .unwrap_or_else(|err| panic!("update {table}.{column}: {err}"));
        });
    }
}
