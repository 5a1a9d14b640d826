//! Accounts over HTTP: logins, tokens, keys, users, and every way they can be refused, each
//! with the right status and a problem document.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use jsonwebtoken::{EncodingKey, Header, encode};
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};
use support::{ADMIN, PASSWORD, TOKEN_SECRET, TestServer, wait_past};
use utoipa_axum::router::OpenApiRouter;

fn forge(secret: &str, sub: &str, sid: &str, exp_offset: i64) -> String {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims = json!({"iss": "kai", "sub": sub, "sid": sid, "iat": now, "exp": now + exp_offset});
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

#[tokio::test]
async fn login_returns_the_documented_token_pair() {
    let server = TestServer::start().await;
    let tokens = server.login("ROOT", PASSWORD).await;
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 900);
    assert!(
        tokens["refresh_token"]
            .as_str()
            .unwrap()
            .starts_with("kairt_")
    );
    let me = server
        .get("/api/v1/me", tokens["access_token"].as_str().unwrap())
        .await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["username"], "root");
    assert_eq!(me.body["role"], "admin");
    assert_eq!(me.body["auth"]["method"], "session");
    assert_eq!(me.body["auth"]["scopes"], json!(["read", "write", "admin"]));
    assert!(me.body.get("password_hash").is_none());
}

#[tokio::test]
async fn wrong_passwords_and_unknown_users_get_the_same_answer() {
    let server = TestServer::start().await;
    let wrong = server
        .post(
            "/api/v1/auth/login",
            None,
            json!({"username": ADMIN, "password": "wrong password"}),
        )
        .await;
    wrong.assert_problem(StatusCode::UNAUTHORIZED, "invalid-credentials");
    let unknown = server
        .post(
            "/api/v1/auth/login",
            None,
            json!({"username": "nobody", "password": PASSWORD}),
        )
        .await;
    unknown.assert_problem(StatusCode::UNAUTHORIZED, "invalid-credentials");
    assert_eq!(wrong.detail(), unknown.detail());
}

#[tokio::test]
async fn requests_without_credentials_are_challenged() {
    let server = TestServer::start().await;
    let reply = server.send(Method::GET, "/api/v1/me", None, None).await;
    reply.assert_problem(StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(
        reply.headers[header::WWW_AUTHENTICATE],
        "Bearer realm=\"kai\""
    );

    let response = server
        .client
        .get(server.url("/api/v1/me"))
        .basic_auth(ADMIN, Some(PASSWORD))
        .send()
        .await
        .unwrap();
    support::Reply::read(response)
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "unauthorized");

    let reply = server.get("/api/v1/me", "garbage").await;
    reply.assert_problem(StatusCode::UNAUTHORIZED, "invalid-token");
    assert!(
        reply.headers[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
}

#[tokio::test]
async fn expired_and_forged_access_tokens_are_refused() {
    let server = TestServer::start().await;
    let token = server.admin_token().await;
    let me = server.get("/api/v1/me", &token).await;
    let (sub, sid) = (
        me.body["id"].as_str().unwrap(),
        me.body["auth"]["id"].as_str().unwrap(),
    );

    let expired = forge(TOKEN_SECRET, sub, sid, -60);
    let reply = server.get("/api/v1/me", &expired).await;
    reply.assert_problem(StatusCode::UNAUTHORIZED, "token-expired");
    assert!(
        reply.detail().contains("/api/v1/auth/refresh"),
        "{}",
        reply.detail()
    );

    let forged = forge("some-other-secret-some-other-secret", sub, sid, 600);
    server
        .get("/api/v1/me", &forged)
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "invalid-token");

    // A token with a valid signature whose session does not exist.
    let orphan = forge(TOKEN_SECRET, sub, &uuid::Uuid::now_v7().to_string(), 600);
    server
        .get("/api/v1/me", &orphan)
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "session-ended");

    // A token with its signature stripped and `alg: none`.
    let payload = token.split('.').nth(1).unwrap();
    let unsigned = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
    server
        .get("/api/v1/me", &unsigned)
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "invalid-token");
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    let server = TestServer::start().await;
    let first = server.login(ADMIN, PASSWORD).await;
    let refresh = |token: &Value| json!({"refresh_token": token["refresh_token"]});

    let second = server
        .post("/api/v1/auth/refresh", None, refresh(&first))
        .await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.text);
    assert_ne!(second.body["refresh_token"], first["refresh_token"]);
    let access = second.body["access_token"].as_str().unwrap();
    assert_eq!(
        server.get("/api/v1/me", access).await.status,
        StatusCode::OK
    );

    // Someone replays the first refresh token: the whole session ends.
    let replay = server
        .post("/api/v1/auth/refresh", None, refresh(&first))
        .await;
    replay.assert_problem(StatusCode::UNAUTHORIZED, "refresh-token-reused");
    server
        .get("/api/v1/me", access)
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "session-ended");
    let after = server
        .post("/api/v1/auth/refresh", None, refresh(&second.body))
        .await;
    after.assert_problem(StatusCode::UNAUTHORIZED, "session-ended");

    let bogus = server
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": "kairt_nope"}),
        )
        .await;
    bogus.assert_problem(StatusCode::UNAUTHORIZED, "invalid-refresh-token");
}

