//! Verification: from the entries and checkpoints alone and the node's public key, decide
//! whether the log is exactly what the node wrote, and if not, name the first entry that is not.
//!
//! Per entry: its stored position and its own `seq` agree and follow the previous one (a gap
//! is a deletion, a repeat or step back a reordering or insertion); it is canonical JSON; its
//! stored hash is its leaf hash; its `prev` is the previous entry's hash; the columns copied for
//! queries match it; its signature verifies. Per checkpoint: its body is canonical and names
//! this node, the Merkle root over the first `size` entries is its root, and its signature
//! verifies; a checkpoint larger than the log means entries were cut off its end.

use std::collections::BTreeMap;

use kai_store::AuditRow;
use kai_vault::crypto::{Signature, VerifyingKey};
use rayon::prelude::*;

use crate::canonical::{NotCanonical, parse_canonical};
use crate::entry::{Entry, from_hex32};
use crate::log::Checkpoint;
use crate::merkle::{self, Frontier, Hash};

/// Signatures checked per batch: big enough for batch verification's gain, small enough that a
/// failed batch is cheap to recheck one by one.
const BATCH: usize = 1024;

/// One thing wrong with the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The entry it concerns, if one.
    pub seq: Option<u64>,
    /// The checkpoint it concerns (its size), if one.
    pub checkpoint: Option<u64>,
    /// What is wrong, in a sentence.
    pub message: String,
}

/// What verification found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Entries read.
    pub entries: u64,
    /// Checkpoints read.
    pub checkpoints: u64,
    /// Entries with no signature yet (appended while the vault was locked).
    pub unsigned: u64,
    /// The root over all entries.
    pub root: Option<Hash>,
    /// The newest checkpoint that verified.
    pub latest_checkpoint: Option<(u64, Hash)>,
    /// Everything wrong, in log order; empty when the log verifies.
    pub problems: Vec<Problem>,
}

impl Report {
    /// Whether the log verified: no problems and no unsigned entries.
    #[must_use]
    pub fn is_intact(&self) -> bool {
        self.problems.is_empty() && self.unsigned == 0
    }
}

/// Unix milliseconds: the precision entries and the `created_at` column keep.
fn millis(time: time::OffsetDateTime) -> i128 {
    time.unix_timestamp_nanos() / 1_000_000
}

/// Checks entries fed in order, then checkpoints.
#[derive(Debug)]
pub struct Verifier {
    key: VerifyingKey,
    log: String,
    next_seq: u64,
    prev: Hash,
    frontier: Frontier,
    /// Roots at the sizes checkpoints will ask about, recorded as the tree grows past them.
    roots_at: BTreeMap<u64, Option<Hash>>,
    /// What the log's head recorded, if it is known, and the hash found at its last entry.
    head: Option<Head>,
    report: Report,
}

/// The size and last hash the log's head recorded, which the entries must reach.
#[derive(Debug)]
struct Head {
    size: u64,
    last_hash: Option<Hash>,
    found: Option<Hash>,
}

impl Verifier {
    /// A verifier for a log signed by `key`, which will be asked about checkpoints of the
    /// given sizes (their roots are recorded on the way).
    #[must_use]
    pub fn new(key: VerifyingKey, checkpoint_sizes: impl IntoIterator<Item = u64>) -> Self {
        Self {
            log: key.did_key(),
            key,
            next_seq: 0,
            prev: [0; 32],
            frontier: Frontier::new(),
            roots_at: checkpoint_sizes
                .into_iter()
                .map(|size| (size, None))
                .collect(),
            head: None,
            report: Report::default(),
        }
    }

    /// Holds the entries to the head the log's writer recorded: `size` entries, the last one
    /// hashing to `last_hash` when it is known. Entries deleted from the end of the log, which
    /// no later entry and (until the next one) no checkpoint covers, are caught this way.
    #[must_use]
    pub fn expect_head(mut self, size: u64, last_hash: Option<Hash>) -> Self {
        self.head = Some(Head {
            size,
            last_hash,
            found: None,
        });
        self
    }

