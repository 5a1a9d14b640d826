//! Schedules' storage: jobs to enqueue again and again, each at its `next_fire_at`. When a
//! schedule fires and what it fires next are kai-jobs' to compute (it reads the spec and the
//! time zone); this module keeps the rows and makes each fire happen once.
//!
//! Several processes may share one database, each running a scheduler. A fire is claimed by a
//! compare-and-set: the schedule is moved on only from the `next_fire_at` its scheduler read,
//! and its job is enqueued in the same transaction, under a dedupe key naming the schedule and
//! the fire time. A scheduler whose read went stale changes nothing. On PostgreSQL the claim also
//! skips rows another transaction holds (`FOR UPDATE SKIP LOCKED`), so schedulers never wait on
//! each other; SQLite's single writer serialises the claims by itself.

use kai_core::{JobId, ScheduleId, UserId};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::jobs::insert_job_sql;
use crate::row::Columns;
use crate::{
    Pool, Store, StoreError, from_millis, is_unique_violation, millis, truncate, with_pool,
};

/// What a scheduler does with the fires it missed by more than its tolerance (while kai was
/// down, or paused): they are never run one by one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissedRuns {
    /// Leave them out: the schedule goes on from its next fire.
    Skip,
    /// Enqueue one job standing for all of them, then go on from the next fire.
    RunOnce,
}

impl MissedRuns {
    /// Its name: `skip` or `run_once`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            MissedRuns::Skip => "skip",
            MissedRuns::RunOnce => "run_once",
        }
    }

    /// The policy named `name` (`skip` or `run_once`), if there is one.
    #[must_use]
    pub fn from_name(name: &str) -> Option<MissedRuns> {
        match name {
            "skip" => Some(MissedRuns::Skip),
            "run_once" => Some(MissedRuns::RunOnce),
            _ => None,
        }
    }
}

/// The job a schedule enqueues at each fire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledJob {
    /// What handles it.
    pub kind: String,
    /// Its input, as JSON text the handler reads.
    pub payload: String,
    /// Higher runs first.
    pub priority: i32,
    /// Leases allowed before it is given up on (at least 1).
    pub max_attempts: u32,
}

/// A schedule to store.
#[derive(Debug, Clone)]
pub struct NewSchedule {
    /// Whose it is.
    pub owner_id: UserId,
    /// Its name, unique among the owner's schedules.
    pub name: String,
    /// When it fires, as kai-jobs writes it (`cron: …`, `every …`).
    pub spec: String,
    /// The IANA time zone its cron expression is read in.
    pub time_zone: String,
    /// What becomes of fires missed while no scheduler ran.
    pub missed: MissedRuns,
    /// What it enqueues.
    pub job: ScheduledJob,
    /// Whether it fires at all.
    pub enabled: bool,
    /// Its first fire: `None` when disabled.
    pub next_fire_at: Option<OffsetDateTime>,
}

/// A schedule as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleRecord {
    /// Its id.
    pub id: ScheduleId,
    /// Whose it is.
    pub owner_id: UserId,
    /// Its name, unique among the owner's schedules.
    pub name: String,
    /// When it fires (`cron: …`, `every …`).
    pub spec: String,
    /// The IANA time zone its cron expression is read in.
    pub time_zone: String,
    /// What becomes of fires missed while no scheduler ran.
    pub missed: MissedRuns,
    /// What it enqueues.
    pub job: ScheduledJob,
    /// Whether it fires at all.
    pub enabled: bool,
    /// When it fires next: `None` when disabled, or when it will never fire again.
    pub next_fire_at: Option<OffsetDateTime>,
    /// The fire its last job was enqueued for.
    pub last_fire_at: Option<OffsetDateTime>,
    /// When it was made.
    pub created_at: OffsetDateTime,
    /// When it last changed (a fire included).
    pub updated_at: OffsetDateTime,
}

/// One claim for [`Store::fire_schedules`]: move schedule `id` on from `due`, the
/// `next_fire_at` read, to `next`, enqueueing its job for `job_at` if given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduleFire {
    /// The schedule.
    pub id: ScheduleId,
    /// Its `next_fire_at` as read: the claim holds only if it is still that.
    pub due: OffsetDateTime,
    /// The fire time to enqueue its job for (its `run_at`, and part of its dedupe key);
    /// `None` moves the schedule on without a job (missed fires skipped).
    pub job_at: Option<OffsetDateTime>,
    /// Its next fire; `None` when it will never fire again.
    pub next: Option<OffsetDateTime>,
}

