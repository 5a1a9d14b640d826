//! RFC 9457 problem details: the body of every error kai's API returns.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The media type of every error body.
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// An error, as RFC 9457 "Problem Details for HTTP APIs" describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "type": "urn:kai:problem:invalid-credentials",
    "title": "Invalid credentials",
    "status": 401,
    "detail": "invalid username or password",
    "instance": "/api/v1/auth/login",
    "request_id": "01936d0e-6a3c-7a51-b0d5-4c8d3f0b2e11"
}))]
pub struct Problem {
    /// A stable URI naming the kind of problem (`urn:kai:problem:…`); programs branch on this.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the kind of problem; the same for every occurrence.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong this time, and what to do about it.
    pub detail: String,
    /// The request path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// The request's id, also in the `x-request-id` header; quote it when reporting a problem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// For validation problems: each offending field and what is wrong with it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// One field that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FieldError {
    /// The field, as named in the request.
    pub field: String,
    /// What is wrong and what would be accepted.
    pub message: String,
}
