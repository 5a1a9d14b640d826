//! Knowledge's records: collections, artifacts and their versions, the content-addressed blobs
//! versions point to, and the tags of artifacts (and, later, notes).
//!
//! Every read and write names the owner as well as the id, and another owner's item is treated
//! exactly like a missing one: no caller can reach what is not its own by guessing ids.

use kai_core::{ArtifactId, CollectionId, UserId};
use time::{Duration, OffsetDateTime};

use crate::row::Columns;
use crate::{
    Store, StoreError, count_from_row, from_millis, is_foreign_key_violation, is_unique_violation,
    millis, stored_int, truncate, with_pool,
};

/// A named group of artifacts (and notes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectionRecord {
    /// Its id.
    pub id: CollectionId,
    /// Whose it is.
    pub owner_id: UserId,
    /// Its name, unique per owner.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// When it was made.
    pub created_at: OffsetDateTime,
    /// When it was last renamed or described.
    pub updated_at: OffsetDateTime,
}

/// How far indexing a version has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexState {
    /// Waiting for (or in) the indexing job.
    Pending,
    /// Searchable by its words; its vectors wait for the embedding model (the version's
    /// `index_error` says why).
    KeywordOnly,
    /// Searchable.
    Indexed,
    /// Its text could not be extracted; the version's `index_error` says why.
    Failed,
    /// Kept but not searched: an opaque binary (an image, an archive).
    Skipped,
    /// A newer version is the one searched.
    Superseded,
}

impl IndexState {
    /// Its name: `pending`, `indexed`, `failed`, `skipped` or `superseded`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            IndexState::Pending => "pending",
            IndexState::KeywordOnly => "keyword_only",
            IndexState::Indexed => "indexed",
            IndexState::Failed => "failed",
            IndexState::Skipped => "skipped",
            IndexState::Superseded => "superseded",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<IndexState> {
        Some(match text {
            "pending" => IndexState::Pending,
            "keyword_only" => IndexState::KeywordOnly,
            "indexed" => IndexState::Indexed,
            "failed" => IndexState::Failed,
            "skipped" => IndexState::Skipped,
            "superseded" => IndexState::Superseded,
            _ => return None,
        })
    }
}

/// What kind of item a chunk, a tag or a search hit belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ItemKind {
    /// An uploaded file.
    Artifact,
    /// A note written in kai.
    Note,
}

impl ItemKind {
    /// Its name: `artifact` or `note`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::Artifact => "artifact",
            ItemKind::Note => "note",
        }
    }

    /// The kind a name names.
    #[must_use]
    pub fn parse(text: &str) -> Option<ItemKind> {
        match text {
            "artifact" => Some(ItemKind::Artifact),
            "note" => Some(ItemKind::Note),
            _ => None,
        }
    }

    /// Its items' table.
    pub(crate) fn table(self) -> &'static str {
        match self {
            ItemKind::Artifact => "artifacts",
            ItemKind::Note => "notes",
        }
    }

    /// Its versions' table, and the column there naming the item.
    pub(crate) fn versions(self) -> (&'static str, &'static str) {
        match self {
            ItemKind::Artifact => ("artifact_versions", "artifact_id"),
            ItemKind::Note => ("note_versions", "note_id"),
        }
    }
}

/// A version to add: the blob is already stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewVersion {
    /// The BLAKE3 hash of the content, in hex.
    pub blob_hash: String,
    /// The content's size in bytes.
    pub size: u64,
    /// The MIME type kai sniffed from the content.
    pub mime: String,
    /// The file name it was uploaded under, if any.
    pub file_name: Option<String>,
    /// Who added it: `user:<id>` or `run:<id>`.
    pub created_by: String,
    /// `Pending` for text to index, `Skipped` for an opaque binary.
    pub index_state: IndexState,
}

/// An artifact to create with its first version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewArtifact {
    /// Whose it is.
    pub owner_id: UserId,
    /// The collection it goes into, if any (the owner's own: checked).
    pub collection_id: Option<CollectionId>,
    /// Its title.
    pub title: String,
    /// Where it came from (a URL, a path), if known.
    pub source: Option<String>,
    /// Free metadata, as JSON object text.
    pub metadata: String,
    /// Its tags.
    pub tags: Vec<String>,
    /// Its first version.
    pub version: NewVersion,
}

