//! Knowledge: artifacts (uploaded as the request body, streamed to disk), their versions and
//! content, collections, search and indexing progress. Everything is the caller's own: another
//! user's artifact or collection is not found, whatever the caller's role.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use http::{HeaderValue, StatusCode, header};
use kai_core::{ArtifactId, CollectionId, Scope};
use kai_knowledge::{ArtifactMeta, KnowledgeError, Upload};
use kai_proto::{
    Artifact, ArtifactListQuery, ArtifactPage, ArtifactVersion, ArtifactVersions, Collection,
    CollectionList, ContentQuery, CreateCollectionRequest, DiffQuery, FusionMethod, IndexState,
    KnowledgeStatus, Passage, Problem, SearchHit, SearchMode, SearchRequest, SearchResponse,
    UpdateArtifactRequest, UploadQuery,
};
use kai_store::{ArtifactFilter, ArtifactRecord, ArtifactUpdate, ItemFilter, VersionRecord};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, Auth, next_page_cursor, page_cursor, path_id};
use crate::state::AppState;

/// The most artifacts one page lists.
const MAX_PAGE: u32 = 200;

pub(crate) fn artifacts() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_artifacts, upload_artifact))
        .routes(routes!(get_artifact, update_artifact, delete_artifact))
        .routes(routes!(list_versions, upload_version))
        .routes(routes!(artifact_content))
        .routes(routes!(artifact_diff))
}

pub(crate) fn collections() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_collections, create_collection))
        .routes(routes!(delete_collection))
}

pub(crate) fn search() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(search_knowledge))
}

pub(crate) fn status() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(knowledge_status))
}

pub(crate) fn index_state(state: kai_store::IndexState) -> IndexState {
    match state {
        kai_store::IndexState::Pending => IndexState::Pending,
        kai_store::IndexState::KeywordOnly => IndexState::KeywordOnly,
        kai_store::IndexState::Indexed => IndexState::Indexed,
        kai_store::IndexState::Failed => IndexState::Failed,
        kai_store::IndexState::Skipped => IndexState::Skipped,
        kai_store::IndexState::Superseded => IndexState::Superseded,
    }
}

fn version_view(version: &VersionRecord) -> ArtifactVersion {
    ArtifactVersion {
        version: version.version,
        blake3: version.blob_hash.clone(),
        size: version.size,
        mime: version.mime.clone(),
        file_name: version.file_name.clone(),
        created_by: version.created_by.clone(),
        created_at: version.created_at,
        index_state: index_state(version.index_state),
        index_error: version.index_error.clone(),
        chunk_count: version.chunk_count,
    }
}

fn artifact_view(record: &ArtifactRecord) -> Artifact {
    Artifact {
        id: record.id.as_uuid(),
        title: record.title.clone(),
        collection_id: record.collection_id.map(|c| c.as_uuid()),
        tags: record.tags.clone(),
        source: record.source.clone(),
        created_by: record.created_by.clone(),
        metadata: serde_json::from_str(&record.metadata)
            .unwrap_or_else(|_| serde_json::Value::Object(serde_json::Map::new())),
        created_at: record.created_at,
        updated_at: record.updated_at,
        current: version_view(&record.current),
    }
}

/// The request body as a reader that fails when the client sends nothing for `idle`: an
/// upload may take as long as it needs, as long as it keeps coming. `stalled` is set when
/// that is why it failed.
fn body_reader(
    body: Body,
    idle: Duration,
    stalled: Arc<AtomicBool>,
) -> impl tokio::io::AsyncRead + Unpin {
    let frames = futures_util::stream::unfold(
        (body.into_data_stream(), false),
        move |(mut stream, done)| {
            let stalled = stalled.clone();
            async move {
                if done {
                    return None;
                }
                match tokio::time::timeout(idle, stream.next()).await {
                    Ok(Some(Ok(bytes))) => Some((Ok(bytes), (stream, false))),
                    Ok(Some(Err(err))) => Some((Err(std::io::Error::other(err)), (stream, true))),
                    Ok(None) => None,
                    Err(_) => {
                        stalled.store(true, Ordering::Relaxed);
                        let err = std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            format!("no data for {}s", idle.as_secs()),
                        );
                        Some((Err(err), (stream, true)))
                    }
                }
            }
        },
    );
    tokio_util::io::StreamReader::new(Box::pin(frames))
}