#[tokio::test]
async fn logout_ends_the_session_at_once() {
    let server = TestServer::start().await;
    let tokens = server.login(ADMIN, PASSWORD).await;
    let access = tokens["access_token"].as_str().unwrap();
    let reply = server
        .post(
            "/api/v1/auth/logout",
            None,
            json!({"refresh_token": tokens["refresh_token"]}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    server
        .get("/api/v1/me", access)
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "session-ended");
    let again = server
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": tokens["refresh_token"]}),
        )
        .await;
    again.assert_problem(StatusCode::UNAUTHORIZED, "session-ended");
}

#[tokio::test]
async fn access_tokens_expire_after_their_lifetime() {
    let server = TestServer::start_with(
        |s| s.auth.access_token_ttl = Duration::from_secs(1),
        OpenApiRouter::new(),
    )
    .await;
    let tokens = server.login(ADMIN, PASSWORD).await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(
        server.get("/api/v1/me", access).await.status,
        StatusCode::OK
    );
    wait_past(Duration::from_secs(2)).await;
    server
        .get("/api/v1/me", access)
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "token-expired");
    // The refresh token still gets a fresh one.
    let fresh = server
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": tokens["refresh_token"]}),
        )
        .await;
    assert_eq!(fresh.status, StatusCode::OK);
}

