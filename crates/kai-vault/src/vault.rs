//! The vault service: envelope encryption over the store.
//!
//! The key hierarchy, top down:
//!
//! - an **unlock key** per unlocker: Argon2id over the passphrase, or HKDF over a key file;
//! - the **master key**, random, wrapped under each unlock key (`vault_unlockers`), with an id
//!   that changes when it is rotated;
//! - a **data key** per owner (`node`, or a user), random, wrapped under the master key;
//! - each **secret**, sealed under its owner's data key, its id, owner and name bound in as
//!   associated data so that no ciphertext opens in another row.
//!
//! So a passphrase change rewrites one row, a master key rotation one row per owner, and neither
//! touches a secret. Every blob's associated data names what it is and where it belongs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use kai_core::UserId;
use kai_store::{
    DataKeyRecord, KeyringRecord, RotatedKeyring, SecretRecord, Store, StoreError, UnlockerRecord,
};
use time::OffsetDateTime;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::crypto::{AgreementPublicKey, AgreementSecret, SigningKey, SymmetricKey, VerifyingKey};
use crate::error::VaultError;
use crate::kind::{KEY_FILE, PASSPHRASE, kind_name};
use crate::unlock::{Kdf, KdfParams, Passphrase, UnlockKey};

/// The longest secret value stored.
pub const MAX_SECRET_LEN: usize = 64 * 1024;
/// Wrong unlocks allowed in a row before each further one must wait.
const FREE_ATTEMPTS: u32 = 5;
/// The longest wait between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);

/// How long the next unlock attempt must wait: nothing for the first five wrong keys in a row,
/// then a second, doubling with each further one up to [`MAX_BACKOFF`], counted from the last.
fn unlock_wait(keyring: &KeyringRecord) -> Option<Duration> {
    if keyring.failed_unlocks < FREE_ATTEMPTS {
        return None;
    }
    let last = keyring.last_failed_unlock?;
    let exponent = (keyring.failed_unlocks - FREE_ATTEMPTS).min(20);
    let wait = Duration::from_secs(1u64 << exponent).min(MAX_BACKOFF);
    let elapsed = Duration::try_from(OffsetDateTime::now_utc() - last).unwrap_or_default();
    wait.checked_sub(elapsed).filter(|left| !left.is_zero())
}

/// Who owns a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Owner {
    /// The node itself: provider credentials (`vault:NAME`) and its own keys.
    Node,
    /// A user.
    User(UserId),
}

impl Owner {
    fn as_key(&self) -> String {
        match self {
            Owner::Node => "node".into(),
            Owner::User(id) => id.to_string(),
        }
    }
}

/// A secret's value. Zeroized when dropped and never printed.
#[derive(Clone)]
pub struct SecretValue(Zeroizing<String>);

impl SecretValue {
    /// Wraps a value.
    #[must_use]
    pub fn new(value: String) -> Self {
        Self(Zeroizing::new(value))
    }

    /// The value itself.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretValue(redacted)")
    }
}

/// A secret's name and metadata: what listings show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretInfo {
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// What it is for.
    pub description: Option<String>,
    /// When it was first stored.
    pub created_at: OffsetDateTime,
    /// When its value last changed.
    pub updated_at: OffsetDateTime,
}

impl From<SecretRecord> for SecretInfo {
    fn from(record: SecretRecord) -> Self {
        Self {
            id: record.id,
            name: record.name,
            description: record.description,
            created_at: record.created_at,
            updated_at: record.updated_at,
        }
    }
}

/// Checks a secret's name: 1 to 128 letters, digits, `.`, `_` or `-`, starting with a letter or
/// digit, so that it can follow `vault:` in a configuration file unquoted.
pub fn check_secret_name(name: &str) -> Result<(), VaultError> {
    let valid = (1..=128).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(VaultError::InvalidName(format!(
            "secret name {name:?} is not valid: use 1 to 128 letters, digits, `.`, `_` or `-`, \
             starting with a letter or digit"
        )))
    }
}

/// The node's key pairs: Ed25519 to sign (audit entries, KLP messages) and X25519 to receive
/// what is sealed to it.
#[derive(Debug)]
pub struct Identity {
    signing: SigningKey,
    agreement: AgreementSecret,
}

