//! The HTTP API keeps to its own OpenAPI document, as a client generator would rely on it:
//! schemathesis, a property-based API fuzzer, drives the real `kai serve` from `/openapi.json`
//! (thousands of requests, valid and invalid, then sequences that follow the document's
//! links) and fails on any 5xx, any status the document does not list for the operation, any
//! answer that breaks its schema, and any request outside the schema that is accepted.
//!
//! Its settings are in `tests/python/schemathesis.toml`; the interpreter is `KAI_TEST_PYTHON`
//! (default `python3`), which `scripts/test` points at a virtualenv with the pinned package.
//! Every request kai would send out (to a provider the fuzzer defines, to a package index) is
//! sent to a proxy on a closed loopback port, so the run never leaves the machine and never
//! waits on a timeout.

#![allow(clippy::unwrap_used)]

mod support;

use std::process::{Command, Stdio};

use serde_json::{Value, json};
use support::{Kai, PASSWORD, Server};

const CONFIG: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/python/schemathesis.toml"
);
const REQUIREMENTS: &str = "tests/python/requirements.txt";

/// The interpreter, after checking that it has schemathesis: a missing package fails the test
/// rather than skipping it.
fn python() -> String {
    let python = std::env::var("KAI_TEST_PYTHON")
        .ok()
        .filter(|python| !python.is_empty())
        .unwrap_or_else(|| "python3".to_owned());
    let probe = Command::new(&python)
        .args(["-c", "import schemathesis"])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|err| panic!("cannot run {python}: {err}"));
    assert!(
        probe.status.success(),
        "{python} cannot import schemathesis: {}\nrun the suite through scripts/test, which \
         installs it in a virtualenv and sets KAI_TEST_PYTHON, or run `{python} -m pip install \
         -r {REQUIREMENTS}`",
        String::from_utf8_lossy(&probe.stderr).trim()
    );
    python
}

async fn post(base: &str, path: &str, token: &str, body: Value) -> Value {
    let response = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert!(status.is_success(), "POST {path}: {status} {body}");
    body
}

/// Runs schemathesis's command line. First it stops hypothesis from parsing its own sources to
/// name the filters it builds: on Python 3.11 before 3.11.5 (Debian 12's 3.11.2), `ast.parse`
/// deep inside its generators fails with "AST constructor recursion depth mismatch" (CPython
/// gh-106905), which schemathesis reports as an error of whichever operation it was covering.
/// The names only label strategies in hypothesis's own messages.
const LAUNCHER: &str = "import sys\n\
import hypothesis.internal.reflection as reflection\n\
import hypothesis.strategies._internal.lazy as lazy\n\
describe = lambda function: getattr(function, '__qualname__', None) or repr(function)\n\
reflection.get_pretty_function_description = describe\n\
lazy.get_pretty_function_description = describe\n\
from schemathesis.cli import schemathesis\n\
sys.argv[0] = 'schemathesis'\n\
sys.exit(schemathesis())\n";

#[tokio::test]
async fn the_api_keeps_to_its_openapi_document() {
    let python = python();
    let kai = Kai::new().await;
    kai.create_admin("alice");
    // A vault unlocked by a key file at start, so that the secrets routes can be exercised.
    let key_file = kai.home.path().join("vault.key");
    let out = kai.run(&[
        "vault",
        "init",
        "--no-passphrase",
        "--key-file",
        key_file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", support::stderr(&out));

    let mut command = kai.command(&["serve", "--bind", "127.0.0.1:0"]);
    command
        .env("KAI_VAULT_KEY_FILE", &key_file)
        .env("KAI_LOCAL_ENABLED", "false");
    for proxy in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"] {
        command.env(proxy, "http://127.0.0.1:9");
    }
    let server = Server::spawn(command);
    let base = server.base.clone();

    let login = reqwest::Client::new()
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": "alice", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let session = login.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let all_scopes = json!({"name": "fuzz", "scopes": ["read", "write", "admin"]});
    let key = post(&base, "/api/v1/keys", &session, all_scopes).await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let spare = json!({"name": "spare", "scopes": ["read"]});
    let spare_key = post(&base, "/api/v1/keys", &session, spare).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let bob = json!({"username": "bob", "password": "bob-password-1"});
    let user = post(&base, "/api/v1/users", &key, bob).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A provider and a model on it, so that the catalog's views have something to show.
    let provider = json!({"name": "upstream", "kind": "openai-compatible",
                          "base_url": "http://127.0.0.1:9/v1"});
    post(&base, "/api/v1/providers", &key, provider).await;
    let model = json!({"name": "smart", "deployments": [{"provider": "upstream", "model": "m"}]});
    post(&base, "/api/v1/models", &key, model).await;

    let reports = tempfile::tempdir().unwrap();
    let run = Command::new(&python)
        .args([
            "-c",
            LAUNCHER,
            "--config-file",
            CONFIG,
            "run",
            &format!("{base}/openapi.json"),
            "--report",
            "junit",
            "--report-dir",
            reports.path().to_str().unwrap(),
            "--no-color",
        ])
        .env("KAI_FUZZ_KEY", &key)
        .env("KAI_FUZZ_SESSION", &session)
        .env("KAI_FUZZ_USER", &user)
        .env("KAI_FUZZ_SPARE_KEY", &spare_key)
        .env("NO_COLOR", "1")
        // schemathesis keeps a cache in its working directory: not in the source tree.
        .current_dir(reports.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    let (status, log) = server.terminate();
    assert!(
        run.status.success(),
        "schemathesis found the API breaking its own document:\n{stdout}\n{}\n\
         kai serve ({status}):\n{}",
        String::from_utf8_lossy(&run.stderr),
        log.lines().rev().take(40).collect::<Vec<_>>().join("\n")
    );
    assert!(
        stdout.contains("Tested:"),
        "schemathesis tested nothing:\n{stdout}"
    );
}
