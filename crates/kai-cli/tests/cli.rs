//! The real `kai` binary: its commands, its configuration errors, and a running server's
//! behaviour as a process (locking, logging, signals).

#![allow(clippy::unwrap_used)]

mod support;

use std::process::Command;

use serde_json::Value;
use support::{Kai, PASSWORD, Server, assert_one_line_failure, stderr, stdout};

#[tokio::test]
async fn every_command_has_help_and_a_version() {
    let kai = Kai::new().await;
    let version = kai.run(&["--version"]);
    assert!(version.status.success());
    assert_eq!(
        stdout(&version).trim(),
        format!("kai {}", env!("CARGO_PKG_VERSION"))
    );
    for command in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["config", "--help"],
        vec!["config", "show", "--help"],
        vec!["user", "--help"],
        vec!["user", "create", "--help"],
        vec!["user", "list", "--help"],
        vec!["user", "passwd", "--help"],
        vec!["user", "delete", "--help"],
        vec!["openapi", "--help"],
        vec!["login", "--help"],
        vec!["logout", "--help"],
        vec!["chat", "--help"],
        vec!["models", "--help"],
        vec!["models", "pull", "--help"],
        vec!["models", "list", "--help"],
        vec!["models", "rm", "--help"],
        vec!["models", "verify", "--help"],
    ] {
        let out = kai.run(&command);
        assert!(out.status.success(), "{command:?}: {}", stderr(&out));
        assert!(stdout(&out).contains("Usage: kai"), "{command:?}");
    }
    let out = kai.run(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test]
async fn config_show_prints_effective_settings_with_secrets_redacted() {
    let kai = Kai::new().await;
    let out = kai
        .command(&["config", "show"])
        .env_remove("KAI_DATA_DIR")
        .env("KAI_DATABASE_URL", "postgres://kai:hunter2@db.example/kai")
        .env(
            "KAI_AUTH_TOKEN_SECRET",
            "a-token-secret-of-more-than-32-bytes",
        )
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("bind = \"127.0.0.1:8420\""), "{text}");
    let default_data = kai.home.path().join("data/kai");
    assert!(
        text.contains(&format!("data_dir = \"{}\"", default_data.display())),
        "{text}"
    );
    assert!(
        text.contains("postgres://kai:<redacted>@db.example/kai"),
        "{text}"
    );
    assert!(
        !text.contains("hunter2") && !text.contains("a-token-secret"),
        "{text}"
    );

    let out = kai
        .command(&["config", "show", "--json"])
        .env("KAI_HTTP_REQUEST_TIMEOUT", "45s")
        .output()
        .unwrap();
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["http"]["request_timeout"], "45s");
    assert_eq!(json["auth"]["access_token_ttl"], "15m");
}

#[tokio::test]
async fn the_configuration_file_is_found_and_checked() {
    let kai = Kai::new().await;
    let config_dir = kai.home.path().join("config/kai");
    std::fs::create_dir_all(&config_dir).unwrap();
    std::fs::write(config_dir.join("kai.toml"), "bind = \"127.0.0.1:9999\"\n").unwrap();
    let out = kai.run(&["config", "show"]);
    assert!(stdout(&out).contains("127.0.0.1:9999"), "{}", stdout(&out));
    assert!(stdout(&out).contains("kai.toml"));

    std::fs::write(
        config_dir.join("kai.toml"),
        "[http]\nmax_bdy_size = \"1 MiB\"\n",
    )
    .unwrap();
    assert_one_line_failure(
        &kai.run(&["serve"]),
        &["`http.max_bdy_size`", "kai.toml", "http.max_body_size"],
    );

    std::fs::write(
        config_dir.join("kai.toml"),
        "[database]\nmax_connections = \"lots\"\n",
    )
    .unwrap();
    assert_one_line_failure(
        &kai.run(&["serve"]),
        &["`database.max_connections`", "kai.toml"],
    );

    std::fs::write(config_dir.join("kai.toml"), "bind = [\n").unwrap();
    assert_one_line_failure(
        &kai.run(&["config", "show"]),
        &["kai.toml:", "invalid TOML"],
    );

    let explicit = kai.run(&["--config", "/nonexistent/kai.toml", "config", "show"]);
    assert_one_line_failure(&explicit, &["/nonexistent/kai.toml"]);
}

