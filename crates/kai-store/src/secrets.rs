//! Secrets the server generates for itself, such as the key that signs access tokens. Kept in
//! the database so that every process sharing it agrees on them.

use time::OffsetDateTime;

use crate::{Store, StoreError, millis, with_pool};

impl Store {
    /// The secret called `name`, created from `generate` if there is none yet. Safe against
    /// concurrent first starts: whichever process inserts first wins, and all read its value.
    pub async fn server_secret(
        &self,
        name: &str,
        generate: impl FnOnce() -> Vec<u8>,
    ) -> Result<Vec<u8>, StoreError> {
        let candidate = generate();
        let now = millis(OffsetDateTime::now_utc());
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO server_secrets (name, value, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind(name)
            .bind(&candidate)
            .bind(now)
            .execute(pool)
            .await?;
            let value: Vec<u8> =
                sqlx::query_scalar("SELECT value FROM server_secrets WHERE name = $1")
                    .bind(name)
                    .fetch_one(pool)
                    .await?;
            Ok(value)
        })
    }
}
