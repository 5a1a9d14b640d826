//! OpenAI's wire format ([`kai_proto::openai`]) to and from the internal model.
//!
//! Two users: the public `/v1` API reads client requests with [`chat_request`] and writes
//! answers with [`completion`] and [`ChunkEncoder`]; the OpenAI and OpenAI-compatible adapters
//! write upstream requests with [`upstream_chat_request`] and read answers with
//! [`chat_response`] and [`ChunkDecoder`]. A client request is checked here, once, with an
//! error that names the field.

use base64::Engine;
use kai_proto::openai as wire;
use serde_json::{Map, Value};

use crate::chat::{
    ChatEvent, ChatRequest, ChatResponse, EmbedRequest, EmbedResponse, FinishReason, ImageSource,
    InputType, Message, Part, ResponseFormat, Role, Sampling, ToolCall, ToolChoice, ToolDefinition,
    Usage,
};
use crate::error::ProviderError;

/// A client request kai cannot accept, with the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidRequest {
    /// The field, as a path (`messages[2].content`).
    pub param: Option<String>,
    /// What is wrong and what would be accepted.
    pub message: String,
}

impl InvalidRequest {
    fn new(param: impl Into<String>, message: impl Into<String>) -> InvalidRequest {
        let param = param.into();
        let message = format!("{param}: {}", message.into());
        InvalidRequest {
            param: Some(param),
            message,
        }
    }
}

/// How the client wants the answer delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Delivery {
    /// As server-sent events.
    pub stream: bool,
    /// With a last chunk carrying token usage.
    pub include_usage: bool,
}

