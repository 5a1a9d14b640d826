//! A stdio MCP server for kai-mcp's tests, built on kai-mcp's own server: MCP clients (the
//! Python SDK's, kai's) start stdio servers as programs, so the tests need one.
//!
//! `kai-mcp-test-server` serves the two toy tools. `kai-mcp-test-server faults` adds tools
//! that misbehave on purpose: `die` exits the process, `hang` never answers (while the server
//! keeps answering other requests), `freeze` stops the whole server.

// It reports on stderr, the one channel a stdio server has besides the protocol.
#![allow(clippy::print_stderr)]

#[path = "toy_tools.rs"]
mod toy_tools;

use std::time::Duration;

use kai_mcp::{McpToolServer, ServedTool};
use serde_json::{Value, json};

fn no_arguments() -> Value {
    json!({"type": "object", "properties": {}})
}

fn fault_tools() -> Vec<ServedTool> {
    vec![
        ServedTool::new("die", "Exits the server.", no_arguments(), |_| async {
            eprintln!("test server: dying as asked");
            std::process::exit(3)
        }),
        ServedTool::new("hang", "Never answers.", no_arguments(), |_| async {
            std::future::pending::<()>().await;
            Ok(String::new())
        }),
        ServedTool::new(
            "freeze",
            "Stops the whole server.",
            no_arguments(),
            |_| async {
                eprintln!("test server: freezing");
                // Blocks the runtime's only thread: nothing else is read or answered.
                std::thread::sleep(Duration::from_secs(3600));
                Ok(String::new())
            },
        ),
    ]
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let faults = std::env::args().nth(1).as_deref() == Some("faults");
    let mut builder = McpToolServer::builder("kai-mcp-test-server", "1")
        .tool(toy_tools::add())
        .tool(toy_tools::shout());
    if faults {
        for tool in fault_tools() {
            builder = builder.tool(tool);
        }
    }
    let served = match builder.build() {
        Ok(server) => server.serve_stdio().await,
        Err(err) => Err(err),
    };
    match served {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("test server: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}
