//! Agent runs against a scripted model: the gateway's loopback upstream answers, in order,
//! with what a real OpenAI-compatible provider would (plans, tool calls, summaries, garbage),
//! and a real job worker works on the runs. Run against whichever backend
//! `KAI_TEST_DATABASE_URL` selects.

#![allow(clippy::unwrap_used)] // helpers outside #[test] functions unwrap too

use std::time::Duration;

use kai_agent::{AgentDefinition, Agents, RUN_JOB, RunView};
use kai_audit::AuditLog;
use kai_config::{
    DeploymentSettings, Environment, ModelSettings, ProviderKind, ProviderSettings, Settings,
};
use kai_core::{Role, RunId, UserId};
use kai_gateway::Gateway;
use kai_jobs::{KindSettings, Queue, Workers, WorkersHandle};
use kai_providers::testing::{MockUpstream, Reply};
use kai_store::testing::TestDatabase;
use kai_store::{AuditFilter, NewUser, RunRequestKind, RunStatus, Store};
use serde_json::{Value, json};

const CHAT: &str = "/v1/chat/completions";

struct Harness {
    _db: TestDatabase,
    _dir: tempfile::TempDir,
    store: Store,
    upstream: MockUpstream,
    agents: Agents,
    owner: UserId,
    workers: Option<WorkersHandle>,
}

impl Harness {
    async fn new() -> Harness {
        Harness::with_mcp(Vec::new()).await
    }

    async fn with_mcp(mcp: Vec<kai_mcp::McpServerConfig>) -> Harness {
        let db = TestDatabase::new().await;
        let store = db.store().await;
        let upstream = MockUpstream::start().await;
        let dir = tempfile::tempdir().unwrap();
        let mut settings = Settings::defaults(dir.path().to_owned());
        let mut provider = ProviderSettings::new("scripted", ProviderKind::OpenaiCompatible);
        provider.base_url = Some(upstream.url("/v1/").parse().unwrap());
        settings.providers.push(provider);
        settings.models.push(ModelSettings::new(
            "scripted",
            vec![DeploymentSettings::new("scripted", "scripted-1")],
        ));
        settings.gateway.retry_base_delay = Duration::from_millis(1);
        settings.gateway.retry_max_delay = Duration::from_millis(2);
        settings.agents.default_model = "scripted".into();
        // Priced, for the runs that ask before spending: 1 and 2 cents per thousand tokens.
        settings.prices.push(kai_config::PriceSettings {
            model: "scripted-1".into(),
            input: 10_000.0,
            output: 20_000.0,
        });
        // The loopback upstream doubles as the web site agents' HTTP requests may reach.
        settings.agents.http_allow = "127.0.0.1".into();
        let gateway = Gateway::new(store.clone(), &settings, Environment::default(), None, None)
            .await
            .unwrap();
        let vault = kai_vault::Vault::new(store.clone(), &settings.vault);
        let audit = AuditLog::new(store.clone(), vault, &settings.audit);
        let queue = Queue::new(store.clone());
        let agents = Agents::new(
            store.clone(),
            gateway,
            queue.clone(),
            audit,
            None,
            kai_mcp::McpServers::new(mcp).unwrap(),
            kai_events::Events::start(store.clone()).await.unwrap(),
            settings.agents.clone(),
            dir.path().join("workspaces"),
        )
        .unwrap();
        let owner = store
            .create_user(&NewUser {
                username: "ada".parse().unwrap(),
                password_hash: "$argon2id$fake".into(),
                role: Role::User,
            })
            .await
            .unwrap()
            .id;
        let workers = Some(start_workers(&agents, queue));
        Harness {
            _db: db,
            _dir: dir,
            store,
            upstream,
            agents,
            owner,
            workers,
        }
    }

    async fn agent(&self, name: &str, definition: Value) {
        let definition: AgentDefinition = serde_json::from_value(definition).unwrap();
        self.agents
            .create(self.owner, name, definition)
            .await
            .unwrap();
    }

    /// Waits until the run is in one of `statuses`.
    async fn until(&self, id: RunId, statuses: &[RunStatus]) -> RunView {
        for _ in 0..500 {
            let run = self.agents.run(self.owner, id).await.unwrap();
            if statuses.contains(&run.record.status) {
                return run;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let run = self.agents.run(self.owner, id).await.unwrap();
        panic!(
            "run stayed {}: {:#?}",
            run.record.status.as_str(),
            self.kinds(id).await
        );
    }

    async fn kinds(&self, id: RunId) -> Vec<String> {
        self.store
            .run_events(id, 0, 1000)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect()
    }

    async fn events(&self, id: RunId) -> Vec<Value> {
        self.store
            .run_events(id, 0, 1000)
            .await
            .unwrap()
            .into_iter()
            .map(|e| serde_json::from_str(&e.data).unwrap())
            .collect()
    }

    async fn audited(&self) -> Vec<String> {
        self.store
            .audit_entries(&AuditFilter {
                limit: 1000,
                ..AuditFilter::default()
            })
            .await
            .unwrap()
            .into_iter()
            .map(|row| row.action)
            .collect()
    }

    fn workspace_file(&self, id: RunId, name: &str) -> Option<String> {
        std::fs::read_to_string(self.agents.workspace(id).join(name)).ok()
    }
}

fn start_workers(agents: &Agents, queue: Queue) -> WorkersHandle {
    Workers::new(queue)
        .poll_interval(Duration::from_millis(50))
        .handle(RUN_JOB, KindSettings::default(), agents.handler())
        .start()
}

/// An OpenAI chat completion answering with `text`.
fn says(text: &str) -> Reply {
    Reply::json(
        200,
        json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "scripted-1",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
        }),
    )
}