#[tokio::test]
async fn api_keys_are_shown_once_stored_hashed_and_revocable() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let created = server
        .post(
            "/api/v1/keys",
            Some(&admin),
            json!({"name": "backup", "scopes": ["read"]}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let key = created.body["key"].as_str().unwrap().to_owned();
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert!(key.starts_with("kai_"));
    assert_eq!(
        created.headers[header::LOCATION],
        format!("/api/v1/keys/{id}")
    );

    let me = server.get("/api/v1/me", &key).await;
    assert_eq!(
        me.body["auth"],
        json!({"method": "api_key", "id": id, "scopes": ["read"]})
    );

    let listed = server.get("/api/v1/keys", &admin).await;
    let listed = listed.body.as_array().unwrap();
    assert_eq!(listed.len(), 1);
    assert!(
        listed[0].get("key").is_none(),
        "the key itself is never listed"
    );
    assert!(listed[0]["last_used_at"].is_string(), "use is recorded");
    assert!(key.starts_with(listed[0]["prefix"].as_str().unwrap()));

    let revoked = server
        .send(
            Method::DELETE,
            &format!("/api/v1/keys/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    let reply = server.get("/api/v1/me", &key).await;
    reply.assert_problem(StatusCode::UNAUTHORIZED, "api-key-revoked");
    assert!(
        reply
            .detail()
            .contains(listed[0]["prefix"].as_str().unwrap())
    );
    let shown = server.get(&format!("/api/v1/keys/{id}"), &admin).await;
    assert!(shown.body["revoked_at"].is_string());

    server
        .get("/api/v1/me", "kai_0000000000000000000000000000000000000000")
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "invalid-api-key");
}

#[tokio::test]
async fn keys_expire() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let expires = time::OffsetDateTime::now_utc() + time::Duration::seconds(1);
    let expires = expires
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let created = server
        .post(
            "/api/v1/keys",
            Some(&admin),
            json!({"name": "brief", "scopes": ["read"], "expires_at": expires}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let key = created.body["key"].as_str().unwrap();
    wait_past(Duration::from_secs(1)).await;
    server
        .get("/api/v1/me", key)
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "api-key-expired");

    let past = server
        .post(
            "/api/v1/keys",
            Some(&admin),
            json!({"name": "old", "scopes": ["read"], "expires_at": "2000-01-01T00:00:00Z"}),
        )
        .await;
    past.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation-failed");
    assert_eq!(past.body["errors"][0]["field"], "expires_at");
}

#[tokio::test]
async fn missing_scopes_are_forbidden() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let reader = server.create_key(&admin, &["read"]).await;
    let reader = reader["key"].as_str().unwrap();
    let reply = server
        .post(
            "/api/v1/keys",
            Some(reader),
            json!({"name": "x", "scopes": ["read"]}),
        )
        .await;
    reply.assert_problem(StatusCode::FORBIDDEN, "insufficient-scope");
    assert!(reply.detail().contains("`write`"), "{}", reply.detail());
    assert!(
        reply.headers[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .contains("insufficient_scope")
    );

    // An admin's key without the admin scope cannot manage users.
    let writer = server.create_key(&admin, &["read", "write"]).await;
    server
        .get("/api/v1/users", writer["key"].as_str().unwrap())
        .await
        .assert_problem(StatusCode::FORBIDDEN, "insufficient-scope");
    let writer_only = server.create_key(&admin, &["write"]).await;
    server
        .get("/api/v1/me", writer_only["key"].as_str().unwrap())
        .await
        .assert_problem(StatusCode::FORBIDDEN, "insufficient-scope");

    let empty = server
        .post(
            "/api/v1/keys",
            Some(&admin),
            json!({"name": "x", "scopes": []}),
        )
        .await;
    empty.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation-failed");
    let unknown = server
        .post(
            "/api/v1/keys",
            Some(&admin),
            json!({"name": "x", "scopes": ["root"]}),
        )
        .await;
    unknown.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation-failed");
}

#[tokio::test]
async fn users_cannot_reach_each_others_keys() {
    let server = TestServer::start().await;
    let alice = server.user_token("alice").await;
    let bob = server.user_token("bob").await;
    let key = server.create_key(&alice, &["read"]).await;
    let id = key["id"].as_str().unwrap();

    server
        .get(&format!("/api/v1/keys/{id}"), &bob)
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not-found");
    let revoke = server
        .send(
            Method::DELETE,
            &format!("/api/v1/keys/{id}"),
            Some(&bob),
            None,
        )
        .await;
    revoke.assert_problem(StatusCode::NOT_FOUND, "not-found");
    assert!(
        server
            .get("/api/v1/keys", &bob)
            .await
            .body
            .as_array()
            .unwrap()
            .is_empty()
    );
    // Alice's key still works: bob's attempt changed nothing.
    assert_eq!(
        server
            .get("/api/v1/me", key["key"].as_str().unwrap())
            .await
            .status,
        StatusCode::OK
    );

    server
        .get("/api/v1/keys/not-a-uuid", &bob)
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "bad-request");

    // Users cannot mint admin keys or manage users.
    let reply = server
        .post(
            "/api/v1/keys",
            Some(&alice),
            json!({"name": "x", "scopes": ["admin"]}),
        )
        .await;
    reply.assert_problem(StatusCode::FORBIDDEN, "forbidden");
    server
        .get("/api/v1/users", &alice)
        .await
        .assert_problem(StatusCode::FORBIDDEN, "forbidden");
}

#[tokio::test]
async fn admins_manage_users() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let created = server
        .post(
            "/api/v1/users",
            Some(&admin),
            json!({"username": "Carol", "password": PASSWORD}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.body["username"], "carol");
    assert_eq!(created.body["role"], "user");
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created.headers[header::LOCATION],
        format!("/api/v1/users/{id}")
    );

    let duplicate = server
        .post(
            "/api/v1/users",
            Some(&admin),
            json!({"username": "carol", "password": PASSWORD}),
        )
        .await;
    duplicate.assert_problem(StatusCode::CONFLICT, "conflict");
    let bad_name = server
        .post(
            "/api/v1/users",
            Some(&admin),
            json!({"username": "c a r o l", "password": PASSWORD}),
        )
        .await;
    bad_name.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation-failed");
    assert_eq!(bad_name.body["errors"][0]["field"], "username");
    let short = server
        .post(
            "/api/v1/users",
            Some(&admin),
            json!({"username": "dave", "password": "short"}),
        )
        .await;
    short.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation-failed");
    assert_eq!(short.body["errors"][0]["field"], "password");

    let listed = server.get("/api/v1/users", &admin).await;
    assert_eq!(listed.body.as_array().unwrap().len(), 2);

    let path = format!("/api/v1/users/{id}");
    let promoted = server
        .send(
            Method::PATCH,
            &path,
            Some(&admin),
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(promoted.body["role"], "admin", "{}", promoted.text);
    assert_eq!(server.get(&path, &admin).await.body["role"], "admin");

    let deleted = server.send(Method::DELETE, &path, Some(&admin), None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    server
        .get(&path, &admin)
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not-found");
    let missing = server
        .send(
            Method::PATCH,
            &path,
            Some(&admin),
            Some(json!({"disabled": true})),
        )
        .await;
    missing.assert_problem(StatusCode::NOT_FOUND, "not-found");
}

#[tokio::test]
async fn the_last_admin_stays() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let me = server.get("/api/v1/me", &admin).await;
    let path = format!("/api/v1/users/{}", me.body["id"].as_str().unwrap());
    let demote = server
        .send(
            Method::PATCH,
            &path,
            Some(&admin),
            Some(json!({"role": "user"})),
        )
        .await;
    demote.assert_problem(StatusCode::CONFLICT, "conflict");
    assert!(
        demote.detail().contains("last enabled admin"),
        "{}",
        demote.detail()
    );
    let delete = server.send(Method::DELETE, &path, Some(&admin), None).await;
    delete.assert_problem(StatusCode::CONFLICT, "conflict");
}

#[tokio::test]
async fn disabled_users_are_shut_out() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let erin = server.user_token("erin").await;
    let key = server.create_key(&erin, &["read"]).await;
    let id = server.get("/api/v1/me", &erin).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let reply = server
        .send(
            Method::PATCH,
            &format!("/api/v1/users/{id}"),
            Some(&admin),
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    server
        .get("/api/v1/me", key["key"].as_str().unwrap())
        .await
        .assert_problem(StatusCode::FORBIDDEN, "account-disabled");
    server
        .get("/api/v1/me", &erin)
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "session-ended");
    let login = server
        .post(
            "/api/v1/auth/login",
            None,
            json!({"username": "erin", "password": PASSWORD}),
        )
        .await;
    login.assert_problem(StatusCode::FORBIDDEN, "account-disabled");
}

