//! The public `/v1` API's side of OpenAI's wire format ([`kai_proto::openai`]): client
//! requests read into the internal model with [`chat_request`] and [`embed_request`], checked
//! here, once, with an error that names the field; answers written with [`completion`] and
//! [`embeddings`], streams with [`ChunkEncoder`]. The other side, kai asking an OpenAI-family
//! provider, is the OpenAI adapter's (`kai_providers::openai`), whose message mapping this
//! shares: kai answers in the format that adapter asks in.

use base64::Engine;
use kai_models::chat::{
    ChatEvent, ChatRequest, ChatResponse, EmbedRequest, EmbedResponse, ImageSource, InputType,
    Message, Part, ResponseFormat, Role, Sampling, ToolCall, ToolChoice, ToolDefinition, Usage,
};
use kai_proto::openai as wire;
use kai_providers::openai::{Dialect, message_to_wire};
use serde_json::Value;

/// A client request kai cannot accept, with the field at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InvalidRequest {
    /// The field, as a path (`messages[2].content`).
    pub(crate) param: Option<String>,
    /// What is wrong and what would be accepted.
    pub(crate) message: String,
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
pub(crate) struct Delivery {
    /// As server-sent events.
    pub(crate) stream: bool,
    /// With a last chunk carrying token usage.
    pub(crate) include_usage: bool,
}

/// Reads and checks a client's chat request. `model` in the result is the client's name for
/// the model; the router replaces it with each deployment's.
pub(crate) fn chat_request(
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
        max_tokens: match (request.max_completion_tokens, request.max_tokens) {
            // Named as the client sent it: the newer name wins when both are given.
            (Some(0), _) => {
                return Err(InvalidRequest::new(
                    "max_completion_tokens",
                    "must be at least 1",
                ));
            }
            (None, Some(0)) => {
                return Err(InvalidRequest::new("max_tokens", "must be at least 1"));
            }
            (newer, older) => newer.or(older),
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

fn usage_to_wire(usage: Usage) -> wire::CompletionUsage {
    wire::CompletionUsage {
        prompt_tokens: usage.input_tokens,
        completion_tokens: usage.output_tokens,
        total_tokens: usage.total(),
    }
}

/// The answer a client receives.
#[must_use]
pub(crate) fn completion(
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
        sources: None,
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
pub(crate) struct ChunkEncoder {
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
    pub(crate) fn new(id: &str, model: &str, created: i64, include_usage: bool) -> ChunkEncoder {
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
    pub(crate) fn write(&mut self, event: &ChatEvent, out: &mut Vec<u8>) {
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
    pub(crate) fn finish(&self, usage: Usage, out: &mut Vec<u8>) {
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
pub(crate) fn write_stream_error(out: &mut Vec<u8>, error: &wire::ErrorResponse) {
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
pub(crate) enum VectorEncoding {
    /// JSON numbers.
    #[default]
    Float,
    /// Base64 of little-endian 32-bit floats (what OpenAI's SDKs ask for by default).
    Base64,
}

/// The most texts one embedding request may carry, as OpenAI allows.
pub(crate) const MAX_EMBEDDING_INPUTS: usize = 2048;

/// Reads and checks a client's embedding request.
pub(crate) fn embed_request(
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

/// The answer a client receives.
#[must_use]
pub(crate) fn embeddings(
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
    use kai_models::chat::FinishReason;

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
