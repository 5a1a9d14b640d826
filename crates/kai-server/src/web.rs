//! The web UI: its files at `/`, the page routes of its client-side router, and the security
//! headers every response carries.
//!
//! Hashed assets (`/assets/NAME-HASH.js`) never change, so browsers keep them for a year
//! without asking again; every other file (`index.html`, the service worker, the manifest) is
//! revalidated on each use, so that a new build reaches the browser at once. A page address
//! that is not a file (`/chat/…`, `/knowledge`) is answered with `index.html` when a browser
//! navigates to it, and the UI's router takes over; anything else unknown is the API's 404.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Method, StatusCode, header};

use crate::error::ApiError;

/// What the UI's pages may load and talk to: only kai itself. No inline or foreign scripts;
/// inline styles are allowed because the UI's components set them (no script runs from them).
/// `connect-src 'self'` covers the WebSocket to the same host.
const UI_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; worker-src 'self'; \
     manifest-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; \
     frame-ancestors 'none'";

/// Every other response (JSON, event streams): nothing in it may load or run anything.
const API_POLICY: &str = "default-src 'none'; frame-ancestors 'none'";

/// Paths that belong to the API or the operators' routes: never answered with the UI.
const API_PREFIXES: [&str; 8] = [
    "/api/", "/v1/", "/mcp", "/docs", "/openapi", "/healthz", "/readyz", "/metrics",
];

/// Answers a request no route matched: with a file of the UI, with its page for a browser
/// navigating to one of its routes, or with the API's 404.
pub(crate) async fn fallback(request: Request) -> Response {
    let path = request.uri().path();
    let is_api = API_PREFIXES.iter().any(|prefix| path.starts_with(prefix)) || path == "/api";
    if is_api || !matches!(*request.method(), Method::GET | Method::HEAD) {
        return not_found();
    }
    let name = path.trim_start_matches('/');
    if !kai_web::is_built() {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "web-ui-not-built",
            "Web UI not built",
            "this kai was built without its web UI: run `npm ci && npm run build` in web/ and \
             build kai again (scripts/run does both); the API is described at /docs",
        )
        .into_response();
    }
    if let Some(asset) = kai_web::asset(name).filter(|_| !name.is_empty()) {
        return file(&request, asset);
    }
    let navigating = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    match kai_web::asset(kai_web::INDEX) {
        Some(index) if name.is_empty() || navigating => file(&request, index),
        _ => not_found(),
    }
}

fn not_found() -> Response {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not-found",
        "Not found",
        "no such route; the API is described at /openapi.json and /docs",
    )
    .into_response()
}

/// One file, with its caching headers; 304 when the browser's copy is current.
fn file(request: &Request, asset: kai_web::Asset) -> Response {
    let etag = format!("\"{}\"", asset.etag);
    let cache = if asset.immutable {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let fresh = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|tags| {
            tags.split(',')
                .any(|tag| tag.trim() == etag || tag.trim() == "*")
        });
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut response = asset.bytes.into_owned().into_response();
        if let Ok(value) = HeaderValue::from_str(&asset.content_type) {
            response.headers_mut().insert(header::CONTENT_TYPE, value);
        }
        response
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    // Set here rather than left to `security_headers`, which tells HTML by its content type:
    // a 304 has none, and the headers of a 304 replace those of the browser's stored copy.
    if asset.content_type.starts_with("text/html") {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(UI_POLICY),
        );
    }
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    response
}

/// Gives every response a Content-Security-Policy (the UI's for HTML, a closed one for
/// everything else) unless its handler chose one, and tells browsers not to guess types or
/// send the page's address elsewhere.
pub(crate) async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|kind| kind.starts_with("text/html"));
    let headers = response.headers_mut();
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        let policy = if html { UI_POLICY } else { API_POLICY };
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(policy),
        );
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}
