//! The vault's rows. The store sees only opaque blobs: wrapping, sealing and the associated data
//! that binds each blob to its row are `kai-vault`'s. What the store guarantees is that every
//! change to the key hierarchy is one transaction, checked against the master key it was
//! computed from, so that a crash or a concurrent change leaves the old state or the new one.

use time::OffsetDateTime;
use uuid::Uuid;

use crate::row::Columns;
use crate::{Store, StoreError, crash_point, from_millis, is_unique_violation, millis, with_pool};

/// The vault's one keyring row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyringRecord {
    /// Changes with every rotation of the master key; bound into everything wrapped under it.
    pub master_key_id: String,
    /// The node's public keys: Ed25519 (32 bytes) then X25519 (32 bytes).
    pub identity_public: Vec<u8>,
    /// The node's secret keys, sealed under the master key.
    pub identity_sealed: Vec<u8>,
    /// Wrong passphrases or key files since the last success.
    pub failed_unlocks: u32,
    /// When the last of them was tried.
    pub last_failed_unlock: Option<OffsetDateTime>,
    /// When the vault was created.
    pub created_at: OffsetDateTime,
    /// When the master key last changed (its creation, at first).
    pub rotated_at: OffsetDateTime,
}

/// One way to unlock the master key: a passphrase or a key file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnlockerRecord {
    /// `passphrase` or `key_file`.
    pub kind: String,
    /// How the unlocker's key is derived (JSON; Argon2id parameters and salt for a passphrase).
    pub kdf: String,
    /// The master key, wrapped under the unlocker's key.
    pub wrapped_master: Vec<u8>,
}

/// An owner's data key, wrapped under the master key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataKeyRecord {
    /// `node`, or a user's id.
    pub owner: String,
    /// The key, wrapped under the master key.
    pub wrapped_key: Vec<u8>,
}

/// A secret's row: its name and metadata, and its value sealed under its owner's data key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRecord {
    /// The secret's id, bound into its sealed value.
    pub id: Uuid,
    /// `node`, or a user's id.
    pub owner: String,
    /// The name its owner gave it.
    pub name: String,
    /// What it is for.
    pub description: Option<String>,
    /// The value, sealed. Empty in listings, which never read values.
    pub sealed: Vec<u8>,
    /// When it was first stored.
    pub created_at: OffsetDateTime,
    /// When its value last changed.
    pub updated_at: OffsetDateTime,
}

/// What a rotation of the master key writes: everything that was wrapped under the old one.
#[derive(Debug, Clone)]
pub struct RotatedKeyring {
    /// The new master key's id.
    pub master_key_id: String,
    /// The identity, sealed under the new master key.
    pub identity_sealed: Vec<u8>,
    /// Every unlocker, wrapping the new master key.
    pub unlockers: Vec<UnlockerRecord>,
    /// Every data key, wrapped under the new master key.
    pub data_keys: Vec<DataKeyRecord>,
}

fn keyring_from_row(row: &impl Columns) -> Result<KeyringRecord, sqlx::Error> {
    Ok(KeyringRecord {
        master_key_id: row.text("master_key_id")?,
        identity_public: row.blob("identity_public")?,
        identity_sealed: row.blob("identity_sealed")?,
        failed_unlocks: u32::try_from(row.int("failed_unlocks")?).unwrap_or(u32::MAX),
        last_failed_unlock: row.opt_int("last_failed_unlock")?.map(from_millis),
        created_at: from_millis(row.int("created_at")?),
        rotated_at: from_millis(row.int("rotated_at")?),
    })
}

fn secret_from_row(row: &impl Columns) -> Result<SecretRecord, StoreError> {
    let id = row.text("id")?;
    Ok(SecretRecord {
        id: id.parse().map_err(|_| StoreError::Corrupt {
            table: "vault_secrets",
            message: format!("id {id:?} is not a UUID"),
        })?,
        owner: row.text("owner")?,
        name: row.text("name")?,
        description: row.opt_text("description")?,
        sealed: row.opt_blob("sealed")?.unwrap_or_default(),
        created_at: from_millis(row.int("created_at")?),
        updated_at: from_millis(row.int("updated_at")?),
    })
}

