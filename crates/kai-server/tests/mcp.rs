//! `/mcp`: kai as an MCP server over streamable HTTP, driven with raw JSON-RPC as any MCP
//! client sends it: the caller's key decides whose knowledge the tools reach and which tools
//! there are.

#![allow(clippy::unwrap_used)] // helpers outside #[test] functions unwrap too

mod support;

use http::StatusCode;
use serde_json::{Value, json};
use support::TestServer;

async fn rpc(server: &TestServer, key: Option<&str>, body: Value) -> (StatusCode, Value) {
    let mut request = server
        .client
        .post(server.url("/mcp"))
        .header("accept", "application/json, text/event-stream")
        .json(&body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn initialize() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "test", "version": "1"}}})
}

fn tool_names(listed: &Value) -> Vec<String> {
    listed["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn other_agents_reach_the_callers_knowledge_over_mcp() {
    let server = TestServer::start().await;
    let token = server.user_token("ada").await;
    let writer = server.create_key(&token, &["read", "write"]).await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let reader = server.create_key(&token, &["read"]).await["key"]
        .as_str()
        .unwrap()
        .to_owned();

    let (status, _) = rpc(&server, None, initialize()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (status, answer) = rpc(&server, Some(&writer), initialize()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["result"]["serverInfo"]["name"], "kai");
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let (_, listed) = rpc(&server, Some(&writer), list.clone()).await;
    assert_eq!(
        tool_names(&listed),
        [
            "search_knowledge",
            "read_note",
            "recall",
            "write_note",
            "remember",
            "chat"
        ]
    );
    let (_, listed) = rpc(&server, Some(&reader), list).await;
    assert_eq!(
        tool_names(&listed),
        ["search_knowledge", "read_note", "recall"]
    );

    let write = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
        "name": "write_note", "arguments": {"title": "From MCP", "body": "Tomatoes like sun."}}});
    let (_, written) = rpc(&server, Some(&writer), write.clone()).await;
    assert_eq!(written["result"]["isError"], false, "{written}");
    let read = json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {
        "name": "read_note", "arguments": {"title": "From MCP"}}});
    let (_, note) = rpc(&server, Some(&reader), read).await;
    let text = note["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("Tomatoes like sun."), "{note}");

    // A read-only key has no write tool; a bad argument is the tool's error, not a crash.
    let (_, refused) = rpc(&server, Some(&reader), write).await;
    assert!(
        refused["error"].is_object() || refused["result"]["isError"] == true,
        "{refused}"
    );
    let bad = json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {
        "name": "search_knowledge", "arguments": {"query": 7}}});
    let (_, bad) = rpc(&server, Some(&reader), bad).await;
    assert_eq!(bad["result"]["isError"], true, "{bad}");

    // Another user's key sees none of it.
    let bob = server.user_token("bob").await;
    let bobs = server.create_key(&bob, &["read"]).await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let read = json!({"jsonrpc": "2.0", "id": 6, "method": "tools/call", "params": {
        "name": "read_note", "arguments": {"title": "From MCP"}}});
    let (_, other) = rpc(&server, Some(&bobs), read).await;
    assert_eq!(other["result"]["isError"], true, "{other}");
}
