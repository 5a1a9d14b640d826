//! Knowledge: artifacts, notes, collections, search and indexing progress.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// How far indexing an artifact version has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IndexState {
    /// Waiting for (or in) the background indexing job.
    Pending,
    /// Searchable by its words; its vectors wait for the embedding model, and `index_error`
    /// says why.
    KeywordOnly,
    /// Searchable.
    Indexed,
    /// Its text could not be read; `index_error` says why.
    Failed,
    /// An opaque binary (an image, an archive): kept, not searched.
    Skipped,
    /// A newer version is the one searched.
    Superseded,
}

/// One version of an artifact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ArtifactVersion {
    /// Its number, from 1.
    pub version: u64,
    /// The BLAKE3 hash of its content, in hex.
    pub blake3: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its MIME type, as kai sniffed it from the content.
    pub mime: String,
    /// The file name it was uploaded under.
    pub file_name: Option<String>,
    /// Who added it: `user:<id>` or `run:<id>`.
    pub created_by: String,
    /// When it was added.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// How far indexing it has come.
    pub index_state: IndexState,
    /// Why indexing failed, when it did.
    pub index_error: Option<String>,
    /// How many chunks of it are searchable.
    pub chunk_count: u64,
}

/// An artifact with its current version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Artifact {
    /// Its id.
    pub id: Uuid,
    /// Its title.
    pub title: String,
    /// The collection it is in.
    pub collection_id: Option<Uuid>,
    /// Its tags, sorted.
    pub tags: Vec<String>,
    /// Where it came from (a URL, a path).
    pub source: Option<String>,
    /// Who created it: `user:<id>` or `run:<id>`.
    pub created_by: String,
    /// Free metadata.
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it or its versions last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Its newest version.
    pub current: ArtifactVersion,
}

/// `GET /api/v1/artifacts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ArtifactPage {
    /// Most recently changed first.
    pub artifacts: Vec<Artifact>,
    /// Pass as `after` for the next page; absent on the last one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_after: Option<String>,
}

/// `GET /api/v1/artifacts/{id}/versions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ArtifactVersions {
    /// Oldest first.
    pub versions: Vec<ArtifactVersion>,
}

/// `POST /api/v1/artifacts` and `POST /api/v1/artifacts/{id}/versions`: what goes with the
/// content, which is the request body itself.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// The file name; only its last path component is kept. It picks among text formats
    /// (`.md`, `.html`, `.rs`…); the content decides whether it is text at all.
    pub name: Option<String>,
    /// The title (new artifacts only); the file name when unset.
    pub title: Option<String>,
    /// The collection it goes into (new artifacts only).
    pub collection: Option<Uuid>,
    /// Tags, comma-separated (new artifacts only).
    pub tags: Option<String>,
    /// Where it came from (new artifacts only).
    pub source: Option<String>,
}

/// `GET /api/v1/artifacts`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ArtifactListQuery {
    /// Only those in this collection.
    pub collection: Option<Uuid>,
    /// Only those with this tag.
    pub tag: Option<String>,
    /// How many (1 to 200, default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// `next_after` of the previous page.
    pub after: Option<String>,
}

/// `GET /api/v1/artifacts/{id}/content`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ContentQuery {
    /// Which version (default: the current one).
    #[param(minimum = 1)]
    pub version: Option<u64>,
}

/// `GET /api/v1/artifacts/{id}/diff`.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DiffQuery {
    /// The older version.
    #[param(minimum = 1)]
    pub from: u64,
    /// The newer version.
    #[param(minimum = 1)]
    pub to: u64,
}

/// `PATCH /api/v1/artifacts/{id}`: fields left out stay as they are.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateArtifactRequest {
    /// A new title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// New tags, replacing the old.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// Another collection; `null` for none.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    #[schema(value_type = Option<Uuid>)]
    pub collection_id: Option<Option<Uuid>>,
    /// New metadata (a JSON object), replacing the old.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
}

/// A field that is present, `null` included: `Some(None)` for `null`, where a missing field is
/// `None` (through `#[serde(default)]`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// A collection of artifacts and notes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Collection {
    /// Its id.
    pub id: Uuid,
    /// Its name, unique among the owner's.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// When it was made.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// `GET /api/v1/collections`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CollectionList {
    /// By name.
    pub collections: Vec<Collection>,
}

/// `POST /api/v1/collections`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCollectionRequest {
    /// Its name (1 to 100 characters).
    pub name: String,
    /// What it is for.
    #[serde(default)]
    pub description: String,
}

/// Which rankings a search uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SearchMode {
    /// BM25 over the words.
    Keyword,
    /// Nearness of meaning: the embedding model's vectors.
    Semantic,
    /// Both, fused (the default).
    #[default]
    Hybrid,
}

