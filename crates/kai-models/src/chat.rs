//! The one model of a chat request, its answer and its stream that every adapter maps to and
//! from. It holds the union of what the providers can express (text and image parts, tools and
//! tool calls, structured output, sampling), so a request read from one wire format reaches
//! another without losing what the caller asked for.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions to the model.
    System,
    /// OpenAI's newer name for system instructions; other providers get it as `System`.
    Developer,
    /// The person.
    User,
    /// The model.
    Assistant,
    /// A tool's answer to a call.
    Tool,
}

impl Role {
    /// The role's name on the OpenAI wire.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::Developer => "developer",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }

    /// Whether the message instructs the model (`system` or `developer`).
    #[must_use]
    pub fn is_instruction(self) -> bool {
        matches!(self, Role::System | Role::Developer)
    }
}

/// A piece of a message's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Part {
    /// Text.
    Text {
        /// The text.
        text: String,
    },
    /// An image.
    Image {
        /// Where it is.
        source: ImageSource,
        /// OpenAI's `low`/`high`/`auto`, where given.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
}

/// An image, by reference or inline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ImageSource {
    /// An `http(s)` URL the provider fetches.
    Url {
        /// The URL.
        url: String,
    },
    /// Base64 data with its media type.
    Base64 {
        /// `image/png`, `image/jpeg`, …
        media_type: String,
        /// The bytes, base64.
        data: String,
    },
}

impl ImageSource {
    /// Reads an OpenAI `image_url`: a `data:` URL becomes [`ImageSource::Base64`].
    #[must_use]
    pub fn from_url(url: &str) -> ImageSource {
        if let Some(rest) = url.strip_prefix("data:")
            && let Some((meta, data)) = rest.split_once(',')
            && let Some(media_type) = meta.strip_suffix(";base64")
        {
            return ImageSource::Base64 {
                media_type: media_type.to_owned(),
                data: data.to_owned(),
            };
        }
        ImageSource::Url {
            url: url.to_owned(),
        }
    }

    /// The image as an OpenAI `image_url`: a URL, or a `data:` URL.
    #[must_use]
    pub fn to_url(&self) -> String {
        match self {
            ImageSource::Url { url } => url.clone(),
            ImageSource::Base64 { media_type, data } => format!("data:{media_type};base64,{data}"),
        }
    }
}

/// A call the model made to a tool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The call's id; the tool's answer names it.
    pub id: String,
    /// The tool.
    pub name: String,
    /// The arguments, as JSON text (as the model wrote it, which may not parse).
    pub arguments: String,
}

/// A message of the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Who wrote it.
    pub role: Role,
    /// Its content, in order.
    #[serde(default)]
    pub content: Vec<Part>,
    /// The tools an assistant message called.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// For a tool message: the call it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// A participant's name, where given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// An assistant's refusal, where it declined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
}

impl Message {
    /// A message of plain text.
    #[must_use]
    pub fn text(role: Role, text: impl Into<String>) -> Message {
        Message {
            role,
            content: vec![Part::Text { text: text.into() }],
            tool_calls: Vec::new(),
            tool_call_id: None,
            name: None,
            refusal: None,
        }
    }

    /// The text parts, joined: what a text-only consumer sees.
    #[must_use]
    pub fn joined_text(&self) -> String {
        let mut text = String::new();
        for part in &self.content {
            if let Part::Text { text: piece } = part {
                text.push_str(piece);
            }
        }
        text
    }

    /// Whether any part is an image.
    #[must_use]
    pub fn has_images(&self) -> bool {
        self.content
            .iter()
            .any(|part| matches!(part, Part::Image { .. }))
    }
}

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolDefinition {
    /// Its name.
    pub name: String,
    /// What it does, for the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Its arguments as a JSON Schema object.
    pub parameters: Value,
    /// Whether the arguments must match the schema exactly, where the provider can promise it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
}

/// Whether and which tool the model must call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolChoice {
    /// The model decides.
    Auto,
    /// No tool.
    None,
    /// Some tool.
    Required,
    /// This tool.
    Tool(String),
}

/// The shape of the answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResponseFormat {
    /// Free text.
    Text,
    /// Any JSON object.
    JsonObject,
    /// JSON that matches `schema`.
    JsonSchema {
        /// The schema's name.
        name: String,
        /// What it is for.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
        /// The JSON Schema.
        schema: Value,
        /// Whether the output must match exactly.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        strict: Option<bool>,
    },
}

