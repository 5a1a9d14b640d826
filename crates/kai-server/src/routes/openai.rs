//! The OpenAI-compatible API under `/v1`: chat completions (whole or streamed), embeddings and
//! the model list, so programs written for OpenAI's SDKs work against kai unchanged. Errors
//! here take OpenAI's shape (see `middleware`).

use std::future::Future;

use crate::wire::{self, ChunkEncoder};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use http::HeaderValue;
use kai_core::Scope;
use kai_gateway::GatewayStream;
use kai_models::chat::Message;
use kai_proto::openai::{
    ChatCompletion, ChatCompletionRequest, EmbeddingRequest, EmbeddingResponse, ErrorDetail,
    ErrorResponse, Model, ModelList,
};
use kai_proto::{KnowledgeOptions, KnowledgeSource};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, public_text};
use crate::extract::{ApiJson, Auth, caller};
use crate::middleware::RequestId;
use crate::sse::EventStream;
use crate::state::AppState;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(chat_completions))
        .routes(routes!(embeddings))
        .routes(routes!(list_models))
        // Model names may hold slashes (`local/smollm2`), which OpenAI's SDKs put in the path
        // as they are: a wildcard route, documented in the document's frame (`openapi.rs`).
        .route("/models/{*id}", axum::routing::get(retrieve_model))
}

/// Creates a chat completion, OpenAI-style: messages with text and images, tools, structured
/// output (`response_format`), sampling parameters. With `"stream": true` the answer comes as
/// server-sent events, one [`ChatCompletionChunk`] each, ending with `data: [DONE]`; a client
/// that disconnects cancels the upstream request. Needs `write`.
///
/// Errors are OpenAI's `{"error": {"message", "type", "param", "code"}}`, where `code` is kai's
/// problem kind: `model_not_found`, `context_length_exceeded`, `rate_limited`,
/// `budget_exceeded`, `model_unavailable`, `upstream_failed`, `upstream_timeout`, … The message
/// names every deployment tried and why each failed.
#[utoipa::path(post, path = "/chat/completions", tag = "openai", security(("bearer" = [])),
    request_body = ChatCompletionRequest,
    responses(
        (status = 200, description = "The completion; with `stream`, `text/event-stream` of `ChatCompletionChunk`s", body = ChatCompletion,
            headers(("x-kai-model" = String, description = "The model that answered (a fallback, if one did)"),
                    ("x-kai-provider" = String, description = "The provider that answered"))),
        (status = 404, description = "No such model", body = ErrorResponse),
        (status = 429, description = "Rate limited or over budget", body = ErrorResponse,
            headers(("retry-after" = u64, description = "Seconds to wait"))),
        (status = 502, description = "Every deployment failed", body = ErrorResponse),
        (status = 503, description = "Every deployment is cooling down", body = ErrorResponse),
        (status = 504, description = "The provider timed out", body = ErrorResponse),
    ))]
async fn chat_completions(
    State(state): State<AppState>,
    Auth(principal): Auth,
    axum::Extension(RequestId(request_id)): axum::Extension<RequestId>,
    ApiJson(mut body): ApiJson<ChatCompletionRequest>,
) -> Result<Response, ApiError> {
    principal.require(Scope::Write)?;
    let knowledge = body.knowledge.take();
    let (mut request, delivery) = wire::chat_request(body)
        .map_err(|invalid| ApiError::invalid_request(invalid.param, invalid.message))?;
    let sources = match knowledge {
        Some(options) => Some(ground(&state, &principal, &mut request.messages, options).await?),
        None => None,
    };
    let caller = caller(&principal, request_id);
    let model = request.model.clone();
    let id = format!("chatcmpl-{}", uuid::Uuid::now_v7().simple());
    let created = time::OffsetDateTime::now_utc().unix_timestamp();
    if delivery.stream {
        let stream = state.gateway.chat_stream(&caller, &model, &request).await?;
        let answered = (stream.model().to_owned(), stream.provider().to_owned());
        let lead = sources.map(|sources| sources_event(&sources));
        let encoder = ChunkEncoder::new(&id, &answered.0, created, delivery.include_usage);
        let mut response = sse_then(stream, encoder, lead, |_| async {});
        label(&mut response, &answered.0, &answered.1);
        return Ok(response);
    }
    let completed = state.gateway.chat(&caller, &model, &request).await?;
    let mut answer = completed.value;
    answer.usage = Some(completed.usage);
    let mut body = wire::completion(&answer, &id, &completed.model, created);
    body.sources = sources;
    let mut response = Json(body).into_response();
    label(&mut response, &completed.model, &completed.provider);
    Ok(response)
}

