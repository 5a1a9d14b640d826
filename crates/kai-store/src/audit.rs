//! The audit log's rows. The store keeps entries, the head and checkpoints as `kai-audit` made
//! them; what it owns is that appends from every process take turns on the head row and are
//! durable when `append_audit` returns.

use sqlx::Connection as _;
use time::OffsetDateTime;

use crate::row::Columns;
use crate::{Pool, Store, StoreError, from_millis, millis, stored_int, with_pool};

/// Rows per INSERT statement: 7 parameters each stays far below SQLite's 32,766.
const AUDIT_ROWS_PER_INSERT: usize = 500;

/// One stored entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    /// Its place in the log, from 0: the Merkle leaf index.
    pub seq: u64,
    /// Its time (a copy of the entry's, for queries).
    pub created_at: OffsetDateTime,
    /// Who acted (a copy of the entry's).
    pub actor: String,
    /// What they did (a copy of the entry's).
    pub action: String,
    /// The entry as canonical JSON: what is hashed and signed.
    pub entry: String,
    /// Its RFC 6962 leaf hash.
    pub hash: Vec<u8>,
    /// The node's Ed25519 signature over `entry`; `None` until the vault is unlocked.
    pub signature: Option<Vec<u8>>,
}

/// The log's head: where it ends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditHead {
    /// Entries in the log.
    pub size: u64,
    /// The last entry's hash, which the next chains to.
    pub last_hash: Option<Vec<u8>>,
    /// The Merkle tree's frontier, as `kai-audit` serialises it.
    pub frontier: Vec<u8>,
    /// The first entry not yet signed, if any.
    pub unsigned_from: Option<u64>,
}

/// A signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointRow {
    /// Entries the checkpoint covers.
    pub size: u64,
    /// Their Merkle root.
    pub root: Vec<u8>,
    /// When it was made.
    pub created_at: OffsetDateTime,
    /// The signed body (canonical JSON).
    pub body: String,
    /// The node's signature over `body`.
    pub signature: Vec<u8>,
}

/// Which entries a query wants, newest last.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only this actor's.
    pub actor: Option<String>,
    /// Only this action's.
    pub action: Option<String>,
    /// Only at or after this time.
    pub since: Option<OffsetDateTime>,
    /// Only before this time.
    pub until: Option<OffsetDateTime>,
    /// Only after this entry (for paging).
    pub after_seq: Option<u64>,
    /// At most this many.
    pub limit: u32,
}

fn audit_from_row(row: &impl Columns) -> Result<AuditRow, StoreError> {
    let seq = row.int("seq")?;
    Ok(AuditRow {
        seq: u64::try_from(seq).map_err(|_| StoreError::Corrupt {
            table: "audit_entries",
            message: format!("negative seq {seq}"),
        })?,
        created_at: from_millis(row.int("created_at")?),
        actor: row.text("actor")?,
        action: row.text("action")?,
        entry: row.text("entry")?,
        hash: row.blob("hash")?,
        signature: row.opt_blob("signature")?,
    })
}

fn head_from_row(row: &impl Columns) -> Result<AuditHead, StoreError> {
    let corrupt = |message: String| StoreError::Corrupt {
        table: "audit_head",
        message,
    };
    Ok(AuditHead {
        size: u64::try_from(row.int("size")?).map_err(|_| corrupt("negative size".into()))?,
        last_hash: row.opt_blob("last_hash")?,
        frontier: row.blob("frontier")?,
        unsigned_from: row
            .opt_int("unsigned_from")?
            .map(u64::try_from)
            .transpose()
            .map_err(|_| corrupt("negative unsigned_from".into()))?,
    })
}