/// Reads and checks a client's chat request. `model` in the result is the client's name for
/// the model; the router replaces it with each deployment's.
pub fn chat_request(
    request: wire::ChatCompletionRequest,
) -> Result<(ChatRequest, Delivery), InvalidRequest> {
    if request.model.trim().is_empty() {
        return Err(InvalidRequest::new(
            "model",
            "is required; GET /v1/models lists them",
        ));
    }
    if request.messages.is_empty() {
        return Err(InvalidRequest::new(
            "messages",
            "must hold at least one message",
        ));
    }
    if let Some(n) = request.n
        && n != 1
    {
        return Err(InvalidRequest::new(
            "n",
            "kai generates one answer per request; leave n out or set it to 1",
        ));
    }
    let messages = request
        .messages
        .into_iter()
        .enumerate()
        .map(|(i, message)| message_from_wire(message, &format!("messages[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    let tools = request
        .tools
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, tool)| tool_from_wire(tool, i))
        .collect::<Result<Vec<_>, _>>()?;
    let tool_choice = request
        .tool_choice
        .map(|choice| tool_choice_from_wire(choice, &tools))
        .transpose()?;
    let response_format = request
        .response_format
        .map(response_format_from_wire)
        .transpose()?;

    let mut extra = request.extra;
    let top_k = match extra.remove("top_k") {
        None | Some(Value::Null) => None,
        Some(value) => Some(
            value
                .as_u64()
                .and_then(|k| u32::try_from(k).ok())
                .filter(|k| *k > 0)
                .ok_or_else(|| {
                    InvalidRequest::new("top_k", "must be a whole number of at least 1")
                })?,
        ),
    };
    let stop = request.stop.map(wire::Stop::into_vec).unwrap_or_default();
    if stop.len() > 4 {
        return Err(InvalidRequest::new("stop", "takes at most 4 sequences"));
    }
    if stop.iter().any(String::is_empty) {
        return Err(InvalidRequest::new("stop", "sequences must not be empty"));
    }
    let sampling = Sampling {
        temperature: check_range("temperature", request.temperature, 0.0, 2.0)?,
        top_p: check_range("top_p", request.top_p, 0.0, 1.0)?,
        top_k,
        max_tokens: match request.max_completion_tokens.or(request.max_tokens) {
            Some(0) => {
                return Err(InvalidRequest::new(
                    "max_completion_tokens",
                    "must be at least 1",
                ));
            }
            other => other,
        },
        stop,
        seed: request.seed,
        presence_penalty: check_range("presence_penalty", request.presence_penalty, -2.0, 2.0)?,
        frequency_penalty: check_range("frequency_penalty", request.frequency_penalty, -2.0, 2.0)?,
    };
    let stream = request.stream.unwrap_or(false);
    let delivery = Delivery {
        stream,
        include_usage: stream
            && request
                .stream_options
                .as_ref()
                .is_some_and(|o| o.include_usage),
    };
    if request.stream_options.is_some() && !stream {
        return Err(InvalidRequest::new(
            "stream_options",
            "is only allowed with stream: true",
        ));
    }
    Ok((
        ChatRequest {
            model: request.model,
            messages,
            tools,
            tool_choice,
            parallel_tool_calls: request.parallel_tool_calls,
            response_format,
            sampling,
            user: request.user,
            extra,
        },
        delivery,
    ))
}

fn check_range(
    name: &str,
    value: Option<f32>,
    min: f32,
    max: f32,
) -> Result<Option<f32>, InvalidRequest> {
    match value {
        Some(v) if !(min..=max).contains(&v) => Err(InvalidRequest::new(
            name,
            format!("must be between {min} and {max}"),
        )),
        other => Ok(other),
    }
}

fn message_from_wire(message: wire::ChatMessage, at: &str) -> Result<Message, InvalidRequest> {
    let role = match message.role.as_str() {
        "system" => Role::System,
        "developer" => Role::Developer,
        "user" => Role::User,
        "assistant" => Role::Assistant,
        "tool" => Role::Tool,
        other => {
            return Err(InvalidRequest::new(
                format!("{at}.role"),
                format!("`{other}` is not a role; use system, developer, user, assistant or tool"),
            ));
        }
    };
    let mut refusal = message.refusal;
    let content = match message.content {
        None => Vec::new(),
        Some(wire::MessageContent::Text(text)) => vec![Part::Text { text }],
        Some(wire::MessageContent::Parts(parts)) => {
            let mut content = Vec::with_capacity(parts.len());
            for (j, part) in parts.into_iter().enumerate() {
                match part {
                    wire::ContentPart::Text { text } => content.push(Part::Text { text }),
                    wire::ContentPart::ImageUrl { image_url } => {
                        if role != Role::User {
                            return Err(InvalidRequest::new(
                                format!("{at}.content[{j}]"),
                                "images are only allowed in user messages",
                            ));
                        }
                        let url = image_url.url.trim();
                        if !(url.starts_with("https://")
                            || url.starts_with("http://")
                            || url.starts_with("data:"))
                        {
                            return Err(InvalidRequest::new(
                                format!("{at}.content[{j}].image_url.url"),
                                "must be an http(s) URL or a data: URL",
                            ));
                        }
                        let source = ImageSource::from_url(url);
                        if url.starts_with("data:") && !matches!(source, ImageSource::Base64 { .. })
                        {
                            return Err(InvalidRequest::new(
                                format!("{at}.content[{j}].image_url.url"),
                                "a data: URL must be base64, as in data:image/png;base64,…",
                            ));
                        }
                        content.push(Part::Image {
                            source,
                            detail: image_url.detail,
                        });
                    }
                    wire::ContentPart::InputAudio { .. } => {
                        return Err(InvalidRequest::new(
                            format!("{at}.content[{j}]"),
                            "audio input is not supported; send text or images",
                        ));
                    }
                    wire::ContentPart::File { .. } => {
                        return Err(InvalidRequest::new(
                            format!("{at}.content[{j}]"),
                            "file parts are not supported; send the text itself, or images",
                        ));
                    }
                    wire::ContentPart::Unknown => {
                        return Err(InvalidRequest::new(
                            format!("{at}.content[{j}].type"),
                            "is not a supported part type; use text or image_url",
                        ));
                    }
                    wire::ContentPart::Refusal { refusal: text } => {
                        if role != Role::Assistant {
                            return Err(InvalidRequest::new(
                                format!("{at}.content[{j}]"),
                                "refusals are only allowed in assistant messages",
                            ));
                        }
                        refusal.get_or_insert_with(String::new).push_str(&text);
                    }
                }
            }
            content
        }
    };
    let tool_calls = message
        .tool_calls
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(j, call)| {
            if role != Role::Assistant {
                return Err(InvalidRequest::new(
                    format!("{at}.tool_calls"),
                    "only assistant messages call tools",
                ));
            }
            if call.kind != "function" {
                return Err(InvalidRequest::new(
                    format!("{at}.tool_calls[{j}].type"),
                    "must be `function`",
                ));
            }
            Ok(ToolCall {
                id: call.id,
                name: call.function.name,
                arguments: call.function.arguments,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if role == Role::Tool && message.tool_call_id.as_deref().is_none_or(str::is_empty) {
        return Err(InvalidRequest::new(
            format!("{at}.tool_call_id"),
            "is required in a tool message: the id of the call it answers",
        ));
    }
    if content.is_empty() && tool_calls.is_empty() && refusal.is_none() {
        return Err(InvalidRequest::new(
            format!("{at}.content"),
            "is required (it may be null only in an assistant message that calls tools)",
        ));
    }
    Ok(Message {
        role,
        content,
        tool_calls,
        tool_call_id: message.tool_call_id.filter(|_| role == Role::Tool),
        name: message.name,
        refusal,
    })
}

fn tool_from_wire(tool: wire::Tool, i: usize) -> Result<ToolDefinition, InvalidRequest> {
    let function = match (tool.kind.as_str(), tool.function) {
        ("function", Some(function)) => function,
        ("function", None) => {
            return Err(InvalidRequest::new(
                format!("tools[{i}].function"),
                "is required",
            ));
        }
        (other, _) => {
            return Err(InvalidRequest::new(
                format!("tools[{i}].type"),
                format!("must be `function`; `{other}` tools are not supported"),
            ));
        }
    };
    let name = function.name;
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(InvalidRequest::new(
            format!("tools[{i}].function.name"),
            "must be 1 to 64 letters, digits, underscores or dashes",
        ));
    }
    let parameters = match function.parameters {
        None | Some(Value::Null) => serde_json::json!({"type": "object", "properties": {}}),
        Some(schema @ Value::Object(_)) => schema,
        Some(_) => {
            return Err(InvalidRequest::new(
                format!("tools[{i}].function.parameters"),
                "must be a JSON Schema object",
            ));
        }
    };
    Ok(ToolDefinition {
        name,
        description: function.description,
        parameters,
        strict: function.strict,
    })
}

fn tool_choice_from_wire(
    choice: wire::ToolChoice,
    tools: &[ToolDefinition],
) -> Result<ToolChoice, InvalidRequest> {
    let choice = match choice {
        wire::ToolChoice::Mode(mode) => match mode.as_str() {
            "auto" => ToolChoice::Auto,
            "none" => ToolChoice::None,
            "required" => ToolChoice::Required,
            other => {
                return Err(InvalidRequest::new(
                    "tool_choice",
                    format!("`{other}` is not one of none, auto, required, or a named function"),
                ));
            }
        },
        wire::ToolChoice::Named(named) => ToolChoice::Tool(named.function.name),
    };
    match &choice {
        ToolChoice::Tool(name) if !tools.iter().any(|tool| &tool.name == name) => {
            Err(InvalidRequest::new(
                "tool_choice",
                format!("names `{name}`, which is not in tools"),
            ))
        }
        ToolChoice::Required | ToolChoice::Tool(_) if tools.is_empty() => Err(InvalidRequest::new(
            "tool_choice",
            "asks for a tool call but no tools are given",
        )),
        _ => Ok(choice),
    }
}

fn response_format_from_wire(
    format: wire::ResponseFormat,
) -> Result<ResponseFormat, InvalidRequest> {
    Ok(match format {
        wire::ResponseFormat::Text => ResponseFormat::Text,
        wire::ResponseFormat::JsonObject => ResponseFormat::JsonObject,
        wire::ResponseFormat::JsonSchema { json_schema } => {
            let schema = match json_schema.schema {
                Some(schema @ Value::Object(_)) => schema,
                _ => {
                    return Err(InvalidRequest::new(
                        "response_format.json_schema.schema",
                        "must be a JSON Schema object",
                    ));
                }
            };
            if json_schema.name.is_empty() {
                return Err(InvalidRequest::new(
                    "response_format.json_schema.name",
                    "is required",
                ));
            }
            ResponseFormat::JsonSchema {
                name: json_schema.name,
                description: json_schema.description,
                schema,
                strict: json_schema.strict,
            }
        }
    })
}

/// Which dialect of OpenAI's format an upstream speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// OpenAI itself: `developer` messages, `max_completion_tokens`.
    OpenAi,
    /// vLLM, TGI, LM Studio, llama.cpp: `system` only, `max_tokens`, and `top_k` understood.
    Compatible,
}

/// The request an OpenAI-family upstream receives.
#[must_use]
pub fn upstream_chat_request(
    request: &ChatRequest,
    dialect: Dialect,
    stream: bool,
) -> wire::ChatCompletionRequest {
    let sampling = &request.sampling;
    let mut extra: Map<String, Value> = request.extra.clone();
    let (max_tokens, max_completion_tokens) = match dialect {
        Dialect::OpenAi => (None, sampling.max_tokens),
        Dialect::Compatible => {
            if let Some(top_k) = sampling.top_k {
                extra.insert("top_k".into(), top_k.into());
            }
            (sampling.max_tokens, None)
        }
    };
    wire::ChatCompletionRequest {
        model: request.model.clone(),
        messages: request
            .messages
            .iter()
            .map(|message| message_to_wire(message, dialect))
            .collect(),
        tools: (!request.tools.is_empty()).then(|| {
            request
                .tools
                .iter()
                .map(|tool| wire::Tool {
                    kind: "function".into(),
                    function: Some(wire::FunctionDefinition {
                        name: tool.name.clone(),
                        description: tool.description.clone(),
                        parameters: Some(tool.parameters.clone()),
                        strict: tool.strict,
                    }),
                })
                .collect()
        }),
        tool_choice: request.tool_choice.as_ref().map(|choice| match choice {
            ToolChoice::Auto => wire::ToolChoice::Mode("auto".into()),
            ToolChoice::None => wire::ToolChoice::Mode("none".into()),
            ToolChoice::Required => wire::ToolChoice::Mode("required".into()),
            ToolChoice::Tool(name) => wire::ToolChoice::Named(wire::NamedToolChoice {
                kind: "function".into(),
                function: wire::FunctionName { name: name.clone() },
            }),
        }),
        parallel_tool_calls: request.parallel_tool_calls,
        response_format: request.response_format.as_ref().map(|format| match format {
            ResponseFormat::Text => wire::ResponseFormat::Text,
            ResponseFormat::JsonObject => wire::ResponseFormat::JsonObject,
            ResponseFormat::JsonSchema {
                name,
                description,
                schema,
                strict,
            } => wire::ResponseFormat::JsonSchema {
                json_schema: wire::JsonSchemaFormat {
                    name: name.clone(),
                    description: description.clone(),
                    schema: Some(schema.clone()),
                    strict: *strict,
                },
            },
        }),
        stream: stream.then_some(true),
        // Always ask for usage: accounting needs it.
        stream_options: stream.then_some(wire::StreamOptions {
            include_usage: true,
        }),
        temperature: sampling.temperature,
        top_p: sampling.top_p,
        n: None,
        stop: (!sampling.stop.is_empty()).then(|| wire::Stop::Many(sampling.stop.clone())),
        max_tokens,
        max_completion_tokens,
        presence_penalty: sampling.presence_penalty,
        frequency_penalty: sampling.frequency_penalty,
        seed: sampling.seed,
        user: request.user.clone(),
        extra,
    }
}

/// A message on the OpenAI wire: plain text where it is only text, parts where it has images.
#[must_use]
pub fn message_to_wire(message: &Message, dialect: Dialect) -> wire::ChatMessage {
    let role = match (message.role, dialect) {
        (Role::Developer, Dialect::Compatible) => Role::System,
        (role, _) => role,
    };
    let content = if message.has_images() {
        Some(wire::MessageContent::Parts(
            message
                .content
                .iter()
                .map(|part| match part {
                    Part::Text { text } => wire::ContentPart::Text { text: text.clone() },
                    Part::Image { source, detail } => wire::ContentPart::ImageUrl {
                        image_url: wire::ImageUrl {
                            url: source.to_url(),
                            detail: detail.clone(),
                        },
                    },
                })
                .collect(),
        ))
    } else if message.content.is_empty() {
        None
    } else {
        Some(wire::MessageContent::Text(message.joined_text()))
    };
    wire::ChatMessage {
        role: role.as_str().to_owned(),
        content,
        name: message.name.clone(),
        tool_calls: (!message.tool_calls.is_empty()).then(|| {
            message
                .tool_calls
                .iter()
                .map(|call| wire::ToolCall {
                    id: call.id.clone(),
                    kind: "function".into(),
                    function: wire::FunctionCall {
                        name: call.name.clone(),
                        arguments: call.arguments.clone(),
                    },
                })
                .collect()
        }),
        tool_call_id: message.tool_call_id.clone(),
        refusal: message.refusal.clone(),
    }
}

/// Reads an upstream's whole answer.
pub fn chat_response(completion: wire::ChatCompletion) -> Result<ChatResponse, ProviderError> {
    let choice = completion
        .choices
        .into_iter()
        .next()
        .ok_or_else(|| ProviderError::malformed("the answer has no choices"))?;
    let message = choice.message;
    let mut content = Vec::new();
    match message.content {
        Some(wire::MessageContent::Text(text)) if !text.is_empty() => {
            content.push(Part::Text { text });
        }
        Some(wire::MessageContent::Parts(parts)) => {
            for part in parts {
                if let wire::ContentPart::Text { text } = part {
                    content.push(Part::Text { text });
                }
            }
        }
        _ => {}
    }
    let tool_calls: Vec<ToolCall> = message
        .tool_calls
        .unwrap_or_default()
        .into_iter()
        .map(|call| ToolCall {
            id: call.id,
            name: call.function.name,
            arguments: call.function.arguments,
        })
        .collect();
    let finish_reason = choice.finish_reason.map_or(
        if tool_calls.is_empty() {
            FinishReason::Stop
        } else {
            FinishReason::ToolCalls
        },
        |reason| FinishReason::from_openai(&reason),
    );
    Ok(ChatResponse {
        id: Some(completion.id),
        message: Message {
            role: Role::Assistant,
            content,
            tool_calls,
            tool_call_id: None,
            name: None,
            refusal: message.refusal,
        },
        finish_reason,
        usage: completion.usage.map(usage_from_wire),
        system_fingerprint: completion.system_fingerprint,
    })
}

fn usage_from_wire(usage: wire::CompletionUsage) -> Usage {
    Usage {
        input_tokens: usage.prompt_tokens,
        output_tokens: usage.completion_tokens,
    }
}

fn usage_to_wire(usage: Usage) -> wire::CompletionUsage {
    wire::CompletionUsage {
        prompt_tokens: usage.input_tokens,
        completion_tokens: usage.output_tokens,
        total_tokens: usage.total(),
    }
}

/// The answer a client receives.
#[must_use]
pub fn completion(
    response: &ChatResponse,
    id: &str,
    model: &str,
    created: i64,
) -> wire::ChatCompletion {
    let mut message = message_to_wire(&response.message, Dialect::OpenAi);
    // OpenAI always sends `content`, null when the model only called tools.
    if message.content.is_none() && message.tool_calls.is_none() {
        message.content = Some(wire::MessageContent::Text(String::new()));
    }
    wire::ChatCompletion {
        id: id.to_owned(),
        object: "chat.completion".into(),
        created,
        model: model.to_owned(),
        choices: vec![wire::Choice {
            index: 0,
            message,
            finish_reason: Some(response.finish_reason.as_str().to_owned()),
            logprobs: None,
        }],
        usage: Some(usage_to_wire(response.usage.unwrap_or_default())),
        system_fingerprint: response.system_fingerprint.clone(),
    }
}

/// One chunk of an upstream's stream: only what [`ChunkDecoder`] reads. Ids, model names and
/// fingerprints, repeated in every chunk, are skipped unread rather than copied.
#[derive(Debug, serde::Deserialize)]
pub struct UpstreamChunk {
    #[serde(default)]
    choices: Vec<UpstreamChoice>,
    #[serde(default)]
    usage: Option<wire::CompletionUsage>,
}

#[derive(Debug, serde::Deserialize)]
struct UpstreamChoice {
    index: u32,
    delta: UpstreamDelta,
    finish_reason: Option<String>,
}

#[derive(Debug, serde::Deserialize)]
struct UpstreamDelta {
    content: Option<String>,
    refusal: Option<String>,
    tool_calls: Option<Vec<wire::ToolCallDelta>>,
}

/// Reads an upstream's stream of chunks into events. Usage is held back and given once by
/// [`ChunkDecoder::finish`], since some servers repeat it in every chunk.
#[derive(Debug, Default)]
pub struct ChunkDecoder {
    usage: Option<Usage>,
    finished: bool,
}

impl ChunkDecoder {
    /// Adds the events in one chunk to `events`.
    pub fn decode(&mut self, chunk: UpstreamChunk, events: &mut Vec<ChatEvent>) {
        if let Some(usage) = chunk.usage {
            self.usage = Some(usage_from_wire(usage));
        }
        for choice in chunk.choices.into_iter().filter(|c| c.index == 0) {
            let delta = choice.delta;
            if let Some(text) = delta.content.filter(|t| !t.is_empty()) {
                events.push(ChatEvent::Text(text));
            }
            if let Some(text) = delta.refusal.filter(|t| !t.is_empty()) {
                events.push(ChatEvent::Refusal(text));
            }
            for call in delta.tool_calls.unwrap_or_default() {
                let function = call.function.unwrap_or_default();
                events.push(ChatEvent::ToolCall {
                    index: call.index,
                    id: call.id,
                    name: function.name,
                    arguments: function.arguments.unwrap_or_default(),
                });
            }
            if let Some(reason) = choice.finish_reason {
                self.finished = true;
                events.push(ChatEvent::Finish(FinishReason::from_openai(&reason)));
            }
        }
    }

    /// Whether a finish reason has been seen.
    #[must_use]
    pub fn finished(&self) -> bool {
        self.finished
    }

    /// The usage event, once the stream is over.
    pub fn finish(&mut self) -> Option<ChatEvent> {
        self.usage.take().map(ChatEvent::Usage)
    }
}

/// Writes events as a client's stream of chunks, the way OpenAI does: server-sent events, a
/// first chunk with the role, one per event, the finish reason in its own chunk, with
/// `include_usage` a last chunk with no choices and the usage, and `data: [DONE]`.
///
/// The chunks are [`wire::ChatCompletionChunk`]s, written straight to bytes: the id, object,
/// time and model that open every chunk are serialised once, and each event's text is
/// borrowed rather than copied into a chunk first. A stream of short events spent more on
/// those than on anything else kai does to it.
#[derive(Debug)]
pub struct ChunkEncoder {
    /// `{"id":…,"object":"chat.completion.chunk","created":…,"model":…,"choices":[`
    head: Vec<u8>,
    include_usage: bool,
    started: bool,
}

/// The fields every chunk opens with, for [`ChunkEncoder`]'s head.
#[derive(serde::Serialize)]
struct ChunkHead<'a> {
    id: &'a str,
    object: &'static str,
    created: i64,
    model: &'a str,
}

/// [`wire::ChunkDelta`], borrowing.
#[derive(serde::Serialize)]
struct DeltaOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refusal: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[ToolCallOut<'a>; 1]>,
}

/// [`wire::ToolCallDelta`], borrowing.
#[derive(serde::Serialize)]
struct ToolCallOut<'a> {
    index: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    function: FunctionOut<'a>,
}

