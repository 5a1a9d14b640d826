//! `shell`: a command line run in the run's workspace inside kai-sandbox's bubblewrap, and
//! nowhere else. Where no sandbox can be made the tool answers why; it never runs a command
//! unsandboxed.

use std::time::Duration;

use kai_sandbox::{Command, Exit, Limits, Request};
use serde_json::Value;

use super::env::{ToolEnv, ToolError, text};

/// The longest a command may run unless the call asks for less.
const MAX_WALL_TIME: Duration = Duration::from_secs(120);

pub(super) async fn run(env: &ToolEnv, arguments: &Value) -> Result<String, ToolError> {
    let line = text(arguments, "command")?;
    let command = Command::shell(line).map_err(|err| ToolError::Invalid(err.to_string()))?;
    let wall_time = match arguments.get("timeout_seconds").and_then(Value::as_u64) {
        None => MAX_WALL_TIME,
        Some(seconds @ 1..=120) => Duration::from_secs(seconds),
        Some(other) => {
            return Err(ToolError::Invalid(format!(
                "`timeout_seconds` is {other}; give 1 to {}",
                MAX_WALL_TIME.as_secs()
            )));
        }
    };
    let mut request = Request::new(command, &env.workspace).limits(Limits {
        wall_time,
        ..Limits::default()
    });
    if let Some(stdin) = arguments.get("stdin").and_then(Value::as_str) {
        request = request.stdin(stdin.as_bytes().to_vec());
    }
    let outcome = env
        .shell
        .sandbox()
        .await
        .map_err(ToolError::Failed)?
        .run(&request)
        .await
        .map_err(|err| ToolError::Failed(err.to_string()))?;
    let mut answer = if outcome.timed_out {
        format!("stopped after {}s, its time limit\n", wall_time.as_secs())
    } else {
        match outcome.exit {
            Exit::Code(code) => format!("exit code {code}\n"),
            Exit::Signal(signal) => format!("killed by signal {signal}\n"),
        }
    };
    for (name, stream) in [("stdout", &outcome.stdout), ("stderr", &outcome.stderr)] {
        if stream.total == 0 {
            continue;
        }
        answer.push_str(&format!("--- {name}\n{}", stream.text()));
        if stream.truncated {
            answer.push_str(&format!(
                "\n[{} of {} bytes kept]",
                stream.bytes.len(),
                stream.total
            ));
        }
        answer.push('\n');
    }
    // A command that failed is still a result the model should read, not a tool error.
    Ok(answer.trim_end().to_owned())
}
