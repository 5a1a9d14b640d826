//! `kai secret …`: secrets on the local database (the node's, or a user's with `--user`), or
//! on a running server (your own, or the node's with `--node`). Values are read from a prompt
//! or stdin, never from the command line, and every read and change is audited.

use anyhow::{Context, bail};
use kai_audit::Actor;
use kai_config::{Environment, Settings};
use kai_vault::{Owner, SecretValue};

use crate::cli::{SecretCommand, SecretOwner};
use crate::commands::connect;
use crate::trust::Local;
use crate::{input, output};

pub(crate) async fn run(
    settings: &Settings,
    env: &Environment,
    command: SecretCommand,
) -> anyhow::Result<()> {
    let remote = match &command {
        SecretCommand::Set { target, .. }
        | SecretCommand::Get { target, .. }
        | SecretCommand::List { target, .. }
        | SecretCommand::Rm { target, .. } => target.remote(),
    };
    if remote {
        return remote_command(settings, env, command).await;
    }
    let local = Local::open(settings).await?;
    let result = local_command(settings, &local, command).await;
    local.close().await;
    result
}

/// Reads a secret's value: typed at a hidden prompt, or all of stdin without its final newline.
fn read_value() -> anyhow::Result<SecretValue> {
    let value = if input::interactive() {
        rpassword::prompt_password("Value: ").context("cannot read the value")?
    } else {
        let text = input::all()?;
        let text = text.strip_suffix('\n').unwrap_or(&text);
        text.strip_suffix('\r').unwrap_or(text).to_owned()
    };
    if value.is_empty() {
        bail!("no value given: type one at the prompt, or pipe it on stdin");
    }
    Ok(SecretValue::new(value))
}

async fn local_owner(local: &Local, owner: &SecretOwner) -> anyhow::Result<Owner> {
    match &owner.user {
        Some(name) => {
            let user = local
                .store
                .user_by_name(&name.parse::<kai_core::Username>()?)
                .await?
                .with_context(|| format!("no user called {name}"))?;
            Ok(Owner::User(user.user.id))
        }
        None => Ok(Owner::Node),
    }
}

async fn local_command(
    settings: &Settings,
    local: &Local,
    command: SecretCommand,
) -> anyhow::Result<()> {
    match command {
        SecretCommand::Set {
            name,
            description,
            owner,
            ..
        } => {
            kai_vault::check_secret_name(&name)?;
            let owner = local_owner(local, &owner).await?;
            let value = read_value()?;
            local.unlock(&settings.vault).await?;
            local
                .trust
                .write_secret(Actor::Cli, owner, &name, &value, description)
                .await?;
            output::line(&format!("stored {name}"));
        }
        SecretCommand::Get { name, owner, .. } => {
            kai_vault::check_secret_name(&name)?;
            let owner = local_owner(local, &owner).await?;
            local.unlock(&settings.vault).await?;
            let Some((_, value)) = local.trust.read_secret(Actor::Cli, owner, &name).await? else {
                bail!("no secret called {name}; see `kai secret list`");
            };
            output::line(value.expose());
        }
        SecretCommand::List {
            owner,
            output: format,
            ..
        } => {
            let owner = local_owner(local, &owner).await?;
            let secrets = local.trust.vault().list_secrets(owner).await?;
            let secrets: Vec<kai_proto::SecretInfo> =
                secrets.into_iter().map(kai_trust::secret_info).collect();
            print_list(&secrets, format.json)?;
        }
        SecretCommand::Rm { name, owner, .. } => {
            kai_vault::check_secret_name(&name)?;
            let owner = local_owner(local, &owner).await?;
            if !local.trust.delete_secret(Actor::Cli, owner, &name).await? {
                bail!("no secret called {name}; see `kai secret list`");
            }
            output::line(&format!("deleted {name}"));
        }
    }
    Ok(())
}

fn print_list(secrets: &[kai_proto::SecretInfo], json: bool) -> anyhow::Result<()> {
    if json {
        return output::json(&secrets);
    }
    let rows: Vec<Vec<String>> = secrets
        .iter()
        .map(|info| {
            vec![
                info.name.clone(),
                output::timestamp(info.updated_at),
                info.description.clone().unwrap_or_default(),
            ]
        })
        .collect();
    output::table(&["NAME", "UPDATED", "DESCRIPTION"], &rows);
    Ok(())
}

async fn remote_command(
    settings: &Settings,
    env: &Environment,
    command: SecretCommand,
) -> anyhow::Result<()> {
    let client = connect::authenticated(settings, env)?;
    let scope = |owner: &SecretOwner| -> anyhow::Result<&'static str> {
        if owner.user.is_some() {
            bail!(
                "--user works on the local database; on a server you manage your own secrets (or the node's with --node)"
            );
        }
        Ok(if owner.node { "node" } else { "user" })
    };
    match command {
        SecretCommand::Set {
            name,
            description,
            owner,
            ..
        } => {
            kai_vault::check_secret_name(&name)?;
            let scope = scope(&owner)?;
            let value = read_value()?;
            client.put_secret(scope, &name, &value, description).await?;
            output::line(&format!("stored {name}"));
        }
        SecretCommand::Get { name, owner, .. } => {
            kai_vault::check_secret_name(&name)?;
            let value = client.get_secret(scope(&owner)?, &name).await?;
            output::line(value.value.expose());
        }
        SecretCommand::List {
            owner,
            output: format,
            ..
        } => {
            let secrets = client.list_secrets(scope(&owner)?).await?;
            print_list(&secrets, format.json)?;
        }
        SecretCommand::Rm { name, owner, .. } => {
            kai_vault::check_secret_name(&name)?;
            client.delete_secret(scope(&owner)?, &name).await?;
            output::line(&format!("deleted {name}"));
        }
    }
    Ok(())
}
