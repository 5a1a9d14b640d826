//! What kai-mcp's tests share: finding the npm reference servers and the Python SDK (skipping,
//! or failing under `KAI_TEST_REQUIRE_MCP=1`, when they are not installed), the test server,
//! free ports, and checks on processes.

#![allow(dead_code, reason = "each test file uses its own part of this")]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The npm packages the client tests run, as `scripts/mcp-test-deps` installs them.
const NPM_SERVERS: [&str; 3] = ["server-everything", "server-filesystem", "server-memory"];

const HOW: &str = "run scripts/mcp-test-deps and export what it prints";

/// Whether a missing dependency fails the test instead of skipping it (CI sets this, so that
/// a check nobody sees cannot silently stop running).
fn required() -> bool {
    std::env::var("KAI_TEST_REQUIRE_MCP").is_ok_and(|value| value == "1")
}

/// Skips (prints why, returns `None`) or, when required, fails.
fn missing<T>(why: String) -> Option<T> {
    assert!(!required(), "KAI_TEST_REQUIRE_MCP=1, but {why}; {HOW}");
    eprintln!("skipped: {why} ({HOW}, or set KAI_TEST_REQUIRE_MCP=1 to fail instead)");
    None
}

/// The directory the npm reference servers are installed in (`KAI_TEST_MCP_SERVERS`).
pub(crate) fn npm_servers() -> Option<NpmServers> {
    let dir = match std::env::var_os("KAI_TEST_MCP_SERVERS") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => return missing("KAI_TEST_MCP_SERVERS is not set".into()),
    };
    for package in NPM_SERVERS {
        let bin = dir.join("node_modules/.bin").join(format!("mcp-{package}"));
        if !bin.exists() {
            return missing(format!(
                "KAI_TEST_MCP_SERVERS={} has no {}",
                dir.display(),
                bin.display()
            ));
        }
    }
    Some(NpmServers { dir })
}

/// Where the npm reference servers are.
pub(crate) struct NpmServers {
    dir: PathBuf,
}

impl NpmServers {
    /// The program of `@modelcontextprotocol/{package}`, such as `server-memory`.
    pub(crate) fn bin(&self, package: &str) -> String {
        self.dir
            .join("node_modules/.bin")
            .join(format!("mcp-{package}"))
            .to_string_lossy()
            .into_owned()
    }
}

/// The Python interpreter with the MCP SDK (`KAI_TEST_MCP_PYTHON`), checked to import `mcp`.
pub(crate) fn python() -> Option<PathBuf> {
    let python = match std::env::var_os("KAI_TEST_MCP_PYTHON") {
        Some(python) if !python.is_empty() => PathBuf::from(python),
        _ => return missing("KAI_TEST_MCP_PYTHON is not set".into()),
    };
    let probe = Command::new(&python)
        .args(["-c", "import mcp"])
        .stdin(Stdio::null())
        .output();
    match probe {
        Ok(out) if out.status.success() => Some(python),
        Ok(out) => missing(format!(
            "KAI_TEST_MCP_PYTHON={} cannot import mcp: {}",
            python.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(err) => missing(format!(
            "KAI_TEST_MCP_PYTHON={} does not run: {err}",
            python.display()
        )),
    }
}

/// The stdio test server built from tests/support/test_server.rs.
pub(crate) fn test_server() -> &'static str {
    env!("CARGO_BIN_EXE_kai-mcp-test-server")
}

/// A loopback port nobody listens on (the kernel's choice; free again once this returns).
pub(crate) fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
    listener.local_addr().expect("its address").port()
}

/// Waits until something accepts connections on `port`.
pub(crate) async fn wait_for_port(port: u16, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "nothing listened on port {port} within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether process `pid` has ended (gone, or a zombie waiting to be reaped).
pub(crate) fn process_ended(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command's closing parenthesis.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => true,
    }
}

/// Waits until process `pid` has ended, failing after `within`.
pub(crate) async fn wait_until_ended(pid: u32, within: Duration) {
    let deadline = Instant::now() + within;
    while !process_ended(pid) {
        assert!(
            Instant::now() < deadline,
            "process {pid} still runs after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads the process id a test's shell wrote to `path`, waiting for it to appear.
pub(crate) async fn read_pid(path: &Path) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && let Ok(pid) = text.trim().parse()
        {
            return pid;
        }
        assert!(
            Instant::now() < deadline,
            "{} never held a pid",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
