//! Google's Gemini API (the Generative Language API): `POST
//! v1beta/models/{model}:generateContent`, `:streamGenerateContent?alt=sse` and
//! `:batchEmbedContents`, `GET v1beta/models`, with the key in the `x-goog-api-key` header
//! (never in the `key=` query, which ends up in proxies' and servers' logs).
//!
//! Gemini differs from OpenAI in ways the mapping has to bridge: system instructions travel
//! apart from the conversation, turns are `user` and `model` only and must alternate, tool
//! answers are matched to calls by function name rather than by id, calls carry no ids at all,
//! and a stream has no end marker of its own.

use kai_models::chat::{
    ChatEvent, ChatRequest, ChatResponse, EmbedRequest, EmbedResponse, FinishReason, ImageSource,
    InputType, Message, Part, ResponseBuilder, ResponseFormat, Role, ToolCall, ToolChoice, Usage,
};
use kai_models::{ErrorKind, ProviderError};
use reqwest::header::HeaderName;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use url::Url;

use crate::adapter::{ApiFormat, ChatCall, Decode, parse_item};
use crate::http::{Http, key_headers};
use crate::spec::ProviderSpec;
use crate::sse::SseEvent;

/// The header that carries the API key.
const API_KEY: HeaderName = HeaderName::from_static("x-goog-api-key");

/// The API version whose format this adapter speaks, put under a base URL that names none.
const VERSION: &str = "v1beta";

/// The most texts `batchEmbedContents` takes in one request; longer requests are sent in turns.
const EMBED_BATCH: usize = 100;

/// The most pages of models read: far more than Google lists, and a bound should a server keep
/// handing out page tokens.
const MAX_MODEL_PAGES: usize = 10;

/// The value Google documents for a function call whose thought signature is not at hand.
/// Gemini 3 refuses a replayed call without a signature, and kai's model of a tool call has no
/// place to keep the real one, so every replayed call carries this instead.
const NO_SIGNATURE: &str = "skip_thought_signature_validator";

/// The Gemini adapter.
#[derive(Debug)]
pub(crate) struct Gemini {
    http: Http,
    /// `v1beta/models`, or `models` where the base URL already ends in an API version.
    models: String,
}

impl Gemini {
    pub(crate) fn new(spec: &ProviderSpec) -> Result<Gemini, ProviderError> {
        let headers = key_headers(spec, API_KEY, "")?;
        // A base URL copied from Google's examples often ends in `/v1beta` already.
        let versioned = spec
            .base_url
            .path_segments()
            .and_then(|mut segments| segments.rfind(|segment| !segment.is_empty()))
            .and_then(|last| last.strip_prefix('v'))
            .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()));
        Ok(Gemini {
            http: Http::new(spec, headers)?,
            models: if versioned {
                "models".to_owned()
            } else {
                format!("{VERSION}/models")
            },
        })
    }

    /// `…/models/{model}:{method}`, the model name escaped as one path segment.
    fn model_url(&self, model: &str, method: &str) -> Result<Url, ProviderError> {
        let model = model_id(model);
        if model.is_empty() {
            return Err(ProviderError::new(
                ErrorKind::BadRequest,
                "the request names no model: give the deployment a Gemini model such as \
                 gemini-2.0-flash",
            ));
        }
        let mut url = self.http.url(&self.models);
        url.path_segments_mut()
            .map_err(|()| {
                ProviderError::unsupported(format!(
                    "the base URL cannot take a path; give an http(s) URL such as \
                     https://generativelanguage.googleapis.com/{VERSION}"
                ))
            })?
            .push(&format!("{model}:{method}"));
        Ok(url)
    }
}

/// The model's id without the `models/` prefix Google's own listings put on it.
fn model_id(model: &str) -> &str {
    model.strip_prefix("models/").unwrap_or(model)
}

impl ApiFormat for Gemini {
    type Context = ();
    type Answer = GenerateContentResponse;
    type Item = SseEvent;
    type Decoder = Chunks;

