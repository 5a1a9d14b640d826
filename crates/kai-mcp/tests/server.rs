//! kai as an MCP server: two toy tools served over stdio (tests/support/test_server.rs) and
//! over streamable HTTP (mounted in an axum router on an ephemeral port), called by the Python
//! SDK (`mcp`, through tests/python/mcp_client.py, both with the initialize handshake and with
//! the 2026-07-28 protocol) and by kai's own client.
//!
//! The Python interpreter is `KAI_TEST_MCP_PYTHON` (`scripts/mcp-test-deps` makes a virtualenv
//! and prints it); without it the Python tests say they were skipped, unless
//! `KAI_TEST_REQUIRE_MCP=1`, which makes them fail.

// A test skipped for want of Python says so on stderr.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod common;
#[path = "support/toy_tools.rs"]
mod toy_tools;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use kai_mcp::{AllowedHosts, McpClient, McpError, McpServerConfig, McpToolServer, ServedTool};
use serde_json::{Value, json};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/mcp_client.py");

/// The toy tools, and one that panics: a panic must come back as a tool error, not silence.
fn server() -> McpToolServer {
    McpToolServer::builder("kai-test", "0.1.0")
        .instructions("Toy tools for kai-mcp's tests.")
        .tool(toy_tools::add())
        .tool(toy_tools::shout())
        .tool(ServedTool::new(
            "explode",
            "Panics.",
            json!({"type": "object"}),
            |_: Value| async { panic!("the explode tool always panics") },
        ))
        .build()
        .unwrap()
}

/// Serves `server` at `/mcp` of an axum router on a loopback port, as kai-server will.
async fn serve_http(server: &McpToolServer, hosts: AllowedHosts) -> SocketAddr {
    let router = axum::Router::new().nest_service("/mcp", server.http_service(hosts));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    address
}

