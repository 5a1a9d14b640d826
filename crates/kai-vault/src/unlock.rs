//! What opens the vault: a passphrase stretched with Argon2id, or a key file. Either yields an
//! unlock key that wraps the master key; how it was derived is recorded beside the wrapped key
//! (`vault_unlockers.kdf`), so parameters can be raised for new vaults without locking out old
//! ones.

use std::io::Write as _;
use std::path::Path;

use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use hkdf::Hkdf;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::crypto::{KEY_LEN, SymmetricKey};
use crate::error::VaultError;
use crate::kind::{KEY_FILE, PASSPHRASE};

/// A passphrase, zeroized when dropped and never printed.
#[derive(Clone)]
pub struct Passphrase(Zeroizing<String>);

impl Passphrase {
    /// Shortest passphrase accepted for a new vault.
    pub const MIN_LEN: usize = 12;

    /// Wraps a passphrase typed or read from a file.
    #[must_use]
    pub fn new(text: String) -> Self {
        Self(Zeroizing::new(text))
    }

    /// Checks that a new passphrase is long enough to be worth stretching.
    pub fn check_new(&self) -> Result<(), VaultError> {
        if self.0.chars().count() < Self::MIN_LEN {
            return Err(VaultError::WeakPassphrase(Self::MIN_LEN));
        }
        Ok(())
    }

    /// Reads the first line of `path` (KAI_VAULT_PASSPHRASE_FILE).
    pub fn read_file(path: &Path) -> Result<Self, VaultError> {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|err| {
            VaultError::KeyFile(format!(
                "cannot read passphrase file {}: {err}",
                path.display()
            ))
        })?);
        let line = text.lines().next().unwrap_or_default();
        if line.is_empty() {
            return Err(VaultError::KeyFile(format!(
                "passphrase file {} is empty; its first line is the passphrase",
                path.display()
            )));
        }
        Ok(Self::new(line.to_owned()))
    }

    fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// The passphrase itself, to send to a server that unlocks with it.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passphrase(redacted)")
    }
}

/// The key in a key file: 32 random bytes, stored raw or as 64 hex digits.
#[derive(Clone)]
pub struct KeyFileKey(SymmetricKey);

impl KeyFileKey {
    /// Reads a key file, refusing one that holds anything but a key.
    pub fn read(path: &Path) -> Result<Self, VaultError> {
        let bytes = Zeroizing::new(std::fs::read(path).map_err(|err| {
            VaultError::KeyFile(format!("cannot read key file {}: {err}", path.display()))
        })?);
        let malformed = || {
            VaultError::KeyFile(format!(
                "key file {} must hold 32 bytes or 64 hex digits; `kai vault init --key-file` \
                 writes one",
                path.display()
            ))
        };
        let key: [u8; KEY_LEN] = if bytes.len() == KEY_LEN {
            bytes.as_slice().try_into().map_err(|_| malformed())?
        } else {
            let text = std::str::from_utf8(&bytes).map_err(|_| malformed())?.trim();
            if text.len() != 2 * KEY_LEN {
                return Err(malformed());
            }
            let mut key = [0u8; KEY_LEN];
            for (byte, pair) in key.iter_mut().zip(text.as_bytes().chunks(2)) {
                let pair = std::str::from_utf8(pair).map_err(|_| malformed())?;
                *byte = u8::from_str_radix(pair, 16).map_err(|_| malformed())?;
            }
            key
        };
        #[cfg(unix)]
        if let Ok(metadata) = std::fs::metadata(path) {
            use std::os::unix::fs::PermissionsExt as _;
            if metadata.permissions().mode() & 0o077 != 0 {
                tracing::warn!(
                    path = %path.display(),
                    "the vault key file is readable by other users; `chmod 600` it"
                );
            }
        }
        Ok(Self(SymmetricKey::from_bytes(key)))
    }

    /// Makes a new random key and writes it to `path` as hex (mode 0600), refusing to replace a
    /// file that exists: it may be the only key to a vault.
    pub fn create(path: &Path) -> Result<Self, VaultError> {
        let key = SymmetricKey::generate();
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let write = || -> std::io::Result<()> {
            let mut file = options.open(path)?;
            let mut text = Zeroizing::new(String::with_capacity(2 * KEY_LEN + 1));
            for byte in key.as_bytes() {
                text.push_str(&format!("{byte:02x}"));
            }
            text.push('\n');
            file.write_all(text.as_bytes())?;
            file.sync_all()
        };
        write().map_err(|err| {
            VaultError::KeyFile(format!("cannot create key file {}: {err}", path.display()))
        })?;
        Ok(Self(key))
    }

