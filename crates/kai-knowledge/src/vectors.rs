//! The embedded vector index: cosine search over every chunk's vector, held in memory and kept
//! on disk as an append-only log, `<data_dir>/knowledge/vectors/<model>.log`.
//!
//! A scan, not an approximate graph: each vector is also held as 8-bit integers (a quarter of
//! its bytes, one scale per vector), a search scans those for the best few hundred candidates
//! and ranks them again by their exact float vectors. At 100,000 vectors of 384 dimensions the
//! scan reads 38 MB instead of 154 MB, and the quantization error is small beside the gap
//! between the tenth best score and the few-hundredth, so the exact top ten is almost always
//! among the candidates. Owner and item filters apply in the scan, before any ranking. Adding
//! or deleting a vector costs an append. Each log record carries a checksum, so a record a
//! crash cut short is recognised and dropped when the log is read back; the log is rewritten
//! without deleted vectors once they make up most of it. The log holds float vectors only:
//! the 8-bit copy is made as they are read or added.
//!
//! Like the keyword index it is a cache of the database, checked against it at start.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

/// Candidates the 8-bit scan keeps for exact ranking: at least this many, and at least
/// [`CANDIDATES_PER_RESULT`] per result asked for.
const MIN_CANDIDATES: usize = 256;
const CANDIDATES_PER_RESULT: usize = 8;

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
    /// The same vectors in 8 bits: dimension `i` of vector `v` is about
    /// `codes[v · dimensions + i] · scales[v]`.
    codes: Vec<i8>,
    scales: Vec<f32>,
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
            self.scales[at] = quantize(vector, &mut self.codes[at * dims..(at + 1) * dims]);
            self.dead_records += 1;
            return;
        }
        self.position.insert(id, self.ids.len());
        self.ids.push(id);
        self.owners.push(owner);
        self.items.push(item);
        self.data.extend_from_slice(vector);
        let start = self.codes.len();
        self.codes.resize(start + vector.len(), 0);
        self.scales.push(quantize(vector, &mut self.codes[start..]));
    }

    fn reserve(&mut self, vectors: usize) {
        self.ids.reserve(vectors);
        self.owners.reserve(vectors);
        self.items.reserve(vectors);
        self.scales.reserve(vectors);
        self.data.reserve(vectors * self.dimensions);
        self.codes.reserve(vectors * self.dimensions);
        self.position.reserve(vectors);
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
            self.scales.swap(at, last);
            let (head, tail) = self.data.split_at_mut(last * dims);
            head[at * dims..(at + 1) * dims].copy_from_slice(&tail[..dims]);
            let (head, tail) = self.codes.split_at_mut(last * dims);
            head[at * dims..(at + 1) * dims].copy_from_slice(&tail[..dims]);
            self.position.insert(self.ids[at], at);
        }
        self.ids.pop();
        self.owners.pop();
        self.items.pop();
        self.scales.pop();
        self.data.truncate(last * dims);
        self.codes.truncate(last * dims);
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

/// Writes `vector` as 8-bit integers to `codes`, scaled so that its largest value is ±127;
/// returns the scale that multiplies them back.
fn quantize(vector: &[f32], codes: &mut [i8]) -> f32 {
    let largest = vector.iter().fold(0f32, |m, v| m.max(v.abs()));
    if largest == 0.0 {
        codes.fill(0);
        return 0.0;
    }
    let to_codes = 127.0 / largest;
    for (code, value) in codes.iter_mut().zip(vector) {
        // In range by construction: |value| ≤ largest.
        *code = (value * to_codes).round() as i8;
    }
    largest / 127.0
}

/// The dot product of two vectors of 8-bit integers, in sixteen 32-bit lanes so that it
/// vectorizes; for CPUs without AVX2.
fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    let mut lanes = [0i32; 16];
    let (a16, a_rest) = a.as_chunks::<16>();
    let (b16, b_rest) = b.as_chunks::<16>();
    for (x, y) in a16.iter().zip(b16) {
        for lane in 0..16 {
            lanes[lane] += i32::from(x[lane]) * i32::from(y[lane]);
        }
    }
    let rest: i32 = a_rest
        .iter()
        .zip(b_rest)
        .map(|(x, y)| i32::from(*x) * i32::from(*y))
        .sum();
    lanes.iter().sum::<i32>() + rest
}

