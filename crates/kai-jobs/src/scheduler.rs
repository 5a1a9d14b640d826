//! The scheduler: beside the workers, it sleeps until the soonest fire of any schedule, claims
//! what is due, enqueues the jobs and moves each schedule on to its next fire.

use std::time::Duration;

use kai_store::{FireOutcome, MissedRuns, ScheduleFire, ScheduleRecord, StoreError};
use time::OffsetDateTime;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::Queue;
use crate::schedule::Recurrence;
use crate::workers::shutting_down;

/// Schedules claimed per transaction.
const BATCH: u32 = 256;

/// How long to wait before looking again at a schedule that was due but could not be claimed
/// (another process's transaction held it): soon, without spinning.
const CONTENDED_RETRY: Duration = Duration::from_millis(50);

/// What one pass of a scheduler did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fired {
    /// Jobs enqueued: one per fire, and one per schedule whose missed fires were run once.
    pub enqueued: usize,
    /// Schedules moved past missed fires without a job (their policy is to skip them), or
    /// stopped because their spec can no longer be read.
    pub skipped: usize,
    /// Fires another scheduler claimed first, or held while this one tried.
    pub lost: usize,
}

/// Runs the schedules of every owner: enqueues each schedule's job at its fire times.
///
/// Any number of schedulers may run, in one process or in several sharing the database: each
/// fire is claimed by one of them, once (see kai-store's `fire_schedules`). The job of a fire
/// is enqueued to run at the fire time, with a dedupe key naming the schedule and that time.
///
/// A fire found later than [`missed_after`](Scheduler::missed_after) (a minute, by default)
/// was missed: kai was down, or the machine asleep. Missed fires are never run one by one:
/// the schedule's [`MissedRuns`] policy either skips them or enqueues one job for all of them
/// (at the last missed fire's time), and the schedule goes on from its first fire that is not
/// missed. A fire found late by less than that is not missed, and runs.
///
/// ```no_run
/// # async fn example(queue: kai_jobs::Queue) {
/// use kai_jobs::Scheduler;
///
/// let scheduler = Scheduler::new(queue).start();
/// // … serve …
/// scheduler.shutdown().await;
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Scheduler {
    queue: Queue,
    poll_interval: Duration,
    missed_after: Duration,
}

impl Scheduler {
    /// A scheduler on `queue`: looking for schedules added elsewhere at least every second,
    /// and taking fires older than a minute as missed.
    #[must_use]
    pub fn new(queue: Queue) -> Scheduler {
        Scheduler {
            queue,
            poll_interval: Duration::from_secs(1),
            missed_after: Duration::from_secs(60),
        }
    }

    /// The longest the scheduler sleeps: how soon it sees a schedule that another process
    /// added or enabled to fire before the one it sleeps until. Schedules added through this
    /// process's [`Schedules`](crate::Schedules) wake it at once.
    #[must_use]
    pub fn poll_interval(mut self, every: Duration) -> Scheduler {
        self.poll_interval = every;
        self
    }

    /// How late a fire may be found and still run: a later one was missed, and its schedule's
    /// [`MissedRuns`] policy applies. A minute, by default, so that a restart does not count
    /// as missing a fire.
    #[must_use]
    pub fn missed_after(mut self, tolerance: Duration) -> Scheduler {
        self.missed_after = tolerance;
        self
    }

    /// Fires every schedule due at `now`, as the running scheduler does each time it wakes,
    /// and returns what it did. Public so that tests and tools can run a pass at a time of
    /// their choosing.
    pub async fn fire_due(&self, now: OffsetDateTime) -> Result<Fired, StoreError> {
        let store = self.queue.store();
        let missed_after =
            time::Duration::try_from(self.missed_after).unwrap_or(time::Duration::MAX);
        let cutoff = now.checked_sub(missed_after).unwrap_or(now);
        let mut fired = Fired::default();
        loop {
            let due = store.due_schedules(now, BATCH).await?;
            let (records, fires): (Vec<&ScheduleRecord>, Vec<ScheduleFire>) = due
                .iter()
                .filter_map(|record| Some((record, plan(record, cutoff)?)))
                .unzip();
            if fires.is_empty() {
                break;
            }
            let outcomes = store.fire_schedules(&fires).await?;
            let mut progressed = false;
            for ((record, fire), outcome) in records.iter().zip(&fires).zip(outcomes) {
                match outcome {
                    FireOutcome::Lost => fired.lost += 1,
                    FireOutcome::Advanced => {
                        fired.skipped += 1;
                        progressed = true;
                    }
                    FireOutcome::Enqueued(job) => {
                        fired.enqueued += 1;
                        progressed = true;
                        tracing::debug!(
                            schedule = %record.id,
                            name = %record.name,
                            %job,
                            fire = %fire.job_at.unwrap_or(fire.due),
                            "schedule fired"
                        );
                        self.queue.wake(&record.job.kind);
                    }
                }
            }
            // Nothing claimed: what is due is other schedulers' now, or held by them.
            if !progressed {
                break;
            }
        }
        Ok(fired)
    }

