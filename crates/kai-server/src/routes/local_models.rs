//! The local model store (`/api/v1/local-models`): models pulled onto the server's machine for
//! the embedded runtime. Anyone may list them; admins pull and remove them. A pull runs to the
//! end even if its client goes away, and is exempt from the request timeout.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use kai_core::Scope;
use kai_model_store::{PullOptions, PullOutcome, validate_name};
use kai_proto::{LocalModel, Problem, PullLocalModelRequest};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::{ApiJson, Auth};
use crate::state::AppState;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_local_models, pull_local_model))
        .routes(routes!(get_local_model, delete_local_model))
}

/// The models installed in the server's store, by name. Needs `read`.
#[utoipa::path(get, path = "", tag = "local-models", security(("bearer" = [])),
    responses((status = 200, description = "The installed models", body = Vec<LocalModel>)))]
async fn list_local_models(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> Result<Json<Vec<LocalModel>>, ApiError> {
    principal.require(Scope::Read)?;
    let store = state.models.clone();
    let models = blocking(move || store.list()).await?;
    Ok(Json(models.iter().map(LocalModel::from).collect()))
}

/// One installed model. Needs `read`.
#[utoipa::path(get, path = "/{name}", tag = "local-models", security(("bearer" = [])),
    params(("name" = String, Path, description = "The model's name in the store")),
    responses(
        (status = 200, description = "The model", body = LocalModel),
        (status = 404, description = "No such model is installed", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The model's manifest is damaged", body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_local_model(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(name): Path<String>,
) -> Result<Json<LocalModel>, ApiError> {
    principal.require(Scope::Read)?;
    let store = state.models.clone();
    let lookup = name.clone();
    let model = blocking(move || store.get(&lookup))
        .await?
        .ok_or_else(|| not_installed(&name))?;
    Ok(Json(LocalModel::from(&model)))
}

/// Pulls a model into the store and answers when it is installed: 201 with the model, or 200
/// when the same source was installed under the name already (and intact). Downloads resume
/// where an interrupted pull stopped. Admins only.
#[utoipa::path(post, path = "", tag = "local-models", security(("bearer" = [])),
    request_body = PullLocalModelRequest,
    responses(
        (status = 201, description = "Pulled and installed", body = LocalModel,
            headers(("location" = String, description = "The model's URL"))),
        (status = 200, description = "Already installed from this source; nothing was fetched", body = LocalModel),
        (status = 409, description = "The name is being pulled or removed already", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The model could not be fetched, or was not what its index listed", body = Problem, content_type = "application/problem+json"),
    ))]
async fn pull_local_model(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiJson(request): ApiJson<PullLocalModelRequest>,
) -> Result<Response, ApiError> {
    principal.require_admin()?;
    let (store, fetcher) = (state.models.clone(), state.fetcher.clone());
    let options = PullOptions {
        name: request.name,
        force: request.force,
    };
    let source = request.source;
    // A task of its own, so that a client that stops waiting does not cut the pull short.
    let outcome =
        tokio::spawn(async move { store.pull(&fetcher, &source, &options, &|_| {}).await })
            .await
            .map_err(|err| ApiError::internal(&err))??;
    match outcome {
        PullOutcome::Installed { model, replaced } => {
            // Offered as local/NAME from this answer on, not from the next catalog refresh.
            refresh_catalog(&state).await;
            tracing::info!(
                model = %model.manifest.name,
                source = %model.manifest.source,
                replaced,
                "local model pulled"
            );
            Ok((
                StatusCode::CREATED,
                [(
                    header::LOCATION,
                    format!("/api/v1/local-models/{}", model.manifest.name),
                )],
                Json(LocalModel::from(&model)),
            )
                .into_response())
        }
        PullOutcome::Unchanged(model) => Ok(Json(LocalModel::from(&model)).into_response()),
    }
}

/// Removes an installed model. Admins only.
#[utoipa::path(delete, path = "/{name}", tag = "local-models", security(("bearer" = [])),
    params(("name" = String, Path, description = "The model's name in the store")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such model is installed", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The model is being pulled", body = Problem, content_type = "application/problem+json"),
    ))]
async fn delete_local_model(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    principal.require_admin()?;
    if validate_name(&name).is_err() {
        return Err(not_installed(&name));
    }
    let store = state.models.clone();
    blocking(move || store.remove(&name)).await?;
    refresh_catalog(&state).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Rebuilds the gateway's catalog after the store changed. The store change stands whatever
/// happens here; a catalog that cannot be rebuilt now catches up at its periodic refresh.
async fn refresh_catalog(state: &AppState) {
    if let Err(err) = state.gateway.reload().await {
        tracing::warn!(error = %err, "the model catalog could not be rebuilt after a local model change");
    }
}

fn not_installed(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not-found",
        "Not found",
        format!(
            "no local model `{name}` is installed; GET /api/v1/local-models lists those that are"
        ),
    )
}

/// Runs store work that reads or deletes files off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, kai_model_store::StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| ApiError::internal(&err))?
        .map_err(ApiError::from)
}