/// The keyring row changed under a change computed from it: someone else rotated the master key
/// meanwhile. Read again and redo.
const MASTER_KEY_CHANGED: StoreError = StoreError::Conflict("a change to the vault's master key");

/// Starts a transaction's writes by touching the keyring row, failing if its master key is no
/// longer the one the caller computed its change from. Writing first also takes SQLite's write
/// lock up front and PostgreSQL's row lock, so a rotation cannot interleave.
macro_rules! lock_keyring {
    ($tx:expr, $master_key_id:expr) => {{
        let locked = sqlx::query(
            "UPDATE vault_keyring SET rotated_at = rotated_at WHERE id = 1 AND master_key_id = $1",
        )
        .bind($master_key_id)
        .execute($tx)
        .await?
        .rows_affected();
        if locked != 1 {
            return Err(MASTER_KEY_CHANGED);
        }
    }};
}

/// Inserts unlocker rows inside a transaction.
macro_rules! insert_unlockers {
    ($tx:expr, $unlockers:expr, $now:expr) => {
        for unlocker in $unlockers {
            sqlx::query(
                "INSERT INTO vault_unlockers (kind, kdf, wrapped_master, updated_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(&unlocker.kind)
            .bind(&unlocker.kdf)
            .bind(&unlocker.wrapped_master)
            .bind($now)
            .execute($tx)
            .await?;
        }
    };
}

impl Store {
    /// The keyring, or `None` before `kai vault init`.
    pub async fn vault_keyring(&self) -> Result<Option<KeyringRecord>, StoreError> {
        with_pool!(self, |pool| {
            let row = sqlx::query("SELECT * FROM vault_keyring WHERE id = 1")
                .fetch_optional(pool)
                .await?;
            Ok(row.as_ref().map(keyring_from_row).transpose()?)
        })
    }

    /// Every unlocker.
    pub async fn vault_unlockers(&self) -> Result<Vec<UnlockerRecord>, StoreError> {
        with_pool!(self, |pool| {
            let rows =
                sqlx::query("SELECT kind, kdf, wrapped_master FROM vault_unlockers ORDER BY kind")
                    .fetch_all(pool)
                    .await?;
            rows.iter()
                .map(|row| {
                    Ok(UnlockerRecord {
                        kind: row.text("kind")?,
                        kdf: row.text("kdf")?,
                        wrapped_master: row.blob("wrapped_master")?,
                    })
                })
                .collect()
        })
    }

    /// Creates the vault: its keyring, unlockers and the node's data key, in one transaction.
    /// [`StoreError::Conflict`] (`vault`) if one exists.
    pub async fn create_vault(
        &self,
        keyring: &KeyringRecord,
        unlockers: &[UnlockerRecord],
        node_key: &DataKeyRecord,
    ) -> Result<(), StoreError> {
        let now = millis(keyring.created_at);
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let inserted = sqlx::query(
                "INSERT INTO vault_keyring (id, master_key_id, identity_public, identity_sealed, \
                 failed_unlocks, last_failed_unlock, created_at, rotated_at) \
                 VALUES (1, $1, $2, $3, 0, NULL, $4, $4)",
            )
            .bind(&keyring.master_key_id)
            .bind(&keyring.identity_public)
            .bind(&keyring.identity_sealed)
            .bind(now)
            .execute(&mut *tx)
            .await;
            match inserted {
                Err(err) if is_unique_violation(&err) => return Err(StoreError::Conflict("vault")),
                other => other?,
            };
            insert_unlockers!(&mut *tx, unlockers, now);
            sqlx::query(
                "INSERT INTO vault_data_keys (owner, user_id, wrapped_key, created_at) \
                 VALUES ($1, NULL, $2, $3)",
            )
            .bind(&node_key.owner)
            .bind(&node_key.wrapped_key)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Counts a wrong passphrase or key file; returns how many there have been in a row.
    pub async fn vault_unlock_failed(&self, at: OffsetDateTime) -> Result<u32, StoreError> {
        with_pool!(self, |pool| {
            let count: Option<i64> = sqlx::query_scalar(
                "UPDATE vault_keyring SET failed_unlocks = failed_unlocks + 1, \
                 last_failed_unlock = $1 WHERE id = 1 RETURNING failed_unlocks",
            )
            .bind(millis(at))
            .fetch_optional(pool)
            .await?;
            Ok(count.map_or(0, |count| u32::try_from(count).unwrap_or(u32::MAX)))
        })
    }

    /// Forgets the failed unlocks after a successful one.
    pub async fn vault_unlock_succeeded(&self) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE vault_keyring SET failed_unlocks = 0, last_failed_unlock = NULL \
                 WHERE id = 1 AND failed_unlocks <> 0",
            )
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Adds or replaces an unlocker (a passphrase change, a new key file), provided the master
    /// key is still `master_key_id`. One row in one transaction: a crash leaves the old unlocker
    /// or the new one.
    pub async fn put_vault_unlocker(
        &self,
        master_key_id: &str,
        unlocker: &UnlockerRecord,
    ) -> Result<(), StoreError> {
        let now = millis(OffsetDateTime::now_utc());
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            lock_keyring!(&mut *tx, master_key_id);
            sqlx::query(
                "INSERT INTO vault_unlockers (kind, kdf, wrapped_master, updated_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (kind) DO UPDATE SET kdf = excluded.kdf, \
                 wrapped_master = excluded.wrapped_master, updated_at = excluded.updated_at",
            )
            .bind(&unlocker.kind)
            .bind(&unlocker.kdf)
            .bind(&unlocker.wrapped_master)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            crash_point("vault-rekey:written");
            tx.commit().await?;
            crash_point("vault-rekey:committed");
            Ok(())
        })
    }

    /// Removes an unlocker, unless it is the last: the vault would never open again.
    pub async fn remove_vault_unlocker(&self, kind: &str) -> Result<bool, StoreError> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let removed = sqlx::query(
                "DELETE FROM vault_unlockers WHERE kind = $1 \
                 AND (SELECT COUNT(*) FROM vault_unlockers) > 1",
            )
            .bind(kind)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
            Ok(removed > 0)
        })
    }

    /// Replaces the master key: the keyring, every unlocker and every data key, in one
    /// transaction, provided the master key is still `old_master_key_id` and `rotated` holds
    /// every data key there is. Secrets are untouched: they are sealed under data keys, which
    /// keep their values.
    pub async fn rotate_vault_master(
        &self,
        old_master_key_id: &str,
        rotated: &RotatedKeyring,
    ) -> Result<(), StoreError> {
        let now = millis(OffsetDateTime::now_utc());
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let updated = sqlx::query(
                "UPDATE vault_keyring SET master_key_id = $1, identity_sealed = $2, \
                 rotated_at = $3 WHERE id = 1 AND master_key_id = $4",
            )
            .bind(&rotated.master_key_id)
            .bind(&rotated.identity_sealed)
            .bind(now)
            .bind(old_master_key_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if updated != 1 {
                return Err(MASTER_KEY_CHANGED);
            }
            crash_point("vault-rotate:keyring");
            for key in &rotated.data_keys {
                let updated =
                    sqlx::query("UPDATE vault_data_keys SET wrapped_key = $1 WHERE owner = $2")
                        .bind(&key.wrapped_key)
                        .bind(&key.owner)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                if updated != 1 {
                    return Err(MASTER_KEY_CHANGED);
                }
            }
            let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM vault_data_keys")
                .fetch_one(&mut *tx)
                .await?;
            if usize::try_from(total).ok() != Some(rotated.data_keys.len()) {
                return Err(MASTER_KEY_CHANGED);
            }
            crash_point("vault-rotate:data-keys");
            sqlx::query("DELETE FROM vault_unlockers")
                .execute(&mut *tx)
                .await?;
            insert_unlockers!(&mut *tx, &rotated.unlockers, now);
            crash_point("vault-rotate:unlockers");
            tx.commit().await?;
            crash_point("vault-rotate:committed");
            Ok(())
        })
    }

    /// Every data key.
    pub async fn vault_data_keys(&self) -> Result<Vec<DataKeyRecord>, StoreError> {
        with_pool!(self, |pool| {
            let rows = sqlx::query("SELECT owner, wrapped_key FROM vault_data_keys ORDER BY owner")
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|row| {
                    Ok(DataKeyRecord {
                        owner: row.text("owner")?,
                        wrapped_key: row.blob("wrapped_key")?,
                    })
                })
                .collect()
        })
    }

    /// `owner`'s data key, if it has one yet.
    pub async fn vault_data_key(&self, owner: &str) -> Result<Option<Vec<u8>>, StoreError> {
        with_pool!(self, |pool| {
            let key: Option<Vec<u8>> =
                sqlx::query_scalar("SELECT wrapped_key FROM vault_data_keys WHERE owner = $1")
                    .bind(owner)
                    .fetch_optional(pool)
                    .await?;
            Ok(key)
        })
    }

    /// Stores `key` as `owner`'s data key unless it has one already, provided the master key is
    /// still `master_key_id`; returns the key stored, which is another process's if it won.
    /// `user_id` ties a user's key (and so their secrets) to their account.
    pub async fn insert_vault_data_key(
        &self,
        master_key_id: &str,
        key: &DataKeyRecord,
        user_id: Option<&str>,
    ) -> Result<Vec<u8>, StoreError> {
        let now = millis(OffsetDateTime::now_utc());
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            lock_keyring!(&mut *tx, master_key_id);
            sqlx::query(
                "INSERT INTO vault_data_keys (owner, user_id, wrapped_key, created_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (owner) DO NOTHING",
            )
            .bind(&key.owner)
            .bind(user_id)
            .bind(&key.wrapped_key)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let stored: Vec<u8> =
                sqlx::query_scalar("SELECT wrapped_key FROM vault_data_keys WHERE owner = $1")
                    .bind(&key.owner)
                    .fetch_one(&mut *tx)
                    .await?;
            tx.commit().await?;
            Ok(stored)
        })
    }

    /// `owner`'s secret called `name`, value included.
    pub async fn vault_secret(
        &self,
        owner: &str,
        name: &str,
    ) -> Result<Option<SecretRecord>, StoreError> {
        with_pool!(self, |pool| {
            let row = sqlx::query("SELECT * FROM vault_secrets WHERE owner = $1 AND name = $2")
                .bind(owner)
                .bind(name)
                .fetch_optional(pool)
                .await?;
            row.as_ref().map(secret_from_row).transpose()
        })
    }

    /// `owner`'s secrets by name, without their values.
    pub async fn vault_secrets(&self, owner: &str) -> Result<Vec<SecretRecord>, StoreError> {
        with_pool!(self, |pool| {
            let rows = sqlx::query(
                "SELECT id, owner, name, description, NULL AS sealed, created_at, updated_at \
                 FROM vault_secrets WHERE owner = $1 ORDER BY name",
            )
            .bind(owner)
            .fetch_all(pool)
            .await?;
            rows.iter().map(secret_from_row).collect()
        })
    }

    /// Stores a secret, or replaces the value of the one with its owner and name, provided that
    /// one has the same id (its value is sealed to the id). [`StoreError::Conflict`]
    /// (`secret`) when another writer created or replaced it meanwhile with another id.
    pub async fn put_vault_secret(&self, secret: &SecretRecord) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            let written = sqlx::query(
                "INSERT INTO vault_secrets (id, owner, name, description, sealed, created_at, \
                 updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (owner, name) DO UPDATE SET sealed = excluded.sealed, \
                 description = excluded.description, updated_at = excluded.updated_at \
                 WHERE vault_secrets.id = excluded.id",
            )
            .bind(secret.id.to_string())
            .bind(&secret.owner)
            .bind(&secret.name)
            .bind(secret.description.as_deref())
            .bind(&secret.sealed)
            .bind(millis(secret.created_at))
            .bind(millis(secret.updated_at))
            .execute(pool)
            .await;
            match written {
                Ok(done) if done.rows_affected() == 1 => Ok(()),
                Ok(_) => Err(StoreError::Conflict("secret")),
                Err(err) if is_unique_violation(&err) => Err(StoreError::Conflict("secret")),
                Err(err) => Err(err.into()),
            }
        })
    }

    /// Deletes `owner`'s secret called `name`; `false` if there was none.
    pub async fn delete_vault_secret(&self, owner: &str, name: &str) -> Result<bool, StoreError> {
        with_pool!(self, |pool| {
            let deleted = sqlx::query("DELETE FROM vault_secrets WHERE owner = $1 AND name = $2")
                .bind(owner)
                .bind(name)
                .execute(pool)
                .await?
                .rows_affected();
            Ok(deleted > 0)
        })
    }
}