/// Calls `score(at, dot)` with the dot product of `query` and each of the vectors of `codes`
/// that `wanted(at)` takes: with AVX2 (through pulp's safe wrappers) where the CPU has it.
fn scan_i8(
    query: &[i8],
    codes: &[i8],
    wanted: impl Fn(usize) -> bool,
    mut score: impl FnMut(usize, i32),
) {
    let dims = query.len();
    #[cfg(target_arch = "x86_64")]
    if let Some(simd) = pulp::x86::V3::try_new()
        && dims.is_multiple_of(32)
    {
        return simd.vectorize(
            #[inline(always)]
            || {
                let query = avx2::Query::new(simd, query);
                for (at, vector) in codes.chunks_exact(dims).enumerate() {
                    if wanted(at) {
                        score(at, query.dot(simd, vector));
                    }
                }
            },
        );
    }
    for (at, vector) in codes.chunks_exact(dims).enumerate() {
        if wanted(at) {
            score(at, dot_i8(query, vector));
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use pulp::x86::V3;
    use std::arch::x86_64::__m256i;

    /// A query laid out for `_mm256_maddubs_epi16`, which multiplies unsigned bytes by signed
    /// ones: the query's magnitudes and signs, its signs moved onto the other vector.
    pub(super) struct Query {
        magnitudes: Vec<__m256i>,
        signs: Vec<__m256i>,
    }

    impl Query {
        #[inline(always)]
        pub(super) fn new(simd: V3, query: &[i8]) -> Query {
            let (chunks, _) = query.as_chunks::<32>();
            let chunks: Vec<__m256i> = chunks.iter().map(|c| pulp::cast(*c)).collect();
            Query {
                magnitudes: chunks
                    .iter()
                    .map(|&c| simd.avx2._mm256_sign_epi8(c, c))
                    .collect(),
                signs: chunks,
            }
        }

        /// Its dot product with `vector`, whose length is the query's, a multiple of 32. A
        /// pair of products is at most 2 · 127 · 127, within the 16 bits maddubs sums into
        /// (codes are within ±127).
        #[inline(always)]
        pub(super) fn dot(&self, simd: V3, vector: &[i8]) -> i32 {
            let ones = simd.avx._mm256_set1_epi16(1);
            let mut sums = simd.avx._mm256_setzero_si256();
            let (chunks, _) = vector.as_chunks::<32>();
            for ((chunk, magnitude), sign) in chunks.iter().zip(&self.magnitudes).zip(&self.signs) {
                let signed = simd.avx2._mm256_sign_epi8(pulp::cast(*chunk), *sign);
                let pairs = simd.avx2._mm256_maddubs_epi16(*magnitude, signed);
                sums = simd
                    .avx2
                    ._mm256_add_epi32(sums, simd.avx2._mm256_madd_epi16(pairs, ones));
            }
            let lanes: [i32; 8] = pulp::cast(sums);
            lanes.iter().sum()
        }
    }
}

/// The best of what is offered, kept cheaply: offers go to a buffer of twice the number kept,
/// cut back to the best when it fills, and anything below the last cut's worst is turned away.
/// Ties go to the earlier position, so that equal scores come back in a stable order.
struct Best {
    keep: usize,
    offers: Vec<(f32, usize)>,
    bar: f32,
}

fn better(a: &(f32, usize), b: &(f32, usize)) -> std::cmp::Ordering {
    b.0.total_cmp(&a.0).then(a.1.cmp(&b.1))
}

impl Best {
    fn new(keep: usize) -> Best {
        Best {
            keep,
            offers: Vec::with_capacity(2 * keep),
            bar: f32::NEG_INFINITY,
        }
    }

    #[inline]
    fn offer(&mut self, score: f32, at: usize) {
        if score <= self.bar {
            return;
        }
        self.offers.push((score, at));
        if self.offers.len() >= 2 * self.keep {
            self.cut();
        }
    }

    fn cut(&mut self) {
        if self.offers.len() > self.keep {
            self.offers.select_nth_unstable_by(self.keep - 1, better);
            self.offers.truncate(self.keep);
            self.bar = self.offers[self.keep - 1].0;
        }
    }

    /// The best `keep`, best first.
    fn into_sorted(mut self) -> Vec<(f32, usize)> {
        self.cut();
        self.offers.sort_unstable_by(better);
        self.offers
    }
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

/// Reads records from `log` (after the header, `len` bytes in all) into `entries` one at a
/// time, so that the file is never held whole beside the vectors; returns where the last whole
/// record ends, so that a torn tail can be cut off.
fn replay(log: &mut impl Read, len: u64, entries: &mut Entries) -> io::Result<u64> {
    let mut at = 0u64;
    let mut header = [0u8; 8];
    let mut body = Vec::new();
    loop {
        match log.read_exact(&mut header) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => return Ok(at),
            Err(err) => return Err(err),
        }
        let size = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        if at + 8 + u64::from(size) > len {
            return Ok(at);
        }
        body.resize(size as usize, 0);
        log.read_exact(&mut body)?;
        if checksum(&body) != header[4..8] || !apply(&body, entries) {
            return Ok(at);
        }
        at += 8 + u64::from(size);
        if entries.ids.len() == 1 {
            // Room for as many more vectors as the rest of the log could hold, rather than
            // growth by doubling, whose copies would briefly hold the vectors twice.
            entries.reserve(((len - at) / (8 + u64::from(size))) as usize);
        }
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
        let (mut len, mut valid) = (0, 0);
        match File::open(path) {
            Ok(file) => {
                len = file.metadata().map_err(io_error)?.len();
                let mut log = io::BufReader::with_capacity(1 << 20, file);
                let mut magic = [0u8; MAGIC.len()];
                if log.read_exact(&mut magic).is_ok() && &magic == MAGIC {
                    valid = MAGIC.len() as u64
                        + replay(&mut log, len - MAGIC.len() as u64, &mut entries)
                            .map_err(io_error)?;
                }
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(io_error(err)),
        }
        if valid == 0 {
            // Missing, empty or not a log: start afresh; the database fills it again.
            entries = Entries::default();
            let mut file = File::create(path).map_err(io_error)?;
            file.write_all(MAGIC).map_err(io_error)?;
            file.sync_all().map_err(io_error)?;
        } else if valid < len {
            let file = OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(io_error)?;
            file.set_len(valid).map_err(io_error)?;
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
        Ok(entries.search(owner, &query, allowed.as_ref(), limit))
    }
}

impl Entries {
    /// Whether vector `at` is the owner's and, when `allowed` is given, in one of its items.
    #[inline]
    fn eligible(&self, at: usize, owner: u32, allowed: Option<&HashSet<u32>>) -> bool {
        self.owners[at] == owner && allowed.is_none_or(|allowed| allowed.contains(&self.items[at]))
    }

    /// The best `limit` of the eligible vectors for the unit vector `query`: candidates from
    /// the 8-bit scan, ranked exactly.
    fn search(
        &self,
        owner: u32,
        query: &[f32],
        allowed: Option<&HashSet<u32>>,
        limit: usize,
    ) -> Vec<(i64, f32)> {
        let candidates = (limit * CANDIDATES_PER_RESULT).max(MIN_CANDIDATES);
        if self.ids.len() <= candidates {
            return self.exact_search(owner, query, allowed, limit);
        }
        let dims = self.dimensions;
        let mut codes = vec![0i8; dims];
        quantize(query, &mut codes);
        let mut scan = Best::new(candidates);
        scan_i8(
            &codes,
            &self.codes,
            |at| self.eligible(at, owner, allowed),
            |at, dot| scan.offer(dot as f32 * self.scales[at], at),
        );
        let mut best = Best::new(limit);
        for (_, at) in scan.into_sorted() {
            best.offer(dot(query, &self.data[at * dims..(at + 1) * dims]), at);
        }
        self.hits(best)
    }

    /// The same by the float vectors alone.
    fn exact_search(
        &self,
        owner: u32,
        query: &[f32],
        allowed: Option<&HashSet<u32>>,
        limit: usize,
    ) -> Vec<(i64, f32)> {
        let mut best = Best::new(limit);
        for (at, vector) in self.data.chunks_exact(self.dimensions).enumerate() {
            if self.eligible(at, owner, allowed) {
                best.offer(dot(query, vector), at);
            }
        }
        self.hits(best)
    }

    fn hits(&self, best: Best) -> Vec<(i64, f32)> {
        best.into_sorted()
            .into_iter()
            .map(|(score, at)| (self.ids[at], score))
            .collect()
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

    type Hits = Vec<(i64, f32)>;

    /// A seeded generator (xorshift), so that the random tests are the same every run.
    struct Rng(u64);

    impl Rng {
        /// Uniform in [-1, 1).
        fn uniform(&mut self) -> f32 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        }

        /// About normal (a sum of uniforms).
        fn normal(&mut self) -> f32 {
            (0..4).map(|_| self.uniform()).sum::<f32>() * 0.866
        }

        /// `count` vectors around `clusters` centres, as texts on a few topics are.
        fn vectors(&mut self, count: usize, dims: usize, clusters: usize) -> Vec<Vec<f32>> {
            let centres: Vec<Vec<f32>> = (0..clusters)
                .map(|_| (0..dims).map(|_| self.normal()).collect())
                .collect();
            (0..count)
                .map(|i| {
                    let centre = &centres[i % clusters];
                    centre.iter().map(|c| c + 1.5 * self.normal()).collect()
                })
                .collect()
        }
    }

    fn filled(
        vectors: &[Vec<f32>],
        owner: impl Fn(usize) -> String,
        item: impl Fn(usize) -> String,
    ) -> (tempfile::TempDir, VectorIndex) {
        let dir = tempfile::tempdir().unwrap();
        let index = VectorIndex::open(&dir.path().join("m.log")).unwrap();
        let names: Vec<(String, String)> =
            (0..vectors.len()).map(|i| (owner(i), item(i))).collect();
        let docs: Vec<VectorDoc<'_>> = vectors
            .iter()
            .zip(&names)
            .enumerate()
            .map(|(i, (vector, (owner, item)))| VectorDoc {
                id: i as i64,
                owner,
                item,
                vector,
            })
            .collect();
        index.add(&docs).unwrap();
        (dir, index)
    }

    /// The exact answer, by the float vectors alone.
    fn exact(
        index: &VectorIndex,
        owner: &str,
        query: &[f32],
        items: Option<&[String]>,
        limit: usize,
    ) -> Vec<(i64, f32)> {
        let entries = index.entries.read().unwrap();
        let owner = entries.strings.get(owner).unwrap();
        let allowed: Option<HashSet<u32>> = items.map(|items| {
            items
                .iter()
                .filter_map(|i| entries.strings.get(i))
                .collect()
        });
        entries.exact_search(owner, &normalised(query), allowed.as_ref(), limit)
    }

    fn recall(got: &[(i64, f32)], want: &[(i64, f32)]) -> f64 {
        let want: HashSet<i64> = want.iter().map(|h| h.0).collect();
        got.iter().filter(|h| want.contains(&h.0)).count() as f64 / want.len() as f64
    }

    #[test]
    fn the_quantized_scan_finds_what_exact_search_finds() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let (dims, count) = (384, 6000);
        for clusters in [1, 50] {
            let vectors = rng.vectors(count, dims, clusters);
            let (_dir, index) = filled(&vectors, |_| "a".into(), |_| "item".into());
            let queries = rng.vectors(30, dims, clusters);
            let mut total = 0.0;
            for query in &queries {
                let got = index.search("a", query, None, 10).unwrap();
                let want = exact(&index, "a", query, None, 10);
                total += recall(&got, &want);
                // The hits found carry their exact scores, best first.
                for (id, score) in &got {
                    let exact = dot(&normalised(query), &normalised(&vectors[*id as usize]));
                    assert!((score - exact).abs() < 1e-5);
                }
                assert!(got.windows(2).all(|w| w[0].1 >= w[1].1));
            }
            let recall = total / queries.len() as f64;
            assert!(
                recall >= 0.99,
                "recall@10 {recall} with {clusters} clusters"
            );
        }
    }

    #[test]
    fn owner_and_item_filters_hold_in_the_quantized_scan() {
        let mut rng = Rng(7);
        let vectors = rng.vectors(3000, 64, 20);
        let owner = |i: usize| if i.is_multiple_of(3) { "bob" } else { "alice" }.to_owned();
        // Item "rare" holds five of alice's vectors.
        let item = |i: usize| {
            if i < 8 && !i.is_multiple_of(3) {
                "rare".to_owned()
            } else {
                format!("i{}", i % 7)
            }
        };
        let (_dir, index) = filled(&vectors, owner, item);
        let eligible = |id: i64, who: &str, items: Option<&[String]>| {
            let id = id as usize;
            owner(id) == who && items.is_none_or(|items| items.contains(&item(id)))
        };
        let some: Vec<String> = vec!["i1".into(), "i4".into()];
        let rare: Vec<String> = vec!["rare".into(), "missing".into()];
        for query in rng.vectors(10, 64, 20) {
            for (who, items) in [
                ("alice", None),
                ("bob", None),
                ("alice", Some(&some[..])),
                ("bob", Some(&some[..])),
                ("alice", Some(&rare[..])),
            ] {
                for limit in [10, 100] {
                    let got = index.search(who, &query, items, limit).unwrap();
                    assert!(
                        got.iter().all(|h| eligible(h.0, who, items)),
                        "{who} {items:?}"
                    );
                    let want = exact(&index, who, &query, items, limit);
                    assert_eq!(got.len(), want.len());
                    assert!(recall(&got, &want) >= 0.9, "{who} {items:?} {limit}");
                }
            }
            assert_eq!(
                index
                    .search("alice", &query, Some(&rare), 10)
                    .unwrap()
                    .len(),
                5
            );
            assert!(
                index
                    .search("bob", &query, Some(&rare), 10)
                    .unwrap()
                    .is_empty()
            );
        }
    }

    #[test]
    fn the_quantized_copy_follows_replacements_and_deletions() {
        let mut rng = Rng(11);
        let vectors = rng.vectors(1000, 32, 5);
        let (_dir, index) = filled(&vectors, |_| "a".into(), |_| "item".into());
        let target: Vec<f32> = (0..32).map(|i| if i == 3 { 1.0 } else { 0.0 }).collect();
        // Vector 500 replaced by the target, then the last one moved into a deleted place.
        index.add(&[doc(500, "a", &target)]).unwrap();
        index.delete(&[10]).unwrap();
        let hits = index.search("a", &target, None, 1).unwrap();
        assert_eq!(hits[0].0, 500);
        assert!((hits[0].1 - 1.0).abs() < 1e-6);
        let last = &vectors[999];
        assert_eq!(index.search("a", last, None, 1).unwrap()[0].0, 999);
        assert!(
            !index
                .search("a", &vectors[10], None, 300)
                .unwrap()
                .iter()
                .any(|h| h.0 == 10)
        );
    }

    #[test]
    fn quantized_vectors_keep_their_direction() {
        let vector = [0.5f32, -0.25, 0.0, 0.125, -0.5];
        let mut codes = [0i8; 5];
        let scale = quantize(&vector, &mut codes);
        assert_eq!(codes, [127, -64, 0, 32, -127]);
        for (code, value) in codes.iter().zip(vector) {
            assert!((f32::from(*code) * scale - value).abs() <= scale / 2.0 + 1e-7);
        }
        assert_eq!(quantize(&[0.0; 3], &mut [1i8; 3]), 0.0);
        let a: Vec<i8> = (0..37).map(|i| (i * 7 % 255 - 127) as i8).collect();
        let b: Vec<i8> = (0..37).map(|i| (127 - i * 5 % 255) as i8).collect();
        let plain: i32 = a
            .iter()
            .zip(&b)
            .map(|(x, y)| i32::from(*x) * i32::from(*y))
            .sum();
        assert_eq!(dot_i8(&a, &b), plain);
    }

    fn read_f32s(path: &str) -> Vec<f32> {
        std::fs::read(path)
            .unwrap()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    }

    /// Search time and recall at scale, printed as one JSON line; bench/knowledge runs it on
    /// the corpus's own vectors: `KAI_BENCH_VECTORS` and `KAI_BENCH_QUERIES` name files of
    /// little-endian f32 vectors of `KAI_BENCH_DIMS`. Without them, 100,000 random vectors of
    /// 384 dimensions in 100 clusters.
    #[test]
    #[ignore = "a measurement, not a test: bench/knowledge/run.sh runs it"]
    fn search_speed() {
        use std::time::Instant;
        let (vectors, queries) = match (
            std::env::var("KAI_BENCH_VECTORS"),
            std::env::var("KAI_BENCH_QUERIES"),
            std::env::var("KAI_BENCH_DIMS"),
        ) {
            (Ok(vectors), Ok(queries), Ok(dims)) => {
                let dims: usize = dims.parse().unwrap();
                let split = |values: Vec<f32>| -> Vec<Vec<f32>> {
                    values.chunks_exact(dims).map(<[f32]>::to_vec).collect()
                };
                (split(read_f32s(&vectors)), split(read_f32s(&queries)))
            }
            _ => {
                let mut rng = Rng(0x5EED);
                (rng.vectors(100_000, 384, 100), rng.vectors(200, 384, 100))
            }
        };
        let started = Instant::now();
        let (_dir, index) = filled(&vectors, |_| "a".into(), |_| "item".into());
        let add_seconds = started.elapsed().as_secs_f64();
        let time = |f: &dyn Fn(&[f32]) -> Hits| {
            let mut ms: Vec<f64> = Vec::new();
            for _round in 0..5 {
                for query in &queries {
                    let started = Instant::now();
                    std::hint::black_box(f(query));
                    ms.push(started.elapsed().as_secs_f64() * 1000.0);
                }
            }
            ms.sort_by(f64::total_cmp);
            let at = |p: f64| ms[((ms.len() - 1) as f64 * p).round() as usize];
            (at(0.5), at(0.99))
        };
        let (p50_10, p99_10) = time(&|q| index.search("a", q, None, 10).unwrap());
        let (p50_40, p99_40) = time(&|q| index.search("a", q, None, 40).unwrap());
        let (exact_p50, exact_p99) = time(&|q| exact(&index, "a", q, None, 10));
        let recall = queries
            .iter()
            .map(|q| {
                recall(
                    &index.search("a", q, None, 10).unwrap(),
                    &exact(&index, "a", q, None, 10),
                )
            })
            .sum::<f64>()
            / queries.len() as f64;
        println!(
            "{{\"vectors\": {}, \"queries\": {}, \"add_per_s\": {:.0}, \"p50_ms_limit10\": {p50_10:.3}, \
             \"p99_ms_limit10\": {p99_10:.3}, \"p50_ms_limit40\": {p50_40:.3}, \"p99_ms_limit40\": {p99_40:.3}, \
             \"exact_p50_ms\": {exact_p50:.3}, \"exact_p99_ms\": {exact_p99:.3}, \"recall_at_10\": {recall:.4}}}",
            vectors.len(),
            queries.len(),
            vectors.len() as f64 / add_seconds,
        );
    }
}
