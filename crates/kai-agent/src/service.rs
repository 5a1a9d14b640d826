//! [`Agents`]: the service behind `/api/v1/agents`, `/api/v1/runs`, `/api/v1/prompts` and
//! `kai agent`: definitions and templates, starting and steering runs, answering what runs ask,
//! and the job handler that works on runs.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use kai_audit::{Action, Actor, AuditError, AuditLog, Event, Outcome};
use kai_config::AgentSettings;
use kai_core::{AgentId, ApiKeyId, PromptId, RunId, RunRequestId, UserId};
use kai_events::Events;
use kai_gateway::Gateway;
use kai_jobs::Queue;
use kai_knowledge::Knowledge;
use kai_store::{
    AgentRecord, NewAgent, NewJob, NewPrompt, NewRun, NewRunEvent, PromptRecord, RunEventRecord,
    RunRecord, RunRequestKind, RunRequestRecord, RunRequested, RunStatus, Store, StoreError,
};
use time::OffsetDateTime;
use tokio::sync::watch;

use crate::definition::AgentDefinition;
use crate::prompt;
use crate::state::{RunEvent, RunState};

/// The job kind that works on a run.
pub const RUN_JOB: &str = "agent-run";

/// Attempts at one run job: each crash or lost lease counts one.
const RUN_JOB_ATTEMPTS: u32 = 10;

/// Why an agent operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// No such thing (or not the caller's: the same answer).
    #[error("{0} not found")]
    NotFound(String),
    /// The input is not acceptable; the message says what to fix.
    #[error("{0}")]
    Invalid(String),
    /// It conflicts with what exists (a name taken, a run in the wrong state).
    #[error("{0}")]
    Conflict(String),
    /// The audit log could not record the action, so it was not done.
    #[error("the audit log cannot record this: {0}")]
    Audit(#[from] AuditError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An agent as the API shows it.
#[derive(Debug, Clone)]
pub struct AgentView {
    /// As stored.
    pub record: AgentRecord,
    /// Its definition, read.
    pub definition: AgentDefinition,
    /// The owner's standing answers, by tool (`true`: allowed).
    pub grants: Vec<(String, bool)>,
}

/// A run as the API shows it.
#[derive(Debug, Clone)]
pub struct RunView {
    /// As stored.
    pub record: RunRecord,
    /// Its state, read.
    pub state: RunState,
}

impl RunView {
    /// The final answer of a run that succeeded: its last step's summary.
    #[must_use]
    pub fn answer(&self) -> Option<&str> {
        (self.record.status == RunStatus::Succeeded)
            .then(|| self.state.results.last().map(|r| r.output.as_str()))
            .flatten()
    }
}

/// A run job's payload.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct RunJob {
    pub(crate) run: String,
}

pub(crate) struct Inner {
    pub(crate) store: Store,
    pub(crate) gateway: Gateway,
    pub(crate) queue: Queue,
    pub(crate) audit: AuditLog,
    pub(crate) knowledge: Option<Knowledge>,
    pub(crate) settings: AgentSettings,
    pub(crate) workspaces: PathBuf,
    pub(crate) web: crate::tools::Web,
    pub(crate) shell: Arc<crate::tools::Shell>,
    pub(crate) mcp: Arc<kai_mcp::McpServers>,
    /// Where runs' progress and requests are published for the owner's devices.
    pub(crate) events: Events,
    /// Per run worked on in this process, a signal to look at what its owner asked now.
    pub(crate) controls: Mutex<HashMap<RunId, watch::Sender<u64>>>,
    /// Bumped whenever this process changes a run, for event streams to look again.
    pub(crate) changes: watch::Sender<u64>,
}

/// The agents service. Cheap to clone.
#[derive(Clone)]
pub struct Agents {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Agents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agents")
            .field("workspaces", &self.inner.workspaces)
            .finish_non_exhaustive()
    }
}

/// Where to find an agent: its id, or its owner's name for it.
fn agent_key(key: &str) -> Result<AgentId, &str> {
    key.parse().map_err(|_| key)
}

