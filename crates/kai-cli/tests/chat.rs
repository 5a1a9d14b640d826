//! `kai login`, `kai chat` and `kai logout` as a person runs them: the real binary against a
//! real `kai serve`, whose only model provider is a loopback mock of an OpenAI-compatible API.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;

use kai_providers::testing::{MockUpstream, Reply, StreamEnd};
use serde_json::{Value, json};
use support::{Kai, PASSWORD, Server, assert_one_line_failure, stderr, stdout};

const CHAT: &str = "/v1/chat/completions";

fn chunk(delta: Value, finish: Value) -> String {
    json!({"id": "up-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
           "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    .to_string()
}

/// An upstream answer streamed as `pieces`, cut every few bytes (through JSON, lines and
/// multi-byte characters alike).
fn streamed(pieces: &[&str]) -> Reply {
    let mut data = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    data.extend(
        pieces
            .iter()
            .map(|piece| chunk(json!({"content": piece}), Value::Null)),
    );
    data.push(chunk(json!({}), json!("stop")));
    data.push("[DONE]".into());
    let data: Vec<&str> = data.iter().map(String::as_str).collect();
    Reply::sse(&data).split(5)
}

fn completion(text: &str) -> Reply {
    Reply::json(
        200,
        json!({"id": "up-1", "object": "chat.completion", "created": 1, "model": "m",
               "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
               "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}}),
    )
}

/// A configuration with two models on the mock: `smart` (listed first) and `other`.
fn configure(kai: &Kai, upstream: &MockUpstream) {
    let dir = kai.home.path().join("config/kai");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("kai.toml"),
        format!(
            r#"
[gateway]
retry_base_delay = "5ms"

[[providers]]
name = "mock"
kind = "openai-compatible"
base_url = "{}"
stream_idle_timeout = "2s"

[[models]]
name = "smart"
deployments = [{{ provider = "mock", model = "model-a" }}]

[[models]]
name = "other"
deployments = [{{ provider = "mock", model = "model-b" }}]
"#,
            upstream.url("/v1")
        ),
    )
    .unwrap();
}

fn credentials_file(kai: &Kai) -> std::path::PathBuf {
    kai.home.path().join("config/kai/credentials.toml")
}

/// The id in "continue with: kai chat -c ID".
fn conversation_hint(err: &str) -> String {
    let (_, rest) = err
        .split_once("continue with: kai chat -c ")
        .unwrap_or_else(|| panic!("no hint in: {err}"));
    rest.split_whitespace().next().unwrap().to_owned()
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// One server for the whole story, since starting one takes a while.
#[tokio::test(flavor = "multi_thread")]
async fn log_in_chat_continue_list_and_log_out() {
    let kai = Kai::new().await;
    let upstream = MockUpstream::start().await;
    configure(&kai, &upstream);
    kai.create_admin("alice");
    let server = Server::start(&kai, &[]);
    let base = server.base.clone();

    // Not logged in yet.
    assert_one_line_failure(
        &kai.run(&["chat", "hello"]),
        &["not logged in", "kai login"],
    );

    // A wrong password, then the right one.
    assert_one_line_failure(
        &kai.run_with_stdin(&["login", "--url", &base, "alice"], "wrong password\n"),
        &["cannot log in", "invalid username or password"],
    );
    assert_one_line_failure(
        &kai.run_with_stdin(&["login", "--url", &base], &format!("{PASSWORD}\n")),
        &["kai login NAME"],
    );
    let out = kai.run_with_stdin(
        &["login", "--url", &base, "Alice"],
        &format!("{PASSWORD}\n"),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let said = stdout(&out);
    assert!(
        said.contains("logged in to") && said.contains(&base) && said.contains("as alice"),
        "{said}"
    );
    let file = credentials_file(&kai);
    assert_eq!(mode(&file), 0o600);
    let stored: toml::Table = std::fs::read_to_string(&file).unwrap().parse().unwrap();
    let key = stored["api_key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("kai_"), "{stored:?}");
    assert_eq!(
        stored["url"].as_str().unwrap().trim_end_matches('/'),
        base.as_str()
    );
    let key_id = stored["key_id"].as_str().unwrap().to_owned();
    // The key is the CLI's own, named after the machine, and the password session is over.
    let keys: Value = reqwest::Client::new()
        .get(format!("{base}/api/v1/keys"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(keys[0]["id"], key_id.as_str());
    assert!(
        keys[0]["name"].as_str().unwrap().starts_with("kai CLI on "),
        "{keys}"
    );
    assert_eq!(keys[0]["scopes"], json!(["read", "write"]));

    // A question: the answer streams out whole, multi-byte characters and all, though the
    // upstream cut it at awkward places.
    upstream.push(
        CHAT,
        streamed(&["Grüße aus ", "Köln 🌍", "! Die Antwort ist 42."]),
    );
    let out = kai.run(&["chat", "What", "is", "the", "answer?"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "Grüße aus Köln 🌍! Die Antwort ist 42.\n");
    let err = stderr(&out);
    assert!(
        err.contains("asking smart") && err.contains("--model"),
        "{err}"
    );
    let first = conversation_hint(&err);
    let sent = upstream.last_request().json;
    assert_eq!(sent["model"], "model-a");
    assert_eq!(sent["stream"], true);
    assert_eq!(
        sent["messages"],
        json!([{"role": "user", "content": "What is the answer?"}])
    );

    // Continuing it sends the whole history.
    upstream.push(CHAT, streamed(&["Still 42."]));
    let out = kai.run(&["chat", "-c", &first, "Are you sure?"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "Still 42.\n");
    let sent = upstream.last_request().json;
    let history = sent["messages"].as_array().unwrap();
    assert_eq!(history.len(), 3, "{sent}");
    assert_eq!(history[1]["role"], "assistant");
    assert_eq!(
        history[1]["content"],
        "Grüße aus Köln 🌍! Die Antwort ist 42."
    );
    assert_eq!(history[2]["content"], "Are you sure?");

    // A second conversation, on the other model, from stdin, with a title.
    upstream.push(CHAT, streamed(&["Blue."]));
    let out = kai.run_with_stdin(
        &["chat", "-m", "other", "--title", "Colours"],
        "What colour is the sky?\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "Blue.\n");
    let second = conversation_hint(&stderr(&out));
    assert_ne!(first, second);
    let sent = upstream.last_request().json;
    assert_eq!(sent["model"], "model-b");
    assert_eq!(sent["messages"][0]["content"], "What colour is the sky?");

    // --continue picks the latest, and keeps its model.
    upstream.push(CHAT, streamed(&["Grey, at night."]));
    let out = kai.run(&["chat", "--continue", "And at night?"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(conversation_hint(&stderr(&out)), second);
    let sent = upstream.last_request().json;
    assert_eq!(sent["model"], "model-b");
    assert_eq!(sent["messages"].as_array().unwrap().len(), 3);

    // --json prints the stored reply.
    upstream.push(CHAT, completion("Yes, 42."));
    let out = kai.run(&["chat", "--json", "-c", &first, "Really?"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let reply: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reply["conversation_id"], first.as_str());
    assert_eq!(reply["message"]["role"], "assistant");
    assert_eq!(reply["message"]["content"], "Yes, 42.");
    assert_eq!(reply["message"]["seq"], 6);
    assert_ne!(upstream.last_request().json["stream"], true);

    // The list, most recently active first.
    let out = kai.run(&["chat", "--list", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["id"], first.as_str());
    assert_eq!(list[0]["message_count"], 6);
    assert_eq!(list[0]["model"], "smart");
    assert_eq!(list[0]["title"], "What is the answer?");
    assert_eq!(list[1]["title"], "Colours");
    let out = kai.run(&["chat", "--list"]);
    let text = stdout(&out);
    assert!(text.starts_with("ID"), "{text}");
    assert!(text.contains(&second) && text.contains("Colours"), "{text}");

    // Errors: the server's own words, one line each.
    assert_one_line_failure(
        &kai.run(&["chat", "-m", "nonexistent", "hi"]),
        &["no model named `nonexistent`"],
    );
    assert_one_line_failure(
        &kai.run(&["chat", "-c", "0192f1c4-0000-7000-8000-000000000000", "hi"]),
        &["conversation not found"],
    );
    let out = kai.run(&["chat", "-c", "nonsense", "hi"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("nonsense"));

    // An upstream that breaks off mid-answer: what came is shown, then the failure.
    let broken: Vec<String> = vec![
        chunk(json!({"role": "assistant", "content": ""}), Value::Null),
        chunk(json!({"content": "The first half"}), Value::Null),
    ];
    let broken: Vec<&str> = broken.iter().map(String::as_str).collect();
    upstream.push(CHAT, Reply::sse(&broken).then(StreamEnd::Reset));
    let out = kai.run(&["chat", "-c", &first, "Tell me a long story"]);
    assert_one_line_failure(&out, &["broke off"]);
    assert_eq!(stdout(&out), "The first half\n");

    // A key from the environment works without the file.
    let elsewhere = tempfile::tempdir().unwrap();
    upstream.push(CHAT, streamed(&["From a script."]));
    let out = kai
        .command(&["chat", "--url", &base, "-c", &first, "scripted"])
        .env("XDG_CONFIG_HOME", elsewhere.path())
        .env("HOME", elsewhere.path())
        .env("KAI_CLIENT_API_KEY", &key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "From a script.\n");

    // Logging out revokes the key and forgets it.
    let out = kai.run(&["logout"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("logged out"), "{}", stdout(&out));
    assert!(!file.exists());
    let out = kai
        .command(&["chat", "--url", &base, "hello"])
        .env("KAI_CLIENT_API_KEY", &key)
        .output()
        .unwrap();
    assert_one_line_failure(&out, &["refused the API key", "revoked", "kai login"]);
    assert_one_line_failure(&kai.run(&["chat", "hello"]), &["not logged in"]);
    // Logging out twice is no error.
    assert!(kai.run(&["logout"]).status.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_is_not_there_is_named() {
    let kai = Kai::new().await;
    let out = kai
        .command(&["chat", "--url", "http://127.0.0.1:1", "hello"])
        .env("KAI_CLIENT_API_KEY", "kai_not-a-real-key")
        .output()
        .unwrap();
    assert_one_line_failure(&out, &["http://127.0.0.1:1", "kai serve"]);
    assert!(!stderr(&out).contains("kai_not-a-real-key"));

    // Logging out when the server is gone still forgets the key, with a warning.
    let dir = kai.home.path().join("config/kai");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("credentials.toml"),
        "url = \"http://127.0.0.1:1\"\napi_key = \"kai_gone\"\nkey_id = \"0192f1c4-0000-7000-8000-000000000000\"\n",
    )
    .unwrap();
    let out = kai.run(&["logout"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("cannot revoke the API key"), "{err}");
    // The file was written by hand, readable by all: that is worth a word too.
    assert!(err.contains("chmod 600"), "{err}");
    assert!(!dir.join("credentials.toml").exists());

    // A URL that is not one is refused before anything is sent.
    assert_one_line_failure(
        &kai.run(&["chat", "--url", "localhost:8420", "hello"]),
        &["client.url", "--url"],
    );
}

#[tokio::test]
async fn a_whole_answer_the_client_gave_up_on_is_logged_as_cancelled() {
    let kai = Kai::new().await;
    let upstream = MockUpstream::start().await;
    configure(&kai, &upstream);
    kai.create_admin("alice");
    upstream.push(
        "/v1/chat/completions",
        completion("late").after(std::time::Duration::from_secs(30)),
    );
    let server = Server::start(&kai, &[]);
    let key = server.api_key("alice", &["write"]).await;
    let request = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", server.base))
        .bearer_auth(&key)
        .json(&json!({"model": "smart", "messages": [{"role": "user", "content": "Hi"}]}))
        .send();
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(300), request)
            .await
            .is_err()
    );
    let mut log = String::new();
    for _ in 0..100 {
        log = server.log_text();
        if log.contains("request cancelled") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let line = log
        .lines()
        .find(|line| line.contains("request cancelled"))
        .unwrap_or_else(|| panic!("no line for the cancelled request: {log}"));
    assert!(line.contains("/v1/chat/completions"), "{line}");
    server.terminate();
}

// Multi-threaded: the mock upstream answers while the test waits on `kai`.
#[tokio::test(flavor = "multi_thread")]
async fn a_chat_answered_from_knowledge_lists_its_sources() {
    let kai = Kai::new().await;
    let upstream = MockUpstream::start().await;
    configure(&kai, &upstream);
    kai.create_admin("alice");
    let server = Server::start(&kai, &[]);
    let key = server.api_key("alice", &["read", "write"]).await;
    let as_alice = |args: &[&str]| {
        let mut command = kai.command(args);
        command
            .env("KAI_CLIENT_URL", &server.base)
            .env("KAI_CLIENT_API_KEY", &key);
        command.output().unwrap()
    };
    let docs = tempfile::tempdir().unwrap();
    let bread = docs.path().join("bread.txt");
    std::fs::write(
        &bread,
        "Knead the dough for ten minutes, then let it rise until it doubles.",
    )
    .unwrap();
    let out = as_alice(&["artifact", "add", bread.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    // No embedding model here: the text becomes searchable by its words.
    for _ in 0..200 {
        let out = as_alice(&["knowledge", "status", "--json"]);
        let status: Value = serde_json::from_slice(&out.stdout).unwrap();
        if status["pending"] == 0 && status["keyword_only"] == 1 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    upstream.push(CHAT, streamed(&["Ten minutes [1]."]));
    let out = as_alice(&["chat", "--knowledge", "How long do I knead the dough?"]);
    assert!(
        out.status.success(),
        "{}\n{}",
        stderr(&out),
        server.log_text()
    );
    assert_eq!(stdout(&out), "Ten minutes [1].\n");
    assert!(
        stderr(&out).contains("[1] bread.txt (version 1)"),
        "{}",
        stderr(&out)
    );
    // The model was given the passage, numbered.
    let sent = upstream.last_request().json.to_string();
    assert!(sent.contains("Knead the dough for ten minutes"), "{sent}");

    // Nothing found: said so.
    upstream.push(CHAT, streamed(&["No idea."]));
    let out = as_alice(&["chat", "-k", "zeppelins"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("nothing in your knowledge matched"),
        "{}",
        stderr(&out)
    );
    // A collection that does not exist is named.
    let out = as_alice(&["chat", "--collection", "nosuch", "hello"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("nosuch"), "{}", stderr(&out));
    server.terminate();
}
