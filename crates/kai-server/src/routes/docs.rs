//! The API's own description: the OpenAPI document and an interactive reference built from it.
//!
//! The reference is Swagger UI, vendored under `assets/swagger-ui` and served from the binary,
//! so `/docs` works offline and loads nothing from a CDN.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::header;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

const INDEX_HTML: &str = r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>kai API reference</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script src="/docs/init.js"></script>
</body>
</html>
"#;

const INIT_JS: &str = r##"window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  persistAuthorization: false,
  tryItOutEnabled: true,
});
"##;

const BUNDLE_JS: &[u8] = include_bytes!("../../assets/swagger-ui/swagger-ui-bundle.js");
const STYLESHEET: &[u8] = include_bytes!("../../assets/swagger-ui/swagger-ui.css");

/// Scripts and styles only from kai itself; Swagger UI needs inline styles and `data:` images.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
     frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// The vendored assets change only with kai's version, so browsers may keep them a day.
const ASSET_CACHE: &str = "public, max-age=86400";

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(openapi_json))
        .routes(routes!(docs))
        .route(
            "/docs/init.js",
            get(|| asset("text/javascript; charset=utf-8", INIT_JS.as_bytes())),
        )
        .route(
            "/docs/swagger-ui-bundle.js",
            get(|| asset("text/javascript; charset=utf-8", BUNDLE_JS)),
        )
        .route(
            "/docs/swagger-ui.css",
            get(|| asset("text/css; charset=utf-8", STYLESHEET)),
        )
}

/// This API's OpenAPI 3.1 document, generated from the handlers.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json")))]
async fn openapi_json(State(state): State<AppState>) -> Response {
    let document = state.openapi.get().cloned().unwrap_or_default();
    ([(header::CONTENT_TYPE, "application/json")], document).into_response()
}

/// An interactive API reference rendered from `/openapi.json`.
#[utoipa::path(get, path = "/docs", tag = "operations",
    responses((status = 200, description = "The reference page", content_type = "text/html")))]
async fn docs() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        ],
        INDEX_HTML,
    )
        .into_response()
}

async fn asset(content_type: &'static str, body: &'static [u8]) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, ASSET_CACHE),
        ],
        body,
    )
        .into_response()
}
