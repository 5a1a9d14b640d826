//! The vault, secrets, identity and audit log over HTTP: owners kept apart, the locked path,
//! bad input, and every secret read and login in the signed log.

#![allow(clippy::unwrap_used)]

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::TestServer;

const PASSPHRASE: &str = "correct horse battery staple";

async fn put(server: &TestServer, path: &str, bearer: &str, body: Value) -> support::Reply {
    server
        .send(Method::PUT, path, Some(bearer), Some(body))
        .await
}

async fn delete(server: &TestServer, path: &str, bearer: &str) -> support::Reply {
    server.send(Method::DELETE, path, Some(bearer), None).await
}

#[tokio::test]
async fn secrets_belong_to_their_owner_and_need_the_vault_unlocked() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let alice = server.user_token("alice").await;
    let bob = server.user_token("bob").await;

    // Before init: no identity, and secrets cannot be stored.
    let reply = server.get("/api/v1/identity", &alice).await;
    assert_eq!(reply.status, StatusCode::CONFLICT, "{}", reply.body);
    assert_eq!(reply.body["type"], "urn:kai:problem:vault-not-initialized");
    let status = server.get("/api/v1/vault", &alice).await;
    assert_eq!(status.body["initialized"], false);

    // Only admins initialise, with a passphrase long enough.
    let reply = server
        .post(
            "/api/v1/vault/init",
            Some(&alice),
            json!({"passphrase": PASSPHRASE}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    let reply = server
        .post(
            "/api/v1/vault/init",
            Some(&admin),
            json!({"passphrase": "short"}),
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        reply.body
    );
    let reply = server
        .post(
            "/api/v1/vault/init",
            Some(&admin),
            json!({"passphrase": PASSPHRASE}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let did = reply.body["did"].as_str().unwrap().to_owned();
    assert!(did.starts_with("did:key:z6Mk"));
    assert_eq!(server.get("/api/v1/identity", &bob).await.body["did"], did);

    // Alice's secret is hers: bob gets 404 for it, and never sees it listed.
    let reply = put(
        &server,
        "/api/v1/secrets/github",
        &alice,
        json!({"value": "ghp_alice", "description": "GitHub"}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["name"], "github");
    assert!(reply.body.get("value").is_none());
    let reply = server.get("/api/v1/secrets/github", &alice).await;
    assert_eq!(reply.body["value"], "ghp_alice");
    assert_eq!(reply.body["description"], "GitHub");
    let reply = server.get("/api/v1/secrets/github", &bob).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(server.get("/api/v1/secrets", &bob).await.body, json!([]));
    assert_eq!(
        delete(&server, "/api/v1/secrets/github", &bob).await.status,
        StatusCode::NOT_FOUND
    );
    let listed = server.get("/api/v1/secrets", &alice).await.body;
    assert_eq!(listed[0]["name"], "github");
    assert!(listed[0].get("value").is_none());

    // The node's secrets are for admins.
    let reply = put(
        &server,
        "/api/v1/secrets/openai?scope=node",
        &alice,
        json!({"value": "sk"}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    let reply = put(
        &server,
        "/api/v1/secrets/openai?scope=node",
        &admin,
        json!({"value": "sk-node"}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(
        server.get("/api/v1/secrets/openai", &admin).await.status,
        StatusCode::NOT_FOUND
    );

    // Bad input: names, values, unknown fields, scopes.
    for (path, body) in [
        ("/api/v1/secrets/bad%20name", json!({"value": "x"})),
        ("/api/v1/secrets/ok", json!({"value": ""})),
        ("/api/v1/secrets/ok", json!({"value": "x", "extra": 1})),
        ("/api/v1/secrets/ok", json!({"valu": "x"})),
        ("/api/v1/secrets/ok?scope=everyone", json!({"value": "x"})),
    ] {
        let reply = put(&server, path, &alice, body.clone()).await;
        assert!(
            reply.status.is_client_error(),
            "{path} {body}: {}",
            reply.status
        );
        assert!(reply.body["detail"].as_str().is_some(), "{}", reply.body);
    }

    // Locked: listing and deleting still work; reading and writing answer 503 vault-locked.
    assert_eq!(
        server
            .post("/api/v1/vault/lock", Some(&alice), json!({}))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let reply = server
        .send(Method::POST, "/api/v1/vault/lock", Some(&admin), None)
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    assert_eq!(
        server.get("/api/v1/vault", &alice).await.body["unlocked"],
        false
    );
    let reply = server.get("/api/v1/secrets/github", &alice).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.body["type"], "urn:kai:problem:vault-locked");
    let reply = put(
        &server,
        "/api/v1/secrets/other",
        &alice,
        json!({"value": "x"}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        server.get("/api/v1/secrets", &alice).await.body[0]["name"],
        "github"
    );
    // The rest of the server works on.
    assert_eq!(
        server.get("/api/v1/me", &alice).await.status,
        StatusCode::OK
    );

    // A wrong passphrase is one clear 403; the right one unlocks.
    let reply = server
        .post(
            "/api/v1/vault/unlock",
            Some(&admin),
            json!({"passphrase": "not the passphrase"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.body["type"], "urn:kai:problem:vault-wrong-key");
    let reply = server
        .post(
            "/api/v1/vault/unlock",
            Some(&admin),
            json!({"passphrase": PASSPHRASE}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    assert_eq!(
        server.get("/api/v1/secrets/github", &alice).await.body["value"],
        "ghp_alice"
    );
}

#[tokio::test]
async fn the_audit_log_records_logins_and_secret_use_and_proves_it() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let reply = server
        .post(
            "/api/v1/vault/init",
            Some(&admin),
            json!({"passphrase": PASSPHRASE}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let alice = server.user_token("alice").await;
    let reply = server
        .post(
            "/api/v1/auth/login",
            None,
            json!({"username": "alice", "password": "wrong password!"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    put(
        &server,
        "/api/v1/secrets/token",
        &alice,
        json!({"value": "t"}),
    )
    .await;
    server.get("/api/v1/secrets/token", &alice).await;
    server.get("/api/v1/secrets/missing", &alice).await;

    // Alice sees her own entries only; asking for another actor's is refused.
    let me = server.get("/api/v1/me", &alice).await.body;
    let actor = format!("user:{}", me["id"].as_str().unwrap());
    let page = server.get("/api/v1/audit", &alice).await.body;
    let entries: Vec<Value> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| serde_json::from_str(entry["entry"].as_str().unwrap()).unwrap())
        .collect();
    assert!(
        entries.iter().all(|entry| entry["actor"] == actor.as_str()),
        "{entries:?}"
    );
    let actions: Vec<(&str, &str)> = entries
        .iter()
        .map(|entry| {
            (
                entry["action"].as_str().unwrap(),
                entry["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(actions.contains(&("auth.login", "success")), "{actions:?}");
    assert!(
        actions.contains(&("secret.write", "success")),
        "{actions:?}"
    );
    assert!(actions.contains(&("secret.read", "success")), "{actions:?}");
    assert!(actions.contains(&("secret.read", "failure")), "{actions:?}");
    assert!(
        !serde_json::to_string(&page).unwrap().contains("\"t\""),
        "no secret value in the log"
    );
    let reply = server.get("/api/v1/audit?actor=node", &alice).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);

    // The admin sees everything, the failed login included, and can filter.
    let all = server
        .get("/api/v1/audit?action=auth.login&limit=1000", &admin)
        .await
        .body;
    let logins: Vec<Value> = all["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| serde_json::from_str(entry["entry"].as_str().unwrap()).unwrap())
        .collect();
    assert!(logins.iter().any(|entry| entry["outcome"] == "failure"
        && entry["actor"] == "anonymous"
        && entry["details"]["username"] == "alice"));
    for bad in [
        "limit=0",
        "limit=5000",
        "since=yesterday",
        "after=-1",
        "nonsense=1",
    ] {
        let reply = server.get(&format!("/api/v1/audit?{bad}"), &admin).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{bad}: {}",
            reply.body
        );
    }

    // Proofs: an entry of alice's is in the log, and the log grows consistently.
    let seq = page["entries"][0]["seq"].as_u64().unwrap();
    let proof = server
        .get(&format!("/api/v1/audit/proofs/inclusion?seq={seq}"), &alice)
        .await;
    assert_eq!(proof.status, StatusCode::OK, "{}", proof.body);
    assert!(proof.body["proof"].as_array().unwrap().len() <= 64);
    let others = server
        .get("/api/v1/audit/proofs/inclusion?seq=0", &alice)
        .await;
    assert_eq!(
        others.status,
        StatusCode::NOT_FOUND,
        "entry 0 is the admin's"
    );
    let size = proof.body["size"].as_u64().unwrap();
    let consistency = server
        .get(
            &format!("/api/v1/audit/proofs/consistency?from=1&to={size}"),
            &alice,
        )
        .await;
    assert_eq!(consistency.status, StatusCode::OK, "{}", consistency.body);
    let reply = server
        .get(
            &format!("/api/v1/audit/proofs/consistency?from={}&to=1", size),
            &alice,
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);

    // A checkpoint on demand, then listed and signed by the node.
    server.state.audit().checkpoint().await.unwrap();
    let checkpoints = server.get("/api/v1/audit/checkpoints", &alice).await.body;
    let last = checkpoints.as_array().unwrap().last().unwrap().clone();
    let did = server.get("/api/v1/identity", &alice).await.body["did"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(last["body"].as_str().unwrap().contains(&did));

    // And the whole log verifies.
    let key = server
        .state
        .vault()
        .public_identity()
        .await
        .unwrap()
        .unwrap()
        .signing;
    let report = kai_audit::verify_store(&server.db.store().await, key)
        .await
        .unwrap();
    assert!(report.is_intact(), "{report:?}");
}
