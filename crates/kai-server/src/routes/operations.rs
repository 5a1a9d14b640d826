//! What operators and their machines poll: liveness, readiness, metrics.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use kai_config::DatabaseKind;
use kai_proto::{Health, Problem, Readiness};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::metrics::METRICS_CONTENT_TYPE;
use crate::state::AppState;

/// How long readiness waits for the database: a probe must answer quickly even when the
/// database does not.
const READINESS_TIMEOUT: Duration = Duration::from_secs(2);

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
}

/// Liveness: the process is up and serving HTTP. It checks nothing else, so that a slow
/// database does not get a healthy process restarted.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process is alive", body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness: the database answers and its schema is current.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready to serve", body = Readiness),
        (status = 503, description = "Not ready: the database is unreachable or its schema is not current",
            body = Problem, content_type = "application/problem+json"),
    ))]
async fn readyz(State(state): State<AppState>) -> Result<Json<Readiness>, ApiError> {
    let store = state.accounts().store();
    let not_ready = |cause: &dyn std::fmt::Display| {
        // The cause can name hosts and schema versions: the log gets it, the caller does not.
        tracing::warn!(cause = %cause, "not ready");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not-ready",
            "Not ready",
            "the database is unreachable or its schema is not current; the server log says which",
        )
    };
    match tokio::time::timeout(READINESS_TIMEOUT, store.check_ready()).await {
        Ok(Ok(())) => Ok(Json(Readiness {
            status: "ready",
            database: match store.backend() {
                DatabaseKind::Sqlite => "sqlite",
                DatabaseKind::Postgres => "postgres",
            },
        })),
        Ok(Err(err)) => Err(not_ready(&err)),
        Err(_) => Err(not_ready(&format!(
            "the database did not answer within {} s",
            READINESS_TIMEOUT.as_secs()
        ))),
    }
}

/// Prometheus metrics in OpenMetrics text format: requests by method, route and status, their
/// latency, requests in flight, build information, the database pool, and the model gateway:
/// requests, tokens and cost by model and provider, latency, time to first token, and each
/// deployment's health and requests in flight.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Metrics in OpenMetrics text format", body = String,
        content_type = "application/openmetrics-text")))]
async fn metrics(State(state): State<AppState>) -> Response {
    state.gateway.update_gauges();
    let text = state.metrics.render(state.accounts().store().pool_stats());
    ([(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)], text).into_response()
}
