//! Memory: facts about a user that chats and agents keep, each sealed by the vault (the store
//! sees only ciphertext), with where it came from and how entries relate: a corrected fact
//! supersedes the old entry, which stays as history.

use kai_core::{MemoryId, UserId};
use time::OffsetDateTime;

use crate::row::Columns;
use crate::{Store, StoreError, from_millis, millis, truncate, with_pool};

/// An entry to keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMemory {
    /// Its id, chosen by the caller: the vault binds the sealed text to it.
    pub id: MemoryId,
    /// Whose it is.
    pub owner_id: UserId,
    /// The text, sealed.
    pub sealed: Vec<u8>,
    /// `user`, `conversation` or `run`.
    pub source_kind: String,
    /// The conversation's or run's id.
    pub source_id: Option<String>,
    /// The entry it corrects.
    pub supersedes: Option<MemoryId>,
    /// Entries it relates to.
    pub relates_to: Vec<MemoryId>,
}

/// An entry as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryRecord {
    /// Its id.
    pub id: MemoryId,
    /// Whose it is.
    pub owner_id: UserId,
    /// The text, sealed.
    pub sealed: Vec<u8>,
    /// `user`, `conversation` or `run`.
    pub source_kind: String,
    /// The conversation's or run's id.
    pub source_id: Option<String>,
    /// The entry it corrects.
    pub supersedes: Option<MemoryId>,
    /// The entry that corrects it, if one does.
    pub superseded_by: Option<MemoryId>,
    /// Entries it relates to.
    pub relates_to: Vec<MemoryId>,
    /// When it was kept.
    pub created_at: OffsetDateTime,
}

fn memory(row: &impl Columns) -> Result<MemoryRecord, StoreError> {
    let bad = |message: String| StoreError::Corrupt {
        table: "memories",
        message,
    };
    let id = row.text("id")?;
    let parse = |text: String| {
        text.parse()
            .map_err(|_| bad(format!("memory {id}: `{text}` is not an id")))
    };
    Ok(MemoryRecord {
        id: parse(id.clone())?,
        owner_id: row
            .text("owner_id")?
            .parse()
            .map_err(|_| bad(format!("memory {id}: bad owner id")))?,
        sealed: row.blob("sealed")?,
        source_kind: row.text("source_kind")?,
        source_id: row.opt_text("source_id")?,
        supersedes: row.opt_text("supersedes")?.map(parse).transpose()?,
        superseded_by: row.opt_text("superseded_by")?.map(parse).transpose()?,
        relates_to: Vec::new(),
        created_at: from_millis(row.int("created_at")?),
    })
}

impl Store {
    /// Keeps an entry. [`StoreError::Conflict`] when what it supersedes or relates to is not
    /// the owner's, or is already superseded.
    pub async fn insert_memory(&self, new: &NewMemory) -> Result<MemoryRecord, StoreError> {
        let now = truncate(OffsetDateTime::now_utc());
        let owner = new.owner_id.to_string();
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO memories (id, owner_id, sealed, source_kind, source_id, supersedes, \
                     created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(new.id.to_string())
            .bind(&owner)
            .bind(&new.sealed)
            .bind(&new.source_kind)
            .bind(&new.source_id)
            .bind(new.supersedes.map(|id| id.to_string()))
            .bind(millis(now))
            .execute(&mut *tx)
            .await?;
            if let Some(old) = new.supersedes {
                let marked = sqlx::query(
                    "UPDATE memories SET superseded_by = $1 \
                     WHERE id = $2 AND owner_id = $3 AND superseded_by IS NULL",
                )
                .bind(new.id.to_string())
                .bind(old.to_string())
                .bind(&owner)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if marked == 0 {
                    return Err(StoreError::Conflict(
                        "the entry it supersedes is not a current entry of yours",
                    ));
                }
            }
            for related in &new.relates_to {
                let owned: Option<i32> =
                    sqlx::query_scalar("SELECT 1 FROM memories WHERE id = $1 AND owner_id = $2")
                        .bind(related.to_string())
                        .bind(&owner)
                        .fetch_optional(&mut *tx)
                        .await?;
                if owned.is_none() || *related == new.id {
                    return Err(StoreError::Conflict(
                        "an entry it relates to is not an entry of yours",
                    ));
                }
                sqlx::query(
                    "INSERT INTO memory_relations (memory_id, related_id) VALUES ($1, $2) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(new.id.to_string())
                .bind(related.to_string())
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        Ok(MemoryRecord {
            id: new.id,
            owner_id: new.owner_id,
            sealed: new.sealed.clone(),
            source_kind: new.source_kind.clone(),
            source_id: new.source_id.clone(),
            supersedes: new.supersedes,
            superseded_by: None,
            relates_to: {
                let mut related = new.relates_to.clone();
                related.sort();
                related.dedup();
                related
            },
            created_at: now,
        })
    }

    /// The owner's entries, oldest first; superseded ones only with `history`.
    pub async fn memories(
        &self,
        owner: UserId,
        history: bool,
    ) -> Result<Vec<MemoryRecord>, StoreError> {
        let mut found = with_pool!(self, |pool| {
            sqlx::query(
                "SELECT id, owner_id, sealed, source_kind, source_id, supersedes, superseded_by, \
                     created_at FROM memories \
                 WHERE owner_id = $1 AND ($2 OR superseded_by IS NULL) \
                 ORDER BY created_at, id",
            )
            .bind(owner.to_string())
            .bind(history)
            .fetch_all(pool)
            .await?
            .iter()
            .map(memory)
            .collect::<Result<Vec<_>, _>>()?
        });
        let relations: Vec<(String, String)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT r.memory_id, r.related_id FROM memory_relations r \
                 JOIN memories m ON m.id = r.memory_id WHERE m.owner_id = $1 \
                 ORDER BY r.related_id",
            )
            .bind(owner.to_string())
            .fetch_all(pool)
            .await?
        });
        for entry in &mut found {
            let id = entry.id.to_string();
            entry.relates_to = relations
                .iter()
                .filter(|(from, _)| *from == id)
                .filter_map(|(_, to)| to.parse().ok())
                .collect();
        }
        Ok(found)
    }

    /// Forgets one of the owner's entries for good. What it superseded becomes current again.
    /// `false` when it is not the owner's.
    pub async fn delete_memory(&self, owner: UserId, id: MemoryId) -> Result<bool, StoreError> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let deleted = sqlx::query("DELETE FROM memories WHERE id = $1 AND owner_id = $2")
                .bind(id.to_string())
                .bind(owner.to_string())
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if deleted == 1 {
                sqlx::query(
                    "UPDATE memories SET superseded_by = NULL \
                     WHERE superseded_by = $1 AND owner_id = $2",
                )
                .bind(id.to_string())
                .bind(owner.to_string())
                .execute(&mut *tx)
                .await?;
                sqlx::query("UPDATE memories SET supersedes = NULL WHERE supersedes = $1")
                    .bind(id.to_string())
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(deleted == 1)
        })
    }
}
