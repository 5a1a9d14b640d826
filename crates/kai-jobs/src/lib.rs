//! kai's background work: workers lease jobs from the durable queue in the database (kai-store's
//! `jobs` table), run each with the handler registered for its kind, and finish, retry with
//! backoff, or give up on it.
//!
//! - [`Queue`] enqueues jobs and wakes this process's idle workers of their kind at once;
//!   workers also poll, for jobs enqueued elsewhere and retries that came due.
//! - [`Workers`] says which kinds this process runs, with which [`Handler`] and
//!   [`KindSettings`] (concurrency here, lease, limit across processes, [`Backoff`]);
//!   [`Workers::start`] runs them until [`WorkersHandle::shutdown`].
//! - A handler gets a [`JobContext`] (the job, its JSON payload, the queue, a stop signal) and
//!   returns `Ok`, or a [`JobError`]: transient (retried after a backoff until its attempts run
//!   out) or permanent (dead at once, with its reason). A handler that panics is retried as a
//!   transient failure; the worker carries on.
//!
//! - [`Schedules`] adds, lists, enables and removes schedules: a job enqueued on a cron
//!   expression in an IANA time zone, or at an interval ([`Recurrence`]; the syntax and the
//!   daylight-saving rules are in [`schedule`]); [`Scheduler::start`] runs them beside the
//!   workers until [`SchedulerHandle::shutdown`], each fire once across every process sharing
//!   the database, with a [`MissedRuns`] policy for fires missed while kai was down.
//!
//! A job runs at least once, not exactly once. While its handler runs, the worker renews the
//! job's lease every third of the lease; a worker that dies, or is stopped past its grace
//! period, stops renewing, and once the lease has run out another worker takes the job over
//! (the storage counts every lease as an attempt, so a job that keeps killing its workers ends
//! dead). A worker whose lease was taken over tells its handler to stop
//! ([`StopReason::LeaseLost`]) and records nothing.

mod handler;
mod queue;
pub mod schedule;
mod scheduler;
mod schedules;
mod workers;

pub use handler::{Handler, JobContext, JobError, StopReason};
pub use kai_store::{MissedRuns, ScheduleRecord, ScheduledJob};
pub use queue::Queue;
pub use schedule::{Recurrence, ScheduleError, Spec};
pub use scheduler::{Fired, Scheduler, SchedulerHandle};
pub use schedules::{ScheduleDraft, Schedules, parse_missed_runs};
pub use workers::{Backoff, KindSettings, Workers, WorkersHandle};
