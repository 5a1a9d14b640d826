//! Anthropic's Messages API: `POST v1/messages` and `GET v1/models` under the base URL (which
//! is `https://api.anthropic.com`, without `/v1`), with `x-api-key` and `anthropic-version`.
//!
//! Where the internal model and Anthropic's differ, this adapter bridges as follows:
//!
//! - `max_tokens` is required by Anthropic: the request's, or [`DEFAULT_MAX_TOKENS`].
//! - System and developer messages, wherever they stand, become the one `system` prompt.
//! - Tool answers become `tool_result` blocks of a user message, and consecutive messages of the
//!   same role are merged, since Anthropic wants user and assistant turns to alternate.
//! - Structured output has no parameter of its own: a JSON Schema answer is asked for as a call
//!   to an answer tool whose input schema is the schema, and that call's input comes back as the
//!   answer's text with [`FinishReason::Stop`] (see [`AnswerTool`]). A JSON object answer is
//!   asked for in the system prompt ([`JSON_OBJECT_INSTRUCTION`]).
//! - `temperature` is capped at 1, Anthropic's maximum, rather than refused.
//! - `seed`, the presence and frequency penalties, image `detail`, participant names, tools'
//!   `strict` and the request's `extra` fields have no Anthropic equivalent and are not sent.
//! - There are no embeddings.

use std::collections::HashMap;

use kai_models::chat::{
    ChatEvent, ChatRequest, ChatResponse, EmbedRequest, EmbedResponse, FinishReason, ImageSource,
    Message, Part, ResponseFormat, Role, ToolCall, ToolChoice, Usage,
};
use kai_models::{ErrorKind, ProviderError};
use reqwest::header::{HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::adapter::{ApiFormat, ChatCall, Decode, parse_item};
use crate::http::{Http, error_message, key_headers};
use crate::spec::ProviderSpec;
use crate::sse::SseEvent;

/// The API version kai speaks; a configured `anthropic-version` header overrides it.
const API_VERSION: &str = "2023-06-01";

/// The most tokens an answer may take when the request does not say. Anthropic requires the
/// field; 4096 is within every current model's output limit and long enough for most answers.
const DEFAULT_MAX_TOKENS: u32 = 4096;

/// Anthropic's highest `temperature`; OpenAI's scale goes to 2.
const MAX_TEMPERATURE: f32 = 1.0;

/// Models asked for per page: Anthropic's maximum, so that one page usually holds them all.
const MODELS_PER_PAGE: &str = "1000";

/// The most pages of models read, so that a listing that never ends cannot hold a call forever.
const MAX_MODEL_PAGES: usize = 10;

/// Added to the system prompt for [`ResponseFormat::JsonObject`], which Anthropic has no
/// parameter for.
const JSON_OBJECT_INSTRUCTION: &str = "Answer with one JSON object only: no text before or after \
     it, and no code fences.";

/// What the answer tool tells the model when the schema has no description of its own.
const ANSWER_TOOL_DESCRIPTION: &str =
    "Give your final answer by calling this tool: its input is the answer.";

/// The Anthropic adapter.
#[derive(Debug)]
pub(crate) struct Anthropic {
    /// The connection, with the key and version headers.
    http: Http,
}

impl Anthropic {
    /// An adapter for `spec`, sending its key as `x-api-key`.
    pub(crate) fn new(spec: &ProviderSpec) -> Result<Anthropic, ProviderError> {
        let mut headers = key_headers(spec, HeaderName::from_static("x-api-key"), "")?;
        headers.insert("anthropic-version", HeaderValue::from_static(API_VERSION));
        Ok(Anthropic {
            http: Http::new(spec, headers)?,
        })
    }
}

impl ApiFormat for Anthropic {
    type Context = Option<AnswerTool>;
    type Answer = MessagesResponse;
    type Item = SseEvent;
    type Decoder = StreamEvents;

    fn http(&self) -> &Http {
        &self.http
    }

    fn chat_call(
        &self,
        request: &ChatRequest,
        stream: bool,
    ) -> Result<ChatCall<Option<AnswerTool>>, ProviderError> {
        let (body, answer) = upstream_request(request, stream)?;
        ChatCall::new(self.http.url("v1/messages"), &body, answer)
    }

    fn answer(
        &self,
        message: MessagesResponse,
        answer: Option<AnswerTool>,
    ) -> Result<ChatResponse, ProviderError> {
        Ok(chat_response(message, answer.as_ref()))
    }

    fn decoder(&self, answer: Option<AnswerTool>) -> StreamEvents {
        StreamEvents::new(answer)
    }

    async fn embed(&self, _: &EmbedRequest) -> Result<EmbedResponse, ProviderError> {
        Err(ProviderError::unsupported(
            "Anthropic has no embeddings API: route embedding models to a provider that \
         has one, such as OpenAI, Gemini, Cohere or Ollama",
        ))
    }

    async fn list_models(&self) -> Result<Vec<String>, ProviderError> {
        let mut ids = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_MODEL_PAGES {
            let mut url = self.http.url("v1/models");
            url.query_pairs_mut().append_pair("limit", MODELS_PER_PAGE);
            if let Some(after) = &after {
                url.query_pairs_mut().append_pair("after_id", after);
            }
            let response = self.http.get(url).await?;
            let page: ModelPage = self.http.json(response).await?;
            ids.extend(page.data.into_iter().map(|model| model.id));
            match page.last_id {
                Some(last) if page.has_more => after = Some(last),
                _ => return Ok(ids),
            }
        }
        tracing::warn!(
            pages = MAX_MODEL_PAGES,
            "Anthropic listed more models than kai reads; the rest are left out"
        );
        Ok(ids)
    }
}

/// The tool a JSON Schema answer is asked for as: Anthropic has no structured-output parameter,
/// but it holds a forced tool call's input to the tool's schema. The call's input is the answer.
///
/// The schema must describe an object, since a tool's input is one (OpenAI's structured output
/// asks the same). Anthropic does not promise an exact match, so `strict` is not passed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AnswerTool {
    /// The tool's name: the schema's name.
    name: String,
}