/// How to sample. Parameters a provider has no equivalent for are not sent to it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sampling {
    /// Temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Nucleus sampling mass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    /// Sample from the `top_k` likeliest tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
    /// The most tokens to generate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Sequences that end generation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop: Vec<String>,
    /// A seed for repeatable sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    /// Presence penalty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f32>,
    /// Frequency penalty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f32>,
}

/// A chat request, as sent to one deployment.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    /// The upstream model name (the deployment's, not the name the client used).
    pub model: String,
    /// The conversation.
    pub messages: Vec<Message>,
    /// Tools the model may call.
    pub tools: Vec<ToolDefinition>,
    /// Whether and which tool it must call.
    pub tool_choice: Option<ToolChoice>,
    /// Whether it may call several tools at once.
    pub parallel_tool_calls: Option<bool>,
    /// The shape of the answer.
    pub response_format: Option<ResponseFormat>,
    /// How to sample.
    pub sampling: Sampling,
    /// An id for the end user.
    pub user: Option<String>,
    /// Fields kai does not model, passed as they are to OpenAI-family upstreams only.
    pub extra: Map<String, Value>,
}

impl ChatRequest {
    /// A request for `model` with these messages and nothing else set.
    #[must_use]
    pub fn new(model: impl Into<String>, messages: Vec<Message>) -> ChatRequest {
        ChatRequest {
            model: model.into(),
            messages,
            tools: Vec::new(),
            tool_choice: None,
            parallel_tool_calls: None,
            response_format: None,
            sampling: Sampling::default(),
            user: None,
            extra: Map::new(),
        }
    }

    /// A rough token count of the prompt (four characters a token), for rate limits decided
    /// before the provider has counted.
    #[must_use]
    pub fn estimated_prompt_tokens(&self) -> u64 {
        let chars: usize = self
            .messages
            .iter()
            .map(|message| {
                message.joined_text().len()
                    + message
                        .tool_calls
                        .iter()
                        .map(|call| call.name.len() + call.arguments.len())
                        .sum::<usize>()
            })
            .sum();
        let tool_chars: usize = self
            .tools
            .iter()
            .map(|tool| tool.name.len() + tool.parameters.to_string().len())
            .sum();
        ((chars + tool_chars) as u64).div_ceil(4)
    }
}

/// Why the model stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// It finished, or hit a stop sequence.
    Stop,
    /// It reached `max_tokens` or the context's end.
    Length,
    /// It called tools.
    ToolCalls,
    /// A filter cut it off.
    ContentFilter,
    /// A reason kai does not know, as the provider named it.
    Other(String),
}

impl FinishReason {
    /// The name on the OpenAI wire.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::ToolCalls => "tool_calls",
            FinishReason::ContentFilter => "content_filter",
            FinishReason::Other(other) => other,
        }
    }

    /// Reads OpenAI's names; anything else is kept as [`FinishReason::Other`].
    #[must_use]
    pub fn from_openai(reason: &str) -> FinishReason {
        match reason {
            "stop" => FinishReason::Stop,
            "length" => FinishReason::Length,
            "tool_calls" | "function_call" => FinishReason::ToolCalls,
            "content_filter" => FinishReason::ContentFilter,
            other => FinishReason::Other(other.to_owned()),
        }
    }
}

/// Tokens used by a request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens read.
    pub input_tokens: u64,
    /// Tokens written.
    pub output_tokens: u64,
}

impl Usage {
    /// Both together.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.input_tokens + self.output_tokens
    }
}

/// A whole answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatResponse {
    /// The provider's id for it, where it gave one.
    pub id: Option<String>,
    /// The assistant's message.
    pub message: Message,
    /// Why it stopped.
    pub finish_reason: FinishReason,
    /// Tokens used, where the provider counted them.
    pub usage: Option<Usage>,
    /// The provider's backend fingerprint, where it gave one.
    pub system_fingerprint: Option<String>,
}

/// One step of a streamed answer.
#[derive(Debug, Clone, PartialEq)]
pub enum ChatEvent {
    /// More text.
    Text(String),
    /// More of a refusal.
    Refusal(String),
    /// A fragment of tool call number `index`: the first carries its id and name, later ones
    /// more argument text.
    ToolCall {
        /// Which call of this answer.
        index: u32,
        /// Its id, in the first fragment.
        id: Option<String>,
        /// The tool, in the first fragment.
        name: Option<String>,
        /// More of the arguments' JSON text.
        arguments: String,
    },
    /// Why it stopped; sent once.
    Finish(FinishReason),
    /// Tokens used by the whole request; sent once, at the end, where the provider counts.
    Usage(Usage),
}