fn upload_error(err: KnowledgeError, stalled: &AtomicBool, idle: Duration) -> ApiError {
    if stalled.load(Ordering::Relaxed) {
        return ApiError::body_timeout(idle);
    }
    err.into()
}

fn tags_from(text: Option<&str>) -> Vec<String> {
    text.map(|text| {
        text.split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect()
    })
    .unwrap_or_default()
}

/// Stores the request body as a new artifact and queues it for indexing. The body is the
/// content itself, of any type (kai sniffs it; `Content-Type` is not trusted), streamed to
/// disk, up to `knowledge.max_upload_size`. Needs `write`.
#[utoipa::path(post, path = "", tag = "knowledge", security(("bearer" = [])),
    params(UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
        description = "The content"),
    responses(
        (status = 201, description = "Stored; indexing follows in the background", body = Artifact,
            headers(("location" = String, description = "The artifact's URL"))),
        (status = 404, description = "No such collection of this user", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Larger than knowledge.max_upload_size", body = Problem, content_type = "application/problem+json"),
    ))]
async fn upload_artifact(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiQuery(query): ApiQuery<UploadQuery>,
    body: Body,
) -> Result<Response, ApiError> {
    principal.require(Scope::Write)?;
    let idle = state.http.request_timeout;
    let stalled = Arc::new(AtomicBool::new(false));
    let owner = principal.user.id;
    let record = state
        .knowledge
        .add_artifact(
            owner,
            Upload {
                body: body_reader(body, idle, stalled.clone()),
                file_name: query.name,
                created_by: format!("user:{owner}"),
            },
            ArtifactMeta {
                title: query.title,
                collection: query.collection.map(CollectionId::from),
                tags: tags_from(query.tags.as_deref()),
                source: query.source,
                metadata: None,
            },
        )
        .await
        .map_err(|err| upload_error(err, &stalled, idle))?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/api/v1/artifacts/{}", record.id))],
        Json(artifact_view(&record)),
    )
        .into_response())
}

/// Stores the request body as a new version of an artifact; the older version keeps answering
/// searches until the new one is indexed. Needs `write`.
#[utoipa::path(post, path = "/{id}/versions", tag = "knowledge", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The artifact's id"), UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
        description = "The content"),
    responses(
        (status = 201, description = "Stored; indexing follows in the background", body = Artifact),
        (status = 404, description = "No such artifact of this user", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Larger than knowledge.max_upload_size", body = Problem, content_type = "application/problem+json"),
    ))]
async fn upload_version(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<UploadQuery>,
    body: Body,
) -> Result<Response, ApiError> {
    principal.require(Scope::Write)?;
    let id: ArtifactId = path_id(&id, "artifact")?;
    if query.title.is_some()
        || query.collection.is_some()
        || query.tags.is_some()
        || query.source.is_some()
    {
        return Err(ApiError::bad_request(
            "a new version takes only `name`; change the title, tags or collection with \
             PATCH /api/v1/artifacts/{id}",
        ));
    }
    let idle = state.http.request_timeout;
    let stalled = Arc::new(AtomicBool::new(false));
    let owner = principal.user.id;
    let record = state
        .knowledge
        .add_version(
            owner,
            id,
            Upload {
                body: body_reader(body, idle, stalled.clone()),
                file_name: query.name,
                created_by: format!("user:{owner}"),
            },
        )
        .await
        .map_err(|err| upload_error(err, &stalled, idle))?;
    Ok((StatusCode::CREATED, Json(artifact_view(&record))).into_response())
}