/// [`wire::FunctionCallDelta`], borrowing.
#[derive(serde::Serialize)]
struct FunctionOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    arguments: &'a str,
}

impl ChunkEncoder {
    /// An encoder for one answer.
    #[must_use]
    pub fn new(id: &str, model: &str, created: i64, include_usage: bool) -> ChunkEncoder {
        let mut head = Vec::with_capacity(128 + id.len() + model.len());
        let fields = ChunkHead {
            id,
            object: "chat.completion.chunk",
            created,
            model,
        };
        write_json(&mut head, &fields);
        // Open the object again after its last field, to add the choices.
        head.pop();
        head.extend_from_slice(b",\"choices\":[");
        ChunkEncoder {
            head,
            include_usage,
            started: false,
        }
    }

    /// Appends the chunks for one event (none for usage, which [`ChunkEncoder::finish`]
    /// writes) to `out`.
    pub fn write(&mut self, event: &ChatEvent, out: &mut Vec<u8>) {
        if !self.started {
            self.started = true;
            let delta = DeltaOut {
                role: Some("assistant"),
                content: Some(""),
                refusal: None,
                tool_calls: None,
            };
            self.write_chunk(&delta, None, out);
        }
        let empty = DeltaOut {
            role: None,
            content: None,
            refusal: None,
            tool_calls: None,
        };
        match event {
            ChatEvent::Text(text) => {
                let delta = DeltaOut {
                    content: Some(text),
                    ..empty
                };
                self.write_chunk(&delta, None, out);
            }
            ChatEvent::Refusal(text) => {
                let delta = DeltaOut {
                    refusal: Some(text),
                    ..empty
                };
                self.write_chunk(&delta, None, out);
            }
            ChatEvent::ToolCall {
                index,
                id,
                name,
                arguments,
            } => {
                let call = ToolCallOut {
                    index: *index,
                    id: id.as_deref(),
                    kind: id.as_ref().map(|_| "function"),
                    function: FunctionOut {
                        name: name.as_deref(),
                        arguments,
                    },
                };
                let delta = DeltaOut {
                    tool_calls: Some([call]),
                    ..empty
                };
                self.write_chunk(&delta, None, out);
            }
            ChatEvent::Finish(reason) => self.write_chunk(&empty, Some(reason.as_str()), out),
            ChatEvent::Usage(_) => {}
        }
    }

