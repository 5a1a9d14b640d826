//! Logging in and out, and refreshing tokens.
//!
//! Programs keep the refresh token themselves, from the body. Browsers ask for it in a cookie
//! (`"cookie": true`) so that no page script can read it: `kai_refresh` is httpOnly,
//! SameSite=Strict, sent only to `/api/v1/auth`, and Secure when kai is reached over TLS. A
//! request that the cookie authenticates must also carry `X-CSRF-Token`, whose value the
//! readable `kai_csrf` cookie holds: another site can make a browser send the cookie, but not
//! read `kai_csrf` to copy it into a header. The CSRF value is a hash of the refresh token, so
//! it changes with each refresh and a cookie planted by someone else never matches.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use cookie::{Cookie, SameSite};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use kai_auth::TokenPair;
use kai_proto::{LoginRequest, LogoutRequest, Problem, RefreshRequest, TokenResponse};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::{ApiJson, Auth, Client};
use crate::origin;
use crate::state::AppState;

/// The httpOnly cookie holding a browser's refresh token.
const REFRESH_COOKIE: &str = "kai_refresh";
/// The script-readable cookie whose value goes back as [`CSRF_HEADER`].
const CSRF_COOKIE: &str = "kai_csrf";
/// The header that proves a cookie-authenticated request comes from kai's own page.
const CSRF_HEADER: &str = "x-csrf-token";
/// Where the browser sends the refresh cookie: only to these routes.
const REFRESH_COOKIE_PATH: &str = "/api/v1/auth";

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(logout_all))
}

/// Logs in with a user name and password, returning an access token and a refresh token (in
/// the body, or with `"cookie": true` in the `kai_refresh` cookie beside a `kai_csrf` one).
///
/// Repeated failures lock the account for `auth.lockout_duration`, and throttle the client
/// address; both answer 429 with `Retry-After`.
#[utoipa::path(post, path = "/login", tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = TokenResponse),
        (status = 401, description = "Wrong user name or password", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The account is disabled, or the page's origin is not allowed", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Locked out after too many failures; see Retry-After", body = Problem, content_type = "application/problem+json"),
    ))]
async fn login(
    State(state): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    ApiJson(request): ApiJson<LoginRequest>,
) -> Result<Response, ApiError> {
    if request.cookie {
        origin::require_allowed(&headers, &state.http)?;
    }
    let pair = state
        .trust
        .login(&request.username, request.password.expose(), client)
        .await?;
    Ok(tokens(
        pair,
        request.cookie.then(|| secure(&headers, &state)),
    ))
}

/// Exchanges a refresh token for a new access token and a new refresh token.
///
/// Each refresh token works once. Presenting a spent one again ends its whole session: it
/// means the token was copied. Without `refresh_token` in the body, the `kai_refresh` cookie
/// is used; then `X-CSRF-Token` must hold the `kai_csrf` cookie's value, and the new refresh
/// token goes into the cookie again.
#[utoipa::path(post, path = "/refresh", tag = "auth",
    request_body = RefreshRequest,
    params(("X-CSRF-Token" = Option<String>, Header, description = "The `kai_csrf` cookie's value, when the refresh token is the cookie's")),
    responses(
        (status = 200, description = "New tokens", body = TokenResponse),
        (status = 401, description = "The refresh token is missing, unknown, expired, reused or its session ended", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The account is disabled, or a cookie came without the matching `X-CSRF-Token` or from another origin", body = Problem, content_type = "application/problem+json"),
    ))]
async fn refresh(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<RefreshRequest>,
) -> Result<Response, ApiError> {
    let (token, from_cookie) = match request.refresh_token {
        Some(token) => (token.expose().to_owned(), false),
        None => (cookie_token(&headers, &state)?, true),
    };
    let pair = state.accounts().refresh(&token).await?;
    Ok(tokens(pair, from_cookie.then(|| secure(&headers, &state))))
}

/// Ends the session a refresh token belongs to (from the body, or the `kai_refresh` cookie
/// with `X-CSRF-Token`): its access tokens stop working at once, and the cookies are cleared.
#[utoipa::path(post, path = "/logout", tag = "auth",
    request_body = LogoutRequest,
    params(("X-CSRF-Token" = Option<String>, Header, description = "The `kai_csrf` cookie's value, when the refresh token is the cookie's")),
    responses(
        (status = 204, description = "Logged out"),
        (status = 401, description = "The refresh token is missing or unknown", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A cookie came without the matching `X-CSRF-Token` or from another origin", body = Problem, content_type = "application/problem+json"),
    ))]
async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<LogoutRequest>,
) -> Result<Response, ApiError> {
    let token = match request.refresh_token {
        Some(token) => token.expose().to_owned(),
        None => cookie_token(&headers, &state)?,
    };
    state.accounts().logout(&token).await?;
    Ok(cleared(StatusCode::NO_CONTENT, secure(&headers, &state)))
}

