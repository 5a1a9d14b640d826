//! Extractors that turn raw requests into checked values, answering bad input with problems.

use std::net::{IpAddr, SocketAddr};

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use http::request::Parts;
use http::{StatusCode, header};
use kai_auth::{ClientInfo, Principal};
use kai_config::ByteSize;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::state::AppState;

/// The authenticated caller: an `Authorization: Bearer` access token or API key, checked.
#[derive(Debug, Clone)]
pub struct Auth(pub Principal);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Err(ApiError::missing_credentials());
        };
        let credential = value
            .to_str()
            .ok()
            .and_then(|value| value.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, credential)| credential.trim())
            .filter(|credential| !credential.is_empty())
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "Authentication required",
                    "the Authorization header must be `Bearer <access token or API key>`",
                )
            })?;
        let principal = state.accounts().authenticate(credential).await?;
        tracing::Span::current().record("user", principal.user.username.as_str());
        Ok(Auth(principal))
    }
}

/// A JSON request body. Bad input is answered precisely: 415 without a JSON content type, 400
/// for malformed JSON, 422 for well-formed JSON of the wrong shape, 413 when too large.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        // Nested routers see their path without its prefix; the original one tells.
        let openai = request
            .extensions()
            .get::<axum::extract::OriginalUri>()
            .map_or(request.uri().path(), |original| original.path())
            .starts_with("/v1/");
        if !json_content_type(request.headers()) {
            return Err(not_json());
        }
        // The model API has a limit of its own (images travel inline); every other JSON body
        // has the general one. Read here rather than through `DefaultBodyLimit`, so that the
        // 413 names the limit that applied.
        let (limit, setting) = if openai {
            (state.http.max_model_body_size, "http.max_model_body_size")
        } else {
            (state.http.max_body_size, "http.max_body_size")
        };
        let bytes = read_body(
            request.into_body(),
            limit,
            setting,
            state.http.request_timeout,
        )
        .await?;
        // serde reads a struct from a JSON array of its fields in order; every body kai takes
        // is an object, so anything else is refused before it can be read that way.
        let first = bytes.iter().find(|byte| !byte.is_ascii_whitespace());
        if first.is_some_and(|byte| *byte != b'{')
            && serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_ok()
        {
            let detail = "the body must be a JSON object";
            return Err(if openai {
                ApiError::invalid_request(None, detail)
            } else {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "validation-failed",
                    "Validation failed",
                    detail,
                )
            });
        }
        // axum's extractor tracks the path to every value it parses, for its error messages:
        // that doubles the cost of reading a model request. Bodies are parsed without it, and
        // only a body that fails is parsed again for the message.
        match serde_json::from_slice(&bytes) {
            Ok(value) => Ok(ApiJson(value)),
            Err(_) => match axum::Json::<T>::from_bytes(&bytes) {
                Ok(axum::Json(value)) => Ok(ApiJson(value)),
                Err(rejection) => Err(rejected(&rejection, openai)),
            },
        }
    }
}

/// Reads a whole request body of at most `limit` bytes within `time`; 413 names `setting`
/// when it is larger, 408 says when it stalled. (The model API has no deadline for its
/// handlers, which wait on models, but its bodies must arrive as promptly as any other.)
async fn read_body(
    body: axum::body::Body,
    limit: ByteSize,
    setting: &str,
    time: std::time::Duration,
) -> Result<axum::body::Bytes, ApiError> {
    let max = usize::try_from(limit.as_u64()).unwrap_or(usize::MAX);
    let collect = http_body_util::BodyExt::collect(http_body_util::Limited::new(body, max));
    let Ok(collected) = tokio::time::timeout(time, collect).await else {
        return Err(ApiError::body_timeout(time));
    };
    match collected {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.is::<http_body_util::LengthLimitError>() => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            "Payload too large",
            format!("the request body is larger than the {limit} limit ({setting})"),
        )),
        Err(err) => Err(ApiError::bad_request(format!(
            "the request body could not be read: {err}"
        ))),
    }
}

/// The answer to a body axum's extractor refused.
fn rejected(rejection: &JsonRejection, openai: bool) -> ApiError {
    match rejection {
        // OpenAI answers a body of the wrong shape with 400 and the field as `param`; its SDKs
        // expect that rather than 422.
        JsonRejection::JsonDataError(err) if openai => {
            let text = err.body_text();
            let detail = text
                .strip_prefix("Failed to deserialize the JSON body into the target type: ")
                .unwrap_or(&text);
            let param = detail
                .split_once(": ")
                .map(|(path, _)| path)
                .filter(|path| !path.contains(' '))
                .map(str::to_owned);
            ApiError::invalid_request(param, detail.to_owned())
        }
        rejection => json_rejection(rejection),
    }
}

