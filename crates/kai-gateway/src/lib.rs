//! The model gateway as a service: one front for every configured model.
//!
//! [`Gateway`] holds the catalog (providers and models from the configuration file and from
//! the admin API), routes requests through [`kai_models::router`], accounts for each one (cost,
//! usage records, Prometheus metrics), enforces per-key budgets, and keeps conversations. It
//! knows nothing of HTTP: `kai-server` turns its results into responses.

mod accounting;
mod catalog;
mod conversations;
mod stream;

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use kai_config::{
    CredentialRef, DeploymentSettings, Environment, LOCAL_PROVIDER, ModelSettings, ProviderKind,
    ProviderSettings, Secret, Settings, VaultSecrets,
};
use kai_core::{ApiKeyId, Budget, UsageId, UserId};
use kai_model_store::{InstalledModel, LocalModelKind, ModelStore};
use kai_models::chat::{ChatRequest, ChatResponse, EmbedRequest, EmbedResponse, Usage};
use kai_models::router::{BreakerPolicy, Health, RetryPolicy, RouteError, RouteErrorKind};
use kai_models::{Provider, ProviderError};
use kai_store::{
    CatalogKind, Store, StoreError, UsageFilter, UsageGroup, UsageRecord, UsageTotals,
};
use kai_vault::{Owner, Vault};
use time::OffsetDateTime;

use crate::accounting::{Budgets, DeploymentLabels, Prices, UsageWriter};
pub use crate::accounting::{GatewayMetrics, OverBudget};
use crate::catalog::Builder;
use crate::catalog::lock;
pub use crate::catalog::{ModelEntry, ProviderEntry, Source, Table};
pub use crate::conversations::{Conversation, ConversationTurn};
pub use crate::stream::GatewayStream;

/// Who is asking, for accounting and budgets.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The user.
    pub user_id: UserId,
    /// The API key used, if the request came with one (budgets are per key).
    pub api_key_id: Option<ApiKeyId>,
    /// The request's id, kept with its usage record.
    pub request_id: String,
}

/// Why the gateway refused or failed a request.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// Routing failed: unknown model, every deployment failed, limits, cool-downs.
    #[error("{0}")]
    Route(RouteError),
    /// The caller's key has spent a budget.
    #[error("{}", .0.message)]
    OverBudget(OverBudget),
    /// A catalog change or request is not valid.
    #[error("{field}: {message}")]
    Invalid {
        /// The field at fault.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// No such provider, model or conversation.
    #[error("{0} not found")]
    NotFound(String),
    /// The name is taken, or the entry is still in use.
    #[error("{0}")]
    Conflict(String),
    /// The entry is defined in the configuration file.
    #[error("{0} is defined in the configuration file; change it there")]
    ReadOnly(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The outcome of a whole (not streamed) request.
#[derive(Debug)]
pub struct Completed<T> {
    /// The answer.
    pub value: T,
    /// The model name that answered (the requested one, or a fallback).
    pub model: String,
    /// The provider that answered.
    pub provider: String,
    /// Tokens used.
    pub usage: Usage,
}

/// A deployment's live state, for the admin API.
#[derive(Debug, Clone)]
pub struct DeploymentStatus {
    /// The provider.
    pub provider: String,
    /// The provider's name for the model.
    pub upstream_model: String,
    /// Taking requests, cooling down, or being probed.
    pub health: Health,
    /// Requests in flight.
    pub in_flight: u32,
    /// Moving average of time to first token.
    pub ttft: Option<Duration>,
    /// Consecutive failures.
    pub consecutive_failures: u32,
    /// Requests and tokens in the last minute.
    pub last_minute: (u32, u64),
}

/// The models kai runs itself: the embedded runtime, and the store whose models it serves.
/// Every model in the store is offered as `local/NAME`.
#[derive(Clone)]
pub struct LocalModels {
    /// The runtime: a provider like the others, whose model names are store names.
    pub provider: Arc<dyn Provider>,
    /// The local model store.
    pub store: ModelStore,
}

impl std::fmt::Debug for LocalModels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalModels")
            .field("store", &self.store.root())
            .finish_non_exhaustive()
    }
}

