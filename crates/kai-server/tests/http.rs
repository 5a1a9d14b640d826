//! What every endpoint shares: request ids, problem documents for every kind of bad request,
//! limits, timeouts, metrics, the OpenAPI document, the API reference, and graceful shutdown.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use axum::routing::get;
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};
use support::TestServer;
use utoipa_axum::router::OpenApiRouter;

#[tokio::test]
async fn liveness_and_readiness() {
    let server = TestServer::start().await;
    let health: Value = server
        .client
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health, json!({"status": "ok"}));
    let ready = server
        .client
        .get(server.url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["status"], "ready");
    assert!(["sqlite", "postgres"].contains(&ready["database"].as_str().unwrap()));
}

#[tokio::test]
async fn readiness_fails_with_a_problem_when_the_database_is_gone() {
    let server = TestServer::start().await;
    server.state.accounts().store().close().await;
    let reply = server.send(Method::GET, "/readyz", None, None).await;
    reply.assert_problem(StatusCode::SERVICE_UNAVAILABLE, "not-ready");
    // Liveness does not depend on the database.
    let health = server.send(Method::GET, "/healthz", None, None).await;
    assert_eq!(health.status, StatusCode::OK);
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_honours_a_sensible_one() {
    let server = TestServer::start().await;
    let response = server
        .client
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    let generated = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(uuid::Uuid::parse_str(&generated).is_ok(), "{generated}");

    let response = server
        .client
        .get(server.url("/nowhere"))
        .header("x-request-id", "trace-abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-abc-123");
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["request_id"], "trace-abc-123");

    // Ids that could pollute logs are replaced.
    let response = server
        .client
        .get(server.url("/healthz"))
        .header("x-request-id", "x".repeat(200))
        .send()
        .await
        .unwrap();
    assert_ne!(response.headers()["x-request-id"], "x".repeat(200).as_str());
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_are_problems() {
    let server = TestServer::start().await;
    let reply = server
        .send(Method::GET, "/api/v1/nothing-here", None, None)
        .await;
    reply.assert_problem(StatusCode::NOT_FOUND, "not-found");
    assert_eq!(reply.body["instance"], "/api/v1/nothing-here");

    let reply = server
        .send(Method::PUT, "/api/v1/auth/login", None, None)
        .await;
    reply.assert_problem(StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed");
    assert_eq!(reply.headers[header::ALLOW], "POST");
}

#[tokio::test]
async fn malformed_bodies_are_problems_that_say_what_to_fix() {
    let server = TestServer::start().await;
    let login = server.url("/api/v1/auth/login");

    let response = server
        .client
        .post(&login)
        .header(header::CONTENT_TYPE, "application/json")
        .body("{\"username\":")
        .send()
        .await
        .unwrap();
    let reply = support::Reply::read(response).await;
    reply.assert_problem(StatusCode::BAD_REQUEST, "invalid-json");
    assert!(reply.detail().contains("line 1"), "{}", reply.detail());

    let reply = server
        .post("/api/v1/auth/login", None, json!({"username": "root"}))
        .await;
    reply.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation-failed");
    assert!(
        reply.detail().contains("missing field `password`"),
        "{}",
        reply.detail()
    );

    let reply = server
        .post(
            "/api/v1/auth/login",
            None,
            json!({"username": "root", "password": 5}),
        )
        .await;
    reply.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation-failed");

    let reply = server
        .post(
            "/api/v1/auth/login",
            None,
            json!({"username": "root", "password": "x", "otp": 1}),
        )
        .await;
    reply.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation-failed");
    assert!(
        reply.detail().contains("unknown field `otp`"),
        "{}",
        reply.detail()
    );

    let response = server
        .client
        .post(&login)
        .body("username=root")
        .send()
        .await
        .unwrap();
    support::Reply::read(response)
        .await
        .assert_problem(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type");
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let server = TestServer::start_with(
        |settings| settings.http.max_body_size = kai_config::ByteSize::kib(4),
        OpenApiRouter::new(),
    )
    .await;
    let huge = json!({"username": "root", "password": "x".repeat(8 * 1024)});
    let reply = server.post("/api/v1/auth/login", None, huge).await;
    reply.assert_problem(StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large");
    assert!(
        reply.detail().contains("http.max_body_size"),
        "{}",
        reply.detail()
    );
    // The server is unharmed.
    server.login(support::ADMIN, support::PASSWORD).await;
}

#[tokio::test]
async fn the_model_api_has_its_own_body_limit_and_each_413_names_the_one_that_applied() {
    let server = TestServer::start_with(
        |settings| {
            settings.http.max_body_size = kai_config::ByteSize::kib(4);
            settings.http.max_model_body_size = kai_config::ByteSize::kib(16);
        },
        OpenApiRouter::new(),
    )
    .await;
    let admin = server.admin_token().await;
    let key = server.create_key(&admin, &["write"]).await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let chat = |size: usize| {
        json!({
            "model": "nowhere",
            "messages": [{"role": "user", "content": "x".repeat(size)}],
        })
    };
    // Over the general limit, under the model one: read, and answered on its merits.
    let reply = server
        .post("/v1/chat/completions", Some(&key), chat(8 * 1024))
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.text);
    assert_eq!(
        reply.body["error"]["code"], "model_not_found",
        "{}",
        reply.text
    );
    // Over the model limit: 413 in OpenAI's shape, naming the model limit.
    let reply = server
        .post("/v1/chat/completions", Some(&key), chat(20 * 1024))
        .await;
    assert_eq!(
        reply.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        reply.text
    );
    let message = reply.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("16") && message.contains("KiB limit (http.max_model_body_size)"),
        "{message}"
    );
    // The rest of the API keeps the general limit, and says so.
    let reply = server
        .post(
            "/api/v1/keys",
            Some(&admin),
            json!({"name": "x".repeat(8 * 1024), "scopes": ["read"]}),
        )
        .await;
    reply.assert_problem(StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large");
    assert!(
        reply.detail().contains("4") && reply.detail().contains("KiB limit (http.max_body_size)"),
        "{}",
        reply.detail()
    );
}

#[tokio::test]
async fn slow_clients_are_cut_off_and_others_are_served_meanwhile() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let server = TestServer::start_with(
        |settings| {
            settings.http.header_read_timeout = Duration::from_millis(300);
            settings.http.request_timeout = Duration::from_millis(500);
        },
        OpenApiRouter::new(),
    )
    .await;
    let address = server.base.trim_start_matches("http://").to_owned();
    let admin = server.admin_token().await;
    let key = server.create_key(&admin, &["write"]).await["key"]
        .as_str()
        .unwrap()
        .to_owned();

    // Half a request line: the connection is closed once the header deadline passes.
    let mut half = tokio::net::TcpStream::connect(&address).await.unwrap();
    half.write_all(b"GET /heal").await.unwrap();

    // A body that stops half-way, on the API and on the model API (which has no handler
    // deadline, but its bodies must arrive all the same): 408.
    let stalled = |path: &'static str, bearer: String| {
        let address = address.clone();
        async move {
            let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
            let head = format!(
                "POST {path} HTTP/1.1\r\nhost: kai\r\nauthorization: Bearer {bearer}\r\n\
                 content-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"name\""
            );
            stream.write_all(head.as_bytes()).await.unwrap();
            let mut answer = Vec::new();
            tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
                .await
                .expect("the server answers a stalled body")
                .unwrap();
            String::from_utf8_lossy(&answer).into_owned()
        }
    };
    let api = tokio::spawn(stalled("/api/v1/keys", admin.clone()));
    let model = tokio::spawn(stalled("/v1/chat/completions", key));

    // Meanwhile, others are served.
    for _ in 0..5 {
        let reply = server.get("/api/v1/me", &admin).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    }

    let api = api.await.unwrap();
    assert!(api.starts_with("HTTP/1.1 408"), "{api}");
    assert!(
        api.contains("urn:kai:problem:body-timeout") && api.contains("http.request_timeout"),
        "{api}"
    );
    let model = model.await.unwrap();
    assert!(model.starts_with("HTTP/1.1 408"), "{model}");
    assert!(model.contains("\"code\":\"body_timeout\""), "{model}");

    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), half.read_to_end(&mut rest))
        .await
        .expect("the connection with half a request line is closed");
    // hyper closes it, answering 408 or nothing at all.
    assert!(
        read.is_err() || rest.is_empty() || rest.starts_with(b"HTTP/1.1 408"),
        "{rest:?}"
    );
}

