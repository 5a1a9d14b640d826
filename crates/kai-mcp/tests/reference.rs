//! kai's client against MCP's reference servers from npm: `server-everything` over stdio and
//! over streamable HTTP, `server-filesystem` and `server-memory`.
//!
//! They are found through `KAI_TEST_MCP_SERVERS` (`scripts/mcp-test-deps` installs them and
//! prints it); without it these tests say they were skipped, unless `KAI_TEST_REQUIRE_MCP=1`,
//! which makes a missing install fail them.

// A test skipped for want of the servers says so on stderr.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod common;

use std::process::Stdio;
use std::time::Duration;

use kai_mcp::{McpClient, McpError, McpServerConfig, McpServers, McpTransport};
use serde_json::json;

/// Node's first start of a package can be slow on a loaded machine.
const STARTUP: Duration = Duration::from_secs(60);

fn stdio(name: &str, command: String, args: &[&str]) -> McpServerConfig {
    let mut config = McpServerConfig::stdio(name, command, args.iter().copied());
    config.startup_timeout = STARTUP;
    config
}

#[tokio::test]
async fn everything_over_stdio() {
    let Some(npm) = common::npm_servers() else {
        return;
    };
    let client = McpClient::connect(&stdio(
        "everything",
        npm.bin("server-everything"),
        &["stdio"],
    ))
    .await
    .unwrap();

    let tools = client.tools();
    let echo = tools.iter().find(|tool| tool.name == "echo").unwrap();
    assert_eq!(echo.title.as_deref(), Some("Echo Tool"));
    assert_eq!(echo.description, "Echoes back the input string");
    assert_eq!(echo.input_schema["type"], "object");
    assert!(echo.input_schema["properties"]["message"].is_object());
    assert!(echo.annotations.read_only_hint);
    assert!(!echo.annotations.destructive_hint);
    assert!(echo.annotations.idempotent_hint);
    assert!(!echo.annotations.open_world_hint);
    let logging = tools
        .iter()
        .find(|tool| tool.name == "toggle-simulated-logging")
        .unwrap();
    assert!(!logging.annotations.read_only_hint && !logging.annotations.idempotent_hint);

    let echoed = client
        .call("echo", json!({"message": "hello, kai"}), None)
        .await
        .unwrap();
    assert!(!echoed.is_error);
    assert_eq!(echoed.text, "Echo: hello, kai");

    // Arguments the tool refuses come back as the tool's error, for the model to read.
    let refused = client.call("echo", json!({}), None).await.unwrap();
    assert!(refused.is_error);
    assert!(refused.text.contains("message"), "{}", refused.text);

    let image = client
        .call("get-tiny-image", json!(null), None)
        .await
        .unwrap();
    assert!(!image.is_error);
    assert!(
        image.text.contains("[image: image/png, ") && image.text.contains(" bytes]"),
        "{}",
        image.text
    );
    client.close().await;
}

