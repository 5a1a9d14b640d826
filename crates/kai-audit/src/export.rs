//! Verifying the log in the database, and the export file that verifies offline.
//!
//! The export is JSON Lines: a header naming the format and the node's keys, one line per entry
//! (its canonical JSON kept as a string, byte for byte, with its hash and signature), then one
//! line per checkpoint. Nothing in it is trusted but the signatures: verify it against the
//! node's did:key obtained elsewhere (`kai identity show` on the node).

use std::io::{BufRead, Write};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kai_store::{AuditRow, Store};
use kai_vault::crypto::VerifyingKey;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::entry::{Entry, from_hex32, hex};
use crate::log::{AuditError, Checkpoint};
use crate::merkle::Hash;
use crate::verify::{Report, Verifier};

/// Entries read from the database at a time.
const PAGE: u64 = 10_000;
const FORMAT: &str = "kai-audit-export";

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    format: String,
    version: u32,
    node: String,
    entries: u64,
    checkpoints: u64,
    #[serde(with = "time::serde::rfc3339")]
    exported_at: OffsetDateTime,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
enum Line {
    Entry {
        seq: u64,
        entry: String,
        hash: String,
        signature: Option<String>,
    },
    Checkpoint {
        size: u64,
        root: String,
        body: String,
        signature: String,
    },
}

/// Verifies the log in `store` against the node's public `key`, reading it in pages.
pub async fn verify_store(store: &Store, key: VerifyingKey) -> Result<Report, AuditError> {
    let checkpoints: Vec<Checkpoint> = store
        .audit_checkpoints()
        .await?
        .into_iter()
        .map(Checkpoint::from_row)
        .collect::<Result<_, _>>()?;
    // The head is read first: entries appended while the log is read only add to it.
    let head = store.audit_head().await?;
    let last_hash = head
        .last_hash
        .as_deref()
        .and_then(|hash| Hash::try_from(hash).ok());
    let mut verifier =
        Verifier::new(key, checkpoints.iter().map(|c| c.size)).expect_head(head.size, last_hash);
    // Pages by seq, not by the head's size, so that rows past the head are judged too; the
    // next page is read while the last one is checked.
    let page = |after: Option<u64>| kai_store::AuditFilter {
        after_seq: after,
        limit: u32::try_from(PAGE).unwrap_or(u32::MAX),
        ..Default::default()
    };
    let mut rows = store.audit_entries(&page(None)).await?;
    while let Some(last) = rows.last().map(|row| row.seq) {
        let check = tokio::task::spawn_blocking(move || {
            verifier.push(&rows);
            verifier
        });
        let next = page(Some(last));
        let (checked, next) = tokio::join!(check, store.audit_entries(&next));
        verifier =
            checked.map_err(|err| AuditError::Damaged(format!("verification stopped: {err}")))?;
        rows = next?;
    }
    tokio::task::spawn_blocking(move || verifier.finish(&checkpoints))
        .await
        .map_err(|err| AuditError::Damaged(format!("verification stopped: {err}")))
}

/// Writes the whole log to `out`; returns the number of entries written.
pub async fn export(
    store: &Store,
    node: VerifyingKey,
    out: &mut (impl Write + Send),
) -> Result<u64, ExportError> {
    let head = store.audit_head().await?;
    let checkpoints = store.audit_checkpoints().await?;
    let header = Header {
        format: FORMAT.into(),
        version: 1,
        node: node.did_key(),
        entries: head.size,
        checkpoints: checkpoints.len() as u64,
        exported_at: OffsetDateTime::now_utc(),
    };
    write_line(out, &header)?;
    let mut from = 0;
    let mut written = 0;
    while from < head.size {
        let to = (from + PAGE).min(head.size);
        for row in store.audit_range(from, to).await? {
            write_line(
                out,
                &Line::Entry {
                    seq: row.seq,
                    hash: hex(&row.hash),
                    signature: row.signature.as_deref().map(|bytes| STANDARD.encode(bytes)),
                    entry: row.entry,
                },
            )?;
            written += 1;
        }
        from = to;
    }
    for checkpoint in checkpoints {
        write_line(
            out,
            &Line::Checkpoint {
                size: checkpoint.size,
                root: hex(&checkpoint.root),
                body: checkpoint.body,
                signature: STANDARD.encode(&checkpoint.signature),
            },
        )?;
    }
    out.flush()?;
    Ok(written)
}

