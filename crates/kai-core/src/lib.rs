//! Identifiers and domain types shared by every kai crate.
//!
//! This crate does no I/O and knows nothing of HTTP, SQL or serialisation: wire formats live in
//! `kai-proto`, storage in `kai-store`. What it holds is the vocabulary the others agree on, with
//! validation done once, when raw input becomes one of these types.

mod account;
mod budget;
mod id;
mod usage;

pub use account::{
    ApiKey, InvalidInput, MAX_PASSWORD_LEN, MIN_PASSWORD_LEN, Role, Scope, Scopes, User, Username,
    validate_password,
};
pub use budget::{Budget, BudgetLimit, BudgetPeriod, format_usd};
pub use id::{
    AgentId, ApiKeyId, ArtifactId, CollectionId, ConversationId, JobId, MemoryId, NoteId, PromptId,
    RunId, RunRequestId, ScheduleId, SessionId, UsageId, UserId,
};
pub use usage::{UsageFilter, UsageGroup, UsageRecord, UsageTotals};