/// The prefix of the names local models are offered under.
pub const LOCAL_MODEL_PREFIX: &str = "local/";

/// What the gateway last saw in the local model store: names and when each was pulled.
type StoreListing = Vec<(String, OffsetDateTime)>;

struct Inner {
    store: Store,
    local_store: Option<ModelStore>,
    local_listing: std::sync::Mutex<StoreListing>,
    env: Environment,
    /// The vault `vault:NAME` credentials are read from, and what was read at the last reload.
    vault: Option<Vault>,
    vault_secrets: RwLock<VaultSecrets>,
    config_providers: Vec<ProviderSettings>,
    config_models: Vec<ModelSettings>,
    started: OffsetDateTime,
    policy: RetryPolicy,
    builder: Builder,
    table: RwLock<Arc<Table>>,
    revision: std::sync::atomic::AtomicI64,
    prices: Prices,
    budgets: Budgets,
    writer: UsageWriter,
    metrics: GatewayMetrics,
}

/// The gateway. Cheap to clone: clones share everything.
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").finish_non_exhaustive()
    }
}

impl Gateway {
    /// The gateway for `settings`, with the providers and models the database holds and, when
    /// `local` is given, the local models. A configured provider whose credential cannot be
    /// read stops the start with a message naming it; one defined through the API, or one whose
    /// credential is in the vault (which may be locked at start), is kept but marked unusable
    /// until it can be read. `vault:NAME` credentials are read from `vault`.
    pub async fn new(
        store: Store,
        settings: &Settings,
        env: Environment,
        local: Option<LocalModels>,
        vault: Option<Vault>,
    ) -> Result<Gateway, GatewayError> {
        for provider in &settings.providers {
            if matches!(provider.api_key, Some(CredentialRef::Vault(_))) {
                continue;
            }
            let none = VaultSecrets::default();
            kai_providers::ProviderSpec::from_settings(provider, &env, &none).map_err(
                |message| GatewayError::Invalid {
                    field: format!("providers.{}", provider.name),
                    message,
                },
            )?;
        }
        let gateway_settings = &settings.gateway;
        let policy = RetryPolicy {
            base_delay: gateway_settings.retry_base_delay,
            max_delay: gateway_settings.retry_max_delay,
            breaker: BreakerPolicy {
                failures: gateway_settings.cooldown_after,
                cooldown: gateway_settings.cooldown,
            },
        };
        let (local_provider, local_store) = match local {
            Some(local) => (Some(local.provider), Some(local.store)),
            None => (None, None),
        };
        let inner = Inner {
            writer: UsageWriter::start(store.clone()),
            store,
            local_store,
            local_listing: std::sync::Mutex::new(Vec::new()),
            env,
            vault,
            vault_secrets: RwLock::new(VaultSecrets::default()),
            config_providers: settings.providers.clone(),
            config_models: settings.models.clone(),
            started: OffsetDateTime::now_utc(),
            policy,
            builder: Builder::new(local_provider),
            table: RwLock::new(Arc::new(Table::default())),
            revision: std::sync::atomic::AtomicI64::new(-1),
            prices: Prices::new(&settings.prices),
            budgets: Budgets::default(),
            metrics: GatewayMetrics::new(),
        };
        let gateway = Gateway {
            inner: Arc::new(inner),
        };
        gateway.reload().await?;
        Ok(gateway)
    }

    /// The metrics, to register with the server's registry.
    #[must_use]
    pub fn metrics(&self) -> &GatewayMetrics {
        &self.inner.metrics
    }