/// Runs the Python SDK's client and returns what it printed.
async fn python_client(python: &Path, mode: &str, transport: &str, target: &[&str]) -> Value {
    let run = tokio::process::Command::new(python)
        .arg(SCRIPT)
        .args([mode, transport])
        .args(target)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the Python client finished")
        .unwrap();
    assert!(
        out.status.success(),
        "the Python client failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|err| {
        panic!(
            "the Python client printed no JSON ({err}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// What the Python SDK saw of the toy tools, whichever transport and protocol.
fn check_python_view(seen: &Value, mode: &str) {
    let protocol = seen["protocol"].as_str().unwrap();
    // The handshake-era protocol, or the 2026-07-28 one (stateless, no handshake) that the SDK
    // probes for first: kai serves both.
    match mode {
        "legacy" => assert!(protocol < "2026", "{protocol}"),
        _ => assert_eq!(protocol, "2026-07-28"),
    }
    let tools = seen["tools"].as_array().unwrap();
    let add = tools.iter().find(|tool| tool["name"] == "add").unwrap();
    assert_eq!(add["description"], "Adds two numbers.");
    assert_eq!(
        add["annotations"],
        json!({"readOnlyHint": true, "destructiveHint": false,
               "idempotentHint": true, "openWorldHint": false})
    );
    let shout = tools.iter().find(|tool| tool["name"] == "shout").unwrap();
    assert_eq!(shout["annotations"]["readOnlyHint"], false);
    assert_eq!(seen["add"], json!({"text": "5.5", "is_error": false}));
    assert_eq!(seen["shout"], json!({"text": "QUIET", "is_error": false}));
    assert_eq!(
        seen["shout_empty"],
        json!({"text": "there is nothing to shout", "is_error": true})
    );
}

#[tokio::test]
async fn python_sdk_over_stdio() {
    let Some(python) = common::python() else {
        return;
    };
    for mode in ["legacy", "auto"] {
        let seen = python_client(&python, mode, "stdio", &[common::test_server()]).await;
        check_python_view(&seen, mode);
    }
}

#[tokio::test]
async fn python_sdk_over_streamable_http() {
    let Some(python) = common::python() else {
        return;
    };
    let address = serve_http(&server(), AllowedHosts::Loopback).await;
    let url = format!("http://{address}/mcp");
    for mode in ["legacy", "auto"] {
        let seen = python_client(&python, mode, "http", &[&url]).await;
        check_python_view(&seen, mode);
    }
}

#[tokio::test]
async fn kai_client_over_streamable_http() {
    let server = server();
    let address = serve_http(&server, AllowedHosts::Loopback).await;
    let config = McpServerConfig::http("kai", format!("http://{address}/mcp"));
    let client = McpClient::connect(&config).await.unwrap();

    assert_eq!(client.tools(), server.tools());
    let add = &client.tools()[0];
    assert!(add.annotations.read_only_hint && !add.annotations.open_world_hint);
    assert_eq!(add.input_schema["required"], json!(["a", "b"]));

    let sum = client
        .call("add", json!({"a": 1, "b": 2}), None)
        .await
        .unwrap();
    assert_eq!((sum.text.as_str(), sum.is_error), ("3", false));
    let refused = client.call("add", json!({"a": "one"}), None).await.unwrap();
    assert_eq!(
        (refused.text.as_str(), refused.is_error),
        ("`a` must be a number", true)
    );
    let exploded = client.call("explode", json!({}), None).await.unwrap();
    assert!(exploded.is_error);
    assert!(
        exploded.text.contains("failed unexpectedly"),
        "{}",
        exploded.text
    );
    let err = client.call("divide", json!({}), None).await.unwrap_err();
    assert!(matches!(err, McpError::Rejected { .. }), "{err:?}");

    // Calls share the connection and run at once.
    let calls = (0..20).map(|i| client.call("add", json!({"a": i, "b": 1}), None));
    let answers = futures_util::future::join_all(calls).await;
    for (i, answer) in answers.into_iter().enumerate() {
        assert_eq!(answer.unwrap().text, (i + 1).to_string());
    }
    // The server still serves after a panic.
    assert!(client.is_alive());
}

#[tokio::test]
async fn kai_client_over_stdio() {
    let client = McpClient::connect(&McpServerConfig::stdio(
        "kai-stdio",
        common::test_server(),
        Vec::<String>::new(),
    ))
    .await
    .unwrap();
    let names: Vec<String> = client.tools().into_iter().map(|tool| tool.name).collect();
    assert_eq!(names, ["add", "shout"]);
    let shouted = client
        .call("shout", json!({"text": "hello"}), None)
        .await
        .unwrap();
    assert_eq!(shouted.text, "HELLO");
    client.close().await;
}

#[tokio::test]
async fn the_http_service_checks_the_host() {
    // reqwest's client needs a TLS provider even for http://; run alone (as nextest runs each
    // test), nothing else here has installed one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let address = serve_http(&server(), AllowedHosts::Only(vec!["kai.example".into()])).await;
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "test", "version": "1"}}});
    let post = |host: &'static str| {
        reqwest::Client::new()
            .post(format!("http://{address}/mcp"))
            .header("Host", host)
            .header("Accept", "application/json, text/event-stream")
            .json(&initialize)
            .send()
    };
    assert_eq!(post("evil.example").await.unwrap().status(), 403);
    let answer = post("kai.example").await.unwrap();
    assert_eq!(answer.status(), 200);
    assert!(
        answer
            .headers()
            .get("content-type")
            .is_some_and(|value| value.as_bytes().starts_with(b"application/json")),
        "{:?}",
        answer.headers()
    );
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["result"]["serverInfo"]["name"], "kai-test");
    assert_eq!(
        body["result"]["instructions"],
        "Toy tools for kai-mcp's tests."
    );
}

#[test]
fn invalid_tools_are_refused_by_name() {
    let tool = |name: &str, schema: Value| {
        ServedTool::new(name, "d", schema, |_: Value| async { Ok(String::new()) })
    };
    let object = || json!({"type": "object"});
    let build = |tools: Vec<ServedTool>| {
        tools
            .into_iter()
            .fold(McpToolServer::builder("t", "1"), |builder, tool| {
                builder.tool(tool)
            })
            .build()
            .unwrap_err()
            .to_string()
    };
    let twice = build(vec![tool("same", object()), tool("same", object())]);
    assert!(
        twice.contains("`same`") && twice.contains("two tools"),
        "{twice}"
    );
    let spaced = build(vec![tool("has space", object())]);
    assert!(spaced.contains("`has space`"), "{spaced}");
    let not_object = build(vec![tool("list", json!({"type": "array"}))]);
    assert!(not_object.contains("\"type\": \"object\""), "{not_object}");
    let not_json_object = build(vec![tool("text", json!("schema"))]);
    assert!(not_json_object.contains("`text`"), "{not_json_object}");
}