impl Agents {
    /// The service. `knowledge` is `None` in processes that do not serve it; agents' knowledge
    /// tools then say so. `mcp` are the MCP servers agents may name; runs' progress and
    /// requests are published to `events`. Fails when `settings.http_allow` does not parse.
    #[allow(clippy::too_many_arguments)] // the services an agent reaches, each its own
    pub fn new(
        store: Store,
        gateway: Gateway,
        queue: Queue,
        audit: AuditLog,
        knowledge: Option<Knowledge>,
        mcp: kai_mcp::McpServers,
        events: Events,
        settings: AgentSettings,
        workspaces: PathBuf,
    ) -> Result<Agents, AgentError> {
        let web = crate::tools::Web::new(&settings.http_allow).map_err(AgentError::Invalid)?;
        Ok(Agents {
            inner: Arc::new(Inner {
                store,
                gateway,
                queue,
                audit,
                knowledge,
                settings,
                workspaces,
                web,
                shell: Arc::default(),
                mcp: Arc::new(mcp),
                events,
                controls: Mutex::default(),
                changes: watch::Sender::new(0),
            }),
        })
    }

    /// The model of agents whose definition names none (`agents.default_model`).
    #[must_use]
    pub fn default_model(&self) -> &str {
        &self.inner.settings.default_model
    }

    pub(crate) fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Tells event streams in this process that runs changed.
    pub(crate) fn notify(&self) {
        self.inner.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Publishes `run`'s events just `appended` and, when it moved from `previous`, its
    /// status.
    pub(crate) async fn published(
        &self,
        run: &RunRecord,
        appended: &[NewRunEvent],
        previous: Option<RunStatus>,
    ) {
        self.inner.events.run_events(run, appended).await;
        if previous != Some(run.status) {
            self.inner.events.run_status(run).await;
        }
    }

    /// A receiver that changes whenever this process changes a run; streams of another
    /// process's runs should also poll.
    #[must_use]
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.inner.changes.subscribe()
    }

    async fn audit(&self, event: Event) -> Result<(), AgentError> {
        self.inner.audit.record(event).await?;
        Ok(())
    }

    fn read_definition(record: &AgentRecord) -> Result<AgentDefinition, AgentError> {
        serde_json::from_str(&record.definition).map_err(|err| {
            AgentError::Store(StoreError::Corrupt {
                table: "agents",
                message: format!("agent {}: {err}", record.id),
            })
        })
    }

    async fn view(&self, record: AgentRecord) -> Result<AgentView, AgentError> {
        let definition = Self::read_definition(&record)?;
        let grants = self
            .store()
            .consent_grants(record.id)
            .await?
            .into_iter()
            .map(|grant| (grant.tool, grant.allow))
            .collect();
        Ok(AgentView {
            record,
            definition,
            grants,
        })
    }

    /// Checks a name and definition, including that a stored prompt it names exists and that
    /// its own instructions use only variables it gives.
    async fn check(
        &self,
        owner: UserId,
        name: &str,
        definition: &AgentDefinition,
    ) -> Result<(), AgentError> {
        check_name("an agent's name", name)?;
        definition.check().map_err(AgentError::Invalid)?;
        let hook_servers = definition
            .hooks
            .iter()
            .filter_map(|hook| hook.mcp.as_ref().map(|mcp| &mcp.server));
        for server in definition.mcp_servers.iter().chain(hook_servers) {
            if !self
                .inner
                .mcp
                .configs()
                .any(|config| &config.name == server)
            {
                let known: Vec<&str> = self.inner.mcp.configs().map(|c| c.name.as_str()).collect();
                return Err(AgentError::Invalid(format!(
                    "there is no MCP server `{server}`; {}",
                    if known.is_empty() {
                        "an admin configures them as [[mcp_servers]]".to_owned()
                    } else {
                        format!("the configured ones are {}", known.join(", "))
                    }
                )));
            }
        }
        match (&definition.instructions, &definition.prompt) {
            (Some(text), _) => {
                let declared: Vec<String> = definition.variables.keys().cloned().collect();
                prompt::check(text, &declared)
                    .map_err(|err| AgentError::Invalid(format!("instructions: {err}")))?;
            }
            (None, Some(reference)) => {
                let (template, _) = self.resolve_prompt(owner, reference).await?;
                let values = self.template_values(definition, "", "");
                prompt::render(&template.template, &declared(&template), &values)
                    .map_err(|err| AgentError::Invalid(format!("prompt `{reference}`: {err}")))?;
            }
            (None, None) => {}
        }
        Ok(())
    }

