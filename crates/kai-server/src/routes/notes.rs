//! Notes: Markdown written in kai with tags, `[[wiki links]]`, backlinks, versions and
//! templates. Another user's note is not found.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use kai_core::{CollectionId, NoteId, Scope};
use kai_knowledge::{NoteChanges, NoteInput, NoteView};
use kai_proto::{
    Backlink, CreateNoteRequest, DiffQuery, Note, NoteLink, NoteList, NoteListQuery, NoteSummary,
    NoteVersion, NoteVersions, Problem, UpdateNoteRequest,
};
use kai_store::NoteRecord;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, Auth, path_id};
use crate::routes::knowledge::{diff_response, index_state};
use crate::state::AppState;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_notes, create_note))
        .routes(routes!(get_note, update_note, delete_note))
        .routes(routes!(note_versions))
        .routes(routes!(note_diff))
}

fn summary(note: &NoteRecord) -> NoteSummary {
    NoteSummary {
        id: note.id.as_uuid(),
        title: note.title.clone(),
        collection_id: note.collection_id.map(|c| c.as_uuid()),
        tags: note.tags.clone(),
        version: note.version,
        index_state: index_state(note.index_state),
        created_at: note.created_at,
        updated_at: note.updated_at,
    }
}

fn note_view(view: NoteView) -> Note {
    Note {
        summary: summary(&view.note),
        body: view.note.body,
        links: view
            .links
            .into_iter()
            .map(|link| NoteLink {
                kind: link.kind,
                target_id: link.target_id.and_then(|id| id.parse().ok()),
                title: link.title,
            })
            .collect(),
        backlinks: view
            .backlinks
            .into_iter()
            .map(|(id, title)| Backlink {
                id: id.as_uuid(),
                title,
            })
            .collect(),
    }
}

/// The caller's notes, most recently changed first. Needs `read`.
#[utoipa::path(get, path = "", tag = "knowledge", security(("bearer" = [])),
    params(NoteListQuery),
    responses((status = 200, description = "The notes", body = NoteList)))]
async fn list_notes(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiQuery(query): ApiQuery<NoteListQuery>,
) -> Result<Json<NoteList>, ApiError> {
    principal.require(Scope::Read)?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request("`limit` must be between 1 and 500"));
    }
    for (name, value) in [("title", &query.title), ("tag", &query.tag)] {
        if value.as_deref().is_some_and(|v| v.contains('\0')) {
            return Err(ApiError::bad_request(format!(
                "`{name}` holds a NUL character"
            )));
        }
    }
    let owner = principal.user.id;
    let notes = match &query.title {
        Some(title) => match state.knowledge.note_titled(owner, title).await {
            Ok(view) => vec![view.note],
            Err(kai_knowledge::KnowledgeError::NotFound(_)) => Vec::new(),
            Err(err) => return Err(err.into()),
        },
        None => {
            state
                .knowledge
                .notes(
                    owner,
                    query.collection.map(CollectionId::from),
                    query.tag.as_deref(),
                    limit,
                )
                .await?
        }
    };
    Ok(Json(NoteList {
        notes: notes.iter().map(summary).collect(),
    }))
}

/// Writes a note, from its body or from a template, and queues it for indexing. Needs
/// `write`.
#[utoipa::path(post, path = "", tag = "knowledge", security(("bearer" = [])),
    request_body = CreateNoteRequest,
    responses(
        (status = 201, description = "Written", body = Note,
            headers(("location" = String, description = "The note's URL"))),
        (status = 404, description = "No such template or collection of this user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The caller has a note of that title", body = Problem, content_type = "application/problem+json"),
    ))]
