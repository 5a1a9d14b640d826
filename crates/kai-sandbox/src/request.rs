//! What to run, where, and within which limits.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::SandboxError;

/// A command to run in the sandbox, checked once when made so that [`Sandbox::run`]
/// never has to guess at what it was given.
///
/// [`Sandbox::run`]: crate::Sandbox::run
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    argv: Vec<String>,
}

impl Command {
    /// A program and its arguments, run as they are (looked up on the sandbox's `PATH` when
    /// the program has no `/`). No shell sees them, so nothing in them is interpreted.
    pub fn argv<I, S>(argv: I) -> Result<Self, SandboxError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let argv: Vec<String> = argv.into_iter().map(Into::into).collect();
        if argv.first().is_none_or(String::is_empty) {
            return Err(SandboxError::InvalidCommand("the program name is empty"));
        }
        if argv.iter().any(|arg| arg.contains('\0')) {
            return Err(SandboxError::InvalidCommand(
                "an argument contains a NUL byte",
            ));
        }
        Ok(Self { argv })
    }

    /// A shell line, run by the sandbox's `/bin/sh -c`: what an agent writes when it wants
    /// pipes, redirections or several commands.
    pub fn shell(line: impl Into<String>) -> Result<Self, SandboxError> {
        let line = line.into();
        if line.trim().is_empty() {
            return Err(SandboxError::InvalidCommand("the shell line is empty"));
        }
        Self::argv(["/bin/sh".to_owned(), "-c".to_owned(), line])
    }

    /// The program and its arguments, as the sandbox will execute them.
    pub fn as_argv(&self) -> &[String] {
        &self.argv
    }
}

/// How far one run may go. Every limit applies to the sandbox as a whole, bubblewrap's own
/// processes included, except `memory` and `file_size`, which bind each process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time from start; when it runs out every process of the sandbox is killed
    /// (SIGKILL, no grace: nothing inside gets to outlive it) and the outcome says so.
    pub wall_time: Duration,
    /// Address space of each process (`RLIMIT_AS`), and the memory of the whole sandbox
    /// (`memory.max`) where a cgroup v2 memory controller is available. Address space is
    /// what a process reserves, not what it touches, so runtimes that reserve large heaps
    /// up front (the JVM, V8) need more than they use.
    pub memory: u64,
    /// Processes and threads at once (`pids.max` of the run's cgroup, and `RLIMIT_NPROC`,
    /// which the kernel applies to everyone but root).
    pub processes: u32,
    /// Bytes kept of stdout, and separately of stderr; the rest is read and dropped, so a
    /// command that floods its output never blocks on a full pipe.
    pub output: usize,
    /// Largest file a process may write (`RLIMIT_FSIZE`); writing past it kills the
    /// process with SIGXFSZ.
    pub file_size: u64,
    /// Size of each of the sandbox's memory-backed scratch filesystems, `/tmp` and
    /// `/dev/shm`: without a size they could grow to half the host's memory.
    pub tmp_size: u64,
}

impl Default for Limits {
    /// Room for builds and scripts an agent runs, small enough that several sandboxes at
    /// once leave a small server standing.
    fn default() -> Self {
        Self {
            wall_time: Duration::from_secs(60),
            memory: 1 << 30,
            processes: 256,
            output: 1 << 20,
            file_size: 128 << 20,
            tmp_size: 64 << 20,
        }
    }
}

impl Limits {
    pub(crate) fn check(&self) -> Result<(), SandboxError> {
        let zero = [
            ("wall_time", self.wall_time.is_zero()),
            ("memory", self.memory == 0),
            ("processes", self.processes == 0),
            ("output", self.output == 0),
            ("file_size", self.file_size == 0),
            ("tmp_size", self.tmp_size == 0),
        ];
        if let Some((name, _)) = zero.iter().find(|(_, is_zero)| *is_zero) {
            return Err(SandboxError::InvalidLimits(format!(
                "{name} must be above zero"
            )));
        }
        // Far beyond any real run, and keeps `Instant + wall_time` from overflowing.
        if self.wall_time > Duration::from_secs(7 * 24 * 3600) {
            return Err(SandboxError::InvalidLimits(
                "wall_time must be under a week".into(),
            ));
        }
        // The shell that sets the limits multiplies them into bytes without checking for
        // overflow (measured: `u64::MAX` bytes of memory became almost none).
        let huge = [
            ("memory", self.memory),
            ("file_size", self.file_size),
            ("tmp_size", self.tmp_size),
        ];
        if let Some((name, _)) = huge.iter().find(|(_, bytes)| *bytes > MAX_BYTES) {
            return Err(SandboxError::InvalidLimits(format!(
                "{name} must be at most 1 PiB"
            )));
        }
        Ok(())
    }
}

/// The largest byte limit: far beyond any machine, far below where arithmetic overflows.
const MAX_BYTES: u64 = 1 << 50;

/// One run: the command, the directory it may write, what it reads on stdin, its limits.
#[derive(Debug, Clone)]
pub struct Request {
    /// What to run.
    pub command: Command,
    /// The host directory bound writable at `/workspace`, the command's working directory
    /// and `HOME`. It must exist; the sandbox never creates it.
    pub workspace: PathBuf,
    /// Bytes the command reads on stdin; when empty, stdin is `/dev/null`.
    pub stdin: Vec<u8>,
    /// How far the run may go.
    pub limits: Limits,
}

impl Request {
    /// A run of `command` in `workspace`, with no input and the default limits.
    pub fn new(command: Command, workspace: impl Into<PathBuf>) -> Self {
        Self {
            command,
            workspace: workspace.into(),
            stdin: Vec::new(),
            limits: Limits::default(),
        }
    }

    /// The same run, reading `bytes` on stdin.
    #[must_use]
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = bytes.into();
        self
    }

    /// The same run, within `limits`.
    #[must_use]
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_checked_when_made() {
        assert!(Command::argv(Vec::<String>::new()).is_err());
        assert!(Command::argv([""]).is_err());
        assert!(Command::argv(["echo", "a\0b"]).is_err());
        assert!(Command::shell("  \n").is_err());
        assert_eq!(
            Command::shell("echo hi").unwrap().as_argv(),
            ["/bin/sh", "-c", "echo hi"]
        );
    }

    #[test]
    fn zero_and_huge_limits_are_refused() {
        assert!(Limits::default().check().is_ok());
        let limits = Limits {
            processes: 0,
            ..Limits::default()
        };
        let error = limits.check().unwrap_err().to_string();
        assert!(error.contains("processes"), "{error}");
        let limits = Limits {
            memory: u64::MAX,
            ..Limits::default()
        };
        let error = limits.check().unwrap_err().to_string();
        assert!(error.contains("memory must be at most"), "{error}");
    }
}
