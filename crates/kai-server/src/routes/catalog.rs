//! The gateway's catalog, for admins: providers (`/api/v1/providers`) and the models routed
//! over them (`/api/v1/models`). Entries from the configuration file are listed but read-only;
//! entries made here are stored in the database and take effect at once, in every process
//! sharing it within seconds.

use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use kai_audit::Actor;
use kai_config::{
    CredentialRef, DeploymentSettings, ModelSettings, ProviderKind, ProviderSettings, Strategy,
};
use kai_gateway::{ModelEntry, ProviderEntry};
use kai_models::router::Health;
use kai_proto::{
    DeploymentDefinition, DeploymentStatus, ModelDefinition, ModelInfo, Problem, Provider,
    ProviderDefinition,
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::{ApiJson, Auth};
use crate::state::AppState;

pub(crate) fn providers() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_providers, create_provider))
        .routes(routes!(get_provider, replace_provider, delete_provider))
        .routes(routes!(provider_models))
}

pub(crate) fn models() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_catalog_models, create_model))
        .routes(routes!(get_model, replace_model, delete_model))
}

/// A provider as the gateway has it now.
fn provider_now(state: &AppState, name: &str) -> Result<Provider, ApiError> {
    let table = state.gateway.table();
    let entry = table
        .provider(name)
        .ok_or_else(|| ApiError::not_found("provider"))?;
    Ok(provider_view(entry))
}

/// A model as the gateway has it now.
fn model_now(state: &AppState, name: &str) -> Result<ModelInfo, ApiError> {
    let table = state.gateway.table();
    let entry = table
        .model(name)
        .ok_or_else(|| ApiError::not_found("model"))?;
    Ok(model_view(state, entry))
}

/// A replacement keeps its name: the one in the body must be the one in the path.
fn same_name(kind: &str, in_body: &str, in_path: &str) -> Result<(), ApiError> {
    if in_body == in_path {
        return Ok(());
    }
    Err(ApiError::invalid_field(
        "name",
        format!("must match the {kind}'s name in the path; to rename, add a new {kind}"),
    ))
}

fn provider_view(entry: &ProviderEntry) -> Provider {
    let s = &entry.settings;
    Provider {
        definition: ProviderDefinition {
            name: s.name.clone(),
            kind: s.kind.as_str().to_owned(),
            base_url: s.effective_base_url().map(|url| url.to_string()),
            api_key: s.api_key.as_ref().map(ToString::to_string),
            connect_timeout_s: Some(s.connect_timeout.as_secs_f64()),
            timeout_s: Some(s.timeout.as_secs_f64()),
            stream_idle_timeout_s: Some(s.stream_idle_timeout.as_secs_f64()),
            headers: s.headers.clone(),
        },
        source: entry.source.as_str().to_owned(),
        problem: entry.problem.clone(),
        created_at: entry.created_at,
    }
}

fn seconds(field: &str, value: Option<f64>, default: Duration) -> Result<Duration, ApiError> {
    match value {
        None => Ok(default),
        Some(s) if s.is_finite() && s > 0.0 && s <= 86_400.0 => Ok(Duration::from_secs_f64(s)),
        Some(_) => Err(ApiError::invalid_field(
            field,
            "must be a number of seconds above 0 and at most 86400",
        )),
    }
}

fn provider_settings(definition: ProviderDefinition) -> Result<ProviderSettings, ApiError> {
    let kind: ProviderKind = definition
        .kind
        .parse()
        .map_err(|message: String| ApiError::invalid_field("kind", message))?;
    let mut settings = ProviderSettings::new(definition.name, kind);
    settings.base_url = definition
        .base_url
        .map(|url| {
            url.parse()
                .map_err(|err| ApiError::invalid_field("base_url", format!("is not a URL ({err})")))
        })
        .transpose()?;
    settings.api_key = definition
        .api_key
        .map(|reference| {
            reference
                .parse::<CredentialRef>()
                .map_err(|message| ApiError::invalid_field("api_key", message))
        })
        .transpose()?;
    settings.connect_timeout = seconds(
        "connect_timeout_s",
        definition.connect_timeout_s,
        settings.connect_timeout,
    )?;
    settings.timeout = seconds("timeout_s", definition.timeout_s, settings.timeout)?;
    settings.stream_idle_timeout = seconds(
        "stream_idle_timeout_s",
        definition.stream_idle_timeout_s,
        settings.stream_idle_timeout,
    )?;
    settings.headers = definition.headers;
    Ok(settings)
}

/// Every provider: the configuration file's (read-only here) and those added through the API.
/// Credentials are shown as their references, never their values. Admins only.
#[utoipa::path(get, path = "", tag = "gateway", security(("bearer" = [])),
    responses((status = 200, description = "The providers", body = Vec<Provider>)))]
