//! Cohere's v2 API: `POST v2/chat` (a whole answer, or server-sent events with `stream: true`),
//! `POST v2/embed` and `GET v1/models` under the base URL (`https://api.cohere.com` by default),
//! with `Authorization: Bearer`.
//!
//! Cohere's format is close to OpenAI's. Where kai's model says more than Cohere can hear:
//! - `developer` messages go as `system`, and a message's `name` is dropped (Cohere has none);
//! - Cohere cannot force one named tool (see [`tools_and_choice`]), and its `strict_tools`
//!   holds for every tool, so one tool asking for strict arguments makes them all strict;
//! - a JSON schema's name, description and `strict` have no place on Cohere's wire, only the
//!   schema does; `parallel_tool_calls`, `user` and `extra` are not sent.
//!
//! And where Cohere says more than kai's model holds: `tool_plan`, the text a model writes
//! before it calls tools, is left out of answers (see [`Answer::into_response`]), as are
//! citations and reasoning models' `thinking` parts.

use kai_models::chat::{
    ChatEvent, ChatRequest, ChatResponse, EmbedRequest, EmbedResponse, FinishReason, InputType,
    Message, Part, ResponseFormat, Role, ToolCall, ToolChoice, ToolDefinition, Usage,
};
use kai_models::{ErrorKind, ProviderError};
use reqwest::header::AUTHORIZATION;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::adapter::{ApiFormat, ChatCall, Decode, parse_item};
use crate::http::{Http, key_headers};
use crate::spec::ProviderSpec;
use crate::sse::SseEvent;

/// The most texts Cohere embeds in one request. OpenAI takes thousands, so a client's batch
/// that OpenAI would take goes to Cohere as several requests.
const EMBED_BATCH: usize = 96;

/// The most pages of the model list read. Each asks for [`MODEL_PAGE_SIZE`] models, so this is
/// far beyond Cohere's catalogue; it only stops a server that keeps answering with a next page.
const MODEL_PAGES: usize = 5;

/// Models asked for per page: Cohere's largest page, so one request usually lists them all.
const MODEL_PAGE_SIZE: &str = "1000";

/// The Cohere adapter.
#[derive(Debug)]
pub(crate) struct Cohere {
    http: Http,
}

impl Cohere {
    /// The adapter for `spec`, its key sent as a bearer token.
    pub(crate) fn new(spec: &ProviderSpec) -> Result<Cohere, ProviderError> {
        let headers = key_headers(spec, AUTHORIZATION, "Bearer ")?;
        Ok(Cohere {
            http: Http::new(spec, headers)?,
        })
    }
}

impl ApiFormat for Cohere {
    type Context = ();
    type Answer = Answer;
    type Item = SseEvent;
    type Decoder = Events;

    fn http(&self) -> &Http {
        &self.http
    }

    fn chat_call(
        &self,
        request: &ChatRequest,
        stream: bool,
    ) -> Result<ChatCall<()>, ProviderError> {
        ChatCall::new(self.http.url("v2/chat"), &chat_body(request, stream)?, ())
    }

    fn answer(&self, answer: Answer, (): ()) -> Result<ChatResponse, ProviderError> {
        Ok(answer.into_response())
    }

    fn decoder(&self, (): ()) -> Events {
        Events::default()
    }

    async fn embed(&self, request: &EmbedRequest) -> Result<EmbedResponse, ProviderError> {
        let mut vectors = Vec::with_capacity(request.inputs.len());
        let mut usage: Option<Usage> = None;
        for texts in request.inputs.chunks(EMBED_BATCH) {
            let body = EmbedBody {
                model: &request.model,
                texts,
                input_type: input_type(request.input_type),
                embedding_types: ["float"],
                output_dimension: request.dimensions,
            };
            let response = self
                .http
                .post_json(self.http.url("v2/embed"), &body)
                .await?;
            let answer: Embeddings = self.http.json(response).await?;
            let batch = answer.embeddings.float.ok_or_else(|| {
                ProviderError::malformed(
                    "Cohere's embed answer has no `float` embeddings, though kai asked for them",
                )
            })?;
            if batch.len() != texts.len() {
                return Err(ProviderError::malformed(format!(
                    "Cohere sent {} embeddings for {} texts",
                    batch.len(),
                    texts.len()
                )));
            }
            vectors.extend(batch);
            if let Some(counted) = answer.meta.and_then(Counted::usage) {
                let total = usage.get_or_insert_with(Usage::default);
                total.input_tokens += counted.input_tokens;
            }
        }
        Ok(EmbedResponse {
            vectors,
            usage,
            truncated: Vec::new(),
        })
    }

