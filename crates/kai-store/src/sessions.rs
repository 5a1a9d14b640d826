//! Login sessions and their refresh tokens.
//!
//! A session is one login: a family of refresh tokens, each used once and replaced by the next.
//! Tokens are stored as SHA-256 hashes, never in the clear. A used token stays on file until it
//! expires, so that presenting it again is recognised as theft and ends the whole session.

use kai_core::{SessionId, UserId};
use time::OffsetDateTime;

use crate::row::Columns;
use crate::users::{UserRecord, user_columns, user_record};
use crate::{Store, StoreError, from_millis, millis, with_pool};

/// A session joined to its user, selected by `sessions.id = $1`.
macro_rules! select_session_with_user {
    () => {
        concat!(
            "SELECT ",
            session_columns!(),
            ", ",
            user_columns!(),
            " FROM sessions JOIN users ON users.id = sessions.user_id WHERE sessions.id = $1"
        )
    };
}

macro_rules! session_columns {
    () => {
        "sessions.id AS session_id, sessions.user_id AS session_user_id, \
         sessions.created_at AS session_created_at, sessions.refreshed_at, sessions.revoked_at, \
         sessions.revoked_reason, sessions.client_addr, sessions.user_agent"
    };
}

/// A login session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The session (token family) id.
    pub id: SessionId,
    /// Whose session it is.
    pub user_id: UserId,
    /// When the user logged in.
    pub created_at: OffsetDateTime,
    /// When a refresh token of this session was last exchanged.
    pub refreshed_at: OffsetDateTime,
    /// When the session ended (logout, reuse of a refresh token, password change), if it did.
    pub revoked_at: Option<OffsetDateTime>,
    /// Why it ended.
    pub revoked_reason: Option<String>,
    /// The client address at login.
    pub client_addr: Option<String>,
    /// The client's `User-Agent` at login.
    pub user_agent: Option<String>,
}

/// A session to open.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// Whose session.
    pub user_id: UserId,
    /// The client address at login.
    pub client_addr: Option<String>,
    /// The client's `User-Agent` at login.
    pub user_agent: Option<String>,
    /// SHA-256 of the first refresh token.
    pub refresh_token_hash: [u8; 32],
    /// When that token expires.
    pub refresh_expires_at: OffsetDateTime,
    /// The password hash the login was checked against. The session opens only if it is still
    /// the user's and the user is still enabled, so a login racing a password change or a
    /// disabling loses.
    pub verified_password_hash: String,
}

/// What exchanging a refresh token came to.
#[derive(Debug, Clone)]
pub enum RotateOutcome {
    /// The token was valid; it is now used, and the new one stored.
    Rotated {
        /// The session, still open.
        session: Session,
        /// Its user (boxed: the other outcomes are small).
        user: Box<UserRecord>,
    },
    /// The token had been used before: the session is now revoked.
    Reused(SessionId),
    /// The token's session had already ended.
    Revoked(SessionId),
    /// The token expired.
    Expired,
    /// No such token.
    Unknown,
}

fn session(row: &impl Columns) -> Result<Session, StoreError> {
    let corrupt = |message: String| StoreError::Corrupt {
        table: "sessions",
        message,
    };
    let id = row.text("session_id")?;
    let user_id = row.text("session_user_id")?;
    Ok(Session {
        id: id
            .parse()
            .map_err(|_| corrupt(format!("id `{id}` is not a UUID")))?,
        user_id: user_id
            .parse()
            .map_err(|_| corrupt(format!("session {id}: bad user id")))?,
        created_at: from_millis(row.int("session_created_at")?),
        refreshed_at: from_millis(row.int("refreshed_at")?),
        revoked_at: row.opt_int("revoked_at")?.map(from_millis),
        revoked_reason: row.opt_text("revoked_reason")?,
        client_addr: row.opt_text("client_addr")?,
        user_agent: row.opt_text("user_agent")?,
    })
}

