//! The agents API over real HTTP: definitions, a run against a scripted upstream with a consent
//! request answered over the API, the timeline as JSON and as server-sent events, prompt
//! templates, and bad input.

#![allow(clippy::unwrap_used)] // helpers outside #[test] functions unwrap too

mod support;

use std::time::Duration;

use http::StatusCode;
use kai_config::{DeploymentSettings, ModelSettings, ProviderKind, ProviderSettings};
use kai_providers::testing::{MockUpstream, Reply};
use serde_json::{Value, json};
use support::TestServer;
use utoipa_axum::router::OpenApiRouter;

const CHAT: &str = "/v1/chat/completions";

async fn server(upstream: &MockUpstream) -> TestServer {
    let url = upstream.url("/v1");
    TestServer::start_with(
        move |settings| {
            let mut provider = ProviderSettings::new("scripted", ProviderKind::OpenaiCompatible);
            provider.base_url = Some(url.parse().unwrap());
            settings.providers = vec![provider];
            settings.models = vec![ModelSettings::new(
                "scripted",
                vec![DeploymentSettings::new("scripted", "scripted-1")],
            )];
            settings.agents.default_model = "scripted".into();
        },
        OpenApiRouter::new(),
    )
    .await
}

fn says(text: &str) -> Reply {
    Reply::json(
        200,
        json!({"id": "c", "object": "chat.completion", "created": 1, "model": "scripted-1",
               "choices": [{"index": 0, "finish_reason": "stop",
                            "message": {"role": "assistant", "content": text}}],
               "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}),
    )
}

fn calls(name: &str, arguments: Value) -> Reply {
    Reply::json(
        200,
        json!({"id": "c", "object": "chat.completion", "created": 1, "model": "scripted-1",
               "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                   "role": "assistant", "content": null, "tool_calls": [{"id": "call_1",
                   "type": "function", "function": {"name": name,
                   "arguments": arguments.to_string()}}]}}]}),
    )
}

