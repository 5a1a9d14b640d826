//! The knowledge service end to end: uploads, background indexing through the job queue,
//! embeddings through the gateway (from a loopback OpenAI-compatible server whose vectors are
//! word counts, so that "meaning" is predictable), search, versions, deletion and recovery of
//! the indexes; on whichever database the environment selects.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use kai_config::{
    DatabaseKind, DeploymentSettings, Environment, Fusion, ModelSettings, ProviderKind,
    ProviderSettings, SearchIndex, Settings,
};
use kai_core::{Role, UserId};
use kai_gateway::Gateway;
use kai_jobs::{JobContext, KindSettings, Queue, Workers, WorkersHandle};
use kai_knowledge::chunk::TokenSizer;
use kai_knowledge::{
    ArtifactMeta, INDEX_JOB, Knowledge, KnowledgeError, SearchMode, SearchQuery, Upload,
};
use kai_store::testing::TestDatabase;
use kai_store::{IndexState, ItemFilter, NewUser, Store};
use serde_json::{Value, json};

const DIMENSIONS: usize = 64;

/// A word's place among the dimensions.
fn bucket(word: &str) -> usize {
    word.bytes()
        .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b))) as usize
        % DIMENSIONS
}

/// Word counts, hashed into `dimensions`: texts sharing words are near.
fn embed(text: &str, dimensions: usize) -> Vec<f32> {
    let mut vector = vec![0.0; dimensions];
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        vector[bucket(&word.to_lowercase()) % dimensions] += 1.0;
    }
    vector
}

/// The second model the gateway serves, for a change of embedding model: word counts in
/// fewer dimensions.
const SECOND_MODEL: &str = "word-counts-small";

#[derive(Clone, Default)]
struct Embedder {
    failing: Arc<AtomicBool>,
    /// Only the second model fails.
    second_failing: Arc<AtomicBool>,
}

async fn embeddings(State(embedder): State<Embedder>, Json(body): Json<Value>) -> Response {
    let second = body["model"] == SECOND_MODEL;
    if embedder.failing.load(Ordering::SeqCst)
        || second && embedder.second_failing.load(Ordering::SeqCst)
    {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error": {"message": "down for maintenance", "type": "server_error"}})),
        )
            .into_response();
    }
    let inputs: Vec<String> = match &body["input"] {
        Value::String(text) => vec![text.clone()],
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().unwrap_or_default().to_owned())
            .collect(),
        _ => Vec::new(),
    };
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, text)| {
            let dimensions = if second { DIMENSIONS / 2 } else { DIMENSIONS };
            json!({"object": "embedding", "index": index, "embedding": embed(text, dimensions)})
        })
        .collect();
    Json(json!({
        "object": "list",
        "data": data,
        "model": body["model"],
        "usage": {"prompt_tokens": 1, "total_tokens": 1}
    }))
    .into_response()
}

struct Harness {
    _db: TestDatabase,
    dir: tempfile::TempDir,
    store: Store,
    service: Option<Knowledge>,
    workers: Option<WorkersHandle>,
    embedder: Embedder,
    settings: Settings,
    gateway: Gateway,
    vault: kai_vault::Vault,
}

async fn user(store: &Store, name: &str) -> UserId {
    store
        .create_user(&NewUser {
            username: name.parse().unwrap(),
            password_hash: "x".into(),
            role: Role::User,
        })
        .await
        .unwrap()
        .id
}

fn start_workers(knowledge: &Knowledge, queue: Queue) -> WorkersHandle {
    let handler = knowledge.clone();
    Workers::new(queue)
        .poll_interval(Duration::from_millis(100))
        .handle(
            INDEX_JOB,
            KindSettings {
                concurrency: 2,
                ..KindSettings::default()
            },
            move |job: JobContext| {
                let knowledge = handler.clone();
                async move { knowledge.run_index_job(job).await }
            },
        )
        .start()
}

impl Harness {
    async fn new() -> Harness {
        Harness::with_index(SearchIndex::Auto).await
    }

    async fn with_index(search_index: SearchIndex) -> Harness {
        Harness::with(|settings| settings.knowledge.search_index = search_index).await
    }

    /// A harness whose settings `change` adjusts.
    async fn with(change: impl FnOnce(&mut Settings)) -> Harness {
        let db = TestDatabase::new().await;
        let store = db.store().await;
        let embedder = Embedder::default();
        let app = axum::Router::new()
            .route("/v1/embeddings", post(embeddings))
            .with_state(embedder.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });

