//! The models kai runs itself: the built-in `local` provider and a `local/NAME` model for each
//! model in the local model store, kept in the catalog as the store changes.

use std::sync::{Arc, Mutex};

use kai_config::{
    DeploymentSettings, LOCAL_PROVIDER, ModelSettings, ProviderKind, ProviderSettings,
};
use kai_model_store::{InstalledModel, LocalModelKind, ModelStore};
use kai_models::Provider;
use time::OffsetDateTime;

use crate::table::{ModelEntry, ProviderEntry, Source, lock};

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

/// The local model store as the catalog sees it.
pub(crate) struct LocalCatalog {
    /// The store, when local models are on.
    store: Option<ModelStore>,
    /// Its models when the catalog was last built.
    listing: Mutex<StoreListing>,
}

impl LocalCatalog {
    /// The catalog of `store`'s models; none when local models are off.
    pub(crate) fn new(store: Option<ModelStore>) -> LocalCatalog {
        LocalCatalog {
            store,
            listing: Mutex::new(Vec::new()),
        }
    }

    /// The built-in `local` provider (listed when local models are on, or a model names it,
    /// so that such a model says local models are off rather than vanishing) and a
    /// `local/NAME` model for each model in the store that no configured or API model of the
    /// same name shadows. Chat models come first, so that a client taking the first model gets
    /// one that chats.
    /// `started` is when the gateway started, the built-in provider's creation time.
    pub(crate) async fn add_to(
        &self,
        providers: &mut Vec<ProviderEntry>,
        models: &mut Vec<ModelEntry>,
        started: OffsetDateTime,
    ) {
        let named = models.iter().any(|m| {
            m.settings
                .deployments
                .iter()
                .any(|d| d.provider == LOCAL_PROVIDER)
        });
        if self.store.is_none() && !named {
            return;
        }
        providers.push(ProviderEntry {
            settings: ProviderSettings::new(LOCAL_PROVIDER, ProviderKind::Local),
            source: Source::Local,
            created_at: started,
            problem: None,
        });
        let Some(store) = &self.store else {
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
        *lock(&self.listing) = listing(&installed);
    }

    /// Whether the store's models differ from those the catalog was last built with.
    pub(crate) async fn changed(&self) -> bool {
        let Some(store) = &self.store else {
            return false;
        };
        listing(&list_store(store).await) != *lock(&self.listing)
    }
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