/// How hybrid search merges its rankings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FusionMethod {
    /// Reciprocal rank fusion.
    Rrf,
    /// Normalised scores, weighted.
    Weighted,
}

/// `POST /api/v1/search`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    /// What to look for (1 to 10,000 characters).
    pub query: String,
    /// Keyword, semantic or hybrid (the default).
    #[serde(default)]
    pub mode: SearchMode,
    /// How many hits (1 to 100, default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// Only items in these collections.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub collections: Vec<Uuid>,
    /// Only items with all these tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Only items of this kind: `artifact` or `note`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Only items whose MIME type starts with this (`text/`, `application/pdf`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime: Option<String>,
    /// Only items changed at or after this time.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub since: Option<OffsetDateTime>,
    /// Only items changed before this time.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub until: Option<OffsetDateTime>,
    /// The fusion method, instead of the configured one (`knowledge.fusion`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fusion: Option<FusionMethod>,
}

/// A passage with the query's words marked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Passage {
    /// The passage.
    pub text: String,
    /// Byte ranges of `text` that matched the query's words, as `[start, end)` pairs.
    pub highlights: Vec<[usize; 2]>,
}

/// One passage found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SearchHit {
    /// The item it comes from.
    pub item_id: Uuid,
    /// `artifact` or `note`.
    pub kind: String,
    /// The item's title.
    pub title: String,
    /// The version the passage is from.
    pub version: u64,
    /// The item's MIME type.
    pub mime: String,
    /// The headings above the passage (`Install > From source`).
    pub heading: Option<String>,
    /// Its score: comparable only within one search.
    pub score: f32,
    /// Its rank in the keyword ranking (from 1), if it was there.
    pub keyword_rank: Option<u32>,
    /// Its rank in the vector ranking (from 1), if it was there.
    pub vector_rank: Option<u32>,
    /// The passage.
    pub passage: Passage,
}

/// The answer to a search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SearchResponse {
    /// Best first.
    pub hits: Vec<SearchHit>,
    /// Set when hybrid search ran on keywords alone because the embedding model failed; says
    /// why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub degraded: Option<String>,
}

/// A link in a note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NoteLink {
    /// `note` or `artifact`.
    pub kind: String,
    /// What it points at; absent for a note title no note has yet (it is linked when one
    /// takes that title) and for an artifact that is gone.
    pub target_id: Option<Uuid>,
    /// The target's title, or the title written in the link.
    pub title: Option<String>,
}

/// A note that links to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Backlink {
    /// The linking note's id.
    pub id: Uuid,
    /// Its title.
    pub title: String,
}

/// A note, without its body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NoteSummary {
    /// Its id.
    pub id: Uuid,
    /// Its title, unique among yours (without regard to case).
    pub title: String,
    /// The collection it is in.
    pub collection_id: Option<Uuid>,
    /// Its tags, sorted.
    pub tags: Vec<String>,
    /// Its current version.
    pub version: u64,
    /// How far indexing the current version has come.
    pub index_state: IndexState,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// A note with its body, its links and the notes that link to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Note {
    /// What it is.
    #[serde(flatten)]
    pub summary: NoteSummary,
    /// Its Markdown.
    pub body: String,
    /// The `[[links]]` in its body.
    pub links: Vec<NoteLink>,
    /// The notes that link to it.
    pub backlinks: Vec<Backlink>,
}

/// `GET /api/v1/notes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NoteList {
    /// Most recently changed first.
    pub notes: Vec<NoteSummary>,
}

/// `GET /api/v1/notes`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct NoteListQuery {
    /// Only those in this collection.
    pub collection: Option<Uuid>,
    /// Only those with this tag (`template` lists the templates).
    pub tag: Option<String>,
    /// Only the one with this title (without regard to case).
    pub title: Option<String>,
    /// How many (1 to 500, default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

/// `POST /api/v1/notes`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateNoteRequest {
    /// Its title (1 to 200 characters, without `[[`, `]]`, `|` or `#`), unique among yours.
    pub title: String,
    /// Its Markdown; with `template`, appended to the rendered template.
    #[serde(default)]
    pub body: String,
    /// The title of a note tagged `template` whose body (a minijinja template with `date`,
    /// `time`, `now`, `user`, `title` and `variables`) becomes this note's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Values for the template's own variables.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    #[schema(value_type = Object)]
    pub variables: serde_json::Map<String, serde_json::Value>,
    /// Its tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// The collection it goes into.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection_id: Option<Uuid>,
}

