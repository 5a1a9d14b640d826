//! The one error type of the API, and how every error becomes an RFC 9457 problem.
//!
//! Handlers and extractors return [`ApiError`]. Its response carries the problem as a
//! [`ProblemDraft`] extension rather than a body: the request middleware renders it, adding the
//! request id and path that only it knows. Responses that arrive there with an error status and
//! no draft (axum's own 405, a panic caught by a layer) get a problem made from their status, so
//! no error ever leaves kai in another shape.

use std::time::Duration;

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use kai_agent::AgentError;
use kai_audit::AuditError;
use kai_auth::AuthError;
use kai_core::InvalidInput;
use kai_gateway::GatewayError;
use kai_knowledge::KnowledgeError;
use kai_model_store::StoreError as ModelStoreError;
use kai_models::ErrorKind;
use kai_models::router::RouteErrorKind;
use kai_proto::FieldError;
use kai_store::StoreError;
use kai_trust::TrustError;
use kai_vault::VaultError;

/// The prefix of every problem `type`.
pub const PROBLEM_TYPE_PREFIX: &str = "urn:kai:problem:";

/// An error answer: status, a stable kind, and a sentence for people.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    kind: &'static str,
    title: &'static str,
    detail: String,
    errors: Vec<FieldError>,
    retry_after: Option<Duration>,
    bearer_challenge: Option<&'static str>,
    /// Tells clients that retrying at once is pointless (`x-should-retry: false`, which
    /// OpenAI's SDKs obey): kai has retried and failed over already, or a budget is spent.
    final_answer: bool,
}

/// A problem waiting to be rendered by the request middleware.
#[derive(Debug, Clone)]
pub(crate) struct ProblemDraft {
    pub(crate) kind: &'static str,
    pub(crate) title: &'static str,
    pub(crate) detail: String,
    pub(crate) errors: Vec<FieldError>,
}

impl ApiError {
    /// An error of `kind` (the part after `urn:kai:problem:`) with a fixed `title` and a
    /// `detail` that says what happened and what to do.
    pub fn new(
        status: StatusCode,
        kind: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            status,
            kind,
            title,
            detail: public_text(detail.into()),
            errors: Vec::new(),
            retry_after: None,
            bearer_challenge: None,
            final_answer: false,
        }
    }

    /// 400: the request is malformed.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "Bad request",
            detail,
        )
    }

    /// 404 for a resource.
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "Not found",
            format!("{what} not found"),
        )
    }

    /// 422: the body is well-formed but a field's value is not acceptable.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        let mut err = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation-failed",
            "Validation failed",
            format!("{field}: {message}"),
        );
        err.errors.push(FieldError {
            field: field.to_owned(),
            message,
        });
        err
    }

    /// 400 for a model request OpenAI's API would refuse, naming the field (`param`).
    pub fn invalid_request(param: Option<String>, detail: impl Into<String>) -> Self {
        let mut err = Self::new(
            StatusCode::BAD_REQUEST,
            "invalid-request",
            "Invalid request",
            detail,
        );
        if let Some(field) = param {
            err.errors.push(FieldError {
                field,
                message: err.detail.clone(),
            });
        }
        err
    }

    /// 401 when no credential was sent.
    pub fn missing_credentials() -> Self {
        let mut err = Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Authentication required",
            "send `Authorization: Bearer <access token or API key>`; log in at /api/v1/auth/login",
        );
        err.bearer_challenge = Some("");
        err
    }

    /// 503: the handler ran out of time.
    pub fn timeout(limit: Duration) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            "Request timed out",
            format!(
                "the request took longer than {} s (http.request_timeout); try again",
                limit.as_secs_f32()
            ),
        )
    }

    /// 408: the request's body stopped arriving.
    pub fn body_timeout(limit: Duration) -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "body-timeout",
            "Request body timed out",
            format!(
                "the request body did not arrive within {} s (http.request_timeout); send it \
                 whole, without pauses",
                limit.as_secs_f32()
            ),
        )
    }

    /// 500, with the cause logged but never shown.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal server error",
            "kai failed to handle this request; the server log has details under this request id",
        )
    }

    /// The response status.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// What went wrong, as the client is told.
    pub(crate) fn detail(&self) -> &str {
        &self.detail
    }

    /// The problem document this error is answered with, for an answer that travels outside
    /// an HTTP response (a failed chat on the WebSocket).
    pub(crate) fn problem(&self, instance: &str, request_id: &str) -> kai_proto::Problem {
        kai_proto::Problem {
            kind: format!("{PROBLEM_TYPE_PREFIX}{}", self.kind),
            title: self.title.to_owned(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            instance: Some(instance.to_owned()),
            request_id: Some(request_id.to_owned()),
            errors: self.errors.clone(),
        }
    }

    /// Asks the client to wait before retrying.
    #[must_use]
    pub fn with_retry_after(mut self, wait: Duration) -> Self {
        self.retry_after = Some(wait);
        self
    }
}

