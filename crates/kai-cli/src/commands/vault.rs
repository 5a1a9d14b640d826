//! `kai vault …` and `kai identity show`: the vault on the local database, or (status, unlock,
//! lock) on a running server.

use anyhow::bail;
use kai_audit::Actor;
use kai_config::{Environment, Settings};
use kai_vault::{KeyFileKey, UnlockKey};

use crate::cli::{IdentityCommand, VaultCommand};
use crate::commands::connect;
use crate::output;
use crate::trust::{self, Local};

pub(crate) async fn run(
    settings: &Settings,
    env: &Environment,
    command: VaultCommand,
) -> anyhow::Result<()> {
    match command {
        VaultCommand::Status {
            target,
            output: format,
        } if target.remote() => {
            let client = connect::authenticated(settings, env)?;
            let status = client.vault_status().await?;
            print_status(&status, format.json, true)
        }
        VaultCommand::Unlock { target } => {
            if !target.remote() {
                bail!(
                    "a local vault is unlocked by each command that needs it; to unlock a \
                     running server's, add --server (or --url URL)"
                );
            }
            let client = connect::authenticated(settings, env)?;
            let passphrase = trust::passphrase(&settings.vault, "Vault passphrase: ")?;
            client.vault_unlock(&passphrase).await?;
            output::line(&format!("vault unlocked on {}", client.url()));
            Ok(())
        }
        VaultCommand::Lock { target } => {
            if !target.remote() {
                bail!("only a running server holds a vault unlocked; add --server (or --url URL)");
            }
            let client = connect::authenticated(settings, env)?;
            client.vault_lock().await?;
            output::line(&format!("vault locked on {}", client.url()));
            Ok(())
        }
        command => {
            let local = Local::open(settings).await?;
            let result = local_command(settings, &local, command).await;
            local.close().await;
            result
        }
    }
}

async fn local_command(
    settings: &Settings,
    local: &Local,
    command: VaultCommand,
) -> anyhow::Result<()> {
    match command {
        VaultCommand::Init {
            key_file,
            no_passphrase,
        } => {
            if local.trust.vault().status().await?.initialized {
                bail!("the vault is already initialised; see `kai vault status`");
            }
            let mut keys = Vec::new();
            if !no_passphrase {
                keys.push(UnlockKey::Passphrase(trust::new_passphrase(
                    &settings.vault,
                    "New vault passphrase: ",
                    true,
                )?));
            }
            if let Some(path) = &key_file {
                keys.push(UnlockKey::KeyFile(KeyFileKey::create(path)?));
            }
            let public = local.trust.init_vault(Actor::Cli, &keys).await?;
            output::line(&format!("vault created; this node is {}", public.did()));
            if let Some(path) = key_file {
                output::line(&format!(
                    "key file written to {}: set vault.key_file (KAI_VAULT_KEY_FILE) to it for \
                     unattended starts, and keep a copy somewhere safe",
                    path.display()
                ));
            }
            Ok(())
        }
        VaultCommand::Status { output: format, .. } => {
            let status = local.trust.vault().status().await?;
            print_status(&kai_trust::vault_status(status), format.json, false)
        }
        VaultCommand::Passwd => {
            local.unlock(&settings.vault).await?;
            let passphrase =
                trust::new_passphrase(&settings.vault, "New vault passphrase: ", false)?;
            local
                .trust
                .set_unlocker(Actor::Cli, &UnlockKey::Passphrase(passphrase))
                .await?;
            output::line("passphrase changed");
            Ok(())
        }
        VaultCommand::Rotate => {
            local.unlock(&settings.vault).await?;
            let status = local.trust.vault().status().await?;
            let mut keys = Vec::new();
            for kind in &status.unlockers {
                match kind.as_str() {
                    "passphrase" => keys.push(UnlockKey::Passphrase(trust::passphrase(
                        &settings.vault,
                        "Vault passphrase (again, to rewrap the new key): ",
                    )?)),
                    _ => match &settings.vault.key_file {
                        Some(path) => keys.push(UnlockKey::KeyFile(KeyFileKey::read(path)?)),
                        None => bail!(
                            "the vault also unlocks with a key file: set vault.key_file \
                             (KAI_VAULT_KEY_FILE) to it, so that the new master key is wrapped \
                             under it too"
                        ),
                    },
                }
            }
            local.trust.rotate_master_key(Actor::Cli, &keys).await?;
            output::line("master key rotated; every data key was rewrapped");
            Ok(())
        }
        VaultCommand::Unlock { .. } | VaultCommand::Lock { .. } => Ok(()),
    }
}

/// Prints the vault's state; `server` says whether it is a server's, whose locked or unlocked
/// state means something (a local vault is opened by each command that needs it).
fn print_status(status: &kai_proto::VaultStatus, json: bool, server: bool) -> anyhow::Result<()> {
    if json {
        return output::json(status);
    }
    if !status.initialized {
        output::line("no vault yet: create one with `kai vault init`");
        return Ok(());
    }
    let state = match (server, status.unlocked) {
        (true, true) => "unlocked",
        (true, false) => "locked (`kai vault unlock --server` to unlock)",
        (false, _) => "initialised",
    };
    output::line(&format!(
        "vault: {state}; unlocks with {}",
        status.unlockers.join(" or ").replace('_', " ")
    ));
    if let Some(kdf) = &status.kdf {
        output::line(&format!(
            "passphrase: Argon2id, {} MiB, {} passes, {} lanes",
            kdf.memory_kib / 1024,
            kdf.iterations,
            kdf.parallelism
        ));
    }
    if let (Some(created), Some(rotated)) = (status.created_at, status.rotated_at) {
        output::line(&format!(
            "created {}; master key from {}",
            output::timestamp(created),
            output::timestamp(rotated)
        ));
    }
    match (status.failed_unlocks, status.unlock_retry_after_s) {
        (0, _) => {}
        (failed, Some(wait)) => output::line(&format!(
            "{failed} wrong unlock attempts in a row: the next attempt is refused for {wait} s"
        )),
        (failed, None) => output::line(&format!(
            "{failed} wrong unlock attempts in a row (after five, each further one must wait, \
             doubling up to 15 minutes)"
        )),
    }
    Ok(())
}

pub(crate) async fn identity(settings: &Settings, command: IdentityCommand) -> anyhow::Result<()> {
    let IdentityCommand::Show(format) = command;
    let local = Local::open(settings).await?;
    let public = local.trust.vault().public_identity().await;
    local.close().await;
    let Some(public) = public? else {
        bail!("there is no vault yet, so no identity; create one with `kai vault init`");
    };
    let identity = kai_trust::node_identity(&public);
    if format.json {
        output::json(&identity)
    } else {
        output::line(&format!("did:       {}", identity.did));
        output::line(&format!("kid:       {}", identity.kid));
        output::line(&format!("agreement: {}", identity.agreement));
        Ok(())
    }
}