    async fn list_models(&self) -> Result<Vec<String>, ProviderError> {
        let mut names = Vec::new();
        let mut page_token: Option<String> = None;
        for _ in 0..MODEL_PAGES {
            let mut url = self.http.url("v1/models");
            url.query_pairs_mut()
                .append_pair("page_size", MODEL_PAGE_SIZE);
            if let Some(token) = &page_token {
                url.query_pairs_mut().append_pair("page_token", token);
            }
            let response = self.http.get(url).await?;
            let page: Models = self.http.json(response).await?;
            names.extend(
                page.models
                    .into_iter()
                    .filter(Listed::serves_kai)
                    .map(|model| model.name),
            );
            match page.next_page_token.filter(|token| !token.is_empty()) {
                Some(next) => page_token = Some(next),
                None => break,
            }
        }
        Ok(names)
    }
}

/// The body of `POST v2/chat`.
#[derive(Debug, Serialize)]
struct ChatBody<'a> {
    model: &'a str,
    messages: Vec<WireMessage>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<WireTool<'a>>,
    /// Cohere's one switch for strict tool arguments, across all tools.
    #[serde(skip_serializing_if = "Option::is_none")]
    strict_tools: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<WireFormat<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(rename = "p", skip_serializing_if = "Option::is_none")]
    top_p: Option<f32>,
    #[serde(rename = "k", skip_serializing_if = "Option::is_none")]
    top_k: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop_sequences: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    frequency_penalty: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    presence_penalty: Option<f32>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
}

/// A message on Cohere's wire.
#[derive(Debug, Serialize)]
struct WireMessage {
    role: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<Content>,
    /// What an assistant wrote before calling tools.
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_plan: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<CallOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<String>,
}

/// A message's content: plain text where it is only text, parts where it has images.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<WirePart>),
}

/// A part of a message's content.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WirePart {
    Text { text: String },
    ImageUrl { image_url: WireImage },
}

/// An image: a URL, or a `data:` URL for inline bytes.
#[derive(Debug, Serialize)]
struct WireImage {
    url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
}

/// A tool call in an assistant message sent back to Cohere.
#[derive(Debug, Serialize)]
struct CallOut {
    id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    function: FunctionOut,
}

/// The function a [`CallOut`] called.
#[derive(Debug, Serialize)]
struct FunctionOut {
    name: String,
    /// JSON text, as the model wrote it.
    arguments: String,
}

/// A tool on Cohere's wire.
#[derive(Debug, Serialize)]
struct WireTool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: WireFunction<'a>,
}

/// A tool's function.
#[derive(Debug, Serialize)]
struct WireFunction<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    parameters: &'a Value,
}

/// Cohere's `response_format`.
#[derive(Debug, Serialize)]
struct WireFormat<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    json_schema: Option<&'a Value>,
}

/// The body Cohere receives for `request`, or why it cannot be sent.
fn chat_body(request: &ChatRequest, stream: bool) -> Result<ChatBody<'_>, ProviderError> {
    let (tools, tool_choice) = tools_and_choice(request)?;
    let sampling = &request.sampling;
    Ok(ChatBody {
        model: &request.model,
        messages: request.messages.iter().map(message_to_wire).collect(),
        strict_tools: tools
            .iter()
            .any(|tool| tool.strict == Some(true))
            .then_some(true),
        tools: tools
            .into_iter()
            .map(|tool| WireTool {
                kind: "function",
                function: WireFunction {
                    name: &tool.name,
                    description: tool.description.as_deref(),
                    parameters: &tool.parameters,
                },
            })
            .collect(),
        tool_choice,
        response_format: request.response_format.as_ref().map(|format| match format {
            ResponseFormat::Text => WireFormat {
                kind: "text",
                json_schema: None,
            },
            ResponseFormat::JsonObject => WireFormat {
                kind: "json_object",
                json_schema: None,
            },
            ResponseFormat::JsonSchema { schema, .. } => WireFormat {
                kind: "json_object",
                json_schema: Some(schema),
            },
        }),
        temperature: sampling.temperature,
        top_p: sampling.top_p,
        top_k: sampling.top_k,
        max_tokens: sampling.max_tokens,
        stop_sequences: &sampling.stop,
        seed: sampling.seed,
        frequency_penalty: sampling.frequency_penalty,
        presence_penalty: sampling.presence_penalty,
        stream,
    })
}