    fn http(&self) -> &Http {
        &self.http
    }

    fn chat_call(
        &self,
        request: &ChatRequest,
        stream: bool,
    ) -> Result<ChatCall<()>, ProviderError> {
        let body = GenerateContentRequest::from_request(request)?;
        let url = if stream {
            let mut url = self.model_url(&request.model, "streamGenerateContent")?;
            // Without `alt=sse` Gemini streams one JSON array, not events.
            url.set_query(Some("alt=sse"));
            url
        } else {
            self.model_url(&request.model, "generateContent")?
        };
        ChatCall::new(url, &body, ())
    }

    fn answer(
        &self,
        answer: GenerateContentResponse,
        (): (),
    ) -> Result<ChatResponse, ProviderError> {
        let id = answer.response_id.clone();
        if answer.candidates.is_empty() && answer.block().is_none() {
            return Err(ProviderError::malformed(
                "Gemini's answer has no candidates and gives no reason",
            ));
        }
        let mut reader = Reader::default();
        let mut events = Vec::new();
        reader.read(answer, &mut events)?;
        events.extend(reader.usage.map(ChatEvent::Usage));
        let mut response = ResponseBuilder::collect(&events);
        response.id = id;
        Ok(response)
    }

    fn decoder(&self, (): ()) -> Chunks {
        Chunks::default()
    }

    async fn embed(&self, request: &EmbedRequest) -> Result<EmbedResponse, ProviderError> {
        let url = self.model_url(&request.model, "batchEmbedContents")?;
        let model = format!("models/{}", model_id(&request.model));
        let task_type = request.input_type.map(task_type);
        let mut vectors = Vec::with_capacity(request.inputs.len());
        for batch in request.inputs.chunks(EMBED_BATCH) {
            let body = BatchEmbedRequest {
                requests: batch
                    .iter()
                    .map(|text| EmbedContentRequest {
                        model: &model,
                        content: TextContent {
                            parts: [TextPart { text }],
                        },
                        task_type,
                        output_dimensionality: request.dimensions,
                    })
                    .collect(),
            };
            let response = self.http.post_json(url.clone(), &body).await?;
            let answer: BatchEmbedResponse = self.http.json(response).await?;
            if answer.embeddings.len() != batch.len() {
                return Err(ProviderError::malformed(format!(
                    "Gemini sent {} embeddings for {} texts",
                    answer.embeddings.len(),
                    batch.len()
                )));
            }
            vectors.extend(answer.embeddings.into_iter().map(|e| e.values));
        }
        // Gemini counts no tokens for embeddings.
        Ok(EmbedResponse {
            vectors,
            usage: None,
            truncated: Vec::new(),
        })
    }

    async fn list_models(&self) -> Result<Vec<String>, ProviderError> {
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_MODEL_PAGES {
            let mut url = self.http.url(&self.models);
            {
                let mut query = url.query_pairs_mut();
                query.append_pair("pageSize", "1000");
                if let Some(token) = &token {
                    query.append_pair("pageToken", token);
                }
            }
            let response = self.http.get(url).await?;
            let page: ModelList = self.http.json(response).await?;
            names.extend(
                page.models
                    .into_iter()
                    .filter(ListedModel::usable)
                    .map(|model| model_id(&model.name).to_owned()),
            );
            token = page.next_page_token.filter(|token| !token.is_empty());
            if token.is_none() {
                return Ok(names);
            }
        }
        tracing::warn!(
            pages = MAX_MODEL_PAGES,
            "Gemini listed more pages of models than kai reads; the list is cut short"
        );
        Ok(names)
    }
}

/// Gemini's name for what embedded texts are for.
fn task_type(input: InputType) -> &'static str {
    match input {
        InputType::Document => "RETRIEVAL_DOCUMENT",
        InputType::Query => "RETRIEVAL_QUERY",
        InputType::Classification => "CLASSIFICATION",
        InputType::Clustering => "CLUSTERING",
    }
}

// What kai sends.