impl Identity {
    fn generate() -> Self {
        Self {
            signing: SigningKey::generate(),
            agreement: AgreementSecret::generate(),
        }
    }

    /// The public halves.
    #[must_use]
    pub fn public(&self) -> PublicIdentity {
        PublicIdentity {
            signing: self.signing.verifying_key(),
            agreement: self.agreement.public_key(),
        }
    }

    /// The signing key.
    #[must_use]
    pub fn signing_key(&self) -> &SigningKey {
        &self.signing
    }

    /// The key-agreement key, to open what was sealed to the node.
    #[must_use]
    pub fn agreement_secret(&self) -> &AgreementSecret {
        &self.agreement
    }

    fn to_secret_bytes(&self) -> Zeroizing<[u8; 64]> {
        let mut bytes = Zeroizing::new([0u8; 64]);
        bytes[..32].copy_from_slice(&*self.signing.seed());
        bytes[32..].copy_from_slice(&*self.agreement.to_bytes());
        bytes
    }

    fn from_secret_bytes(bytes: &[u8]) -> Result<Self, VaultError> {
        let (seed, agreement) = bytes
            .split_at_checked(32)
            .filter(|(_, rest)| rest.len() == 32)
            .ok_or_else(|| VaultError::Corrupt("identity".into()))?;
        let seed: Zeroizing<[u8; 32]> = Zeroizing::new(
            seed.try_into()
                .map_err(|_| VaultError::Corrupt("identity".into()))?,
        );
        let agreement: Zeroizing<[u8; 32]> = Zeroizing::new(
            agreement
                .try_into()
                .map_err(|_| VaultError::Corrupt("identity".into()))?,
        );
        Ok(Self {
            signing: SigningKey::from_seed(&seed),
            agreement: AgreementSecret::from_bytes(*agreement),
        })
    }
}

/// The node's public keys, readable without unlocking the vault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicIdentity {
    /// Verifies the node's signatures.
    pub signing: VerifyingKey,
    /// What others seal messages to.
    pub agreement: AgreementPublicKey,
}

impl PublicIdentity {
    /// The node's identifier: its signing key as a `did:key`.
    #[must_use]
    pub fn did(&self) -> String {
        self.signing.did_key()
    }

    /// The node's key id in KLP (`kid:z6Mk…`).
    #[must_use]
    pub fn kid(&self) -> String {
        self.signing.kid()
    }

    fn to_bytes(self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(64);
        bytes.extend_from_slice(&self.signing.to_bytes());
        bytes.extend_from_slice(&self.agreement.to_bytes());
        bytes
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, VaultError> {
        let corrupt = || VaultError::Corrupt("the node's public keys".into());
        let (signing, agreement) = bytes.split_at_checked(32).ok_or_else(corrupt)?;
        let signing: [u8; 32] = signing.try_into().map_err(|_| corrupt())?;
        let agreement: [u8; 32] = agreement.try_into().map_err(|_| corrupt())?;
        Ok(Self {
            signing: VerifyingKey::from_bytes(&signing).map_err(|_| corrupt())?,
            agreement: AgreementPublicKey::from_bytes(agreement),
        })
    }
}

/// What `status` reports.
#[derive(Debug, Clone)]
pub struct VaultStatus {
    /// Whether `kai vault init` has run.
    pub initialized: bool,
    /// Whether this process holds the master key.
    pub unlocked: bool,
    /// The unlockers (`passphrase`, `key_file`).
    pub unlockers: Vec<String>,
    /// The passphrase's Argon2id parameters, if it has one.
    pub kdf: Option<KdfParams>,
    /// The node's public keys.
    pub identity: Option<PublicIdentity>,
    /// When the vault was created.
    pub created_at: Option<OffsetDateTime>,
    /// When the master key last changed.
    pub rotated_at: Option<OffsetDateTime>,
    /// Wrong keys given in a row since the last unlock.
    pub failed_unlocks: u32,
    /// How long the next unlock attempt must wait, after too many wrong keys.
    pub unlock_wait: Option<Duration>,
}

struct Unlocked {
    master_key_id: String,
    master: SymmetricKey,
    identity: Arc<Identity>,
    data_keys: Mutex<HashMap<String, SymmetricKey>>,
}

/// The vault. Cheap to clone: clones share the unlocked state.
#[derive(Clone)]
pub struct Vault {
    store: Store,
    kdf_params: KdfParams,
    state: Arc<RwLock<Option<Arc<Unlocked>>>>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("unlocked", &self.is_unlocked())
            .finish_non_exhaustive()
    }
}

