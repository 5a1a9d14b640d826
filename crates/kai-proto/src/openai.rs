//! OpenAI's wire format: Chat Completions, Embeddings, Models and the error body.
//!
//! kai serves these at `/v1/…` so that programs written for OpenAI work against it unchanged,
//! and its OpenAI and OpenAI-compatible provider adapters send the same types upstream. They
//! follow OpenAI's API reference field for field.
//!
//! Unlike kai's own request types, these accept fields they do not model: OpenAI's SDKs add
//! parameters over time, and OpenAI-compatible servers (vLLM, llama.cpp) take extras such as
//! `top_k`. Unknown request fields are kept in `extra` and passed on to OpenAI-family upstreams.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// `POST /v1/chat/completions`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ChatCompletionRequest {
    /// The model: a name from `GET /v1/models`.
    #[schema(example = "local/smollm2")]
    pub model: String,
    /// The conversation so far.
    pub messages: Vec<ChatMessage>,
    /// Tools the model may call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool>>,
    /// Whether and which tool the model must call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    /// Whether the model may call several tools in one turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
    /// Plain text, any JSON object, or JSON matching a schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<ResponseFormat>,
    /// Stream the answer as server-sent events of [`ChatCompletionChunk`]s, ending with
    /// `data: [DONE]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Streaming options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
    /// Sampling temperature, 0 to 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Nucleus sampling: the probability mass to sample from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    /// How many answers to generate; kai supports 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    /// Up to four sequences where generation stops.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Stop>,
    /// The most tokens to generate (older name of `max_completion_tokens`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// The most tokens to generate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u32>,
    /// Penalises tokens already present, -2 to 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f32>,
    /// Penalises tokens by how often they appear, -2 to 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f32>,
    /// Makes sampling repeatable where the model supports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    /// An id for the end user, passed on to the provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// kai's extension: answer from the caller's knowledge. The passages found for the last
    /// user message are put before it in the prompt, and the answer carries them as
    /// `sources`. OpenAI's SDKs send it through `extra_body`. Not passed upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub knowledge: Option<crate::KnowledgeOptions>,
    /// Any other field, passed on to OpenAI-family upstreams as it is.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub extra: Map<String, Value>,
}

/// `stream_options`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StreamOptions {
    /// Send a last chunk with no choices and the whole request's token usage.
    #[serde(default)]
    pub include_usage: bool,
}

/// One sequence or several.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Stop {
    /// One stop sequence.
    One(String),
    /// Several.
    Many(Vec<String>),
}

impl Stop {
    /// The sequences, as a list.
    #[must_use]
    pub fn into_vec(self) -> Vec<String> {
        match self {
            Stop::One(one) => vec![one],
            Stop::Many(many) => many,
        }
    }
}

/// A message of the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ChatMessage {
    /// `system`, `developer`, `user`, `assistant` or `tool`.
    #[schema(example = "user")]
    pub role: String,
    /// Text, a list of parts (text and images), or null for an assistant message that only
    /// calls tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<MessageContent>,
    /// A name for the participant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The tools an assistant message called.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    /// For a `tool` message: the call it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// An assistant's refusal, when it declined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
}

/// A message's content: plain text or parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum MessageContent {
    /// Plain text.
    Text(String),
    /// Text and image parts.
    Parts(Vec<ContentPart>),
}

/// A part of a message's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentPart {
    /// Text.
    Text {
        /// The text.
        text: String,
    },
    /// An image, by URL or as a `data:` URL.
    ImageUrl {
        /// Where the image is.
        image_url: ImageUrl,
    },
    /// A refusal, in an assistant message.
    Refusal {
        /// Why the model declined.
        refusal: String,
    },
    /// Audio input, which kai does not accept (read so it can say so).
    InputAudio {
        /// The audio.
        #[schema(value_type = Object)]
        input_audio: Value,
    },
    /// A file, which kai does not accept (read so it can say so).
    File {
        /// The file.
        #[schema(value_type = Object)]
        file: Value,
    },
    /// Any other kind of part, refused by name.
    #[serde(other)]
    Unknown,
}

