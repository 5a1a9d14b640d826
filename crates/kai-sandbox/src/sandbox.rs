//! The sandbox: bubblewrap found and tried once, then one bubblewrap per run.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::{Child, ChildStdin};
use tokio::time::{Instant, timeout_at};

use crate::cgroup::{Cgroups, RunCgroup};
use crate::error::{SandboxError, Unavailable};
use crate::outcome::{Captured, Exit, Outcome, START_MARKER, capture};
use crate::request::{Command, Limits, Request};

/// Where the workspace appears inside the sandbox.
pub const WORKSPACE: &str = "/workspace";

/// The sandbox's `PATH`: the system's directories, nothing of the host user's.
const PATH: &str = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin";

/// Top-level directories of the system. Each is bound read-only where it is a directory, or
/// made the same symlink where it is one (merged /usr: `/bin -> usr/bin`).
const SYSTEM_DIRS: [&str; 6] = ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"];

/// What of `/etc` the sandbox sees: what the base system's tools read, and nothing that may
/// hold a secret (`shadow`, `ssh/` host keys, `sudoers`, a service's configuration). The
/// sandbox's processes may run as root, who reads root-only files, so `/etc` is listed in,
/// not masked out.
const ETC: [&str; 16] = [
    // Debian's alternatives: /usr/bin/awk, editor, pager and others point into it.
    "alternatives",
    // User and group names for `ls -l`, `id`, `whoami`; the hashes are in `shadow`.
    "passwd",
    "group",
    "nsswitch.conf",
    // Where the dynamic linker finds libraries.
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    // `localhost`, for a server a command starts on the sandbox's own loopback.
    "hosts",
    "localtime",
    "timezone",
    "locale.alias",
    "mime.types",
    "magic",
    "os-release",
    "debian_version",
    "lsb-release",
];

/// How long the pipes may stay open after the time limit has killed the sandbox: its
/// processes die with its pid namespace, which takes milliseconds, so this is only a
/// bound on something going wrong.
const DRAIN_GRACE: Duration = Duration::from_secs(5);

/// Time limit of the trial run of `true` that [`Sandbox::with_bwrap`] makes: it takes
/// milliseconds, so running out of this means bubblewrap hangs.
const PROBE_TIME: Duration = Duration::from_secs(10);

/// What to do when the trial run fails as bubblewrap does where user namespaces are off:
/// the switch differs by distribution, so each known one is named.
const USERNS_HINT: &str = "; this usually means user namespaces are not allowed: \
    `user.max_user_namespaces` must be above 0, Debian kernels before 11 need \
    `sysctl -w kernel.unprivileged_userns_clone=1`, Ubuntu 23.10 and later \
    `sysctl -w kernel.apparmor_restrict_unprivileged_userns=0` (or an AppArmor profile for \
    bwrap), and inside a container its seccomp profile must allow unshare and mount";
/// What to do when bubblewrap does not know one of kai's options.
const VERSION_HINT: &str = "; kai needs bubblewrap 0.8 or later (for --size and --disable-userns)";

/// A working bubblewrap, and how this host's system is laid out for it. Every command goes
/// through [`Sandbox::run`]; there is no way to run one without the sandbox.
#[derive(Debug, Clone)]
pub struct Sandbox {
    bwrap: PathBuf,
    /// The arguments that rebuild the host's system read-only, decided once from its layout.
    system: Vec<OsString>,
    cgroups: Option<Cgroups>,
}

impl Sandbox {
    /// Finds `bwrap` on this process's `PATH` and tries it, as [`Sandbox::with_bwrap`] does.
    pub async fn detect() -> Result<Self, Unavailable> {
        let searched = std::env::var_os("PATH").unwrap_or_default();
        match find_on_path(&searched) {
            Some(bwrap) => Self::with_bwrap(bwrap).await,
            None => Err(Unavailable::NotInstalled {
                searched: searched.to_string_lossy().into_owned(),
            }),
        }
    }

