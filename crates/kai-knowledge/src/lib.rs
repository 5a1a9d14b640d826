//! kai's knowledge: what a person and their agents keep (artifacts, notes and memory), made
//! searchable by keyword and by meaning.

pub mod blobs;
pub mod chunk;
pub mod extract;
pub mod fusion;
mod grounding;
pub mod keyword;
mod memory;
mod notes;
mod service;
pub mod vectors;

pub use grounding::{Grounded, Grounding, MAX_SOURCES, Source};
pub use memory::{MAX_MEMORY_CHARS, MemoryEntry, MemorySource};
pub use notes::{MAX_NOTE_BYTES, NoteChanges, NoteInput, NoteView, TEMPLATE_TAG, wiki_links};
pub use service::{
    ArtifactMeta, INDEX_JOB, IndexProgress, Knowledge, KnowledgeError, MAX_QUERY_CHARS,
    MAX_SEARCH_LIMIT, Reconciled, SearchHit, SearchMode, SearchQuery, SearchResults, Upload,
    clean_file_name,
};