/// `text` as a client may see it: cut before anything that looks like a backtrace (a line
/// `stack backtrace:`, or a numbered frame), which a library's error message can carry when
/// `RUST_BACKTRACE` is set in the server's environment. The server log keeps the whole cause.
pub(crate) fn public_text(text: String) -> String {
    let is_trace = |line: &str| {
        let line = line.trim_start();
        line.to_ascii_lowercase().starts_with("stack backtrace")
            || line.split_once(": ").is_some_and(|(frame, _)| {
                !frame.is_empty() && frame.bytes().all(|b| b.is_ascii_digit())
            })
    };
    match text.lines().position(is_trace) {
        None => text,
        Some(0) => "the cause is in the server log".to_owned(),
        Some(at) => text
            .lines()
            .take(at)
            .collect::<Vec<_>>()
            .join("\n")
            .trim_end()
            .to_owned(),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.status.into_response();
        let headers = response.headers_mut();
        if let Some(wait) = self.retry_after {
            // Round up: retrying a moment too early would only fail again.
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        }
        if self.final_answer {
            headers.insert("x-should-retry", HeaderValue::from_static("false"));
        }
        if let Some(error) = self.bearer_challenge {
            let challenge = if error.is_empty() {
                "Bearer realm=\"kai\"".to_owned()
            } else {
                format!("Bearer realm=\"kai\", error=\"{error}\"")
            };
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                headers.insert(header::WWW_AUTHENTICATE, value);
            }
        }
        response.extensions_mut().insert(ProblemDraft {
            kind: self.kind,
            title: self.title,
            detail: self.detail,
            errors: self.errors,
        });
        response
    }
}

impl From<TrustError> for ApiError {
    fn from(err: TrustError) -> Self {
        match err {
            TrustError::Vault(err) => err.into(),
            TrustError::Auth(err) => err.into(),
            TrustError::Gateway(err) => err.into(),
            TrustError::Audit(err) => err.into(),
            TrustError::NoGateway => ApiError::internal(&err),
        }
    }
}

impl From<VaultError> for ApiError {
    fn from(err: VaultError) -> Self {
        let detail = err.to_string();
        match err {
            VaultError::NotInitialized => ApiError::new(
                StatusCode::CONFLICT,
                "vault-not-initialized",
                "Vault not initialised",
                detail,
            ),
            VaultError::AlreadyInitialized => ApiError::new(
                StatusCode::CONFLICT,
                "vault-initialized",
                "Vault already initialised",
                detail,
            ),
            VaultError::Locked => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "vault-locked",
                "Vault locked",
                "the vault is locked; an admin unlocks it with `kai vault unlock --url …` (or the \
                 server starts with vault.key_file or vault.passphrase_file)",
            ),
            VaultError::WrongKey(_) | VaultError::NoSuchUnlocker(_) => ApiError::new(
                StatusCode::FORBIDDEN,
                "vault-wrong-key",
                "Wrong passphrase",
                detail,
            ),
            VaultError::TooManyAttempts(wait) => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "vault-too-many-attempts",
                "Too many attempts",
                detail,
            )
            .with_retry_after(wait),
            VaultError::WeakPassphrase(_) => ApiError::invalid_field("passphrase", detail),
            VaultError::InvalidName(_) => ApiError::bad_request(detail),
            VaultError::InvalidValue(_) => ApiError::invalid_field("value", detail),
            VaultError::Changed => {
                ApiError::new(StatusCode::CONFLICT, "conflict", "Conflict", detail)
            }
            VaultError::Store(store) => store.into(),
            VaultError::KeyFile(_) | VaultError::LastUnlocker | VaultError::Corrupt(_) => {
                ApiError::internal(&detail)
            }
        }
    }
}