#[tokio::test]
async fn changing_a_password_ends_every_session() {
    let server = TestServer::start().await;
    let frank = server.user_token("frank").await;
    let wrong = server
        .post(
            "/api/v1/me/password",
            Some(&frank),
            json!({"current_password": "nope", "new_password": "new password!"}),
        )
        .await;
    wrong.assert_problem(StatusCode::FORBIDDEN, "forbidden");
    let ok = server
        .post(
            "/api/v1/me/password",
            Some(&frank),
            json!({"current_password": PASSWORD, "new_password": "new password!"}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::NO_CONTENT, "{}", ok.text);
    server
        .get("/api/v1/me", &frank)
        .await
        .assert_problem(StatusCode::UNAUTHORIZED, "session-ended");
    server.login("frank", "new password!").await;
}

#[tokio::test]
async fn repeated_failures_lock_the_account_with_a_retry_time() {
    let server = TestServer::start_with(
        |s| {
            s.auth.lockout_after = 3;
            s.auth.lockout_duration = Duration::from_secs(120);
        },
        OpenApiRouter::new(),
    )
    .await;
    for _ in 0..3 {
        let reply = server
            .post(
                "/api/v1/auth/login",
                None,
                json!({"username": ADMIN, "password": "guess"}),
            )
            .await;
        reply.assert_problem(StatusCode::UNAUTHORIZED, "invalid-credentials");
    }
    // Even the right password waits until the lock ends.
    let locked = server
        .post(
            "/api/v1/auth/login",
            None,
            json!({"username": ADMIN, "password": PASSWORD}),
        )
        .await;
    locked.assert_problem(StatusCode::TOO_MANY_REQUESTS, "account-locked");
    let retry: u64 = locked.headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((100..=120).contains(&retry), "Retry-After: {retry}");
    assert!(
        locked.detail().contains("try again in"),
        "{}",
        locked.detail()
    );
}

#[tokio::test]
async fn one_address_cannot_guess_across_accounts() {
    let server =
        TestServer::start_with(|s| s.auth.client_failure_limit = 4, OpenApiRouter::new()).await;
    for name in ["a1", "a2", "a3", "a4"] {
        let reply = server
            .post(
                "/api/v1/auth/login",
                None,
                json!({"username": name, "password": "guess"}),
            )
            .await;
        reply.assert_problem(StatusCode::UNAUTHORIZED, "invalid-credentials");
    }
    let throttled = server
        .post(
            "/api/v1/auth/login",
            None,
            json!({"username": ADMIN, "password": PASSWORD}),
        )
        .await;
    throttled.assert_problem(StatusCode::TOO_MANY_REQUESTS, "too-many-failed-logins");
    assert!(throttled.headers.contains_key(header::RETRY_AFTER));
}

#[tokio::test]
async fn api_keys_cannot_mint_keys_or_change_the_password() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let key = server.create_key(&admin, &["read", "write", "admin"]).await;
    let key = key["key"].as_str().unwrap();
    let mint = server
        .post(
            "/api/v1/keys",
            Some(key),
            json!({"name": "child", "scopes": ["read"]}),
        )
        .await;
    mint.assert_problem(StatusCode::FORBIDDEN, "forbidden");
    assert!(mint.detail().contains("login session"), "{}", mint.detail());
    let change = server
        .post(
            "/api/v1/me/password",
            Some(key),
            json!({"current_password": PASSWORD, "new_password": "taken over!"}),
        )
        .await;
    change.assert_problem(StatusCode::FORBIDDEN, "forbidden");
    server.login(ADMIN, PASSWORD).await;
}