    /// Uses the `bwrap` at `path`, after running `true` inside it: whether a sandbox can be
    /// made depends on the kernel and its settings, not only on bubblewrap being there.
    ///
    /// When kai runs as root, each run also needs a cgroup with the `pids` controller,
    /// since `RLIMIT_NPROC` does not bind root and nothing else would bound a fork bomb;
    /// without one the sandbox is [`Unavailable::NoProcessLimit`]. An ordinary user's
    /// sandboxes use a cgroup where one can be made, and `RLIMIT_NPROC` in any case.
    pub async fn with_bwrap(path: impl Into<PathBuf>) -> Result<Self, Unavailable> {
        let bwrap = executable(path.into())?;
        let root = real_uid_is_root();
        let cgroups = match Cgroups::find() {
            Ok(cgroups) => Some(cgroups),
            Err(reason) if root => return Err(Unavailable::NoProcessLimit { reason }),
            Err(reason) => {
                tracing::debug!(%reason, "no cgroup for sandboxes; RLIMIT_NPROC limits their processes");
                None
            }
        };
        let mut sandbox = Self {
            bwrap,
            system: system_binds(),
            cgroups,
        };
        let mut tried = sandbox.probe().await;
        if tried.is_err() && sandbox.cgroups.is_some() && !root {
            // An ordinary user may be able to make a cgroup and still not move into it
            // (its parent not delegated to them); RLIMIT_NPROC binds them without one.
            sandbox.cgroups = None;
            tried = sandbox.probe().await;
        }
        match tried {
            Ok(()) => Ok(sandbox),
            Err(detail) => {
                let hint = if detail.contains("Unknown option") {
                    VERSION_HINT
                } else if ["namespace", "uid map", "Operation not permitted"]
                    .iter()
                    .any(|sign| detail.contains(sign))
                {
                    USERNS_HINT
                } else {
                    ""
                };
                Err(Unavailable::Broken {
                    bwrap: sandbox.bwrap,
                    detail,
                    hint,
                })
            }
        }
    }

    /// The `bwrap` this sandbox runs.
    pub fn bwrap(&self) -> &Path {
        &self.bwrap
    }

    /// The cgroup directory each run's own cgroup is made in, or `None` where none could be
    /// made (kai is then not root, and `RLIMIT_NPROC` alone limits the processes).
    pub fn cgroup(&self) -> Option<&Path> {
        self.cgroups.as_ref().map(Cgroups::base)
    }

