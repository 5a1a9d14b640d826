//! A run's saved state and its timeline's events, as JSON in the store. The state is saved
//! after every model call and every tool call, so a run resumed after a crash starts from its
//! last completed action.

use std::collections::VecDeque;

use kai_models::chat::Message;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::plan::Plan;

/// Everything a run needs to go on from where it stopped.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    /// The API key the run was started with, whose budgets its model calls count against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    /// The plan, once made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<Plan>,
    /// The step being worked on, from 0.
    #[serde(default)]
    pub step: usize,
    /// The current step's conversation with the model.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<Message>,
    /// Calls the model asked for in its last answer that are not answered yet, in order.
    #[serde(default, skip_serializing_if = "VecDeque::is_empty")]
    pub pending: VecDeque<PendingCall>,
    /// The request to the owner the run waits on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<String>,
    /// What each finished step came to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub results: Vec<StepResult>,
    /// What the run has spent.
    #[serde(default)]
    pub used: Used,
    /// Model answers in the current step.
    #[serde(default)]
    pub turn: u32,
    /// How many times the plan was remade after a step failed.
    #[serde(default)]
    pub replans: u32,
    /// The last answer's calls, to notice a model that repeats itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_calls: Option<String>,
    /// How many answers in a row repeated those calls.
    #[serde(default)]
    pub repeats: u32,
    /// Model calls in a row that failed.
    #[serde(default)]
    pub model_failures: u32,
    /// Whether the owner let the run spend past `limits.ask_after_usd`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub spend_approved: bool,
}

/// A call the model asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingCall {
    /// Its idempotency key in the run: step, turn and place in the answer.
    pub key: String,
    /// The model's id for it, which the answer names.
    pub id: String,
    /// The tool.
    pub tool: String,
    /// The arguments, as the model wrote them.
    pub arguments: String,
}

/// What a step came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepResult {
    /// The step's title.
    pub title: String,
    /// The model's summary, or why it failed.
    pub output: String,
    /// Whether it was done.
    pub ok: bool,
}

/// What a run has spent, against its limits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Used {
    /// Steps begun, re-planned ones included.
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
    /// What its model calls cost by the gateway's prices, in millionths of a dollar.
    #[serde(default)]
    pub cost_micros: u64,
}

/// One event of a run's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RunEvent {
    /// The run was created.
    Created {
        /// Its goal.
        goal: String,
        /// The model it thinks with.
        model: String,
    },
    /// A worker started (or resumed) it.
    Started {
        /// Whether it had run before.
        resumed: bool,
    },
    /// A plan was made, or remade after a failed step.
    Plan {
        /// The steps still to do.
        steps: Vec<String>,
        /// Why it was remade, or why the planner's answer was not used.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// A step began.
    StepStarted {
        /// Its number, from 1.
        number: usize,
        /// Its title.
        title: String,
    },
    /// The model answered.
    ModelCall {
        /// The model that answered.
        model: String,
        /// Prompt tokens.
        input_tokens: u64,
        /// Answer tokens.
        output_tokens: u64,
        /// The tools it called.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<String>,
        /// Its text, shortened.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        text: String,
    },
    /// A tool is being called.
    ToolCall {
        /// The call's idempotency key.
        key: String,
        /// The tool.
        tool: String,
        /// The arguments.
        arguments: Value,
    },
    /// A tool call's outcome.
    ToolResult {
        /// The call's idempotency key.
        key: String,
        /// The tool.
        tool: String,
        /// Whether it succeeded.
        ok: bool,
        /// What the model is told, shortened.
        output: String,
        /// Whether this is the result of an earlier attempt, not a new call.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        reused: bool,
    },
    /// The run asked its owner something and waits.
    Requested {
        /// The request's id.
        request: String,
        /// `consent`, `question` or `outcome`.
        kind: String,
        /// The tool concerned.
        tool: String,
        /// What the owner is shown.
        details: Value,
    },
    /// The owner answered, or the request expired.
    Decided {
        /// The request's id.
        request: String,
        /// `approved`, `denied` or `expired`.
        status: String,
        /// Whether the answer stands for this agent and tool from now on.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        remember: bool,
    },
    /// A step was done.
    StepFinished {
        /// Its number, from 1.
        number: usize,
        /// The model's summary.
        output: String,
    },
    /// A step failed.
    StepFailed {
        /// Its number, from 1.
        number: usize,
        /// Why.
        error: String,
    },
    /// A hook vetoed a step or a tool call.
    Vetoed {
        /// The hook's URL.
        hook: String,
        /// What it vetoed: `before_step` or `before_tool`.
        event: String,
        /// Why.
        reason: String,
    },
    /// Something went wrong that the run survives (a model call failed and will be retried).
    Error {
        /// What.
        message: String,
    },
    /// The run stopped, paused by its owner.
    Paused,
    /// The run went back to the queue, resumed by its owner or answered.
    Queued,
    /// The run ended.
    Finished {
        /// `succeeded`, `failed` or `cancelled`.
        status: String,
        /// The final answer, when it succeeded.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        answer: Option<String>,
        /// Why it failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
}

impl RunEvent {
    /// The event's kind, as stored beside it.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            RunEvent::Created { .. } => "created",
            RunEvent::Started { .. } => "started",
            RunEvent::Plan { .. } => "plan",
            RunEvent::StepStarted { .. } => "step_started",
            RunEvent::ModelCall { .. } => "model_call",
            RunEvent::ToolCall { .. } => "tool_call",
            RunEvent::ToolResult { .. } => "tool_result",
            RunEvent::Requested { .. } => "requested",
            RunEvent::Decided { .. } => "decided",
            RunEvent::StepFinished { .. } => "step_finished",
            RunEvent::StepFailed { .. } => "step_failed",
            RunEvent::Vetoed { .. } => "vetoed",
            RunEvent::Error { .. } => "error",
            RunEvent::Paused => "paused",
            RunEvent::Queued => "queued",
            RunEvent::Finished { .. } => "finished",
        }
    }

    /// The event as the store keeps it.
    #[must_use]
    pub fn to_new(&self) -> kai_store::NewRunEvent {
        kai_store::NewRunEvent {
            kind: self.kind().to_owned(),
            // Serialising a value made of strings, numbers and JSON cannot fail.
            data: serde_json::to_string(self).unwrap_or_default(),
        }
    }
}

/// `text` cut to at most `max` characters, marked when cut.
#[must_use]
pub fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some((cut, _)) => format!("{}… [{} characters]", &text[..cut], text.chars().count()),
    }
}
