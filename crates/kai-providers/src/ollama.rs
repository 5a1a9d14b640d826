//! Ollama's native API: `POST api/chat`, `POST api/embed`, `GET api/tags` under the base URL
//! (`http://127.0.0.1:11434` by default), with `Authorization: Bearer` only where a key is set
//! (Ollama behind a proxy, or ollama.com).
//!
//! Where the native API differs from kai's model:
//!
//! - Images go only inline, as base64: an image by URL is refused before anything is sent.
//! - Tool-call arguments are JSON objects, not JSON text; tool calls carry no ids, so kai gives
//!   them `call_0`, `call_1`, … in answer order (the next answer starts again at `call_0`), and
//!   a tool's answer names its tool (`tool_name`), found from the latest earlier call with the
//!   same id.
//! - There is no `tool_choice`. [`ToolChoice::None`] sends no tools, [`ToolChoice::Tool`] sends
//!   only that tool; [`ToolChoice::Required`] cannot be enforced and sends every tool, as
//!   `Auto` does.
//! - Sampling goes in `options` (`max_tokens` is `num_predict`); the end-user id,
//!   `parallel_tool_calls` and extra fields have no equivalent and are not sent.
//! - Answers stream as newline-delimited JSON (the default): `stream` is always sent.

use std::collections::HashMap;

use kai_models::chat::{
    ChatEvent, ChatRequest, ChatResponse, EmbedRequest, EmbedResponse, FinishReason, ImageSource,
    Message, Part, ResponseBuilder, ResponseFormat, Role, ToolChoice, ToolDefinition, Usage,
};
use kai_models::{ErrorKind, ProviderError};
use reqwest::header::AUTHORIZATION;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::adapter::{ApiFormat, ChatCall, Decode, parse_item};
use crate::http::{Http, key_headers};
use crate::spec::ProviderSpec;

/// An Ollama server.
#[derive(Debug)]
pub(crate) struct Ollama {
    http: Http,
}

impl Ollama {
    /// The adapter for `spec`, sending its key (if any) as a bearer token.
    pub(crate) fn new(spec: &ProviderSpec) -> Result<Ollama, ProviderError> {
        let headers = key_headers(spec, AUTHORIZATION, "Bearer ")?;
        Ok(Ollama {
            http: Http::new(spec, headers)?,
        })
    }
}

impl ApiFormat for Ollama {
    type Context = ();
    type Answer = Chunk;
    type Item = String;
    type Decoder = Answer;

    fn http(&self) -> &Http {
        &self.http
    }

    fn chat_call(
        &self,
        request: &ChatRequest,
        stream: bool,
    ) -> Result<ChatCall<()>, ProviderError> {
        ChatCall::new(
            self.http.url("api/chat"),
            &chat_request(request, stream)?,
            (),
        )
    }

    fn answer(&self, chunk: Chunk, (): ()) -> Result<ChatResponse, ProviderError> {
        // The whole answer is one chunk of the stream it would have been: one decoder reads
        // both, so ids, finish reasons and usage come out the same either way.
        let mut answer = Answer::default();
        let mut events = Vec::new();
        if !answer.chunk(chunk, &mut events)? {
            return Err(ProviderError::malformed(
                "Ollama's answer is not a finished chat answer (no `done: true`); check that \
                 the base URL points at Ollama's native API",
            ));
        }
        answer.end(&mut events, true)?;
        Ok(ResponseBuilder::collect(&events))
    }

    fn decoder(&self, (): ()) -> Answer {
        Answer::default()
    }

    fn chat_error(&self, err: ProviderError) -> ProviderError {
        unsupported_model(err)
    }

