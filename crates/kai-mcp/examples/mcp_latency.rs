//! What kai's MCP client costs: the time to connect to a server (start or reach it, handshake,
//! list its tools) and the latency of a tool call, one at a time and many at once over the one
//! connection. bench/mcp/run.sh runs it against the reference servers and kai's own.
//!
//! ```text
//! mcp_latency CONNECTS CALLS TOOL ARGUMENTS stdio COMMAND [ARG...]
//! mcp_latency CONNECTS CALLS TOOL ARGUMENTS http URL
//! mcp_latency CONNECTS CALLS - - kai-http     (kai's own server, in this process, over HTTP)
//! ```
//!
//! Prints one JSON line: connect times (median and 90th percentile, ms), sequential call
//! latency (median and 99th percentile, µs), and calls per second with 16 callers at once.

#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use kai_mcp::{AllowedHosts, McpClient, McpServerConfig, McpToolServer, ServedTool};
use serde_json::{Value, json};

const CONCURRENCY: usize = 16;

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let rank = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[rank]
}

/// kai's own server with one `echo` tool, served over HTTP on a loopback port.
async fn kai_http() -> String {
    let server = McpToolServer::builder("kai-bench", "1")
        .tool(ServedTool::new(
            "echo",
            "Echoes its message.",
            json!({"type": "object", "properties": {"message": {"type": "string"}}}),
            |arguments: Value| async move {
                Ok(arguments["message"].as_str().unwrap_or_default().to_owned())
            },
        ))
        .build()
        .unwrap();
    let router =
        axum::Router::new().nest_service("/mcp", server.http_service(AllowedHosts::Loopback));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{address}/mcp")
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    assert!(
        args.len() >= 5,
        "usage: see the top of examples/mcp_latency.rs"
    );
    let connects: usize = args[0].parse().unwrap();
    let calls: usize = args[1].parse().unwrap();
    let (mut tool, mut arguments) = (args[2].clone(), args[3].clone());
    let config = match args[4].as_str() {
        "stdio" => McpServerConfig::stdio("bench", args[5].clone(), args[6..].iter().cloned()),
        "http" => McpServerConfig::http("bench", args[5].clone()),
        "kai-http" => {
            tool = "echo".into();
            arguments = r#"{"message": "hello"}"#.into();
            McpServerConfig::http("bench", kai_http().await)
        }
        other => panic!("unknown transport {other}"),
    };
    let arguments: Value = serde_json::from_str(&arguments).unwrap();

    let mut connect_times = Vec::with_capacity(connects);
    for _ in 0..connects {
        let started = Instant::now();
        let client = McpClient::connect(&config).await.unwrap();
        connect_times.push(started.elapsed());
        client.close().await;
    }

    let client = McpClient::connect(&config).await.unwrap();
    // Warm up: the first calls pay for lazy initialisation on both sides.
    for _ in 0..20 {
        client.call(&tool, arguments.clone(), None).await.unwrap();
    }
    let mut call_times = Vec::with_capacity(calls);
    for _ in 0..calls {
        let started = Instant::now();
        let result = client.call(&tool, arguments.clone(), None).await.unwrap();
        call_times.push(started.elapsed());
        assert!(!result.is_error, "{}", result.text);
    }
    let started = Instant::now();
    let per_caller = calls / CONCURRENCY;
    let callers = (0..CONCURRENCY).map(|_| async {
        for _ in 0..per_caller {
            client.call(&tool, arguments.clone(), None).await.unwrap();
        }
    });
    futures_util::future::join_all(callers).await;
    let concurrent_per_s = (per_caller * CONCURRENCY) as f64 / started.elapsed().as_secs_f64();
    client.close().await;

    let ms = |d: Duration| (d.as_secs_f64() * 10_000.0).round() / 10.0;
    let us = |d: Duration| d.as_micros();
    println!(
        "{}",
        json!({
            "connect_ms": {"median": ms(percentile(&mut connect_times, 0.5)),
                           "p90": ms(percentile(&mut connect_times, 0.9)), "n": connects},
            "call_us": {"median": us(percentile(&mut call_times, 0.5)),
                        "p99": us(percentile(&mut call_times, 0.99)), "n": calls},
            "calls_per_s_16_callers": concurrent_per_s.round(),
        })
    );
}