/// The tools Cohere receives and its `tool_choice`: `REQUIRED` for [`ToolChoice::Required`],
/// `NONE` for [`ToolChoice::None`], nothing (Cohere's default, the model decides) for
/// [`ToolChoice::Auto`].
///
/// Cohere cannot force one named tool. For [`ToolChoice::Tool`] it receives `REQUIRED` with
/// that tool alone in `tools`: the model must call a tool, and that is the only one it has.
fn tools_and_choice(
    request: &ChatRequest,
) -> Result<(Vec<&ToolDefinition>, Option<&'static str>), ProviderError> {
    let all = || request.tools.iter().collect::<Vec<_>>();
    Ok(match &request.tool_choice {
        Some(ToolChoice::Tool(name)) => {
            let chosen: Vec<_> = request
                .tools
                .iter()
                .filter(|tool| tool.name == *name)
                .collect();
            if chosen.is_empty() {
                return Err(ProviderError::new(
                    ErrorKind::BadRequest,
                    format!(
                        "tool_choice names the tool `{name}`, which is not among the request's \
                         tools: add its definition to `tools` or choose another tool"
                    ),
                ));
            }
            (chosen, Some("REQUIRED"))
        }
        Some(ToolChoice::Required) => (all(), Some("REQUIRED")),
        Some(ToolChoice::None) => (all(), Some("NONE")),
        Some(ToolChoice::Auto) | None => (all(), None),
    })
}

/// A message on Cohere's wire.
fn message_to_wire(message: &Message) -> WireMessage {
    let mut wire = WireMessage {
        role: match message.role {
            Role::System | Role::Developer => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        },
        content: None,
        tool_plan: None,
        tool_calls: Vec::new(),
        tool_call_id: message.tool_call_id.clone(),
    };
    if message.role != Role::Assistant {
        wire.content = Some(content(message));
        return wire;
    }
    // Cohere has no refusals: one replayed from another provider goes as the assistant's text,
    // so the model still sees what it said.
    let text = match &message.refusal {
        Some(refusal) if message.content.is_empty() => refusal.clone(),
        _ => message.joined_text(),
    };
    if message.tool_calls.is_empty() {
        wire.content = Some(if message.has_images() {
            content(message)
        } else {
            Content::Text(text)
        });
    } else {
        // Cohere's own assistant turns that call tools carry their preamble as `tool_plan`,
        // not as content: what another model wrote before its calls goes there too.
        wire.tool_plan = (!text.is_empty()).then_some(text);
        wire.tool_calls = message
            .tool_calls
            .iter()
            .map(|call| CallOut {
                id: call.id.clone(),
                kind: "function",
                function: FunctionOut {
                    name: call.name.clone(),
                    arguments: call.arguments.clone(),
                },
            })
            .collect();
    }
    wire
}

/// A message's content: its text, or its parts where it has images.
fn content(message: &Message) -> Content {
    if !message.has_images() {
        return Content::Text(message.joined_text());
    }
    Content::Parts(
        message
            .content
            .iter()
            .map(|part| match part {
                Part::Text { text } => WirePart::Text { text: text.clone() },
                Part::Image { source, detail } => WirePart::ImageUrl {
                    image_url: WireImage {
                        url: source.to_url(),
                        detail: detail.clone(),
                    },
                },
            })
            .collect(),
    )
}

