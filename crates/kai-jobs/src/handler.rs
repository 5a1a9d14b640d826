//! What a job's handler implements and what it is given: the job, the queue, and a signal to
//! stop.

use std::fmt;
use std::future::Future;

use futures_util::future::BoxFuture;
use kai_core::JobId;
use kai_store::{Job, Store};
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use crate::Queue;

/// Runs the jobs of one kind.
///
/// A job runs at least once, not exactly once: a worker that dies after the work but before it
/// recorded the job as done leaves it to be run again. Handlers must therefore be idempotent
/// (index an artifact version by its id, not by appending).
///
/// A closure `Fn(JobContext) -> impl Future<Output = Result<(), JobError>>` is a handler.
pub trait Handler: Send + Sync + 'static {
    /// Runs one attempt at `job`. The future should end soon after [`JobContext::stopped`]
    /// resolves; what it returns then still counts, unless the lease was lost.
    fn run(&self, job: JobContext) -> BoxFuture<'static, Result<(), JobError>>;
}

impl<F, Fut> Handler for F
where
    F: Fn(JobContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), JobError>> + Send + 'static,
{
    fn run(&self, job: JobContext) -> BoxFuture<'static, Result<(), JobError>> {
        Box::pin(self(job))
    }
}

/// Why an attempt failed, which decides what becomes of the job.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// Worth another try (a provider timed out, the database was busy): the job runs again
    /// after a backoff, unless that was its last attempt.
    #[error("{0}")]
    Transient(String),
    /// No retry can fix it (a malformed payload, a file that is gone): the job is dead at
    /// once, with this reason.
    #[error("{0}")]
    Permanent(String),
}

impl JobError {
    /// A failure worth retrying, for `map_err(JobError::transient)`.
    pub fn transient(reason: impl fmt::Display) -> JobError {
        JobError::Transient(reason.to_string())
    }

    /// A failure no retry can fix, for `map_err(JobError::permanent)`.
    pub fn permanent(reason: impl fmt::Display) -> JobError {
        JobError::Permanent(reason.to_string())
    }
}

/// Why a handler is asked to stop before it has finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The worker's lease ran out and another took the job over: whatever the handler returns
    /// now is ignored, and it should stop touching the job's data at once.
    LeaseLost,
    /// The process is shutting down: the handler should stop at a point from which a later
    /// attempt can resume. Finishing within the grace period still counts.
    ShuttingDown,
}

/// One attempt at a job, as its handler sees it. Cheap to clone, for tasks the handler spawns.
#[derive(Debug, Clone)]
pub struct JobContext {
    job: Job,
    queue: Queue,
    stop: watch::Receiver<Option<StopReason>>,
}

impl JobContext {
    pub(crate) fn new(
        job: Job,
        queue: Queue,
        stop: watch::Receiver<Option<StopReason>>,
    ) -> JobContext {
        JobContext { job, queue, stop }
    }

    /// The job as leased: its kind, payload, attempts (this one included) and the rest.
    #[must_use]
    pub fn job(&self) -> &Job {
        &self.job
    }

    /// The job's id.
    #[must_use]
    pub fn id(&self) -> JobId {
        self.job.id
    }

    /// Which attempt this is, from 1.
    #[must_use]
    pub fn attempt(&self) -> u32 {
        self.job.attempts
    }

    /// The payload, read from its JSON. One that does not parse is a permanent failure: every
    /// attempt would read the same text.
    pub fn payload<T: DeserializeOwned>(&self) -> Result<T, JobError> {
        serde_json::from_str(&self.job.payload).map_err(|err| {
            JobError::Permanent(format!(
                "its payload is not what {} takes: {err}",
                self.job.kind
            ))
        })
    }

    /// The queue, to enqueue follow-up jobs.
    #[must_use]
    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    /// The database.
    #[must_use]
    pub fn store(&self) -> &Store {
        self.queue.store()
    }

    /// Resolves when the handler should stop, with why; never, while it may go on. For
    /// `tokio::select!` against the work.
    pub async fn stopped(&self) -> StopReason {
        let mut stop = self.stop.clone();
        let reason = stop.wait_for(Option::is_some).await.ok().and_then(|r| *r);
        // The sender goes only when the attempt itself was dropped: shutdown's grace ran out.
        reason.unwrap_or(StopReason::ShuttingDown)
    }

    /// Why the handler should stop, if it should: for loops that check between steps.
    #[must_use]
    pub fn stop_reason(&self) -> Option<StopReason> {
        *self.stop.borrow()
    }
}
