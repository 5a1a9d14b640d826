//! The caller's own account.

use axum::Json;
use axum::extract::State;
use http::StatusCode;
use kai_auth::Credential;
use kai_core::Scope;
use kai_proto::{AuthMethod, ChangePasswordRequest, Me, Problem};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::{ApiJson, Auth};
use crate::state::AppState;

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
    let (method, id) = match principal.credential {
        Credential::Session(session) => (AuthMethod::Session, session.as_uuid()),
        Credential::ApiKey(key) => (AuthMethod::ApiKey, key.as_uuid()),
    };
    Ok(Json(Me::new(
        principal.user.clone(),
        method,
        id,
        principal.scopes(),
    )))
}

/// Changes the current user's password and ends all their sessions, this one included; log in
/// again with the new password. API keys keep working. Needs a login session (not an API key)
/// with the `write` scope; a wrong current password counts towards the account's lockout.
#[utoipa::path(post, path = "/password", tag = "me", security(("bearer" = [])),
    request_body = ChangePasswordRequest,
    responses(
        (status = 204, description = "Password changed; every session ended"),
        (status = 403, description = "The current password is wrong, or the credential is an API key", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Locked after too many wrong passwords; see Retry-After", body = Problem, content_type = "application/problem+json"),
    ))]
async fn change_password(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiJson(request): ApiJson<ChangePasswordRequest>,
) -> Result<StatusCode, ApiError> {
    principal.require(Scope::Write)?;
    state
        .trust
        .change_password(
            &principal,
            request.current_password.expose(),
            request.new_password.expose(),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
