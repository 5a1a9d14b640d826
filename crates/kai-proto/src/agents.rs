//! Agents: their definitions, runs with their timelines, the requests runs make of their owner,
//! and prompt templates.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// What happens when an agent calls a tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConsentPolicy {
    /// The call goes ahead.
    Allow,
    /// The run waits until the owner approves or denies the call.
    Ask,
    /// The call is refused.
    Deny,
}

/// How the agent's model is asked to call tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ToolCalling {
    /// Native tool calls, except for local models, which are prompted.
    Auto,
    /// The provider's tool calling.
    Native,
    /// Tools described in the prompt, calls answered as JSON.
    Prompted,
}

/// What one run may spend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentLimits {
    /// Steps of the plan, re-plans included (1 to 100; default 12).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_steps: Option<u32>,
    /// Model calls, planning included (default 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_model_calls: Option<u32>,
    /// Tool calls (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tool_calls: Option<u32>,
    /// Tokens over all model calls (default 500000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// Time spent running, waiting for the owner aside, as `30m` or `2h` (default 30m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration: Option<String>,
    /// Once the run's model calls have cost this many dollars (by the configured prices),
    /// it asks its owner before going on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ask_after_usd: Option<f64>,
}

/// An agent's definition: what creating or replacing an agent takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentDefinition {
    /// What it is for, for people.
    #[serde(default)]
    pub description: String,
    /// Its instructions: a prompt template (minijinja) that may use `goal`, `agent`, `date`,
    /// `now`, `tools` and the keys of `variables`. Either these or `prompt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    /// A stored prompt template for its instructions: `NAME` or `NAME@VERSION`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// Values for the template's variables.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    #[schema(value_type = Object)]
    pub variables: Map<String, Value>,
    /// The model it thinks with; the configured default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The tools it may use: `read_file`, `write_file`, `list_files`, `shell`,
    /// `http_request`, `search_knowledge`, `write_note`, `remember`, `recall`, `ask_user`.
    /// MCP servers' tools come with `mcp_servers`.
    #[serde(default)]
    pub tools: Vec<String>,
    /// The MCP servers (configured by an admin as `[[mcp_servers]]`) whose tools it may use,
    /// each tool as `SERVER__TOOL`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mcp_servers: Vec<String>,
    /// Per tool, allow, ask or deny; tools not named get the default for what they do
    /// (reading and workspace writes allowed, anything reaching outside asked about).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub consent: BTreeMap<String, ConsentPolicy>,
    /// The collections its knowledge search is limited to; all when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub collections: Vec<Uuid>,
    /// Whether it may read and keep its owner's memory.
    #[serde(default)]
    pub memory: bool,
    /// How its model is asked to call tools (default `auto`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calling: Option<ToolCalling>,
    /// What one run may spend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<AgentLimits>,
    /// Webhooks told of its steps, tool calls and end (at most 8).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<AgentHook>,
}

/// An MCP server's tool that a hook calls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct McpHook {
    /// The server, one of `[[mcp_servers]]`.
    pub server: String,
    /// The tool.
    pub tool: String,
}

/// When a hook is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HookEvent {
    /// A step is about to begin (a veto hook may stop it).
    BeforeStep,
    /// A step ended.
    AfterStep,
    /// A tool call is about to run, consent given (a veto hook may stop it).
    BeforeTool,
    /// A tool call ran.
    AfterTool,
    /// The run ended.
    RunEnd,
}

/// A hook told of a run's events: a webhook kai POSTs each event to, or an MCP server's tool
/// kai calls with it, as JSON with `event`, `run`, `agent`, `goal`, `step` and the event's
/// details. A veto hook answers `before_*` events with `{"allow": true}` or
/// `{"allow": false, "reason": "..."}`; one that cannot be reached vetoes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentHook {
    /// The http:// or https:// URL (agents.http_allow applies, as to `http_request`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
    /// The MCP server's tool called with each event, instead of a webhook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcp: Option<McpHook>,
    /// The events it gets; all when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<HookEvent>,
    /// Whether it may stop steps and tool calls.
    #[serde(default)]
    pub veto: bool,
    /// How long it may take to answer, as `5s` (default 10s, at most 2m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

/// Creating or replacing an agent: its name and definition, in the shape [`Agent`] shows
/// them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentRequest {
    /// Its name, unique among the caller's agents: letters, digits, `-`, `_`, `.`.
    pub name: String,
    /// Its definition.
    pub definition: AgentDefinition,
}

