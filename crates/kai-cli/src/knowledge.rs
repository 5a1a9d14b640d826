//! Knowledge's wiring, shared by `kai serve`, `kai worker` and `kai knowledge`: the service
//! over the data directory, and its upkeep in the background.

use std::time::Duration;

use anyhow::Context;
use kai_config::Settings;
use kai_gateway::{Gateway, LOCAL_MODEL_PREFIX};
use kai_jobs::Queue;
use kai_knowledge::Knowledge;
use kai_knowledge::chunk::TokenSizer;
use kai_model_store::ModelStore;
use kai_store::Store;
use kai_vault::Vault;

/// How often content no version refers to any more is looked for.
const BLOB_COLLECTION_INTERVAL: Duration = Duration::from_secs(3600);

/// How often, with a database other processes share, the indexes take in what those processes
/// indexed.
const FOLLOW_INTERVAL: Duration = Duration::from_secs(60);

/// Chunk sizes in the embedding model's own tokens when it is a local model with a
/// `tokenizer.json`; estimated otherwise (a provider's model, whose tokenizer kai cannot see).
fn sizer(settings: &Settings) -> TokenSizer {
    let model = &settings.knowledge.embedding_model;
    let Some(name) = model.strip_prefix(LOCAL_MODEL_PREFIX) else {
        return TokenSizer::estimate();
    };
    let installed = ModelStore::new(&settings.local.models_dir).get(name);
    let Ok(Some(installed)) = installed else {
        tracing::warn!(
            %model,
            "the embedding model is not installed yet: chunk sizes are estimated until kai restarts with it"
        );
        return TokenSizer::estimate();
    };
    match TokenSizer::from_file(&installed.file("tokenizer.json")) {
        Ok(sizer) => sizer,
        Err(err) => {
            tracing::warn!(%model, error = %err, "chunk sizes are estimated");
            TokenSizer::estimate()
        }
    }
}

/// The knowledge service over `<data_dir>/knowledge`.
pub(crate) async fn open(
    settings: &Settings,
    store: Store,
    vault: Vault,
    queue: Queue,
    gateway: Gateway,
    events: kai_events::Events,
) -> anyhow::Result<Knowledge> {
    let dir = settings.data_dir.join("knowledge");
    Knowledge::open(
        &dir,
        store,
        vault,
        queue,
        gateway,
        events,
        settings.knowledge.clone(),
        sizer(settings),
    )
    .await
    .with_context(|| format!("cannot open knowledge in {}", dir.display()))
}

/// Brings the indexes in line with the database, then collects unreferenced content every
/// hour. With PostgreSQL, where other processes index too, the indexes are brought in line
/// every minute as well, so that what they indexed becomes searchable here. Runs until
/// aborted.
pub(crate) async fn maintain(knowledge: Knowledge, shared_database: bool) {
    if let Err(err) = knowledge.reconcile().await {
        tracing::error!(error = %err, "cannot check the search indexes against the database");
    }
    let mut collect = tokio::time::interval(BLOB_COLLECTION_INTERVAL);
    let mut follow = tokio::time::interval(FOLLOW_INTERVAL);
    follow.tick().await;
    loop {
        tokio::select! {
            _ = collect.tick() => match knowledge.collect_blobs().await {
                Ok(0) => {}
                Ok(collected) => tracing::info!(collected, "unreferenced content deleted"),
                Err(err) => tracing::warn!(error = %err, "cannot collect unreferenced content"),
            },
            _ = follow.tick(), if shared_database => {
                if let Err(err) = knowledge.reconcile().await {
                    tracing::warn!(error = %err, "cannot follow the other processes' indexing");
                }
            }
        }
    }
}
