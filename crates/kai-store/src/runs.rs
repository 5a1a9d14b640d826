//! Agent runs: each run's saved state and status, its timeline, the tool calls that change
//! things (under their idempotency keys), and what a run asked its owner. kai-agent decides what
//! the state and the events hold; the store keeps them consistent: a save names the revision it
//! read, and a save's events land in the same transaction.

use kai_core::{AgentId, RunId, RunRequestId, UserId};
use time::OffsetDateTime;

use crate::row::Columns;
use crate::{Store, StoreError, from_millis, millis, stored_int, truncate, with_pool};

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunStatus {
    /// Waiting for a worker.
    Queued,
    /// A worker is running it.
    Running,
    /// Stopped until its owner answers a request.
    Waiting,
    /// Stopped by its owner until resumed.
    Paused,
    /// Finished, goal reached.
    Succeeded,
    /// Finished without reaching its goal.
    Failed,
    /// Stopped for good by its owner.
    Cancelled,
}

impl RunStatus {
    /// Its name, as stored and shown.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Waiting => "waiting",
            RunStatus::Paused => "paused",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }

    /// The status named `text`.
    #[must_use]
    pub fn parse(text: &str) -> Option<RunStatus> {
        Some(match text {
            "queued" => RunStatus::Queued,
            "running" => RunStatus::Running,
            "waiting" => RunStatus::Waiting,
            "paused" => RunStatus::Paused,
            "succeeded" => RunStatus::Succeeded,
            "failed" => RunStatus::Failed,
            "cancelled" => RunStatus::Cancelled,
            _ => return None,
        })
    }

    /// Whether the run is over and will never change again.
    #[must_use]
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            RunStatus::Succeeded | RunStatus::Failed | RunStatus::Cancelled
        )
    }
}

/// What an owner asked of a running run, which its worker acts on at its next step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunRequested {
    /// Stop at the next step, resumably.
    Pause,
    /// Stop at the next step, for good.
    Cancel,
}

impl RunRequested {
    fn as_str(self) -> &'static str {
        match self {
            RunRequested::Pause => "pause",
            RunRequested::Cancel => "cancel",
        }
    }
}

/// A run to create, queued.
#[derive(Debug, Clone)]
pub struct NewRun {
    /// Its id.
    pub id: RunId,
    /// The agent it runs.
    pub agent_id: AgentId,
    /// Whose it is.
    pub owner_id: UserId,
    /// What it is asked to do.
    pub goal: String,
    /// The agent's definition as the run starts.
    pub definition: String,
    /// Its first state.
    pub state: String,
}

/// A run as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    /// Its id.
    pub id: RunId,
    /// The agent it runs.
    pub agent_id: AgentId,
    /// Whose it is.
    pub owner_id: UserId,
    /// What it is asked to do.
    pub goal: String,
    /// The agent's definition as the run started.
    pub definition: String,
    /// Where it stands.
    pub status: RunStatus,
    /// What its owner asked of it while it ran.
    pub requested: Option<RunRequested>,
    /// Its saved state.
    pub state: String,
    /// How many times it was saved.
    pub revision: u64,
    /// The number of its timeline's last event.
    pub last_seq: u64,
    /// Why it failed.
    pub error: Option<String>,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// When it last changed.
    pub updated_at: OffsetDateTime,
    /// When it finished.
    pub finished_at: Option<OffsetDateTime>,
}

macro_rules! run_columns {
    () => {
        "id, agent_id, owner_id, goal, definition, status, requested, state, \
     revision, last_seq, error, created_at, updated_at, finished_at"
    };
}

