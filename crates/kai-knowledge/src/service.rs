//! [`Knowledge`]: the one service every front end (HTTP, CLI, agents) calls to keep artifacts
//! and search them.
//!
//! Writes go to the database first and to the indexes after; reads from the indexes are held to
//! the database ([`Store::chunk_hits`]) before they become answers. So an index that a crash
//! left behind the database can only miss something for a while (until the reconciliation at
//! start), never answer with what was deleted or half written.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use kai_config::{DatabaseKind, Fusion, KnowledgeSettings, SearchIndex};
use kai_core::{ArtifactId, CollectionId, NoteId, UserId};
use kai_gateway::{Caller, Gateway};
use kai_jobs::{JobContext, JobError, Queue};
use kai_models::chat::{EmbedRequest, InputType};
use kai_store::{
    ArtifactFilter, ArtifactRecord, ArtifactUpdate, ChunkRecord, CollectionRecord, IndexState,
    ItemFilter, ItemKind, JobState, NewArtifact, NewChunk, NewJob, NewVersion, Store, StoreError,
    VersionRecord,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::blobs::{BlobError, BlobStore};
use crate::chunk::{ChunkSettings, TokenSizer, chunk};
use crate::extract::{Format, extract, sniff};
use crate::fusion::{FusionMethod, fuse};
use crate::keyword::{Highlight, KeywordDoc, KeywordIndex};
use crate::vectors::{VectorDoc, VectorIndex};

/// The job kind that indexes one artifact version.
pub const INDEX_JOB: &str = "knowledge-index";

/// Chunks embedded per request to the gateway.
const EMBED_BATCH: usize = 32;

/// The longest search query, in characters.
pub const MAX_QUERY_CHARS: usize = 10_000;

/// The most hits one search returns.
pub const MAX_SEARCH_LIMIT: usize = 100;

/// The highest version number the database can hold; a higher one names no version.
const MAX_VERSION: u64 = i64::MAX as u64;

/// The longest passage shown with a hit, in characters.
const PASSAGE_CHARS: usize = 300;

/// Why a knowledge operation failed.
#[derive(Debug, thiserror::Error)]
pub enum KnowledgeError {
    /// No such item (or not the caller's: the same answer).
    #[error("{0} not found")]
    NotFound(String),
    /// The input is not acceptable; the message says what to fix.
    #[error("{0}")]
    Invalid(String),
    /// The name is taken.
    #[error("{0}")]
    Conflict(String),
    /// The content is larger than `knowledge.max_upload_size`.
    #[error("the content is larger than the limit of {limit} bytes (knowledge.max_upload_size)")]
    TooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// The content could not be read to its end: an upload cut off mid-stream.
    #[error("the content could not be read to its end: {0}")]
    Incomplete(String),
    /// The embedding model could not embed the query.
    #[error("the embedding model `{model}` failed: {message}")]
    Embedding {
        /// The model.
        model: String,
        /// Why.
        message: String,
    },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The vault, which seals memory, is locked or not set up.
    #[error(transparent)]
    Vault(kai_vault::VaultError),
    /// The blob directory or an index failed.
    #[error("knowledge storage: {0}")]
    Storage(String),
}

impl From<BlobError> for KnowledgeError {
    fn from(err: BlobError) -> Self {
        match err {
            BlobError::TooLarge { limit } => KnowledgeError::TooLarge { limit },
            BlobError::Source(err) => KnowledgeError::Incomplete(err.to_string()),
            other => KnowledgeError::Storage(other.to_string()),
        }
    }
}

fn storage(err: impl std::fmt::Display) -> KnowledgeError {
    KnowledgeError::Storage(err.to_string())
}

/// Content to store as a new artifact or version.
#[derive(Debug)]
pub struct Upload<R> {
    /// The bytes.
    pub body: R,
    /// The name it came with; only its last path component is kept.
    pub file_name: Option<String>,
    /// Who adds it: `user:<id>` or `run:<id>`.
    pub created_by: String,
}

/// What a new artifact is, besides its content.
#[derive(Debug, Clone, Default)]
pub struct ArtifactMeta {
    /// Its title; the file name when unset.
    pub title: Option<String>,
    /// The owner's collection it goes into.
    pub collection: Option<CollectionId>,
    /// Its tags.
    pub tags: Vec<String>,
    /// Where it came from.
    pub source: Option<String>,
    /// Free metadata: a JSON object.
    pub metadata: Option<serde_json::Value>,
}

/// Which rankings a search uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SearchMode {
    /// BM25 over the text.
    Keyword,
    /// Cosine similarity of the embedding model's vectors.
    Semantic,
    /// Both, fused.
    #[default]
    Hybrid,
}

/// A search.
#[derive(Debug, Clone)]
pub struct SearchQuery {
    /// What to look for.
    pub text: String,
    /// Which rankings.
    pub mode: SearchMode,
    /// Which items may answer.
    pub filter: ItemFilter,
    /// How many hits, at most.
    pub limit: usize,
    /// The fusion method, instead of the configured one.
    pub fusion: Option<Fusion>,
}

/// A search's answer.
#[derive(Debug, Clone)]
pub struct SearchResults {
    /// The hits, best first.
    pub hits: Vec<SearchHit>,
    /// Set when hybrid search ran on keywords alone because the embedding model failed.
    pub degraded: Option<String>,
}

/// One passage found.
#[derive(Debug, Clone)]
pub struct SearchHit {
    /// The chunk's id.
    pub chunk_id: i64,
    /// The item it is from.
    pub item_id: String,
    /// `artifact` or `note`.
    pub item_kind: String,
    /// The item's title.
    pub title: String,
    /// The version it is from.
    pub version: u64,
    /// The item's MIME type.
    pub mime: String,
    /// The headings above the passage.
    pub heading: Option<String>,
    /// Its score: comparable only within one search.
    pub score: f32,
    /// Its rank in the keyword ranking (from 1), if there.
    pub keyword_rank: Option<usize>,
    /// Its rank in the vector ranking (from 1), if there.
    pub vector_rank: Option<usize>,
    /// The passage, with the query's terms marked.
    pub passage: Highlight,
    /// The whole chunk's text.
    pub text: String,
}

/// How far indexing has come, for one owner.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexProgress {
    /// Where the search indexes live: `embedded` (on disk) or `database` (PostgreSQL).
    pub search_index: &'static str,
    /// The configured embedding model.
    pub embedding_model: String,
    /// The model whose vectors search by meaning uses: the configured one, or the one before
    /// it while the configured one re-embeds what it has not embedded yet.
    pub vectors_from: String,
    /// Chunks stored, all owners together.
    pub chunks: u64,
    /// Of those, the chunks the configured model has embedded.
    pub chunks_embedded: u64,
    /// Versions waiting to be indexed.
    pub pending: u64,
    /// Versions searchable by keyword, waiting for their vectors.
    pub keyword_only: u64,
    /// Versions searchable.
    pub indexed: u64,
    /// Versions whose text could not be read.
    pub failed: u64,
    /// Binary versions, kept but not searched.
    pub skipped: u64,
    /// Indexing jobs queued, all owners together.
    pub jobs_queued: u64,
    /// Indexing jobs running, all owners together.
    pub jobs_running: u64,
    /// Indexing jobs given up on, all owners together.
    pub jobs_dead: u64,
}

/// What reconciling the indexes with the database did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Chunks the indexes lacked, added.
    pub added: usize,
    /// Entries of chunks no longer stored, removed.
    pub removed: usize,
    /// Versions still to index whose job was lost or given up on, queued again.
    pub requeued: usize,
}

/// An indexing job's input. Ids as UUIDs: kai-core's ids do not serialise (it has no wire
/// formats).
#[derive(Debug, Serialize, Deserialize)]
struct IndexJob {
    owner: uuid::Uuid,
    /// `artifact` or `note`.
    kind: String,
    item: uuid::Uuid,
    version: u64,
}

