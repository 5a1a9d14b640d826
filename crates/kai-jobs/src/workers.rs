//! The runtime: per kind, a dispatcher leases jobs while fewer than its concurrency run; per
//! leased job, an attempt runs the handler in a task of its own, renews the lease while it
//! runs, and records how it ended.

use std::any::Any;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use kai_core::JobId;
use kai_store::{FailOutcome, Job};
use time::OffsetDateTime;
use tokio::sync::{Notify, watch};
use tokio::task::{JoinError, JoinHandle, JoinSet};
use tokio::time::{Instant, MissedTickBehavior};
use tracing::Instrument as _;

use crate::{Handler, JobContext, JobError, Queue, StopReason};

/// The longest lease: longer ones only delay taking over a job whose worker died, and would
/// overflow the date arithmetic at the extreme.
const LONGEST_LEASE: Duration = Duration::from_secs(24 * 60 * 60);

/// Delays before retrying after transient failures: exponential from `base`, doubling with each
/// failed attempt, at most `max`, with jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The delay after the first failed attempt (before jitter).
    pub base: Duration,
    /// The longest delay (before jitter).
    pub max: Duration,
}

impl Default for Backoff {
    /// From a second, doubling, up to ten minutes.
    fn default() -> Backoff {
        Backoff {
            base: Duration::from_secs(1),
            max: Duration::from_secs(10 * 60),
        }
    }
}

impl Backoff {
    /// The delay after failed attempt `attempt` (from 1): `base × 2^(attempt − 1)`, at most
    /// `max`, of which a random part between a half and all. The jitter spreads out the
    /// retries of jobs that failed together (a provider down for a minute), which would
    /// otherwise all come back at the same moment.
    #[must_use]
    pub fn delay(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        let full = self.base.saturating_mul(1 << doublings).min(self.max);
        Duration::try_from_secs_f64(full.as_secs_f64() * rand::random_range(0.5..=1.0))
            .unwrap_or(full)
    }
}

/// How this process runs the jobs of one kind. [`KindSettings::default`] runs one at a time,
/// with a minute's lease, no limit across processes, and the default [`Backoff`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindSettings {
    /// How many jobs of the kind this process runs at once (0 is taken as 1).
    pub concurrency: usize,
    /// How long a lease lasts unrenewed: how long a job whose worker died waits before another
    /// worker takes it over. A running job's lease is renewed every third of this (at most a
    /// day: longer is taken as a day).
    pub lease: Duration,
    /// How many jobs of the kind may run at once in all processes sharing the database
    /// together, if limited: for work that strains something shared (a provider's rate
    /// limit, a GPU).
    pub limit: Option<u32>,
    /// Delays before retries after transient failures.
    pub backoff: Backoff,
}

impl Default for KindSettings {
    fn default() -> KindSettings {
        KindSettings {
            concurrency: 1,
            lease: Duration::from_secs(60),
            limit: None,
            backoff: Backoff::default(),
        }
    }
}

/// A kind's handler and settings.
struct Kind {
    name: String,
    settings: KindSettings,
    handler: Arc<dyn Handler>,
}

/// Workers to start: which kinds this process runs, with which handlers, and how.
///
/// ```no_run
/// # async fn example(store: kai_store::Store) {
/// use kai_jobs::{JobContext, JobError, KindSettings, Queue, Workers};
///
/// let queue = Queue::new(store);
/// let workers = Workers::new(queue.clone())
///     .handle(
///         "index-artifact",
///         KindSettings { concurrency: 2, ..KindSettings::default() },
///         |job: JobContext| async move {
///             let artifact: String = job.payload()?;
///             tracing::info!(%artifact, "indexing");
///             Ok::<_, JobError>(())
///         },
///     )
///     .start();
/// // … serve; enqueue through `queue` …
/// workers.shutdown().await;
/// # }
/// ```
pub struct Workers {
    queue: Queue,
    worker_id: String,
    poll_interval: Duration,
    shutdown_grace: Duration,
    kinds: Vec<Kind>,
}

