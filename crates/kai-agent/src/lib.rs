//! kai's agents. An agent is a stored definition (instructions, model, tools, consent policy,
//! knowledge, limits); a run takes a goal, plans it into steps, and works on each step as a
//! tool-calling loop through the model gateway, asking its owner before what its policy says
//! to ask about.
//!
//! - [`Agents`] (`service`): definitions, prompt templates, starting and steering runs,
//!   answering their requests; its [`Agents::handler`] works on runs as `kai-jobs` jobs.
//! - `executor`: one run's loop: plan, steps, model calls, tool calls, consent, limits.
//! - [`hooks`]: webhooks told of steps, tool calls and the end of a run, which may veto.
//! - `schedules`: agents run on a schedule (kai-jobs' cron and intervals), one run per fire.
//! - [`AgentDefinition`] (`definition`), [`Policy`] and [`consent::decide`] (`consent`),
//!   [`prompt`] (templates with declared variables), [`plan`] (the planner's schema and
//!   parsing), [`tools`] (the built-in tools and argument checks), [`state`] (a run's saved
//!   state and timeline events).
//!
//! Durability: a run's state is saved after every model call and tool call; a tool call that
//! changes anything is recorded before it runs and settled after, under an idempotency key,
//! so a run resumed after a crash never repeats one unknowingly. Every run start and end, tool
//! call, and consent request and decision is in the signed audit log before it takes effect.

pub mod consent;
mod definition;
mod executor;
pub mod hooks;
pub mod plan;
pub mod prompt;
mod schedules;
mod service;
pub mod state;
pub mod tools;

pub use consent::Policy;
pub use definition::{AgentDefinition, Limits, ToolCalling};
pub use schedules::{NewAgentSchedule, SCHEDULED_RUN_JOB, ScheduleView};
pub use service::{AgentError, AgentView, Agents, RUN_JOB, RunView};
