//! Password hashing and the opaque secrets kai hands out (refresh tokens, API keys).

use std::sync::Arc;

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use rand::RngExt as _;
use rand::distr::Alphanumeric;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

/// Every API key starts with this, so that it is recognisable in a bearer header, a log a user
/// pasted, or a secret scanner's rules.
pub const API_KEY_PREFIX: &str = "kai_";
/// Every refresh token starts with this. It differs from [`API_KEY_PREFIX`], so a refresh token
/// is never mistaken for a key.
pub const REFRESH_TOKEN_PREFIX: &str = "kairt_";
/// Random characters after the prefix: 40 alphanumerics are about 238 bits.
const SECRET_CHARS: usize = 40;
/// How much of a key is kept in the clear, to recognise it in a list.
const SHOWN_PREFIX_LEN: usize = API_KEY_PREFIX.len() + 8;

/// A fresh random secret: `prefix` followed by [`SECRET_CHARS`] alphanumerics.
pub(crate) fn generate(prefix: &str) -> String {
    let mut rng = rand::rng();
    let mut secret = String::with_capacity(prefix.len() + SECRET_CHARS);
    secret.push_str(prefix);
    secret.extend(
        (&mut rng)
            .sample_iter(Alphanumeric)
            .take(SECRET_CHARS)
            .map(char::from),
    );
    secret
}

/// The part of a key shown in listings.
pub(crate) fn shown_prefix(key: &str) -> String {
    key.chars().take(SHOWN_PREFIX_LEN).collect()
}

/// SHA-256 of a secret, as stored. A fast hash is right here: the secrets are long and random,
/// so there is nothing to brute-force, and every request pays for the hash.
pub(crate) fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Whether `candidate` has the exact shape of a secret made by [`generate`] with `prefix`;
/// anything else is refused before touching the database.
pub(crate) fn well_formed(candidate: &str, prefix: &str) -> bool {
    candidate.strip_prefix(prefix).is_some_and(|rest| {
        rest.len() == SECRET_CHARS && rest.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

/// Argon2id password hashing with OWASP's recommended parameters (19 MiB, 2 passes, 1 lane).
///
/// Each hash takes tens of milliseconds and 19 MiB, so hashing runs on the blocking pool and at
/// most one hash per core runs at once: a burst of logins queues up instead of exhausting memory.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    /// A hash of a random password, verified against when a login names no user, so that an
    /// unknown name takes as long as a wrong password and does not reveal itself.
    decoy: Arc<str>,
}

/// Hashing failed: only possible if the system's random source fails.
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

impl PasswordHasher {
    /// A hasher allowing one hash per available core at a time.
    pub fn new() -> Result<Self, HashError> {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let decoy = hash_now(&generate(""))?;
        Ok(Self {
            permits: Arc::new(Semaphore::new(cores)),
            decoy: decoy.into(),
        })
    }

    /// The PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`) of `password`.
    pub async fn hash(&self, password: &str) -> Result<String, HashError> {
        let password = password.to_owned();
        self.run(move || hash_now(&password)).await?
    }

    /// Whether `password` matches `phc`. A malformed `phc` (a corrupt row) does not match.
    pub async fn verify(&self, password: &str, phc: &str) -> Result<bool, HashError> {
        let (password, phc) = (password.to_owned(), phc.to_owned());
        self.run(move || {
            Argon2::default()
                .verify_password(password.as_bytes(), phc.as_str())
                .is_ok()
        })
        .await
    }

    /// Spends the time of one verification, for a login that names no user.
    pub async fn verify_decoy(&self, password: &str) -> Result<(), HashError> {
        let decoy = self.decoy.clone();
        self.verify(password, &decoy).await.map(drop)
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|err| HashError(err.to_string()))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|err| HashError(err.to_string()))
    }
}

fn hash_now(password: &str) -> Result<String, HashError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|err| HashError(err.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_have_their_shape() {
        let key = generate(API_KEY_PREFIX);
        assert!(well_formed(&key, API_KEY_PREFIX), "{key}");
        assert!(!well_formed(&key, REFRESH_TOKEN_PREFIX));
        assert_ne!(key, generate(API_KEY_PREFIX));
        assert_eq!(shown_prefix(&key).len(), 12);
        assert!(!well_formed("kai_short", API_KEY_PREFIX));
        assert!(!well_formed(&format!("{key}x"), API_KEY_PREFIX));
        let tampered = format!("{}-{}", &key[..10], &key[11..]);
        assert!(!well_formed(&tampered, API_KEY_PREFIX), "{tampered}");
    }

    #[tokio::test]
    async fn passwords_hash_with_argon2id_and_verify() {
        let hasher = PasswordHasher::new().unwrap();
        let phc = hasher.hash("correct horse").await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(hasher.verify("correct horse", &phc).await.unwrap());
        assert!(!hasher.verify("wrong horse", &phc).await.unwrap());
        assert!(
            !hasher
                .verify("correct horse", "not a phc string")
                .await
                .unwrap()
        );
        assert_ne!(
            phc,
            hasher.hash("correct horse").await.unwrap(),
            "salts differ"
        );
        hasher.verify_decoy("anything").await.unwrap();
    }
}