impl Workers {
    /// No kinds yet; a worker id of the host, the process id and a random part; polling every
    /// half second; thirty seconds' grace at shutdown.
    #[must_use]
    pub fn new(queue: Queue) -> Workers {
        Workers {
            queue,
            worker_id: default_worker_id(),
            poll_interval: Duration::from_millis(500),
            shutdown_grace: Duration::from_secs(30),
            kinds: Vec::new(),
        }
    }

    /// Names these workers in the leases they hold. It must be unique among all workers
    /// sharing the database: one that took over another's name could finish its jobs.
    #[must_use]
    pub fn worker_id(mut self, id: impl Into<String>) -> Workers {
        self.worker_id = id.into();
        self
    }

    /// How often an idle worker looks for jobs enqueued by other processes (or due after a
    /// retry delay). Jobs enqueued through this process's [`Queue`] wake it at once.
    #[must_use]
    pub fn poll_interval(mut self, every: Duration) -> Workers {
        self.poll_interval = every;
        self
    }

    /// How long [`WorkersHandle::shutdown`] waits for running handlers to finish.
    #[must_use]
    pub fn shutdown_grace(mut self, grace: Duration) -> Workers {
        self.shutdown_grace = grace;
        self
    }

    /// Runs the jobs of `kind` with `handler`, as `settings` say.
    ///
    /// # Panics
    /// If `kind` already has a handler: two would race for its jobs.
    #[must_use]
    pub fn handle(
        mut self,
        kind: impl Into<String>,
        settings: KindSettings,
        handler: impl Handler,
    ) -> Workers {
        let name = kind.into();
        assert!(
            self.kinds.iter().all(|kind| kind.name != name),
            "job kind `{name}` has two handlers"
        );
        let settings = KindSettings {
            concurrency: settings.concurrency.max(1),
            lease: settings.lease.min(LONGEST_LEASE),
            ..settings
        };
        self.kinds.push(Kind {
            name,
            settings,
            handler: Arc::new(handler),
        });
        self
    }

    /// Starts a dispatcher per kind, on the current tokio runtime.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    #[must_use = "dropping the handle stops the workers at once"]
    pub fn start(self) -> WorkersHandle {
        let (stop, stopping) = watch::channel(());
        let running = Arc::new(AtomicUsize::new(0));
        let worker: Arc<str> = Arc::from(self.worker_id.as_str());
        let mut dispatchers = JoinSet::new();
        for kind in self.kinds {
            tracing::info!(
                worker = %worker,
                kind = %kind.name,
                concurrency = kind.settings.concurrency,
                limit = ?kind.settings.limit,
                "starting job workers"
            );
            let dispatcher = Dispatcher {
                wake: self.queue.subscribe(&kind.name),
                runner: Arc::new(Runner {
                    kind,
                    queue: self.queue.clone(),
                    worker: Arc::clone(&worker),
                }),
                poll_interval: self.poll_interval,
                stopping: stopping.clone(),
                running: Arc::clone(&running),
            };
            dispatchers.spawn(dispatcher.run());
        }
        WorkersHandle {
            worker_id: self.worker_id,
            grace: self.shutdown_grace,
            stop,
            dispatchers,
            running,
        }
    }
}

/// Started workers. Dropping this without [`WorkersHandle::shutdown`] stops them at once, as a
/// shutdown with no grace would.
#[derive(Debug)]
pub struct WorkersHandle {
    worker_id: String,
    grace: Duration,
    /// Dropped to begin shutdown: every dispatcher and attempt watches it close.
    stop: watch::Sender<()>,
    dispatchers: JoinSet<()>,
    running: Arc<AtomicUsize>,
}

impl WorkersHandle {
    /// The name these workers hold leases under.
    #[must_use]
    pub fn worker_id(&self) -> &str {
        &self.worker_id
    }

