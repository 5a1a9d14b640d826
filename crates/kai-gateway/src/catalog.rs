//! The catalog for admins: providers and models added, replaced and removed through the API
//! (those of the configuration file are read-only), each checked before it is stored and the
//! table rebuilt at once.

use kai_config::{CredentialRef, ModelSettings, ProviderSettings, Secret, VaultSecrets};
use kai_store::{CatalogKind, StoreError};
use kai_vault::Owner;

use crate::error::GatewayError;
use crate::gateway::Gateway;
use crate::table::Source;

impl Gateway {
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
        client
            .list_models()
            .await
            .map_err(|err: kai_models::ProviderError| {
                GatewayError::Conflict(format!(
                    "provider `{provider}` did not list its models: {err}"
                ))
            })
    }
}

fn to_document(value: &impl serde::Serialize) -> Result<String, GatewayError> {
    serde_json::to_string(value).map_err(|err| GatewayError::Invalid {
        field: "(document)".into(),
        message: err.to_string(),
    })
}
