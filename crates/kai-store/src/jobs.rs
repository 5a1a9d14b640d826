//! The durable job queue's storage: jobs enqueued, leased to one worker at a time, kept alive
//! by heartbeats, and finished, retried later or given up on (dead letters). The worker runtime
//! that drives it is kai-jobs'.
//!
//! A lease is a deadline, not a lock: a worker that dies simply stops extending it, and once it
//! has run out the job is offered again. Every lease counts as an attempt, so a job whose
//! worker keeps dying ends dead after `max_attempts` rather than looping. Finishing calls name
//! the worker, so one whose lease was taken over cannot finish the job twice. On PostgreSQL,
//! workers in several processes lease with `FOR UPDATE SKIP LOCKED` and do not wait on each
//! other; SQLite's single writer serialises leases by itself.

use kai_core::JobId;
use time::{Duration, OffsetDateTime};

use crate::row::Columns;
use crate::{Pool, Store, StoreError, from_millis, millis, with_pool};

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// Waiting for a worker (or for its `run_at`).
    Queued,
    /// Leased to a worker.
    Running,
    /// Finished.
    Done,
    /// Given up on after its last attempt failed.
    Dead,
}

impl JobState {
    /// Its name: `queued`, `running`, `done` or `dead`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Dead => "dead",
        }
    }

    fn parse(text: &str) -> Option<JobState> {
        Some(match text {
            "queued" => JobState::Queued,
            "running" => JobState::Running,
            "done" => JobState::Done,
            "dead" => JobState::Dead,
            _ => return None,
        })
    }
}

/// A job to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// What handles it (`index-artifact`, `agent-run`, …).
    pub kind: String,
    /// Its input, as JSON text the handler reads.
    pub payload: String,
    /// Higher runs first.
    pub priority: i32,
    /// Leases allowed before it is given up on (at least 1).
    pub max_attempts: u32,
    /// Not before this time.
    pub run_at: OffsetDateTime,
    /// Enqueues the job only once: a second job with the same key is the first one.
    pub dedupe_key: Option<String>,
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// Its id.
    pub id: JobId,
    /// What handles it.
    pub kind: String,
    /// Its input, as JSON text.
    pub payload: String,
    /// Higher runs first.
    pub priority: i32,
    /// Where it is.
    pub state: JobState,
    /// Leases so far.
    pub attempts: u32,
    /// Leases allowed.
    pub max_attempts: u32,
    /// Not before this time.
    pub run_at: OffsetDateTime,
    /// While running: until when its worker holds it.
    pub lease_until: Option<OffsetDateTime>,
    /// While running: the worker holding it.
    pub worker: Option<String>,
    /// Why its last attempt failed, if one did.
    pub last_error: Option<String>,
    /// When it was enqueued.
    pub created_at: OffsetDateTime,
    /// When it finished or died.
    pub finished_at: Option<OffsetDateTime>,
}

macro_rules! job_columns {
    () => {
        "id, kind, payload, priority, state, attempts, max_attempts, run_at, lease_until, \
         worker, last_error, created_at, finished_at"
    };
}

/// Inserts a queued job unless its dedupe key is taken, returning its id if inserted. Binds:
/// id, kind, payload, priority, max attempts, run at, dedupe key, now. Shared with the
/// schedules' fires, which enqueue in their own transactions.
macro_rules! insert_job_sql {
    () => {
        "INSERT INTO jobs (id, kind, payload, priority, state, attempts, max_attempts, \
             run_at, dedupe_key, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, 'queued', 0, $5, $6, $7, $8, $8) \
         ON CONFLICT (dedupe_key) DO NOTHING RETURNING id"
    };
}
pub(crate) use insert_job_sql;

/// Leases the next job of a kind (see [`Store::lease_job`]); `$lock` is PostgreSQL's row lock
/// clause, or nothing on SQLite, whose single writer serialises this statement by itself.
///
/// The best queued job and the best job whose lease ran out are found apart, each by walking
/// `jobs_next` in order and stopping at the first, and the better of the two is leased: one
/// condition over both states can use the index for neither, and then every lease would sort
/// the whole queue of its kind.
macro_rules! lease_sql {
    ($lock:literal) => {
        concat!(
            "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_until = $3, \
                 worker = $4, updated_at = $2 \
             WHERE id = (SELECT id FROM ( \
                     SELECT id, priority, run_at FROM (SELECT id, priority, run_at FROM jobs \
                         WHERE kind = $1 AND state = 'queued' AND run_at <= $2 \
                         ORDER BY priority DESC, run_at, id LIMIT 1 ",
            $lock,
            ") AS due \
                     UNION ALL \
                     SELECT id, priority, run_at FROM (SELECT id, priority, run_at FROM jobs \
                         WHERE kind = $1 AND state = 'running' AND lease_until < $2 \
                         ORDER BY priority DESC, run_at, id LIMIT 1 ",
            $lock,
            ") AS expired \
                 ) AS candidates ORDER BY priority DESC, run_at, id LIMIT 1) \
               AND (SELECT COUNT(*) FROM jobs WHERE kind = $1 AND state = 'running' \
                     AND lease_until >= $2) < $5 \
             RETURNING ",
            job_columns!()
        )
    };
}