macro_rules! append_in {
    ($conn:expr, $now:expr, $build:expr) => {{
        let mut tx = $conn.begin().await?;
        // The write comes first: it takes SQLite's write lock and PostgreSQL's row lock, so
        // appenders in every process queue here and each sees the head the last one left.
        let row = sqlx::query(
            "UPDATE audit_head SET updated_at = $1 WHERE id = 1 \
             RETURNING size, last_hash, frontier, unsigned_from",
        )
        .bind($now)
        .fetch_one(&mut *tx)
        .await?;
        let head = head_from_row(&row)?;
        let (rows, new_head, output) = $build(&head);
        for chunk in rows.chunks(AUDIT_ROWS_PER_INSERT) {
            let mut insert = sqlx::QueryBuilder::new(
                "INSERT INTO audit_entries (seq, created_at, actor, action, entry, hash, signature) ",
            );
            insert.push_values(chunk, |mut values, row: &AuditRow| {
                values
                    .push_bind(i64::try_from(row.seq).unwrap_or(i64::MAX))
                    .push_bind(millis(row.created_at))
                    .push_bind(&row.actor)
                    .push_bind(&row.action)
                    .push_bind(&row.entry)
                    .push_bind(&row.hash)
                    .push_bind(row.signature.as_deref());
            });
            insert.build().execute(&mut *tx).await?;
        }
        write_head!(&mut *tx, &new_head);
        tx.commit().await?;
        output
    }};
}

macro_rules! write_head {
    ($tx:expr, $head:expr) => {{
        let head: &AuditHead = $head;
        sqlx::query(
            "UPDATE audit_head SET size = $1, last_hash = $2, frontier = $3, unsigned_from = $4 \
             WHERE id = 1",
        )
        .bind(stored_int(head.size, "audit log size")?)
        .bind(head.last_hash.as_deref())
        .bind(&head.frontier)
        .bind(
            head.unsigned_from
                .map(|seq| stored_int(seq, "audit seq"))
                .transpose()?,
        )
        .execute($tx)
        .await?;
    }};
}

impl Store {
    /// Appends entries in one transaction. `build` is called inside it with the head as it is
    /// then, and returns the rows to insert (numbered from the head's size), the new head, and
    /// anything for the caller. Durable on return: on SQLite this transaction commits with
    /// `synchronous = FULL` (the rest of kai runs at NORMAL, which may lose the last commits to
    /// a power cut), and PostgreSQL's commits are durable already.
    pub async fn append_audit<T>(
        &self,
        build: impl FnOnce(&AuditHead) -> (Vec<AuditRow>, AuditHead, T),
    ) -> Result<T, StoreError> {
        let now = millis(OffsetDateTime::now_utc());
        match &self.pool {
            Pool::Sqlite(pool) => {
                let mut conn = pool.acquire().await?;
                sqlx::query("PRAGMA synchronous = FULL")
                    .execute(&mut *conn)
                    .await?;
                let result: Result<T, StoreError> =
                    async { Ok(append_in!(conn, now, build)) }.await;
                // The connection goes back to the pool either way; leave it as the pool made it.
                let reset = sqlx::query("PRAGMA synchronous = NORMAL")
                    .execute(&mut *conn)
                    .await;
                let output = result?;
                reset?;
                Ok(output)
            }
            Pool::Postgres(pool) => {
                let mut conn = pool.acquire().await?;
                Ok(append_in!(conn, now, build))
            }
        }
    }

    /// The head as it is now.
    pub async fn audit_head(&self) -> Result<AuditHead, StoreError> {
        with_pool!(self, |pool| {
            let row = sqlx::query(
                "SELECT size, last_hash, frontier, unsigned_from FROM audit_head WHERE id = 1",
            )
            .fetch_one(pool)
            .await?;
            head_from_row(&row)
        })
    }

