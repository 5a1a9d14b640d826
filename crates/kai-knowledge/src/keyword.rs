//! The embedded keyword index: BM25 over chunk text with tantivy, in
//! `<data_dir>/knowledge/keyword/`.
//!
//! It holds, per chunk, only what ranking and filtering need (the chunk id, its owner, its item
//! and the text's terms); the text itself stays in the database. It is a cache of the database:
//! a commit is atomic (tantivy's meta file), and whatever a crash lost or left behind is found
//! by [`KeywordIndex::ids`] and repaired at start.
//!
//! Every call does blocking file work: callers run it on a blocking thread.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Mutex;

use tantivy::collector::TopDocs;
use tantivy::directory::MmapDirectory;
use tantivy::query::{BooleanQuery, ConstScoreQuery, Occur, Query, TermQuery, TermSetQuery};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STRING, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::snippet::SnippetGenerator;
use tantivy::tokenizer::TokenStream;
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, Term, doc};

/// The most distinct terms of a query that are searched for: a query of 10,000 characters
/// costs no more than one of a paragraph.
const MAX_QUERY_TERMS: usize = 64;

/// The indexing memory budget: tantivy's minimum per thread is 15 MB.
const WRITER_MEMORY: usize = 32 * 1024 * 1024;

/// Why the keyword index failed.
#[derive(Debug, thiserror::Error)]
#[error("keyword index: {0}")]
pub struct KeywordError(String);

impl From<tantivy::TantivyError> for KeywordError {
    fn from(err: tantivy::TantivyError) -> Self {
        KeywordError(err.to_string())
    }
}

/// A chunk to index.
#[derive(Debug, Clone, Copy)]
pub struct KeywordDoc<'a> {
    /// The chunk's id.
    pub id: i64,
    /// Its owner's id.
    pub owner: &'a str,
    /// Its item's id.
    pub item: &'a str,
    /// The headings above it, searched with its text.
    pub heading: Option<&'a str>,
    /// Its text.
    pub text: &'a str,
}

/// A passage with the query's terms marked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Highlight {
    /// The passage.
    pub text: String,
    /// Byte ranges of `text` that matched.
    pub ranges: Vec<std::ops::Range<usize>>,
}

#[derive(Debug, Clone, Copy)]
struct Fields {
    id: Field,
    owner: Field,
    item: Field,
    text: Field,
}

/// The index.
pub struct KeywordIndex {
    index: Index,
    reader: IndexReader,
    writer: Mutex<IndexWriter>,
    fields: Fields,
}

impl std::fmt::Debug for KeywordIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeywordIndex").finish_non_exhaustive()
    }
}

fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let id = builder.add_u64_field("chunk_id", INDEXED | FAST);
    let owner = builder.add_text_field("owner", STRING);
    let item = builder.add_text_field("item", STRING);
    // English stemming: "indexing" finds "indexed". Positions are not kept: ranking is BM25
    // over terms, and phrases are what the vector side is for.
    let text = builder.add_text_field(
        "text",
        TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer("en_stem")
                .set_index_option(IndexRecordOption::WithFreqs),
        ),
    );
    (
        builder.build(),
        Fields {
            id,
            owner,
            item,
            text,
        },
    )
}

fn chunk_id(id: i64) -> u64 {
    // Chunk ids come from the database's identity column: positive.
    u64::try_from(id).unwrap_or(0)
}

impl KeywordIndex {
    /// Opens the index in `dir`, creating it if missing.
    pub fn open(dir: &Path) -> Result<KeywordIndex, KeywordError> {
        std::fs::create_dir_all(dir)
            .map_err(|err| KeywordError(format!("cannot create {}: {err}", dir.display())))?;
        let directory = MmapDirectory::open(dir)
            .map_err(|err| KeywordError(format!("cannot open {}: {err}", dir.display())))?;
        let (schema, fields) = schema();
        let index = Index::open_or_create(directory, schema)?;
        Self::with_index(index, fields, WRITER_MEMORY)
    }

    /// An empty index in memory: where search runs in the database, it only marks the query's
    /// words in passages ([`KeywordIndex::highlight`]).
    pub fn in_memory() -> Result<KeywordIndex, KeywordError> {
        let (schema, fields) = schema();
        // tantivy's smallest writer budget: nothing is ever written.
        Self::with_index(Index::create_in_ram(schema), fields, 15_000_000)
    }

    fn with_index(
        index: Index,
        fields: Fields,
        memory: usize,
    ) -> Result<KeywordIndex, KeywordError> {
        let writer = index.writer_with_num_threads(1, memory)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(KeywordIndex {
            index,
            reader,
            writer: Mutex::new(writer),
            fields,
        })
    }

