//! Runs commands for kai's agents inside bubblewrap, and only there.
//!
//! An agent's `shell` tool runs what a model wrote, so the command is treated as hostile:
//!
//! - [`Sandbox::detect`] (or [`Sandbox::with_bwrap`]) finds bubblewrap and runs `true` in
//!   it. Where that fails the answer is [`Unavailable`], whose message says why and what to
//!   do; there is no fallback that runs a command outside the sandbox, and no other way
//!   into one than [`Sandbox::run`].
//! - [`Sandbox::run`] takes a [`Request`] (a [`Command`], the workspace directory, stdin
//!   bytes and [`Limits`]) and returns an [`Outcome`]: how it ended, whether its time ran
//!   out, its stdout and stderr up to the output limit, and how long it took.
//!
//! ```no_run
//! # async fn shell_tool() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use kai_sandbox::{Command, Limits, Request, Sandbox};
//!
//! // Once, at start: where this fails, the tool is unavailable and shows the message.
//! let sandbox = Sandbox::detect().await?;
//! let request = Request::new(Command::shell("ls -la | head -n 5")?, "/srv/kai/runs/42")
//!     .limits(Limits { wall_time: Duration::from_secs(30), ..Limits::default() });
//! let outcome = sandbox.run(&request).await?;
//! let (exit, timed_out, text) = (outcome.exit, outcome.timed_out, outcome.stdout.text());
//! # let _ = (exit, timed_out, text);
//! # Ok(())
//! # }
//! ```
//!
//! Each run gets a fresh sandbox: new user, pid, network, IPC, UTS and cgroup namespaces;
//! the host's `/usr` (and `/bin`, `/lib*`) read-only, with a short list of `/etc`; an empty,
//! sized `/tmp` and `/dev/shm`; a minimal `/dev`, a read-only `/proc`; the workspace
//! bound writable at `/workspace` as its working directory and `HOME`; every capability
//! dropped; an environment of `PATH`, `HOME` and `LANG` only. The host's home directories,
//! `/root`, kai's data directory and everything else not listed are simply not there.
//!
//! Limits: the wall time kills the whole sandbox (its pid namespace) when it runs out;
//! `RLIMIT_AS`, `RLIMIT_FSIZE` and `RLIMIT_NPROC` bind each process; a cgroup per run
//! (`pids.max`, and `memory.max` under cgroup v2) binds the whole sandbox where one can be
//! made, and is required when kai runs as root, which `RLIMIT_NPROC` does not bind; stdout
//! and stderr are each kept up to a limit and drained past it.
//!
//! Not isolated: CPU time within the wall time (a run may keep every core busy until it
//! ends), the disk space the workspace's filesystem has (each file is bounded, their number
//! is not), and the kernel itself (no seccomp filter: a kernel bug reachable from an
//! unprivileged process is reachable from the sandbox). What a command leaves in the
//! workspace (symlinks pointing anywhere, included) is input to whatever reads it next.

mod cgroup;
mod error;
mod outcome;
mod request;
mod sandbox;

pub use error::{SandboxError, Unavailable};
pub use outcome::{Captured, Exit, Outcome};
pub use request::{Command, Limits, Request};
pub use sandbox::{Sandbox, WORKSPACE};