/// An artifact as stored, with its tags and current version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactRecord {
    /// Its id.
    pub id: ArtifactId,
    /// Whose it is.
    pub owner_id: UserId,
    /// The collection it is in, if any.
    pub collection_id: Option<CollectionId>,
    /// Its title.
    pub title: String,
    /// Where it came from, if known.
    pub source: Option<String>,
    /// Who created it: `user:<id>` or `run:<id>`.
    pub created_by: String,
    /// Free metadata, as JSON object text.
    pub metadata: String,
    /// Its tags, sorted.
    pub tags: Vec<String>,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// When it or its versions last changed.
    pub updated_at: OffsetDateTime,
    /// Its newest version.
    pub current: VersionRecord,
}

/// One version of an artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRecord {
    /// Its number, from 1.
    pub version: u64,
    /// The BLAKE3 hash of its content, in hex.
    pub blob_hash: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its MIME type, as sniffed.
    pub mime: String,
    /// The file name it was uploaded under, if any.
    pub file_name: Option<String>,
    /// Who added it.
    pub created_by: String,
    /// When it was added.
    pub created_at: OffsetDateTime,
    /// How far indexing it has come.
    pub index_state: IndexState,
    /// Why indexing failed, when it did.
    pub index_error: Option<String>,
    /// How many chunks of it are searchable.
    pub chunk_count: u64,
}

/// Changes to an artifact's metadata; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArtifactUpdate {
    /// A new title.
    pub title: Option<String>,
    /// Another collection, or `Some(None)` for none.
    pub collection_id: Option<Option<CollectionId>>,
    /// New tags, replacing the old.
    pub tags: Option<Vec<String>>,
    /// New metadata (JSON object text), replacing the old.
    pub metadata: Option<String>,
}

/// Which of an owner's artifacts to list, newest change first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArtifactFilter {
    /// Only those in this collection.
    pub collection_id: Option<CollectionId>,
    /// Only those with this tag.
    pub tag: Option<String>,
    /// At most this many.
    pub limit: u32,
    /// Only those changed before this point of an earlier page: its last `(updated_at, id)`.
    pub before: Option<(OffsetDateTime, ArtifactId)>,
}

/// Which of an owner's items search may answer with; every set field must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ItemFilter {
    /// In one of these collections.
    pub collections: Vec<CollectionId>,
    /// Carrying every one of these tags.
    pub tags: Vec<String>,
    /// Of this kind (`artifact` or `note`).
    pub kind: Option<String>,
    /// Whose MIME type starts with this (`text/`, `application/pdf`).
    pub mime_prefix: Option<String>,
    /// Changed at or after this time.
    pub since: Option<OffsetDateTime>,
    /// Changed before this time.
    pub until: Option<OffsetDateTime>,
}

impl ItemFilter {
    /// Whether the filter lets everything through.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        *self == ItemFilter::default()
    }
}

macro_rules! artifact_columns {
    () => {
        "a.id, a.owner_id, a.collection_id, a.title, a.source, a.created_by, a.metadata, \
         a.created_at, a.updated_at, v.version, v.blob_hash, v.size, v.mime, v.file_name, \
         v.created_by AS version_created_by, v.created_at AS version_created_at, v.index_state, \
         v.index_error, v.chunk_count"
    };
}

macro_rules! version_columns {
    () => {
        "version, blob_hash, size, mime, file_name, created_by AS version_created_by, \
         created_at AS version_created_at, index_state, index_error, chunk_count"
    };
}

fn corrupt(table: &'static str) -> impl Fn(String) -> StoreError {
    move |message| StoreError::Corrupt { table, message }
}

fn collection(row: &impl Columns) -> Result<CollectionRecord, StoreError> {
    let id = row.text("id")?;
    let owner = row.text("owner_id")?;
    Ok(CollectionRecord {
        id: id
            .parse()
            .map_err(|_| corrupt("collections")(format!("id `{id}` is not a UUID")))?,
        owner_id: owner
            .parse()
            .map_err(|_| corrupt("collections")(format!("collection {id}: bad owner id")))?,
        name: row.text("name")?,
        description: row.text("description")?,
        created_at: from_millis(row.int("created_at")?),
        updated_at: from_millis(row.int("updated_at")?),
    })
}

fn version(row: &impl Columns) -> Result<VersionRecord, StoreError> {
    let state = row.text("index_state")?;
    Ok(VersionRecord {
        version: count_from_row(row.int("version")?, "artifact_versions", "version")?,
        blob_hash: row.text("blob_hash")?,
        size: count_from_row(row.int("size")?, "artifact_versions", "size")?,
        mime: row.text("mime")?,
        file_name: row.opt_text("file_name")?,
        created_by: row.text("version_created_by")?,
        created_at: from_millis(row.int("version_created_at")?),
        index_state: IndexState::parse(&state).ok_or_else(|| {
            corrupt("artifact_versions")(format!("unknown index state `{state}`"))
        })?,
        index_error: row.opt_text("index_error")?,
        chunk_count: count_from_row(row.int("chunk_count")?, "artifact_versions", "chunk_count")?,
    })
}