/// Whether the body is declared JSON: `application/json` or another `…+json` type, parameters
/// aside (what axum's `Json` accepts).
fn json_content_type(headers: &http::HeaderMap) -> bool {
    let Some(essence) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(|essence| essence.trim().to_ascii_lowercase())
    else {
        return false;
    };
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|subtype| subtype.ends_with("+json"))
}

/// 415 for a body not declared JSON.
fn not_json() -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
        "Unsupported media type",
        "send the body as JSON with `Content-Type: application/json`",
    )
}

fn json_rejection(rejection: &JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => not_json(),
        JsonRejection::JsonSyntaxError(_) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid-json",
            "Invalid JSON",
            // axum's text names the position of the error, nothing of the input itself.
            rejection.body_text(),
        ),
        JsonRejection::JsonDataError(_) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation-failed",
            "Validation failed",
            rejection.body_text(),
        ),
        _ => ApiError::bad_request(rejection.body_text()),
    }
}

/// Who is calling: the peer address (or, behind a trusted proxy, the last `X-Forwarded-For`
/// address: the one that proxy added; earlier ones are whatever the client claimed) and the
/// `User-Agent`.
#[derive(Debug, Clone)]
pub struct Client(pub ClientInfo);

impl FromRequestParts<AppState> for Client {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip());
        let forwarded = state
            .http
            .trust_forwarded_for
            .then(|| parts.headers.get("x-forwarded-for"))
            .flatten()
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.rsplit(',').next())
            .and_then(|last| last.trim().parse::<IpAddr>().ok());
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        Ok(Client(ClientInfo {
            addr: forwarded.or(peer),
            user_agent,
        }))
    }
}

/// Parses an id from a path segment, saying what was expected.
pub(crate) fn path_id<T: std::str::FromStr>(raw: &str, what: &str) -> Result<T, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::bad_request(format!("`{raw}` is not a valid {what} id (a UUID)")))
}

/// Reads a page cursor (`next_after` of an earlier page: the last item's change time in Unix
/// milliseconds and its id), refused with a 400 that says where cursors come from.
pub(crate) fn page_cursor<T: std::str::FromStr>(
    cursor: &str,
) -> Result<(time::OffsetDateTime, T), ApiError> {
    let bad = || ApiError::bad_request("`after` must be the `next_after` of a previous page");
    let (millis, id) = cursor.split_once('_').ok_or_else(bad)?;
    let millis: i128 = millis.parse().map_err(|_| bad())?;
    let at =
        time::OffsetDateTime::from_unix_timestamp_nanos(millis * 1_000_000).map_err(|_| bad())?;
    Ok((at, id.parse().map_err(|_| bad())?))
}

/// The cursor of the page after one that ended with the item changed `at` with `id`.
pub(crate) fn next_page_cursor(at: time::OffsetDateTime, id: impl std::fmt::Display) -> String {
    format!("{}_{id}", at.unix_timestamp_nanos() / 1_000_000)
}

/// Who is asking, as the gateway accounts for it.
pub(crate) fn caller(principal: &Principal, request_id: String) -> kai_gateway::Caller {
    kai_gateway::Caller {
        user_id: principal.user.id,
        api_key_id: match principal.credential {
            kai_auth::Credential::ApiKey(id) => Some(id),
            kai_auth::Credential::Session(_) => None,
        },
        request_id,
    }
}

/// A query string, refused with a 400 that says what is wrong with it.
#[derive(Debug, Clone)]
pub(crate) struct ApiQuery<T>(pub(crate) T);

impl<T: DeserializeOwned> FromRequestParts<AppState> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => Err(ApiError::bad_request(rejection.body_text())),
        }
    }
}

/// An optional RFC 3339 time from a query parameter; the error names the parameter.
pub(crate) fn time_param(
    field: &str,
    value: Option<&str>,
) -> Result<Option<time::OffsetDateTime>, ApiError> {
    value
        .map(|text| {
            time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                .map_err(|_| {
                    ApiError::bad_request(format!(
                        "`{field}` must be an RFC 3339 time such as 2026-11-25T00:00:00Z"
                    ))
                })
        })
        .transpose()
}