/// An image reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ImageUrl {
    /// `https://…` or `data:image/png;base64,…`.
    pub url: String,
    /// `low`, `high` or `auto`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Tool {
    /// `function`, the only kind kai accepts.
    #[serde(rename = "type")]
    #[schema(example = "function")]
    pub kind: String,
    /// The function; absent only in tools of other kinds, which are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<FunctionDefinition>,
}

/// A function the model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FunctionDefinition {
    /// Its name: letters, digits, `_` and `-`, up to 64.
    pub name: String,
    /// What it does, for the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Its arguments, as a JSON Schema object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub parameters: Option<Value>,
    /// Whether the arguments must match the schema exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
}

/// `tool_choice`: `none`, `auto`, `required`, or one named function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ToolChoice {
    /// `none`, `auto` or `required`.
    Mode(String),
    /// `{"type": "function", "function": {"name": …}}`.
    Named(NamedToolChoice),
}

/// One function the model must call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NamedToolChoice {
    /// Always `function`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The function.
    pub function: FunctionName,
}

/// A function, by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FunctionName {
    /// Its name.
    pub name: String,
}

/// A call the model made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ToolCall {
    /// The call's id, which the `tool` message answering it repeats.
    pub id: String,
    /// Always `function`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The function and its arguments.
    pub function: FunctionCall,
}

/// A function call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FunctionCall {
    /// The function.
    pub name: String,
    /// Its arguments, as a JSON text.
    pub arguments: String,
}

/// `response_format`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResponseFormat {
    /// Plain text.
    Text,
    /// Any JSON object.
    JsonObject,
    /// JSON that matches a schema.
    JsonSchema {
        /// The schema.
        json_schema: JsonSchemaFormat,
    },
}

/// A named JSON schema for structured output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JsonSchemaFormat {
    /// The schema's name.
    pub name: String,
    /// What the output is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The JSON Schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub schema: Option<Value>,
    /// Whether the output must match the schema exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
}

/// The answer to a chat completion request that did not stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ChatCompletion {
    /// The completion's id.
    pub id: String,
    /// Always `chat.completion`.
    #[schema(example = "chat.completion")]
    pub object: String,
    /// When it was made, in Unix seconds.
    pub created: i64,
    /// The model that answered, as the client named it.
    pub model: String,
    /// The answers; kai gives one.
    pub choices: Vec<Choice>,
    /// Tokens used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<CompletionUsage>,
    /// The backend configuration, where the provider reports one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_fingerprint: Option<String>,
    /// kai's extension, with `knowledge`: the passages the answer was given, which it cites by
    /// their `number`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sources: Option<Vec<crate::KnowledgeSource>>,
}

/// One answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Choice {
    /// Its position in `choices`.
    pub index: u32,
    /// The assistant's message.
    pub message: ChatMessage,
    /// `stop`, `length`, `tool_calls` or `content_filter`.
    pub finish_reason: Option<String>,
    /// Not provided by kai; always null.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub logprobs: Option<Value>,
}

/// Tokens a request used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CompletionUsage {
    /// Tokens in the prompt.
    pub prompt_tokens: u64,
    /// Tokens generated.
    pub completion_tokens: u64,
    /// Both together.
    pub total_tokens: u64,
}

/// One server-sent event of a streamed chat completion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ChatCompletionChunk {
    /// The completion's id, the same in every chunk.
    pub id: String,
    /// Always `chat.completion.chunk`.
    #[schema(example = "chat.completion.chunk")]
    pub object: String,
    /// When the completion started, in Unix seconds.
    pub created: i64,
    /// The model, as the client named it.
    pub model: String,
    /// What this chunk adds; empty in the last chunk when usage was asked for.
    pub choices: Vec<ChunkChoice>,
    /// With `stream_options.include_usage`: null in every chunk but the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<CompletionUsage>,
    /// The backend configuration, where the provider reports one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_fingerprint: Option<String>,
}