    async fn embed(&self, request: &EmbedRequest) -> Result<EmbedResponse, ProviderError> {
        let body = EmbedBody {
            model: &request.model,
            input: &request.inputs,
            dimensions: request.dimensions,
        };
        let response = self
            .http
            .post_json(self.http.url("api/embed"), &body)
            .await
            .map_err(unsupported_model)?;
        let answer: Embeddings = self.http.json(response).await?;
        if answer.embeddings.len() != request.inputs.len() {
            return Err(ProviderError::malformed(format!(
                "Ollama returned {} embeddings for {} inputs",
                answer.embeddings.len(),
                request.inputs.len()
            )));
        }
        Ok(EmbedResponse {
            vectors: answer.embeddings,
            usage: answer.prompt_eval_count.map(|tokens| Usage {
                input_tokens: tokens,
                output_tokens: 0,
            }),
            truncated: Vec::new(),
        })
    }

    async fn list_models(&self) -> Result<Vec<String>, ProviderError> {
        #[derive(Deserialize)]
        struct Listed {
            name: String,
        }
        #[derive(Deserialize)]
        struct Models {
            models: Vec<Listed>,
        }
        let response = self.http.get(self.http.url("api/tags")).await?;
        let models: Models = self.http.json(response).await?;
        Ok(models.models.into_iter().map(|model| model.name).collect())
    }
}

/// Ollama answers a model that lacks a capability (tools, chat, embeddings) with a plain 400,
/// "… does not support tools". That is the deployment's limit, not the request's fault: as
/// [`ErrorKind::Unsupported`] the router may try another deployment.
fn unsupported_model(mut err: ProviderError) -> ProviderError {
    if err.kind == ErrorKind::BadRequest && err.message.contains("does not support") {
        err.kind = ErrorKind::Unsupported;
    }
    err
}

/// A request the adapter cannot put on Ollama's wire.
fn bad_request(message: String) -> ProviderError {
    ProviderError::new(ErrorKind::BadRequest, message)
}

/// `POST api/chat`'s body.
#[derive(Serialize)]
struct ChatBody<'a> {
    /// The upstream model name.
    model: &'a str,
    /// The conversation.
    messages: Vec<WireMessage<'a>>,
    /// The tools offered: those `tool_choice` allows.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<WireTool<'a>>,
    /// `"json"`, or a JSON Schema.
    #[serde(skip_serializing_if = "Option::is_none")]
    format: Option<Value>,
    /// Sampling, left out when nothing is set.
    #[serde(skip_serializing_if = "Options::is_empty")]
    options: Options<'a>,
    /// Always sent: Ollama streams unless told not to.
    stream: bool,
}

/// A message on Ollama's wire.
#[derive(Serialize)]
struct WireMessage<'a> {
    /// `system`, `user`, `assistant` or `tool`.
    role: &'static str,
    /// The text parts, joined (Ollama takes one string).
    content: String,
    /// Base64, no `data:` prefix.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    images: Vec<&'a str>,
    /// For an assistant message: the tools it called.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<WireCall<'a>>,
    /// For a tool's answer: the tool that answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_name: Option<&'a str>,
}

/// A tool call an assistant made, as sent back in the conversation.
#[derive(Serialize)]
struct WireCall<'a> {
    /// The call.
    function: WireFunction<'a>,
}

/// The tool and its arguments, as an object.
#[derive(Serialize)]
struct WireFunction<'a> {
    /// The tool.
    name: &'a str,
    /// Its arguments, a JSON object.
    arguments: Value,
}

/// A tool the model may call.
#[derive(Serialize)]
struct WireTool<'a> {
    /// Always `function`.
    #[serde(rename = "type")]
    kind: &'static str,
    /// The tool.
    function: WireToolFunction<'a>,
}

/// A tool's name, purpose and argument schema.
#[derive(Serialize)]
struct WireToolFunction<'a> {
    /// Its name.
    name: &'a str,
    /// What it does, for the model.
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    /// Its arguments' JSON Schema.
    parameters: &'a Value,
}

