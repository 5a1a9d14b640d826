//! The gateway's own API: providers and models for admins, usage, key budgets, conversations.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::openai::{ChatMessage, CompletionUsage, MessageContent};

/// `POST /api/v1/providers`, `PUT /api/v1/providers/{name}`: where models are served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderDefinition {
    /// The name deployments refer to it by.
    #[schema(example = "upstream")]
    pub name: String,
    /// `openai`, `openai-compatible`, `anthropic`, `gemini`, `cohere` or `ollama`; `local` for
    /// the built-in provider of the models kai runs itself (listed, never created).
    #[schema(example = "openai-compatible")]
    pub kind: String,
    /// Its address; defaults to the provider's public API for the commercial kinds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "http://127.0.0.1:9000/v1")]
    pub base_url: Option<String>,
    /// Where its API key is kept: `env:NAME` or `file:PATH`, never the key itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "env:UPSTREAM_KEY")]
    pub api_key: Option<String>,
    /// Seconds to wait for a connection (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout_s: Option<f64>,
    /// Seconds a whole answer, or a stream's first byte, may take (default 600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_s: Option<f64>,
    /// Seconds a stream may stay silent before it counts as stalled (default 120).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_idle_timeout_s: Option<f64>,
    /// Extra HTTP headers on every request (not credentials).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

/// A provider, as the gateway has it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Provider {
    /// Its definition, with defaults filled in.
    #[serde(flatten)]
    pub definition: ProviderDefinition,
    /// `config` (from the configuration file: read-only here), `api`, or `local` (built in:
    /// the local model store's, managed with `kai models` and `/api/v1/local-models`).
    #[schema(example = "api")]
    pub source: String,
    /// Why it cannot be used, when it cannot (a credential that does not resolve).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// When it was defined.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// One place a model is served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeploymentDefinition {
    /// The provider's name.
    #[schema(example = "upstream")]
    pub provider: String,
    /// The provider's name for the model.
    #[schema(example = "model-a")]
    pub model: String,
    /// Share of traffic under the `weighted` strategy (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    /// Order under the `priority` strategy, lowest first (default: list order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
    /// Requests per minute it may take.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u32>,
    /// Tokens per minute it may take.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm: Option<u64>,
}

/// `POST /api/v1/models`, `PUT /api/v1/models/{name}`: a model name clients use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelDefinition {
    /// The name clients send as `model`.
    #[schema(example = "smart")]
    pub name: String,
    /// `priority` (default), `weighted`, `least-busy` or `latency`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
    /// Where it is served.
    pub deployments: Vec<DeploymentDefinition>,
    /// Further attempts after a transient failure (default 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// Models to try when every deployment failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fallbacks: Vec<String>,
    /// Models to try when the prompt is too long for this one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub context_window_fallbacks: Vec<String>,
    /// Models to try when this one's provider refuses the content.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub content_policy_fallbacks: Vec<String>,
}

/// A deployment's live state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeploymentStatus {
    /// The provider.
    pub provider: String,
    /// The provider's name for the model.
    pub model: String,
    /// `healthy`, `cooling_down` (taken out after failures) or `probing` (on trial).
    #[schema(example = "healthy")]
    pub state: String,
    /// Seconds until a cooling-down deployment is tried again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_in_s: Option<f64>,
    /// Requests in flight.
    pub in_flight: u32,
    /// Moving average of time to first token, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_ms: Option<f64>,
    /// Failures in a row.
    pub consecutive_failures: u32,
    /// Requests in the last minute.
    pub requests_last_minute: u32,
    /// Tokens in the last minute.
    pub tokens_last_minute: u64,
}

/// A model, as the gateway has it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ModelInfo {
    /// Its definition, with defaults filled in.
    #[serde(flatten)]
    pub definition: ModelDefinition,
    /// `config` or `api`.
    pub source: String,
    /// Each deployment's live state, in the order of `deployments`.
    pub status: Vec<DeploymentStatus>,
    /// When it was defined.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// Usage totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UsageTotals {
    /// Requests.
    pub requests: u64,
    /// Requests that failed.
    pub errors: u64,
    /// Tokens read.
    pub input_tokens: u64,
    /// Tokens written.
    pub output_tokens: u64,
    /// Cost in US dollars, from the price table.
    pub cost_usd: f64,
}

/// Totals for one group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UsageGroupTotals {
    /// The model, provider, key id, user id or day (YYYY-MM-DD).
    pub key: String,
    /// Its totals.
    #[serde(flatten)]
    pub totals: UsageTotals,
}

/// `GET /api/v1/usage`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UsageReport {
    /// Start of the window (inclusive), if bounded.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub from: Option<OffsetDateTime>,
    /// End of the window (exclusive), if bounded.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub to: Option<OffsetDateTime>,
    /// Everything in the window.
    pub totals: UsageTotals,
    /// Per group, when `group_by` was given; most expensive first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<UsageGroupTotals>>,
}