#[derive(Debug)]
struct IndexPayload {
    owner: UserId,
    kind: ItemKind,
    item: String,
    version: u64,
}

struct Inner {
    store: Store,
    vault: kai_vault::Vault,
    queue: Queue,
    gateway: Gateway,
    /// Where artifacts' indexing progress is published for their owner's devices.
    events: kai_events::Events,
    blobs: BlobStore,
    /// Where the indexes live.
    location: Location,
    /// The on-disk keyword index; in the database's case an empty one in memory, which only
    /// marks the query's words in passages.
    keyword: KeywordIndex,
    /// The on-disk vector indexes opened so far, by model.
    vectors: Mutex<HashMap<String, Arc<VectorIndex>>>,
    /// Where the on-disk vector indexes are.
    vectors_dir: PathBuf,
    /// The models whose index in the database is known to exist.
    database_vectors: Mutex<HashSet<String>>,
    /// The model search by meaning answers with while the configured one re-embeds: the one
    /// that embedded the most before it. `None` once the configured model has embedded
    /// everything.
    previous_model: RwLock<Option<String>>,
    sizer: TokenSizer,
    chunking: ChunkSettings,
    settings: KnowledgeSettings,
}

/// Where the search indexes live (`knowledge.search_index`, resolved at start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Location {
    /// Under the data directory: tantivy and vector logs, one copy per process.
    Embedded,
    /// Inside PostgreSQL: full-text search and pgvector, shared by every process.
    Database,
}

impl Location {
    fn as_str(self) -> &'static str {
        match self {
            Location::Embedded => "embedded",
            Location::Database => "database",
        }
    }
}

/// The knowledge service. Cheap to clone.
#[derive(Clone)]
pub struct Knowledge {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Knowledge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Knowledge")
            .field("embedding_model", &self.inner.settings.embedding_model)
            .finish_non_exhaustive()
    }
}

/// A file name as kept: its last path component, without control characters, at most 255
/// bytes; `None` when nothing is left.
#[must_use]
pub fn clean_file_name(name: &str) -> Option<String> {
    let last = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let mut cleaned: String = last.chars().filter(|c| !c.is_control()).collect();
    let trimmed = cleaned.trim();
    if trimmed.is_empty() || trimmed == "." || trimmed == ".." {
        return None;
    }
    cleaned = trimmed.to_owned();
    while cleaned.len() > 255 {
        cleaned.pop();
    }
    Some(cleaned)
}

/// The file a model's vectors are kept in under `dir`: its name, made safe for a file name.
fn vectors_file(dir: &Path, model: &str) -> PathBuf {
    let safe: String = model
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    dir.join(format!("{safe}.log"))
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, KnowledgeError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| KnowledgeError::Storage(format!("a background task failed: {err}")))
}

impl Knowledge {
    /// Opens the content directory (`knowledge.content_dir`, else `dir/blobs`) and the indexes
    /// under `dir` (`<data_dir>/knowledge`). `sizer`
    /// counts chunk sizes in the embedding model's tokens (or estimates them); `vault` seals
    /// memory; artifacts' indexing progress is published to `events`.
    #[allow(clippy::too_many_arguments)] // the services knowledge reaches, each its own
    pub async fn open(
        dir: &Path,
        store: Store,
        vault: kai_vault::Vault,
        queue: Queue,
        gateway: Gateway,
        events: kai_events::Events,
        settings: KnowledgeSettings,
        sizer: TokenSizer,
    ) -> Result<Knowledge, KnowledgeError> {
        let chunking = ChunkSettings::new(settings.chunk_tokens, settings.chunk_overlap)
            .map_err(|err| KnowledgeError::Invalid(err.to_string()))?;
        let blobs = BlobStore::open(
            settings
                .content_dir
                .clone()
                .unwrap_or_else(|| dir.join("blobs")),
        )?;
        let location = Self::locate(&store, &settings).await?;
        let keyword_dir = dir.join("keyword");
        let keyword = blocking(move || match location {
            Location::Embedded => KeywordIndex::open(&keyword_dir).map_err(storage),
            Location::Database => KeywordIndex::in_memory().map_err(storage),
        })
        .await??;
        tracing::info!(
            search_index = location.as_str(),
            "knowledge search indexes {}",
            match location {
                Location::Embedded => "on disk",
                Location::Database => "in the database",
            }
        );
        Ok(Knowledge {
            inner: Arc::new(Inner {
                store,
                vault,
                queue,
                gateway,
                events,
                blobs,
                location,
                keyword,
                vectors: Mutex::new(HashMap::new()),
                vectors_dir: dir.join("vectors"),
                database_vectors: Mutex::new(HashSet::new()),
                previous_model: RwLock::new(None),
                sizer,
                chunking,
                settings,
            }),
        })
    }

    /// Where the indexes live: `knowledge.search_index`, with `auto` meaning the database when
    /// it can hold them. Whether it can is found by trying, with the configured model's vectors
    /// if any are stored (their dimensions are known only once a model has made one).
    async fn locate(
        store: &Store,
        settings: &KnowledgeSettings,
    ) -> Result<Location, KnowledgeError> {
        let wanted = settings.search_index;
        if wanted == SearchIndex::Embedded {
            return Ok(Location::Embedded);
        }
        if store.backend() == DatabaseKind::Sqlite {
            if wanted == SearchIndex::Database {
                return Err(KnowledgeError::Invalid(
                    "knowledge.search_index = \"database\" needs PostgreSQL (with pgvector); \
                     this database is SQLite: set it to \"embedded\" or \"auto\""
                        .into(),
                ));
            }
            return Ok(Location::Embedded);
        }
        let model = &settings.embedding_model;
        let probe = match store.vector_dimensions(model).await? {
            Some(dimensions) => store.create_vector_index(model, dimensions).await,
            None => store.probe_vector_index().await,
        };
        match probe {
            Ok(()) => Ok(Location::Database),
            Err(StoreError::Unsupported(why)) if wanted == SearchIndex::Auto => {
                tracing::warn!(
                    reason = %why,
                    "knowledge search indexes kept on disk, one copy per process: the database \
                     cannot hold them"
                );
                Ok(Location::Embedded)
            }
            Err(StoreError::Unsupported(why)) => Err(KnowledgeError::Invalid(format!(
                "knowledge.search_index = \"database\", but {why}"
            ))),
            Err(err) => Err(err.into()),
        }
    }

    /// Whether the search indexes live in the database (`knowledge.search_index`, resolved).
    #[must_use]
    pub fn uses_database(&self) -> bool {
        self.inner.location == Location::Database
    }

    /// The settings in force.
    #[must_use]
    pub fn settings(&self) -> &KnowledgeSettings {
        &self.inner.settings
    }

    pub(crate) fn store(&self) -> &Store {
        &self.inner.store
    }

    pub(crate) fn vault(&self) -> &kai_vault::Vault {
        &self.inner.vault
    }

    /// Stores content as a blob and says what it is.
    async fn store_content<R: tokio::io::AsyncRead + Unpin>(
        &self,
        upload: Upload<R>,
    ) -> Result<(NewVersion, Option<String>), KnowledgeError> {
        let file_name = upload.file_name.as_deref().and_then(clean_file_name);
        let limit = self.inner.settings.max_upload_size.as_u64();
        let blob = self.inner.blobs.put(upload.body, limit).await?;
        let sniffed = sniff(&blob.head, file_name.as_deref());
        self.inner.store.record_blob(&blob.hash, blob.size).await?;
        let index_state = if sniffed.format.is_text() {
            IndexState::Pending
        } else {
            IndexState::Skipped
        };
        Ok((
            NewVersion {
                blob_hash: blob.hash,
                size: blob.size,
                mime: sniffed.mime.to_owned(),
                file_name: file_name.clone(),
                created_by: upload.created_by,
                index_state,
            },
            file_name,
        ))
    }

