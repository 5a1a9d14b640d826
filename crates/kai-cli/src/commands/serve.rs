//! `kai serve`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use kai_audit::AuditLog;
use kai_auth::Accounts;
use kai_config::{DatabaseKind, Environment, Loaded, Settings};
use kai_gateway::{Gateway, LocalModels};
use kai_local::{LocalOptions, LocalProvider};
use kai_model_store::{Fetcher, ModelStore};
use kai_server::AppState;
use kai_store::Store;
use kai_trust::Trust;
use kai_vault::Vault;

use crate::lock::ServerLock;

/// How long shutdown waits for database connections still in use.
const POOL_CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// How often expired sessions are swept out.
const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(3600);

/// How often the model catalog is checked for changes made by other processes.
const CATALOG_INTERVAL: Duration = Duration::from_secs(2);

/// What `kai serve` and `kai worker` both run on: the database, accounts, vault, audit log and
/// model gateway, with the vault unlocked when it can be at start.
pub(crate) struct Core {
    pub(crate) store: Store,
    pub(crate) accounts: Arc<Accounts>,
    pub(crate) audit: AuditLog,
    pub(crate) gateway: Gateway,
    pub(crate) trust: Trust,
    /// The real-time event hub that agents, knowledge and the server publish to.
    pub(crate) events: kai_events::Events,
    /// Held until the process stops.
    pub(crate) _locks: Vec<ServerLock>,
}

impl Core {
    pub(crate) async fn start(settings: &Settings) -> anyhow::Result<Core> {
        // Held until the process has stopped.
        let mut locks = Vec::new();
        if settings.database_url.kind() == DatabaseKind::Sqlite {
            kai_store::create_private_dir(&settings.data_dir).with_context(|| {
                format!(
                    "cannot create the data directory {}",
                    settings.data_dir.display()
                )
            })?;
            locks.push(ServerLock::data_dir(&settings.data_dir)?);
            if let Some(file) = kai_store::sqlite_file(&settings.database_url) {
                if let Some(dir) = file.parent().filter(|dir| !dir.as_os_str().is_empty()) {
                    kai_store::create_private_dir(dir).with_context(|| {
                        format!("cannot create the database's directory {}", dir.display())
                    })?;
                }
                locks.push(ServerLock::database(&file)?);
            }
        }

        let store = Store::connect(&settings.database_url, &settings.database).await?;
        if settings.database_url.kind() == DatabaseKind::Sqlite {
            // The data directory's lock is held: jobs still running were left by a process
            // that died, and can be resumed now rather than when their leases run out.
            let released = store.expire_leases(time::OffsetDateTime::now_utc()).await?;
            if released > 0 {
                tracing::info!(
                    jobs = released,
                    "resuming background jobs a stopped kai left running"
                );
            }
        }
        let accounts = Arc::new(Accounts::new(store.clone(), settings.auth.clone()).await?);
        let vault = Vault::new(store.clone(), &settings.vault);
        let audit = AuditLog::new(store.clone(), vault.clone(), &settings.audit);
        let local = if settings.local.enabled {
            let models = ModelStore::new(&settings.local.models_dir);
            let runtime = LocalProvider::new(
                models.clone(),
                LocalOptions {
                    threads: settings.local.effective_threads(),
                    max_concurrent: settings.local.max_concurrent,
                    context_size: settings.local.context_size,
                },
            )
            .context("cannot start the local model runtime")?;
            Some(LocalModels {
                provider: Arc::new(runtime),
                store: models,
            })
        } else {
            None
        };
        let gateway = Gateway::new(
            store.clone(),
            settings,
            Environment::from_process(),
            local,
            Some(vault.clone()),
        )
        .await
        .context("cannot start the model gateway")?;
        let trust = Trust::new(
            Arc::clone(&accounts),
            vault,
            audit.clone(),
            Some(gateway.clone()),
        );
        // After the gateway: unlocking reloads it, so `vault:NAME` credentials resolve.
        crate::trust::unlock_at_start(&trust, &settings.vault).await?;
        let events = kai_events::Events::start(store.clone())
            .await
            .context("cannot start the real-time events")?;
        {
            let table = gateway.table();
            tracing::info!(
                models = table.models.len(),
                providers = table.providers.len(),
                "model gateway ready"
            );
        }
        Ok(Core {
            store,
            accounts,
            audit,
            gateway,
            trust,
            events,
            _locks: locks,
        })
    }