async fn create_note(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiJson(request): ApiJson<CreateNoteRequest>,
) -> Result<Response, ApiError> {
    principal.require(Scope::Write)?;
    let owner = principal.user.id;
    let view = state
        .knowledge
        .create_note(
            owner,
            NoteInput {
                title: request.title,
                body: request.body,
                template: request.template,
                variables: request.variables,
                tags: request.tags,
                collection: request.collection_id.map(CollectionId::from),
                created_by: format!("user:{owner}"),
                user_name: principal.user.username.as_str().to_owned(),
            },
        )
        .await?;
    let location = format!("/api/v1/notes/{}", view.note.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(note_view(view)),
    )
        .into_response())
}

/// One of the caller's notes with its body, links and backlinks. Needs `read`.
#[utoipa::path(get, path = "/{id}", tag = "knowledge", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The note's id")),
    responses(
        (status = 200, description = "The note", body = Note),
        (status = 404, description = "No such note of this user", body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_note(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<Json<Note>, ApiError> {
    principal.require(Scope::Read)?;
    let id: NoteId = path_id(&id, "note")?;
    Ok(Json(note_view(
        state.knowledge.note(principal.user.id, id).await?,
    )))
}

/// Changes a note; a new title or body is a new version. Needs `write`.
#[utoipa::path(patch, path = "/{id}", tag = "knowledge", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The note's id")),
    request_body = UpdateNoteRequest,
    responses(
        (status = 200, description = "Changed", body = Note),
        (status = 404, description = "No such note (or collection) of this user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The title is taken, or the note changed meanwhile", body = Problem, content_type = "application/problem+json"),
    ))]
async fn update_note(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<UpdateNoteRequest>,
) -> Result<Json<Note>, ApiError> {
    principal.require(Scope::Write)?;
    let id: NoteId = path_id(&id, "note")?;
    let owner = principal.user.id;
    let view = state
        .knowledge
        .update_note(
            owner,
            id,
            NoteChanges {
                title: request.title,
                body: request.body,
                tags: request.tags,
                collection: request.collection_id.map(|c| c.map(CollectionId::from)),
            },
            format!("user:{owner}"),
        )
        .await?;
    Ok(Json(note_view(view)))
}

/// Deletes a note with all its versions: gone from search at once. Needs `write`.
#[utoipa::path(delete, path = "/{id}", tag = "knowledge", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The note's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such note of this user", body = Problem, content_type = "application/problem+json"),
    ))]
async fn delete_note(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    principal.require(Scope::Write)?;
    let id: NoteId = path_id(&id, "note")?;
    state.knowledge.delete_note(principal.user.id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every version of a note, oldest first. Needs `read`.
#[utoipa::path(get, path = "/{id}/versions", tag = "knowledge", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The note's id")),
    responses(
        (status = 200, description = "Its versions", body = NoteVersions),
        (status = 404, description = "No such note of this user", body = Problem, content_type = "application/problem+json"),
    ))]
async fn note_versions(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<Json<NoteVersions>, ApiError> {
    principal.require(Scope::Read)?;
    let id: NoteId = path_id(&id, "note")?;
    let versions = state.knowledge.note_versions(principal.user.id, id).await?;
    Ok(Json(NoteVersions {
        versions: versions
            .into_iter()
            .map(|v| NoteVersion {
                version: v.version,
                title: v.title,
                body: v.body,
                created_by: v.created_by,
                created_at: v.created_at,
            })
            .collect(),
    }))
}

/// The line differences between two versions of a note, as a unified diff. Needs `read`.
#[utoipa::path(get, path = "/{id}/diff", tag = "knowledge", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The note's id"), DiffQuery),
    responses(
        (status = 200, description = "A unified diff", content_type = "text/x-diff", body = String),
        (status = 404, description = "No such note or version of this user", body = Problem, content_type = "application/problem+json"),
    ))]
async fn note_diff(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<DiffQuery>,
) -> Result<Response, ApiError> {
    principal.require(Scope::Read)?;
    let id: NoteId = path_id(&id, "note")?;
    let diff = state
        .knowledge
        .note_diff(principal.user.id, id, query.from, query.to)
        .await?;
    Ok(diff_response(diff))
}