/// Reads Cohere's finish reason. Cohere writes them in capitals; its SDKs have used lower
/// case, so case does not matter.
fn finish_reason(reason: &str) -> FinishReason {
    match reason.to_ascii_uppercase().as_str() {
        "COMPLETE" | "STOP_SEQUENCE" => FinishReason::Stop,
        "MAX_TOKENS" => FinishReason::Length,
        "TOOL_CALL" => FinishReason::ToolCalls,
        "ERROR_TOXIC" => FinishReason::ContentFilter,
        _ => FinishReason::Other(reason.to_owned()),
    }
}

/// The finish reason of an answer that named none.
fn default_finish(called_tools: bool) -> FinishReason {
    if called_tools {
        FinishReason::ToolCalls
    } else {
        FinishReason::Stop
    }
}

/// A whole answer from `POST v2/chat`.
#[derive(Debug, Deserialize)]
pub(crate) struct Answer {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    finish_reason: Option<String>,
    message: AnswerMessage,
    #[serde(default)]
    usage: Option<Counted>,
}

/// The assistant's message in an [`Answer`].
#[derive(Debug, Deserialize)]
struct AnswerMessage {
    #[serde(default)]
    content: Option<Vec<AnswerPart>>,
    #[serde(default)]
    tool_calls: Option<Vec<CallIn>>,
}

/// A part of an answer's content: `text`, or a kind kai does not keep (`thinking`).
#[derive(Debug, Deserialize)]
struct AnswerPart {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
}

/// A tool call as Cohere writes it: whole in an answer, in pieces in a stream.
#[derive(Debug, Default, Deserialize)]
struct CallIn {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<FunctionIn>,
}

/// The function a [`CallIn`] called, or a piece of it.
#[derive(Debug, Default, Deserialize)]
struct FunctionIn {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

impl Answer {
    /// The answer in kai's model.
    ///
    /// `tool_plan` is left out: it is the model reasoning about which tools to call, written
    /// for whoever runs the tools, not the answer. Mixed into the text it would reach the user
    /// as if it were the reply, and a client that stores the turn would send it back as
    /// content, where Cohere expects it as the plan.
    fn into_response(self) -> ChatResponse {
        let content: Vec<Part> = self
            .message
            .content
            .unwrap_or_default()
            .into_iter()
            .filter(|part| part.kind == "text")
            .filter_map(|part| part.text)
            .filter(|text| !text.is_empty())
            .map(|text| Part::Text { text })
            .collect();
        let tool_calls: Vec<ToolCall> = self
            .message
            .tool_calls
            .unwrap_or_default()
            .into_iter()
            .map(|call| {
                let function = call.function.unwrap_or_default();
                ToolCall {
                    id: call.id.unwrap_or_default(),
                    name: function.name.unwrap_or_default(),
                    arguments: function.arguments.unwrap_or_default(),
                }
            })
            .collect();
        let finish_reason = self.finish_reason.map_or_else(
            || default_finish(!tool_calls.is_empty()),
            |reason| finish_reason(&reason),
        );
        ChatResponse {
            id: self.id,
            message: Message {
                role: Role::Assistant,
                content,
                tool_calls,
                tool_call_id: None,
                name: None,
                refusal: None,
            },
            finish_reason,
            usage: self.usage.and_then(Counted::usage),
            system_fingerprint: None,
        }
    }
}

/// Cohere's token counts: a chat answer's `usage`, an embed answer's `meta`.
#[derive(Debug, Default, Deserialize)]
struct Counted {
    /// What Cohere charges for.
    #[serde(default)]
    billed_units: Option<Tokens>,
    /// What the model read and wrote, Cohere's own prompt template included.
    #[serde(default)]
    tokens: Option<Tokens>,
}

/// Input and output tokens. Cohere's API declares them as numbers, not integers, so `21.0`
/// reads as well as `21`.
#[derive(Debug, Default, Deserialize)]
struct Tokens {
    #[serde(default)]
    input_tokens: Option<f64>,
    #[serde(default)]
    output_tokens: Option<f64>,
}

impl Counted {
    /// The usage, from `tokens` where Cohere gave them (what the model really processed, which
    /// rate limits are about), else from `billed_units`; `None` when it counted neither.
    fn usage(self) -> Option<Usage> {
        let tokens = self.tokens.unwrap_or_default();
        let billed = self.billed_units.unwrap_or_default();
        let input = tokens.input_tokens.or(billed.input_tokens);
        let output = tokens.output_tokens.or(billed.output_tokens);
        if input.is_none() && output.is_none() {
            return None;
        }
        // `as` saturates: a negative or absurd count cannot wrap around.
        let count = |value: Option<f64>| value.map_or(0, |v| v.round() as u64);
        Some(Usage {
            input_tokens: count(input),
            output_tokens: count(output),
        })
    }
}

/// One event of Cohere's stream, by its `type`.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
enum StreamEvent {
    /// A content block opens, sometimes with its first text.
    ContentStart {
        #[serde(default)]
        delta: Option<Delta>,
    },
    /// More of a content block.
    ContentDelta {
        #[serde(default)]
        delta: Option<Delta>,
    },
    /// A tool call begins: its id, its name, perhaps the start of its arguments.
    ToolCallStart {
        index: u32,
        #[serde(default)]
        delta: Option<Delta>,
    },
    /// More of a tool call's arguments.
    ToolCallDelta {
        index: u32,
        #[serde(default)]
        delta: Option<Delta>,
    },
    /// The answer is over: why, and the tokens used.
    MessageEnd {
        #[serde(default)]
        delta: Option<EndDelta>,
    },
    /// What kai does not use: `message-start`, `content-end`, `tool-plan-delta` (left out as
    /// in whole answers, see [`Answer::into_response`]), `tool-call-end`, citations, and any
    /// event Cohere adds later.
    #[serde(other)]
    Other,
}

/// The `delta` of a content or tool-call event.
#[derive(Debug, Default, Deserialize)]
struct Delta {
    #[serde(default)]
    message: Option<DeltaMessage>,
}

/// What a [`Delta`] adds to the message.
#[derive(Debug, Default, Deserialize)]
struct DeltaMessage {
    #[serde(default)]
    content: Option<DeltaContent>,
    #[serde(default)]
    tool_calls: Option<CallIn>,
}

/// A piece of content: `text`, or `thinking` for reasoning models, which kai does not keep.
#[derive(Debug, Default, Deserialize)]
struct DeltaContent {
    #[serde(default)]
    text: Option<String>,
}

impl Delta {
    /// The text it adds, if any.
    fn text(self) -> Option<String> {
        self.message?.content?.text.filter(|text| !text.is_empty())
    }

