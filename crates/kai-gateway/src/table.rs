//! The catalog: providers and models from the configuration file (read-only) and from the
//! admin API (stored in the database), merged into one routing table. Rebuilding the table
//! reuses adapters whose settings did not change and keeps every deployment's live state.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;
use kai_config::{Environment, ModelSettings, ProviderKind, ProviderSettings, VaultSecrets};
use kai_models::chat::{ChatRequest, ChatResponse, EmbedRequest, EmbedResponse};
use kai_models::router::{Deployment, DeploymentState, RetryPolicy, Route, Router};
use kai_models::{ChatStream, Provider, ProviderError};
use kai_providers::ProviderSpec;
use time::OffsetDateTime;

/// Where a catalog entry is defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The configuration file: read-only through the API.
    Config,
    /// The admin API: stored in the database.
    Api,
    /// Built in: the `local` provider and a `local/NAME` model for each model in the local
    /// model store. Managed with `kai models` and `/api/v1/local-models`.
    Local,
}

impl Source {
    /// `config`, `api` or `local`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Config => "config",
            Source::Api => "api",
            Source::Local => "local",
        }
    }
}

/// A provider as the catalog holds it.
#[derive(Debug, Clone)]
pub struct ProviderEntry {
    /// Its settings.
    pub settings: ProviderSettings,
    /// Where it is defined.
    pub source: Source,
    /// When it was defined (for config entries: when the gateway started).
    pub created_at: OffsetDateTime,
    /// Why it cannot be used, if it cannot (a credential that does not resolve).
    pub problem: Option<String>,
}

/// A model as the catalog holds it.
#[derive(Debug, Clone)]
pub struct ModelEntry {
    /// Its settings.
    pub settings: ModelSettings,
    /// Where it is defined.
    pub source: Source,
    /// When it was defined.
    pub created_at: OffsetDateTime,
}

/// The merged catalog and the router built from it.
#[derive(Debug, Clone, Default)]
pub struct Table {
    /// Every provider, config ones first.
    pub providers: Vec<ProviderEntry>,
    /// Every model, config ones first.
    pub models: Vec<ModelEntry>,
    /// The routing table.
    pub router: Router,
}

impl Table {
    /// A provider by name.
    #[must_use]
    pub fn provider(&self, name: &str) -> Option<&ProviderEntry> {
        self.providers.iter().find(|p| p.settings.name == name)
    }

    /// A model by name.
    #[must_use]
    pub fn model(&self, name: &str) -> Option<&ModelEntry> {
        self.models.iter().find(|m| m.settings.name == name)
    }
}

/// An adapter with the settings and credential it was built from, so a rebuild can tell
/// whether it is still right.
struct CachedClient {
    settings: ProviderSettings,
    key: Option<String>,
    client: Arc<dyn Provider>,
}

/// Adapters and deployment states that outlive any one table.
#[derive(Default)]
pub(crate) struct Builder {
    /// The embedded runtime, when local models are enabled.
    local: Option<Arc<dyn Provider>>,
    /// Adapters by provider name.
    clients: Mutex<HashMap<String, CachedClient>>,
    states: Mutex<HashMap<(String, String), Arc<DeploymentState>>>,
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder").finish_non_exhaustive()
    }
}

impl Builder {
    /// A builder with no adapters yet, serving the `local` provider with `local` when given.
    pub(crate) fn new(local: Option<Arc<dyn Provider>>) -> Builder {
        Builder {
            local,
            ..Builder::default()
        }
    }

