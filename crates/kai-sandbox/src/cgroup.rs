//! One cgroup per run: the only limit on the number of processes that binds root
//! (`RLIMIT_NPROC` does not), and under cgroup v2 a limit on the sandbox's memory as a whole.
//!
//! kai makes a directory `kai-sandbox` in a hierarchy that has the `pids` controller: under
//! cgroup v2, beside its own cgroup (a v2 cgroup with processes in it cannot give its
//! controllers to children, so kai's own cannot be the parent), where that parent hands out
//! `pids`; under cgroup v1, in its own cgroup of the `pids` hierarchy. Each run gets a child
//! `PID-N` there, joined by bubblewrap before it starts (see `Sandbox::host_command`), so
//! everything the sandbox starts is counted from its first process.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::error::SandboxError;
use crate::request::Limits;

/// Name of kai's directory in the hierarchy.
const BASE: &str = "kai-sandbox";

/// How long a run's cgroup may take to empty after its sandbox ended: its processes are
/// already dead or being killed with their pid namespace, which takes milliseconds.
const EMPTY_WITHIN: Duration = Duration::from_secs(5);

/// Where this process makes its runs' cgroups.
#[derive(Debug, Clone)]
pub(crate) struct Cgroups {
    base: PathBuf,
    v2: bool,
    memory: bool,
}

impl Cgroups {
    /// Finds a hierarchy with the `pids` controller where this process may make cgroups, and
    /// makes kai's directory in it; or says why there is none.
    pub(crate) fn find() -> Result<Self, String> {
        let read = |path: &str| {
            fs::read_to_string(path).map_err(|error| format!("cannot read {path}: {error}"))
        };
        let mountinfo = read("/proc/self/mountinfo")?;
        let own = read("/proc/self/cgroup")?;
        let mut reasons = Vec::new();
        for (parent, v2) in candidates(&mountinfo, &own) {
            match Self::prepare(&parent, v2) {
                Ok(found) => return Ok(found),
                Err(reason) => reasons.push(reason),
            }
        }
        if reasons.is_empty() {
            reasons.push("no mounted cgroup hierarchy has the pids controller".to_owned());
        }
        Err(reasons.join("; "))
    }

    fn prepare(parent: &Path, v2: bool) -> Result<Self, String> {
        let base = parent.join(BASE);
        let mut memory = false;
        if v2 {
            // A v2 cgroup can give its children only the controllers its parent gave it.
            let file = parent.join("cgroup.subtree_control");
            let given = fs::read_to_string(&file)
                .map_err(|error| format!("cannot read {}: {error}", file.display()))?;
            let given: Vec<&str> = given.split_whitespace().collect();
            if !given.contains(&"pids") {
                return Err(format!("{} does not enable pids", file.display()));
            }
            memory = given.contains(&"memory");
        }
        match fs::create_dir(&base) {
            Ok(()) => {}
            Err(error) if error.kind() == ErrorKind::AlreadyExists => {}
            Err(error) => return Err(format!("cannot make {}: {error}", base.display())),
        }
        if v2 {
            let wanted = if memory { "+pids +memory" } else { "+pids" };
            let file = base.join("cgroup.subtree_control");
            fs::write(&file, wanted)
                .map_err(|error| format!("cannot write {}: {error}", file.display()))?;
        }
        sweep(&base);
        Ok(Self { base, v2, memory })
    }

    /// kai's directory, where each run's cgroup is made.
    pub(crate) fn base(&self) -> &Path {
        &self.base
    }