        let dir = tempfile::tempdir().unwrap();
        let mut settings = Settings::defaults(dir.path().to_owned());
        let mut provider = ProviderSettings::new("words", ProviderKind::OpenaiCompatible);
        provider.base_url = Some(format!("http://{addr}/v1/").parse().unwrap());
        settings.providers.push(provider);
        for model in ["word-counts", SECOND_MODEL] {
            settings.models.push(ModelSettings::new(
                model,
                vec![DeploymentSettings::new("words", model)],
            ));
        }
        settings.gateway.retry_base_delay = Duration::from_millis(1);
        settings.gateway.retry_max_delay = Duration::from_millis(2);
        // An embedding model that fails is taken out of rotation only briefly, so that the
        // tests of recovery do not wait half a minute.
        settings.gateway.cooldown = Duration::from_millis(50);
        settings.knowledge.embedding_model = "word-counts".into();
        settings.knowledge.chunk_tokens = 32;
        settings.knowledge.chunk_overlap = 4;
        settings.knowledge.max_upload_size = bytesize::ByteSize::kib(64);
        change(&mut settings);
        let gateway = Gateway::new(store.clone(), &settings, Environment::default(), None, None)
            .await
            .unwrap();
        settings.vault.kdf_memory = bytesize::ByteSize::mib(19);
        settings.vault.kdf_iterations = 2;
        let vault = kai_vault::Vault::new(store.clone(), &settings.vault);
        let queue = Queue::new(store.clone());
        let knowledge = Knowledge::open(
            &dir.path().join("knowledge"),
            store.clone(),
            vault.clone(),
            queue.clone(),
            gateway.clone(),
            kai_events::Events::start(store.clone()).await.unwrap(),
            settings.knowledge.clone(),
            TokenSizer::estimate(),
        )
        .await
        .unwrap();
        let workers = Some(start_workers(&knowledge, queue));
        Harness {
            _db: db,
            dir,
            store,
            service: Some(knowledge),
            workers,
            embedder,
            settings,
            gateway,
            vault,
        }
    }

    /// The service opened again on the same directory and database, as after a restart.
    async fn reopen(&mut self) {
        if let Some(workers) = self.workers.take() {
            workers.shutdown().await;
        }
        // Closed first: the keyword index allows one writer.
        self.service = None;
        let queue = Queue::new(self.store.clone());
        let knowledge = Knowledge::open(
            &self.dir.path().join("knowledge"),
            self.store.clone(),
            self.vault.clone(),
            queue.clone(),
            self.gateway.clone(),
            kai_events::Events::start(self.store.clone()).await.unwrap(),
            self.settings.knowledge.clone(),
            TokenSizer::estimate(),
        )
        .await
        .unwrap();
        self.workers = Some(start_workers(&knowledge, queue));
        self.service = Some(knowledge);
    }

    fn knowledge(&self) -> &Knowledge {
        self.service.as_ref().unwrap()
    }

    async fn add(&self, owner: UserId, name: &str, body: &[u8]) -> kai_store::ArtifactRecord {
        self.knowledge()
            .add_artifact(
                owner,
                Upload {
                    body,
                    file_name: Some(name.into()),
                    created_by: format!("user:{owner}"),
                },
                ArtifactMeta::default(),
            )
            .await
            .unwrap()
    }

    /// Waits until the artifact's current version has left `pending`.
    async fn indexed(&self, owner: UserId, id: kai_core::ArtifactId) -> kai_store::VersionRecord {
        for _ in 0..400 {
            let current = self.knowledge().artifact(owner, id).await.unwrap().current;
            if current.index_state != IndexState::Pending {
                return current;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("artifact {id} was not indexed within 20 s");
    }

    async fn search(&self, owner: UserId, text: &str, mode: SearchMode) -> Vec<String> {
        self.knowledge()
            .search(owner, &query(text, mode))
            .await
            .unwrap()
            .hits
            .into_iter()
            .map(|hit| hit.title)
            .collect()
    }
}

fn query(text: &str, mode: SearchMode) -> SearchQuery {
    SearchQuery {
        text: text.into(),
        mode,
        filter: ItemFilter::default(),
        limit: 10,
        fusion: None,
    }
}

const GARDEN: &str = "# Garden\n\nTomatoes need full sun and steady watering.\n\n\
                      ## Pests\n\nAphids gather under the leaves in spring.\n";
const KITCHEN: &str = "Bread rises when the yeast is warm. Knead the dough for ten minutes.";

#[tokio::test]
async fn uploads_are_indexed_in_the_background_and_found_by_keyword_and_meaning() {
    let h = Harness::new().await;
    let alice = user(&h.store, "alice").await;
    let bob = user(&h.store, "bob").await;
    let garden = h.add(alice, "garden.md", GARDEN.as_bytes()).await;
    let kitchen = h.add(alice, "kitchen.txt", KITCHEN.as_bytes()).await;
    assert_eq!(garden.title, "garden.md");
    assert_eq!(garden.current.mime, "text/markdown");
    let indexed = h.indexed(alice, garden.id).await;
    assert_eq!(indexed.index_state, IndexState::Indexed);
    assert!(indexed.chunk_count >= 1);
    h.indexed(alice, kitchen.id).await;

    for mode in [
        SearchMode::Keyword,
        SearchMode::Semantic,
        SearchMode::Hybrid,
    ] {
        let found = h.search(alice, "aphids leaves spring", mode).await;
        assert_eq!(
            found.first().map(String::as_str),
            Some("garden.md"),
            "{mode:?}"
        );
        assert!(h.search(bob, "aphids leaves spring", mode).await.is_empty());
    }
    let results = h
        .knowledge()
        .search(alice, &query("yeast", SearchMode::Hybrid))
        .await
        .unwrap();
    let hit = &results.hits[0];
    assert_eq!(hit.title, "kitchen.txt");
    assert_eq!(&hit.passage.text[hit.passage.ranges[0].clone()], "yeast");
    assert!(hit.keyword_rank.is_some() && hit.vector_rank.is_some());
    // Markdown chunks carry their headings.
    let results = h
        .knowledge()
        .search(alice, &query("aphids", SearchMode::Keyword))
        .await
        .unwrap();
    assert!(
        results.hits[0]
            .heading
            .as_deref()
            .unwrap()
            .contains("Garden")
    );

    // Both fusion methods answer.
    for fusion in [Fusion::Rrf, Fusion::Weighted] {
        let mut q = query("tomatoes sun", SearchMode::Hybrid);
        q.fusion = Some(fusion);
        let found = h.knowledge().search(alice, &q).await.unwrap();
        assert_eq!(found.hits[0].title, "garden.md");
    }

    // Other owners see nothing of it.
    assert!(matches!(
        h.knowledge().artifact(bob, garden.id).await,
        Err(KnowledgeError::NotFound(_))
    ));
    assert!(matches!(
        h.knowledge().delete(bob, garden.id).await,
        Err(KnowledgeError::NotFound(_))
    ));
    let progress = h.knowledge().progress(alice).await.unwrap();
    assert_eq!((progress.indexed, progress.pending), (2, 0));
}

#[tokio::test]
async fn a_new_version_replaces_the_old_in_search_and_both_stay_readable() {
    let h = Harness::new().await;
    let alice = user(&h.store, "alice").await;
    let first = h
        .add(alice, "notes.txt", b"The meeting is on Monday.\n")
        .await;
    h.indexed(alice, first.id).await;
    let second = h
        .knowledge()
        .add_version(
            alice,
            first.id,
            Upload {
                body: &b"The meeting moved to Thursday.\n"[..],
                file_name: Some("notes.txt".into()),
                created_by: "user:alice".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(second.current.version, 2);
    h.indexed(alice, first.id).await;
    assert_eq!(
        h.search(alice, "thursday", SearchMode::Keyword).await.len(),
        1
    );
    assert!(
        h.search(alice, "monday", SearchMode::Keyword)
            .await
            .is_empty()
    );

    let versions = h.knowledge().versions(alice, first.id).await.unwrap();
    assert_eq!(versions[0].index_state, IndexState::Superseded);
    let (v1, _) = h
        .knowledge()
        .content(alice, first.id, Some(1))
        .await
        .unwrap();
    assert_eq!(v1.version, 1);
    let diff = h.knowledge().diff(alice, first.id, 1, 2).await.unwrap();
    assert!(diff.contains("-The meeting is on Monday."), "{diff}");
    assert!(diff.contains("+The meeting moved to Thursday."), "{diff}");
}

#[tokio::test]
async fn deletion_takes_effect_at_once_and_content_is_collected_later() {
    let mut h = Harness::new().await;
    let alice = user(&h.store, "alice").await;
    let doc = h.add(alice, "garden.md", GARDEN.as_bytes()).await;
    h.indexed(alice, doc.id).await;
    let blob = h
        .knowledge()
        .artifact(alice, doc.id)
        .await
        .unwrap()
        .current
        .blob_hash;

    // Deleted in the database only, as if the process died before the indexes heard of it:
    // search already ignores it.
    h.store.delete_artifact(alice, doc.id).await.unwrap();
    assert!(
        h.search(alice, "aphids", SearchMode::Hybrid)
            .await
            .is_empty()
    );
    // The restart's reconciliation removes what the indexes kept.
    h.reopen().await;
    let reconciled = h.knowledge().reconcile().await.unwrap();
    // The database's own indexes lost it with its rows.
    if h.knowledge().progress(alice).await.unwrap().search_index == "embedded" {
        assert!(reconciled.removed >= 1, "{reconciled:?}");
    }

    // Unreferenced content goes once its grace period is over, not before.
    assert_eq!(h.knowledge().collect_blobs().await.unwrap(), 0);
    let path = h
        .dir
        .path()
        .join("knowledge/blobs")
        .join(&blob[..2])
        .join(&blob[2..]);
    assert!(path.exists());
    h.settings.knowledge.blob_grace = Duration::ZERO;
    h.reopen().await;
    assert_eq!(h.knowledge().collect_blobs().await.unwrap(), 1);
    assert!(!path.exists());
}

#[tokio::test]
async fn lost_indexes_are_rebuilt_from_the_database() {
    let mut h = Harness::with_index(SearchIndex::Embedded).await;
    let alice = user(&h.store, "alice").await;
    let doc = h.add(alice, "kitchen.txt", KITCHEN.as_bytes()).await;
    h.indexed(alice, doc.id).await;
    if let Some(workers) = h.workers.take() {
        workers.shutdown().await;
    }
    std::fs::remove_dir_all(h.dir.path().join("knowledge/keyword")).unwrap();
    std::fs::remove_dir_all(h.dir.path().join("knowledge/vectors")).unwrap();
    h.reopen().await;
    assert!(
        h.search(alice, "yeast", SearchMode::Hybrid)
            .await
            .is_empty()
    );
    let reconciled = h.knowledge().reconcile().await.unwrap();
    assert!(reconciled.added >= 1);
    assert_eq!(
        h.search(alice, "yeast", SearchMode::Keyword).await,
        ["kitchen.txt"]
    );
    assert_eq!(
        h.search(alice, "dough knead", SearchMode::Semantic).await,
        ["kitchen.txt"]
    );
    let rebuilt = h.knowledge().reindex().await.unwrap();
    assert_eq!(rebuilt.added, reconciled.added);
}

#[tokio::test]
async fn an_embedding_model_that_fails_leaves_keyword_search_working() {
    let h = Harness::new().await;
    let alice = user(&h.store, "alice").await;
    let doc = h.add(alice, "kitchen.txt", KITCHEN.as_bytes()).await;
    h.indexed(alice, doc.id).await;
    h.embedder.failing.store(true, Ordering::SeqCst);
    let results = h
        .knowledge()
        .search(alice, &query("yeast", SearchMode::Hybrid))
        .await
        .unwrap();
    assert_eq!(results.hits.len(), 1);
    assert!(results.degraded.unwrap().contains("word-counts"));
    assert!(matches!(
        h.knowledge()
            .search(alice, &query("yeast", SearchMode::Semantic))
            .await,
        Err(KnowledgeError::Embedding { .. })
    ));

    // What is added meanwhile is searchable by its words, and gets its vectors once the model
    // answers again.
    let later = h
        .add(alice, "later.txt", b"Sourdough starters need feeding.")
        .await;
    let waiting = h.indexed(alice, later.id).await;
    assert_eq!(waiting.index_state, IndexState::KeywordOnly);
    assert!(waiting.index_error.unwrap().contains("word-counts"));
    assert_eq!(
        h.search(alice, "sourdough", SearchMode::Keyword).await,
        ["later.txt"]
    );
    h.embedder.failing.store(false, Ordering::SeqCst);
    for _ in 0..600 {
        let current = h
            .knowledge()
            .artifact(alice, later.id)
            .await
            .unwrap()
            .current;
        if current.index_state == IndexState::Indexed {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("indexing did not resume once the model answered");
}

#[tokio::test]
async fn a_file_whose_text_takes_too_long_to_read_is_recorded_as_failed() {
    // Reading 4 MB of Markdown takes far longer than a millisecond.
    let h = Harness::with(|settings| {
        settings.knowledge.extract_timeout = Duration::from_millis(1);
        settings.knowledge.max_upload_size = bytesize::ByteSize::mib(8);
    })
    .await;
    let alice = user(&h.store, "alice").await;
    let doc = h
        .add(alice, "garden.md", GARDEN.repeat(40_000).as_bytes())
        .await;
    let failed = h.indexed(alice, doc.id).await;
    assert_eq!(failed.index_state, IndexState::Failed);
    let reason = failed.index_error.unwrap();
    assert!(reason.contains("knowledge.extract_timeout"), "{reason}");
    // The content is kept, readable as it went in.
    assert!(h.knowledge().content(alice, doc.id, None).await.is_ok());
}

#[tokio::test]
async fn bad_content_is_refused_or_recorded_and_nothing_stored_is_lost() {
    let h = Harness::new().await;
    let alice = user(&h.store, "alice").await;
    let keep = h.add(alice, "kitchen.txt", KITCHEN.as_bytes()).await;
    h.indexed(alice, keep.id).await;

    // Empty: stored, indexed with nothing to find.
    let empty = h.add(alice, "empty.txt", b"").await;
    assert_eq!(h.indexed(alice, empty.id).await.chunk_count, 0);
    // Binary junk named as text: kept, not indexed.
    let junk: Vec<u8> = (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect();
    let junk = h.add(alice, "notes.txt", &junk).await;
    assert_eq!(junk.current.index_state, IndexState::Skipped);
    assert_eq!(junk.current.mime, "application/octet-stream");
    // A PDF the parser cannot read: recorded as failed, with why.
    let pdf = h
        .add(alice, "broken.pdf", b"%PDF-1.7\n1 0 obj << /Type /Catalog")
        .await;
    let failed = h.indexed(alice, pdf.id).await;
    assert_eq!(failed.index_state, IndexState::Failed);
    assert!(failed.index_error.unwrap().to_lowercase().contains("pdf"));
    // A path-traversal name keeps only its last part.
    let named = h.add(alice, "../../etc/passwd", b"root:x:0:0").await;
    assert_eq!(named.current.file_name.as_deref(), Some("passwd"));
    // Too large: refused, nothing kept.
    let big = vec![b'a'; 65 * 1024];
    let err = h
        .knowledge()
        .add_artifact(
            alice,
            Upload {
                body: &big[..],
                file_name: None,
                created_by: "user:alice".into(),
            },
            ArtifactMeta::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, KnowledgeError::TooLarge { .. }), "{err}");
    // Cut off mid-stream: refused, nothing kept.
    let cut = tokio_test_reader(b"half of a file");
    let err = h
        .knowledge()
        .add_artifact(
            alice,
            Upload {
                body: cut,
                file_name: Some("cut.txt".into()),
                created_by: "user:alice".into(),
            },
            ArtifactMeta::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, KnowledgeError::Incomplete(_)), "{err}");
    // Queries: empty and too long are refused; punctuation finds nothing.
    assert!(matches!(
        h.knowledge()
            .search(alice, &query("   ", SearchMode::Hybrid))
            .await,
        Err(KnowledgeError::Invalid(_))
    ));
    assert!(matches!(
        h.knowledge()
            .search(alice, &query(&"a".repeat(10_001), SearchMode::Hybrid))
            .await,
        Err(KnowledgeError::Invalid(_))
    ));
    assert!(
        h.search(alice, "?!.,;:", SearchMode::Hybrid)
            .await
            .is_empty()
    );
    let long = "yeast ".repeat(1666);
    assert_eq!(
        h.search(alice, &long, SearchMode::Hybrid).await,
        ["kitchen.txt"]
    );
    // Bad metadata and tags are refused before anything is stored.
    let err = h
        .knowledge()
        .add_artifact(
            alice,
            Upload {
                body: &b"x"[..],
                file_name: None,
                created_by: "user:alice".into(),
            },
            ArtifactMeta {
                metadata: Some(json!([1, 2])),
                ..ArtifactMeta::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, KnowledgeError::Invalid(_)));

    // What was there is intact.
    assert_eq!(
        h.search(alice, "yeast", SearchMode::Keyword).await,
        ["kitchen.txt"]
    );
    let listed = h
        .knowledge()
        .artifacts(
            alice,
            &kai_store::ArtifactFilter {
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(listed.len(), 5);
}

/// A reader that yields `bytes` and then fails, as a connection dropped mid-upload does.
fn tokio_test_reader(bytes: &'static [u8]) -> impl tokio::io::AsyncRead + Unpin {
    struct Cut(&'static [u8], bool);
    impl tokio::io::AsyncRead for Cut {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            if self.1 {
                return std::task::Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "connection reset by peer",
                )));
            }
            buf.put_slice(self.0);
            self.1 = true;
            std::task::Poll::Ready(Ok(()))
        }
    }
    Cut(bytes, false)
}

#[tokio::test]
async fn an_interrupted_index_job_resumes_without_duplicating_chunks() {
    let h = Harness::new().await;
    let alice = user(&h.store, "alice").await;
    // Indexing fails at the embedding step, after the chunks are stored.
    h.embedder.failing.store(true, Ordering::SeqCst);
    let long: String = (0..60)
        .map(|i| format!("Paragraph {i} talks about compost and worms.\n\n"))
        .collect();
    let doc = h.add(alice, "compost.md", long.as_bytes()).await;
    let item = doc.id.to_string();
    for _ in 0..200 {
        if !h
            .store
            .chunks_of(&item, 1, "word-counts")
            .await
            .unwrap()
            .is_empty()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stored = h.store.chunks_of(&item, 1, "word-counts").await.unwrap();
    assert!(stored.len() > 1);
    h.embedder.failing.store(false, Ordering::SeqCst);
    let version = {
        let mut version = None;
        for _ in 0..600 {
            let current = h.knowledge().artifact(alice, doc.id).await.unwrap().current;
            if current.index_state == IndexState::Indexed {
                version = Some(current);
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        version.expect("indexing resumed")
    };
    let after = h.store.chunks_of(&item, 1, "word-counts").await.unwrap();
    assert_eq!(
        after.iter().map(|c| c.id).collect::<Vec<_>>(),
        stored.iter().map(|c| c.id).collect::<Vec<_>>()
    );
    assert_eq!(version.chunk_count, stored.len() as u64);
    assert!(after.iter().all(|c| c.embedding.is_some()));
}

fn note(title: &str, body: &str) -> kai_knowledge::NoteInput {
    kai_knowledge::NoteInput {
        title: title.into(),
        body: body.into(),
        created_by: "user:test".into(),
        user_name: "alice".into(),
        ..kai_knowledge::NoteInput::default()
    }
}

#[tokio::test]
async fn notes_link_template_version_and_are_found_with_artifacts() {
    let h = Harness::new().await;
    let alice = user(&h.store, "alice").await;
    let bob = user(&h.store, "bob").await;
    let k = h.knowledge();
    let recipe = h.add(alice, "bread.txt", KITCHEN.as_bytes()).await;

    let plan = k
        .create_note(
            alice,
            note(
                "Weekend plan",
                &format!(
                    "Bake bread ([[artifact:{}]]) and weed the [[Garden log]].",
                    recipe.id
                ),
            ),
        )
        .await
        .unwrap();
    // The artifact link resolves now; the garden log does not exist yet.
    assert_eq!(plan.links.len(), 2);
    let garden = plan.links.iter().find(|l| l.kind == "note").unwrap();
    assert_eq!(garden.target_id, None);
    let log = k
        .create_note(alice, note("Garden log", "Aphids on the roses again."))
        .await
        .unwrap();
    assert_eq!(log.backlinks, [(plan.note.id, "Weekend plan".to_owned())]);

    // Searched with the artifacts, by keyword and by meaning.
    for _ in 0..400 {
        let current = k.note(alice, log.note.id).await.unwrap().note;
        if current.index_state == IndexState::Indexed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        h.search(alice, "aphids roses", SearchMode::Hybrid).await[0],
        "Garden log"
    );
    assert!(
        h.search(bob, "aphids roses", SearchMode::Hybrid)
            .await
            .is_empty()
    );
    let mut only_notes = query("bread", SearchMode::Keyword);
    only_notes.filter.kind = Some("note".into());
    let found = k.search(alice, &only_notes).await.unwrap();
    assert_eq!(found.hits.len(), 1);
    assert_eq!(found.hits[0].item_kind, "note");

    // Renamed: what links to it still does; the rename is a version of its own.
    let renamed = k
        .update_note(
            alice,
            log.note.id,
            kai_knowledge::NoteChanges {
                title: Some("Roses".into()),
                ..Default::default()
            },
            "user:test".into(),
        )
        .await
        .unwrap();
    assert_eq!(renamed.note.version, 2);
    assert_eq!(renamed.backlinks.len(), 1);
    let plan_now = k.note(alice, plan.note.id).await.unwrap();
    let link = plan_now.links.iter().find(|l| l.kind == "note").unwrap();
    assert_eq!(link.title.as_deref(), Some("Roses"));
    let edited = k
        .update_note(
            alice,
            log.note.id,
            kai_knowledge::NoteChanges {
                body: Some("Aphids gone after the ladybirds came.".into()),
                ..Default::default()
            },
            "user:test".into(),
        )
        .await
        .unwrap();
    assert_eq!(edited.note.version, 3);
    let diff = k.note_diff(alice, log.note.id, 2, 3).await.unwrap();
    assert!(
        diff.contains("+Aphids gone after the ladybirds came."),
        "{diff}"
    );
    assert_eq!(k.note_versions(alice, log.note.id).await.unwrap().len(), 3);

    // Templates: a note tagged `template`, rendered with the date, the user and variables.
    let mut daily = note(
        "Daily",
        "# {{ title }}\n\nWritten by {{ user }} on {{ date }}. Mood: {{ mood }}.",
    );
    daily.tags = vec![kai_knowledge::TEMPLATE_TAG.into()];
    k.create_note(alice, daily).await.unwrap();
    let mut today = note("Monday", "");
    today.template = Some("daily".into());
    today.variables.insert("mood".into(), "sunny".into());
    let made = k.create_note(alice, today).await.unwrap();
    assert!(
        made.note
            .body
            .starts_with("# Monday\n\nWritten by alice on 2"),
        "{}",
        made.note.body
    );
    assert!(
        made.note.body.ends_with("Mood: sunny."),
        "{}",
        made.note.body
    );
    let mut missing = note("Tuesday", "");
    missing.template = Some("Daily".into());
    let err = k.create_note(alice, missing).await.unwrap_err();
    assert!(err.to_string().contains("variables"), "{err}");
    let mut no_template = note("Wednesday", "");
    no_template.template = Some("Weekend plan".into());
    assert!(matches!(
        k.create_note(alice, no_template).await,
        Err(KnowledgeError::NotFound(_))
    ));

    // Bad input: a title taken (whatever its case), one links cannot name, a NUL.
    assert!(matches!(
        k.create_note(alice, note("weekend PLAN", "")).await,
        Err(KnowledgeError::Conflict(_))
    ));
    assert!(matches!(
        k.create_note(alice, note("a|b", "")).await,
        Err(KnowledgeError::Invalid(_))
    ));
    assert!(matches!(
        k.create_note(alice, note("Nul", "a\0b")).await,
        Err(KnowledgeError::Invalid(_))
    ));
    // Others' notes are not found.
    assert!(matches!(
        k.note(bob, plan.note.id).await,
        Err(KnowledgeError::NotFound(_))
    ));

    // Deleted: gone from search, and the link waits for its title again.
    k.delete_note(alice, log.note.id).await.unwrap();
    assert!(
        h.search(alice, "ladybirds", SearchMode::Keyword)
            .await
            .is_empty()
    );
    let plan_now = k.note(alice, plan.note.id).await.unwrap();
    let link = plan_now.links.iter().find(|l| l.kind == "note").unwrap();
    assert_eq!(link.target_id, None);
}

#[tokio::test]
async fn memory_is_sealed_corrected_with_its_history_and_waits_for_the_vault() {
    use kai_knowledge::MemorySource;
    use kai_vault::{Passphrase, UnlockKey};

    let h = Harness::new().await;
    let alice = user(&h.store, "alice").await;
    let bob = user(&h.store, "bob").await;
    let k = h.knowledge();
    // No vault yet, then a locked one: memory says so; search does not care.
    assert!(matches!(
        k.remember(alice, "Prefers tea", MemorySource::User, None, vec![])
            .await,
        Err(KnowledgeError::Vault(_))
    ));
    let key = UnlockKey::Passphrase(Passphrase::new("correct horse battery".into()));
    h.vault.init(std::slice::from_ref(&key)).await.unwrap();

    let tea = k
        .remember(alice, "Prefers tea", MemorySource::User, None, vec![])
        .await
        .unwrap();
    let city = k
        .remember(
            alice,
            "Lives in Lyon",
            MemorySource::Conversation("c-1".into()),
            None,
            vec![tea.id],
        )
        .await
        .unwrap();
    assert_eq!(city.relates_to, [tea.id]);
    // The database holds no plain text.
    let sealed = h.store.memories(alice, true).await.unwrap();
    assert!(
        sealed
            .iter()
            .all(|m| !String::from_utf8_lossy(&m.sealed).contains("Lyon"))
    );

    // Corrected: the new entry replaces the old, which stays as history.
    let moved = k
        .remember(
            alice,
            "Lives in Grenoble",
            MemorySource::User,
            Some(city.id),
            vec![],
        )
        .await
        .unwrap();
    let current: Vec<String> = k
        .memories(alice, false, None)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.text)
        .collect();
    assert_eq!(current, ["Prefers tea", "Lives in Grenoble"]);
    let all = k.memories(alice, true, None).await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[1].superseded_by, Some(moved.id));
    assert_eq!(
        k.memories(alice, false, Some("GRENOBLE"))
            .await
            .unwrap()
            .len(),
        1
    );
    // A superseded entry cannot be corrected twice; others' entries are not there.
    assert!(matches!(
        k.remember(
            alice,
            "Lives in Paris",
            MemorySource::User,
            Some(city.id),
            vec![]
        )
        .await,
        Err(KnowledgeError::Conflict(_))
    ));
    assert!(k.memories(bob, true, None).await.unwrap().is_empty());
    assert!(matches!(
        k.forget(bob, tea.id).await,
        Err(KnowledgeError::NotFound(_))
    ));
    assert!(matches!(
        k.remember(alice, "  ", MemorySource::User, None, vec![])
            .await,
        Err(KnowledgeError::Invalid(_))
    ));
    // Forgetting the correction makes the old fact current again.
    k.forget(alice, moved.id).await.unwrap();
    let current = k.memories(alice, false, None).await.unwrap();
    assert_eq!(current[1].text, "Lives in Lyon");

    // Locked: memory answers that the vault is locked, and search still works.
    h.vault.lock();
    assert!(matches!(
        k.memories(alice, false, None).await,
        Err(KnowledgeError::Vault(kai_vault::VaultError::Locked))
    ));
    let doc = h.add(alice, "kitchen.txt", KITCHEN.as_bytes()).await;
    h.indexed(alice, doc.id).await;
    assert_eq!(
        h.search(alice, "yeast", SearchMode::Keyword).await,
        ["kitchen.txt"]
    );
    h.vault.unlock(&key).await.unwrap();
    assert_eq!(k.memories(alice, false, None).await.unwrap().len(), 2);
}

#[tokio::test]
async fn notes_go_into_collections_and_are_filtered_by_them() {
    let h = Harness::new().await;
    let alice = user(&h.store, "alice").await;
    let k = h.knowledge();
    let shelf = k.create_collection(alice, "shelf", "").await.unwrap();
    let mut filed = note("Filed", "Sourdough starter feeding times.");
    filed.collection = Some(shelf.id);
    let made = k.create_note(alice, filed).await.unwrap();
    assert_eq!(made.note.collection_id, Some(shelf.id));
}

#[tokio::test]
async fn the_search_index_lives_where_the_setting_says() {
    let h = Harness::with_index(SearchIndex::Embedded).await;
    let alice = user(&h.store, "alice").await;
    assert_eq!(
        h.knowledge().progress(alice).await.unwrap().search_index,
        "embedded"
    );
    assert!(h.dir.path().join("knowledge/keyword").is_dir());

    let opened = Knowledge::open(
        &h.dir.path().join("other"),
        h.store.clone(),
        h.vault.clone(),
        Queue::new(h.store.clone()),
        h.gateway.clone(),
        kai_events::Events::start(h.store.clone()).await.unwrap(),
        kai_config::KnowledgeSettings {
            search_index: SearchIndex::Database,
            ..h.settings.knowledge.clone()
        },
        TokenSizer::estimate(),
    )
    .await;
    if h.store.backend() == DatabaseKind::Sqlite {
        let err = opened.unwrap_err().to_string();
        assert!(err.contains("needs PostgreSQL"), "{err}");
        return;
    }
    match opened {
        Ok(knowledge) => {
            assert_eq!(
                knowledge.progress(alice).await.unwrap().search_index,
                "database"
            );
            // Nothing of it on disk.
            assert!(!h.dir.path().join("other/keyword").exists());
        }
        Err(err) => {
            assert!(
                std::env::var_os("KAI_TEST_PGVECTOR").is_none(),
                "KAI_TEST_PGVECTOR is set, but: {err}"
            );
            assert!(err.to_string().contains("pgvector"), "{err}");
        }
    }
}

/// Waits until the configured model has embedded every chunk and search answers with it.
async fn reembedded(h: &Harness, owner: UserId) -> kai_knowledge::IndexProgress {
    for _ in 0..600 {
        let progress = h.knowledge().progress(owner).await.unwrap();
        if progress.chunks_embedded == progress.chunks
            && progress.vectors_from == progress.embedding_model
        {
            return progress;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("re-embedding did not finish within 30 s");
}

#[tokio::test]
async fn a_new_embedding_model_re_embeds_while_the_old_vectors_answer() {
    for search_index in [SearchIndex::Embedded, SearchIndex::Auto] {
        let mut h = Harness::with_index(search_index).await;
        let alice = user(&h.store, "alice").await;
        let garden = h.add(alice, "garden.md", GARDEN.as_bytes()).await;
        let kitchen = h.add(alice, "kitchen.txt", KITCHEN.as_bytes()).await;
        h.indexed(alice, garden.id).await;
        h.indexed(alice, kitchen.id).await;

        // The new model is down at first: nothing can be re-embedded yet.
        h.embedder.second_failing.store(true, Ordering::SeqCst);
        h.settings.knowledge.embedding_model = SECOND_MODEL.into();
        h.reopen().await;
        h.knowledge().reconcile().await.unwrap();
        let progress = h.knowledge().progress(alice).await.unwrap();
        assert_eq!(progress.embedding_model, SECOND_MODEL);
        assert_eq!(progress.vectors_from, "word-counts", "{search_index:?}");
        assert_eq!(progress.chunks_embedded, 0);
        // The old vectors keep answering by meaning.
        assert_eq!(
            h.search(alice, "dough knead", SearchMode::Semantic)
                .await
                .first()
                .map(String::as_str),
            Some("kitchen.txt"),
            "{search_index:?}"
        );
        // What is added meanwhile is found by its words.
        let later = h
            .add(alice, "later.txt", b"Sourdough starters need feeding.")
            .await;
        h.indexed(alice, later.id).await;
        assert_eq!(
            h.search(alice, "sourdough", SearchMode::Hybrid)
                .await
                .first()
                .map(String::as_str),
            Some("later.txt")
        );

        // Once the new model answers, everything is re-embedded in the background, search
        // moves over, and the old vectors go.
        h.embedder.second_failing.store(false, Ordering::SeqCst);
        let done = reembedded(&h, alice).await;
        assert!(done.chunks >= 3);
        assert_eq!(
            h.search(alice, "dough knead", SearchMode::Semantic)
                .await
                .first()
                .map(String::as_str),
            Some("kitchen.txt"),
            "{search_index:?}"
        );
        assert_eq!(
            h.search(alice, "sourdough feeding", SearchMode::Semantic)
                .await
                .first()
                .map(String::as_str),
            Some("later.txt")
        );
        assert!(
            h.store
                .embedded_chunk_ids("word-counts")
                .await
                .unwrap()
                .is_empty()
        );
        if search_index == SearchIndex::Embedded {
            assert!(
                !h.dir
                    .path()
                    .join("knowledge/vectors/word-counts.log")
                    .exists()
            );
        }
        // A restart keeps the new model answering.
        h.reopen().await;
        h.knowledge().reconcile().await.unwrap();
        assert_eq!(
            h.knowledge().progress(alice).await.unwrap().vectors_from,
            SECOND_MODEL
        );
        // Vectors of a model no longer configured are left to `reindex`: reconciling must not
        // drop them, as another process sharing the database may still use that model.
        let chunk = h.store.embedded_chunk_ids(SECOND_MODEL).await.unwrap()[0];
        h.store
            .set_embeddings("stale", &[(chunk, vec![1.0, 0.0])])
            .await
            .unwrap();
        h.knowledge().reconcile().await.unwrap();
        assert_eq!(h.store.embedded_chunk_ids("stale").await.unwrap(), [chunk]);
        h.knowledge().reindex().await.unwrap();
        assert!(
            h.store
                .embedded_chunk_ids("stale")
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            h.search(alice, "dough knead", SearchMode::Semantic)
                .await
                .first()
                .map(String::as_str),
            Some("kitchen.txt")
        );
    }
}

#[tokio::test]
async fn processes_sharing_a_database_and_content_share_what_they_index() {
    let h = Harness::new().await;
    let alice = user(&h.store, "alice").await;
    // A second process: its own data directory and no workers, the same database and the
    // same content directory.
    let second = Knowledge::open(
        &h.dir.path().join("second"),
        h.store.clone(),
        h.vault.clone(),
        Queue::new(h.store.clone()),
        h.gateway.clone(),
        kai_events::Events::start(h.store.clone()).await.unwrap(),
        kai_config::KnowledgeSettings {
            content_dir: Some(h.dir.path().join("knowledge/blobs")),
            ..h.settings.knowledge.clone()
        },
        TokenSizer::estimate(),
    )
    .await
    .unwrap();
    let in_database = second.uses_database();
    assert_eq!(in_database, h.knowledge().uses_database());

    // Indexed by the first process's workers...
    let garden = h.add(alice, "garden.md", GARDEN.as_bytes()).await;
    h.indexed(alice, garden.id).await;
    let search = |knowledge: &Knowledge, text: &str| {
        let knowledge = knowledge.clone();
        let text = text.to_owned();
        async move {
            knowledge
                .search(alice, &query(&text, SearchMode::Hybrid))
                .await
                .unwrap()
                .hits
                .into_iter()
                .map(|hit| hit.title)
                .collect::<Vec<_>>()
        }
    };
    // ...found by the second at once when the index is the database's; an index on disk
    // takes it in at its next reconciliation (a minute on PostgreSQL).
    if !in_database {
        assert!(search(&second, "aphids").await.is_empty());
        second.reconcile().await.unwrap();
    }
    assert_eq!(search(&second, "aphids").await, ["garden.md"]);

    // Uploaded to the second, indexed by the first's workers from the shared content.
    let kitchen = second
        .add_artifact(
            alice,
            Upload {
                body: KITCHEN.as_bytes(),
                file_name: Some("kitchen.txt".into()),
                created_by: format!("user:{alice}"),
            },
            ArtifactMeta::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        h.indexed(alice, kitchen.id).await.index_state,
        IndexState::Indexed
    );
    assert_eq!(
        search(h.knowledge(), "yeast")
            .await
            .first()
            .map(String::as_str),
        Some("kitchen.txt")
    );
    if !in_database {
        second.reconcile().await.unwrap();
    }
    assert_eq!(
        search(&second, "yeast").await.first().map(String::as_str),
        Some("kitchen.txt")
    );
}