    /// Stores a new artifact and queues it for indexing.
    pub async fn add_artifact<R: tokio::io::AsyncRead + Unpin>(
        &self,
        owner: UserId,
        upload: Upload<R>,
        meta: ArtifactMeta,
    ) -> Result<ArtifactRecord, KnowledgeError> {
        let metadata = match meta.metadata {
            None => "{}".to_owned(),
            Some(value @ serde_json::Value::Object(_)) => value.to_string(),
            Some(_) => {
                return Err(KnowledgeError::Invalid(
                    "metadata must be a JSON object".into(),
                ));
            }
        };
        let title = match meta.title.as_deref().map(str::trim) {
            Some("") => return Err(KnowledgeError::Invalid("the title is empty".into())),
            Some(title) => Some(title.to_owned()),
            None => None,
        };
        if let Some(title) = &title {
            check_line("the title", title)?;
        }
        if let Some(source) = &meta.source {
            check_line("the source", source)?;
        }
        check_tags(&meta.tags)?;
        let (version, file_name) = self.store_content(upload).await?;
        let record = self
            .inner
            .store
            .create_artifact(&NewArtifact {
                owner_id: owner,
                collection_id: meta.collection,
                title: title.or(file_name).unwrap_or_else(|| "Untitled".to_owned()),
                source: meta.source,
                metadata,
                tags: meta.tags,
                version,
            })
            .await
            .map_err(|err| match err {
                StoreError::Conflict(_) => KnowledgeError::NotFound("collection".into()),
                other => other.into(),
            })?;
        self.queue_indexing(owner, &record).await?;
        Ok(record)
    }

    /// Adds a version to one of the owner's artifacts and queues it for indexing; the older
    /// version keeps answering searches until the new one is indexed.
    pub async fn add_version<R: tokio::io::AsyncRead + Unpin>(
        &self,
        owner: UserId,
        id: ArtifactId,
        upload: Upload<R>,
    ) -> Result<ArtifactRecord, KnowledgeError> {
        if self.inner.store.artifact(owner, id).await?.is_none() {
            return Err(KnowledgeError::NotFound("artifact".into()));
        }
        let (version, _) = self.store_content(upload).await?;
        let record = self
            .inner
            .store
            .add_artifact_version(owner, id, &version)
            .await?
            .ok_or_else(|| KnowledgeError::NotFound("artifact".into()))?;
        self.queue_indexing(owner, &record).await?;
        Ok(record)
    }

    async fn queue_indexing(
        &self,
        owner: UserId,
        record: &ArtifactRecord,
    ) -> Result<(), KnowledgeError> {
        if record.current.index_state != IndexState::Pending {
            return Ok(());
        }
        self.enqueue_index(
            owner,
            ItemKind::Artifact,
            &record.id.to_string(),
            record.current.version,
            0,
        )
        .await
    }

    /// Queues a version for indexing. `generation` tells apart a job queued again from the one
    /// that was lost: a version has one job per generation.
    pub(crate) async fn enqueue_index(
        &self,
        owner: UserId,
        kind: ItemKind,
        item: &str,
        version: u64,
        generation: i128,
    ) -> Result<(), KnowledgeError> {
        let payload = IndexJob {
            owner: owner.as_uuid(),
            kind: kind.as_str().to_owned(),
            item: item
                .parse()
                .map_err(|_| storage(format!("`{item}` is not an id")))?,
            version,
        };
        self.inner
            .queue
            .enqueue(&NewJob {
                kind: INDEX_JOB.into(),
                payload: serde_json::to_string(&payload).map_err(storage)?,
                priority: 0,
                // With backoff doubling to ten minutes, twenty attempts ride out an embedding
                // model that is down for a couple of hours; after that, the next start queues
                // the version again.
                max_attempts: 20,
                run_at: OffsetDateTime::now_utc(),
                dedupe_key: Some(format!("index:{item}:{version}:{generation}")),
            })
            .await?;
        Ok(())
    }

