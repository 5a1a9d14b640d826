//! User management, for admins: an admin account with a credential that has the `admin` scope.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use kai_audit::Actor;
use kai_auth::UserChanges;
use kai_core::UserId;
use kai_proto::{CreateUserRequest, Problem, Role, UpdateUserRequest, User};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::{ApiJson, Auth, path_id};
use crate::state::AppState;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user, update_user, delete_user))
}

/// Every user, oldest first.
#[utoipa::path(get, path = "", tag = "users", security(("bearer" = [])),
    responses((status = 200, description = "The users", body = Vec<User>)))]
async fn list_users(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> Result<Json<Vec<User>>, ApiError> {
    principal.require_admin()?;
    Ok(Json(
        state
            .accounts()
            .users()
            .await?
            .into_iter()
            .map(User::from)
            .collect(),
    ))
}

/// Creates a user (role `user` unless given).
#[utoipa::path(post, path = "", tag = "users", security(("bearer" = [])),
    request_body = CreateUserRequest,
    responses(
        (status = 201, description = "Created", body = User,
            headers(("location" = String, description = "The user's URL"))),
        (status = 409, description = "The name is taken", body = Problem, content_type = "application/problem+json"),
    ))]
async fn create_user(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiJson(request): ApiJson<CreateUserRequest>,
) -> Result<Response, ApiError> {
    principal.require_admin()?;
    let role = request.role.unwrap_or(Role::User).into();
    let user = state
        .trust
        .create_user(
            Actor::User(principal.user.id),
            &request.username,
            request.password.expose(),
            role,
        )
        .await?;
    let location = format!("/api/v1/users/{}", user.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(User::from(user)),
    )
        .into_response())
}

/// One user.
#[utoipa::path(get, path = "/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The user's id")),
    responses(
        (status = 200, description = "The user", body = User),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_user(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<Json<User>, ApiError> {
    principal.require_admin()?;
    let id: UserId = path_id(&id, "user")?;
    Ok(Json(state.accounts().user(id).await?.into()))
}

/// Changes a user's role, disables or re-enables them, or sets their password. Disabling and
/// setting a password end the user's sessions. The last enabled admin can be neither demoted
/// nor disabled.
#[utoipa::path(patch, path = "/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The user's id")),
    request_body = UpdateUserRequest,
    responses(
        (status = 200, description = "The changed user", body = User),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The change would leave no enabled admin", body = Problem, content_type = "application/problem+json"),
    ))]
async fn update_user(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<UpdateUserRequest>,
) -> Result<Json<User>, ApiError> {
    principal.require_admin()?;
    let id: UserId = path_id(&id, "user")?;
    let changes = UserChanges {
        role: request.role.map(Into::into),
        disabled: request.disabled,
        password: request
            .password
            .map(|password| password.expose().to_owned()),
    };
    let user = state
        .trust
        .update_user(Actor::User(principal.user.id), id, changes)
        .await?;
    Ok(Json(user.into()))
}

/// Deletes a user with everything they own. The last enabled admin cannot be deleted.
#[utoipa::path(delete, path = "/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The user's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The user is the last enabled admin", body = Problem, content_type = "application/problem+json"),
    ))]
async fn delete_user(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    principal.require_admin()?;
    let id: UserId = path_id(&id, "user")?;
    state
        .trust
        .delete_user(Actor::User(principal.user.id), id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