impl From<AuditError> for ApiError {
    fn from(err: AuditError) -> Self {
        match err {
            AuditError::Store(store) => store.into(),
            AuditError::OutOfRange(detail) => ApiError::bad_request(detail),
            AuditError::Invalid(detail) => ApiError::bad_request(detail.to_string()),
            AuditError::Locked => VaultError::Locked.into(),
            // The action an entry records must not be reported done without its entry.
            other => ApiError::internal(&other),
        }
    }
}

impl From<InvalidInput> for ApiError {
    fn from(err: InvalidInput) -> Self {
        ApiError::invalid_field(err.field, err.message)
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match &err {
            StoreError::Unavailable(cause) => {
                tracing::error!(error = %cause, "database unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "database-unavailable",
                    "Database unavailable",
                    "the database is not answering; try again shortly",
                )
            }
            StoreError::Conflict(what) => ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                "Conflict",
                format!("{what} already exists"),
            ),
            _ => ApiError::internal(&err),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        let detail = err.to_string();
        let unauthorized = |kind, title, challenge| {
            let mut api = ApiError::new(StatusCode::UNAUTHORIZED, kind, title, detail.clone());
            api.bearer_challenge = Some(challenge);
            api
        };
        match err {
            AuthError::InvalidCredentials => {
                unauthorized("invalid-credentials", "Invalid credentials", "")
            }
            AuthError::TokenExpired => {
                unauthorized("token-expired", "Access token expired", "invalid_token")
            }
            AuthError::InvalidToken(_) => {
                unauthorized("invalid-token", "Invalid access token", "invalid_token")
            }
            AuthError::SessionEnded(_) => {
                unauthorized("session-ended", "Session ended", "invalid_token")
            }
            AuthError::InvalidRefreshToken => {
                unauthorized("invalid-refresh-token", "Invalid refresh token", "")
            }
            AuthError::RefreshTokenReused => {
                unauthorized("refresh-token-reused", "Refresh token reused", "")
            }
            AuthError::InvalidApiKey => {
                unauthorized("invalid-api-key", "Invalid API key", "invalid_token")
            }
            AuthError::ApiKeyRevoked(_) => {
                unauthorized("api-key-revoked", "API key revoked", "invalid_token")
            }
            AuthError::ApiKeyExpired(_) => {
                unauthorized("api-key-expired", "API key expired", "invalid_token")
            }
            AuthError::AccountDisabled => ApiError::new(
                StatusCode::FORBIDDEN,
                "account-disabled",
                "Account disabled",
                detail,
            ),
            AuthError::MissingScope(_) => {
                let mut api = ApiError::new(
                    StatusCode::FORBIDDEN,
                    "insufficient-scope",
                    "Insufficient scope",
                    detail,
                );
                api.bearer_challenge = Some("insufficient_scope");
                api
            }
            AuthError::Forbidden(_) => {
                ApiError::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", detail)
            }
            AuthError::AccountLocked { retry_after } => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "account-locked",
                "Account locked",
                detail,
            )
            .with_retry_after(retry_after),
            AuthError::LoginsBusy { retry_after } => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "logins-busy",
                "Too many logins at once",
                detail,
            )
            .with_retry_after(retry_after),
            AuthError::ClientThrottled { retry_after } => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too-many-failed-logins",
                "Too many failed logins",
                detail,
            )
            .with_retry_after(retry_after),
            AuthError::NotFound(what) => ApiError::not_found(what),
            AuthError::Conflict(_) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", "Conflict", detail)
            }
            AuthError::Invalid(invalid) => invalid.into(),
            AuthError::Store(store) => store.into(),
            AuthError::Hash(hash) => ApiError::internal(&hash),
        }
    }
}

