//! A stdio MCP server's process: started in a process group of its own, with a scrubbed
//! environment, its stderr kept (the end of it) for error messages, and killed, group and
//! all, when kai lets go of it.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};

/// What a server inherits from kai's environment, as MCP's reference clients do: enough to
/// find programs and a home directory, and none of kai's own secrets.
const INHERITED_ENV: [&str; 6] = ["HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER"];

/// How much of the end of a server's stderr is kept for error messages.
const TAIL_BYTES: usize = 4096;
/// How many of its last lines an error message quotes.
const TAIL_LINES: usize = 12;
/// The longest stderr line logged whole; longer ones are logged in pieces.
const LOG_LINE_BYTES: usize = 4096;

/// How a server's connection ended, in two parts so that an error message can put what it
/// was doing between them.
#[derive(Debug, Clone)]
pub(crate) struct Ending {
    /// What happened, such as "exited (exit status: 1)".
    pub(crate) how: String,
    /// The end of its stderr as `; its stderr ended with:` and the lines, or nothing.
    pub(crate) stderr: String,
}

impl Ending {
    /// An ending with nothing on stderr to quote.
    pub(crate) fn new(how: impl Into<String>) -> Ending {
        Ending {
            how: how.into(),
            stderr: String::new(),
        }
    }
}

/// The process of one stdio server.
pub(crate) struct ServerProcess {
    child: Mutex<Child>,
    /// Its process id, which is also its process group's id.
    #[cfg_attr(not(unix), expect(dead_code, reason = "only Unix has process groups"))]
    pid: Option<u32>,
    stderr: Arc<StderrTail>,
}

/// What `spawn` hands back: the process and the pipes the MCP transport takes.
pub(crate) struct Spawned {
    pub(crate) process: ServerProcess,
    pub(crate) stdout: ChildStdout,
    pub(crate) stdin: ChildStdin,
}

/// How to start a server's process.
pub(crate) struct Launch<'a> {
    pub(crate) server: &'a str,
    pub(crate) command: &'a str,
    pub(crate) args: &'a [String],
    pub(crate) env: &'a BTreeMap<String, String>,
    pub(crate) cwd: Option<&'a PathBuf>,
}