    /// Makes a collection; [`KnowledgeError::Invalid`] when the owner has one of that name.
    pub async fn create_collection(
        &self,
        owner: UserId,
        name: &str,
        description: &str,
    ) -> Result<CollectionRecord, KnowledgeError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(KnowledgeError::Invalid(
                "a collection's name must be 1 to 100 characters, without control characters"
                    .into(),
            ));
        }
        if description.chars().count() > 2000 {
            return Err(KnowledgeError::Invalid(
                "a collection's description must be at most 2000 characters".into(),
            ));
        }
        check_text("a collection's description", description)?;
        match self
            .inner
            .store
            .create_collection(owner, name, description)
            .await
        {
            Err(StoreError::Conflict(_)) => Err(KnowledgeError::Conflict(format!(
                "you already have a collection named `{name}`"
            ))),
            other => Ok(other?),
        }
    }

    /// The owner's collections, by name.
    pub async fn collections(
        &self,
        owner: UserId,
    ) -> Result<Vec<CollectionRecord>, KnowledgeError> {
        Ok(self.inner.store.collections(owner).await?)
    }

    /// Deletes one of the owner's collections; what was in it stays, in none.
    pub async fn delete_collection(
        &self,
        owner: UserId,
        id: CollectionId,
    ) -> Result<(), KnowledgeError> {
        if self.inner.store.delete_collection(owner, id).await? {
            Ok(())
        } else {
            Err(KnowledgeError::NotFound("collection".into()))
        }
    }

    /// One of the owner's artifacts.
    pub async fn artifact(
        &self,
        owner: UserId,
        id: ArtifactId,
    ) -> Result<ArtifactRecord, KnowledgeError> {
        self.inner
            .store
            .artifact(owner, id)
            .await?
            .ok_or_else(|| KnowledgeError::NotFound("artifact".into()))
    }

    /// The owner's artifacts, most recently changed first.
    pub async fn artifacts(
        &self,
        owner: UserId,
        filter: &ArtifactFilter,
    ) -> Result<Vec<ArtifactRecord>, KnowledgeError> {
        if let Some(tag) = &filter.tag {
            check_text("the tag", tag)?;
        }
        Ok(self.inner.store.artifacts(owner, filter).await?)
    }

    /// Every version of one of the owner's artifacts, oldest first.
    pub async fn versions(
        &self,
        owner: UserId,
        id: ArtifactId,
    ) -> Result<Vec<VersionRecord>, KnowledgeError> {
        let versions = self.inner.store.artifact_versions(owner, id).await?;
        if versions.is_empty() {
            return Err(KnowledgeError::NotFound("artifact".into()));
        }
        Ok(versions)
    }

    /// A version (the current one when `None`) and its content, opened for reading.
    pub async fn content(
        &self,
        owner: UserId,
        id: ArtifactId,
        version: Option<u64>,
    ) -> Result<(VersionRecord, tokio::fs::File), KnowledgeError> {
        let record = match version {
            Some(number) if number > MAX_VERSION => {
                return Err(KnowledgeError::NotFound(format!("version {number}")));
            }
            Some(number) => self
                .inner
                .store
                .artifact_version(owner, id, number)
                .await?
                .ok_or_else(|| KnowledgeError::NotFound(format!("version {number}")))?,
            None => self.artifact(owner, id).await?.current,
        };
        let file = self.inner.blobs.open_file(&record.blob_hash).await?;
        Ok((record, file))
    }

    /// The line differences between two text versions, as a unified diff.
    pub async fn diff(
        &self,
        owner: UserId,
        id: ArtifactId,
        from: u64,
        to: u64,
    ) -> Result<String, KnowledgeError> {
        let mut texts = Vec::with_capacity(2);
        for number in [from, to] {
            if number > MAX_VERSION {
                return Err(KnowledgeError::NotFound(format!("version {number}")));
            }
            let record = self
                .inner
                .store
                .artifact_version(owner, id, number)
                .await?
                .ok_or_else(|| KnowledgeError::NotFound(format!("version {number}")))?;
            let bytes = self.inner.blobs.read(&record.blob_hash).await?;
            let sniffed = sniff(&bytes, record.file_name.as_deref());
            if !sniffed.format.is_text() || matches!(sniffed.format, Format::Pdf) {
                return Err(KnowledgeError::Invalid(format!(
                    "version {number} is {}, not text: only text versions can be compared",
                    record.mime
                )));
            }
            let text = String::from_utf8(bytes).map_err(|err| {
                KnowledgeError::Invalid(format!(
                    "version {number} is not UTF-8 text (at byte {})",
                    err.utf8_error().valid_up_to()
                ))
            })?;
            texts.push(text);
        }
        let diff = similar::TextDiff::from_lines(&texts[0], &texts[1]);
        Ok(diff
            .unified_diff()
            .header(&format!("version {from}"), &format!("version {to}"))
            .to_string())
    }

    /// Changes one of the owner's artifacts' title, tags, collection or metadata.
    pub async fn update(
        &self,
        owner: UserId,
        id: ArtifactId,
        update: ArtifactUpdate,
    ) -> Result<ArtifactRecord, KnowledgeError> {
        if let Some(title) = &update.title {
            if title.trim().is_empty() {
                return Err(KnowledgeError::Invalid("the title is empty".into()));
            }
            check_line("the title", title)?;
        }
        if let Some(tags) = &update.tags {
            check_tags(tags)?;
        }
        if let Some(metadata) = &update.metadata {
            match serde_json::from_str::<serde_json::Value>(metadata) {
                Ok(serde_json::Value::Object(_)) => {}
                _ => {
                    return Err(KnowledgeError::Invalid(
                        "metadata must be a JSON object".into(),
                    ));
                }
            }
        }
        self.inner
            .store
            .update_artifact(owner, id, &update)
            .await
            .map_err(|err| match err {
                StoreError::Conflict(_) => KnowledgeError::NotFound("collection".into()),
                other => other.into(),
            })?
            .ok_or_else(|| KnowledgeError::NotFound("artifact".into()))
    }

    /// Deletes one of the owner's artifacts: gone from search the moment the database commits;
    /// its index entries are removed right after, and its content once unreferenced for
    /// `knowledge.blob_grace`.
    pub async fn delete(&self, owner: UserId, id: ArtifactId) -> Result<(), KnowledgeError> {
        let chunks = self
            .inner
            .store
            .delete_artifact(owner, id)
            .await?
            .ok_or_else(|| KnowledgeError::NotFound("artifact".into()))?;
        if let Err(err) = self.forget_chunks(chunks).await {
            // The database no longer has them, so search already ignores them; reconciliation
            // at the next start removes them.
            tracing::warn!(artifact = %id, error = %err, "could not remove deleted chunks from the indexes");
        }
        Ok(())
    }

    /// Removes deleted chunks from the indexes on disk. The database's own indexes lose them
    /// with their rows.
    pub(crate) async fn forget_chunks(&self, ids: Vec<i64>) -> Result<(), KnowledgeError> {
        if ids.is_empty() || self.inner.location == Location::Database {
            return Ok(());
        }
        let inner = self.inner.clone();
        let vectors: Vec<Arc<VectorIndex>> = self.open_vector_indexes().await?;
        blocking(move || {
            inner.keyword.delete(&ids).map_err(storage)?;
            inner.keyword.commit().map_err(storage)?;
            for index in vectors {
                index.delete(&ids).map_err(storage)?;
            }
            Ok(())
        })
        .await?
    }

    /// The models search by meaning may use: the configured one, and the one before it while
    /// the configured one re-embeds.
    fn searched_models(&self) -> Vec<String> {
        let mut models = vec![self.inner.settings.embedding_model.clone()];
        if let Some(previous) = self.previous_model() {
            models.push(previous);
        }
        models
    }

    fn previous_model(&self) -> Option<String> {
        self.inner
            .previous_model
            .read()
            .map_or(None, |previous| previous.clone())
    }

    fn set_previous_model(&self, model: Option<String>) {
        if let Ok(mut previous) = self.inner.previous_model.write() {
            *previous = model;
        }
    }

    /// The on-disk vector index of `model`, opened on first use.
    async fn vector_index(&self, model: &str) -> Result<Arc<VectorIndex>, KnowledgeError> {
        if let Some(index) = self.opened_vector_index(model) {
            return Ok(index);
        }
        let path = vectors_file(&self.inner.vectors_dir, model);
        let opened = Arc::new(blocking(move || VectorIndex::open(&path).map_err(storage)).await??);
        let mut open =
            self.inner.vectors.lock().map_err(|_| {
                KnowledgeError::Storage("an earlier vector index open panicked".into())
            })?;
        Ok(open.entry(model.to_owned()).or_insert(opened).clone())
    }

    fn opened_vector_index(&self, model: &str) -> Option<Arc<VectorIndex>> {
        self.inner
            .vectors
            .lock()
            .ok()
            .and_then(|open| open.get(model).cloned())
    }

    /// The on-disk vector indexes of the models searched.
    async fn open_vector_indexes(&self) -> Result<Vec<Arc<VectorIndex>>, KnowledgeError> {
        let mut indexes = Vec::new();
        for model in self.searched_models() {
            indexes.push(self.vector_index(&model).await?);
        }
        Ok(indexes)
    }

    /// Indexing progress for one owner.
    pub async fn progress(&self, owner: UserId) -> Result<IndexProgress, KnowledgeError> {
        let model = &self.inner.settings.embedding_model;
        let (chunks, coverage) = self.inner.store.vector_coverage().await?;
        let mut progress = IndexProgress {
            search_index: self.inner.location.as_str(),
            embedding_model: model.clone(),
            vectors_from: self.previous_model().unwrap_or_else(|| model.clone()),
            chunks,
            chunks_embedded: coverage
                .iter()
                .find(|(m, _)| m == model)
                .map_or(0, |(_, n)| *n),
            ..IndexProgress::default()
        };
        for (state, count) in self.inner.store.index_states(owner).await? {
            match state {
                IndexState::Pending => progress.pending += count,
                IndexState::KeywordOnly => progress.keyword_only += count,
                IndexState::Indexed | IndexState::Superseded => progress.indexed += count,
                IndexState::Failed => progress.failed += count,
                IndexState::Skipped => progress.skipped += count,
            }
        }
        for (state, count) in self.inner.store.job_counts(INDEX_JOB).await? {
            match state {
                JobState::Queued => progress.jobs_queued = count,
                JobState::Running => progress.jobs_running = count,
                JobState::Dead => progress.jobs_dead = count,
                JobState::Done => {}
            }
        }
        Ok(progress)
    }

    async fn embed(
        &self,
        owner: UserId,
        model: &str,
        texts: Vec<String>,
        input_type: InputType,
        request_id: String,
    ) -> Result<Vec<Vec<f32>>, KnowledgeError> {
        let model = &model.to_owned();
        let count = texts.len();
        let mut request = EmbedRequest::new(model.clone(), texts);
        request.input_type = Some(input_type);
        let caller = Caller {
            user_id: owner,
            api_key_id: None,
            request_id,
        };
        let answer = self
            .inner
            .gateway
            .embed(&caller, model, &request)
            .await
            .map_err(|err| KnowledgeError::Embedding {
                model: model.clone(),
                message: err.to_string(),
            })?;
        if answer.value.vectors.len() != count {
            return Err(KnowledgeError::Embedding {
                model: model.clone(),
                message: format!(
                    "it answered {} vectors for {count} texts",
                    answer.value.vectors.len()
                ),
            });
        }
        Ok(answer.value.vectors)
    }

    /// Runs one indexing job: extracts, chunks, embeds and indexes one artifact version, then
    /// makes it the searchable one. Every step can be repeated: a job retried after a crash
    /// finds its chunks stored and embedded and only does what is left.
    pub async fn run_index_job(&self, job: JobContext) -> Result<(), JobError> {
        let job_input: IndexJob = job.payload()?;
        let payload = IndexPayload {
            owner: job_input.owner.into(),
            kind: ItemKind::parse(&job_input.kind).ok_or_else(|| {
                JobError::permanent(format!("unknown kind of item `{}`", job_input.kind))
            })?,
            item: job_input.item.to_string(),
            version: job_input.version,
        };
        let store = &self.inner.store;
        let transient = |err: KnowledgeError| JobError::transient(err);
        let Some(content) = self.content_to_index(&payload).await? else {
            // Deleted since it was queued.
            return Ok(());
        };
        let item = payload.item.clone();
        let model = self.inner.settings.embedding_model.clone();
        let existing = store
            .chunks_of(&item, payload.version, &model)
            .await
            .map_err(JobError::transient)?;
        if existing.is_empty() {
            let content = match content {
                Content::Blob { hash, file_name } => match self.inner.blobs.read(&hash).await {
                    Ok(bytes) => Content::Bytes(bytes, file_name),
                    Err(err @ BlobError::Damaged { .. }) => {
                        return self.index_failed(&payload, &err.to_string()).await;
                    }
                    Err(err) => return Err(JobError::transient(err)),
                },
                other => other,
            };
            let sizer = self.inner.sizer.clone();
            let chunking = self.inner.chunking;
            let limit = self.inner.settings.extract_timeout;
            let reading = blocking(move || {
                let (format, text) = match content {
                    Content::Markdown(text) => (Format::Markdown, text),
                    Content::Bytes(bytes, file_name) => {
                        let format = sniff(&bytes, file_name.as_deref()).format;
                        (
                            format,
                            extract(&bytes, format).map_err(|err| err.to_string())?,
                        )
                    }
                    Content::Blob { .. } => return Err("the content was not read".to_owned()),
                };
                chunk(&text, format, &sizer, &chunking).map_err(|err| err.to_string())
            });
            // A parser that hangs on a malformed file must not hold a worker for ever: past the
            // limit the version is recorded as failed and its thread left to finish alone.
            let chunked = match tokio::time::timeout(limit, reading).await {
                Ok(read) => read.map_err(transient)?,
                Err(_) => Err(format!(
                    "reading its text took longer than {} s (knowledge.extract_timeout); the \
                     file may be malformed",
                    limit.as_secs_f64()
                )),
            };
            let chunks = match chunked {
                Ok(chunks) => chunks,
                Err(reason) => return self.index_failed(&payload, &reason).await,
            };
            let new: Vec<NewChunk> = chunks
                .into_iter()
                .map(|c| NewChunk {
                    seq: c.index as u64,
                    heading: c.heading,
                    text: c.text,
                    start: c.start as u64,
                    end: c.end as u64,
                })
                .collect();
            store
                .insert_chunks(payload.owner, payload.kind, &item, payload.version, &new)
                .await
                .map_err(JobError::transient)?;
        }
        let mut chunks = store
            .chunks_of(&item, payload.version, &model)
            .await
            .map_err(JobError::transient)?;
        // Searchable by its words at once, whatever becomes of the embedding.
        self.index_keywords(&chunks).await.map_err(transient)?;
        let embedded = self.embed_missing(&job, &payload, &mut chunks).await;
        self.index_vectors(&model, &chunks)
            .await
            .map_err(transient)?;
        let count = chunks.len() as u64;
        match embedded {
            Ok(()) => {
                self.finish(&payload, IndexState::Indexed, None, count)
                    .await?;
                tracing::info!(kind = payload.kind.as_str(), item = %payload.item, version = payload.version, chunks = count, "indexed");
                if self.previous_model().is_some() {
                    self.retire_previous_model().await.map_err(transient)?;
                }
                Ok(())
            }
            Err(err) if job.stop_reason().is_some() => Err(JobError::transient(err)),
            Err(err) => {
                // Searchable by keyword meanwhile; the job is retried for the vectors.
                let reason = err.to_string();
                self.finish(&payload, IndexState::KeywordOnly, Some(&reason), count)
                    .await?;
                Err(JobError::transient(reason))
            }
        }
    }

    /// Embeds the chunks that have no vector from the configured model, storing each batch's
    /// vectors as they come, so that a retry only embeds what is left.
    async fn embed_missing(
        &self,
        job: &JobContext,
        payload: &IndexPayload,
        chunks: &mut [ChunkRecord],
    ) -> Result<(), KnowledgeError> {
        let model = self.inner.settings.embedding_model.clone();
        let missing: Vec<usize> = chunks
            .iter()
            .enumerate()
            .filter(|(_, c)| c.embedding.is_none())
            .map(|(at, _)| at)
            .collect();
        for batch in missing.chunks(EMBED_BATCH) {
            if job.stop_reason().is_some() {
                return Err(KnowledgeError::Storage("stopped before it finished".into()));
            }
            let texts = batch
                .iter()
                .map(|&at| embedding_text(&chunks[at]))
                .collect();
            let vectors = self
                .embed(
                    payload.owner,
                    &model,
                    texts,
                    InputType::Document,
                    format!("index-{}", job.id()),
                )
                .await?;
            let pairs: Vec<(i64, Vec<f32>)> = batch
                .iter()
                .zip(vectors)
                .map(|(&at, vector)| (chunks[at].id, vector))
                .collect();
            self.inner.store.set_embeddings(&model, &pairs).await?;
            for (&at, (_, vector)) in batch.iter().zip(pairs) {
                chunks[at].embedding = Some(vector);
            }
        }
        Ok(())
    }

    /// Makes the version the searchable one (unless a newer one already is), drops the older
    /// versions' chunks from the indexes, and records how indexing went.
    async fn finish(
        &self,
        payload: &IndexPayload,
        state: IndexState,
        error: Option<&str>,
        count: u64,
    ) -> Result<(), JobError> {
        let store = &self.inner.store;
        let Some(searchable) = store
            .make_searchable(payload.kind, &payload.item, payload.version)
            .await
            .map_err(JobError::transient)?
        else {
            return Ok(());
        };
        if let Err(err) = self.forget_chunks(searchable.dropped).await {
            tracing::warn!(error = %err, "could not remove superseded chunks from the indexes");
        }
        let (state, count) = if searchable.version == payload.version {
            (state, count)
        } else {
            (IndexState::Superseded, 0)
        };
        store
            .set_index_state(
                payload.kind,
                &payload.item,
                payload.version,
                state,
                error,
                count,
            )
            .await
            .map_err(JobError::transient)?;
        self.progressed(payload, state, count).await;
        Ok(())
    }

    /// Tells the owner's devices how indexing an artifact went (notes have no such event).
    async fn progressed(&self, payload: &IndexPayload, state: IndexState, chunks: u64) {
        if payload.kind != ItemKind::Artifact {
            return;
        }
        if let Ok(artifact) = payload.item.parse::<ArtifactId>() {
            self.inner
                .events
                .knowledge_progress(payload.owner, artifact, state, chunks)
                .await;
        }
    }

    /// What a job indexes: an artifact version's blob, or a note version's Markdown (its
    /// title as the top heading). `None` when the version is gone.
    async fn content_to_index(&self, payload: &IndexPayload) -> Result<Option<Content>, JobError> {
        let store = &self.inner.store;
        let missing = || JobError::permanent(format!("`{}` is not an id", payload.item));
        match payload.kind {
            ItemKind::Artifact => {
                let id: ArtifactId = payload.item.parse().map_err(|_| missing())?;
                Ok(store
                    .artifact_version(payload.owner, id, payload.version)
                    .await
                    .map_err(JobError::transient)?
                    .map(|version| Content::Blob {
                        hash: version.blob_hash,
                        file_name: version.file_name,
                    }))
            }
            ItemKind::Note => {
                let id: NoteId = payload.item.parse().map_err(|_| missing())?;
                Ok(store
                    .note_version(payload.owner, id, payload.version)
                    .await
                    .map_err(JobError::transient)?
                    .map(|version| {
                        Content::Markdown(format!("# {}\n\n{}", version.title, version.body))
                    }))
            }
        }
    }

    async fn index_failed(&self, payload: &IndexPayload, reason: &str) -> Result<(), JobError> {
        tracing::warn!(kind = payload.kind.as_str(), item = %payload.item, version = payload.version, %reason, "cannot index");
        self.inner
            .store
            .set_index_state(
                payload.kind,
                &payload.item,
                payload.version,
                IndexState::Failed,
                Some(reason),
                0,
            )
            .await
            .map_err(JobError::transient)?;
        self.progressed(payload, IndexState::Failed, 0).await;
        Ok(())
    }

    /// Adds chunks to the keyword index on disk; the database indexes its rows' words itself.
    async fn index_keywords(&self, chunks: &[ChunkRecord]) -> Result<(), KnowledgeError> {
        if self.inner.location == Location::Database {
            return Ok(());
        }
        let inner = self.inner.clone();
        let chunks = chunks.to_vec();
        blocking(move || {
            let owners: Vec<String> = chunks.iter().map(|c| c.owner_id.to_string()).collect();
            let docs: Vec<KeywordDoc<'_>> = chunks
                .iter()
                .zip(&owners)
                .map(|(c, owner)| KeywordDoc {
                    id: c.id,
                    owner,
                    item: &c.item_id,
                    heading: c.heading.as_deref(),
                    text: &c.text,
                })
                .collect();
            inner.keyword.add(&docs).map_err(storage)?;
            inner.keyword.commit().map_err(storage)
        })
        .await?
    }

    /// Adds the chunks that have `model`'s vectors (as read with that model) to its vector
    /// index. In the database, storing a vector added it, once the model's index exists: the
    /// first vectors a model makes create it and copy in what was stored before.
    async fn index_vectors(
        &self,
        model: &str,
        chunks: &[ChunkRecord],
    ) -> Result<(), KnowledgeError> {
        let chunks: Vec<ChunkRecord> = chunks
            .iter()
            .filter(|c| c.embedding.is_some())
            .cloned()
            .collect();
        let Some(first) = chunks.first() else {
            return Ok(());
        };
        if self.inner.location == Location::Database {
            let dimensions = first.embedding.as_ref().map_or(0, Vec::len);
            return self.ensure_database_vectors(model, dimensions).await;
        }
        let index = self.vector_index(model).await?;
        blocking(move || {
            let owners: Vec<String> = chunks.iter().map(|c| c.owner_id.to_string()).collect();
            let docs: Vec<VectorDoc<'_>> = chunks
                .iter()
                .zip(&owners)
                .filter_map(|(c, owner)| {
                    c.embedding.as_deref().map(|vector| VectorDoc {
                        id: c.id,
                        owner,
                        item: &c.item_id,
                        vector,
                    })
                })
                .collect();
            index.add(&docs).map_err(storage)
        })
        .await?
    }

    /// Makes sure `model`'s vectors have their index in the database, filled.
    async fn ensure_database_vectors(
        &self,
        model: &str,
        dimensions: usize,
    ) -> Result<(), KnowledgeError> {
        let known = self
            .inner
            .database_vectors
            .lock()
            .is_ok_and(|known| known.contains(model));
        if !known {
            self.fill_database_vectors(model, dimensions).await?;
        }
        Ok(())
    }

    /// Makes `model`'s index in the database and copies in the vectors it lacks; returns how
    /// many.
    async fn fill_database_vectors(
        &self,
        model: &str,
        dimensions: usize,
    ) -> Result<usize, KnowledgeError> {
        let store = &self.inner.store;
        store.create_vector_index(model, dimensions).await?;
        let filled = store.fill_vector_index(model).await?;
        if filled > 0 {
            tracing::info!(
                model,
                vectors = filled,
                "vectors copied into the database's index"
            );
        }
        if let Ok(mut known) = self.inner.database_vectors.lock() {
            known.insert(model.to_owned());
        }
        Ok(filled)
    }

    /// Brings `model`'s vector index in line with the vectors stored: adds what it lacks and,
    /// on disk, removes entries of chunks no longer stored. Returns (added, removed).
    async fn reconcile_vectors(&self, model: &str) -> Result<(usize, Vec<i64>), KnowledgeError> {
        let store = &self.inner.store;
        if self.inner.location == Location::Database {
            // Cheap when nothing is amiss: no ids are read, only what the index lacks.
            let Some(dimensions) = store.vector_dimensions(model).await? else {
                return Ok((0, Vec::new()));
            };
            let added = self.fill_database_vectors(model, dimensions).await?;
            return Ok((added, Vec::new()));
        }
        let embedded: HashSet<i64> = store.embedded_chunk_ids(model).await?.into_iter().collect();
        let index = self.vector_index(model).await?;
        let indexed = {
            let index = index.clone();
            blocking(move || index.ids().map_err(storage)).await??
        };
        let mut missing: Vec<i64> = embedded.difference(&indexed).copied().collect();
        missing.sort_unstable();
        for batch in missing.chunks(500) {
            self.index_vectors(model, &store.chunks_by_id(batch, model).await?)
                .await?;
        }
        let extra: Vec<i64> = indexed.difference(&embedded).copied().collect();
        Ok((missing.len(), extra))
    }

    /// Decides which model's vectors search by meaning answers with: the configured model
    /// once it has embedded every chunk (or when no other has embedded more), else the model
    /// that embedded the most, until the configured one catches up. Nothing is dropped here:
    /// another process sharing the database may still be configured with another model.
    async fn choose_vectors(&self) -> Result<(), KnowledgeError> {
        let configured = &self.inner.settings.embedding_model;
        let (total, coverage) = self.inner.store.vector_coverage().await?;
        let of = |model: &str| {
            coverage
                .iter()
                .find(|(m, _)| m == model)
                .map_or(0, |(_, n)| *n)
        };
        let configured_count = of(configured);
        let previous = coverage
            .iter()
            .find(|(m, n)| m != configured && *n > configured_count)
            .filter(|_| configured_count < total)
            .map(|(m, _)| m.clone());
        if let Some(previous) = &previous {
            tracing::info!(
                model = %configured,
                embedded = configured_count,
                chunks = total,
                answering = %previous,
                "embedding model changed: re-embedding in the background; search by meaning \
                 answers with the previous model's vectors meanwhile"
            );
        }
        self.set_previous_model(previous);
        Ok(())
    }

    /// Once the configured model has embedded every chunk, stops answering with the previous
    /// model and forgets every other model's vectors.
    async fn retire_previous_model(&self) -> Result<(), KnowledgeError> {
        let configured = &self.inner.settings.embedding_model;
        let (total, coverage) = self.inner.store.vector_coverage().await?;
        let done = coverage
            .iter()
            .find(|(m, _)| m == configured)
            .is_some_and(|(_, n)| *n >= total);
        if done && let Some(previous) = self.previous_model() {
            self.set_previous_model(None);
            tracing::info!(model = %configured, previous = %previous, "re-embedding finished: search by meaning answers with the new model");
            self.drop_other_models(&coverage).await?;
        }
        Ok(())
    }

    /// Forgets the vectors of every model in `coverage` that search does not use.
    async fn drop_other_models(&self, coverage: &[(String, u64)]) -> Result<(), KnowledgeError> {
        let searched = self.searched_models();
        for (model, _) in coverage {
            if !searched.contains(model) {
                self.drop_model(model).await?;
            }
        }
        Ok(())
    }

    /// Forgets a model's vectors: in the database, and its file on disk.
    async fn drop_model(&self, model: &str) -> Result<(), KnowledgeError> {
        self.inner.store.drop_vectors(model).await?;
        if let Ok(mut known) = self.inner.database_vectors.lock() {
            known.remove(model);
        }
        let opened = self
            .inner
            .vectors
            .lock()
            .ok()
            .and_then(|mut open| open.remove(model));
        drop(opened);
        let path = vectors_file(&self.inner.vectors_dir, model);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(err) => Err(KnowledgeError::Storage(format!(
                "cannot remove {}: {err}",
                path.display()
            ))),
        }
    }

    /// Brings the indexes in line with the database: adds the chunks they lack (every chunk to
    /// the keyword index, each searched model's vectors to its vector index), removes entries
    /// of chunks no longer stored, picks the model search by meaning answers with, and queues
    /// again the versions still to index: those whose job was lost or given up on, and those
    /// the configured embedding model has not embedded yet. Run at start; cheap when nothing
    /// is amiss.
    pub async fn reconcile(&self) -> Result<Reconciled, KnowledgeError> {
        let store = &self.inner.store;
        let model = &self.inner.settings.embedding_model;
        self.choose_vectors().await?;
        let mut reconciled = Reconciled::default();
        let mut extra: Vec<i64> = Vec::new();
        if self.inner.location == Location::Embedded {
            let stored: HashSet<i64> = store.chunk_ids().await?.into_iter().collect();
            let inner = self.inner.clone();
            let keyword_ids = blocking(move || inner.keyword.ids().map_err(storage)).await??;
            let mut for_keywords: Vec<i64> = stored.difference(&keyword_ids).copied().collect();
            for_keywords.sort_unstable();
            extra.extend(keyword_ids.difference(&stored));
            reconciled.added = for_keywords.len();
            for batch in for_keywords.chunks(500) {
                self.index_keywords(&store.chunks_by_id(batch, model).await?)
                    .await?;
            }
        }
        for searched in self.searched_models() {
            let (added, stale) = self.reconcile_vectors(&searched).await?;
            reconciled.added = reconciled.added.max(added);
            extra.extend(stale);
        }
        extra.sort_unstable();
        extra.dedup();
        reconciled.removed = extra.len();
        if !extra.is_empty() {
            self.forget_chunks(extra).await?;
        }
        let generation = OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
        for (owner, kind, item, version) in store.versions_to_index(INDEX_JOB, model).await? {
            self.enqueue_index(owner, kind, &item, version, generation)
                .await?;
            reconciled.requeued += 1;
        }
        if reconciled != Reconciled::default() {
            tracing::info!(
                added = reconciled.added,
                removed = reconciled.removed,
                requeued = reconciled.requeued,
                "search indexes brought in line with the database"
            );
        }
        Ok(reconciled)
    }

    /// Rebuilds the indexes on disk from the database. The database's own indexes cannot
    /// drift from its rows; there it fills in what a model's vector index lacks. Either way,
    /// the vectors of models search no longer uses (left by an earlier change of model) go.
    pub async fn reindex(&self) -> Result<Reconciled, KnowledgeError> {
        self.choose_vectors().await?;
        let (_, coverage) = self.inner.store.vector_coverage().await?;
        self.drop_other_models(&coverage).await?;
        if self.inner.location == Location::Embedded {
            let vectors = self.open_vector_indexes().await?;
            let inner = self.inner.clone();
            blocking(move || {
                inner.keyword.clear().map_err(storage)?;
                inner.keyword.commit().map_err(storage)?;
                for index in vectors {
                    index.clear().map_err(storage)?;
                }
                Ok::<_, KnowledgeError>(())
            })
            .await??;
        }
        self.reconcile().await
    }

    /// Deletes content that no version has referred to for `knowledge.blob_grace`. Returns how
    /// many blobs went.
    pub async fn collect_blobs(&self) -> Result<usize, KnowledgeError> {
        let grace = time::Duration::try_from(self.inner.settings.blob_grace)
            .unwrap_or(time::Duration::HOUR);
        let due = self.inner.store.orphaned_blobs(grace).await?;
        let mut collected = 0;
        for hash in due {
            // Forgotten first: were the file deleted first and the row kept (a crash between),
            // a new upload of the same bytes would find the row and no file.
            if self.inner.store.forget_blob(&hash).await? {
                self.inner.blobs.remove(&hash)?;
                collected += 1;
            }
        }
        Ok(collected)
    }

    /// Searches the owner's knowledge.
    pub async fn search(
        &self,
        owner: UserId,
        query: &SearchQuery,
    ) -> Result<SearchResults, KnowledgeError> {
        let text = query.text.trim();
        for tag in &query.filter.tags {
            check_text("a tag", tag)?;
        }
        if let Some(mime) = &query.filter.mime_prefix {
            check_text("the MIME type", mime)?;
        }
        if text.is_empty() {
            return Err(KnowledgeError::Invalid("the query is empty".into()));
        }
        if text.chars().count() > MAX_QUERY_CHARS {
            return Err(KnowledgeError::Invalid(format!(
                "the query is longer than {MAX_QUERY_CHARS} characters"
            )));
        }
        if !(1..=MAX_SEARCH_LIMIT).contains(&query.limit) {
            return Err(KnowledgeError::Invalid(format!(
                "the limit must be from 1 to {MAX_SEARCH_LIMIT}"
            )));
        }
        let items: Option<Arc<Vec<String>>> = if query.filter.is_empty() {
            None
        } else {
            Some(Arc::new(
                self.inner
                    .store
                    .filtered_items(owner, &query.filter)
                    .await?,
            ))
        };
        if items.as_ref().is_some_and(|items| items.is_empty()) {
            return Ok(SearchResults {
                hits: Vec::new(),
                degraded: None,
            });
        }
        // Deeper than asked: some candidates may be dropped by the database check, and fusion
        // needs more than the top few of each ranking.
        let depth = (query.limit * 4).max(40);
        let keyword = if query.mode == SearchMode::Semantic {
            Vec::new()
        } else {
            self.keyword_ranking(owner, text, items.clone(), depth)
                .await?
        };
        let mut degraded = None;
        let vector = if query.mode == SearchMode::Keyword {
            Vec::new()
        } else {
            match self.vector_ranking(owner, text, items.clone(), depth).await {
                Ok(ranking) => ranking,
                Err(err) if query.mode == SearchMode::Hybrid => {
                    tracing::warn!(error = %err, "hybrid search ran on keywords alone");
                    degraded = Some(err.to_string());
                    Vec::new()
                }
                Err(err) => return Err(err),
            }
        };
        let settings = &self.inner.settings;
        let method = FusionMethod {
            method: query.fusion.unwrap_or(settings.fusion),
            rrf_k: settings.rrf_k,
            keyword_weight: match query.mode {
                SearchMode::Keyword => 1.0,
                SearchMode::Semantic => 0.0,
                SearchMode::Hybrid if degraded.is_some() => 1.0,
                SearchMode::Hybrid => f32::from(settings.keyword_weight_percent) / 100.0,
            },
        };
        let fused = fuse(&keyword, &vector, method);
        let ids: Vec<i64> = fused.iter().map(|f| f.id).collect();
        let found = self.inner.store.chunk_hits(owner, &ids).await?;
        let mut by_id: std::collections::HashMap<i64, kai_store::ChunkHit> =
            found.into_iter().map(|hit| (hit.id, hit)).collect();
        let mut chosen = Vec::with_capacity(query.limit);
        for ranked in fused {
            if let Some(hit) = by_id.remove(&ranked.id) {
                chosen.push((ranked, hit));
                if chosen.len() == query.limit {
                    break;
                }
            }
        }
        let texts: Vec<String> = chosen
            .iter_mut()
            .map(|(_, hit)| std::mem::take(&mut hit.text))
            .collect();
        let (texts, passages) = self.passages(text, texts).await?;
        let hits = chosen
            .into_iter()
            .zip(texts.into_iter().zip(passages))
            .map(|((ranked, hit), (chunk_text, passage))| SearchHit {
                chunk_id: hit.id,
                item_id: hit.item_id,
                item_kind: hit.item_kind,
                title: hit.title,
                version: hit.version,
                mime: hit.mime,
                heading: hit.heading,
                score: ranked.score,
                keyword_rank: ranked.keyword_rank,
                vector_rank: ranked.vector_rank,
                passage,
                text: chunk_text,
            })
            .collect();
        Ok(SearchResults { hits, degraded })
    }

    /// The owner's chunks ranked by the query's words, best first, at most `depth`.
    async fn keyword_ranking(
        &self,
        owner: UserId,
        text: &str,
        items: Option<Arc<Vec<String>>>,
        depth: usize,
    ) -> Result<Vec<(i64, f32)>, KnowledgeError> {
        if self.inner.location == Location::Database {
            return Ok(self
                .inner
                .store
                .keyword_search(owner, text, items.as_deref().map(Vec::as_slice), depth)
                .await?);
        }
        let inner = self.inner.clone();
        let (owner_text, text) = (owner.to_string(), text.to_owned());
        blocking(move || {
            inner
                .keyword
                .search(
                    &owner_text,
                    &text,
                    items.as_deref().map(Vec::as_slice),
                    depth,
                )
                .map_err(storage)
        })
        .await?
    }

    /// The owner's chunks ranked by meaning, best first, at most `depth`: with the previous
    /// model's vectors while the configured model re-embeds (the configured model's own, as
    /// far as they go, when the previous one cannot embed the query any more).
    async fn vector_ranking(
        &self,
        owner: UserId,
        text: &str,
        items: Option<Arc<Vec<String>>>,
        depth: usize,
    ) -> Result<Vec<(i64, f32)>, KnowledgeError> {
        let configured = self.inner.settings.embedding_model.clone();
        let mut models = Vec::new();
        if let Some(previous) = self.previous_model() {
            models.push(previous);
        }
        models.push(configured);
        let mut failure = None;
        for model in models {
            let embedded = self
                .embed(
                    owner,
                    &model,
                    vec![text.to_owned()],
                    InputType::Query,
                    format!("search-{}", uuid::Uuid::now_v7()),
                )
                .await;
            let vector = match embedded {
                Ok(mut vectors) => vectors.pop().unwrap_or_default(),
                Err(err) => {
                    tracing::warn!(model, error = %err, "cannot embed the query");
                    failure = Some(err);
                    continue;
                }
            };
            if self.inner.location == Location::Database {
                return Ok(self
                    .inner
                    .store
                    .vector_search(
                        owner,
                        &model,
                        &vector,
                        items.as_deref().map(Vec::as_slice),
                        depth,
                    )
                    .await?);
            }
            let index = self.vector_index(&model).await?;
            let owner_text = owner.to_string();
            return blocking(move || {
                index
                    .search(
                        &owner_text,
                        &vector,
                        items.as_deref().map(Vec::as_slice),
                        depth,
                    )
                    .map_err(storage)
            })
            .await?;
        }
        Err(failure.unwrap_or_else(|| KnowledgeError::Storage("no embedding model".into())))
    }

    /// The best passage of each chunk text for the query, terms marked; its beginning when no
    /// term matches (a hit by meaning alone). All of a search's in one blocking task, which
    /// hands the texts back.
    async fn passages(
        &self,
        query: &str,
        texts: Vec<String>,
    ) -> Result<(Vec<String>, Vec<Highlight>), KnowledgeError> {
        let inner = self.inner.clone();
        let query = query.to_owned();
        blocking(move || {
            let mut passages = Vec::with_capacity(texts.len());
            for text in &texts {
                let highlight = inner
                    .keyword
                    .highlight(&query, text, PASSAGE_CHARS)
                    .map_err(storage)?;
                passages.push(highlight.unwrap_or_else(|| {
                    let end = text
                        .char_indices()
                        .nth(PASSAGE_CHARS)
                        .map_or(text.len(), |(at, _)| at);
                    Highlight {
                        text: text[..end].to_owned(),
                        ranges: Vec::new(),
                    }
                }));
            }
            Ok((texts, passages))
        })
        .await?
    }
}

