//! Schedules and the scheduler against a real database, on whichever backend the environment
//! selects. Passes run at a "now" of the test's choosing (`Scheduler::fire_due`), so missed
//! fires are simulated without waiting; the running scheduler is checked by what it enqueues,
//! under a generous deadline, never by how long it took.

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::future::Future;
use std::time::Duration;

use kai_core::{Role, UserId};
use kai_jobs::{
    Fired, JobContext, KindSettings, MissedRuns, Queue, Recurrence, ScheduleDraft, ScheduleError,
    ScheduledJob, Scheduler, Schedules, Workers,
};
use kai_store::testing::TestDatabase;
use kai_store::{Job, JobState, NewUser, ScheduleRecord, Store, StoreError};
use time::OffsetDateTime;
use tokio::sync::mpsc;

const KIND: &str = "scheduled-test";
const DEADLINE: Duration = Duration::from_secs(30);

async fn user(store: &Store) -> UserId {
    store
        .create_user(&NewUser {
            username: "ann".parse().unwrap(),
            password_hash: "x".into(),
            role: Role::User,
        })
        .await
        .unwrap()
        .id
}

fn draft(owner: UserId, name: &str, spec: &str, missed: MissedRuns) -> ScheduleDraft {
    ScheduleDraft {
        owner,
        name: name.into(),
        recurrence: Recurrence::new(spec, "UTC").unwrap(),
        missed,
        job: ScheduledJob {
            kind: KIND.into(),
            payload: format!(r#"{{"from": "{name}"}}"#),
            priority: 0,
            max_attempts: 3,
        },
        enabled: true,
    }
}

/// The jobs enqueued of the test's kind, by fire time (`run_at`).
async fn jobs(store: &Store, expected: usize) -> Vec<Job> {
    let mut found = Vec::new();
    // Leasing reads them back whole; a long lease keeps each leased once.
    while let Some(job) = store
        .lease_job(
            KIND,
            "reader",
            time::Duration::hours(1),
            None,
            OffsetDateTime::now_utc() + time::Duration::days(400),
        )
        .await
        .unwrap()
    {
        found.push(job);
    }
    found.sort_by_key(|job| job.run_at);
    assert_eq!(found.len(), expected, "{found:#?}");
    found
}

async fn reread(schedules: &Schedules, record: &ScheduleRecord) -> ScheduleRecord {
    schedules
        .get(record.owner_id, record.id)
        .await
        .unwrap()
        .unwrap()
}

fn minutes(n: i64) -> time::Duration {
    time::Duration::minutes(n)
}

#[tokio::test]
async fn a_schedule_starts_at_its_first_fire_and_names_are_unique() {
    let db = TestDatabase::new().await;
    let queue = Queue::new(db.store().await);
    let owner = user(queue.store()).await;
    let schedules = Schedules::new(queue.clone());
    let before = OffsetDateTime::now_utc();
    let record = schedules
        .add(draft(owner, "tick", "every 10m", MissedRuns::Skip))
        .await
        .unwrap();
    let next = record.next_fire_at.unwrap();
    assert!(next >= before + minutes(10) - time::Duration::MILLISECOND);
    assert!(next <= OffsetDateTime::now_utc() + minutes(10));
    assert_eq!(record.spec, "every 10m");
    assert_eq!(record.time_zone, "UTC");

    let daily = schedules
        .add(ScheduleDraft {
            recurrence: Recurrence::new("cron:  0 9 * * *", "europe/berlin").unwrap(),
            ..draft(owner, "daily", "every 1m", MissedRuns::RunOnce)
        })
        .await
        .unwrap();
    assert_eq!(
        (daily.spec.as_str(), daily.time_zone.as_str()),
        ("cron: 0 9 * * *", "Europe/Berlin")
    );

    let taken = schedules
        .add(draft(owner, "tick", "every 1h", MissedRuns::Skip))
        .await
        .unwrap_err();
    assert!(
        matches!(taken, ScheduleError::Store(StoreError::Conflict(_))),
        "{taken:?}"
    );
    let never = schedules
        .add(draft(owner, "never", "cron: 0 0 30 2 *", MissedRuns::Skip))
        .await
        .unwrap_err();
    assert!(
        matches!(never, ScheduleError::Invalid { field: "spec", .. }),
        "{never:?}"
    );
    let found = schedules.find(owner, "tick").await.unwrap().unwrap();
    assert_eq!(found, record);
    assert_eq!(schedules.list(owner).await.unwrap().len(), 2);
    assert!(schedules.remove(owner, record.id).await.unwrap());
    assert!(schedules.find(owner, "tick").await.unwrap().is_none());
}

#[tokio::test]
async fn a_fire_found_late_within_the_tolerance_runs() {
    let db = TestDatabase::new().await;
    let queue = Queue::new(db.store().await);
    let owner = user(queue.store()).await;
    let schedules = Schedules::new(queue.clone());
    let record = schedules
        .add(draft(owner, "tick", "every 10m", MissedRuns::Skip))
        .await
        .unwrap();
    let due = record.next_fire_at.unwrap();
    let scheduler = Scheduler::new(queue.clone());

    assert_eq!(
        scheduler
            .fire_due(due - time::Duration::SECOND)
            .await
            .unwrap(),
        Fired::default(),
        "not yet due"
    );
    let fired = scheduler
        .fire_due(due + time::Duration::seconds(50))
        .await
        .unwrap();
    assert_eq!(fired.enqueued, 1);
    let moved = reread(&schedules, &record).await;
    assert_eq!(moved.next_fire_at, Some(due + minutes(10)));
    assert_eq!(moved.last_fire_at, Some(due));
    let jobs = jobs(queue.store(), 1).await;
    assert_eq!(jobs[0].run_at, due, "the job carries its fire time");
    assert_eq!(jobs[0].payload, r#"{"from": "tick"}"#);
}

#[tokio::test]
async fn fires_late_within_the_tolerance_each_run_then_the_schedule_is_current() {
    let db = TestDatabase::new().await;
    let queue = Queue::new(db.store().await);
    let owner = user(queue.store()).await;
    let schedules = Schedules::new(queue.clone());
    let record = schedules
        .add(draft(owner, "fast", "every 10s", MissedRuns::Skip))
        .await
        .unwrap();
    let due = record.next_fire_at.unwrap();
    // 45 s late: the fires at +0, +10, +20, +30 and +40 s are all within a minute.
    let fired = Scheduler::new(queue.clone())
        .fire_due(due + time::Duration::seconds(45))
        .await
        .unwrap();
    assert_eq!(fired.enqueued, 5);
    let moved = reread(&schedules, &record).await;
    assert_eq!(moved.next_fire_at, Some(due + time::Duration::seconds(50)));
    jobs(queue.store(), 5).await;
}

#[tokio::test]
async fn missed_fires_are_skipped_under_the_skip_policy() {
    let db = TestDatabase::new().await;
    let queue = Queue::new(db.store().await);
    let owner = user(queue.store()).await;
    let schedules = Schedules::new(queue.clone());
    let record = schedules
        .add(draft(owner, "tick", "every 10m", MissedRuns::Skip))
        .await
        .unwrap();
    let due = record.next_fire_at.unwrap();

    // Two hours down: the fires up to a minute before "now" were missed; the one at exactly
    // two hours is the first that was not.
    let now = due + minutes(120) + time::Duration::seconds(30);
    let fired = Scheduler::new(queue.clone()).fire_due(now).await.unwrap();
    assert_eq!((fired.enqueued, fired.skipped), (1, 1), "{fired:?}");
    let moved = reread(&schedules, &record).await;
    assert_eq!(moved.next_fire_at, Some(due + minutes(130)));
    assert_eq!(moved.last_fire_at, Some(due + minutes(120)));
    let jobs = jobs(queue.store(), 1).await;
    assert_eq!(
        jobs[0].run_at,
        due + minutes(120),
        "only the fire not missed ran"
    );
}

#[tokio::test]
async fn missed_fires_run_once_under_the_run_once_policy() {
    let db = TestDatabase::new().await;
    let queue = Queue::new(db.store().await);
    let owner = user(queue.store()).await;
    let schedules = Schedules::new(queue.clone());
    let record = schedules
        .add(ScheduleDraft {
            recurrence: Recurrence::new("cron: 0 9 * * *", "Europe/Berlin").unwrap(),
            ..draft(owner, "morning", "every 1m", MissedRuns::RunOnce)
        })
        .await
        .unwrap();
    let due = record.next_fire_at.unwrap();
    let day = time::Duration::days(1);

    // Three days and an hour later: four fires missed, one job for all of them.
    let now = due + 3 * day + minutes(60);
    let scheduler = Scheduler::new(queue.clone());
    let fired = scheduler.fire_due(now).await.unwrap();
    assert_eq!(fired.enqueued, 1, "{fired:?}");
    let moved = reread(&schedules, &record).await;
    assert_eq!(moved.next_fire_at, Some(due + 4 * day));
    assert_eq!(moved.last_fire_at, Some(due + 3 * day));
    let jobs = jobs(queue.store(), 1).await;
    assert_eq!(
        jobs[0].run_at,
        due + 3 * day,
        "stamped with the last missed fire"
    );

    // Once caught up, it fires as usual.
    let fired = scheduler
        .fire_due(due + 4 * day + time::Duration::SECOND)
        .await
        .unwrap();
    assert_eq!(fired.enqueued, 1);
    // A tolerance of zero makes any late fire a missed one.
    let strict = Scheduler::new(queue.clone()).missed_after(Duration::ZERO);
    let fired = strict
        .fire_due(due + 5 * day + time::Duration::SECOND)
        .await
        .unwrap();
    assert_eq!((fired.enqueued, fired.skipped), (1, 0));
    let moved = reread(&schedules, &record).await;
    assert_eq!(moved.next_fire_at, Some(due + 6 * day));
}

#[tokio::test]
async fn disabled_schedules_never_fire_and_enabling_starts_from_now() {
    let db = TestDatabase::new().await;
    let queue = Queue::new(db.store().await);
    let owner = user(queue.store()).await;
    let schedules = Schedules::new(queue.clone());
    let off = schedules
        .add(ScheduleDraft {
            enabled: false,
            ..draft(owner, "off", "every 1m", MissedRuns::RunOnce)
        })
        .await
        .unwrap();
    assert!(!off.enabled && off.next_fire_at.is_none());
    let scheduler = Scheduler::new(queue.clone());
    let far = OffsetDateTime::now_utc() + time::Duration::days(30);
    assert_eq!(scheduler.fire_due(far).await.unwrap(), Fired::default());

    let on = schedules
        .set_enabled(owner, off.id, true)
        .await
        .unwrap()
        .unwrap();
    let next = on.next_fire_at.unwrap();
    assert!(next <= OffsetDateTime::now_utc() + minutes(1));
    // Enabling again changes nothing.
    assert_eq!(
        schedules.set_enabled(owner, off.id, true).await.unwrap(),
        Some(on.clone())
    );
    let off_again = schedules
        .set_enabled(owner, off.id, false)
        .await
        .unwrap()
        .unwrap();
    assert!(off_again.next_fire_at.is_none());
    assert_eq!(scheduler.fire_due(far).await.unwrap(), Fired::default());
    assert!(queue.store().job_counts(KIND).await.unwrap().is_empty());
    assert!(
        schedules
            .set_enabled(owner, kai_core::ScheduleId::new(), true)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn schedules_survive_a_restart() {
    let db = TestDatabase::new().await;
    let (owner, record) = {
        let queue = Queue::new(db.store().await);
        let owner = user(queue.store()).await;
        let record = Schedules::new(queue.clone())
            .add(draft(owner, "tick", "every 10m", MissedRuns::RunOnce))
            .await
            .unwrap();
        queue.store().close().await;
        (owner, record)
    };
    let queue = Queue::new(db.store().await);
    let schedules = Schedules::new(queue.clone());
    assert_eq!(
        schedules.get(owner, record.id).await.unwrap(),
        Some(record.clone())
    );
    let due = record.next_fire_at.unwrap();
    let fired = Scheduler::new(queue.clone()).fire_due(due).await.unwrap();
    assert_eq!(fired.enqueued, 1);
    assert_eq!(jobs(queue.store(), 1).await[0].run_at, due);
}

#[tokio::test]
async fn two_schedulers_on_one_database_fire_each_time_once() {
    let db = TestDatabase::new().await;
    // Two stores: two pools, as two processes would have.
    let first = Queue::new(db.store().await);
    let second = Queue::new(db.store().await);
    let owner = user(first.store()).await;
    let schedules = Schedules::new(first.clone());
    let mut latest = OffsetDateTime::UNIX_EPOCH;
    for n in 0..30 {
        let record = schedules
            .add(draft(
                owner,
                &format!("s{n:02}"),
                "every 1m",
                MissedRuns::Skip,
            ))
            .await
            .unwrap();
        latest = latest.max(record.next_fire_at.unwrap());
    }
    let now = latest + time::Duration::SECOND;
    let (one, other) = (
        Scheduler::new(first.clone()),
        Scheduler::new(second.clone()),
    );
    let (a, b) = tokio::join!(one.fire_due(now), other.fire_due(now));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.enqueued + b.enqueued, 30, "{a:?} {b:?}");
    let jobs = jobs(first.store(), 30).await;
    let payloads: HashSet<&str> = jobs.iter().map(|job| job.payload.as_str()).collect();
    assert_eq!(payloads.len(), 30, "one job per schedule");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_schedulers_in_two_processes_enqueue_for_the_workers() {
    let db = TestDatabase::new().await;
    let first = Queue::new(db.store().await);
    let second = Queue::new(db.store().await);
    let owner = user(first.store()).await;
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    let workers = Workers::new(first.clone())
        .poll_interval(Duration::from_millis(50))
        .handle(KIND, KindSettings::default(), move |job: JobContext| {
            let seen_tx = seen_tx.clone();
            async move {
                seen_tx.send(job.job().run_at).unwrap();
                Ok(())
            }
        })
        .start();
    let schedulers = [
        Scheduler::new(first.clone())
            .poll_interval(Duration::from_millis(100))
            .start(),
        Scheduler::new(second.clone())
            .poll_interval(Duration::from_millis(100))
            .start(),
    ];
    let record = Schedules::new(first.clone())
        .add(draft(owner, "second", "every 1s", MissedRuns::Skip))
        .await
        .unwrap();
    let first_fire = record.next_fire_at.unwrap();

    let mut fires = Vec::new();
    while fires.len() < 3 {
        let fire = tokio::time::timeout(DEADLINE, seen.recv())
            .await
            .expect("a fire within the deadline")
            .unwrap();
        fires.push(fire);
    }
    fires.sort();
    for (n, fire) in fires.iter().enumerate() {
        assert_eq!(
            *fire,
            first_fire + time::Duration::seconds(i64::try_from(n).unwrap()),
            "each fire once, a second apart: {fires:?}"
        );
    }
    for scheduler in schedulers {
        scheduler.shutdown().await;
    }
    let store = first.store().clone();
    wait_for("the jobs to finish", || async {
        let counts = store.job_counts(KIND).await.unwrap();
        counts.iter().all(|(state, _)| *state == JobState::Done)
    })
    .await;
    workers.shutdown().await;
    // What ran after the first three, while the schedulers stopped, was each fire once too.
    let mut rest = Vec::new();
    while let Ok(fire) = seen.try_recv() {
        rest.push(fire);
    }
    let all: HashSet<OffsetDateTime> = fires.iter().chain(&rest).copied().collect();
    assert_eq!(all.len(), fires.len() + rest.len(), "no fire ran twice");
}