fn run(row: &impl Columns) -> Result<RunRecord, StoreError> {
    let bad = |message: String| StoreError::Corrupt {
        table: "agent_runs",
        message,
    };
    let id = row.text("id")?;
    let status = row.text("status")?;
    let count = |column: &str| -> Result<u64, StoreError> {
        let value = row.int(column)?;
        u64::try_from(value).map_err(|_| bad(format!("run {id}: {column} is {value}")))
    };
    Ok(RunRecord {
        id: id
            .parse()
            .map_err(|_| bad(format!("`{id}` is not an id")))?,
        agent_id: row
            .text("agent_id")?
            .parse()
            .map_err(|_| bad(format!("run {id}: bad agent id")))?,
        owner_id: row
            .text("owner_id")?
            .parse()
            .map_err(|_| bad(format!("run {id}: bad owner id")))?,
        goal: row.text("goal")?,
        definition: row.text("definition")?,
        status: RunStatus::parse(&status)
            .ok_or_else(|| bad(format!("run {id}: unknown status `{status}`")))?,
        requested: match row.opt_text("requested")?.as_deref() {
            None => None,
            Some("pause") => Some(RunRequested::Pause),
            Some("cancel") => Some(RunRequested::Cancel),
            Some(other) => return Err(bad(format!("run {id}: unknown request `{other}`"))),
        },
        state: row.text("state")?,
        revision: count("revision")?,
        last_seq: count("last_seq")?,
        error: row.opt_text("error")?,
        created_at: from_millis(row.int("created_at")?),
        updated_at: from_millis(row.int("updated_at")?),
        finished_at: row.opt_int("finished_at")?.map(from_millis),
    })
}

/// An event to append to a run's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRunEvent {
    /// What happened (`plan`, `tool_call`, …).
    pub kind: String,
    /// Its details, as kai-agent's JSON.
    pub data: String,
}

/// An event of a run's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunEventRecord {
    /// Its place in the timeline, from 1.
    pub seq: u64,
    /// When it happened.
    pub at: OffsetDateTime,
    /// What happened.
    pub kind: String,
    /// Its details, as kai-agent's JSON.
    pub data: String,
}

/// A run's new state, written by the worker that holds it.
#[derive(Debug, Clone)]
pub struct RunSave<'a> {
    /// Where it stands now.
    pub status: RunStatus,
    /// Its state.
    pub state: &'a str,
    /// Why it failed, when it did.
    pub error: Option<&'a str>,
    /// Events to append with it.
    pub events: &'a [NewRunEvent],
}

/// A tool call with side effects, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCallRecord {
    /// Its idempotency key within the run.
    pub call_key: String,
    /// The tool.
    pub tool: String,
    /// Its arguments, JSON.
    pub arguments: String,
    /// Its result once it finished; `None` while its outcome is unknown.
    pub result: Option<String>,
    /// When it was started.
    pub started_at: OffsetDateTime,
}

/// What a run asks its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunRequestKind {
    /// May it make this call?
    Consent,
    /// A question from the agent.
    Question,
    /// A call whose outcome is unknown (the process died during it): run it again or not?
    Outcome,
}

impl RunRequestKind {
    /// Its name, as stored and shown.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            RunRequestKind::Consent => "consent",
            RunRequestKind::Question => "question",
            RunRequestKind::Outcome => "outcome",
        }
    }
}

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunRequestStatus {
    /// Not answered yet.
    Pending,
    /// The owner said yes (or answered the question).
    Approved,
    /// The owner said no.
    Denied,
    /// Nobody answered in time: a denial.
    Expired,
}

impl RunRequestStatus {
    /// Its name, as stored and shown.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            RunRequestStatus::Pending => "pending",
            RunRequestStatus::Approved => "approved",
            RunRequestStatus::Denied => "denied",
            RunRequestStatus::Expired => "expired",
        }
    }
}

/// A request to store.
#[derive(Debug, Clone)]
pub struct NewRunRequest {
    /// Its id.
    pub id: RunRequestId,
    /// The run asking.
    pub run_id: RunId,
    /// The run's owner, who answers.
    pub owner_id: UserId,
    /// The run's agent.
    pub agent_id: AgentId,
    /// The call it is about (its idempotency key); one request per call.
    pub call_key: String,
    /// What it asks.
    pub kind: RunRequestKind,
    /// The tool concerned.
    pub tool: String,
    /// What the owner is shown, as kai-agent's JSON.
    pub details: String,
    /// When it expires as a denial.
    pub expires_at: OffsetDateTime,
}

