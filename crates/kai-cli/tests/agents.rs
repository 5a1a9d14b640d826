//! Agents through the real binary: `kai agent create` and `kai agent run` against a `kai serve`
//! whose model is a scripted loopback upstream; and a run that survives `kill -9` of the server
//! in the middle of a model call, resumed at the next start without repeating its file write.

#![allow(clippy::unwrap_used)] // helpers outside #[test] functions unwrap too

mod support;

use std::time::{Duration, Instant};

use kai_providers::testing::{MockUpstream, Reply};
use serde_json::{Value, json};
use support::{Kai, PASSWORD, Server, stderr, stdout};

const CHAT: &str = "/v1/chat/completions";

fn says(text: &str) -> Reply {
    Reply::json(
        200,
        json!({"id": "c", "object": "chat.completion", "created": 1, "model": "m",
               "choices": [{"index": 0, "finish_reason": "stop",
                            "message": {"role": "assistant", "content": text}}],
               "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}),
    )
}

fn calls(name: &str, arguments: Value) -> Reply {
    Reply::json(
        200,
        json!({"id": "c", "object": "chat.completion", "created": 1, "model": "m",
               "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                   "role": "assistant", "content": null, "tool_calls": [{"id": "call_1",
                   "type": "function", "function": {"name": name,
                   "arguments": arguments.to_string()}}]}}]}),
    )
}

fn plan(title: &str) -> Reply {
    says(&json!({"steps": [{"title": title, "instructions": title}]}).to_string())
}

fn configure(kai: &Kai, upstream: &MockUpstream) {
    let dir = kai.home.path().join("config/kai");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("kai.toml"),
        format!(
            r#"
[gateway]
retry_base_delay = "5ms"

[agents]
default_model = "smart"

[[providers]]
name = "mock"
kind = "openai-compatible"
base_url = "{}"

[[models]]
name = "smart"
deployments = [{{ provider = "mock", model = "model-a" }}]
"#,
            upstream.url("/v1")
        ),
    )
    .unwrap();
}

/// `kai ARGS` with the vault's passphrase (and cheap Argon2id parameters), so that a server
/// unlocks the vault at start and signs the audit log.
fn with_vault(kai: &Kai, args: &[&str]) -> std::process::Command {
    let passphrase = kai.home.path().join("passphrase");
    std::fs::write(&passphrase, "a long enough passphrase\n").unwrap();
    let mut command = kai.command(args);
    command
        .env("KAI_VAULT_KDF_MEMORY", "19MiB")
        .env("KAI_VAULT_KDF_ITERATIONS", "2")
        .env("KAI_VAULT_PASSPHRASE_FILE", passphrase);
    command
}