    /// Runs the scheduler until [`SchedulerHandle::shutdown`].
    #[must_use]
    pub fn start(self) -> SchedulerHandle {
        let (stop, stopping) = watch::channel(());
        let wake = self.queue.subscribe_scheduler();
        tracing::info!(
            poll_ms = self.poll_interval.as_millis(),
            missed_after_s = self.missed_after.as_secs(),
            "starting the scheduler"
        );
        let task = tokio::spawn(self.run(wake, stopping));
        SchedulerHandle { stop, task }
    }

    async fn run(self, wake: std::sync::Arc<Notify>, mut stopping: watch::Receiver<()>) {
        let store = self.queue.store();
        while stopping.has_changed().is_ok() {
            let now = OffsetDateTime::now_utc();
            if let Err(err) = self.fire_due(now).await {
                tracing::warn!(error = %err, "cannot fire schedules; trying again at the next poll");
            }
            let wait = match store.next_schedule_fire().await {
                Ok(Some(at)) if at <= now => CONTENDED_RETRY,
                Ok(Some(at)) => {
                    let left = at - OffsetDateTime::now_utc();
                    Duration::try_from(left)
                        .unwrap_or(Duration::ZERO)
                        .min(self.poll_interval)
                }
                Ok(None) => self.poll_interval,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot read when schedules fire next");
                    self.poll_interval
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = wake.notified() => {}
                () = shutting_down(&mut stopping) => break,
            }
        }
        tracing::info!("scheduler stopped");
    }
}

/// A running scheduler. Dropping it without [`SchedulerHandle::shutdown`] stops it too, once
/// its pass in flight (if any) has committed.
#[derive(Debug)]
pub struct SchedulerHandle {
    /// Dropped to stop: the scheduler watches it close.
    stop: watch::Sender<()>,
    task: JoinHandle<()>,
}

impl SchedulerHandle {
    /// Stops the scheduler and waits for its pass in flight, if any, to commit.
    pub async fn shutdown(self) {
        let SchedulerHandle { stop, task } = self;
        drop(stop);
        if let Err(err) = task.await
            && err.is_panic()
        {
            tracing::error!("the scheduler panicked");
        }
    }
}

/// What to do with a due schedule, fires before `cutoff` counting as missed.
fn plan(record: &ScheduleRecord, cutoff: OffsetDateTime) -> Option<ScheduleFire> {
    let due = record.next_fire_at?;
    let recurrence = match Recurrence::new(&record.spec, &record.time_zone) {
        Ok(recurrence) => recurrence,
        Err(err) => {
            // A spec stored by kai always reads; this one was changed outside kai, or its
            // zone left the system's database. Firing it blindly would be wrong, and leaving
            // it due would find it again at every pass: it stops until it is enabled anew.
            tracing::error!(
                schedule = %record.id,
                name = %record.name,
                error = %err,
                "a schedule cannot be read; it will not fire until it is disabled and enabled again"
            );
            return Some(ScheduleFire {
                id: record.id,
                due,
                job_at: None,
                next: None,
            });
        }
    };
    if due >= cutoff {
        return Some(ScheduleFire {
            id: record.id,
            due,
            job_at: Some(due),
            next: recurrence.next_fire(due),
        });
    }
    let (last_missed, resume) = recurrence.catch_up(due, cutoff);
    let job_at = match record.missed {
        MissedRuns::Skip => None,
        MissedRuns::RunOnce => Some(last_missed),
    };
    tracing::info!(
        schedule = %record.id,
        name = %record.name,
        first_missed = %due,
        last_missed = %last_missed,
        policy = record.missed.as_str(),
        "a schedule missed fires while no scheduler ran"
    );
    Some(ScheduleFire {
        id: record.id,
        due,
        job_at,
        next: resume,
    })
}
