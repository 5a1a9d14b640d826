//! What can go wrong talking to a provider, classified so the router can decide between
//! retrying, failing over, falling back to another model, and giving up.

use std::fmt;
use std::time::Duration;

/// The class of a provider failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The connection could not be made or broke before an answer.
    Connect,
    /// No answer within the provider's timeout.
    Timeout,
    /// A stream stopped sending for longer than the provider's idle timeout.
    Stalled,
    /// The stream broke off in the middle.
    Interrupted,
    /// The provider answered something kai cannot read.
    Malformed,
    /// 429: too many requests or tokens for now.
    RateLimited,
    /// 401: the credential was refused.
    Authentication,
    /// 403: the credential may not do this.
    PermissionDenied,
    /// 404: no such model or endpoint.
    NotFound,
    /// The prompt does not fit the model's context window.
    ContextLengthExceeded,
    /// The provider's content policy refused the request.
    ContentFiltered,
    /// 4xx: the provider found the request invalid.
    BadRequest,
    /// 503 or 529: the provider is overloaded.
    Overloaded,
    /// 5xx: the provider failed.
    Server,
    /// The provider cannot do this at all (say, embeddings from a chat-only API).
    Unsupported,
}

impl ErrorKind {
    /// Whether the same request may succeed if tried again, here or on another deployment.
    #[must_use]
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            ErrorKind::Connect
                | ErrorKind::Timeout
                | ErrorKind::Stalled
                | ErrorKind::Interrupted
                | ErrorKind::RateLimited
                | ErrorKind::Overloaded
                | ErrorKind::Server
        )
    }

    /// Whether the failure belongs to the deployment (its credential, its model name, its
    /// health) rather than to the request: another deployment may well succeed.
    #[must_use]
    pub fn is_deployment_fault(self) -> bool {
        self.is_transient()
            || matches!(
                self,
                ErrorKind::Authentication
                    | ErrorKind::PermissionDenied
                    | ErrorKind::NotFound
                    | ErrorKind::Malformed
                    | ErrorKind::Unsupported
            )
    }

    /// Whether the failure counts against the deployment's health (circuit breaker).
    #[must_use]
    pub fn counts_against_health(self) -> bool {
        (self.is_transient() && self != ErrorKind::RateLimited) || self == ErrorKind::Malformed
    }

    /// A short name, for metrics and logs.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Stalled => "stalled",
            ErrorKind::Interrupted => "interrupted",
            ErrorKind::Malformed => "malformed",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Authentication => "authentication",
            ErrorKind::PermissionDenied => "permission_denied",
            ErrorKind::NotFound => "not_found",
            ErrorKind::ContextLengthExceeded => "context_length_exceeded",
            ErrorKind::ContentFiltered => "content_filtered",
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::Overloaded => "overloaded",
            ErrorKind::Server => "server",
            ErrorKind::Unsupported => "unsupported",
        }
    }
}

/// A failed call to a provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderError {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// The HTTP status, when the provider answered with one.
    pub status: Option<u16>,
    /// What happened, in the provider's words where it gave any. Never holds a credential.
    pub message: String,
    /// How long the provider asked to wait before trying again.
    pub retry_after: Option<Duration>,
}

impl ProviderError {
    /// An error of `kind` with a message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ProviderError {
        ProviderError {
            kind,
            status: None,
            message: message.into(),
            retry_after: None,
        }
    }

    /// An answer kai cannot read.
    pub fn malformed(message: impl Into<String>) -> ProviderError {
        ProviderError::new(ErrorKind::Malformed, message)
    }

    /// Something the provider cannot do.
    pub fn unsupported(message: impl Into<String>) -> ProviderError {
        ProviderError::new(ErrorKind::Unsupported, message)
    }

    /// An error status from the provider, classified by status and message.
    pub fn from_status(
        status: u16,
        message: impl Into<String>,
        retry_after: Option<Duration>,
    ) -> ProviderError {
        let message = message.into();
        ProviderError {
            kind: classify(status, &message),
            status: Some(status),
            message,
            retry_after,
        }
    }
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            Some(status) => write!(f, "HTTP {status}: {}", self.message)?,
            None => f.write_str(&self.message)?,
        }
        if let Some(wait) = self.retry_after {
            write!(f, " (retry after {} s)", wait.as_secs_f32())?;
        }
        Ok(())
    }
}

impl std::error::Error for ProviderError {}

/// Classifies an error status. Providers signal an over-long prompt and a policy refusal with a
/// plain 400 (or 413) and words, so the message decides those.
fn classify(status: u16, message: &str) -> ErrorKind {
    let lower = message.to_ascii_lowercase();
    let context = [
        "context length",
        "context_length",
        "context window",
        "maximum context",
        "too many tokens",
        "prompt is too long",
        "input is too long",
        "exceeds the maximum number of tokens",
        "token limit",
    ];
    let content = [
        "content_filter",
        "content filter",
        "content policy",
        "content_policy",
        "safety",
        "responsible ai",
    ];
    match status {
        400 | 413 | 422 if context.iter().any(|needle| lower.contains(needle)) => {
            ErrorKind::ContextLengthExceeded
        }
        400 | 403 | 422 if content.iter().any(|needle| lower.contains(needle)) => {
            ErrorKind::ContentFiltered
        }
        401 => ErrorKind::Authentication,
        403 => ErrorKind::PermissionDenied,
        404 => ErrorKind::NotFound,
        408 => ErrorKind::Timeout,
        413 => ErrorKind::ContextLengthExceeded,
        429 => ErrorKind::RateLimited,
        503 | 529 => ErrorKind::Overloaded,
        500..=599 => ErrorKind::Server,
        _ => ErrorKind::BadRequest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_words_classify() {
        let kind = |status, message| ProviderError::from_status(status, message, None).kind;
        assert_eq!(kind(401, "bad key"), ErrorKind::Authentication);
        assert_eq!(kind(429, "slow down"), ErrorKind::RateLimited);
        assert_eq!(kind(529, "overloaded"), ErrorKind::Overloaded);
        assert_eq!(kind(502, "bad gateway"), ErrorKind::Server);
        assert_eq!(
            kind(
                400,
                "This model's maximum context length is 8192 tokens. However, you requested 9000"
            ),
            ErrorKind::ContextLengthExceeded
        );
        assert_eq!(
            kind(400, "prompt is too long: 210000 tokens > 200000 maximum"),
            ErrorKind::ContextLengthExceeded
        );
        assert_eq!(
            kind(400, "The response was filtered due to the content_filter"),
            ErrorKind::ContentFiltered
        );
        assert_eq!(kind(400, "messages: required"), ErrorKind::BadRequest);
    }

    #[test]
    fn transience_decides_retries() {
        assert!(ErrorKind::Overloaded.is_transient());
        assert!(!ErrorKind::BadRequest.is_transient());
        assert!(ErrorKind::Authentication.is_deployment_fault());
        assert!(!ErrorKind::ContextLengthExceeded.is_deployment_fault());
        assert!(!ErrorKind::RateLimited.counts_against_health());
        assert!(ErrorKind::Server.counts_against_health());
    }
}