#[tokio::test]
async fn slow_handlers_time_out_with_a_problem() {
    let slow = OpenApiRouter::new().route(
        "/test/slow",
        get(|| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            "late"
        }),
    );
    let server = TestServer::start_with(
        |s| s.http.request_timeout = Duration::from_millis(200),
        slow,
    )
    .await;
    let reply = server.send(Method::GET, "/test/slow", None, None).await;
    reply.assert_problem(StatusCode::SERVICE_UNAVAILABLE, "timeout");
    assert!(
        reply.detail().contains("http.request_timeout"),
        "{}",
        reply.detail()
    );
}

#[tokio::test]
async fn panics_become_problems_without_internals() {
    let boom = OpenApiRouter::new().route(
        "/test/panic",
        get(|| async {
            if true {
                panic!("secret internal detail");
            }
            "unreachable"
        }),
    );
    let server = TestServer::start_with(|_| {}, boom).await;
    let reply = server.send(Method::GET, "/test/panic", None, None).await;
    reply.assert_problem(StatusCode::INTERNAL_SERVER_ERROR, "internal");
    assert!(
        !reply.text.contains("secret internal detail"),
        "{}",
        reply.text
    );
    // The process survives.
    assert_eq!(
        server
            .send(Method::GET, "/healthz", None, None)
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let server = TestServer::start().await;
    server.send(Method::GET, "/healthz", None, None).await;
    server.send(Method::GET, "/api/v1/me", None, None).await;
    server
        .send(Method::GET, "/api/v1/keys/123", None, None)
        .await;
    let response = server
        .client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert!(
        response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = response.text().await.unwrap();
    for expected in [
        r#"kai_http_requests_total{method="GET",route="/healthz",status="200"} 1"#,
        r#"kai_http_requests_total{method="GET",route="/api/v1/me",status="401"} 1"#,
        // Routes are labelled by their template, never by the ids in them.
        r#"route="/api/v1/keys/{id}",status="401""#,
        "kai_http_request_duration_seconds_bucket",
        "kai_http_requests_in_flight 1",
        r#"kai_build_info{version=""#,
        "kai_db_pool_max_connections 8",
        "kai_db_pool_connections ",
        "# EOF",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

#[tokio::test]
async fn the_openapi_document_covers_every_route_and_error() {
    let server = TestServer::start().await;
    let doc: Value = server
        .client
        .get(server.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/docs",
        "/api/v1/auth/login",
        "/api/v1/auth/refresh",
        "/api/v1/auth/logout",
        "/api/v1/me",
        "/api/v1/me/password",
        "/api/v1/keys",
        "/api/v1/keys/{id}",
        "/api/v1/users",
        "/api/v1/users/{id}",
        "/api/v1/keys/{id}/budgets",
        "/api/v1/providers",
        "/api/v1/providers/{name}",
        "/api/v1/providers/{name}/models",
        "/api/v1/models",
        "/api/v1/models/{name}",
        "/api/v1/usage",
        "/api/v1/usage/records",
        "/api/v1/conversations",
        "/api/v1/conversations/{id}",
        "/api/v1/conversations/{id}/messages",
        "/api/v1/local-models",
        "/api/v1/local-models/{name}",
        "/v1/chat/completions",
        "/v1/embeddings",
        "/v1/models",
        "/v1/models/{id}",
    ] {
        assert!(paths.contains_key(path), "{path} is not documented");
    }
    let mut operations = 0;
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            operations += 1;
            let responses = operation["responses"].as_object().unwrap();
            // The OpenAI-compatible API answers errors in OpenAI's shape.
            let error_type = if path.starts_with("/v1/") {
                "application/json"
            } else {
                "application/problem+json"
            };
            for status in ["500", "503"] {
                let problem = &responses[status]["content"][error_type];
                assert!(
                    problem.is_object(),
                    "{method} {path} does not document {status}"
                );
            }
            if operation.get("security").is_some() {
                assert!(
                    responses.contains_key("401") && responses.contains_key("403"),
                    "{method} {path}"
                );
            }
            if operation.get("requestBody").is_some() {
                for status in ["400", "413", "415", "422"] {
                    assert!(
                        responses.contains_key(status),
                        "{method} {path} does not document {status}"
                    );
                }
            }
        }
    }
    assert!(operations >= 17, "{operations}");
    assert!(doc["components"]["schemas"]["Problem"].is_object());
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

#[tokio::test]
async fn the_api_reference_is_served_without_a_cdn() {
    let server = TestServer::start().await;
    let page = server.client.get(server.url("/docs")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .contains("default-src 'self'")
    );
    let html = page.text().await.unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "the page must load nothing from elsewhere"
    );
    for asset in [
        "/docs/swagger-ui-bundle.js",
        "/docs/swagger-ui.css",
        "/docs/init.js",
    ] {
        assert!(html.contains(asset), "{asset}");
        let response = server.client.get(server.url(asset)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{asset}");
        assert!(response.bytes().await.unwrap().len() > 100, "{asset}");
    }
    let init = server
        .client
        .get(server.url("/docs/init.js"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(init.contains("/openapi.json"));
}

#[tokio::test]
async fn shutdown_drains_requests_in_flight_and_stops_accepting() {
    let slow = OpenApiRouter::new().route(
        "/test/slow",
        get(|| async {
            tokio::time::sleep(Duration::from_millis(600)).await;
            "done"
        }),
    );
    let mut server =
        TestServer::start_with(|s| s.http.shutdown_grace = Duration::from_secs(10), slow).await;
    let in_flight = {
        let request = server.client.get(server.url("/test/slow")).send();
        tokio::spawn(request)
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    server.shut_down();
    let response = in_flight.await.unwrap().unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.text().await.unwrap(),
        "done",
        "the request in flight finished"
    );
    let finished = tokio::time::timeout(Duration::from_secs(5), server.task.take().unwrap()).await;
    assert!(finished.unwrap().unwrap().is_ok());
    let fresh = reqwest::Client::new()
        .get(server.url("/healthz"))
        .send()
        .await;
    assert!(fresh.is_err(), "no new connections after shutdown");
}

#[tokio::test]
async fn shutdown_gives_up_on_requests_that_outlast_the_grace_period() {
    let stuck = OpenApiRouter::new().route(
        "/test/stuck",
        get(|| async {
            tokio::time::sleep(Duration::from_secs(600)).await;
            "never"
        }),
    );
    let mut server = TestServer::start_with(
        |s| {
            s.http.shutdown_grace = Duration::from_millis(300);
            s.http.request_timeout = Duration::from_secs(900);
        },
        stuck,
    )
    .await;
    let _in_flight = tokio::spawn(server.client.get(server.url("/test/stuck")).send());
    tokio::time::sleep(Duration::from_millis(150)).await;
    server.shut_down();
    // Well inside the stuck request's ten minutes: the server stopped waiting for it.
    let finished = tokio::time::timeout(Duration::from_secs(30), server.task.take().unwrap()).await;
    assert!(
        finished
            .expect("serve returned after the grace period")
            .unwrap()
            .is_ok()
    );
}

/// docs/openapi.json is the document the server serves. Run the tests with `UPDATE_DOCS=1` to
/// rewrite it after changing the API.
#[test]
fn the_committed_openapi_document_is_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    let expected = format!(
        "{}\n",
        kai_server::openapi_document().to_pretty_json().unwrap()
    );
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != expected {
        if std::env::var_os("UPDATE_DOCS").is_some() {
            std::fs::write(&path, expected).unwrap();
        } else {
            panic!(
                "docs/openapi.json is stale; run `UPDATE_DOCS=1 cargo test -p kai-server --test http`"
            );
        }
    }
}

#[tokio::test]
async fn made_up_methods_do_not_grow_the_metrics() {
    let server = TestServer::start().await;
    for i in 0..5 {
        let method = Method::from_bytes(format!("FOO{i}").as_bytes()).unwrap();
        server.send(method, "/healthz", None, None).await;
    }
    let text = server
        .client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!text.contains("FOO"), "{text}");
    assert!(text.contains(r#"method="other""#), "{text}");
}

#[tokio::test]
async fn a_json_array_is_not_an_object_of_its_fields() {
    let server = TestServer::start().await;
    // serde would read `["root", "…"]` as a login's username and password, in order.
    let reply = server
        .post(
            "/api/v1/auth/login",
            None,
            json!([support::ADMIN, support::PASSWORD]),
        )
        .await;
    reply.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation-failed");
    assert!(reply.detail().contains("JSON object"), "{}", reply.detail());
    let token = server.admin_token().await;
    let reply = server
        .post("/api/v1/conversations", Some(&token), json!([null, null]))
        .await;
    reply.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation-failed");
    // Under /v1, in OpenAI's shape and status.
    let reply = server
        .post("/v1/chat/completions", Some(&token), json!(["m", []]))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("JSON object")
    );
}

#[tokio::test]
async fn query_parameters_are_checked_and_out_of_range_ones_refused() {
    let server = TestServer::start().await;
    let token = server.admin_token().await;
    // A cursor beyond what the log can number is refused, not a failure of the database.
    let reply = server
        .get(&format!("/api/v1/audit?after={}", u64::MAX), &token)
        .await;
    reply.assert_problem(StatusCode::BAD_REQUEST, "invalid-request");
    assert!(reply.detail().contains("after"), "{}", reply.detail());
    // The totals and the records take their own parameters.
    let reply = server
        .get("/api/v1/usage/records?group_by=model", &token)
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    assert!(reply.detail().contains("group_by"), "{}", reply.detail());
    let reply = server.get("/api/v1/usage?limit=5", &token).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    let reply = server.get("/api/v1/usage?group_by=model", &token).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
}