/// The owner's standing answer for one of an agent's tools.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ConsentGrant {
    /// The tool.
    pub tool: String,
    /// Whether its calls go ahead without asking (`true`) or are refused.
    pub allow: bool,
}

/// An agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Agent {
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// Its definition, defaults filled in.
    pub definition: AgentDefinition,
    /// The owner's standing answers ("always"), which override its consent policy.
    pub grants: Vec<ConsentGrant>,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it was last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// The caller's agents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AgentList {
    /// By name.
    pub agents: Vec<Agent>,
}

/// Starting a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRunRequest {
    /// What the agent should do.
    pub goal: String,
}

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Waiting for a worker.
    Queued,
    /// Being worked on.
    Running,
    /// Waiting for its owner to answer a request.
    Waiting,
    /// Paused by its owner.
    Paused,
    /// Done, goal reached.
    Succeeded,
    /// Ended without reaching its goal; `error` says why.
    Failed,
    /// Stopped by its owner.
    Cancelled,
}

/// What a run has spent.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RunUsage {
    /// Steps begun.
    pub steps: u32,
    /// Model calls.
    pub model_calls: u32,
    /// Tool calls.
    pub tool_calls: u32,
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Answer tokens.
    pub output_tokens: u64,
    /// Milliseconds spent running.
    pub running_ms: u64,
    /// What its model calls cost by the configured prices, in dollars.
    pub cost_usd: f64,
}

/// A run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Run {
    /// Its id.
    pub id: Uuid,
    /// The agent it runs.
    pub agent_id: Uuid,
    /// Its goal.
    pub goal: String,
    /// Where it stands.
    pub status: RunStatus,
    /// The plan's step titles, once planned.
    pub plan: Vec<String>,
    /// The step being worked on, from 1; past the last when done.
    pub step: usize,
    /// The final answer, when it succeeded.
    pub answer: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// The request it waits on, when waiting.
    pub waiting_on: Option<Uuid>,
    /// What it has spent.
    pub usage: RunUsage,
    /// The number of its timeline's last event.
    pub last_event: u64,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// When it ended.
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
}

/// The caller's runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RunList {
    /// Newest first.
    pub runs: Vec<Run>,
}

/// Which runs to list.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RunListQuery {
    /// Only this agent's runs (its id or name).
    pub agent: Option<String>,
    /// At most this many, 1 to 500 (default 50).
    pub limit: Option<u32>,
}

/// One event of a run's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RunEvent {
    /// Its number in the timeline, from 1.
    pub seq: u64,
    /// When it happened.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// What happened: `created`, `started`, `plan`, `step_started`, `model_call`,
    /// `tool_call`, `tool_result`, `requested`, `decided`, `step_finished`, `step_failed`,
    /// `error`, `paused`, `queued`, `finished`.
    pub kind: String,
    /// Its details (with `type` repeating the kind).
    #[schema(value_type = Object)]
    pub data: Value,
}

/// Part of a run's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RunEvents {
    /// In order.
    pub events: Vec<RunEvent>,
}

/// Which events to read.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RunEventsQuery {
    /// Only events after this number (default 0: from the start).
    pub after: Option<u64>,
    /// At most this many, 1 to 1000 (default 500).
    pub limit: Option<u32>,
}

/// What a run asks its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequestKind {
    /// May the agent make this call?
    Consent,
    /// A question; approve it with an `answer`.
    Question,
    /// A call was started before kai stopped and whether it finished is unknown: approve to
    /// run it again, deny to go on without it.
    Outcome,
}

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    /// Not answered yet.
    Pending,
    /// Approved (or the question answered).
    Approved,
    /// Denied.
    Denied,
    /// Not answered in time: a denial.
    Expired,
}

/// Something a run asked its owner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RunRequest {
    /// Its id.
    pub id: Uuid,
    /// The run asking.
    pub run_id: Uuid,
    /// The run's agent.
    pub agent_id: Uuid,
    /// What it asks.
    pub kind: RequestKind,
    /// The tool concerned.
    pub tool: String,
    /// What the owner is shown: the call's arguments, or the question.
    #[schema(value_type = Object)]
    pub details: Value,
    /// Where it stands.
    pub status: RequestStatus,
    /// The answer to a question, or the reason given with a decision.
    pub answer: Option<String>,
    /// Whether the decision stands for this agent and tool from now on.
    pub remember: bool,
    /// When it expires as a denial.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// When it was asked.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// The caller's requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RunRequestList {
    /// Oldest first.
    pub requests: Vec<RunRequest>,
}

