//! Making, listing, enabling and removing schedules: what `kai schedule …` and the HTTP API
//! call. Input is checked here, once; the store keeps what passes.

use kai_core::{ScheduleId, UserId};
use kai_store::{MissedRuns, NewSchedule, ScheduleRecord, ScheduledJob};
use time::OffsetDateTime;

use crate::Queue;
use crate::schedule::{Recurrence, ScheduleError};

/// The longest schedule name.
const MAX_NAME_LEN: usize = 64;
/// The longest job kind.
const MAX_KIND_LEN: usize = 100;

/// A schedule to add, its spec and zone already read into a [`Recurrence`].
#[derive(Debug, Clone)]
pub struct ScheduleDraft {
    /// Whose it is.
    pub owner: UserId,
    /// Its name, unique among the owner's schedules: 1 to 64 letters, digits, `.`, `_` or `-`,
    /// starting with a letter or digit.
    pub name: String,
    /// When it fires.
    pub recurrence: Recurrence,
    /// What becomes of fires missed while no scheduler ran.
    pub missed: MissedRuns,
    /// What it enqueues: a kind with a handler, a JSON payload, a priority and attempts.
    pub job: ScheduledJob,
    /// Whether it starts enabled.
    pub enabled: bool,
}

/// Reads a missed-run policy by name: `skip` or `run_once` (`run-once` too).
pub fn parse_missed_runs(name: &str) -> Result<MissedRuns, ScheduleError> {
    let name = name.trim();
    MissedRuns::from_name(&name.replace('-', "_")).ok_or_else(|| ScheduleError::Invalid {
        field: "missed",
        message: format!(
            "`{name}` is not a missed-run policy: use `skip` (leave out runs missed while kai \
             was down) or `run_once` (run once for all of them)"
        ),
    })
}

/// The schedules of every owner, over the queue's database. Cheap to clone.
///
/// A schedule added or enabled here wakes this process's [`Scheduler`](crate::Scheduler)s at
/// once; other processes' schedulers see it at their next poll.
#[derive(Debug, Clone)]
pub struct Schedules {
    queue: Queue,
}

impl Schedules {
    /// Schedules on `queue`'s database.
    #[must_use]
    pub fn new(queue: Queue) -> Schedules {
        Schedules { queue }
    }

    /// Adds a schedule, its first fire computed from now. Fails with
    /// [`ScheduleError::Invalid`] for a bad name or job, or for a spec that never fires from
    /// now on, and with [`kai_store::StoreError::Conflict`] when the owner already has a
    /// schedule of that name.
    pub async fn add(&self, draft: ScheduleDraft) -> Result<ScheduleRecord, ScheduleError> {
        check_name(&draft.name)?;
        check_job(&draft.job)?;
        let next_fire_at = if draft.enabled {
            Some(first_fire(&draft.recurrence, OffsetDateTime::now_utc())?)
        } else {
            None
        };
        let record = self
            .queue
            .store()
            .create_schedule(&NewSchedule {
                owner_id: draft.owner,
                name: draft.name,
                spec: draft.recurrence.spec().to_string(),
                time_zone: draft.recurrence.time_zone().to_owned(),
                missed: draft.missed,
                job: draft.job,
                enabled: draft.enabled,
                next_fire_at,
            })
            .await?;
        if record.enabled {
            self.queue.wake_schedulers();
        }
        Ok(record)
    }

    /// The owner's schedules, by name.
    pub async fn list(&self, owner: UserId) -> Result<Vec<ScheduleRecord>, ScheduleError> {
        Ok(self.queue.store().schedules(owner).await?)
    }

    /// One of the owner's schedules, by id.
    pub async fn get(
        &self,
        owner: UserId,
        id: ScheduleId,
    ) -> Result<Option<ScheduleRecord>, ScheduleError> {
        Ok(self.queue.store().schedule(owner, id).await?)
    }

    /// One of the owner's schedules, by name.
    pub async fn find(
        &self,
        owner: UserId,
        name: &str,
    ) -> Result<Option<ScheduleRecord>, ScheduleError> {
        Ok(self.queue.store().schedule_named(owner, name).await?)
    }

    /// Removes one of the owner's schedules; jobs it already enqueued still run. `false` when
    /// there was no such schedule.
    pub async fn remove(&self, owner: UserId, id: ScheduleId) -> Result<bool, ScheduleError> {
        Ok(self.queue.store().delete_schedule(owner, id).await?)
    }

