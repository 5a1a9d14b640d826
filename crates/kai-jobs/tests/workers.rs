//! The worker runtime against a real queue, on whichever backend the environment selects.
//! Nothing here asserts timings: each test waits for what it expects under a generous
//! deadline.

#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use kai_core::JobId;
use kai_jobs::{Backoff, JobContext, JobError, KindSettings, Queue, StopReason, Workers};
use kai_store::testing::TestDatabase;
use kai_store::{Job, JobState, NewJob, Store};
use time::OffsetDateTime;
use tokio::sync::{mpsc, watch};

const KIND: &str = "test-kind";
const DEADLINE: Duration = Duration::from_secs(30);

fn new_job(payload: &str, max_attempts: u32) -> NewJob {
    NewJob {
        kind: KIND.into(),
        payload: payload.into(),
        priority: 0,
        max_attempts,
        run_at: OffsetDateTime::now_utc(),
        dedupe_key: None,
    }
}

/// Quick retries and polls, so that the tests do not wait on the defaults.
fn quick() -> KindSettings {
    KindSettings {
        lease: Duration::from_secs(5),
        backoff: Backoff {
            base: Duration::from_millis(10),
            max: Duration::from_millis(50),
        },
        ..KindSettings::default()
    }
}

fn workers(queue: &Queue) -> Workers {
    Workers::new(queue.clone()).poll_interval(Duration::from_millis(50))
}

async fn wait_for<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_for_state(store: &Store, id: JobId, state: JobState) -> Job {
    wait_for(&format!("job {id} to be {}", state.as_str()), || async {
        store.job(id).await.unwrap().unwrap().state == state
    })
    .await;
    store.job(id).await.unwrap().unwrap()
}

