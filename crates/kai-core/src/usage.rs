//! What the gateway records of each model request, and the totals drawn from those records.

use time::OffsetDateTime;

use crate::{ApiKeyId, UsageId, UserId};

/// One model request, as the gateway records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRecord {
    /// The record's id; time-ordered, so it orders records too.
    pub id: UsageId,
    /// When the request arrived.
    pub created_at: OffsetDateTime,
    /// The request id the client was given, for finding the request in logs.
    pub request_id: String,
    /// Who made the request.
    pub user_id: UserId,
    /// The API key it was made with; `None` for a login session.
    pub api_key_id: Option<ApiKeyId>,
    /// `chat` or `embeddings`.
    pub endpoint: String,
    /// The model name the client asked for.
    pub model: String,
    /// The provider that answered; `None` when none did.
    pub provider: Option<String>,
    /// The provider's name for the model that answered; `None` when none did.
    pub upstream_model: Option<String>,
    /// Tokens in the prompt.
    pub input_tokens: u64,
    /// Tokens in the answer.
    pub output_tokens: u64,
    /// From arrival to the end of the answer.
    pub latency_ms: u64,
    /// From arrival to the first streamed token, for streamed answers.
    pub ttft_ms: Option<u64>,
    /// `ok`, or the class of error, such as `rate_limited` or `cancelled`.
    pub status: String,
    /// What the request cost, in millionths of a US dollar.
    pub cost_micros: u64,
    /// Whether the answer was streamed.
    pub stream: bool,
}

/// Which records a query covers. The default covers all of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageFilter {
    /// Only this user's requests.
    pub user_id: Option<UserId>,
    /// Only requests made with this key.
    pub api_key_id: Option<ApiKeyId>,
    /// Only requests for this model name (as the client asked for it).
    pub model: Option<String>,
    /// Only requests at or after this instant.
    pub from: Option<OffsetDateTime>,
    /// Only requests before this instant.
    pub to: Option<OffsetDateTime>,
}

/// Sums over a set of records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsageTotals {
    /// How many requests.
    pub requests: u64,
    /// How many of them did not end `ok`.
    pub errors: u64,
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Answer tokens.
    pub output_tokens: u64,
    /// Cost, in millionths of a US dollar.
    pub cost_micros: u64,
}

/// What usage totals can be grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UsageGroup {
    /// The model name the client asked for.
    Model,
    /// The provider that answered (`""` when none did).
    Provider,
    /// The API key (`""` for login sessions).
    ApiKey,
    /// The user.
    User,
    /// The UTC day, as `YYYY-MM-DD`.
    Day,
}