fn job(row: &impl Columns) -> Result<Job, StoreError> {
    let corrupt = |message: String| StoreError::Corrupt {
        table: "jobs",
        message,
    };
    let id = row.text("id")?;
    let count = |column: &str| -> Result<u32, StoreError> {
        let value = row.int(column)?;
        u32::try_from(value).map_err(|_| corrupt(format!("job {id}: {column} is {value}")))
    };
    let state = row.text("state")?;
    Ok(Job {
        id: id
            .parse()
            .map_err(|_| corrupt(format!("id `{id}` is not a UUID")))?,
        kind: row.text("kind")?,
        payload: row.text("payload")?,
        priority: i32::try_from(row.int("priority")?)
            .map_err(|_| corrupt(format!("job {id}: priority out of range")))?,
        state: JobState::parse(&state)
            .ok_or_else(|| corrupt(format!("job {id}: unknown state `{state}`")))?,
        attempts: count("attempts")?,
        max_attempts: count("max_attempts")?,
        run_at: from_millis(row.int("run_at")?),
        lease_until: row.opt_int("lease_until")?.map(from_millis),
        worker: row.opt_text("worker")?,
        last_error: row.opt_text("last_error")?,
        created_at: from_millis(row.int("created_at")?),
        finished_at: row.opt_int("finished_at")?.map(from_millis),
    })
}

/// Why an attempt ended without finishing the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOutcome {
    /// Queued again, to run at the time given.
    Retried,
    /// That was its last attempt: it is dead.
    Dead,
    /// The worker no longer held the job (its lease ran out and another took it): nothing
    /// changed.
    NotHeld,
}

