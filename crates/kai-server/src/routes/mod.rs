//! One module per resource, each building its own router with its OpenAPI paths.

pub(crate) mod agents;
pub(crate) mod auth;
pub(crate) mod catalog;
pub(crate) mod conversations;
pub(crate) mod docs;
pub(crate) mod keys;
pub(crate) mod knowledge;
pub(crate) mod local_models;
pub(crate) mod mcp;
pub(crate) mod me;
pub(crate) mod memory;
pub(crate) mod notes;
pub(crate) mod openai;
pub(crate) mod operations;
pub(crate) mod trust;
pub(crate) mod usage;
pub(crate) mod users;
pub(crate) mod ws;

use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

/// Every documented route of the API.
pub(crate) fn all() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(operations::router())
        .merge(docs::router())
        .nest("/api/v1/auth", auth::router())
        .nest("/api/v1/me", me::router())
        .nest("/api/v1/keys", keys::router())
        .nest("/api/v1/users", users::router())
        .nest("/api/v1/providers", catalog::providers())
        .nest("/api/v1/models", catalog::models())
        .nest("/api/v1/usage", usage::router())
        .nest("/api/v1/conversations", conversations::router())
        .nest("/api/v1/local-models", local_models::router())
        .nest("/api/v1/artifacts", knowledge::artifacts())
        .nest("/api/v1/collections", knowledge::collections())
        .nest("/api/v1/notes", notes::router())
        .nest("/api/v1/memory", memory::router())
        .nest("/api/v1/search", knowledge::search())
        .nest("/api/v1/knowledge", knowledge::status())
        .nest("/api/v1/agents", agents::agents())
        .nest("/api/v1/runs", agents::runs())
        .nest("/api/v1/requests", agents::requests())
        .nest("/api/v1/prompts", agents::prompts())
        .nest("/api/v1/schedules", agents::schedules())
        .nest("/api/v1/vault", trust::vault())
        .nest("/api/v1/identity", trust::identity())
        .nest("/api/v1/secrets", trust::secrets())
        .nest("/api/v1/audit", trust::audit())
        .nest("/api/v1/ws", ws::router())
        .nest("/v1", openai::router())
        .nest("/mcp", mcp::router())
}
