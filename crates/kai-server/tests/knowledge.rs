//! The knowledge API over real HTTP: uploads streamed as request bodies, versions, content,
//! collections, keyword search, and what bad input gets. (Search by meaning, with a real
//! embedding model, is tested through the binary in kai-cli's tests.)

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};
use support::{Reply, TestServer};
use utoipa_axum::router::OpenApiRouter;

async fn upload(server: &TestServer, bearer: &str, query: &str, body: &'static [u8]) -> Reply {
    let response = server
        .client
        .post(server.url(&format!("/api/v1/artifacts{query}")))
        .bearer_auth(bearer)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .body(body)
        .send()
        .await
        .unwrap();
    Reply::read(response).await
}

/// Waits for the artifact's current version to leave `pending`, and returns the artifact.
/// (Without an embedding model, as here, text ends `keyword_only`.)
async fn indexed(server: &TestServer, bearer: &str, id: &str) -> Value {
    for _ in 0..400 {
        let reply = server.get(&format!("/api/v1/artifacts/{id}"), bearer).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        if reply.body["current"]["index_state"] != "pending" {
            return reply.body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("artifact {id} was not indexed");
}

async fn keyword_search(server: &TestServer, bearer: &str, query: &str) -> Reply {
    server
        .post(
            "/api/v1/search",
            Some(bearer),
            json!({"query": query, "mode": "keyword"}),
        )
        .await
}

#[tokio::test]
async fn artifacts_are_uploaded_versioned_read_and_searched_by_their_owner_alone() {
    let server = TestServer::start().await;
    let alice = server.user_token("alice").await;
    let bob = server.user_token("bob").await;

    let papers = server
        .post(
            "/api/v1/collections",
            Some(&alice),
            json!({"name": "papers", "description": "things to read"}),
        )
        .await;
    assert_eq!(papers.status, StatusCode::CREATED, "{}", papers.text);
    let collection = papers.body["id"].as_str().unwrap().to_owned();
    server
        .post(
            "/api/v1/collections",
            Some(&alice),
            json!({"name": "papers"}),
        )
        .await
        .assert_problem(StatusCode::CONFLICT, "conflict");

    let created = upload(
        &server,
        &alice,
        &format!("?name=notes.md&tags=garden,%20spring&collection={collection}"),
        b"# Garden\n\nAphids gather under the leaves.\n",
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created.headers[header::LOCATION],
        format!("/api/v1/artifacts/{id}")
    );
    assert_eq!(created.body["title"], "notes.md");
    assert_eq!(created.body["tags"], json!(["garden", "spring"]));
    assert_eq!(created.body["current"]["mime"], "text/markdown");
    assert_eq!(
        created.body["current"]["blake3"].as_str().unwrap().len(),
        64
    );
    let artifact = indexed(&server, &alice, &id).await;
    assert_eq!(artifact["current"]["index_state"], "keyword_only");
    assert!(
        artifact["current"]["index_error"]
            .as_str()
            .unwrap()
            .contains("local/minilm"),
        "{artifact}"
    );

    let found = keyword_search(&server, &alice, "aphids").await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.text);
    let hit = &found.body["hits"][0];
    assert_eq!(hit["item_id"], id.as_str());
    assert_eq!(hit["kind"], "artifact");
    let passage = hit["passage"]["text"].as_str().unwrap();
    let range = &hit["passage"]["highlights"][0];
    let (start, end) = (
        range[0].as_u64().unwrap() as usize,
        range[1].as_u64().unwrap() as usize,
    );
    assert_eq!(&passage[start..end], "Aphids");
    // Filters: in the collection, and not in another tag.
    let filtered = server
        .post(
            "/api/v1/search",
            Some(&alice),
            json!({"query": "aphids", "mode": "keyword", "collections": [collection]}),
        )
        .await;
    assert_eq!(filtered.body["hits"].as_array().unwrap().len(), 1);
    let other_tag = server
        .post(
            "/api/v1/search",
            Some(&alice),
            json!({"query": "aphids", "mode": "keyword", "tags": ["kitchen"]}),
        )
        .await;
    assert_eq!(other_tag.body["hits"], json!([]));

    // Bob sees none of it, and cannot touch it.
    assert_eq!(
        keyword_search(&server, &bob, "aphids").await.body["hits"],
        json!([])
    );
    for path in [
        format!("/api/v1/artifacts/{id}"),
        format!("/api/v1/artifacts/{id}/versions"),
        format!("/api/v1/artifacts/{id}/content"),
    ] {
        server
            .get(&path, &bob)
            .await
            .assert_problem(StatusCode::NOT_FOUND, "not-found");
    }
    server
        .send(
            Method::DELETE,
            &format!("/api/v1/artifacts/{id}"),
            Some(&bob),
            None,
        )
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not-found");
    let admin = server.admin_token().await;
    server
        .get(&format!("/api/v1/artifacts/{id}"), &admin)
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not-found");

    // A second version: searched once indexed, the first still readable, the two compared.
    let second = server
        .client
        .post(server.url(&format!("/api/v1/artifacts/{id}/versions?name=notes.md")))
        .bearer_auth(&alice)
        .body("# Garden\n\nLadybirds eat the aphids.\n")
        .send()
        .await
        .unwrap();
    let second = Reply::read(second).await;
    assert_eq!(second.status, StatusCode::CREATED, "{}", second.text);
    assert_eq!(second.body["current"]["version"], 2);
    indexed(&server, &alice, &id).await;
    let found = keyword_search(&server, &alice, "ladybirds").await;
    assert_eq!(found.body["hits"][0]["version"], 2);
    let versions = server
        .get(&format!("/api/v1/artifacts/{id}/versions"), &alice)
        .await;
    assert_eq!(versions.body["versions"][0]["index_state"], "superseded");
    let first = server
        .get(&format!("/api/v1/artifacts/{id}/content?version=1"), &alice)
        .await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.text, "# Garden\n\nAphids gather under the leaves.\n");
    assert_eq!(first.headers[header::CONTENT_TYPE], "text/markdown");
    assert!(
        first.headers[header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    assert_eq!(first.headers["x-content-type-options"], "nosniff");
    let diff = server
        .get(&format!("/api/v1/artifacts/{id}/diff?from=1&to=2"), &alice)
        .await;
    assert_eq!(diff.status, StatusCode::OK, "{}", diff.text);
    assert!(diff.text.contains("-Aphids gather under the leaves."));
    assert!(diff.text.contains("+Ladybirds eat the aphids."));

    // Renamed and retagged; listed; then deleted and gone from search at once.
    let patched = server
        .send(
            Method::PATCH,
            &format!("/api/v1/artifacts/{id}"),
            Some(&alice),
            Some(json!({"title": "Garden notes", "tags": ["garden"], "collection_id": null})),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    assert_eq!(patched.body["title"], "Garden notes");
    assert_eq!(patched.body["collection_id"], Value::Null);
    let listed = server.get("/api/v1/artifacts?tag=garden", &alice).await;
    assert_eq!(listed.body["artifacts"].as_array().unwrap().len(), 1);
    let status = server.get("/api/v1/knowledge/status", &alice).await;
    assert_eq!(status.body["keyword_only"], 1, "{}", status.text);
    let deleted = server
        .send(
            Method::DELETE,
            &format!("/api/v1/artifacts/{id}"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(
        keyword_search(&server, &alice, "ladybirds").await.body["hits"],
        json!([])
    );
    server
        .get(&format!("/api/v1/artifacts/{id}"), &alice)
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not-found");
}

#[tokio::test]
async fn without_an_embedding_model_hybrid_search_runs_on_keywords_and_says_so() {
    let server = TestServer::start().await;
    let alice = server.user_token("alice").await;
    let created = upload(
        &server,
        &alice,
        "?name=k.txt",
        b"Bread rises when yeast is warm.",
    )
    .await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    indexed(&server, &alice, &id).await;
    let hybrid = server
        .post("/api/v1/search", Some(&alice), json!({"query": "yeast"}))
        .await;
    assert_eq!(hybrid.status, StatusCode::OK, "{}", hybrid.text);
    assert_eq!(hybrid.body["hits"].as_array().unwrap().len(), 1);
    assert!(
        hybrid.body["degraded"]
            .as_str()
            .unwrap()
            .contains("local/minilm")
    );
    server
        .post(
            "/api/v1/search",
            Some(&alice),
            json!({"query": "yeast", "mode": "semantic"}),
        )
        .await
        .assert_problem(StatusCode::BAD_GATEWAY, "embedding-failed");
}

#[tokio::test]
async fn bad_uploads_and_queries_get_clear_errors_and_lose_nothing() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let server = TestServer::start_with(
        |settings| {
            settings.knowledge.max_upload_size = kai_config::ByteSize::kib(4);
            settings.http.request_timeout = Duration::from_millis(700);
        },
        OpenApiRouter::new(),
    )
    .await;
    let alice = server.user_token("alice").await;
    let kept = upload(
        &server,
        &alice,
        "?name=keep.txt",
        b"Sourdough needs a starter.",
    )
    .await;
    let kept_id = kept.body["id"].as_str().unwrap().to_owned();
    indexed(&server, &alice, &kept_id).await;

    // Too large: 413 naming the setting.
    static BIG: [u8; 5000] = [b'a'; 5000];
    let big = upload(&server, &alice, "?name=big.txt", &BIG).await;
    big.assert_problem(StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large");
    assert!(
        big.text.contains("knowledge.max_upload_size"),
        "{}",
        big.text
    );
    // A traversal in the name keeps its last part.
    let named = upload(&server, &alice, "?name=..%2F..%2Fetc%2Fpasswd", b"x").await;
    assert_eq!(named.body["current"]["file_name"], "passwd");
    // Binary junk named as text: stored, skipped.
    static JUNK: [u8; 6] = [0, 159, 146, 150, 0, 1];
    let junk = upload(&server, &alice, "?name=notes.txt", &JUNK).await;
    assert_eq!(junk.body["current"]["index_state"], "skipped");
    // Unknown parameters, a bad collection, a bad id.
    upload(&server, &alice, "?nmae=x", b"x")
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "bad-request");
    upload(
        &server,
        &alice,
        "?collection=0190f1e2-0000-7000-8000-000000000000",
        b"x",
    )
    .await
    .assert_problem(StatusCode::NOT_FOUND, "not-found");
    server
        .get("/api/v1/artifacts/not-a-uuid", &alice)
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "bad-request");
    // Queries: empty, too long, a bad limit, an unknown kind.
    for body in [
        json!({"query": "  "}),
        json!({"query": "a".repeat(10_001)}),
        json!({"query": "x", "limit": 0}),
        json!({"query": "x", "kind": "video"}),
    ] {
        server
            .post("/api/v1/search", Some(&alice), body)
            .await
            .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation-failed");
    }
    // Text PostgreSQL cannot hold, or that a one-line field should not: 422, not a 500.
    server
        .post(
            "/api/v1/collections",
            Some(&alice),
            json!({"name": "x", "description": "a\u{0}b"}),
        )
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation-failed");
    upload(&server, &alice, "?title=a%00b", b"x")
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation-failed");
    upload(&server, &alice, "?source=a%0Ab", b"x")
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation-failed");
    let punctuation = keyword_search(&server, &alice, "?!.,;:").await;
    assert_eq!(punctuation.body["hits"], json!([]));

    // An upload that stalls half-way: 408, nothing stored.
    let address = server.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /api/v1/artifacts?name=half.txt HTTP/1.1\r\nhost: kai\r\n\
         authorization: Bearer {alice}\r\ncontent-length: 1000\r\n\r\nhalf of it"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("the server answers a stalled upload")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    // One cut off mid-stream: nothing stored either.
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /api/v1/artifacts?name=cut.txt HTTP/1.1\r\nhost: kai\r\n\
         authorization: Bearer {alice}\r\ncontent-length: 1000\r\n\r\nthe first part"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    drop(stream);
    tokio::time::sleep(Duration::from_millis(200)).await;

    let listed = server.get("/api/v1/artifacts", &alice).await;
    let titles: Vec<&str> = listed.body["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles.len(), 3, "{titles:?}");
    assert!(!titles.contains(&"half.txt") && !titles.contains(&"cut.txt"));
    assert_eq!(
        keyword_search(&server, &alice, "sourdough").await.body["hits"][0]["item_id"],
        kept_id.as_str()
    );
}

/// A server whose model `smart` is a loopback OpenAI-compatible upstream.
async fn chat_server(upstream: &kai_providers::testing::MockUpstream) -> TestServer {
    let mut provider =
        kai_config::ProviderSettings::new("up", kai_config::ProviderKind::OpenaiCompatible);
    provider.base_url = Some(upstream.url("/v1").parse().unwrap());
    TestServer::start_with(
        move |settings| {
            settings.providers = vec![provider];
            settings.models = vec![kai_config::ModelSettings::new(
                "smart",
                vec![kai_config::DeploymentSettings::new("up", "model-up")],
            )];
        },
        OpenApiRouter::new(),
    )
    .await
}

#[tokio::test]
async fn chat_answers_are_grounded_in_knowledge_and_carry_their_sources() {
    use kai_providers::testing::{MockUpstream, Reply as Upstream};

    let upstream = MockUpstream::start().await;
    let server = chat_server(&upstream).await;
    let alice = server.user_token("alice").await;
    let bob = server.user_token("bob").await;
    let created = upload(
        &server,
        &alice,
        "?name=garden.md",
        b"# Garden\n\nThe tomatoes were planted on the fourth of May.\n",
    )
    .await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    indexed(&server, &alice, &id).await;

    let answer = json!({"id": "up-1", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "On May 4th [1]."},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 30, "completion_tokens": 5, "total_tokens": 35}});
    upstream.push("/v1/chat/completions", Upstream::json(200, answer.clone()));
    let reply = server
        .post(
            "/v1/chat/completions",
            Some(&alice),
            json!({"model": "smart",
                   "messages": [{"role": "user", "content": "When were the tomatoes planted?"}],
                   "knowledge": {"limit": 3}}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let source = &reply.body["sources"][0];
    assert_eq!(source["number"], 1);
    assert_eq!(source["item_id"], id.as_str());
    assert_eq!(source["title"], "garden.md");
    assert!(source["text"].as_str().unwrap().contains("fourth of May"));
    // The model saw the passage, numbered, before the question; kai's field went no further.
    let sent = upstream.last_request().json;
    let messages = sent["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2, "{sent}");
    assert_eq!(messages[0]["role"], "system");
    let prompt = messages[0]["content"].as_str().unwrap();
    assert!(prompt.contains("[1] garden.md"), "{prompt}");
    assert!(prompt.contains("fourth of May"), "{prompt}");
    assert_eq!(messages[1]["content"], "When were the tomatoes planted?");
    assert!(sent.get("knowledge").is_none(), "{sent}");

    // Bob's question finds nothing of Alice's: no sources, the prompt untouched.
    upstream.push("/v1/chat/completions", Upstream::json(200, answer));
    let reply = server
        .post(
            "/v1/chat/completions",
            Some(&bob),
            json!({"model": "smart",
                   "messages": [{"role": "user", "content": "When were the tomatoes planted?"}],
                   "knowledge": {}}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["sources"], json!([]));
    assert_eq!(
        upstream.last_request().json["messages"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Streamed: the sources come first, in a chunk of their own.
    let chunk = |delta: Value, finish: Value| {
        json!({"id": "up-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        .to_string()
    };
    let events = [
        chunk(json!({"role": "assistant", "content": "May"}), Value::Null),
        chunk(json!({}), json!("stop")),
        "[DONE]".to_owned(),
    ];
    let events: Vec<&str> = events.iter().map(String::as_str).collect();
    upstream.push("/v1/chat/completions", Upstream::sse(&events));
    let response = server
        .client
        .post(server.url("/v1/chat/completions"))
        .bearer_auth(&alice)
        .json(&json!({"model": "smart", "stream": true,
                      "messages": [{"role": "user", "content": "tomatoes planted when?"}],
                      "knowledge": {"collections": []}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    let first: Value = serde_json::from_str(
        text.split("\n\n")
            .next()
            .unwrap()
            .trim_start_matches("data: ")
            .trim(),
    )
    .unwrap();
    assert_eq!(first["choices"], json!([]), "{text}");
    assert_eq!(first["sources"][0]["title"], "garden.md", "{text}");
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");

    // So does a conversation's message, streamed.
    let conversation = server
        .post(
            "/api/v1/conversations",
            Some(&alice),
            json!({"model": "smart"}),
        )
        .await;
    assert_eq!(
        conversation.status,
        StatusCode::CREATED,
        "{}",
        conversation.text
    );
    let conversation_id = conversation.body["id"].as_str().unwrap().to_owned();
    upstream.push("/v1/chat/completions", Upstream::sse(&events));
    let response = tokio::time::timeout(
        Duration::from_secs(20),
        server
            .client
            .post(server.url(&format!("/api/v1/conversations/{conversation_id}/messages")))
            .bearer_auth(&alice)
            .json(&json!({"content": "tomatoes planted when?", "stream": true, "knowledge": {}}))
            .send(),
    )
    .await
    .expect("the streamed message answers")
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = tokio::time::timeout(Duration::from_secs(20), response.text())
        .await
        .expect("the streamed message ends")
        .unwrap();
    assert!(text.contains("\"sources\""), "{text}");
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");

    // A collection that is not the caller's, and a bad limit, are named.
    for (knowledge, param) in [
        (
            json!({"collections": ["0190f1e2-0000-7000-8000-000000000000"]}),
            "knowledge.collections",
        ),
        (json!({"limit": 0}), "knowledge.limit"),
    ] {
        let reply = server
            .post(
                "/v1/chat/completions",
                Some(&alice),
                json!({"model": "smart", "messages": [{"role": "user", "content": "hi"}],
                       "knowledge": knowledge}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
        assert_eq!(reply.body["error"]["param"], param, "{}", reply.text);
    }
}

#[tokio::test]
async fn notes_are_written_linked_renamed_and_read_by_their_owner_alone() {
    let server = TestServer::start().await;
    let alice = server.user_token("alice").await;
    let bob = server.user_token("bob").await;

    let log = server
        .post(
            "/api/v1/notes",
            Some(&alice),
            json!({"title": "Garden log", "body": "Aphids again.", "tags": ["garden"]}),
        )
        .await;
    assert_eq!(log.status, StatusCode::CREATED, "{}", log.text);
    let log_id = log.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        log.headers[header::LOCATION],
        format!("/api/v1/notes/{log_id}")
    );
    let plan = server
        .post(
            "/api/v1/notes",
            Some(&alice),
            json!({"title": "Plan", "body": "Read the [[garden log|log]] first."}),
        )
        .await;
    assert_eq!(plan.status, StatusCode::CREATED, "{}", plan.text);
    assert_eq!(plan.body["links"][0]["target_id"], log_id.as_str());
    let plan_id = plan.body["id"].as_str().unwrap().to_owned();

    let renamed = server
        .send(
            Method::PATCH,
            &format!("/api/v1/notes/{log_id}"),
            Some(&alice),
            Some(json!({"title": "Roses"})),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.text);
    assert_eq!(renamed.body["backlinks"][0]["id"], plan_id.as_str());
    assert_eq!(renamed.body["version"], 2);
    let by_title = server.get("/api/v1/notes?title=roses", &alice).await;
    assert_eq!(by_title.body["notes"][0]["id"], log_id.as_str());
    let versions = server
        .get(&format!("/api/v1/notes/{log_id}/versions"), &alice)
        .await;
    assert_eq!(versions.body["versions"][0]["title"], "Garden log");
    let diff = server
        .get(&format!("/api/v1/notes/{log_id}/diff?from=1&to=2"), &alice)
        .await;
    assert_eq!(diff.status, StatusCode::OK, "{}", diff.text);

    // Searched, once indexed, by keyword.
    for _ in 0..400 {
        let note = server.get(&format!("/api/v1/notes/{log_id}"), &alice).await;
        if note.body["index_state"] != "pending" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let found = server
        .post(
            "/api/v1/search",
            Some(&alice),
            json!({"query": "aphids", "mode": "keyword", "kind": "note"}),
        )
        .await;
    assert_eq!(found.body["hits"][0]["title"], "Roses", "{}", found.text);
    assert_eq!(found.body["hits"][0]["mime"], "text/markdown");

    // Bob: not found, whatever he tries; and the same title is his to use.
    for path in [
        format!("/api/v1/notes/{log_id}"),
        format!("/api/v1/notes/{log_id}/versions"),
    ] {
        server
            .get(&path, &bob)
            .await
            .assert_problem(StatusCode::NOT_FOUND, "not-found");
    }
    let his = server
        .post("/api/v1/notes", Some(&bob), json!({"title": "Roses"}))
        .await;
    assert_eq!(his.status, StatusCode::CREATED, "{}", his.text);

    // In a collection, and not in another's.
    let shelf = server
        .post(
            "/api/v1/collections",
            Some(&alice),
            json!({"name": "shelf"}),
        )
        .await;
    let shelf = shelf.body["id"].as_str().unwrap().to_owned();
    let filed = server
        .post(
            "/api/v1/notes",
            Some(&alice),
            json!({"title": "Untitled", "collection_id": shelf}),
        )
        .await;
    assert_eq!(filed.status, StatusCode::CREATED, "{}", filed.text);
    server
        .post(
            "/api/v1/notes",
            Some(&bob),
            json!({"title": "Filed", "collection_id": shelf}),
        )
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not-found");

    // Bad input.
    server
        .post("/api/v1/notes", Some(&alice), json!({"title": "ROSES"}))
        .await
        .assert_problem(StatusCode::CONFLICT, "conflict");
    server
        .post("/api/v1/notes", Some(&alice), json!({"title": "a#b"}))
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation-failed");
    server
        .post(
            "/api/v1/notes",
            Some(&alice),
            json!({"title": "x", "template": "nope"}),
        )
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not-found");
    server
        .post(
            "/api/v1/notes",
            Some(&alice),
            json!({"title": "x", "bogus": 1}),
        )
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation-failed");

    let deleted = server
        .send(
            Method::DELETE,
            &format!("/api/v1/notes/{log_id}"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let plan_now = server
        .get(&format!("/api/v1/notes/{plan_id}"), &alice)
        .await;
    assert_eq!(plan_now.body["links"][0]["target_id"], Value::Null);
}

#[tokio::test]
async fn memory_is_kept_sealed_corrected_and_unavailable_while_the_vault_is_locked() {
    use kai_providers::testing::{MockUpstream, Reply as Upstream};

    let upstream = MockUpstream::start().await;
    let server = chat_server(&upstream).await;
    let admin = server.admin_token().await;
    let alice = server.user_token("alice").await;
    // No vault yet: said so, and what to do (unlocking would not help).
    let missing = server
        .post(
            "/api/v1/memory",
            Some(&alice),
            json!({"text": "Prefers tea"}),
        )
        .await;
    missing.assert_problem(StatusCode::CONFLICT, "vault-not-initialized");
    assert!(
        missing.body["detail"]
            .as_str()
            .unwrap()
            .contains("kai vault init"),
        "{}",
        missing.body
    );
    server
        .get("/api/v1/memory", &alice)
        .await
        .assert_problem(StatusCode::CONFLICT, "vault-not-initialized");
    let init = server
        .post(
            "/api/v1/vault/init",
            Some(&admin),
            json!({"passphrase": "correct horse battery staple"}),
        )
        .await;
    assert_eq!(init.status, StatusCode::CREATED, "{}", init.text);

    let tea = server
        .post(
            "/api/v1/memory",
            Some(&alice),
            json!({"text": "Prefers tea"}),
        )
        .await;
    assert_eq!(tea.status, StatusCode::CREATED, "{}", tea.text);
    assert_eq!(tea.body["source"]["kind"], "user");
    let lyon = server
        .post(
            "/api/v1/memory",
            Some(&alice),
            json!({"text": "Lives in Lyon"}),
        )
        .await;
    let moved = server
        .post(
            "/api/v1/memory",
            Some(&alice),
            json!({"text": "Lives in Grenoble", "supersedes": lyon.body["id"],
                   "relates_to": [tea.body["id"]]}),
        )
        .await;
    assert_eq!(moved.status, StatusCode::CREATED, "{}", moved.text);
    let current = server.get("/api/v1/memory", &alice).await;
    let texts: Vec<&str> = current.body["memories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["Prefers tea", "Lives in Grenoble"]);
    let history = server
        .get("/api/v1/memory?history=true&q=lyon", &alice)
        .await;
    assert_eq!(
        history.body["memories"][0]["superseded_by"],
        moved.body["id"]
    );
    server
        .post(
            "/api/v1/memory",
            Some(&alice),
            json!({"text": "Lives in Paris", "supersedes": lyon.body["id"]}),
        )
        .await
        .assert_problem(StatusCode::CONFLICT, "conflict");

    // A chat that asks for memory gets it in its prompt.
    let answer = json!({"id": "up-1", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Grenoble."},
                     "finish_reason": "stop"}]});
    upstream.push("/v1/chat/completions", Upstream::json(200, answer.clone()));
    let reply = server
        .post(
            "/v1/chat/completions",
            Some(&alice),
            json!({"model": "smart", "messages": [{"role": "user", "content": "Where do I live?"}],
                   "knowledge": {"memory": true}}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let prompt = upstream.last_request().json["messages"][0]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(prompt.contains("- Lives in Grenoble"), "{prompt}");
    assert!(!prompt.contains("Lyon"), "{prompt}");

    // Locked: memory is 503; chats asking for it still answer, without it.
    let locked = server
        .send(Method::POST, "/api/v1/vault/lock", Some(&admin), None)
        .await;
    assert_eq!(locked.status, StatusCode::NO_CONTENT, "{}", locked.text);
    server
        .get("/api/v1/memory", &alice)
        .await
        .assert_problem(StatusCode::SERVICE_UNAVAILABLE, "vault-locked");
    upstream.push("/v1/chat/completions", Upstream::json(200, answer));
    let reply = server
        .post(
            "/v1/chat/completions",
            Some(&alice),
            json!({"model": "smart", "messages": [{"role": "user", "content": "Where do I live?"}],
                   "knowledge": {"memory": true}}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(
        upstream.last_request().json["messages"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn a_conversation_message_can_be_answered_from_knowledge() {
    use kai_providers::testing::{MockUpstream, Reply as Upstream};

    let upstream = MockUpstream::start().await;
    let server = chat_server(&upstream).await;
    let alice = server.user_token("alice").await;
    let created = upload(
        &server,
        &alice,
        "?name=garden.md",
        b"The tomatoes were planted on the fourth of May.",
    )
    .await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    indexed(&server, &alice, &id).await;
    let conversation = server
        .post(
            "/api/v1/conversations",
            Some(&alice),
            json!({"model": "smart"}),
        )
        .await;
    assert_eq!(
        conversation.status,
        StatusCode::CREATED,
        "{}",
        conversation.text
    );
    let conversation = conversation.body["id"].as_str().unwrap().to_owned();
    upstream.push(
        "/v1/chat/completions",
        Upstream::json(
            200,
            json!({"id": "up-1", "object": "chat.completion", "created": 1, "model": "m",
                   "choices": [{"index": 0, "message": {"role": "assistant", "content": "May 4th [1]."},
                                "finish_reason": "stop"}]}),
        ),
    );
    let reply = server
        .post(
            &format!("/api/v1/conversations/{conversation}/messages"),
            Some(&alice),
            json!({"content": "When were the tomatoes planted?", "knowledge": {"limit": 2}}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(
        reply.body["sources"][0]["title"], "garden.md",
        "{}",
        reply.text
    );
    let sent = upstream.last_request().json;
    assert_eq!(sent["messages"][0]["role"], "system", "{sent}");
    // The conversation keeps the question and the answer, not the passages.
    let kept = server
        .get(&format!("/api/v1/conversations/{conversation}"), &alice)
        .await;
    let roles: Vec<&str> = kept.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "assistant"], "{}", kept.text);
}