/// The body of `POST v1/messages`.
#[derive(Debug, Serialize)]
struct MessagesRequest {
    /// The upstream model name.
    model: String,
    /// The most tokens to generate; required.
    max_tokens: u32,
    /// The system and developer messages, joined.
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<String>,
    /// The turns, user and assistant alternating.
    messages: Vec<WireMessage>,
    /// Tools the model may call, the answer tool among them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<WireTool>,
    /// Whether and which tool the model must call.
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<WireToolChoice>,
    /// Sampling temperature, 0 to 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    /// Nucleus sampling mass.
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f32>,
    /// Sample from the `top_k` likeliest tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    top_k: Option<u32>,
    /// Sequences that end generation.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    stop_sequences: Vec<String>,
    /// Who is asking.
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<Metadata>,
    /// Stream the answer as server-sent events; sent only when true.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
}

/// A turn of the conversation: `user` or `assistant`.
#[derive(Debug, Serialize)]
struct WireMessage {
    /// `user` or `assistant`.
    role: &'static str,
    /// Its blocks, in order; never empty.
    content: Vec<Block>,
}

/// A content block of a message.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block {
    /// Text.
    Text {
        /// The text; never empty, since Anthropic refuses empty text blocks.
        text: String,
    },
    /// An image.
    Image {
        /// Where it is.
        source: WireImage,
    },
    /// An assistant's call to a tool.
    ToolUse {
        /// The call's id; the tool's answer names it.
        id: String,
        /// The tool.
        name: String,
        /// The arguments, a JSON object.
        input: Value,
    },
    /// A tool's answer to a call.
    ToolResult {
        /// The call it answers.
        tool_use_id: String,
        /// What the tool said, where it said anything.
        #[serde(skip_serializing_if = "Option::is_none")]
        content: Option<ToolResultContent>,
    },
}

/// Where an image is.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireImage {
    /// Inline bytes.
    Base64 {
        /// `image/png`, `image/jpeg`, …
        media_type: String,
        /// The bytes, base64.
        data: String,
    },
    /// A URL Anthropic fetches.
    Url {
        /// The URL.
        url: String,
    },
}

/// A tool's answer: plain text, or blocks when it holds images.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum ToolResultContent {
    /// Text only.
    Text(String),
    /// Text and image blocks.
    Blocks(Vec<Block>),
}