/// What an indexing job reads.
enum Content {
    /// An artifact's blob, by hash, with the file name it came under.
    Blob {
        hash: String,
        file_name: Option<String>,
    },
    /// An artifact's bytes, read, with the file name they came under.
    Bytes(Vec<u8>, Option<String>),
    /// A note's Markdown.
    Markdown(String),
}

/// The text a chunk is embedded as: its headings, then its text, so that a chunk knows which
/// section it is about.
fn embedding_text(chunk: &ChunkRecord) -> String {
    match &chunk.heading {
        Some(heading) => format!("{heading}\n\n{}", chunk.text),
        None => chunk.text.clone(),
    }
}

/// Text the database keeps as it is: no NUL character (PostgreSQL's text cannot hold one) and at
/// most 64 KiB.
pub(crate) fn check_text(what: &str, text: &str) -> Result<(), KnowledgeError> {
    if text.contains('\0') {
        return Err(KnowledgeError::Invalid(format!(
            "{what} holds a NUL character"
        )));
    }
    if text.len() > 64 * 1024 {
        return Err(KnowledgeError::Invalid(format!(
            "{what} is longer than 64 KiB"
        )));
    }
    Ok(())
}

/// A one-line value (a title, a source): no control characters, at most 1,000 characters.
fn check_line(what: &str, text: &str) -> Result<(), KnowledgeError> {
    if text.chars().any(char::is_control) {
        return Err(KnowledgeError::Invalid(format!(
            "{what} holds a control character"
        )));
    }
    if text.chars().count() > 1000 {
        return Err(KnowledgeError::Invalid(format!(
            "{what} is longer than 1,000 characters"
        )));
    }
    Ok(())
}

