//! The vault, the node's identity and the audit log on the wire.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::Password;

/// `GET /api/v1/vault`: whether the vault exists and whether the server holds its key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VaultStatus {
    /// Whether `kai vault init` has run.
    pub initialized: bool,
    /// Whether the server holds the master key: secrets can be read and entries signed.
    pub unlocked: bool,
    /// How it can be unlocked: `passphrase`, `key_file`.
    pub unlockers: Vec<String>,
    /// The passphrase's Argon2id memory in KiB, passes and lanes, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kdf: Option<KdfParams>,
    /// When the vault was created.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub created_at: Option<OffsetDateTime>,
    /// When its master key last changed.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub rotated_at: Option<OffsetDateTime>,
    /// Wrong passphrases or key files given in a row since the last unlock.
    #[serde(default)]
    pub failed_unlocks: u32,
    /// After too many wrong keys: seconds until the next unlock attempt is tried (rounded up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unlock_retry_after_s: Option<u64>,
}

/// Argon2id's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KdfParams {
    /// Memory, in KiB.
    pub memory_kib: u32,
    /// Passes over the memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

/// `POST /api/v1/vault/unlock` and `POST /api/v1/vault/init`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VaultPassphraseRequest {
    /// The vault's passphrase (at least 12 characters for a new vault).
    #[schema(value_type = String, format = Password)]
    pub passphrase: Password,
}

/// `GET /api/v1/identity`: the node's public keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NodeIdentity {
    /// The node's identifier: its Ed25519 signing key as a `did:key`.
    #[schema(example = "did:key:z6MkmjY8GnV5i9YTDtPETC2uUAW6ejw3nk5mXF5yci5ab7th")]
    pub did: String,
    /// The same key's id in KLP.
    #[schema(example = "kid:z6MkmjY8GnV5i9YTDtPETC2uUAW6ejw3nk5mXF5yci5ab7th")]
    pub kid: String,
    /// The X25519 key others seal messages to, as a `did:key`.
    #[schema(example = "did:key:z6LShpNhGwSupbB7zjuivH156vhLJBDDzmQtA4BY9S94pe1K")]
    pub agreement: String,
}

/// A secret's name and metadata, never its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SecretInfo {
    /// Its name: letters, digits, `.`, `_`, `-`.
    #[schema(example = "openai")]
    pub name: String,
    /// What it is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// When it was first stored.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// When its value last changed.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

/// `GET /api/v1/secrets/{name}`: a secret with its value.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SecretWithValue {
    /// Name and metadata.
    #[serde(flatten)]
    pub info: SecretInfo,
    /// The value.
    #[schema(value_type = String, format = Password)]
    pub value: Password,
}

/// `PUT /api/v1/secrets/{name}`: store a secret or replace its value.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutSecretRequest {
    /// The value (at most 64 KiB of text).
    #[schema(value_type = String, format = Password)]
    pub value: Password,
    /// What it is for; kept when left out on a replacement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// One audit entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    /// Its place in the log, from 0.
    pub seq: u64,
    /// The canonical JSON that was hashed and signed: time, actor, action, target, outcome,
    /// details, seq and the previous entry's hash.
    pub entry: String,
    /// Its RFC 6962 leaf hash, hex.
    pub hash: String,
    /// The node's Ed25519 signature over `entry`, base64; absent while the vault was locked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

/// `GET /api/v1/audit`: a page of entries, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    /// The entries.
    pub entries: Vec<AuditEntry>,
    /// Pass as `after` for the next page; absent on the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_after: Option<u64>,
}

/// A signed checkpoint: the Merkle root over the first `size` entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditCheckpoint {
    /// Entries covered.
    pub size: u64,
    /// Their Merkle root (RFC 6962), hex.
    pub root: String,
    /// The signed body: canonical JSON with the log (the node's did:key), size, root, time.
    pub body: String,
    /// The node's Ed25519 signature over `body`, base64.
    pub signature: String,
}

/// `GET /api/v1/audit/proofs/inclusion`: entry `seq` is in the tree of `size` entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InclusionProof {
    /// The entry.
    pub seq: u64,
    /// The tree's size.
    pub size: u64,
    /// The tree's root, hex: compare with a signed checkpoint of that size.
    pub root: String,
    /// The audit path (RFC 9162 section 2.1.3), hex hashes.
    pub proof: Vec<String>,
}

/// `GET /api/v1/audit/proofs/consistency`: the tree of `to` entries extends that of `from`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ConsistencyProof {
    /// The smaller tree's size.
    pub from: u64,
    /// The larger tree's size.
    pub to: u64,
    /// The smaller tree's root, hex.
    pub from_root: String,
    /// The larger tree's root, hex.
    pub to_root: String,
    /// The proof (RFC 9162 section 2.1.4), hex hashes.
    pub proof: Vec<String>,
}