/// A tool the model may call.
#[derive(Debug, Serialize)]
struct WireTool {
    /// Its name.
    name: String,
    /// What it does, for the model.
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    /// Its input as a JSON Schema object.
    input_schema: Value,
}

/// Whether and which tool the model must call.
#[derive(Debug, Serialize)]
struct WireToolChoice {
    /// `auto`, `any`, `tool` or `none`.
    #[serde(rename = "type")]
    kind: &'static str,
    /// For `tool`: which.
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    /// At most one call (`auto`) or exactly one (`any`, `tool`); not allowed with `none`.
    #[serde(skip_serializing_if = "Option::is_none")]
    disable_parallel_tool_use: Option<bool>,
}

/// Who is asking, for Anthropic's abuse detection.
#[derive(Debug, Serialize)]
struct Metadata {
    /// An opaque id for the end user.
    user_id: String,
}

/// The request Anthropic receives, and the answer tool whose call is the answer, where the
/// request wants a JSON Schema answer.
fn upstream_request(
    request: &ChatRequest,
    stream: bool,
) -> Result<(MessagesRequest, Option<AnswerTool>), ProviderError> {
    let (mut system, messages) = conversation(&request.messages)?;
    let mut tools: Vec<WireTool> = request
        .tools
        .iter()
        .map(|tool| WireTool {
            name: tool.name.clone(),
            description: tool.description.clone(),
            input_schema: tool.parameters.clone(),
        })
        .collect();
    let mut answer = None;
    match &request.response_format {
        Some(ResponseFormat::JsonSchema {
            name,
            description,
            schema,
            ..
        }) => {
            if request.tools.iter().any(|tool| &tool.name == name) {
                return Err(ProviderError::new(
                    ErrorKind::BadRequest,
                    format!(
                        "the response format's schema is named `{name}`, like one of the tools; \
                         Anthropic gets the schema as a tool of that name, so rename one of them"
                    ),
                ));
            }
            tools.push(WireTool {
                name: name.clone(),
                description: Some(
                    description
                        .clone()
                        .unwrap_or_else(|| ANSWER_TOOL_DESCRIPTION.to_owned()),
                ),
                input_schema: schema.clone(),
            });
            answer = Some(AnswerTool { name: name.clone() });
        }
        Some(ResponseFormat::JsonObject) => {
            system = Some(match system {
                Some(text) => format!("{text}\n\n{JSON_OBJECT_INSTRUCTION}"),
                None => JSON_OBJECT_INSTRUCTION.to_owned(),
            });
        }
        Some(ResponseFormat::Text) | None => {}
    }
    let tool_choice = if tools.is_empty() {
        // Anthropic has nothing to choose from; a choice alone would only be refused.
        None
    } else {
        tool_choice(request, answer.as_ref())
    };
    let sampling = &request.sampling;
    let body = MessagesRequest {
        model: request.model.clone(),
        max_tokens: sampling.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        system,
        messages,
        tools,
        tool_choice,
        temperature: sampling.temperature.map(|t| t.min(MAX_TEMPERATURE)),
        top_p: sampling.top_p,
        top_k: sampling.top_k,
        stop_sequences: sampling.stop.clone(),
        metadata: request.user.clone().map(|user_id| Metadata { user_id }),
        stream,
    };
    Ok((body, answer))
}

/// Anthropic's `tool_choice` for the request. With an answer tool, the model must call a tool:
/// the answer tool alone where it may call no other (none given, or `none` asked), any tool
/// where it may also call the request's tools, and the named one where the request names one.
fn tool_choice(request: &ChatRequest, answer: Option<&AnswerTool>) -> Option<WireToolChoice> {
    // OpenAI's `parallel_tool_calls: false` is Anthropic's `disable_parallel_tool_use: true`;
    // otherwise Anthropic's default (parallel calls allowed) is OpenAI's too.
    let single = (request.parallel_tool_calls == Some(false)).then_some(true);
    let choice = |kind: &'static str, name: Option<String>, disable: Option<bool>| {
        Some(WireToolChoice {
            kind,
            name,
            disable_parallel_tool_use: disable,
        })
    };
    match (answer, &request.tool_choice) {
        (Some(_), Some(ToolChoice::Tool(name))) => choice("tool", Some(name.clone()), single),
        (Some(answer), Some(ToolChoice::None)) => {
            // One answer, not two JSON documents run together.
            choice("tool", Some(answer.name.clone()), Some(true))
        }
        (Some(answer), _) if request.tools.is_empty() => {
            choice("tool", Some(answer.name.clone()), Some(true))
        }
        (Some(_), _) => choice("any", None, single),
        (None, Some(ToolChoice::Auto)) => choice("auto", None, single),
        (None, Some(ToolChoice::Required)) => choice("any", None, single),
        (None, Some(ToolChoice::Tool(name))) => choice("tool", Some(name.clone()), single),
        (None, Some(ToolChoice::None)) => choice("none", None, None),
        // Only to forbid parallel calls: Anthropic has no such flag outside `tool_choice`.
        (None, None) if single.is_some() => choice("auto", None, single),
        (None, None) => None,
    }
}