    /// Appends the end of the stream to `out`: the usage chunk, if the client asked for it,
    /// and `data: [DONE]`.
    pub fn finish(&self, usage: Usage, out: &mut Vec<u8>) {
        if self.include_usage {
            out.extend_from_slice(b"data: ");
            out.extend_from_slice(&self.head);
            out.extend_from_slice(b"],\"usage\":");
            write_json(out, &usage_to_wire(usage));
            out.extend_from_slice(b"}\n\n");
        }
        out.extend_from_slice(b"data: [DONE]\n\n");
    }

    fn write_chunk(&self, delta: &DeltaOut<'_>, finish_reason: Option<&str>, out: &mut Vec<u8>) {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(&self.head);
        out.extend_from_slice(b"{\"index\":0,\"delta\":");
        write_json(out, delta);
        out.extend_from_slice(b",\"finish_reason\":");
        write_json(out, &finish_reason);
        out.extend_from_slice(b",\"logprobs\":null}]}\n\n");
    }
}

/// Appends an event holding OpenAI's error object, which its SDKs raise when a stream breaks
/// off after it began.
pub fn write_stream_error(out: &mut Vec<u8>, error: &wire::ErrorResponse) {
    out.extend_from_slice(b"data: ");
    write_json(out, error);
    out.extend_from_slice(b"\n\n");
}