/// Tags: at most 32, each 1 to 64 characters without control characters.
pub(crate) fn check_tags(tags: &[String]) -> Result<(), KnowledgeError> {
    if tags.len() > 32 {
        return Err(KnowledgeError::Invalid("at most 32 tags".into()));
    }
    for tag in tags {
        let trimmed = tag.trim();
        if trimmed.is_empty() || trimmed.chars().count() > 64 {
            return Err(KnowledgeError::Invalid(format!(
                "tag `{tag}` must be 1 to 64 characters"
            )));
        }
        if trimmed.chars().any(char::is_control) {
            return Err(KnowledgeError::Invalid(format!(
                "tag `{}` holds a control character",
                trimmed.escape_debug()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::clean_file_name;

    #[test]
    fn file_names_keep_only_their_last_component() {
        assert_eq!(
            clean_file_name("../../etc/passwd").as_deref(),
            Some("passwd")
        );
        assert_eq!(
            clean_file_name("C:\\Users\\me\\a.md").as_deref(),
            Some("a.md")
        );
        assert_eq!(clean_file_name("a\u{0}b\n.txt").as_deref(), Some("ab.txt"));
        assert_eq!(clean_file_name(".."), None);
        assert_eq!(clean_file_name("dir/"), None);
        assert_eq!(
            clean_file_name(&"x".repeat(300)).map(|n| n.len()),
            Some(255)
        );
    }
}