async fn list_providers(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> Result<Json<Vec<Provider>>, ApiError> {
    principal.require_admin()?;
    Ok(Json(
        state
            .gateway
            .table()
            .providers
            .iter()
            .map(provider_view)
            .collect(),
    ))
}

/// Adds a provider. Its `api_key` must be a reference (`env:NAME` or `file:PATH`) that
/// resolves on the server now. Admins only.
#[utoipa::path(post, path = "", tag = "gateway", security(("bearer" = [])),
    request_body = ProviderDefinition,
    responses(
        (status = 201, description = "Added", body = Provider,
            headers(("location" = String, description = "The provider's URL"))),
        (status = 409, description = "The name is taken", body = Problem, content_type = "application/problem+json"),
    ))]
async fn create_provider(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiJson(definition): ApiJson<ProviderDefinition>,
) -> Result<Response, ApiError> {
    principal.require_admin()?;
    let settings = provider_settings(definition)?;
    let name = settings.name.clone();
    state
        .trust
        .create_provider(Actor::User(principal.user.id), settings)
        .await?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/api/v1/providers/{name}"))],
        Json(provider_now(&state, &name)?),
    )
        .into_response())
}

/// One provider. Admins only.
#[utoipa::path(get, path = "/{name}", tag = "gateway", security(("bearer" = [])),
    params(("name" = String, Path, description = "The provider's name")),
    responses(
        (status = 200, description = "The provider", body = Provider),
        (status = 404, description = "No such provider", body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_provider(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(name): Path<String>,
) -> Result<Json<Provider>, ApiError> {
    principal.require_admin()?;
    Ok(Json(provider_now(&state, &name)?))
}

/// Replaces a provider added through the API (the name in the body must match the path).
/// Admins only.
#[utoipa::path(put, path = "/{name}", tag = "gateway", security(("bearer" = [])),
    params(("name" = String, Path, description = "The provider's name")),
    request_body = ProviderDefinition,
    responses(
        (status = 200, description = "Replaced", body = Provider),
        (status = 404, description = "No such provider", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Defined in the configuration file", body = Problem, content_type = "application/problem+json"),
    ))]
async fn replace_provider(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(name): Path<String>,
    ApiJson(definition): ApiJson<ProviderDefinition>,
) -> Result<Json<Provider>, ApiError> {
    principal.require_admin()?;
    same_name("provider", &definition.name, &name)?;
    state
        .trust
        .update_provider(
            Actor::User(principal.user.id),
            provider_settings(definition)?,
        )
        .await?;
    Ok(Json(provider_now(&state, &name)?))
}

/// Removes a provider added through the API; refused while a model routes to it. Admins only.
#[utoipa::path(delete, path = "/{name}", tag = "gateway", security(("bearer" = [])),
    params(("name" = String, Path, description = "The provider's name")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such provider", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "In use, or defined in the configuration file", body = Problem, content_type = "application/problem+json"),
    ))]
async fn delete_provider(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    principal.require_admin()?;
    state
        .trust
        .delete_provider(Actor::User(principal.user.id), &name)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The models the provider itself offers, asked of it now: names to use as a deployment's
/// `model`. Admins only.
#[utoipa::path(get, path = "/{name}/models", tag = "gateway", security(("bearer" = [])),
    params(("name" = String, Path, description = "The provider's name")),
    responses(
        (status = 200, description = "The provider's model names", body = Vec<String>),
        (status = 404, description = "No such provider", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The provider did not answer", body = Problem, content_type = "application/problem+json"),
    ))]
async fn provider_models(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(name): Path<String>,
) -> Result<Json<Vec<String>>, ApiError> {
    principal.require_admin()?;
    Ok(Json(state.gateway.upstream_models(&name).await?))
}

fn model_view(state: &AppState, entry: &ModelEntry) -> ModelInfo {
    let s = &entry.settings;
    let now = Instant::now();
    let status = state
        .gateway
        .deployment_status(&s.name)
        .unwrap_or_default()
        .into_iter()
        .map(|d| {
            let (state, retry_in_s) = match d.health {
                Health::Healthy => ("healthy", None),
                Health::Probing => ("probing", None),
                Health::CoolingDown { until } => (
                    "cooling_down",
                    Some(until.saturating_duration_since(now).as_secs_f64()),
                ),
            };
            DeploymentStatus {
                provider: d.provider,
                model: d.upstream_model,
                state: state.to_owned(),
                retry_in_s,
                in_flight: d.in_flight,
                ttft_ms: d.ttft.map(|t| t.as_secs_f64() * 1000.0),
                consecutive_failures: d.consecutive_failures,
                requests_last_minute: d.last_minute.0,
                tokens_last_minute: d.last_minute.1,
            }
        })
        .collect();
    ModelInfo {
        definition: ModelDefinition {
            name: s.name.clone(),
            strategy: Some(s.strategy.as_str().to_owned()),
            deployments: s
                .deployments
                .iter()
                .map(|d| DeploymentDefinition {
                    provider: d.provider.clone(),
                    model: d.model.clone(),
                    weight: Some(d.weight),
                    priority: d.priority,
                    rpm: d.rpm,
                    tpm: d.tpm,
                })
                .collect(),
            retries: Some(s.retries),
            fallbacks: s.fallbacks.clone(),
            context_window_fallbacks: s.context_window_fallbacks.clone(),
            content_policy_fallbacks: s.content_policy_fallbacks.clone(),
        },
        source: entry.source.as_str().to_owned(),
        status,
        created_at: entry.created_at,
    }
}

