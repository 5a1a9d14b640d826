//! Working on a run: plan the goal, then run each step as a tool-calling loop through the
//! gateway, asking the owner before what the consent policy says to ask about.
//!
//! The run's state is saved after every model call and every tool call, under the revision it
//! was read at, so a worker that lost the run (its lease ran out and another took over) writes
//! nothing more. A tool call with side effects is recorded under its idempotency key before it
//! runs and settled after: a run resumed after a crash reuses a settled result, and asks its
//! owner about a call that was started and never settled rather than repeating it.

use std::time::{Duration, Instant};

use kai_audit::{Action, Actor, Event, Outcome};
use kai_core::{ApiKeyId, RunId, RunRequestId};
use kai_gateway::{Caller, GatewayError};
use kai_jobs::{JobContext, JobError, StopReason};
use kai_models::chat::{ChatRequest, Message, ResponseFormat, Role, ToolCall, ToolDefinition};
use kai_models::router::RouteErrorKind;
use kai_store::{
    ConsentGrant, NewRunEvent, NewRunRequest, RunRecord, RunRequestKind, RunRequestStatus,
    RunRequested, RunSave, RunStatus,
};
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio::sync::watch;

use crate::consent::{self, Policy};
use crate::definition::AgentDefinition;
use crate::hooks::{self, HookEvent};
use crate::plan::{self, Plan, PlannedStep};
use crate::service::{AgentError, Agents, RunJob, declared};
use crate::state::{PendingCall, RunEvent, RunState, StepResult, shorten};
use crate::tools::{self, ASK_USER, ToolEnv, ToolError, ToolSpec};

/// Model answers one step may take before it counts as failed.
const MAX_TURNS_PER_STEP: u32 = 12;
/// Times the plan may be remade after failed steps.
const MAX_REPLANS: u32 = 2;
/// Answers in a row that repeat the same calls before the step counts as failed.
const MAX_REPEATS: u32 = 2;
/// Model calls in a row that may fail (each retried after a pause) before the run fails.
const MAX_MODEL_FAILURES: u32 = 3;
/// The key of the request for spending past `limits.ask_after_usd`, once per run.
const SPEND_KEY: &str = "spend";

/// The longest one tool call may take.
const TOOL_TIMEOUT: Duration = Duration::from_secs(300);
/// The most of a tool's result the model is given.
const MAX_RESULT_CHARS: usize = 16_000;
/// The most of a text kept in a timeline event.
const EVENT_TEXT_CHARS: usize = 2_000;

impl Agents {
    /// The handler for [`RUN_JOB`] jobs.
    #[must_use]
    pub fn handler(&self) -> impl kai_jobs::Handler {
        let agents = self.clone();
        move |job: JobContext| {
            let agents = agents.clone();
            async move {
                let payload: RunJob = job.payload()?;
                let id: RunId = payload.run.parse().map_err(|_| {
                    JobError::permanent(format!("`{}` is not a run id", payload.run))
                })?;
                Box::pin(work(&agents, id, &job)).await
            }
        }
    }
}

/// Works on run `id` until it finishes, waits for its owner, pauses, or the worker stops.
pub(crate) async fn work(agents: &Agents, id: RunId, job: &JobContext) -> Result<(), JobError> {
    let store = agents.store();
    let Some(run) = store.run(id).await.map_err(JobError::transient)? else {
        // Deleted with its agent: nothing to do.
        return Ok(());
    };
    if !matches!(
        run.status,
        RunStatus::Queued | RunStatus::Running | RunStatus::Waiting
    ) {
        return Ok(());
    }
    let resumed = run.status != RunStatus::Queued || run.last_seq > 1;
    let started = [RunEvent::Started { resumed }.to_new()];
    let previous = run.status;
    let Some(run) = store
        .set_run_status(
            id,
            &[RunStatus::Queued, RunStatus::Running, RunStatus::Waiting],
            RunStatus::Running,
            None,
            &started,
        )
        .await
        .map_err(JobError::transient)?
    else {
        return Ok(());
    };
    agents.notify();
    agents.published(&run, &started, Some(previous)).await;
    let control = {
        let mut controls = agents
            .inner
            .controls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        controls
            .entry(id)
            .or_insert_with(|| watch::Sender::new(0))
            .subscribe()
    };
    let mut executor = match Executor::new(agents, run, job, control).await {
        Ok(executor) => executor,
        Err(Stop::Lost) => return Ok(()),
        Err(Stop::Retry(reason)) => return Err(JobError::Transient(reason)),
    };
    let outcome = Box::pin(executor.drive()).await;
    agents
        .inner
        .controls
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .remove(&id);
    agents.notify();
    match outcome {
        Ok(()) | Err(Stop::Lost) => Ok(()),
        Err(Stop::Retry(reason)) => Err(JobError::Transient(reason)),
    }
}

/// Why the executor stopped before the run did.
enum Stop {
    /// Another worker holds the run now (or it was deleted): write nothing more.
    Lost,
    /// The worker is stopping, or the database failed: the job runs again later, from the last
    /// saved state.
    Retry(String),
}

impl From<kai_store::StoreError> for Stop {
    fn from(err: kai_store::StoreError) -> Stop {
        Stop::Retry(format!("database: {err}"))
    }
}

impl From<AgentError> for Stop {
    fn from(err: AgentError) -> Stop {
        Stop::Retry(err.to_string())
    }
}

/// What interrupted a wait.
enum Interrupt {
    /// The owner asked the run to pause or cancel.
    Owner,
    /// The worker must stop.
    Worker(StopReason),
}