    /// Builds the table for these entries. Entries from the database that no longer fit
    /// (a model naming a provider that was removed from the file) are left out with a warning
    /// rather than stopping the server.
    pub(crate) fn build(
        &self,
        mut providers: Vec<ProviderEntry>,
        models: Vec<ModelEntry>,
        env: &Environment,
        vault: &VaultSecrets,
        policy: RetryPolicy,
    ) -> Table {
        let mut clients: HashMap<String, Arc<dyn Provider>> = HashMap::new();
        {
            let mut cache = lock(&self.clients);
            let mut alive = HashSet::new();
            for entry in &mut providers {
                let name = entry.settings.name.clone();
                alive.insert(name.clone());
                if entry.settings.kind == ProviderKind::Local {
                    let client = match &self.local {
                        Some(local) => Arc::clone(local),
                        None => misconfigured(
                            entry,
                            "local models are switched off (local.enabled = false)".into(),
                        ),
                    };
                    clients.insert(name, client);
                    continue;
                }
                let client = match ProviderSpec::from_settings(&entry.settings, env, vault) {
                    Ok(spec) => {
                        let key = spec.api_key.as_ref().map(|k| k.expose().to_owned());
                        match cache.get(&name) {
                            Some(cached)
                                if cached.settings == entry.settings && cached.key == key =>
                            {
                                Arc::clone(&cached.client)
                            }
                            _ => match kai_providers::connect(&spec) {
                                Ok(client) => {
                                    cache.insert(
                                        name.clone(),
                                        CachedClient {
                                            settings: entry.settings.clone(),
                                            key,
                                            client: Arc::clone(&client),
                                        },
                                    );
                                    client
                                }
                                Err(err) => misconfigured(entry, err.to_string()),
                            },
                        }
                    }
                    Err(why) => misconfigured(entry, why),
                };
                clients.insert(name, client);
            }
            cache.retain(|name, _| alive.contains(name));
        }

        let mut states = lock(&self.states);
        let mut routes = Vec::new();
        let mut kept_models = Vec::new();
        let model_names: HashSet<&str> = models.iter().map(|m| m.settings.name.as_str()).collect();
        for entry in &models {
            let settings = &entry.settings;
            if let Some(missing) = settings
                .deployments
                .iter()
                .find(|d| !clients.contains_key(&d.provider))
            {
                tracing::warn!(
                    model = %settings.name,
                    provider = %missing.provider,
                    "model left out: it names a provider that no longer exists"
                );
                continue;
            }
            let deployments = settings
                .deployments
                .iter()
                .enumerate()
                .map(|(i, d)| {
                    let state = states
                        .entry((d.provider.clone(), d.model.clone()))
                        .or_default();
                    Deployment::new(
                        d.provider.clone(),
                        d.model.clone(),
                        Arc::clone(&clients[&d.provider]),
                        Arc::clone(state),
                    )
                    .with_weight(d.weight)
                    .with_priority(d.priority.unwrap_or(u32::try_from(i).unwrap_or(u32::MAX)))
                    .with_limits(d.rpm, d.tpm)
                })
                .collect();
            let keep = |names: &[String]| -> Vec<String> {
                names
                    .iter()
                    .filter(|name| model_names.contains(name.as_str()))
                    .cloned()
                    .collect()
            };
            routes.push(Route {
                name: settings.name.clone(),
                strategy: settings.strategy,
                deployments,
                retries: settings.retries,
                fallbacks: keep(&settings.fallbacks),
                context_window_fallbacks: keep(&settings.context_window_fallbacks),
                content_policy_fallbacks: keep(&settings.content_policy_fallbacks),
            });
            kept_models.push(entry.clone());
        }
        // Forget the state of deployments no model uses any more.
        let used: HashSet<(String, String)> = kept_models
            .iter()
            .flat_map(|m| {
                m.settings
                    .deployments
                    .iter()
                    .map(|d| (d.provider.clone(), d.model.clone()))
            })
            .collect();
        states.retain(|key, _| used.contains(key));
        Table {
            providers,
            models: kept_models,
            router: Router::new(routes, policy),
        }
    }
}

/// An adapter for a provider that cannot be built: every call says why, so requests fail over
/// to other deployments and the final error explains.
fn misconfigured(entry: &mut ProviderEntry, why: String) -> Arc<dyn Provider> {
    tracing::warn!(provider = %entry.settings.name, problem = %why, "provider unusable");
    entry.problem = Some(why.clone());
    Arc::new(Misconfigured { why })
}

#[derive(Debug)]
struct Misconfigured {
    why: String,
}

impl Misconfigured {
    fn error(&self) -> ProviderError {
        ProviderError::unsupported(format!("the provider is misconfigured: {}", self.why))
    }
}

impl Provider for Misconfigured {
    fn chat<'a>(
        &'a self,
        _: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatResponse, ProviderError>> {
        Box::pin(async move { Err(self.error()) })
    }

    fn chat_stream<'a>(
        &'a self,
        _: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatStream, ProviderError>> {
        Box::pin(async move { Err(self.error()) })
    }

    fn embed<'a>(
        &'a self,
        _: &'a EmbedRequest,
    ) -> BoxFuture<'a, Result<EmbedResponse, ProviderError>> {
        Box::pin(async move { Err(self.error()) })
    }

    fn list_models(&self) -> BoxFuture<'_, Result<Vec<String>, ProviderError>> {
        Box::pin(async move { Err(self.error()) })
    }
}

/// Locks a mutex whose contents stay consistent at every step (plain maps), so a panic
/// elsewhere cannot have left them half-written.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