/// What a chunk adds to an answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ChunkChoice {
    /// The answer it belongs to.
    pub index: u32,
    /// The new text or tool-call fragments.
    pub delta: ChunkDelta,
    /// Set in the chunk that ends the answer.
    pub finish_reason: Option<String>,
    /// Not provided by kai; always null.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub logprobs: Option<Value>,
}

/// New text or tool-call fragments.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ChunkDelta {
    /// `assistant`, in the first chunk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// More text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// More of a refusal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
    /// Fragments of tool calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCallDelta>>,
}

/// A fragment of a tool call: the first names it, later ones add to its arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ToolCallDelta {
    /// Which call of this answer it belongs to.
    pub index: u32,
    /// The call's id, in its first fragment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `function`, in its first fragment.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Name and argument text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<FunctionCallDelta>,
}

/// A fragment of a function call.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FunctionCallDelta {
    /// The function, in the first fragment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// More of the arguments' JSON text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<String>,
}

/// `POST /v1/embeddings`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EmbeddingRequest {
    /// The model: a name from `GET /v1/models`.
    #[schema(example = "local/minilm")]
    pub model: String,
    /// A text or a list of texts.
    pub input: EmbeddingInput,
    /// `float` (the default) or `base64` (little-endian 32-bit floats).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding_format: Option<String>,
    /// Fewer dimensions, for models that can shorten their vectors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<u32>,
    /// An id for the end user, passed on to the provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Any other field, passed on to OpenAI-family upstreams as it is.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub extra: Map<String, Value>,
}

/// What to embed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum EmbeddingInput {
    /// One text.
    One(String),
    /// Several texts.
    Many(Vec<String>),
    /// Token ids, which kai does not accept (models differ in their tokenizers).
    Tokens(Vec<i64>),
    /// Lists of token ids, likewise refused.
    TokenLists(Vec<Vec<i64>>),
}

/// The answer to an embedding request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EmbeddingResponse {
    /// Always `list`.
    pub object: String,
    /// One embedding per input, in order.
    pub data: Vec<Embedding>,
    /// The model, as the client named it.
    pub model: String,
    /// Tokens used.
    pub usage: EmbeddingUsage,
}

/// One input's embedding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Embedding {
    /// Always `embedding`.
    pub object: String,
    /// The input's position.
    pub index: u32,
    /// kai's addition: `true` when the input was longer than the model takes and only its
    /// beginning was embedded. Absent otherwise.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    /// The vector: numbers, or base64 when asked for.
    pub embedding: EmbeddingVector,
}

/// A vector as numbers or as base64 of little-endian 32-bit floats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum EmbeddingVector {
    /// Numbers.
    Float(Vec<f32>),
    /// Base64.
    Base64(String),
}

/// Tokens an embedding request used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EmbeddingUsage {
    /// Tokens in the input.
    pub prompt_tokens: u64,
    /// The same.
    pub total_tokens: u64,
}

/// `GET /v1/models`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ModelList {
    /// Always `list`.
    pub object: String,
    /// The models.
    pub data: Vec<Model>,
}

/// A model clients may name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Model {
    /// The name to send as `model`.
    pub id: String,
    /// Always `model`.
    pub object: String,
    /// When it was configured, in Unix seconds.
    pub created: i64,
    /// Who serves it.
    pub owned_by: String,
}

/// OpenAI's error body: what `/v1/…` answers on every error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorResponse {
    /// The error.
    pub error: ErrorDetail,
}

/// An error, the OpenAI way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// What went wrong and what to do.
    pub message: String,
    /// The class: `invalid_request_error`, `authentication_error`, `permission_error`,
    /// `not_found_error`, `rate_limit_error`, `upstream_error`, `timeout_error`, `server_error`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The request field at fault, if one is.
    pub param: Option<String>,
    /// A stable code: kai's problem kind (`invalid-api-key`, `budget-exceeded`, …).
    pub code: Option<String>,
}
