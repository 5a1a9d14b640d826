//! Running the real `kai` binary in a sandbox: its own HOME, XDG directories and disposable
//! database, and a `kai serve` on an ephemeral loopback port whose log the tests read.

// Each test file uses a different part of this module.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kai_store::testing::TestDatabase;
use serde_json::Value;

pub const PASSWORD: &str = "correct horse battery";

/// A sandbox for the binary: its own HOME and XDG directories, and a disposable database of the
/// backend the environment selects.
pub struct Kai {
    pub home: tempfile::TempDir,
    pub db: TestDatabase,
}

impl Kai {
    pub async fn new() -> Kai {
        kai_providers::install_tls_provider();
        Kai {
            home: tempfile::tempdir().unwrap(),
            db: TestDatabase::new().await,
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.db.dir().join("data")
    }

    /// The binary with a clean environment: nothing of the developer's KAI_* leaks in.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_kai"));
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.home.path().join("config"))
            .env("XDG_DATA_HOME", self.home.path().join("data"))
            .env("KAI_DATA_DIR", self.data_dir())
            .env("KAI_DATABASE_URL", self.db.url().expose())
            .stdin(Stdio::null());
        command
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    pub fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Output {
        output_with_stdin(self.command(args), stdin)
    }

    pub fn create_admin(&self, name: &str) {
        let out = self.run_with_stdin(
            &["user", "create", "--admin", name],
            &format!("{PASSWORD}\n"),
        );
        assert!(out.status.success(), "{}", stderr(&out));
    }
}

/// Runs `command` to its end with `stdin` as its input.
pub fn output_with_stdin(mut command: Command, stdin: &str) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts a failure reported as exactly one line on stderr, containing each of `needles`.
#[track_caller]
pub fn assert_one_line_failure(out: &Output, needles: &[&str]) {
    assert!(
        !out.status.success(),
        "expected failure; stdout: {}",
        stdout(out)
    );
    let err = stderr(out);
    assert_eq!(err.trim_end().lines().count(), 1, "not one line:\n{err}");
    for needle in needles {
        assert!(err.contains(needle), "{needle:?} not in: {err}");
    }
}

/// A running `kai serve`, its stderr collected line by line.
pub struct Server {
    child: Child,
    pub base: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    pub fn start(kai: &Kai, extra_args: &[&str]) -> Server {
        let mut args = vec!["serve", "--bind", "127.0.0.1:0"];
        args.extend_from_slice(extra_args);
        Server::spawn(kai.command(&args))
    }

    /// Runs `command`, a `kai serve` on an ephemeral port that the caller has added to (a
    /// configuration file, credentials in the environment), and waits until it listens.
    pub fn spawn(mut command: Command) -> Server {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let reader = BufReader::new(child.stderr.take().unwrap());
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in reader.lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let base = loop {
            let found = log.lock().unwrap().iter().find_map(|line| {
                let start = line.find("http://")?;
                let url: String = line[start..]
                    .chars()
                    .take_while(|c| !c.is_whitespace() && *c != '"' && *c != ')')
                    .collect();
                Some(url)
            });
            if let Some(url) = found {
                break url;
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!("kai serve exited with {status}: {:?}", log.lock().unwrap());
            }
            assert!(
                Instant::now() < deadline,
                "kai serve did not start: {:?}",
                log.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        Server { child, base, log }
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Logs `username` in and creates an API key with `scopes` for it; returns the key.
    pub async fn api_key(&self, username: &str, scopes: &[&str]) -> String {
        let client = reqwest::Client::new();
        let login = client
            .post(format!("{}/api/v1/auth/login", self.base))
            .json(&serde_json::json!({"username": username, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(login.status(), 200, "login: {}", self.log_text());
        let tokens: Value = login.json().await.unwrap();
        let created = client
            .post(format!("{}/api/v1/keys", self.base))
            .bearer_auth(tokens["access_token"].as_str().unwrap())
            .json(&serde_json::json!({"name": format!("{scopes:?}"), "scopes": scopes}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201, "create key: {}", self.log_text());
        let created: Value = created.json().await.unwrap();
        created["key"].as_str().unwrap().to_owned()
    }

    /// Kills the process with SIGKILL, as a crash or an out-of-memory kill would, and waits
    /// until it is gone.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "kai serve ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        };
        // Let the reader thread drain the last lines.
        std::thread::sleep(Duration::from_millis(100));
        (status, self.log_text())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}