fn model_settings(definition: ModelDefinition) -> Result<ModelSettings, ApiError> {
    let deployments = definition
        .deployments
        .into_iter()
        .map(|d| {
            let mut settings = DeploymentSettings::new(d.provider, d.model);
            settings.weight = d.weight.unwrap_or(settings.weight);
            settings.priority = d.priority;
            settings.rpm = d.rpm;
            settings.tpm = d.tpm;
            settings
        })
        .collect();
    let mut settings = ModelSettings::new(definition.name, deployments);
    if let Some(strategy) = definition.strategy {
        settings.strategy = strategy
            .parse::<Strategy>()
            .map_err(|message| ApiError::invalid_field("strategy", message))?;
    }
    settings.retries = definition.retries.unwrap_or(settings.retries);
    settings.fallbacks = definition.fallbacks;
    settings.context_window_fallbacks = definition.context_window_fallbacks;
    settings.content_policy_fallbacks = definition.content_policy_fallbacks;
    Ok(settings)
}

/// Every model with its deployments and their live state (healthy, cooling down after
/// failures, or on trial), requests in flight and latency. Admins only; everyone may list the
/// names at `GET /v1/models`.
#[utoipa::path(get, path = "", tag = "gateway", security(("bearer" = [])),
    responses((status = 200, description = "The models", body = Vec<ModelInfo>)))]
async fn list_catalog_models(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> Result<Json<Vec<ModelInfo>>, ApiError> {
    principal.require_admin()?;
    let table = state.gateway.table();
    Ok(Json(
        table
            .models
            .iter()
            .map(|entry| model_view(&state, entry))
            .collect(),
    ))
}

/// Adds a model routed over providers that exist. Admins only.
#[utoipa::path(post, path = "", tag = "gateway", security(("bearer" = [])),
    request_body = ModelDefinition,
    responses(
        (status = 201, description = "Added", body = ModelInfo,
            headers(("location" = String, description = "The model's URL"))),
        (status = 409, description = "The name is taken", body = Problem, content_type = "application/problem+json"),
    ))]
async fn create_model(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiJson(definition): ApiJson<ModelDefinition>,
) -> Result<Response, ApiError> {
    principal.require_admin()?;
    let settings = model_settings(definition)?;
    let name = settings.name.clone();
    state
        .trust
        .create_model(Actor::User(principal.user.id), settings)
        .await?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/api/v1/models/{name}"))],
        Json(model_now(&state, &name)?),
    )
        .into_response())
}

/// One model with its deployments' live state. Admins only.
#[utoipa::path(get, path = "/{name}", tag = "gateway", security(("bearer" = [])),
    params(("name" = String, Path, description = "The model's name")),
    responses(
        (status = 200, description = "The model", body = ModelInfo),
        (status = 404, description = "No such model", body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_model(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(name): Path<String>,
) -> Result<Json<ModelInfo>, ApiError> {
    principal.require_admin()?;
    Ok(Json(model_now(&state, &name)?))
}

/// Replaces a model added through the API (the name in the body must match the path).
/// Admins only.
#[utoipa::path(put, path = "/{name}", tag = "gateway", security(("bearer" = [])),
    params(("name" = String, Path, description = "The model's name")),
    request_body = ModelDefinition,
    responses(
        (status = 200, description = "Replaced", body = ModelInfo),
        (status = 404, description = "No such model", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Defined in the configuration file", body = Problem, content_type = "application/problem+json"),
    ))]
async fn replace_model(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(name): Path<String>,
    ApiJson(definition): ApiJson<ModelDefinition>,
) -> Result<Json<ModelInfo>, ApiError> {
    principal.require_admin()?;
    same_name("model", &definition.name, &name)?;
    state
        .trust
        .update_model(Actor::User(principal.user.id), model_settings(definition)?)
        .await?;
    Ok(Json(model_now(&state, &name)?))
}

/// Removes a model added through the API; refused while another model falls back to it.
/// Admins only.
#[utoipa::path(delete, path = "/{name}", tag = "gateway", security(("bearer" = [])),
    params(("name" = String, Path, description = "The model's name")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such model", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "In use, or defined in the configuration file", body = Problem, content_type = "application/problem+json"),
    ))]
async fn delete_model(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    principal.require_admin()?;
    state
        .trust
        .delete_model(Actor::User(principal.user.id), &name)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