/// The system prompt and the alternating turns of a conversation.
fn conversation(messages: &[Message]) -> Result<(Option<String>, Vec<WireMessage>), ProviderError> {
    let mut system: Vec<String> = Vec::new();
    let mut turns: Vec<WireMessage> = Vec::new();
    for (at, message) in messages.iter().enumerate() {
        let (role, blocks) = match message.role {
            Role::System | Role::Developer => {
                let text = message.joined_text();
                if !text.is_empty() {
                    system.push(text);
                }
                continue;
            }
            Role::User => ("user", content_blocks(&message.content)),
            Role::Assistant => ("assistant", assistant_blocks(message, at)?),
            Role::Tool => ("user", vec![tool_result(message, at)?]),
        };
        if blocks.is_empty() {
            // Anthropic refuses empty turns; an empty message says nothing anyway.
            continue;
        }
        match turns.last_mut() {
            Some(last) if last.role == role => last.content.extend(blocks),
            _ => turns.push(WireMessage {
                role,
                content: blocks,
            }),
        }
    }
    let system = (!system.is_empty()).then(|| system.join("\n\n"));
    Ok((system, turns))
}

/// Text and image parts as blocks, leaving out empty text.
fn content_blocks(parts: &[Part]) -> Vec<Block> {
    parts
        .iter()
        .filter_map(|part| match part {
            Part::Text { text } if text.is_empty() => None,
            Part::Text { text } => Some(Block::Text { text: text.clone() }),
            Part::Image { source, .. } => Some(Block::Image {
                source: match source {
                    ImageSource::Base64 { media_type, data } => WireImage::Base64 {
                        media_type: media_type.clone(),
                        data: data.clone(),
                    },
                    ImageSource::Url { url } => WireImage::Url { url: url.clone() },
                },
            }),
        })
        .collect()
}

/// An assistant message's blocks: its text (or its refusal, so the model sees it declined), then
/// its tool calls with their arguments as JSON objects.
fn assistant_blocks(message: &Message, at: usize) -> Result<Vec<Block>, ProviderError> {
    let mut blocks = content_blocks(&message.content);
    if blocks.is_empty()
        && let Some(refusal) = message.refusal.as_ref().filter(|text| !text.is_empty())
    {
        blocks.push(Block::Text {
            text: refusal.clone(),
        });
    }
    for call in &message.tool_calls {
        blocks.push(Block::ToolUse {
            id: call.id.clone(),
            name: call.name.clone(),
            input: tool_input(call, at)?,
        });
    }
    Ok(blocks)
}

/// A call's arguments as the JSON object Anthropic wants. No arguments at all is an empty
/// object, as some models write it for tools without parameters.
fn tool_input(call: &ToolCall, at: usize) -> Result<Value, ProviderError> {
    if call.arguments.trim().is_empty() {
        return Ok(Value::Object(serde_json::Map::new()));
    }
    let bad = |why: String| {
        ProviderError::new(
            ErrorKind::BadRequest,
            format!(
                "message {at}: the arguments of tool call `{}` (`{}`) {why}; Anthropic takes \
                 them only as a JSON object, so correct or drop the call before sending it",
                call.id, call.name
            ),
        )
    };
    match serde_json::from_str::<Value>(&call.arguments) {
        Ok(input @ Value::Object(_)) => Ok(input),
        Ok(_) => Err(bad("are JSON but not an object".to_owned())),
        Err(err) => Err(bad(format!("are not valid JSON ({err})"))),
    }
}

