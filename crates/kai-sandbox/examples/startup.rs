//! Sandbox start-up cost: the wall time of running `true` three ways, interleaved so that
//! all three see the same machine: spawned directly (tokio::process, pipes for its output,
//! as the sandbox has), through bare bubblewrap (the one-line sandbox of
//! `--ro-bind / / --unshare-all`), and through `Sandbox::run` (kai's sandbox: its mounts,
//! limits, and its cgroup where it makes one). Run by `bench/sandbox/run.sh`; prints one JSON
//! line of medians and 99th percentiles in microseconds.
//!
//! `cargo run --release -p kai-sandbox --example startup -- [RUNS]` (default 200 each).

#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::process::Stdio;
use std::time::{Duration, Instant};

use kai_sandbox::{Command, Request, Sandbox};

const WARM_UP: usize = 10;

#[tokio::main]
async fn main() {
    let runs: usize = std::env::args().nth(1).map_or(200, |n| n.parse().unwrap());
    let sandbox = Sandbox::detect().await.unwrap();
    let workspace = tempfile::tempdir().unwrap();
    let request = Request::new(Command::argv(["true"]).unwrap(), workspace.path());

    let direct = || async {
        let start = Instant::now();
        let output = tokio::process::Command::new("true")
            .stdin(Stdio::null())
            .output()
            .await
            .unwrap();
        assert!(output.status.success());
        start.elapsed()
    };
    let bare = || async {
        let start = Instant::now();
        let output = tokio::process::Command::new(sandbox.bwrap())
            .args(["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"])
            .args([
                "--tmpfs",
                "/tmp",
                "--unshare-all",
                "--die-with-parent",
                "true",
            ])
            .stdin(Stdio::null())
            .output()
            .await
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        start.elapsed()
    };
    let kai = || async {
        let start = Instant::now();
        let outcome = sandbox.run(&request).await.unwrap();
        assert!(outcome.success(), "{outcome:?}");
        start.elapsed()
    };

    for _ in 0..WARM_UP {
        direct().await;
        bare().await;
        kai().await;
    }
    let (mut directs, mut bares, mut kais) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        directs.push(direct().await);
        bares.push(bare().await);
        kais.push(kai().await);
    }
    let [direct, bare, kai] = [directs, bares, kais].map(summary);
    println!(
        "{{\"runs\":{runs},\"cgroup\":{},\"direct\":{direct},\"bwrap\":{bare},\"sandbox\":{kai}}}",
        sandbox.cgroup().is_some()
    );
}

/// Median and 99th percentile (nearest rank), in microseconds, as a JSON object.
fn summary(mut times: Vec<Duration>) -> String {
    times.sort();
    let rank = |p: f64| times[((p * times.len() as f64).ceil() as usize).max(1) - 1].as_micros();
    format!("{{\"median_us\":{},\"p99_us\":{}}}", rank(0.5), rank(0.99))
}