#[tokio::test]
async fn bad_variables_are_refused_with_one_line() {
    let kai = Kai::new().await;
    let out = kai
        .command(&["serve"])
        .env("KAI_BND", "127.0.0.1:1")
        .output()
        .unwrap();
    assert_one_line_failure(&out, &["KAI_BND", "KAI_BIND"]);
    let out = kai
        .command(&["serve"])
        .env("KAI_BIND", "not-an-address")
        .output()
        .unwrap();
    assert_one_line_failure(&out, &["`bind`", "KAI_BIND"]);
    let out = kai
        .command(&["serve"])
        .env("KAI_LOG_LEVEL", "loud=[")
        .output()
        .unwrap();
    assert_one_line_failure(&out, &["log.level"]);
}

#[tokio::test]
async fn an_unreachable_database_is_named_with_its_password_redacted() {
    let kai = Kai::new().await;
    for command in [&["serve"][..], &["user", "list"][..]] {
        let out = kai
            .command(command)
            .env("KAI_DATABASE_URL", "postgres://kai:hunter2@127.0.0.1:1/kai")
            .output()
            .unwrap();
        assert_one_line_failure(
            &out,
            &[
                "cannot connect to database",
                "postgres://kai:<redacted>@127.0.0.1:1/kai",
            ],
        );
        assert!(!stderr(&out).contains("hunter2"));
    }
}