/// Serialises kai's own wire types, which cannot fail: they hold no maps with non-string keys
/// and no types whose serialisation can refuse.
fn write_json(out: &mut Vec<u8>, value: &impl serde::Serialize) {
    if serde_json::to_writer(&mut *out, value).is_err() {
        out.extend_from_slice(b"null");
    }
}

/// How the client wants vectors written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VectorEncoding {
    /// JSON numbers.
    #[default]
    Float,
    /// Base64 of little-endian 32-bit floats (what OpenAI's SDKs ask for by default).
    Base64,
}

/// The most texts one embedding request may carry, as OpenAI allows.
pub const MAX_EMBEDDING_INPUTS: usize = 2048;

/// Reads and checks a client's embedding request.
pub fn embed_request(
    request: wire::EmbeddingRequest,
) -> Result<(EmbedRequest, VectorEncoding), InvalidRequest> {
    if request.model.trim().is_empty() {
        return Err(InvalidRequest::new(
            "model",
            "is required; GET /v1/models lists them",
        ));
    }
    let inputs = match request.input {
        wire::EmbeddingInput::One(text) => vec![text],
        wire::EmbeddingInput::Many(texts) => texts,
        wire::EmbeddingInput::Tokens(_) | wire::EmbeddingInput::TokenLists(_) => {
            return Err(InvalidRequest::new(
                "input",
                "token ids are not accepted (models differ in tokenizers); send text",
            ));
        }
    };
    if inputs.is_empty() {
        return Err(InvalidRequest::new("input", "must hold at least one text"));
    }
    if inputs.len() > MAX_EMBEDDING_INPUTS {
        return Err(InvalidRequest::new(
            "input",
            format!(
                "holds {} texts; send at most {MAX_EMBEDDING_INPUTS} per request",
                inputs.len()
            ),
        ));
    }
    if let Some(i) = inputs.iter().position(String::is_empty) {
        return Err(InvalidRequest::new(
            format!("input[{i}]"),
            "must not be empty",
        ));
    }
    let encoding = match request.encoding_format.as_deref() {
        None | Some("float") => VectorEncoding::Float,
        Some("base64") => VectorEncoding::Base64,
        Some(other) => {
            return Err(InvalidRequest::new(
                "encoding_format",
                format!("`{other}` is not float or base64"),
            ));
        }
    };
    if request.dimensions == Some(0) {
        return Err(InvalidRequest::new("dimensions", "must be at least 1"));
    }
    let mut extra = request.extra;
    let input_type = match extra.remove("input_type") {
        None | Some(Value::Null) => None,
        Some(Value::String(kind)) => Some(match kind.as_str() {
            "document" | "search_document" => InputType::Document,
            "query" | "search_query" => InputType::Query,
            "classification" => InputType::Classification,
            "clustering" => InputType::Clustering,
            other => {
                return Err(InvalidRequest::new(
                    "input_type",
                    format!("`{other}` is not document, query, classification or clustering"),
                ));
            }
        }),
        Some(_) => {
            return Err(InvalidRequest::new("input_type", "must be a string"));
        }
    };
    Ok((
        EmbedRequest {
            model: request.model,
            inputs,
            dimensions: request.dimensions,
            input_type,
            user: request.user,
            extra,
        },
        encoding,
    ))
}