/// A tool message as a `tool_result` block.
fn tool_result(message: &Message, at: usize) -> Result<Block, ProviderError> {
    let tool_use_id = message.tool_call_id.clone().ok_or_else(|| {
        ProviderError::new(
            ErrorKind::BadRequest,
            format!(
                "message {at} is a tool's answer without `tool_call_id`; Anthropic needs the id \
                 of the call it answers"
            ),
        )
    })?;
    let content = if message.has_images() {
        Some(ToolResultContent::Blocks(content_blocks(&message.content)))
    } else {
        Some(message.joined_text())
            .filter(|text| !text.is_empty())
            .map(ToolResultContent::Text)
    };
    Ok(Block::ToolResult {
        tool_use_id,
        content,
    })
}

/// Anthropic's whole answer.
#[derive(Debug, Deserialize)]
pub(crate) struct MessagesResponse {
    /// Anthropic's id for the answer.
    #[serde(default)]
    id: Option<String>,
    /// Its blocks, in order.
    #[serde(default)]
    content: Vec<ResponseBlock>,
    /// Why it stopped.
    #[serde(default)]
    stop_reason: Option<String>,
    /// Tokens used.
    #[serde(default)]
    usage: Option<WireUsage>,
}

/// A block of an answer. Kinds kai does not read (thinking, server tools) are passed over.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ResponseBlock {
    /// Text.
    Text {
        /// The text.
        text: String,
    },
    /// A call to a tool.
    ToolUse {
        /// The call's id.
        id: String,
        /// The tool.
        name: String,
        /// The arguments: whole in an answer, an empty object at a stream's block start.
        #[serde(default)]
        input: Value,
    },
    /// Anything else.
    #[serde(other)]
    Other,
}

/// Token counts as Anthropic reports them. Cached prompt tokens are counted apart from
/// `input_tokens`, so kai adds them back: they were read all the same.
#[derive(Debug, Default, Deserialize)]
struct WireUsage {
    /// Prompt tokens read without the cache.
    #[serde(default)]
    input_tokens: Option<u64>,
    /// Tokens written.
    #[serde(default)]
    output_tokens: Option<u64>,
    /// Prompt tokens written to the cache.
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
    /// Prompt tokens read from the cache.
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
}

/// The token counts of an answer so far: the stream reports them in two events, and a later
/// event's counts replace an earlier one's (they are cumulative).
#[derive(Debug, Default)]
struct Tokens {
    /// Prompt tokens read without the cache.
    input: u64,
    /// Prompt tokens written to the cache.
    cache_creation: u64,
    /// Prompt tokens read from the cache.
    cache_read: u64,
    /// Tokens written.
    output: u64,
    /// Whether any count arrived.
    seen: bool,
}

impl Tokens {
    /// Takes the counts `usage` gives.
    fn update(&mut self, usage: &WireUsage) {
        let fields = [
            (usage.input_tokens, &mut self.input),
            (usage.cache_creation_input_tokens, &mut self.cache_creation),
            (usage.cache_read_input_tokens, &mut self.cache_read),
            (usage.output_tokens, &mut self.output),
        ];
        for (value, slot) in fields {
            if let Some(value) = value {
                *slot = value;
                self.seen = true;
            }
        }
    }

    /// The usage, once anything was counted.
    fn usage(&self) -> Option<Usage> {
        self.seen.then(|| Usage {
            input_tokens: self.input + self.cache_creation + self.cache_read,
            output_tokens: self.output,
        })
    }
}

/// Why the answer stopped. `tool_use` is [`FinishReason::ToolCalls`] only when the model called
/// one of the request's tools: a call to the answer tool alone is a finished answer.
fn finish_reason(stop_reason: Option<&str>, called_tools: bool) -> FinishReason {
    match stop_reason {
        Some("end_turn" | "stop_sequence") => FinishReason::Stop,
        Some("max_tokens" | "model_context_window_exceeded") => FinishReason::Length,
        Some("refusal") => FinishReason::ContentFilter,
        Some("tool_use") | None if called_tools => FinishReason::ToolCalls,
        Some("tool_use") | None => FinishReason::Stop,
        Some(other) => FinishReason::Other(other.to_owned()),
    }
}