    /// A key file's key from its bytes (tests, and keys held elsewhere).
    #[must_use]
    pub fn from_key(key: SymmetricKey) -> Self {
        Self(key)
    }
}

impl std::fmt::Debug for KeyFileKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyFileKey(redacted)")
    }
}

/// Something that opens the vault.
#[derive(Debug, Clone)]
pub enum UnlockKey {
    /// A passphrase.
    Passphrase(Passphrase),
    /// A key file's key.
    KeyFile(KeyFileKey),
}

impl UnlockKey {
    /// The `vault_unlockers.kind` this key opens.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            UnlockKey::Passphrase(_) => PASSPHRASE,
            UnlockKey::KeyFile(_) => KEY_FILE,
        }
    }
}

/// Argon2id's cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Memory, in KiB.
    pub memory_kib: u32,
    /// Passes over the memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl KdfParams {
    /// The parameters from the settings (already checked against OWASP's minimum there).
    #[must_use]
    pub fn from_settings(settings: &kai_config::VaultSettings) -> Self {
        Self {
            memory_kib: u32::try_from(settings.kdf_memory.as_u64() / 1024).unwrap_or(u32::MAX),
            iterations: settings.kdf_iterations,
            parallelism: settings.kdf_parallelism,
        }
    }
}

/// How an unlocker's key is derived, as stored with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "algorithm", rename_all = "kebab-case")]
pub(crate) enum Kdf {
    /// Argon2id (version 0x13) over the passphrase.
    Argon2id {
        #[serde(flatten)]
        params: KdfParams,
        /// 16 random bytes, base64.
        salt: String,
    },
    /// HKDF-SHA256 over the key file's key: a key file is already uniformly random, so it
    /// needs no stretching, only separation from any other use of the same key.
    HkdfSha256 {
        /// 16 random bytes, base64.
        salt: String,
    },
}

const KEY_FILE_INFO: &[u8] = b"kai vault key-file unlock v1";

impl Kdf {
    /// A fresh derivation (new salt) for `key`.
    pub(crate) fn new_for(key: &UnlockKey, params: KdfParams) -> Self {
        let mut salt = [0u8; 16];
        rand::fill(&mut salt[..]);
        let salt = STANDARD_NO_PAD.encode(salt);
        match key {
            UnlockKey::Passphrase(_) => Kdf::Argon2id { params, salt },
            UnlockKey::KeyFile(_) => Kdf::HkdfSha256 { salt },
        }
    }

    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub(crate) fn from_json(text: &str) -> Result<Self, VaultError> {
        serde_json::from_str(text)
            .map_err(|err| VaultError::Corrupt(format!("unlocker parameters: {err}")))
    }

    /// The Argon2id parameters, if this is a passphrase's.
    pub(crate) fn params(&self) -> Option<KdfParams> {
        match self {
            Kdf::Argon2id { params, .. } => Some(*params),
            Kdf::HkdfSha256 { .. } => None,
        }
    }

    /// Derives the key that wraps the master key. Argon2id takes a good fraction of a second
    /// by design: call this on a blocking thread.
    pub(crate) fn derive(&self, key: &UnlockKey) -> Result<SymmetricKey, VaultError> {
        let salt_of = |salt: &str| {
            STANDARD_NO_PAD
                .decode(salt)
                .map_err(|_| VaultError::Corrupt("unlocker salt is not base64".into()))
        };
        let mut out = Zeroizing::new([0u8; KEY_LEN]);
        match (self, key) {
            (Kdf::Argon2id { params, salt }, UnlockKey::Passphrase(passphrase)) => {
                let salt = salt_of(salt)?;
                argon2id(*params)?
                    .hash_password_into(passphrase.as_bytes(), &salt, &mut out[..])
                    .map_err(|err| VaultError::Corrupt(format!("Argon2id: {err}")))?;
            }
            (Kdf::HkdfSha256 { salt }, UnlockKey::KeyFile(file)) => {
                let salt = salt_of(salt)?;
                Hkdf::<Sha256>::new(Some(&salt), file.0.as_bytes())
                    .expand(KEY_FILE_INFO, &mut out[..])
                    .map_err(|_| VaultError::Corrupt("HKDF output length".into()))?;
            }
            _ => return Err(VaultError::WrongKey(key.kind())),
        }
        Ok(SymmetricKey::from_bytes(*out))
    }
}

/// Argon2id, version 0x13, with a 32-byte output.
pub(crate) fn argon2id(params: KdfParams) -> Result<Argon2<'static>, VaultError> {
    let params = Params::new(
        params.memory_kib,
        params.iterations,
        params.parallelism,
        Some(KEY_LEN),
    )
    .map_err(|err| VaultError::Corrupt(format!("Argon2id parameters: {err}")))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}