/// What became of one [`ScheduleFire`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FireOutcome {
    /// The schedule was no longer due at that time (another scheduler fired it, or it was
    /// disabled or deleted), or another transaction held it: nothing changed.
    Lost,
    /// Moved on, without a job.
    Advanced,
    /// Moved on, and this job enqueued for the fire (or found already enqueued under its
    /// dedupe key).
    Enqueued(JobId),
}

macro_rules! schedule_columns {
    () => {
        "id, owner_id, name, spec, time_zone, missed, job_kind, job_payload, job_priority, \
         job_max_attempts, enabled, next_fire_at, last_fire_at, created_at, updated_at"
    };
}

/// Claims a fire (see [`Store::fire_schedules`]); `$lock` is PostgreSQL's row lock clause, or
/// nothing on SQLite, whose single writer serialises this statement by itself.
macro_rules! claim_sql {
    ($lock:literal) => {
        concat!(
            "UPDATE schedules SET next_fire_at = $3, last_fire_at = COALESCE($4, last_fire_at), \
                 updated_at = $5 \
             WHERE id = (SELECT id FROM schedules \
                 WHERE id = $1 AND next_fire_at = $2 AND enabled = TRUE ",
            $lock,
            ") RETURNING job_kind, job_payload, job_priority, job_max_attempts"
        )
    };
}

/// Inside a transaction: claims each of `$fires` (sorted by id) with `$claim`'s SQL and enqueues
/// the jobs, filling `$outcomes` (by the fires' positions) and committing.
macro_rules! fire_in {
    ($pool:expr, $claim:expr, $fires:expr, $order:expr, $outcomes:expr) => {{
        let now = millis(OffsetDateTime::now_utc());
        // The claim is the transaction's first statement, a write, so that SQLite takes its
        // write lock up front.
        let mut tx = $pool.begin().await?;
        for &index in $order {
            let fire: &ScheduleFire = &$fires[index];
            let claimed: Option<(String, String, i64, i64)> = sqlx::query_as($claim)
                .bind(fire.id.to_string())
                .bind(millis(fire.due))
                .bind(fire.next.map(millis))
                .bind(fire.job_at.map(millis))
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
            let Some((kind, payload, priority, max_attempts)) = claimed else {
                continue;
            };
            let Some(at) = fire.job_at else {
                $outcomes[index] = FireOutcome::Advanced;
                continue;
            };
            let key = dedupe_key(fire.id, at);
            let job = JobId::new();
            let inserted: Option<String> = sqlx::query_scalar(insert_job_sql!())
                .bind(job.to_string())
                .bind(kind)
                .bind(payload)
                .bind(priority)
                .bind(max_attempts)
                .bind(millis(at))
                .bind(&key)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
            let job = match inserted {
                Some(_) => job,
                None => {
                    let existing: String =
                        sqlx::query_scalar("SELECT id FROM jobs WHERE dedupe_key = $1")
                            .bind(&key)
                            .fetch_one(&mut *tx)
                            .await?;
                    parse_id(&existing, "jobs")?
                }
            };
            $outcomes[index] = FireOutcome::Enqueued(job);
        }
        tx.commit().await?;
    }};
}

/// The dedupe key of the job schedule `id` enqueues for its fire at `at`: a fire is enqueued
/// once, whichever process claims it and however often.
fn dedupe_key(id: ScheduleId, at: OffsetDateTime) -> String {
    let at = at
        .format(&Rfc3339)
        .unwrap_or_else(|_| millis(at).to_string());
    format!("schedule:{id}:{at}")
}

fn parse_id<T: std::str::FromStr>(text: &str, table: &'static str) -> Result<T, StoreError> {
    text.parse().map_err(|_| StoreError::Corrupt {
        table,
        message: format!("id `{text}` is not a UUID"),
    })
}

