//! [`LocalProvider`]: the installed models of a [`ModelStore`], served through
//! [`kai_models::Provider`].
//!
//! What a request can ask that the runtime does not do:
//!
//! - Structured output (`json_object`, `json_schema`): refused as `Unsupported`, so the router
//!   fails over; there is no constrained decoding.
//! - Images: refused as `Unsupported`; the models read text only.
//! - Tools are rendered into the prompt by the model's chat template (`tool_choice: none`
//!   sends none, a named tool sends only that one, `required` cannot be enforced), but the
//!   answer comes back as text: tool calls in the model's own syntax are not parsed out.
//! - Unset sampling parameters take llama.cpp's defaults (temperature 0.8, top_k 40, top_p
//!   0.95); `repetition_penalty` is read from the request's extra fields, over the last 64
//!   tokens; other extra fields (`n`, `logprobs`, …) are ignored.
//! - `dimensions` on embeddings is accepted only when it equals the model's width.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::StreamExt as _;
use futures_util::future::BoxFuture;
use kai_model_store::{InstalledModel, LocalModelKind, ModelFormat, ModelStore, StoreError};
use kai_models::chat::{
    ChatRequest, ChatResponse, EmbedRequest, EmbedResponse, ResponseBuilder, Usage,
};
use kai_models::{ChatStream, ErrorKind, Provider, ProviderError};
use rayon::ThreadPool;
use time::OffsetDateTime;

use crate::chat::{ChatModel, Generation};
use crate::embed::EmbeddingModel;
use crate::error::LoadError;
use crate::scheduler::{RuntimeLoad, Scheduler};

/// How the runtime uses the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalOptions {
    /// Threads the models compute with.
    pub threads: usize,
    /// Chat generations that make progress at once; more wait their turn in order.
    pub max_concurrent: usize,
    /// The most tokens of prompt and answer together; 0 keeps each model's own limit.
    pub context_size: usize,
}

impl Default for LocalOptions {
    /// One thread per core, four generations at once, each model's own context length.
    fn default() -> LocalOptions {
        LocalOptions {
            threads: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            max_concurrent: 4,
            context_size: 0,
        }
    }
}

#[derive(Clone)]
enum LoadedModel {
    Chat(Arc<ChatModel>),
    Embedding(Arc<EmbeddingModel>),
}

struct Loaded {
    pulled_at: OffsetDateTime,
    model: LoadedModel,
}

/// One model's place in the cache. Its lock is held while the model loads, so concurrent
/// first requests load it once.
type Slot = Arc<tokio::sync::Mutex<Option<Loaded>>>;

/// The models in a store, loaded on first use and kept; a model pulled again (a new
/// `pulled_at`) is reloaded, a removed one forgotten.
pub struct LocalProvider {
    store: ModelStore,
    options: LocalOptions,
    pool: Arc<ThreadPool>,
    scheduler: Scheduler,
    slots: Mutex<HashMap<String, Slot>>,
}