/// Reads Anthropic's whole answer. With an answer tool, the first call to it is the answer's
/// text and any text beside it is left out, since it would make the answer invalid JSON.
fn chat_response(message: MessagesResponse, answer: Option<&AnswerTool>) -> ChatResponse {
    let mut text = String::new();
    let mut answered = false;
    let mut tool_calls = Vec::new();
    for block in message.content {
        match block {
            ResponseBlock::Text { text: piece } if answer.is_none() => text.push_str(&piece),
            ResponseBlock::ToolUse { name, input, .. }
                if answer.is_some_and(|answer| answer.name == name) =>
            {
                if !answered {
                    answered = true;
                    text = input_text(&input);
                }
            }
            ResponseBlock::ToolUse { id, name, input } => tool_calls.push(ToolCall {
                id,
                name,
                arguments: input_text(&input),
            }),
            ResponseBlock::Text { .. } | ResponseBlock::Other => {}
        }
    }
    let finish_reason = finish_reason(message.stop_reason.as_deref(), !tool_calls.is_empty());
    let usage = message.usage.and_then(|usage| {
        let mut tokens = Tokens::default();
        tokens.update(&usage);
        tokens.usage()
    });
    ChatResponse {
        id: message.id,
        message: Message {
            role: Role::Assistant,
            content: if text.is_empty() {
                Vec::new()
            } else {
                vec![Part::Text { text }]
            },
            tool_calls,
            tool_call_id: None,
            name: None,
            refusal: None,
        },
        finish_reason,
        usage,
        system_fingerprint: None,
    }
}

/// A tool call's input as JSON text; a missing input is an empty object.
fn input_text(input: &Value) -> String {
    match input {
        Value::Null => "{}".to_owned(),
        other => other.to_string(),
    }
}

/// One event of Anthropic's stream, by its `type`. Kinds kai does not know are passed over, as
/// Anthropic asks of clients so that it can add new ones.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum StreamEvent {
    /// The answer begins, with the prompt's token counts.
    MessageStart {
        /// The answer so far, without content.
        message: StartedMessage,
    },
    /// A block begins: text, or a tool call with its id and name.
    ContentBlockStart {
        /// The block's place among the answer's blocks.
        index: u32,
        /// The block, content empty.
        content_block: ResponseBlock,
    },
    /// More of a block.
    ContentBlockDelta {
        /// Which block.
        index: u32,
        /// What it adds.
        delta: Delta,
    },
    /// A block is complete.
    ContentBlockStop {
        /// Which block.
        index: u32,
    },
    /// The stop reason and the output's token count.
    MessageDelta {
        /// The stop reason.
        delta: MessageDeltaBody,
        /// Token counts so far.
        #[serde(default)]
        usage: Option<WireUsage>,
    },
    /// The answer is complete.
    MessageStop,
    /// Keeps the connection alive.
    Ping,
    /// The answer failed midway (overloaded, say).
    Error {
        /// What went wrong.
        error: WireError,
    },
    /// Anything else.
    #[serde(other)]
    Unknown,
}

/// The message of `message_start`, of which kai reads the token counts.
#[derive(Debug, Deserialize)]
struct StartedMessage {
    /// The prompt's token counts.
    #[serde(default)]
    usage: Option<WireUsage>,
}

/// More of a content block.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Delta {
    /// More text.
    #[serde(rename = "text_delta")]
    Text {
        /// The text.
        text: String,
    },
    /// More of a tool call's input.
    #[serde(rename = "input_json_delta")]
    InputJson {
        /// JSON text, which parses only once whole.
        partial_json: String,
    },
    /// Deltas kai does not read (thinking, signatures, citations).
    #[serde(other)]
    Other,
}

/// The body of `message_delta`.
#[derive(Debug, Deserialize)]
struct MessageDeltaBody {
    /// Why the answer stopped.
    #[serde(default)]
    stop_reason: Option<String>,
}

/// An error, in an error answer or an `error` event.
#[derive(Debug, Deserialize)]
struct WireError {
    /// Anthropic's error type, such as `overloaded_error`.
    #[serde(rename = "type")]
    kind: String,
    /// What happened.
    #[serde(default)]
    message: String,
}