/// Sampling, under Ollama's (Modelfile) names.
#[derive(Serialize)]
struct Options<'a> {
    /// Temperature.
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    /// Nucleus sampling mass.
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f32>,
    /// Sample from the likeliest `top_k` tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    top_k: Option<u32>,
    /// The most tokens to generate (kai's `max_tokens`).
    #[serde(skip_serializing_if = "Option::is_none")]
    num_predict: Option<u32>,
    /// Sequences that end generation; left out when there are none.
    #[serde(skip_serializing_if = "Option::is_none")]
    stop: Option<&'a [String]>,
    /// A seed for repeatable sampling.
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<i64>,
    /// Presence penalty.
    #[serde(skip_serializing_if = "Option::is_none")]
    presence_penalty: Option<f32>,
    /// Frequency penalty.
    #[serde(skip_serializing_if = "Option::is_none")]
    frequency_penalty: Option<f32>,
}

impl Options<'_> {
    /// Whether nothing is set, so the model's own defaults (its Modelfile's) apply untouched.
    fn is_empty(&self) -> bool {
        self.temperature.is_none()
            && self.top_p.is_none()
            && self.top_k.is_none()
            && self.num_predict.is_none()
            && self.stop.is_none()
            && self.seed.is_none()
            && self.presence_penalty.is_none()
            && self.frequency_penalty.is_none()
    }
}

/// The body Ollama receives for `request`, or why it cannot be sent.
fn chat_request(request: &ChatRequest, stream: bool) -> Result<ChatBody<'_>, ProviderError> {
    let sampling = &request.sampling;
    Ok(ChatBody {
        model: &request.model,
        messages: messages(&request.messages)?,
        tools: tools(request)?,
        format: request
            .response_format
            .as_ref()
            .and_then(|format| match format {
                ResponseFormat::Text => None,
                ResponseFormat::JsonObject => Some(Value::from("json")),
                ResponseFormat::JsonSchema { schema, .. } => Some(schema.clone()),
            }),
        options: Options {
            temperature: sampling.temperature,
            top_p: sampling.top_p,
            top_k: sampling.top_k,
            num_predict: sampling.max_tokens,
            stop: (!sampling.stop.is_empty()).then_some(sampling.stop.as_slice()),
            seed: sampling.seed,
            presence_penalty: sampling.presence_penalty,
            frequency_penalty: sampling.frequency_penalty,
        },
        stream,
    })
}

/// The tools to offer. Ollama has no `tool_choice`, so the choice is made by what is offered.
fn tools(request: &ChatRequest) -> Result<Vec<WireTool<'_>>, ProviderError> {
    let offered: Vec<&ToolDefinition> = match &request.tool_choice {
        Some(ToolChoice::None) => Vec::new(),
        Some(ToolChoice::Tool(name)) => {
            let tool = request
                .tools
                .iter()
                .find(|tool| &tool.name == name)
                .ok_or_else(|| {
                    bad_request(format!(
                        "tool_choice names the tool `{name}`, which is not among the request's \
                         tools: add its definition or choose another"
                    ))
                })?;
            vec![tool]
        }
        Some(ToolChoice::Auto | ToolChoice::Required) | None => request.tools.iter().collect(),
    };
    Ok(offered
        .into_iter()
        .map(|tool| WireTool {
            kind: "function",
            function: WireToolFunction {
                name: &tool.name,
                description: tool.description.as_deref(),
                parameters: &tool.parameters,
            },
        })
        .collect())
}