async fn wait_for(server: &TestServer, token: &str, run: &str, status: &str) -> Value {
    for _ in 0..300 {
        let reply = server.get(&format!("/api/v1/runs/{run}"), token).await;
        if reply.body["status"] == status {
            return reply.body;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("run {run} never became {status}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_asks_over_the_api_and_its_timeline_streams() {
    let upstream = MockUpstream::start().await;
    let server = server(&upstream).await;
    let token = server.user_token("ada").await;

    let created = server
        .post(
            "/api/v1/agents",
            Some(&token),
            json!({"name": "scribe", "definition": {"instructions": "Write for {{ goal }}.",
                   "tools": ["write_file"], "consent": {"write_file": "ask"}}}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.body["definition"]["limits"]["max_steps"], 12);
    let agent_id = created.body["id"].as_str().unwrap().to_owned();
    let listed = server.get("/api/v1/agents", &token).await;
    assert_eq!(listed.body["agents"][0]["name"], "scribe");

    upstream.push(
        CHAT,
        says(r#"{"steps": [{"title": "Write", "instructions": "write"}]}"#),
    );
    upstream.push(
        CHAT,
        calls("write_file", json!({"path": "a.txt", "content": "hi"})),
    );
    upstream.push(CHAT, says("Wrote a.txt."));
    let started = server
        .post(
            "/api/v1/agents/scribe/runs",
            Some(&token),
            json!({"goal": "write hi"}),
        )
        .await;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.text);
    assert_eq!(started.body["agent_id"], agent_id.as_str());
    let run = started.body["id"].as_str().unwrap().to_owned();

    let waiting = wait_for(&server, &token, &run, "waiting").await;
    let request = waiting["waiting_on"].as_str().unwrap().to_owned();
    let pending = server.get("/api/v1/requests", &token).await;
    assert_eq!(pending.body["requests"][0]["id"], request.as_str());
    assert_eq!(
        pending.body["requests"][0]["details"]["arguments"]["path"],
        "a.txt"
    );

    // Another user sees none of it.
    let bob = server.user_token("bob").await;
    server
        .get(&format!("/api/v1/runs/{run}"), &bob)
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not-found");
    server
        .post(
            &format!("/api/v1/requests/{request}"),
            Some(&bob),
            json!({"approve": true}),
        )
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not-found");

    let decided = server
        .post(
            &format!("/api/v1/requests/{request}"),
            Some(&token),
            json!({"approve": true, "remember": true}),
        )
        .await;
    assert_eq!(decided.status, StatusCode::OK, "{}", decided.text);
    let done = wait_for(&server, &token, &run, "succeeded").await;
    assert_eq!(done["answer"], "Wrote a.txt.");
    assert_eq!(done["plan"], json!(["Write"]));
    let agent = server.get("/api/v1/agents/scribe", &token).await;
    assert_eq!(
        agent.body["grants"],
        json!([{"tool": "write_file", "allow": true}])
    );

    let events = server
        .get(&format!("/api/v1/runs/{run}/events"), &token)
        .await;
    let kinds: Vec<&str> = events.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"requested") && kinds.contains(&"decided"),
        "{kinds:?}"
    );
    assert_eq!(kinds.last(), Some(&"finished"));

    // The stream replays a finished run's timeline from where asked, then ends.
    let stream = server
        .client
        .get(server.url(&format!("/api/v1/runs/{run}/stream")))
        .bearer_auth(&token)
        .header("last-event-id", "2")
        .send()
        .await
        .unwrap();
    assert_eq!(
        stream.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let text = stream.text().await.unwrap();
    assert!(text.starts_with("id: 3\n"), "{text}");
    assert!(text.contains("event: finished\n"), "{text}");

    let runs = server.get("/api/v1/runs?agent=scribe", &token).await;
    assert_eq!(runs.body["runs"].as_array().unwrap().len(), 1);
    let cancel = server
        .post(
            &format!("/api/v1/runs/{run}/cancel"),
            Some(&token),
            json!({}),
        )
        .await;
    cancel.assert_problem(StatusCode::CONFLICT, "conflict");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_refused_with_what_to_fix() {
    let upstream = MockUpstream::start().await;
    let server = server(&upstream).await;
    let token = server.user_token("ada").await;
    for (definition, field) in [
        (
            json!({"tools": ["rm_rf"], "instructions": "x"}),
            "no tool `rm_rf`",
        ),
        (json!({"instructions": "Hi {{ who }}"}), "`who`"),
        (
            json!({"instructions": "x", "limits": {"max_duration": "forever"}}),
            "not a duration",
        ),
        (
            json!({"instructions": "x", "colour": 1}),
            "unknown field `colour`",
        ),
    ] {
        let body = json!({"name": "a", "definition": definition});
        let reply = server.post("/api/v1/agents", Some(&token), body).await;
        assert_eq!(reply.status.as_u16() / 100, 4, "{}", reply.text);
        assert!(reply.detail().contains(field), "{}", reply.text);
    }
    let reply = server
        .post(
            "/api/v1/agents",
            Some(&token),
            json!({"name": "a b", "definition": {"instructions": "x"}}),
        )
        .await;
    assert!(
        reply.detail().contains("not valid as an agent's name"),
        "{}",
        reply.text
    );
    server
        .post(
            "/api/v1/agents",
            Some(&token),
            json!({"name": "a", "definition": {"instructions": "x"}}),
        )
        .await;
    server
        .post(
            "/api/v1/agents",
            Some(&token),
            json!({"name": "a", "definition": {"instructions": "x"}}),
        )
        .await
        .assert_problem(StatusCode::CONFLICT, "conflict");
    let reply = server
        .post("/api/v1/agents/a/runs", Some(&token), json!({"goal": ""}))
        .await;
    reply.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation-failed");
    server
        .post(
            "/api/v1/agents/nobody/runs",
            Some(&token),
            json!({"goal": "x"}),
        )
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not-found");
    server
        .get("/api/v1/runs/not-a-uuid", &token)
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "bad-request");
    server
        .get("/api/v1/runs?limit=0", &token)
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "bad-request");
    let stream = server
        .client
        .get(server.url(&format!("/api/v1/runs/{}/stream", uuid::Uuid::nil())))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::NOT_FOUND);

    // Every part of a definition comes back as it went in.
    let hooked = json!({"instructions": "x", "tools": ["shell", "http_request"],
        "consent": {"shell": "deny"},
        "hooks": [{"webhook": "http://127.0.0.1:9/hook", "veto": true, "events": ["before_tool"]}],
        "limits": {"max_steps": 3, "max_duration": "5m"}});
    let created = server
        .post(
            "/api/v1/agents",
            Some(&token),
            json!({"name": "hooked", "definition": hooked}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let got = server.get("/api/v1/agents/hooked", &token).await;
    assert_eq!(
        got.body["definition"]["hooks"], hooked["hooks"],
        "{}",
        got.text
    );
    assert_eq!(got.body["definition"]["consent"], hooked["consent"]);
    assert_eq!(got.body["definition"]["limits"]["max_duration"], "5m");
    let reply = server
        .post(
            "/api/v1/agents",
            Some(&token),
            json!({"name": "m", "definition": {"instructions": "x", "mcp_servers": ["files"]}}),
        )
        .await;
    assert!(
        reply.detail().contains("no MCP server `files`"),
        "{}",
        reply.text
    );
    let prompt = server
        .post(
            "/api/v1/prompts",
            Some(&token),
            json!({"name": "p", "template": "Hello {{ whom }}"}),
        )
        .await;
    prompt.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation-failed");
    assert!(prompt.detail().contains("`whom`"), "{}", prompt.text);
    let prompt = server
        .post(
            "/api/v1/prompts",
            Some(&token),
            json!({"name": "p", "template": "Hello {{ whom }}", "variables": ["whom"]}),
        )
        .await;
    assert_eq!(prompt.status, StatusCode::CREATED, "{}", prompt.text);
    let v2 = server
        .post(
            "/api/v1/prompts/p/versions",
            Some(&token),
            json!({"template": "Hi {{ whom }}", "variables": ["whom"]}),
        )
        .await;
    assert_eq!(v2.body["version"], 2, "{}", v2.text);
    let v1 = server.get("/api/v1/prompts/p?version=1", &token).await;
    assert_eq!(v1.body["template"], "Hello {{ whom }}");
    let versions = server.get("/api/v1/prompts/p/versions", &token).await;
    assert_eq!(versions.body["prompts"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn schedules_are_checked_listed_and_switched() {
    let upstream = MockUpstream::start().await;
    let server = server(&upstream).await;
    let token = server.user_token("ada").await;
    server
        .post(
            "/api/v1/agents",
            Some(&token),
            json!({"name": "daily", "definition": {"instructions": "x"}}),
        )
        .await;
    for (body, status, expected) in [
        (json!({"spec": "cron: 61 * * * *"}), 422, "cron"),
        (json!({"spec": "every 0s"}), 422, "every"),
        (
            json!({"spec": "every 1h", "time_zone": "Mars/Olympus"}),
            422,
            "Mars/Olympus",
        ),
        (
            json!({"spec": "every 1h", "missed": "sometimes"}),
            422,
            "run_once",
        ),
        (
            json!({"spec": "every 1h", "agent": "nobody"}),
            404,
            "agent `nobody`",
        ),
    ] {
        let mut request = json!({"name": "s", "agent": "daily", "goal": "sum up"});
        for (key, value) in body.as_object().unwrap() {
            request[key] = value.clone();
        }
        let reply = server
            .post("/api/v1/schedules", Some(&token), request)
            .await;
        assert_eq!(reply.status.as_u16(), status, "{}", reply.text);
        assert!(reply.detail().contains(expected), "{}", reply.text);
    }
    let created = server
        .post(
            "/api/v1/schedules",
            Some(&token),
            json!({"name": "mornings", "agent": "daily", "goal": "sum up",
                   "spec": "cron: 30 7 * * *", "time_zone": "Europe/Berlin"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.body["upcoming"].as_array().unwrap().len(), 3);
    assert!(
        created.body["upcoming"][0]
            .as_str()
            .unwrap()
            .ends_with(":30:00Z"),
        "{}",
        created.text
    );
    server
        .post(
            "/api/v1/schedules",
            Some(&token),
            json!({"name": "mornings", "agent": "daily", "goal": "x", "spec": "every 1h"}),
        )
        .await
        .assert_problem(StatusCode::CONFLICT, "conflict");
    let disabled = server
        .post(
            "/api/v1/schedules/mornings/disable",
            Some(&token),
            json!({}),
        )
        .await;
    assert_eq!(disabled.body["enabled"], false);
    assert!(disabled.body["upcoming"].as_array().unwrap().is_empty());
    let listed = server.get("/api/v1/schedules", &token).await;
    assert_eq!(listed.body["schedules"][0]["name"], "mornings");
    let bob = server.user_token("bob").await;
    server
        .get("/api/v1/schedules/mornings", &bob)
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not-found");
    let deleted = server
        .send(
            reqwest::Method::DELETE,
            "/api/v1/schedules/mornings",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
}