    fn problem(&mut self, seq: u64, message: String) {
        self.report.problems.push(Problem {
            seq: Some(seq),
            checkpoint: None,
            message,
        });
    }

    /// Checks the next entries of the log, in order.
    pub fn push(&mut self, rows: &[AuditRow]) {
        // Signatures are independent of each other: check them in parallel, in batches.
        let bad_signatures = self.check_signatures(rows);
        let mut bad_signatures = bad_signatures.into_iter().peekable();
        // So are parsing and hashing; only the chain is followed in order.
        let parsed: Vec<(Result<Entry, NotCanonical>, Hash)> = rows
            .par_iter()
            .map(|row| {
                (
                    Entry::parse(&row.entry),
                    merkle::leaf_hash(row.entry.as_bytes()),
                )
            })
            .collect();
        for (row, (parsed, hash)) in rows.iter().zip(parsed) {
            self.report.entries += 1;
            let seq = row.seq;
            if seq != self.next_seq {
                let message = if seq > self.next_seq {
                    if seq - self.next_seq == 1 {
                        format!("entry {} is missing: deleted", self.next_seq)
                    } else {
                        format!(
                            "entries {} to {} are missing: deleted",
                            self.next_seq,
                            seq - 1
                        )
                    }
                } else {
                    format!(
                        "entry {seq} appears again after entry {}",
                        self.next_seq - 1
                    )
                };
                self.problem(seq, message);
            }
            match parsed {
                Err(err) => self.problem(seq, format!("entry {seq} is not as kai wrote it: {err}")),
                Ok(entry) => {
                    if entry.seq != seq {
                        self.problem(
                            seq,
                            format!(
                                "the entry stored at {seq} says it is entry {}: entries were \
                                 moved, deleted or inserted",
                                entry.seq
                            ),
                        );
                    }
                    if entry.prev != self.prev {
                        self.problem(
                            seq,
                            format!(
                                "entry {seq} does not chain to the entry before it (its prev \
                                 hash differs): an entry was inserted, deleted or reordered \
                                 before it"
                            ),
                        );
                    }
                    if entry.event.actor != row.actor
                        || entry.event.action != row.action
                        || millis(entry.time) != millis(row.created_at)
                    {
                        self.problem(
                            seq,
                            format!(
                                "entry {seq}'s actor, action or time columns differ from its \
                                 signed content: they were edited"
                            ),
                        );
                    }
                }
            }
            if row.hash.as_slice() != hash {
                self.problem(
                    seq,
                    format!("entry {seq}'s stored hash does not match its content: it was edited"),
                );
            }
            match &row.signature {
                None => self.report.unsigned += 1,
                Some(_) if bad_signatures.next_if_eq(&seq).is_some() => self.problem(
                    seq,
                    format!(
                        "entry {seq}'s signature does not verify: it was edited after it was \
                         signed, or signed by another key"
                    ),
                ),
                Some(_) => {}
            }
            // The tree and chain follow the content as stored, so that one edit is reported
            // once, not again at every later entry.
            self.prev = hash;
            self.frontier.push(hash);
            self.next_seq = seq.max(self.next_seq) + 1;
            let size = self.frontier.size();
            if let Some(head) = &mut self.head
                && head.size == size
            {
                head.found = Some(hash);
            }
            if let Some(root) = self.roots_at.get_mut(&size) {
                *root = Some(self.frontier.root());
            }
        }
    }