fn master_aad(master_key_id: &str, kind: &str) -> Vec<u8> {
    format!("kai/vault/master-key\0{master_key_id}\0{kind}").into_bytes()
}

fn identity_aad(master_key_id: &str, public: &[u8]) -> Vec<u8> {
    let mut aad = format!("kai/vault/identity\0{master_key_id}\0").into_bytes();
    aad.extend_from_slice(public);
    aad
}

fn data_key_aad(owner: &str) -> Vec<u8> {
    format!("kai/vault/data-key\0{owner}").into_bytes()
}

fn data_aad(owner: &str, context: &[u8]) -> Vec<u8> {
    let mut aad = format!("kai/vault/data\0{owner}\0").into_bytes();
    aad.extend_from_slice(context);
    aad
}

fn secret_aad(id: Uuid, owner: &str, name: &str) -> Vec<u8> {
    format!("kai/vault/secret\0{id}\0{owner}\0{name}").into_bytes()
}

/// Runs a key derivation off the async workers: Argon2id takes a good fraction of a second.
async fn derive(kdf: Kdf, key: UnlockKey) -> Result<SymmetricKey, VaultError> {
    tokio::task::spawn_blocking(move || kdf.derive(&key))
        .await
        .map_err(|err| VaultError::Corrupt(format!("key derivation stopped: {err}")))?
}

impl Vault {
    /// The vault over `store`, locked. New passphrases are stretched with `settings`' Argon2id
    /// parameters.
    #[must_use]
    pub fn new(store: Store, settings: &kai_config::VaultSettings) -> Self {
        Self {
            store,
            kdf_params: KdfParams::from_settings(settings),
            state: Arc::new(RwLock::new(None)),
        }
    }

    fn unlocked(&self) -> Result<Arc<Unlocked>, VaultError> {
        self.state
            .read()
            .map_err(|_| VaultError::Locked)?
            .clone()
            .ok_or(VaultError::Locked)
    }

    /// Whether this process holds the master key.
    #[must_use]
    pub fn is_unlocked(&self) -> bool {
        self.state.read().is_ok_and(|state| state.is_some())
    }

    /// Forgets the master key and every key derived from it (they are zeroized once the last
    /// operation using them ends).
    pub fn lock(&self) {
        if let Ok(mut state) = self.state.write() {
            *state = None;
        }
    }

    /// The vault's state; needs no key.
    pub async fn status(&self) -> Result<VaultStatus, VaultError> {
        let Some(keyring) = self.store.vault_keyring().await? else {
            return Ok(VaultStatus {
                initialized: false,
                unlocked: false,
                unlockers: Vec::new(),
                kdf: None,
                identity: None,
                created_at: None,
                rotated_at: None,
                failed_unlocks: 0,
                unlock_wait: None,
            });
        };
        let unlockers = self.store.vault_unlockers().await?;
        let kdf = unlockers
            .iter()
            .find(|unlocker| unlocker.kind == PASSPHRASE)
            .map(|unlocker| Kdf::from_json(&unlocker.kdf))
            .transpose()?
            .and_then(|kdf| kdf.params());
        Ok(VaultStatus {
            initialized: true,
            unlocked: self.is_unlocked(),
            unlockers: unlockers
                .into_iter()
                .map(|unlocker| unlocker.kind)
                .collect(),
            kdf,
            identity: Some(PublicIdentity::from_bytes(&keyring.identity_public)?),
            created_at: Some(keyring.created_at),
            rotated_at: Some(keyring.rotated_at),
            failed_unlocks: keyring.failed_unlocks,
            unlock_wait: unlock_wait(&keyring),
        })
    }