/// The caller's artifacts, most recently changed first. Needs `read`.
#[utoipa::path(get, path = "", tag = "knowledge", security(("bearer" = [])),
    params(ArtifactListQuery),
    responses((status = 200, description = "A page of artifacts", body = ArtifactPage)))]
async fn list_artifacts(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiQuery(query): ApiQuery<ArtifactListQuery>,
) -> Result<Json<ArtifactPage>, ApiError> {
    principal.require(Scope::Read)?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "`limit` must be between 1 and {MAX_PAGE}"
        )));
    }
    if query.tag.as_deref().is_some_and(|tag| tag.contains('\0')) {
        return Err(ApiError::bad_request("`tag` holds a NUL character"));
    }
    let before = query
        .after
        .as_deref()
        .map(page_cursor::<ArtifactId>)
        .transpose()?;
    let records = state
        .knowledge
        .artifacts(
            principal.user.id,
            &ArtifactFilter {
                collection_id: query.collection.map(CollectionId::from),
                tag: query.tag,
                limit,
                before,
            },
        )
        .await?;
    let next_after = (records.len() == limit as usize)
        .then(|| {
            records
                .last()
                .map(|last| next_page_cursor(last.updated_at, last.id))
        })
        .flatten();
    Ok(Json(ArtifactPage {
        artifacts: records.iter().map(artifact_view).collect(),
        next_after,
    }))
}

/// One of the caller's artifacts. Needs `read`.
#[utoipa::path(get, path = "/{id}", tag = "knowledge", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The artifact's id")),
    responses(
        (status = 200, description = "The artifact", body = Artifact),
        (status = 404, description = "No such artifact of this user", body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_artifact(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<Json<Artifact>, ApiError> {
    principal.require(Scope::Read)?;
    let id: ArtifactId = path_id(&id, "artifact")?;
    let record = state.knowledge.artifact(principal.user.id, id).await?;
    Ok(Json(artifact_view(&record)))
}

/// Changes an artifact's title, tags, collection or metadata. Needs `write`.
#[utoipa::path(patch, path = "/{id}", tag = "knowledge", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The artifact's id")),
    request_body = UpdateArtifactRequest,
    responses(
        (status = 200, description = "Changed", body = Artifact),
        (status = 404, description = "No such artifact (or collection) of this user", body = Problem, content_type = "application/problem+json"),
    ))]
async fn update_artifact(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<UpdateArtifactRequest>,
) -> Result<Json<Artifact>, ApiError> {
    principal.require(Scope::Write)?;
    let id: ArtifactId = path_id(&id, "artifact")?;
    let update = ArtifactUpdate {
        title: request.title,
        collection_id: request
            .collection_id
            .map(|collection| collection.map(CollectionId::from)),
        tags: request.tags,
        metadata: request.metadata.map(|m| m.to_string()),
    };
    let record = state
        .knowledge
        .update(principal.user.id, id, update)
        .await?;
    Ok(Json(artifact_view(&record)))
}

/// Deletes an artifact with all its versions: gone from search at once. Needs `write`.
#[utoipa::path(delete, path = "/{id}", tag = "knowledge", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The artifact's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such artifact of this user", body = Problem, content_type = "application/problem+json"),
    ))]