    /// The seqs among `rows` whose signature is present and wrong.
    fn check_signatures(&self, rows: &[AuditRow]) -> Vec<u64> {
        let key = self.key;
        let mut bad: Vec<u64> = rows
            .par_chunks(BATCH)
            .flat_map_iter(|chunk| {
                let signed: Vec<(&AuditRow, Option<Signature>)> = chunk
                    .iter()
                    .filter(|row| row.signature.is_some())
                    .map(|row| {
                        let signature = row
                            .signature
                            .as_deref()
                            .and_then(|bytes| <Signature>::try_from(bytes).ok());
                        (row, signature)
                    })
                    .collect();
                let all_well_formed = signed.iter().all(|(_, signature)| signature.is_some());
                if all_well_formed {
                    let messages: Vec<&[u8]> =
                        signed.iter().map(|(row, _)| row.entry.as_bytes()).collect();
                    let signatures: Vec<Signature> = signed
                        .iter()
                        .filter_map(|(_, signature)| *signature)
                        .collect();
                    if key.verify_batch(&messages, &signatures).is_ok() {
                        return Vec::new();
                    }
                }
                signed
                    .into_iter()
                    .filter(|(row, signature)| {
                        signature.is_none_or(|signature| {
                            key.verify(row.entry.as_bytes(), &signature).is_err()
                        })
                    })
                    .map(|(row, _)| row.seq)
                    .collect()
            })
            .collect();
        bad.sort_unstable();
        bad
    }

    fn check_head(&mut self, head: &Head) {
        let have = self.frontier.size();
        let last = head.size.saturating_sub(1);
        let message = if have < head.size {
            let missing = if head.size - have == 1 {
                format!("entry {have} was")
            } else {
                format!("entries {have} to {last} were")
            };
            format!(
                "the log's head records {} entries but only {have} remain: {missing} deleted \
                 from its end",
                head.size
            )
        } else if head.last_hash.is_some() && head.found != head.last_hash {
            format!(
                "entry {last} is not the entry the log's head records as its last: the end of \
                 the log was rewritten"
            )
        } else {
            return;
        };
        self.report.problems.push(Problem {
            seq: Some(last),
            checkpoint: None,
            message,
        });
    }

    /// Checks the checkpoints against the entries pushed, and returns the report.
    #[must_use]
    pub fn finish(mut self, checkpoints: &[Checkpoint]) -> Report {
        self.report.root = Some(self.frontier.root());
        for checkpoint in checkpoints {
            self.report.checkpoints += 1;
            let size = checkpoint.size;
            let mut fail = |message: String| {
                self.report.problems.push(Problem {
                    seq: None,
                    checkpoint: Some(size),
                    message,
                });
            };
            let signature = <Signature>::try_from(checkpoint.signature.as_slice()).ok();
            if signature.is_none_or(|signature| {
                self.key
                    .verify(checkpoint.body.as_bytes(), &signature)
                    .is_err()
            }) {
                fail(format!(
                    "checkpoint {size}'s signature does not verify: it was edited, or signed by \
                     another key"
                ));
                continue;
            }
            let body_matches = parse_canonical(&checkpoint.body).ok().is_some_and(|body| {
                body.get("log").and_then(|v| v.as_str()) == Some(self.log.as_str())
                    && body.get("size").and_then(serde_json::Value::as_u64) == Some(size)
                    && body
                        .get("root")
                        .and_then(|v| v.as_str())
                        .and_then(from_hex32)
                        == Some(checkpoint.root)
            });
            if !body_matches {
                fail(format!(
                    "checkpoint {size}'s stored size or root differ from what was signed"
                ));
                continue;
            }
            match self.roots_at.get(&size).copied().flatten() {
                None => fail(format!(
                    "checkpoint {size} covers entries the log no longer has ({} remain): \
                     entries were cut off its end",
                    self.frontier.size()
                )),
                Some(root) if root != checkpoint.root => fail(format!(
                    "checkpoint {size} does not match entries 0 to {}: an entry it covers was \
                     changed, deleted or inserted",
                    size.saturating_sub(1)
                )),
                Some(_) => self.report.latest_checkpoint = Some((size, checkpoint.root)),
            }
        }
        if let Some(head) = self.head.take() {
            self.check_head(&head);
        }
        self.report
    }
}