    /// The node's public keys; needs no key. `None` before `init`.
    pub async fn public_identity(&self) -> Result<Option<PublicIdentity>, VaultError> {
        self.store
            .vault_keyring()
            .await?
            .map(|keyring| PublicIdentity::from_bytes(&keyring.identity_public))
            .transpose()
    }

    /// The node's key pairs, while unlocked.
    pub fn identity(&self) -> Result<Arc<Identity>, VaultError> {
        Ok(self.unlocked()?.identity.clone())
    }

    /// Creates the vault with one or two unlockers, a new master key and a new node identity,
    /// and leaves it unlocked in this process.
    pub async fn init(&self, keys: &[UnlockKey]) -> Result<PublicIdentity, VaultError> {
        if keys.is_empty() {
            return Err(VaultError::KeyFile(
                "the vault needs a passphrase or a key file".into(),
            ));
        }
        for key in keys {
            if let UnlockKey::Passphrase(passphrase) = key {
                passphrase.check_new()?;
            }
        }
        if self.store.vault_keyring().await?.is_some() {
            return Err(VaultError::AlreadyInitialized);
        }
        let master_key_id = Uuid::now_v7().to_string();
        let master = SymmetricKey::generate();
        let mut unlockers = Vec::with_capacity(keys.len());
        for key in keys {
            unlockers.push(self.wrap_master(&master_key_id, &master, key).await?);
        }
        let identity = Identity::generate();
        let public = identity.public();
        let public_bytes = public.to_bytes();
        let node_key = SymmetricKey::generate();
        let node = Owner::Node.as_key();
        let now = OffsetDateTime::now_utc();
        let keyring = KeyringRecord {
            master_key_id: master_key_id.clone(),
            identity_sealed: master.seal(
                &*identity.to_secret_bytes(),
                &identity_aad(&master_key_id, &public_bytes),
            ),
            identity_public: public_bytes,
            failed_unlocks: 0,
            last_failed_unlock: None,
            created_at: now,
            rotated_at: now,
        };
        let node_record = DataKeyRecord {
            wrapped_key: master.wrap(&node_key, &data_key_aad(&node)),
            owner: node.clone(),
        };
        match self
            .store
            .create_vault(&keyring, &unlockers, &node_record)
            .await
        {
            Err(StoreError::Conflict(_)) => return Err(VaultError::AlreadyInitialized),
            other => other?,
        }
        let unlocked = Unlocked {
            master_key_id,
            master,
            identity: Arc::new(identity),
            data_keys: Mutex::new(HashMap::from([(node, node_key)])),
        };
        self.set_unlocked(unlocked);
        Ok(public)
    }

    async fn wrap_master(
        &self,
        master_key_id: &str,
        master: &SymmetricKey,
        key: &UnlockKey,
    ) -> Result<UnlockerRecord, VaultError> {
        let kdf = Kdf::new_for(key, self.kdf_params);
        let unlock_key = derive(kdf.clone(), key.clone()).await?;
        Ok(UnlockerRecord {
            kind: key.kind().into(),
            kdf: kdf.to_json(),
            wrapped_master: unlock_key.wrap(master, &master_aad(master_key_id, key.kind())),
        })
    }

    fn set_unlocked(&self, unlocked: Unlocked) {
        if let Ok(mut state) = self.state.write() {
            *state = Some(Arc::new(unlocked));
        }
    }

    /// Unlocks the vault in this process. Wrong keys are counted in the database, shared by
    /// every process: after five in a row each further attempt must wait, doubling up to 15
    /// minutes, before its key is even tried.
    pub async fn unlock(&self, key: &UnlockKey) -> Result<PublicIdentity, VaultError> {
        let keyring = self
            .store
            .vault_keyring()
            .await?
            .ok_or(VaultError::NotInitialized)?;
        if let Some(wait) = unlock_wait(&keyring) {
            return Err(VaultError::TooManyAttempts(wait));
        }
        let unlockers = self.store.vault_unlockers().await?;
        let unlocker = unlockers
            .iter()
            .find(|unlocker| unlocker.kind == key.kind())
            .ok_or(VaultError::NoSuchUnlocker(key.kind()))?;
        let kdf = Kdf::from_json(&unlocker.kdf)?;
        let unlock_key = derive(kdf, key.clone()).await?;
        let Ok(master) = unlock_key.unwrap_key(
            &unlocker.wrapped_master,
            &master_aad(&keyring.master_key_id, key.kind()),
        ) else {
            let failures = self
                .store
                .vault_unlock_failed(OffsetDateTime::now_utc())
                .await?;
            tracing::info!(failures, kind = key.kind(), "wrong key to unlock the vault");
            return Err(VaultError::WrongKey(key.kind()));
        };
        let identity = self.open_identity(&keyring, &master)?;
        let public = identity.public();
        self.store.vault_unlock_succeeded().await?;
        self.set_unlocked(Unlocked {
            master_key_id: keyring.master_key_id,
            master,
            identity: Arc::new(identity),
            data_keys: Mutex::new(HashMap::new()),
        });
        Ok(public)
    }

