//! The primitives everything else in the vault is built from, each a thin layer over a RustCrypto
//! or dalek crate: AES-256-GCM for symmetric sealing, Ed25519 signatures, and sealing to a
//! recipient's X25519 public key. KLP and the agents use these through the crate's re-exports.
//!
//! Formats are versioned by their first byte, so a later algorithm can be added without guessing
//! what a stored blob is.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use ed25519_dalek::Signer as _;
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Length of a symmetric key, in bytes.
pub const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// First byte of a [`SymmetricKey::seal`] output.
const SEALED_V1: u8 = 1;
/// First byte of a [`seal_to`] output.
const SEALED_TO_V1: u8 = 1;
/// HKDF's `info` for the key of a [`seal_to`] message: binds the key to this use.
const SEAL_TO_INFO: &[u8] = b"kai seal-to v1 x25519-hkdf-sha256-aes256gcm";

/// Why a cryptographic operation failed. Deliberately unspecific: an attacker learns nothing
/// from which check failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// A sealed message did not open: wrong key, wrong associated data, or changed bytes.
    #[error("cannot open: wrong key, or the data was changed")]
    Open,
    /// A signature did not verify.
    #[error("signature does not verify")]
    Signature,
    /// Input of the wrong length or format.
    #[error("malformed {0}")]
    Malformed(&'static str),
}

/// A 256-bit AES-GCM key. Zeroized when dropped and never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SymmetricKey([u8; KEY_LEN]);

impl SymmetricKey {
    /// A fresh key from the operating system's random source (through `rand`'s CSPRNG).
    #[must_use]
    pub fn generate() -> Self {
        let mut key = [0u8; KEY_LEN];
        rand::fill(&mut key[..]);
        Self(key)
    }

    /// A key from its bytes; the caller zeroizes its own copy.
    #[must_use]
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// The key's bytes, for wrapping it under another key.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(&Key::<Aes256Gcm>::from(self.0))
    }

    /// Encrypts and authenticates `plaintext`, binding `aad` (which is not stored) into the tag.
    /// Output: version byte, a fresh random 96-bit nonce, ciphertext, 128-bit tag.
    ///
    /// A random nonce is safe for up to about 2^32 messages per key; kai's keys each seal far
    /// fewer (one per secret written).
    #[must_use]
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::fill(&mut nonce[..]);
        self.seal_with_nonce(nonce, plaintext, aad)
    }

    fn seal_with_nonce(&self, nonce: [u8; NONCE_LEN], plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        let ciphertext = self
            .cipher()
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            // AES-GCM fails only on inputs over 64 GiB.
            .unwrap_or_default();
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        out.push(SEALED_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        out
    }

    /// Opens what [`seal`](Self::seal) made with this key and the same `aad`.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let Some((&SEALED_V1, rest)) = sealed.split_first() else {
            return Err(CryptoError::Open);
        };
        if rest.len() < NONCE_LEN + TAG_LEN {
            return Err(CryptoError::Open);
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| CryptoError::Open)?;
        self.cipher()
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::Open)
    }

    /// Seals another key under this one (envelope encryption).
    #[must_use]
    pub fn wrap(&self, key: &SymmetricKey, aad: &[u8]) -> Vec<u8> {
        self.seal(&key.0, aad)
    }

    /// Opens a key [`wrap`](Self::wrap)ped under this one.
    pub fn unwrap_key(&self, wrapped: &[u8], aad: &[u8]) -> Result<SymmetricKey, CryptoError> {
        let bytes = self.open(wrapped, aad)?;
        let bytes: [u8; KEY_LEN] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| CryptoError::Malformed("wrapped key"))?;
        Ok(SymmetricKey(bytes))
    }
}

impl std::fmt::Debug for SymmetricKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SymmetricKey(redacted)")
    }
}

/// An Ed25519 signature: 64 bytes.
pub type Signature = [u8; 64];

/// An Ed25519 signing key. Zeroized when dropped and never printed.
#[derive(Clone)]
pub struct SigningKey(ed25519_dalek::SigningKey);