    /// Adds chunks, replacing any already indexed under the same ids. Takes effect at the next
    /// [`KeywordIndex::commit`].
    pub fn add(&self, docs: &[KeywordDoc<'_>]) -> Result<(), KeywordError> {
        let writer = self.writer()?;
        for chunk in docs {
            writer.delete_term(Term::from_field_u64(self.fields.id, chunk_id(chunk.id)));
            let text = match chunk.heading {
                Some(heading) => format!("{heading}\n{}", chunk.text),
                None => chunk.text.to_owned(),
            };
            writer.add_document(doc!(
                self.fields.id => chunk_id(chunk.id),
                self.fields.owner => chunk.owner,
                self.fields.item => chunk.item,
                self.fields.text => text,
            ))?;
        }
        Ok(())
    }

    /// Removes chunks. Takes effect at the next [`KeywordIndex::commit`].
    pub fn delete(&self, ids: &[i64]) -> Result<(), KeywordError> {
        let writer = self.writer()?;
        for id in ids {
            writer.delete_term(Term::from_field_u64(self.fields.id, chunk_id(*id)));
        }
        Ok(())
    }

    /// Makes what was added and deleted durable and searchable.
    pub fn commit(&self) -> Result<(), KeywordError> {
        self.writer()?.commit()?;
        self.reader.reload()?;
        Ok(())
    }

    /// Removes everything. Takes effect at the next [`KeywordIndex::commit`].
    pub fn clear(&self) -> Result<(), KeywordError> {
        self.writer()?.delete_all_documents()?;
        Ok(())
    }

    fn writer(&self) -> Result<std::sync::MutexGuard<'_, IndexWriter>, KeywordError> {
        self.writer
            .lock()
            .map_err(|_| KeywordError("an earlier write panicked".into()))
    }

    /// The ids of every chunk the index holds.
    pub fn ids(&self) -> Result<HashSet<i64>, KeywordError> {
        let searcher = self.reader.searcher();
        let mut ids = HashSet::new();
        for segment in searcher.segment_readers() {
            let column = segment.fast_fields().u64("chunk_id")?;
            for doc in segment.doc_ids_alive() {
                if let Some(id) = column.first(doc) {
                    ids.insert(i64::try_from(id).unwrap_or(0));
                }
            }
        }
        Ok(ids)
    }

    /// The query's distinct terms, as the text field's analyser makes them.
    fn terms(&self, query: &str) -> Result<Vec<Term>, KeywordError> {
        let mut analyzer = self.index.tokenizer_for_field(self.fields.text)?;
        let mut stream = analyzer.token_stream(query);
        let mut seen = HashSet::new();
        let mut terms = Vec::new();
        while stream.advance() {
            let text = stream.token().text.clone();
            if seen.insert(text.clone()) {
                terms.push(Term::from_field_text(self.fields.text, &text));
                if terms.len() == MAX_QUERY_TERMS {
                    break;
                }
            }
        }
        Ok(terms)
    }

    fn text_query(&self, query: &str) -> Result<Option<BooleanQuery>, KeywordError> {
        let terms = self.terms(query)?;
        if terms.is_empty() {
            return Ok(None);
        }
        Ok(Some(BooleanQuery::new(
            terms
                .into_iter()
                .map(|term| {
                    let query: Box<dyn Query> =
                        Box::new(TermQuery::new(term, IndexRecordOption::WithFreqs));
                    (Occur::Should, query)
                })
                .collect(),
        )))
    }

    /// The owner's best `limit` chunks for `query` by BM25, best first, kept to `items` when
    /// given. A query with no searchable term (only punctuation) finds nothing.
    pub fn search(
        &self,
        owner: &str,
        query: &str,
        items: Option<&[String]>,
        limit: usize,
    ) -> Result<Vec<(i64, f32)>, KeywordError> {
        let Some(text) = self.text_query(query)? else {
            return Ok(Vec::new());
        };
        if limit == 0 || items.is_some_and(<[String]>::is_empty) {
            return Ok(Vec::new());
        }
        // Filters score nothing: they only narrow.
        let filter = |query: Box<dyn Query>| -> Box<dyn Query> {
            Box::new(ConstScoreQuery::new(query, 0.0))
        };
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![
            (Occur::Must, Box::new(text)),
            (
                Occur::Must,
                filter(Box::new(TermQuery::new(
                    Term::from_field_text(self.fields.owner, owner),
                    IndexRecordOption::Basic,
                ))),
            ),
        ];
        if let Some(items) = items {
            clauses.push((
                Occur::Must,
                filter(Box::new(TermSetQuery::new(
                    items
                        .iter()
                        .map(|item| Term::from_field_text(self.fields.item, item)),
                ))),
            ));
        }
        let searcher = self.reader.searcher();
        let top = searcher.search(
            &BooleanQuery::new(clauses),
            &TopDocs::with_limit(limit).order_by_score(),
        )?;
        let mut hits = Vec::with_capacity(top.len());
        for (score, address) in top {
            let column = searcher
                .segment_reader(address.segment_ord)
                .fast_fields()
                .u64("chunk_id")?;
            if let Some(id) = column.first(address.doc_id) {
                hits.push((i64::try_from(id).unwrap_or(0), score));
            }
        }
        Ok(hits)
    }

