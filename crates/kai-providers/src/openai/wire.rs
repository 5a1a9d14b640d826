//! kai's model onto OpenAI's format, as an OpenAI-family upstream is asked, and its answers and
//! streams back.

use base64::Engine;
use kai_models::ProviderError;
use kai_models::chat::{
    ChatEvent, ChatRequest, ChatResponse, EmbedRequest, EmbedResponse, FinishReason, Message, Part,
    ResponseFormat, Role, ToolCall, ToolChoice, Usage,
};
use kai_proto::openai as wire;
use serde_json::{Map, Value};

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
pub(crate) fn upstream_chat_request(
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
        knowledge: None,
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
pub(crate) fn chat_response(
    completion: wire::ChatCompletion,
) -> Result<ChatResponse, ProviderError> {
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

/// One chunk of an upstream's stream: only what [`ChunkDecoder`] reads. Ids, model names and
/// fingerprints, repeated in every chunk, are skipped unread rather than copied.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct UpstreamChunk {
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
pub(crate) struct ChunkDecoder {
    usage: Option<Usage>,
    finished: bool,
}

impl ChunkDecoder {
    /// Adds the events in one chunk to `events`.
    pub(crate) fn decode(&mut self, chunk: UpstreamChunk, events: &mut Vec<ChatEvent>) {
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
    pub(crate) fn finished(&self) -> bool {
        self.finished
    }

    /// The usage event, once the stream is over.
    pub(crate) fn finish(&mut self) -> Option<ChatEvent> {
        self.usage.take().map(ChatEvent::Usage)
    }
}

/// The request an OpenAI-family upstream receives.
#[must_use]
pub(crate) fn upstream_embed_request(request: &EmbedRequest) -> wire::EmbeddingRequest {
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
pub(crate) fn embed_response(
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