fn log_in(kai: &Kai, server: &Server) {
    let out = kai.run_with_stdin(
        &["login", "--url", &server.base, "alice"],
        &format!("{PASSWORD}\n"),
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_runs_at_the_terminal_and_survives_kill_9() {
    let kai = Kai::new().await;
    let upstream = MockUpstream::start().await;
    configure(&kai, &upstream);
    kai.create_admin("alice");
    let out = with_vault(&kai, &["vault", "init"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let server = Server::spawn(with_vault(&kai, &["serve", "--bind", "127.0.0.1:0"]));
    log_in(&kai, &server);

    let out = kai.run(&[
        "agent",
        "create",
        "scribe",
        "--instructions",
        "You write files.",
        "--tool",
        "write_file",
        "--tool",
        "read_file",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = kai.run(&[
        "agent",
        "create",
        "bad",
        "--instructions",
        "x",
        "--tool",
        "nope",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("there is no tool `nope`"),
        "{}",
        stderr(&out)
    );

    // A run followed at the terminal, as JSON lines.
    upstream.push(CHAT, plan("Write"));
    upstream.push(
        CHAT,
        calls("write_file", json!({"path": "a.txt", "content": "one"})),
    );
    upstream.push(CHAT, says("Wrote a.txt."));
    let out = kai.run(&["agent", "run", "scribe", "write one", "--json"]);
    assert!(
        out.status.success(),
        "{}\n{}",
        stderr(&out),
        server.log_text()
    );
    let events: Vec<Value> = stdout(&out)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(events.first().unwrap()["kind"], "created");
    let last = events.last().unwrap();
    assert_eq!(last["kind"], "finished");
    assert_eq!(last["data"]["answer"], "Wrote a.txt.");

    // And as text.
    upstream.push(CHAT, plan("Say"));
    upstream.push(CHAT, says("Said."));
    let out = kai.run(&["agent", "run", "scribe", "say something"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("step 1: Say") && text.contains("succeeded: Said."),
        "{text}"
    );

    // Killed while the model thinks after the write: the write is saved, the model call is
    // not; the next start resumes the run from there.
    upstream.push(CHAT, plan("Write"));
    upstream.push(
        CHAT,
        calls("write_file", json!({"path": "b.txt", "content": "two"})),
    );
    upstream.push(CHAT, says("late").after(Duration::from_secs(120)));
    // Counted before the run starts: its worker may be quicker than the command's return.
    let before = upstream.requests().len();
    let out = kai.run(&["agent", "run", "scribe", "write two", "--detach", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let run: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let run_id = run["id"].as_str().unwrap().to_owned();
    wait_until("the model call after the write", || {
        upstream.requests().len() >= before + 3
    });
    server.kill();

    upstream.push(CHAT, says("Wrote b.txt."));
    let restarted = Server::spawn(with_vault(&kai, &["serve", "--bind", "127.0.0.1:0"]));
    // The new server listens on another port.
    let at_restarted = |args: &[&str]| {
        kai.command(args)
            .env("KAI_CLIENT_URL", &restarted.base)
            .output()
            .unwrap()
    };
    let out = at_restarted(&["agent", "log", &run_id, "--follow", "--json"]);
    assert!(
        out.status.success(),
        "{}\n{}",
        stderr(&out),
        restarted.log_text()
    );
    let events: Vec<Value> = stdout(&out)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds.last(), Some(&"finished"), "{kinds:?}");
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "started" && e["data"]["resumed"] == true),
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "tool_call").count(),
        1,
        "the write ran once: {kinds:?}"
    );
    let out = at_restarted(&["agent", "runs", "--json"]);
    let runs: Vec<Value> = serde_json::from_str(&stdout(&out)).unwrap();
    let resumed = runs.iter().find(|r| r["id"] == run_id.as_str()).unwrap();
    assert_eq!(resumed["status"], "succeeded");
    assert_eq!(resumed["answer"], "Wrote b.txt.");
    assert_eq!(resumed["usage"]["tool_calls"], 1);

    // Everything the agents did is in the audit log, and it verifies.
    drop(restarted);
    let out = with_vault(&kai, &["audit", "verify"]).output().unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn schedules_at_the_command_line() {
    let kai = Kai::new().await;
    let upstream = MockUpstream::start().await;
    configure(&kai, &upstream);
    kai.create_admin("alice");
    let server = Server::start(&kai, &[]);
    log_in(&kai, &server);
    let out = kai.run(&["agent", "create", "daily", "--instructions", "Sum up."]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = kai.run(&[
        "schedule",
        "add",
        "mornings",
        "--agent",
        "daily",
        "--goal",
        "sum up",
        "--cron",
        "30 7 * * MON-FRI",
        "--tz",
        "Europe/Berlin",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let schedule: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(schedule["spec"], "cron: 30 7 * * MON-FRI");
    assert_eq!(schedule["time_zone"], "Europe/Berlin");
    let out = kai.run(&[
        "schedule",
        "add",
        "bad",
        "--agent",
        "daily",
        "--goal",
        "x",
        "--cron",
        "99 * * * *",
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("cron"), "{}", stderr(&out));
    let out = kai.run(&["schedule", "list"]);
    assert!(stdout(&out).contains("mornings"), "{}", stdout(&out));
    let out = kai.run(&["schedule", "rm", "mornings"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = kai.run(&["schedule", "list", "--json"]);
    assert_eq!(stdout(&out).trim(), "[]");
}

/// The MCP Python SDK, when `scripts/mcp-test-deps` installed it.
#[allow(clippy::print_stderr)] // a skipped test says so
fn mcp_python() -> Option<String> {
    match std::env::var("KAI_TEST_MCP_PYTHON") {
        Ok(python) if !python.is_empty() => Some(python),
        _ => {
            assert!(
                !std::env::var("KAI_TEST_REQUIRE_MCP").is_ok_and(|v| v == "1"),
                "KAI_TEST_REQUIRE_MCP=1 but KAI_TEST_MCP_PYTHON is not set: run scripts/mcp-test-deps"
            );
            eprintln!("skipped: KAI_TEST_MCP_PYTHON is not set (scripts/mcp-test-deps)");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kai_mcp_serves_the_python_sdk_over_stdio() {
    let Some(python) = mcp_python() else { return };
    let kai = Kai::new().await;
    let upstream = MockUpstream::start().await;
    configure(&kai, &upstream);
    kai.create_admin("alice");
    let server = Server::start(&kai, &[]);
    log_in(&kai, &server);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/mcp_kai.py");
    // The SDK starts `kai mcp` with the environment it is given: the sandbox's, which points
    // kai at its stored login.
    let sandbox = kai.command(&["mcp"]);
    let environment: Vec<_> = sandbox
        .get_envs()
        .filter_map(|(name, value)| Some((name.to_owned(), value?.to_owned())))
        .collect();
    let out = std::process::Command::new(&python)
        .arg(script)
        .arg(sandbox.get_program())
        .env_clear()
        .envs(environment)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        stderr(&out),
        server.log_text()
    );
    let answer: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        answer["tools"],
        json!([
            "chat",
            "read_note",
            "recall",
            "remember",
            "search_knowledge",
            "write_note"
        ])
    );
    assert_eq!(answer["written"]["is_error"], false, "{answer}");
    assert!(
        answer["read"]["text"]
            .as_str()
            .unwrap()
            .contains("Written by another agent."),
        "{answer}"
    );
    assert_eq!(answer["missing"]["is_error"], true, "{answer}");
}