impl Store {
    /// Opens a session with its first refresh token. `None` if the user's password changed, or
    /// the user was disabled or deleted, since the login checked it.
    pub async fn create_session(&self, new: &NewSession) -> Result<Option<Session>, StoreError> {
        let now = crate::truncate(OffsetDateTime::now_utc());
        let session = Session {
            id: SessionId::new(),
            user_id: new.user_id,
            created_at: now,
            refreshed_at: now,
            revoked_at: None,
            revoked_reason: None,
            client_addr: new.client_addr.clone(),
            user_agent: new.user_agent.clone(),
        };
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let opened = sqlx::query(
                "INSERT INTO sessions (id, user_id, created_at, refreshed_at, client_addr, user_agent) \
                 SELECT $1, $2, $3, $3, $4, $5 WHERE EXISTS \
                 (SELECT 1 FROM users WHERE id = $2 AND password_hash = $6 AND disabled = $7)",
            )
            .bind(session.id.to_string())
            .bind(session.user_id.to_string())
            .bind(millis(now))
            .bind(session.client_addr.as_deref())
            .bind(session.user_agent.as_deref())
            .bind(&new.verified_password_hash)
            .bind(false)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if opened == 0 {
                tx.rollback().await?;
                return Ok(None);
            }
            sqlx::query(
                "INSERT INTO refresh_tokens (token_hash, session_id, issued_at, expires_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(&new.refresh_token_hash[..])
            .bind(session.id.to_string())
            .bind(millis(now))
            .bind(millis(new.refresh_expires_at))
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        Ok(Some(session))
    }

    /// Exchanges the refresh token hashed as `old_hash` for one hashed as `new_hash`, in one
    /// transaction: of two concurrent exchanges of the same token, exactly one succeeds, and the
    /// other is treated as reuse.
    pub async fn rotate_refresh_token(
        &self,
        old_hash: &[u8; 32],
        new_hash: &[u8; 32],
        new_expires_at: OffsetDateTime,
    ) -> Result<RotateOutcome, StoreError> {
        let now = millis(OffsetDateTime::now_utc());
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            // A write first, so that SQLite takes its write lock at once rather than upgrading
            // from a read lock later, which can fail under contention.
            let claimed: Option<String> = sqlx::query_scalar(
                "UPDATE refresh_tokens SET used_at = $2 \
                 WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 RETURNING session_id",
            )
            .bind(&old_hash[..])
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;

            let Some(session_id) = claimed else {
                let existing: Option<(String, Option<i64>)> = sqlx::query_as(
                    "SELECT session_id, used_at FROM refresh_tokens WHERE token_hash = $1",
                )
                .bind(&old_hash[..])
                .fetch_optional(&mut *tx)
                .await?;
                let outcome = match existing {
                    None => RotateOutcome::Unknown,
                    Some((_, None)) => RotateOutcome::Expired,
                    Some((session_id, Some(_))) => {
                        sqlx::query(
                            "UPDATE sessions SET revoked_at = $2, revoked_reason = $3 \
                             WHERE id = $1 AND revoked_at IS NULL",
                        )
                        .bind(&session_id)
                        .bind(now)
                        .bind("refresh token reused")
                        .execute(&mut *tx)
                        .await?;
                        RotateOutcome::Reused(parse_session_id(&session_id)?)
                    }
                };
                tx.commit().await?;
                return Ok(outcome);
            };

            let row = sqlx::query(select_session_with_user!())
                .bind(&session_id)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(row) = row else {
                tx.commit().await?;
                return Ok(RotateOutcome::Unknown);
            };
            let mut session = session(&row)?;
            let user = user_record(&row)?;
            if session.revoked_at.is_some() {
                tx.commit().await?;
                return Ok(RotateOutcome::Revoked(session.id));
            }
            sqlx::query(
                "INSERT INTO refresh_tokens (token_hash, session_id, issued_at, expires_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(&new_hash[..])
            .bind(&session_id)
            .bind(now)
            .bind(millis(new_expires_at))
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE sessions SET refreshed_at = $2 WHERE id = $1")
                .bind(&session_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            session.refreshed_at = from_millis(now);
            Ok(RotateOutcome::Rotated {
                session,
                user: Box::new(user),
            })
        })
    }

    /// The session with its user, as access-token checks need them.
    pub async fn session_with_user(
        &self,
        id: SessionId,
    ) -> Result<Option<(Session, UserRecord)>, StoreError> {
        with_pool!(self, |pool| {
            let row = sqlx::query(select_session_with_user!())
                .bind(id.to_string())
                .fetch_optional(pool)
                .await?;
            row.map(|row| Ok((session(&row)?, user_record(&row)?)))
                .transpose()
        })
    }

    /// Ends the session that the refresh token hashed as `token_hash` belongs to. Returns the
    /// session's id, or `None` if the token is unknown.
    pub async fn revoke_session_of_token(
        &self,
        token_hash: &[u8; 32],
        reason: &str,
    ) -> Result<Option<SessionId>, StoreError> {
        let now = millis(OffsetDateTime::now_utc());
        let session_id: Option<String> = with_pool!(self, |pool| {
            sqlx::query_scalar(
                "UPDATE sessions SET revoked_at = COALESCE(revoked_at, $2), \
                     revoked_reason = COALESCE(revoked_reason, $3) \
                 WHERE id = (SELECT session_id FROM refresh_tokens WHERE token_hash = $1) \
                 RETURNING id",
            )
            .bind(&token_hash[..])
            .bind(now)
            .bind(reason)
            .fetch_optional(pool)
            .await?
        });
        session_id.as_deref().map(parse_session_id).transpose()
    }

    /// Ends every open session of a user ("log out everywhere"). Returns how many ended.
    pub async fn revoke_user_sessions(
        &self,
        user: UserId,
        reason: &str,
    ) -> Result<u64, StoreError> {
        let now = millis(OffsetDateTime::now_utc());
        Ok(with_pool!(self, |pool| {
            crate::users::revoke_sessions_of!(pool, user, now, reason)
        }))
    }

    /// Ends one session. `false` if it does not exist or had already ended.
    pub async fn revoke_session(&self, id: SessionId, reason: &str) -> Result<bool, StoreError> {
        let now = millis(OffsetDateTime::now_utc());
        let result = with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE sessions SET revoked_at = $2, revoked_reason = $3 WHERE id = $1 AND revoked_at IS NULL",
            )
            .bind(id.to_string())
            .bind(now)
            .bind(reason)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(result > 0)
    }

    /// Deletes refresh tokens that expired before `now`, then sessions left with none. Returns
    /// how many tokens went.
    pub async fn prune_expired_sessions(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let now = millis(now);
        with_pool!(self, |pool| {
            let tokens = sqlx::query("DELETE FROM refresh_tokens WHERE expires_at <= $1")
                .bind(now)
                .execute(pool)
                .await?;
            sqlx::query(
                "DELETE FROM sessions WHERE NOT EXISTS \
                 (SELECT 1 FROM refresh_tokens WHERE refresh_tokens.session_id = sessions.id)",
            )
            .execute(pool)
            .await?;
            Ok(tokens.rows_affected())
        })
    }
}

fn parse_session_id(raw: &str) -> Result<SessionId, StoreError> {
    raw.parse().map_err(|_| StoreError::Corrupt {
        table: "refresh_tokens",
        message: format!("session id `{raw}` is not a UUID"),
    })
}
