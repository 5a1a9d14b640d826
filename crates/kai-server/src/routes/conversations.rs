//! Conversations: chats kept per user, listed, read, renamed, deleted and continued. Another
//! user's conversation is not found.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use kai_core::{ConversationId, Scope};
use kai_gateway::{Conversation, ConversationHistory};
use kai_models::chat::{Message, Role};
use kai_proto::openai::{ChatMessage, CompletionUsage};
use kai_proto::{
    ConversationChange, ConversationDetail, ConversationMessage, ConversationPage,
    ConversationPageQuery, ConversationReply, ConversationSummary, CreateConversationRequest,
    Problem, SendMessageRequest, UpdateConversationRequest,
};
use kai_providers::openai::{Dialect, message_to_wire};
use time::OffsetDateTime;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, Auth, caller, next_page_cursor, page_cursor, path_id};
use crate::middleware::RequestId;
use crate::state::AppState;
use crate::wire::ChunkEncoder;

/// The most conversations one page lists.
const MAX_PAGE: u32 = 200;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_conversations, create_conversation))
        .routes(routes!(
            get_conversation,
            rename_conversation,
            delete_conversation
        ))
        .routes(routes!(send_message))
}

fn summary(conversation: &Conversation) -> ConversationSummary {
    ConversationSummary {
        id: conversation.id.as_uuid(),
        title: conversation.title.clone(),
        model: conversation.model.clone(),
        message_count: conversation.message_count,
        created_at: conversation.created_at,
        updated_at: conversation.updated_at,
    }
}

fn kept_message(kept: &kai_gateway::ConversationMessage) -> ConversationMessage {
    ConversationMessage {
        seq: kept.seq,
        message: message_to_wire(&kept.message, Dialect::OpenAi),
        model: kept.model.clone(),
        created_at: kept.created_at,
    }
}

fn detail(history: &ConversationHistory) -> ConversationDetail {
    ConversationDetail {
        summary: summary(&history.conversation),
        messages: history.messages.iter().map(kept_message).collect(),
    }
}

/// Reads messages given in OpenAI's format, checked as a chat request's would be.
pub(crate) fn read_messages(messages: Vec<ChatMessage>) -> Result<Vec<Message>, ApiError> {
    if messages.is_empty() {
        return Ok(Vec::new());
    }
    let request = kai_proto::openai::ChatCompletionRequest {
        model: "-".into(),
        messages,
        ..Default::default()
    };
    crate::wire::chat_request(request)
        .map(|(request, _)| request.messages)
        .map_err(|invalid| {
            ApiError::invalid_field(
                invalid.param.as_deref().unwrap_or("messages"),
                invalid.message,
            )
        })
}

/// The current user's conversations, most recently active first. Needs `read`.
#[utoipa::path(get, path = "", tag = "conversations", security(("bearer" = [])),
    params(ConversationPageQuery),
    responses((status = 200, description = "A page of conversations", body = ConversationPage)))]
async fn list_conversations(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiQuery(query): ApiQuery<ConversationPageQuery>,
) -> Result<Json<ConversationPage>, ApiError> {
    principal.require(Scope::Read)?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "`limit` must be between 1 and {MAX_PAGE}"
        )));
    }
    let after = query
        .after
        .as_deref()
        .map(page_cursor::<ConversationId>)
        .transpose()?;
    let records = state
        .gateway
        .conversations(principal.user.id, limit, after)
        .await?;
    let next_after = (records.len() == limit as usize)
        .then(|| {
            records
                .last()
                .map(|last| next_page_cursor(last.updated_at, last.id))
        })
        .flatten();
    Ok(Json(ConversationPage {
        conversations: records.iter().map(summary).collect(),
        next_after,
    }))
}

/// Starts a conversation, empty or with messages. Needs `write`.
#[utoipa::path(post, path = "", tag = "conversations", security(("bearer" = [])),
    request_body = CreateConversationRequest,
    responses(
        (status = 201, description = "Created", body = ConversationDetail,
            headers(("location" = String, description = "The conversation's URL"))),
    ))]
async fn create_conversation(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiJson(request): ApiJson<CreateConversationRequest>,
) -> Result<Response, ApiError> {
    principal.require(Scope::Write)?;
    let messages = read_messages(request.messages)?;
    let conversation = state
        .gateway
        .create_conversation(
            principal.user.id,
            request.title.as_deref(),
            request.model.as_deref(),
            &messages,
        )
        .await?;
    state
        .events
        .conversation_changed(
            principal.user.id,
            conversation.conversation.id,
            ConversationChange::Created,
        )
        .await;
    Ok((
        StatusCode::CREATED,
        [(
            header::LOCATION,
            format!("/api/v1/conversations/{}", conversation.conversation.id),
        )],
        Json(detail(&conversation)),
    )
        .into_response())
}