    fn open_identity(
        &self,
        keyring: &KeyringRecord,
        master: &SymmetricKey,
    ) -> Result<Identity, VaultError> {
        let bytes = master
            .open(
                &keyring.identity_sealed,
                &identity_aad(&keyring.master_key_id, &keyring.identity_public),
            )
            .map_err(|_| VaultError::Corrupt("the node's sealed identity".into()))?;
        let identity = Identity::from_secret_bytes(&bytes)?;
        if identity.public().to_bytes() != keyring.identity_public {
            return Err(VaultError::Corrupt(
                "the node's public keys do not match its secret keys".into(),
            ));
        }
        Ok(identity)
    }

    /// Adds an unlocker, or replaces the one of its kind (a passphrase change): rewraps the
    /// master key only. Needs the vault unlocked in this process.
    pub async fn set_unlocker(&self, key: &UnlockKey) -> Result<(), VaultError> {
        if let UnlockKey::Passphrase(passphrase) = key {
            passphrase.check_new()?;
        }
        let unlocked = self.unlocked()?;
        let record = self
            .wrap_master(&unlocked.master_key_id, &unlocked.master, key)
            .await?;
        self.store
            .put_vault_unlocker(&unlocked.master_key_id, &record)
            .await
            .map_err(|err| self.stale_on_conflict(err))
    }

    /// Removes the unlocker of `kind` (`passphrase` or `key_file`), unless it is the last.
    pub async fn remove_unlocker(&self, kind: &str) -> Result<(), VaultError> {
        self.unlocked()?;
        let kind = match kind {
            PASSPHRASE => PASSPHRASE,
            KEY_FILE => KEY_FILE,
            other => {
                return Err(VaultError::InvalidName(format!(
                    "unlocker {other:?} is not `passphrase` or `key_file`"
                )));
            }
        };
        if !self
            .store
            .vault_unlockers()
            .await?
            .iter()
            .any(|unlocker| unlocker.kind == kind)
        {
            return Err(VaultError::NoSuchUnlocker(kind));
        }
        if self.store.remove_vault_unlocker(kind).await? {
            Ok(())
        } else {
            Err(VaultError::LastUnlocker)
        }
    }

