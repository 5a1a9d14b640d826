//! Servers that misbehave: one that cannot start, one that exits before or during a session,
//! one that hangs at start, one tool that never answers, a server that freezes whole. Each is
//! an error that names the server and says what happened, within the timeouts, and the
//! registry connects again afterwards. A dropped client's process group dies with it.
//!
//! These need nothing installed: the misbehaving server is tests/support/test_server.rs (with
//! `faults`) or a shell.

#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod common;

use std::time::{Duration, Instant};

use kai_mcp::{McpClient, McpError, McpServerConfig, McpServers};
use serde_json::json;

fn faults() -> McpServerConfig {
    let mut config = McpServerConfig::stdio("faulty", common::test_server(), ["faults"]);
    config.startup_timeout = Duration::from_secs(20);
    config
}

fn shell(name: &str, script: &str) -> McpServerConfig {
    McpServerConfig::stdio(name, "sh", ["-c", script])
}

#[tokio::test]
async fn a_missing_command_is_a_clear_error() {
    let config = McpServerConfig::stdio("ghost", "kai-mcp-no-such-program", ["--stdio"]);
    let err = McpClient::connect(&config).await.unwrap_err();
    assert!(matches!(err, McpError::Start { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("`ghost`")
            && text.contains("kai-mcp-no-such-program")
            && text.contains("no such program"),
        "{text}"
    );
}

#[tokio::test]
async fn a_server_that_exits_at_start_is_quoted() {
    let config = shell(
        "broken",
        "echo 'reading settings' >&2; echo 'cannot read config.json' >&2; exit 2",
    );
    let err = McpClient::connect(&config).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, McpError::Start { .. }), "{err:?}");
    assert!(
        text.contains("`broken`")
            && text.contains("exit status: 2")
            && text.contains("cannot read config.json"),
        "{text}"
    );
}

#[tokio::test]
async fn a_server_that_says_nothing_times_out_at_start_and_dies() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let mut config = shell(
        "mute",
        &format!(
            "echo 'starting slowly' >&2; echo $$ > '{}'; exec sleep 600",
            pid_file.display()
        ),
    );
    config.startup_timeout = Duration::from_millis(500);
    let started = Instant::now();
    let err = McpClient::connect(&config).await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(err, McpError::StartTimeout { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("`mute`") && text.contains("500ms") && text.contains("starting slowly"),
        "{text}"
    );
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    let pid = common::read_pid(&pid_file).await;
    common::wait_until_ended(pid, Duration::from_secs(5)).await;
}

#[tokio::test]
async fn dropping_a_client_kills_its_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    // The shell starts a grandchild, then becomes the server: both must die with the client.
    let config = shell(
        "family",
        &format!(
            "sleep 600 & echo $! > '{}'; exec '{}'",
            pid_file.display(),
            common::test_server()
        ),
    );
    let client = McpClient::connect(&config).await.unwrap();
    assert!(client.is_alive());
    let grandchild = common::read_pid(&pid_file).await;
    assert!(!common::process_ended(grandchild));
    drop(client);
    common::wait_until_ended(grandchild, Duration::from_secs(5)).await;
}

