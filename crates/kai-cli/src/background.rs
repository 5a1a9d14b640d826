//! What `kai serve` and `kai worker` run in the background: the workers that index knowledge
//! and work on agent runs, the scheduler, and the agents' upkeep.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use kai_agent::{Agents, RUN_JOB, SCHEDULED_RUN_JOB};
use kai_audit::AuditLog;
use kai_config::Settings;
use kai_events::Events;
use kai_gateway::Gateway;
use kai_jobs::{
    JobContext, KindSettings, Queue, Scheduler, SchedulerHandle, Workers, WorkersHandle,
};
use kai_knowledge::{INDEX_JOB, Knowledge};
use kai_mcp::{McpServerConfig, McpServers};
use kai_store::Store;

/// How often real-time events older than `realtime.retention` are deleted.
const EVENT_PRUNE_INTERVAL: Duration = Duration::from_secs(3600);

/// How often requests that runs made of their owners are checked for expiry.
const EXPIRY_INTERVAL: Duration = Duration::from_secs(30);

/// How long a worker holds a run before another may take it over: the time a run waits after
/// its worker was killed. Renewed every third of it while the run works.
const RUN_LEASE: Duration = Duration::from_secs(30);

/// The agents service, over this process's database, gateway, audit log, events and
/// knowledge.
pub(crate) fn agents(
    settings: &Settings,
    store: &Store,
    gateway: &Gateway,
    audit: &AuditLog,
    events: &Events,
    queue: Queue,
    knowledge: Knowledge,
) -> anyhow::Result<Agents> {
    let workspaces: PathBuf = settings.agents.workspaces(&settings.data_dir);
    Agents::new(
        store.clone(),
        gateway.clone(),
        queue,
        audit.clone(),
        Some(knowledge),
        mcp_servers(settings)?,
        events.clone(),
        settings.agents.clone(),
        workspaces,
    )
    .context("cannot start agents")
}

/// The `[[mcp_servers]]` of the configuration, each read and checked by kai-mcp; none is
/// started until an agent uses it.
fn mcp_servers(settings: &Settings) -> anyhow::Result<McpServers> {
    let mut configs = Vec::new();
    for (index, table) in settings.mcp_servers.iter().enumerate() {
        let config: McpServerConfig = toml::Value::Table(table.0.clone())
            .try_into()
            .with_context(|| {
                format!(
                    "[[mcp_servers]] number {} (`{}`) is not valid",
                    index + 1,
                    table.name()
                )
            })?;
        configs.push(config);
    }
    McpServers::new(configs).context("the [[mcp_servers]] of the configuration are not valid")
}

/// Starts this process's workers: indexing, and agent runs.
pub(crate) fn start_workers(
    knowledge: &Knowledge,
    agents: &Agents,
    settings: &Settings,
    queue: Queue,
) -> WorkersHandle {
    let indexer = knowledge.clone();
    Workers::new(queue)
        .handle(
            INDEX_JOB,
            KindSettings {
                concurrency: knowledge.settings().index_workers,
                ..KindSettings::default()
            },
            move |job: JobContext| {
                let knowledge = indexer.clone();
                async move { knowledge.run_index_job(job).await }
            },
        )
        .handle(
            RUN_JOB,
            KindSettings {
                concurrency: settings.agents.run_workers,
                lease: RUN_LEASE,
                ..KindSettings::default()
            },
            agents.handler(),
        )
        .handle(
            SCHEDULED_RUN_JOB,
            KindSettings::default(),
            agents.scheduled_run_handler(),
        )
        .start()
}

/// Starts this process's scheduler, which enqueues what schedules (agents' among them) have
/// come due; with PostgreSQL every process runs one, and each fire happens once.
pub(crate) fn start_scheduler(queue: Queue) -> SchedulerHandle {
    Scheduler::new(queue).start()
}

/// Expires requests runs made that nobody answered in time, as denials, so that their runs go
/// on. Runs until aborted.
pub(crate) async fn maintain_agents(agents: Agents) {
    let mut every = tokio::time::interval(EXPIRY_INTERVAL);
    loop {
        every.tick().await;
        match agents.expire_requests().await {
            Ok(0) => {}
            Ok(expired) => tracing::info!(expired, "requests to owners expired as denials"),
            Err(err) => tracing::warn!(error = %err, "cannot expire requests to owners"),
        }
    }
}

/// Deletes real-time events (and the chat ids remembered with them) kept longer than
/// `retention`, every hour. Runs until aborted.
pub(crate) async fn maintain_events(events: Events, retention: Duration) {
    let mut every = tokio::time::interval(EVENT_PRUNE_INTERVAL);
    loop {
        every.tick().await;
        match events.prune(retention).await {
            Ok(0) => {}
            Ok(pruned) => tracing::debug!(pruned, "old real-time events deleted"),
            Err(err) => tracing::warn!(error = %err, "cannot delete old real-time events"),
        }
    }
}