    /// Stops leasing, tells running handlers to stop ([`StopReason::ShuttingDown`]), and waits
    /// up to the grace period for them to finish; their outcomes are recorded as usual. Those
    /// still running then are dropped and their jobs keep their leases, which run out and make
    /// them available again, as after a crash. Returns how many were left so.
    pub async fn shutdown(self) -> usize {
        let WorkersHandle {
            worker_id,
            grace,
            stop,
            mut dispatchers,
            running,
        } = self;
        drop(stop);
        tracing::info!(worker = %worker_id, "stopping job workers");
        let drained = tokio::time::timeout(grace, async {
            while let Some(ended) = dispatchers.join_next().await {
                report_task_failure(ended, "a job dispatcher");
            }
        })
        .await
        .is_ok();
        if drained {
            return 0;
        }
        let abandoned = running.load(Ordering::SeqCst);
        tracing::warn!(
            worker = %worker_id,
            abandoned,
            grace_secs = grace.as_secs_f64(),
            "jobs still running at the end of the shutdown grace period were left: \
             they run again once their leases run out"
        );
        dispatchers.shutdown().await;
        abandoned
    }
}

/// What a kind's dispatcher and its attempts share.
struct Runner {
    kind: Kind,
    queue: Queue,
    worker: Arc<str>,
}

/// Leases the jobs of one kind and starts an attempt at each.
struct Dispatcher {
    runner: Arc<Runner>,
    wake: Arc<Notify>,
    poll_interval: Duration,
    stopping: watch::Receiver<()>,
    running: Arc<AtomicUsize>,
}

impl Dispatcher {
    async fn run(mut self) {
        let runner = Arc::clone(&self.runner);
        let settings = runner.kind.settings;
        let lease = time::Duration::try_from(settings.lease).unwrap_or(time::Duration::DAY);
        let mut attempts = JoinSet::new();
        loop {
            while let Some(ended) = attempts.try_join_next() {
                report_task_failure(ended, "a job attempt");
            }
            if self.stopping.has_changed().is_err() {
                break;
            }
            if attempts.len() >= settings.concurrency {
                tokio::select! {
                    Some(ended) = attempts.join_next() => report_task_failure(ended, "a job attempt"),
                    () = shutting_down(&mut self.stopping) => break,
                }
                continue;
            }
            // Not raced against shutdown: a lease dropped midway could have been taken in the
            // database and never seen here, leaving the job idle until the lease ran out.
            let leased = runner
                .queue
                .store()
                .lease_job(
                    &runner.kind.name,
                    &runner.worker,
                    lease,
                    settings.limit,
                    OffsetDateTime::now_utc(),
                )
                .await;
            match leased {
                Ok(Some(job)) => {
                    let span = tracing::info_span!(
                        "job",
                        id = %job.id,
                        kind = %job.kind,
                        attempt = job.attempts,
                        max_attempts = job.max_attempts,
                    );
                    let attempt = attempt(
                        Arc::clone(&runner),
                        job,
                        self.stopping.clone(),
                        Running::start(&self.running),
                    );
                    attempts.spawn(attempt.instrument(span));
                    // There may be more due: lease again at once while places are free.
                    continue;
                }
                Ok(None) => {}
                Err(err) => tracing::warn!(
                    kind = %runner.kind.name,
                    error = %err,
                    "cannot lease a job; trying again at the next poll"
                ),
            }
            // Idle until a job is enqueued here, the next poll, or an attempt ends (a place
            // under the kind's limit may then be free).
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(self.poll_interval) => {}
                Some(ended) = attempts.join_next(), if !attempts.is_empty() => {
                    report_task_failure(ended, "a job attempt");
                }
                () = shutting_down(&mut self.stopping) => break,
            }
        }
        // The attempts have been told to stop; shutdown's grace bounds this wait by aborting
        // this task, which drops them.
        while let Some(ended) = attempts.join_next().await {
            report_task_failure(ended, "a job attempt");
        }
    }
}