#[tokio::test]
async fn close_lets_the_server_exit_then_kills_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let config = shell(
        "closing",
        &format!(
            "sleep 600 & echo $! > '{}'; exec '{}'",
            pid_file.display(),
            common::test_server()
        ),
    );
    let client = McpClient::connect(&config).await.unwrap();
    let grandchild = common::read_pid(&pid_file).await;
    let started = Instant::now();
    client.close().await;
    assert!(started.elapsed() < Duration::from_secs(6));
    common::wait_until_ended(grandchild, Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_server_that_dies_mid_session_is_reported_then_reconnected() {
    let client = McpClient::connect(&faults()).await.unwrap();
    let names: Vec<String> = client.tools().into_iter().map(|tool| tool.name).collect();
    assert_eq!(names, ["add", "shout", "die", "hang", "freeze"]);

    let err = client.call("die", json!({}), None).await.unwrap_err();
    assert!(matches!(err, McpError::Disconnected { .. }), "{err:?}");
    assert!(err.outcome_unknown());
    let text = err.to_string();
    assert!(
        text.contains("`faulty`")
            && text.contains("exit status: 3")
            && text.contains("dying as asked"),
        "{text}"
    );
    assert!(!client.is_alive());
    // A dead client refuses at once, saying how it ended, and sends nothing.
    let err = client
        .call("add", json!({"a": 1, "b": 2}), None)
        .await
        .unwrap_err();
    assert!(matches!(err, McpError::Dead { .. }), "{err:?}");
    assert!(!err.outcome_unknown());
    assert!(err.to_string().contains("exit status: 3"), "{err}");

    // The registry replaces a dead connection before the next call.
    let servers = McpServers::new([faults()]).unwrap();
    let first = servers.client("faulty").await.unwrap();
    let err = servers
        .call("faulty", "die", json!(null), None)
        .await
        .unwrap_err();
    assert!(matches!(err, McpError::Disconnected { .. }), "{err:?}");
    let answer = servers
        .call("faulty", "add", json!({"a": 1, "b": 2}), None)
        .await
        .unwrap();
    assert_eq!(answer.text, "3");
    let second = servers.client("faulty").await.unwrap();
    assert!(!std::sync::Arc::ptr_eq(&first, &second));
    servers.close().await;
}

#[tokio::test]
async fn a_tool_that_never_answers_times_out_and_the_server_stays() {
    let client = McpClient::connect(&faults()).await.unwrap();
    let started = Instant::now();
    let err = client
        .call("hang", json!({}), Some(Duration::from_millis(300)))
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(err, McpError::Timeout { .. }), "{err:?}");
    assert!(err.outcome_unknown());
    let text = err.to_string();
    assert!(
        text.contains("`faulty`") && text.contains("`hang`") && text.contains("300ms"),
        "{text}"
    );
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
    // The server still answers (a ping told the client so), so it is not restarted.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(client.is_alive());
    let answer = client
        .call("add", json!({"a": 20, "b": 22}), None)
        .await
        .unwrap();
    assert_eq!(answer.text, "42");
}

#[tokio::test]
async fn a_frozen_server_is_declared_dead_and_replaced() {
    let servers = McpServers::new([faults()]).unwrap();
    let client = servers.client("faulty").await.unwrap();
    let err = servers
        .call(
            "faulty",
            "freeze",
            json!({}),
            Some(Duration::from_millis(300)),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, McpError::Timeout { .. }), "{err:?}");
    // The ping after the timeout goes unanswered too: the client gives the server up.
    let deadline = Instant::now() + Duration::from_secs(15);
    while client.is_alive() {
        assert!(
            Instant::now() < deadline,
            "a frozen server still counts as alive"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let err = client
        .call("add", json!({"a": 1, "b": 1}), None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("stopped answering"), "{err}");
    let answer = servers
        .call("faulty", "add", json!({"a": 1, "b": 1}), None)
        .await
        .unwrap();
    assert_eq!(answer.text, "2");
}

#[tokio::test]
async fn bad_requests_are_refused_with_the_reason() {
    let client = McpClient::connect(&faults()).await.unwrap();
    let err = client.call("add", json!([1, 2]), None).await.unwrap_err();
    assert!(matches!(err, McpError::InvalidArguments { .. }), "{err:?}");
    assert!(err.to_string().contains("not an array"), "{err}");

    let err = client.call("subtract", json!({}), None).await.unwrap_err();
    assert!(matches!(err, McpError::Rejected { .. }), "{err:?}");
    assert!(
        err.to_string().contains("no tool named `subtract`"),
        "{err}"
    );
    assert!(client.is_alive());

    let servers = McpServers::new([faults()]).unwrap();
    let err = servers
        .call("nobody", "add", json!({}), None)
        .await
        .unwrap_err();
    assert!(matches!(err, McpError::UnknownServer(_)), "{err:?}");
    let err = McpServers::new([faults(), faults()]).unwrap_err();
    assert!(matches!(err, McpError::DuplicateServer(_)), "{err:?}");
}
