//! The log as a service: [`AuditLog::record`] appends through one writer task per process that
//! gathers whatever is waiting into one transaction (group commit), signs each entry with the
//! node's key, and answers every caller once the transaction is durable.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kai_store::{AuditFilter, AuditHead, AuditRow, CheckpointRow, Store, StoreError};
use kai_vault::{Identity, Vault};
use rayon::prelude::*;
use serde_json::json;
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

use crate::canonical::{NotCanonical, to_canonical};
use crate::entry::{Entry, Event, format_time, hex};
use crate::merkle::{self, Frontier, Hash};

/// The most entries one transaction appends; more wait for the next.
const MAX_BATCH: usize = 4096;
/// Times the writer yields to gather more events before committing a batch.
const GATHER_ROUNDS: usize = 4;

/// Why recording or reading the log failed.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The event cannot be written canonically.
    #[error("invalid audit event: {0}")]
    Invalid(#[from] NotCanonical),
    /// The database failed; the action the event records must not be reported done.
    #[error("cannot write the audit log: {0}")]
    Store(#[from] StoreError),
    /// The writer task is gone (the process is shutting down).
    #[error("the audit log is closed")]
    Closed,
    /// The stored log is not what kai wrote (found while appending or proving).
    #[error("the audit log is damaged: {0}; run `kai audit verify`")]
    Damaged(String),
    /// A proof was asked for entries or sizes the log does not have.
    #[error("{0}")]
    OutOfRange(String),
    /// Signing needs the vault unlocked.
    #[error("the vault is locked; unlock it to sign checkpoints")]
    Locked,
}

/// A signed checkpoint: the Merkle root over the first `size` entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Entries covered.
    pub size: u64,
    /// Their Merkle root.
    pub root: Hash,
    /// When it was signed.
    pub time: OffsetDateTime,
    /// The signed body: canonical JSON naming the log (the node's did:key), size, root, time.
    pub body: String,
    /// The node's Ed25519 signature over `body`.
    pub signature: Vec<u8>,
}

impl Checkpoint {
    pub(crate) fn body_for(log: &str, size: u64, root: &Hash, time: OffsetDateTime) -> String {
        to_canonical(&json!({
            "log": log,
            "size": size,
            "root": hex(root),
            "time": format_time(time),
        }))
        .unwrap_or_default()
    }

    pub(crate) fn from_row(row: CheckpointRow) -> Result<Self, AuditError> {
        let root: Hash = row
            .root
            .as_slice()
            .try_into()
            .map_err(|_| AuditError::Damaged(format!("checkpoint {} root", row.size)))?;
        Ok(Self {
            size: row.size,
            root,
            time: row.created_at,
            body: row.body,
            signature: row.signature,
        })
    }
}

type Reply = oneshot::Sender<Result<u64, AuditError>>;

/// The audit log. Cheap to clone: clones share the writer.
#[derive(Debug, Clone)]
pub struct AuditLog {
    store: Store,
    vault: Vault,
    sender: mpsc::Sender<(Event, Reply)>,
}

/// When the writer signs a checkpoint.
#[derive(Debug, Clone, Copy)]
struct CheckpointPolicy {
    entries: u64,
    interval: Duration,
}

impl AuditLog {
    /// The log over `store`, signing with the node key in `vault` while it is unlocked. Starts
    /// the writer task on the current runtime; it ends when the last clone is dropped.
    #[must_use]
    pub fn new(store: Store, vault: Vault, settings: &kai_config::AuditSettings) -> Self {
        let (sender, receiver) = mpsc::channel(MAX_BATCH * 4);
        let policy = CheckpointPolicy {
            entries: settings.checkpoint_entries,
            interval: settings.checkpoint_interval,
        };
        let log = Self {
            store: store.clone(),
            vault: vault.clone(),
            sender,
        };
        tokio::spawn(writer(store, vault, receiver, policy));
        log
    }

    /// Appends `event`; returns its sequence number once it is durable. Call this before
    /// reporting the action done, and fail the action if it fails.
    pub async fn record(&self, event: Event) -> Result<u64, AuditError> {
        event.check()?;
        let (reply, answer) = oneshot::channel();
        self.sender
            .send((event, reply))
            .await
            .map_err(|_| AuditError::Closed)?;
        answer.await.map_err(|_| AuditError::Closed)?
    }

    /// Signs the entries appended while the vault was locked. Call it after unlocking; the
    /// writer also does it after any append made unlocked.
    pub async fn sign_pending(&self) -> Result<u64, AuditError> {
        sign_pending(&self.store, &self.vault).await
    }

