//! Opening the vault and the audit log from the command line: on a server at start, and in the
//! local commands. A key comes from vault.key_file, else vault.passphrase_file, else a prompt.

use std::sync::Arc;

use anyhow::{Context, bail};
use kai_audit::{Actor, AuditLog};
use kai_auth::Accounts;
use kai_config::{Settings, VaultSettings};
use kai_store::Store;
use kai_trust::Trust;
use kai_vault::{KeyFileKey, Passphrase, UnlockKey, Vault};

use crate::input;

/// Unlocks a server's vault at start when a key file or passphrase file is configured; else it
/// starts locked and says how to unlock it. A wrong key stops the start: a server that cannot
/// sign its audit log should not run as if it could.
pub(crate) async fn unlock_at_start(trust: &Trust, settings: &VaultSettings) -> anyhow::Result<()> {
    let status = trust.vault().status().await?;
    if !status.initialized {
        tracing::warn!(
            "no vault yet: create one with `kai vault init` (secrets and signed audit entries need it)"
        );
        return Ok(());
    }
    let key = if let Some(path) = &settings.key_file {
        UnlockKey::KeyFile(KeyFileKey::read(path)?)
    } else if let Some(path) = &settings.passphrase_file {
        UnlockKey::Passphrase(Passphrase::read_file(path)?)
    } else {
        tracing::warn!(
            "the vault is locked: secrets are unavailable and audit entries wait for a signature \
             until an admin runs `kai vault unlock --server`"
        );
        return Ok(());
    };
    trust
        .unlock_vault(Actor::Node, &key)
        .await
        .context("cannot unlock the vault at start")?;
    Ok(())
}

/// The local database and the trust service over it, for the commands that work on them
/// directly. Its trust service has no gateway: a running server picks up what changed at its
/// next reload.
pub(crate) struct Local {
    pub(crate) store: Store,
    pub(crate) trust: Trust,
}

impl Local {
    pub(crate) async fn open(settings: &Settings) -> anyhow::Result<Local> {
        let store = Store::connect(&settings.database_url, &settings.database).await?;
        let accounts = Accounts::new(store.clone(), settings.auth.clone()).await?;
        let vault = Vault::new(store.clone(), &settings.vault);
        let audit = AuditLog::new(store.clone(), vault.clone(), &settings.audit);
        Ok(Local {
            trust: Trust::new(Arc::new(accounts), vault, audit, None),
            store,
        })
    }

    /// Unlocks the vault with the configured key file, passphrase file, or a prompt.
    pub(crate) async fn unlock(&self, settings: &VaultSettings) -> anyhow::Result<()> {
        let status = self.trust.vault().status().await?;
        if !status.initialized {
            bail!("there is no vault yet; create one with `kai vault init`");
        }
        let key = match &settings.key_file {
            Some(path) if status.unlockers.iter().any(|kind| kind == "key_file") => {
                UnlockKey::KeyFile(KeyFileKey::read(path)?)
            }
            _ => UnlockKey::Passphrase(passphrase(settings, "Vault passphrase: ")?),
        };
        self.trust.unlock_vault(Actor::Cli, &key).await?;
        Ok(())
    }

    pub(crate) async fn close(self) {
        drop(self.trust);
        self.store.close().await;
    }
}

/// The passphrase: vault.passphrase_file's first line, else a prompt (or stdin's first line).
pub(crate) fn passphrase(settings: &VaultSettings, prompt: &str) -> anyhow::Result<Passphrase> {
    match &settings.passphrase_file {
        Some(path) => Ok(Passphrase::read_file(path)?),
        None => Ok(Passphrase::new(input::password(prompt)?)),
    }
}

/// A new passphrase: typed twice at a prompt, else a line of stdin; for a new vault,
/// vault.passphrase_file's first line when it is set.
pub(crate) fn new_passphrase(
    settings: &VaultSettings,
    prompt: &str,
    from_file: bool,
) -> anyhow::Result<Passphrase> {
    if from_file && let Some(path) = &settings.passphrase_file {
        let passphrase = Passphrase::read_file(path)?;
        passphrase.check_new()?;
        return Ok(passphrase);
    }
    let first = input::password(prompt)?;
    if input::interactive() {
        let second =
            rpassword::prompt_password("Repeat it: ").context("cannot read the passphrase")?;
        if first != second {
            bail!("the two passphrases differ; nothing was changed");
        }
    }
    let passphrase = Passphrase::new(first);
    passphrase.check_new()?;
    Ok(passphrase)
}