    /// Enables or disables one of the owner's schedules; `None` when there is no such
    /// schedule. A disabled schedule has no next fire; enabling one computes its next fire
    /// from now, so the fires it passed while disabled are not missed runs: they are not run.
    /// Enabling an enabled schedule changes nothing.
    pub async fn set_enabled(
        &self,
        owner: UserId,
        id: ScheduleId,
        enabled: bool,
    ) -> Result<Option<ScheduleRecord>, ScheduleError> {
        let store = self.queue.store();
        let Some(record) = store.schedule(owner, id).await? else {
            return Ok(None);
        };
        if enabled == record.enabled && (!enabled || record.next_fire_at.is_some()) {
            return Ok(Some(record));
        }
        let next_fire_at = if enabled {
            let recurrence = Recurrence::new(&record.spec, &record.time_zone)?;
            Some(first_fire(&recurrence, OffsetDateTime::now_utc())?)
        } else {
            None
        };
        let changed = store
            .set_schedule_enabled(owner, id, enabled, next_fire_at)
            .await?;
        if enabled {
            self.queue.wake_schedulers();
        }
        Ok(changed)
    }
}

fn first_fire(
    recurrence: &Recurrence,
    now: OffsetDateTime,
) -> Result<OffsetDateTime, ScheduleError> {
    recurrence
        .first_fire(now)
        .ok_or_else(|| ScheduleError::Invalid {
            field: "spec",
            message: format!(
                "`{}` never fires from now on; for example `cron: 0 9 1 * *` fires on the \
                 first of every month",
                recurrence.spec()
            ),
        })
}

fn check_name(name: &str) -> Result<(), ScheduleError> {
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if valid {
        return Ok(());
    }
    Err(ScheduleError::Invalid {
        field: "name",
        message: format!(
            "`{name}` is not a schedule name: use 1 to {MAX_NAME_LEN} letters, digits, `.`, `_` \
             or `-`, starting with a letter or digit; for example `nightly-backup`"
        ),
    })
}

fn check_job(job: &ScheduledJob) -> Result<(), ScheduleError> {
    let invalid = |message: String| ScheduleError::Invalid {
        field: "job",
        message,
    };
    let kind = &job.kind;
    if kind.is_empty()
        || kind.len() > MAX_KIND_LEN
        || kind.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(invalid(format!(
            "`{kind}` is not a job kind: name the kind of job to enqueue, 1 to {MAX_KIND_LEN} \
             characters without spaces, for example `agent-run`"
        )));
    }
    if let Err(err) = serde_json::from_str::<serde_json::Value>(&job.payload) {
        return Err(invalid(format!(
            "the job's payload is not JSON ({err}): write a JSON value, for example \
             `{{\"goal\": \"summarise my inbox\"}}` or `{{}}`"
        )));
    }
    if job.max_attempts == 0 {
        return Err(invalid(
            "a job needs at least one attempt: set max attempts to 1 or more, for example 3"
                .to_owned(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(kind: &str, payload: &str, max_attempts: u32) -> ScheduledJob {
        ScheduledJob {
            kind: kind.into(),
            payload: payload.into(),
            priority: 0,
            max_attempts,
        }
    }

    #[test]
    fn names_are_short_words_that_a_command_line_can_take() {
        for good in ["nightly-backup", "a", "Report_2.weekly", &"x".repeat(64)] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "-leading",
            "has space",
            "ünïcode",
            &"x".repeat(65),
            "a/b",
        ] {
            let message = check_name(bad).unwrap_err().to_string();
            assert!(message.contains("nightly-backup"), "{bad}: {message}");
        }
    }

    #[test]
    fn jobs_need_a_kind_a_json_payload_and_an_attempt() {
        assert!(check_job(&job("agent-run", r#"{"goal": "x"}"#, 3)).is_ok());
        for (bad, says) in [
            (job("", "{}", 1), "not a job kind"),
            (job("agent run", "{}", 1), "not a job kind"),
            (job("agent-run", "{goal", 1), "not JSON"),
            (job("agent-run", "{}", 0), "at least one attempt"),
        ] {
            let message = check_job(&bad).unwrap_err().to_string();
            assert!(message.contains(says), "{message}");
            assert!(message.contains("for example"), "{message}");
        }
    }

    #[test]
    fn missed_run_policies_read_by_name() {
        assert_eq!(parse_missed_runs("skip").unwrap(), MissedRuns::Skip);
        assert_eq!(parse_missed_runs("run-once").unwrap(), MissedRuns::RunOnce);
        assert_eq!(
            parse_missed_runs(" run_once ").unwrap(),
            MissedRuns::RunOnce
        );
        let message = parse_missed_runs("catch-up").unwrap_err().to_string();
        assert!(
            message.contains("`skip`") && message.contains("`run_once`"),
            "{message}"
        );
    }
}