/// The conversation on Ollama's wire.
fn messages(messages: &[Message]) -> Result<Vec<WireMessage<'_>>, ProviderError> {
    // A tool's answer must name its tool; the call it answers is earlier in the conversation.
    let mut called: HashMap<&str, &str> = HashMap::new();
    let mut wire = Vec::with_capacity(messages.len());
    for (i, message) in messages.iter().enumerate() {
        let mut content = message.joined_text();
        // Ollama knows no refusals; what the assistant said is kept as what it said.
        if let Some(refusal) = &message.refusal {
            content.push_str(refusal);
        }
        let mut images = Vec::new();
        for part in &message.content {
            match part {
                Part::Image {
                    source: ImageSource::Base64 { data, .. },
                    ..
                } => images.push(data.as_str()),
                Part::Image {
                    source: ImageSource::Url { .. },
                    ..
                } => {
                    return Err(ProviderError::unsupported(format!(
                        "messages[{i}]: Ollama cannot fetch images by URL; send the image \
                         inline as a data: URL (data:image/png;base64,…)"
                    )));
                }
                Part::Text { .. } => {}
            }
        }
        let mut tool_calls = Vec::with_capacity(message.tool_calls.len());
        for call in &message.tool_calls {
            called.insert(&call.id, &call.name);
            tool_calls.push(WireCall {
                function: WireFunction {
                    name: &call.name,
                    arguments: arguments_object(i, &call.name, &call.arguments)?,
                },
            });
        }
        let tool_name = match message.role {
            // Without the call, the participant name is the best guess; with neither, Ollama
            // takes the answer unnamed.
            Role::Tool => message
                .tool_call_id
                .as_deref()
                .and_then(|id| called.get(id).copied())
                .or(message.name.as_deref()),
            _ => None,
        };
        wire.push(WireMessage {
            role: match message.role {
                Role::System | Role::Developer => "system",
                Role::User => "user",
                Role::Assistant => "assistant",
                Role::Tool => "tool",
            },
            content,
            images,
            tool_calls,
            tool_name,
        });
    }
    Ok(wire)
}

/// A tool call's arguments, JSON text in kai, as the object Ollama wants. No arguments at all
/// is the empty object.
fn arguments_object(at: usize, name: &str, arguments: &str) -> Result<Value, ProviderError> {
    if arguments.trim().is_empty() {
        return Ok(Value::Object(serde_json::Map::new()));
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(_) => Err(bad_request(format!(
            "messages[{at}]: the arguments of the call to `{name}` are JSON but not an object; \
             Ollama takes tool arguments only as a JSON object"
        ))),
        Err(err) => Err(bad_request(format!(
            "messages[{at}]: the arguments of the call to `{name}` are not valid JSON ({err}); \
             Ollama needs them as a JSON object, so fix or drop that call"
        ))),
    }
}

/// `POST api/embed`'s body.
#[derive(Serialize)]
struct EmbedBody<'a> {
    /// The upstream model name.
    model: &'a str,
    /// The texts, in order.
    input: &'a [String],
    /// Shorter vectors, where the model can make them.
    #[serde(skip_serializing_if = "Option::is_none")]
    dimensions: Option<u32>,
}

/// `api/embed`'s answer.
#[derive(Deserialize)]
struct Embeddings {
    /// One vector per input, in order.
    embeddings: Vec<Vec<f32>>,
    /// Tokens read.
    #[serde(default)]
    prompt_eval_count: Option<u64>,
}

/// One line of a streamed answer, or the whole of one that is not streamed.
#[derive(Deserialize)]
pub(crate) struct Chunk {
    /// More of the assistant's message.
    #[serde(default)]
    message: Option<ChunkMessage>,
    /// Whether this is the last line.
    #[serde(default)]
    done: bool,
    /// Why it stopped, in the last line: `stop`, `length`, or `load`/`unload` for a request
    /// that only (un)loaded the model.
    #[serde(default)]
    done_reason: Option<String>,
    /// Tokens read, in the last line (left out when zero).
    #[serde(default)]
    prompt_eval_count: Option<u64>,
    /// Tokens written, in the last line (left out when zero).
    #[serde(default)]
    eval_count: Option<u64>,
    /// A failure after the answer began, reported in its own line.
    #[serde(default)]
    error: Option<String>,
}

/// What a chunk adds to the assistant's message.
#[derive(Deserialize)]
struct ChunkMessage {
    /// More text.
    #[serde(default)]
    content: String,
    /// Tool calls, each whole; `null` or missing when there are none.
    #[serde(default)]
    tool_calls: Option<Vec<ChunkCall>>,
}

