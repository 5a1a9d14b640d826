//! Knowledge through the real binary: `kai artifact add` of a directory, background indexing
//! with the local embedding model, `kai search` by meaning, and a `kai serve` killed with
//! SIGKILL in the middle of indexing that finishes after a restart.
//!
//! The test of search by meaning needs the default models (`KAI_TEST_MODELS_DIR`, which
//! scripts/test sets up); without them it says so and passes without checking anything.

// A test skipped for want of the models says so on stderr.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Kai, Server, stderr, stdout};

fn models_dir() -> Option<PathBuf> {
    match std::env::var_os("KAI_TEST_MODELS_DIR") {
        Some(dir) if !dir.is_empty() && dir != "skip" => Some(PathBuf::from(dir)),
        _ => {
            eprintln!(
                "skipped: KAI_TEST_MODELS_DIR does not name a model store with minilm \
                 (scripts/test sets it up)"
            );
            None
        }
    }
}

/// `kai` as a client of `server`, with `key`.
fn client(kai: &Kai, server: &Server, key: &str, args: &[&str]) -> Command {
    let mut command = kai.command(args);
    command
        .env("KAI_CLIENT_URL", &server.base)
        .env("KAI_CLIENT_API_KEY", key);
    command
}

fn json(mut command: Command) -> Value {
    let out = command.output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap()
}

/// Waits until no version is pending.
fn settled(kai: &Kai, server: &Server, key: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let status = json(client(kai, server, key, &["knowledge", "status", "--json"]));
        if status["pending"] == 0 && status["jobs_running"] == 0 {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "indexing did not finish: {status}\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::create_dir_all(dir.join(name).parent().unwrap()).unwrap();
    std::fs::write(dir.join(name), text).unwrap();
}

#[tokio::test]
async fn a_directory_added_from_the_command_line_is_found_by_meaning() {
    let Some(models) = models_dir() else {
        return;
    };
    let kai = Kai::new().await;
    kai.create_admin("alice");
    let mut command = kai.command(&["serve", "--bind", "127.0.0.1:0"]);
    command.env("KAI_LOCAL_MODELS_DIR", &models);
    let server = Server::spawn(command);
    let key = server.api_key("alice", &["read", "write"]).await;

    let docs = tempfile::tempdir().unwrap();
    write(
        docs.path(),
        "garden.md",
        "# Vegetable garden\n\nTomatoes and peppers need six hours of sun and deep watering \
         twice a week. Mulch keeps the soil moist.\n",
    );
    write(
        docs.path(),
        "kitchen/bread.txt",
        "Knead the dough for ten minutes, then let it rise in a warm place until it doubles.",
    );
    write(
        docs.path(),
        "space.html",
        "<html><body><h1>Orbits</h1><p>A satellite in low Earth orbit circles the planet \
         every ninety minutes.</p><script>ignored()</script></body></html>",
    );
    write(docs.path(), ".hidden/secret.txt", "not uploaded");

    let added = json(client(
        &kai,
        &server,
        &key,
        &[
            "artifact",
            "add",
            "--tag",
            "notes",
            "--json",
            docs.path().to_str().unwrap(),
        ],
    ));
    assert_eq!(added.as_array().unwrap().len(), 3, "{added}");
    let status = settled(&kai, &server, &key);
    assert_eq!(status["indexed"], 3, "{status}");

    // By meaning: none of these words is in the garden note.
    let found = json(client(
        &kai,
        &server,
        &key,
        &[
            "search",
            "--mode",
            "semantic",
            "--json",
            "how",
            "do",
            "I",
            "grow",
            "vegetables",
        ],
    ));
    assert_eq!(found["hits"][0]["title"], "garden.md", "{found}");
    let found = json(client(
        &kai,
        &server,
        &key,
        &["search", "--json", "spacecraft going around the world"],
    ));
    assert_eq!(found["hits"][0]["title"], "space.html", "{found}");
    // Text output: the title and the passage, the match marked.
    let out = client(&kai, &server, &key, &["search", "knead"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("bread.txt"), "{text}");
    assert!(text.contains("**Knead**"), "{text}");
    // Filters by time, kind and type.
    let found = json(client(
        &kai,
        &server,
        &key,
        &[
            "search",
            "--json",
            "--since",
            "1d",
            "--until",
            "2999-01-01",
            "--kind",
            "artifact",
            "--type",
            "text/",
            "knead",
        ],
    ));
    assert_eq!(found["hits"][0]["title"], "bread.txt", "{found}");
    for filter in [
        ["--since", "2999-01-01"],
        ["--until", "2000-01-01T00:00:00Z"],
        ["--kind", "note"],
        ["--type", "application/pdf"],
    ] {
        let found = json(client(
            &kai,
            &server,
            &key,
            &["search", "--json", filter[0], filter[1], "knead"],
        ));
        assert_eq!(
            found["hits"],
            Value::Array(Vec::new()),
            "{filter:?}: {found}"
        );
    }

    // The content comes back as it went in; then it is deleted and gone from search.
    let bread = added
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["title"] == "bread.txt")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let copy = docs.path().join("copy.txt");
    let out = client(
        &kai,
        &server,
        &key,
        &["artifact", "get", &bread, "-o", copy.to_str().unwrap()],
    )
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(&copy).unwrap(),
        std::fs::read(docs.path().join("kitchen/bread.txt")).unwrap()
    );
    let out = client(&kai, &server, &key, &["artifact", "rm", &bread])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let found = json(client(
        &kai,
        &server,
        &key,
        &["search", "--mode", "keyword", "--json", "knead"],
    ));
    assert_eq!(found["hits"], Value::Array(Vec::new()));
}