/// An `error` event, classified by Anthropic's error type. Its types name the statuses it would
/// have answered with; an invalid request is classified by its words, like a 400.
fn stream_error(error: &WireError) -> ProviderError {
    let kind = match error.kind.as_str() {
        "overloaded_error" => ErrorKind::Overloaded,
        "rate_limit_error" => ErrorKind::RateLimited,
        "timeout_error" => ErrorKind::Timeout,
        "authentication_error" => ErrorKind::Authentication,
        "permission_error" | "billing_error" => ErrorKind::PermissionDenied,
        "not_found_error" => ErrorKind::NotFound,
        "request_too_large" => ErrorKind::ContextLengthExceeded,
        "invalid_request_error" => ProviderError::from_status(400, &error.message, None).kind,
        _ => ErrorKind::Server,
    };
    ProviderError::new(
        kind,
        format!(
            "Anthropic reported an error mid-answer ({}): {}",
            error.kind, error.message
        ),
    )
}

/// What an open content block of the stream becomes.
#[derive(Debug)]
enum OpenBlock {
    /// Text events.
    Text,
    /// Fragments of tool call number `index`.
    Tool {
        /// Which call of the answer.
        index: u32,
        /// The input `content_block_start` gave, sent if no fragment follows.
        initial: Value,
        /// Whether a fragment of its input was sent.
        sent: bool,
    },
    /// The answer tool's call: its input is the answer's text.
    Answer {
        /// The input `content_block_start` gave, sent if no fragment follows.
        initial: Value,
        /// Whether a fragment of its input was sent.
        sent: bool,
    },
    /// Nothing: blocks kai does not read, and text beside a structured answer.
    Skipped,
}

/// Reads Anthropic's named events into [`ChatEvent`]s until `message_stop`.
#[derive(Debug)]
pub(crate) struct StreamEvents {
    /// The answer tool, where the request wants a JSON Schema answer.
    answer: Option<AnswerTool>,
    /// Open blocks by Anthropic's block index.
    blocks: HashMap<u32, OpenBlock>,
    /// Calls to the request's tools so far: the next call's index.
    tool_calls: u32,
    /// Whether the answer tool's call began (only the first is read).
    answered: bool,
    /// Whether the finish reason was sent.
    finished: bool,
    /// The token counts so far.
    tokens: Tokens,
}

impl StreamEvents {
    /// A decoder for an answer that may come as a call to `answer`.
    fn new(answer: Option<AnswerTool>) -> StreamEvents {
        StreamEvents {
            answer,
            blocks: HashMap::new(),
            tool_calls: 0,
            answered: false,
            finished: false,
            tokens: Tokens::default(),
        }
    }

    /// A block begins.
    fn start(&mut self, index: u32, block: ResponseBlock, out: &mut Vec<ChatEvent>) {
        let open = match block {
            ResponseBlock::Text { .. } if self.answer.is_some() => OpenBlock::Skipped,
            ResponseBlock::Text { text } => {
                if !text.is_empty() {
                    out.push(ChatEvent::Text(text));
                }
                OpenBlock::Text
            }
            ResponseBlock::ToolUse { name, input, .. }
                if self
                    .answer
                    .as_ref()
                    .is_some_and(|answer| answer.name == name) =>
            {
                if self.answered {
                    OpenBlock::Skipped
                } else {
                    self.answered = true;
                    OpenBlock::Answer {
                        initial: input,
                        sent: false,
                    }
                }
            }
            ResponseBlock::ToolUse { id, name, input } => {
                let call = self.tool_calls;
                self.tool_calls += 1;
                out.push(ChatEvent::ToolCall {
                    index: call,
                    id: Some(id),
                    name: Some(name),
                    arguments: String::new(),
                });
                OpenBlock::Tool {
                    index: call,
                    initial: input,
                    sent: false,
                }
            }
            ResponseBlock::Other => OpenBlock::Skipped,
        };
        self.blocks.insert(index, open);
    }