    /// Signs a checkpoint over the whole log now, unless the newest already covers it.
    pub async fn checkpoint(&self) -> Result<Option<Checkpoint>, AuditError> {
        let identity = self.vault.identity().map_err(|_| AuditError::Locked)?;
        make_checkpoint(&self.store, &identity).await
    }

    /// Entries matching `filter`.
    pub async fn entries(&self, filter: &AuditFilter) -> Result<Vec<AuditRow>, AuditError> {
        Ok(self.store.audit_entries(filter).await?)
    }

    /// Every checkpoint, oldest first.
    pub async fn checkpoints(&self) -> Result<Vec<Checkpoint>, AuditError> {
        self.store
            .audit_checkpoints()
            .await?
            .into_iter()
            .map(Checkpoint::from_row)
            .collect()
    }

    /// The number of entries in the log.
    pub async fn size(&self) -> Result<u64, AuditError> {
        Ok(self.store.audit_head().await?.size)
    }

    /// The inclusion proof of entry `seq` in the tree of the first `size` entries, and that
    /// tree's root. Reads every leaf hash up to `size` (32 bytes each).
    pub async fn inclusion_proof(
        &self,
        seq: u64,
        size: u64,
    ) -> Result<(Vec<Hash>, Hash), AuditError> {
        let leaves = self.leaves(size).await?;
        let proof = merkle::inclusion_proof(&leaves, seq).ok_or_else(|| {
            AuditError::OutOfRange(format!("entry {seq} is not among the first {size}"))
        })?;
        Ok((proof, merkle::root(&leaves)))
    }

    /// The consistency proof between the trees of the first `old_size` and `new_size`
    /// entries, with both roots.
    pub async fn consistency_proof(
        &self,
        old_size: u64,
        new_size: u64,
    ) -> Result<(Vec<Hash>, Hash, Hash), AuditError> {
        if old_size == 0 || old_size > new_size {
            return Err(AuditError::OutOfRange(format!(
                "a consistency proof needs 0 < from ({old_size}) <= to ({new_size})"
            )));
        }
        let leaves = self.leaves(new_size).await?;
        let old_len = usize::try_from(old_size).unwrap_or(usize::MAX);
        let proof = merkle::consistency_proof(&leaves, old_size).ok_or_else(|| {
            AuditError::OutOfRange(format!(
                "no consistency proof from {old_size} to {new_size}"
            ))
        })?;
        Ok((
            proof,
            merkle::root(&leaves[..old_len]),
            merkle::root(&leaves),
        ))
    }

    async fn leaves(&self, size: u64) -> Result<Vec<Hash>, AuditError> {
        let head = self.store.audit_head().await?;
        if size == 0 || size > head.size {
            return Err(AuditError::OutOfRange(format!(
                "the log has {} entries; asked about {size}",
                head.size
            )));
        }
        self.store
            .audit_hashes(size)
            .await?
            .into_iter()
            .map(|hash| {
                hash.as_slice()
                    .try_into()
                    .map_err(|_| AuditError::Damaged("a stored hash is not 32 bytes".into()))
            })
            .collect()
    }
}

/// A batch built and signed against the head the writer expects the database to have when
/// the batch's transaction runs; used only if the head is exactly that.
struct Prebuilt {
    base: AuditHead,
    rows: Vec<AuditRow>,
    head: AuditHead,
}