impl ServerProcess {
    /// Starts the process. Its stderr is drained at once by a task of its own, so that a
    /// chatty server can never block on a full pipe.
    pub(crate) fn spawn(launch: &Launch<'_>) -> std::io::Result<Spawned> {
        let mut command = Command::new(launch.command);
        command
            .args(launch.args)
            .env_clear()
            .envs(
                INHERITED_ENV
                    .iter()
                    .filter_map(|name| std::env::var_os(name).map(|value| (name, value))),
            )
            .envs(launch.env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // The last resort if this struct's own kill is bypassed.
            .kill_on_drop(true);
        if let Some(cwd) = launch.cwd {
            command.current_dir(cwd);
        }
        // A group of its own, so that killing it reaches what it started too (`npx` runs the
        // server as a grandchild), and a terminal's Ctrl-C meant for kai does not reach it
        // before kai can stop it in order.
        #[cfg(unix)]
        command.process_group(0);
        let mut child = command.spawn()?;
        let pipe = |what: &str| std::io::Error::other(format!("its {what} was not piped"));
        let stdin = child.stdin.take().ok_or_else(|| pipe("stdin"))?;
        let stdout = child.stdout.take().ok_or_else(|| pipe("stdout"))?;
        let stderr = child.stderr.take().ok_or_else(|| pipe("stderr"))?;
        let tail = Arc::new(StderrTail::default());
        tokio::spawn(drain_stderr(
            launch.server.to_owned(),
            stderr,
            Arc::clone(&tail),
        ));
        Ok(Spawned {
            process: ServerProcess {
                pid: child.id(),
                child: Mutex::new(child),
                stderr: tail,
            },
            stdout,
            stdin,
        })
    }

    /// Its exit status, if it has exited.
    pub(crate) fn exit_status(&self) -> Option<ExitStatus> {
        let mut child = self.child.lock().unwrap_or_else(PoisonError::into_inner);
        child.try_wait().ok().flatten()
    }

    /// Kills it and everything in its process group, at once.
    pub(crate) fn kill(&self) {
        let mut child = self.child.lock().unwrap_or_else(PoisonError::into_inner);
        #[cfg(unix)]
        {
            // Once the leader is reaped and nothing holds its stderr open, the group is most
            // likely empty, and its id free for the system to give to an unrelated process.
            let group_gone = matches!(child.try_wait(), Ok(Some(_)))
                && self.stderr.closed.load(Ordering::Acquire);
            if !group_gone && let Some(pid) = self.pid.and_then(|pid| i32::try_from(pid).ok()) {
                // Fails only when the group is already gone.
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        // Fails only when it has already been reaped.
        let _ = child.start_kill();
    }

    /// Waits up to `grace` for it to exit by itself (its stdin closed, as MCP's stdio shutdown
    /// asks), then kills it.
    pub(crate) async fn stop(&self, grace: Duration) {
        let deadline = tokio::time::Instant::now() + grace;
        while self.exit_status().is_none() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.kill();
    }

    /// How it ended, for an error message: its exit status if it has one, and the end of its
    /// stderr. Waits up to `wait` for both to settle, since the pipe closes a moment before the
    /// process is reaped and its last words are read.
    pub(crate) async fn describe_end(&self, wait: Duration) -> Ending {
        let deadline = tokio::time::Instant::now() + wait;
        let mut status = self.exit_status();
        while (status.is_none() || !self.stderr.closed.load(Ordering::Acquire))
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
            status = status.or_else(|| self.exit_status());
        }
        let how = match status {
            Some(status) => format!("exited ({status})"),
            None => "closed its output but is still running".to_owned(),
        };
        Ending {
            how,
            stderr: self.stderr_detail(),
        }
    }

    /// The end of its stderr as `; its stderr ended with:` and the lines, or nothing.
    pub(crate) fn stderr_detail(&self) -> String {
        let lines = self.stderr.last_lines();
        if lines.is_empty() {
            String::new()
        } else {
            format!("; its stderr ended with:\n{lines}")
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The end of a server's stderr, and whether it has closed.
#[derive(Default)]
struct StderrTail {
    bytes: Mutex<VecDeque<u8>>,
    closed: AtomicBool,
}

impl StderrTail {
    fn push(&self, chunk: &[u8]) {
        let mut bytes = self.bytes.lock().unwrap_or_else(PoisonError::into_inner);
        bytes.extend(chunk);
        let excess = bytes.len().saturating_sub(TAIL_BYTES);
        bytes.drain(..excess);
    }

    /// Its last few non-empty lines, each indented, lossily decoded.
    fn last_lines(&self) -> String {
        let bytes: Vec<u8> = {
            let bytes = self.bytes.lock().unwrap_or_else(PoisonError::into_inner);
            bytes.iter().copied().collect()
        };
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim_end)
            .filter(|line| !line.is_empty())
            .collect();
        let start = lines.len().saturating_sub(TAIL_LINES);
        lines[start..]
            .iter()
            .map(|line| format!("  {line}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Reads a server's stderr to its end: keeps the tail and logs each line at debug level, where
/// an owner debugging a server looks.
async fn drain_stderr(server: String, mut stderr: ChildStderr, tail: Arc<StderrTail>) {
    let mut buf = [0u8; 4096];
    let mut line = Vec::new();
    loop {
        let n = match stderr.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        tail.push(&buf[..n]);
        for &byte in &buf[..n] {
            if byte == b'\n' || line.len() >= LOG_LINE_BYTES {
                log_line(&server, &line);
                line.clear();
            }
            if byte != b'\n' {
                line.push(byte);
            }
        }
    }
    log_line(&server, &line);
    tail.closed.store(true, Ordering::Release);
}

fn log_line(server: &str, line: &[u8]) {
    if !line.is_empty() {
        tracing::debug!(server, stderr = %String::from_utf8_lossy(line), "MCP server stderr");
    }
}