/// A `generateContent` request.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct GenerateContentRequest<'a> {
    contents: Vec<Content<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    system_instruction: Option<SystemInstruction<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<Tool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_config: Option<ToolConfig<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    generation_config: Option<GenerationConfig<'a>>,
}

/// One turn of the conversation.
#[derive(Debug, Serialize)]
struct Content<'a> {
    /// `user` or `model`.
    role: &'static str,
    parts: Vec<OutPart<'a>>,
}

/// The system instructions, apart from the conversation.
#[derive(Debug, Serialize)]
struct SystemInstruction<'a> {
    parts: Vec<OutPart<'a>>,
}

/// One part of a turn: exactly one of text, inline data, a function call or a function's
/// answer.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct OutPart<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    inline_data: Option<Blob<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    function_call: Option<FunctionCallOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    function_response: Option<FunctionResponse<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thought_signature: Option<&'static str>,
}

impl<'a> OutPart<'a> {
    fn text(text: &'a str) -> OutPart<'a> {
        OutPart {
            text: Some(text),
            ..OutPart::default()
        }
    }
}

/// Base64 bytes with their media type.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Blob<'a> {
    mime_type: &'a str,
    data: &'a str,
}

/// A call the model made, replayed.
#[derive(Debug, Serialize)]
struct FunctionCallOut<'a> {
    name: &'a str,
    args: Value,
}

/// A tool's answer, named by the function it answers.
#[derive(Debug, Serialize)]
struct FunctionResponse<'a> {
    name: &'a str,
    response: Value,
}

/// Function declarations.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Tool<'a> {
    function_declarations: Vec<FunctionDeclaration<'a>>,
}

/// One function the model may call. The parameters go as `parametersJsonSchema`, which takes
/// JSON Schema as OpenAI clients write it; `parameters` takes only Google's OpenAPI subset and
/// refuses common keywords such as `additionalProperties`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct FunctionDeclaration<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters_json_schema: Option<&'a Value>,
}

/// Whether and which function the model must call.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolConfig<'a> {
    function_calling_config: FunctionCallingConfig<'a>,
}

/// `AUTO`, `ANY` (optionally among some functions) or `NONE`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct FunctionCallingConfig<'a> {
    mode: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    allowed_function_names: Vec<&'a str>,
}

/// Sampling and the shape of the answer.
#[derive(Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
struct GenerationConfig<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_k: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_output_tokens: Option<u32>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop_sequences: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    presence_penalty: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    frequency_penalty: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_mime_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_json_schema: Option<&'a Value>,
}

