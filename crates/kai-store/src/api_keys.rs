//! API keys: long-lived credentials for programs, stored as SHA-256 hashes.

use kai_core::{ApiKey, ApiKeyId, Scopes, UserId};
use time::OffsetDateTime;

use crate::row::Columns;
use crate::truncate;
use crate::users::{UserRecord, user_columns, user_record};
use crate::{Store, StoreError, from_millis, millis, with_pool};

macro_rules! key_columns {
    () => {
        "api_keys.id AS key_id, api_keys.user_id AS key_user_id, api_keys.name, api_keys.prefix, \
         api_keys.scopes, api_keys.created_at AS key_created_at, api_keys.expires_at, \
         api_keys.last_used_at, api_keys.revoked_at"
    };
}

/// An API key to store.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    /// The key's owner.
    pub user_id: UserId,
    /// The owner's name for it.
    pub name: String,
    /// Its first characters, for recognising it.
    pub prefix: String,
    /// SHA-256 of the whole key.
    pub key_hash: [u8; 32],
    /// What it may do.
    pub scopes: Scopes,
    /// When it stops working, if ever.
    pub expires_at: Option<OffsetDateTime>,
}

fn api_key(row: &impl Columns) -> Result<ApiKey, StoreError> {
    let corrupt = |message: String| StoreError::Corrupt {
        table: "api_keys",
        message,
    };
    let id = row.text("key_id")?;
    let user_id = row.text("key_user_id")?;
    let scopes = row.text("scopes")?;
    Ok(ApiKey {
        id: id
            .parse()
            .map_err(|_| corrupt(format!("id `{id}` is not a UUID")))?,
        user_id: user_id
            .parse()
            .map_err(|_| corrupt(format!("key {id}: bad user id")))?,
        name: row.text("name")?,
        prefix: row.text("prefix")?,
        scopes: Scopes::parse(scopes.split_whitespace())
            .map_err(|err| corrupt(format!("key {id}: {err}")))?,
        created_at: from_millis(row.int("key_created_at")?),
        expires_at: row.opt_int("expires_at")?.map(from_millis),
        last_used_at: row.opt_int("last_used_at")?.map(from_millis),
        revoked_at: row.opt_int("revoked_at")?.map(from_millis),
    })
}

impl Store {
    /// Stores a new key.
    pub async fn create_api_key(&self, new: &NewApiKey) -> Result<ApiKey, StoreError> {
        let key = ApiKey {
            id: ApiKeyId::new(),
            user_id: new.user_id,
            name: new.name.clone(),
            prefix: new.prefix.clone(),
            scopes: new.scopes,
            created_at: truncate(OffsetDateTime::now_utc()),
            expires_at: new.expires_at.map(truncate),
            last_used_at: None,
            revoked_at: None,
        };
        let result = with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO api_keys (id, user_id, name, prefix, key_hash, scopes, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(key.id.to_string())
            .bind(key.user_id.to_string())
            .bind(&key.name)
            .bind(&key.prefix)
            .bind(&new.key_hash[..])
            .bind(key.scopes.to_string())
            .bind(millis(key.created_at))
            .bind(key.expires_at.map(millis))
            .execute(pool)
            .await
            .map(|_| ())
        });
        match result {
            Ok(()) => Ok(key),
            // 256 random bits do not collide; a clash means the same key was stored twice.
            Err(err) if crate::is_unique_violation(&err) => {
                Err(StoreError::Conflict("an API key with that hash"))
            }
            Err(err) => Err(err.into()),
        }
    }

    /// The user's keys, revoked ones included, oldest first.
    pub async fn api_keys_of(&self, user_id: UserId) -> Result<Vec<ApiKey>, StoreError> {
        with_pool!(self, |pool| {
            let rows = sqlx::query(concat!(
                "SELECT ",
                key_columns!(),
                " FROM api_keys WHERE user_id = $1 ORDER BY id"
            ))
            .bind(user_id.to_string())
            .fetch_all(pool)
            .await?;
            rows.iter().map(api_key).collect()
        })
    }

    /// One of the user's keys. Another user's key is `None`, exactly like a missing one.
    pub async fn api_key_of(
        &self,
        user_id: UserId,
        id: ApiKeyId,
    ) -> Result<Option<ApiKey>, StoreError> {
        with_pool!(self, |pool| {
            let row = sqlx::query(concat!(
                "SELECT ",
                key_columns!(),
                " FROM api_keys WHERE id = $1 AND user_id = $2"
            ))
            .bind(id.to_string())
            .bind(user_id.to_string())
            .fetch_optional(pool)
            .await?;
            row.as_ref().map(api_key).transpose()
        })
    }

    /// Revokes one of the user's keys (again, if already revoked: the first time is kept).
    /// `None` if the user has no such key.
    pub async fn revoke_api_key(
        &self,
        user_id: UserId,
        id: ApiKeyId,
    ) -> Result<Option<ApiKey>, StoreError> {
        let now = millis(OffsetDateTime::now_utc());
        with_pool!(self, |pool| {
            let row = sqlx::query(concat!(
                "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $3) WHERE id = $1 AND user_id = $2 RETURNING ",
                key_columns!()
            ))
            .bind(id.to_string())
            .bind(user_id.to_string())
            .bind(now)
            .fetch_optional(pool)
            .await?;
            row.as_ref().map(api_key).transpose()
        })
    }

    /// The key whose SHA-256 is `key_hash`, with its owner: one indexed lookup, the hot path of
    /// every request made with an API key.
    pub async fn api_key_by_hash(
        &self,
        key_hash: &[u8; 32],
    ) -> Result<Option<(ApiKey, UserRecord)>, StoreError> {
        with_pool!(self, |pool| {
            let row = sqlx::query(concat!(
                "SELECT ",
                key_columns!(),
                ", ",
                user_columns!(),
                " FROM api_keys JOIN users ON users.id = api_keys.user_id WHERE api_keys.key_hash = $1"
            ))
            .bind(&key_hash[..])
            .fetch_optional(pool)
            .await?;
            row.map(|row| Ok((api_key(&row)?, user_record(&row)?)))
                .transpose()
        })
    }

    /// Records that the key was used at `at`, unless that was already recorded after
    /// `stale_before`. Callers pass a `stale_before` a minute or so back, so a busy key costs one
    /// write a minute rather than one per request.
    pub async fn touch_api_key(
        &self,
        id: ApiKeyId,
        at: OffsetDateTime,
        stale_before: OffsetDateTime,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE api_keys SET last_used_at = $2 \
                 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $3)",
            )
            .bind(id.to_string())
            .bind(millis(at))
            .bind(millis(stale_before))
            .execute(pool)
            .await?;
        });
        Ok(())
    }
}