impl From<GatewayError> for ApiError {
    fn from(err: GatewayError) -> Self {
        match err {
            GatewayError::Route(route) => {
                let (status, kind, title) = match &route.kind {
                    RouteErrorKind::UnknownModel => {
                        (StatusCode::NOT_FOUND, "model-not-found", "Model not found")
                    }
                    RouteErrorKind::Rejected(ErrorKind::ContextLengthExceeded) => (
                        StatusCode::BAD_REQUEST,
                        "context-length-exceeded",
                        "Context length exceeded",
                    ),
                    RouteErrorKind::Rejected(ErrorKind::ContentFiltered) => (
                        StatusCode::BAD_REQUEST,
                        "content-filtered",
                        "Refused by content policy",
                    ),
                    RouteErrorKind::Rejected(_) => (
                        StatusCode::BAD_REQUEST,
                        "upstream-rejected",
                        "Request rejected by the provider",
                    ),
                    RouteErrorKind::RateLimited => (
                        StatusCode::TOO_MANY_REQUESTS,
                        "rate-limited",
                        "Rate limited",
                    ),
                    RouteErrorKind::Unavailable => (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "model-unavailable",
                        "Model unavailable",
                    ),
                    RouteErrorKind::Failed(ErrorKind::Timeout | ErrorKind::Stalled) => (
                        StatusCode::GATEWAY_TIMEOUT,
                        "upstream-timeout",
                        "Upstream timed out",
                    ),
                    RouteErrorKind::Failed(_) => (
                        StatusCode::BAD_GATEWAY,
                        "upstream-failed",
                        "Upstream failed",
                    ),
                };
                let mut api = ApiError::new(status, kind, title, route.message.clone());
                api.retry_after = route.retry_after;
                // kai retried and failed over already; a request the provider refused would
                // be refused again.
                api.final_answer = matches!(
                    route.kind,
                    RouteErrorKind::Failed(_) | RouteErrorKind::Rejected(_)
                );
                api
            }
            GatewayError::OverBudget(over) => {
                let mut api = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "budget-exceeded",
                    "Budget exceeded",
                    over.message,
                )
                .with_retry_after(over.retry_after);
                // The wait is until the budget resets, hours perhaps: not for a client to sleep.
                api.final_answer = true;
                api
            }
            GatewayError::Invalid { field, message } => ApiError::invalid_field(&field, message),
            GatewayError::NotFound(what) => ApiError::not_found(&what),
            GatewayError::Conflict(detail) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", "Conflict", detail)
            }
            GatewayError::ReadOnly(_) => ApiError::new(
                StatusCode::CONFLICT,
                "read-only",
                "Defined in the configuration file",
                err.to_string(),
            ),
            GatewayError::Store(store) => store.into(),
        }
    }
}

impl From<ModelStoreError> for ApiError {
    fn from(err: ModelStoreError) -> Self {
        let detail = err.to_string();
        match err {
            ModelStoreError::InvalidName { .. } => ApiError::invalid_field("name", detail),
            ModelStoreError::InvalidSource { .. } => ApiError::invalid_field("source", detail),
            ModelStoreError::NotAModel { .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "not-a-model",
                "Not a model kai can run",
                detail,
            ),
            ModelStoreError::NotInstalled { name, .. } => ApiError::new(
                StatusCode::NOT_FOUND,
                "not-found",
                "Not found",
                format!(
                    "no local model `{name}` is installed; GET /api/v1/local-models lists those \
                     that are"
                ),
            ),
            ModelStoreError::Busy { .. } => ApiError::new(
                StatusCode::CONFLICT,
                "local-model-busy",
                "Model busy",
                detail,
            ),
            ModelStoreError::Corrupt { model, why, .. } => ApiError::new(
                StatusCode::CONFLICT,
                "local-model-damaged",
                "Model damaged",
                format!(
                    "local model `{model}` is damaged ({why}); pull it again with \
                     POST /api/v1/local-models {{\"source\": \"{model}\"}}"
                ),
            ),
            ModelStoreError::Fetch { .. } => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "fetch-failed",
                "Fetching the model failed",
                detail,
            ),
            ModelStoreError::Mismatch { .. } => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "download-mismatch",
                "Download did not match its index",
                detail,
            ),
            ModelStoreError::Io { .. } => ApiError::internal(&err),
        }
    }
}