fn artifact(row: &impl Columns) -> Result<ArtifactRecord, StoreError> {
    let bad = corrupt("artifacts");
    let id = row.text("id")?;
    let owner = row.text("owner_id")?;
    let collection = row
        .opt_text("collection_id")?
        .map(|text| {
            text.parse()
                .map_err(|_| bad(format!("artifact {id}: bad collection id")))
        })
        .transpose()?;
    Ok(ArtifactRecord {
        id: id
            .parse()
            .map_err(|_| bad(format!("id `{id}` is not a UUID")))?,
        owner_id: owner
            .parse()
            .map_err(|_| bad(format!("artifact {id}: bad owner id")))?,
        collection_id: collection,
        title: row.text("title")?,
        source: row.opt_text("source")?,
        created_by: row.text("created_by")?,
        metadata: row.text("metadata")?,
        tags: Vec::new(),
        created_at: from_millis(row.int("created_at")?),
        updated_at: from_millis(row.int("updated_at")?),
        current: version(row)?,
    })
}

/// Inside a transaction: fails it with [`StoreError::Conflict`] ("no such collection") unless
/// `$collection` (an id as text, if any) is one of `$owner`'s collections.
macro_rules! require_collection {
    ($tx:expr, $collection:expr, $owner:expr) => {
        if let Some(collection) = $collection {
            let owned: Option<i32> =
                sqlx::query_scalar("SELECT 1 FROM collections WHERE id = $1 AND owner_id = $2")
                    .bind(collection)
                    .bind($owner)
                    .fetch_optional(&mut *$tx)
                    .await?;
            if owned.is_none() {
                return Err(StoreError::Conflict("no such collection"));
            }
        }
    };
}
pub(crate) use require_collection;

/// Inside a transaction: tags `$item` of `$owner` with each of `$tags`.
macro_rules! insert_tags {
    ($tx:expr, $item:expr, $owner:expr, $tags:expr) => {
        for tag in $tags {
            sqlx::query("INSERT INTO item_tags (item_id, owner_id, tag) VALUES ($1, $2, $3)")
                .bind($item)
                .bind($owner)
                .bind(tag)
                .execute(&mut *$tx)
                .await?;
        }
    };
}
pub(crate) use insert_tags;

/// The tags as stored: trimmed, without duplicates, sorted.
pub(crate) fn normalised_tags(tags: &[String]) -> Vec<String> {
    let mut tags: Vec<String> = tags.iter().map(|t| t.trim().to_owned()).collect();
    tags.retain(|t| !t.is_empty());
    tags.sort();
    tags.dedup();
    tags
}