    /// The tool call (or piece of one) it carries.
    fn call(self) -> CallIn {
        self.message
            .and_then(|message| message.tool_calls)
            .unwrap_or_default()
    }
}

/// The `delta` of `message-end`.
#[derive(Debug, Default, Deserialize)]
struct EndDelta {
    #[serde(default)]
    finish_reason: Option<String>,
    #[serde(default)]
    usage: Option<Counted>,
    /// What went wrong, when generation failed part-way.
    #[serde(default)]
    error: Option<String>,
}

/// Reads Cohere's stream into events. The answer ends with `message-end`; a stream that stops
/// before it is [`ErrorKind::Interrupted`].
#[derive(Debug, Default)]
pub(crate) struct Events {
    /// Cohere's index of each tool call, in the order they began: a call's place here is its
    /// index in kai's events, which count from 0 in order of appearance whatever Cohere's
    /// indexes are.
    calls: Vec<u32>,
    /// Held back until the end, so it comes once and last.
    usage: Option<Usage>,
}

impl Events {
    /// kai's index for Cohere's tool call `index`, which must have begun.
    fn position(&self, index: u32) -> Result<u32, ProviderError> {
        let position = self
            .calls
            .iter()
            .position(|&seen| seen == index)
            .ok_or_else(|| {
                ProviderError::malformed(format!(
                    "Cohere's stream continued tool call {index} without starting it"
                ))
            })?;
        Ok(u32::try_from(position).unwrap_or(u32::MAX))
    }
}

impl Decode<SseEvent> for Events {
    fn item(&mut self, event: SseEvent, out: &mut Vec<ChatEvent>) -> Result<bool, ProviderError> {
        // The event's name repeats the `type` in its data; the data alone decides, so a stream
        // without names reads the same.
        let data = event.data.trim();
        if data.is_empty() {
            return Ok(false);
        }
        match parse_item::<StreamEvent>(data)? {
            StreamEvent::ContentStart { delta } | StreamEvent::ContentDelta { delta } => {
                if let Some(text) = delta.and_then(Delta::text) {
                    out.push(ChatEvent::Text(text));
                }
            }
            StreamEvent::ToolCallStart { index, delta } => {
                let position = u32::try_from(self.calls.len()).unwrap_or(u32::MAX);
                self.calls.push(index);
                let call = delta.map(Delta::call).unwrap_or_default();
                let function = call.function.unwrap_or_default();
                out.push(ChatEvent::ToolCall {
                    index: position,
                    id: call.id,
                    name: function.name,
                    arguments: function.arguments.unwrap_or_default(),
                });
            }
            StreamEvent::ToolCallDelta { index, delta } => {
                let position = self.position(index)?;
                let arguments = delta
                    .map(Delta::call)
                    .and_then(|call| call.function)
                    .and_then(|function| function.arguments)
                    .unwrap_or_default();
                if !arguments.is_empty() {
                    out.push(ChatEvent::ToolCall {
                        index: position,
                        id: None,
                        name: None,
                        arguments,
                    });
                }
            }
            StreamEvent::MessageEnd { delta } => {
                let delta = delta.unwrap_or_default();
                if let Some(error) = delta.error.filter(|error| !error.is_empty()) {
                    return Err(ProviderError::new(
                        ErrorKind::Server,
                        format!("Cohere stopped generating with an error: {error}"),
                    ));
                }
                self.usage = delta.usage.and_then(Counted::usage);
                out.push(ChatEvent::Finish(delta.finish_reason.map_or_else(
                    || default_finish(!self.calls.is_empty()),
                    |reason| finish_reason(&reason),
                )));
                return Ok(true);
            }
            StreamEvent::Other => {}
        }
        Ok(false)
    }