    /// The values a run's template is rendered with: the agent's variables and what kai
    /// provides.
    pub(crate) fn template_values(
        &self,
        definition: &AgentDefinition,
        agent: &str,
        goal: &str,
    ) -> serde_json::Map<String, serde_json::Value> {
        let now = OffsetDateTime::now_utc();
        let mut values = definition.variables.clone();
        values.insert("goal".into(), goal.into());
        values.insert("agent".into(), agent.into());
        values.insert(
            "date".into(),
            format!(
                "{:04}-{:02}-{:02}",
                now.year(),
                u8::from(now.month()),
                now.day()
            )
            .into(),
        );
        values.insert(
            "now".into(),
            now.format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default()
                .into(),
        );
        values.insert("tools".into(), definition.tools.clone().into());
        values
    }

    /// A stored prompt by `NAME` or `NAME@VERSION`, with the version asked.
    pub(crate) async fn resolve_prompt(
        &self,
        owner: UserId,
        reference: &str,
    ) -> Result<(PromptRecord, Option<u32>), AgentError> {
        let (name, version) = match reference.rsplit_once('@') {
            Some((name, version)) => {
                let version: u32 = version.parse().map_err(|_| {
                    AgentError::Invalid(format!(
                        "`{reference}`: a prompt is NAME or NAME@VERSION, with VERSION a number"
                    ))
                })?;
                (name, Some(version))
            }
            None => (reference, None),
        };
        let record = self
            .store()
            .prompt_by_name(owner, name, version)
            .await?
            .ok_or_else(|| AgentError::NotFound(format!("prompt `{reference}`")))?;
        Ok((record, version))
    }

    /// Defines an agent.
    pub async fn create(
        &self,
        owner: UserId,
        name: &str,
        definition: AgentDefinition,
    ) -> Result<AgentView, AgentError> {
        self.check(owner, name, &definition).await?;
        let record = self
            .store()
            .create_agent(&NewAgent {
                id: AgentId::new(),
                owner_id: owner,
                name: name.to_owned(),
                definition: serde_json::to_string(&definition).unwrap_or_default(),
            })
            .await
            .map_err(conflict(
                "an agent with this name already exists; pick another name",
            ))?;
        self.audit(
            Event::new(
                Actor::User(owner),
                Action::AgentCreate,
                format!("agent:{}", record.id),
                Outcome::Success,
            )
            .with("name", name),
        )
        .await?;
        self.view(record).await
    }

    /// Replaces an agent's name and definition. Runs already started keep the definition they
    /// started with.
    pub async fn update(
        &self,
        owner: UserId,
        key: &str,
        name: &str,
        definition: AgentDefinition,
    ) -> Result<AgentView, AgentError> {
        let id = self.agent(owner, key).await?.record.id;
        self.check(owner, name, &definition).await?;
        let record = self
            .store()
            .update_agent(
                owner,
                id,
                name,
                &serde_json::to_string(&definition).unwrap_or_default(),
            )
            .await
            .map_err(conflict(
                "an agent with this name already exists; pick another name",
            ))?
            .ok_or_else(|| AgentError::NotFound(format!("agent `{key}`")))?;
        self.audit(
            Event::new(
                Actor::User(owner),
                Action::AgentUpdate,
                format!("agent:{id}"),
                Outcome::Success,
            )
            .with("name", name),
        )
        .await?;
        self.view(record).await
    }

    /// An agent, by id or name.
    pub async fn agent(&self, owner: UserId, key: &str) -> Result<AgentView, AgentError> {
        let record = match agent_key(key) {
            Ok(id) => self.store().agent(owner, id).await?,
            Err(name) => self.store().agent_by_name(owner, name).await?,
        }
        .ok_or_else(|| AgentError::NotFound(format!("agent `{key}`")))?;
        self.view(record).await
    }

    /// The owner's agents, by name.
    pub async fn agents(&self, owner: UserId) -> Result<Vec<AgentView>, AgentError> {
        let mut views = Vec::new();
        for record in self.store().agents(owner).await? {
            views.push(self.view(record).await?);
        }
        Ok(views)
    }

