//! The searchable text of knowledge: chunks of each item's version, with the vectors an
//! embedding model made of them.
//!
//! The database is the truth that the search indexes (kai-knowledge's, on disk) are built from
//! and checked against: an index hit becomes an answer only if its chunk is still here, still
//! its owner's, and of the version search answers with.

use kai_core::UserId;
use time::OffsetDateTime;

use crate::artifacts::ItemKind;
use crate::row::Columns;
use crate::search::{vector_bytes, vector_from_bytes};
use crate::{Store, StoreError, count_from_row, from_millis, millis, stored_int, with_pool};

/// A chunk to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewChunk {
    /// Its place in the version, from 0.
    pub seq: u64,
    /// The headings above it (`Install > From source`), for Markdown.
    pub heading: Option<String>,
    /// Its text.
    pub text: String,
    /// Where it starts in the version's extracted text, in bytes.
    pub start: u64,
    /// Where it ends.
    pub end: u64,
}

/// A chunk as the indexes need it, with the vector one embedding model made of it.
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkRecord {
    /// Its id: what the indexes hold.
    pub id: i64,
    /// Whose it is.
    pub owner_id: UserId,
    /// The item it is part of.
    pub item_id: String,
    /// The headings above it.
    pub heading: Option<String>,
    /// Its text.
    pub text: String,
    /// Its vector from the model asked for, once embedded.
    pub embedding: Option<Vec<f32>>,
}

/// A chunk search answers with, and the item it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkHit {
    /// The chunk's id.
    pub id: i64,
    /// The item's id.
    pub item_id: String,
    /// `artifact` or `note`.
    pub item_kind: String,
    /// The item's title.
    pub title: String,
    /// The version the chunk is of.
    pub version: u64,
    /// The item's MIME type.
    pub mime: String,
    /// Its place in the version.
    pub seq: u64,
    /// The headings above it.
    pub heading: Option<String>,
    /// Its text.
    pub text: String,
    /// When the item last changed.
    pub updated_at: OffsetDateTime,
}

/// What [`Store::make_searchable`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Searchable {
    /// The version search now answers with: the one asked for, or a newer one.
    pub version: u64,
    /// The chunks dropped, which the indexes must forget.
    pub dropped: Vec<i64>,
}

fn chunk_record(row: &impl Columns) -> Result<ChunkRecord, StoreError> {
    let id = row.int("id")?;
    let owner = row.text("owner_id")?;
    Ok(ChunkRecord {
        id,
        owner_id: owner.parse().map_err(|_| StoreError::Corrupt {
            table: "chunks",
            message: format!("chunk {id}: bad owner id"),
        })?,
        item_id: row.text("item_id")?,
        heading: row.opt_text("heading")?,
        text: row.text("text")?,
        embedding: row
            .opt_blob("embedding")?
            .map(|bytes| vector_from_bytes(&bytes, id))
            .transpose()?,
    })
}

