//! The layers every request passes through, outermost first:
//!
//! 1. [`request_context`]: a request id, a tracing span, a log line, metrics, and the rendering
//!    of every error as a problem document;
//! 2. a panic catcher, so a bug answers 500 instead of dropping the connection;
//! 3. [`timeout`]: a handler that runs past `http.request_timeout` is answered with 503 (model
//!    calls excepted: their providers' timeouts apply).
//!
//! Under `/v1/`, the OpenAI-compatible API, errors take OpenAI's shape instead of RFC 9457's.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderName, HeaderValue, StatusCode, header};
use kai_proto::{PROBLEM_CONTENT_TYPE, Problem};
use tracing::Instrument;

use crate::error::{ApiError, PROBLEM_TYPE_PREFIX, ProblemDraft, draft_for_status};
use crate::state::AppState;

/// The header carrying the request id, both ways.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The request's id, available to handlers as an extension.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Routes polled by machines; their successes are logged at debug level, not info.
const QUIET_ROUTES: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// Gives the request an id (the client's `x-request-id` if it is sensible, else a fresh
/// UUIDv7), runs it inside a span carrying that id, logs and measures it, and makes sure any
/// error leaves as `application/problem+json` with the id in it.
pub(crate) async fn request_context(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let in_flight = state.metrics.start();
    let request_id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .filter(|id| (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned);
    request
        .extensions_mut()
        .insert(RequestId(request_id.clone()));
    // Whether the handler read the whole body: one that answered early (a refused credential)
    // leaves it unread, and hyper then closes the connection, which the client must be told.
    let body = Arc::new(BodyProgress {
        read: AtomicBool::new(http_body::Body::is_end_stream(request.body())),
        waiting: AtomicBool::new(false),
    });
    request.extensions_mut().insert(Arc::clone(&body));
    let request = request.map(|inner| {
        Body::new(TrackedBody {
            inner,
            progress: Arc::clone(&body),
        })
    });
    let method = request.method().clone();
    // The path only: a query string may carry something secret.
    let path = request.uri().path().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|matched| matched.as_str().to_owned());

    let span = tracing::info_span!(
        "request",
        %method,
        path = %path,
        request_id = %request_id,
        user = tracing::field::Empty,
    );
    // If the client goes away first, hyper drops this future at the await: the guard still
    // writes the request's log line.
    let mut unanswered = Unanswered {
        span: Some(span.clone()),
        started,
    };
    let mut response = next.run(request).instrument(span.clone()).await;
    unanswered.span = None;

    let status = response.status();
    let draft = response.extensions_mut().remove::<ProblemDraft>();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| {
            value
                .as_bytes()
                .starts_with(PROBLEM_CONTENT_TYPE.as_bytes())
        });
    if let Some(draft) =
        draft.or_else(|| (status.as_u16() >= 400 && !is_problem).then(|| draft_for_status(status)))
    {
        response = if path.starts_with(OPENAI_PREFIX) {
            render_openai_error(response, draft)
        } else {
            render_problem(response, draft, &path, &request_id)
        };
    }
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID.clone(), value);
    }
    if !body.read.load(Ordering::Relaxed) {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }

    let elapsed = started.elapsed();
    let route_label = route.as_deref().unwrap_or("unmatched");
    state
        .metrics
        .observe(&method, route_label, status.as_u16(), elapsed);
    drop(in_flight);
    let latency_ms = elapsed.as_secs_f64() * 1000.0;
    span.in_scope(|| {
        if QUIET_ROUTES.contains(&route_label) && status.is_success() {
            tracing::debug!(status = status.as_u16(), latency_ms, "request finished");
        } else {
            tracing::info!(status = status.as_u16(), latency_ms, "request finished");
        }
    });
    response
}

/// Logs a request whose client went away before it was answered.
struct Unanswered {
    /// The request's span, until it is answered.
    span: Option<tracing::Span>,
    started: Instant,
}

impl Drop for Unanswered {
    fn drop(&mut self) {
        if let Some(span) = self.span.take() {
            let latency_ms = self.started.elapsed().as_secs_f64() * 1000.0;
            span.in_scope(|| {
                tracing::info!(
                    latency_ms,
                    "request cancelled: the client went away before the answer"
                );
            });
        }
    }
}

/// Paths that answer errors in OpenAI's shape, so its SDKs understand them.
const OPENAI_PREFIX: &str = "/v1/";

