//! The sandbox against the real bubblewrap: what it isolates, what it limits, and what it
//! says where it cannot run.
//!
//! Where `bwrap` cannot run, the tests check the `Unavailable` message and stop there,
//! unless `KAI_TEST_SANDBOX=1` (CI, which installs bubblewrap), where they fail.

#![allow(clippy::unwrap_used, clippy::print_stderr)]

use std::io::ErrorKind;
use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use kai_sandbox::{Command, Exit, Limits, Outcome, Request, Sandbox, SandboxError, Unavailable};

/// The sandbox, or `None` after checking why there is none (outside CI).
async fn sandbox() -> Option<Sandbox> {
    match Sandbox::detect().await {
        Ok(sandbox) => Some(sandbox),
        Err(unavailable) if std::env::var_os("KAI_TEST_SANDBOX").is_some_and(|v| v == "1") => {
            panic!("KAI_TEST_SANDBOX=1 but the sandbox is unavailable: {unavailable}")
        }
        Err(unavailable) => {
            let message = unavailable.to_string();
            assert!(
                message.contains("apt-get install bubblewrap")
                    || message.contains("sysctl")
                    || message.contains("pids")
                    || message.contains("bubblewrap 0.8"),
                "an unavailable sandbox must say what to do: {message}"
            );
            eprintln!("sandbox unavailable, test skipped: {message}");
            None
        }
    }
}

fn limits() -> Limits {
    Limits {
        wall_time: Duration::from_secs(20),
        ..Limits::default()
    }
}

async fn sh(sandbox: &Sandbox, workspace: &Path, line: &str, limits: Limits) -> Outcome {
    let request = Request::new(Command::shell(line).unwrap(), workspace).limits(limits);
    sandbox.run(&request).await.unwrap()
}

/// Pids of host processes whose command line contains `token`.
fn processes_with(token: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter(|entry| {
            std::fs::read(entry.path().join("cmdline"))
                .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains(token))
        })
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect()
}

/// A token for command lines no other test or run shares.
fn token(name: &str) -> String {
    format!("kai-sandbox-test-{name}-{}", std::process::id())
}

