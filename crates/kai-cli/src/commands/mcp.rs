//! `kai mcp`: kai as an MCP server over stdio, for agents that start their servers as
//! programs (Claude Desktop, goose, an IDE). Each JSON-RPC message read from stdin is sent to
//! the server's `/mcp` with the key `kai login` stored, and each answer written to stdout: the
//! same tools, for the same user, as over HTTP.

use anyhow::Context;
use kai_config::{Environment, Settings};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::commands::connect;

/// The JSON-RPC error a refused request is answered with, so that the client sees why.
const REFUSED: i64 = -32001;

pub(crate) async fn run(settings: &Settings, env: &Environment) -> anyhow::Result<()> {
    let client = connect::authenticated(settings, env)?;
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut stdout = tokio::io::stdout();
    while let Some(line) = lines.next_line().await.context("cannot read stdin")? {
        if line.trim().is_empty() {
            continue;
        }
        let id = serde_json::from_str::<Value>(&line)
            .ok()
            .and_then(|message| message.get("id").cloned());
        let answer = match client.mcp(line).await {
            Ok(answer) => answer,
            // A request gets the refusal as its error; a notification has no one to tell.
            Err(err) => id.map(|id| {
                json!({"jsonrpc": "2.0", "id": id,
                       "error": {"code": REFUSED, "message": format!("{err:#}")}})
                .to_string()
            }),
        };
        if let Some(answer) = answer {
            stdout.write_all(answer.as_bytes()).await?;
            stdout.write_all(b"\n").await?;
            stdout.flush().await?;
        }
    }
    Ok(())
}
