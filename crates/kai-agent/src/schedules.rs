//! Agents on a schedule: a schedule (kai-jobs) whose every fire starts a run of an agent
//! towards a fixed goal. The job a fire enqueues is the only kind a user can schedule: it runs
//! with the worker's rights, so what it does is decided here, not by the user.

use kai_core::{AgentId, RunId, ScheduleId, UserId};
use kai_jobs::{
    JobContext, JobError, Recurrence, ScheduleDraft, ScheduleError, ScheduleRecord, ScheduledJob,
    Schedules, parse_missed_runs,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::service::{AgentError, Agents};

/// The job kind a schedule's fire enqueues: start one run.
pub const SCHEDULED_RUN_JOB: &str = "agent-scheduled-run";

/// Attempts at starting a scheduled run.
const SCHEDULED_RUN_ATTEMPTS: u32 = 5;

/// What a fire starts.
#[derive(Debug, Serialize, Deserialize)]
struct ScheduledRun {
    owner: String,
    agent: String,
    goal: String,
}

/// A schedule as the API shows it.
#[derive(Debug, Clone)]
pub struct ScheduleView {
    /// As stored.
    pub record: ScheduleRecord,
    /// The agent each fire runs.
    pub agent: AgentId,
    /// The goal each run is given.
    pub goal: String,
    /// Its next few fires, for people to check the spec means what they meant.
    pub upcoming: Vec<OffsetDateTime>,
}

/// A new schedule, as the API takes it.
#[derive(Debug, Clone)]
pub struct NewAgentSchedule<'a> {
    /// Its name, unique among the owner's schedules.
    pub name: &'a str,
    /// The agent (id or name).
    pub agent: &'a str,
    /// The goal each run is given.
    pub goal: &'a str,
    /// `cron: EXPRESSION` or `every DURATION`.
    pub spec: &'a str,
    /// An IANA time zone.
    pub time_zone: &'a str,
    /// `skip` or `run_once`.
    pub missed: &'a str,
    /// Whether it starts enabled.
    pub enabled: bool,
}

fn schedule_error(err: ScheduleError) -> AgentError {
    match err {
        ScheduleError::Invalid { field, message } => {
            AgentError::Invalid(format!("{field}: {message}"))
        }
        ScheduleError::Store(kai_store::StoreError::Conflict(_)) => AgentError::Conflict(
            "a schedule with this name already exists; pick another name".into(),
        ),
        ScheduleError::Store(err) => AgentError::Store(err),
    }
}

impl Agents {
    fn schedules_service(&self) -> Schedules {
        Schedules::new(self.inner.queue.clone())
    }

    fn schedule_view(record: ScheduleRecord) -> Result<ScheduleView, AgentError> {
        let run: ScheduledRun = serde_json::from_str(&record.job.payload).map_err(|err| {
            AgentError::Store(kai_store::StoreError::Corrupt {
                table: "schedules",
                message: format!("schedule {}: {err}", record.id),
            })
        })?;
        let agent = run.agent.parse().map_err(|_| {
            AgentError::Store(kai_store::StoreError::Corrupt {
                table: "schedules",
                message: format!("schedule {}: bad agent id", record.id),
            })
        })?;
        let upcoming = match (
            &record.next_fire_at,
            Recurrence::new(&record.spec, &record.time_zone),
        ) {
            (Some(next), Ok(recurrence)) => {
                let mut fires = vec![*next];
                fires.extend(
                    recurrence
                        .upcoming(*next, 3)
                        .into_iter()
                        .filter(|f| f > next)
                        .take(2),
                );
                fires
            }
            _ => Vec::new(),
        };
        Ok(ScheduleView {
            record,
            agent,
            goal: run.goal,
            upcoming,
        })
    }