impl<'a> GenerateContentRequest<'a> {
    /// The request Gemini receives for `request`, or why it cannot be expressed.
    fn from_request(request: &'a ChatRequest) -> Result<GenerateContentRequest<'a>, ProviderError> {
        let mut contents: Vec<Content<'a>> = Vec::new();
        let mut instructions = Vec::new();
        for (at, message) in request.messages.iter().enumerate() {
            let (role, parts) = match message.role {
                Role::System | Role::Developer => {
                    instructions.extend(instruction_parts(message, at)?);
                    continue;
                }
                Role::User => ("user", content_parts(message, at)?),
                Role::Assistant => ("model", model_parts(message, at)?),
                // Gemini takes a function's answer as part of the user's turn.
                Role::Tool => (
                    "user",
                    vec![function_response(message, &request.messages[..at], at)?],
                ),
            };
            if parts.is_empty() {
                continue;
            }
            // Turns must alternate: tool answers and the user's next words are one turn.
            match contents.last_mut() {
                Some(last) if last.role == role => last.parts.extend(parts),
                _ => contents.push(Content { role, parts }),
            }
        }
        if contents.is_empty() {
            return Err(ProviderError::new(
                ErrorKind::BadRequest,
                "Gemini needs at least one user or assistant message besides the instructions",
            ));
        }
        let tools = if request.tools.is_empty() {
            Vec::new()
        } else {
            vec![Tool {
                function_declarations: request
                    .tools
                    .iter()
                    .map(|tool| FunctionDeclaration {
                        name: &tool.name,
                        description: tool.description.as_deref(),
                        parameters_json_schema: (!tool.parameters.is_null())
                            .then_some(&tool.parameters),
                    })
                    .collect(),
            }]
        };
        // A tool choice without tools would make Gemini call a function that does not exist.
        let tool_config = request
            .tool_choice
            .as_ref()
            .filter(|_| !request.tools.is_empty())
            .map(|choice| {
                let (mode, allowed_function_names) = match choice {
                    ToolChoice::Auto => ("AUTO", Vec::new()),
                    ToolChoice::None => ("NONE", Vec::new()),
                    ToolChoice::Required => ("ANY", Vec::new()),
                    ToolChoice::Tool(name) => ("ANY", vec![name.as_str()]),
                };
                ToolConfig {
                    function_calling_config: FunctionCallingConfig {
                        mode,
                        allowed_function_names,
                    },
                }
            });
        let sampling = &request.sampling;
        let (response_mime_type, response_json_schema) = match &request.response_format {
            None | Some(ResponseFormat::Text) => (None, None),
            Some(ResponseFormat::JsonObject) => (Some("application/json"), None),
            Some(ResponseFormat::JsonSchema { schema, .. }) => {
                (Some("application/json"), Some(schema))
            }
        };
        let generation_config = GenerationConfig {
            temperature: sampling.temperature,
            top_p: sampling.top_p,
            top_k: sampling.top_k,
            max_output_tokens: sampling.max_tokens,
            stop_sequences: &sampling.stop,
            // Gemini's seed is 32 bits. Folding a wider one keeps what a seed is for: the same
            // seed samples the same way.
            seed: sampling
                .seed
                .map(|seed| i32::try_from(seed).unwrap_or(seed as i32)),
            presence_penalty: sampling.presence_penalty,
            frequency_penalty: sampling.frequency_penalty,
            response_mime_type,
            response_json_schema,
        };
        Ok(GenerateContentRequest {
            contents,
            system_instruction: (!instructions.is_empty()).then_some(SystemInstruction {
                parts: instructions,
            }),
            tools,
            tool_config,
            generation_config: (generation_config != GenerationConfig::default())
                .then_some(generation_config),
        })
    }
}

/// The text of a system or developer message.
fn instruction_parts(message: &Message, at: usize) -> Result<Vec<OutPart<'_>>, ProviderError> {
    if message.has_images() {
        return Err(ProviderError::unsupported(format!(
            "messages[{at}] is an instruction with an image, and Gemini takes only text as \
             system instructions: send the image in a user message"
        )));
    }
    content_parts(message, at)
}

/// Text and images, in order. Empty text is left out: Gemini refuses empty parts.
fn content_parts(message: &Message, at: usize) -> Result<Vec<OutPart<'_>>, ProviderError> {
    message
        .content
        .iter()
        .filter(|part| !matches!(part, Part::Text { text } if text.is_empty()))
        .map(|part| match part {
            Part::Text { text } => Ok(OutPart::text(text)),
            Part::Image { source, .. } => image(source, at),
        })
        .collect()
}

/// An image as inline data: Gemini does not fetch images from the web.
fn image(source: &ImageSource, at: usize) -> Result<OutPart<'_>, ProviderError> {
    match source {
        ImageSource::Base64 { media_type, data } => Ok(OutPart {
            inline_data: Some(Blob {
                mime_type: media_type,
                data,
            }),
            ..OutPart::default()
        }),
        ImageSource::Url { .. } => Err(ProviderError::unsupported(format!(
            "messages[{at}] has an image by URL, which Gemini cannot fetch: send the image \
             inline as a base64 data: URL (data:image/png;base64,…)"
        ))),
    }
}