async fn recv<T>(receiver: &mut mpsc::UnboundedReceiver<T>) -> T {
    tokio::time::timeout(DEADLINE, receiver.recv())
        .await
        .expect("a message within the deadline")
        .expect("the sender is alive")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_runs_with_its_payload_and_completes() {
    let db = TestDatabase::new().await;
    let queue = Queue::new(db.store().await);
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    let handle = workers(&queue)
        .handle(KIND, quick(), move |job: JobContext| {
            let seen_tx = seen_tx.clone();
            async move {
                let payload: serde_json::Value = job.payload()?;
                seen_tx.send((job.id(), job.attempt(), payload)).unwrap();
                Ok(())
            }
        })
        .start();
    let id = queue
        .enqueue(&new_job(r#"{"artifact": 7}"#, 3))
        .await
        .unwrap();
    let (seen_id, attempt, payload) = recv(&mut seen).await;
    assert_eq!((seen_id, attempt), (id, 1));
    assert_eq!(payload, serde_json::json!({"artifact": 7}));
    let done = wait_for_state(queue.store(), id, JobState::Done).await;
    assert_eq!(done.attempts, 1);
    assert!(done.worker.is_none() && done.last_error.is_none());
    assert_eq!(handle.shutdown().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_failure_is_retried_until_it_succeeds() {
    let db = TestDatabase::new().await;
    let queue = Queue::new(db.store().await);
    let handle = workers(&queue)
        .handle(KIND, quick(), |job: JobContext| async move {
            if job.attempt() < 3 {
                return Err(JobError::transient(format!(
                    "provider busy ({})",
                    job.attempt()
                )));
            }
            Ok(())
        })
        .start();
    let id = queue.enqueue(&new_job("{}", 5)).await.unwrap();
    let done = wait_for_state(queue.store(), id, JobState::Done).await;
    assert_eq!(done.attempts, 3);
    assert_eq!(done.last_error.as_deref(), Some("provider busy (2)"));
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_failure_is_dead_at_once_with_its_reason() {
    let db = TestDatabase::new().await;
    let queue = Queue::new(db.store().await);
    let handle = workers(&queue)
        .handle(KIND, quick(), |job: JobContext| async move {
            let path: String = job.payload()?;
            Err(JobError::permanent(format!("{path}: no such file")))
        })
        .start();
    let missing = queue.enqueue(&new_job(r#""notes/a.md""#, 5)).await.unwrap();
    let malformed = queue.enqueue(&new_job("{not json", 5)).await.unwrap();

    let dead = wait_for_state(queue.store(), missing, JobState::Dead).await;
    assert_eq!(dead.attempts, 1, "attempts were left, but none was used");
    assert_eq!(dead.last_error.as_deref(), Some("notes/a.md: no such file"));
    let dead = wait_for_state(queue.store(), malformed, JobState::Dead).await;
    assert_eq!(dead.attempts, 1);
    let reason = dead.last_error.unwrap();
    assert!(reason.contains("payload"), "{reason}");
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_keeps_failing_is_dead_after_its_last_attempt() {
    let db = TestDatabase::new().await;
    let queue = Queue::new(db.store().await);
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&runs);
    let handle = workers(&queue)
        .handle(KIND, quick(), move |_job: JobContext| {
            counted.fetch_add(1, Ordering::SeqCst);
            async { Err(JobError::transient("still broken")) }
        })
        .start();
    let id = queue.enqueue(&new_job("{}", 3)).await.unwrap();
    let dead = wait_for_state(queue.store(), id, JobState::Dead).await;
    assert_eq!(dead.attempts, 3);
    assert_eq!(dead.last_error.as_deref(), Some("still broken"));
    assert_eq!(handle.shutdown().await, 0);
    assert_eq!(runs.load(Ordering::SeqCst), 3);
}

/// Counts the handlers running at once; each holds on until the gate opens.
#[derive(Clone)]
struct Gate {
    open: watch::Sender<bool>,
    running: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
}

impl Gate {
    fn new() -> Gate {
        Gate {
            open: watch::channel(false).0,
            running: Arc::default(),
            most: Arc::default(),
        }
    }

    async fn pass(&self) -> Result<(), JobError> {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        let mut open = self.open.subscribe();
        open.wait_for(|open| *open).await.unwrap();
        self.running.fetch_sub(1, Ordering::SeqCst);
        Ok(())
    }

    /// Checks that `expected` handlers run, and no more start while they hold on.
    async fn check_running(&self, store: &Store, expected: usize) {
        wait_for(&format!("{expected} handlers running"), || async {
            self.running.load(Ordering::SeqCst) >= expected
        })
        .await;
        // Time for a worker that ignored the limit to start another: many polls.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(self.running.load(Ordering::SeqCst), expected);
        let counts = store.job_counts(KIND).await.unwrap();
        assert!(
            counts.contains(&(JobState::Running, expected as u64)),
            "{counts:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kind_runs_no_more_jobs_at_once_than_its_concurrency() {
    let db = TestDatabase::new().await;
    let queue = Queue::new(db.store().await);
    let gate = Gate::new();
    let handler_gate = gate.clone();
    let handle = workers(&queue)
        .handle(
            KIND,
            KindSettings {
                concurrency: 2,
                ..quick()
            },
            move |_job: JobContext| {
                let gate = handler_gate.clone();
                async move { gate.pass().await }
            },
        )
        .start();
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(queue.enqueue(&new_job("{}", 3)).await.unwrap());
    }
    gate.check_running(queue.store(), 2).await;
    gate.open.send_replace(true);
    for id in ids {
        wait_for_state(queue.store(), id, JobState::Done).await;
    }
    assert_eq!(gate.most.load(Ordering::SeqCst), 2);
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kind_limit_holds_across_worker_instances() {
    let db = TestDatabase::new().await;
    let queue = Queue::new(db.store().await);
    let gate = Gate::new();
    let settings = KindSettings {
        concurrency: 3,
        limit: Some(2),
        ..quick()
    };
    let start = |gate: Gate| {
        workers(&queue)
            .handle(KIND, settings, move |_job: JobContext| {
                let gate = gate.clone();
                async move { gate.pass().await }
            })
            .start()
    };
    let (first, second) = (start(gate.clone()), start(gate.clone()));
    assert_ne!(first.worker_id(), second.worker_id());
    let mut ids = Vec::new();
    for _ in 0..6 {
        ids.push(queue.enqueue(&new_job("{}", 3)).await.unwrap());
    }
    gate.check_running(queue.store(), 2).await;
    gate.open.send_replace(true);
    for id in ids {
        wait_for_state(queue.store(), id, JobState::Done).await;
    }
    assert_eq!(gate.most.load(Ordering::SeqCst), 2);
    first.shutdown().await;
    second.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_that_panics_is_retried_and_the_worker_carries_on() {
    let db = TestDatabase::new().await;
    let queue = Queue::new(db.store().await);
    let handle = workers(&queue)
        .handle(KIND, quick(), |job: JobContext| async move {
            assert!(job.attempt() > 1, "the first attempt always panics");
            Ok(())
        })
        .start();
    let id = queue.enqueue(&new_job("{}", 3)).await.unwrap();
    let done = wait_for_state(queue.store(), id, JobState::Done).await;
    assert_eq!(done.attempts, 2);
    let reason = done.last_error.unwrap();
    assert!(
        reason.contains("panicked") && reason.contains("the first attempt always panics"),
        "{reason}"
    );
    // The same workers go on to run the next job.
    let next = queue.enqueue(&new_job("{}", 3)).await.unwrap();
    assert_eq!(
        wait_for_state(queue.store(), next, JobState::Done)
            .await
            .attempts,
        2
    );
    assert_eq!(handle.shutdown().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_worker_died_is_taken_over_once_its_lease_runs_out() {
    let db = TestDatabase::new().await;
    let queue = Queue::new(db.store().await);
    let store = queue.store();
    let id = queue.enqueue(&new_job("{}", 3)).await.unwrap();
    // A worker leases the job and dies without a word.
    store
        .lease_job(
            KIND,
            "dead-worker",
            time::Duration::seconds(1),
            None,
            OffsetDateTime::now_utc(),
        )
        .await
        .unwrap()
        .unwrap();
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    let handle = workers(&queue)
        .handle(KIND, quick(), move |job: JobContext| {
            seen_tx.send(job.attempt()).unwrap();
            async { Ok(()) }
        })
        .start();
    assert_eq!(recv(&mut seen).await, 2);
    let done = wait_for_state(store, id, JobState::Done).await;
    assert_eq!(done.attempts, 2);
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_left_running_at_shutdown_is_resumed_by_the_next_workers() {
    let db = TestDatabase::new().await;
    let queue = Queue::new(db.store().await);
    let store = queue.store();
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let stubborn = workers(&queue)
        .shutdown_grace(Duration::from_millis(200))
        .handle(
            KIND,
            KindSettings {
                lease: Duration::from_secs(1),
                ..quick()
            },
            move |_job: JobContext| {
                started_tx.send(()).unwrap();
                // Ignores the stop signal, as a handler blocked on a slow call would.
                std::future::pending()
            },
        )
        .start();
    let stubborn_id = stubborn.worker_id().to_owned();
    let id = queue.enqueue(&new_job("{}", 3)).await.unwrap();
    recv(&mut started).await;
    assert_eq!(stubborn.shutdown().await, 1, "one job was left running");
    let left = store.job(id).await.unwrap().unwrap();
    assert_eq!(left.state, JobState::Running, "it keeps its lease");
    assert_eq!(left.worker.as_deref(), Some(stubborn_id.as_str()));

    let next = workers(&queue)
        .handle(KIND, quick(), |_job: JobContext| async { Ok(()) })
        .start();
    let done = wait_for_state(store, id, JobState::Done).await;
    assert_eq!(done.attempts, 2);
    next.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueueing_wakes_an_idle_worker_without_waiting_for_a_poll() {
    let db = TestDatabase::new().await;
    let queue = Queue::new(db.store().await);
    let handle = Workers::new(queue.clone())
        .poll_interval(Duration::from_secs(3600))
        .handle(KIND, quick(), |_job: JobContext| async { Ok(()) })
        .start();
    // Twice: the second time the worker has surely gone idle after its first job.
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let id = queue.enqueue(&new_job("{}", 3)).await.unwrap();
        wait_for_state(queue.store(), id, JobState::Done).await;
    }
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_waits_for_running_handlers_and_records_what_they_return() {
    let db = TestDatabase::new().await;
    let queue = Queue::new(db.store().await);
    let store = queue.store();
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let (stopped_tx, mut stopped) = mpsc::unbounded_channel();
    let handle = workers(&queue)
        .shutdown_grace(DEADLINE)
        .handle(
            KIND,
            KindSettings {
                concurrency: 2,
                // Were it applied, a retry would come far too late for this test.
                backoff: Backoff {
                    base: Duration::from_secs(3600),
                    max: Duration::from_secs(3600),
                },
                ..quick()
            },
            move |job: JobContext| {
                let (started_tx, stopped_tx) = (started_tx.clone(), stopped_tx.clone());
                async move {
                    started_tx.send(()).unwrap();
                    let reason = job.stopped().await;
                    assert_eq!(job.stop_reason(), Some(reason));
                    stopped_tx.send(reason).unwrap();
                    // Wrapping up takes a while; shutdown waits for it.
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    match job.payload::<String>()?.as_str() {
                        "finish" => Ok(()),
                        _ => Err(JobError::transient("interrupted")),
                    }
                }
            },
        )
        .start();
    let finished = queue.enqueue(&new_job(r#""finish""#, 3)).await.unwrap();
    let interrupted = queue.enqueue(&new_job(r#""stop""#, 3)).await.unwrap();
    recv(&mut started).await;
    recv(&mut started).await;
    assert_eq!(handle.shutdown().await, 0, "both finished within the grace");
    assert_eq!(recv(&mut stopped).await, StopReason::ShuttingDown);
    assert_eq!(recv(&mut stopped).await, StopReason::ShuttingDown);
    assert_eq!(
        store.job(finished).await.unwrap().unwrap().state,
        JobState::Done
    );
    let queued = store.job(interrupted).await.unwrap().unwrap();
    assert_eq!((queued.state, queued.attempts), (JobState::Queued, 1));
    assert_eq!(queued.last_error.as_deref(), Some("interrupted"));

    // Interrupted by the shutdown rather than failing, it is due again at once, not after a
    // backoff.
    let next = workers(&queue)
        .handle(KIND, quick(), |_job: JobContext| async { Ok(()) })
        .start();
    let done = wait_for_state(store, interrupted, JobState::Done).await;
    assert_eq!(done.attempts, 2);
    next.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_whose_lease_was_taken_over_stops_its_handler_and_records_nothing() {
    let db = TestDatabase::new().await;
    let queue = Queue::new(db.store().await);
    let store = queue.store();
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let (stopped_tx, mut stopped) = mpsc::unbounded_channel();
    let handle = workers(&queue)
        .handle(
            KIND,
            KindSettings {
                lease: Duration::from_millis(600),
                ..quick()
            },
            move |job: JobContext| {
                let (started_tx, stopped_tx) = (started_tx.clone(), stopped_tx.clone());
                async move {
                    started_tx.send(()).unwrap();
                    stopped_tx.send(job.stopped().await).unwrap();
                    // Returning success changes nothing: the job is another worker's now.
                    Ok(())
                }
            },
        )
        .start();
    let id = queue.enqueue(&new_job("{}", 3)).await.unwrap();
    recv(&mut started).await;
    store
        .tamper(&format!(
            "UPDATE jobs SET worker = 'usurper' WHERE id = '{id}'"
        ))
        .await;
    assert_eq!(recv(&mut stopped).await, StopReason::LeaseLost);
    // Shutdown waits for the attempt to end, so whatever it would record is recorded by now.
    assert_eq!(handle.shutdown().await, 0);
    let job = store.job(id).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Running);
    assert_eq!(job.worker.as_deref(), Some("usurper"));
}