    /// Runs one command in a fresh sandbox and waits for it to end, or for its time to run
    /// out. Dropping the future kills the sandbox.
    ///
    /// Inside: no network (a loopback of its own), the system read-only, `/tmp` and
    /// `/dev/shm` small and empty, the workspace at [`WORKSPACE`] the one writable host
    /// directory, the environment only `PATH`, `HOME` (the workspace) and `LANG`, no
    /// capabilities, its own pid, IPC, UTS and cgroup namespaces, and the request's limits.
    pub async fn run(&self, request: &Request) -> Result<Outcome, SandboxError> {
        let limits = &request.limits;
        limits.check()?;
        let workspace = checked_workspace(&request.workspace)?;
        let cgroup = self
            .cgroups
            .as_ref()
            .map(|cgroups| cgroups.create(limits))
            .transpose()?;
        let mut command = self.host_command(&workspace, limits, &request.command, cgroup.as_ref());
        command
            .stdin(if request.stdin.is_empty() {
                Stdio::null()
            } else {
                Stdio::piped()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Killing bubblewrap kills the whole sandbox (see `supervise`), so a caller
            // that gives up on a run leaves nothing running.
            .kill_on_drop(true);

        let start = Instant::now();
        let deadline = start + limits.wall_time;
        let drain_until = deadline + DRAIN_GRACE;
        let mut child = command.spawn().map_err(|source| SandboxError::Spawn {
            bwrap: self.bwrap.clone(),
            source,
        })?;
        let missing = || std::io::Error::other("bubblewrap's pipes were not set up");
        let stdout = child.stdout.take().ok_or_else(missing)?;
        let stderr = child.stderr.take().ok_or_else(missing)?;
        let stdin = child.stdin.take();

        let mut out = Captured::default();
        let mut err = Captured::default();
        let mut started = false;
        let (waited, read_out, read_err, ()) = tokio::join!(
            supervise(&mut child, deadline),
            timeout_at(
                drain_until,
                capture(stdout, &mut out, limits.output, Some(&mut started))
            ),
            timeout_at(drain_until, capture(stderr, &mut err, limits.output, None)),
            feed(stdin, &request.stdin, drain_until),
        );
        let elapsed = start.elapsed();
        // Removes the run's cgroup, killing anything left in it.
        drop(cgroup);
        let (status, timed_out) = waited?;
        for read in [read_out, read_err] {
            match read {
                Ok(result) => result?,
                Err(_) => tracing::warn!("sandbox output still open after its end; cut off"),
            }
        }
        if !started && !timed_out {
            return Err(SandboxError::Start {
                status,
                stderr: err.text().trim().to_owned(),
            });
        }
        Ok(Outcome {
            exit: Exit::from_status(status),
            timed_out,
            stdout: out,
            stderr: err,
            elapsed,
        })
    }

    /// Runs `true` with the default limits in a scratch workspace; on failure, says why.
    async fn probe(&self) -> Result<(), String> {
        let workspace = tempfile::Builder::new()
            .prefix("kai-sandbox-probe")
            .tempdir()
            .map_err(|error| format!("cannot make a scratch workspace: {error}"))?;
        let command = Command::argv(["true"]).map_err(|error| error.to_string())?;
        let limits = Limits {
            wall_time: PROBE_TIME,
            ..Limits::default()
        };
        let request = Request::new(command, workspace.path()).limits(limits);
        match self.run(&request).await {
            Ok(outcome) if outcome.success() => Ok(()),
            Ok(outcome) => Err(format!(
                "the trial run of `true` ended with {:?}{}: {}",
                outcome.exit,
                if outcome.timed_out {
                    " (timed out)"
                } else {
                    ""
                },
                outcome.stderr.text().trim()
            )),
            Err(SandboxError::Start { stderr, .. }) => Err(stderr),
            Err(error) => Err(error.to_string()),
        }
    }

    /// The host command that starts bubblewrap, inside the run's cgroup when there is one.
    fn host_command(
        &self,
        workspace: &Path,
        limits: &Limits,
        command: &Command,
        cgroup: Option<&RunCgroup>,
    ) -> tokio::process::Command {
        let mut host = match cgroup {
            None => tokio::process::Command::new(&self.bwrap),
            Some(cgroup) => {
                // bubblewrap must be in the cgroup before it forks, or a process could
                // start outside it. Safe Rust has no hook between fork and exec, so a host
                // shell joins the cgroup and then becomes bubblewrap (same pid).
                let mut shell = tokio::process::Command::new("/bin/sh");
                shell
                    .arg("-c")
                    .arg(r#"echo $$ > "$0" && exec "$@""#)
                    .arg(cgroup.procs())
                    .arg(&self.bwrap);
                shell
            }
        };
        host.args(self.bwrap_args(workspace, limits, command));
        // bubblewrap needs no environment, and nothing of kai's (keys, tokens) should
        // reach even it; `--clearenv` below empties the sandbox's again.
        host.env_clear();
        host
    }

    /// bubblewrap's arguments, in the order it applies them.
    fn bwrap_args(&self, workspace: &Path, limits: &Limits, command: &Command) -> Vec<OsString> {
        let tmp_size = limits.tmp_size.to_string();
        let mut args: Vec<OsString> = Vec::new();
        let mut add = |items: &[&OsStr]| args.extend(items.iter().map(|item| item.to_os_string()));
        let s = OsStr::new;
        add(&[
            // New user, pid, network, IPC, UTS and cgroup namespaces: no network but a
            // loopback of its own, no signals to or sight of host processes. `--unshare-all`
            // only tries the user namespace; it is asked for outright because
            // `--disable-userns` (no nested user namespaces, and so none of the kernel
            // surface they open to the unprivileged) needs it.
            s("--unshare-all"),
            s("--unshare-user"),
            s("--disable-userns"),
            // Run as root, bubblewrap leaves the command every capability unless told.
            s("--cap-drop"),
            s("ALL"),
            // If kai dies, the sandbox dies (bubblewrap, then its pid namespace). The
            // kernel's "parent" is the thread that spawned bubblewrap: a runtime worker,
            // which lives as long as the runtime, and a runtime's end ends its runs anyway.
            s("--die-with-parent"),
            // A session of its own: no TIOCSTI into a terminal kai may hold.
            s("--new-session"),
            s("--hostname"),
            s("kai-sandbox"),
            s("--clearenv"),
            s("--setenv"),
            s("PATH"),
            s(PATH),
            s("--setenv"),
            s("HOME"),
            s(WORKSPACE),
            s("--setenv"),
            s("LANG"),
            s("C.UTF-8"),
        ]);
        args.extend(self.system.iter().cloned());
        let mut add = |items: &[&OsStr]| args.extend(items.iter().map(|item| item.to_os_string()));
        add(&[
            // A minimal /dev (null, zero, random, tty, pts). bubblewrap makes it a tmpfs
            // without a size, which could grow to half the host's memory, so it is
            // remounted read-only, with a sized tmpfs of its own at /dev/shm.
            s("--dev"),
            s("/dev"),
            s("--size"),
            s(&tmp_size),
            s("--tmpfs"),
            s("/dev/shm"),
            s("--remount-ro"),
            s("/dev"),
            // Read-only: a process running as root with no capabilities can still write
            // most of /proc/sys (the check is on the uid), which bubblewrap 0.8 leaves
            // writable; measured, and a test holds it.
            s("--proc"),
            s("/proc"),
            s("--remount-ro"),
            s("/proc"),
            s("--size"),
            s(&tmp_size),
            s("--tmpfs"),
            s("/tmp"),
            s("--bind"),
            workspace.as_os_str(),
            s(WORKSPACE),
            // The root bubblewrap builds on is a writable, unsized tmpfs unless remounted.
            s("--remount-ro"),
            s("/"),
            s("--chdir"),
            s(WORKSPACE),
            s("--"),
            s("/bin/sh"),
            s("-c"),
            s(&prelude(limits)),
            s("kai-sandbox"),
        ]);
        args.extend(command.as_argv().iter().map(OsString::from));
        args
    }
}

/// The script that sets the per-process limits inside the sandbox, marks the start and
/// becomes the command. Limits are set here rather than on bubblewrap, so that they bind
/// only what the request runs; `ulimit` sets hard and soft limits alike, and with no
/// capabilities nothing inside can raise them again.
fn prelude(limits: &Limits) -> String {
    format!(
        "ulimit -v {} && ulimit -f {} && ulimit -p {} && ulimit -c 0 || exit 125\nprintf {}\nexec \"$@\"",
        // dash counts address space in KiB and file size in 512-byte blocks.
        limits.memory.div_ceil(1024),
        limits.file_size.div_ceil(512),
        limits.processes,
        char::from(START_MARKER),
    )
}

/// Waits for bubblewrap until `deadline`, then kills it. Killing bubblewrap kills the whole
/// sandbox: its pid namespace's first process dies with it (`--die-with-parent`), and the
/// kernel kills every other process of a pid namespace whose first process dies, SIGTERM
/// handlers or not. Returns the status and whether the time ran out.
async fn supervise(child: &mut Child, deadline: Instant) -> std::io::Result<(ExitStatus, bool)> {
    if let Ok(status) = timeout_at(deadline, child.wait()).await {
        return Ok((status?, false));
    }
    child.start_kill()?;
    Ok((child.wait().await?, true))
}

/// Writes the request's input to the command's stdin, then closes it.
async fn feed(stdin: Option<ChildStdin>, bytes: &[u8], until: Instant) {
    let Some(mut stdin) = stdin else {
        return;
    };
    // A command that stops reading closes its end: that is its business, not a failure of
    // the run.
    let _ = timeout_at(until, stdin.write_all(bytes)).await;
}

/// The workspace with its symlinks resolved (bubblewrap is given the directory itself), or
/// why it cannot be bound.
fn checked_workspace(path: &Path) -> Result<PathBuf, SandboxError> {
    let wrong = |reason: String| SandboxError::Workspace {
        path: path.to_owned(),
        reason,
    };
    let canonical = fs::canonicalize(path).map_err(|error| match error.kind() {
        std::io::ErrorKind::NotFound => wrong("does not exist; make it first".to_owned()),
        _ => wrong(error.to_string()),
    })?;
    if !canonical.is_dir() {
        return Err(wrong("is not a directory".to_owned()));
    }
    if canonical.parent().is_none() {
        return Err(wrong(
            "is the filesystem root, which bound writable would undo the read-only system"
                .to_owned(),
        ));
    }
    Ok(canonical)
}

/// The arguments that rebuild the host's system inside the sandbox, read-only.
fn system_binds() -> Vec<OsString> {
    let mut args: Vec<OsString> = ["--ro-bind", "/usr", "/usr"].map(OsString::from).to_vec();
    for dir in SYSTEM_DIRS {
        let Ok(metadata) = fs::symlink_metadata(dir) else {
            continue;
        };
        if metadata.file_type().is_symlink() {
            if let Ok(target) = fs::read_link(dir) {
                args.extend(["--symlink".into(), target.into_os_string(), dir.into()]);
            }
        } else if metadata.is_dir() {
            args.extend(["--ro-bind", dir, dir].map(OsString::from));
        }
    }
    for name in ETC {
        let path = format!("/etc/{name}");
        args.extend(["--ro-bind-try".into(), path.clone().into(), path.into()]);
    }
    args
}

/// The first `bwrap` on `path` that is an executable file. Relative entries are skipped:
/// they would name a different program from every working directory.
fn find_on_path(path: &OsStr) -> Option<PathBuf> {
    std::env::split_paths(path)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join("bwrap"))
        .find(|candidate| executable(candidate.clone()).is_ok())
}

fn executable(path: PathBuf) -> Result<PathBuf, Unavailable> {
    let wrong = |reason: String| Unavailable::NotExecutable {
        path: path.clone(),
        reason,
    };
    let resolved = fs::canonicalize(&path).map_err(|error| wrong(error.to_string()))?;
    let metadata = fs::metadata(&resolved).map_err(|error| wrong(error.to_string()))?;
    if !metadata.is_file() || metadata.permissions().mode() & 0o111 == 0 {
        return Err(wrong("not an executable file".to_owned()));
    }
    Ok(resolved)
}

/// Whether this process's real uid is 0, the uid `RLIMIT_NPROC` never binds. Unknown counts
/// as root: the answer only ever makes the sandbox stricter.
fn real_uid_is_root() -> bool {
    let Ok(status) = fs::read_to_string("/proc/self/status") else {
        return true;
    };
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|uids| uids.split_whitespace().next())
        .is_none_or(|real| real == "0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_search_skips_relative_and_missing_entries() {
        let dir = tempfile::tempdir().unwrap();
        let bwrap = dir.path().join("bwrap");
        fs::write(&bwrap, "#!/bin/sh\n").unwrap();
        let path =
            std::env::join_paths([Path::new("relative"), Path::new("/nonexistent")]).unwrap();
        assert_eq!(find_on_path(&path), None);

        fs::set_permissions(&bwrap, fs::Permissions::from_mode(0o644)).unwrap();
        let path = std::env::join_paths([dir.path()]).unwrap();
        assert_eq!(find_on_path(&path), None, "not executable");

        fs::set_permissions(&bwrap, fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(find_on_path(&path), Some(fs::canonicalize(&bwrap).unwrap()));
    }

    #[test]
    fn the_prelude_sets_every_limit_before_the_marker() {
        let limits = Limits {
            memory: 1 << 20,
            file_size: 1000,
            processes: 7,
            ..Limits::default()
        };
        let prelude = prelude(&limits);
        assert!(prelude.starts_with("ulimit -v 1024 && ulimit -f 2 && ulimit -p 7 && ulimit -c 0"));
        assert!(prelude.ends_with("printf K\nexec \"$@\""));
    }

    #[test]
    fn the_workspace_must_be_an_existing_directory_other_than_root() {
        let dir = tempfile::tempdir().unwrap();
        assert!(checked_workspace(dir.path()).is_ok());
        let missing = checked_workspace(&dir.path().join("missing")).unwrap_err();
        assert!(missing.to_string().contains("does not exist"), "{missing}");
        let file = dir.path().join("file");
        fs::write(&file, "").unwrap();
        assert!(checked_workspace(&file).is_err());
        assert!(checked_workspace(Path::new("/")).is_err());
    }
}