/// One attempt at a leased job: runs its handler, renews the lease meanwhile, and records the
/// outcome, unless the lease was lost.
async fn attempt(
    runner: Arc<Runner>,
    job: Job,
    mut stopping: watch::Receiver<()>,
    _running: Running,
) {
    tracing::debug!("job started");
    let started = Instant::now();
    let id = job.id;
    let attempt = job.attempts;
    let (stop, stop_signal) = watch::channel(None);
    let context = JobContext::new(job, runner.queue.clone(), stop_signal);
    let handler = Arc::clone(&runner.kind.handler);
    // A task of its own, so that a panic ends this attempt only, and (on a multi-threaded
    // runtime) the lease is renewed even while the handler blocks its thread.
    let mut task = AbortOnDrop(tokio::spawn(
        async move { handler.run(context).await }.in_current_span(),
    ));
    let mut lease_lost = pin!(keep_lease(&runner, id));
    let (mut lost, mut shutting) = (false, false);
    let outcome = loop {
        tokio::select! {
            outcome = &mut task.0 => break outcome,
            () = &mut lease_lost, if !lost => {
                lost = true;
                stop.send_replace(Some(StopReason::LeaseLost));
                tracing::warn!("the job's lease was taken over; telling its handler to stop");
            }
            () = shutting_down(&mut stopping), if !shutting => {
                shutting = true;
                // A lost lease is the stronger reason: it stays.
                stop.send_if_modified(|reason| {
                    let unset = reason.is_none();
                    if unset {
                        *reason = Some(StopReason::ShuttingDown);
                    }
                    unset
                });
            }
        }
    };
    let elapsed_ms = started.elapsed().as_millis();
    if lost {
        tracing::warn!(elapsed_ms, "job left to the worker that took it over");
        return;
    }
    let store = runner.queue.store();
    let worker = &*runner.worker;
    let reason = match outcome {
        Ok(Ok(())) => {
            match store.complete_job(id, worker).await {
                Ok(true) => tracing::debug!(elapsed_ms, "job done"),
                Ok(false) => tracing::warn!(
                    elapsed_ms,
                    "job done, but its lease had been taken over: it runs again"
                ),
                Err(err) => tracing::error!(
                    elapsed_ms,
                    error = %err,
                    "job done, but it cannot be recorded: it runs again once its lease runs out"
                ),
            }
            return;
        }
        Ok(Err(JobError::Permanent(reason))) => {
            match store.give_up_job(id, worker, &reason).await {
                Ok(true) => tracing::error!(elapsed_ms, %reason, "job failed for good: it is dead"),
                Ok(false) => tracing::warn!(
                    elapsed_ms,
                    %reason,
                    "job failed for good, but its lease had been taken over"
                ),
                Err(err) => tracing::error!(
                    elapsed_ms,
                    %reason,
                    error = %err,
                    "job failed for good, but it cannot be recorded: it runs again once its \
                     lease runs out"
                ),
            }
            return;
        }
        Ok(Err(JobError::Transient(reason))) => reason,
        Err(err) if err.is_panic() => {
            let reason = format!("its handler panicked: {}", panic_message(err.into_panic()));
            tracing::error!(elapsed_ms, %reason, "job handler panicked");
            reason
        }
        // Cancelled: the runtime itself is going away, and the lease with it.
        Err(_) => return,
    };
    // A failure while shutting down is likely the stop itself, not the job's: another worker
    // may take it up at once.
    let delay = if shutting {
        Duration::ZERO
    } else {
        runner.kind.settings.backoff.delay(attempt)
    };
    let retry_at = OffsetDateTime::now_utc()
        .saturating_add(time::Duration::try_from(delay).unwrap_or(time::Duration::MAX));
    match store.fail_job(id, worker, &reason, retry_at).await {
        Ok(FailOutcome::Retried) => tracing::warn!(
            elapsed_ms,
            %reason,
            retry_in_ms = delay.as_millis(),
            "job failed; it will be retried"
        ),
        Ok(FailOutcome::Dead) => tracing::error!(
            elapsed_ms,
            %reason,
            "job failed on its last attempt: it is dead"
        ),
        Ok(FailOutcome::NotHeld) => tracing::warn!(
            elapsed_ms,
            %reason,
            "job failed, but its lease had been taken over"
        ),
        Err(err) => tracing::error!(
            elapsed_ms,
            %reason,
            error = %err,
            "job failed, and that cannot be recorded: it runs again once its lease runs out"
        ),
    }
}