impl Store {
    /// Enqueues a job and returns its id; with a `dedupe_key` that is already taken, the id of
    /// the job that took it, and nothing is added.
    pub async fn enqueue_job(&self, new: &NewJob) -> Result<JobId, StoreError> {
        let id = JobId::new();
        let now = millis(OffsetDateTime::now_utc());
        let inserted: Option<String> = with_pool!(self, |pool| {
            sqlx::query_scalar(insert_job_sql!())
                .bind(id.to_string())
                .bind(&new.kind)
                .bind(&new.payload)
                .bind(i64::from(new.priority))
                .bind(i64::from(new.max_attempts.max(1)))
                .bind(millis(new.run_at))
                .bind(&new.dedupe_key)
                .bind(now)
                .fetch_optional(pool)
                .await?
        });
        if inserted.is_some() {
            return Ok(id);
        }
        let existing: String = with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT id FROM jobs WHERE dedupe_key = $1")
                .bind(&new.dedupe_key)
                .fetch_one(pool)
                .await?
        });
        existing.parse().map_err(|_| StoreError::Corrupt {
            table: "jobs",
            message: format!("id `{existing}` is not a UUID"),
        })
    }

    /// The job with this id, if there is one.
    pub async fn job(&self, id: JobId) -> Result<Option<Job>, StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(concat!(
                "SELECT ",
                job_columns!(),
                " FROM jobs WHERE id = $1"
            ))
            .bind(id.to_string())
            .fetch_optional(pool)
            .await?
            .map(|row| job(&row))
            .transpose()
        })
    }

    /// Leases the next job of `kind` to `worker` until `now + lease`: the highest priority,
    /// then the oldest, among those queued and due or whose lease ran out. With `limit`, only
    /// while fewer than that many jobs of the kind are running. Jobs whose lease ran out on
    /// their last attempt are given up on first.
    pub async fn lease_job(
        &self,
        kind: &str,
        worker: &str,
        lease: Duration,
        limit: Option<u32>,
        now: OffsetDateTime,
    ) -> Result<Option<Job>, StoreError> {
        let now_ms = millis(now);
        let until = millis(now + lease);
        with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE jobs SET state = 'dead', worker = NULL, lease_until = NULL, \
                     finished_at = $2, updated_at = $2, \
                     last_error = COALESCE(last_error || '; ', '') || 'its worker stopped \
                         answering on its last attempt' \
                 WHERE kind = $1 AND state = 'running' AND lease_until < $2 \
                   AND attempts >= max_attempts",
            )
            .bind(kind)
            .bind(now_ms)
            .execute(pool)
            .await?;
        });
        // Counting the running jobs and leasing one must not interleave with another process
        // doing the same, or both could take the last free place: on PostgreSQL, a limited
        // lease holds the kind's advisory lock for its transaction.
        let limit = limit.map_or(i64::MAX, i64::from);
        match &self.pool {
            Pool::Sqlite(pool) => sqlx::query(lease_sql!(""))
                .bind(kind)
                .bind(now_ms)
                .bind(until)
                .bind(worker)
                .bind(limit)
                .fetch_optional(pool)
                .await?
                .map(|row| job(&row))
                .transpose(),
            Pool::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                if limit != i64::MAX {
                    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('kai-jobs:' || $1))")
                        .bind(kind)
                        .execute(&mut *tx)
                        .await?;
                }
                let leased = sqlx::query(lease_sql!("FOR UPDATE SKIP LOCKED"))
                    .bind(kind)
                    .bind(now_ms)
                    .bind(until)
                    .bind(worker)
                    .bind(limit)
                    .fetch_optional(&mut *tx)
                    .await?
                    .map(|row| job(&row))
                    .transpose()?;
                tx.commit().await?;
                Ok(leased)
            }
        }
    }

    /// Ends every lease now, so that running jobs can be taken again at once. Only for a
    /// database no other process works on (SQLite under the data directory's lock) at start:
    /// whatever was running then belonged to a process that died. Returns how many.
    pub async fn expire_leases(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        with_pool!(self, |pool| {
            let released = sqlx::query(
                "UPDATE jobs SET lease_until = $1 WHERE state = 'running' AND lease_until > $1",
            )
            // A lease is over once `lease_until` is before the leasing time.
            .bind(millis(now) - 1)
            .execute(pool)
            .await?
            .rows_affected();
            Ok(released)
        })
    }

    /// Extends `worker`'s lease on a running job to `until`. `false` when the worker no longer
    /// holds it: it must stop, since another may be running the job.
    pub async fn heartbeat_job(
        &self,
        id: JobId,
        worker: &str,
        until: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let changed = with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE jobs SET lease_until = $3, updated_at = $4 \
                 WHERE id = $1 AND worker = $2 AND state = 'running'",
            )
            .bind(id.to_string())
            .bind(worker)
            .bind(millis(until))
            .bind(millis(OffsetDateTime::now_utc()))
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(changed == 1)
    }

    /// Marks a job `worker` holds as done. `false` when it no longer held it.
    pub async fn complete_job(&self, id: JobId, worker: &str) -> Result<bool, StoreError> {
        let now = millis(OffsetDateTime::now_utc());
        let changed = with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE jobs SET state = 'done', worker = NULL, lease_until = NULL, \
                     finished_at = $3, updated_at = $3 \
                 WHERE id = $1 AND worker = $2 AND state = 'running'",
            )
            .bind(id.to_string())
            .bind(worker)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(changed == 1)
    }

    /// Ends `worker`'s attempt at a job with `error`: queued again to run at `retry_at`, or dead
    /// if that was its last attempt.
    pub async fn fail_job(
        &self,
        id: JobId,
        worker: &str,
        error: &str,
        retry_at: OffsetDateTime,
    ) -> Result<FailOutcome, StoreError> {
        let now = millis(OffsetDateTime::now_utc());
        let state: Option<String> = with_pool!(self, |pool| {
            sqlx::query_scalar(
                "UPDATE jobs SET \
                     state = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'queued' END, \
                     run_at = CASE WHEN attempts >= max_attempts THEN run_at ELSE $4 END, \
                     finished_at = CASE WHEN attempts >= max_attempts THEN $5 ELSE NULL END, \
                     worker = NULL, lease_until = NULL, last_error = $3, updated_at = $5 \
                 WHERE id = $1 AND worker = $2 AND state = 'running' \
                 RETURNING state",
            )
            .bind(id.to_string())
            .bind(worker)
            .bind(error)
            .bind(millis(retry_at))
            .bind(now)
            .fetch_optional(pool)
            .await?
        });
        Ok(match state.as_deref() {
            None => FailOutcome::NotHeld,
            Some("dead") => FailOutcome::Dead,
            Some(_) => FailOutcome::Retried,
        })
    }

    /// Ends `worker`'s attempt at a job with `error` and gives up on it at once, whatever
    /// attempts it has left: for a failure no retry can fix (a malformed payload, a file that
    /// is gone). `false` when the worker no longer held it, and nothing changed.
    pub async fn give_up_job(
        &self,
        id: JobId,
        worker: &str,
        error: &str,
    ) -> Result<bool, StoreError> {
        let now = millis(OffsetDateTime::now_utc());
        let changed = with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE jobs SET state = 'dead', worker = NULL, lease_until = NULL, \
                     last_error = $3, finished_at = $4, updated_at = $4 \
                 WHERE id = $1 AND worker = $2 AND state = 'running'",
            )
            .bind(id.to_string())
            .bind(worker)
            .bind(error)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(changed == 1)
    }

    /// How many jobs of `kind` are in each state, for progress reports.
    pub async fn job_counts(&self, kind: &str) -> Result<Vec<(JobState, u64)>, StoreError> {
        let rows: Vec<(String, i64)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT state, COUNT(*) FROM jobs WHERE kind = $1 GROUP BY state ORDER BY state",
            )
            .bind(kind)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|(state, count)| {
                let parsed = JobState::parse(&state).ok_or_else(|| StoreError::Corrupt {
                    table: "jobs",
                    message: format!("unknown state `{state}`"),
                })?;
                Ok((parsed, u64::try_from(count).unwrap_or(0)))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::JobState;

    #[test]
    fn states_round_trip_through_text() {
        for state in [
            JobState::Queued,
            JobState::Running,
            JobState::Done,
            JobState::Dead,
        ] {
            assert_eq!(JobState::parse(state.as_str()), Some(state));
        }
        assert_eq!(JobState::parse("paused"), None);
    }
}
