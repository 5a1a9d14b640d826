//! Which web pages may act on the API from a browser: kai's own, and those `http.cors_origins`
//! lists.
//!
//! A browser attaches cookies to requests that any site's page makes, and lets any page open a
//! WebSocket; the `Origin` header it sends says which page did. Requests a cookie
//! authenticates (refresh, logout) and WebSocket upgrades check it. Programs send no `Origin`
//! and are not browsers, so a missing header passes: what it guards against is another site's
//! page, which always has one.

use http::{HeaderMap, StatusCode, header};
use kai_config::HttpSettings;

use crate::error::ApiError;

/// Refuses, with 403, a request whose `Origin` is neither kai's own nor a listed one.
pub(crate) fn require_allowed(headers: &HeaderMap, http: &HttpSettings) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin
        .to_str()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if same_origin(&origin, headers, http) || listed(&origin, http) {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "origin-not-allowed",
        "Origin not allowed",
        format!(
            "pages from {origin} may not act on kai from a browser; list the origin in \
             http.cors_origins to allow it"
        ),
    ))
}

/// Whether `origin` is the address the request was made to (`Host`, or behind a trusted proxy
/// `X-Forwarded-Host`), over either scheme.
fn same_origin(origin: &str, headers: &HeaderMap, http: &HttpSettings) -> bool {
    let forwarded = http
        .trust_forwarded_for
        .then(|| headers.get("x-forwarded-host"))
        .flatten();
    let Some(host) = forwarded
        .or_else(|| headers.get(header::HOST))
        .and_then(|value| value.to_str().ok())
        .map(|host| host.trim().to_ascii_lowercase())
    else {
        return false;
    };
    origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|rest| rest == host)
}

fn listed(origin: &str, http: &HttpSettings) -> bool {
    // The list was checked when the configuration loaded.
    http.cors_origin_list()
        .unwrap_or_default()
        .iter()
        .any(|allowed| allowed == origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| {
                (
                    http::HeaderName::from_static(name),
                    http::HeaderValue::from_static(value),
                )
            })
            .collect()
    }

    #[test]
    fn origins_are_kais_own_or_listed() {
        let mut http = kai_config::Settings::defaults("/tmp".into()).http;
        let allowed = |pairs: &[(&'static str, &'static str)], http: &HttpSettings| {
            require_allowed(&headers(pairs), http).is_ok()
        };
        assert!(allowed(&[("host", "kai.local:8080")], &http));
        assert!(allowed(
            &[
                ("host", "kai.local:8080"),
                ("origin", "http://kai.local:8080")
            ],
            &http
        ));
        assert!(allowed(
            &[
                ("host", "kai.local:8080"),
                ("origin", "HTTPS://Kai.Local:8080")
            ],
            &http
        ));
        assert!(!allowed(
            &[
                ("host", "kai.local:8080"),
                ("origin", "http://evil.example")
            ],
            &http
        ));
        assert!(!allowed(
            &[
                ("host", "kai.local:8080"),
                ("origin", "http://localhost:5173")
            ],
            &http
        ));
        http.cors_origins = "https://app.example, http://localhost:5173".into();
        assert!(allowed(
            &[
                ("host", "kai.local:8080"),
                ("origin", "http://localhost:5173")
            ],
            &http
        ));
        assert!(!allowed(
            &[("host", "kai.local:8080"), ("origin", "null")],
            &http
        ));
        // Behind a trusted proxy, the address the browser used is the forwarded host.
        http.trust_forwarded_for = true;
        assert!(allowed(
            &[
                ("host", "127.0.0.1:8420"),
                ("x-forwarded-host", "kai.example"),
                ("origin", "https://kai.example")
            ],
            &http
        ));
    }
}