async fn delete_artifact(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    principal.require(Scope::Write)?;
    let id: ArtifactId = path_id(&id, "artifact")?;
    state.knowledge.delete(principal.user.id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every version of an artifact, oldest first. Needs `read`.
#[utoipa::path(get, path = "/{id}/versions", tag = "knowledge", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The artifact's id")),
    responses(
        (status = 200, description = "Its versions", body = ArtifactVersions),
        (status = 404, description = "No such artifact of this user", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_versions(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<Json<ArtifactVersions>, ApiError> {
    principal.require(Scope::Read)?;
    let id: ArtifactId = path_id(&id, "artifact")?;
    let versions = state.knowledge.versions(principal.user.id, id).await?;
    Ok(Json(ArtifactVersions {
        versions: versions.iter().map(version_view).collect(),
    }))
}

/// The content of a version (the current one by default), as it was uploaded. Served as an
/// attachment, never rendered in the API's origin. Needs `read`.
#[utoipa::path(get, path = "/{id}/content", tag = "knowledge", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The artifact's id"), ContentQuery),
    responses(
        (status = 200, description = "The content, with the type kai sniffed from it", content_type = "*/*", body = Vec<u8>),
        (status = 404, description = "No such artifact or version of this user", body = Problem, content_type = "application/problem+json"),
    ))]
async fn artifact_content(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<ContentQuery>,
) -> Result<Response, ApiError> {
    principal.require(Scope::Read)?;
    let id: ArtifactId = path_id(&id, "artifact")?;
    let (version, file) = state
        .knowledge
        .content(principal.user.id, id, query.version)
        .await?;
    let file_name = version
        .file_name
        .as_deref()
        .unwrap_or("content")
        .replace(['"', '\\'], "_");
    let disposition = HeaderValue::from_str(&format!(
        "attachment; filename=\"{}\"",
        file_name.escape_default()
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    let content_type = HeaderValue::from_str(&version.mime)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file));
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CONTENT_LENGTH, HeaderValue::from(version.size)),
            (
                header::HeaderName::from_static("x-content-type-options"),
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("sandbox; default-src 'none'"),
            ),
        ],
        body,
    )
        .into_response())
}

/// The line differences between two text versions, as a unified diff. Needs `read`.
#[utoipa::path(get, path = "/{id}/diff", tag = "knowledge", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The artifact's id"), DiffQuery),
    responses(
        (status = 200, description = "A unified diff", content_type = "text/x-diff", body = String),
        (status = 404, description = "No such artifact or version of this user", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A version is not text", body = Problem, content_type = "application/problem+json"),
    ))]
async fn artifact_diff(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<DiffQuery>,
) -> Result<Response, ApiError> {
    principal.require(Scope::Read)?;
    let id: ArtifactId = path_id(&id, "artifact")?;
    let diff = state
        .knowledge
        .diff(principal.user.id, id, query.from, query.to)
        .await?;
    Ok(diff_response(diff))
}

/// A unified diff as the answer.
pub(crate) fn diff_response(diff: String) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/x-diff; charset=utf-8"),
        )],
        diff,
    )
        .into_response()
}

fn collection_view(record: &kai_store::CollectionRecord) -> Collection {
    Collection {
        id: record.id.as_uuid(),
        name: record.name.clone(),
        description: record.description.clone(),
        created_at: record.created_at,
    }
}

/// The caller's collections, by name. Needs `read`.
#[utoipa::path(get, path = "", tag = "knowledge", security(("bearer" = [])),
    responses((status = 200, description = "The collections", body = CollectionList)))]
async fn list_collections(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> Result<Json<CollectionList>, ApiError> {
    principal.require(Scope::Read)?;
    let records = state.knowledge.collections(principal.user.id).await?;
    Ok(Json(CollectionList {
        collections: records.iter().map(collection_view).collect(),
    }))
}

/// Makes a collection. Needs `write`.
#[utoipa::path(post, path = "", tag = "knowledge", security(("bearer" = [])),
    request_body = CreateCollectionRequest,
    responses(
        (status = 201, description = "Created", body = Collection),
        (status = 409, description = "The caller has a collection of that name", body = Problem, content_type = "application/problem+json"),
    ))]
async fn create_collection(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiJson(request): ApiJson<CreateCollectionRequest>,
) -> Result<Response, ApiError> {
    principal.require(Scope::Write)?;
    let record = state
        .knowledge
        .create_collection(principal.user.id, &request.name, &request.description)
        .await?;
    Ok((StatusCode::CREATED, Json(collection_view(&record))).into_response())
}

/// Deletes a collection; what was in it stays, in no collection. Needs `write`.
#[utoipa::path(delete, path = "/{id}", tag = "knowledge", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The collection's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such collection of this user", body = Problem, content_type = "application/problem+json"),
    ))]