#[tokio::test]
async fn users_are_managed_from_the_command_line() {
    let kai = Kai::new().await;
    kai.create_admin("Alice");
    let out = kai.run_with_stdin(
        &["user", "create", "bob", "--json"],
        &format!("{PASSWORD}\n"),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let bob: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(bob["username"], "bob");
    assert_eq!(bob["role"], "user");

    let list = kai.run(&["user", "list"]);
    let text = stdout(&list);
    assert!(text.starts_with("USERNAME"), "{text}");
    assert!(
        text.contains("alice") && text.contains("admin") && text.contains("bob"),
        "{text}"
    );
    let list: Value = serde_json::from_slice(&kai.run(&["user", "list", "--json"]).stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);

    assert_one_line_failure(
        &kai.run_with_stdin(&["user", "create", "bob"], &format!("{PASSWORD}\n")),
        &["already exists"],
    );
    assert_one_line_failure(
        &kai.run_with_stdin(&["user", "create", "carol"], "short\n"),
        &["password", "8 characters"],
    );
    assert_one_line_failure(
        &kai.run_with_stdin(&["user", "create", "carol"], ""),
        &["no password"],
    );
    assert_one_line_failure(
        &kai.run_with_stdin(&["user", "create", "no way"], "whatever123\n"),
        &["username"],
    );

    let out = kai.run_with_stdin(&["user", "passwd", "bob"], "a brand new password\n");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_one_line_failure(
        &kai.run(&["user", "delete", "alice"]),
        &["last enabled admin"],
    );
    assert!(kai.run(&["user", "delete", "bob"]).status.success());
    assert_one_line_failure(&kai.run(&["user", "delete", "bob"]), &["user not found"]);
}

#[tokio::test]
async fn openapi_prints_the_document() {
    let kai = Kai::new().await;
    let out = kai.run(&["openapi"]);
    assert!(out.status.success());
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(doc["paths"]["/api/v1/me"].is_object());
}

#[tokio::test]
async fn serve_explains_the_first_step_serves_and_stops_on_sigterm() {
    let kai = Kai::new().await;
    let server = Server::start(&kai, &[]);
    let health = reqwest::get(format!("{}/healthz", server.base))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert!(
        server.log_text().contains("kai user create --admin NAME"),
        "{}",
        server.log_text()
    );
    let (status, log) = server.terminate();
    assert!(status.success(), "{status}: {log}");
    assert!(
        log.contains("received SIGTERM") && log.contains("stopped"),
        "{log}"
    );
}

#[tokio::test]
async fn a_second_server_on_the_same_sqlite_data_is_refused() {
    let kai = Kai::new().await;
    if kai.db.url().kind() != kai_config::DatabaseKind::Sqlite {
        return; // The lock guards SQLite data directories; PostgreSQL servers may run side by side.
    }
    let first = Server::start(&kai, &[]);
    let second = kai.run(&["serve", "--bind", "127.0.0.1:0"]);
    assert_one_line_failure(
        &second,
        &[
            "another kai server",
            &kai.data_dir().display().to_string(),
            "pid",
        ],
    );
    // The first one is unharmed.
    let health = reqwest::get(format!("{}/readyz", first.base))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let (status, _) = first.terminate();
    assert!(status.success());
    // Once it has stopped, the data directory is free again.
    let again = Server::start(&kai, &[]);
    again.terminate();
}

#[tokio::test]
async fn two_data_directories_sharing_one_sqlite_file_are_refused() {
    let kai = Kai::new().await;
    if kai.db.url().kind() != kai_config::DatabaseKind::Sqlite {
        return; // PostgreSQL servers may share a database.
    }
    let first = Server::start(&kai, &[]);
    let other_data = kai.home.path().join("other-data");
    let second = kai
        .command(&["serve", "--bind", "127.0.0.1:0"])
        .env("KAI_DATA_DIR", &other_data)
        .output()
        .unwrap();
    assert_one_line_failure(
        &second,
        &[
            "another kai server is already using the database",
            "pid",
            "KAI_DATABASE_URL",
        ],
    );
    let (status, _) = first.terminate();
    assert!(status.success());
}

#[tokio::test]
async fn a_data_directory_that_is_a_file_and_a_missing_config_are_named_once() {
    let kai = Kai::new().await;
    let file = kai.home.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let out = kai
        .command(&["serve", "--bind", "127.0.0.1:0"])
        .env("KAI_DATA_DIR", &file)
        .env(
            "KAI_DATABASE_URL",
            format!("sqlite://{}/kai.db", file.display()),
        )
        .output()
        .unwrap();
    assert_one_line_failure(&out, &["not-a-dir", "it is a file, not a directory"]);

    let missing = kai.home.path().join("absent.toml");
    let out = kai.run(&["--config", missing.to_str().unwrap(), "user", "list"]);
    assert_one_line_failure(&out, &["absent.toml"]);
    let line = stderr(&out);
    assert_eq!(
        line.matches("No such file or directory").count(),
        1,
        "{line}"
    );
}

#[tokio::test]
async fn json_logs_never_contain_secrets() {
    let kai = Kai::new().await;
    kai.create_admin("alice");
    let server = Server::start(&kai, &["--log-format", "json", "--log-level", "trace"]);
    let client = reqwest::Client::new();
    let tokens: Value = client
        .post(format!("{}/api/v1/auth/login", server.base))
        .json(&serde_json::json!({"username": "alice", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let created: Value = client
        .post(format!("{}/api/v1/keys", server.base))
        .bearer_auth(&access)
        .json(&serde_json::json!({"name": "k", "scopes": ["read"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = created["key"].as_str().unwrap().to_owned();
    client
        .get(format!("{}/api/v1/me", server.base))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    client
        .post(format!("{}/api/v1/auth/refresh", server.base))
        .json(&serde_json::json!({"refresh_token": refresh}))
        .send()
        .await
        .unwrap();
    // The vault: its passphrase (right and wrong) and a secret's value, written and read.
    let vault_passphrase = "a vault passphrase nobody logs";
    let vault_value = "sk-vault-value-never-logged";
    for (path, body) in [
        (
            "/api/v1/vault/init",
            serde_json::json!({"passphrase": vault_passphrase}),
        ),
        (
            "/api/v1/vault/unlock",
            serde_json::json!({"passphrase": "a wrong vault passphrase"}),
        ),
    ] {
        client
            .post(format!("{}{path}", server.base))
            .bearer_auth(&access)
            .json(&body)
            .send()
            .await
            .unwrap();
    }
    client
        .put(format!("{}/api/v1/secrets/token", server.base))
        .bearer_auth(&access)
        .json(&serde_json::json!({"value": vault_value}))
        .send()
        .await
        .unwrap();
    let read = client
        .get(format!("{}/api/v1/secrets/token", server.base))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(read.contains(vault_value), "{read}");
    let (_, log) = server.terminate();

    assert!(log.lines().count() > 5, "{log}");
    for line in log.lines() {
        let parsed: Result<Value, _> = serde_json::from_str(line);
        assert!(parsed.is_ok(), "not JSON: {line}");
    }
    assert!(log.contains("\"request_id\""), "{log}");
    for secret in [
        PASSWORD,
        &access,
        &refresh,
        &key,
        vault_passphrase,
        "a wrong vault passphrase",
        vault_value,
    ] {
        assert!(!log.contains(secret), "a secret reached the log: {secret}");
    }
    // Not even recognisable fragments of them.
    assert!(!log.contains(&key[4..20]) && !log.contains(&refresh[6..20]));
}

#[tokio::test]
async fn a_database_this_user_cannot_write_is_named_with_who_needs_access() {
    use std::os::unix::fs::PermissionsExt;

    let kai = Kai::new().await;
    if kai.db.url().kind() != kai_config::DatabaseKind::Sqlite {
        return; // PostgreSQL's permissions are its own.
    }
    // A directory every user can enter, holding a database made by this one.
    let dir = tempfile::Builder::new()
        .prefix("kai-readonly")
        .tempdir_in(std::env::temp_dir())
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = dir.path().join("data");
    let url = format!("sqlite://{}/kai.db", data.display());
    let kai_at = |program: &str, args: &[&str]| {
        let mut command = Command::new(program);
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", dir.path())
            .env("USER", "kai-test-user")
            .env("KAI_DATA_DIR", &data)
            .env("KAI_DATABASE_URL", &url);
        command
    };
    let kai_bin = env!("CARGO_BIN_EXE_kai");
    let made = kai_at(kai_bin, &["user", "list"]).output().unwrap();
    assert!(made.status.success(), "{}", stderr(&made));
    // Root may write anything: it runs kai as `nobody`, to whom the files are read-only.
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0");
    let out = if root {
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(data.join("kai.db"), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        // A copy `nobody` can run: the build directory may be under root's home.
        let copy = dir.path().join("kai");
        std::fs::copy(kai_bin, &copy).unwrap();
        let copy = copy.to_str().unwrap();
        let args = [
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--",
            copy,
            "user",
            "list",
        ];
        kai_at("setpriv", &args).output().unwrap()
    } else {
        std::fs::set_permissions(data.join("kai.db"), std::fs::Permissions::from_mode(0o444))
            .unwrap();
        kai_at(kai_bin, &["user", "list"]).output().unwrap()
    };
    // The files are readable by others (so that `nobody` can read them), which kai warns about
    // first; the error is the last line.
    assert!(!out.status.success());
    let text = stderr(&out);
    let error = text.lines().last().unwrap_or_default();
    for needle in ["kai.db", "is not writable", "kai-test-user", "write access"] {
        assert!(error.contains(needle), "{needle}: {text}");
    }
    let listed = std::fs::read(data.join("kai.db")).unwrap();
    assert!(!listed.is_empty(), "the database is untouched");
}