    fn end(&mut self, out: &mut Vec<ChatEvent>, complete: bool) -> Result<(), ProviderError> {
        if !complete {
            return Err(ProviderError::new(
                ErrorKind::Interrupted,
                "Cohere's stream ended before its message-end event: the answer is incomplete",
            ));
        }
        out.extend(self.usage.take().map(ChatEvent::Usage));
        Ok(())
    }
}

/// The body of `POST v2/embed`.
#[derive(Debug, Serialize)]
struct EmbedBody<'a> {
    model: &'a str,
    texts: &'a [String],
    input_type: &'static str,
    /// Only floats: kai's vectors are `f32`.
    embedding_types: [&'static str; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    output_dimension: Option<u32>,
}

/// Cohere's `input_type`. Its v3 and later embedding models refuse a request without one, and
/// most texts embedded are stored to be found later, so a request that does not say gets
/// `search_document`, as [`InputType::Document`] is kai's default too.
fn input_type(input_type: Option<InputType>) -> &'static str {
    match input_type.unwrap_or(InputType::Document) {
        InputType::Document => "search_document",
        InputType::Query => "search_query",
        InputType::Classification => "classification",
        InputType::Clustering => "clustering",
    }
}

/// The answer of `POST v2/embed`.
#[derive(Debug, Deserialize)]
struct Embeddings {
    embeddings: ByType,
    #[serde(default)]
    meta: Option<Counted>,
}

/// Embeddings by type; kai asks for floats only.
#[derive(Debug, Deserialize)]
struct ByType {
    #[serde(default)]
    float: Option<Vec<Vec<f32>>>,
}

/// A page of `GET v1/models`.
#[derive(Debug, Deserialize)]
struct Models {
    #[serde(default)]
    models: Vec<Listed>,
    #[serde(default)]
    next_page_token: Option<String>,
}

/// A listed model.
#[derive(Debug, Deserialize)]
struct Listed {
    name: String,
    #[serde(default)]
    endpoints: Option<Vec<String>>,
}

impl Listed {
    /// Whether kai can use it: it serves chat or embed, or Cohere did not say what it serves.
    /// Rerank and classify models are left out, since no request kai routes can reach them.
    fn serves_kai(&self) -> bool {
        self.endpoints.as_ref().is_none_or(|endpoints| {
            endpoints
                .iter()
                .any(|endpoint| endpoint == "chat" || endpoint == "embed")
        })
    }
}