/// An OpenAI chat completion calling tools: `(name, arguments)`.
fn calls(tools: &[(&str, Value)]) -> Reply {
    let calls: Vec<Value> = tools
        .iter()
        .enumerate()
        .map(|(i, (name, arguments))| {
            json!({"id": format!("call_{i}"), "type": "function",
                   "function": {"name": name, "arguments": arguments.to_string()}})
        })
        .collect();
    Reply::json(
        200,
        json!({
            "id": "chatcmpl-2", "object": "chat.completion", "created": 1, "model": "scripted-1",
            "choices": [{"index": 0, "finish_reason": "tool_calls",
                         "message": {"role": "assistant", "content": null, "tool_calls": calls}}],
            "usage": {"prompt_tokens": 20, "completion_tokens": 8, "total_tokens": 28}
        }),
    )
}

fn plan(steps: &[&str]) -> Reply {
    let steps: Vec<Value> = steps
        .iter()
        .map(|title| json!({"title": title, "instructions": format!("do: {title}")}))
        .collect();
    says(&json!({ "steps": steps }).to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_goal_is_planned_and_each_step_calls_tools_until_done() {
    let h = Harness::new().await;
    h.agent(
        "scribe",
        json!({"instructions": "You write files for {{ who }}.", "variables": {"who": "ada"},
               "tools": ["write_file", "read_file"]}),
    )
    .await;
    h.upstream.push(CHAT, plan(&["Write the file", "Check it"]));
    h.upstream.push(
        CHAT,
        calls(&[(
            "write_file",
            json!({"path": "hello.txt", "content": "hello"}),
        )]),
    );
    h.upstream.push(CHAT, says("Wrote hello.txt."));
    h.upstream
        .push(CHAT, calls(&[("read_file", json!({"path": "hello.txt"}))]));
    h.upstream.push(CHAT, says("It says hello."));

    let run = h
        .agents
        .start(h.owner, "scribe", "write hello to a file", None)
        .await
        .unwrap();
    let done = h
        .until(run.record.id, &[RunStatus::Succeeded, RunStatus::Failed])
        .await;
    assert_eq!(
        done.record.status,
        RunStatus::Succeeded,
        "{:?}",
        h.kinds(run.record.id).await
    );
    assert_eq!(done.answer(), Some("It says hello."));
    assert_eq!(
        h.workspace_file(run.record.id, "hello.txt").as_deref(),
        Some("hello")
    );
    assert_eq!(done.state.used.model_calls, 5);
    assert_eq!(done.state.used.tool_calls, 2);

    let requests = h.upstream.requests();
    // The planner asks for structured output; steps offer the tools and render the template.
    assert_eq!(requests[0].json["response_format"]["type"], "json_schema");
    assert_eq!(requests[1].json["tools"].as_array().unwrap().len(), 2);
    assert!(
        requests[1].json["messages"][0]["content"]
            .as_str()
            .unwrap()
            .starts_with("You write files for ada.")
    );
    // The tool's result goes back to the model under the call's id.
    let tool_message = &requests[2].json["messages"][3];
    assert_eq!(tool_message["role"], "tool");
    assert_eq!(tool_message["tool_call_id"], "call_0");

    assert_eq!(
        h.kinds(run.record.id).await,
        [
            "created",
            "started",
            "model_call",
            "plan",
            "step_started",
            "model_call",
            "tool_call",
            "tool_result",
            "model_call",
            "step_finished",
            "step_started",
            "model_call",
            "tool_call",
            "tool_result",
            "model_call",
            "step_finished",
            "finished"
        ]
    );
    let audited = h.audited().await;
    let agent_actions: Vec<&str> = audited
        .iter()
        .map(String::as_str)
        .filter(|a| a.starts_with("agent."))
        .collect();
    assert_eq!(
        agent_actions,
        [
            "agent.create",
            "agent.run.start",
            "agent.tool.call",
            "agent.tool.result",
            "agent.tool.call",
            "agent.tool.result",
            "agent.run.end"
        ]
    );
    // The write, having side effects, was recorded under its idempotency key.
    let recorded = h
        .store
        .tool_call(run.record.id, "1.1.1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(recorded.tool, "write_file");
    assert!(recorded.result.unwrap().contains("wrote 5 bytes"));
}

#[tokio::test(flavor = "multi_thread")]
async fn asking_pauses_the_run_until_the_owner_answers() {
    let h = Harness::new().await;
    h.agent(
        "careful",
        json!({"instructions": "Be careful.", "tools": ["write_file"],
               "consent": {"write_file": "ask"}}),
    )
    .await;
    h.upstream.push(CHAT, plan(&["Write"]));
    h.upstream.push(
        CHAT,
        calls(&[
            ("write_file", json!({"path": "a.txt", "content": "a"})),
            ("write_file", json!({"path": "b.txt", "content": "b"})),
        ]),
    );
    h.upstream.push(CHAT, says("Wrote a, not b."));

    let run = h
        .agents
        .start(h.owner, "careful", "write two files", None)
        .await
        .unwrap();
    let id = run.record.id;
    h.until(id, &[RunStatus::Waiting]).await;
    let pending = h.agents.requests(h.owner, Some(id), true).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].kind, RunRequestKind::Consent);
    assert!(
        h.workspace_file(id, "a.txt").is_none(),
        "nothing happens before consent"
    );
    h.agents
        .decide(h.owner, pending[0].id, true, None, false)
        .await
        .unwrap();

    h.until(id, &[RunStatus::Waiting]).await;
    assert_eq!(h.workspace_file(id, "a.txt").as_deref(), Some("a"));
    let pending = h.agents.requests(h.owner, Some(id), true).await.unwrap();
    assert_eq!(
        pending.len(),
        1,
        "the second call is asked about on its own"
    );
    h.agents
        .decide(h.owner, pending[0].id, false, Some("not b"), false)
        .await
        .unwrap();
    let done = h
        .until(id, &[RunStatus::Succeeded, RunStatus::Failed])
        .await;
    assert_eq!(done.record.status, RunStatus::Succeeded);
    assert!(h.workspace_file(id, "b.txt").is_none());
    let last = h.upstream.last_request();
    let denial = &last.json["messages"][4];
    assert!(
        denial["content"]
            .as_str()
            .unwrap()
            .contains("denied this call: not b"),
        "{denial}"
    );
    // An answered request cannot be answered again.
    let again = h
        .agents
        .decide(h.owner, pending[0].id, true, None, false)
        .await;
    assert!(again.unwrap_err().to_string().contains("denied"));
    let audited = h.audited().await;
    assert_eq!(
        audited
            .iter()
            .filter(|a| *a == "agent.consent.request")
            .count(),
        2
    );
    assert_eq!(
        audited
            .iter()
            .filter(|a| *a == "agent.consent.decision")
            .count(),
        2
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn always_is_remembered_for_the_agent_and_tool() {
    let h = Harness::new().await;
    h.agent(
        "writer",
        json!({"instructions": "Write.", "tools": ["write_file"], "consent": {"write_file": "ask"}}),
    )
    .await;
    h.upstream.push(CHAT, plan(&["Write"]));
    h.upstream.push(
        CHAT,
        calls(&[("write_file", json!({"path": "a.txt", "content": "a"}))]),
    );
    h.upstream.push(CHAT, says("Done."));
    let first = h
        .agents
        .start(h.owner, "writer", "write a", None)
        .await
        .unwrap();
    h.until(first.record.id, &[RunStatus::Waiting]).await;
    let request = &h.agents.requests(h.owner, None, true).await.unwrap()[0];
    h.agents
        .decide(h.owner, request.id, true, None, true)
        .await
        .unwrap();
    h.until(first.record.id, &[RunStatus::Succeeded]).await;
    assert_eq!(
        h.agents.agent(h.owner, "writer").await.unwrap().grants,
        [("write_file".to_owned(), true)]
    );

    h.upstream.push(CHAT, plan(&["Write"]));
    h.upstream.push(
        CHAT,
        calls(&[("write_file", json!({"path": "b.txt", "content": "b"}))]),
    );
    h.upstream.push(CHAT, says("Done."));
    let second = h
        .agents
        .start(h.owner, "writer", "write b", None)
        .await
        .unwrap();
    h.until(second.record.id, &[RunStatus::Succeeded]).await;
    assert!(
        h.agents
            .requests(h.owner, Some(second.record.id), false)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_agent_can_ask_its_owner_a_question() {
    let h = Harness::new().await;
    h.agent(
        "curious",
        json!({"instructions": "Ask.", "tools": ["ask_user"]}),
    )
    .await;
    h.upstream.push(CHAT, plan(&["Ask"]));
    h.upstream.push(
        CHAT,
        calls(&[("ask_user", json!({"question": "Which colour?"}))]),
    );
    h.upstream.push(CHAT, says("Blue it is."));
    let run = h
        .agents
        .start(h.owner, "curious", "pick a colour", None)
        .await
        .unwrap();
    h.until(run.record.id, &[RunStatus::Waiting]).await;
    let question = &h.agents.requests(h.owner, None, true).await.unwrap()[0];
    assert_eq!(question.kind, RunRequestKind::Question);
    assert!(question.details.contains("Which colour?"));
    let err = h
        .agents
        .decide(h.owner, question.id, true, None, false)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("give an `answer`"), "{err}");
    h.agents
        .decide(h.owner, question.id, true, Some("blue"), false)
        .await
        .unwrap();
    h.until(run.record.id, &[RunStatus::Succeeded]).await;
    let last = h.upstream.last_request();
    assert_eq!(last.json["messages"][3]["content"], "blue");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_calls_and_a_looping_model_are_contained_and_reported() {
    let h = Harness::new().await;
    h.agent(
        "sloppy",
        json!({"instructions": "Try.", "tools": ["read_file"]}),
    )
    .await;
    h.upstream.push(CHAT, plan(&["Read"]));
    // An unknown tool, arguments that are not JSON, and arguments of the wrong shape.
    h.upstream.push(CHAT, calls(&[("format_disk", json!({}))]));
    h.upstream.push(
        CHAT,
        Reply::json(
            200,
            json!({"id": "x", "object": "chat.completion", "created": 1, "model": "scripted-1",
                   "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                       "role": "assistant", "content": null, "tool_calls": [{"id": "c",
                       "type": "function", "function": {"name": "read_file",
                       "arguments": "{not json"}}]}}]}),
        ),
    );
    h.upstream
        .push(CHAT, calls(&[("read_file", json!({"path": 7}))]));
    // Then the same call three times in a row: the step fails, the plan is remade, and the
    // new plan's step loops too, until the run gives up.
    for _ in 0..3 {
        h.upstream.push(
            CHAT,
            calls(&[("read_file", json!({"path": "missing.txt"}))]),
        );
    }
    h.upstream.push(CHAT, plan(&["Read again"]));
    for _ in 0..3 {
        h.upstream.push(
            CHAT,
            calls(&[("read_file", json!({"path": "missing.txt"}))]),
        );
    }
    h.upstream.push(CHAT, plan(&["Read once more"]));
    for _ in 0..3 {
        h.upstream.push(
            CHAT,
            calls(&[("read_file", json!({"path": "missing.txt"}))]),
        );
    }
    let run = h
        .agents
        .start(h.owner, "sloppy", "read a file", None)
        .await
        .unwrap();
    let done = h
        .until(run.record.id, &[RunStatus::Succeeded, RunStatus::Failed])
        .await;
    assert_eq!(done.record.status, RunStatus::Failed);
    let error = done.record.error.clone().unwrap();
    assert!(error.contains("repeated the same call"), "{error}");

    let results: Vec<String> = h
        .events(run.record.id)
        .await
        .into_iter()
        .filter(|e| e["type"] == "tool_result")
        .map(|e| e["output"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        results[0].contains("there is no tool `format_disk`"),
        "{results:?}"
    );
    assert!(results[1].contains("not JSON"), "{results:?}");
    assert!(
        results[2].contains("`path` must be a string"),
        "{results:?}"
    );
    assert!(
        results[3].contains("cannot read `missing.txt`"),
        "{results:?}"
    );
    let kinds = h.kinds(run.record.id).await;
    assert_eq!(kinds.iter().filter(|k| *k == "step_failed").count(), 3);
    assert_eq!(kinds.iter().filter(|k| *k == "plan").count(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_model_that_cannot_plan_still_works_on_the_goal_and_prompted_calls_work() {
    let h = Harness::new().await;
    h.agent(
        "small",
        json!({"instructions": "Help.", "tools": ["write_file"], "tool_calling": "prompted"}),
    )
    .await;
    // The planner answers prose twice; the step calls a tool in prompted JSON, then answers.
    h.upstream.push(CHAT, says("I would first think about it."));
    h.upstream.push(CHAT, says("Sorry, I cannot."));
    h.upstream.push(
        CHAT,
        says(r#"Sure: {"tool": "write_file", "arguments": {"path": "n.txt", "content": "42"}}"#),
    );
    h.upstream
        .push(CHAT, says(r#"{"answer": "Saved the number."}"#));
    let run = h
        .agents
        .start(h.owner, "small", "save 42", None)
        .await
        .unwrap();
    let done = h
        .until(run.record.id, &[RunStatus::Succeeded, RunStatus::Failed])
        .await;
    assert_eq!(
        done.record.status,
        RunStatus::Succeeded,
        "{:?}",
        h.events(run.record.id).await
    );
    assert_eq!(done.answer(), Some("Saved the number."));
    assert_eq!(
        h.workspace_file(run.record.id, "n.txt").as_deref(),
        Some("42")
    );
    let plan = h
        .events(run.record.id)
        .await
        .into_iter()
        .find(|e| e["type"] == "plan")
        .unwrap();
    assert!(
        plan["note"]
            .as_str()
            .unwrap()
            .contains("working on the goal as one step")
    );
    let requests = h.upstream.requests();
    assert!(
        requests[2].json.get("tools").is_none(),
        "prompted models get no tools field"
    );
    let system = requests[2].json["messages"][0]["content"].as_str().unwrap();
    assert!(system.contains("{\"tool\": \"NAME\""), "{system}");
    assert_eq!(requests[3].json["messages"][3]["role"], "user");
}

#[tokio::test(flavor = "multi_thread")]
async fn runs_pause_resume_and_cancel() {
    let mut h = Harness::new().await;
    h.agent(
        "slow",
        json!({"instructions": "Go.", "tools": ["write_file"]}),
    )
    .await;
    // Stop the worker, so the run waits in the queue while it is paused.
    h.workers.take().unwrap().shutdown().await;
    let run = h.agents.start(h.owner, "slow", "go", None).await.unwrap();
    let id = run.record.id;
    let paused = h.agents.pause(h.owner, id).await.unwrap();
    assert_eq!(paused.record.status, RunStatus::Paused);
    let err = h.agents.pause(h.owner, id).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("only a queued, waiting or running run"),
        "{err}"
    );

    h.upstream.push(CHAT, plan(&["Go"]));
    h.upstream.push(CHAT, says("Gone."));
    h.workers = Some(start_workers(&h.agents, Queue::new(h.store.clone())));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        h.agents.run(h.owner, id).await.unwrap().record.status,
        RunStatus::Paused,
        "a paused run is not worked on"
    );
    h.agents.resume(h.owner, id).await.unwrap();
    h.until(id, &[RunStatus::Succeeded]).await;
    let err = h.agents.cancel(h.owner, id).await.unwrap_err();
    assert!(err.to_string().contains("already succeeded"), "{err}");

    // A run waiting on a slow model is cancelled in the middle of the call.
    h.upstream
        .push(CHAT, plan(&["Wait"]).after(Duration::from_secs(30)));
    let slow = h.agents.start(h.owner, "slow", "wait", None).await.unwrap();
    h.until(slow.record.id, &[RunStatus::Running]).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    h.agents.cancel(h.owner, slow.record.id).await.unwrap();
    let done = h.until(slow.record.id, &[RunStatus::Cancelled]).await;
    assert!(done.record.finished_at.is_some());
    assert!(
        h.audited()
            .await
            .iter()
            .filter(|a| *a == "agent.run.end")
            .count()
            >= 2
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_begun_before_a_crash_is_asked_about_not_repeated() {
    let mut h = Harness::new().await;
    h.agent(
        "writer",
        json!({"instructions": "Write.", "tools": ["write_file"]}),
    )
    .await;
    h.workers.take().unwrap().shutdown().await;
    let run = h
        .agents
        .start(h.owner, "writer", "write", None)
        .await
        .unwrap();
    let id = run.record.id;
    // As a worker killed during the call would leave it: the plan and the model's call saved,
    // the call begun, never settled.
    let mut state = run.state.clone();
    state.plan = Some(kai_agent::plan::Plan {
        steps: vec![kai_agent::plan::PlannedStep {
            title: "Write".into(),
            instructions: String::new(),
        }],
    });
    state.messages = vec![kai_models::chat::Message::text(
        kai_models::chat::Role::User,
        "Step 1",
    )];
    state.pending.push_back(kai_agent::state::PendingCall {
        key: "1.1.1".into(),
        id: "call_0".into(),
        tool: "write_file".into(),
        arguments: json!({"path": "once.txt", "content": "x"}).to_string(),
    });
    let record = h.store.run(id).await.unwrap().unwrap();
    h.store
        .save_run(
            id,
            record.revision,
            &kai_store::RunSave {
                status: RunStatus::Running,
                state: &serde_json::to_string(&state).unwrap(),
                error: None,
                events: &[],
            },
        )
        .await
        .unwrap()
        .unwrap();
    h.store
        .begin_tool_call(id, "1.1.1", "write_file", "{}")
        .await
        .unwrap();

    h.workers = Some(start_workers(&h.agents, Queue::new(h.store.clone())));
    h.until(id, &[RunStatus::Waiting]).await;
    let request = &h.agents.requests(h.owner, Some(id), true).await.unwrap()[0];
    assert_eq!(request.kind, RunRequestKind::Outcome);
    assert!(
        h.workspace_file(id, "once.txt").is_none(),
        "not repeated on its own"
    );
    h.agents
        .decide(h.owner, request.id, false, None, false)
        .await
        .unwrap();
    h.upstream.push(CHAT, says("Could not tell; left it."));
    let done = h
        .until(id, &[RunStatus::Succeeded, RunStatus::Failed])
        .await;
    assert_eq!(done.record.status, RunStatus::Succeeded);
    assert!(h.workspace_file(id, "once.txt").is_none());
    let settled = h.store.tool_call(id, "1.1.1").await.unwrap().unwrap();
    assert!(settled.result.unwrap().contains("is unknown"));
}

#[tokio::test]
async fn definitions_and_templates_are_checked_when_written() {
    let h = Harness::new().await;
    let define = |json: Value| serde_json::from_value::<AgentDefinition>(json).unwrap();
    let err = h
        .agents
        .create(
            h.owner,
            "a",
            define(json!({"instructions": "Hi {{ nme }}"})),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("`nme`"), "{err}");
    let err = h
        .agents
        .create(h.owner, "bad name!", define(json!({"instructions": "Hi"})))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("not valid as an agent's name"),
        "{err}"
    );
    let err = h
        .agents
        .create(h.owner, "a", define(json!({"prompt": "missing"})))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("prompt `missing` not found"),
        "{err}"
    );

    h.agents
        .create_prompt(
            h.owner,
            "greeter",
            "",
            "Greet {{ who }} about {{ goal }}.",
            vec!["who".into()],
        )
        .await
        .unwrap();
    let err = h
        .agents
        .create(h.owner, "a", define(json!({"prompt": "greeter"})))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("needs a value for `who`"), "{err}");
    h.agents
        .create(
            h.owner,
            "a",
            define(json!({"prompt": "greeter@1", "variables": {"who": "bob"}})),
        )
        .await
        .unwrap();
    let err = h
        .agents
        .add_prompt_version(h.owner, "greeter", None, "Hello {{ whom }}", vec![])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("`whom`"), "{err}");
    let second = h
        .agents
        .add_prompt_version(
            h.owner,
            "greeter",
            None,
            "Hello {{ who }}",
            vec!["who".into()],
        )
        .await
        .unwrap();
    assert_eq!(second.version, 2);
    let err = h
        .agents
        .create(h.owner, "a", define(json!({"instructions": "x"})))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
    let err = h.agents.start(h.owner, "a", "  ", None).await.unwrap_err();
    assert!(err.to_string().contains("goal is empty"), "{err}");
    let err = h
        .agents
        .start(h.owner, "nobody", "x", None)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("agent `nobody` not found"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn http_requests_ask_per_host_and_never_reach_private_addresses() {
    let h = Harness::new().await;
    h.agent(
        "browser",
        json!({"instructions": "Browse.", "tools": ["http_request"]}),
    )
    .await;
    h.upstream.push(
        "/page",
        Reply::raw(200, "text/plain", "hello from the page"),
    );
    h.upstream
        .push("/page", Reply::raw(200, "text/plain", "hello again"));
    let page = h.upstream.url("/page");
    h.upstream.push(CHAT, plan(&["Fetch"]));
    h.upstream
        .push(CHAT, calls(&[("http_request", json!({"url": page}))]));
    h.upstream.push(
        CHAT,
        calls(&[(
            "http_request",
            json!({"url": "http://169.254.169.254/latest/meta-data/"}),
        )]),
    );
    h.upstream.push(
        CHAT,
        calls(&[("http_request", json!({"url": page, "method": "GET"}))]),
    );
    h.upstream.push(CHAT, says("Fetched twice."));
    let run = h
        .agents
        .start(h.owner, "browser", "fetch the page", None)
        .await
        .unwrap();
    h.until(run.record.id, &[RunStatus::Waiting]).await;
    let request = &h.agents.requests(h.owner, None, true).await.unwrap()[0];
    assert_eq!(
        request.tool, "http_request:127.0.0.1",
        "consent is per host"
    );
    h.agents
        .decide(h.owner, request.id, true, None, true)
        .await
        .unwrap();
    // The metadata address is asked about as another host, and refused when approved.
    h.until(run.record.id, &[RunStatus::Waiting]).await;
    let request = &h.agents.requests(h.owner, None, true).await.unwrap()[0];
    assert_eq!(request.tool, "http_request:169.254.169.254");
    h.agents
        .decide(h.owner, request.id, true, None, false)
        .await
        .unwrap();
    let done = h
        .until(run.record.id, &[RunStatus::Succeeded, RunStatus::Failed])
        .await;
    assert_eq!(done.record.status, RunStatus::Succeeded);
    let results: Vec<String> = h
        .events(run.record.id)
        .await
        .into_iter()
        .filter(|e| e["type"] == "tool_result")
        .map(|e| e["output"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        results[0].starts_with("HTTP 200 OK") && results[0].contains("hello from the page"),
        "{results:?}"
    );
    assert!(results[1].contains("agents.http_allow"), "{results:?}");
    assert!(results[2].contains("hello again"), "{results:?}");
}

/// A webhook that records what it is told and vetoes writes to `secret.txt`.
async fn webhook() -> (String, std::sync::Arc<std::sync::Mutex<Vec<Value>>>) {
    use axum::Json;
    use axum::routing::post;
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    let app = axum::Router::new()
        .route(
            "/hook",
            post(move |Json(event): Json<Value>| {
                let record = record.clone();
                async move {
                    let veto = event["event"] == "before_tool"
                        && event["arguments"]["path"] == "secret.txt";
                    record.lock().unwrap().push(event);
                    if veto {
                        Json(json!({"allow": false, "reason": "secrets stay put"}))
                    } else {
                        Json(json!({"allow": true}))
                    }
                }
            }),
        )
        .route(
            "/broken",
            post(|| async { (http::StatusCode::INTERNAL_SERVER_ERROR, "down") }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), seen)
}

#[tokio::test(flavor = "multi_thread")]
async fn hooks_observe_and_veto_and_a_dead_veto_hook_fails_closed() {
    let h = Harness::new().await;
    let (base, seen) = webhook().await;
    h.agent(
        "hooked",
        json!({"instructions": "Write.", "tools": ["write_file"],
               "hooks": [{"webhook": format!("{base}/hook"), "veto": true}]}),
    )
    .await;
    h.upstream.push(CHAT, plan(&["Write"]));
    h.upstream.push(
        CHAT,
        calls(&[("write_file", json!({"path": "secret.txt", "content": "s"}))]),
    );
    h.upstream.push(
        CHAT,
        calls(&[("write_file", json!({"path": "public.txt", "content": "p"}))]),
    );
    h.upstream.push(CHAT, says("Wrote the public one."));
    let run = h
        .agents
        .start(h.owner, "hooked", "write", None)
        .await
        .unwrap();
    let done = h
        .until(run.record.id, &[RunStatus::Succeeded, RunStatus::Failed])
        .await;
    assert_eq!(done.record.status, RunStatus::Succeeded);
    assert!(h.workspace_file(run.record.id, "secret.txt").is_none());
    assert_eq!(
        h.workspace_file(run.record.id, "public.txt").as_deref(),
        Some("p")
    );
    let told: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        told,
        [
            "before_step",
            "before_tool",
            "before_tool",
            "after_tool",
            "after_step",
            "run_end"
        ]
    );
    let vetoed = h
        .events(run.record.id)
        .await
        .into_iter()
        .find(|e| e["type"] == "vetoed")
        .unwrap();
    assert_eq!(vetoed["reason"], "secrets stay put");
    assert!(h.audited().await.contains(&"agent.hook.veto".to_owned()));

    // A veto hook that is down stops every step; an observer that is down is only noted.
    h.agent(
        "guarded",
        json!({"instructions": "Go.", "tools": [],
               "hooks": [{"webhook": format!("{base}/broken"), "events": ["run_end"]},
                         {"webhook": format!("{base}/broken"), "veto": true,
                          "events": ["before_step"]}]}),
    )
    .await;
    for _ in 0..3 {
        h.upstream.push(CHAT, plan(&["Go"]));
    }
    let run = h
        .agents
        .start(h.owner, "guarded", "go", None)
        .await
        .unwrap();
    let done = h
        .until(run.record.id, &[RunStatus::Succeeded, RunStatus::Failed])
        .await;
    assert_eq!(done.record.status, RunStatus::Failed);
    assert!(
        done.record
            .error
            .as_deref()
            .unwrap()
            .contains("a veto hook that cannot answer vetoes"),
        "{:?}",
        done.record.error
    );
    let errors: Vec<Value> = h
        .events(run.record.id)
        .await
        .into_iter()
        .filter(|e| e["type"] == "error")
        .collect();
    assert!(
        errors
            .iter()
            .any(|e| e["message"].as_str().unwrap().contains("(run_end) failed"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn shell_commands_run_only_in_the_sandbox() {
    let h = Harness::new().await;
    h.agent(
        "sh",
        json!({"instructions": "Use the shell.", "tools": ["shell"], "consent": {"shell": "allow"}}),
    )
    .await;
    h.upstream.push(CHAT, plan(&["Shell"]));
    h.upstream.push(
        CHAT,
        calls(&[(
            "shell",
            json!({"command": "echo hello > out.txt && cat out.txt && touch /usr/owned"}),
        )]),
    );
    h.upstream.push(CHAT, says("Ran it."));
    let run = h
        .agents
        .start(h.owner, "sh", "run a command", None)
        .await
        .unwrap();
    let done = h
        .until(run.record.id, &[RunStatus::Succeeded, RunStatus::Failed])
        .await;
    assert_eq!(done.record.status, RunStatus::Succeeded);
    let result = h
        .events(run.record.id)
        .await
        .into_iter()
        .find(|e| e["type"] == "tool_result")
        .unwrap();
    let output = result["output"].as_str().unwrap();
    match kai_sandbox::Sandbox::detect().await {
        Ok(_) => {
            assert!(output.contains("hello"), "{output}");
            assert!(output.contains("Read-only file system"), "{output}");
            assert_eq!(
                h.workspace_file(run.record.id, "out.txt").as_deref(),
                Some("hello\n")
            );
        }
        Err(why) => {
            assert!(
                std::env::var("KAI_TEST_SANDBOX").is_err(),
                "KAI_TEST_SANDBOX is set but no sandbox can be made: {why}"
            );
            assert!(output.contains("the shell is unavailable"), "{output}");
            assert!(h.workspace_file(run.record.id, "out.txt").is_none());
        }
    }
}

/// The npm reference servers, when `scripts/mcp-test-deps` installed them.
#[allow(clippy::print_stderr)] // a skipped test says so
fn mcp_servers_dir() -> Option<std::path::PathBuf> {
    match std::env::var_os("KAI_TEST_MCP_SERVERS") {
        Some(dir) if !dir.is_empty() => Some(dir.into()),
        _ => {
            assert!(
                !std::env::var("KAI_TEST_REQUIRE_MCP").is_ok_and(|v| v == "1"),
                "KAI_TEST_REQUIRE_MCP is set but KAI_TEST_MCP_SERVERS is not: run scripts/mcp-test-deps"
            );
            eprintln!("skipped: KAI_TEST_MCP_SERVERS is not set (scripts/mcp-test-deps)");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn mcp_tools_reach_agents_with_their_annotations_as_consent() {
    let Some(dir) = mcp_servers_dir() else { return };
    let bin = dir.join("node_modules/.bin/mcp-server-everything");
    let mut everything =
        kai_mcp::McpServerConfig::stdio("everything", bin.display().to_string(), ["stdio"]);
    everything.startup_timeout = Duration::from_secs(60);
    let h = Harness::with_mcp(vec![everything]).await;
    let err = h
        .agents
        .create(
            h.owner,
            "wrong",
            serde_json::from_value(json!({"instructions": "x", "mcp_servers": ["nowhere"]}))
                .unwrap(),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no MCP server `nowhere`"), "{err}");
    h.agent(
        "mcp",
        json!({"instructions": "Use the server.", "mcp_servers": ["everything"]}),
    )
    .await;
    h.upstream.push(CHAT, plan(&["Echo"]));
    h.upstream.push(
        CHAT,
        calls(&[("everything__echo", json!({"message": "hi from kai"}))]),
    );
    h.upstream.push(
        CHAT,
        calls(&[("everything__toggle-simulated-logging", json!({}))]),
    );
    h.upstream.push(CHAT, says("Echoed."));
    let run = h.agents.start(h.owner, "mcp", "echo", None).await.unwrap();
    // echo is read-only by its annotations: it runs; the logging switch is not: it is asked.
    h.until(run.record.id, &[RunStatus::Waiting, RunStatus::Failed])
        .await;
    let request = &h.agents.requests(h.owner, None, true).await.unwrap()[0];
    assert_eq!(request.tool, "everything__toggle-simulated-logging");
    h.agents
        .decide(h.owner, request.id, false, None, false)
        .await
        .unwrap();
    let done = h
        .until(run.record.id, &[RunStatus::Succeeded, RunStatus::Failed])
        .await;
    assert_eq!(
        done.record.status,
        RunStatus::Succeeded,
        "{:?}",
        h.events(run.record.id).await
    );
    let results: Vec<String> = h
        .events(run.record.id)
        .await
        .into_iter()
        .filter(|e| e["type"] == "tool_result")
        .map(|e| e["output"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(results[0], "Echo: hi from kai");
    assert!(results[1].contains("denied"), "{results:?}");
    // An MCP tool as a veto hook: everything's echo does not answer {"allow": ...}, so the
    // hook vetoes every step (fail closed), and says why.
    h.agent(
        "mcp-guarded",
        json!({"instructions": "Go.", "tools": [],
               "hooks": [{"mcp": {"server": "everything", "tool": "echo"}, "veto": true,
                          "events": ["before_step"]}]}),
    )
    .await;
    for _ in 0..3 {
        h.upstream.push(CHAT, plan(&["Go"]));
    }
    let guarded = h
        .agents
        .start(h.owner, "mcp-guarded", "go", None)
        .await
        .unwrap();
    let ended = h
        .until(
            guarded.record.id,
            &[RunStatus::Succeeded, RunStatus::Failed],
        )
        .await;
    assert_eq!(ended.record.status, RunStatus::Failed);
    let vetoed = h
        .events(guarded.record.id)
        .await
        .into_iter()
        .find(|e| e["type"] == "vetoed")
        .unwrap();
    assert_eq!(vetoed["hook"], "mcp:everything/echo");
    // The model was offered the server's tools under the server's name.
    let offered = &h.upstream.requests()[1].json["tools"];
    assert!(
        offered
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["function"]["name"] == "everything__echo"),
        "{offered}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_schedule_starts_one_run_per_fire() {
    let h = Harness::new().await;
    h.agent("daily", json!({"instructions": "Sum up.", "tools": []}))
        .await;
    let schedule = h
        .agents
        .add_schedule(
            h.owner,
            kai_agent::NewAgentSchedule {
                name: "often",
                agent: "daily",
                goal: "sum up the day",
                spec: "every 1s",
                time_zone: "Europe/Berlin",
                missed: "skip",
                enabled: true,
            },
        )
        .await
        .unwrap();
    assert_eq!(schedule.upcoming.len(), 3);
    let fire_at = schedule.upcoming[0];
    // The scheduled-run worker runs beside the run worker.
    let queue = Queue::new(h.store.clone());
    let scheduled = Workers::new(queue.clone())
        .poll_interval(Duration::from_millis(50))
        .handle(
            kai_agent::SCHEDULED_RUN_JOB,
            KindSettings::default(),
            h.agents.scheduled_run_handler(),
        )
        .start();
    h.upstream.push(CHAT, plan(&["Sum up"]));
    h.upstream.push(CHAT, says("A quiet day."));
    let scheduler = kai_jobs::Scheduler::new(queue);
    let fired = scheduler.fire_due(fire_at).await.unwrap();
    assert_eq!(fired.enqueued, 1, "{fired:?}");
    // The same instant again fires nothing more.
    let again = scheduler.fire_due(fire_at).await.unwrap();
    assert_eq!(again.enqueued, 0);
    let mut runs = Vec::new();
    for _ in 0..300 {
        runs = h.agents.runs(h.owner, Some("daily"), 10).await.unwrap();
        if runs.iter().any(|r| r.record.status == RunStatus::Succeeded) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let jobs = h
        .store
        .job_counts(kai_agent::SCHEDULED_RUN_JOB)
        .await
        .unwrap();
    assert_eq!(runs.len(), 1, "{jobs:?}");
    assert_eq!(runs[0].record.goal, "sum up the day");
    assert_eq!(runs[0].answer(), Some("A quiet day."));
    scheduled.shutdown().await;
    let err = h
        .agents
        .add_schedule(
            h.owner,
            kai_agent::NewAgentSchedule {
                name: "bad",
                agent: "daily",
                goal: "x",
                spec: "at noon",
                time_zone: "UTC",
                missed: "skip",
                enabled: true,
            },
        )
        .await
        .unwrap_err();
    assert!(err.to_string().starts_with("spec:"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn spending_past_the_threshold_asks_the_owner() {
    let h = Harness::new().await;
    h.agent(
        "thrifty",
        json!({"instructions": "Go.", "tools": [], "limits": {"ask_after_usd": 0.1}}),
    )
    .await;
    // The plan costs 10 × 1¢ + 5 × 2¢ = 20¢: past the 10¢ the agent asks about.
    h.upstream.push(CHAT, plan(&["Go"]));
    h.upstream.push(CHAT, says("Gone."));
    let run = h
        .agents
        .start(h.owner, "thrifty", "go", None)
        .await
        .unwrap();
    let waiting = h
        .until(run.record.id, &[RunStatus::Waiting, RunStatus::Failed])
        .await;
    assert_eq!(waiting.record.status, RunStatus::Waiting);
    assert_eq!(waiting.state.used.cost_micros, 200_000);
    let request = &h.agents.requests(h.owner, None, true).await.unwrap()[0];
    assert_eq!(request.tool, "spend");
    assert!(request.details.contains("0.2000"), "{}", request.details);
    h.agents
        .decide(h.owner, request.id, true, None, false)
        .await
        .unwrap();
    let done = h
        .until(run.record.id, &[RunStatus::Succeeded, RunStatus::Failed])
        .await;
    assert_eq!(done.record.status, RunStatus::Succeeded);
    assert_eq!(done.state.used.cost_micros, 400_000);

    // Denied: the run ends there.
    h.upstream.push(CHAT, plan(&["Go"]));
    let run = h
        .agents
        .start(h.owner, "thrifty", "go again", None)
        .await
        .unwrap();
    h.until(run.record.id, &[RunStatus::Waiting]).await;
    let request = &h
        .agents
        .requests(h.owner, Some(run.record.id), true)
        .await
        .unwrap()[0];
    h.agents
        .decide(h.owner, request.id, false, None, false)
        .await
        .unwrap();
    let done = h
        .until(run.record.id, &[RunStatus::Succeeded, RunStatus::Failed])
        .await;
    assert_eq!(done.record.status, RunStatus::Failed);
    assert!(
        done.record
            .error
            .unwrap()
            .contains("did not let the run spend")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_mcp_server_that_hangs_is_contained_and_reported() {
    let Some(dir) = mcp_servers_dir() else { return };
    let bin = dir.join("node_modules/.bin/mcp-server-everything");
    let mut everything =
        kai_mcp::McpServerConfig::stdio("everything", bin.display().to_string(), ["stdio"]);
    everything.startup_timeout = Duration::from_secs(60);
    everything.call_timeout = Duration::from_secs(1);
    let h = Harness::with_mcp(vec![everything]).await;
    h.agent(
        "patient",
        json!({"instructions": "Use the server.", "mcp_servers": ["everything"]}),
    )
    .await;
    h.upstream.push(CHAT, plan(&["Wait"]));
    // Thirty seconds of work against a one-second limit; then a call that must still work.
    h.upstream.push(
        CHAT,
        calls(&[(
            "everything__trigger-long-running-operation",
            json!({"duration": 30, "steps": 2}),
        )]),
    );
    h.upstream.push(
        CHAT,
        calls(&[("everything__echo", json!({"message": "still here"}))]),
    );
    h.upstream.push(CHAT, says("The long one timed out."));
    let run = h
        .agents
        .start(h.owner, "patient", "wait", None)
        .await
        .unwrap();
    let done = h
        .until(run.record.id, &[RunStatus::Succeeded, RunStatus::Failed])
        .await;
    assert_eq!(
        done.record.status,
        RunStatus::Succeeded,
        "{:?}",
        h.events(run.record.id).await
    );
    let results: Vec<(bool, String)> = h
        .events(run.record.id)
        .await
        .into_iter()
        .filter(|e| e["type"] == "tool_result")
        .map(|e| {
            (
                e["ok"].as_bool().unwrap(),
                e["output"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(!results[0].0, "{results:?}");
    assert!(
        results[0].1.contains("whether the call ran is unknown"),
        "{results:?}"
    );
    assert_eq!(results[1], (true, "Echo: still here".to_owned()));
    assert!(
        h.audited()
            .await
            .iter()
            .filter(|a| *a == "agent.tool.result")
            .count()
            >= 2
    );
}