    /// Replaces the master key: every data key and unlocker is rewrapped under a new one in one
    /// transaction; secrets are untouched. `keys` must hold a key for every unlocker the vault
    /// has (the master key is rewrapped under each), and this process must hold the current
    /// master key.
    pub async fn rotate_master(&self, keys: &[UnlockKey]) -> Result<(), VaultError> {
        let unlocked = self.unlocked()?;
        let keyring = self
            .store
            .vault_keyring()
            .await?
            .ok_or(VaultError::NotInitialized)?;
        if keyring.master_key_id != unlocked.master_key_id {
            self.lock();
            return Err(VaultError::Changed);
        }
        let unlockers = self.store.vault_unlockers().await?;
        // Each unlocker's key is checked against its current wrapping before the new master is
        // wrapped under it: a typo must not become the only way in.
        let new_id = Uuid::now_v7().to_string();
        let new_master = SymmetricKey::generate();
        let mut rewrapped = Vec::with_capacity(unlockers.len());
        for unlocker in &unlockers {
            let key = keys
                .iter()
                .find(|key| key.kind() == unlocker.kind)
                .ok_or_else(|| {
                    VaultError::KeyFile(format!(
                        "rotating the master key needs the vault's {} too, to wrap the new key \
                         under it",
                        kind_name(&unlocker.kind)
                    ))
                })?;
            let current = derive(Kdf::from_json(&unlocker.kdf)?, key.clone()).await?;
            current
                .unwrap_key(
                    &unlocker.wrapped_master,
                    &master_aad(&unlocked.master_key_id, key.kind()),
                )
                .map_err(|_| VaultError::WrongKey(key.kind()))?;
            rewrapped.push(self.wrap_master(&new_id, &new_master, key).await?);
        }
        let mut data_keys = Vec::new();
        for record in self.store.vault_data_keys().await? {
            let key = unlocked
                .master
                .unwrap_key(&record.wrapped_key, &data_key_aad(&record.owner))
                .map_err(|_| VaultError::Corrupt(format!("data key of {}", record.owner)))?;
            data_keys.push(DataKeyRecord {
                wrapped_key: new_master.wrap(&key, &data_key_aad(&record.owner)),
                owner: record.owner,
            });
        }
        let identity_sealed = new_master.seal(
            &*unlocked.identity.to_secret_bytes(),
            &identity_aad(&new_id, &keyring.identity_public),
        );
        let rotated = RotatedKeyring {
            master_key_id: new_id.clone(),
            identity_sealed,
            unlockers: rewrapped,
            data_keys,
        };
        self.store
            .rotate_vault_master(&unlocked.master_key_id, &rotated)
            .await
            .map_err(|err| self.stale_on_conflict(err))?;
        let data_keys = unlocked
            .data_keys
            .lock()
            .map(|keys| keys.clone())
            .unwrap_or_default();
        self.set_unlocked(Unlocked {
            master_key_id: new_id,
            master: new_master,
            identity: unlocked.identity.clone(),
            data_keys: Mutex::new(data_keys),
        });
        Ok(())
    }

    /// A conflict on the keyring means another process rotated the master key: the one this
    /// process holds is stale, so it locks.
    fn stale_on_conflict(&self, err: StoreError) -> VaultError {
        if matches!(err, StoreError::Conflict(_)) {
            self.lock();
        }
        err.into()
    }

    /// `owner`'s data key, created on first use.
    async fn data_key(
        &self,
        unlocked: &Unlocked,
        owner: Owner,
    ) -> Result<SymmetricKey, VaultError> {
        let owner_key = owner.as_key();
        if let Some(key) = unlocked
            .data_keys
            .lock()
            .ok()
            .and_then(|keys| keys.get(&owner_key).cloned())
        {
            return Ok(key);
        }
        let aad = data_key_aad(&owner_key);
        let wrapped = match self.store.vault_data_key(&owner_key).await? {
            Some(wrapped) => wrapped,
            None => {
                let fresh = SymmetricKey::generate();
                let user_id = match owner {
                    Owner::Node => None,
                    Owner::User(_) => Some(owner_key.as_str()),
                };
                self.store
                    .insert_vault_data_key(
                        &unlocked.master_key_id,
                        &DataKeyRecord {
                            owner: owner_key.clone(),
                            wrapped_key: unlocked.master.wrap(&fresh, &aad),
                        },
                        user_id,
                    )
                    .await
                    .map_err(|err| self.stale_on_conflict(err))?
            }
        };
        let key = match unlocked.master.unwrap_key(&wrapped, &aad) {
            Ok(key) => key,
            Err(_) => {
                // Rotated by another process since this one unlocked? Then lock; else the row
                // was tampered with.
                let current = self.store.vault_keyring().await?;
                if current.is_some_and(|keyring| keyring.master_key_id != unlocked.master_key_id) {
                    self.lock();
                    return Err(VaultError::Locked);
                }
                return Err(VaultError::Corrupt(format!("data key of {owner_key}")));
            }
        };
        if let Ok(mut keys) = unlocked.data_keys.lock() {
            keys.insert(owner_key, key.clone());
        }
        Ok(key)
    }

