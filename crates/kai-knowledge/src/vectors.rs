//! The embedded vector index: exact cosine search over every chunk's vector, held in memory and
//! kept on disk as an append-only log, `<data_dir>/knowledge/vectors/<model>.log`.
//!
//! Exact search, not an approximate graph: a scan of 100,000 vectors of 384 dimensions is a few
//! milliseconds on one core, recall is 1 by construction, and adding or deleting a vector costs
//! an append. Each log record carries a checksum, so a record a crash cut short is recognised
//! and dropped when the log is read back; the log is rewritten without deleted vectors once
//! they make up most of it.
//!
//! Like the keyword index it is a cache of the database, checked against it at start.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

/// The log's first bytes, and its format's version.
const MAGIC: &[u8; 8] = b"KAIVEC01";
const ADD: u8 = 1;
const DELETE: u8 = 2;

/// Why the vector index failed.
#[derive(Debug, thiserror::Error)]
pub enum VectorError {
    /// The log could not be read or written.
    #[error("vector index {path}: {source}")]
    Io {
        /// The log file.
        path: PathBuf,
        /// What went wrong.
        source: io::Error,
    },
    /// A vector of another length than the index's.
    #[error("a vector of {got} dimensions for an index of {expected}")]
    Dimensions {
        /// The index's.
        expected: usize,
        /// The vector's.
        got: usize,
    },
}

/// A vector to index.
#[derive(Debug, Clone, Copy)]
pub struct VectorDoc<'a> {
    /// The chunk's id.
    pub id: i64,
    /// Its owner's id.
    pub owner: &'a str,
    /// Its item's id.
    pub item: &'a str,
    /// The vector.
    pub vector: &'a [f32],
}

/// Strings stored once, referred to by number.
#[derive(Debug, Default)]
struct Interner {
    numbers: HashMap<String, u32>,
}

impl Interner {
    fn number(&mut self, text: &str) -> u32 {
        if let Some(&n) = self.numbers.get(text) {
            return n;
        }
        let n = u32::try_from(self.numbers.len()).unwrap_or(u32::MAX);
        self.numbers.insert(text.to_owned(), n);
        n
    }

    fn get(&self, text: &str) -> Option<u32> {
        self.numbers.get(text).copied()
    }
}

#[derive(Debug, Default)]
struct Entries {
    dimensions: usize,
    ids: Vec<i64>,
    owners: Vec<u32>,
    items: Vec<u32>,
    /// Unit-length vectors, one after another.
    data: Vec<f32>,
    position: HashMap<i64, usize>,
    strings: Interner,
    /// Records in the log that no longer count (deleted or replaced vectors, deletions).
    dead_records: usize,
}

impl Entries {
    fn insert(&mut self, id: i64, owner: &str, item: &str, vector: &[f32]) {
        let owner = self.strings.number(owner);
        let item = self.strings.number(item);
        if let Some(&at) = self.position.get(&id) {
            self.owners[at] = owner;
            self.items[at] = item;
            let dims = self.dimensions;
            self.data[at * dims..(at + 1) * dims].copy_from_slice(vector);
            self.dead_records += 1;
            return;
        }
        self.position.insert(id, self.ids.len());
        self.ids.push(id);
        self.owners.push(owner);
        self.items.push(item);
        self.data.extend_from_slice(vector);
    }

    fn remove(&mut self, id: i64) -> bool {
        let Some(at) = self.position.remove(&id) else {
            return false;
        };
        let last = self.ids.len() - 1;
        let dims = self.dimensions;
        if at != last {
            self.ids.swap(at, last);
            self.owners.swap(at, last);
            self.items.swap(at, last);
            let (head, tail) = self.data.split_at_mut(last * dims);
            head[at * dims..(at + 1) * dims].copy_from_slice(&tail[..dims]);
            self.position.insert(self.ids[at], at);
        }
        self.ids.pop();
        self.owners.pop();
        self.items.pop();
        self.data.truncate(last * dims);
        // The add it undoes and the deletion itself.
        self.dead_records += 2;
        true
    }
}