/// `$first, $first+1, …` for `count` values bound in a list.
fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Store {
    /// Stores an item version's chunks; those already stored (a retried job) are left as
    /// they are. Returns how many the version has.
    pub async fn insert_chunks(
        &self,
        owner: UserId,
        kind: ItemKind,
        item: &str,
        version: u64,
        chunks: &[NewChunk],
    ) -> Result<u64, StoreError> {
        let version = stored_int(version, "a version number")?;
        let now = millis(OffsetDateTime::now_utc());
        let count: i64 = with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            for chunk in chunks {
                sqlx::query(
                    "INSERT INTO chunks (owner_id, item_id, item_kind, version, seq, heading, \
                         text, start_byte, end_byte, created_at) \
                     VALUES ($1, $2, $10, $3, $4, $5, $6, $7, $8, $9) \
                     ON CONFLICT (item_id, version, seq) DO NOTHING",
                )
                .bind(owner.to_string())
                .bind(item)
                .bind(version)
                .bind(stored_int(chunk.seq, "a chunk's place")?)
                .bind(&chunk.heading)
                .bind(&chunk.text)
                .bind(stored_int(chunk.start, "a chunk's start")?)
                .bind(stored_int(chunk.end, "a chunk's end")?)
                .bind(now)
                .bind(kind.as_str())
                .execute(&mut *tx)
                .await?;
            }
            let count = sqlx::query_scalar(
                "SELECT COUNT(*) FROM chunks WHERE item_id = $1 AND version = $2",
            )
            .bind(item)
            .bind(version)
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            count
        });
        count_from_row(count, "chunks", "count")
    }

    /// A version's chunks in order, with their vectors from `model` where it made them.
    pub async fn chunks_of(
        &self,
        item: &str,
        version: u64,
        model: &str,
    ) -> Result<Vec<ChunkRecord>, StoreError> {
        let version = stored_int(version, "a version number")?;
        with_pool!(self, |pool| {
            sqlx::query(
                "SELECT c.id, c.owner_id, c.item_id, c.heading, c.text, v.embedding \
                 FROM chunks c \
                 LEFT JOIN chunk_vectors v ON v.chunk_id = c.id AND v.model = $3 \
                 WHERE c.item_id = $1 AND c.version = $2 ORDER BY c.seq",
            )
            .bind(item)
            .bind(version)
            .bind(model)
            .fetch_all(pool)
            .await?
            .iter()
            .map(chunk_record)
            .collect()
        })
    }

    /// Stores vectors `model` made for chunks, and on PostgreSQL adds them to the model's
    /// vector index in the database when it has one, in the same transaction.
    pub async fn set_embeddings(
        &self,
        model: &str,
        vectors: &[(i64, Vec<f32>)],
    ) -> Result<(), StoreError> {
        const UPSERT: &str = "INSERT INTO chunk_vectors (chunk_id, model, embedding) \
             VALUES ($1, $2, $3) \
             ON CONFLICT (model, chunk_id) DO UPDATE SET embedding = excluded.embedding";
        match &self.pool {
            crate::Pool::Sqlite(pool) => {
                let mut tx = pool.begin().await?;
                for (id, vector) in vectors {
                    sqlx::query(UPSERT)
                        .bind(id)
                        .bind(model)
                        .bind(vector_bytes(vector))
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
            }
            crate::Pool::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                for (id, vector) in vectors {
                    sqlx::query(UPSERT)
                        .bind(id)
                        .bind(model)
                        .bind(vector_bytes(vector))
                        .execute(&mut *tx)
                        .await?;
                }
                crate::search::add_to_vector_index(&mut tx, model, vectors).await?;
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// Forgets every vector `model` made, and its index in the database: what is left of a
    /// model once another has embedded everything.
    pub async fn drop_vectors(&self, model: &str) -> Result<(), StoreError> {
        match &self.pool {
            crate::Pool::Sqlite(pool) => {
                sqlx::query("DELETE FROM chunk_vectors WHERE model = $1")
                    .bind(model)
                    .execute(pool)
                    .await?;
            }
            crate::Pool::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                crate::search::drop_vector_index(&mut tx, model).await?;
                sqlx::query("DELETE FROM chunk_vectors WHERE model = $1")
                    .bind(model)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// How many chunks there are, and how many of them each model has embedded, the most
    /// first.
    pub async fn vector_coverage(&self) -> Result<(u64, Vec<(String, u64)>), StoreError> {
        let (total, models): (i64, Vec<(String, i64)>) = with_pool!(self, |pool| {
            let total = sqlx::query_scalar("SELECT COUNT(*) FROM chunks")
                .fetch_one(pool)
                .await?;
            let models = sqlx::query_as(
                "SELECT model, COUNT(*) AS n FROM chunk_vectors GROUP BY model \
                 ORDER BY n DESC, model",
            )
            .fetch_all(pool)
            .await?;
            (total, models)
        });
        Ok((
            count_from_row(total, "chunks", "count")?,
            models
                .into_iter()
                .map(|(model, n)| Ok((model, count_from_row(n, "chunk_vectors", "count")?)))
                .collect::<Result<_, StoreError>>()?,
        ))
    }

    /// Makes `version` the one search answers with for an item, unless a newer one already
    /// is, and drops the chunks of every version but the searchable one, in one transaction.
    /// `None` when the item is gone.
    pub async fn make_searchable(
        &self,
        kind: ItemKind,
        item: &str,
        version: u64,
    ) -> Result<Option<Searchable>, StoreError> {
        let version = stored_int(version, "a version number")?;
        let (versions, column) = kind.versions();
        // Only the tables' names are formatted into the text.
        let update = format!(
            "UPDATE {} SET searchable_version = \
                 CASE WHEN searchable_version IS NULL OR searchable_version < $2 \
                     THEN $2 ELSE searchable_version END \
             WHERE id = $1 RETURNING searchable_version",
            kind.table()
        );
        let supersede = format!(
            "UPDATE {versions} SET index_state = 'superseded', chunk_count = 0 \
             WHERE {column} = $1 AND version < $2 AND index_state <> 'superseded'"
        );
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let searchable: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(update.clone()))
                .bind(item)
                .bind(version)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(searchable) = searchable else {
                return Ok(None);
            };
            let dropped: Vec<i64> = sqlx::query_scalar(
                "DELETE FROM chunks WHERE item_id = $1 AND version <> $2 RETURNING id",
            )
            .bind(item)
            .bind(searchable)
            .fetch_all(&mut *tx)
            .await?;
            sqlx::query(sqlx::AssertSqlSafe(supersede.clone()))
                .bind(item)
                .bind(searchable)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(Some(Searchable {
                version: count_from_row(searchable, "artifacts", "searchable_version")?,
                dropped,
            }))
        })
    }

    /// The chunks among `ids` that search may answer `owner` with: still stored, the owner's,
    /// and of their item's searchable version. In no particular order.
    pub async fn chunk_hits(
        &self,
        owner: UserId,
        ids: &[i64],
    ) -> Result<Vec<ChunkHit>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let list = placeholders(2, ids.len());
        let sql = format!(
            "SELECT c.id, c.item_id, c.item_kind, a.title, c.version, v.mime, c.seq, c.heading, \
                 c.text, a.updated_at \
             FROM chunks c JOIN artifacts a \
                 ON a.id = c.item_id AND a.owner_id = $1 AND a.searchable_version = c.version \
             JOIN artifact_versions v ON v.artifact_id = a.id AND v.version = c.version \
             WHERE c.owner_id = $1 AND c.item_kind = 'artifact' AND c.id IN ({list}) \
             UNION ALL \
             SELECT c.id, c.item_id, c.item_kind, n.title, c.version, 'text/markdown', c.seq, \
                 c.heading, c.text, n.updated_at \
             FROM chunks c JOIN notes n \
                 ON n.id = c.item_id AND n.owner_id = $1 AND n.searchable_version = c.version \
             WHERE c.owner_id = $1 AND c.item_kind = 'note' AND c.id IN ({list})"
        );
        with_pool!(self, |pool| {
            // Only numbered placeholders are formatted into the text; the ids are bound.
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.clone())).bind(owner.to_string());
            for id in ids {
                query = query.bind(id);
            }
            query
                .fetch_all(pool)
                .await?
                .iter()
                .map(|row| {
                    Ok(ChunkHit {
                        id: row.int("id")?,
                        item_id: row.text("item_id")?,
                        item_kind: row.text("item_kind")?,
                        title: row.text("title")?,
                        version: count_from_row(row.int("version")?, "chunks", "version")?,
                        mime: row.text("mime")?,
                        seq: count_from_row(row.int("seq")?, "chunks", "seq")?,
                        heading: row.opt_text("heading")?,
                        text: row.text("text")?,
                        updated_at: from_millis(row.int("updated_at")?),
                    })
                })
                .collect()
        })
    }

    /// How many dimensions `model`'s stored vectors have; `None` before it has made one.
    pub async fn vector_dimensions(&self, model: &str) -> Result<Option<usize>, StoreError> {
        let stored: Option<Vec<u8>> = with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT embedding FROM chunk_vectors WHERE model = $1 LIMIT 1")
                .bind(model)
                .fetch_optional(pool)
                .await?
        });
        Ok(stored.map(|bytes| bytes.len() / 4))
    }

    /// The ids of every chunk whose vector `model` made, in order.
    pub async fn embedded_chunk_ids(&self, model: &str) -> Result<Vec<i64>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_scalar(
                "SELECT chunk_id FROM chunk_vectors WHERE model = $1 ORDER BY chunk_id",
            )
            .bind(model)
            .fetch_all(pool)
            .await?
        }))
    }

    /// The ids of every chunk, in order.
    pub async fn chunk_ids(&self) -> Result<Vec<i64>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT id FROM chunks ORDER BY id")
                .fetch_all(pool)
                .await?
        }))
    }

    /// Chunks by id, in id order, with their vectors from `model`, for an index to add what
    /// it lacks.
    pub async fn chunks_by_id(
        &self,
        ids: &[i64],
        model: &str,
    ) -> Result<Vec<ChunkRecord>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT c.id, c.owner_id, c.item_id, c.heading, c.text, v.embedding FROM chunks c \
             LEFT JOIN chunk_vectors v ON v.chunk_id = c.id AND v.model = $1 \
             WHERE c.id IN ({}) ORDER BY c.id",
            placeholders(2, ids.len())
        );
        with_pool!(self, |pool| {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.clone())).bind(model);
            for id in ids {
                query = query.bind(id);
            }
            query
                .fetch_all(pool)
                .await?
                .iter()
                .map(chunk_record)
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::placeholders;

    #[test]
    fn placeholders_number_from_the_first() {
        assert_eq!(placeholders(2, 3), "$2, $3, $4");
    }
}
