//! Search inside PostgreSQL, so that several kai processes share one index: full-text search
//! over the chunks (a generated `tsvector` column with a GIN index, migration 0007) and, with
//! the pgvector extension, one table of vectors per embedding model with an HNSW index.
//!
//! pgvector is an extension the server may lack, so its tables are made at run time
//! ([`Store::create_vector_index`]) and recorded in `vector_indexes`; a model's table is
//! `vector_index_<id>`. The vectors themselves stay in `chunk_vectors`, the truth the table is
//! a copy of: [`Store::fill_vector_index`] makes good what the table lacks. SQLite has neither;
//! there kai-knowledge keeps its indexes on disk.

use kai_core::UserId;
use sqlx::{Postgres, Transaction};
use time::OffsetDateTime;

use crate::{Pool, Store, StoreError, millis};

/// The oldest pgvector kai uses: 0.8.0 brought iterative index scans, without which a search
/// filtered by owner could come back short.
const MIN_PGVECTOR: (u32, u32) = (0, 8);

/// At most this many words of a query reach the full-text search.
const MAX_QUERY_TERMS: usize = 64;

/// Rows copied into a vector index per statement.
const FILL_BATCH: i64 = 500;

/// Why search cannot run in this database.
fn unsupported(why: impl Into<String>) -> StoreError {
    StoreError::Unsupported(why.into())
}

/// A query's words as a tsquery that matches any of them, ranked by how many and how close:
/// the OR of BM25, not the AND of `websearch_to_tsquery`, which would drop a chunk for missing
/// one word of a question. Only letters and digits reach it, so nothing needs quoting. `None`
/// when no word is left.
fn any_word_query(text: &str) -> Option<String> {
    let mut words: Vec<String> = Vec::new();
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let word = word.to_lowercase();
        if !words.contains(&word) {
            words.push(word);
        }
        if words.len() == MAX_QUERY_TERMS {
            break;
        }
    }
    if words.is_empty() {
        return None;
    }
    Some(
        words
            .iter()
            .map(|w| format!("'{w}'"))
            .collect::<Vec<_>>()
            .join(" | "),
    )
}

/// A vector as little-endian bytes, as stored.
pub(crate) fn vector_bytes(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|v| v.to_le_bytes()).collect()
}