/// A request as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRequestRecord {
    /// Its id.
    pub id: RunRequestId,
    /// The run asking.
    pub run_id: RunId,
    /// The run's owner.
    pub owner_id: UserId,
    /// The run's agent.
    pub agent_id: AgentId,
    /// The call it is about.
    pub call_key: String,
    /// What it asks.
    pub kind: RunRequestKind,
    /// The tool concerned.
    pub tool: String,
    /// What the owner is shown, as kai-agent's JSON.
    pub details: String,
    /// Where it stands.
    pub status: RunRequestStatus,
    /// The owner's answer to a question, or reason for a decision.
    pub answer: Option<String>,
    /// Whether the owner's decision stands for this agent and tool from now on.
    pub remember: bool,
    /// When it expires as a denial.
    pub expires_at: OffsetDateTime,
    /// When it was asked.
    pub created_at: OffsetDateTime,
    /// When it was answered or expired.
    pub decided_at: Option<OffsetDateTime>,
}

macro_rules! request_columns {
    () => {
        "id, run_id, owner_id, agent_id, call_key, kind, tool, details, \
     status, answer, remember, expires_at, created_at, decided_at"
    };
}

fn request(row: &impl Columns) -> Result<RunRequestRecord, StoreError> {
    let bad = |message: String| StoreError::Corrupt {
        table: "run_requests",
        message,
    };
    let id = row.text("id")?;
    Ok(RunRequestRecord {
        id: id
            .parse()
            .map_err(|_| bad(format!("`{id}` is not an id")))?,
        run_id: row
            .text("run_id")?
            .parse()
            .map_err(|_| bad(format!("request {id}: bad run id")))?,
        owner_id: row
            .text("owner_id")?
            .parse()
            .map_err(|_| bad(format!("request {id}: bad owner id")))?,
        agent_id: row
            .text("agent_id")?
            .parse()
            .map_err(|_| bad(format!("request {id}: bad agent id")))?,
        call_key: row.text("call_key")?,
        kind: match row.text("kind")?.as_str() {
            "consent" => RunRequestKind::Consent,
            "question" => RunRequestKind::Question,
            "outcome" => RunRequestKind::Outcome,
            other => return Err(bad(format!("request {id}: unknown kind `{other}`"))),
        },
        tool: row.text("tool")?,
        details: row.text("details")?,
        status: match row.text("status")?.as_str() {
            "pending" => RunRequestStatus::Pending,
            "approved" => RunRequestStatus::Approved,
            "denied" => RunRequestStatus::Denied,
            "expired" => RunRequestStatus::Expired,
            other => return Err(bad(format!("request {id}: unknown status `{other}`"))),
        },
        answer: row.opt_text("answer")?,
        remember: row.flag("remember")?,
        expires_at: from_millis(row.int("expires_at")?),
        created_at: from_millis(row.int("created_at")?),
        decided_at: row.opt_int("decided_at")?.map(from_millis),
    })
}