    /// Stores a secret (or replaces its value), sealed under its owner's data key.
    pub async fn put_secret(
        &self,
        owner: Owner,
        name: &str,
        value: &SecretValue,
        description: Option<String>,
    ) -> Result<SecretInfo, VaultError> {
        check_secret_name(name)?;
        if value.expose().is_empty() {
            return Err(VaultError::InvalidValue(
                "the secret's value is empty".into(),
            ));
        }
        if value.expose().len() > MAX_SECRET_LEN {
            return Err(VaultError::InvalidValue(format!(
                "the secret's value is {} bytes; at most {MAX_SECRET_LEN} are kept",
                value.expose().len()
            )));
        }
        let unlocked = self.unlocked()?;
        let key = self.data_key(&unlocked, owner).await?;
        let owner_key = owner.as_key();
        // One retry: a concurrent writer may create the name between the read and the write.
        for _ in 0..2 {
            let existing = self.store.vault_secret(&owner_key, name).await?;
            let now = OffsetDateTime::now_utc();
            let (id, created_at, description) = match &existing {
                Some(record) => (
                    record.id,
                    record.created_at,
                    description.clone().or_else(|| record.description.clone()),
                ),
                None => (Uuid::now_v7(), now, description.clone()),
            };
            let record = SecretRecord {
                id,
                owner: owner_key.clone(),
                name: name.to_owned(),
                description,
                sealed: key.seal(value.expose().as_bytes(), &secret_aad(id, &owner_key, name)),
                created_at,
                updated_at: now,
            };
            match self.store.put_vault_secret(&record).await {
                Ok(()) => return Ok(record.into()),
                Err(StoreError::Conflict(_)) => continue,
                Err(err) => return Err(err.into()),
            }
        }
        Err(VaultError::Changed)
    }

    /// Seals `data` under `owner`'s data key, bound to `context` (what the data is and whose:
    /// opening it under another context fails). For private data kept outside the vault's
    /// own tables, such as memory.
    pub async fn seal_data(
        &self,
        owner: Owner,
        data: &[u8],
        context: &[u8],
    ) -> Result<Vec<u8>, VaultError> {
        let unlocked = self.unlocked()?;
        let key = self.data_key(&unlocked, owner).await?;
        Ok(key.seal(data, &data_aad(&owner.as_key(), context)))
    }

    /// Opens what [`Vault::seal_data`] sealed for `owner` under `context`.
    pub async fn open_data(
        &self,
        owner: Owner,
        sealed: &[u8],
        context: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let unlocked = self.unlocked()?;
        let key = self.data_key(&unlocked, owner).await?;
        key.open(sealed, &data_aad(&owner.as_key(), context))
            .map_err(|_| VaultError::Corrupt("sealed data that does not open".into()))
    }

    /// `owner`'s secret called `name`, opened; `None` if there is none.
    pub async fn get_secret(
        &self,
        owner: Owner,
        name: &str,
    ) -> Result<Option<(SecretInfo, SecretValue)>, VaultError> {
        check_secret_name(name)?;
        let unlocked = self.unlocked()?;
        let owner_key = owner.as_key();
        let Some(record) = self.store.vault_secret(&owner_key, name).await? else {
            return Ok(None);
        };
        let key = self.data_key(&unlocked, owner).await?;
        let value = key
            .open(&record.sealed, &secret_aad(record.id, &owner_key, name))
            .map_err(|_| VaultError::Corrupt(format!("secret {name}")))?;
        let value = String::from_utf8(value.to_vec())
            .map_err(|_| VaultError::Corrupt(format!("secret {name}")))?;
        Ok(Some((record.into(), SecretValue::new(value))))
    }

    /// `owner`'s secrets, names and metadata only; needs no key.
    pub async fn list_secrets(&self, owner: Owner) -> Result<Vec<SecretInfo>, VaultError> {
        Ok(self
            .store
            .vault_secrets(&owner.as_key())
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// Deletes `owner`'s secret called `name`; `false` if there was none. Needs no key.
    pub async fn delete_secret(&self, owner: Owner, name: &str) -> Result<bool, VaultError> {
        check_secret_name(name)?;
        Ok(self
            .store
            .delete_vault_secret(&owner.as_key(), name)
            .await?)
    }
}

impl From<Passphrase> for UnlockKey {
    fn from(passphrase: Passphrase) -> Self {
        UnlockKey::Passphrase(passphrase)
    }
}