/// An assistant message: its text (or its refusal, which is what it said), then its calls.
fn model_parts(message: &Message, at: usize) -> Result<Vec<OutPart<'_>>, ProviderError> {
    let mut parts = content_parts(message, at)?;
    if parts.is_empty()
        && let Some(refusal) = message.refusal.as_deref().filter(|r| !r.is_empty())
    {
        parts.push(OutPart::text(refusal));
    }
    for call in &message.tool_calls {
        parts.push(OutPart {
            function_call: Some(FunctionCallOut {
                name: &call.name,
                args: call_arguments(call, at)?,
            }),
            thought_signature: Some(NO_SIGNATURE),
            ..OutPart::default()
        });
    }
    Ok(parts)
}

/// A call's arguments as the JSON object Gemini takes. No text at all means no arguments.
fn call_arguments(call: &ToolCall, at: usize) -> Result<Value, ProviderError> {
    let text = call.arguments.trim();
    if text.is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    let problem = match serde_json::from_str::<Value>(text) {
        Ok(args @ Value::Object(_)) => return Ok(args),
        Ok(_) => "are JSON but not an object".to_owned(),
        Err(err) => format!("are not JSON ({err})"),
    };
    Err(ProviderError::new(
        ErrorKind::BadRequest,
        format!(
            "the arguments of tool call `{}` to `{}` in messages[{at}] {problem}; Gemini takes \
             a call's arguments as a JSON object: correct them or leave the call out",
            call.id, call.name
        ),
    ))
}

/// A tool's answer, named by the function of the call it answers: the latest earlier assistant
/// call with that id (ids repeat across turns, since Gemini's are made up per answer).
fn function_response<'a>(
    message: &'a Message,
    earlier: &'a [Message],
    at: usize,
) -> Result<OutPart<'a>, ProviderError> {
    let id = message.tool_call_id.as_deref();
    let name = id
        .and_then(|id| {
            earlier
                .iter()
                .rev()
                .filter(|m| m.role == Role::Assistant)
                .find_map(|m| m.tool_calls.iter().find(|call| call.id == id))
                .map(|call| call.name.as_str())
        })
        .or(message.name.as_deref())
        .ok_or_else(|| {
            let why = match id {
                Some(id) => format!(
                    "answers tool call `{id}`, but no earlier assistant message made a call \
                     with that id"
                ),
                None => "is a tool answer without a tool_call_id".to_owned(),
            };
            ProviderError::new(
                ErrorKind::BadRequest,
                format!(
                    "messages[{at}] {why}; Gemini matches tool answers to calls by function \
                     name, so keep the assistant message with the call in the conversation"
                ),
            )
        })?;
    if message.has_images() {
        return Err(ProviderError::unsupported(format!(
            "messages[{at}] is a tool answer with an image, which kai cannot send to Gemini: \
             answer with text and put the image in a user message"
        )));
    }
    let text = message.joined_text();
    // Gemini wants an object: a tool that answered with one is passed as it is.
    let response = match serde_json::from_str::<Value>(&text) {
        Ok(object @ Value::Object(_)) => object,
        _ => serde_json::json!({ "result": text }),
    };
    Ok(OutPart {
        function_response: Some(FunctionResponse { name, response }),
        ..OutPart::default()
    })
}

/// A `batchEmbedContents` request.
#[derive(Debug, Serialize)]
struct BatchEmbedRequest<'a> {
    requests: Vec<EmbedContentRequest<'a>>,
}

/// One text to embed.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct EmbedContentRequest<'a> {
    /// `models/{model}`, which Gemini wants repeated in every request of a batch.
    model: &'a str,
    content: TextContent<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    task_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_dimensionality: Option<u32>,
}

/// Content of one text part.
#[derive(Debug, Serialize)]
struct TextContent<'a> {
    parts: [TextPart<'a>; 1],
}

/// A text part.
#[derive(Debug, Serialize)]
struct TextPart<'a> {
    text: &'a str,
}

// What Gemini answers.

/// A whole answer, or one chunk of a stream.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GenerateContentResponse {
    #[serde(default)]
    candidates: Vec<Candidate>,
    prompt_feedback: Option<PromptFeedback>,
    usage_metadata: Option<UsageMetadata>,
    response_id: Option<String>,
    /// An error reported inside a stream.
    error: Option<StreamError>,
}