#[tokio::test]
async fn indexing_cut_by_sigkill_finishes_after_a_restart() {
    let kai = Kai::new().await;
    kai.create_admin("alice");
    let serve = |kai: &Kai| {
        let mut command = kai.command(&["serve", "--bind", "127.0.0.1:0"]);
        // No embedding model: text ends searchable by keyword, which is what is checked here.
        command.env("KAI_LOCAL_ENABLED", "false");
        Server::spawn(command)
    };
    let server = serve(&kai);
    let key = server.api_key("alice", &["read", "write"]).await;
    let docs = tempfile::tempdir().unwrap();
    for n in 0..30 {
        let body: String = (0..40)
            .map(|line| format!("Document {n} line {line} mentions marker{n} and nothing else.\n"))
            .collect();
        write(docs.path(), &format!("doc{n:02}.txt"), &body);
    }
    let out = client(
        &kai,
        &server,
        &key,
        &["artifact", "add", docs.path().to_str().unwrap()],
    )
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // Killed at once, whatever indexing has done by now.
    server.kill();

    let server = serve(&kai);
    let status = settled(&kai, &server, &key);
    assert_eq!(status["keyword_only"], 30, "{status}");
    let listed = json(client(&kai, &server, &key, &["artifact", "list", "--json"]));
    for artifact in listed.as_array().unwrap() {
        let chunks = artifact["current"]["chunk_count"].as_u64().unwrap();
        assert!(chunks >= 1, "{artifact}");
    }
    for n in [0, 17, 29] {
        let found = json(client(
            &kai,
            &server,
            &key,
            &["search", "--json", &format!("marker{n}")],
        ));
        let hits = found["hits"].as_array().unwrap();
        assert!(!hits.is_empty(), "marker{n}: {found}");
        assert_eq!(hits[0]["title"], format!("doc{n:02}.txt"));
        // Chunks were not written twice: every hit is a different passage.
        let mut passages: Vec<&str> = hits
            .iter()
            .map(|h| h["passage"]["text"].as_str().unwrap())
            .collect();
        let before = passages.len();
        passages.dedup();
        assert_eq!(passages.len(), before, "{found}");
    }

    // Rebuilding the indexes needs the server stopped (it holds them), and loses nothing.
    let (status, _) = server.terminate();
    assert!(status.success());
    let out = kai.run(&["knowledge", "reindex"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let server = serve(&kai);
    let found = json(client(
        &kai,
        &server,
        &key,
        &["search", "--json", "marker17"],
    ));
    assert_eq!(found["hits"][0]["title"], "doc17.txt", "{found}");
}

#[tokio::test]
async fn bad_paths_and_a_missing_server_are_named() {
    let kai = Kai::new().await;
    let out = kai
        .command(&["artifact", "add", "/no/such/file"])
        .env("KAI_CLIENT_URL", "http://127.0.0.1:9")
        .env("KAI_CLIENT_API_KEY", "kai_x")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("/no/such/file"), "{}", stderr(&out));
    let out = kai
        .command(&["search", "anything"])
        .env("KAI_CLIENT_URL", "http://127.0.0.1:9")
        .env("KAI_CLIENT_API_KEY", "kai_x")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("cannot reach"), "{}", stderr(&out));
    let out = kai
        .command(&["search", "--since", "yesterday", "anything"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("is not a date"), "{}", stderr(&out));
}

#[tokio::test]
async fn notes_from_the_command_line_link_and_keep_their_links_through_a_rename() {
    let kai = Kai::new().await;
    kai.create_admin("alice");
    let mut command = kai.command(&["serve", "--bind", "127.0.0.1:0"]);
    command.env("KAI_LOCAL_ENABLED", "false");
    let server = Server::spawn(command);
    let key = server.api_key("alice", &["read", "write"]).await;
    let run = |args: &[&str], stdin: &str| {
        let out = support::output_with_stdin(client(&kai, &server, &key, args), stdin);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        stdout(&out)
    };

    run(&["note", "new", "Garden log"], "Aphids on the roses.\n");
    run(
        &["note", "new", "Plans", "--tag", "weekend"],
        "Weed first; see [[garden log]].\n",
    );
    let shown = run(&["note", "show", "Garden log"], "");
    assert!(shown.contains("Aphids on the roses."), "{shown}");
    assert!(
        shown.contains("Linked from:") && shown.contains("Plans"),
        "{shown}"
    );
    run(&["note", "rename", "Garden log", "Roses"], "");
    let plans = json(client(
        &kai,
        &server,
        &key,
        &["note", "show", "Plans", "--json"],
    ));
    assert_eq!(plans["links"][0]["title"], "Roses", "{plans}");

    // A template, filled in.
    let template = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(template.path(), "# {{ title }}\n\nMood: {{ mood }}\n").unwrap();
    run(
        &[
            "note",
            "new",
            "Daily",
            "--tag",
            "template",
            "--file",
            template.path().to_str().unwrap(),
        ],
        "",
    );
    run(
        &[
            "note",
            "new",
            "Monday",
            "--template",
            "daily",
            "--var",
            "mood=sunny",
        ],
        "",
    );
    let monday = run(&["note", "show", "Monday"], "");
    assert!(monday.contains("Mood: sunny"), "{monday}");
    let out = client(
        &kai,
        &server,
        &key,
        &["note", "new", "Tuesday", "--template", "Daily"],
    )
    .output()
    .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("mood"), "{}", stderr(&out));

    // Edited from stdin: a new version.
    run(&["note", "edit", "Roses"], "Ladybirds ate the aphids.\n");
    let roses = json(client(
        &kai,
        &server,
        &key,
        &["note", "show", "Roses", "--json"],
    ));
    assert_eq!(roses["version"], 3, "{roses}");
    let listed = run(&["note", "list", "--tag", "weekend"], "");
    assert!(
        listed.contains("Plans") && !listed.contains("Roses"),
        "{listed}"
    );
    run(&["note", "rm", "Plans"], "");
    let out = client(&kai, &server, &key, &["note", "show", "Plans"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no note titled `Plans`"),
        "{}",
        stderr(&out)
    );
}