#[tokio::test]
async fn key_names_are_checked() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    for name in ["", "   ", "a\u{0}b", &"x".repeat(101)] {
        let reply = server
            .post(
                "/api/v1/keys",
                Some(&admin),
                json!({"name": name, "scopes": ["read"]}),
            )
            .await;
        reply.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation-failed");
        assert_eq!(reply.body["errors"][0]["field"], "name");
    }
}

#[tokio::test]
async fn an_admin_setting_a_password_lifts_a_lockout() {
    let server = TestServer::start_with(|s| s.auth.lockout_after = 2, OpenApiRouter::new()).await;
    let admin = server.admin_token().await;
    server.user_token("gina").await;
    for _ in 0..2 {
        server
            .post(
                "/api/v1/auth/login",
                None,
                json!({"username": "gina", "password": "guess"}),
            )
            .await;
    }
    let locked = server
        .post(
            "/api/v1/auth/login",
            None,
            json!({"username": "gina", "password": PASSWORD}),
        )
        .await;
    locked.assert_problem(StatusCode::TOO_MANY_REQUESTS, "account-locked");
    let users = server.get("/api/v1/users", &admin).await;
    let gina = users
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "gina")
        .unwrap();
    let path = format!("/api/v1/users/{}", gina["id"].as_str().unwrap());
    let reply = server
        .send(
            Method::PATCH,
            &path,
            Some(&admin),
            Some(json!({"password": "a fresh start"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    server.login("gina", "a fresh start").await;
}