    /// Deletes an agent with its runs. Refused while one of its runs is working.
    pub async fn delete(&self, owner: UserId, key: &str) -> Result<(), AgentError> {
        let id = self.agent(owner, key).await?.record.id;
        if self
            .store()
            .agent_has_run_in(id, RunStatus::Running)
            .await?
        {
            return Err(AgentError::Conflict(
                "the agent has a run working now: cancel it first".into(),
            ));
        }
        self.audit(Event::new(
            Actor::User(owner),
            Action::AgentDelete,
            format!("agent:{id}"),
            Outcome::Success,
        ))
        .await?;
        self.store().delete_agent(owner, id).await?;
        Ok(())
    }

    /// Forgets the owner's standing answer for an agent and tool.
    pub async fn revoke_grant(
        &self,
        owner: UserId,
        key: &str,
        tool: &str,
    ) -> Result<(), AgentError> {
        let id = self.agent(owner, key).await?.record.id;
        if !self.store().delete_consent_grant(id, tool).await? {
            return Err(AgentError::NotFound(format!(
                "a standing answer for `{tool}`"
            )));
        }
        Ok(())
    }

    /// Stores a prompt template.
    pub async fn create_prompt(
        &self,
        owner: UserId,
        name: &str,
        description: &str,
        template: &str,
        variables: Vec<String>,
    ) -> Result<PromptRecord, AgentError> {
        check_name("a prompt's name", name)?;
        prompt::check(template, &variables).map_err(|err| AgentError::Invalid(err.to_string()))?;
        self.store()
            .create_prompt(&NewPrompt {
                id: PromptId::new(),
                owner_id: owner,
                name: name.to_owned(),
                description: description.to_owned(),
                template: template.to_owned(),
                variables: serde_json::to_string(&variables).unwrap_or_default(),
            })
            .await
            .map_err(conflict(
                "a prompt with this name already exists; add a version to it instead",
            ))
    }

    /// Stores a new version of a template.
    pub async fn add_prompt_version(
        &self,
        owner: UserId,
        name: &str,
        description: Option<&str>,
        template: &str,
        variables: Vec<String>,
    ) -> Result<PromptRecord, AgentError> {
        prompt::check(template, &variables).map_err(|err| AgentError::Invalid(err.to_string()))?;
        let id = self.prompt(owner, name, None).await?.id;
        self.store()
            .add_prompt_version(
                owner,
                id,
                description,
                template,
                &serde_json::to_string(&variables).unwrap_or_default(),
            )
            .await?
            .ok_or_else(|| AgentError::NotFound(format!("prompt `{name}`")))
    }

    /// A template by name, at a version or its newest.
    pub async fn prompt(
        &self,
        owner: UserId,
        name: &str,
        version: Option<u32>,
    ) -> Result<PromptRecord, AgentError> {
        self.store()
            .prompt_by_name(owner, name, version)
            .await?
            .ok_or_else(|| AgentError::NotFound(format!("prompt `{name}`")))
    }

    /// The owner's templates.
    pub async fn prompts(&self, owner: UserId) -> Result<Vec<PromptRecord>, AgentError> {
        Ok(self.store().prompts(owner).await?)
    }

    /// Every version of a template.
    pub async fn prompt_versions(
        &self,
        owner: UserId,
        name: &str,
    ) -> Result<Vec<PromptRecord>, AgentError> {
        let id = self.prompt(owner, name, None).await?.id;
        Ok(self.store().prompt_versions(owner, id).await?)
    }

    /// Deletes a template with its versions.
    pub async fn delete_prompt(&self, owner: UserId, name: &str) -> Result<(), AgentError> {
        let id = self.prompt(owner, name, None).await?.id;
        self.store().delete_prompt(owner, id).await?;
        Ok(())
    }

    /// Starts a run of an agent towards `goal`: queued, for a worker to take. Model calls
    /// count against `api_key`'s budgets when it was started with one.
    pub async fn start(
        &self,
        owner: UserId,
        key: &str,
        goal: &str,
        api_key: Option<ApiKeyId>,
    ) -> Result<RunView, AgentError> {
        self.start_as(owner, key, goal, api_key, RunId::new()).await
    }