fn schedule(row: &impl Columns) -> Result<ScheduleRecord, StoreError> {
    let corrupt = |message: String| StoreError::Corrupt {
        table: "schedules",
        message,
    };
    let id = row.text("id")?;
    let missed = row.text("missed")?;
    let priority = row.int("job_priority")?;
    let max_attempts = row.int("job_max_attempts")?;
    Ok(ScheduleRecord {
        id: parse_id(&id, "schedules")?,
        owner_id: parse_id(&row.text("owner_id")?, "schedules")?,
        name: row.text("name")?,
        spec: row.text("spec")?,
        time_zone: row.text("time_zone")?,
        missed: MissedRuns::from_name(&missed)
            .ok_or_else(|| corrupt(format!("schedule {id}: unknown missed policy `{missed}`")))?,
        job: ScheduledJob {
            kind: row.text("job_kind")?,
            payload: row.text("job_payload")?,
            priority: i32::try_from(priority)
                .map_err(|_| corrupt(format!("schedule {id}: priority {priority}")))?,
            max_attempts: u32::try_from(max_attempts)
                .map_err(|_| corrupt(format!("schedule {id}: max attempts {max_attempts}")))?,
        },
        enabled: row.flag("enabled")?,
        next_fire_at: row.opt_int("next_fire_at")?.map(from_millis),
        last_fire_at: row.opt_int("last_fire_at")?.map(from_millis),
        created_at: from_millis(row.int("created_at")?),
        updated_at: from_millis(row.int("updated_at")?),
    })
}

