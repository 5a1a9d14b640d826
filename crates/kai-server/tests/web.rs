//! What a browser meets: the web UI's files and page routes, the cookie login with its CSRF
//! check, cross-origin rules, and the security headers on every response.

#![allow(clippy::unwrap_used)]

mod support;

use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};
use support::{ADMIN, PASSWORD, Reply, TestServer};
use utoipa_axum::router::OpenApiRouter;

/// A browser's cookie jar, reduced to what these tests need: the cookies kai set, by name.
#[derive(Debug, Default)]
struct Cookies(Vec<(String, String, String)>);

impl Cookies {
    /// Takes the `Set-Cookie` headers of a reply: (name, value, attributes).
    fn from(reply: &Reply) -> Cookies {
        Cookies(
            reply
                .headers
                .get_all(header::SET_COOKIE)
                .iter()
                .map(|value| {
                    let text = value.to_str().unwrap();
                    let (pair, attributes) = text.split_once(';').unwrap_or((text, ""));
                    let (name, value) = pair.split_once('=').unwrap();
                    (name.into(), value.into(), attributes.to_ascii_lowercase())
                })
                .collect(),
        )
    }

    fn value(&self, name: &str) -> &str {
        &self.0.iter().find(|(n, ..)| n == name).unwrap().1
    }

    fn attributes(&self, name: &str) -> &str {
        &self.0.iter().find(|(n, ..)| n == name).unwrap().2
    }