    /// The passage of `text` that best matches `query`, at most `max_chars` long, with the
    /// matching terms marked; `None` when no term matches.
    pub fn highlight(
        &self,
        query: &str,
        text: &str,
        max_chars: usize,
    ) -> Result<Option<Highlight>, KeywordError> {
        let terms = self.terms(query)?;
        if terms.is_empty() {
            return Ok(None);
        }
        // Rarer terms weigh more in picking the passage, as in tantivy's own generator; a term
        // this index has never seen (all of them where search runs in the database) weighs
        // most, where tantivy's would leave it unmarked.
        let searcher = self.reader.searcher();
        let mut weights = std::collections::BTreeMap::new();
        for term in &terms {
            let value = term.value();
            let Some(text) = value.as_str() else {
                continue;
            };
            let doc_freq = searcher.doc_freq(term)?;
            weights.insert(text.to_owned(), 1.0 / (1.0 + doc_freq as f32));
        }
        let analyzer = self.index.tokenizer_for_field(self.fields.text)?;
        let generator = SnippetGenerator::new(weights, analyzer, self.fields.text, max_chars);
        let snippet = generator.snippet(text);
        if snippet.highlighted().is_empty() {
            return Ok(None);
        }
        Ok(Some(Highlight {
            text: snippet.fragment().to_owned(),
            ranges: snippet.highlighted().to_vec(),
        }))
    }

    /// How many chunks the index holds.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// Whether the index holds nothing.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn doc<'a>(id: i64, owner: &'a str, item: &'a str, text: &'a str) -> KeywordDoc<'a> {
        KeywordDoc {
            id,
            owner,
            item,
            heading: None,
            text,
        }
    }

    #[test]
    fn finds_by_stemmed_terms_and_keeps_to_the_owner_and_items() {
        let dir = tempfile::tempdir().unwrap();
        let index = KeywordIndex::open(dir.path()).unwrap();
        index
            .add(&[
                doc(1, "alice", "a1", "Indexing runs in the background"),
                doc(2, "alice", "a2", "Cats sleep all day"),
                doc(3, "bob", "b1", "Bob indexes his files"),
            ])
            .unwrap();
        index.commit().unwrap();
        let hits = index.search("alice", "indexed", None, 10).unwrap();
        assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), [1]);
        assert!(
            index
                .search("alice", "indexed", Some(&["a2".into()]), 10)
                .unwrap()
                .is_empty()
        );
        assert!(index.search("alice", "?!.,;", None, 10).unwrap().is_empty());
        let long = "index ".repeat(2000);
        assert_eq!(index.search("alice", &long, None, 10).unwrap().len(), 1);

        let highlight = index
            .highlight("indexed", "Indexing runs in the background", 150)
            .unwrap()
            .unwrap();
        assert_eq!(&highlight.text[highlight.ranges[0].clone()], "Indexing");
    }

    #[test]
    fn replaced_and_deleted_chunks_leave_no_trace_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let index = KeywordIndex::open(dir.path()).unwrap();
            index.add(&[doc(1, "alice", "a1", "first words")]).unwrap();
            index.add(&[doc(1, "alice", "a1", "second words")]).unwrap();
            index.add(&[doc(2, "alice", "a1", "other words")]).unwrap();
            index.commit().unwrap();
            index.delete(&[2]).unwrap();
            index.commit().unwrap();
        }
        let index = KeywordIndex::open(dir.path()).unwrap();
        assert_eq!(index.ids().unwrap(), HashSet::from([1]));
        assert!(index.search("alice", "first", None, 10).unwrap().is_empty());
        assert_eq!(index.search("alice", "second", None, 10).unwrap().len(), 1);
        index.clear().unwrap();
        index.commit().unwrap();
        assert!(index.is_empty());
    }
}