/// Which requests to list.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RunRequestQuery {
    /// Only this run's.
    pub run: Option<Uuid>,
    /// Only those still waiting for an answer (default true).
    pub pending: Option<bool>,
}

/// Answering a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecideRequest {
    /// Approve (or answer) it, or deny it.
    pub approve: bool,
    /// The answer to a question, or a reason the agent is told.
    #[serde(default)]
    pub answer: Option<String>,
    /// For consent: let the decision stand for this agent and tool from now on.
    #[serde(default)]
    pub remember: bool,
}

/// Storing a prompt template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PromptRequest {
    /// Its name, unique among the caller's templates.
    pub name: String,
    /// What it is for.
    #[serde(default)]
    pub description: String,
    /// The template: minijinja text.
    pub template: String,
    /// The variables it uses besides those kai provides (`goal`, `agent`, `date`, `now`,
    /// `tools`).
    #[serde(default)]
    pub variables: Vec<String>,
}

/// A new version of a template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PromptVersionRequest {
    /// The template.
    pub template: String,
    /// The variables it uses besides those kai provides.
    #[serde(default)]
    pub variables: Vec<String>,
    /// A new description, when given.
    #[serde(default)]
    pub description: Option<String>,
}

/// A prompt template at one version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Prompt {
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// The version shown.
    pub version: u32,
    /// Its newest version.
    pub latest_version: u32,
    /// That version's text.
    pub template: String,
    /// That version's declared variables.
    pub variables: Vec<String>,
    /// When the template was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When its newest version was written.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// Templates, or a template's versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PromptList {
    /// By name, or oldest version first.
    pub prompts: Vec<Prompt>,
}

/// Which version of a template.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PromptQuery {
    /// The version; the newest when absent.
    pub version: Option<u32>,
}

/// Scheduling an agent's runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleRequest {
    /// Its name, unique among the caller's schedules.
    pub name: String,
    /// The agent each fire runs (its id or name).
    pub agent: String,
    /// The goal each run is given.
    pub goal: String,
    /// When it fires: `cron: MIN HOUR DAY MONTH WEEKDAY` (or with seconds first, or
    /// `@daily`-style shortcuts), or `every DURATION` (`every 15m`, `every 1h30m`).
    pub spec: String,
    /// The IANA time zone cron times are read in (default `UTC`). A time skipped by a
    /// daylight-saving change fires at the first instant after the gap; a time that happens
    /// twice fires once, at its first occurrence.
    #[serde(default)]
    pub time_zone: Option<String>,
    /// Fires missed while no kai was running: `skip` them (the default) or `run_once`.
    #[serde(default)]
    pub missed: Option<String>,
    /// Whether it starts enabled (default true).
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// A schedule of an agent's runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Schedule {
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// The agent each fire runs.
    pub agent_id: Uuid,
    /// The goal each run is given.
    pub goal: String,
    /// When it fires.
    pub spec: String,
    /// The time zone cron times are read in.
    pub time_zone: String,
    /// `skip` or `run_once`.
    pub missed: String,
    /// Whether it fires.
    pub enabled: bool,
    /// Its next fires (the first is when it fires next), empty when disabled.
    #[serde(with = "rfc3339_list")]
    #[schema(value_type = Vec<String>)]
    pub upcoming: Vec<OffsetDateTime>,
    /// When it last fired.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_fire_at: Option<OffsetDateTime>,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// The caller's schedules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ScheduleList {
    /// By name.
    pub schedules: Vec<Schedule>,
}

/// Times as RFC 3339 text.
mod rfc3339_list {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc3339;

    pub(super) fn serialize<S: Serializer>(
        times: &[OffsetDateTime],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let texts: Result<Vec<String>, _> = times.iter().map(|t| t.format(&Rfc3339)).collect();
        texts
            .map_err(serde::ser::Error::custom)?
            .serialize(serializer)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<OffsetDateTime>, D::Error> {
        Vec::<String>::deserialize(deserializer)?
            .iter()
            .map(|text| OffsetDateTime::parse(text, &Rfc3339).map_err(serde::de::Error::custom))
            .collect()
    }
}