impl SigningKey {
    /// A fresh random key.
    #[must_use]
    pub fn generate() -> Self {
        let mut seed = Zeroizing::new([0u8; 32]);
        rand::fill(&mut seed[..]);
        Self::from_seed(&seed)
    }

    /// The key whose 32-byte secret seed (RFC 8032's "private key") is `seed`.
    #[must_use]
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self(ed25519_dalek::SigningKey::from_bytes(seed))
    }

    /// The secret seed, for storing the key sealed.
    #[must_use]
    pub fn seed(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// The public half.
    #[must_use]
    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey(self.0.verifying_key())
    }

    /// Signs `message` (pure Ed25519, RFC 8032: deterministic, no pre-hashing).
    #[must_use]
    pub fn sign(&self, message: &[u8]) -> Signature {
        self.0.sign(message).to_bytes()
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.verifying_key().did_key())
    }
}

/// An Ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct VerifyingKey(ed25519_dalek::VerifyingKey);

/// Multicodec prefix of an Ed25519 public key (`ed25519-pub`, varint 0xed).
const MULTICODEC_ED25519: [u8; 2] = [0xed, 0x01];
/// Multicodec prefix of an X25519 public key (`x25519-pub`, varint 0xec).
const MULTICODEC_X25519: [u8; 2] = [0xec, 0x01];

impl VerifyingKey {
    /// The key from its 32 bytes; fails on bytes that are not a point on the curve.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, CryptoError> {
        ed25519_dalek::VerifyingKey::from_bytes(bytes)
            .map(Self)
            .map_err(|_| CryptoError::Malformed("Ed25519 public key"))
    }

    /// The key's 32 bytes.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// Checks `signature` over `message` strictly: non-canonical signatures and keys of small
    /// order are refused, so a signature cannot be altered into another valid one.
    pub fn verify(&self, message: &[u8], signature: &Signature) -> Result<(), CryptoError> {
        let signature = ed25519_dalek::Signature::from_bytes(signature);
        self.0
            .verify_strict(message, &signature)
            .map_err(|_| CryptoError::Signature)
    }

    /// Checks many signatures by this key at once: one multiscalar multiplication over the
    /// signatures' `R` points and this key, instead of a double one per signature (the
    /// ed25519-dalek batch verifier repeats the key once per signature, which costs twice as
    /// much when, as in the audit log, every signature is by one key).
    ///
    /// With random 128-bit weights `z_i`, it checks the cofactored equation
    /// `8·([Σ z_i s_i]B − Σ z_i R_i − [Σ z_i k_i]A) = 0`, refusing non-canonical `s` and
    /// small-order `R` and keys as [`verify`](Self::verify) does. A batch with a bad signature
    /// passes with probability about 2^-128. On failure it says only that some signature is
    /// bad: check them one by one to find which.
    pub fn verify_batch(
        &self,
        messages: &[&[u8]],
        signatures: &[Signature],
    ) -> Result<(), CryptoError> {
        use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
        use curve25519_dalek::scalar::Scalar;
        use curve25519_dalek::traits::{IsIdentity as _, VartimeMultiscalarMul as _};
        use sha2::{Digest as _, Sha512};

        if messages.len() != signatures.len() {
            return Err(CryptoError::Malformed("batch"));
        }
        if messages.is_empty() {
            return Ok(());
        }
        let key_bytes = self.0.to_bytes();
        let key = CompressedEdwardsY(key_bytes)
            .decompress()
            .filter(|point| !point.is_small_order())
            .ok_or(CryptoError::Signature)?;
        let mut points = Vec::with_capacity(messages.len() + 1);
        let mut weights = Vec::with_capacity(messages.len() + 1);
        let mut base_weight = Scalar::ZERO;
        let mut key_weight = Scalar::ZERO;
        for (message, signature) in messages.iter().zip(signatures) {
            let (r_bytes, s_bytes) = signature.split_at(32);
            let r_bytes: [u8; 32] = r_bytes.try_into().map_err(|_| CryptoError::Signature)?;
            let s_bytes: [u8; 32] = s_bytes.try_into().map_err(|_| CryptoError::Signature)?;
            let r = CompressedEdwardsY(r_bytes)
                .decompress()
                .filter(|point| !point.is_small_order())
                .ok_or(CryptoError::Signature)?;
            let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes))
                .ok_or(CryptoError::Signature)?;
            let mut hash = Sha512::new();
            hash.update(r_bytes);
            hash.update(key_bytes);
            hash.update(message);
            let k = Scalar::from_bytes_mod_order_wide(&hash.finalize().into());
            let mut z = [0u8; 32];
            rand::fill(&mut z[..16]);
            let z = Scalar::from_bytes_mod_order(z);
            base_weight += z * s;
            key_weight += z * k;
            points.push(r);
            weights.push(z);
        }
        points.push(key);
        weights.push(key_weight);
        let sum = EdwardsPoint::vartime_multiscalar_mul(&weights, &points);
        let check = EdwardsPoint::mul_base(&base_weight) - sum;
        if check.mul_by_cofactor().is_identity() {
            Ok(())
        } else {
            Err(CryptoError::Signature)
        }
    }

    /// The key as a `did:key` (W3C DID method `key`): `did:key:z6Mk…`.
    #[must_use]
    pub fn did_key(&self) -> String {
        format!(
            "did:key:{}",
            multibase(MULTICODEC_ED25519, &self.to_bytes())
        )
    }

    /// The key's id in KLP: the `did:key` method-specific id, which is also the fragment that
    /// names the key inside the DID document (`did:key:z6Mk…#z6Mk…`), as `kid:z6Mk…`.
    #[must_use]
    pub fn kid(&self) -> String {
        format!("kid:{}", multibase(MULTICODEC_ED25519, &self.to_bytes()))
    }

    /// Reads a key from its `did:key:z6Mk…` or `kid:z6Mk…` form.
    pub fn from_did_key(text: &str) -> Result<Self, CryptoError> {
        let id = text
            .strip_prefix("did:key:")
            .or_else(|| text.strip_prefix("kid:"))
            .ok_or(CryptoError::Malformed(
                "did:key (expected did:key:z… or kid:z…)",
            ))?;
        let id = id.split('#').next().unwrap_or(id);
        let bytes = from_multibase(MULTICODEC_ED25519, id)?;
        Self::from_bytes(&bytes)
    }
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VerifyingKey({})", self.did_key())
    }
}

