//! kai's audit log: an append-only record of security-relevant events that anyone holding the
//! node's public key can check.
//!
//! - Each entry ([`Entry`]) is canonical JSON (time, actor, action, target, outcome, details),
//!   holds the hash of the entry before it, and is signed by the node's Ed25519 key.
//! - The entries are the leaves of an RFC 6962 / RFC 9162 Merkle tree ([`merkle`]); signed
//!   [`Checkpoint`]s commit to its root at a size, and inclusion and consistency proofs show
//!   an entry is in the log and a later log extends an earlier one.
//! - [`AuditLog::record`] appends through one writer task per process that commits whatever is
//!   waiting in one durable transaction (group commit).
//! - [`Verifier`] and [`verify_store`] check everything and name the first broken entry;
//!   [`export`] writes a file that [`ExportFile`] verifies offline.

mod action;
mod canonical;
mod entry;
mod export;
mod log;
pub mod merkle;
mod verify;

pub use action::{Action, Actor};
pub use canonical::{NotCanonical, to_canonical};
pub use entry::{Entry, Event, Outcome, hex};
pub use export::{ExportError, ExportFile, export, verify_store};
pub use log::{AuditError, AuditLog, Checkpoint};
pub use verify::{Problem, Report, Verifier};