impl GenerateContentResponse {
    /// Why the prompt was blocked, if it was.
    fn block(&self) -> Option<&PromptFeedback> {
        self.prompt_feedback
            .as_ref()
            .filter(|feedback| feedback.block_reason.is_some())
    }
}

/// One answer to the prompt (kai asks for one).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Candidate {
    content: Option<CandidateContent>,
    finish_reason: Option<String>,
}

/// The parts of an answer.
#[derive(Debug, Deserialize)]
struct CandidateContent {
    #[serde(default)]
    parts: Vec<InPart>,
}

/// A part of an answer. Kinds kai does not read (code execution, generated files) are skipped.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct InPart {
    text: Option<String>,
    /// Set on a summary of the model's thinking, which is not part of the answer.
    #[serde(default)]
    thought: bool,
    function_call: Option<FunctionCallIn>,
}

/// A call the model made: whole, and without an id.
#[derive(Debug, Deserialize)]
struct FunctionCallIn {
    name: String,
    #[serde(default)]
    args: Option<Value>,
}

/// Why a prompt was refused outright.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromptFeedback {
    block_reason: Option<String>,
    block_reason_message: Option<String>,
}

/// Tokens counted.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UsageMetadata {
    #[serde(default)]
    prompt_token_count: u64,
    /// Tokens of results from Google's own tools, read as input.
    #[serde(default)]
    tool_use_prompt_token_count: u64,
    #[serde(default)]
    candidates_token_count: u64,
    /// Thinking, which is billed as output though not part of the answer.
    #[serde(default)]
    thoughts_token_count: u64,
}

impl UsageMetadata {
    fn usage(&self) -> Usage {
        Usage {
            input_tokens: self.prompt_token_count + self.tool_use_prompt_token_count,
            output_tokens: self.candidates_token_count + self.thoughts_token_count,
        }
    }
}

/// `{"error": {"code", "message", "status"}}` inside a stream.
#[derive(Debug, Deserialize)]
struct StreamError {
    code: Option<u16>,
    message: Option<String>,
    status: Option<String>,
}

impl StreamError {
    /// The error, classified by its code as an error answer would be.
    fn into_error(self) -> ProviderError {
        let message = format!(
            "the stream reported an error: {}",
            self.message
                .or(self.status)
                .unwrap_or_else(|| "no message".to_owned())
        );
        match self.code.filter(|code| (400..600).contains(code)) {
            Some(code) => ProviderError {
                // The answer's status was 200; the code is the stream's own.
                status: None,
                ..ProviderError::from_status(code, message, None)
            },
            None => ProviderError::new(ErrorKind::Server, message),
        }
    }
}

/// The refusal of a blocked prompt.
fn blocked(feedback: &PromptFeedback) -> ProviderError {
    let reason = feedback.block_reason.as_deref().unwrap_or("unspecified");
    let detail = feedback
        .block_reason_message
        .as_deref()
        .map(|message| format!(": {message}"))
        .unwrap_or_default();
    ProviderError::new(
        ErrorKind::ContentFiltered,
        format!("Gemini blocked the prompt (block reason {reason}){detail}"),
    )
}

/// Why the model stopped, given whether it called functions (Gemini says `STOP` either way).
fn finish_reason(reason: &str, called: bool) -> FinishReason {
    match reason {
        "STOP" if called => FinishReason::ToolCalls,
        "STOP" => FinishReason::Stop,
        "MAX_TOKENS" => FinishReason::Length,
        "SAFETY"
        | "RECITATION"
        | "BLOCKLIST"
        | "PROHIBITED_CONTENT"
        | "SPII"
        | "IMAGE_SAFETY"
        | "IMAGE_PROHIBITED_CONTENT" => FinishReason::ContentFilter,
        other => FinishReason::Other(other.to_owned()),
    }
}

