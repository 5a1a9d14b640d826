//! Rebuilding the routing table: from the configuration file, the catalog the admin API
//! stored, the local model store and the vault's node secrets; at once after a change through
//! this process, and on [`Gateway::refresh`] after a change through another.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};

use kai_config::{CredentialRef, ModelSettings, ProviderSettings, Secret, VaultSecrets};
use kai_store::CatalogKind;
use kai_vault::Owner;

use crate::error::GatewayError;
use crate::gateway::Gateway;
use crate::table::{ModelEntry, ProviderEntry, Source};

impl Gateway {
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
        self.inner
            .local
            .add_to(&mut providers, &mut models, self.inner.started)
            .await;
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
            .unwrap_or_else(PoisonError::into_inner) = secrets;
        *self
            .inner
            .table
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(table);
        self.inner.revision.store(revision, Ordering::Relaxed);
        Ok(())
    }

    /// The node secrets the providers' `vault:NAME` credentials name, read now (a reload after
    /// the vault is unlocked or a secret changes picks them up).
    async fn read_vault(&self, providers: &[ProviderEntry]) -> VaultSecrets {
        let names: BTreeSet<&str> = providers
            .iter()
            .filter_map(|entry| match &entry.settings.api_key {
                Some(CredentialRef::Vault(name)) => Some(name.as_str()),
                _ => None,
            })
            .collect();
        let Some(vault) = &self.inner.vault else {
            return VaultSecrets::default();
        };
        let mut secrets = BTreeMap::new();
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

    /// The node secrets read at the last reload.
    pub(crate) fn vault_snapshot(&self) -> VaultSecrets {
        self.inner
            .vault_secrets
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Reloads if another process changed the catalog, or a model was pulled into or removed
    /// from the local store. Called periodically.
    pub async fn refresh(&self) -> Result<(), GatewayError> {
        let revision = self.inner.store.catalog_revision().await?;
        if revision != self.inner.revision.load(Ordering::Relaxed) {
            tracing::info!(revision, "the model catalog changed; reloading");
            return self.reload().await;
        }
        if self.inner.local.changed().await {
            tracing::info!("the local model store changed; reloading");
            return self.reload().await;
        }
        Ok(())
    }
}