impl Store {
    /// Stores a schedule. Fails with [`StoreError::Conflict`] when the owner already has one
    /// of that name.
    pub async fn create_schedule(&self, new: &NewSchedule) -> Result<ScheduleRecord, StoreError> {
        let now = truncate(OffsetDateTime::now_utc());
        let record = ScheduleRecord {
            id: ScheduleId::new(),
            owner_id: new.owner_id,
            name: new.name.clone(),
            spec: new.spec.clone(),
            time_zone: new.time_zone.clone(),
            missed: new.missed,
            job: ScheduledJob {
                max_attempts: new.job.max_attempts.max(1),
                ..new.job.clone()
            },
            enabled: new.enabled,
            next_fire_at: new.next_fire_at.map(truncate),
            last_fire_at: None,
            created_at: now,
            updated_at: now,
        };
        let inserted = with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO schedules (id, owner_id, name, spec, time_zone, missed, job_kind, \
                     job_payload, job_priority, job_max_attempts, enabled, next_fire_at, \
                     created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)",
            )
            .bind(record.id.to_string())
            .bind(record.owner_id.to_string())
            .bind(&record.name)
            .bind(&record.spec)
            .bind(&record.time_zone)
            .bind(record.missed.as_str())
            .bind(&record.job.kind)
            .bind(&record.job.payload)
            .bind(i64::from(record.job.priority))
            .bind(i64::from(record.job.max_attempts))
            .bind(record.enabled)
            .bind(record.next_fire_at.map(millis))
            .bind(millis(now))
            .execute(pool)
            .await
            .map(|_| ())
        });
        match inserted {
            Ok(()) => Ok(record),
            Err(err) if is_unique_violation(&err) => {
                Err(StoreError::Conflict("a schedule with that name"))
            }
            Err(err) => Err(err.into()),
        }
    }

    /// One of the owner's schedules.
    pub async fn schedule(
        &self,
        owner: UserId,
        id: ScheduleId,
    ) -> Result<Option<ScheduleRecord>, StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(concat!(
                "SELECT ",
                schedule_columns!(),
                " FROM schedules WHERE owner_id = $1 AND id = $2"
            ))
            .bind(owner.to_string())
            .bind(id.to_string())
            .fetch_optional(pool)
            .await?
            .map(|row| schedule(&row))
            .transpose()
        })
    }

    /// The owner's schedule called `name`.
    pub async fn schedule_named(
        &self,
        owner: UserId,
        name: &str,
    ) -> Result<Option<ScheduleRecord>, StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(concat!(
                "SELECT ",
                schedule_columns!(),
                " FROM schedules WHERE owner_id = $1 AND name = $2"
            ))
            .bind(owner.to_string())
            .bind(name)
            .fetch_optional(pool)
            .await?
            .map(|row| schedule(&row))
            .transpose()
        })
    }

    /// The owner's schedules, by name.
    pub async fn schedules(&self, owner: UserId) -> Result<Vec<ScheduleRecord>, StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(concat!(
                "SELECT ",
                schedule_columns!(),
                " FROM schedules WHERE owner_id = $1 ORDER BY name"
            ))
            .bind(owner.to_string())
            .fetch_all(pool)
            .await?
            .iter()
            .map(schedule)
            .collect()
        })
    }

    /// Deletes one of the owner's schedules; jobs it already enqueued stay queued. `false` when
    /// there was no such schedule.
    pub async fn delete_schedule(&self, owner: UserId, id: ScheduleId) -> Result<bool, StoreError> {
        let deleted = with_pool!(self, |pool| {
            sqlx::query("DELETE FROM schedules WHERE owner_id = $1 AND id = $2")
                .bind(owner.to_string())
                .bind(id.to_string())
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(deleted == 1)
    }

    /// Enables or disables one of the owner's schedules and sets its next fire (`None` when
    /// disabling). Returns it as changed, or `None` when there is no such schedule.
    pub async fn set_schedule_enabled(
        &self,
        owner: UserId,
        id: ScheduleId,
        enabled: bool,
        next_fire_at: Option<OffsetDateTime>,
    ) -> Result<Option<ScheduleRecord>, StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(concat!(
                "UPDATE schedules SET enabled = $3, next_fire_at = $4, updated_at = $5 \
                 WHERE owner_id = $1 AND id = $2 RETURNING ",
                schedule_columns!()
            ))
            .bind(owner.to_string())
            .bind(id.to_string())
            .bind(enabled)
            .bind(next_fire_at.map(millis))
            .bind(millis(OffsetDateTime::now_utc()))
            .fetch_optional(pool)
            .await?
            .map(|row| schedule(&row))
            .transpose()
        })
    }

    /// Up to `limit` enabled schedules, of every owner, whose next fire is at or before `now`:
    /// the soonest first.
    pub async fn due_schedules(
        &self,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<ScheduleRecord>, StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(concat!(
                "SELECT ",
                schedule_columns!(),
                " FROM schedules WHERE next_fire_at <= $1 AND enabled = TRUE \
                 ORDER BY next_fire_at, id LIMIT $2"
            ))
            .bind(millis(now))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
            .iter()
            .map(schedule)
            .collect()
        })
    }

    /// The soonest next fire of any enabled schedule: when a scheduler should look again.
    pub async fn next_schedule_fire(&self) -> Result<Option<OffsetDateTime>, StoreError> {
        let next: Option<i64> = with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT MIN(next_fire_at) FROM schedules WHERE enabled = TRUE")
                .fetch_one(pool)
                .await?
        });
        Ok(next.map(from_millis))
    }

    /// Claims each fire and enqueues its job, all in one transaction: a fire whose schedule is
    /// no longer due at the time its scheduler read (another process fired it, or it was
    /// disabled or deleted meanwhile) changes nothing. A claimed fire moves `next_fire_at` on,
    /// sets `last_fire_at` when it enqueues, and enqueues the schedule's job to run at the
    /// fire time, with the dedupe key `schedule:<id>:<fire time, RFC 3339>`. Returns what became
    /// of each fire, in their order.
    pub async fn fire_schedules(
        &self,
        fires: &[ScheduleFire],
    ) -> Result<Vec<FireOutcome>, StoreError> {
        let mut outcomes = vec![FireOutcome::Lost; fires.len()];
        if fires.is_empty() {
            return Ok(outcomes);
        }
        // Rows are taken in one order by every process, so that two claiming overlapping
        // batches cannot each hold a row the other waits for.
        let mut order: Vec<usize> = (0..fires.len()).collect();
        order.sort_by_key(|&index| fires[index].id);
        match &self.pool {
            Pool::Sqlite(pool) => fire_in!(pool, claim_sql!(""), fires, &order, outcomes),
            Pool::Postgres(pool) => fire_in!(
                pool,
                claim_sql!("FOR UPDATE SKIP LOCKED"),
                fires,
                &order,
                outcomes
            ),
        }
        Ok(outcomes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_round_trip_through_their_names() {
        for policy in [MissedRuns::Skip, MissedRuns::RunOnce] {
            assert_eq!(MissedRuns::from_name(policy.as_str()), Some(policy));
        }
        assert_eq!(MissedRuns::from_name("catch_up"), None);
    }

    #[test]
    fn a_fire_is_named_by_its_schedule_and_time() {
        let id: ScheduleId = "01939a3c-0000-7000-8000-000000000000".parse().unwrap();
        let at = from_millis(1_772_953_200_000);
        assert_eq!(
            dedupe_key(id, at),
            format!("schedule:{id}:2026-03-08T07:00:00Z")
        );
    }
}
