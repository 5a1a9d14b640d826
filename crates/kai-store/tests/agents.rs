//! Agents' storage (prompt templates, definitions, runs with their timelines, tool calls,
//! requests to the owner), run against whichever backend `KAI_TEST_DATABASE_URL` selects
//! (SQLite when unset). `scripts/test` runs it against both.

#![allow(clippy::unwrap_used)] // helpers outside #[test] functions unwrap too

use kai_core::{AgentId, PromptId, Role, RunId, RunRequestId, UserId};
use kai_store::testing::TestDatabase;
use kai_store::{
    NewAgent, NewPrompt, NewRun, NewRunEvent, NewRunRequest, NewUser, RunRequestKind,
    RunRequestStatus, RunRequested, RunSave, RunStatus, Store, StoreError,
};
use time::{Duration, OffsetDateTime};

async fn user(store: &Store, name: &str) -> UserId {
    store
        .create_user(&NewUser {
            username: name.parse().unwrap(),
            password_hash: "$argon2id$fake".into(),
            role: Role::User,
        })
        .await
        .unwrap()
        .id
}

async fn agent(store: &Store, owner: UserId, name: &str) -> AgentId {
    store
        .create_agent(&NewAgent {
            id: AgentId::new(),
            owner_id: owner,
            name: name.into(),
            definition: "{}".into(),
        })
        .await
        .unwrap()
        .id
}

fn event(kind: &str) -> NewRunEvent {
    NewRunEvent {
        kind: kind.into(),
        data: format!("{{\"kind\":\"{kind}\"}}"),
    }
}

async fn run(store: &Store, owner: UserId, agent: AgentId) -> RunId {
    store
        .create_run(
            &NewRun {
                id: RunId::new(),
                agent_id: agent,
                owner_id: owner,
                goal: "tidy up".into(),
                definition: "{}".into(),
                state: "{\"step\":0}".into(),
            },
            &[event("created")],
        )
        .await
        .unwrap()
        .id
}