/// One model request, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UsageRecord {
    /// The record's id.
    pub id: Uuid,
    /// When the request finished.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// The HTTP request's id.
    pub request_id: String,
    /// The user.
    pub user_id: Uuid,
    /// The API key, if one was used.
    pub api_key_id: Option<Uuid>,
    /// `chat` or `embeddings`.
    pub endpoint: String,
    /// The model name the client used.
    pub model: String,
    /// The provider that answered (or failed last).
    pub provider: Option<String>,
    /// The provider's name for the model.
    pub upstream_model: Option<String>,
    /// Tokens read.
    pub input_tokens: u64,
    /// Tokens written.
    pub output_tokens: u64,
    /// Milliseconds to the whole answer.
    pub latency_ms: u64,
    /// Milliseconds to the first token.
    pub ttft_ms: Option<u64>,
    /// `ok`, or how it failed (`rate_limited`, `cancelled`, `server`, …).
    pub status: String,
    /// Cost in US dollars.
    pub cost_usd: f64,
    /// Whether it was streamed.
    pub stream: bool,
}

impl From<kai_core::UsageTotals> for UsageTotals {
    fn from(totals: kai_core::UsageTotals) -> UsageTotals {
        UsageTotals {
            requests: totals.requests,
            errors: totals.errors,
            input_tokens: totals.input_tokens,
            output_tokens: totals.output_tokens,
            cost_usd: usd(totals.cost_micros),
        }
    }
}

impl From<kai_core::UsageRecord> for UsageRecord {
    fn from(record: kai_core::UsageRecord) -> UsageRecord {
        UsageRecord {
            id: record.id.as_uuid(),
            created_at: record.created_at,
            request_id: record.request_id,
            user_id: record.user_id.as_uuid(),
            api_key_id: record.api_key_id.map(|key| key.as_uuid()),
            endpoint: record.endpoint,
            model: record.model,
            provider: record.provider,
            upstream_model: record.upstream_model,
            input_tokens: record.input_tokens,
            output_tokens: record.output_tokens,
            latency_ms: record.latency_ms,
            ttft_ms: record.ttft_ms,
            status: record.status,
            cost_usd: usd(record.cost_micros),
            stream: record.stream,
        }
    }
}

/// Millionths of a dollar, as dollars.
fn usd(micros: u64) -> f64 {
    micros as f64 / 1e6
}

/// `GET /api/v1/usage/records`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UsageRecordPage {
    /// Newest first.
    pub records: Vec<UsageRecord>,
    /// Pass as `before` for the next page; absent on the last one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_before: Option<Uuid>,
}

/// One spending limit on an API key: `tokens` or `usd`, per `day` or `month` (UTC).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyBudget {
    /// `day` or `month`.
    #[schema(example = "day")]
    pub period: String,
    /// Input and output tokens together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 9_223_372_036_854_775_807_u64)]
    pub tokens: Option<u64>,
    /// US dollars, from the price table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usd: Option<f64>,
}

/// `PUT /api/v1/keys/{id}/budgets`: replaces the key's budgets (an empty list removes them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyBudgets {
    /// The limits.
    pub budgets: Vec<KeyBudget>,
}

/// `POST /api/v1/conversations`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateConversationRequest {
    /// Its title; by default the first line of the first user message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The model it talks to (see `GET /v1/models`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Messages to start with, in OpenAI's format.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<ChatMessage>,
}

/// `PATCH /api/v1/conversations/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateConversationRequest {
    /// The new title.
    pub title: String,
}

/// A conversation without its messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ConversationSummary {
    /// Its id.
    pub id: Uuid,
    /// Its title.
    pub title: String,
    /// The model it talks to.
    pub model: Option<String>,
    /// How many messages it holds.
    pub message_count: u64,
    /// When it started.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// `GET /api/v1/conversations`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ConversationPage {
    /// Most recently active first.
    pub conversations: Vec<ConversationSummary>,
    /// Pass as `after` for the next page; absent on the last one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_after: Option<String>,
}

/// A stored message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ConversationMessage {
    /// Its position in the conversation, from 1.
    pub seq: u64,
    /// The message, in OpenAI's format.
    #[serde(flatten)]
    pub message: ChatMessage,
    /// The model that wrote it, for answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// When it was stored.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A conversation with its messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ConversationDetail {
    /// The conversation.
    #[serde(flatten)]
    pub summary: ConversationSummary,
    /// Its messages in order.
    pub messages: Vec<ConversationMessage>,
}

/// `POST /api/v1/conversations/{id}/messages`: continues a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendMessageRequest {
    /// The user's message: text, or parts with images.
    pub content: MessageContent,
    /// The model to ask; by default the conversation's. Given, it becomes the conversation's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Stream the answer as server-sent events in OpenAI's chunk format, ending with
    /// `data: [DONE]`; the answer is stored when it is complete.
    #[serde(default)]
    pub stream: bool,
    /// Answer from your knowledge: the passages found for this message are given to the
    /// model (not stored in the conversation) and returned as the reply's `sources`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub knowledge: Option<crate::KnowledgeOptions>,
}

/// The answer to a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ConversationReply {
    /// The conversation.
    pub conversation_id: Uuid,
    /// The model that answered.
    pub model: String,
    /// The stored answer.
    pub message: ConversationMessage,
    /// Tokens used.
    pub usage: CompletionUsage,
    /// With `knowledge`: the passages the answer was given, which it cites by their `number`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sources: Option<Vec<crate::KnowledgeSource>>,
}