    /// The current catalog and routing table.
    #[must_use]
    pub fn table(&self) -> Arc<Table> {
        Arc::clone(
            &self
                .inner
                .table
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Rebuilds the table from the configuration and the database.
    pub async fn reload(&self) -> Result<(), GatewayError> {
        let store = &self.inner.store;
        let revision = store.catalog_revision().await?;
        let stored_providers = store.list_catalog(CatalogKind::Provider).await?;
        let stored_models = store.list_catalog(CatalogKind::Model).await?;
        let mut providers: Vec<ProviderEntry> = self
            .inner
            .config_providers
            .iter()
            .map(|settings| ProviderEntry {
                settings: settings.clone(),
                source: Source::Config,
                created_at: self.inner.started,
                problem: None,
            })
            .collect();
        for entry in stored_providers {
            match serde_json::from_str::<ProviderSettings>(&entry.document) {
                Ok(settings) if !providers.iter().any(|p| p.settings.name == settings.name) => {
                    providers.push(ProviderEntry {
                        settings,
                        source: Source::Api,
                        created_at: entry.created_at,
                        problem: None,
                    });
                }
                Ok(_) => {
                    tracing::warn!(provider = %entry.name, "stored provider shadowed by the configuration file's")
                }
                Err(err) => {
                    tracing::warn!(provider = %entry.name, error = %err, "stored provider unreadable; left out")
                }
            }
        }
        let mut models: Vec<ModelEntry> = self
            .inner
            .config_models
            .iter()
            .map(|settings| ModelEntry {
                settings: settings.clone(),
                source: Source::Config,
                created_at: self.inner.started,
            })
            .collect();
        for entry in stored_models {
            match serde_json::from_str::<ModelSettings>(&entry.document) {
                Ok(settings) if !models.iter().any(|m| m.settings.name == settings.name) => {
                    models.push(ModelEntry {
                        settings,
                        source: Source::Api,
                        created_at: entry.created_at,
                    });
                }
                Ok(_) => {
                    tracing::warn!(model = %entry.name, "stored model shadowed by the configuration file's")
                }
                Err(err) => {
                    tracing::warn!(model = %entry.name, error = %err, "stored model unreadable; left out")
                }
            }
        }
        self.add_local(&mut providers, &mut models).await;
        let secrets = self.read_vault(&providers).await;
        let table = self.inner.builder.build(
            providers,
            models,
            &self.inner.env,
            &secrets,
            self.inner.policy,
        );
        *self
            .inner
            .vault_secrets
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = secrets;
        *self
            .inner
            .table
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(table);
        self.inner
            .revision
            .store(revision, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// The node secrets the providers' `vault:NAME` credentials name, read now (a reload after
    /// the vault is unlocked or a secret changes picks them up).
    async fn read_vault(&self, providers: &[ProviderEntry]) -> VaultSecrets {
        let names: std::collections::BTreeSet<&str> = providers
            .iter()
            .filter_map(|entry| match &entry.settings.api_key {
                Some(CredentialRef::Vault(name)) => Some(name.as_str()),
                _ => None,
            })
            .collect();
        let Some(vault) = &self.inner.vault else {
            return VaultSecrets::default();
        };
        let mut secrets = std::collections::BTreeMap::new();
        for name in names {
            match vault.get_secret(Owner::Node, name).await {
                Ok(Some((_, value))) => {
                    secrets.insert(name.to_owned(), Secret::new(value.expose().to_owned()));
                }
                Ok(None) => {}
                Err(err) => return VaultSecrets::Unavailable(err.to_string()),
            }
        }
        VaultSecrets::Open(secrets)
    }

    fn vault_snapshot(&self) -> VaultSecrets {
        self.inner
            .vault_secrets
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The built-in `local` provider (listed when local models are on, or a model names it,
    /// so that such a model says local models are off rather than vanishing) and a
    /// `local/NAME` model for each model in the store that no configured or API model of the
    /// same name shadows. Chat models come first, so that a client taking the first model gets
    /// one that chats.
    async fn add_local(&self, providers: &mut Vec<ProviderEntry>, models: &mut Vec<ModelEntry>) {
        let named = models.iter().any(|m| {
            m.settings
                .deployments
                .iter()
                .any(|d| d.provider == LOCAL_PROVIDER)
        });
        if self.inner.local_store.is_none() && !named {
            return;
        }
        providers.push(ProviderEntry {
            settings: ProviderSettings::new(LOCAL_PROVIDER, ProviderKind::Local),
            source: Source::Local,
            created_at: self.inner.started,
            problem: None,
        });
        let Some(store) = &self.inner.local_store else {
            return;
        };
        let mut installed = list_store(store).await;
        installed.sort_by(|a, b| {
            (a.manifest.kind != LocalModelKind::Chat, &a.manifest.name)
                .cmp(&(b.manifest.kind != LocalModelKind::Chat, &b.manifest.name))
        });
        for model in &installed {
            let name = format!("{LOCAL_MODEL_PREFIX}{}", model.manifest.name);
            if models.iter().any(|m| m.settings.name == name) {
                continue;
            }
            models.push(ModelEntry {
                settings: ModelSettings::new(
                    name,
                    vec![DeploymentSettings::new(
                        LOCAL_PROVIDER,
                        model.manifest.name.clone(),
                    )],
                ),
                source: Source::Local,
                created_at: model.manifest.pulled_at,
            });
        }
        *lock(&self.inner.local_listing) = listing(&installed);
    }

    /// Reloads if another process changed the catalog, or a model was pulled into or removed
    /// from the local store. Called periodically.
    pub async fn refresh(&self) -> Result<(), GatewayError> {
        let revision = self.inner.store.catalog_revision().await?;
        if revision
            != self
                .inner
                .revision
                .load(std::sync::atomic::Ordering::Relaxed)
        {
            tracing::info!(revision, "the model catalog changed; reloading");
            return self.reload().await;
        }
        if let Some(store) = &self.inner.local_store {
            let now = listing(&list_store(store).await);
            if now != *lock(&self.inner.local_listing) {
                tracing::info!("the local model store changed; reloading");
                return self.reload().await;
            }
        }
        Ok(())
    }

    /// Waits until every usage record so far is stored.
    pub async fn flush(&self) {
        self.inner.writer.flush().await;
    }

    /// A whole chat answer.
    pub async fn chat(
        &self,
        caller: &Caller,
        model: &str,
        request: &ChatRequest,
    ) -> Result<Completed<ChatResponse>, GatewayError> {
        self.check_budget(caller).await?;
        let started = Instant::now();
        let table = self.table();
        let result = table.router.chat(model, request).await;
        match result {
            Ok(routed) => {
                let usage = routed.value.usage.unwrap_or_else(|| Usage {
                    input_tokens: request.estimated_prompt_tokens(),
                    output_tokens: (routed.value.message.joined_text().len() as u64).div_ceil(4),
                });
                self.account(Outcome {
                    caller,
                    endpoint: "chat",
                    model,
                    provider: Some((&routed.provider, &routed.upstream_model)),
                    usage,
                    latency: started.elapsed(),
                    ttft: Some(routed.latency),
                    status: "ok",
                    stream: false,
                });
                Ok(Completed {
                    value: routed.value,
                    model: routed.model,
                    provider: routed.provider,
                    usage,
                })
            }
            Err(err) => {
                self.account_failure(caller, "chat", model, &err, started, false);
                Err(GatewayError::Route(err))
            }
        }
    }

    /// A streamed chat answer, once its first event has arrived. The stream accounts for
    /// itself when it ends, or when it is dropped (the client went away).
    pub async fn chat_stream(
        &self,
        caller: &Caller,
        model: &str,
        request: &ChatRequest,
    ) -> Result<GatewayStream, GatewayError> {
        self.check_budget(caller).await?;
        let started = Instant::now();
        let table = self.table();
        match table.router.chat_stream(model, request).await {
            Ok(routed) => Ok(GatewayStream::new(
                self.clone(),
                caller.clone(),
                model.to_owned(),
                routed,
                request.estimated_prompt_tokens(),
                started,
            )),
            Err(err) => {
                self.account_failure(caller, "chat", model, &err, started, true);
                Err(GatewayError::Route(err))
            }
        }
    }

    /// Embeddings.
    pub async fn embed(
        &self,
        caller: &Caller,
        model: &str,
        request: &EmbedRequest,
    ) -> Result<Completed<EmbedResponse>, GatewayError> {
        self.check_budget(caller).await?;
        let started = Instant::now();
        let table = self.table();
        match table.router.embed(model, request).await {
            Ok(routed) => {
                let usage = routed.value.usage.unwrap_or_else(|| Usage {
                    input_tokens: request
                        .inputs
                        .iter()
                        .map(|t| (t.len() as u64).div_ceil(4))
                        .sum(),
                    output_tokens: 0,
                });
                self.account(Outcome {
                    caller,
                    endpoint: "embeddings",
                    model,
                    provider: Some((&routed.provider, &routed.upstream_model)),
                    usage,
                    latency: started.elapsed(),
                    ttft: None,
                    status: "ok",
                    stream: false,
                });
                Ok(Completed {
                    value: routed.value,
                    model: routed.model,
                    provider: routed.provider,
                    usage,
                })
            }
            Err(err) => {
                self.account_failure(caller, "embeddings", model, &err, started, false);
                Err(GatewayError::Route(err))
            }
        }
    }

    async fn check_budget(&self, caller: &Caller) -> Result<(), GatewayError> {
        if let Some(key) = caller.api_key_id {
            self.inner
                .budgets
                .check(&self.inner.store, key)
                .await
                .map_err(GatewayError::OverBudget)?;
        }
        Ok(())
    }

    fn account_failure(
        &self,
        caller: &Caller,
        endpoint: &'static str,
        model: &str,
        err: &RouteError,
        started: Instant,
        stream: bool,
    ) {
        // A name nobody configured is a client mistake, not model usage.
        if err.kind == RouteErrorKind::UnknownModel {
            return;
        }
        let status = match &err.kind {
            RouteErrorKind::UnknownModel => "unknown_model",
            RouteErrorKind::RateLimited => "rate_limited",
            RouteErrorKind::Unavailable => "unavailable",
            RouteErrorKind::Rejected(kind) | RouteErrorKind::Failed(kind) => kind.as_str(),
        };
        let provider = err
            .attempts
            .last()
            .and_then(|a| a.deployment.split_once('/'));
        self.account(Outcome {
            caller,
            endpoint,
            model,
            provider,
            usage: Usage::default(),
            latency: started.elapsed(),
            ttft: None,
            status,
            stream,
        });
    }

    /// Records one request: metrics at once, its usage record in the next batch, and its
    /// spend against the key's budgets.
    pub(crate) fn account(&self, outcome: Outcome<'_>) {
        let (provider, upstream_model) = match outcome.provider {
            Some((p, m)) => (Some(p.to_owned()), Some(m.to_owned())),
            None => (None, None),
        };
        let cost_micros = match (&provider, &upstream_model) {
            (Some(p), Some(m)) => self.inner.prices.cost_micros(
                p,
                m,
                outcome.usage.input_tokens,
                outcome.usage.output_tokens,
            ),
            _ => 0,
        };
        let record = UsageRecord {
            id: UsageId::new(),
            created_at: OffsetDateTime::now_utc(),
            request_id: outcome.caller.request_id.clone(),
            user_id: outcome.caller.user_id,
            api_key_id: outcome.caller.api_key_id,
            endpoint: outcome.endpoint.to_owned(),
            model: outcome.model.to_owned(),
            provider,
            upstream_model,
            input_tokens: outcome.usage.input_tokens,
            output_tokens: outcome.usage.output_tokens,
            latency_ms: millis(outcome.latency),
            ttft_ms: outcome.ttft.map(millis),
            status: outcome.status.to_owned(),
            cost_micros,
            stream: outcome.stream,
        };
        self.inner.metrics.observe(&record);
        if let Some(key) = outcome.caller.api_key_id {
            self.inner
                .budgets
                .spent(key, outcome.usage.total(), cost_micros);
        }
        self.inner.writer.write(record);
    }

    /// Every deployment's live state, by model.
    #[must_use]
    pub fn deployment_status(&self, model: &str) -> Option<Vec<DeploymentStatus>> {
        let table = self.table();
        let route = table.router.route(model)?;
        let now = Instant::now();
        Some(
            route
                .deployments
                .iter()
                .map(|d| {
                    let state = d.state();
                    DeploymentStatus {
                        provider: d.provider().to_owned(),
                        upstream_model: d.model().to_owned(),
                        health: state.health(now),
                        in_flight: state.in_flight(),
                        ttft: state.ttft(),
                        consecutive_failures: state.consecutive_failures(),
                        last_minute: state.last_minute(now),
                    }
                })
                .collect(),
        )
    }

    /// Sets the deployment gauges from the live states, before metrics are rendered.
    pub fn update_gauges(&self) {
        let table = self.table();
        let now = Instant::now();
        for model in table.router.models() {
            let Some(route) = table.router.route(model) else {
                continue;
            };
            for d in &route.deployments {
                let labels = DeploymentLabels {
                    provider: d.provider().to_owned(),
                    upstream_model: d.model().to_owned(),
                };
                let healthy = !matches!(d.state().health(now), Health::CoolingDown { .. });
                self.inner
                    .metrics
                    .healthy
                    .get_or_create(&labels)
                    .set(i64::from(healthy));
                self.inner
                    .metrics
                    .in_flight
                    .get_or_create(&labels)
                    .set(i64::from(d.state().in_flight()));
            }
        }
    }

    // --- the catalog, for admins ---

    /// Adds a provider through the API.
    pub async fn create_provider(&self, settings: ProviderSettings) -> Result<(), GatewayError> {
        self.check_provider(&settings).await?;
        let exists = self.table().provider(&settings.name).is_some();
        self.insert_entry(CatalogKind::Provider, &settings.name, &settings, exists)
            .await
    }

    /// Replaces a provider defined through the API.
    pub async fn update_provider(&self, settings: ProviderSettings) -> Result<(), GatewayError> {
        self.check_provider(&settings).await?;
        self.replace_entry(CatalogKind::Provider, &settings.name, &settings)
            .await
    }

    /// Removes a provider defined through the API; refused while a model uses it.
    pub async fn delete_provider(&self, name: &str) -> Result<(), GatewayError> {
        self.writable(CatalogKind::Provider, name)?;
        if let Some(user) = self
            .table()
            .models
            .iter()
            .find(|m| m.settings.deployments.iter().any(|d| d.provider == name))
        {
            return Err(GatewayError::Conflict(format!(
                "model `{}` routes to provider `{name}`; change or delete the model first",
                user.settings.name
            )));
        }
        self.remove_entry(CatalogKind::Provider, name).await
    }

    /// Adds a model through the API.
    pub async fn create_model(&self, settings: ModelSettings) -> Result<(), GatewayError> {
        self.check_model(&settings)?;
        let exists = self.table().model(&settings.name).is_some();
        self.insert_entry(CatalogKind::Model, &settings.name, &settings, exists)
            .await
    }

    /// Replaces a model defined through the API.
    pub async fn update_model(&self, settings: ModelSettings) -> Result<(), GatewayError> {
        self.check_model(&settings)?;
        self.replace_entry(CatalogKind::Model, &settings.name, &settings)
            .await
    }

    /// Removes a model defined through the API; refused while another falls back to it.
    pub async fn delete_model(&self, name: &str) -> Result<(), GatewayError> {
        self.writable(CatalogKind::Model, name)?;
        if let Some(user) = self.table().models.iter().find(|m| {
            let s = &m.settings;
            s.fallbacks
                .iter()
                .chain(&s.context_window_fallbacks)
                .chain(&s.content_policy_fallbacks)
                .any(|f| f == name)
        }) {
            return Err(GatewayError::Conflict(format!(
                "model `{}` falls back to `{name}`; change it first",
                user.settings.name
            )));
        }
        self.remove_entry(CatalogKind::Model, name).await
    }

    async fn insert_entry(
        &self,
        kind: CatalogKind,
        name: &str,
        settings: &impl serde::Serialize,
        exists: bool,
    ) -> Result<(), GatewayError> {
        let taken =
            || GatewayError::Conflict(format!("a {} named `{name}` already exists", kind.as_str()));
        if exists {
            return Err(taken());
        }
        self.inner
            .store
            .insert_catalog(kind, name, &to_document(settings)?)
            .await
            .map_err(|err| match err {
                StoreError::Conflict(_) => taken(),
                other => other.into(),
            })?;
        self.reload().await
    }

    async fn replace_entry(
        &self,
        kind: CatalogKind,
        name: &str,
        settings: &impl serde::Serialize,
    ) -> Result<(), GatewayError> {
        self.writable(kind, name)?;
        self.inner
            .store
            .update_catalog(kind, name, &to_document(settings)?)
            .await?
            .ok_or_else(|| GatewayError::NotFound(format!("{} `{name}`", kind.as_str())))?;
        self.reload().await
    }

    async fn remove_entry(&self, kind: CatalogKind, name: &str) -> Result<(), GatewayError> {
        if !self.inner.store.delete_catalog(kind, name).await? {
            return Err(GatewayError::NotFound(format!(
                "{} `{name}`",
                kind.as_str()
            )));
        }
        self.reload().await
    }

    /// Succeeds for an entry defined through the API.
    fn writable(&self, kind: CatalogKind, name: &str) -> Result<(), GatewayError> {
        let table = self.table();
        let source = match kind {
            CatalogKind::Provider => table.provider(name).map(|e| e.source),
            CatalogKind::Model => table.model(name).map(|e| e.source),
        };
        let what = format!("{} `{name}`", kind.as_str());
        match source {
            None => Err(GatewayError::NotFound(what)),
            Some(Source::Config) => Err(GatewayError::ReadOnly(what)),
            Some(Source::Local) => Err(GatewayError::Conflict(format!(
                "{what} is built in from the local model store; manage local models with \
                 `kai models` or /api/v1/local-models"
            ))),
            Some(Source::Api) => Ok(()),
        }
    }

    async fn check_provider(&self, settings: &ProviderSettings) -> Result<(), GatewayError> {
        kai_config::check_provider(settings).map_err(|(field, message)| GatewayError::Invalid {
            field: field.to_owned(),
            message,
        })?;
        // The credential must resolve now: better refused here than failing every request.
        let secrets = match &settings.api_key {
            Some(CredentialRef::Vault(name)) => match &self.inner.vault {
                Some(vault) => match vault.get_secret(Owner::Node, name).await {
                    Ok(Some((_, value))) => VaultSecrets::Open(
                        [(name.clone(), Secret::new(value.expose().to_owned()))].into(),
                    ),
                    Ok(None) => VaultSecrets::Open(Default::default()),
                    Err(err) => VaultSecrets::Unavailable(err.to_string()),
                },
                None => VaultSecrets::default(),
            },
            _ => VaultSecrets::default(),
        };
        kai_providers::ProviderSpec::from_settings(settings, &self.inner.env, &secrets).map_err(
            |message| GatewayError::Invalid {
                field: "api_key".into(),
                message,
            },
        )?;
        Ok(())
    }

    fn check_model(&self, settings: &ModelSettings) -> Result<(), GatewayError> {
        let table = self.table();
        kai_config::check_model(settings, |name| table.provider(name).is_some())
            .map_err(|(field, message)| GatewayError::Invalid { field, message })?;
        for (field, list) in [
            ("fallbacks", &settings.fallbacks),
            (
                "context_window_fallbacks",
                &settings.context_window_fallbacks,
            ),
            (
                "content_policy_fallbacks",
                &settings.content_policy_fallbacks,
            ),
        ] {
            if let Some(unknown) = list.iter().find(|name| table.model(name).is_none()) {
                return Err(GatewayError::Invalid {
                    field: field.into(),
                    message: format!("no model is named `{unknown}`"),
                });
            }
        }
        Ok(())
    }

    /// The models a provider offers, asked of the provider itself.
    pub async fn upstream_models(&self, provider: &str) -> Result<Vec<String>, GatewayError> {
        let table = self.table();
        let entry = table
            .provider(provider)
            .ok_or_else(|| GatewayError::NotFound(format!("provider `{provider}`")))?;
        let spec = kai_providers::ProviderSpec::from_settings(
            &entry.settings,
            &self.inner.env,
            &self.vault_snapshot(),
        )
        .map_err(|message| GatewayError::Invalid {
            field: "api_key".into(),
            message,
        })?;
        let client = kai_providers::connect(&spec).map_err(|err| GatewayError::Invalid {
            field: "kind".into(),
            message: err.to_string(),
        })?;
        client.list_models().await.map_err(|err: ProviderError| {
            GatewayError::Conflict(format!(
                "provider `{provider}` did not list its models: {err}"
            ))
        })
    }

    // --- usage and budgets ---

    /// Usage totals over `filter`.
    pub async fn usage_totals(&self, filter: &UsageFilter) -> Result<UsageTotals, GatewayError> {
        Ok(self.inner.store.usage_totals(filter).await?)
    }

    /// Usage totals per group.
    pub async fn usage_grouped(
        &self,
        filter: &UsageFilter,
        by: UsageGroup,
    ) -> Result<Vec<(String, UsageTotals)>, GatewayError> {
        Ok(self.inner.store.usage_grouped(filter, by).await?)
    }

    /// Usage records, newest first.
    pub async fn usage_records(
        &self,
        filter: &UsageFilter,
        limit: u32,
        before: Option<UsageId>,
    ) -> Result<Vec<UsageRecord>, GatewayError> {
        Ok(self
            .inner
            .store
            .usage_records(filter, limit, before)
            .await?)
    }

    /// A key's budgets.
    pub async fn budgets(&self, key: ApiKeyId) -> Result<Vec<Budget>, GatewayError> {
        Ok(self.inner.store.key_budgets(key).await?)
    }

    /// Replaces a key's budgets.
    pub async fn set_budgets(&self, key: ApiKeyId, budgets: &[Budget]) -> Result<(), GatewayError> {
        let mut seen = std::collections::HashSet::new();
        for budget in budgets {
            let kind = matches!(budget.limit, kai_core::BudgetLimit::Tokens(_));
            if !seen.insert((budget.period, kind)) {
                return Err(GatewayError::Invalid {
                    field: "budgets".into(),
                    message: format!(
                        "two {} budgets per {}; give one",
                        if kind { "token" } else { "dollar" },
                        budget.period
                    ),
                });
            }
        }
        if !self.inner.store.set_key_budgets(key, budgets).await? {
            return Err(GatewayError::NotFound("API key".into()));
        }
        self.inner.budgets.forget(key);
        Ok(())
    }

    pub(crate) fn store(&self) -> &Store {
        &self.inner.store
    }
}

/// One finished request, to account for.
pub(crate) struct Outcome<'a> {
    pub(crate) caller: &'a Caller,
    pub(crate) endpoint: &'static str,
    pub(crate) model: &'a str,
    pub(crate) provider: Option<(&'a str, &'a str)>,
    pub(crate) usage: Usage,
    pub(crate) latency: Duration,
    pub(crate) ttft: Option<Duration>,
    pub(crate) status: &'static str,
    pub(crate) stream: bool,
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn to_document(value: &impl serde::Serialize) -> Result<String, GatewayError> {
    serde_json::to_string(value).map_err(|err| GatewayError::Invalid {
        field: "(document)".into(),
        message: err.to_string(),
    })
}

/// The local store's models, read off the async runtime. A store that cannot be read offers
/// no models (and says why in the log) rather than taking the catalog down.
async fn list_store(store: &ModelStore) -> Vec<InstalledModel> {
    let store = store.clone();
    match tokio::task::spawn_blocking(move || store.list()).await {
        Ok(Ok(models)) => models,
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "cannot list the local model store");
            Vec::new()
        }
        Err(err) => {
            tracing::warn!(error = %err, "listing the local model store failed");
            Vec::new()
        }
    }
}

fn listing(models: &[InstalledModel]) -> StoreListing {
    let mut listing: StoreListing = models
        .iter()
        .map(|m| (m.manifest.name.clone(), m.manifest.pulled_at))
        .collect();
    listing.sort();
    listing
}