pub(crate) fn vector_from_bytes(bytes: &[u8], chunk: i64) -> Result<Vec<f32>, StoreError> {
    if !bytes.len().is_multiple_of(4) {
        return Err(StoreError::Corrupt {
            table: "chunks",
            message: format!("chunk {chunk}: an embedding of {} bytes", bytes.len()),
        });
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

/// A vector in pgvector's text form.
fn vector_text(vector: &[f32]) -> String {
    let mut text = String::with_capacity(vector.len() * 12 + 2);
    text.push('[');
    for (at, value) in vector.iter().enumerate() {
        if at > 0 {
            text.push(',');
        }
        // Shortest text that reads back as the same f32; NaN and infinities cannot come from
        // a model that works, and pgvector refuses them.
        text.push_str(&value.to_string());
    }
    text.push(']');
    text
}

/// The table holding `model`'s vectors, with its dimensions, when it has one.
async fn vector_table(
    conn: &mut sqlx::PgConnection,
    model: &str,
) -> Result<Option<(String, i64)>, StoreError> {
    let row: Option<(i64, i64)> =
        sqlx::query_as("SELECT id, dimensions FROM vector_indexes WHERE model = $1")
            .bind(model)
            .fetch_optional(conn)
            .await?;
    Ok(row.map(|(id, dimensions)| (format!("vector_index_{id}"), dimensions)))
}

/// Adds vectors of `model` to its index in the database, if it has one. Chunks deleted
/// meanwhile are skipped.
pub(crate) async fn add_to_vector_index(
    tx: &mut Transaction<'_, Postgres>,
    model: &str,
    vectors: &[(i64, Vec<f32>)],
) -> Result<(), StoreError> {
    if vectors.is_empty() {
        return Ok(());
    }
    let Some((table, dimensions)) = vector_table(tx, model).await? else {
        return Ok(());
    };
    if let Some((id, vector)) = vectors
        .iter()
        .find(|(_, v)| i64::try_from(v.len()).ok() != Some(dimensions))
    {
        return Err(unsupported(format!(
            "model `{model}` made a vector of {} dimensions for chunk {id}, but its index in \
             the database holds {dimensions}: the model changed under the same name; run \
             `kai knowledge reindex`",
            vector.len()
        )));
    }
    let ids: Vec<i64> = vectors.iter().map(|(id, _)| *id).collect();
    let texts: Vec<String> = vectors.iter().map(|(_, v)| vector_text(v)).collect();
    // Only the table's name, made from an id, is formatted into the text.
    let sql = format!(
        "INSERT INTO {table} (chunk_id, owner_id, item_id, embedding) \
         SELECT c.id, c.owner_id, c.item_id, v.embedding::vector \
         FROM unnest($1::bigint[], $2::text[]) AS v (id, embedding) \
         JOIN chunks c ON c.id = v.id \
         ON CONFLICT (chunk_id) DO UPDATE SET embedding = excluded.embedding"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(ids)
        .bind(texts)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Drops `model`'s index in the database, if it has one.
pub(crate) async fn drop_vector_index(
    tx: &mut Transaction<'_, Postgres>,
    model: &str,
) -> Result<(), StoreError> {
    if let Some((table, _)) = vector_table(tx, model).await? {
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE IF EXISTS {table}")))
            .execute(&mut **tx)
            .await?;
        sqlx::query("DELETE FROM vector_indexes WHERE model = $1")
            .bind(model)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// `0.8.6` as (0, 8).
fn major_minor(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.split('.');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

impl Store {
    fn postgres(&self, what: &str) -> Result<&sqlx::PgPool, StoreError> {
        match &self.pool {
            Pool::Postgres(pool) => Ok(pool),
            Pool::Sqlite(_) => Err(unsupported(format!(
                "{what} needs PostgreSQL; SQLite keeps no search index in the database"
            ))),
        }
    }

    /// Makes ready the index in the database for `model`'s vectors of `dimensions`: the
    /// pgvector extension (created when this role may), the model's table and its HNSW index.
    /// [`StoreError::Unsupported`] says what to do when the database cannot hold it.
    pub async fn create_vector_index(
        &self,
        model: &str,
        dimensions: usize,
    ) -> Result<(), StoreError> {
        let pool = self.postgres("a vector index in the database")?;
        let dims = i64::try_from(dimensions)
            .ok()
            .filter(|d| (1..=16_000).contains(d))
            .ok_or_else(|| {
                unsupported(format!(
                    "vectors of {dimensions} dimensions: pgvector indexes 1 to 16,000"
                ))
            })?;
        let mut tx = pool.begin().await?;
        // Several processes may start at once: one makes the tables, the others wait and find
        // them made.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('kai vector indexes'))")
            .execute(&mut *tx)
            .await?;
        self.ensure_pgvector(&mut tx).await?;
        let created = millis(OffsetDateTime::now_utc());
        sqlx::query(
            "INSERT INTO vector_indexes (model, dimensions, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (model) DO NOTHING",
        )
        .bind(model)
        .bind(dims)
        .bind(created)
        .execute(&mut *tx)
        .await?;
        let Some((table, stored)) = vector_table(&mut tx, model).await? else {
            return Err(unsupported(format!(
                "the vector index of `{model}` vanished while it was made"
            )));
        };
        if stored != dims {
            return Err(unsupported(format!(
                "model `{model}` now makes vectors of {dims} dimensions, but its index in the \
                 database holds {stored}: the model changed under the same name; run \
                 `kai knowledge reindex`"
            )));
        }
        // Only the table's name, made from an id, and a checked number are formatted in.
        for sql in [
            format!(
                "CREATE TABLE IF NOT EXISTS {table} (\
                     chunk_id  BIGINT PRIMARY KEY REFERENCES chunks (id) ON DELETE CASCADE, \
                     owner_id  TEXT NOT NULL, \
                     item_id   TEXT NOT NULL, \
                     embedding vector({dims}) NOT NULL)"
            ),
            format!(
                "CREATE INDEX IF NOT EXISTS {table}_hnsw ON {table} \
                 USING hnsw (embedding vector_cosine_ops)"
            ),
            format!("CREATE INDEX IF NOT EXISTS {table}_item ON {table} (item_id)"),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Whether the database can hold vector indexes: PostgreSQL with pgvector 0.8 or newer,
    /// added to this database when missing and this role may. [`StoreError::Unsupported`]
    /// says what to do when it cannot.
    pub async fn probe_vector_index(&self) -> Result<(), StoreError> {
        let pool = self.postgres("a vector index in the database")?;
        let mut tx = pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('kai vector indexes'))")
            .execute(&mut *tx)
            .await?;
        self.ensure_pgvector(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The pgvector extension, created if missing and this role may; otherwise what the
    /// person running the database has to do.
    async fn ensure_pgvector(&self, tx: &mut Transaction<'_, Postgres>) -> Result<(), StoreError> {
        let installed: Option<String> =
            sqlx::query_scalar("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
                .fetch_optional(&mut **tx)
                .await?;
        let version = match installed {
            Some(version) => version,
            None => {
                let available: Option<String> = sqlx::query_scalar(
                    "SELECT default_version FROM pg_available_extensions WHERE name = 'vector'",
                )
                .fetch_optional(&mut **tx)
                .await?;
                if available.is_none() {
                    return Err(unsupported(
                        "the PostgreSQL server has no pgvector extension; install it \
                         (https://github.com/pgvector/pgvector#installation), or set \
                         knowledge.search_index = \"embedded\"",
                    ));
                }
                // A failed statement would end the transaction: try it in a savepoint.
                sqlx::query("SAVEPOINT create_vector")
                    .execute(&mut **tx)
                    .await?;
                if let Err(err) = sqlx::query("CREATE EXTENSION IF NOT EXISTS vector")
                    .execute(&mut **tx)
                    .await
                {
                    sqlx::query("ROLLBACK TO SAVEPOINT create_vector")
                        .execute(&mut **tx)
                        .await?;
                    let database: String = sqlx::query_scalar("SELECT current_database()")
                        .fetch_one(&mut **tx)
                        .await?;
                    return Err(unsupported(format!(
                        "pgvector is installed on the server but not in database `{database}`, \
                         and kai's role may not add it ({err}): run `CREATE EXTENSION vector;` \
                         in that database as a superuser"
                    )));
                }
                sqlx::query_scalar("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
                    .fetch_one(&mut **tx)
                    .await?
            }
        };
        match major_minor(&version) {
            Some(found) if found >= MIN_PGVECTOR => Ok(()),
            _ => Err(unsupported(format!(
                "pgvector {version} is older than {}.{}.0, which kai needs for filtered vector \
                 search: run `ALTER EXTENSION vector UPDATE;` after upgrading it",
                MIN_PGVECTOR.0, MIN_PGVECTOR.1
            ))),
        }
    }

    /// Copies into `model`'s index in the database the vectors it lacks. Returns how many.
    pub async fn fill_vector_index(&self, model: &str) -> Result<usize, StoreError> {
        let pool = self.postgres("a vector index in the database")?;
        let mut conn = pool.acquire().await?;
        let Some((table, _)) = vector_table(&mut conn, model).await? else {
            return Ok(0);
        };
        drop(conn);
        let sql = format!(
            "SELECT cv.chunk_id, cv.embedding FROM chunk_vectors cv \
             WHERE cv.model = $1 AND NOT EXISTS \
                 (SELECT 1 FROM {table} x WHERE x.chunk_id = cv.chunk_id) \
             ORDER BY cv.chunk_id LIMIT $2"
        );
        let mut filled = 0;
        loop {
            let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
                .bind(model)
                .bind(FILL_BATCH)
                .fetch_all(pool)
                .await?;
            if rows.is_empty() {
                return Ok(filled);
            }
            let vectors = rows
                .into_iter()
                .map(|(id, bytes)| Ok((id, vector_from_bytes(&bytes, id)?)))
                .collect::<Result<Vec<_>, StoreError>>()?;
            let mut tx = pool.begin().await?;
            add_to_vector_index(&mut tx, model, &vectors).await?;
            tx.commit().await?;
            filled += vectors.len();
        }
    }

    /// Whether `model`'s vectors have an index in the database.
    pub async fn has_vector_index(&self, model: &str) -> Result<bool, StoreError> {
        match &self.pool {
            Pool::Sqlite(_) => Ok(false),
            Pool::Postgres(pool) => {
                let mut conn = pool.acquire().await?;
                Ok(vector_table(&mut conn, model).await?.is_some())
            }
        }
    }

    /// The owner's chunks that hold any word of `query`, best first, by PostgreSQL's
    /// full-text ranking (`ts_rank_cd`), at most `limit`; only chunks of `items` when given.
    pub async fn keyword_search(
        &self,
        owner: UserId,
        query: &str,
        items: Option<&[String]>,
        limit: usize,
    ) -> Result<Vec<(i64, f32)>, StoreError> {
        let pool = self.postgres("full-text search in the database")?;
        let Some(tsquery) = any_word_query(query) else {
            return Ok(Vec::new());
        };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        Ok(sqlx::query_as(
            "SELECT c.id, ts_rank_cd(c.search_text, q)::real AS score \
             FROM chunks c, to_tsquery('english', $2) q \
             WHERE c.owner_id = $1 AND c.search_text @@ q \
                 AND ($3::text[] IS NULL OR c.item_id = ANY($3)) \
             ORDER BY score DESC, c.id LIMIT $4",
        )
        .bind(owner.to_string())
        .bind(tsquery)
        .bind(items)
        .bind(limit)
        .fetch_all(pool)
        .await?)
    }

    /// The owner's chunks nearest `vector` by cosine similarity among `model`'s vectors in the
    /// database, most similar first, at most `limit`: through the HNSW index, or exactly when
    /// the search is narrowed to `items`.
    pub async fn vector_search(
        &self,
        owner: UserId,
        model: &str,
        vector: &[f32],
        items: Option<&[String]>,
        limit: usize,
    ) -> Result<Vec<(i64, f32)>, StoreError> {
        let pool = self.postgres("vector search in the database")?;
        // A vector of no length (a query of punctuation alone) is near nothing; pgvector would
        // rank every row by NaN.
        if !vector.iter().any(|v| *v != 0.0) || !vector.iter().all(|v| v.is_finite()) {
            return Ok(Vec::new());
        }
        let mut tx = pool.begin().await?;
        let Some((table, dimensions)) = vector_table(&mut tx, model).await? else {
            return Ok(Vec::new());
        };
        if i64::try_from(vector.len()).ok() != Some(dimensions) {
            return Err(unsupported(format!(
                "a query vector of {} dimensions for `{model}`, whose index holds {dimensions}",
                vector.len()
            )));
        }
        let limit_value = i64::try_from(limit).unwrap_or(i64::MAX);
        // The graph is searched this wide: pgvector's default of 40 found 89% of the exact top
        // 10 at 20,000 vectors, 200 found 97.6% for about 3 ms more (docs/BENCHMARKS.md). An
        // owner filter makes it scan on until enough rows pass (iterative scan, pgvector 0.8).
        let ef_search = limit.saturating_mul(5).clamp(200, 1000);
        for setting in [
            format!("SET LOCAL hnsw.ef_search = {ef_search}"),
            "SET LOCAL hnsw.iterative_scan = relaxed_order".to_owned(),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(setting))
                .execute(&mut *tx)
                .await?;
        }
        // A search narrowed to some items ranks them all exactly (`+ 0` keeps the planner off
        // the graph, which would have to wade through everyone else's rows).
        let order = if items.is_some() {
            "(embedding <=> $2::vector) + 0"
        } else {
            "embedding <=> $2::vector"
        };
        let sql = format!(
            "SELECT chunk_id, (1 - (embedding <=> $2::vector))::real AS score FROM {table} \
             WHERE owner_id = $1 AND ($3::text[] IS NULL OR item_id = ANY($3)) \
             ORDER BY {order} LIMIT $4"
        );
        let mut hits: Vec<(i64, f32)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(owner.to_string())
            .bind(vector_text(vector))
            .bind(items)
            .bind(limit_value)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        // relaxed_order may hand rows back slightly out of order.
        hits.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        Ok(hits)
    }
}

#[cfg(test)]
mod tests {
    use super::{any_word_query, major_minor, vector_bytes, vector_from_bytes, vector_text};

    #[test]
    fn queries_keep_words_only_once_each() {
        assert_eq!(
            any_word_query("How do I install; install FROM source?").as_deref(),
            Some("'how' | 'do' | 'i' | 'install' | 'from' | 'source'")
        );
        assert_eq!(any_word_query("?!* '\\ &|"), None);
        assert_eq!(any_word_query("o'clock").as_deref(), Some("'o' | 'clock'"));
        assert_eq!(
            any_word_query(&"word ".repeat(1000)).as_deref(),
            Some("'word'")
        );
    }

    #[test]
    fn vectors_round_trip_through_bytes() {
        let vector = vec![0.5, -1.25, f32::MIN_POSITIVE];
        assert_eq!(
            vector_from_bytes(&vector_bytes(&vector), 1).unwrap(),
            vector
        );
        assert!(vector_from_bytes(&[1, 2, 3], 1).is_err());
    }

    #[test]
    fn vectors_are_written_as_pgvector_reads_them() {
        assert_eq!(vector_text(&[0.5, -1.0, 1e-7]), "[0.5,-1,0.0000001]");
    }

    #[test]
    fn versions_compare_by_major_and_minor() {
        assert_eq!(major_minor("0.8.6"), Some((0, 8)));
        assert_eq!(major_minor("0.10"), Some((0, 10)));
        assert_eq!(major_minor("x"), None);
        assert!(major_minor("0.7.4").unwrap() < (0, 8));
    }
}