    /// [`Agents::start`] with the run's id chosen by the caller; a run that already has it is
    /// returned as it is (a scheduled fire retried after a crash).
    pub(crate) async fn start_as(
        &self,
        owner: UserId,
        key: &str,
        goal: &str,
        api_key: Option<ApiKeyId>,
        id: RunId,
    ) -> Result<RunView, AgentError> {
        if let Some(existing) = self.store().run(id).await? {
            return Self::run_view(existing);
        }
        let goal = goal.trim();
        if goal.is_empty() {
            return Err(AgentError::Invalid(
                "the goal is empty: say what the agent should do".into(),
            ));
        }
        if goal.chars().count() > 16_000 {
            return Err(AgentError::Invalid(
                "a goal is at most 16000 characters".into(),
            ));
        }
        if goal.contains('\0') {
            return Err(AgentError::Invalid("the goal holds a NUL character".into()));
        }
        let agent = self.agent(owner, key).await?;
        let model = agent
            .definition
            .model_or(&self.inner.settings.default_model)
            .to_owned();
        let state = RunState {
            api_key: api_key.map(|id| id.to_string()),
            ..RunState::default()
        };
        self.audit(
            Event::new(
                Actor::User(owner),
                Action::AgentRunStart,
                format!("run:{id}"),
                Outcome::Success,
            )
            .with("agent", agent.record.id.to_string())
            .with("goal", goal),
        )
        .await?;
        let created = [RunEvent::Created {
            goal: goal.to_owned(),
            model,
        }
        .to_new()];
        let record = self
            .store()
            .create_run(
                &NewRun {
                    id,
                    agent_id: agent.record.id,
                    owner_id: owner,
                    goal: goal.to_owned(),
                    definition: agent.record.definition.clone(),
                    state: serde_json::to_string(&state).unwrap_or_default(),
                },
                &created,
            )
            .await?;
        self.enqueue(&record).await?;
        self.notify();
        self.published(&record, &created, None).await;
        Ok(RunView { record, state })
    }

    pub(crate) async fn enqueue(&self, run: &RunRecord) -> Result<(), AgentError> {
        self.inner
            .queue
            .enqueue(&NewJob {
                kind: RUN_JOB.into(),
                payload: serde_json::to_string(&RunJob {
                    run: run.id.to_string(),
                })
                .unwrap_or_default(),
                priority: 0,
                max_attempts: RUN_JOB_ATTEMPTS,
                run_at: OffsetDateTime::now_utc(),
                dedupe_key: Some(format!("{RUN_JOB}:{}:{}", run.id, run.revision)),
            })
            .await?;
        Ok(())
    }

    fn run_view(record: RunRecord) -> Result<RunView, AgentError> {
        let state = serde_json::from_str(&record.state).map_err(|err| {
            AgentError::Store(StoreError::Corrupt {
                table: "agent_runs",
                message: format!("run {}: {err}", record.id),
            })
        })?;
        Ok(RunView { record, state })
    }

    /// The owner's run.
    pub async fn run(&self, owner: UserId, id: RunId) -> Result<RunView, AgentError> {
        let record = self
            .store()
            .run(id)
            .await?
            .filter(|run| run.owner_id == owner)
            .ok_or_else(|| AgentError::NotFound(format!("run {id}")))?;
        Self::run_view(record)
    }

    /// The owner's runs (of one agent, when given), newest first.
    pub async fn runs(
        &self,
        owner: UserId,
        agent: Option<&str>,
        limit: u32,
    ) -> Result<Vec<RunView>, AgentError> {
        let agent = match agent {
            Some(key) => Some(self.agent(owner, key).await?.record.id),
            None => None,
        };
        self.store()
            .runs(owner, agent, limit)
            .await?
            .into_iter()
            .map(Self::run_view)
            .collect()
    }

    /// A run's timeline after event `after`.
    pub async fn events(
        &self,
        owner: UserId,
        id: RunId,
        after: u64,
        limit: u32,
    ) -> Result<Vec<RunEventRecord>, AgentError> {
        self.run(owner, id).await?;
        Ok(self.store().run_events(id, after, limit).await?)
    }