    /// Schedules runs of an agent.
    pub async fn add_schedule(
        &self,
        owner: UserId,
        new: NewAgentSchedule<'_>,
    ) -> Result<ScheduleView, AgentError> {
        let agent = self.agent(owner, new.agent).await?;
        let goal = new.goal.trim();
        if goal.is_empty() || goal.contains('\0') || goal.chars().count() > 16_000 {
            return Err(AgentError::Invalid(
                "goal: give what each run should do, at most 16000 characters".into(),
            ));
        }
        let recurrence = Recurrence::new(new.spec, new.time_zone).map_err(schedule_error)?;
        let missed = parse_missed_runs(new.missed).map_err(schedule_error)?;
        let payload = serde_json::to_string(&ScheduledRun {
            owner: owner.to_string(),
            agent: agent.record.id.to_string(),
            goal: goal.to_owned(),
        })
        .unwrap_or_default();
        let record = self
            .schedules_service()
            .add(ScheduleDraft {
                owner,
                name: new.name.to_owned(),
                recurrence,
                missed,
                job: ScheduledJob {
                    kind: SCHEDULED_RUN_JOB.into(),
                    payload,
                    priority: 0,
                    max_attempts: SCHEDULED_RUN_ATTEMPTS,
                },
                enabled: new.enabled,
            })
            .await
            .map_err(schedule_error)?;
        Self::schedule_view(record)
    }

    async fn find_schedule(&self, owner: UserId, key: &str) -> Result<ScheduleRecord, AgentError> {
        let service = self.schedules_service();
        let found = match key.parse::<ScheduleId>() {
            Ok(id) => service.get(owner, id).await,
            Err(_) => service.find(owner, key).await,
        }
        .map_err(schedule_error)?;
        found.ok_or_else(|| AgentError::NotFound(format!("schedule `{key}`")))
    }

    /// The owner's schedules, by name.
    pub async fn schedules(&self, owner: UserId) -> Result<Vec<ScheduleView>, AgentError> {
        self.schedules_service()
            .list(owner)
            .await
            .map_err(schedule_error)?
            .into_iter()
            .filter(|record| record.job.kind == SCHEDULED_RUN_JOB)
            .map(Self::schedule_view)
            .collect()
    }

    /// One of the owner's schedules, by id or name.
    pub async fn schedule(&self, owner: UserId, key: &str) -> Result<ScheduleView, AgentError> {
        Self::schedule_view(self.find_schedule(owner, key).await?)
    }

    /// Removes a schedule; runs it already started go on.
    pub async fn remove_schedule(&self, owner: UserId, key: &str) -> Result<(), AgentError> {
        let record = self.find_schedule(owner, key).await?;
        self.schedules_service()
            .remove(owner, record.id)
            .await
            .map_err(schedule_error)?;
        Ok(())
    }

    /// Enables or disables a schedule; fires passed while it was disabled are not run.
    pub async fn enable_schedule(
        &self,
        owner: UserId,
        key: &str,
        enabled: bool,
    ) -> Result<ScheduleView, AgentError> {
        let record = self.find_schedule(owner, key).await?;
        let changed = self
            .schedules_service()
            .set_enabled(owner, record.id, enabled)
            .await
            .map_err(schedule_error)?
            .ok_or_else(|| AgentError::NotFound(format!("schedule `{key}`")))?;
        Self::schedule_view(changed)
    }

    /// The handler for [`SCHEDULED_RUN_JOB`] jobs: each starts one run, whose id is the job's,
    /// so that a fire retried after a crash does not start a second.
    #[must_use]
    pub fn scheduled_run_handler(&self) -> impl kai_jobs::Handler {
        let agents = self.clone();
        move |job: JobContext| {
            let agents = agents.clone();
            async move {
                let run: ScheduledRun = job.payload()?;
                let owner: UserId = run
                    .owner
                    .parse()
                    .map_err(|_| JobError::permanent("the schedule's owner is not an id"))?;
                let id = RunId::from(job.id().as_uuid());
                match agents
                    .start_as(owner, &run.agent, &run.goal, None, id)
                    .await
                {
                    Ok(_) => Ok(()),
                    Err(AgentError::NotFound(what)) => Err(JobError::permanent(format!(
                        "{what} not found: the schedule's agent was deleted"
                    ))),
                    Err(AgentError::Invalid(why)) => Err(JobError::permanent(why)),
                    Err(err) => Err(JobError::transient(err)),
                }
            }
        }
    }
}