impl std::fmt::Debug for LocalProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalProvider")
            .field("store", &self.store.root())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl LocalProvider {
    /// Serves the models in `store`. Starts the compute threads; fails only when the
    /// operating system refuses threads.
    pub fn new(store: ModelStore, options: LocalOptions) -> std::io::Result<LocalProvider> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(options.threads.max(1))
            .thread_name(|index| format!("kai-local-{index}"))
            .build()
            .map_err(std::io::Error::other)?;
        let pool = Arc::new(pool);
        let scheduler = Scheduler::start(Arc::clone(&pool), options.max_concurrent)?;
        Ok(LocalProvider {
            store,
            options,
            pool,
            scheduler,
            slots: Mutex::new(HashMap::new()),
        })
    }

    /// How many chat generations are running and waiting.
    #[must_use]
    pub fn load(&self) -> RuntimeLoad {
        self.scheduler.load()
    }

    fn slot(&self, name: &str) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(slots.entry(name.to_owned()).or_default())
    }

    fn forget(&self, name: &str) {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        slots.remove(name);
    }

    /// The model called `name`, loaded (off the async runtime) if it is not yet.
    async fn model(&self, name: &str) -> Result<LoadedModel, ProviderError> {
        let store = self.store.clone();
        let lookup = name.to_owned();
        let installed = blocking(move || store.get(&lookup))
            .await?
            .map_err(store_error)?;
        let Some(installed) = installed else {
            self.forget(name);
            return Err(self.not_installed(name).await);
        };
        let slot = self.slot(name);
        let mut cached = slot.lock().await;
        if let Some(loaded) = cached.as_ref()
            && loaded.pulled_at == installed.manifest.pulled_at
        {
            return Ok(loaded.model.clone());
        }
        // Let the old weights go before the new ones load.
        *cached = None;
        let pulled_at = installed.manifest.pulled_at;
        let context_size = self.options.context_size;
        let model = blocking(move || load(&installed, context_size)).await??;
        *cached = Some(Loaded {
            pulled_at,
            model: model.clone(),
        });
        Ok(model)
    }

    async fn not_installed(&self, name: &str) -> ProviderError {
        let store = self.store.clone();
        let installed = match blocking(move || store.list()).await {
            Ok(Ok(models)) => models
                .iter()
                .map(|model| model.manifest.name.clone())
                .collect::<Vec<_>>(),
            _ => Vec::new(),
        };
        let installed = if installed.is_empty() {
            "none is installed".to_owned()
        } else {
            format!("installed: {}", installed.join(", "))
        };
        ProviderError::new(
            ErrorKind::NotFound,
            format!(
                "no local model `{name}` ({installed}); run `kai models pull {name}` to install it"
            ),
        )
    }

    async fn chat_model(&self, name: &str) -> Result<Arc<ChatModel>, ProviderError> {
        match self.model(name).await? {
            LoadedModel::Chat(model) => Ok(model),
            LoadedModel::Embedding(_) => Err(ProviderError::new(
                ErrorKind::BadRequest,
                format!(
                    "local model `{name}` is an embedding model: ask it for embeddings, or pick \
                     a chat model for chat"
                ),
            )),
        }
    }

    async fn start(&self, request: &ChatRequest) -> Result<ChatStream, ProviderError> {
        let name = request.model.clone();
        let model = self.chat_model(&name).await?;
        let (events, receiver) = tokio::sync::mpsc::unbounded_channel();
        let request = request.clone();
        // Rendering and tokenizing a long conversation is CPU work: off the async runtime.
        let generation =
            blocking(move || Generation::prepare(&request.model, model, &request, events))
                .await??;
        tracing::debug!(
            model = %name,
            prompt_tokens = generation.prompt_tokens(),
            "local generation queued"
        );
        self.scheduler.submit(generation)?;
        Ok(
            futures_util::stream::unfold(receiver, |mut receiver| async move {
                receiver.recv().await.map(|event| (event, receiver))
            })
            .boxed(),
        )
    }
}

impl Provider for LocalProvider {
    fn chat<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatResponse, ProviderError>> {
        Box::pin(async move {
            let mut stream = self.start(request).await?;
            let mut builder = ResponseBuilder::default();
            while let Some(event) = stream.next().await {
                builder.push(&event?);
            }
            Ok(builder.finish())
        })
    }

    fn chat_stream<'a>(
        &'a self,
        request: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatStream, ProviderError>> {
        Box::pin(self.start(request))
    }

