//! What can go wrong, each in words that say what to do about it.

use std::path::PathBuf;
use std::process::ExitStatus;

/// Why no sandbox can run on this machine. The shell tool shows this message in place of the
/// tool: kai never falls back to running a command outside the sandbox.
#[derive(Debug, thiserror::Error)]
pub enum Unavailable {
    /// No `bwrap` executable on `PATH`.
    #[error(
        "the sandbox needs bubblewrap, and `bwrap` is not on PATH ({searched}); install it \
         (Debian and Ubuntu: `apt-get install bubblewrap`; Fedora: `dnf install bubblewrap`)"
    )]
    NotInstalled {
        /// The `PATH` that was searched.
        searched: String,
    },
    /// The `bwrap` named explicitly is missing or cannot be executed.
    #[error(
        "the sandbox needs bubblewrap, and {path} is not an executable file ({reason}); install \
         it (Debian and Ubuntu: `apt-get install bubblewrap`) or name the right path"
    )]
    NotExecutable {
        /// The path that was given.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// kai runs as root, which `RLIMIT_NPROC` does not bind, and it could not make a cgroup
    /// with the `pids` controller: nothing would stop a fork bomb from filling the host's
    /// process table, so the sandbox refuses to run at all.
    #[error(
        "the sandbox cannot limit its number of processes: kai runs as root, which \
         RLIMIT_NPROC does not bind, and no cgroup with the pids controller could be made \
         ({reason}); run kai as an ordinary user, or give it a writable cgroup v2 hierarchy \
         with the pids controller enabled (or cgroup v1's pids hierarchy)"
    )]
    NoProcessLimit {
        /// Why no cgroup could be made.
        reason: String,
    },
    /// bubblewrap is installed but a trial run of `true` inside it failed.
    #[error("bubblewrap ({bwrap}) is installed but cannot make a sandbox here: {detail}{hint}")]
    Broken {
        /// The `bwrap` that was tried.
        bwrap: PathBuf,
        /// What the trial run reported (bubblewrap's own message, usually).
        detail: String,
        /// What to do, when the failure is a known one (empty otherwise).
        hint: &'static str,
    },
}

/// Why one command could not be run (a command that ran and failed is an
/// [`Outcome`](crate::Outcome), not an error).
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The command is empty or cannot be passed to `execve`.
    #[error("invalid command: {0}")]
    InvalidCommand(&'static str),
    /// The workspace cannot be bound into the sandbox.
    #[error("workspace {path}: {reason}")]
    Workspace {
        /// The workspace as given.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A limit is zero or too large to express.
    #[error("invalid limits: {0}")]
    InvalidLimits(String),
    /// The operating system could not start bubblewrap.
    #[error("could not start bubblewrap ({bwrap}): {source}")]
    Spawn {
        /// The `bwrap` that was run.
        bwrap: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// bubblewrap started but the sandbox did not: the command never ran.
    #[error("the sandbox did not start (bubblewrap {status}): {stderr}")]
    Start {
        /// How bubblewrap exited.
        status: ExitStatus,
        /// What it wrote to stderr, which says why.
        stderr: String,
    },
    /// The per-run cgroup could not be made.
    #[error("could not set up the sandbox's cgroup {path}: {source}")]
    Cgroup {
        /// The cgroup file or directory that failed.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// Waiting for bubblewrap or moving bytes through its pipes failed.
    #[error("lost contact with the sandbox: {0}")]
    Io(#[from] std::io::Error),
}