/// An X25519 secret key, for opening what was [`seal_to`]'d its public key. Zeroized when
/// dropped and never printed.
#[derive(Clone)]
pub struct AgreementSecret(x25519_dalek::StaticSecret);

impl AgreementSecret {
    /// A fresh random key.
    #[must_use]
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::fill(&mut bytes[..]);
        Self::from_bytes(*bytes)
    }

    /// The key from its 32 bytes (clamped as RFC 7748 says when used).
    #[must_use]
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(x25519_dalek::StaticSecret::from(bytes))
    }

    /// The secret bytes, for storing the key sealed.
    #[must_use]
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// The public half.
    #[must_use]
    pub fn public_key(&self) -> AgreementPublicKey {
        AgreementPublicKey(x25519_dalek::PublicKey::from(&self.0))
    }

    /// The raw X25519 function of RFC 7748 with this key as the scalar.
    #[must_use]
    pub fn diffie_hellman(&self, public: &AgreementPublicKey) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.diffie_hellman(&public.0).to_bytes())
    }

    /// Opens a message [`seal_to`]'d this key's public half with the same `aad`.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let Some((&SEALED_TO_V1, rest)) = sealed.split_first() else {
            return Err(CryptoError::Open);
        };
        if rest.len() < 32 {
            return Err(CryptoError::Open);
        }
        let (ephemeral, body) = rest.split_at(32);
        let ephemeral: [u8; 32] = ephemeral.try_into().map_err(|_| CryptoError::Open)?;
        let ephemeral = x25519_dalek::PublicKey::from(ephemeral);
        let shared = self.0.diffie_hellman(&ephemeral);
        if !shared.was_contributory() {
            return Err(CryptoError::Open);
        }
        let key = seal_to_key(
            shared.as_bytes(),
            ephemeral.as_bytes(),
            self.public_key().0.as_bytes(),
        );
        key.open(body, aad)
    }
}

