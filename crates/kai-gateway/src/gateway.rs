//! The gateway's shared state: the catalog's routing table, the accounting, and what the
//! other modules reach through [`Gateway`].

use std::sync::atomic::AtomicI64;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use kai_config::{
    CredentialRef, Environment, ModelSettings, ProviderSettings, Settings, VaultSecrets,
};
use kai_models::router::{BreakerPolicy, Health, RetryPolicy};
use kai_store::Store;
use kai_vault::Vault;
use time::OffsetDateTime;

use crate::accounting::{Accounting, DeploymentLabels, GatewayMetrics};
use crate::error::GatewayError;
use crate::local::{LocalCatalog, LocalModels};
use crate::table::{Builder, Table};

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

/// What every clone of a [`Gateway`] shares.
pub(crate) struct Inner {
    pub(crate) store: Store,
    pub(crate) local: LocalCatalog,
    pub(crate) env: Environment,
    /// The vault `vault:NAME` credentials are read from, and what was read at the last reload.
    pub(crate) vault: Option<Vault>,
    pub(crate) vault_secrets: RwLock<VaultSecrets>,
    pub(crate) config_providers: Vec<ProviderSettings>,
    pub(crate) config_models: Vec<ModelSettings>,
    pub(crate) started: OffsetDateTime,
    pub(crate) policy: RetryPolicy,
    pub(crate) builder: Builder,
    pub(crate) table: RwLock<Arc<Table>>,
    pub(crate) revision: AtomicI64,
    pub(crate) accounting: Accounting,
}

/// The gateway. Cheap to clone: clones share everything.
#[derive(Clone)]
pub struct Gateway {
    pub(crate) inner: Arc<Inner>,
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
            accounting: Accounting::new(store.clone(), &settings.prices),
            store,
            local: LocalCatalog::new(local_store),
            env,
            vault,
            vault_secrets: RwLock::new(VaultSecrets::default()),
            config_providers: settings.providers.clone(),
            config_models: settings.models.clone(),
            started: OffsetDateTime::now_utc(),
            policy,
            builder: Builder::new(local_provider),
            table: RwLock::new(Arc::new(Table::default())),
            revision: AtomicI64::new(-1),
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
        &self.inner.accounting.metrics
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

    /// Waits until every usage record so far is stored.
    pub async fn flush(&self) {
        self.inner.accounting.flush().await;
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
                    .accounting
                    .metrics
                    .healthy
                    .get_or_create(&labels)
                    .set(i64::from(healthy));
                self.inner
                    .accounting
                    .metrics
                    .in_flight
                    .get_or_create(&labels)
                    .set(i64::from(d.state().in_flight()));
            }
        }
    }
}