/// One of the current user's conversations with its messages. Needs `read`.
#[utoipa::path(get, path = "/{id}", tag = "conversations", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The conversation's id")),
    responses(
        (status = 200, description = "The conversation", body = ConversationDetail),
        (status = 404, description = "No such conversation of this user", body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_conversation(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<Json<ConversationDetail>, ApiError> {
    principal.require(Scope::Read)?;
    let id: ConversationId = path_id(&id, "conversation")?;
    let conversation = state.gateway.conversation(principal.user.id, id).await?;
    Ok(Json(detail(&conversation)))
}

/// Renames one of the current user's conversations. Needs `write`.
#[utoipa::path(patch, path = "/{id}", tag = "conversations", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The conversation's id")),
    request_body = UpdateConversationRequest,
    responses(
        (status = 200, description = "Renamed", body = ConversationSummary),
        (status = 404, description = "No such conversation of this user", body = Problem, content_type = "application/problem+json"),
    ))]
async fn rename_conversation(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<UpdateConversationRequest>,
) -> Result<Json<ConversationSummary>, ApiError> {
    principal.require(Scope::Write)?;
    let id: ConversationId = path_id(&id, "conversation")?;
    let record = state
        .gateway
        .rename_conversation(principal.user.id, id, &request.title)
        .await?;
    state
        .events
        .conversation_changed(principal.user.id, id, ConversationChange::Renamed)
        .await;
    Ok(Json(summary(&record)))
}

/// Deletes one of the current user's conversations and its messages. Needs `write`.
#[utoipa::path(delete, path = "/{id}", tag = "conversations", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The conversation's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such conversation of this user", body = Problem, content_type = "application/problem+json"),
    ))]
async fn delete_conversation(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    principal.require(Scope::Write)?;
    let id: ConversationId = path_id(&id, "conversation")?;
    state
        .gateway
        .delete_conversation(principal.user.id, id)
        .await?;
    state
        .events
        .conversation_changed(principal.user.id, id, ConversationChange::Deleted)
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Continues a conversation: stores the user's message, asks the model with the whole history,
/// stores and returns its answer. With `"stream": true` the answer comes as server-sent events
/// in OpenAI's chunk format and is stored once complete (a client that disconnects cancels it,
/// and only its question is kept). Needs `write`.
#[utoipa::path(post, path = "/{id}/messages", tag = "conversations", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The conversation's id")),
    request_body = SendMessageRequest,
    responses(
        (status = 200, description = "The answer; with `stream`, `text/event-stream` of `ChatCompletionChunk`s", body = ConversationReply),
        (status = 404, description = "No such conversation of this user", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited or over budget", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "Every deployment failed", body = Problem, content_type = "application/problem+json"),
    ))]
async fn send_message(
    State(state): State<AppState>,
    Auth(principal): Auth,
    axum::Extension(RequestId(request_id)): axum::Extension<RequestId>,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<SendMessageRequest>,
) -> Result<Response, ApiError> {
    principal.require(Scope::Write)?;
    let id: ConversationId = path_id(&id, "conversation")?;
    let user_message = read_messages(vec![ChatMessage {
        role: Role::User.as_str().to_owned(),
        content: Some(request.content),
        name: None,
        tool_calls: None,
        tool_call_id: None,
        refusal: None,
    }])?;
    let mut turn = state
        .gateway
        .begin_turn(
            principal.user.id,
            id,
            &user_message,
            request.model.as_deref(),
        )
        .await?;
    state
        .events
        .conversation_changed(principal.user.id, id, ConversationChange::Message)
        .await;
    // The passages go to the model only: the conversation keeps the question and the answer.
    let sources = match request.knowledge {
        Some(options) => Some(
            crate::routes::openai::ground(&state, &principal, &mut turn.request.messages, options)
                .await?,
        ),
        None => None,
    };
    let caller = caller(&principal, request_id);
    let user = principal.user.id;
    if request.stream {
        let stream = state
            .gateway
            .chat_stream(&caller, &turn.model, &turn.request)
            .await?;
        let encoder = ChunkEncoder::new(
            &format!("chatcmpl-{}", uuid::Uuid::now_v7().simple()),
            stream.model(),
            OffsetDateTime::now_utc().unix_timestamp(),
            true,
        );
        let gateway = state.gateway.clone();
        let events = state.events.clone();
        let answered_by = stream.model().to_owned();
        let lead = sources.map(|sources| crate::routes::openai::sources_event(&sources));
        let stored =
            crate::routes::openai::sse_then(stream, encoder, lead, move |answer| async move {
                match gateway.finish_turn(user, id, &answer, &answered_by).await {
                    Ok(_) => {
                        events
                            .conversation_changed(user, id, ConversationChange::Message)
                            .await;
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "cannot store a conversation's answer")
                    }
                }
            });
        return Ok(stored);
    }
    let completed = state
        .gateway
        .chat(&caller, &turn.model, &turn.request)
        .await?;
    let stored = state
        .gateway
        .finish_turn(user, id, &completed.value.message, &completed.model)
        .await?;
    state
        .events
        .conversation_changed(user, id, ConversationChange::Message)
        .await;
    Ok(Json(ConversationReply {
        conversation_id: id.as_uuid(),
        model: completed.model,
        message: kept_message(&stored),
        usage: CompletionUsage {
            prompt_tokens: completed.usage.input_tokens,
            completion_tokens: completed.usage.output_tokens,
            total_tokens: completed.usage.total(),
        },
        sources,
    })
    .into_response())
}