/// Reads answers into events: a whole answer once, or a stream's chunks in turn. Calls are
/// numbered across chunks, which is where their ids come from.
#[derive(Debug, Default)]
struct Reader {
    /// Calls read so far: the next call's index.
    calls: u32,
    /// Whether a finish reason has come.
    finished: bool,
    /// The latest count: Gemini repeats usage in chunks, growing.
    usage: Option<Usage>,
}

impl Reader {
    /// Adds the events of `answer` to `out`, or fails with the error it reports.
    fn read(
        &mut self,
        answer: GenerateContentResponse,
        out: &mut Vec<ChatEvent>,
    ) -> Result<(), ProviderError> {
        if let Some(error) = answer.error {
            return Err(error.into_error());
        }
        if let Some(feedback) = answer.block() {
            return Err(blocked(feedback));
        }
        if let Some(usage) = &answer.usage_metadata {
            self.usage = Some(usage.usage());
        }
        let Some(candidate) = answer.candidates.into_iter().next() else {
            return Ok(());
        };
        for part in candidate.content.map(|c| c.parts).unwrap_or_default() {
            if let Some(call) = part.function_call {
                let arguments = call
                    .args
                    .unwrap_or_else(|| Value::Object(Map::new()))
                    .to_string();
                out.push(ChatEvent::ToolCall {
                    index: self.calls,
                    id: Some(format!("call_{}", self.calls)),
                    name: Some(call.name),
                    arguments,
                });
                self.calls += 1;
            } else if let Some(text) = part.text.filter(|t| !t.is_empty() && !part.thought) {
                out.push(ChatEvent::Text(text));
            }
        }
        if let Some(reason) = candidate.finish_reason
            && !self.finished
        {
            self.finished = true;
            out.push(ChatEvent::Finish(finish_reason(&reason, self.calls > 0)));
        }
        Ok(())
    }
}

/// `data: {GenerateContentResponse}` events until the connection closes: Gemini sends no end
/// marker, so the answer is whole only if a finish reason came.
#[derive(Debug, Default)]
pub(crate) struct Chunks {
    reader: Reader,
}

impl Decode<SseEvent> for Chunks {
    fn item(&mut self, event: SseEvent, out: &mut Vec<ChatEvent>) -> Result<bool, ProviderError> {
        let data = event.data.trim();
        if data.is_empty() {
            return Ok(false);
        }
        let chunk: GenerateContentResponse = parse_item(data)?;
        self.reader.read(chunk, out)?;
        // Read on after the finish reason: usage may still follow, and the server closes.
        Ok(false)
    }

    fn end(&mut self, out: &mut Vec<ChatEvent>, _complete: bool) -> Result<(), ProviderError> {
        if !self.reader.finished {
            return Err(ProviderError::new(
                ErrorKind::Interrupted,
                "the stream ended before Gemini said why the answer stopped",
            ));
        }
        out.extend(self.reader.usage.take().map(ChatEvent::Usage));
        Ok(())
    }
}

/// An embedding batch's answer.
#[derive(Debug, Deserialize)]
struct BatchEmbedResponse {
    #[serde(default)]
    embeddings: Vec<Embedding>,
}

/// One vector.
#[derive(Debug, Deserialize)]
struct Embedding {
    values: Vec<f32>,
}

/// A page of models.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ModelList {
    #[serde(default)]
    models: Vec<ListedModel>,
    next_page_token: Option<String>,
}

/// A listed model.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListedModel {
    /// `models/{id}`.
    name: String,
    supported_generation_methods: Option<Vec<String>>,
}

impl ListedModel {
    /// Whether kai can chat with it or embed with it. A model that lists no methods is kept.
    fn usable(&self) -> bool {
        self.supported_generation_methods
            .as_ref()
            .is_none_or(|methods| {
                methods.iter().any(|method| {
                    matches!(
                        method.as_str(),
                        "generateContent"
                            | "streamGenerateContent"
                            | "embedContent"
                            | "batchEmbedContents"
                    )
                })
            })
    }
}
