//! Queue throughput: JOBS no-op jobs enqueued by PRODUCERS concurrent callers (no worker
//! running), then run by WORKERS concurrent workers. Run by `bench/queue/run.sh` beside a Celery
//! worker doing the same; prints one JSON line.
//!
//! `cargo run --release -p kai-jobs --example queue_throughput -- [JOBS] [WORKERS] [PRODUCERS]`
//!
//! The database is a SQLite file in a temporary directory, or, with `KAI_TEST_DATABASE_URL`
//! set, a fresh schema in that PostgreSQL database (dropped at the end). The allocator is the
//! `kai` binary's.
//!
//! Figures: `enqueue_per_s`, jobs over the time from the first enqueue call to the last one's
//! return; `complete_per_s`, jobs after the first over the time between the first and the last
//! job recorded done (their `finished_at`, read back from the database), which leaves out the
//! workers' start; `drain_s`, from starting the workers to every job recorded done.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use kai_jobs::{JobContext, JobError, KindSettings, Queue, Workers};
use kai_store::testing::TestDatabase;
use kai_store::{JobState, NewJob, Store};
use time::OffsetDateTime;
use tokio::sync::Notify;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const KIND: &str = "noop";

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let jobs: usize = args.next().map_or(20_000, |n| n.parse().unwrap());
    let workers: usize = args.next().map_or(4, |n| n.parse().unwrap());
    let producers: usize = args.next().map_or(1, |n| n.parse().unwrap());
    let db = TestDatabase::new().await;
    let mut settings = TestDatabase::settings();
    // A connection for every worker and producer, and one for the dispatcher's lease.
    settings.max_connections = u32::try_from(workers.max(producers) + 2).unwrap();
    let store = Store::connect(db.url(), &settings).await.unwrap();
    let backend = format!("{:?}", store.backend()).to_lowercase();
    let queue = Queue::new(store.clone());

    let started = Instant::now();
    let mut tasks = Vec::new();
    for producer in 0..producers {
        let queue = queue.clone();
        let count = jobs / producers + usize::from(producer < jobs % producers);
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::with_capacity(count);
            for _ in 0..count {
                let job = NewJob {
                    kind: KIND.into(),
                    payload: "{}".into(),
                    priority: 0,
                    max_attempts: 3,
                    run_at: OffsetDateTime::now_utc(),
                    dedupe_key: None,
                };
                ids.push(queue.enqueue(&job).await.unwrap());
            }
            ids
        }));
    }
    let mut ids = Vec::with_capacity(jobs);
    for task in tasks {
        ids.extend(task.await.unwrap());
    }
    let enqueue = started.elapsed();

    let ran = Arc::new(AtomicUsize::new(0));
    let all_ran = Arc::new(Notify::new());
    let (counter, signal) = (Arc::clone(&ran), Arc::clone(&all_ran));
    let started = Instant::now();
    let handle = Workers::new(queue.clone())
        .handle(
            KIND,
            KindSettings {
                concurrency: workers,
                ..KindSettings::default()
            },
            move |_job: JobContext| {
                if counter.fetch_add(1, Ordering::SeqCst) + 1 == jobs {
                    signal.notify_one();
                }
                async { Ok::<(), JobError>(()) }
            },
        )
        .start();
    all_ran.notified().await;
    // The handlers have all returned; the last completions may still be being written.
    while store
        .job_counts(KIND)
        .await
        .unwrap()
        .iter()
        .any(|(state, count)| *state != JobState::Done && *count > 0)
    {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let drain = started.elapsed();
    handle.shutdown().await;

    let (mut first, mut last) = (OffsetDateTime::now_utc(), OffsetDateTime::UNIX_EPOCH);
    for id in &ids {
        let done = store.job(*id).await.unwrap().unwrap().finished_at.unwrap();
        first = first.min(done);
        last = last.max(done);
    }
    let span = (last - first).as_seconds_f64();
    println!(
        "{{\"system\":\"kai\",\"backend\":\"{backend}\",\"jobs\":{jobs},\"workers\":{workers},\
         \"producers\":{producers},\"enqueue_per_s\":{:.0},\"complete_per_s\":{:.0},\
         \"drain_s\":{:.3}}}",
        jobs as f64 / enqueue.as_secs_f64(),
        (jobs - 1) as f64 / span,
        drain.as_secs_f64(),
    );
    store.close().await;
}