/// The writer: one per process. Batches are pipelined two deep: while one commits (an fsync on
/// SQLite), the next is built and signed against the head the first will leave, so signing
/// (most of an append's CPU) overlaps the database's work.
async fn writer(
    store: Store,
    vault: Vault,
    mut receiver: mpsc::Receiver<(Event, Reply)>,
    policy: CheckpointPolicy,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut since_checkpoint = Instant::now();
    let mut inflight: Option<tokio::task::JoinHandle<Option<AuditHead>>> = None;
    let mut next_base: Option<AuditHead> = None;
    loop {
        let received =
            tokio::time::timeout(policy.interval, receiver.recv_many(&mut batch, MAX_BATCH)).await;
        let Ok(received) = received else {
            // Quiet for a whole interval: the entries since the last checkpoint get theirs
            // now, so that they can be proven without waiting for the next event.
            match inflight.take() {
                Some(task) => finish(&store, &vault, task, policy, &mut since_checkpoint).await,
                None => {
                    if let Ok(head) = store.audit_head().await {
                        checkpoint_if_due(&store, &vault, &head, policy, &mut since_checkpoint)
                            .await;
                    }
                }
            }
            continue;
        };
        if received == 0 {
            if let Some(task) = inflight.take() {
                let _ = task.await;
            }
            return;
        }
        // Callers answered by the last commit are about to send their next events: give them
        // a turn before committing, so that one transaction (and one fsync) carries them all
        // instead of a few.
        for _ in 0..GATHER_ROUNDS {
            if batch.len() >= MAX_BATCH {
                break;
            }
            tokio::task::yield_now().await;
            while batch.len() < MAX_BATCH {
                match receiver.try_recv() {
                    Ok(item) => batch.push(item),
                    Err(_) => break,
                }
            }
        }
        let identity = vault.identity().ok();
        let (events, replies): (Vec<Event>, Vec<Reply>) = batch.drain(..).unzip();
        let base = match next_base.take() {
            Some(base) => Some(base),
            None => {
                if let Some(task) = inflight.take() {
                    finish(&store, &vault, task, policy, &mut since_checkpoint).await;
                }
                store.audit_head().await.ok()
            }
        };
        let prebuilding = base.map(|base| {
            let events = events.clone();
            let identity = identity.clone();
            tokio::task::spawn_blocking(move || {
                let (rows, head, built) = build(&base, &events, identity.as_deref());
                built.ok().map(|_| Prebuilt { base, rows, head })
            })
        });
        if let Some(task) = inflight.take() {
            finish(&store, &vault, task, policy, &mut since_checkpoint).await;
        }
        let prebuilt = match prebuilding {
            Some(task) => task.await.ok().flatten(),
            None => None,
        };
        next_base = prebuilt.as_ref().map(|prebuilt| prebuilt.head.clone());
        inflight = Some(tokio::spawn(commit(
            store.clone(),
            events,
            identity,
            prebuilt,
            replies,
        )));
    }
}

/// Appends one batch, answering its callers once it is durable; the head it left, if it did.
async fn commit(
    store: Store,
    events: Vec<Event>,
    identity: Option<Arc<Identity>>,
    prebuilt: Option<Prebuilt>,
    replies: Vec<Reply>,
) -> Option<AuditHead> {
    let result = store
        .append_audit(|head| match prebuilt {
            Some(prebuilt) if prebuilt.base == *head => {
                let first = head.size;
                let new_head = prebuilt.head.clone();
                (prebuilt.rows, prebuilt.head, Ok((first, new_head)))
            }
            // Another process appended meanwhile (or the last batch failed): build on the
            // head as it is.
            _ => build(head, &events, identity.as_deref()),
        })
        .await
        .map_err(AuditError::from)
        .and_then(|built| built);
    match result {
        Ok((first, head)) => {
            for (i, reply) in replies.into_iter().enumerate() {
                let _ = reply.send(Ok(first + i as u64));
            }
            Some(head)
        }
        Err(err) => {
            tracing::error!(error = %err, entries = replies.len(), "cannot append to the audit log");
            let message = err.to_string();
            for reply in replies {
                let _ = reply.send(Err(AuditError::Damaged(message.clone())));
            }
            None
        }
    }
}

/// After a batch committed: what [`checkpoint_if_due`] does, for the head it left.
async fn finish(
    store: &Store,
    vault: &Vault,
    task: tokio::task::JoinHandle<Option<AuditHead>>,
    policy: CheckpointPolicy,
    since_checkpoint: &mut Instant,
) {
    let Ok(Some(head)) = task.await else { return };
    checkpoint_if_due(store, vault, &head, policy, since_checkpoint).await;
}

/// Signs what waited for the vault, then makes a checkpoint of `head` when the policy says one
/// is due: `entries` since the last, or any entry and `interval` since the last.
async fn checkpoint_if_due(
    store: &Store,
    vault: &Vault,
    head: &AuditHead,
    policy: CheckpointPolicy,
    since_checkpoint: &mut Instant,
) {
    let Ok(identity) = vault.identity() else {
        return;
    };
    if head.unsigned_from.is_some()
        && let Err(err) = sign_pending(store, vault).await
    {
        tracing::error!(error = %err, "cannot sign audit entries appended while locked");
    }
    let last = store.latest_audit_checkpoint().await.unwrap_or(0);
    let due = head.size >= last + policy.entries
        || (head.size > last && since_checkpoint.elapsed() >= policy.interval);
    if due {
        *since_checkpoint = Instant::now();
        if let Err(err) = make_checkpoint(store, &identity).await {
            tracing::error!(error = %err, "cannot sign an audit checkpoint");
        }
    }
}