    /// Makes the cgroup of one run, with its limits set.
    pub(crate) fn create(&self, limits: &Limits) -> Result<RunCgroup, SandboxError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = self.base.join(format!("{}-{n}", std::process::id()));
        fs::create_dir(&dir).map_err(|source| SandboxError::Cgroup {
            path: dir.clone(),
            source,
        })?;
        // From here on, dropping the group removes its directory.
        let group = RunCgroup { dir, v2: self.v2 };
        group.set("pids.max", &limits.processes.to_string())?;
        if self.memory {
            group.set("memory.max", &limits.memory.to_string())?;
            // Swap would let the sandbox use memory past memory.max; one process killed for
            // memory takes the whole sandbox with it, as the time limit does.
            if group.dir.join("memory.swap.max").exists() {
                group.set("memory.swap.max", "0")?;
            }
            group.set("memory.oom.group", "1")?;
        }
        Ok(group)
    }
}

/// Hierarchies to try, in order, as (directory to make `kai-sandbox` in, whether v2).
fn candidates(mountinfo: &str, own: &str) -> Vec<(PathBuf, bool)> {
    let mut found = Vec::new();
    for line in mountinfo.lines() {
        let Some((root, point, fstype, options)) = parse_mount(line) else {
            continue;
        };
        // A hierarchy mounted from below its root (inside a cgroup namespace of another
        // mount) does not show this process's cgroup path where /proc/self/cgroup says.
        if root != "/" {
            continue;
        }
        if fstype == "cgroup2" {
            if let Some(path) = own_path(own, None) {
                // The parent of kai's own cgroup, or the root when kai is at the top.
                let parent = Path::new(path).parent().unwrap_or(Path::new("/"));
                found.push((join(point, parent), true));
            }
        } else if fstype == "cgroup"
            && options.split(',').any(|option| option == "pids")
            && let Some(path) = own_path(own, Some("pids"))
        {
            found.push((join(point, Path::new(path)), false));
        }
    }
    // cgroup v2 first: it can limit memory too.
    found.sort_by_key(|(_, v2)| !v2);
    found
}

/// Mount root, mount point, filesystem type and super options of one mountinfo line, or
/// `None` for lines this module does not use (escaped characters in paths included).
fn parse_mount(line: &str) -> Option<(&str, &str, &str, &str)> {
    let (before, after) = line.split_once(" - ")?;
    let mut before = before.split(' ');
    let root = before.nth(3)?;
    let point = before.next()?;
    let mut after = after.split(' ');
    let fstype = after.next()?;
    let options = after.nth(1)?;
    if point.contains('\\') || root.contains('\\') {
        return None;
    }
    Some((root, point, fstype, options))
}

/// This process's cgroup path: in the v2 hierarchy (`controller` `None`) or in the v1
/// hierarchy holding `controller`.
fn own_path<'a>(own: &'a str, controller: Option<&str>) -> Option<&'a str> {
    own.lines().find_map(|line| {
        let mut fields = line.splitn(3, ':');
        let id = fields.next()?;
        let controllers = fields.next()?;
        let path = fields.next()?;
        let matches = match controller {
            None => id == "0" && controllers.is_empty(),
            Some(wanted) => controllers.split(',').any(|name| name == wanted),
        };
        matches.then_some(path)
    })
}

fn join(point: &str, path: &Path) -> PathBuf {
    Path::new(point).join(path.strip_prefix("/").unwrap_or(path))
}

/// Removes run cgroups left by kai processes that are gone (killed before they could clean
/// up); those of live processes, this one's included, are theirs to remove.
fn sweep(base: &Path) {
    let Ok(entries) = fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some((pid, _)) = name.to_str().and_then(|name| name.split_once('-')) else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            // Busy (a process is still in it) or already gone: both leave nothing to do.
            let _ = fs::remove_dir(entry.path());
        }
    }
}

/// The cgroup of one run, removed when dropped: once its sandbox has ended, or when a run is
/// abandoned (its future dropped).
#[derive(Debug)]
pub(crate) struct RunCgroup {
    dir: PathBuf,
    v2: bool,
}

impl RunCgroup {
    /// The file bubblewrap's first process writes its pid to, to join the group.
    pub(crate) fn procs(&self) -> PathBuf {
        self.dir.join("cgroup.procs")
    }

