//! The gateway's catalog: the providers and models that admins define through the API. Each
//! entry is a JSON document that only the gateway interprets.

use time::OffsetDateTime;

use crate::row::Columns;
use crate::truncate;
use crate::{Store, StoreError, from_millis, is_unique_violation, millis, with_pool};

/// Which part of the catalog an entry belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CatalogKind {
    /// An upstream provider: where requests go and how to authenticate there.
    Provider,
    /// A model clients may ask for by name.
    Model,
}

impl CatalogKind {
    /// Its name, as stored: `provider` or `model`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            CatalogKind::Provider => "provider",
            CatalogKind::Model => "model",
        }
    }
}

/// One provider or model definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogEntry {
    /// The name, unique within its kind.
    pub name: String,
    /// The definition, as JSON.
    pub document: String,
    /// When it was first stored.
    pub created_at: OffsetDateTime,
    /// When its document was last replaced.
    pub updated_at: OffsetDateTime,
}

fn catalog_entry(row: &impl Columns) -> Result<CatalogEntry, StoreError> {
    Ok(CatalogEntry {
        name: row.text("name")?,
        document: row.text("document")?,
        created_at: from_millis(row.int("created_at")?),
        updated_at: from_millis(row.int("updated_at")?),
    })
}

/// Evaluates to the bump of the catalog revision, on `$executor`: part of every change's
/// transaction, so a process that sees the new revision also sees the change.
macro_rules! bump_revision {
    ($executor:expr) => {
        sqlx::query("UPDATE catalog_revision SET revision = revision + 1 WHERE id = 1")
            .execute($executor)
            .await?
    };
}

impl Store {
    /// A number that changes whenever any catalog entry is inserted, updated or deleted, so
    /// that other processes sharing the database can notice and reload. Starts at 0.
    pub async fn catalog_revision(&self) -> Result<i64, StoreError> {
        let revision: i64 = with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT revision FROM catalog_revision WHERE id = 1")
                .fetch_one(pool)
                .await?
        });
        Ok(revision)
    }

    /// The entries of one kind, by name.
    pub async fn list_catalog(&self, kind: CatalogKind) -> Result<Vec<CatalogEntry>, StoreError> {
        let mut entries = with_pool!(self, |pool| {
            let rows = sqlx::query(
                "SELECT name, document, created_at, updated_at FROM catalog_entries WHERE kind = $1",
            )
            .bind(kind.as_str())
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(catalog_entry)
                .collect::<Result<Vec<_>, StoreError>>()
        })?;
        // Sorted here rather than in SQL: PostgreSQL would order by the database's collation,
        // SQLite by bytes, and both backends should list alike.
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    /// Stores a new entry. Fails with [`StoreError::Conflict`] (`provider` or `model`) if one
    /// of that kind already has the name.
    pub async fn insert_catalog(
        &self,
        kind: CatalogKind,
        name: &str,
        document: &str,
    ) -> Result<CatalogEntry, StoreError> {
        let now = truncate(OffsetDateTime::now_utc());
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let inserted = sqlx::query(
                "INSERT INTO catalog_entries (kind, name, document, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $4)",
            )
            .bind(kind.as_str())
            .bind(name)
            .bind(document)
            .bind(millis(now))
            .execute(&mut *tx)
            .await;
            match inserted {
                Err(err) if is_unique_violation(&err) => {
                    return Err(StoreError::Conflict(kind.as_str()));
                }
                other => other?,
            };
            bump_revision!(&mut *tx);
            tx.commit().await?;
        });
        Ok(CatalogEntry {
            name: name.to_owned(),
            document: document.to_owned(),
            created_at: now,
            updated_at: now,
        })
    }

    /// Replaces an entry's document. `None` if there is no such entry.
    pub async fn update_catalog(
        &self,
        kind: CatalogKind,
        name: &str,
        document: &str,
    ) -> Result<Option<CatalogEntry>, StoreError> {
        let now = millis(OffsetDateTime::now_utc());
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let row = sqlx::query(
                "UPDATE catalog_entries SET document = $3, updated_at = $4 \
                 WHERE kind = $1 AND name = $2 \
                 RETURNING name, document, created_at, updated_at",
            )
            .bind(kind.as_str())
            .bind(name)
            .bind(document)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = row else {
                tx.rollback().await?;
                return Ok(None);
            };
            let entry = catalog_entry(&row)?;
            bump_revision!(&mut *tx);
            tx.commit().await?;
            Ok(Some(entry))
        })
    }

    /// Deletes an entry. `false` if there was no such entry.
    pub async fn delete_catalog(&self, kind: CatalogKind, name: &str) -> Result<bool, StoreError> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let deleted = sqlx::query("DELETE FROM catalog_entries WHERE kind = $1 AND name = $2")
                .bind(kind.as_str())
                .bind(name)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if deleted == 0 {
                tx.rollback().await?;
                return Ok(false);
            }
            bump_revision!(&mut *tx);
            tx.commit().await?;
            Ok(true)
        })
    }
}