/// A whole tool call (Ollama never splits one across lines).
#[derive(Deserialize)]
struct ChunkCall {
    /// Sent by newer servers only; kai makes one up where it is missing.
    #[serde(default)]
    id: Option<String>,
    /// The call.
    function: ChunkFunction,
}

/// The tool and its arguments object.
#[derive(Deserialize)]
struct ChunkFunction {
    /// The tool.
    name: String,
    /// Its arguments: an object.
    #[serde(default)]
    arguments: Value,
}

/// Reads Ollama's answer into events: the lines of a stream until `done: true`, or a whole
/// answer as its one line.
#[derive(Debug, Default)]
pub(crate) struct Answer {
    /// Tool calls so far, to index and name the next.
    calls: u32,
    /// Held back to be given once, last.
    usage: Option<Usage>,
}

impl Answer {
    /// Adds the events of one chunk; returns `true` when it ended the answer.
    fn chunk(&mut self, chunk: Chunk, out: &mut Vec<ChatEvent>) -> Result<bool, ProviderError> {
        if let Some(message) = chunk.error {
            return Err(stream_error(message));
        }
        if let Some(message) = chunk.message {
            if !message.content.is_empty() {
                out.push(ChatEvent::Text(message.content));
            }
            for call in message.tool_calls.unwrap_or_default() {
                let index = self.calls;
                self.calls += 1;
                let id = call
                    .id
                    .filter(|id| !id.is_empty())
                    .unwrap_or_else(|| format!("call_{index}"));
                let arguments = match call.function.arguments {
                    Value::Null => "{}".to_owned(),
                    // Some servers copying Ollama send the arguments as JSON text already.
                    Value::String(text) => text,
                    object => object.to_string(),
                };
                out.push(ChatEvent::ToolCall {
                    index,
                    id: Some(id),
                    name: Some(call.function.name),
                    arguments,
                });
            }
        }
        if !chunk.done {
            return Ok(false);
        }
        let reason = match chunk.done_reason.as_deref().unwrap_or_default() {
            // Ollama says `stop` after tool calls too.
            "stop" | "" if self.calls > 0 => FinishReason::ToolCalls,
            "stop" | "" => FinishReason::Stop,
            "length" => FinishReason::Length,
            other => FinishReason::Other(other.to_owned()),
        };
        out.push(ChatEvent::Finish(reason));
        // Ollama leaves out a count of zero (a prompt wholly cached, say): either one present
        // means it counted.
        if chunk.prompt_eval_count.is_some() || chunk.eval_count.is_some() {
            self.usage = Some(Usage {
                input_tokens: chunk.prompt_eval_count.unwrap_or(0),
                output_tokens: chunk.eval_count.unwrap_or(0),
            });
        }
        Ok(true)
    }
}

impl Decode<String> for Answer {
    fn item(&mut self, line: String, out: &mut Vec<ChatEvent>) -> Result<bool, ProviderError> {
        self.chunk(parse_item(&line)?, out)
    }

    fn end(&mut self, out: &mut Vec<ChatEvent>, complete: bool) -> Result<(), ProviderError> {
        if !complete {
            return Err(ProviderError::new(
                ErrorKind::Interrupted,
                "the stream ended before Ollama's last line (`done: true`): the answer is \
                 incomplete",
            ));
        }
        out.extend(self.usage.take().map(ChatEvent::Usage));
        Ok(())
    }
}

/// An error Ollama reported inside an answer (mid-stream, a line of its own). It failed on its
/// side, so it is a server error, unless its words say the prompt was too long or was refused
/// by policy: the shared classifier reads those words for client errors only, so it is asked
/// as for a 400.
fn stream_error(message: String) -> ProviderError {
    let message = format!("Ollama reported an error during the answer: {message}");
    let kind = match ProviderError::from_status(400, message.as_str(), None).kind {
        kind @ (ErrorKind::ContextLengthExceeded | ErrorKind::ContentFiltered) => kind,
        _ => ErrorKind::Server,
    };
    ProviderError::new(kind, message)
}
