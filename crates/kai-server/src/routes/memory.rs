//! Memory: facts about the caller that chats and agents remember, sealed under the caller's
//! vault data key. With the vault locked these answer 503 `vault-locked`; nothing else is
//! affected.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use kai_core::{MemoryId, Scope};
use kai_knowledge::{MemoryEntry, MemorySource};
use kai_proto::{CreateMemoryRequest, Memory, MemoryList, MemoryListQuery, Problem};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, Auth, path_id};
use crate::state::AppState;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_memory, create_memory))
        .routes(routes!(delete_memory))
}

fn view(entry: MemoryEntry) -> Memory {
    let (kind, id) = match entry.source {
        MemorySource::User => ("user", None),
        MemorySource::Conversation(id) => ("conversation", Some(id)),
        MemorySource::Run(id) => ("run", Some(id)),
    };
    Memory {
        id: entry.id.as_uuid(),
        text: entry.text,
        source: kai_proto::MemorySource {
            kind: kind.into(),
            id,
        },
        supersedes: entry.supersedes.map(|id| id.as_uuid()),
        superseded_by: entry.superseded_by.map(|id| id.as_uuid()),
        relates_to: entry.relates_to.iter().map(|id| id.as_uuid()).collect(),
        created_at: entry.created_at,
    }
}

/// The caller's memory, oldest first: current entries, and with `history` the corrected ones
/// too. Needs `read`.
#[utoipa::path(get, path = "", tag = "knowledge", security(("bearer" = [])),
    params(MemoryListQuery),
    responses(
        (status = 200, description = "The entries", body = MemoryList),
        (status = 409, description = "The vault was never set up (`vault-not-initialized`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The vault is locked", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_memory(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiQuery(query): ApiQuery<MemoryListQuery>,
) -> Result<Json<MemoryList>, ApiError> {
    principal.require(Scope::Read)?;
    let entries = state
        .knowledge
        .memories(principal.user.id, query.history, query.q.as_deref())
        .await?;
    Ok(Json(MemoryList {
        memories: entries.into_iter().map(view).collect(),
    }))
}

/// Keeps a fact about the caller; with `supersedes`, as the correction of an earlier entry,
/// which stays as history. Needs `write`.
#[utoipa::path(post, path = "", tag = "knowledge", security(("bearer" = [])),
    request_body = CreateMemoryRequest,
    responses(
        (status = 201, description = "Kept", body = Memory),
        (status = 409, description = "What it supersedes or relates to is not a current entry of the caller's, or the vault was never set up (`vault-not-initialized`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The vault is locked", body = Problem, content_type = "application/problem+json"),
    ))]
async fn create_memory(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiJson(request): ApiJson<CreateMemoryRequest>,
) -> Result<Response, ApiError> {
    principal.require(Scope::Write)?;
    let source = match request.conversation_id {
        Some(id) => MemorySource::Conversation(id.to_string()),
        None => MemorySource::User,
    };
    let entry = state
        .knowledge
        .remember(
            principal.user.id,
            &request.text,
            source,
            request.supersedes.map(MemoryId::from),
            request.relates_to.into_iter().map(MemoryId::from).collect(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(view(entry))).into_response())
}

/// Forgets an entry for good; what it corrected is current again. Needs `write`.
#[utoipa::path(delete, path = "/{id}", tag = "knowledge", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The entry's id")),
    responses(
        (status = 204, description = "Forgotten"),
        (status = 404, description = "No such entry of this user", body = Problem, content_type = "application/problem+json"),
    ))]
async fn delete_memory(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    principal.require(Scope::Write)?;
    let id: MemoryId = path_id(&id, "memory")?;
    state.knowledge.forget(principal.user.id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
