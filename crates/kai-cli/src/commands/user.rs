//! `kai user …`: user management straight on the database, for the first admin and for when no
//! admin can log in. Safe while a server runs: the database arbitrates.

use anyhow::{Context, bail};
use kai_audit::Actor;
use kai_auth::UserChanges;
use kai_config::Loaded;
use kai_core::Role;
use kai_trust::Trust;

use crate::cli::UserCommand;
use crate::trust::Local;
use crate::{input, output};

pub(crate) async fn run(loaded: &Loaded, command: UserCommand) -> anyhow::Result<()> {
    let local = Local::open(&loaded.settings).await?;
    let result = dispatch(&local.trust, command).await;
    local.close().await;
    result
}

async fn dispatch(trust: &Trust, command: UserCommand) -> anyhow::Result<()> {
    let accounts = trust.accounts();
    match command {
        UserCommand::Create {
            name,
            admin,
            output: format,
        } => {
            // Check the name before asking for a password that would then be wasted.
            name.parse::<kai_core::Username>()?;
            let password = read_new_password()?;
            let role = if admin { Role::Admin } else { Role::User };
            let user = trust
                .create_user(Actor::Cli, &name, &password, role)
                .await?;
            if format.json {
                output::json(&kai_proto::User::from(user))?;
            } else {
                output::line(&format!(
                    "created {} {} ({})",
                    user.role, user.username, user.id
                ));
            }
        }
        UserCommand::List(format) => {
            let users = accounts.users().await?;
            if format.json {
                let users: Vec<kai_proto::User> = users.into_iter().map(Into::into).collect();
                output::json(&users)?;
            } else {
                let rows: Vec<Vec<String>> = users
                    .into_iter()
                    .map(|user| {
                        vec![
                            user.username.to_string(),
                            user.role.to_string(),
                            if user.disabled {
                                "disabled".into()
                            } else {
                                "active".into()
                            },
                            output::timestamp(user.created_at),
                            user.last_login_at
                                .map_or_else(|| "never".into(), output::timestamp),
                        ]
                    })
                    .collect();
                output::table(
                    &["USERNAME", "ROLE", "STATUS", "CREATED", "LAST LOGIN"],
                    &rows,
                );
            }
        }
        UserCommand::Passwd { name } => {
            let user = accounts.user_by_name(&name).await?;
            let password = read_new_password()?;
            trust
                .update_user(
                    Actor::Cli,
                    user.id,
                    UserChanges {
                        password: Some(password),
                        ..UserChanges::default()
                    },
                )
                .await?;
            output::line(&format!(
                "password of {} changed; their sessions have ended",
                user.username
            ));
        }
        UserCommand::Delete { name } => {
            let user = accounts.user_by_name(&name).await?;
            trust.delete_user(Actor::Cli, user.id).await?;
            output::line(&format!("deleted {}", user.username));
        }
    }
    Ok(())
}

/// A new password: typed twice at a prompt, or one line of stdin when it is not a terminal.
fn read_new_password() -> anyhow::Result<String> {
    let password = input::password("New password: ")?;
    if input::interactive() {
        let second =
            rpassword::prompt_password("Repeat it: ").context("cannot read the password")?;
        if password != second {
            bail!("the two passwords differ; nothing was changed");
        }
    }
    kai_core::validate_password(&password)?;
    Ok(password)
}