struct Executor<'a> {
    agents: &'a Agents,
    job: &'a JobContext,
    run: RunRecord,
    definition: AgentDefinition,
    state: RunState,
    model: String,
    prompted: bool,
    caller: Caller,
    env: ToolEnv,
    grants: Vec<ConsentGrant>,
    control: watch::Receiver<u64>,
    /// The tools this run may call, built-in and from its MCP servers: listed once per
    /// attempt, at the first need.
    catalog: Option<Vec<ToolSpec>>,
    /// Events waiting for the next save.
    events: Vec<NewRunEvent>,
    /// Since when the running time was last added to the state.
    clock: Instant,
}

impl<'a> Executor<'a> {
    async fn new(
        agents: &'a Agents,
        run: RunRecord,
        job: &'a JobContext,
        control: watch::Receiver<u64>,
    ) -> Result<Executor<'a>, Stop> {
        let definition: AgentDefinition = serde_json::from_str(&run.definition)
            .map_err(|err| Stop::Retry(format!("the run's definition does not read: {err}")))?;
        let state: RunState = serde_json::from_str(&run.state)
            .map_err(|err| Stop::Retry(format!("the run's state does not read: {err}")))?;
        let model = definition
            .model_or(&agents.inner.settings.default_model)
            .to_owned();
        let workspace = agents.workspace(run.id);
        tokio::fs::create_dir_all(&workspace).await.map_err(|err| {
            Stop::Retry(format!(
                "cannot make the workspace {}: {err}",
                workspace.display()
            ))
        })?;
        let grants = agents.store().consent_grants(run.agent_id).await?;
        let caller = Caller {
            user_id: run.owner_id,
            api_key_id: state
                .api_key
                .as_deref()
                .and_then(|key| key.parse::<ApiKeyId>().ok()),
            request_id: format!("run:{}", run.id),
        };
        let env = ToolEnv {
            run: run.id,
            owner: run.owner_id,
            workspace,
            knowledge: agents.inner.knowledge.clone(),
            collections: definition.collection_ids(),
            web: agents.inner.web.clone(),
            shell: agents.inner.shell.clone(),
            mcp: agents.inner.mcp.clone(),
        };
        Ok(Executor {
            prompted: definition.prompted_tools(&model),
            agents,
            job,
            run,
            definition,
            state,
            model,
            caller,
            env,
            grants,
            control,
            catalog: None,
            events: Vec::new(),
            clock: Instant::now(),
        })
    }

    fn event(&mut self, event: RunEvent) {
        self.events.push(event.to_new());
    }

    /// Saves the state with `status` and the events so far.
    async fn save(&mut self, status: RunStatus, error: Option<&str>) -> Result<(), Stop> {
        let elapsed = u64::try_from(self.clock.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.state.used.running_ms = self.state.used.running_ms.saturating_add(elapsed);
        self.clock = Instant::now();
        let state = serde_json::to_string(&self.state).unwrap_or_default();
        let saved = self
            .agents
            .store()
            .save_run(
                self.run.id,
                self.run.revision,
                &RunSave {
                    status,
                    state: &state,
                    error,
                    events: &self.events,
                },
            )
            .await?;
        self.agents.notify();
        let appended = std::mem::take(&mut self.events);
        match saved {
            Some(run) => {
                self.agents
                    .published(&run, &appended, Some(self.run.status))
                    .await;
                self.run = run;
                Ok(())
            }
            None => Err(Stop::Lost),
        }
    }

    async fn audit(&self, event: Event) -> Result<(), Stop> {
        self.agents
            .inner
            .audit
            .record(event.with("run", self.run.id.to_string()))
            .await
            .map_err(|err| Stop::Retry(format!("the audit log cannot record: {err}")))?;
        Ok(())
    }

    /// Tells the agent's hooks of `event`; the reason when one vetoed it (recorded in the
    /// timeline and the audit log).
    async fn hook(&mut self, event: HookEvent, mut payload: Value) -> Result<Option<String>, Stop> {
        if self.definition.hooks.is_empty() {
            return Ok(None);
        }
        payload["run"] = json!(self.run.id.to_string());
        payload["agent"] = json!(self.run.agent_id.to_string());
        payload["goal"] = json!(self.run.goal);
        payload["step"] = json!(self.state.step + 1);
        let verdict = hooks::call(
            &self.env.web,
            &self.env.mcp,
            &self.definition.hooks,
            event,
            payload,
        )
        .await;
        for (hook, why) in verdict.failures {
            self.event(RunEvent::Error {
                message: format!("hook {hook} ({}) failed: {why}", event.as_str()),
            });
        }
        let Some((hook, reason)) = verdict.veto else {
            return Ok(None);
        };
        self.audit(
            Event::new(
                Actor::Agent(self.run.agent_id),
                Action::AgentHookVeto,
                format!("run:{}", self.run.id),
                Outcome::Denied,
            )
            .with("hook", hook.as_str())
            .with("event", event.as_str())
            .with("reason", reason.as_str()),
        )
        .await?;
        self.event(RunEvent::Vetoed {
            hook,
            event: event.as_str().into(),
            reason: reason.clone(),
        });
        Ok(Some(reason))
    }

    /// Ends the run.
    async fn finish(&mut self, status: RunStatus, error: Option<String>) -> Result<(), Stop> {
        let answer = (status == RunStatus::Succeeded)
            .then(|| self.state.results.last().map(|r| r.output.clone()))
            .flatten();
        let end = json!({"status": status.as_str(), "answer": answer, "error": error});
        self.hook(HookEvent::RunEnd, end).await?;
        self.event(RunEvent::Finished {
            status: status.as_str().into(),
            answer,
            error: error.clone(),
        });
        self.agents
            .audit_end(&self.run, status.as_str(), error.as_deref())
            .await?;
        tracing::info!(
            run = %self.run.id,
            status = status.as_str(),
            error = error.as_deref().unwrap_or(""),
            model_calls = self.state.used.model_calls,
            tool_calls = self.state.used.tool_calls,
            "agent run ended"
        );
        self.save(status, error.as_deref()).await
    }

    /// Waits for `work`, unless the owner or the worker interrupts it first.
    async fn interruptible<T>(
        &mut self,
        work: impl std::future::Future<Output = T>,
    ) -> Result<T, Interrupt> {
        let mut control = self.control.clone();
        tokio::select! {
            result = work => Ok(result),
            _ = control.changed() => Err(Interrupt::Owner),
            reason = self.job.stopped() => Err(Interrupt::Worker(reason)),
        }
    }

    fn worker_stop(reason: StopReason) -> Stop {
        match reason {
            StopReason::LeaseLost => Stop::Lost,
            StopReason::ShuttingDown => Stop::Retry("the worker is shutting down".into()),
        }
    }

    /// Acts on what the owner asked of the run, if anything: `true` when the run stopped.
    async fn honour_owner(&mut self) -> Result<bool, Stop> {
        if let Some(reason) = self.job.stop_reason() {
            return Err(Self::worker_stop(reason));
        }
        let Some(current) = self.agents.store().run(self.run.id).await? else {
            return Err(Stop::Lost);
        };
        if current.revision != self.run.revision {
            return Err(Stop::Lost);
        }
        match current.requested {
            Some(RunRequested::Cancel) => {
                self.finish(RunStatus::Cancelled, None).await?;
                Ok(true)
            }
            Some(RunRequested::Pause) => {
                self.event(RunEvent::Paused);
                self.save(RunStatus::Paused, None).await?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Whether the run may go on spending: past `limits.ask_after_usd` only once its owner
    /// said so. `false` when it now waits for them (or they said no, which ends it).
    async fn spending_approved(&mut self) -> Result<bool, Stop> {
        let Some(threshold) = self.definition.limits.ask_after_usd else {
            return Ok(true);
        };
        let spent = self.state.used.cost_micros as f64 / 1_000_000.0;
        if self.state.spend_approved || spent < threshold {
            return Ok(true);
        }
        let request = self
            .agents
            .store()
            .run_request_for_call(self.run.id, SPEND_KEY)
            .await?;
        match request.map(|r| r.status) {
            None => {
                let details = json!({
                    "spent_usd": spent,
                    "threshold_usd": threshold,
                    "question": format!(
                        "this run's model calls have cost ${spent:.4}, past the ${threshold} \
                         its agent asks about: go on?"
                    ),
                });
                self.ask(
                    SPEND_KEY,
                    RunRequestKind::Consent,
                    SPEND_KEY.into(),
                    details,
                )
                .await
            }
            Some(RunRequestStatus::Pending) => {
                self.save(RunStatus::Waiting, None).await?;
                Ok(false)
            }
            Some(RunRequestStatus::Approved) => {
                self.state.spend_approved = true;
                self.state.waiting = None;
                Ok(true)
            }
            Some(_) => {
                let reason = format!(
                    "the owner did not let the run spend past ${threshold} (it had spent ${spent:.4})"
                );
                self.finish(RunStatus::Failed, Some(reason)).await?;
                Ok(false)
            }
        }
    }

    /// Which limit the run has reached, if any.
    fn limit_reached(&self) -> Option<String> {
        let limits = &self.definition.limits;
        let used = &self.state.used;
        let running = used
            .running_ms
            .saturating_add(u64::try_from(self.clock.elapsed().as_millis()).unwrap_or(u64::MAX));
        if used.model_calls >= limits.max_model_calls {
            return Some(format!(
                "the run reached its limit of {} model calls (limits.max_model_calls)",
                limits.max_model_calls
            ));
        }
        if used.input_tokens + used.output_tokens >= limits.max_tokens {
            return Some(format!(
                "the run reached its limit of {} tokens (limits.max_tokens)",
                limits.max_tokens
            ));
        }
        if used.tool_calls >= limits.max_tool_calls && !self.state.pending.is_empty() {
            return Some(format!(
                "the run reached its limit of {} tool calls (limits.max_tool_calls)",
                limits.max_tool_calls
            ));
        }
        if Duration::from_millis(running) >= limits.max_duration {
            return Some(format!(
                "the run reached its limit of {} running (limits.max_duration)",
                humantime::format_duration(limits.max_duration)
            ));
        }
        None
    }

    async fn drive(&mut self) -> Result<(), Stop> {
        loop {
            if self.run.status != RunStatus::Running {
                // Finished, paused or waiting: saved as such, nothing more to do here.
                return Ok(());
            }
            if self.honour_owner().await? {
                return Ok(());
            }
            if let Some(reason) = self.limit_reached() {
                return self.finish(RunStatus::Failed, Some(reason)).await;
            }
            if !self.spending_approved().await? {
                return Ok(());
            }
            if let Some(call) = self.state.pending.front().cloned() {
                if !Box::pin(self.answer_call(call)).await? {
                    return Ok(());
                }
                continue;
            }
            let Some(plan) = self.state.plan.clone() else {
                self.make_plan(None).await?;
                continue;
            };
            let Some(step) = plan.steps.get(self.state.step).cloned() else {
                return self.finish(RunStatus::Succeeded, None).await;
            };
            if self.state.messages.is_empty() {
                if self.state.used.steps >= self.definition.limits.max_steps {
                    let reason = format!(
                        "the run reached its limit of {} steps (limits.max_steps)",
                        self.definition.limits.max_steps
                    );
                    return self.finish(RunStatus::Failed, Some(reason)).await;
                }
                self.begin_step(&plan, &step).await?;
                continue;
            }
            if let Some(failure) = self.model_turn().await? {
                self.step_failed(&step, failure).await?;
            }
        }
    }

    /// The run's instructions, rendered.
    async fn instructions(&self) -> Result<String, String> {
        let agent_name = self
            .agents
            .store()
            .agent(self.run.owner_id, self.run.agent_id)
            .await
            .ok()
            .flatten()
            .map(|agent| agent.name)
            .unwrap_or_default();
        let values = self
            .agents
            .template_values(&self.definition, &agent_name, &self.run.goal);
        match (&self.definition.instructions, &self.definition.prompt) {
            (Some(text), _) => {
                let declared: Vec<String> = self.definition.variables.keys().cloned().collect();
                crate::prompt::render(text, &declared, &values)
                    .map_err(|err| format!("the agent's instructions: {err}"))
            }
            (None, Some(reference)) => {
                let (template, _) = self
                    .agents
                    .resolve_prompt(self.run.owner_id, reference)
                    .await
                    .map_err(|err| err.to_string())?;
                crate::prompt::render(&template.template, &declared(&template), &values)
                    .map_err(|err| format!("prompt `{reference}`: {err}"))
            }
            (None, None) => Ok(String::new()),
        }
    }

    /// The tools the run may call. An MCP server that cannot be reached is recorded in the
    /// timeline and its tools left out; the run goes on with the rest.
    async fn specs(&mut self) -> Vec<ToolSpec> {
        if let Some(catalog) = &self.catalog {
            return catalog.clone();
        }
        let mut catalog: Vec<ToolSpec> = self
            .definition
            .tools
            .iter()
            .filter_map(|name| tools::builtin_spec(name))
            .collect();
        for server in self.definition.mcp_servers.clone() {
            match self.env.mcp.tools(&server).await {
                Ok(found) => {
                    catalog.extend(found.iter().map(|tool| tools::mcp_spec(&server, tool)))
                }
                Err(err) => self.event(RunEvent::Error {
                    message: format!(
                        "MCP server `{server}` is unavailable, its tools left out: {err}"
                    ),
                }),
            }
        }
        self.catalog = Some(catalog.clone());
        catalog
    }

    /// Calls the model; `Ok(None)` after a failure worth retrying (recorded, with a pause).
    async fn call_model(&mut self, request: ChatRequest) -> Result<Option<Message>, Stop> {
        let gateway = self.agents.inner.gateway.clone();
        let caller = self.caller.clone();
        let model = self.model.clone();
        let answer = match self
            .interruptible(async { gateway.chat(&caller, &model, &request).await })
            .await
        {
            Ok(answer) => answer,
            Err(Interrupt::Owner) => return Ok(None),
            Err(Interrupt::Worker(reason)) => return Err(Self::worker_stop(reason)),
        };
        self.state.used.model_calls += 1;
        match answer {
            Ok(done) => {
                self.state.model_failures = 0;
                self.state.used.input_tokens += done.usage.input_tokens;
                self.state.used.cost_micros += done.cost_micros;
                self.state.used.output_tokens += done.usage.output_tokens;
                let message = done.value.message;
                self.event(RunEvent::ModelCall {
                    model: done.model,
                    input_tokens: done.usage.input_tokens,
                    output_tokens: done.usage.output_tokens,
                    tool_calls: message.tool_calls.iter().map(|c| c.name.clone()).collect(),
                    text: shorten(&message.joined_text(), EVENT_TEXT_CHARS),
                });
                Ok(Some(message))
            }
            Err(err) => {
                let fatal = match &err {
                    GatewayError::OverBudget(_) => true,
                    GatewayError::Route(route) => matches!(
                        route.kind,
                        RouteErrorKind::UnknownModel | RouteErrorKind::Rejected(_)
                    ),
                    _ => false,
                };
                self.state.model_failures += 1;
                // The gateway's error names the model already.
                let message = err.to_string();
                if fatal || self.state.model_failures > MAX_MODEL_FAILURES {
                    self.finish(RunStatus::Failed, Some(message)).await?;
                    // The run has ended: nothing more to write.
                    return Err(Stop::Lost);
                }
                self.event(RunEvent::Error { message });
                self.save(RunStatus::Running, None).await?;
                let pause = Duration::from_secs(1 << self.state.model_failures.min(5));
                match self.interruptible(tokio::time::sleep(pause)).await {
                    Ok(()) | Err(Interrupt::Owner) => Ok(None),
                    Err(Interrupt::Worker(reason)) => Err(Self::worker_stop(reason)),
                }
            }
        }
    }

    /// Asks the model for a plan (or, after `failure`, for the rest of one).
    async fn make_plan(&mut self, failure: Option<(&PlannedStep, &str)>) -> Result<(), Stop> {
        let max_steps = self
            .definition
            .limits
            .max_steps
            .saturating_sub(self.state.used.steps)
            .max(1);
        let tools = self
            .specs()
            .await
            .iter()
            .map(|spec| format!("- {}: {}", spec.name, spec.description))
            .collect::<Vec<_>>()
            .join("\n");
        let system = format!(
            "You plan how an AI agent reaches a goal. The agent can use these tools:\n{}\n\n\
             Break the goal into 1 to {max_steps} steps, each one thing the agent can do. \
             Answer only with JSON: {{\"steps\": [{{\"title\": \"...\", \"instructions\": \
             \"...\"}}]}}",
            if tools.is_empty() {
                "(none)".into()
            } else {
                tools
            }
        );
        let mut user = format!("Goal: {}", self.run.goal);
        if let Some((step, error)) = failure {
            user.push_str(&format!("\n\nDone so far:\n{}", self.results_text()));
            user.push_str(&format!(
                "\n\nThe step \"{}\" failed: {error}\nPlan the remaining steps another way.",
                step.title
            ));
        }
        let mut messages = vec![
            Message::text(Role::System, system),
            Message::text(Role::User, user),
        ];
        let mut note =
            failure.map(|(step, error)| format!("step \"{}\" failed: {error}", step.title));
        let mut plan = None;
        for _ in 0..2 {
            let mut request = ChatRequest::new(self.model.clone(), messages.clone());
            if !self.prompted {
                request.response_format = Some(ResponseFormat::JsonSchema {
                    name: "plan".into(),
                    description: None,
                    schema: plan::schema(max_steps),
                    strict: None,
                });
            }
            let Some(answer) = self.call_model(request).await? else {
                // Interrupted or failed: the loop looks again.
                return Ok(());
            };
            let text = answer.joined_text();
            match plan::parse(&text, max_steps) {
                Ok(parsed) => {
                    plan = Some(parsed);
                    break;
                }
                Err(err) => {
                    messages.push(Message::text(Role::Assistant, text));
                    messages.push(Message::text(
                        Role::User,
                        format!("That is not a plan: {err}. Answer only with the JSON."),
                    ));
                    note = Some(format!("the planner's answer was not a plan ({err})"));
                }
            }
        }
        let plan = plan.unwrap_or_else(|| {
            // A model that cannot plan (small local ones) still gets to work on the goal.
            note = Some(format!(
                "{}; working on the goal as one step",
                note.clone().unwrap_or_default()
            ));
            Plan {
                steps: vec![PlannedStep {
                    title: "Reach the goal".into(),
                    instructions: self.run.goal.clone(),
                }],
            }
        });
        // After a failure the steps done and the failed one stay, for the record; the new
        // steps follow them.
        let mut steps = match (&self.state.plan, failure) {
            (Some(old), Some(_)) => {
                self.state.step += 1;
                old.steps[..self.state.step.min(old.steps.len())].to_vec()
            }
            _ => Vec::new(),
        };
        self.event(RunEvent::Plan {
            steps: plan.steps.iter().map(|s| s.title.clone()).collect(),
            note,
        });
        steps.extend(plan.steps);
        self.state.plan = Some(Plan { steps });
        self.save(RunStatus::Running, None).await
    }

    fn results_text(&self) -> String {
        if self.state.results.is_empty() {
            return "(nothing yet)".into();
        }
        self.state
            .results
            .iter()
            .enumerate()
            .map(|(i, result)| {
                format!(
                    "{}. {} ({}): {}",
                    i + 1,
                    result.title,
                    if result.ok { "done" } else { "failed" },
                    shorten(&result.output, 1_000)
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    async fn begin_step(&mut self, plan: &Plan, step: &PlannedStep) -> Result<(), Stop> {
        let announce = json!({"title": step.title, "instructions": step.instructions});
        if let Some(reason) = self.hook(HookEvent::BeforeStep, announce).await? {
            self.state.used.steps += 1;
            return self
                .step_failed(step, format!("a hook vetoed the step: {reason}"))
                .await;
        }
        let instructions = match self.instructions().await {
            Ok(text) => text,
            Err(err) => return self.finish(RunStatus::Failed, Some(err)).await,
        };
        let number = self.state.step + 1;
        let outline = plan
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| format!("{}. {}", i + 1, s.title))
            .collect::<Vec<_>>()
            .join("\n");
        let mut system = String::new();
        if !instructions.trim().is_empty() {
            system.push_str(instructions.trim());
            system.push_str("\n\n");
        }
        system.push_str(&format!(
            "You are an agent working towards this goal: {}\n\nThe plan:\n{outline}\n\n\
             Results so far:\n{}\n\nWork on step {number} now. Use the tools when you need \
             them. When the step is done, answer with a short summary of its result.",
            self.run.goal,
            self.results_text()
        ));
        if self.prompted {
            let tools = self.prompted_tools().await;
            system.push_str(&tools);
        }
        self.state.messages = vec![
            Message::text(Role::System, system),
            Message::text(
                Role::User,
                format!("Step {number}: {}\n{}", step.title, step.instructions),
            ),
        ];
        self.state.turn = 0;
        self.state.used.steps += 1;
        self.event(RunEvent::StepStarted {
            number,
            title: step.title.clone(),
        });
        self.save(RunStatus::Running, None).await
    }

    /// The tools described for a model without tool calling, and how to call them.
    async fn prompted_tools(&mut self) -> String {
        let specs = self.specs().await;
        if specs.is_empty() {
            return "\n\nAnswer with your result as plain text.".into();
        }
        let mut text = String::from("\n\nYou have these tools:\n");
        for spec in specs {
            text.push_str(&format!(
                "- {}: {} Arguments: {}\n",
                spec.name, spec.description, spec.parameters["properties"]
            ));
        }
        text.push_str(
            "To call a tool, answer with only a JSON object: {\"tool\": \"NAME\", \
             \"arguments\": {...}}. When the step is done, answer with only {\"answer\": \
             \"your summary\"}.",
        );
        text
    }

    /// One model answer in the current step: its calls queued, or the step done. Returns why
    /// the step failed, when it did.
    async fn model_turn(&mut self) -> Result<Option<String>, Stop> {
        self.state.turn += 1;
        if self.state.turn > MAX_TURNS_PER_STEP {
            return Ok(Some(format!(
                "the model did not finish the step in {MAX_TURNS_PER_STEP} answers"
            )));
        }
        let mut request = ChatRequest::new(self.model.clone(), self.state.messages.clone());
        if !self.prompted {
            request.tools = self
                .specs()
                .await
                .into_iter()
                .map(|spec| ToolDefinition {
                    name: spec.name,
                    description: Some(spec.description),
                    parameters: spec.parameters,
                    strict: None,
                })
                .collect();
        }
        let Some(mut answer) = self.call_model(request).await? else {
            self.state.turn -= 1;
            return Ok(None);
        };
        if self.prompted {
            answer = read_prompted(answer, self.state.turn);
        }
        if answer.tool_calls.is_empty() {
            let text = answer.joined_text().trim().to_owned();
            if text.is_empty() {
                return Ok(Some("the model answered nothing".into()));
            }
            let number = self.state.step + 1;
            self.event(RunEvent::StepFinished {
                number,
                output: shorten(&text, EVENT_TEXT_CHARS),
            });
            let title = self.current_title();
            self.state.results.push(StepResult {
                title,
                output: text,
                ok: true,
            });
            let output = self.state.results.last().map(|r| r.output.clone());
            let done = json!({"title": self.current_title(), "ok": true, "output": output});
            self.hook(HookEvent::AfterStep, done).await?;
            self.state.step += 1;
            self.state.messages.clear();
            self.state.last_calls = None;
            self.state.repeats = 0;
            self.save(RunStatus::Running, None).await?;
            return Ok(None);
        }
        let fingerprint = answer
            .tool_calls
            .iter()
            .map(|call| format!("{}({})", call.name, call.arguments))
            .collect::<Vec<_>>()
            .join(";");
        if self.state.last_calls.as_deref() == Some(fingerprint.as_str()) {
            self.state.repeats += 1;
            if self.state.repeats >= MAX_REPEATS {
                return Ok(Some(format!(
                    "the model repeated the same call {} times: {}",
                    self.state.repeats + 1,
                    shorten(&fingerprint, 200)
                )));
            }
        } else {
            self.state.repeats = 0;
        }
        self.state.last_calls = Some(fingerprint);
        for (index, call) in answer.tool_calls.iter().enumerate() {
            self.state.pending.push_back(PendingCall {
                key: format!("{}.{}.{}", self.state.step + 1, self.state.turn, index + 1),
                id: call.id.clone(),
                tool: call.name.clone(),
                arguments: call.arguments.clone(),
            });
        }
        self.state.messages.push(answer);
        self.save(RunStatus::Running, None).await?;
        Ok(None)
    }

    fn current_title(&self) -> String {
        self.state
            .plan
            .as_ref()
            .and_then(|plan| plan.steps.get(self.state.step))
            .map(|step| step.title.clone())
            .unwrap_or_default()
    }

    /// A failed step: the plan is remade for the rest, or the run fails.
    async fn step_failed(&mut self, step: &PlannedStep, error: String) -> Result<(), Stop> {
        let failed = json!({"title": step.title, "ok": false, "error": error});
        self.hook(HookEvent::AfterStep, failed).await?;
        let number = self.state.step + 1;
        self.event(RunEvent::StepFailed {
            number,
            error: error.clone(),
        });
        self.state.results.push(StepResult {
            title: step.title.clone(),
            output: error.clone(),
            ok: false,
        });
        self.state.messages.clear();
        self.state.pending.clear();
        self.state.last_calls = None;
        self.state.repeats = 0;
        if self.state.replans >= MAX_REPLANS {
            let reason = format!("step {number} (\"{}\") failed: {error}", step.title);
            return self.finish(RunStatus::Failed, Some(reason)).await;
        }
        self.state.replans += 1;
        self.save(RunStatus::Running, None).await?;
        self.make_plan(Some((step, &error))).await
    }

    /// Tells the model a call's outcome and moves on to the next call.
    async fn answer(
        &mut self,
        call: &PendingCall,
        ok: bool,
        output: String,
        reused: bool,
    ) -> Result<(), Stop> {
        let output = shorten(&output, MAX_RESULT_CHARS);
        self.event(RunEvent::ToolResult {
            key: call.key.clone(),
            tool: call.tool.clone(),
            ok,
            output: shorten(&output, EVENT_TEXT_CHARS),
            reused,
        });
        let text = if ok {
            output
        } else {
            format!("error: {output}")
        };
        let message = if self.prompted {
            Message::text(Role::User, format!("Result of {}: {text}", call.tool))
        } else {
            let mut message = Message::text(Role::Tool, text);
            message.tool_call_id = Some(call.id.clone());
            message.name = Some(call.tool.clone());
            message
        };
        self.state.messages.push(message);
        self.state.pending.pop_front();
        self.state.waiting = None;
        self.save(RunStatus::Running, None).await
    }

    /// Asks the owner and stops the run until they answer: returns `false`.
    async fn ask(
        &mut self,
        subject: &str,
        kind: RunRequestKind,
        key: String,
        details: Value,
    ) -> Result<bool, Stop> {
        let expires_at = OffsetDateTime::now_utc()
            + time::Duration::try_from(self.agents.inner.settings.consent_timeout)
                .unwrap_or(time::Duration::DAY);
        let request = self
            .agents
            .store()
            .create_run_request(&NewRunRequest {
                id: RunRequestId::new(),
                run_id: self.run.id,
                owner_id: self.run.owner_id,
                agent_id: self.run.agent_id,
                call_key: key,
                kind,
                tool: subject.to_owned(),
                details: details.to_string(),
                expires_at,
            })
            .await?;
        self.audit(
            Event::new(
                Actor::Agent(self.run.agent_id),
                Action::AgentConsentRequest,
                format!("run:{}", self.run.id),
                Outcome::Success,
            )
            .with("request", request.id.to_string())
            .with("kind", kind.as_str())
            .with("tool", subject)
            .with("details", details.clone()),
        )
        .await?;
        self.event(RunEvent::Requested {
            request: request.id.to_string(),
            kind: kind.as_str().into(),
            tool: subject.to_owned(),
            details,
        });
        self.state.waiting = Some(request.id.to_string());
        self.save(RunStatus::Waiting, None).await?;
        self.agents.inner.events.consent_requested(&request).await;
        Ok(false)
    }

    /// Answers the first pending call; `false` when the run now waits for its owner.
    async fn answer_call(&mut self, call: PendingCall) -> Result<bool, Stop> {
        let catalog = self.specs().await;
        let Some(spec) = catalog.iter().find(|spec| spec.name == call.tool).cloned() else {
            let tools = catalog
                .iter()
                .map(|spec| spec.name.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            self.answer(
                &call,
                false,
                format!(
                    "there is no tool `{}` here; the tools are: {}",
                    call.tool,
                    if tools.is_empty() { "none" } else { &tools }
                ),
                false,
            )
            .await?;
            return Ok(true);
        };
        let arguments: Value = match serde_json::from_str(&call.arguments) {
            Ok(value) => value,
            Err(err) => {
                self.answer(
                    &call,
                    false,
                    format!("the arguments are not JSON: {err}"),
                    false,
                )
                .await?;
                return Ok(true);
            }
        };
        if let Err(err) = tools::check_arguments(&spec, &arguments) {
            self.answer(&call, false, err.to_string(), false).await?;
            return Ok(true);
        }
        if call.tool == ASK_USER {
            return self.ask_user(&call, &arguments).await;
        }
        let subject = tools::consent_subject(&call.tool, &arguments);
        let configured = self.definition.consent.get(&call.tool).copied();
        let granted = self
            .grants
            .iter()
            .find(|grant| grant.tool == subject)
            .map(|grant| grant.allow);
        match consent::decide(configured, granted, spec.effect) {
            Policy::Allow => {}
            Policy::Deny => {
                self.audit(
                    Event::new(
                        Actor::Agent(self.run.agent_id),
                        Action::AgentConsentDecision,
                        format!("run:{}", self.run.id),
                        Outcome::Denied,
                    )
                    .with("tool", call.tool.as_str())
                    .with("by", "policy"),
                )
                .await?;
                self.answer(
                    &call,
                    false,
                    format!("the owner's policy does not allow `{}`", call.tool),
                    false,
                )
                .await?;
                return Ok(true);
            }
            Policy::Ask => {
                let existing = self
                    .agents
                    .store()
                    .run_request_for_call(self.run.id, &call.key)
                    .await?;
                match existing.map(|request| (request.status, request.answer)) {
                    None => {
                        let details = json!({"tool": call.tool, "arguments": arguments});
                        return self
                            .ask(&subject, RunRequestKind::Consent, call.key.clone(), details)
                            .await;
                    }
                    Some((RunRequestStatus::Pending, _)) => {
                        self.save(RunStatus::Waiting, None).await?;
                        return Ok(false);
                    }
                    Some((RunRequestStatus::Approved, _)) => {}
                    Some((status, reason)) => {
                        let mut text = format!(
                            "the owner {} this call",
                            if status == RunRequestStatus::Expired {
                                "did not answer in time, which denies"
                            } else {
                                "denied"
                            }
                        );
                        if let Some(reason) = reason {
                            text.push_str(&format!(": {reason}"));
                        }
                        self.answer(&call, false, text, false).await?;
                        return Ok(true);
                    }
                }
            }
        }
        Box::pin(self.execute(&call, &spec, &arguments)).await
    }

    async fn ask_user(&mut self, call: &PendingCall, arguments: &Value) -> Result<bool, Stop> {
        let existing = self
            .agents
            .store()
            .run_request_for_call(self.run.id, &call.key)
            .await?;
        match existing {
            None => {
                let details = json!({"question": arguments["question"]});
                self.ask(
                    &call.tool,
                    RunRequestKind::Question,
                    call.key.clone(),
                    details,
                )
                .await
            }
            Some(request) if request.status == RunRequestStatus::Pending => {
                self.save(RunStatus::Waiting, None).await?;
                Ok(false)
            }
            Some(request) => {
                let (ok, text) = match (request.status, request.answer) {
                    (RunRequestStatus::Approved, Some(answer)) => (true, answer),
                    _ => (false, "the user did not answer".to_owned()),
                };
                self.answer(call, ok, text, false).await?;
                Ok(true)
            }
        }
    }

    /// Runs an allowed call: recorded first when it changes anything, so that it is never
    /// repeated unknowingly.
    async fn execute(
        &mut self,
        call: &PendingCall,
        spec: &ToolSpec,
        arguments: &Value,
    ) -> Result<bool, Stop> {
        let side_effects = spec.effect != tools::Effect::ReadOnly;
        if side_effects {
            let recorded = self
                .agents
                .store()
                .begin_tool_call(self.run.id, &call.key, &call.tool, &call.arguments)
                .await?;
            if let Some(recorded) = recorded {
                match recorded.result {
                    Some(result) => {
                        let outcome: Value = serde_json::from_str(&result).unwrap_or_default();
                        let ok = outcome["ok"].as_bool().unwrap_or(false);
                        let output = outcome["output"].as_str().unwrap_or_default().to_owned();
                        self.answer(call, ok, output, true).await?;
                        return Ok(true);
                    }
                    None => {
                        // Started before a crash, never settled: ask rather than repeat.
                        return Box::pin(self.unknown_outcome(
                            call,
                            spec,
                            arguments,
                            recorded.started_at,
                        ))
                        .await;
                    }
                }
            }
        }
        Box::pin(self.run_call(call, spec, arguments)).await
    }

    /// A call begun and never settled (the process died during it, or its MCP server's
    /// connection broke): whether it ran is unknown, so the owner decides whether to run it
    /// again. Returns `false` while the run waits for the answer.
    async fn unknown_outcome(
        &mut self,
        call: &PendingCall,
        spec: &ToolSpec,
        arguments: &Value,
        started_at: OffsetDateTime,
    ) -> Result<bool, Stop> {
        let key = format!("{}/outcome", call.key);
        let request = self
            .agents
            .store()
            .run_request_for_call(self.run.id, &key)
            .await?;
        match request.map(|r| r.status) {
            None => {
                let details = json!({
                    "tool": call.tool,
                    "arguments": arguments,
                    "started_at": started_at
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default(),
                    "question": "this call was started and whether it finished is \
                        unknown (kai stopped, or its server stopped answering): \
                        run it again?",
                });
                self.ask(&call.tool, RunRequestKind::Outcome, key, details)
                    .await
            }
            Some(RunRequestStatus::Pending) => {
                self.save(RunStatus::Waiting, None).await?;
                Ok(false)
            }
            Some(RunRequestStatus::Approved) => {
                Box::pin(self.run_call(call, spec, arguments)).await
            }
            Some(_) => {
                let text = "whether this call ran is unknown, and the owner chose not to run \
                            it again";
                self.agents
                    .store()
                    .finish_tool_call(
                        self.run.id,
                        &call.key,
                        &json!({"ok": false, "output": text}).to_string(),
                    )
                    .await?;
                self.answer(call, false, text.into(), false).await?;
                Ok(true)
            }
        }
    }

    /// Runs an allowed call whose record (for one with side effects) is begun: hooks first,
    /// then the audit entry, then the call, then its settled result.
    async fn run_call(
        &mut self,
        call: &PendingCall,
        spec: &ToolSpec,
        arguments: &Value,
    ) -> Result<bool, Stop> {
        let side_effects = spec.effect != tools::Effect::ReadOnly;
        let announce = json!({"key": call.key, "tool": call.tool, "arguments": arguments});
        if let Some(reason) = self.hook(HookEvent::BeforeTool, announce).await? {
            let text = format!("a hook vetoed this call: {reason}");
            if side_effects {
                self.agents
                    .store()
                    .finish_tool_call(
                        self.run.id,
                        &call.key,
                        &json!({"ok": false, "output": text}).to_string(),
                    )
                    .await?;
            }
            self.answer(call, false, text, false).await?;
            return Ok(true);
        }
        self.audit(
            Event::new(
                Actor::Agent(self.run.agent_id),
                Action::AgentToolCall,
                format!("run:{}", self.run.id),
                Outcome::Success,
            )
            .with("key", call.key.as_str())
            .with("tool", call.tool.as_str())
            .with("arguments", arguments.clone()),
        )
        .await?;
        self.event(RunEvent::ToolCall {
            key: call.key.clone(),
            tool: call.tool.clone(),
            arguments: arguments.clone(),
        });
        self.state.used.tool_calls += 1;
        let env = self.env.clone();
        let tool = call.tool.clone();
        let result = match self
            .interruptible(tokio::time::timeout(
                TOOL_TIMEOUT,
                Box::pin(tools::call(&env, &tool, arguments)),
            ))
            .await
        {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(ToolError::Failed(format!(
                "the call took longer than {}s and was stopped",
                TOOL_TIMEOUT.as_secs()
            ))),
            // Left `started`: its outcome is unknown to whoever resumes the run.
            Err(Interrupt::Owner) => return Ok(true),
            Err(Interrupt::Worker(reason)) => return Err(Self::worker_stop(reason)),
        };
        let (ok, output) = match result {
            Ok(output) => (true, output),
            Err(ToolError::Unknown(why)) if side_effects => {
                self.event(RunEvent::Error {
                    message: format!("`{}`: {why}", call.tool),
                });
                let asked = self
                    .agents
                    .store()
                    .run_request_for_call(self.run.id, &format!("{}/outcome", call.key))
                    .await?
                    .is_some();
                if !asked {
                    // Left unsettled and pending: the next turn of the loop finds it so and
                    // asks the owner whether to run it again.
                    self.save(RunStatus::Running, None).await?;
                    return Ok(true);
                }
                (
                    false,
                    format!("{why}; it was already run again once, so it is not repeated"),
                )
            }
            Err(err) => (false, err.to_string()),
        };
        if side_effects {
            self.agents
                .store()
                .finish_tool_call(
                    self.run.id,
                    &call.key,
                    &json!({"ok": ok, "output": output}).to_string(),
                )
                .await?;
        }
        self.audit(
            Event::new(
                Actor::Agent(self.run.agent_id),
                Action::AgentToolResult,
                format!("run:{}", self.run.id),
                if ok {
                    Outcome::Success
                } else {
                    Outcome::Failure
                },
            )
            .with("key", call.key.as_str())
            .with("tool", call.tool.as_str())
            .with(
                "result_blake3",
                blake3::hash(output.as_bytes()).to_hex().to_string(),
            ),
        )
        .await?;
        let ran = json!({"key": call.key, "tool": call.tool, "arguments": arguments, "ok": ok,
                         "output": shorten(&output, EVENT_TEXT_CHARS)});
        self.hook(HookEvent::AfterTool, ran).await?;
        self.answer(call, ok, output, false).await?;
        Ok(true)
    }
}

/// A prompted model's answer read as calls: `{"tool": …, "arguments": …}` becomes a call,
/// `{"answer": …}` the step's result; anything else is taken as the result itself, which is
/// what small models mostly write.
fn read_prompted(answer: Message, turn: u32) -> Message {
    let text = answer.joined_text();
    let Some(value) = plan::first_json_object(&text) else {
        return answer;
    };
    if let Some(tool) = value["tool"].as_str() {
        let arguments = match &value["arguments"] {
            Value::Null => "{}".to_owned(),
            other => other.to_string(),
        };
        let mut message = Message::text(Role::Assistant, text.clone());
        message.tool_calls = vec![ToolCall {
            id: format!("call_{turn}"),
            name: tool.to_owned(),
            arguments,
        }];
        return message;
    }
    if let Some(result) = value["answer"].as_str() {
        return Message::text(Role::Assistant, result);
    }
    answer
}