#[tokio::test]
async fn everything_over_streamable_http_survives_a_restart() {
    let Some(npm) = common::npm_servers() else {
        return;
    };
    let port = common::free_port();
    let start = || {
        let mut command = tokio::process::Command::new(npm.bin("server-everything"));
        command
            .arg("streamableHttp")
            .env("PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        command.spawn().unwrap()
    };
    let mut server = start();
    common::wait_for_port(port, STARTUP).await;

    let mut config =
        McpServerConfig::http("everything-http", format!("http://127.0.0.1:{port}/mcp"));
    let McpTransport::Http { headers, .. } = &mut config.transport else {
        unreachable!("made as http")
    };
    headers.insert("X-Kai-Test".into(), "1".into());
    let servers = McpServers::new([config]).unwrap();
    let tools = servers.tools("everything-http").await.unwrap();
    let sum = tools.iter().find(|tool| tool.name == "get-sum").unwrap();
    assert!(sum.annotations.read_only_hint);
    let echoed = servers
        .call(
            "everything-http",
            "echo",
            json!({"message": "over http"}),
            None,
        )
        .await
        .unwrap();
    assert_eq!(echoed.text, "Echo: over http");
    let summed = servers
        .call("everything-http", "get-sum", json!({"a": 2, "b": 40}), None)
        .await
        .unwrap();
    assert!(summed.text.contains("42"), "{}", summed.text);

    // The server goes away: a call fails, in time, naming it.
    server.kill().await.unwrap();
    let err = servers
        .call(
            "everything-http",
            "echo",
            json!({"message": "anyone?"}),
            Some(Duration::from_secs(10)),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("`everything-http`"), "{err}");
    assert!(
        matches!(
            err,
            McpError::Transport { .. }
                | McpError::Disconnected { .. }
                | McpError::Dead { .. }
                | McpError::Start { .. }
        ),
        "{err:?}"
    );

    // It comes back (a new process, which knows nothing of the old session): calls work again.
    let _server = start();
    common::wait_for_port(port, STARTUP).await;
    let echoed = servers
        .call("everything-http", "echo", json!({"message": "again"}), None)
        .await
        .unwrap();
    assert_eq!(echoed.text, "Echo: again");
    servers.close().await;
}

#[tokio::test]
async fn filesystem_reads_inside_its_directory_only() {
    let Some(npm) = common::npm_servers() else {
        return;
    };
    let allowed = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(allowed.path().join("hello.txt"), "hello from kai\n").unwrap();
    std::fs::write(outside.path().join("secret.txt"), "not for you\n").unwrap();
    let client = McpClient::connect(&stdio(
        "files",
        npm.bin("server-filesystem"),
        &[allowed.path().to_str().unwrap()],
    ))
    .await
    .unwrap();

    let tools = client.tools();
    let read = tools
        .iter()
        .find(|tool| tool.name == "read_text_file")
        .unwrap();
    assert!(read.annotations.read_only_hint);
    let write = tools.iter().find(|tool| tool.name == "write_file").unwrap();
    assert!(!write.annotations.read_only_hint && write.annotations.destructive_hint);

    let file = client
        .call(
            "read_text_file",
            json!({"path": allowed.path().join("hello.txt")}),
            None,
        )
        .await
        .unwrap();
    assert!(!file.is_error);
    assert_eq!(file.text, "hello from kai\n");

    let refused = client
        .call(
            "read_text_file",
            json!({"path": outside.path().join("secret.txt")}),
            None,
        )
        .await
        .unwrap();
    assert!(refused.is_error);
    assert!(
        refused.text.contains("outside allowed directories")
            && !refused.text.contains("not for you"),
        "{}",
        refused.text
    );
}

#[tokio::test]
async fn memory_keeps_entities_in_its_file() {
    let Some(npm) = common::npm_servers() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("memory.jsonl");
    let mut config = stdio("memory", npm.bin("server-memory"), &[]);
    let McpTransport::Stdio { env, .. } = &mut config.transport else {
        unreachable!("made as stdio")
    };
    env.insert(
        "MEMORY_FILE_PATH".into(),
        file.to_string_lossy().into_owned(),
    );
    let client = McpClient::connect(&config).await.unwrap();

    let created = client
        .call(
            "create_entities",
            json!({"entities": [{"name": "kai", "entityType": "project",
                                 "observations": ["written in Rust"]}]}),
            None,
        )
        .await
        .unwrap();
    assert!(!created.is_error, "{}", created.text);
    let graph = client.call("read_graph", json!({}), None).await.unwrap();
    assert!(!graph.is_error);
    let structured = graph.structured_content.unwrap();
    assert_eq!(structured["entities"][0]["name"], "kai");
    assert_eq!(
        structured["entities"][0]["observations"][0],
        "written in Rust"
    );
    let found = client
        .call("search_nodes", json!({"query": "Rust"}), None)
        .await
        .unwrap();
    assert!(found.text.contains("\"kai\""), "{}", found.text);
    client.close().await;

    // A new server reads what the first one wrote.
    let stored = std::fs::read_to_string(&file).unwrap();
    assert!(stored.contains("written in Rust"), "{stored}");
    let client = McpClient::connect(&config).await.unwrap();
    let opened = client
        .call("open_nodes", json!({"names": ["kai"]}), None)
        .await
        .unwrap();
    assert!(opened.text.contains("written in Rust"), "{}", opened.text);
}