/// The request an OpenAI-family upstream receives.
#[must_use]
pub fn upstream_embed_request(request: &EmbedRequest) -> wire::EmbeddingRequest {
    wire::EmbeddingRequest {
        model: request.model.clone(),
        input: wire::EmbeddingInput::Many(request.inputs.clone()),
        encoding_format: Some("float".into()),
        dimensions: request.dimensions,
        user: request.user.clone(),
        extra: request.extra.clone(),
    }
}

/// Reads an upstream's embeddings, in input order whatever order it sent them.
pub fn embed_response(
    response: wire::EmbeddingResponse,
    expected: usize,
) -> Result<EmbedResponse, ProviderError> {
    let mut vectors: Vec<Option<Vec<f32>>> = vec![None; expected];
    for item in response.data {
        let index = item.index as usize;
        let slot = vectors.get_mut(index).ok_or_else(|| {
            ProviderError::malformed(format!("embedding index {index} is out of range"))
        })?;
        *slot = Some(match item.embedding {
            wire::EmbeddingVector::Float(vector) => vector,
            wire::EmbeddingVector::Base64(text) => decode_base64_vector(&text)?,
        });
    }
    let vectors = vectors
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            v.ok_or_else(|| ProviderError::malformed(format!("no embedding for input {i}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(EmbedResponse {
        vectors,
        usage: Some(Usage {
            input_tokens: response.usage.prompt_tokens,
            output_tokens: 0,
        }),
        truncated: Vec::new(),
    })
}

fn decode_base64_vector(text: &str) -> Result<Vec<f32>, ProviderError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|err| ProviderError::malformed(format!("an embedding is not base64: {err}")))?;
    if bytes.len() % 4 != 0 {
        return Err(ProviderError::malformed(
            "a base64 embedding is not whole 32-bit floats",
        ));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

/// The answer a client receives.
#[must_use]
pub fn embeddings(
    response: &EmbedResponse,
    model: &str,
    encoding: VectorEncoding,
) -> wire::EmbeddingResponse {
    let tokens = response.usage.map_or(0, |u| u.input_tokens);
    wire::EmbeddingResponse {
        object: "list".into(),
        data: response
            .vectors
            .iter()
            .enumerate()
            .map(|(i, vector)| wire::Embedding {
                object: "embedding".into(),
                index: u32::try_from(i).unwrap_or(u32::MAX),
                truncated: response.truncated.contains(&i),
                embedding: match encoding {
                    VectorEncoding::Float => wire::EmbeddingVector::Float(vector.clone()),
                    VectorEncoding::Base64 => {
                        let bytes: Vec<u8> = vector.iter().flat_map(|v| v.to_le_bytes()).collect();
                        wire::EmbeddingVector::Base64(
                            base64::engine::general_purpose::STANDARD.encode(bytes),
                        )
                    }
                },
            })
            .collect(),
        model: model.to_owned(),
        usage: wire::EmbeddingUsage {
            prompt_tokens: tokens,
            total_tokens: tokens,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The chunks in what the encoder wrote, checking the framing as it goes.
    fn chunks(written: &[u8]) -> (Vec<wire::ChatCompletionChunk>, bool) {
        let text = std::str::from_utf8(written).unwrap();
        assert!(text.ends_with("\n\n"), "{text}");
        let mut chunks = Vec::new();
        let mut done = false;
        for event in text.trim_end().split("\n\n") {
            let data = event.strip_prefix("data: ").unwrap();
            assert!(!data.contains('\n'), "{data}");
            if data == "[DONE]" {
                done = true;
            } else {
                chunks.push(serde_json::from_str(data).unwrap());
            }
        }
        (chunks, done)
    }

    fn chunk(delta: wire::ChunkDelta, finish_reason: Option<&str>) -> wire::ChatCompletionChunk {
        wire::ChatCompletionChunk {
            id: "chatcmpl-1".into(),
            object: "chat.completion.chunk".into(),
            created: 1_700_000_000,
            model: "a \"quoted\" model".into(),
            choices: vec![wire::ChunkChoice {
                index: 0,
                delta,
                finish_reason: finish_reason.map(str::to_owned),
                logprobs: None,
            }],
            usage: None,
            system_fingerprint: None,
        }
    }

    #[test]
    fn the_encoder_writes_openais_chunks() {
        let mut encoder =
            ChunkEncoder::new("chatcmpl-1", "a \"quoted\" model", 1_700_000_000, true);
        let mut out = Vec::new();
        encoder.write(&ChatEvent::Text("Hé\n\"there\"".into()), &mut out);
        encoder.write(&ChatEvent::Refusal("no".into()), &mut out);
        encoder.write(
            &ChatEvent::ToolCall {
                index: 1,
                id: Some("call_1".into()),
                name: Some("get_weather".into()),
                arguments: "{\"city\":".into(),
            },
            &mut out,
        );
        encoder.write(
            &ChatEvent::ToolCall {
                index: 1,
                id: None,
                name: None,
                arguments: "\"Paris\"}".into(),
            },
            &mut out,
        );
        encoder.write(&ChatEvent::Usage(Usage::default()), &mut out);
        encoder.write(&ChatEvent::Finish(FinishReason::ToolCalls), &mut out);
        encoder.finish(
            Usage {
                input_tokens: 3,
                output_tokens: 4,
            },
            &mut out,
        );

        let (written, done) = chunks(&out);
        assert!(done);
        let tool_call = |id: Option<&str>, name: Option<&str>, arguments: &str| wire::ChunkDelta {
            tool_calls: Some(vec![wire::ToolCallDelta {
                index: 1,
                id: id.map(str::to_owned),
                kind: id.map(|_| "function".to_owned()),
                function: Some(wire::FunctionCallDelta {
                    name: name.map(str::to_owned),
                    arguments: Some(arguments.to_owned()),
                }),
            }]),
            ..Default::default()
        };
        let mut usage = chunk(wire::ChunkDelta::default(), None);
        usage.choices.clear();
        usage.usage = Some(wire::CompletionUsage {
            prompt_tokens: 3,
            completion_tokens: 4,
            total_tokens: 7,
        });
        let expected = vec![
            chunk(
                wire::ChunkDelta {
                    role: Some("assistant".into()),
                    content: Some(String::new()),
                    ..Default::default()
                },
                None,
            ),
            chunk(
                wire::ChunkDelta {
                    content: Some("Hé\n\"there\"".into()),
                    ..Default::default()
                },
                None,
            ),
            chunk(
                wire::ChunkDelta {
                    refusal: Some("no".into()),
                    ..Default::default()
                },
                None,
            ),
            chunk(
                tool_call(Some("call_1"), Some("get_weather"), "{\"city\":"),
                None,
            ),
            chunk(tool_call(None, None, "\"Paris\"}"), None),
            chunk(wire::ChunkDelta::default(), Some("tool_calls")),
            usage,
        ];
        assert_eq!(written, expected);
        // Byte for byte what serialising the wire type gives, so clients see OpenAI's shape.
        let text = std::str::from_utf8(&out).unwrap();
        for chunk in &expected {
            assert!(
                text.contains(&serde_json::to_string(chunk).unwrap()),
                "{chunk:?} not in {text}"
            );
        }
    }

    #[test]
    fn without_include_usage_the_stream_ends_with_done_only() {
        let encoder = ChunkEncoder::new("chatcmpl-1", "m", 1, false);
        let mut out = Vec::new();
        encoder.finish(Usage::default(), &mut out);
        assert_eq!(out, b"data: [DONE]\n\n");
    }
}
