//! kai's trust core: the vault that keeps secrets under envelope encryption, the node's
//! identity, and the primitives KLP and the agents use to seal and sign.
//!
//! - [`crypto`]: AES-256-GCM sealing, Ed25519 signatures, sealing to an X25519 public key,
//!   `did:key` identifiers. Pure functions over bytes; no storage.
//! - [`Vault`]: the key hierarchy (unlock keys → master key → per-owner data keys → secrets)
//!   over `kai-store`, unlocked by a passphrase (Argon2id) or a key file.
//!
//! Key material is zeroized when dropped and prints as `redacted`; errors never carry it.

pub mod crypto;
mod error;
mod kind;
mod unlock;
mod vault;

pub use error::VaultError;
pub use unlock::{KdfParams, KeyFileKey, Passphrase, UnlockKey};
pub use vault::{
    Identity, MAX_SECRET_LEN, Owner, PublicIdentity, SecretInfo, SecretValue, Vault, VaultStatus,
    check_secret_name,
};

#[cfg(test)]
mod tests;