/// Renews the lease on job `id` every third of the lease; returns once the worker no longer
/// holds it. A renewal that fails (the database unreachable) is tried again at the next tick:
/// the lease may still be ours, and if it was taken over, a later renewal says so.
async fn keep_lease(runner: &Runner, id: JobId) {
    let lease = runner.kind.settings.lease;
    let until = time::Duration::try_from(lease).unwrap_or(time::Duration::DAY);
    let period = (lease / 3).max(Duration::from_millis(1));
    let mut ticks = tokio::time::interval_at(Instant::now() + period, period);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let renewed = runner
            .queue
            .store()
            .heartbeat_job(id, &runner.worker, OffsetDateTime::now_utc() + until)
            .await;
        match renewed {
            Ok(true) => {}
            Ok(false) => return,
            Err(err) => tracing::warn!(error = %err, "cannot renew the job's lease"),
        }
    }
}

/// Resolves once shutdown has begun (the handle dropped its sender); at once if it had.
pub(crate) async fn shutting_down(stopping: &mut watch::Receiver<()>) {
    // Nothing is ever sent: the only change is the channel closing.
    while stopping.changed().await.is_ok() {}
}

/// Counts an attempt as running for as long as it lives.
struct Running(Arc<AtomicUsize>);

impl Running {
    fn start(count: &Arc<AtomicUsize>) -> Running {
        count.fetch_add(1, Ordering::SeqCst);
        Running(Arc::clone(count))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A task that ends with its owner: an attempt dropped at the end of shutdown's grace takes
/// its handler down with it, rather than leaving it to run on unwatched.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Logs a task of the runtime's own that panicked; a job's lease then simply runs out.
fn report_task_failure(ended: Result<(), JoinError>, what: &str) {
    if let Err(err) = ended
        && err.is_panic()
    {
        tracing::error!(reason = panic_message(err.into_panic()), "{what} panicked");
    }
}

fn panic_message(payload: Box<dyn Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(message) => *message,
        Err(payload) => payload.downcast_ref::<&str>().map_or_else(
            || "(no message)".to_owned(),
            |message| (*message).to_owned(),
        ),
    }
}

/// The host and process id tell whoever reads the jobs table whose a lease is; the random part
/// keeps apart two runtimes in one process, and a process id reused after a restart.
fn default_worker_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|host| host.trim().to_owned())
        .filter(|host| !host.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    format!(
        "{host}-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_its_base_up_to_its_cap_with_jitter() {
        let backoff = Backoff {
            base: Duration::from_secs(1),
            max: Duration::from_secs(60),
        };
        for (attempt, full) in [(0, 1), (1, 1), (2, 2), (3, 4), (6, 32), (7, 60), (500, 60)] {
            let full = Duration::from_secs(full);
            for _ in 0..20 {
                let delay = backoff.delay(attempt);
                assert!(
                    delay >= full / 2 && delay <= full,
                    "attempt {attempt}: {delay:?} not within {full:?}"
                );
            }
        }
    }

    #[test]
    fn a_huge_backoff_saturates() {
        let backoff = Backoff {
            base: Duration::MAX,
            max: Duration::MAX,
        };
        assert!(backoff.delay(40) >= Duration::MAX / 2);
    }

    #[test]
    fn panic_messages_are_read_from_either_kind_of_payload() {
        assert_eq!(panic_message(Box::new("static")), "static");
        assert_eq!(panic_message(Box::new(String::from("owned"))), "owned");
        assert_eq!(panic_message(Box::new(7)), "(no message)");
    }
}