/// `PATCH /api/v1/notes/{id}`: fields left out stay; a new title or body is a new version.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateNoteRequest {
    /// A new title; links to the note stay right.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// A new body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// New tags, replacing the old.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// Another collection; `null` for none.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    #[schema(value_type = Option<Uuid>)]
    pub collection_id: Option<Option<Uuid>>,
}

/// One version of a note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NoteVersion {
    /// Its number, from 1.
    pub version: u64,
    /// The title it had.
    pub title: String,
    /// Its Markdown.
    pub body: String,
    /// Who wrote it.
    pub created_by: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// `GET /api/v1/notes/{id}/versions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NoteVersions {
    /// Oldest first.
    pub versions: Vec<NoteVersion>,
}

/// Where a memory came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MemorySource {
    /// `user`, `conversation` or `run`.
    pub kind: String,
    /// The conversation's or run's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// A fact about you that chats and agents remember.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Memory {
    /// Its id.
    pub id: Uuid,
    /// The fact.
    pub text: String,
    /// Where it came from.
    pub source: MemorySource,
    /// The entry it corrects.
    pub supersedes: Option<Uuid>,
    /// The entry that corrects it, if one does (then it is history).
    pub superseded_by: Option<Uuid>,
    /// Entries it relates to.
    pub relates_to: Vec<Uuid>,
    /// When it was kept.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// `GET /api/v1/memory`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MemoryList {
    /// Oldest first.
    pub memories: Vec<Memory>,
}

/// `GET /api/v1/memory`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MemoryListQuery {
    /// Also the entries later ones corrected.
    #[serde(default)]
    pub history: bool,
    /// Only entries containing this text (without regard to case).
    pub q: Option<String>,
}

/// `POST /api/v1/memory`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMemoryRequest {
    /// The fact (1 to 4,000 characters).
    pub text: String,
    /// An entry of yours this one corrects: it stays, as history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supersedes: Option<Uuid>,
    /// Entries of yours this one relates to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relates_to: Vec<Uuid>,
    /// The conversation it came from, if any (else it is yours, directly).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<Uuid>,
}

/// kai's extension to chat requests: answer from the caller's knowledge.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KnowledgeOptions {
    /// Only these collections; all the caller's knowledge when left out or empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub collections: Vec<Uuid>,
    /// How many passages, at most (1 to 20, default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// Also tell the model what the caller's memory holds (`/api/v1/memory`); left out while
    /// the vault is locked.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub memory: bool,
}

/// A passage an answer was given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct KnowledgeSource {
    /// Its number in the prompt, from 1: what the answer cites as `[n]`.
    pub number: u32,
    /// The artifact (or note) it comes from.
    pub item_id: Uuid,
    /// Its title.
    pub title: String,
    /// The version.
    pub version: u64,
    /// The headings above the passage.
    pub heading: Option<String>,
    /// The passage as the model saw it.
    pub text: String,
    /// Its search score.
    pub score: f32,
}

/// `GET /api/v1/knowledge/status`: indexing progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KnowledgeStatus {
    /// Where the search indexes live: `embedded` (on disk, one copy per process) or
    /// `database` (PostgreSQL's full-text search and pgvector, shared by every process).
    pub search_index: String,
    /// The model that embeds knowledge.
    pub embedding_model: String,
    /// The model whose vectors search by meaning answers with: the configured one, or the one
    /// before it while the configured one re-embeds.
    pub vectors_from: String,
    /// Chunks stored, everyone's.
    pub chunks: u64,
    /// Of those, the chunks the configured model has embedded.
    pub chunks_embedded: u64,
    /// The caller's versions waiting to be indexed.
    pub pending: u64,
    /// The caller's versions searchable by keyword, waiting for their vectors.
    pub keyword_only: u64,
    /// The caller's versions searchable.
    pub indexed: u64,
    /// The caller's versions whose text could not be read.
    pub failed: u64,
    /// The caller's binary versions, kept but not searched.
    pub skipped: u64,
    /// Indexing jobs queued, everyone's.
    pub jobs_queued: u64,
    /// Indexing jobs running, everyone's.
    pub jobs_running: u64,
    /// Indexing jobs given up on, everyone's.
    pub jobs_dead: u64,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::UpdateArtifactRequest;

    #[test]
    fn a_collection_set_to_null_differs_from_one_left_out() {
        let left_out: UpdateArtifactRequest = serde_json::from_str("{}").unwrap();
        assert_eq!(left_out.collection_id, None);
        let cleared: UpdateArtifactRequest =
            serde_json::from_str(r#"{"collection_id": null}"#).unwrap();
        assert_eq!(cleared.collection_id, Some(None));
    }
}