/// Appends `$events` to run `$run`'s timeline inside transaction `$tx`: bumping `last_seq`
/// first takes the run's row lock, so concurrent appends get consecutive numbers.
macro_rules! append_events {
    ($tx:expr, $run:expr, $events:expr, $now:expr) => {{
        let events: &[NewRunEvent] = $events;
        if !events.is_empty() {
            let count = stored_int(events.len() as u64, "a batch of events")?;
            let last: Option<i64> = sqlx::query_scalar(
                "UPDATE agent_runs SET last_seq = last_seq + $2 WHERE id = $1 RETURNING last_seq",
            )
            .bind($run)
            .bind(count)
            .fetch_optional(&mut *$tx)
            .await?;
            let Some(last) = last else {
                return Err(StoreError::Conflict("no such run"));
            };
            for (seq, event) in (last - count + 1..).zip(events) {
                sqlx::query(
                    "INSERT INTO run_events (run_id, seq, at, kind, data) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind($run)
                .bind(seq)
                .bind($now)
                .bind(&event.kind)
                .bind(&event.data)
                .execute(&mut *$tx)
                .await?;
            }
        }
    }};
}

impl Store {
    /// Creates a queued run, with the first events of its timeline.
    pub async fn create_run(
        &self,
        new: &NewRun,
        events: &[NewRunEvent],
    ) -> Result<RunRecord, StoreError> {
        let now = millis(truncate(OffsetDateTime::now_utc()));
        let id = new.id.to_string();
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO agent_runs (id, agent_id, owner_id, goal, definition, status, state, \
                     revision, last_seq, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, 'queued', $6, 0, 0, $7, $7)",
            )
            .bind(&id)
            .bind(new.agent_id.to_string())
            .bind(new.owner_id.to_string())
            .bind(&new.goal)
            .bind(&new.definition)
            .bind(&new.state)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            append_events!(tx, &id, events, now);
            tx.commit().await?;
        });
        self.run(new.id)
            .await?
            .ok_or(StoreError::Conflict("no such run"))
    }

    /// A run, whoever's it is: callers check the owner.
    pub async fn run(&self, id: RunId) -> Result<Option<RunRecord>, StoreError> {
        let sql = concat!("SELECT ", run_columns!(), " FROM agent_runs WHERE id = $1");
        with_pool!(self, |pool| {
            sqlx::query(sql)
                .bind(id.to_string())
                .fetch_optional(pool)
                .await?
                .as_ref()
                .map(run)
                .transpose()
        })
    }

    /// The owner's runs (of one agent, when given), newest first, at most `limit`.
    pub async fn runs(
        &self,
        owner: UserId,
        agent: Option<AgentId>,
        limit: u32,
    ) -> Result<Vec<RunRecord>, StoreError> {
        let sql = concat!(
            "SELECT ",
            run_columns!(),
            " FROM agent_runs WHERE owner_id = $1 \
                 AND ($2 IS NULL OR agent_id = $2) \
             ORDER BY created_at DESC, id DESC LIMIT $3"
        );
        with_pool!(self, |pool| {
            sqlx::query(sql)
                .bind(owner.to_string())
                .bind(agent.map(|id| id.to_string()))
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
                .iter()
                .map(run)
                .collect()
        })
    }

    /// Whether one of the agent's runs is in `status`.
    pub async fn agent_has_run_in(
        &self,
        agent: AgentId,
        status: RunStatus,
    ) -> Result<bool, StoreError> {
        let found: Option<i32> = with_pool!(self, |pool| {
            sqlx::query_scalar(
                "SELECT 1 FROM agent_runs WHERE agent_id = $1 AND status = $2 LIMIT 1",
            )
            .bind(agent.to_string())
            .bind(status.as_str())
            .fetch_optional(pool)
            .await?
        });
        Ok(found.is_some())
    }

    /// Saves a run's state, status and events, if it is still at `revision` (nobody else wrote
    /// it since it was read). A save that stops the run also clears what its owner asked.
    /// `None` when the revision moved on: the caller no longer holds the run.
    pub async fn save_run(
        &self,
        id: RunId,
        revision: u64,
        save: &RunSave<'_>,
    ) -> Result<Option<RunRecord>, StoreError> {
        let now = millis(truncate(OffsetDateTime::now_utc()));
        let revision = stored_int(revision, "a run's revision")?;
        let id_text = id.to_string();
        let finished = save.status.is_finished();
        let select = concat!("SELECT ", run_columns!(), " FROM agent_runs WHERE id = $1");
        let saved = with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let updated = sqlx::query(
                "UPDATE agent_runs SET status = $3, state = $4, error = $5, \
                     revision = revision + 1, updated_at = $6, \
                     requested = CASE WHEN $3 = 'running' THEN requested ELSE NULL END, \
                     finished_at = CASE WHEN $7 THEN $6 ELSE NULL END \
                 WHERE id = $1 AND revision = $2",
            )
            .bind(&id_text)
            .bind(revision)
            .bind(save.status.as_str())
            .bind(save.state)
            .bind(save.error)
            .bind(now)
            .bind(finished)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            let saved = if updated == 1 {
                append_events!(tx, &id_text, save.events, now);
                // Read before committing: the row lock is still held, so `last_seq` counts
                // this save's events and no one else's.
                sqlx::query(select)
                    .bind(&id_text)
                    .fetch_optional(&mut *tx)
                    .await?
                    .as_ref()
                    .map(run)
                    .transpose()?
            } else {
                None
            };
            tx.commit().await?;
            saved
        });
        Ok(saved)
    }

    /// Moves a run from one of the `from` statuses to `to`, clearing what its owner asked and
    /// appending `events`; `None` when it was in none of them (or does not exist).
    pub async fn set_run_status(
        &self,
        id: RunId,
        from: &[RunStatus],
        to: RunStatus,
        error: Option<&str>,
        events: &[NewRunEvent],
    ) -> Result<Option<RunRecord>, StoreError> {
        let now = millis(truncate(OffsetDateTime::now_utc()));
        let id_text = id.to_string();
        let allowed = from
            .iter()
            .map(|status| format!("'{}'", status.as_str()))
            .collect::<Vec<_>>()
            .join(", ");
        // Safe to build: the statuses are the enum's own names, never the caller's text.
        let sql = format!(
            "UPDATE agent_runs SET status = $2, error = COALESCE($3, error), \
                 revision = revision + 1, updated_at = $4, requested = NULL, \
                 finished_at = CASE WHEN $5 THEN $4 ELSE NULL END \
             WHERE id = $1 AND status IN ({allowed})"
        );
        let select = concat!("SELECT ", run_columns!(), " FROM agent_runs WHERE id = $1");
        let moved = with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let updated = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(&id_text)
                .bind(to.as_str())
                .bind(error)
                .bind(now)
                .bind(to.is_finished())
                .execute(&mut *tx)
                .await?
                .rows_affected();
            let moved = if updated == 1 {
                append_events!(tx, &id_text, events, now);
                // Read before committing, as `save_run` does.
                sqlx::query(select)
                    .bind(&id_text)
                    .fetch_optional(&mut *tx)
                    .await?
                    .as_ref()
                    .map(run)
                    .transpose()?
            } else {
                None
            };
            tx.commit().await?;
            moved
        });
        Ok(moved)
    }

    /// Asks a running run to pause or cancel at its next step; `false` when it is not running.
    pub async fn request_run(
        &self,
        id: RunId,
        requested: RunRequested,
    ) -> Result<bool, StoreError> {
        with_pool!(self, |pool| {
            let updated = sqlx::query(
                "UPDATE agent_runs SET requested = $2 WHERE id = $1 AND status = 'running'",
            )
            .bind(id.to_string())
            .bind(requested.as_str())
            .execute(pool)
            .await?
            .rows_affected();
            Ok(updated == 1)
        })
    }

    /// Appends events to a run's timeline; returns the run as it is after them (its
    /// `last_seq` numbers the last of them), `None` when there is no such run.
    pub async fn append_run_events(
        &self,
        id: RunId,
        events: &[NewRunEvent],
    ) -> Result<Option<RunRecord>, StoreError> {
        let now = millis(truncate(OffsetDateTime::now_utc()));
        let id_text = id.to_string();
        let select = concat!("SELECT ", run_columns!(), " FROM agent_runs WHERE id = $1");
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            append_events!(tx, &id_text, events, now);
            let record = sqlx::query(select)
                .bind(&id_text)
                .fetch_optional(&mut *tx)
                .await?
                .as_ref()
                .map(run)
                .transpose()?;
            tx.commit().await?;
            Ok(record)
        })
    }

    /// A run's events after number `after`, in order, at most `limit`.
    pub async fn run_events(
        &self,
        id: RunId,
        after: u64,
        limit: u32,
    ) -> Result<Vec<RunEventRecord>, StoreError> {
        let after = stored_int(after, "an event number")?;
        let rows: Vec<(i64, i64, String, String)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT seq, at, kind, data FROM run_events WHERE run_id = $1 AND seq > $2 \
                 ORDER BY seq LIMIT $3",
            )
            .bind(id.to_string())
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|(seq, at, kind, data)| {
                Ok(RunEventRecord {
                    seq: u64::try_from(seq).map_err(|_| StoreError::Corrupt {
                        table: "run_events",
                        message: format!("run {id}: event number {seq}"),
                    })?,
                    at: from_millis(at),
                    kind,
                    data,
                })
            })
            .collect()
    }

    /// Records that a call with side effects is starting, under its idempotency key. When the
    /// key is already recorded, nothing is written and the earlier record is returned: a
    /// settled one holds the result, an unsettled one is a call whose outcome is unknown.
    pub async fn begin_tool_call(
        &self,
        run_id: RunId,
        call_key: &str,
        tool: &str,
        arguments: &str,
    ) -> Result<Option<ToolCallRecord>, StoreError> {
        let now = millis(truncate(OffsetDateTime::now_utc()));
        let inserted = with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO tool_calls (run_id, call_key, tool, arguments, state, started_at) \
                 VALUES ($1, $2, $3, $4, 'started', $5) ON CONFLICT (run_id, call_key) DO NOTHING",
            )
            .bind(run_id.to_string())
            .bind(call_key)
            .bind(tool)
            .bind(arguments)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
        });
        if inserted == 1 {
            Ok(None)
        } else {
            self.tool_call(run_id, call_key).await
        }
    }

    /// The call recorded under `call_key`.
    pub async fn tool_call(
        &self,
        run_id: RunId,
        call_key: &str,
    ) -> Result<Option<ToolCallRecord>, StoreError> {
        let row: Option<(String, String, Option<String>, i64)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT tool, arguments, result, started_at FROM tool_calls \
                 WHERE run_id = $1 AND call_key = $2",
            )
            .bind(run_id.to_string())
            .bind(call_key)
            .fetch_optional(pool)
            .await?
        });
        Ok(
            row.map(|(tool, arguments, result, started_at)| ToolCallRecord {
                call_key: call_key.to_owned(),
                tool,
                arguments,
                result,
                started_at: from_millis(started_at),
            }),
        )
    }

    /// Settles a started call with its result.
    pub async fn finish_tool_call(
        &self,
        run_id: RunId,
        call_key: &str,
        result: &str,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE tool_calls SET state = 'done', result = $3, finished_at = $4 \
                 WHERE run_id = $1 AND call_key = $2",
            )
            .bind(run_id.to_string())
            .bind(call_key)
            .bind(result)
            .bind(millis(OffsetDateTime::now_utc()))
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Stores a request, or returns the one already asked for the same call.
    pub async fn create_run_request(
        &self,
        new: &NewRunRequest,
    ) -> Result<RunRequestRecord, StoreError> {
        let now = millis(truncate(OffsetDateTime::now_utc()));
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO run_requests (id, run_id, owner_id, agent_id, call_key, kind, tool, \
                     details, status, expires_at, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $10) \
                 ON CONFLICT (run_id, call_key) DO NOTHING",
            )
            .bind(new.id.to_string())
            .bind(new.run_id.to_string())
            .bind(new.owner_id.to_string())
            .bind(new.agent_id.to_string())
            .bind(&new.call_key)
            .bind(new.kind.as_str())
            .bind(&new.tool)
            .bind(&new.details)
            .bind(millis(new.expires_at))
            .bind(now)
            .execute(pool)
            .await?;
        });
        self.run_request_for_call(new.run_id, &new.call_key)
            .await?
            .ok_or(StoreError::Conflict("no such run"))
    }

    /// The request asked for a call.
    pub async fn run_request_for_call(
        &self,
        run_id: RunId,
        call_key: &str,
    ) -> Result<Option<RunRequestRecord>, StoreError> {
        let sql = concat!(
            "SELECT ",
            request_columns!(),
            " FROM run_requests WHERE run_id = $1 AND call_key = $2"
        );
        with_pool!(self, |pool| {
            sqlx::query(sql)
                .bind(run_id.to_string())
                .bind(call_key)
                .fetch_optional(pool)
                .await?
                .as_ref()
                .map(request)
                .transpose()
        })
    }

    /// The owner's request.
    pub async fn run_request(
        &self,
        owner: UserId,
        id: RunRequestId,
    ) -> Result<Option<RunRequestRecord>, StoreError> {
        let sql = concat!(
            "SELECT ",
            request_columns!(),
            " FROM run_requests WHERE id = $1 AND owner_id = $2"
        );
        with_pool!(self, |pool| {
            sqlx::query(sql)
                .bind(id.to_string())
                .bind(owner.to_string())
                .fetch_optional(pool)
                .await?
                .as_ref()
                .map(request)
                .transpose()
        })
    }

    /// The owner's requests (of one run, when given; only pending ones, when asked), oldest
    /// first.
    pub async fn run_requests(
        &self,
        owner: UserId,
        run: Option<RunId>,
        pending_only: bool,
    ) -> Result<Vec<RunRequestRecord>, StoreError> {
        let sql = concat!(
            "SELECT ",
            request_columns!(),
            " FROM run_requests WHERE owner_id = $1 \
                 AND ($2 IS NULL OR run_id = $2) AND (NOT $3 OR status = 'pending') \
             ORDER BY created_at, id"
        );
        with_pool!(self, |pool| {
            sqlx::query(sql)
                .bind(owner.to_string())
                .bind(run.map(|id| id.to_string()))
                .bind(pending_only)
                .fetch_all(pool)
                .await?
                .iter()
                .map(request)
                .collect()
        })
    }

    /// Records the owner's answer to a pending request that has not expired; `None` when it is
    /// not theirs, already answered, or expired.
    pub async fn decide_run_request(
        &self,
        owner: UserId,
        id: RunRequestId,
        approve: bool,
        answer: Option<&str>,
        remember: bool,
    ) -> Result<Option<RunRequestRecord>, StoreError> {
        let now = millis(truncate(OffsetDateTime::now_utc()));
        let sql = concat!(
            "UPDATE run_requests SET status = $3, answer = $4, remember = $5, decided_at = $6 \
             WHERE id = $1 AND owner_id = $2 AND status = 'pending' AND expires_at > $6 \
             RETURNING ",
            request_columns!(),
            ""
        );
        let status = if approve {
            RunRequestStatus::Approved
        } else {
            RunRequestStatus::Denied
        };
        with_pool!(self, |pool| {
            sqlx::query(sql)
                .bind(id.to_string())
                .bind(owner.to_string())
                .bind(status.as_str())
                .bind(answer)
                .bind(remember)
                .bind(now)
                .fetch_optional(pool)
                .await?
                .as_ref()
                .map(request)
                .transpose()
        })
    }

    /// Marks every pending request past its expiry as expired, and returns them.
    pub async fn expire_run_requests(
        &self,
        now: OffsetDateTime,
    ) -> Result<Vec<RunRequestRecord>, StoreError> {
        let sql = concat!(
            "UPDATE run_requests SET status = 'expired', decided_at = $1 \
             WHERE status = 'pending' AND expires_at <= $1 RETURNING ",
            request_columns!(),
            ""
        );
        with_pool!(self, |pool| {
            sqlx::query(sql)
                .bind(millis(now))
                .fetch_all(pool)
                .await?
                .iter()
                .map(request)
                .collect()
        })
    }
}
