//! `kai worker`: the background workers without the HTTP server. With PostgreSQL, any number
//! run beside `kai serve` on other machines and share its queue; with SQLite, the data
//! directory's lock allows one process, so `kai serve` (which runs workers too) and `kai
//! worker` do not run together.

use kai_config::Loaded;

use crate::commands::serve::{Core, ShutdownSignals};

pub(crate) async fn run(loaded: Loaded) -> anyhow::Result<()> {
    let settings = loaded.settings;
    let core = Core::start(&settings).await?;
    let queue = kai_jobs::Queue::new(core.store.clone());
    let knowledge = crate::knowledge::open(
        &settings,
        core.store.clone(),
        core.trust.vault().clone(),
        queue.clone(),
        core.gateway.clone(),
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
    let signals = ShutdownSignals::install()?;
    let scheduler = crate::background::start_scheduler(queue.clone());
    let workers = crate::background::start_workers(&knowledge, &agents, &settings, queue);
    let agent_maintenance = tokio::spawn(crate::background::maintain_agents(agents));
    tracing::info!(
        worker = workers.worker_id(),
        database = %settings.database_url,
        "kai worker running; stop it with Ctrl-C"
    );
    let maintenance = tokio::spawn(crate::knowledge::maintain(
        knowledge,
        settings.database_url.kind() == kai_config::DatabaseKind::Postgres,
    ));
    signals.wait().await;
    maintenance.abort();
    agent_maintenance.abort();
    scheduler.shutdown().await;
    let unfinished = workers.shutdown().await;
    if unfinished > 0 {
        tracing::info!(
            unfinished,
            "background jobs left to resume at the next start"
        );
    }
    core.gateway.flush().await;
    core.close().await;
    tracing::info!("stopped");
    Ok(())
}