impl From<AgentError> for ApiError {
    fn from(err: AgentError) -> Self {
        match err {
            AgentError::NotFound(what) => ApiError::not_found(&what),
            AgentError::Invalid(message) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation-failed",
                "Validation failed",
                message,
            ),
            AgentError::Conflict(message) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", "Conflict", message)
            }
            AgentError::Audit(err) => err.into(),
            AgentError::Store(err) => err.into(),
        }
    }
}

impl From<KnowledgeError> for ApiError {
    fn from(err: KnowledgeError) -> Self {
        let detail = err.to_string();
        match err {
            KnowledgeError::NotFound(what) => ApiError::not_found(&what),
            KnowledgeError::Invalid(message) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation-failed",
                "Validation failed",
                message,
            ),
            KnowledgeError::Conflict(message) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", "Conflict", message)
            }
            KnowledgeError::TooLarge { .. } => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Payload too large",
                detail,
            ),
            KnowledgeError::Incomplete(_) => ApiError::bad_request(format!(
                "{detail}; nothing was stored, send the whole content again"
            )),
            KnowledgeError::Embedding { .. } => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "embedding-failed",
                "The embedding model failed",
                format!("{detail}; keyword search (`\"mode\": \"keyword\"`) works without it"),
            ),
            KnowledgeError::Store(err) => err.into(),
            KnowledgeError::Vault(err) => err.into(),
            KnowledgeError::Storage(_) => ApiError::internal(&err),
        }
    }
}

/// The problem for a response that left its handler with an error status and no draft.
pub(crate) fn draft_for_status(status: StatusCode) -> ProblemDraft {
    let (kind, title, detail) = match status {
        StatusCode::NOT_FOUND => ("not-found", "Not found", "no such resource"),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method-not-allowed",
            "Method not allowed",
            "this path does not accept this method; the Allow header lists those it does",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "payload-too-large",
            "Payload too large",
            "the request body is larger than http.max_body_size allows",
        ),
        StatusCode::REQUEST_TIMEOUT => {
            ("timeout", "Request timed out", "the request took too long")
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported-media-type",
            "Unsupported media type",
            "send the body as JSON with `Content-Type: application/json`",
        ),
        status if status.is_server_error() => (
            "internal",
            "Internal server error",
            "kai failed to handle this request; the server log has details under this request id",
        ),
        status => (
            "http-error",
            status.canonical_reason().unwrap_or("HTTP error"),
            "the request could not be handled",
        ),
    };
    ProblemDraft {
        kind,
        title,
        detail: detail.to_owned(),
        errors: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backtraces_never_reach_a_client() {
        let traced = "local model `m` cannot be loaded: tensor cut short\n   0: candle_core::error::Error::bt\n             at /root/.cargo/registry/src/candle-core/src/error.rs:260:25\n   1: kai_local::gguf::GgufFile::open";
        assert_eq!(
            public_text(traced.to_owned()),
            "local model `m` cannot be loaded: tensor cut short"
        );
        let panic_style = "failed\nstack backtrace:\n   0: std::backtrace";
        assert_eq!(public_text(panic_style.to_owned()), "failed");
        let plain = "tokens: must be at least 1; a line: with a colon\nand a second line";
        assert_eq!(public_text(plain.to_owned()), plain);
        let err = ApiError::bad_request(traced);
        assert!(!err.detail.contains("error.rs"), "{}", err.detail);
    }
}
