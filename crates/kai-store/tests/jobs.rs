//! The durable job queue's storage, on whichever backend the environment selects.

#![allow(clippy::unwrap_used)]

use kai_store::testing::TestDatabase;
use kai_store::{FailOutcome, JobState, NewJob, Store};
use time::{Duration, OffsetDateTime};

fn new_job(kind: &str, priority: i32, max_attempts: u32) -> NewJob {
    NewJob {
        kind: kind.into(),
        payload: format!("{{\"n\": {priority}}}"),
        priority,
        max_attempts,
        run_at: OffsetDateTime::now_utc(),
        dedupe_key: None,
    }
}

async fn lease(store: &Store, worker: &str) -> Option<kai_store::Job> {
    store
        .lease_job(
            "index",
            worker,
            Duration::seconds(30),
            None,
            OffsetDateTime::now_utc(),
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn jobs_are_leased_by_priority_then_age_and_finished_once() {
    let db = TestDatabase::new().await;
    let store = db.store().await;
    let low = store.enqueue_job(&new_job("index", 0, 3)).await.unwrap();
    let high = store.enqueue_job(&new_job("index", 5, 3)).await.unwrap();
    let later = store
        .enqueue_job(&NewJob {
            run_at: OffsetDateTime::now_utc() + Duration::hours(1),
            ..new_job("index", 9, 3)
        })
        .await
        .unwrap();
    store.enqueue_job(&new_job("other", 9, 3)).await.unwrap();

    let first = lease(&store, "w1").await.unwrap();
    assert_eq!(
        (first.id, first.state, first.attempts),
        (high, JobState::Running, 1)
    );
    assert_eq!(first.payload, "{\"n\": 5}");
    assert_eq!(lease(&store, "w2").await.unwrap().id, low);
    assert!(
        lease(&store, "w3").await.is_none(),
        "the later one is not due"
    );

    // Only the worker holding a job finishes it, and only once.
    assert!(!store.complete_job(high, "w2").await.unwrap());
    assert!(store.complete_job(high, "w1").await.unwrap());
    assert!(!store.complete_job(high, "w1").await.unwrap());
    let done = store.job(high).await.unwrap().unwrap();
    assert_eq!(done.state, JobState::Done);
    assert!(done.finished_at.is_some() && done.worker.is_none());
    assert_eq!(
        store.job(later).await.unwrap().unwrap().state,
        JobState::Queued
    );

    let counts = store.job_counts("index").await.unwrap();
    assert!(counts.contains(&(JobState::Done, 1)), "{counts:?}");
    assert!(counts.contains(&(JobState::Running, 1)), "{counts:?}");
    assert!(counts.contains(&(JobState::Queued, 1)), "{counts:?}");
}

#[tokio::test]
async fn failures_retry_until_the_last_attempt_then_the_job_is_dead() {
    let db = TestDatabase::new().await;
    let store = db.store().await;
    let id = store.enqueue_job(&new_job("index", 0, 2)).await.unwrap();
    lease(&store, "w1").await.unwrap();
    let retry_at = OffsetDateTime::now_utc() + Duration::milliseconds(50);
    assert_eq!(
        store
            .fail_job(id, "w1", "parse error", retry_at)
            .await
            .unwrap(),
        FailOutcome::Retried
    );
    let queued = store.job(id).await.unwrap().unwrap();
    assert_eq!(queued.state, JobState::Queued);
    assert_eq!(queued.last_error.as_deref(), Some("parse error"));
    assert!(
        lease(&store, "w1").await.is_none(),
        "not before its retry time"
    );
    tokio::time::sleep(std::time::Duration::from_millis(60)).await;
    let again = lease(&store, "w2").await.unwrap();
    assert_eq!(again.attempts, 2);
    assert_eq!(
        store.fail_job(id, "w1", "stale", retry_at).await.unwrap(),
        FailOutcome::NotHeld,
        "a worker that lost its lease changes nothing"
    );
    assert_eq!(
        store
            .fail_job(id, "w2", "still broken", retry_at)
            .await
            .unwrap(),
        FailOutcome::Dead
    );
    let dead = store.job(id).await.unwrap().unwrap();
    assert_eq!(dead.state, JobState::Dead);
    assert_eq!(dead.last_error.as_deref(), Some("still broken"));
}

#[tokio::test]
async fn a_job_given_up_on_is_dead_at_once_with_its_reason() {
    let db = TestDatabase::new().await;
    let store = db.store().await;
    let id = store.enqueue_job(&new_job("index", 0, 5)).await.unwrap();
    lease(&store, "w1").await.unwrap();
    assert!(
        !store.give_up_job(id, "w2", "not mine").await.unwrap(),
        "only the worker holding a job gives up on it"
    );
    assert!(store.give_up_job(id, "w1", "no such file").await.unwrap());
    assert!(!store.give_up_job(id, "w1", "again").await.unwrap());
    let dead = store.job(id).await.unwrap().unwrap();
    assert_eq!((dead.state, dead.attempts), (JobState::Dead, 1));
    assert_eq!(dead.last_error.as_deref(), Some("no such file"));
    assert!(dead.finished_at.is_some() && dead.worker.is_none() && dead.lease_until.is_none());
    assert!(
        lease(&store, "w1").await.is_none(),
        "attempts were left, but it is not offered again"
    );
}

#[tokio::test]
async fn a_lease_that_runs_out_is_taken_over_and_counts_as_an_attempt() {
    let db = TestDatabase::new().await;
    let store = db.store().await;
    let id = store.enqueue_job(&new_job("index", 0, 2)).await.unwrap();
    let now = OffsetDateTime::now_utc();
    let short = Duration::seconds(1);
    store
        .lease_job("index", "dead-worker", short, None, now)
        .await
        .unwrap()
        .unwrap();
    // While the lease holds, nobody else gets it; heartbeats extend it.
    assert!(
        store
            .lease_job("index", "w2", short, None, now)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .heartbeat_job(id, "dead-worker", now + short)
            .await
            .unwrap()
    );
    // Then the worker dies: its lease runs out and another takes the job over.
    let later = now + Duration::seconds(5);
    let taken = store
        .lease_job("index", "w2", short, None, later)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((taken.id, taken.attempts), (id, 2));
    assert!(!store.heartbeat_job(id, "dead-worker", later).await.unwrap());
    // It dies too, on the last attempt: the job is given up on, not offered a third time.
    let much_later = later + Duration::seconds(5);
    assert!(
        store
            .lease_job("index", "w3", short, None, much_later)
            .await
            .unwrap()
            .is_none()
    );
    let dead = store.job(id).await.unwrap().unwrap();
    assert_eq!(dead.state, JobState::Dead);
    assert!(dead.last_error.unwrap().contains("stopped answering"));
}

#[tokio::test]
async fn a_dedupe_key_enqueues_once_and_a_kind_limit_holds_under_concurrency() {
    let db = TestDatabase::new().await;
    let store = db.store().await;
    let keyed = NewJob {
        dedupe_key: Some("artifact:1:v2".into()),
        ..new_job("index", 0, 3)
    };
    let first = store.enqueue_job(&keyed).await.unwrap();
    assert_eq!(store.enqueue_job(&keyed).await.unwrap(), first);
    for _ in 0..9 {
        store.enqueue_job(&new_job("index", 0, 3)).await.unwrap();
    }
    let leases: Vec<_> = (0..10)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .lease_job(
                        "index",
                        &format!("w{i}"),
                        Duration::seconds(30),
                        Some(3),
                        OffsetDateTime::now_utc(),
                    )
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut leased = Vec::new();
    for lease in leases {
        if let Some(job) = lease.await.unwrap() {
            leased.push(job.id);
        }
    }
    assert_eq!(leased.len(), 3, "{leased:?}");
    leased.sort();
    leased.dedup();
    assert_eq!(leased.len(), 3, "no job is leased twice");
}

#[tokio::test]
async fn leases_ended_at_start_let_another_worker_resume_at_once() {
    let db = TestDatabase::new().await;
    let store = db.store().await;
    store.enqueue_job(&new_job("index", 0, 3)).await.unwrap();
    let held = lease(&store, "dead-worker").await.unwrap();
    assert!(lease(&store, "new-worker").await.is_none(), "still leased");
    assert_eq!(
        store
            .expire_leases(OffsetDateTime::now_utc())
            .await
            .unwrap(),
        1
    );
    let resumed = lease(&store, "new-worker").await.unwrap();
    assert_eq!(resumed.id, held.id);
    assert_eq!(resumed.attempts, 2, "the dead worker's lease counted");
    assert!(
        !store.complete_job(held.id, "dead-worker").await.unwrap(),
        "the old worker holds nothing"
    );
}

#[tokio::test]
async fn queued_jobs_and_jobs_whose_lease_ran_out_are_leased_in_one_order() {
    let db = TestDatabase::new().await;
    let store = db.store().await;
    let now = OffsetDateTime::now_utc();
    let short = Duration::seconds(1);
    // A job leased by a worker that then dies, and a queued job of lower priority.
    let abandoned = store.enqueue_job(&new_job("index", 5, 3)).await.unwrap();
    store
        .lease_job("index", "dead-worker", short, None, now)
        .await
        .unwrap()
        .unwrap();
    let queued = store.enqueue_job(&new_job("index", 1, 3)).await.unwrap();
    let urgent = store.enqueue_job(&new_job("index", 9, 3)).await.unwrap();
    let later = now + Duration::seconds(5);
    let mut order = Vec::new();
    while let Some(job) = store
        .lease_job("index", "w2", Duration::minutes(5), None, later)
        .await
        .unwrap()
    {
        order.push(job.id);
    }
    assert_eq!(
        order,
        [urgent, abandoned, queued],
        "by priority, whether queued or taken over"
    );
}