/// An export file, read back.
#[derive(Debug)]
pub struct ExportFile {
    /// The node the file says wrote it: compare with the key you trust.
    pub node: VerifyingKey,
    /// The entries the header says the file holds.
    entries: u64,
    rows: Vec<AuditRow>,
    checkpoints: Vec<Checkpoint>,
}

impl ExportFile {
    /// Reads an export, refusing lines that are not in its format (by line number).
    pub fn read(input: impl BufRead) -> Result<Self, ExportError> {
        let mut lines = input.lines().enumerate();
        let bad = |number: usize, what: String| {
            ExportError::Format(format!("line {}: {what}", number + 1))
        };
        let (_, first) = lines
            .next()
            .ok_or_else(|| ExportError::Format("the file is empty".into()))?;
        let header: Header = serde_json::from_str(&first?)
            .map_err(|err| bad(0, format!("not a kai audit export header: {err}")))?;
        if header.format != FORMAT || header.version != 1 {
            return Err(bad(
                0,
                format!(
                    "format {} version {} is not one this kai reads",
                    header.format, header.version
                ),
            ));
        }
        let node =
            VerifyingKey::from_did_key(&header.node).map_err(|err| bad(0, err.to_string()))?;
        let mut rows = Vec::new();
        let mut checkpoints = Vec::new();
        for (number, line) in lines {
            let line = line?;
            match serde_json::from_str::<Line>(&line).map_err(|err| bad(number, err.to_string()))? {
                Line::Entry {
                    seq,
                    entry,
                    hash,
                    signature,
                } => {
                    let hash = from_hex32(&hash)
                        .ok_or_else(|| bad(number, "hash is not 64 hex digits".into()))?;
                    let signature = signature
                        .map(|text| STANDARD.decode(text))
                        .transpose()
                        .map_err(|_| bad(number, "signature is not base64".into()))?;
                    // The columns a database would copy out of the entry; an entry that does not
                    // parse is kept as it is, for the verifier to report by number.
                    let parsed = Entry::parse(&entry).ok();
                    rows.push(AuditRow {
                        seq,
                        created_at: parsed
                            .as_ref()
                            .map_or(OffsetDateTime::UNIX_EPOCH, |e| e.time),
                        actor: parsed
                            .as_ref()
                            .map(|e| e.event.actor.clone())
                            .unwrap_or_default(),
                        action: parsed
                            .as_ref()
                            .map(|e| e.event.action.clone())
                            .unwrap_or_default(),
                        entry,
                        hash: hash.to_vec(),
                        signature,
                    });
                }
                Line::Checkpoint {
                    size,
                    root,
                    body,
                    signature,
                } => checkpoints.push(Checkpoint {
                    size,
                    root: from_hex32(&root)
                        .ok_or_else(|| bad(number, "root is not 64 hex digits".into()))?,
                    time: OffsetDateTime::UNIX_EPOCH,
                    body,
                    signature: STANDARD
                        .decode(signature)
                        .map_err(|_| bad(number, "signature is not base64".into()))?,
                }),
            }
        }
        Ok(Self {
            node,
            entries: header.entries,
            rows,
            checkpoints,
        })
    }

    /// Verifies the file's entries and checkpoints against `key`.
    #[must_use]
    pub fn verify(&self, key: VerifyingKey) -> Report {
        let mut verifier = Verifier::new(key, self.checkpoints.iter().map(|c| c.size))
            .expect_head(self.entries, None);
        verifier.push(&self.rows);
        verifier.finish(&self.checkpoints)
    }
}

/// Why an export could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Reading or writing the file failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The file is not an export.
    #[error("not a kai audit export: {0}")]
    Format(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] kai_store::StoreError),
}

fn write_line(out: &mut impl Write, value: &impl Serialize) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, value)?;
    out.write_all(b"\n")
}
