//! One module per command. Each loads what it needs and nothing more: `config show` never
//! touches the database, `user` never opens a port, `login` and `chat` only talk to a server
//! over HTTP, `models` only touches the model store and the registries models come from;
//! `vault`, `secret`, `identity` and `audit` work on the database (or, with `--server`, talk to a
//! server); `artifact`, `collection`, `search`, `knowledge status`, `agent` and `prompt` talk
//! to a server, and
//! `worker` and `knowledge reindex` work on the database and the data directory.

mod agents;
mod audit;
mod chat;
mod config;
mod connect;
mod knowledge;
mod login;
mod mcp;
mod models;
mod notes;
mod openapi;
mod secret;
mod serve;
mod user;
mod vault;
mod worker;

use anyhow::Context;
use kai_config::{Environment, Flag, Loaded, Sources};

use crate::cli::{Cli, Command, SecretCommand, VaultCommand};
use crate::logging;

/// Runs the command the user asked for.
pub(crate) fn run(cli: Cli) -> anyhow::Result<()> {
    let mut flags = cli.global.flags();
    if let Command::Serve(args) = &cli.command
        && let Some(bind) = args.bind
    {
        flags.push(Flag {
            key: "bind",
            flag: "--bind",
            value: bind.to_string(),
        });
    }
    let url = match &cli.command {
        Command::Login(args) => args.server.url.as_ref(),
        Command::Chat(args) => args.server.url.as_ref(),
        Command::Vault(
            VaultCommand::Status { target, .. }
            | VaultCommand::Unlock { target }
            | VaultCommand::Lock { target },
        ) => target.url.as_ref(),
        Command::Secret(
            SecretCommand::Set { target, .. }
            | SecretCommand::Get { target, .. }
            | SecretCommand::List { target, .. }
            | SecretCommand::Rm { target, .. },
        ) => target.url.as_ref(),
        _ => None,
    };
    if let Some(url) = url {
        flags.push(Flag {
            key: "client.url",
            flag: "--url",
            value: url.clone(),
        });
    }
    let sources = Sources {
        config_file: cli.global.config.clone(),
        env: Environment::from_process(),
        flags,
    };
    let loaded = kai_config::load(&sources)?;

    match cli.command {
        Command::Config(command) => config::run(&loaded, command),
        Command::Openapi => openapi::run(),
        Command::Serve(_) => {
            logging::init(&loaded.settings.log)?;
            runtime()?.block_on(serve::run(loaded))
        }
        Command::User(command) => {
            quiet_logging(&loaded, cli.global.log_level.is_some())?;
            runtime()?.block_on(user::run(&loaded, command))
        }
        Command::Login(args) => {
            quiet_logging(&loaded, cli.global.log_level.is_some())?;
            runtime()?.block_on(login::login(&loaded.settings, &sources.env, args))
        }
        Command::Logout => {
            quiet_logging(&loaded, cli.global.log_level.is_some())?;
            runtime()?.block_on(login::logout(&sources.env))
        }
        Command::Chat(args) => {
            quiet_logging(&loaded, cli.global.log_level.is_some())?;
            runtime()?.block_on(chat::run(&loaded.settings, &sources.env, args))
        }
        Command::Models(command) => {
            quiet_logging(&loaded, cli.global.log_level.is_some())?;
            runtime()?.block_on(models::run(&loaded.settings, &sources.env, command))
        }
        Command::Vault(command) => {
            quiet_logging(&loaded, cli.global.log_level.is_some())?;
            runtime()?.block_on(vault::run(&loaded.settings, &sources.env, command))
        }
        Command::Secret(command) => {
            quiet_logging(&loaded, cli.global.log_level.is_some())?;
            runtime()?.block_on(secret::run(&loaded.settings, &sources.env, command))
        }
        Command::Identity(command) => {
            quiet_logging(&loaded, cli.global.log_level.is_some())?;
            runtime()?.block_on(vault::identity(&loaded.settings, command))
        }
        Command::Audit(command) => {
            quiet_logging(&loaded, cli.global.log_level.is_some())?;
            runtime()?.block_on(audit::run(&loaded.settings, command))
        }
        Command::Artifact(command) => {
            quiet_logging(&loaded, cli.global.log_level.is_some())?;
            runtime()?.block_on(knowledge::artifact(&loaded.settings, &sources.env, command))
        }
        Command::Agent(command) => {
            quiet_logging(&loaded, cli.global.log_level.is_some())?;
            runtime()?.block_on(agents::run(&loaded.settings, &sources.env, *command))
        }
        Command::Prompt(command) => {
            quiet_logging(&loaded, cli.global.log_level.is_some())?;
            runtime()?.block_on(agents::prompts(&loaded.settings, &sources.env, command))
        }
        Command::Mcp => {
            quiet_logging(&loaded, cli.global.log_level.is_some())?;
            runtime()?.block_on(mcp::run(&loaded.settings, &sources.env))
        }
        Command::Schedule(command) => {
            quiet_logging(&loaded, cli.global.log_level.is_some())?;
            runtime()?.block_on(agents::schedules(&loaded.settings, &sources.env, command))
        }
        Command::Note(command) => {
            quiet_logging(&loaded, cli.global.log_level.is_some())?;
            runtime()?.block_on(notes::run(&loaded.settings, &sources.env, command))
        }
        Command::Collection(command) => {
            quiet_logging(&loaded, cli.global.log_level.is_some())?;
            runtime()?.block_on(knowledge::collection(
                &loaded.settings,
                &sources.env,
                command,
            ))
        }
        Command::Search(args) => {
            quiet_logging(&loaded, cli.global.log_level.is_some())?;
            runtime()?.block_on(knowledge::search(&loaded.settings, &sources.env, args))
        }
        Command::Knowledge(command) => {
            quiet_logging(&loaded, cli.global.log_level.is_some())?;
            runtime()?.block_on(knowledge::knowledge(&loaded, &sources.env, command))
        }
        Command::Worker => {
            logging::init(&loaded.settings.log)?;
            runtime()?.block_on(worker::run(loaded))
        }
    }
}

/// Commands other than `serve` log only warnings, unless asked for more with `--log-level`.
fn quiet_logging(loaded: &Loaded, level_given: bool) -> anyhow::Result<()> {
    let mut log = loaded.settings.log.clone();
    if !level_given {
        log.level = "warn".into();
    }
    logging::init(&log)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}