/// Builds the rows for `events` on top of `head`: numbered, chained, hashed, signed when the
/// vault is unlocked, and the head that follows them.
#[allow(clippy::type_complexity)]
fn build(
    head: &AuditHead,
    events: &[Event],
    identity: Option<&Identity>,
) -> (
    Vec<AuditRow>,
    AuditHead,
    Result<(u64, AuditHead), AuditError>,
) {
    let failed = |message: String| (Vec::new(), head.clone(), Err(AuditError::Damaged(message)));
    let Some(mut frontier) = Frontier::from_parts(head.size, &head.frontier) else {
        return failed("the stored Merkle frontier does not match the log's size".into());
    };
    let mut prev: Hash = match head.last_hash.as_deref() {
        None if head.size == 0 => [0; 32],
        Some(hash) => match hash.try_into() {
            Ok(hash) => hash,
            Err(_) => return failed("the stored last hash is not 32 bytes".into()),
        },
        None => return failed("the log's head has no last hash".into()),
    };
    let now = OffsetDateTime::now_utc();
    let mut rows = Vec::with_capacity(events.len());
    for (i, event) in events.iter().enumerate() {
        let seq = head.size + i as u64;
        let entry = Entry {
            seq,
            time: now,
            event: event.clone(),
            prev,
        };
        let text = match entry.to_canonical() {
            Ok(text) => text,
            Err(err) => return failed(err.to_string()),
        };
        let hash = merkle::leaf_hash(text.as_bytes());
        frontier.push(hash);
        prev = hash;
        rows.push(AuditRow {
            seq,
            created_at: entry.time,
            actor: event.actor.clone(),
            action: event.action.clone(),
            signature: None,
            entry: text,
            hash: hash.to_vec(),
        });
    }
    // Signing is most of an append's CPU and each signature is independent: spread it over
    // the cores.
    if let Some(identity) = identity {
        rows.par_iter_mut().for_each(|row| {
            row.signature = Some(identity.signing_key().sign(row.entry.as_bytes()).to_vec());
        });
    }
    let new_head = AuditHead {
        size: head.size + events.len() as u64,
        last_hash: Some(prev.to_vec()),
        frontier: frontier.to_bytes(),
        unsigned_from: match (head.unsigned_from, identity) {
            (Some(from), _) => Some(from),
            (None, None) if !events.is_empty() => Some(head.size),
            (None, _) => None,
        },
    };
    let first = head.size;
    (rows, new_head.clone(), Ok((first, new_head)))
}

async fn sign_pending(store: &Store, vault: &Vault) -> Result<u64, AuditError> {
    let identity = vault.identity().map_err(|_| AuditError::Locked)?;
    let head = store.audit_head().await?;
    let Some(from) = head.unsigned_from else {
        return Ok(0);
    };
    let signed = store
        .sign_audit_backlog(from, |row| {
            identity.signing_key().sign(row.entry.as_bytes()).to_vec()
        })
        .await?;
    if signed > 0 {
        tracing::info!(
            signed,
            "signed audit entries appended while the vault was locked"
        );
    }
    Ok(signed)
}

async fn make_checkpoint(
    store: &Store,
    identity: &Arc<Identity>,
) -> Result<Option<Checkpoint>, AuditError> {
    let head = store.audit_head().await?;
    if head.size == 0 || store.latest_audit_checkpoint().await? == head.size {
        return Ok(None);
    }
    let frontier = Frontier::from_parts(head.size, &head.frontier).ok_or_else(|| {
        AuditError::Damaged("the stored Merkle frontier does not match the log's size".into())
    })?;
    let root = frontier.root();
    let time = OffsetDateTime::now_utc();
    let log = identity.public().did();
    let body = Checkpoint::body_for(&log, head.size, &root, time);
    let signature = identity.signing_key().sign(body.as_bytes()).to_vec();
    let checkpoint = Checkpoint {
        size: head.size,
        root,
        time,
        body,
        signature,
    };
    store
        .insert_audit_checkpoint(&CheckpointRow {
            size: checkpoint.size,
            root: root.to_vec(),
            created_at: checkpoint.time,
            body: checkpoint.body.clone(),
            signature: checkpoint.signature.clone(),
        })
        .await?;
    Ok(Some(checkpoint))
}
