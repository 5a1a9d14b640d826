//! Users and their login state.

use kai_core::{Role, User, UserId, Username};
use time::OffsetDateTime;

use crate::row::Columns;
use crate::{Store, StoreError, from_millis, is_unique_violation, millis, truncate, with_pool};

/// The columns [`user_record`] reads, for `concat!` into queries.
macro_rules! user_columns {
    () => {
        "users.id, users.username, users.password_hash, users.role, users.disabled, \
         users.failed_logins, users.locked_until, users.created_at, users.updated_at, \
         users.last_login_at"
    };
}
pub(crate) use user_columns;

/// Ends every open session of the user `$user` (a `UserId`) at `$now` (Unix ms) for `$reason`,
/// on `$executor` (a pool or a transaction of either backend). Evaluates to the number ended.
macro_rules! revoke_sessions_of {
    ($executor:expr, $user:expr, $now:expr, $reason:expr) => {
        sqlx::query(
            "UPDATE sessions SET revoked_at = $2, revoked_reason = $3 \
             WHERE user_id = $1 AND revoked_at IS NULL",
        )
        .bind($user.to_string())
        .bind($now)
        .bind($reason)
        .execute($executor)
        .await?
        .rows_affected()
    };
}
pub(crate) use revoke_sessions_of;

/// A user as stored, with what only authentication may see.
#[derive(Debug, Clone)]
pub struct UserRecord {
    /// The user.
    pub user: User,
    /// The Argon2id PHC string.
    pub password_hash: String,
    /// Failed logins since the last successful one.
    pub failed_logins: u32,
    /// Until when logins are refused, after too many failures.
    pub locked_until: Option<OffsetDateTime>,
}

/// A user to create.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// The unique name.
    pub username: Username,
    /// The Argon2id PHC string of the password.
    pub password_hash: String,
    /// What the user may do.
    pub role: Role,
}

/// Changes to a user; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UserUpdate {
    /// A new role.
    pub role: Option<Role>,
    /// Disable (ending every session) or re-enable the account.
    pub disabled: Option<bool>,
}

/// Whether a login attempt may go ahead to the password check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginAttempt {
    /// The password may be checked; the check is counted until it ends.
    Allowed,
    /// The account is locked until then.
    Locked(OffsetDateTime),
    /// Checks in flight and failures in a row already reach the limit: wait for one to end.
    Busy,
}

/// How long a password check may be in flight before it is presumed dead with its process.
pub(crate) const STALE_CHECKS: time::Duration = time::Duration::minutes(1);

pub(crate) fn user_record(row: &impl Columns) -> Result<UserRecord, StoreError> {
    let corrupt = |message: String| StoreError::Corrupt {
        table: "users",
        message,
    };
    let id = row.text("id")?;
    let user = User {
        id: id
            .parse()
            .map_err(|_| corrupt(format!("id `{id}` is not a UUID")))?,
        username: row
            .text("username")?
            .parse()
            .map_err(|err| corrupt(format!("user {id}: {err}")))?,
        role: row
            .text("role")?
            .parse()
            .map_err(|err| corrupt(format!("user {id}: {err}")))?,
        disabled: row.flag("disabled")?,
        created_at: from_millis(row.int("created_at")?),
        updated_at: from_millis(row.int("updated_at")?),
        last_login_at: row.opt_int("last_login_at")?.map(from_millis),
    };
    Ok(UserRecord {
        user,
        password_hash: row.text("password_hash")?,
        failed_logins: u32::try_from(row.int("failed_logins")?).unwrap_or(u32::MAX),
        locked_until: row.opt_int("locked_until")?.map(from_millis),
    })
}

