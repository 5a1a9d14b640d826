//! Schedules' storage, and the claim that makes each fire happen once, on whichever backend
//! the environment selects.

#![allow(clippy::unwrap_used)]

use kai_core::{Role, ScheduleId, UserId};
use kai_store::testing::TestDatabase;
use kai_store::{
    FireOutcome, JobState, MissedRuns, NewSchedule, NewUser, ScheduleFire, ScheduleRecord,
    ScheduledJob, Store, StoreError,
};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

async fn user(store: &Store, name: &str) -> UserId {
    store
        .create_user(&NewUser {
            username: name.parse().unwrap(),
            password_hash: "x".into(),
            role: Role::User,
        })
        .await
        .unwrap()
        .id
}

fn schedule(owner: UserId, name: &str, next: Option<OffsetDateTime>) -> NewSchedule {
    NewSchedule {
        owner_id: owner,
        name: name.into(),
        spec: "every 1h".into(),
        time_zone: "Europe/Berlin".into(),
        missed: MissedRuns::RunOnce,
        job: ScheduledJob {
            kind: "report".into(),
            payload: format!(r#"{{"schedule": "{name}"}}"#),
            priority: 3,
            max_attempts: 2,
        },
        enabled: next.is_some(),
        next_fire_at: next,
    }
}

fn fire(record: &ScheduleRecord, job_at: Option<OffsetDateTime>) -> ScheduleFire {
    let due = record.next_fire_at.unwrap();
    ScheduleFire {
        id: record.id,
        due,
        job_at,
        next: Some(due + Duration::hours(1)),
    }
}

const NINE: OffsetDateTime = datetime!(2026-12-07 09:00 UTC);

#[tokio::test]
async fn schedules_are_kept_per_owner_with_unique_names() {
    let db = TestDatabase::new().await;
    let store = db.store().await;
    let ann = user(&store, "ann").await;
    let bob = user(&store, "bob").await;

    let report = store
        .create_schedule(&schedule(ann, "report", Some(NINE)))
        .await
        .unwrap();
    assert_eq!(report.next_fire_at, Some(NINE));
    assert_eq!(report.missed, MissedRuns::RunOnce);
    assert!(report.enabled && report.last_fire_at.is_none());
    let paused = store
        .create_schedule(&schedule(ann, "paused", None))
        .await
        .unwrap();
    assert!(!paused.enabled);
    store
        .create_schedule(&schedule(bob, "report", Some(NINE)))
        .await
        .unwrap();
    assert!(matches!(
        store
            .create_schedule(&schedule(ann, "report", Some(NINE)))
            .await,
        Err(StoreError::Conflict(_))
    ));

    let listed: Vec<String> = store
        .schedules(ann)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(listed, ["paused", "report"]);
    assert_eq!(
        store.schedule(ann, report.id).await.unwrap(),
        Some(report.clone())
    );
    assert_eq!(
        store.schedule_named(ann, "report").await.unwrap(),
        Some(report.clone())
    );
    assert_eq!(store.schedule(bob, report.id).await.unwrap(), None);
    assert!(
        !store.delete_schedule(bob, report.id).await.unwrap(),
        "another owner's schedule is not found"
    );

    let enabled = store
        .set_schedule_enabled(ann, paused.id, true, Some(NINE))
        .await
        .unwrap()
        .unwrap();
    assert!(enabled.enabled);
    assert_eq!(enabled.next_fire_at, Some(NINE));
    let disabled = store
        .set_schedule_enabled(ann, paused.id, false, None)
        .await
        .unwrap()
        .unwrap();
    assert!(!disabled.enabled && disabled.next_fire_at.is_none());
    assert!(
        store
            .set_schedule_enabled(bob, paused.id, true, Some(NINE))
            .await
            .unwrap()
            .is_none()
    );

    assert!(store.delete_schedule(ann, report.id).await.unwrap());
    assert!(!store.delete_schedule(ann, report.id).await.unwrap());
    assert_eq!(store.schedules(ann).await.unwrap().len(), 1);
}

#[tokio::test]
async fn only_enabled_schedules_are_due_soonest_first() {
    let db = TestDatabase::new().await;
    let store = db.store().await;
    let ann = user(&store, "ann").await;
    let later = store
        .create_schedule(&schedule(ann, "later", Some(NINE + Duration::minutes(5))))
        .await
        .unwrap();
    let sooner = store
        .create_schedule(&schedule(ann, "sooner", Some(NINE)))
        .await
        .unwrap();
    store
        .create_schedule(&schedule(ann, "future", Some(NINE + Duration::days(1))))
        .await
        .unwrap();
    let off = store
        .create_schedule(&schedule(ann, "off", Some(NINE)))
        .await
        .unwrap();
    store
        .set_schedule_enabled(ann, off.id, false, Some(NINE))
        .await
        .unwrap();

    let due: Vec<ScheduleId> = store
        .due_schedules(NINE + Duration::hours(1), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(due, [sooner.id, later.id], "disabled and future ones wait");
    assert_eq!(store.due_schedules(NINE, 1).await.unwrap().len(), 1);
    assert!(
        store
            .due_schedules(NINE - Duration::seconds(1), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.next_schedule_fire().await.unwrap(), Some(NINE));
}

#[tokio::test]
async fn a_fire_is_claimed_once_and_enqueues_its_job_with_it() {
    let db = TestDatabase::new().await;
    let store = db.store().await;
    let ann = user(&store, "ann").await;
    let report = store
        .create_schedule(&schedule(ann, "report", Some(NINE)))
        .await
        .unwrap();

    let outcomes = store
        .fire_schedules(&[fire(&report, Some(NINE))])
        .await
        .unwrap();
    let [FireOutcome::Enqueued(job)] = outcomes[..] else {
        panic!("{outcomes:?}");
    };
    let job = store.job(job).await.unwrap().unwrap();
    assert_eq!(
        (
            job.kind.as_str(),
            job.payload.as_str(),
            job.priority,
            job.max_attempts
        ),
        ("report", r#"{"schedule": "report"}"#, 3, 2)
    );
    assert_eq!((job.state, job.run_at), (JobState::Queued, NINE));
    let moved = store.schedule(ann, report.id).await.unwrap().unwrap();
    assert_eq!(moved.next_fire_at, Some(NINE + Duration::hours(1)));
    assert_eq!(moved.last_fire_at, Some(NINE));

    // A scheduler that read the schedule before that fire changes nothing.
    assert_eq!(
        store
            .fire_schedules(&[fire(&report, Some(NINE))])
            .await
            .unwrap(),
        [FireOutcome::Lost]
    );
    assert_eq!(
        store.job_counts("report").await.unwrap(),
        [(JobState::Queued, 1)]
    );

    // Moving on without a job (missed fires skipped) leaves the last fire as it was.
    let skipped = store.fire_schedules(&[fire(&moved, None)]).await.unwrap();
    assert_eq!(skipped, [FireOutcome::Advanced]);
    let moved = store.schedule(ann, report.id).await.unwrap().unwrap();
    assert_eq!(moved.next_fire_at, Some(NINE + Duration::hours(2)));
    assert_eq!(moved.last_fire_at, Some(NINE));

    // A schedule with no next fire is no longer due.
    let last = store
        .fire_schedules(&[ScheduleFire {
            next: None,
            ..fire(&moved, Some(NINE + Duration::hours(1)))
        }])
        .await
        .unwrap();
    assert!(matches!(last[..], [FireOutcome::Enqueued(_)]));
    assert!(
        store
            .due_schedules(NINE + Duration::days(100), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn the_same_fire_enqueued_twice_is_one_job() {
    let db = TestDatabase::new().await;
    let store = db.store().await;
    let ann = user(&store, "ann").await;
    let report = store
        .create_schedule(&schedule(ann, "report", Some(NINE)))
        .await
        .unwrap();
    let [FireOutcome::Enqueued(first)] = store
        .fire_schedules(&[fire(&report, Some(NINE))])
        .await
        .unwrap()[..]
    else {
        panic!("not fired");
    };
    // Put the schedule back, as a restore from a backup might: the fire's job is not
    // enqueued a second time.
    store
        .set_schedule_enabled(ann, report.id, true, Some(NINE))
        .await
        .unwrap();
    let again = store
        .fire_schedules(&[fire(&report, Some(NINE))])
        .await
        .unwrap();
    assert_eq!(again, [FireOutcome::Enqueued(first)]);
    assert_eq!(
        store.job_counts("report").await.unwrap(),
        [(JobState::Queued, 1)]
    );
}

#[tokio::test]
async fn disabled_or_deleted_schedules_are_not_claimed() {
    let db = TestDatabase::new().await;
    let store = db.store().await;
    let ann = user(&store, "ann").await;
    let off = store
        .create_schedule(&schedule(ann, "off", Some(NINE)))
        .await
        .unwrap();
    let gone = store
        .create_schedule(&schedule(ann, "gone", Some(NINE)))
        .await
        .unwrap();
    // Read as due, then disabled (keeping its time) and deleted before the claim.
    store
        .set_schedule_enabled(ann, off.id, false, Some(NINE))
        .await
        .unwrap();
    store.delete_schedule(ann, gone.id).await.unwrap();
    let outcomes = store
        .fire_schedules(&[fire(&off, Some(NINE)), fire(&gone, Some(NINE))])
        .await
        .unwrap();
    assert_eq!(outcomes, [FireOutcome::Lost, FireOutcome::Lost]);
    assert!(store.job_counts("report").await.unwrap().is_empty());
}

#[tokio::test]
async fn two_processes_claiming_the_same_fires_enqueue_each_once() {
    let db = TestDatabase::new().await;
    let first = db.store().await;
    let second = db.store().await;
    let ann = user(&first, "ann").await;
    for n in 0..40 {
        first
            .create_schedule(&schedule(ann, &format!("s{n:02}"), Some(NINE)))
            .await
            .unwrap();
    }
    let due = first.due_schedules(NINE, 100).await.unwrap();
    assert_eq!(due.len(), 40);
    // Both read the same due schedules; the second claims them in the opposite order.
    let fires: Vec<ScheduleFire> = due.iter().map(|s| fire(s, Some(NINE))).collect();
    let reversed: Vec<ScheduleFire> = fires.iter().rev().copied().collect();
    let (a, b) = tokio::join!(
        first.fire_schedules(&fires),
        second.fire_schedules(&reversed)
    );
    let enqueued = a
        .unwrap()
        .into_iter()
        .chain(b.unwrap())
        .filter(|outcome| matches!(outcome, FireOutcome::Enqueued(_)))
        .count();
    assert_eq!(enqueued, 40, "each fire claimed by exactly one");
    assert_eq!(
        first.job_counts("report").await.unwrap(),
        [(JobState::Queued, 40)]
    );
    for schedule in first.schedules(ann).await.unwrap() {
        assert_eq!(schedule.next_fire_at, Some(NINE + Duration::hours(1)));
    }
}

#[tokio::test]
async fn schedules_go_with_their_owner() {
    let db = TestDatabase::new().await;
    let store = db.store().await;
    let ann = user(&store, "ann").await;
    store
        .create_schedule(&schedule(ann, "report", Some(NINE)))
        .await
        .unwrap();
    store.delete_user(ann).await.unwrap();
    assert!(store.due_schedules(NINE, 10).await.unwrap().is_empty());
}
