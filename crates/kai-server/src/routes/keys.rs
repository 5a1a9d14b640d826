//! API keys: credentials for programs.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use kai_auth::Credential;
use kai_core::{ApiKeyId, Budget, BudgetLimit, BudgetPeriod, Scope, Scopes};
use kai_proto::{ApiKey, CreateApiKeyRequest, CreatedApiKey, KeyBudget, KeyBudgets, Problem};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::{ApiJson, Auth, path_id};
use crate::state::AppState;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_keys, create_key))
        .routes(routes!(get_key, revoke_key))
        .routes(routes!(get_budgets, set_budgets))
}

/// The current user's API keys, revoked ones included. Needs `read`.
#[utoipa::path(get, path = "", tag = "keys", security(("bearer" = [])),
    responses((status = 200, description = "The keys, oldest first", body = Vec<ApiKey>)))]
async fn list_keys(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> Result<Json<Vec<ApiKey>>, ApiError> {
    principal.require(Scope::Read)?;
    let keys = state.accounts().api_keys(principal.user.id).await?;
    Ok(Json(keys.into_iter().map(ApiKey::from).collect()))
}

/// Creates an API key. The key itself is in this response and never again: store it now.
/// Needs a login session (an API key cannot create keys, so a leaked one cannot mint others
/// that outlive it) with the `write` scope; the new key cannot have a scope the session lacks.
#[utoipa::path(post, path = "", tag = "keys", security(("bearer" = [])),
    request_body = CreateApiKeyRequest,
    responses(
        (status = 201, description = "Created; `key` is the secret", body = CreatedApiKey,
            headers(("location" = String, description = "The key's URL"))),
    ))]
async fn create_key(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiJson(request): ApiJson<CreateApiKeyRequest>,
) -> Result<Response, ApiError> {
    principal.require(Scope::Write)?;
    let scopes: Scopes = request.scopes.into_iter().map(Scope::from).collect();
    let (key, secret) = state
        .trust
        .create_api_key(&principal, &request.name, scopes, request.expires_at)
        .await?;
    let location = format!("/api/v1/keys/{}", key.id);
    let body = CreatedApiKey {
        key: secret,
        api_key: key.into(),
    };
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(body),
    )
        .into_response())
}

/// One of the current user's API keys. Another user's key is not found. Needs `read`.
#[utoipa::path(get, path = "/{id}", tag = "keys", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The key's id")),
    responses(
        (status = 200, description = "The key", body = ApiKey),
        (status = 404, description = "No such key of this user", body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_key(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<Json<ApiKey>, ApiError> {
    principal.require(Scope::Read)?;
    let id: ApiKeyId = path_id(&id, "API key")?;
    Ok(Json(
        state
            .accounts()
            .api_key(principal.user.id, id)
            .await?
            .into(),
    ))
}

/// Revokes one of the current user's API keys: it stops working at once. Revoking twice is not
/// an error. Another user's key is not found. Needs `write`.
#[utoipa::path(delete, path = "/{id}", tag = "keys", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The key's id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "No such key of this user", body = Problem, content_type = "application/problem+json"),
    ))]
async fn revoke_key(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    principal.require(Scope::Write)?;
    let id: ApiKeyId = path_id(&id, "API key")?;
    state.trust.revoke_api_key(&principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// One of the current user's API keys' budgets: spending limits after which its model
/// requests are refused with 429 until the period (a UTC day or month) resets. Needs `read`.
#[utoipa::path(get, path = "/{id}/budgets", tag = "keys", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The key's id")),
    responses(
        (status = 200, description = "The key's budgets", body = KeyBudgets),
        (status = 404, description = "No such key of this user", body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_budgets(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<Json<KeyBudgets>, ApiError> {
    principal.require(Scope::Read)?;
    let id: ApiKeyId = path_id(&id, "API key")?;
    state.accounts().api_key(principal.user.id, id).await?;
    let budgets = state.gateway.budgets(id).await?;
    Ok(Json(KeyBudgets {
        budgets: budgets
            .into_iter()
            .map(|budget| match budget.limit {
                BudgetLimit::Tokens(tokens) => KeyBudget {
                    period: budget.period.as_str().to_owned(),
                    tokens: Some(tokens),
                    usd: None,
                },
                BudgetLimit::UsdMicros(micros) => KeyBudget {
                    period: budget.period.as_str().to_owned(),
                    tokens: None,
                    usd: Some(micros as f64 / 1e6),
                },
            })
            .collect(),
    }))
}

/// Replaces the budgets of one of the current user's API keys: at most one token and one
/// dollar budget per period; an empty list removes them. Needs a login session with `write`
/// (a key cannot lift its own limits).
#[utoipa::path(put, path = "/{id}/budgets", tag = "keys", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The key's id")),
    request_body = KeyBudgets,
    responses(
        (status = 200, description = "The key's budgets now", body = KeyBudgets),
        (status = 404, description = "No such key of this user", body = Problem, content_type = "application/problem+json"),
    ))]
async fn set_budgets(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<KeyBudgets>,
) -> Result<Json<KeyBudgets>, ApiError> {
    principal.require(Scope::Write)?;
    if !matches!(principal.credential, Credential::Session(_)) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Forbidden",
            "budgets are set from a login session, not with an API key",
        ));
    }
    let id: ApiKeyId = path_id(&id, "API key")?;
    state.accounts().api_key(principal.user.id, id).await?;
    let mut budgets = Vec::new();
    for (i, budget) in request.budgets.iter().enumerate() {
        let field = |name: &str| format!("budgets[{i}].{name}");
        let period = BudgetPeriod::parse(&budget.period)
            .map_err(|message| ApiError::invalid_field(&field("period"), message))?;
        let limit = match (budget.tokens, budget.usd) {
            // Counts are stored as signed 64-bit integers.
            (Some(tokens), None) if tokens > i64::MAX as u64 => {
                return Err(ApiError::invalid_field(
                    &field("tokens"),
                    format!("must be at most {}", i64::MAX),
                ));
            }
            (Some(tokens), None) if tokens > 0 => BudgetLimit::Tokens(tokens),
            (None, Some(usd)) if usd.is_finite() && usd > 0.0 && usd < 1e12 => {
                BudgetLimit::UsdMicros((usd * 1e6).round() as u64)
            }
            (Some(_), Some(_)) | (None, None) => {
                return Err(ApiError::invalid_field(
                    &format!("budgets[{i}]"),
                    "give either `tokens` or `usd`",
                ));
            }
            _ => {
                return Err(ApiError::invalid_field(
                    &format!("budgets[{i}]"),
                    "the limit must be above zero",
                ));
            }
        };
        budgets.push(Budget { period, limit });
    }
    state.gateway.set_budgets(id, &budgets).await?;
    get_budgets(State(state), Auth(principal), Path(id.to_string())).await
}
