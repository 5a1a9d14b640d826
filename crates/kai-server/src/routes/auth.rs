//! Logging in and out, and refreshing tokens.

use axum::Json;
use axum::extract::State;
use http::StatusCode;
use kai_auth::TokenPair;
use kai_proto::{LoginRequest, LogoutRequest, Problem, RefreshRequest, TokenResponse};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::{ApiJson, Client};
use crate::state::AppState;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
}

fn token_response(pair: TokenPair) -> Json<TokenResponse> {
    Json(TokenResponse {
        access_token: pair.access_token,
        refresh_token: pair.refresh_token,
        token_type: "Bearer".into(),
        expires_in: pair.expires_in,
    })
}

/// Logs in with a user name and password, returning an access token and a refresh token.
///
/// Repeated failures lock the account for `auth.lockout_duration`, and throttle the client
/// address; both answer 429 with `Retry-After`.
#[utoipa::path(post, path = "/login", tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = TokenResponse),
        (status = 401, description = "Wrong user name or password", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The account is disabled", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Locked out after too many failures; see Retry-After", body = Problem, content_type = "application/problem+json"),
    ))]
async fn login(
    State(state): State<AppState>,
    Client(client): Client,
    ApiJson(request): ApiJson<LoginRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    let pair = state
        .trust
        .login(&request.username, request.password.expose(), client)
        .await?;
    Ok(token_response(pair))
}

/// Exchanges a refresh token for a new access token and a new refresh token.
///
/// Each refresh token works once. Presenting a spent one again ends its whole session: it
/// means the token was copied.
#[utoipa::path(post, path = "/refresh", tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "New tokens", body = TokenResponse),
        (status = 401, description = "The refresh token is unknown, expired, reused or its session ended", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The account is disabled", body = Problem, content_type = "application/problem+json"),
    ))]
async fn refresh(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<RefreshRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    let pair = state
        .accounts()
        .refresh(request.refresh_token.expose())
        .await?;
    Ok(token_response(pair))
}

/// Ends the session a refresh token belongs to: its access tokens stop working at once.
#[utoipa::path(post, path = "/logout", tag = "auth",
    request_body = LogoutRequest,
    responses(
        (status = 204, description = "Logged out"),
        (status = 401, description = "The refresh token is unknown", body = Problem, content_type = "application/problem+json"),
    ))]
async fn logout(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<LogoutRequest>,
) -> Result<StatusCode, ApiError> {
    state
        .accounts()
        .logout(request.refresh_token.expose())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