    /// Fills in signatures of entries appended while the vault was locked, oldest first, in one
    /// transaction that begins by checking the head still says they are unsigned from `from`.
    /// `sign` gets each unsigned entry and returns its signature. Returns how many were signed.
    pub async fn sign_audit_backlog(
        &self,
        from: u64,
        mut sign: impl FnMut(&AuditRow) -> Vec<u8>,
    ) -> Result<u64, StoreError> {
        let from_seq = stored_int(from, "audit seq")?;
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let claimed = sqlx::query(
                "UPDATE audit_head SET unsigned_from = NULL WHERE id = 1 AND unsigned_from = $1",
            )
            .bind(from_seq)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if claimed != 1 {
                // Another process signed them first.
                return Ok(0);
            }
            let rows = sqlx::query(
                "SELECT * FROM audit_entries WHERE seq >= $1 AND signature IS NULL ORDER BY seq",
            )
            .bind(from_seq)
            .fetch_all(&mut *tx)
            .await?;
            let mut signed = 0;
            for row in &rows {
                let entry = audit_from_row(row)?;
                let signature = sign(&entry);
                sqlx::query("UPDATE audit_entries SET signature = $1 WHERE seq = $2")
                    .bind(signature)
                    .bind(stored_int(entry.seq, "audit seq")?)
                    .execute(&mut *tx)
                    .await?;
                signed += 1;
            }
            tx.commit().await?;
            Ok(signed)
        })
    }

    /// Entries matching `filter`, in log order.
    pub async fn audit_entries(&self, filter: &AuditFilter) -> Result<Vec<AuditRow>, StoreError> {
        let after = filter
            .after_seq
            .map(|seq| stored_int(seq, "audit seq"))
            .transpose()?
            .unwrap_or(-1);
        with_pool!(self, |pool| {
            let rows = sqlx::query(
                "SELECT * FROM audit_entries WHERE seq > $1 \
                 AND ($2 IS NULL OR actor = $2) AND ($3 IS NULL OR action = $3) \
                 AND ($4 IS NULL OR created_at >= $4) AND ($5 IS NULL OR created_at < $5) \
                 ORDER BY seq LIMIT $6",
            )
            .bind(after)
            .bind(filter.actor.as_deref())
            .bind(filter.action.as_deref())
            .bind(filter.since.map(millis))
            .bind(filter.until.map(millis))
            .bind(i64::from(filter.limit))
            .fetch_all(pool)
            .await?;
            rows.iter().map(audit_from_row).collect()
        })
    }

    /// Entries `from..to` in order, for verification and export; reads in pages so that a long
    /// log is never held whole by the driver.
    pub async fn audit_range(&self, from: u64, to: u64) -> Result<Vec<AuditRow>, StoreError> {
        let (from, to) = (stored_int(from, "audit seq")?, stored_int(to, "audit seq")?);
        with_pool!(self, |pool| {
            let rows = sqlx::query(
                "SELECT * FROM audit_entries WHERE seq >= $1 AND seq < $2 ORDER BY seq",
            )
            .bind(from)
            .bind(to)
            .fetch_all(pool)
            .await?;
            rows.iter().map(audit_from_row).collect()
        })
    }

    /// The leaf hashes of entries `0..size`, in order: what proofs are computed from.
    pub async fn audit_hashes(&self, size: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        let size = stored_int(size, "audit seq")?;
        with_pool!(self, |pool| {
            let hashes: Vec<Vec<u8>> =
                sqlx::query_scalar("SELECT hash FROM audit_entries WHERE seq < $1 ORDER BY seq")
                    .bind(size)
                    .fetch_all(pool)
                    .await?;
            Ok(hashes)
        })
    }

    /// Stores a checkpoint; a second one of the same size is ignored.
    pub async fn insert_audit_checkpoint(
        &self,
        checkpoint: &CheckpointRow,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO audit_checkpoints (size, root, created_at, body, signature) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (size) DO NOTHING",
            )
            .bind(stored_int(checkpoint.size, "audit log size")?)
            .bind(&checkpoint.root)
            .bind(millis(checkpoint.created_at))
            .bind(&checkpoint.body)
            .bind(&checkpoint.signature)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// The size the newest checkpoint covers; 0 when there is none.
    pub async fn latest_audit_checkpoint(&self) -> Result<u64, StoreError> {
        with_pool!(self, |pool| {
            let size: Option<i64> = sqlx::query_scalar("SELECT MAX(size) FROM audit_checkpoints")
                .fetch_one(pool)
                .await?;
            Ok(size.and_then(|size| u64::try_from(size).ok()).unwrap_or(0))
        })
    }

    /// Every checkpoint, smallest first.
    pub async fn audit_checkpoints(&self) -> Result<Vec<CheckpointRow>, StoreError> {
        with_pool!(self, |pool| {
            let rows = sqlx::query("SELECT * FROM audit_checkpoints ORDER BY size")
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|row| {
                    let size = row.int("size")?;
                    Ok(CheckpointRow {
                        size: u64::try_from(size).map_err(|_| StoreError::Corrupt {
                            table: "audit_checkpoints",
                            message: format!("negative size {size}"),
                        })?,
                        root: row.blob("root")?,
                        created_at: from_millis(row.int("created_at")?),
                        body: row.text("body")?,
                        signature: row.blob("signature")?,
                    })
                })
                .collect()
        })
    }
}