    /// Waits for connections still in use, briefly, and closes the database.
    pub(crate) async fn close(&self) {
        // Requests cut off at the end of the grace period may still hold connections; do not
        // wait on them for long.
        if tokio::time::timeout(POOL_CLOSE_TIMEOUT, self.store.close())
            .await
            .is_err()
        {
            tracing::warn!("database connections still busy after shutdown; closing anyway");
        }
    }
}

pub(crate) async fn run(loaded: Loaded) -> anyhow::Result<()> {
    let settings = loaded.settings;
    let core = Core::start(&settings).await?;
    let (store, accounts, audit, gateway) = (
        core.store.clone(),
        core.accounts.clone(),
        core.audit.clone(),
        core.gateway.clone(),
    );
    let queue = kai_jobs::Queue::new(store.clone());
    let knowledge = crate::knowledge::open(
        &settings,
        store.clone(),
        core.trust.vault().clone(),
        queue.clone(),
        gateway.clone(),
        core.events.clone(),
    )
    .await?;
    let agents = crate::background::agents(
        &settings,
        &core.store,
        &core.gateway,
        &core.audit,
        &core.events,
        queue.clone(),
        knowledge.clone(),
    )?;
    let scheduler = crate::background::start_scheduler(queue.clone());
    let workers = crate::background::start_workers(&knowledge, &agents, &settings, queue);
    if store.count_users().await? == 0 {
        tracing::warn!("no users yet: create the first admin with `kai user create --admin NAME`");
    }

    let signals = ShutdownSignals::install()?;
    let listener = tokio::net::TcpListener::bind(settings.bind)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}; choose another address with --bind or KAI_BIND",
                settings.bind
            )
        })?;
    let address = listener.local_addr()?;
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        database = %settings.database_url,
        "kai listening on http://{address} (API reference at http://{address}/docs)"
    );

    let maintenance = tokio::spawn(kai_server::maintain(accounts.clone(), MAINTENANCE_INTERVAL));
    let catalog = tokio::spawn(kai_server::follow_catalog(
        gateway.clone(),
        CATALOG_INTERVAL,
    ));
    let agent_maintenance = tokio::spawn(crate::background::maintain_agents(agents.clone()));
    let event_maintenance = tokio::spawn(crate::background::maintain_events(
        core.events.clone(),
        settings.realtime.retention,
    ));
    let knowledge_maintenance = tokio::spawn(crate::knowledge::maintain(
        knowledge.clone(),
        settings.database_url.kind() == DatabaseKind::Postgres,
    ));
    let fetcher = Fetcher::new(&settings.local, &Environment::from_process())?;
    let app = kai_server::app(AppState::new(
        core.trust.clone(),
        gateway.clone(),
        knowledge,
        agents,
        core.events.clone(),
        settings.http.clone(),
        ModelStore::new(&settings.local.models_dir),
        fetcher,
    ));
    kai_server::serve(listener, app, signals.wait(), &settings.http).await?;
    maintenance.abort();
    catalog.abort();
    knowledge_maintenance.abort();
    agent_maintenance.abort();
    event_maintenance.abort();
    scheduler.shutdown().await;
    // A job cut short keeps its lease, which runs out; another worker (or the next start)
    // resumes it.
    let unfinished = workers.shutdown().await;
    if unfinished > 0 {
        tracing::info!(
            unfinished,
            "background jobs left to resume at the next start"
        );
    }
    // Usage records are written in batches; the last ones go before the pool closes.
    gateway.flush().await;
    // A last checkpoint, so that a verifier sees every entry committed to.
    if let Err(err) = audit.checkpoint().await {
        tracing::debug!(error = %err, "no checkpoint at shutdown");
    }
    core.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// SIGINT and SIGTERM handlers, installed before the server says it is listening: a signal
/// that arrives between that line and the first poll of the shutdown future must still shut the
/// server down gracefully instead of killing it with the default action.
pub(crate) struct ShutdownSignals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    pub(crate) fn install() -> anyhow::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self {
                interrupt: signal(SignalKind::interrupt())
                    .context("cannot install the SIGINT handler")?,
                terminate: signal(SignalKind::terminate())
                    .context("cannot install the SIGTERM handler")?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// Completes on the first signal; a second one exits at once.
    pub(crate) async fn wait(mut self) {
        let first = self.next().await;
        tracing::info!("received {first}");
        // A second signal means the person is done waiting for the drain.
        tokio::spawn(async move {
            let second = self.next().await;
            tracing::warn!(
                "received {second} again; exiting without waiting for requests in flight"
            );
            std::process::exit(130);
        });
    }

    /// Waits for SIGINT or SIGTERM and names it.
    #[cfg(unix)]
    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
        }
    }

    #[cfg(not(unix))]
    async fn next(&mut self) -> &'static str {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}
