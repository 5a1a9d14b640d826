//! Scheduler accuracy: how late a scheduled job's handler starts after its fire time, with the
//! scheduler and WORKERS workers running as `kai serve` runs them. Run by `bench/queue/run.sh`;
//! prints one JSON line per part.
//!
//! `cargo run --release -p kai-jobs --example schedule_accuracy -- [SCHEDULES] [WORKERS] [FIRES]`
//!
//! - `burst`: SCHEDULES interval schedules all due at the same instant, two seconds after the
//!   start: how late each of their jobs starts.
//! - `every-second`: one `every 1s` schedule for FIRES fires: how late each fire's job starts.
//!
//! Lateness is the handler's clock at its start minus the job's `run_at`, which the scheduler
//! sets to the fire time. The database is a SQLite file in a temporary directory, or, with
//! `KAI_TEST_DATABASE_URL` set, a fresh schema in that PostgreSQL database (dropped at the end).

#![allow(clippy::unwrap_used, clippy::print_stdout)]

use kai_core::Role;
use kai_jobs::{
    JobContext, JobError, KindSettings, MissedRuns, Queue, Recurrence, ScheduleDraft, ScheduledJob,
    Scheduler, Schedules, Workers,
};
use kai_store::testing::TestDatabase;
use kai_store::{NewSchedule, NewUser, Store};
use time::OffsetDateTime;
use tokio::sync::mpsc;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const KIND: &str = "noop";

fn job() -> ScheduledJob {
    ScheduledJob {
        kind: KIND.into(),
        payload: "{}".into(),
        priority: 0,
        max_attempts: 3,
    }
}

/// Runs workers and a scheduler until `count` jobs have started; returns how late each
/// started, in milliseconds, sorted.
async fn lateness(queue: &Queue, workers: usize, count: usize) -> Vec<f64> {
    let (late_tx, mut late) = mpsc::unbounded_channel();
    let handle = Workers::new(queue.clone())
        .handle(
            KIND,
            KindSettings {
                concurrency: workers,
                ..KindSettings::default()
            },
            move |job: JobContext| {
                let behind = OffsetDateTime::now_utc() - job.job().run_at;
                late_tx.send(behind.as_seconds_f64() * 1000.0).unwrap();
                async { Ok::<(), JobError>(()) }
            },
        )
        .start();
    let scheduler = Scheduler::new(queue.clone()).start();
    let mut samples = Vec::with_capacity(count);
    while samples.len() < count {
        samples.push(late.recv().await.unwrap());
    }
    scheduler.shutdown().await;
    handle.shutdown().await;
    samples.sort_by(f64::total_cmp);
    samples
}

fn report(part: &str, backend: &str, workers: usize, samples: &[f64]) {
    let at = |q: f64| {
        // Nearest rank.
        let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
        samples[rank - 1]
    };
    println!(
        "{{\"part\":\"{part}\",\"backend\":\"{backend}\",\"jobs\":{},\"workers\":{workers},\
         \"p50_ms\":{:.1},\"p99_ms\":{:.1},\"max_ms\":{:.1},\"min_ms\":{:.1}}}",
        samples.len(),
        at(0.5),
        at(0.99),
        samples[samples.len() - 1],
        samples[0],
    );
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let schedules: usize = args.next().map_or(1_000, |n| n.parse().unwrap());
    let workers: usize = args.next().map_or(4, |n| n.parse().unwrap());
    let fires: usize = args.next().map_or(60, |n| n.parse().unwrap());
    assert!(
        schedules > 0 && fires > 0,
        "SCHEDULES and FIRES must be at least 1"
    );
    let db = TestDatabase::new().await;
    let mut settings = TestDatabase::settings();
    settings.max_connections = u32::try_from(workers + 4).unwrap();
    let store = Store::connect(db.url(), &settings).await.unwrap();
    let backend = format!("{:?}", store.backend()).to_lowercase();
    let owner = store
        .create_user(&NewUser {
            username: "bench".parse().unwrap(),
            password_hash: "x".into(),
            role: Role::User,
        })
        .await
        .unwrap()
        .id;
    let queue = Queue::new(store.clone());

    // All due at one instant: written straight to the store, since a schedule added through
    // `Schedules` starts one interval after it was made.
    let due = OffsetDateTime::now_utc() + time::Duration::seconds(2);
    for n in 0..schedules {
        store
            .create_schedule(&NewSchedule {
                owner_id: owner,
                name: format!("burst-{n:05}"),
                spec: "every 1h".into(),
                time_zone: "UTC".into(),
                missed: MissedRuns::Skip,
                job: job(),
                enabled: true,
                next_fire_at: Some(due),
            })
            .await
            .unwrap();
    }
    let samples = lateness(&queue, workers, schedules).await;
    report("burst", &backend, workers, &samples);

    Schedules::new(queue.clone())
        .add(ScheduleDraft {
            owner,
            name: "every-second".into(),
            recurrence: Recurrence::new("every 1s", "UTC").unwrap(),
            missed: MissedRuns::Skip,
            job: job(),
            enabled: true,
        })
        .await
        .unwrap();
    let samples = lateness(&queue, workers, fires).await;
    report("every-second", &backend, workers, &samples);

    store.close().await;
}
