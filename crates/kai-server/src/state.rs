//! [`AppState`]: the services every handler and middleware reaches.

use std::sync::{Arc, OnceLock};

use axum::body::Bytes;
use kai_agent::Agents;
use kai_audit::AuditLog;
use kai_auth::Accounts;
use kai_config::HttpSettings;
use kai_events::Events;
use kai_gateway::Gateway;
use kai_knowledge::Knowledge;
use kai_model_store::{Fetcher, ModelStore};
use kai_trust::Trust;
use kai_vault::Vault;

use crate::metrics::Metrics;

/// What every handler can reach. Cheap to clone: handlers and middleware clone it several
/// times per request, so it is one shared allocation.
#[derive(Clone, Debug)]
pub struct AppState(Arc<Services>);

/// The services behind an [`AppState`], reached through it.
#[derive(Debug)]
pub struct Services {
    pub(crate) trust: Trust,
    pub(crate) gateway: Gateway,
    pub(crate) knowledge: Knowledge,
    pub(crate) agents: Agents,
    pub(crate) events: Events,
    /// The chat answers this process is writing, by the `chat`'s client id.
    pub(crate) answers: crate::answers::Answers,
    pub(crate) metrics: Metrics,
    pub(crate) http: HttpSettings,
    pub(crate) models: ModelStore,
    pub(crate) fetcher: Fetcher,
    pub(crate) openapi: OnceLock<Bytes>,
}

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

impl AppState {
    /// State over the given services and HTTP settings; local models are pulled into `models`
    /// (the store at `local.models_dir`) through `fetcher`. Every audited action goes through
    /// `trust`; real-time events go through `events`, the hub `knowledge` and `agents`
    /// publish to.
    #[must_use]
    #[allow(clippy::too_many_arguments)] // the services handlers reach, each its own
    pub fn new(
        trust: Trust,
        gateway: Gateway,
        knowledge: Knowledge,
        agents: Agents,
        events: Events,
        http: HttpSettings,
        models: ModelStore,
        fetcher: Fetcher,
    ) -> Self {
        let metrics = Metrics::new(gateway.metrics());
        Self(Arc::new(Services {
            trust,
            gateway,
            knowledge,
            agents,
            events,
            answers: crate::answers::Answers::default(),
            metrics,
            http,
            models,
            fetcher,
            openapi: OnceLock::new(),
        }))
    }

    /// The audited trust service.
    #[must_use]
    pub fn trust(&self) -> &Trust {
        &self.trust
    }

    /// The accounts service.
    #[must_use]
    pub fn accounts(&self) -> &Arc<Accounts> {
        self.trust.accounts()
    }

    /// The model gateway.
    #[must_use]
    pub fn gateway(&self) -> &Gateway {
        &self.gateway
    }

    /// The vault.
    #[must_use]
    pub fn vault(&self) -> &Vault {
        self.trust.vault()
    }

    /// The audit log.
    #[must_use]
    pub fn audit(&self) -> &AuditLog {
        self.trust.audit()
    }
}