impl Store {
    /// Creates a user. Fails with [`StoreError::Conflict`] if the name is taken.
    pub async fn create_user(&self, new: &NewUser) -> Result<User, StoreError> {
        let now = OffsetDateTime::now_utc();
        let user = User {
            id: UserId::new(),
            username: new.username.clone(),
            role: new.role,
            disabled: false,
            created_at: truncate(now),
            updated_at: truncate(now),
            last_login_at: None,
        };
        let result = with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO users (id, username, password_hash, role, disabled, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $6)",
            )
            .bind(user.id.to_string())
            .bind(user.username.as_str())
            .bind(&new.password_hash)
            .bind(user.role.as_str())
            .bind(false)
            .bind(millis(now))
            .execute(pool)
            .await
            .map(|_| ())
        });
        match result {
            Ok(()) => Ok(user),
            Err(err) if is_unique_violation(&err) => {
                Err(StoreError::Conflict("a user with that name"))
            }
            Err(err) => Err(err.into()),
        }
    }

    /// The user with this id.
    pub async fn user(&self, id: UserId) -> Result<Option<UserRecord>, StoreError> {
        with_pool!(self, |pool| {
            let row = sqlx::query(concat!(
                "SELECT ",
                user_columns!(),
                " FROM users WHERE id = $1"
            ))
            .bind(id.to_string())
            .fetch_optional(pool)
            .await?;
            row.as_ref().map(user_record).transpose()
        })
    }

    /// The user with this name.
    pub async fn user_by_name(
        &self,
        username: &Username,
    ) -> Result<Option<UserRecord>, StoreError> {
        with_pool!(self, |pool| {
            let row = sqlx::query(concat!(
                "SELECT ",
                user_columns!(),
                " FROM users WHERE username = $1"
            ))
            .bind(username.as_str())
            .fetch_optional(pool)
            .await?;
            row.as_ref().map(user_record).transpose()
        })
    }

    /// Every user, oldest first.
    pub async fn users(&self) -> Result<Vec<User>, StoreError> {
        with_pool!(self, |pool| {
            let rows = sqlx::query(concat!(
                "SELECT ",
                user_columns!(),
                " FROM users ORDER BY id"
            ))
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|row| user_record(row).map(|record| record.user))
                .collect()
        })
    }

    /// How many users exist.
    pub async fn count_users(&self) -> Result<u64, StoreError> {
        let count: i64 = with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT COUNT(*) FROM users")
                .fetch_one(pool)
                .await?
        });
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// How many enabled admins exist other than `except`.
    pub async fn count_other_active_admins(&self, except: UserId) -> Result<u64, StoreError> {
        let count: i64 = with_pool!(self, |pool| {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled = $1 AND id <> $2",
            )
            .bind(false)
            .bind(except.to_string())
            .fetch_one(pool)
            .await?
        });
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// Applies `update` to the user; `None` if there is no such user. Disabling ends the
    /// user's sessions in the same transaction.
    pub async fn update_user(
        &self,
        id: UserId,
        update: &UserUpdate,
    ) -> Result<Option<User>, StoreError> {
        let now = millis(OffsetDateTime::now_utc());
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let row = sqlx::query(concat!(
                "UPDATE users SET role = COALESCE($2, role), disabled = COALESCE($3, disabled), \
                 updated_at = $4 WHERE id = $1 RETURNING ",
                user_columns!()
            ))
            .bind(id.to_string())
            .bind(update.role.map(Role::as_str))
            .bind(update.disabled)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            if row.is_some() && update.disabled == Some(true) {
                revoke_sessions_of!(&mut *tx, id, now, "account disabled");
            }
            let user = row
                .as_ref()
                .map(|row| user_record(row).map(|record| record.user))
                .transpose()?;
            tx.commit().await?;
            Ok(user)
        })
    }

    /// Sets the user's password hash, clears any login lockout, and ends every session of the
    /// user, all in one transaction: whoever knew the old password is shut out at once, or the
    /// password is not changed. `None` if there is no such user.
    pub async fn set_password(
        &self,
        id: UserId,
        password_hash: &str,
        reason: &str,
    ) -> Result<Option<User>, StoreError> {
        let now = millis(OffsetDateTime::now_utc());
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let row = sqlx::query(concat!(
                "UPDATE users SET password_hash = $2, failed_logins = 0, locked_until = NULL, \
                 updated_at = $3 WHERE id = $1 RETURNING ",
                user_columns!()
            ))
            .bind(id.to_string())
            .bind(password_hash)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            if row.is_some() {
                revoke_sessions_of!(&mut *tx, id, now, reason);
            }
            let user = row
                .as_ref()
                .map(|row| user_record(row).map(|record| record.user))
                .transpose()?;
            tx.commit().await?;
            Ok(user)
        })
    }

    /// Deletes the user and, through foreign keys, everything they own. `false` if there was no
    /// such user.
    pub async fn delete_user(&self, id: UserId) -> Result<bool, StoreError> {
        let result = with_pool!(self, |pool| {
            sqlx::query("DELETE FROM users WHERE id = $1")
                .bind(id.to_string())
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(result > 0)
    }

    /// Starts a password check on the account, unless it is locked or the checks already in
    /// flight and the failures in a row together reach `limit`. A lock that has run out is
    /// lifted and its count forgotten. Every allowed check must end with [`Store::login_failed`],
    /// [`Store::record_login`] or [`Store::clear_login_failures`].
    ///
    /// Counting checks in flight, in one statement, is what holds a burst of simultaneous
    /// guesses to the limit; counting them apart from failures is what keeps simultaneous
    /// right passwords from locking anyone out: they wait ([`LoginAttempt::Busy`]) instead.
    /// Checks begun more than [`STALE_CHECKS`] before `now` (a process that died mid-check)
    /// are forgotten.
    pub async fn begin_login_attempt(
        &self,
        id: UserId,
        limit: u32,
        now: OffsetDateTime,
    ) -> Result<LoginAttempt, StoreError> {
        let now_ms = millis(now);
        let stale = millis(now - STALE_CHECKS);
        // On the right of SET, columns hold their values from before this update, in SQLite
        // and PostgreSQL alike.
        let started: Option<i64> = with_pool!(self, |pool| {
            sqlx::query_scalar(
                "UPDATE users SET \
                     failed_logins = CASE WHEN locked_until IS NOT NULL THEN 0 ELSE failed_logins END, \
                     locked_until = NULL, \
                     login_checks = (CASE WHEN login_checks_at IS NULL OR login_checks_at < $3 \
                         THEN 0 ELSE login_checks END) + 1, \
                     login_checks_at = $2 \
                 WHERE id = $1 AND (locked_until IS NULL OR locked_until <= $2) \
                   AND (CASE WHEN locked_until IS NOT NULL THEN 0 ELSE failed_logins END) \
                     + (CASE WHEN login_checks_at IS NULL OR login_checks_at < $3 \
                         THEN 0 ELSE login_checks END) < $4 \
                 RETURNING login_checks",
            )
            .bind(id.to_string())
            .bind(now_ms)
            .bind(stale)
            .bind(i64::from(limit))
            .fetch_optional(pool)
            .await?
        });
        if started.is_some() {
            return Ok(LoginAttempt::Allowed);
        }
        // No row changed: the account is locked, or its checks in flight fill the limit (or it
        // was deleted meanwhile, which the password check will not survive either).
        let until: Option<Option<i64>> = with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT locked_until FROM users WHERE id = $1")
                .bind(id.to_string())
                .fetch_optional(pool)
                .await?
        });
        Ok(match until.flatten() {
            Some(until) if until > now_ms => LoginAttempt::Locked(from_millis(until)),
            _ => LoginAttempt::Busy,
        })
    }

    /// Ends a password check that found the password wrong: one more failure in a row, and
    /// the one that reaches `lock_after` locks the account until `lock_until`. Returns the
    /// failures in a row.
    pub async fn login_failed(
        &self,
        id: UserId,
        lock_after: u32,
        lock_until: OffsetDateTime,
    ) -> Result<u32, StoreError> {
        let failures: Option<i64> = with_pool!(self, |pool| {
            sqlx::query_scalar(
                "UPDATE users SET \
                     login_checks = CASE WHEN login_checks > 0 THEN login_checks - 1 ELSE 0 END, \
                     failed_logins = failed_logins + 1, \
                     locked_until = CASE WHEN failed_logins + 1 >= $2 THEN $3 ELSE locked_until END \
                 WHERE id = $1 RETURNING failed_logins",
            )
            .bind(id.to_string())
            .bind(i64::from(lock_after))
            .bind(millis(lock_until))
            .fetch_optional(pool)
            .await?
        });
        Ok(failures.map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX)))
    }

    /// Ends a password check that proved right without a login following (a disabled
    /// account, a password change): clears the failed-login count.
    pub async fn clear_login_failures(&self, id: UserId) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE users SET failed_logins = 0, locked_until = NULL, \
                     login_checks = CASE WHEN login_checks > 0 THEN login_checks - 1 ELSE 0 END \
                 WHERE id = $1",
            )
            .bind(id.to_string())
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Records a successful login, ending its password check: clears failures and any lock.
    pub async fn record_login(&self, id: UserId, at: OffsetDateTime) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE users SET failed_logins = 0, locked_until = NULL, last_login_at = $2, \
                     login_checks = CASE WHEN login_checks > 0 THEN login_checks - 1 ELSE 0 END \
                 WHERE id = $1",
            )
            .bind(id.to_string())
            .bind(millis(at))
            .execute(pool)
            .await?;
        });
        Ok(())
    }
}