#[tokio::test]
async fn prompt_versions_are_kept_and_names_are_per_owner() {
    let db = TestDatabase::new().await;
    let store = db.store().await;
    let (ada, bob) = (user(&store, "ada").await, user(&store, "bob").await);
    let new = NewPrompt {
        id: PromptId::new(),
        owner_id: ada,
        name: "planner".into(),
        description: "plans".into(),
        template: "Plan {{ goal }}".into(),
        variables: "[\"goal\"]".into(),
    };
    let created = store.create_prompt(&new).await.unwrap();
    assert_eq!((created.version, created.latest_version), (1, 1));
    let again = NewPrompt {
        id: PromptId::new(),
        ..new.clone()
    };
    assert!(matches!(
        store.create_prompt(&again).await,
        Err(StoreError::Conflict(_))
    ));
    store
        .create_prompt(&NewPrompt {
            id: PromptId::new(),
            owner_id: bob,
            ..new.clone()
        })
        .await
        .unwrap();

    let second = store
        .add_prompt_version(
            ada,
            new.id,
            None,
            "Plan {{ goal }} in {{ n }} steps",
            "[\"goal\",\"n\"]",
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!((second.version, second.latest_version), (2, 2));
    assert_eq!(second.description, "plans");
    let first = store.prompt(ada, new.id, Some(1)).await.unwrap().unwrap();
    assert_eq!(first.template, "Plan {{ goal }}");
    assert_eq!(first.latest_version, 2);
    let by_name = store
        .prompt_by_name(ada, "planner", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_name.version, 2);
    assert_eq!(store.prompt_versions(ada, new.id).await.unwrap().len(), 2);
    assert!(store.prompt(bob, new.id, None).await.unwrap().is_none());
    assert!(
        store
            .add_prompt_version(bob, new.id, None, "x", "[]")
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.prompt(ada, new.id, Some(3)).await.unwrap().is_none());
    assert!(!store.delete_prompt(bob, new.id).await.unwrap());
    assert!(store.delete_prompt(ada, new.id).await.unwrap());
    assert!(store.prompt_versions(ada, new.id).await.unwrap().is_empty());
}

#[tokio::test]
async fn agents_are_owned_named_once_and_keep_their_grants() {
    let db = TestDatabase::new().await;
    let store = db.store().await;
    let (ada, bob) = (user(&store, "ada").await, user(&store, "bob").await);
    let helper = agent(&store, ada, "helper").await;
    let other = agent(&store, ada, "other").await;
    assert!(matches!(
        store
            .create_agent(&NewAgent {
                id: AgentId::new(),
                owner_id: ada,
                name: "helper".into(),
                definition: "{}".into(),
            })
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.update_agent(ada, other, "helper", "{}").await,
        Err(StoreError::Conflict(_))
    ));
    let renamed = store
        .update_agent(ada, other, "second", "{\"model\":\"m\"}")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(renamed.definition, "{\"model\":\"m\"}");
    assert!(
        store
            .update_agent(bob, other, "x", "{}")
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.agent(bob, helper).await.unwrap().is_none());
    assert_eq!(
        store
            .agent_by_name(ada, "second")
            .await
            .unwrap()
            .unwrap()
            .id,
        other
    );
    assert_eq!(store.agents(ada).await.unwrap().len(), 2);

    store
        .set_consent_grant(helper, "shell", true)
        .await
        .unwrap();
    store
        .set_consent_grant(helper, "shell", false)
        .await
        .unwrap();
    store.set_consent_grant(helper, "http", true).await.unwrap();
    let grants = store.consent_grants(helper).await.unwrap();
    assert_eq!(
        grants
            .iter()
            .map(|g| (g.tool.as_str(), g.allow))
            .collect::<Vec<_>>(),
        [("http", true), ("shell", false)]
    );
    assert!(store.delete_consent_grant(helper, "http").await.unwrap());
    assert!(!store.delete_consent_grant(helper, "http").await.unwrap());

    let run_id = run(&store, ada, helper).await;
    assert!(store.delete_agent(ada, helper).await.unwrap());
    assert!(
        store.run(run_id).await.unwrap().is_none(),
        "runs go with their agent"
    );
}

#[tokio::test]
async fn a_save_needs_the_revision_it_read_and_events_are_numbered_in_order() {
    let db = TestDatabase::new().await;
    let store = db.store().await;
    let ada = user(&store, "ada").await;
    let helper = agent(&store, ada, "helper").await;
    let id = run(&store, ada, helper).await;
    let queued = store.run(id).await.unwrap().unwrap();
    assert_eq!(
        (queued.status, queued.revision, queued.last_seq),
        (RunStatus::Queued, 0, 1)
    );

    let running = store
        .set_run_status(
            id,
            &[RunStatus::Queued],
            RunStatus::Running,
            None,
            &[event("started")],
        )
        .await
        .unwrap()
        .unwrap();
    assert!(
        store
            .set_run_status(id, &[RunStatus::Queued], RunStatus::Running, None, &[])
            .await
            .unwrap()
            .is_none(),
        "a run is taken once"
    );
    let events = [event("plan"), event("step")];
    let saved = store
        .save_run(
            id,
            running.revision,
            &RunSave {
                status: RunStatus::Running,
                state: "{\"step\":1}",
                error: None,
                events: &events,
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(saved.revision, running.revision + 1);
    let stale = store
        .save_run(
            id,
            running.revision,
            &RunSave {
                status: RunStatus::Running,
                state: "{\"step\":9}",
                error: None,
                events: &[event("lost")],
            },
        )
        .await
        .unwrap();
    assert!(stale.is_none(), "a stale writer writes nothing");

    assert!(store.request_run(id, RunRequested::Pause).await.unwrap());
    assert_eq!(
        store.run(id).await.unwrap().unwrap().requested,
        Some(RunRequested::Pause)
    );
    let done = store
        .save_run(
            id,
            saved.revision,
            &RunSave {
                status: RunStatus::Failed,
                state: "{\"step\":1}",
                error: Some("out of steps"),
                events: &[event("finished")],
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.requested, None);
    assert!(done.finished_at.is_some());
    assert_eq!(done.error.as_deref(), Some("out of steps"));
    assert!(!store.request_run(id, RunRequested::Cancel).await.unwrap());

    store.append_run_events(id, &[event("note")]).await.unwrap();
    let timeline = store.run_events(id, 0, 100).await.unwrap();
    assert_eq!(
        timeline
            .iter()
            .map(|e| (e.seq, e.kind.as_str()))
            .collect::<Vec<_>>(),
        [
            (1, "created"),
            (2, "started"),
            (3, "plan"),
            (4, "step"),
            (5, "finished"),
            (6, "note")
        ]
    );
    assert_eq!(
        store.run_events(id, 4, 1).await.unwrap()[0].kind,
        "finished"
    );
    assert_eq!(store.runs(ada, Some(helper), 10).await.unwrap().len(), 1);
    assert!(
        store
            .agent_has_run_in(helper, RunStatus::Failed)
            .await
            .unwrap()
    );
    assert!(
        !store
            .agent_has_run_in(helper, RunStatus::Running)
            .await
            .unwrap()
    );
    assert!(
        store
            .runs(ada, Some(AgentId::new()), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn concurrent_appends_get_distinct_numbers() {
    let db = TestDatabase::new().await;
    let store = db.store().await;
    let ada = user(&store, "ada").await;
    let helper = agent(&store, ada, "helper").await;
    let id = run(&store, ada, helper).await;
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .append_run_events(id, &[event("a"), event("b")])
                    .await
                    .unwrap();
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let seqs: Vec<u64> = store
        .run_events(id, 0, 100)
        .await
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(seqs, (1..=17).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_tool_call_is_begun_once_and_its_outcome_kept() {
    let db = TestDatabase::new().await;
    let store = db.store().await;
    let ada = user(&store, "ada").await;
    let helper = agent(&store, ada, "helper").await;
    let id = run(&store, ada, helper).await;
    assert!(
        store
            .begin_tool_call(id, "1.1", "shell", "{\"command\":\"ls\"}")
            .await
            .unwrap()
            .is_none()
    );
    let unknown = store
        .begin_tool_call(id, "1.1", "shell", "{\"command\":\"ls\"}")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        unknown.result, None,
        "begun, never settled: outcome unknown"
    );
    store
        .finish_tool_call(id, "1.1", "{\"ok\":true}")
        .await
        .unwrap();
    let settled = store
        .begin_tool_call(id, "1.1", "shell", "{}")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(settled.result.as_deref(), Some("{\"ok\":true}"));
    assert_eq!(settled.arguments, "{\"command\":\"ls\"}");
}

#[tokio::test]
async fn requests_are_answered_once_by_their_owner_before_they_expire() {
    let db = TestDatabase::new().await;
    let store = db.store().await;
    let (ada, bob) = (user(&store, "ada").await, user(&store, "bob").await);
    let helper = agent(&store, ada, "helper").await;
    let id = run(&store, ada, helper).await;
    let now = OffsetDateTime::now_utc();
    let ask = |key: &str, expires_at| NewRunRequest {
        id: RunRequestId::new(),
        run_id: id,
        owner_id: ada,
        agent_id: helper,
        call_key: key.into(),
        kind: RunRequestKind::Consent,
        tool: "shell".into(),
        details: "{}".into(),
        expires_at,
    };
    let first = store
        .create_run_request(&ask("1.1", now + Duration::hours(1)))
        .await
        .unwrap();
    let same = store
        .create_run_request(&ask("1.1", now + Duration::hours(1)))
        .await
        .unwrap();
    assert_eq!(first.id, same.id, "one request per call");
    let stale = store
        .create_run_request(&ask("1.2", now - Duration::seconds(1)))
        .await
        .unwrap();

    assert!(
        store
            .decide_run_request(bob, first.id, true, None, false)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .decide_run_request(ada, stale.id, true, None, false)
            .await
            .unwrap()
            .is_none(),
        "too late"
    );
    let decided = store
        .decide_run_request(ada, first.id, false, Some("not now"), true)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(decided.status, RunRequestStatus::Denied);
    assert!(decided.remember);
    assert!(
        store
            .decide_run_request(ada, first.id, true, None, false)
            .await
            .unwrap()
            .is_none(),
        "answered once"
    );
    assert_eq!(
        store.run_requests(ada, Some(id), true).await.unwrap().len(),
        1
    );
    let expired = store.expire_run_requests(now).await.unwrap();
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].id, stale.id);
    assert_eq!(expired[0].status, RunRequestStatus::Expired);
    assert!(
        store
            .run_requests(ada, None, true)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.run_requests(ada, None, false).await.unwrap().len(), 2);
    assert!(
        store
            .run_requests(bob, None, false)
            .await
            .unwrap()
            .is_empty()
    );
}