    fn embed<'a>(
        &'a self,
        request: &'a EmbedRequest,
    ) -> BoxFuture<'a, Result<EmbedResponse, ProviderError>> {
        Box::pin(async move {
            let name = &request.model;
            let model = match self.model(name).await? {
                LoadedModel::Embedding(model) => model,
                LoadedModel::Chat(_) => {
                    return Err(ProviderError::new(
                        ErrorKind::BadRequest,
                        format!(
                            "local model `{name}` is a chat model: ask it for chat, or pick an \
                             embedding model for embeddings"
                        ),
                    ));
                }
            };
            if request.inputs.is_empty() {
                return Err(ProviderError::new(
                    ErrorKind::BadRequest,
                    "there is nothing to embed: give at least one input",
                ));
            }
            if let Some(dimensions) = request.dimensions
                && dimensions as usize != model.dimensions()
            {
                return Err(ProviderError::new(
                    ErrorKind::BadRequest,
                    format!(
                        "local model `{name}` makes {}-dimensional vectors and cannot shorten \
                         them to {dimensions}; leave `dimensions` out",
                        model.dimensions()
                    ),
                ));
            }
            let pool = Arc::clone(&self.pool);
            let inputs = request.inputs.clone();
            let embeddings = blocking(move || pool.install(|| model.embed(&inputs)))
                .await?
                .map_err(|err| ProviderError::new(ErrorKind::Server, err.to_string()))?;
            Ok(EmbedResponse {
                vectors: embeddings.vectors,
                usage: Some(Usage {
                    input_tokens: embeddings.tokens,
                    output_tokens: 0,
                }),
                truncated: embeddings.truncated,
            })
        })
    }

    fn list_models(&self) -> BoxFuture<'_, Result<Vec<String>, ProviderError>> {
        Box::pin(async move {
            let store = self.store.clone();
            let models = blocking(move || store.list()).await?.map_err(store_error)?;
            Ok(models
                .into_iter()
                .map(|model| model.manifest.name)
                .collect())
        })
    }
}

/// Loads an installed model after checking its files are whole.
fn load(installed: &InstalledModel, context_size: usize) -> Result<LoadedModel, ProviderError> {
    let manifest = &installed.manifest;
    let name = &manifest.name;
    installed.check_files().map_err(store_error)?;
    let started = std::time::Instant::now();
    let model = match (manifest.kind, manifest.format) {
        (LocalModelKind::Chat, ModelFormat::Gguf) => {
            let tokenizer = manifest
                .files
                .iter()
                .any(|file| file.path == "tokenizer.json")
                .then(|| installed.file("tokenizer.json"));
            ChatModel::load(
                &installed.weights_path(),
                tokenizer.as_deref(),
                context_size,
            )
            .map(|model| LoadedModel::Chat(Arc::new(model)))
        }
        (LocalModelKind::Embedding, ModelFormat::BertSafetensors) => {
            EmbeddingModel::load(&installed.dir)
                .map(|model| LoadedModel::Embedding(Arc::new(model)))
        }
        (kind, format) => {
            return Err(ProviderError::unsupported(format!(
                "local model `{name}` is a {kind} model stored as {format:?}, which kai's runtime \
                 cannot run; pull a GGUF chat model or a BERT sentence-transformer instead"
            )));
        }
    }
    .map_err(|err| load_error(name, &err))?;
    tracing::info!(model = %name, seconds = started.elapsed().as_secs_f32(), "local model loaded");
    Ok(model)
}

fn load_error(name: &str, err: &LoadError) -> ProviderError {
    let kind = match err {
        LoadError::Unsupported { .. } => ErrorKind::Unsupported,
        LoadError::Corrupt { .. } | LoadError::Io { .. } => ErrorKind::Malformed,
    };
    let advice = if err.is_corrupt() {
        format!(" (`kai models pull {name}`)")
    } else {
        String::new()
    };
    ProviderError::new(
        kind,
        format!("local model `{name}` cannot be loaded: {err}{advice}"),
    )
}

fn store_error(err: StoreError) -> ProviderError {
    let kind = match err {
        StoreError::Corrupt { .. } => ErrorKind::Malformed,
        // Reading the store can fail only on I/O; pulling's errors do not reach the runtime.
        _ => ErrorKind::Server,
    };
    ProviderError::new(kind, err.to_string())
}

/// Runs `work` on tokio's blocking pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ProviderError> {
    tokio::task::spawn_blocking(work).await.map_err(|err| {
        ProviderError::new(
            ErrorKind::Server,
            format!("a local model task failed: {err}"),
        )
    })
}