    /// The `Cookie` header a browser would send to /api/v1/auth.
    fn header(&self) -> String {
        self.0
            .iter()
            .map(|(name, value, _)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

async fn cookie_login(server: &TestServer) -> (Reply, Cookies) {
    let reply = server
        .post(
            "/api/v1/auth/login",
            None,
            json!({"username": ADMIN, "password": PASSWORD, "cookie": true}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let cookies = Cookies::from(&reply);
    (reply, cookies)
}

/// A cookie-authenticated POST as a browser page sends it.
async fn with_cookies(
    server: &TestServer,
    path: &str,
    cookies: &str,
    csrf: Option<&str>,
    origin: Option<&str>,
) -> Reply {
    let mut request = server
        .client
        .post(server.url(path))
        .header(header::COOKIE, cookies)
        .json(&json!({}));
    if let Some(csrf) = csrf {
        request = request.header("x-csrf-token", csrf);
    }
    if let Some(origin) = origin {
        request = request.header(header::ORIGIN, origin);
    }
    Reply::read(request.send().await.unwrap()).await
}

#[tokio::test]
async fn a_cookie_login_keeps_the_refresh_token_out_of_reach_of_scripts() {
    let server = TestServer::start().await;
    let (reply, cookies) = cookie_login(&server).await;
    assert!(reply.body.get("refresh_token").is_none(), "{}", reply.text);
    assert!(reply.body["access_token"].as_str().is_some());

    let refresh = cookies.attributes("kai_refresh");
    assert!(refresh.contains("httponly"), "{refresh}");
    assert!(refresh.contains("samesite=strict"), "{refresh}");
    assert!(refresh.contains("path=/api/v1/auth"), "{refresh}");
    assert!(refresh.contains("max-age=2592000"), "{refresh}");
    // Over plain HTTP a Secure cookie would never come back.
    assert!(!refresh.contains("secure"), "{refresh}");
    assert!(cookies.value("kai_refresh").starts_with("kairt_"));
    let csrf = cookies.attributes("kai_csrf");
    assert!(!csrf.contains("httponly"), "{csrf}");
    assert!(
        csrf.contains("samesite=strict") && csrf.contains("path=/"),
        "{csrf}"
    );
    assert_ne!(cookies.value("kai_csrf"), cookies.value("kai_refresh"));
}

#[tokio::test]
async fn refresh_by_cookie_needs_the_csrf_token_and_rotates_both_cookies() {
    let server = TestServer::start().await;
    let (_, cookies) = cookie_login(&server).await;
    let jar = cookies.header();
    let csrf = cookies.value("kai_csrf");

    let missing = with_cookies(&server, "/api/v1/auth/refresh", &jar, None, None).await;
    missing.assert_problem(StatusCode::FORBIDDEN, "csrf-failed");
    assert!(
        missing.detail().contains("X-CSRF-Token"),
        "{}",
        missing.text
    );
    let wrong = with_cookies(&server, "/api/v1/auth/refresh", &jar, Some("forged"), None).await;
    wrong.assert_problem(StatusCode::FORBIDDEN, "csrf-failed");
    let foreign = with_cookies(
        &server,
        "/api/v1/auth/refresh",
        &jar,
        Some(csrf),
        Some("https://evil.example"),
    )
    .await;
    foreign.assert_problem(StatusCode::FORBIDDEN, "origin-not-allowed");
    assert!(foreign.detail().contains("http.cors_origins"));

    // kai's own page: its origin is the address it was served from.
    let origin = server.base.clone();
    let renewed = with_cookies(
        &server,
        "/api/v1/auth/refresh",
        &jar,
        Some(csrf),
        Some(&origin),
    )
    .await;
    assert_eq!(renewed.status, StatusCode::OK, "{}", renewed.text);
    assert!(renewed.body.get("refresh_token").is_none());
    let token = renewed.body["access_token"].as_str().unwrap();
    assert_eq!(server.get("/api/v1/me", token).await.status, StatusCode::OK);
    let next = Cookies::from(&renewed);
    assert_ne!(next.value("kai_refresh"), cookies.value("kai_refresh"));
    assert_ne!(next.value("kai_csrf"), csrf);

    // The spent cookie is a copied one now: presenting it ends the session.
    let replayed = with_cookies(&server, "/api/v1/auth/refresh", &jar, Some(csrf), None).await;
    replayed.assert_problem(StatusCode::UNAUTHORIZED, "refresh-token-reused");
}

#[tokio::test]
async fn refresh_without_any_token_says_where_it_should_be() {
    let server = TestServer::start().await;
    let reply = server.post("/api/v1/auth/refresh", None, json!({})).await;
    reply.assert_problem(StatusCode::UNAUTHORIZED, "invalid-refresh-token");
    assert!(
        reply.detail().contains("\"cookie\": true"),
        "{}",
        reply.text
    );
    // Programs still send it in the body, as before.
    let tokens = server.login(ADMIN, PASSWORD).await;
    let renewed = server
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": tokens["refresh_token"]}),
        )
        .await;
    assert_eq!(renewed.status, StatusCode::OK, "{}", renewed.text);
    assert!(renewed.body["refresh_token"].as_str().is_some());
    assert!(renewed.headers.get(header::SET_COOKIE).is_none());
}

#[tokio::test]
async fn logout_by_cookie_ends_the_session_and_clears_the_cookies() {
    let server = TestServer::start().await;
    let (login, cookies) = cookie_login(&server).await;
    let token = login.body["access_token"].as_str().unwrap().to_owned();
    let jar = cookies.header();
    let forged = with_cookies(&server, "/api/v1/auth/logout", &jar, None, None).await;
    forged.assert_problem(StatusCode::FORBIDDEN, "csrf-failed");
    assert_eq!(
        server.get("/api/v1/me", &token).await.status,
        StatusCode::OK
    );

    let out = with_cookies(
        &server,
        "/api/v1/auth/logout",
        &jar,
        Some(cookies.value("kai_csrf")),
        None,
    )
    .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT, "{}", out.text);
    let cleared = Cookies::from(&out);
    for name in ["kai_refresh", "kai_csrf"] {
        assert_eq!(cleared.value(name), "");
        assert!(cleared.attributes(name).contains("max-age=0"));
    }
    server
        .get("/api/v1/me", &token)
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "session-ended");
}

#[tokio::test]
async fn logout_everywhere_ends_every_session_but_not_api_keys() {
    let server = TestServer::start().await;
    let laptop = server.login(ADMIN, PASSWORD).await;
    let (phone, _) = cookie_login(&server).await;
    let key = server
        .create_key(laptop["access_token"].as_str().unwrap(), &["read"])
        .await;
    let phone_token = phone.body["access_token"].as_str().unwrap();

    let out = server
        .send(
            Method::POST,
            "/api/v1/auth/logout-all",
            Some(phone_token),
            None,
        )
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT, "{}", out.text);
    assert_eq!(Cookies::from(&out).value("kai_refresh"), "");
    for token in [laptop["access_token"].as_str().unwrap(), phone_token] {
        server
            .get("/api/v1/me", token)
            .await
            .assert_problem(StatusCode::UNAUTHORIZED, "session-ended");
    }
    server
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": laptop["refresh_token"]}),
        )
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "session-ended");
    let key = key["key"].as_str().unwrap();
    assert_eq!(server.get("/api/v1/me", key).await.status, StatusCode::OK);

    let anonymous = server
        .send(Method::POST, "/api/v1/auth/logout-all", None, None)
        .await;
    anonymous.assert_problem(StatusCode::UNAUTHORIZED, "unauthorized");
}