/// Where local models are pulled: a pull takes as long as its downloads.
const LOCAL_MODELS: &str = "/api/v1/local-models";
/// Where artifacts are uploaded.
const ARTIFACTS: &str = "/api/v1/artifacts";

/// An error for the OpenAI-compatible API: `{"error": {message, type, param, code}}`, with
/// kai's problem kind as the `code` programs can branch on.
fn render_openai_error(response: Response, draft: ProblemDraft) -> Response {
    let (mut parts, _) = response.into_parts();
    let kind = match draft.kind {
        "unauthorized"
        | "invalid-credentials"
        | "token-expired"
        | "invalid-token"
        | "session-ended"
        | "invalid-api-key"
        | "api-key-revoked"
        | "api-key-expired" => "authentication_error",
        "insufficient-scope" | "forbidden" | "account-disabled" => "permission_error",
        "not-found" | "model-not-found" => "not_found_error",
        "rate-limited" | "budget-exceeded" => "rate_limit_error",
        "upstream-failed" => "upstream_error",
        "upstream-timeout" | "timeout" | "body-timeout" => "timeout_error",
        "model-unavailable" | "database-unavailable" | "not-ready" => "service_unavailable_error",
        "internal" => "server_error",
        _ => "invalid_request_error",
    };
    let body = kai_proto::openai::ErrorResponse {
        error: kai_proto::openai::ErrorDetail {
            message: draft.detail,
            kind: kind.to_owned(),
            param: draft.errors.first().map(|e| e.field.clone()),
            code: Some(draft.kind.replace('-', "_")),
        },
    };
    let body = serde_json::to_vec(&body).unwrap_or_default();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

fn render_problem(
    response: Response,
    draft: ProblemDraft,
    path: &str,
    request_id: &str,
) -> Response {
    let (mut parts, _) = response.into_parts();
    let problem = Problem {
        kind: format!("{PROBLEM_TYPE_PREFIX}{}", draft.kind),
        title: draft.title.to_owned(),
        status: parts.status.as_u16(),
        detail: draft.detail,
        instance: Some(path.to_owned()),
        request_id: Some(request_id.to_owned()),
        errors: draft.errors,
    };
    let body = serde_json::to_vec(&problem).unwrap_or_default();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

/// Answers with 503 when the handler has not produced a response head within
/// `http.request_timeout`. Streams already under way are not cut: the limit is on the head.
pub(crate) async fn timeout(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    // Model calls have their own, longer timeouts per provider; a whole answer from a large
    // model can take minutes. Pulling a local model downloads hundreds of megabytes, with its
    // own timeouts on every connection.
    let path = request.uri().path();
    let post = request.method() == http::Method::POST;
    // Uploads take as long as they take, as long as data keeps coming: their handler times
    // out a body that stalls.
    if path.starts_with(OPENAI_PREFIX)
        || (post && path.ends_with("/messages"))
        || (post && path == LOCAL_MODELS)
        || (post && path.starts_with(ARTIFACTS))
    {
        return next.run(request).await;
    }
    let limit = state.http.request_timeout;
    let body = request.extensions().get::<Arc<BodyProgress>>().cloned();
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        // The handler was waiting for the client, not the other way round.
        Err(_) if body.is_some_and(|body| body.waiting.load(Ordering::Relaxed)) => {
            ApiError::body_timeout(limit).into_response()
        }
        Err(_) => ApiError::timeout(limit).into_response(),
    }
}

/// The response for a panicked handler; the request middleware turns it into a problem.
pub(crate) fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned());
    tracing::error!(panic = %message, "handler panicked");
    StatusCode::INTERNAL_SERVER_ERROR.into_response()
}

/// How far a request's body has come, shared between its reader and the middleware.
pub(crate) struct BodyProgress {
    /// It has been read to its end.
    read: AtomicBool,
    /// Its reader's last poll found no data yet: the handler is waiting for the client.
    waiting: AtomicBool,
}

/// A request body that records its [`BodyProgress`].
struct TrackedBody {
    inner: Body,
    progress: Arc<BodyProgress>,
}

impl http_body::Body for TrackedBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        self.progress
            .waiting
            .store(polled.is_pending(), Ordering::Relaxed);
        if matches!(polled, Poll::Ready(None)) || self.inner.is_end_stream() {
            self.progress.read.store(true, Ordering::Relaxed);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
