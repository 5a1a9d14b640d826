//! kai's HTTP API, on axum.
//!
//! This crate is the only one that knows HTTP. It turns requests into calls on the services below
//! it ([`kai_trust::Trust`] for everything the audit log records, [`kai_gateway::Gateway`] for
//! models, the local [`kai_model_store::ModelStore`], and the accounts, vault and audit log for
//! what is only read) and their results into responses, and keeps the promises every endpoint shares: a request id on every
//! request, one log line and one set of metrics per request, a timeout, a body-size limit, and
//! errors that are always RFC 9457 problem documents.
//!
//! [`app`] builds the whole application as a [`Router`] that tests can drive directly; [`serve`]
//! runs it on a listener until a shutdown signal, then drains in-flight requests.

mod answers;
mod error;
mod extract;
mod metrics;
mod middleware;
mod openapi;
mod origin;
mod routes;
mod serve;
mod sse;
mod state;
mod web;
mod wire;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use kai_auth::Accounts;
use kai_gateway::Gateway;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use utoipa::Modify;
use utoipa_axum::router::OpenApiRouter;

pub use crate::error::{ApiError, PROBLEM_TYPE_PREFIX};
pub use crate::extract::{ApiJson, Auth, Client};
pub use crate::metrics::Metrics;
pub use crate::middleware::{REQUEST_ID, RequestId};
pub use crate::serve::serve;
pub use crate::state::{AppState, Services};

/// Every route of the API with its OpenAPI description, before middleware. Tests extend it with
/// routes of their own before passing it to [`app_from`].
#[must_use]
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::frame()).merge(routes::all())
}

/// The whole application: [`routes`] with the fallback, the middleware and the OpenAPI
/// document.
pub fn app(state: AppState) -> Router {
    app_from(routes(), state)
}

/// Like [`app`], from a given set of routes.
pub fn app_from(routes: OpenApiRouter<AppState>, state: AppState) -> Router {
    let (router, mut document) = routes.split_for_parts();
    openapi::CommonErrors.modify(&mut document);
    let json = document.to_pretty_json().unwrap_or_default();
    let _ = state.openapi.set(Bytes::from(json));
    let body_limit = usize::try_from(state.http.max_body_size.as_u64()).unwrap_or(usize::MAX);
    // Only the UI's files are compressed: compressing an event stream would hold its events
    // back until a block fills.
    let ui = tower::ServiceBuilder::new()
        .layer(CompressionLayer::new())
        .service(axum::routing::any(web::fallback));
    let cors = cors(&state.http);
    router
        .fallback_service(ui)
        // Layers apply bottom-up: the last added runs first.
        .layer(axum::middleware::from_fn(web::security_headers))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::timeout,
        ))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(CatchPanicLayer::custom(middleware::panic_response))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::request_context,
        ))
        .layer(tower::util::option_layer(cors))
        .with_state(state)
}

/// Cross-origin access for the pages `http.cors_origins` lists, if any: they may call the API
/// with a bearer token (no cookies: those stay with kai's own pages).
fn cors(http: &kai_config::HttpSettings) -> Option<CorsLayer> {
    let origins: Vec<http::HeaderValue> = http
        .cors_origin_list()
        .unwrap_or_default()
        .iter()
        .filter_map(|origin| http::HeaderValue::from_str(origin).ok())
        .collect();
    if origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([
                http::Method::GET,
                http::Method::POST,
                http::Method::PUT,
                http::Method::PATCH,
                http::Method::DELETE,
            ])
            .allow_headers([
                http::header::AUTHORIZATION,
                http::header::CONTENT_TYPE,
                http::header::ACCEPT,
                http::header::HeaderName::from_static("last-event-id"),
                REQUEST_ID.clone(),
            ])
            .expose_headers([REQUEST_ID.clone(), http::header::RETRY_AFTER])
            .max_age(Duration::from_secs(3600)),
    )
}

/// The OpenAPI document, as served at `/openapi.json`.
#[must_use]
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    let (_, mut document) = routes().split_for_parts();
    openapi::CommonErrors.modify(&mut document);
    document
}

/// Periodic upkeep while serving: deletes expired refresh tokens and sessions every `every`.
pub async fn maintain(accounts: Arc<Accounts>, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    loop {
        ticks.tick().await;
        match accounts.prune().await {
            Ok(0) => {}
            Ok(pruned) => tracing::debug!(pruned, "pruned expired refresh tokens"),
            Err(err) => tracing::warn!(error = %err, "pruning expired sessions failed"),
        }
    }
}

/// Picks up changes other processes made to the gateway's catalog, checking every `every`.
pub async fn follow_catalog(gateway: Gateway, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(err) = gateway.refresh().await {
            tracing::warn!(error = %err, "cannot check the model catalog for changes");
        }
    }
}