/// Logs the caller out everywhere: every session of theirs ends, on every device, and this
/// browser's cookies are cleared. API keys stay valid; revoke them at `/api/v1/keys`.
#[utoipa::path(post, path = "/logout-all", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 204, description = "Every session ended"),
    ))]
async fn logout_all(
    State(state): State<AppState>,
    Auth(principal): Auth,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let ended = state
        .accounts()
        .logout_everywhere(principal.user.id)
        .await?;
    tracing::info!(ended, "logged out everywhere");
    Ok(cleared(StatusCode::NO_CONTENT, secure(&headers, &state)))
}

/// The answer to a login or refresh: both tokens in the body, or with `cookie` set (to whether
/// the cookies are Secure) the refresh token in cookies instead.
fn tokens(pair: TokenPair, cookie: Option<bool>) -> Response {
    let body = TokenResponse {
        access_token: pair.access_token,
        refresh_token: cookie.is_none().then(|| pair.refresh_token.clone()),
        token_type: "Bearer".into(),
        expires_in: pair.expires_in,
    };
    let mut response = Json(body).into_response();
    if let Some(secure) = cookie {
        let max_age = cookie::time::Duration::seconds(
            i64::try_from(pair.refresh_expires_in).unwrap_or(i64::MAX),
        );
        let refresh = Cookie::build((REFRESH_COOKIE, pair.refresh_token.clone()))
            .http_only(true)
            .same_site(SameSite::Strict)
            .secure(secure)
            .path(REFRESH_COOKIE_PATH)
            .max_age(max_age);
        let csrf = Cookie::build((CSRF_COOKIE, csrf_token(&pair.refresh_token)))
            .same_site(SameSite::Strict)
            .secure(secure)
            .path("/")
            .max_age(max_age);
        set_cookies(&mut response, [refresh.build(), csrf.build()]);
    }
    response
}

/// `status` with both cookies removed.
fn cleared(status: StatusCode, secure: bool) -> Response {
    let mut response = status.into_response();
    let refresh = Cookie::build((REFRESH_COOKIE, ""))
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .path(REFRESH_COOKIE_PATH)
        .max_age(cookie::time::Duration::ZERO);
    let csrf = Cookie::build((CSRF_COOKIE, ""))
        .same_site(SameSite::Strict)
        .secure(secure)
        .path("/")
        .max_age(cookie::time::Duration::ZERO);
    set_cookies(&mut response, [refresh.build(), csrf.build()]);
    response
}

fn set_cookies<const N: usize>(response: &mut Response, cookies: [Cookie<'static>; N]) {
    for cookie in cookies {
        if let Ok(value) = HeaderValue::from_str(&cookie.to_string()) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
}

/// The refresh token of a cookie-authenticated request, once the request has shown it comes
/// from an allowed page: its `Origin` (when sent) is allowed and `X-CSRF-Token` matches.
fn cookie_token(headers: &HeaderMap, state: &AppState) -> Result<String, ApiError> {
    origin::require_allowed(headers, &state.http)?;
    let token = request_cookie(headers, REFRESH_COOKIE).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid-refresh-token",
            "Invalid refresh token",
            "no refresh token: send `refresh_token` in the body, or log in with `\"cookie\": true` \
             so that the browser keeps it in the kai_refresh cookie",
        )
    })?;
    let sent = headers
        .get(CSRF_HEADER)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let expected = csrf_token(&token);
    // Compared in constant time, like any other secret.
    if sent.len() != expected.len()
        || !bool::from(subtle::ConstantTimeEq::ct_eq(
            sent.as_bytes(),
            expected.as_bytes(),
        ))
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "csrf-failed",
            "CSRF check failed",
            "a request authenticated by the kai_refresh cookie must send the kai_csrf cookie's \
             value in the X-CSRF-Token header",
        ));
    }
    Ok(token)
}

/// The value of the request's cookie `name`, if it sent one.
fn request_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|cookie| cookie.name() == name && !cookie.value().is_empty())
        .map(|cookie| cookie.value().to_owned())
}

/// The CSRF token that goes with a refresh token: a one-way hash of it, so that it proves the
/// page could read the `kai_csrf` cookie set beside that very refresh token.
fn csrf_token(refresh_token: &str) -> String {
    let hash = blake3::derive_key("kai 2026 csrf token", refresh_token.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hash)
}

/// Whether the browser reached kai over TLS. kai itself speaks plain HTTP, so that is when a
/// trusted TLS-terminating proxy says so in `X-Forwarded-Proto`. Browsers send Secure cookies
/// back only over TLS, so they are Secure exactly then; over plain HTTP (loopback) they would
/// never come back.
fn secure(headers: &HeaderMap, state: &AppState) -> bool {
    state.http.trust_forwarded_for
        && headers
            .get("x-forwarded-proto")
            .and_then(|value| value.to_str().ok())
            .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
}
