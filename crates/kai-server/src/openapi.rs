//! The OpenAPI document's frame, and the errors every operation shares.
//!
//! Each handler documents its own success and its own specific errors (404, 409, 429…). The
//! errors that follow from how an operation is called are added here, from the operation's
//! shape, so none is forgotten: 401 and 403 where a credential is needed, 400, 413, 415 and 422
//! where a JSON body is read, 500 and 503 everywhere.

use std::collections::BTreeMap;

use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::schema::{Object, Schema};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi as _};

use kai_proto::openai::ErrorResponse;
use kai_proto::{FieldError, PROBLEM_CONTENT_TYPE, Problem, WsClientMessage, WsServerMessage};

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "kai",
        description = "The HTTP API of kai, a personal AI system. Authenticate with \
            `Authorization: Bearer <token>`, where the token is an access token from \
            `/api/v1/auth/login` or an API key (`kai_…`) from `/api/v1/keys`.\n\n\
            Every error is an RFC 9457 problem document (`application/problem+json`) whose \
            `type` is a stable `urn:kai:problem:…` URI, with a `detail` saying what to do and \
            the `request_id` also sent in the `x-request-id` header. Under `/v1/`, the \
            OpenAI-compatible API, errors take OpenAI's shape instead, \
            `{\"error\": {\"message\", \"type\", \"param\", \"code\"}}`, so that OpenAI's SDKs \
            understand them; `code` is the same problem kind.",
        license(name = "MIT OR Apache-2.0"),
    ),
    components(schemas(Problem, FieldError, ErrorResponse, WsClientMessage, WsServerMessage)),
    paths(crate::routes::openai::retrieve_model),
    tags(
        (name = "auth", description = "Logging in, refreshing tokens, logging out"),
        (name = "me", description = "The caller's own account"),
        (name = "keys", description = "API keys for programs"),
        (name = "users", description = "User management (admins)"),
        (name = "openai", description = "The OpenAI-compatible model API: chat completions, embeddings, models"),
        (name = "gateway", description = "Providers and models behind the gateway (admins)"),
        (name = "usage", description = "Model usage: requests, tokens, cost"),
        (name = "conversations", description = "Chats kept per user"),
        (name = "local-models", description = "Models pulled onto the server's machine for the embedded runtime"),
        (name = "operations", description = "Health, readiness, metrics and this document"),
        (name = "realtime", description = "The real-time channel: one WebSocket carrying the user's events and chat (messages: `WsClientMessage`, `WsServerMessage`)"),
    ),
)]
struct Frame;

/// The document's frame: info, tags, shared schemas; paths come from the routers.
pub(crate) fn frame() -> OpenApi {
    Frame::openapi()
}

/// Adds the bearer scheme and the shared error responses to every operation.
pub(crate) struct CommonErrors;

impl Modify for CommonErrors {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An access token (JWT) from /api/v1/auth/login, or an API key `kai_…`.",
                    ))
                    .build(),
            ),
        );
        if let Some(components) = &mut openapi.components {
            close_compositions(&mut components.schemas);
        }
        for (path, item) in &mut openapi.paths.paths {
            let openai = path.starts_with("/v1/");
            for operation in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                add_common_errors(operation, openai);
            }
        }
    }
}

/// Adds the errors implied by the operation's shape; `openai` ones answer in OpenAI's error
/// shape rather than as problem documents.
fn add_common_errors(operation: &mut Operation, openai: bool) {
    let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
    let has_body = operation.request_body.is_some();
    let has_parameter = |kind: ParameterIn| {
        operation.parameters.as_ref().is_some_and(|parameters| {
            parameters
                .iter()
                .any(|p| matches!(p, RefOr::T(p) if p.parameter_in == kind))
        })
    };
    let has_path_parameter = has_parameter(ParameterIn::Path);
    let has_query_parameter = has_parameter(ParameterIn::Query);
    let mut shared: Vec<(&str, &str)> = Vec::new();
    if has_query_parameter && !has_body {
        shared.push((
            "400",
            "A query parameter is unknown, malformed or out of range, or a path parameter is \
             malformed (an id that is not a UUID)",
        ));
    }
    if has_path_parameter && !has_body {
        shared.push((
            "400",
            "A path parameter is malformed (an id that is not a UUID)",
        ));
    }
    if has_body {
        shared.push((
            "400",
            "The body is not valid JSON, or a path parameter is malformed",
        ));
        shared.push((
            "413",
            if openai {
                "The body is larger than `http.max_model_body_size`"
            } else {
                "The body is larger than `http.max_body_size`"
            },
        ));
        shared.push((
            "408",
            "The body stopped arriving for longer than `http.request_timeout`",
        ));
        shared.push(("415", "The body is not sent as `application/json`"));
        shared.push((
            "422",
            "A field is missing, unknown, or has a value that is not accepted",
        ));
    }
    if secured {
        shared.push((
            "401",
            "No credential, or an invalid, expired or revoked one; see `WWW-Authenticate`",
        ));
        shared.push((
            "403",
            "The credential lacks the scope or role the operation needs",
        ));
    }
    shared.push((
        "500",
        "kai failed; the log has details under the request id",
    ));
    shared.push((
        "503",
        "The request timed out (`http.request_timeout`) or the database is unavailable",
    ));
    for (status, description) in shared {
        if operation.responses.responses.contains_key(status) {
            continue;
        }
        let (content_type, schema) = if openai {
            ("application/json", "ErrorResponse")
        } else {
            (PROBLEM_CONTENT_TYPE, "Problem")
        };
        let response = ResponseBuilder::new()
            .description(description)
            .content(
                content_type,
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name(schema)))
                    .build(),
            )
            .build();
        operation
            .responses
            .responses
            .insert(status.to_owned(), response.into());
    }
}

/// Turns each schema that is an `allOf` of objects (a type that flattens another with
/// `#[serde(flatten)]`, such as a provider as listed: its definition plus where it came from)
/// into one object with the properties of all. A request type refuses unknown fields, so its
/// schema says `additionalProperties: false`; inside an `allOf`, that would forbid the very
/// fields the composition adds, and every answer would break its own schema.
fn close_compositions(schemas: &mut BTreeMap<String, RefOr<Schema>>) {
    let object = |part: &RefOr<Schema>, schemas: &BTreeMap<String, RefOr<Schema>>| match part {
        RefOr::T(Schema::Object(object)) => Some(object.clone()),
        RefOr::Ref(reference) => reference
            .ref_location
            .strip_prefix("#/components/schemas/")
            .and_then(|name| match schemas.get(name) {
                Some(RefOr::T(Schema::Object(object))) => Some(object.clone()),
                _ => None,
            }),
        RefOr::T(_) => None,
    };
    let mut merged: Vec<(String, Object)> = Vec::new();
    for (name, schema) in schemas.iter() {
        let RefOr::T(Schema::AllOf(all)) = schema else {
            continue;
        };
        let parts: Option<Vec<Object>> = all.items.iter().map(|p| object(p, schemas)).collect();
        let Some(parts) = parts else {
            continue;
        };
        let mut one = Object::new();
        one.description.clone_from(&all.description);
        for part in parts {
            one.schema_type = part.schema_type;
            for property in part.required {
                if !one.required.contains(&property) {
                    one.required.push(property);
                }
            }
            one.properties.extend(part.properties);
        }
        merged.push((name.clone(), one));
    }
    for (name, one) in merged {
        schemas.insert(name, RefOr::T(Schema::Object(one)));
    }
}