/// Says which model and provider answered, for clients that care.
fn label(response: &mut Response, model: &str, provider: &str) {
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(model) {
        headers.insert("x-kai-model", value);
    }
    if let Ok(value) = HeaderValue::from_str(provider) {
        headers.insert("x-kai-provider", value);
    }
}

/// The event that opens a grounded stream: a chunk with no choices (as the usage chunk has
/// none) and the sources, so that a client can show them while the answer streams.
pub(crate) fn sources_event(sources: &[KnowledgeSource]) -> Bytes {
    let chunk = serde_json::json!({
        "object": "chat.completion.chunk",
        "choices": [],
        "sources": sources,
    });
    Bytes::from(format!("data: {chunk}\n\n"))
}

/// Finds the passages a chat request asked for with `knowledge` and puts them in its prompt;
/// returns them as the answer's sources.
pub(crate) async fn ground(
    state: &AppState,
    principal: &kai_auth::Principal,
    messages: &mut Vec<Message>,
    options: KnowledgeOptions,
) -> Result<Vec<KnowledgeSource>, ApiError> {
    let limit = options.limit.unwrap_or(5);
    if !(1..=kai_knowledge::MAX_SOURCES as u32).contains(&limit) {
        return Err(ApiError::invalid_request(
            Some("knowledge.limit".into()),
            format!("must be from 1 to {}", kai_knowledge::MAX_SOURCES),
        ));
    }
    let grounding = kai_knowledge::Grounding {
        collections: options
            .collections
            .into_iter()
            .map(kai_core::CollectionId::from)
            .collect(),
        limit: limit as usize,
        memory: options.memory,
    };
    let grounded = state
        .knowledge
        .ground(principal.user.id, messages, &grounding)
        .await
        .map_err(|err| match err {
            kai_knowledge::KnowledgeError::NotFound(what) => ApiError::invalid_request(
                Some("knowledge.collections".into()),
                format!("{what} is not one of yours; GET /api/v1/collections lists them"),
            ),
            other => other.into(),
        })?;
    Ok(grounded
        .sources
        .into_iter()
        .map(|source| KnowledgeSource {
            number: u32::try_from(source.number).unwrap_or(u32::MAX),
            item_id: source.item_id.parse().unwrap_or_default(),
            title: source.title,
            version: source.version,
            heading: source.heading,
            text: source.text,
            score: source.score,
        })
        .collect())
}

/// Server-sent events in OpenAI's chunk format, after `lead` (an event of its own) when given,
/// handing the whole answer to `on_complete` once the stream has ended well and before the
/// client reads `[DONE]`. A failure after the first chunk is sent as an event holding OpenAI's
/// error object, which its SDKs raise.
pub(crate) fn sse_then<F, Fut>(
    stream: GatewayStream,
    encoder: ChunkEncoder,
    lead: Option<Bytes>,
    on_complete: F,
) -> Response
where
    F: FnOnce(Message) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let start = Some((stream, encoder, Some(on_complete)));
    let events = futures_util::stream::unfold(start, |state| async move {
        let (mut stream, mut encoder, on_complete) = state?;
        // Room for the usual one or two chunks of an event.
        let mut out = Vec::with_capacity(512);
        match stream.next().await {
            Some(Ok(event)) => {
                encoder.write(&event, &mut out);
                Some((Bytes::from(out), Some((stream, encoder, on_complete))))
            }
            Some(Err(err)) => {
                let error = ErrorResponse {
                    error: ErrorDetail {
                        message: public_text(format!(
                            "the answer broke off: {}/{} failed: {err}",
                            stream.provider(),
                            stream.upstream_model()
                        )),
                        kind: "upstream_error".into(),
                        param: None,
                        code: Some(err.kind.as_str().to_owned()),
                    },
                };
                wire::write_stream_error(&mut out, &error);
                Some((Bytes::from(out), None))
            }
            None => {
                if let Some(on_complete) = on_complete {
                    on_complete(stream.response().message).await;
                }
                encoder.finish(stream.usage(), &mut out);
                Some((Bytes::from(out), None))
            }
        }
    });
    EventStream::new(futures_util::stream::iter(lead).chain(events)).into_response()
}