/// The index of one embedding model's vectors.
#[derive(Debug)]
pub struct VectorIndex {
    path: PathBuf,
    entries: RwLock<Entries>,
    log: Mutex<BufWriter<File>>,
}

fn normalised(vector: &[f32]) -> Vec<f32> {
    let norm = vector.iter().map(|v| v * v).sum::<f32>().sqrt();
    if norm > 0.0 {
        vector.iter().map(|v| v / norm).collect()
    } else {
        vector.to_vec()
    }
}

/// The dot product, in eight lanes so that the compiler can keep them in vector registers.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (a_chunks, b_chunks) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a_chunks.zip(b_chunks) {
        for lane in 0..8 {
            lanes[lane] += x[lane] * y[lane];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

fn checksum(bytes: &[u8]) -> [u8; 4] {
    let hash = blake3::hash(bytes);
    let mut out = [0u8; 4];
    out.copy_from_slice(&hash.as_bytes()[..4]);
    out
}

/// One record: its body, then the body's length and checksum before it.
fn add_record(id: i64, owner: &str, item: &str, vector: &[f32]) -> Vec<u8> {
    let mut body = Vec::with_capacity(1 + 8 + 4 + owner.len() + item.len() + vector.len() * 4);
    body.push(ADD);
    body.extend_from_slice(&id.to_le_bytes());
    for text in [owner, item] {
        body.extend_from_slice(&u16::try_from(text.len()).unwrap_or(u16::MAX).to_le_bytes());
        body.extend_from_slice(text.as_bytes());
    }
    for value in vector {
        body.extend_from_slice(&value.to_le_bytes());
    }
    framed(&body)
}

fn delete_record(id: i64) -> Vec<u8> {
    let mut body = vec![DELETE];
    body.extend_from_slice(&id.to_le_bytes());
    framed(&body)
}

fn framed(body: &[u8]) -> Vec<u8> {
    let mut record = Vec::with_capacity(body.len() + 8);
    record.extend_from_slice(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_le_bytes());
    record.extend_from_slice(&checksum(body));
    record.extend_from_slice(body);
    record
}

/// Reads records from `bytes` (after the header) into `entries`; returns where the last whole
/// record ends, so that a torn tail can be cut off.
fn replay(bytes: &[u8], entries: &mut Entries) -> usize {
    let mut at = 0;
    loop {
        let Some(header) = bytes.get(at..at + 8) else {
            return at;
        };
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let Some(body) = bytes.get(at + 8..at + 8 + len) else {
            return at;
        };
        if checksum(body) != header[4..8] || !apply(body, entries) {
            return at;
        }
        at += 8 + len;
    }
}

/// Applies one record; `false` when it cannot be read.
fn apply(body: &[u8], entries: &mut Entries) -> bool {
    let Some((&kind, rest)) = body.split_first() else {
        return false;
    };
    let Some(id) = rest
        .get(..8)
        .map(|b| i64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
    else {
        return false;
    };
    let mut rest = &rest[8..];
    match kind {
        DELETE => {
            entries.remove(id);
            true
        }
        ADD => {
            let mut texts = Vec::with_capacity(2);
            for _ in 0..2 {
                let Some(len) = rest
                    .get(..2)
                    .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize)
                else {
                    return false;
                };
                let Some(text) = rest
                    .get(2..2 + len)
                    .and_then(|b| std::str::from_utf8(b).ok())
                else {
                    return false;
                };
                texts.push(text.to_owned());
                rest = &rest[2 + len..];
            }
            if !rest.len().is_multiple_of(4) || rest.is_empty() {
                return false;
            }
            let vector: Vec<f32> = rest
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            if entries.dimensions == 0 {
                entries.dimensions = vector.len();
            } else if entries.dimensions != vector.len() {
                return false;
            }
            entries.insert(id, &texts[0], &texts[1], &vector);
            true
        }
        _ => false,
    }
}

impl VectorIndex {
    /// Opens the log at `path`, creating it if missing, and reads it into memory. A torn record
    /// at its end (a crash mid-append) is cut off.
    pub fn open(path: &Path) -> Result<VectorIndex, VectorError> {
        let io_error = |source: io::Error| VectorError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io_error)?;
        }
        let mut entries = Entries::default();
        let mut bytes = Vec::new();
        match File::open(path) {
            Ok(mut file) => {
                file.read_to_end(&mut bytes).map_err(io_error)?;
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(io_error(err)),
        }
        let valid = if bytes.starts_with(MAGIC) {
            MAGIC.len() + replay(&bytes[MAGIC.len()..], &mut entries)
        } else {
            // Missing, empty or not a log: start afresh; the database fills it again.
            entries = Entries::default();
            0
        };
        if valid == 0 {
            let mut file = File::create(path).map_err(io_error)?;
            file.write_all(MAGIC).map_err(io_error)?;
            file.sync_all().map_err(io_error)?;
        } else if valid < bytes.len() {
            let file = OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(io_error)?;
            file.set_len(valid as u64).map_err(io_error)?;
            file.sync_all().map_err(io_error)?;
        }
        let log = OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(io_error)?;
        Ok(VectorIndex {
            path: path.to_path_buf(),
            entries: RwLock::new(entries),
            log: Mutex::new(BufWriter::new(log)),
        })
    }

    fn io_error(&self, source: io::Error) -> VectorError {
        VectorError::Io {
            path: self.path.clone(),
            source,
        }
    }

    fn poisoned(&self) -> VectorError {
        self.io_error(io::Error::other("an earlier write panicked"))
    }

    /// Adds vectors, replacing any under the same ids; durable once this returns.
    pub fn add(&self, docs: &[VectorDoc<'_>]) -> Result<(), VectorError> {
        let mut entries = self.entries.write().map_err(|_| self.poisoned())?;
        let mut log = self.log.lock().map_err(|_| self.poisoned())?;
        for doc in docs {
            if entries.dimensions == 0 {
                entries.dimensions = doc.vector.len();
            }
            if doc.vector.len() != entries.dimensions || doc.vector.is_empty() {
                return Err(VectorError::Dimensions {
                    expected: entries.dimensions,
                    got: doc.vector.len(),
                });
            }
            let unit = normalised(doc.vector);
            log.write_all(&add_record(doc.id, doc.owner, doc.item, &unit))
                .map_err(|err| self.io_error(err))?;
            entries.insert(doc.id, doc.owner, doc.item, &unit);
        }
        log.flush().map_err(|err| self.io_error(err))?;
        log.get_ref()
            .sync_data()
            .map_err(|err| self.io_error(err))?;
        drop(log);
        drop(entries);
        self.compact_if_mostly_dead()
    }

    /// Removes vectors; durable once this returns.
    pub fn delete(&self, ids: &[i64]) -> Result<(), VectorError> {
        let mut entries = self.entries.write().map_err(|_| self.poisoned())?;
        let mut log = self.log.lock().map_err(|_| self.poisoned())?;
        for &id in ids {
            if entries.remove(id) {
                log.write_all(&delete_record(id))
                    .map_err(|err| self.io_error(err))?;
            }
        }
        log.flush().map_err(|err| self.io_error(err))?;
        log.get_ref()
            .sync_data()
            .map_err(|err| self.io_error(err))?;
        drop(log);
        drop(entries);
        self.compact_if_mostly_dead()
    }

    /// Removes everything.
    pub fn clear(&self) -> Result<(), VectorError> {
        let mut entries = self.entries.write().map_err(|_| self.poisoned())?;
        *entries = Entries::default();
        self.rewrite(&entries)
    }

    fn compact_if_mostly_dead(&self) -> Result<(), VectorError> {
        let entries = self.entries.read().map_err(|_| self.poisoned())?;
        if entries.dead_records > 1024 && entries.dead_records > entries.ids.len() {
            drop(entries);
            let mut entries = self.entries.write().map_err(|_| self.poisoned())?;
            self.rewrite(&entries)?;
            entries.dead_records = 0;
        }
        Ok(())
    }

    /// Writes the live vectors to a new log and renames it over the old one.
    fn rewrite(&self, entries: &Entries) -> Result<(), VectorError> {
        let mut log = self.log.lock().map_err(|_| self.poisoned())?;
        let tmp = self.path.with_extension("log.tmp");
        let mut names = vec![String::new(); entries.strings.numbers.len()];
        for (text, &n) in &entries.strings.numbers {
            names[n as usize].clone_from(text);
        }
        {
            let mut out = BufWriter::new(File::create(&tmp).map_err(|err| self.io_error(err))?);
            out.write_all(MAGIC).map_err(|err| self.io_error(err))?;
            let dims = entries.dimensions;
            for (at, &id) in entries.ids.iter().enumerate() {
                let record = add_record(
                    id,
                    &names[entries.owners[at] as usize],
                    &names[entries.items[at] as usize],
                    &entries.data[at * dims..(at + 1) * dims],
                );
                out.write_all(&record).map_err(|err| self.io_error(err))?;
            }
            out.flush().map_err(|err| self.io_error(err))?;
            out.get_ref().sync_all().map_err(|err| self.io_error(err))?;
        }
        std::fs::rename(&tmp, &self.path).map_err(|err| self.io_error(err))?;
        let reopened = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(|err| self.io_error(err))?;
        *log = BufWriter::new(reopened);
        Ok(())
    }

    /// The ids of every vector held.
    pub fn ids(&self) -> Result<HashSet<i64>, VectorError> {
        let entries = self.entries.read().map_err(|_| self.poisoned())?;
        Ok(entries.ids.iter().copied().collect())
    }

    /// How many vectors are held.
    pub fn len(&self) -> usize {
        self.entries.read().map_or(0, |e| e.ids.len())
    }

    /// Whether none are.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The owner's `limit` vectors most similar to `query` (cosine), best first, kept to
    /// `items` when given.
    pub fn search(
        &self,
        owner: &str,
        query: &[f32],
        items: Option<&[String]>,
        limit: usize,
    ) -> Result<Vec<(i64, f32)>, VectorError> {
        let entries = self.entries.read().map_err(|_| self.poisoned())?;
        if entries.ids.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        if query.len() != entries.dimensions {
            return Err(VectorError::Dimensions {
                expected: entries.dimensions,
                got: query.len(),
            });
        }
        let Some(owner) = entries.strings.get(owner) else {
            return Ok(Vec::new());
        };
        let allowed: Option<HashSet<u32>> = items.map(|items| {
            items
                .iter()
                .filter_map(|i| entries.strings.get(i))
                .collect()
        });
        let query = normalised(query);
        // A vector of zeros points nowhere: nothing is near it.
        if query.iter().all(|v| *v == 0.0) {
            return Ok(Vec::new());
        }
        let dims = entries.dimensions;
        // The best `limit` so far, worst first, so the bar to enter is `best[0]`.
        let mut best: Vec<(f32, usize)> = Vec::with_capacity(limit + 1);
        for at in 0..entries.ids.len() {
            if entries.owners[at] != owner {
                continue;
            }
            if let Some(allowed) = &allowed
                && !allowed.contains(&entries.items[at])
            {
                continue;
            }
            let score = dot(&query, &entries.data[at * dims..(at + 1) * dims]);
            if best.len() < limit || score > best[0].0 {
                let place = best.partition_point(|(s, _)| *s < score);
                best.insert(place, (score, at));
                if best.len() > limit {
                    best.remove(0);
                }
            }
        }
        Ok(best
            .into_iter()
            .rev()
            .map(|(score, at)| (entries.ids[at], score))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn doc<'a>(id: i64, owner: &'a str, vector: &'a [f32]) -> VectorDoc<'a> {
        VectorDoc {
            id,
            owner,
            item: "item",
            vector,
        }
    }

    #[test]
    fn finds_the_nearest_of_the_owners_vectors() {
        let dir = tempfile::tempdir().unwrap();
        let index = VectorIndex::open(&dir.path().join("m.log")).unwrap();
        index
            .add(&[
                doc(1, "alice", &[1.0, 0.0, 0.0]),
                doc(2, "alice", &[0.7, 0.7, 0.0]),
                doc(3, "alice", &[0.0, 0.0, 1.0]),
                doc(4, "bob", &[1.0, 0.0, 0.0]),
            ])
            .unwrap();
        let hits = index.search("alice", &[2.0, 0.1, 0.0], None, 2).unwrap();
        assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), [1, 2]);
        assert!(
            index
                .search("carol", &[1.0, 0.0, 0.0], None, 2)
                .unwrap()
                .is_empty()
        );
        assert!(
            index
                .search("alice", &[1.0, 0.0, 0.0], Some(&["other".into()]), 2)
                .unwrap()
                .is_empty()
        );
        assert!(matches!(
            index.add(&[doc(5, "alice", &[1.0])]),
            Err(VectorError::Dimensions {
                expected: 3,
                got: 1
            })
        ));
    }

    #[test]
    fn survives_reopening_and_a_torn_last_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.log");
        {
            let index = VectorIndex::open(&path).unwrap();
            index
                .add(&[doc(1, "a", &[1.0, 0.0]), doc(2, "a", &[0.0, 1.0])])
                .unwrap();
            index.add(&[doc(1, "a", &[0.0, 1.0])]).unwrap();
            index.delete(&[2]).unwrap();
            index.add(&[doc(3, "a", &[1.0, 1.0])]).unwrap();
        }
        // A crash mid-append: the last record cut short.
        let len = std::fs::metadata(&path).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 3)
            .unwrap();
        let index = VectorIndex::open(&path).unwrap();
        assert_eq!(index.ids().unwrap(), HashSet::from([1]));
        let hits = index.search("a", &[0.0, 1.0], None, 5).unwrap();
        assert_eq!(hits[0].0, 1);
        assert!((hits[0].1 - 1.0).abs() < 1e-6);
        // Appending after the cut works and reads back.
        index.add(&[doc(4, "a", &[1.0, 0.0])]).unwrap();
        drop(index);
        let index = VectorIndex::open(&path).unwrap();
        assert_eq!(index.ids().unwrap(), HashSet::from([1, 4]));
    }

    #[test]
    fn compaction_keeps_only_live_vectors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.log");
        let index = VectorIndex::open(&path).unwrap();
        for round in 0..3 {
            let docs: Vec<Vec<f32>> = (0..1000)
                .map(|i| vec![i as f32 + 1.0, round as f32])
                .collect();
            let batch: Vec<VectorDoc<'_>> = docs
                .iter()
                .enumerate()
                .map(|(i, v)| doc(i as i64, "a", v))
                .collect();
            index.add(&batch).unwrap();
        }
        index.delete(&(0..900).collect::<Vec<_>>()).unwrap();
        assert_eq!(index.len(), 100);
        drop(index);
        let index = VectorIndex::open(&path).unwrap();
        assert_eq!(index.len(), 100);
        // 100 live records of 2 dimensions each, rather than 3,900.
        assert!(std::fs::metadata(&path).unwrap().len() < 10_000);
    }

    #[test]
    fn a_file_that_is_not_a_log_starts_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.log");
        std::fs::write(&path, b"garbage").unwrap();
        let index = VectorIndex::open(&path).unwrap();
        assert!(index.is_empty());
        index.add(&[doc(1, "a", &[1.0])]).unwrap();
    }

    #[test]
    fn dot_matches_the_plain_sum() {
        let a: Vec<f32> = (0..19).map(|i| i as f32 * 0.5).collect();
        let b: Vec<f32> = (0..19).map(|i| 1.0 - i as f32 * 0.1).collect();
        let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - plain).abs() < 1e-3);
    }
}