    /// More of a block.
    fn delta(
        &mut self,
        index: u32,
        delta: Delta,
        out: &mut Vec<ChatEvent>,
    ) -> Result<(), ProviderError> {
        let block = self.blocks.get_mut(&index).ok_or_else(|| {
            ProviderError::malformed(format!(
                "Anthropic's stream continued content block {index}, which never began"
            ))
        })?;
        match (block, delta) {
            (OpenBlock::Text, Delta::Text { text }) if !text.is_empty() => {
                out.push(ChatEvent::Text(text));
            }
            (OpenBlock::Tool { index, sent, .. }, Delta::InputJson { partial_json })
                if !partial_json.is_empty() =>
            {
                *sent = true;
                out.push(ChatEvent::ToolCall {
                    index: *index,
                    id: None,
                    name: None,
                    arguments: partial_json,
                });
            }
            (OpenBlock::Answer { sent, .. }, Delta::InputJson { partial_json })
                if !partial_json.is_empty() =>
            {
                *sent = true;
                out.push(ChatEvent::Text(partial_json));
            }
            _ => {}
        }
        Ok(())
    }

    /// A block is complete: a call whose input came whole in its start (an empty object, for a
    /// tool without parameters) gets that input now, so that its arguments are valid JSON.
    fn stop(&mut self, index: u32, out: &mut Vec<ChatEvent>) {
        match self.blocks.remove(&index) {
            Some(OpenBlock::Tool {
                index,
                initial,
                sent: false,
            }) => out.push(ChatEvent::ToolCall {
                index,
                id: None,
                name: None,
                arguments: input_text(&initial),
            }),
            Some(OpenBlock::Answer {
                initial,
                sent: false,
            }) => out.push(ChatEvent::Text(input_text(&initial))),
            _ => {}
        }
    }
}

impl Decode<SseEvent> for StreamEvents {
    fn item(&mut self, event: SseEvent, out: &mut Vec<ChatEvent>) -> Result<bool, ProviderError> {
        let data = event.data.trim();
        if data.is_empty() {
            return Ok(false);
        }
        let parsed = match parse_item::<StreamEvent>(data) {
            Ok(parsed) => parsed,
            // An error event kai cannot read is still an error, not a malformed answer.
            Err(_) if event.event == "error" => {
                return Err(ProviderError::new(
                    ErrorKind::Server,
                    format!(
                        "Anthropic reported an error mid-answer: {}",
                        error_message(data.as_bytes()).unwrap_or_else(|| data.to_owned())
                    ),
                ));
            }
            Err(err) => return Err(err),
        };
        match parsed {
            StreamEvent::MessageStart { message } => {
                if let Some(usage) = &message.usage {
                    self.tokens.update(usage);
                }
            }
            StreamEvent::ContentBlockStart {
                index,
                content_block,
            } => self.start(index, content_block, out),
            StreamEvent::ContentBlockDelta { index, delta } => self.delta(index, delta, out)?,
            StreamEvent::ContentBlockStop { index } => self.stop(index, out),
            StreamEvent::MessageDelta { delta, usage } => {
                if let Some(usage) = &usage {
                    self.tokens.update(usage);
                }
                if delta.stop_reason.is_some() && !self.finished {
                    self.finished = true;
                    out.push(ChatEvent::Finish(finish_reason(
                        delta.stop_reason.as_deref(),
                        self.tool_calls > 0,
                    )));
                }
            }
            StreamEvent::MessageStop => return Ok(true),
            StreamEvent::Error { error } => return Err(stream_error(&error)),
            StreamEvent::Ping | StreamEvent::Unknown => {}
        }
        Ok(false)
    }

    fn end(&mut self, out: &mut Vec<ChatEvent>, complete: bool) -> Result<(), ProviderError> {
        if !complete {
            return Err(ProviderError::new(
                ErrorKind::Interrupted,
                "Anthropic's stream ended before `message_stop`: the answer is incomplete, \
                 try again",
            ));
        }
        if !self.finished {
            self.finished = true;
            out.push(ChatEvent::Finish(finish_reason(None, self.tool_calls > 0)));
        }
        if let Some(usage) = self.tokens.usage() {
            out.push(ChatEvent::Usage(usage));
        }
        Ok(())
    }
}

/// A page of `GET v1/models`.
#[derive(Debug, Deserialize)]
struct ModelPage {
    /// The models of this page.
    data: Vec<ListedModel>,
    /// Whether another page follows.
    #[serde(default)]
    has_more: bool,
    /// The last model's id: where the next page begins.
    #[serde(default)]
    last_id: Option<String>,
}

/// A model of the listing, of which kai reads the id.
#[derive(Debug, Deserialize)]
struct ListedModel {
    /// The model's name in requests.
    id: String,
}