impl std::fmt::Debug for AgreementSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AgreementSecret({})", self.public_key().did_key())
    }
}

/// An X25519 public key: what others [`seal_to`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct AgreementPublicKey(x25519_dalek::PublicKey);

impl AgreementPublicKey {
    /// The key from its 32 bytes.
    #[must_use]
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(x25519_dalek::PublicKey::from(bytes))
    }

    /// The key's 32 bytes.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The key as a `did:key` (`did:key:z6LS…`).
    #[must_use]
    pub fn did_key(&self) -> String {
        format!(
            "did:key:{}",
            multibase(MULTICODEC_X25519, self.0.as_bytes())
        )
    }

    /// Reads a key from its `did:key:z6LS…` form.
    pub fn from_did_key(text: &str) -> Result<Self, CryptoError> {
        let id = text
            .strip_prefix("did:key:")
            .ok_or(CryptoError::Malformed("did:key (expected did:key:z6LS…)"))?;
        from_multibase(MULTICODEC_X25519, id).map(Self::from_bytes)
    }
}

impl std::fmt::Debug for AgreementPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AgreementPublicKey({})", self.did_key())
    }
}

/// Seals `plaintext` so that only the holder of `recipient`'s secret key can open it, binding
/// `aad` into the tag. A fresh ephemeral X25519 key agrees a secret with the recipient; HKDF-SHA256
/// (salted with both public keys, so the key is bound to this pair) turns it into an AES-256-GCM
/// key. Output: version byte, the ephemeral public key, then [`SymmetricKey::seal`]'s output.
///
/// This authenticates nothing about the sender: sign the message too when that matters.
#[must_use]
pub fn seal_to(recipient: &AgreementPublicKey, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
    let ephemeral = AgreementSecret::generate();
    let ephemeral_public = ephemeral.public_key();
    let shared = ephemeral.diffie_hellman(recipient);
    let key = seal_to_key(
        &shared,
        ephemeral_public.0.as_bytes(),
        recipient.0.as_bytes(),
    );
    let body = key.seal(plaintext, aad);
    let mut out = Vec::with_capacity(1 + 32 + body.len());
    out.push(SEALED_TO_V1);
    out.extend_from_slice(ephemeral_public.0.as_bytes());
    out.extend_from_slice(&body);
    out
}

fn seal_to_key(shared: &[u8; 32], ephemeral: &[u8; 32], recipient: &[u8; 32]) -> SymmetricKey {
    let mut salt = [0u8; 64];
    salt[..32].copy_from_slice(ephemeral);
    salt[32..].copy_from_slice(recipient);
    let mut key = [0u8; KEY_LEN];
    // 32 bytes is far below HKDF-SHA256's 8160-byte limit, so expand cannot fail.
    let _ = Hkdf::<Sha256>::new(Some(&salt), shared).expand(SEAL_TO_INFO, &mut key);
    SymmetricKey(key)
}

fn multibase(codec: [u8; 2], key: &[u8; 32]) -> String {
    let mut bytes = [0u8; 34];
    bytes[..2].copy_from_slice(&codec);
    bytes[2..].copy_from_slice(key);
    format!("z{}", bs58::encode(bytes).into_string())
}

fn from_multibase(codec: [u8; 2], text: &str) -> Result<[u8; 32], CryptoError> {
    let encoded = text.strip_prefix('z').ok_or(CryptoError::Malformed(
        "did:key (only base58btc, `z…`, is used)",
    ))?;
    let bytes = bs58::decode(encoded)
        .into_vec()
        .map_err(|_| CryptoError::Malformed("did:key (not base58btc)"))?;
    match bytes.split_at_checked(2) {
        Some((prefix, key)) if prefix == codec && key.len() == 32 => key
            .try_into()
            .map_err(|_| CryptoError::Malformed("did:key")),
        _ => Err(CryptoError::Malformed(
            "did:key (not a key of the expected type)",
        )),
    }
}

#[cfg(test)]
mod tests;