async fn delete_collection(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    principal.require(Scope::Write)?;
    let id: CollectionId = path_id(&id, "collection")?;
    state
        .knowledge
        .delete_collection(principal.user.id, id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Searches the caller's knowledge by keyword, by meaning, or both (the default). Needs
/// `read`.
#[utoipa::path(post, path = "", tag = "knowledge", security(("bearer" = [])),
    request_body = SearchRequest,
    responses(
        (status = 200, description = "The hits, best first", body = SearchResponse),
        (status = 502, description = "The embedding model failed (semantic search)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn search_knowledge(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiJson(request): ApiJson<SearchRequest>,
) -> Result<Json<SearchResponse>, ApiError> {
    principal.require(Scope::Read)?;
    let limit = request.limit.unwrap_or(10);
    if !(1..=kai_knowledge::MAX_SEARCH_LIMIT as u32).contains(&limit) {
        return Err(ApiError::invalid_field(
            "limit",
            format!("must be from 1 to {}", kai_knowledge::MAX_SEARCH_LIMIT),
        ));
    }
    if let Some(kind) = &request.kind
        && kind != "artifact"
        && kind != "note"
    {
        return Err(ApiError::invalid_field(
            "kind",
            "must be `artifact` or `note`",
        ));
    }
    let query = kai_knowledge::SearchQuery {
        text: request.query,
        mode: match request.mode {
            SearchMode::Keyword => kai_knowledge::SearchMode::Keyword,
            SearchMode::Semantic => kai_knowledge::SearchMode::Semantic,
            SearchMode::Hybrid => kai_knowledge::SearchMode::Hybrid,
        },
        filter: ItemFilter {
            collections: request
                .collections
                .into_iter()
                .map(CollectionId::from)
                .collect(),
            tags: request.tags,
            kind: request.kind,
            mime_prefix: request.mime,
            since: request.since,
            until: request.until,
        },
        limit: limit as usize,
        fusion: request.fusion.map(|fusion| match fusion {
            FusionMethod::Rrf => kai_config::Fusion::Rrf,
            FusionMethod::Weighted => kai_config::Fusion::Weighted,
        }),
    };
    let results = state.knowledge.search(principal.user.id, &query).await?;
    let rank = |rank: Option<usize>| rank.map(|r| u32::try_from(r).unwrap_or(u32::MAX));
    Ok(Json(SearchResponse {
        hits: results
            .hits
            .into_iter()
            .map(|hit| SearchHit {
                item_id: hit.item_id.parse().unwrap_or_default(),
                kind: hit.item_kind,
                title: hit.title,
                version: hit.version,
                mime: hit.mime,
                heading: hit.heading,
                score: hit.score,
                keyword_rank: rank(hit.keyword_rank),
                vector_rank: rank(hit.vector_rank),
                passage: Passage {
                    text: hit.passage.text,
                    highlights: hit
                        .passage
                        .ranges
                        .into_iter()
                        .map(|r| [r.start, r.end])
                        .collect(),
                },
            })
            .collect(),
        degraded: results.degraded,
    }))
}

/// Indexing progress: the caller's versions by state, and the queue's jobs. Needs `read`.
#[utoipa::path(get, path = "/status", tag = "knowledge", security(("bearer" = [])),
    responses((status = 200, description = "Indexing progress", body = KnowledgeStatus)))]
async fn knowledge_status(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> Result<Json<KnowledgeStatus>, ApiError> {
    principal.require(Scope::Read)?;
    let progress = state.knowledge.progress(principal.user.id).await?;
    Ok(Json(KnowledgeStatus {
        search_index: progress.search_index.to_owned(),
        embedding_model: progress.embedding_model,
        vectors_from: progress.vectors_from,
        chunks: progress.chunks,
        chunks_embedded: progress.chunks_embedded,
        pending: progress.pending,
        keyword_only: progress.keyword_only,
        indexed: progress.indexed,
        failed: progress.failed,
        skipped: progress.skipped,
        jobs_queued: progress.jobs_queued,
        jobs_running: progress.jobs_running,
        jobs_dead: progress.jobs_dead,
    }))
}