#[tokio::test]
async fn cookies_are_secure_behind_a_trusted_tls_proxy() {
    let server = TestServer::start_with(
        |settings| settings.http.trust_forwarded_for = true,
        OpenApiRouter::new(),
    )
    .await;
    let reply = Reply::read(
        server
            .client
            .post(server.url("/api/v1/auth/login"))
            .header("x-forwarded-proto", "https")
            .json(&json!({"username": ADMIN, "password": PASSWORD, "cookie": true}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let cookies = Cookies::from(&reply);
    assert!(cookies.attributes("kai_refresh").contains("secure"));
    assert!(cookies.attributes("kai_csrf").contains("secure"));
}

async fn preflight(server: &TestServer, origin: &str) -> reqwest::Response {
    server
        .client
        .request(Method::OPTIONS, server.url("/api/v1/me"))
        .header(header::ORIGIN, origin)
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "GET")
        .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "authorization")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn no_other_origin_may_call_the_api_unless_listed() {
    let closed = TestServer::start().await;
    let answer = preflight(&closed, "https://app.example").await;
    assert!(
        answer
            .headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none()
    );

    let open = TestServer::start_with(
        |settings| settings.http.cors_origins = "https://app.example".into(),
        OpenApiRouter::new(),
    )
    .await;
    let answer = preflight(&open, "https://app.example").await;
    assert_eq!(
        answer.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://app.example"
    );
    assert!(
        answer.headers()[header::ACCESS_CONTROL_ALLOW_HEADERS]
            .to_str()
            .unwrap()
            .contains("authorization")
    );
    let other = preflight(&open, "https://evil.example").await;
    assert!(
        other
            .headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none()
    );
    // A listed page may log in with cookies too; an unlisted one may not.
    let login = |origin: &'static str| {
        open.client
            .post(open.url("/api/v1/auth/login"))
            .header(header::ORIGIN, origin)
            .json(&json!({"username": ADMIN, "password": PASSWORD, "cookie": true}))
            .send()
    };
    assert_eq!(
        login("https://app.example").await.unwrap().status(),
        StatusCode::OK
    );
    Reply::read(login("https://evil.example").await.unwrap())
        .await
        .assert_problem(StatusCode::FORBIDDEN, "origin-not-allowed");
}

#[tokio::test]
async fn api_responses_forbid_loading_anything() {
    let server = TestServer::start().await;
    let reply = server.send(Method::GET, "/healthz", None, None).await;
    assert_eq!(
        reply.headers[header::CONTENT_SECURITY_POLICY],
        "default-src 'none'; frame-ancestors 'none'"
    );
    assert_eq!(reply.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    let missing = server.send(Method::GET, "/api/v1/nope", None, None).await;
    missing.assert_problem(StatusCode::NOT_FOUND, "not-found");
}

/// Whether this test binary has the UI in it; without it (a `cargo test` before `npm run
/// build`), the UI tests check the answer that says how to build it, unless the test suite
/// demands the UI (`KAI_TEST_REQUIRE_WEB`, set by CI).
fn ui_built() -> bool {
    let built = kai_web::is_built();
    assert!(
        built || std::env::var_os("KAI_TEST_REQUIRE_WEB").is_none(),
        "KAI_TEST_REQUIRE_WEB is set but this build has no web UI: run `npm ci && npm run build` in web/ first"
    );
    built
}

/// A page as a browser navigating to it gets it, uncompressed.
async fn plain(server: &TestServer, path: &str) -> bytes::Bytes {
    let response = server
        .client
        .get(server.url(path))
        .header(header::ACCEPT, "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response.bytes().await.unwrap()
}

async fn browse(server: &TestServer, path: &str, accept: &str) -> reqwest::Response {
    server
        .client
        .get(server.url(path))
        .header(header::ACCEPT, accept)
        .header(header::ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_ui_is_served_at_the_root_with_its_routes_falling_back_to_its_page() {
    let server = TestServer::start().await;
    if !ui_built() {
        let reply = Reply::read(browse(&server, "/", "text/html").await).await;
        reply.assert_problem(StatusCode::NOT_FOUND, "web-ui-not-built");
        assert!(reply.detail().contains("npm run build"));
        eprintln!("skipped: this build has no web UI (npm run build in web/)");
        return;
    }
    let root = browse(&server, "/", "text/html").await;
    assert_eq!(root.status(), StatusCode::OK);
    let headers = root.headers().clone();
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
    let policy = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(
        policy.contains("script-src 'self'") && !policy.contains("unsafe-eval"),
        "{policy}"
    );
    assert!(policy.contains("frame-ancestors 'none'"));
    assert_eq!(headers[header::CONTENT_ENCODING], "gzip");
    let page = plain(&server, "/").await;

    // A page of the UI's router, reached by navigating: the same page.
    let deep = plain(&server, "/chat/0190a0a0-0000-7000-8000-000000000000").await;
    assert_eq!(deep, page);
    // Not a navigation, or an API path: the API's 404.
    Reply::read(browse(&server, "/assets/missing.js", "*/*").await)
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not-found");
    Reply::read(browse(&server, "/api/v1/missing", "text/html").await)
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not-found");
    let post = server
        .send(Method::POST, "/chat", None, Some(json!({})))
        .await;
    post.assert_problem(StatusCode::NOT_FOUND, "not-found");

    // The page's hashed scripts: cached for good, compressed.
    let html = String::from_utf8(page.to_vec()).unwrap();
    let script = html
        .split("src=\"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap())
        .find(|src| src.starts_with("/assets/") && src.ends_with(".js"))
        .expect("index.html loads a hashed script");
    let asset = browse(&server, script, "*/*").await;
    assert_eq!(asset.status(), StatusCode::OK);
    assert_eq!(
        asset.headers()[header::CACHE_CONTROL],
        "public, max-age=31536000, immutable"
    );
    assert!(
        asset.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .contains("javascript")
    );
    assert_eq!(asset.headers()[header::CONTENT_ENCODING], "gzip");
    let etag = asset.headers()[header::ETAG].clone();

    // A browser's copy that is current: 304, nothing sent again.
    let revalidated = server
        .client
        .get(server.url(script))
        .header(header::IF_NONE_MATCH, etag)
        .send()
        .await
        .unwrap();
    assert_eq!(revalidated.status(), StatusCode::NOT_MODIFIED);
    assert!(revalidated.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn the_pwa_files_are_revalidated_on_every_use() {
    let server = TestServer::start().await;
    if !ui_built() {
        eprintln!("skipped: this build has no web UI (npm run build in web/)");
        return;
    }
    for path in ["/manifest.webmanifest", "/sw.js"] {
        let reply = browse(&server, path, "*/*").await;
        assert_eq!(reply.status(), StatusCode::OK, "{path}");
        assert_eq!(reply.headers()[header::CACHE_CONTROL], "no-cache", "{path}");
    }
    let manifest: Value = server
        .client
        .get(server.url("/manifest.webmanifest"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(manifest["name"], "kai");
}