    fn signal(&self, id: RunId) {
        let controls = self
            .inner
            .controls
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(control) = controls.get(&id) {
            control.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// Pauses a run: at once when it is not working, else at its next step.
    pub async fn pause(&self, owner: UserId, id: RunId) -> Result<RunView, AgentError> {
        let run = self.run(owner, id).await?;
        let paused = [RunEvent::Paused.to_new()];
        let moved = self
            .store()
            .set_run_status(
                id,
                &[RunStatus::Queued, RunStatus::Waiting],
                RunStatus::Paused,
                None,
                &paused,
            )
            .await?;
        if let Some(moved) = &moved {
            self.published(moved, &paused, Some(run.record.status))
                .await;
        } else {
            if !self.store().request_run(id, RunRequested::Pause).await? {
                return Err(AgentError::Conflict(format!(
                    "the run is {}; only a queued, waiting or running run can be paused",
                    run.record.status.as_str()
                )));
            }
            self.signal(id);
        }
        self.notify();
        self.run(owner, id).await
    }

    /// Resumes a paused run.
    pub async fn resume(&self, owner: UserId, id: RunId) -> Result<RunView, AgentError> {
        let run = self.run(owner, id).await?;
        let queued = [RunEvent::Queued.to_new()];
        let record = self
            .store()
            .set_run_status(id, &[RunStatus::Paused], RunStatus::Queued, None, &queued)
            .await?
            .ok_or_else(|| {
                AgentError::Conflict(format!(
                    "the run is {}; only a paused run can be resumed",
                    run.record.status.as_str()
                ))
            })?;
        self.enqueue(&record).await?;
        self.notify();
        self.published(&record, &queued, Some(run.record.status))
            .await;
        Self::run_view(record)
    }

    /// Cancels a run: at once when it is not working, else at its next step (its model call
    /// or tool call in flight in this process is abandoned).
    pub async fn cancel(&self, owner: UserId, id: RunId) -> Result<RunView, AgentError> {
        let run = self.run(owner, id).await?;
        if run.record.status.is_finished() {
            return Err(AgentError::Conflict(format!(
                "the run has already {}",
                match run.record.status {
                    RunStatus::Cancelled => "been cancelled",
                    RunStatus::Failed => "failed",
                    _ => "succeeded",
                }
            )));
        }
        let finished = [RunEvent::Finished {
            status: "cancelled".into(),
            answer: None,
            error: None,
        }
        .to_new()];
        let moved = self
            .store()
            .set_run_status(
                id,
                &[RunStatus::Queued, RunStatus::Waiting, RunStatus::Paused],
                RunStatus::Cancelled,
                None,
                &finished,
            )
            .await?;
        if let Some(moved) = &moved {
            self.published(moved, &finished, Some(run.record.status))
                .await;
            self.audit_end(&run.record, "cancelled", None).await?;
        } else {
            self.store().request_run(id, RunRequested::Cancel).await?;
            self.signal(id);
        }
        self.notify();
        self.run(owner, id).await
    }

    pub(crate) async fn audit_end(
        &self,
        run: &RunRecord,
        status: &str,
        error: Option<&str>,
    ) -> Result<(), AgentError> {
        let mut event = Event::new(
            Actor::Agent(run.agent_id),
            Action::AgentRunEnd,
            format!("run:{}", run.id),
            if status == "succeeded" {
                Outcome::Success
            } else {
                Outcome::Failure
            },
        )
        .with("status", status);
        if let Some(error) = error {
            event = event.with("error", error);
        }
        self.audit(event).await
    }

    /// The owner's requests (of one run, when given; pending ones only, when asked).
    pub async fn requests(
        &self,
        owner: UserId,
        run: Option<RunId>,
        pending_only: bool,
    ) -> Result<Vec<RunRequestRecord>, AgentError> {
        Ok(self.store().run_requests(owner, run, pending_only).await?)
    }

    /// Answers a request: approve or deny (with `remember`, for this agent and tool from now
    /// on), or answer a question. The run goes back to the queue to act on it.
    pub async fn decide(
        &self,
        owner: UserId,
        id: RunRequestId,
        approve: bool,
        answer: Option<&str>,
        remember: bool,
    ) -> Result<RunRequestRecord, AgentError> {
        let existing = self
            .store()
            .run_request(owner, id)
            .await?
            .ok_or_else(|| AgentError::NotFound(format!("request {id}")))?;
        if let Some(answer) = answer
            && (answer.contains('\0') || answer.chars().count() > 16_000)
        {
            return Err(AgentError::Invalid(
                "an answer is at most 16000 characters, without NUL".into(),
            ));
        }
        if existing.kind == RunRequestKind::Question
            && approve
            && answer.is_none_or(|a| a.trim().is_empty())
        {
            return Err(AgentError::Invalid(
                "this request is a question: give an `answer`".into(),
            ));
        }
        if existing.status != kai_store::RunRequestStatus::Pending {
            return Err(AgentError::Conflict(format!(
                "the request is {}; only a pending request can be answered",
                existing.status.as_str()
            )));
        }
        if remember && existing.kind != RunRequestKind::Consent {
            return Err(AgentError::Invalid(
                "only consent for a tool can be remembered".into(),
            ));
        }
        self.audit(
            Event::new(
                Actor::User(owner),
                Action::AgentConsentDecision,
                format!("run:{}", existing.run_id),
                if approve {
                    Outcome::Success
                } else {
                    Outcome::Denied
                },
            )
            .with("request", id.to_string())
            .with("tool", existing.tool.as_str())
            .with("remember", remember),
        )
        .await?;
        let decided = self
            .store()
            .decide_run_request(owner, id, approve, answer, remember)
            .await?
            .ok_or_else(|| {
                AgentError::Conflict("the request has expired; it counts as a denial".into())
            })?;
        if remember {
            self.store()
                .set_consent_grant(decided.agent_id, &decided.tool, approve)
                .await?;
        }
        self.inner.events.consent_decided(&decided).await;
        self.wake(&decided).await?;
        Ok(decided)
    }

    /// Records an answered or expired request in its run's timeline and puts a waiting run
    /// back in the queue.
    async fn wake(&self, request: &RunRequestRecord) -> Result<(), AgentError> {
        let decided = [RunEvent::Decided {
            request: request.id.to_string(),
            status: request.status.as_str().into(),
            remember: request.remember,
        }
        .to_new()];
        let moved = self
            .store()
            .set_run_status(
                request.run_id,
                &[RunStatus::Waiting],
                RunStatus::Queued,
                None,
                &decided,
            )
            .await?;
        match moved {
            Some(run) => {
                self.enqueue(&run).await?;
                self.published(&run, &decided, Some(RunStatus::Waiting))
                    .await;
            }
            // Paused meanwhile: the decision waits for the resume.
            None => {
                if let Some(run) = self
                    .store()
                    .append_run_events(request.run_id, &decided)
                    .await?
                {
                    self.published(&run, &decided, Some(run.status)).await;
                }
            }
        }
        self.notify();
        Ok(())
    }

    /// Expires requests nobody answered in time, as denials, and wakes their runs. Returns how
    /// many expired.
    pub async fn expire_requests(&self) -> Result<usize, AgentError> {
        let expired = self
            .store()
            .expire_run_requests(OffsetDateTime::now_utc())
            .await?;
        for request in &expired {
            self.audit(
                Event::new(
                    Actor::Node,
                    Action::AgentConsentDecision,
                    format!("run:{}", request.run_id),
                    Outcome::Denied,
                )
                .with("request", request.id.to_string())
                .with("tool", request.tool.as_str())
                .with("expired", true),
            )
            .await?;
            self.inner.events.consent_decided(request).await;
            self.wake(request).await?;
        }
        Ok(expired.len())
    }

    /// Where the run's workspace is.
    #[must_use]
    pub fn workspace(&self, id: RunId) -> PathBuf {
        self.inner.workspaces.join(id.to_string())
    }
}

/// The declared variables of a stored template.
pub(crate) fn declared(template: &PromptRecord) -> Vec<String> {
    serde_json::from_str(&template.variables).unwrap_or_default()
}

fn check_name(what: &str, name: &str) -> Result<(), AgentError> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && name.parse::<AgentId>().is_err();
    if valid {
        Ok(())
    } else {
        Err(AgentError::Invalid(format!(
            "`{name}` is not valid as {what}: use 1 to 64 letters, digits, `-`, `_` and `.`"
        )))
    }
}

fn conflict(message: &'static str) -> impl Fn(StoreError) -> AgentError {
    move |err| match err {
        StoreError::Conflict(_) => AgentError::Conflict(message.into()),
        other => AgentError::Store(other),
    }
}