/// Creates embeddings of one text or a list of texts, as floats or, with
/// `"encoding_format": "base64"` (what OpenAI's SDKs ask for), as base64 of little-endian
/// 32-bit floats. Token-id input is refused. Needs `write`.
#[utoipa::path(post, path = "/embeddings", tag = "openai", security(("bearer" = [])),
    request_body = EmbeddingRequest,
    responses(
        (status = 200, description = "One embedding per input, in order", body = EmbeddingResponse),
        (status = 404, description = "No such model", body = ErrorResponse),
        (status = 429, description = "Rate limited or over budget", body = ErrorResponse),
        (status = 502, description = "Every deployment failed", body = ErrorResponse),
    ))]
async fn embeddings(
    State(state): State<AppState>,
    Auth(principal): Auth,
    axum::Extension(RequestId(request_id)): axum::Extension<RequestId>,
    ApiJson(body): ApiJson<EmbeddingRequest>,
) -> Result<Response, ApiError> {
    principal.require(Scope::Write)?;
    let (request, encoding) = wire::embed_request(body)
        .map_err(|invalid| ApiError::invalid_request(invalid.param, invalid.message))?;
    let caller = caller(&principal, request_id);
    let model = request.model.clone();
    let completed = state.gateway.embed(&caller, &model, &request).await?;
    let mut answer = completed.value;
    answer.usage = Some(completed.usage);
    let mut response = Json(wire::embeddings(&answer, &completed.model, encoding)).into_response();
    label(&mut response, &completed.model, &completed.provider);
    Ok(response)
}

fn model_object(entry: &kai_gateway::ModelEntry) -> Model {
    Model {
        id: entry.settings.name.clone(),
        object: "model".into(),
        created: entry.created_at.unix_timestamp(),
        owned_by: "kai".into(),
    }
}

/// One model clients may name (the name may contain slashes). Needs `read`.
#[utoipa::path(get, path = "/v1/models/{id}", tag = "openai", security(("bearer" = [])),
    params(("id" = String, Path, description = "The model's name")),
    responses(
        (status = 200, description = "The model", body = Model),
        (status = 404, description = "No such model", body = ErrorResponse),
    ))]
pub(crate) async fn retrieve_model(
    State(state): State<AppState>,
    Auth(principal): Auth,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Json<Model>, ApiError> {
    principal.require(Scope::Read)?;
    let table = state.gateway.table();
    let entry = table.model(&id).ok_or_else(|| {
        ApiError::new(
            http::StatusCode::NOT_FOUND,
            "model-not-found",
            "Model not found",
            format!("there is no model named `{id}` (GET /v1/models lists them)"),
        )
    })?;
    Ok(Json(model_object(entry)))
}

/// The models clients may name, in configuration order. Needs `read`.
#[utoipa::path(get, path = "/models", tag = "openai", security(("bearer" = [])),
    responses((status = 200, description = "The models", body = ModelList)))]
async fn list_models(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> Result<Json<ModelList>, ApiError> {
    principal.require(Scope::Read)?;
    let table = state.gateway.table();
    let data = table.models.iter().map(model_object).collect();
    Ok(Json(ModelList {
        object: "list".into(),
        data,
    }))
}