/// Builds a [`ChatResponse`] from a stream's events: what a non-streaming client gets from a
/// provider that only streams, and what the gateway stores of a streamed answer.
#[derive(Debug, Clone, Default)]
pub struct ResponseBuilder {
    text: String,
    refusal: String,
    calls: Vec<ToolCall>,
    finish_reason: Option<FinishReason>,
    usage: Option<Usage>,
}

impl ResponseBuilder {
    /// The answer these events make.
    #[must_use]
    pub fn collect<'a>(events: impl IntoIterator<Item = &'a ChatEvent>) -> ChatResponse {
        let mut builder = ResponseBuilder::default();
        for event in events {
            builder.push(event);
        }
        builder.finish()
    }

    /// Adds one event.
    pub fn push(&mut self, event: &ChatEvent) {
        match event {
            ChatEvent::Text(text) => self.text.push_str(text),
            ChatEvent::Refusal(text) => self.refusal.push_str(text),
            ChatEvent::ToolCall {
                index,
                id,
                name,
                arguments,
            } => {
                let index = *index as usize;
                while self.calls.len() <= index {
                    self.calls.push(ToolCall {
                        id: String::new(),
                        name: String::new(),
                        arguments: String::new(),
                    });
                }
                let call = &mut self.calls[index];
                if let Some(id) = id {
                    call.id.clone_from(id);
                }
                if let Some(name) = name {
                    call.name.push_str(name);
                }
                call.arguments.push_str(arguments);
            }
            ChatEvent::Finish(reason) => self.finish_reason = Some(reason.clone()),
            ChatEvent::Usage(usage) => self.usage = Some(*usage),
        }
    }

    /// The text so far.
    #[must_use]
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The answer.
    #[must_use]
    pub fn finish(self) -> ChatResponse {
        let content = if self.text.is_empty() {
            Vec::new()
        } else {
            vec![Part::Text { text: self.text }]
        };
        let finish_reason = self.finish_reason.unwrap_or(if self.calls.is_empty() {
            FinishReason::Stop
        } else {
            FinishReason::ToolCalls
        });
        ChatResponse {
            id: None,
            message: Message {
                role: Role::Assistant,
                content,
                tool_calls: self.calls,
                tool_call_id: None,
                name: None,
                refusal: (!self.refusal.is_empty()).then_some(self.refusal),
            },
            finish_reason,
            usage: self.usage,
            system_fingerprint: None,
        }
    }
}

/// What kind of text is embedded, for providers that embed queries and documents differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputType {
    /// Text to be found (the default).
    Document,
    /// Text to search with.
    Query,
    /// Text to classify.
    Classification,
    /// Text to cluster.
    Clustering,
}

/// An embedding request, as sent to one deployment.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbedRequest {
    /// The upstream model name.
    pub model: String,
    /// The texts, in order.
    pub inputs: Vec<String>,
    /// Fewer dimensions, where the model can shorten its vectors.
    pub dimensions: Option<u32>,
    /// What the texts are for, where the provider distinguishes.
    pub input_type: Option<InputType>,
    /// An id for the end user.
    pub user: Option<String>,
    /// Fields kai does not model, passed to OpenAI-family upstreams only.
    pub extra: Map<String, Value>,
}

impl EmbedRequest {
    /// A request for `model` to embed `inputs`, nothing else set.
    #[must_use]
    pub fn new(model: impl Into<String>, inputs: Vec<String>) -> EmbedRequest {
        EmbedRequest {
            model: model.into(),
            inputs,
            dimensions: None,
            input_type: None,
            user: None,
            extra: Map::new(),
        }
    }
}

/// Embeddings, one per input in order.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbedResponse {
    /// The vectors.
    pub vectors: Vec<Vec<f32>>,
    /// Tokens read, where the provider counted them.
    pub usage: Option<Usage>,
    /// The positions of inputs that were cut to the model's input limit before embedding
    /// (the embedded runtime says so; providers that truncate silently leave it empty).
    pub truncated: Vec<usize>,
}
