//! The caller's own account.

use axum::Json;
use axum::extract::State;
use http::StatusCode;
use kai_auth::Credential;
use kai_core::Scope;
use kai_proto::{ChangePasswordRequest, Me, Problem};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, Auth};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(change_password))
}

/// The current user, and the credential the request used. Needs the `read` scope.
#[utoipa::path(get, path = "", tag = "me", security(("bearer" = [])),
    responses((status = 200, description = "The current user", body = Me)))]
async fn me(Auth(principal): Auth) -> Result<Json<Me>, ApiError> {
    principal.require(Scope::Read)?;
    let scopes = principal.scopes();
    Ok(Json(match principal.credential {
        Credential::Session(session) => Me::from_session(principal.user, session, scopes),
        Credential::ApiKey(key) => Me::from_api_key(principal.user, key, scopes),
    }))
}

/// Changes the current user's password and ends all their sessions, this one included; log in
/// again with the new password. API keys keep working. Needs the `write` scope.
#[utoipa::path(post, path = "/password", tag = "me", security(("bearer" = [])),
    request_body = ChangePasswordRequest,
    responses(
        (status = 204, description = "Password changed; every session ended"),
        (status = 403, description = "The current password is wrong", body = Problem, content_type = "application/problem+json"),
    ))]
async fn change_password(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiJson(request): ApiJson<ChangePasswordRequest>,
) -> Result<StatusCode, ApiError> {
    principal.require(Scope::Write)?;
    state
        .accounts
        .change_password(
            principal.user.id,
            request.current_password.expose(),
            request.new_password.expose(),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