impl Store {
    /// Makes a collection. Fails with [`StoreError::Conflict`] when the owner already has one of
    /// that name.
    pub async fn create_collection(
        &self,
        owner: UserId,
        name: &str,
        description: &str,
    ) -> Result<CollectionRecord, StoreError> {
        let now = truncate(OffsetDateTime::now_utc());
        let record = CollectionRecord {
            id: CollectionId::new(),
            owner_id: owner,
            name: name.to_owned(),
            description: description.to_owned(),
            created_at: now,
            updated_at: now,
        };
        let inserted = with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO collections (id, owner_id, name, description, created_at, \
                     updated_at) VALUES ($1, $2, $3, $4, $5, $5)",
            )
            .bind(record.id.to_string())
            .bind(owner.to_string())
            .bind(name)
            .bind(description)
            .bind(millis(now))
            .execute(pool)
            .await
            .map(|_| ())
        });
        match inserted {
            Ok(_) => Ok(record),
            Err(err) if is_unique_violation(&err) => {
                Err(StoreError::Conflict("a collection with that name"))
            }
            Err(err) => Err(err.into()),
        }
    }

    /// The owner's collections, by name.
    pub async fn collections(&self, owner: UserId) -> Result<Vec<CollectionRecord>, StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
                "SELECT id, owner_id, name, description, created_at, updated_at \
                 FROM collections WHERE owner_id = $1 ORDER BY name",
            )
            .bind(owner.to_string())
            .fetch_all(pool)
            .await?
            .iter()
            .map(collection)
            .collect()
        })
    }

    /// One of the owner's collections.
    pub async fn collection(
        &self,
        owner: UserId,
        id: CollectionId,
    ) -> Result<Option<CollectionRecord>, StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
                "SELECT id, owner_id, name, description, created_at, updated_at \
                 FROM collections WHERE owner_id = $1 AND id = $2",
            )
            .bind(owner.to_string())
            .bind(id.to_string())
            .fetch_optional(pool)
            .await?
            .map(|row| collection(&row))
            .transpose()
        })
    }

    /// Deletes one of the owner's collections; what was in it stays, in no collection.
    pub async fn delete_collection(
        &self,
        owner: UserId,
        id: CollectionId,
    ) -> Result<bool, StoreError> {
        let deleted = with_pool!(self, |pool| {
            sqlx::query("DELETE FROM collections WHERE owner_id = $1 AND id = $2")
                .bind(owner.to_string())
                .bind(id.to_string())
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(deleted == 1)
    }

    /// Records a blob whose bytes are now on disk; recording it again is harmless and keeps it
    /// from being collected.
    pub async fn record_blob(&self, hash: &str, size: u64) -> Result<(), StoreError> {
        let size = stored_int(size, "a blob's size")?;
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO blobs (hash, size, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (hash) DO UPDATE SET orphaned_at = NULL",
            )
            .bind(hash)
            .bind(size)
            .bind(millis(OffsetDateTime::now_utc()))
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// One pass of blob collection: marks blobs no version points at as orphaned (from now),
    /// and returns those that have stayed orphaned for longer than `grace`, which the caller
    /// deletes from disk and then with [`Store::forget_blob`].
    pub async fn orphaned_blobs(&self, grace: Duration) -> Result<Vec<String>, StoreError> {
        let now = OffsetDateTime::now_utc();
        with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE blobs SET orphaned_at = $1 WHERE orphaned_at IS NULL AND NOT EXISTS \
                     (SELECT 1 FROM artifact_versions v WHERE v.blob_hash = blobs.hash)",
            )
            .bind(millis(now))
            .execute(pool)
            .await?;
            // A blob referenced again since it was marked is not orphaned any more.
            sqlx::query(
                "UPDATE blobs SET orphaned_at = NULL WHERE orphaned_at IS NOT NULL AND EXISTS \
                     (SELECT 1 FROM artifact_versions v WHERE v.blob_hash = blobs.hash)",
            )
            .execute(pool)
            .await?;
            Ok(sqlx::query_scalar(
                "SELECT hash FROM blobs WHERE orphaned_at IS NOT NULL AND orphaned_at <= $1 \
                 ORDER BY hash",
            )
            .bind(millis(now - grace))
            .fetch_all(pool)
            .await?)
        })
    }

    /// Forgets an orphaned blob whose bytes were deleted; `false` (and nothing changes) when a
    /// version points at it again.
    pub async fn forget_blob(&self, hash: &str) -> Result<bool, StoreError> {
        let deleted = with_pool!(self, |pool| {
            sqlx::query(
                "DELETE FROM blobs WHERE hash = $1 AND orphaned_at IS NOT NULL AND NOT EXISTS \
                     (SELECT 1 FROM artifact_versions v WHERE v.blob_hash = blobs.hash)",
            )
            .bind(hash)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(deleted == 1)
    }

    /// Stores an artifact with its first version. The blob must have been recorded. Fails with
    /// [`StoreError::Conflict`] when the collection is not the owner's.
    pub async fn create_artifact(&self, new: &NewArtifact) -> Result<ArtifactRecord, StoreError> {
        let now = truncate(OffsetDateTime::now_utc());
        let id = ArtifactId::new();
        let tags = normalised_tags(&new.tags);
        let size = stored_int(new.version.size, "an artifact's size")?;
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let inserted = sqlx::query(
                "INSERT INTO artifacts (id, owner_id, collection_id, title, source, created_by, \
                     metadata, current_version, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $8)",
            )
            .bind(id.to_string())
            .bind(new.owner_id.to_string())
            .bind(new.collection_id.map(|c| c.to_string()))
            .bind(&new.title)
            .bind(&new.source)
            .bind(&new.version.created_by)
            .bind(&new.metadata)
            .bind(millis(now))
            .execute(&mut *tx)
            .await;
            match inserted {
                Err(err) if is_foreign_key_violation(&err) => {
                    return Err(StoreError::Conflict("no such collection"));
                }
                other => other?,
            };
            require_collection!(
                tx,
                new.collection_id.map(|c| c.to_string()),
                new.owner_id.to_string()
            );
            sqlx::query(
                "INSERT INTO artifact_versions (artifact_id, version, blob_hash, size, mime, \
                     file_name, created_by, created_at, index_state) \
                 VALUES ($1, 1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(id.to_string())
            .bind(&new.version.blob_hash)
            .bind(size)
            .bind(&new.version.mime)
            .bind(&new.version.file_name)
            .bind(&new.version.created_by)
            .bind(millis(now))
            .bind(new.version.index_state.as_str())
            .execute(&mut *tx)
            .await?;
            insert_tags!(tx, id.to_string(), new.owner_id.to_string(), &tags);
            tx.commit().await?;
        });
        Ok(ArtifactRecord {
            id,
            owner_id: new.owner_id,
            collection_id: new.collection_id,
            title: new.title.clone(),
            source: new.source.clone(),
            created_by: new.version.created_by.clone(),
            metadata: new.metadata.clone(),
            tags,
            created_at: now,
            updated_at: now,
            current: VersionRecord {
                version: 1,
                blob_hash: new.version.blob_hash.clone(),
                size: new.version.size,
                mime: new.version.mime.clone(),
                file_name: new.version.file_name.clone(),
                created_by: new.version.created_by.clone(),
                created_at: now,
                index_state: new.version.index_state,
                index_error: None,
                chunk_count: 0,
            },
        })
    }

    /// Adds a version to one of the owner's artifacts, which becomes its current one. `None`
    /// when the artifact is not the owner's (or does not exist).
    pub async fn add_artifact_version(
        &self,
        owner: UserId,
        id: ArtifactId,
        new: &NewVersion,
    ) -> Result<Option<ArtifactRecord>, StoreError> {
        let now = millis(OffsetDateTime::now_utc());
        let size = stored_int(new.size, "an artifact's size")?;
        let added = with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            // Taking the next number and writing it in one statement keeps two simultaneous
            // uploads from both becoming version 2: the second waits for the first's row lock
            // (PostgreSQL) or write lock (SQLite).
            let next: Option<i64> = sqlx::query_scalar(
                "UPDATE artifacts SET current_version = current_version + 1, updated_at = $3 \
                 WHERE id = $1 AND owner_id = $2 RETURNING current_version",
            )
            .bind(id.to_string())
            .bind(owner.to_string())
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(next) = next else {
                return Ok(None);
            };
            sqlx::query(
                "INSERT INTO artifact_versions (artifact_id, version, blob_hash, size, mime, \
                     file_name, created_by, created_at, index_state) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(id.to_string())
            .bind(next)
            .bind(&new.blob_hash)
            .bind(size)
            .bind(&new.mime)
            .bind(&new.file_name)
            .bind(&new.created_by)
            .bind(now)
            .bind(new.index_state.as_str())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            true
        });
        debug_assert!(added);
        self.artifact(owner, id).await
    }

    /// One of the owner's artifacts with its current version.
    pub async fn artifact(
        &self,
        owner: UserId,
        id: ArtifactId,
    ) -> Result<Option<ArtifactRecord>, StoreError> {
        let found = with_pool!(self, |pool| {
            sqlx::query(concat!(
                "SELECT ",
                artifact_columns!(),
                " FROM artifacts a JOIN artifact_versions v \
                     ON v.artifact_id = a.id AND v.version = a.current_version \
                 WHERE a.id = $1 AND a.owner_id = $2"
            ))
            .bind(id.to_string())
            .bind(owner.to_string())
            .fetch_optional(pool)
            .await?
            .map(|row| artifact(&row))
            .transpose()?
        });
        let Some(mut found) = found else {
            return Ok(None);
        };
        found.tags = self.tags_of(&found.id.to_string()).await?;
        Ok(Some(found))
    }

    /// The owner's artifacts, most recently changed first.
    pub async fn artifacts(
        &self,
        owner: UserId,
        filter: &ArtifactFilter,
    ) -> Result<Vec<ArtifactRecord>, StoreError> {
        let (before_at, before_id) = filter.before.map_or((i64::MAX, String::new()), |(at, id)| {
            (millis(at), id.to_string())
        });
        let mut found = with_pool!(self, |pool| {
            sqlx::query(concat!(
                "SELECT ",
                artifact_columns!(),
                " FROM artifacts a JOIN artifact_versions v \
                     ON v.artifact_id = a.id AND v.version = a.current_version \
                 WHERE a.owner_id = $1 \
                   AND ($2 IS NULL OR a.collection_id = $2) \
                   AND ($3 IS NULL OR EXISTS (SELECT 1 FROM item_tags t \
                       WHERE t.item_id = a.id AND t.tag = $3)) \
                   AND (a.updated_at < $4 OR (a.updated_at = $4 AND a.id < $5) OR $5 = '') \
                 ORDER BY a.updated_at DESC, a.id DESC LIMIT $6"
            ))
            .bind(owner.to_string())
            .bind(filter.collection_id.map(|c| c.to_string()))
            .bind(&filter.tag)
            .bind(before_at)
            .bind(before_id)
            .bind(i64::from(filter.limit))
            .fetch_all(pool)
            .await?
            .iter()
            .map(artifact)
            .collect::<Result<Vec<_>, _>>()?
        });
        for record in &mut found {
            record.tags = self.tags_of(&record.id.to_string()).await?;
        }
        Ok(found)
    }

    pub(crate) async fn tags_of(&self, item: &str) -> Result<Vec<String>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT tag FROM item_tags WHERE item_id = $1 ORDER BY tag")
                .bind(item)
                .fetch_all(pool)
                .await?
        }))
    }

    /// Every version of one of the owner's artifacts, oldest first; empty when it is not the
    /// owner's.
    pub async fn artifact_versions(
        &self,
        owner: UserId,
        id: ArtifactId,
    ) -> Result<Vec<VersionRecord>, StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(concat!(
                "SELECT ",
                version_columns!(),
                " FROM artifact_versions WHERE artifact_id = $1 AND EXISTS \
                     (SELECT 1 FROM artifacts a WHERE a.id = $1 AND a.owner_id = $2) \
                 ORDER BY version"
            ))
            .bind(id.to_string())
            .bind(owner.to_string())
            .fetch_all(pool)
            .await?
            .iter()
            .map(version)
            .collect()
        })
    }

    /// One version of one of the owner's artifacts.
    pub async fn artifact_version(
        &self,
        owner: UserId,
        id: ArtifactId,
        number: u64,
    ) -> Result<Option<VersionRecord>, StoreError> {
        let number = stored_int(number, "a version number")?;
        with_pool!(self, |pool| {
            sqlx::query(concat!(
                "SELECT ",
                version_columns!(),
                " FROM artifact_versions WHERE artifact_id = $1 AND version = $3 AND EXISTS \
                     (SELECT 1 FROM artifacts a WHERE a.id = $1 AND a.owner_id = $2)"
            ))
            .bind(id.to_string())
            .bind(owner.to_string())
            .bind(number)
            .fetch_optional(pool)
            .await?
            .map(|row| version(&row))
            .transpose()
        })
    }

    /// Changes one of the owner's artifacts' metadata. `None` when it is not the owner's;
    /// [`StoreError::Conflict`] when the collection is not.
    pub async fn update_artifact(
        &self,
        owner: UserId,
        id: ArtifactId,
        update: &ArtifactUpdate,
    ) -> Result<Option<ArtifactRecord>, StoreError> {
        let now = millis(OffsetDateTime::now_utc());
        let collection = update.collection_id.map(|c| c.map(|c| c.to_string()));
        let found = with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let changed = sqlx::query(
                "UPDATE artifacts SET title = COALESCE($3, title), \
                     collection_id = CASE WHEN $4 THEN $5 ELSE collection_id END, \
                     metadata = COALESCE($6, metadata), updated_at = $7 \
                 WHERE id = $1 AND owner_id = $2",
            )
            .bind(id.to_string())
            .bind(owner.to_string())
            .bind(&update.title)
            .bind(collection.is_some())
            .bind(collection.clone().flatten())
            .bind(&update.metadata)
            .bind(now)
            .execute(&mut *tx)
            .await;
            let changed = match changed {
                Err(err) if is_foreign_key_violation(&err) => {
                    return Err(StoreError::Conflict("no such collection"));
                }
                other => other?.rows_affected(),
            };
            if changed == 0 {
                return Ok(None);
            }
            require_collection!(tx, collection.clone().flatten(), owner.to_string());
            if let Some(tags) = &update.tags {
                sqlx::query("DELETE FROM item_tags WHERE item_id = $1")
                    .bind(id.to_string())
                    .execute(&mut *tx)
                    .await?;
                insert_tags!(tx, id.to_string(), owner.to_string(), normalised_tags(tags));
            }
            tx.commit().await?;
            true
        });
        debug_assert!(found);
        self.artifact(owner, id).await
    }

    /// Deletes one of the owner's artifacts with its versions, tags and chunks, in one
    /// transaction: from the moment it commits, search no longer answers with it. Returns the
    /// ids of its chunks, for the indexes to forget, or `None` when it was not the owner's.
    /// Its blobs are left for collection.
    pub async fn delete_artifact(
        &self,
        owner: UserId,
        id: ArtifactId,
    ) -> Result<Option<Vec<i64>>, StoreError> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let deleted = sqlx::query("DELETE FROM artifacts WHERE id = $1 AND owner_id = $2")
                .bind(id.to_string())
                .bind(owner.to_string())
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if deleted == 0 {
                return Ok(None);
            }
            sqlx::query("DELETE FROM item_tags WHERE item_id = $1")
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
            let chunks: Vec<i64> =
                sqlx::query_scalar("DELETE FROM chunks WHERE item_id = $1 RETURNING id")
                    .bind(id.to_string())
                    .fetch_all(&mut *tx)
                    .await?;
            tx.commit().await?;
            Ok(Some(chunks))
        })
    }

    /// Records how indexing a version of an item ended. Does nothing to a version that is
    /// gone.
    pub async fn set_index_state(
        &self,
        kind: ItemKind,
        item: &str,
        number: u64,
        state: IndexState,
        error: Option<&str>,
        chunk_count: u64,
    ) -> Result<(), StoreError> {
        let number = stored_int(number, "a version number")?;
        let chunk_count = stored_int(chunk_count, "a chunk count")?;
        let (table, column) = kind.versions();
        // Only the two tables' names are formatted into the text.
        let sql = format!(
            "UPDATE {table} SET index_state = $3, index_error = $4, chunk_count = $5 \
             WHERE {column} = $1 AND version = $2"
        );
        with_pool!(self, |pool| {
            sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(item)
                .bind(number)
                .bind(state.as_str())
                .bind(error)
                .bind(chunk_count)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Current versions still to index with no indexing job queued or running for them: those
    /// pending or waiting for vectors (their job was lost or given up on), and those indexed
    /// whose chunks lack vectors from `model` (the embedding model changed). What a restart
    /// queues again. As `(owner, kind, item, version)`.
    pub async fn versions_to_index(
        &self,
        job_kind: &str,
        model: &str,
    ) -> Result<Vec<(UserId, ItemKind, String, u64)>, StoreError> {
        let rows: Vec<(String, String, String, i64)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT a.owner_id, 'artifact', a.id, v.version FROM artifacts a \
                     JOIN artifact_versions v \
                     ON v.artifact_id = a.id AND v.version = a.current_version \
                 WHERE (v.index_state IN ('pending', 'keyword_only') \
                         OR v.index_state = 'indexed' AND EXISTS \
                             (SELECT 1 FROM chunks c WHERE c.item_id = a.id \
                                 AND c.version = v.version AND NOT EXISTS \
                                     (SELECT 1 FROM chunk_vectors cv \
                                      WHERE cv.model = $2 AND cv.chunk_id = c.id))) \
                     AND NOT EXISTS \
                     (SELECT 1 FROM jobs j WHERE j.kind = $1 \
                         AND j.state IN ('queued', 'running') \
                         AND j.dedupe_key LIKE 'index:' || a.id || ':' || v.version || ':%') \
                 UNION ALL \
                 SELECT n.owner_id, 'note', n.id, v.version FROM notes n JOIN note_versions v \
                     ON v.note_id = n.id AND v.version = n.current_version \
                 WHERE (v.index_state IN ('pending', 'keyword_only') \
                         OR v.index_state = 'indexed' AND EXISTS \
                             (SELECT 1 FROM chunks c WHERE c.item_id = n.id \
                                 AND c.version = v.version AND NOT EXISTS \
                                     (SELECT 1 FROM chunk_vectors cv \
                                      WHERE cv.model = $2 AND cv.chunk_id = c.id))) \
                     AND NOT EXISTS \
                     (SELECT 1 FROM jobs j WHERE j.kind = $1 \
                         AND j.state IN ('queued', 'running') \
                         AND j.dedupe_key LIKE 'index:' || n.id || ':' || v.version || ':%')",
            )
            .bind(job_kind)
            .bind(model)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|(owner, kind, id, version)| {
                let bad = corrupt("artifacts");
                Ok((
                    owner
                        .parse()
                        .map_err(|_| bad(format!("item {id}: bad owner id")))?,
                    ItemKind::parse(&kind).unwrap_or(ItemKind::Artifact),
                    id,
                    count_from_row(version, "artifact_versions", "version")?,
                ))
            })
            .collect()
    }

    /// How many of the owner's current versions are in each index state: indexing progress.
    pub async fn index_states(&self, owner: UserId) -> Result<Vec<(IndexState, u64)>, StoreError> {
        let mut rows: Vec<(String, i64)> = Vec::new();
        // One query per kind of item, summed here: SUM over a union reads back as NUMERIC on
        // PostgreSQL and without a type on SQLite.
        for sql in [
            "SELECT v.index_state, COUNT(*) FROM artifacts a JOIN artifact_versions v \
                 ON v.artifact_id = a.id AND v.version = a.current_version \
             WHERE a.owner_id = $1 GROUP BY v.index_state",
            "SELECT v.index_state, COUNT(*) FROM notes n JOIN note_versions v \
                 ON v.note_id = n.id AND v.version = n.current_version \
             WHERE n.owner_id = $1 GROUP BY v.index_state",
        ] {
            let counted: Vec<(String, i64)> = with_pool!(self, |pool| {
                sqlx::query_as(sql)
                    .bind(owner.to_string())
                    .fetch_all(pool)
                    .await?
            });
            for (state, count) in counted {
                match rows.iter_mut().find(|(s, _)| *s == state) {
                    Some((_, total)) => *total += count,
                    None => rows.push((state, count)),
                }
            }
        }
        rows.sort();
        rows.into_iter()
            .map(|(state, count)| {
                let parsed = IndexState::parse(&state).ok_or_else(|| {
                    corrupt("artifact_versions")(format!("unknown index state `{state}`"))
                })?;
                Ok((parsed, u64::try_from(count).unwrap_or(0)))
            })
            .collect()
    }

    /// The ids of the owner's items that `filter` lets through, for search to keep to.
    pub async fn filtered_items(
        &self,
        owner: UserId,
        filter: &ItemFilter,
    ) -> Result<Vec<String>, StoreError> {
        let collections: Vec<String> = filter.collections.iter().map(|c| c.to_string()).collect();
        let tags = normalised_tags(&filter.tags);
        let kind = filter.kind.as_deref();
        let mime = filter.mime_prefix.as_ref().map(|p| {
            let escaped = p
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            format!("{escaped}%")
        });
        // Notes are Markdown.
        let rows: Vec<(String, Option<String>)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT a.id, a.collection_id FROM artifacts a JOIN artifact_versions v \
                     ON v.artifact_id = a.id AND v.version = a.current_version \
                 WHERE a.owner_id = $1 AND ($5 IS NULL OR $5 = 'artifact') \
                   AND ($2 IS NULL OR v.mime LIKE $2 ESCAPE '\\') \
                   AND ($3 IS NULL OR a.updated_at >= $3) \
                   AND ($4 IS NULL OR a.updated_at < $4) \
                 UNION ALL \
                 SELECT n.id, n.collection_id FROM notes n \
                 WHERE n.owner_id = $1 AND ($5 IS NULL OR $5 = 'note') \
                   AND ($2 IS NULL OR 'text/markdown' LIKE $2 ESCAPE '\\') \
                   AND ($3 IS NULL OR n.updated_at >= $3) \
                   AND ($4 IS NULL OR n.updated_at < $4)",
            )
            .bind(owner.to_string())
            .bind(mime)
            .bind(filter.since.map(millis))
            .bind(filter.until.map(millis))
            .bind(kind)
            .fetch_all(pool)
            .await?
        });
        let mut ids: Vec<String> = rows
            .into_iter()
            .filter(|(_, collection)| {
                collections.is_empty()
                    || collection.as_ref().is_some_and(|c| collections.contains(c))
            })
            .map(|(id, _)| id)
            .collect();
        for tag in &tags {
            let tagged: std::collections::HashSet<String> = with_pool!(self, |pool| {
                sqlx::query_scalar("SELECT item_id FROM item_tags WHERE owner_id = $1 AND tag = $2")
                    .bind(owner.to_string())
                    .bind(tag)
                    .fetch_all(pool)
                    .await?
                    .into_iter()
                    .collect()
            });
            ids.retain(|id| tagged.contains(id));
        }
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::{IndexState, normalised_tags};

    #[test]
    fn index_states_round_trip_through_text() {
        for state in [
            IndexState::Pending,
            IndexState::KeywordOnly,
            IndexState::Indexed,
            IndexState::Failed,
            IndexState::Skipped,
            IndexState::Superseded,
        ] {
            assert_eq!(IndexState::parse(state.as_str()), Some(state));
        }
    }

    #[test]
    fn tags_are_trimmed_sorted_and_unique() {
        let tags = ["b ", " a", "b", "", "  "].map(String::from);
        assert_eq!(normalised_tags(&tags), ["a", "b"]);
    }
}