#[tokio::test]
async fn a_missing_bwrap_is_unavailable_and_says_how_to_install_it() {
    let error = Sandbox::with_bwrap("/nonexistent/bin/bwrap")
        .await
        .unwrap_err();
    assert!(
        matches!(error, Unavailable::NotExecutable { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("apt-get install bubblewrap"), "{message}");
    assert!(message.contains("/nonexistent/bin/bwrap"), "{message}");

    let not_bwrap = tempfile::NamedTempFile::new().unwrap();
    let error = Sandbox::with_bwrap(not_bwrap.path()).await.unwrap_err();
    assert!(
        error.to_string().contains("not an executable file"),
        "{error}"
    );
}

#[tokio::test]
async fn runs_a_command_and_reports_its_exit_and_output() {
    let Some(sandbox) = sandbox().await else {
        return;
    };
    let workspace = tempfile::tempdir().unwrap();
    let outcome = sh(
        &sandbox,
        workspace.path(),
        "echo out; echo err >&2; exit 3",
        limits(),
    )
    .await;
    assert_eq!(outcome.exit, Exit::Code(3));
    assert!(!outcome.timed_out && !outcome.success());
    assert_eq!(outcome.stdout.text(), "out\n");
    assert_eq!(outcome.stderr.text(), "err\n");
    assert!(!outcome.stdout.truncated && outcome.stdout.total == 4);

    // argv is not interpreted by any shell.
    let command = Command::argv(["printf", "%s|", "a b", "$HOME", "*"]).unwrap();
    let outcome = sandbox
        .run(&Request::new(command, workspace.path()))
        .await
        .unwrap();
    assert!(outcome.success(), "{outcome:?}");
    assert_eq!(outcome.stdout.text(), "a b|$HOME|*|");

    // A program that is not there is the command's failure, not the sandbox's.
    let command = Command::argv(["no-such-program"]).unwrap();
    let outcome = sandbox
        .run(&Request::new(command, workspace.path()))
        .await
        .unwrap();
    assert_eq!(outcome.exit, Exit::Code(127));
}

#[tokio::test]
async fn stdin_is_given_bytes_or_closed() {
    let Some(sandbox) = sandbox().await else {
        return;
    };
    let workspace = tempfile::tempdir().unwrap();
    let cat = Command::shell("cat; echo end").unwrap();
    let request = Request::new(cat.clone(), workspace.path()).stdin("line one\n");
    let outcome = sandbox.run(&request).await.unwrap();
    assert_eq!(outcome.stdout.text(), "line one\nend\n");

    // Closed: `cat` ends at once instead of waiting for the time limit.
    let outcome = sandbox
        .run(&Request::new(cat, workspace.path()))
        .await
        .unwrap();
    assert!(outcome.success(), "{outcome:?}");
    assert_eq!(outcome.stdout.text(), "end\n");

    // More input than a pipe holds, to a command that never reads it.
    let request =
        Request::new(Command::argv(["true"]).unwrap(), workspace.path()).stdin(vec![b'x'; 1 << 20]);
    assert!(sandbox.run(&request).await.unwrap().success());
}

#[tokio::test]
async fn the_network_is_unreachable() {
    let Some(sandbox) = sandbox().await else {
        return;
    };
    let workspace = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let connect = format!("echo hello > /dev/tcp/127.0.0.1/{port}");

    // The same connection from the host works, so the test can tell.
    let host = std::process::Command::new("bash")
        .args(["-c", &connect])
        .status()
        .unwrap();
    assert!(host.success());
    let (_from_host, _) = listener.accept().unwrap();

    let line = format!(
        "bash -c '{connect}' && echo loopback reached; \
         bash -c 'echo > /dev/tcp/192.0.2.1/80' && echo outside reached; \
         cat /proc/net/dev"
    );
    let outcome = sh(&sandbox, workspace.path(), &line, limits()).await;
    let stdout = outcome.stdout.text();
    assert!(!stdout.contains("reached"), "{outcome:?}");
    // Only a loopback device of its own.
    let devices: Vec<&str> = stdout
        .lines()
        .skip(2)
        .filter_map(|line| line.split(':').next())
        .map(str::trim)
        .collect();
    assert_eq!(devices, ["lo"], "{stdout}");
    match listener.accept() {
        Err(error) if error.kind() == ErrorKind::WouldBlock => {}
        other => panic!("the host's listener was reached from the sandbox: {other:?}"),
    }
}

#[tokio::test]
async fn the_system_is_read_only_and_the_workspace_writable() {
    let Some(sandbox) = sandbox().await else {
        return;
    };
    let workspace = tempfile::tempdir().unwrap();
    let line = "for path in /usr/kai-test /etc/kai-test /kai-test /dev/kai-test \
                /proc/sys/kernel/domainname; do \
                  if echo x > $path; then echo \"wrote $path\"; fi; \
                done 2>/dev/null; \
                echo note > /workspace/note.txt && mkdir sub && echo deep > sub/file; \
                echo scratch > /tmp/scratch && echo shm > /dev/shm/shm && echo scratch ok";
    let outcome = sh(&sandbox, workspace.path(), line, limits()).await;
    assert_eq!(outcome.stdout.text(), "scratch ok\n", "{outcome:?}");
    assert!(outcome.success(), "{outcome:?}");
    let read = |path: &str| std::fs::read_to_string(workspace.path().join(path)).unwrap();
    assert_eq!(read("note.txt"), "note\n");
    assert_eq!(read("sub/file"), "deep\n");
    assert!(!Path::new("/usr/kai-test").exists());

    // The scratch filesystems start empty every run.
    let outcome = sh(&sandbox, workspace.path(), "ls -A /tmp /dev/shm", limits()).await;
    assert_eq!(outcome.stdout.text(), "/dev/shm:\n\n/tmp:\n", "{outcome:?}");
}

#[tokio::test]
async fn host_secrets_and_the_environment_stay_out() {
    let Some(sandbox) = sandbox().await else {
        return;
    };
    let workspace = tempfile::tempdir().unwrap();
    // The host user's home, unless it is somewhere the sandbox has one of its own (`/tmp`).
    let host_home = std::env::var("HOME")
        .ok()
        .filter(|home| home.starts_with("/root") || home.starts_with("/home"))
        .unwrap_or_else(|| "/root".to_owned());
    let line = format!(
        "for path in /root /home /etc/shadow /etc/ssh /var '{host_home}'; do \
           test -e \"$path\" && echo \"sees $path\"; \
         done; \
         grep -h '^Cap[EPB]' /proc/self/status; \
         env"
    );
    let outcome = sh(&sandbox, workspace.path(), &line, limits()).await;
    let stdout = outcome.stdout.text();
    assert!(!stdout.contains("sees"), "{stdout}");
    for line in stdout.lines().filter(|line| line.starts_with("Cap")) {
        assert!(
            line.ends_with("0000000000000000"),
            "a capability is left: {line}"
        );
    }
    let names: Vec<&str> = stdout
        .lines()
        .filter(|line| !line.starts_with("Cap"))
        .filter_map(|line| line.split_once('=').map(|(name, _)| name))
        .collect();
    for name in &names {
        assert!(
            ["PATH", "HOME", "LANG", "PWD", "SHLVL", "_"].contains(name),
            "leaked {name}"
        );
    }
    assert!(stdout.contains("HOME=/workspace\n"), "{stdout}");
    // Sanity: the test process does have variables that could have leaked.
    assert!(std::env::vars().any(|(name, _)| name.starts_with("CARGO")));
}

#[tokio::test]
async fn the_time_limit_kills_the_whole_sandbox() {
    let Some(sandbox) = sandbox().await else {
        return;
    };
    let workspace = tempfile::tempdir().unwrap();
    let limits = Limits {
        wall_time: Duration::from_secs(1),
        ..Limits::default()
    };

    let outcome = sh(
        &sandbox,
        workspace.path(),
        "echo started; sleep 100",
        limits.clone(),
    )
    .await;
    assert!(outcome.timed_out, "{outcome:?}");
    assert_eq!(outcome.exit, Exit::Signal(9));
    assert_eq!(
        outcome.stdout.text(),
        "started\n",
        "output before the kill is kept"
    );

    // SIGTERM ignored, and a child in the background that outlives its parent.
    let token = token("term");
    let stubborn = format!("sh -c 'trap \"\" TERM; sleep 100' {token}");
    let line = format!("trap '' TERM; {stubborn} & {stubborn}");
    let outcome = sh(&sandbox, workspace.path(), &line, limits).await;
    assert!(outcome.timed_out, "{outcome:?}");
    assert_eq!(
        processes_with(&token),
        Vec::<String>::new(),
        "processes outlived the sandbox"
    );
}

#[tokio::test]
async fn a_dropped_run_leaves_nothing_running() {
    let Some(sandbox) = sandbox().await else {
        return;
    };
    let workspace = tempfile::tempdir().unwrap();
    let token = token("drop");
    let command = Command::argv(["sh", "-c", "sleep 100", &token]).unwrap();
    let request = Request::new(command, workspace.path()).limits(limits());
    let run = sandbox.run(&request);
    assert!(
        tokio::time::timeout(Duration::from_millis(500), run)
            .await
            .is_err()
    );
    // The kill is sent when the future drops; the kernel takes a moment to finish it.
    for _ in 0..100 {
        if processes_with(&token).is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "an abandoned sandbox is still running: {:?}",
        processes_with(&token)
    );
}

#[tokio::test]
async fn an_output_flood_is_capped_and_drained() {
    let Some(sandbox) = sandbox().await else {
        return;
    };
    let workspace = tempfile::tempdir().unwrap();
    let cap = 64 * 1024;

    // Endless: the time limit ends it, and the output kept stops at the cap.
    let limits = Limits {
        wall_time: Duration::from_secs(2),
        output: cap,
        ..Limits::default()
    };
    let outcome = sh(&sandbox, workspace.path(), "yes", limits.clone()).await;
    assert!(outcome.timed_out);
    assert_eq!(outcome.stdout.bytes.len(), cap);
    assert!(outcome.stdout.truncated && outcome.stdout.total > cap as u64);
    assert!(outcome.stdout.text().starts_with("y\ny\n"));

    // Finite, far past the cap, on both streams: the command never blocks on a full pipe,
    // so it finishes, and every byte is counted.
    let line = "head -c 20000000 /dev/zero; head -c 3000000 /dev/zero >&2; echo done";
    let outcome = sh(
        &sandbox,
        workspace.path(),
        line,
        Limits {
            wall_time: Duration::from_secs(60),
            ..limits
        },
    )
    .await;
    assert!(outcome.success(), "{:?}", outcome.exit);
    assert_eq!(outcome.stdout.total, 20_000_005);
    assert_eq!(outcome.stderr.total, 3_000_000);
    assert!(outcome.stdout.truncated && outcome.stderr.truncated);
    assert_eq!(outcome.stderr.bytes.len(), cap);
}

#[tokio::test]
async fn a_fork_bomb_is_contained() {
    let Some(sandbox) = sandbox().await else {
        return;
    };
    let workspace = tempfile::tempdir().unwrap();
    let token = token("bomb");
    let limits = Limits {
        wall_time: Duration::from_secs(3),
        processes: 64,
        ..Limits::default()
    };
    // Every process of the bomb is a fork of this shell, so each carries the token. The
    // first shell stays: were it to exit, the sandbox would end with it, bomb and all.
    let line = "bomb() { bomb | bomb & }; bomb; sleep 100";
    let command = Command::argv(["sh", "-c", line, &token]);
    let request = Request::new(command.unwrap(), workspace.path()).limits(limits);
    let outcome = sandbox.run(&request).await.unwrap();
    assert!(outcome.timed_out, "{outcome:?}");
    assert!(
        outcome.stderr.text().contains("fork"),
        "the limit on processes should have refused forks: {outcome:?}"
    );
    assert_eq!(
        processes_with(&token),
        Vec::<String>::new(),
        "the bomb outlived its sandbox"
    );
    // The host can still start processes, sandboxed ones included.
    let after = sh(&sandbox, workspace.path(), "echo fine", Limits::default()).await;
    assert_eq!(after.stdout.text(), "fine\n");
}

#[tokio::test]
async fn the_memory_limit_stops_a_big_allocation() {
    let Some(sandbox) = sandbox().await else {
        return;
    };
    let workspace = tempfile::tempdir().unwrap();
    let limits = Limits {
        memory: 256 << 20,
        ..limits()
    };
    // tail keeps the last line, and /dev/zero has no newline: it must hold all 2 GiB.
    let outcome = sh(
        &sandbox,
        workspace.path(),
        "head -c 2G /dev/zero | tail -n 1 | wc -c",
        limits,
    )
    .await;
    assert!(!outcome.timed_out, "{outcome:?}");
    assert_eq!(
        outcome.stdout.text().trim(),
        "0",
        "tail got nothing out: {outcome:?}"
    );
    assert!(
        outcome.stderr.text().contains("memory exhausted"),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn the_file_size_limit_stops_a_big_file() {
    let Some(sandbox) = sandbox().await else {
        return;
    };
    let workspace = tempfile::tempdir().unwrap();
    let limits = Limits {
        file_size: 1 << 20,
        ..limits()
    };
    let outcome = sh(
        &sandbox,
        workspace.path(),
        "exec head -c 5M /dev/zero > big",
        limits.clone(),
    )
    .await;
    assert_eq!(outcome.exit, Exit::Signal(25), "SIGXFSZ: {outcome:?}");
    let size = std::fs::metadata(workspace.path().join("big"))
        .unwrap()
        .len();
    assert_eq!(size, 1 << 20);

    // /tmp is memory: it has a size of its own.
    let limits = Limits {
        tmp_size: 1 << 20,
        ..limits
    };
    let outcome = sh(
        &sandbox,
        workspace.path(),
        "head -c 900k /dev/zero > /tmp/a && head -c 900k /dev/zero > /tmp/b",
        limits,
    )
    .await;
    assert!(!outcome.success());
    assert!(
        outcome.stderr.text().contains("No space left"),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn bad_requests_are_errors_with_reasons() {
    let Some(sandbox) = sandbox().await else {
        return;
    };
    let workspace = tempfile::tempdir().unwrap();
    let missing = workspace.path().join("missing");
    let request = Request::new(Command::argv(["true"]).unwrap(), &missing);
    let error = sandbox.run(&request).await.unwrap_err();
    assert!(matches!(error, SandboxError::Workspace { .. }), "{error:?}");
    assert!(error.to_string().contains("does not exist"), "{error}");

    let limits = Limits {
        wall_time: Duration::ZERO,
        ..Limits::default()
    };
    let request = Request::new(Command::argv(["true"]).unwrap(), workspace.path()).limits(limits);
    assert!(matches!(
        sandbox.run(&request).await,
        Err(SandboxError::InvalidLimits(_))
    ));

    let limits = Limits {
        memory: u64::MAX,
        ..Limits::default()
    };
    let request = Request::new(Command::argv(["true"]).unwrap(), workspace.path()).limits(limits);
    assert!(matches!(
        sandbox.run(&request).await,
        Err(SandboxError::InvalidLimits(_))
    ));
}

#[tokio::test]
async fn a_bwrap_that_cannot_make_a_sandbox_is_unavailable_with_its_reason() {
    // Only to be sure the machine can run the real one at all (and skip where it cannot).
    let Some(_) = sandbox().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("bwrap");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho 'bwrap: Creating new namespace failed: Operation not permitted' >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let error = Sandbox::with_bwrap(&fake).await.unwrap_err();
    assert!(matches!(error, Unavailable::Broken { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains("Creating new namespace failed"),
        "{message}"
    );
    assert!(message.contains("user.max_user_namespaces"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_side_by_side_keep_apart() {
    let Some(sandbox) = sandbox().await else {
        return;
    };
    let workspaces: Vec<_> = (0..6).map(|_| tempfile::tempdir().unwrap()).collect();
    let runs: Vec<_> = workspaces
        .iter()
        .enumerate()
        .map(|(i, workspace)| {
            let sandbox = sandbox.clone();
            let line = format!("echo {i} > mine; sleep 0.2; ls; cat mine");
            let command = Command::shell(line).unwrap();
            let request = Request::new(command, workspace.path()).limits(limits());
            tokio::spawn(async move { sandbox.run(&request).await })
        })
        .collect();
    for (i, run) in runs.into_iter().enumerate() {
        let outcome = run.await.unwrap().unwrap();
        assert_eq!(outcome.stdout.text(), format!("mine\n{i}\n"));
    }
}
