//! What goes wrong in the vault, and what to do about it.

use std::time::Duration;

use kai_store::StoreError;

use crate::kind::{kind_name, other_kind};

/// Why a vault operation failed. Messages say what to do; none carries key material.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// There is no vault yet.
    #[error("the vault is not initialised; run `kai vault init`")]
    NotInitialized,
    /// `init` on a vault that exists.
    #[error("the vault is already initialised")]
    AlreadyInitialized,
    /// The operation needs the master key, and this process does not hold it.
    #[error(
        "the vault is locked; unlock it with `kai vault unlock` (or start the server with vault.key_file or vault.passphrase_file)"
    )]
    Locked,
    /// A passphrase or key file that does not open the vault.
    #[error("wrong {}: it does not unlock this vault", kind_name(.0))]
    WrongKey(&'static str),
    /// The vault has no unlocker of that kind.
    #[error("this vault has no {} unlocker; use the {}", kind_name(.0), other_kind(.0))]
    NoSuchUnlocker(&'static str),
    /// Too many wrong attempts lately.
    #[error("too many wrong attempts to unlock the vault; try again in {}s", .0.as_secs().max(1))]
    TooManyAttempts(Duration),
    /// A new passphrase that is too short.
    #[error("the passphrase must be at least {0} characters")]
    WeakPassphrase(usize),
    /// A secret name that is not allowed.
    #[error("{0}")]
    InvalidName(String),
    /// A secret value that is empty or too large.
    #[error("{0}")]
    InvalidValue(String),
    /// A key file or passphrase file that cannot be read or is malformed.
    #[error("{0}")]
    KeyFile(String),
    /// The last unlocker cannot be removed.
    #[error("the vault must keep at least one unlocker")]
    LastUnlocker,
    /// Stored key material that does not open: it was changed outside kai, or is damaged.
    #[error(
        "the vault's stored data does not verify ({0}); it was changed outside kai or is damaged"
    )]
    Corrupt(String),
    /// Another process changed the vault meanwhile.
    #[error("the vault was changed by another process meanwhile; try again")]
    Changed,
    /// The database failed.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for VaultError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict(_) => VaultError::Changed,
            other => VaultError::Store(other),
        }
    }
}