    fn set(&self, file: &str, value: &str) -> Result<(), SandboxError> {
        let path = self.dir.join(file);
        fs::write(&path, value).map_err(|source| SandboxError::Cgroup { path, source })
    }
}

impl Drop for RunCgroup {
    /// Kills whatever is left in the group (cgroup v2's `cgroup.kill`, Linux 5.14 and later;
    /// under v1 the end of the pid namespace kills them) and removes it.
    fn drop(&mut self) {
        if self.v2 {
            // Missing before Linux 5.14: the pid namespace's end kills them anyway.
            let _ = fs::write(self.dir.join("cgroup.kill"), "1");
        }
        if fs::remove_dir(&self.dir).is_ok() {
            return;
        }
        // Even after a clean exit the group stays busy for a moment: the sandbox's first
        // process is reaped by the host's init shortly after bubblewrap exits (measured:
        // every time, about a millisecond). Nobody needs to wait for that, so a thread
        // retries off the caller's path, a thread rather than a task so that a runtime
        // shutting down cannot cut it short. Where no thread can start, the next start's
        // sweep removes the group.
        let dir = self.dir.clone();
        let _ = std::thread::Builder::new().name("kai-sandbox-cgroup".into()).spawn(move || {
            let deadline = Instant::now() + EMPTY_WITHIN;
            while let Err(error) = fs::remove_dir(&dir) {
                if error.kind() == ErrorKind::NotFound {
                    return;
                }
                if Instant::now() >= deadline {
                    tracing::warn!(cgroup = %dir.display(), %error, "sandbox cgroup left behind");
                    return;
                }
                std::thread::sleep(Duration::from_micros(200));
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
24 30 0:22 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755
25 24 0:23 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
26 24 0:24 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
27 24 0:25 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn hybrid_hierarchies_try_v2_then_v1_pids() {
        let own = "8:pids:/\n4:memory:/elsewhere\n0::/\n";
        assert_eq!(
            candidates(HYBRID, own),
            [
                (PathBuf::from("/sys/fs/cgroup/unified"), true),
                (PathBuf::from("/sys/fs/cgroup/pids"), false),
            ]
        );
    }

    #[test]
    fn v2_uses_the_parent_of_its_own_cgroup() {
        let mountinfo = "30 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n";
        let own = "0::/system.slice/kai.service\n";
        assert_eq!(
            candidates(mountinfo, own),
            [(PathBuf::from("/sys/fs/cgroup/system.slice"), true)]
        );
        let mountinfo_below_root = "30 1 0:26 /sub /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        assert!(candidates(mountinfo_below_root, own).is_empty());
    }

    #[test]
    fn v2_needs_pids_from_the_parent() {
        let parent = tempfile::tempdir().unwrap();
        fs::write(parent.path().join("cgroup.subtree_control"), "cpu memory\n").unwrap();
        let error = Cgroups::prepare(parent.path(), true).unwrap_err();
        assert!(error.contains("does not enable pids"), "{error}");

        fs::write(
            parent.path().join("cgroup.subtree_control"),
            "cpu pids memory\n",
        )
        .unwrap();
        let found = Cgroups::prepare(parent.path(), true).unwrap();
        assert!(found.memory);
        assert_eq!(
            fs::read_to_string(found.base().join("cgroup.subtree_control")).unwrap(),
            "+pids +memory"
        );
    }

    #[test]
    fn sweep_removes_only_groups_of_dead_processes() {
        let base = tempfile::tempdir().unwrap();
        let mine = base.path().join(format!("{}-0", std::process::id()));
        // Beyond the largest pid_max (2^22), so no live process has it.
        let dead = base.path().join("4194305-3");
        let other = base.path().join("not-a-run");
        for dir in [&mine, &dead, &other] {
            fs::create_dir(dir).unwrap();
        }
        sweep(base.path());
        assert!(mine.exists() && other.exists());
        assert!(!dead.exists());
    }
}
