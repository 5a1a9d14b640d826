//! The gateway's storage (catalog, usage, budgets, conversations), run against whichever backend
//! `KAI_TEST_DATABASE_URL` selects (SQLite when unset). `scripts/test` runs it against both.

#![allow(clippy::unwrap_used)] // helpers outside #[test] functions unwrap too

use kai_config::DatabaseKind;
use kai_core::{
    ApiKey, ApiKeyId, Budget, BudgetLimit, BudgetPeriod, ConversationId, Role, Scopes, UsageFilter,
    UsageGroup, UsageId, UsageRecord, UsageTotals, UserId,
};
use kai_store::testing::TestDatabase;
use kai_store::{CatalogKind, NewApiKey, NewMessage, NewUser, Store, StoreError};
use sqlx::Connection;
use time::OffsetDateTime;
use time::macros::datetime;

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

async fn api_key(store: &Store, owner: UserId, byte: u8) -> ApiKey {
    store
        .create_api_key(&NewApiKey {
            user_id: owner,
            name: format!("key {byte}"),
            prefix: format!("kai_{byte}"),
            key_hash: [byte; 32],
            scopes: Scopes::ALL,
            expires_at: None,
        })
        .await
        .unwrap()
}

/// The single number `sql` selects, read past the store.
async fn raw_count(db: &TestDatabase, sql: &str) -> i64 {
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    match db.url().kind() {
        DatabaseKind::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(db.url().expose())
                .await
                .unwrap();
            sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
        }
        DatabaseKind::Postgres => {
            let mut conn = sqlx::PgConnection::connect(db.url().expose())
                .await
                .unwrap();
            sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
        }
    }
}

/// Runs `sql` past the store.
async fn raw_execute(db: &TestDatabase, sql: &str) {
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    match db.url().kind() {
        DatabaseKind::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(db.url().expose())
                .await
                .unwrap();
            sqlx::query(sql).execute(&mut conn).await.unwrap();
        }
        DatabaseKind::Postgres => {
            let mut conn = sqlx::PgConnection::connect(db.url().expose())
                .await
                .unwrap();
            sqlx::query(sql).execute(&mut conn).await.unwrap();
        }
    }
}

// ---------------------------------------------------------------- catalog

#[tokio::test]
async fn catalog_entries_are_stored_changed_and_deleted_bumping_the_revision() {
    let db = TestDatabase::new().await;
    let store = db.store().await;
    assert_eq!(store.catalog_revision().await.unwrap(), 0);
    assert!(
        store
            .list_catalog(CatalogKind::Provider)
            .await
            .unwrap()
            .is_empty()
    );

    let document = r#"{"kind":"openai","base_url":"https://api.example","note":"é ✓"}"#;
    let openai = store
        .insert_catalog(CatalogKind::Provider, "openai", document)
        .await
        .unwrap();
    assert_eq!(openai.name, "openai");
    assert_eq!(openai.document, document);
    assert_eq!(openai.created_at, openai.updated_at);
    assert_eq!(store.catalog_revision().await.unwrap(), 1);

    // Names are unique within a kind only.
    store
        .insert_catalog(CatalogKind::Model, "openai", "{}")
        .await
        .unwrap();
    let err = store
        .insert_catalog(CatalogKind::Provider, "openai", "{}")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict("provider")), "{err}");
    let err = store
        .insert_catalog(CatalogKind::Model, "openai", "{}")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict("model")), "{err}");
    assert_eq!(
        store.catalog_revision().await.unwrap(),
        2,
        "a refused insert changes nothing"
    );

    // Listed by name, byte order, on both backends.
    for name in ["b", "A", "a"] {
        store
            .insert_catalog(CatalogKind::Provider, name, "{}")
            .await
            .unwrap();
    }
    let names: Vec<_> = store
        .list_catalog(CatalogKind::Provider)
        .await
        .unwrap()
        .into_iter()
        .map(|entry| entry.name)
        .collect();
    assert_eq!(names, ["A", "a", "b", "openai"]);
    let models = store.list_catalog(CatalogKind::Model).await.unwrap();
    assert_eq!(models.len(), 1);
    assert_eq!(store.catalog_revision().await.unwrap(), 5);

    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let updated = store
        .update_catalog(CatalogKind::Provider, "openai", r#"{"kind":"openai"}"#)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(updated.document, r#"{"kind":"openai"}"#);
    assert_eq!(updated.created_at, openai.created_at);
    assert!(updated.updated_at > openai.updated_at);
    assert_eq!(store.catalog_revision().await.unwrap(), 6);
    let listed = store.list_catalog(CatalogKind::Provider).await.unwrap();
    assert_eq!(listed.last(), Some(&updated));
    assert!(
        store
            .update_catalog(CatalogKind::Provider, "missing", "{}")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.catalog_revision().await.unwrap(), 6);

    assert!(
        store
            .delete_catalog(CatalogKind::Provider, "openai")
            .await
            .unwrap()
    );
    assert_eq!(store.catalog_revision().await.unwrap(), 7);
    assert!(
        !store
            .delete_catalog(CatalogKind::Provider, "openai")
            .await
            .unwrap()
    );
    assert_eq!(store.catalog_revision().await.unwrap(), 7);
    assert_eq!(
        store.list_catalog(CatalogKind::Model).await.unwrap().len(),
        1,
        "the model of the same name stays"
    );
}

// ---------------------------------------------------------------- usage

struct Request<'a> {
    user: UserId,
    key: Option<ApiKeyId>,
    model: &'a str,
    provider: Option<&'a str>,
    at: OffsetDateTime,
    status: &'a str,
    tokens: (u64, u64),
    cost: u64,
}

fn record(request: &Request<'_>) -> UsageRecord {
    UsageRecord {
        id: UsageId::new(),
        created_at: request.at,
        request_id: format!("req-{}", request.at.unix_timestamp_nanos()),
        user_id: request.user,
        api_key_id: request.key,
        endpoint: "chat".into(),
        model: request.model.into(),
        provider: request.provider.map(str::to_owned),
        upstream_model: request
            .provider
            .map(|_| format!("{}-upstream", request.model)),
        input_tokens: request.tokens.0,
        output_tokens: request.tokens.1,
        latency_ms: 120,
        ttft_ms: request.provider.map(|_| 30),
        status: request.status.into(),
        cost_micros: request.cost,
        stream: request.provider.is_some(),
    }
}

fn totals(requests: u64, errors: u64, input: u64, output: u64, cost: u64) -> UsageTotals {
    UsageTotals {
        requests,
        errors,
        input_tokens: input,
        output_tokens: output,
        cost_micros: cost,
    }
}

/// Alice (with a key) and bob (logged in) make five requests around midnight UTC of
/// 2024-03-10. Tests must keep `db`: dropping it deletes the database.
struct Usage {
    db: TestDatabase,
    store: Store,
    alice: UserId,
    bob: UserId,
    key: ApiKey,
    records: Vec<UsageRecord>,
}

const LAST_MS_OF_MARCH_9: OffsetDateTime = datetime!(2024-03-09 23:59:59.999 UTC);
const MIDNIGHT_MARCH_10: OffsetDateTime = datetime!(2024-03-10 00:00 UTC);

async fn usage() -> Usage {
    let db = TestDatabase::new().await;
    let store = db.store().await;
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let key = api_key(&store, alice, 1).await;
    let early = datetime!(2024-03-09 08:00 UTC);
    let late = datetime!(2024-03-10 18:30 UTC);
    let requests = [
        Request {
            user: alice,
            key: Some(key.id),
            model: "gpt",
            provider: Some("openai"),
            at: early,
            status: "ok",
            tokens: (100, 50),
            cost: 3000,
        },
        Request {
            user: alice,
            key: Some(key.id),
            model: "claude",
            provider: Some("anthropic"),
            at: LAST_MS_OF_MARCH_9,
            status: "ok",
            tokens: (10, 5),
            cost: 500,
        },
        Request {
            user: alice,
            key: Some(key.id),
            model: "gpt",
            provider: None,
            at: MIDNIGHT_MARCH_10,
            status: "rate_limited",
            tokens: (0, 0),
            cost: 0,
        },
        Request {
            user: bob,
            key: None,
            model: "claude",
            provider: Some("anthropic"),
            at: late,
            status: "ok",
            tokens: (1000, 400),
            cost: 9000,
        },
        Request {
            user: bob,
            key: None,
            model: "gpt",
            provider: Some("openai"),
            at: late + time::Duration::minutes(1),
            status: "cancelled",
            tokens: (7, 0),
            cost: 1,
        },
    ];
    let records: Vec<_> = requests.iter().map(record).collect();
    store.insert_usage(&records).await.unwrap();
    Usage {
        db,
        store,
        alice,
        bob,
        key,
        records,
    }
}

#[tokio::test]
async fn usage_totals_follow_the_filter() {
    let Usage {
        db: _db,
        store,
        alice,
        bob,
        key,
        ..
    } = usage().await;
    let all = UsageFilter::default();
    assert_eq!(
        store.usage_totals(&all).await.unwrap(),
        totals(5, 2, 1117, 455, 12501)
    );
    let of_alice = UsageFilter {
        user_id: Some(alice),
        ..UsageFilter::default()
    };
    assert_eq!(
        store.usage_totals(&of_alice).await.unwrap(),
        totals(3, 1, 110, 55, 3500)
    );
    let of_key = UsageFilter {
        api_key_id: Some(key.id),
        ..UsageFilter::default()
    };
    assert_eq!(
        store.usage_totals(&of_key).await.unwrap(),
        store.usage_totals(&of_alice).await.unwrap()
    );
    let gpt_of_bob = UsageFilter {
        user_id: Some(bob),
        model: Some("gpt".into()),
        ..UsageFilter::default()
    };
    assert_eq!(
        store.usage_totals(&gpt_of_bob).await.unwrap(),
        totals(1, 1, 7, 0, 1)
    );
    // `from` is inclusive and `to` exclusive, to the millisecond.
    let march_10 = UsageFilter {
        from: Some(MIDNIGHT_MARCH_10),
        to: Some(datetime!(2024-03-11 00:00 UTC)),
        ..UsageFilter::default()
    };
    assert_eq!(store.usage_totals(&march_10).await.unwrap().requests, 3);
    let before_midnight = UsageFilter {
        to: Some(MIDNIGHT_MARCH_10),
        ..UsageFilter::default()
    };
    assert_eq!(
        store.usage_totals(&before_midnight).await.unwrap(),
        totals(2, 0, 110, 55, 3500)
    );
    let nothing = UsageFilter {
        user_id: Some(UserId::new()),
        ..UsageFilter::default()
    };
    assert_eq!(
        store.usage_totals(&nothing).await.unwrap(),
        UsageTotals::default(),
        "empty sums are zero"
    );
}

#[tokio::test]
async fn usage_is_grouped_by_each_key_largest_cost_first() {
    let Usage {
        db: _db,
        store,
        alice,
        bob,
        key,
        ..
    } = usage().await;
    let all = UsageFilter::default();
    let grouped = |by| {
        let store = store.clone();
        let all = all.clone();
        async move { store.usage_grouped(&all, by).await.unwrap() }
    };
    assert_eq!(
        grouped(UsageGroup::Model).await,
        [
            ("claude".to_owned(), totals(2, 0, 1010, 405, 9500)),
            ("gpt".to_owned(), totals(3, 2, 107, 50, 3001)),
        ]
    );
    assert_eq!(
        grouped(UsageGroup::Provider).await,
        [
            ("anthropic".to_owned(), totals(2, 0, 1010, 405, 9500)),
            ("openai".to_owned(), totals(2, 1, 107, 50, 3001)),
            (String::new(), totals(1, 1, 0, 0, 0)),
        ]
    );
    assert_eq!(
        grouped(UsageGroup::ApiKey).await,
        [
            (String::new(), totals(2, 1, 1007, 400, 9001)),
            (key.id.to_string(), totals(3, 1, 110, 55, 3500)),
        ]
    );
    assert_eq!(
        grouped(UsageGroup::User).await,
        [
            (bob.to_string(), totals(2, 1, 1007, 400, 9001)),
            (alice.to_string(), totals(3, 1, 110, 55, 3500)),
        ]
    );
    // The last millisecond of a day counts to that day, midnight to the next.
    assert_eq!(
        grouped(UsageGroup::Day).await,
        [
            ("2024-03-10".to_owned(), totals(3, 2, 1007, 400, 9001)),
            ("2024-03-09".to_owned(), totals(2, 0, 110, 55, 3500)),
        ]
    );
    // Equal costs are ordered by key.
    let free = UsageFilter {
        model: Some("gpt".into()),
        from: Some(MIDNIGHT_MARCH_10),
        ..UsageFilter::default()
    };
    store
        .insert_usage(&[record(&Request {
            user: alice,
            key: None,
            model: "gpt",
            provider: Some("azure"),
            at: MIDNIGHT_MARCH_10,
            status: "ok",
            tokens: (1, 1),
            cost: 1,
        })])
        .await
        .unwrap();
    let providers: Vec<_> = store
        .usage_grouped(&free, UsageGroup::Provider)
        .await
        .unwrap()
        .into_iter()
        .map(|(key, totals)| (key, totals.cost_micros))
        .collect();
    assert_eq!(
        providers,
        [
            ("azure".to_owned(), 1),
            ("openai".to_owned(), 1),
            (String::new(), 0)
        ]
    );
    let nothing = UsageFilter {
        user_id: Some(UserId::new()),
        ..UsageFilter::default()
    };
    assert!(
        store
            .usage_grouped(&nothing, UsageGroup::Day)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn usage_records_page_newest_first() {
    let Usage {
        db: _db,
        store,
        alice,
        records,
        ..
    } = usage().await;
    // Stored times read back to the millisecond, which these already are.
    let newest_first: Vec<_> = records.iter().rev().cloned().collect();
    let all = UsageFilter::default();
    assert_eq!(
        store.usage_records(&all, 100, None).await.unwrap(),
        newest_first
    );
    let mut paged = Vec::new();
    let mut before = None;
    loop {
        let page = store.usage_records(&all, 2, before).await.unwrap();
        assert!(page.len() <= 2);
        let Some(last) = page.last() else { break };
        before = Some(last.id);
        paged.extend(page);
    }
    assert_eq!(paged, newest_first);
    assert!(store.usage_records(&all, 0, None).await.unwrap().is_empty());

    let of_alice = UsageFilter {
        user_id: Some(alice),
        ..UsageFilter::default()
    };
    let page = store
        .usage_records(&of_alice, 2, Some(records[2].id))
        .await
        .unwrap();
    assert_eq!(page, [records[1].clone(), records[0].clone()]);
}

#[tokio::test]
async fn usage_batches_are_atomic_and_may_be_sent_again() {
    let Usage {
        db: _db,
        store,
        alice,
        records,
        ..
    } = usage().await;
    let all = UsageFilter::default();
    store.insert_usage(&[]).await.unwrap();
    // A batch whose outcome was lost is sent again: nothing is counted twice.
    store.insert_usage(&records).await.unwrap();
    assert_eq!(store.usage_totals(&all).await.unwrap().requests, 5);

    // A number past i64::MAX is refused, and with it the whole batch.
    let fine = record(&Request {
        user: alice,
        key: None,
        model: "gpt",
        provider: None,
        at: MIDNIGHT_MARCH_10,
        status: "ok",
        tokens: (1, 1),
        cost: 1,
    });
    let huge = UsageRecord {
        id: UsageId::new(),
        output_tokens: u64::MAX,
        ..fine.clone()
    };
    let err = store.insert_usage(&[fine.clone(), huge]).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::TooLarge {
                what: "output_tokens",
                value: u64::MAX
            }
        ),
        "{err}"
    );
    assert_eq!(store.usage_totals(&all).await.unwrap().requests, 5);

    // Usage of a user who is gone is dropped, not an error that loses the rest of the batch.
    let orphan = record(&Request {
        user: UserId::new(),
        key: None,
        model: "gpt",
        provider: None,
        at: MIDNIGHT_MARCH_10,
        status: "ok",
        tokens: (1, 1),
        cost: 1,
    });
    let kept = UsageRecord {
        id: UsageId::new(),
        user_id: alice,
        ..orphan.clone()
    };
    store.insert_usage(&[orphan, kept]).await.unwrap();
    assert_eq!(store.usage_totals(&all).await.unwrap().requests, 6);

    // A batch larger than one statement holds (the gateway sends up to 500), with nulls in
    // every nullable column and a record already stored among them, lands whole.
    let mut many: Vec<UsageRecord> = (0..450u64)
        .map(|n| UsageRecord {
            id: UsageId::new(),
            api_key_id: None,
            provider: None,
            upstream_model: None,
            ttft_ms: None,
            input_tokens: n,
            ..fine.clone()
        })
        .collect();
    many.insert(300, records[0].clone());
    store.insert_usage(&many).await.unwrap();
    let totals = store.usage_totals(&all).await.unwrap();
    assert_eq!(totals.requests, 456);
    let page = store.usage_records(&all, 500, None).await.unwrap();
    assert!(page.contains(&many[0]) && page.contains(&many[449]));
}

#[tokio::test]
async fn usage_sums_that_overflow_are_errors() {
    let Usage {
        db: _db,
        store,
        alice,
        ..
    } = usage().await;
    let costly = |cost| {
        record(&Request {
            user: alice,
            key: None,
            model: "gpt",
            provider: None,
            at: MIDNIGHT_MARCH_10,
            status: "ok",
            tokens: (0, 0),
            cost,
        })
    };
    let max = u64::try_from(i64::MAX).unwrap();
    store
        .insert_usage(&[costly(max), costly(max)])
        .await
        .unwrap();
    assert!(store.usage_totals(&UsageFilter::default()).await.is_err());
    assert!(
        store
            .usage_grouped(&UsageFilter::default(), UsageGroup::Model)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn usage_outlives_revoked_keys_but_not_its_user() {
    let Usage {
        db,
        store,
        alice,
        bob,
        key,
        ..
    } = usage().await;
    store.revoke_api_key(alice, key.id).await.unwrap().unwrap();
    let of_key = UsageFilter {
        api_key_id: Some(key.id),
        ..UsageFilter::default()
    };
    assert_eq!(store.usage_totals(&of_key).await.unwrap().requests, 3);

    // Keys are deleted only with their user; were one deleted alone, its usage would stay,
    // counted as the user's.
    let other_key = api_key(&store, bob, 2).await;
    let mut by_key = record(&Request {
        user: bob,
        key: Some(other_key.id),
        model: "gpt",
        provider: None,
        at: MIDNIGHT_MARCH_10,
        status: "ok",
        tokens: (1, 1),
        cost: 1,
    });
    store.insert_usage(&[by_key.clone()]).await.unwrap();
    raw_execute(
        &db,
        &format!("DELETE FROM api_keys WHERE id = '{}'", other_key.id),
    )
    .await;
    by_key.api_key_id = None;
    let of_bob = UsageFilter {
        user_id: Some(bob),
        ..UsageFilter::default()
    };
    assert_eq!(
        store.usage_records(&of_bob, 1, None).await.unwrap(),
        [by_key]
    );

    assert!(store.delete_user(alice).await.unwrap());
    let of_alice = UsageFilter {
        user_id: Some(alice),
        ..UsageFilter::default()
    };
    assert_eq!(
        store.usage_totals(&of_alice).await.unwrap(),
        UsageTotals::default()
    );
    assert_eq!(
        raw_count(&db, "SELECT COUNT(*) FROM usage_records").await,
        3,
        "bob's usage stays"
    );
}

// ---------------------------------------------------------------- budgets

fn budget(period: BudgetPeriod, limit: BudgetLimit) -> Budget {
    Budget { period, limit }
}

#[tokio::test]
async fn key_budgets_are_replaced_as_a_whole() {
    let db = TestDatabase::new().await;
    let store = db.store().await;
    let alice = user(&store, "alice").await;
    let key = api_key(&store, alice, 1).await;
    assert!(store.key_budgets(key.id).await.unwrap().is_empty());

    let monthly_dollars = budget(BudgetPeriod::Month, BudgetLimit::UsdMicros(25_000_000));
    let daily_tokens = budget(BudgetPeriod::Day, BudgetLimit::Tokens(100_000));
    let daily_dollars = budget(BudgetPeriod::Day, BudgetLimit::UsdMicros(2_000_000));
    assert!(
        store
            .set_key_budgets(key.id, &[monthly_dollars, daily_dollars, daily_tokens])
            .await
            .unwrap()
    );
    assert_eq!(
        store.key_budgets(key.id).await.unwrap(),
        [daily_tokens, daily_dollars, monthly_dollars]
    );

    let monthly_tokens = budget(BudgetPeriod::Month, BudgetLimit::Tokens(1_000_000));
    assert!(
        store
            .set_key_budgets(key.id, &[monthly_tokens])
            .await
            .unwrap()
    );
    assert_eq!(store.key_budgets(key.id).await.unwrap(), [monthly_tokens]);

    // Two limits of one kind over one period are refused, and the budgets stay as they were.
    let err = store
        .set_key_budgets(
            key.id,
            &[
                daily_tokens,
                budget(BudgetPeriod::Day, BudgetLimit::Tokens(5)),
            ],
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    assert_eq!(store.key_budgets(key.id).await.unwrap(), [monthly_tokens]);

    let too_large = budget(BudgetPeriod::Day, BudgetLimit::Tokens(u64::MAX));
    let err = store
        .set_key_budgets(key.id, &[too_large])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::TooLarge { .. }), "{err}");
    assert!(
        err.to_string().contains("18446744073709551615"),
        "the message names the number: {err}"
    );
    assert_eq!(store.key_budgets(key.id).await.unwrap(), [monthly_tokens]);

    assert!(store.set_key_budgets(key.id, &[]).await.unwrap());
    assert!(store.key_budgets(key.id).await.unwrap().is_empty());

    assert!(
        !store
            .set_key_budgets(ApiKeyId::new(), &[daily_tokens])
            .await
            .unwrap()
    );
    assert!(store.key_budgets(ApiKeyId::new()).await.unwrap().is_empty());

    // Budgets go with their key, which goes with its user.
    store
        .set_key_budgets(key.id, &[daily_tokens])
        .await
        .unwrap();
    store.delete_user(alice).await.unwrap();
    assert_eq!(raw_count(&db, "SELECT COUNT(*) FROM key_budgets").await, 0);
}

// ---------------------------------------------------------------- conversations

fn message(role: &str, text: &str) -> NewMessage {
    NewMessage {
        role: role.into(),
        body: format!(r#"{{"content":"{text}"}}"#),
        model: (role == "assistant").then(|| "gpt".to_owned()),
    }
}

#[tokio::test]
async fn conversations_are_listed_newest_first_in_pages() {
    let db = TestDatabase::new().await;
    let store = db.store().await;
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    // Created in a burst, so several share a millisecond: the id breaks the tie.
    let mut created = Vec::new();
    for n in 0..7 {
        created.push(
            store
                .create_conversation(alice, &format!("chat {n}"), None)
                .await
                .unwrap(),
        );
    }
    store.create_conversation(bob, "bob's", None).await.unwrap();
    let mut expected = created.clone();
    expected.sort_by_key(|c| std::cmp::Reverse((c.updated_at, c.id)));
    assert_eq!(
        store.conversations(alice, 100, None).await.unwrap(),
        expected
    );

    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = store.conversations(alice, 3, after).await.unwrap();
        assert!(page.len() <= 3);
        let Some(last) = page.last() else { break };
        after = Some((last.updated_at, last.id));
        paged.extend(page);
    }
    assert_eq!(paged, expected);

    // Adding messages moves a conversation to the top.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let oldest = created[0].id;
    store
        .append_messages(alice, oldest, &[message("user", "hello")])
        .await
        .unwrap()
        .unwrap();
    let top = &store.conversations(alice, 1, None).await.unwrap()[0];
    assert_eq!(top.id, oldest);
    assert_eq!(top.message_count, 1);
    assert!(top.updated_at > created[0].updated_at);
    assert_eq!(top.created_at, created[0].created_at);
}

#[tokio::test]
async fn a_conversation_is_read_renamed_and_deleted_by_its_owner_only() {
    let db = TestDatabase::new().await;
    let store = db.store().await;
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let chat = store
        .create_conversation(alice, "Plans", Some("gpt"))
        .await
        .unwrap();
    assert_eq!(chat.user_id, alice);
    assert_eq!(chat.model.as_deref(), Some("gpt"));
    assert_eq!(chat.message_count, 0);
    assert_eq!(
        store.conversation(alice, chat.id).await.unwrap(),
        Some(chat.clone())
    );
    assert_eq!(
        store.conversation_messages(alice, chat.id).await.unwrap(),
        Some(Vec::new())
    );

    // To bob, alice's conversation does not exist.
    assert!(store.conversations(bob, 10, None).await.unwrap().is_empty());
    assert_eq!(store.conversation(bob, chat.id).await.unwrap(), None);
    assert_eq!(
        store.conversation_messages(bob, chat.id).await.unwrap(),
        None
    );
    assert_eq!(
        store
            .rename_conversation(bob, chat.id, "Mine")
            .await
            .unwrap(),
        None
    );
    assert!(
        !store
            .set_conversation_model(bob, chat.id, "claude")
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .append_messages(bob, chat.id, &[message("user", "hi")])
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.append_messages(bob, chat.id, &[]).await.unwrap(),
        None
    );
    assert!(!store.delete_conversation(bob, chat.id).await.unwrap());
    assert_eq!(
        store.conversation(alice, chat.id).await.unwrap(),
        Some(chat.clone()),
        "bob changed nothing"
    );

    let first = store
        .append_messages(
            alice,
            chat.id,
            &[message("user", "hello"), message("assistant", "hi there")],
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.iter().map(|m| m.seq).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(first[1].model.as_deref(), Some("gpt"));
    let second = store
        .append_messages(alice, chat.id, &[message("user", "and now?")])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second[0].seq, 3);
    assert_eq!(
        store.append_messages(alice, chat.id, &[]).await.unwrap(),
        Some(Vec::new())
    );
    let messages = store
        .conversation_messages(alice, chat.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(messages, [first, second].concat());
    assert_eq!(messages[0].body, r#"{"content":"hello"}"#);

    let renamed = store
        .rename_conversation(alice, chat.id, "Holiday plans")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(renamed.title, "Holiday plans");
    assert_eq!(renamed.message_count, 3);
    assert!(
        store
            .set_conversation_model(alice, chat.id, "claude")
            .await
            .unwrap()
    );
    let changed = store.conversation(alice, chat.id).await.unwrap().unwrap();
    assert_eq!(changed.model.as_deref(), Some("claude"));
    assert_eq!(changed.title, "Holiday plans");
    assert_eq!(
        changed.updated_at, renamed.updated_at,
        "renaming and choosing a model do not reorder the list"
    );

    assert!(store.delete_conversation(alice, chat.id).await.unwrap());
    assert!(!store.delete_conversation(alice, chat.id).await.unwrap());
    assert_eq!(store.conversation(alice, chat.id).await.unwrap(), None);
    assert_eq!(
        store.conversation_messages(alice, chat.id).await.unwrap(),
        None
    );
    assert_eq!(
        raw_count(&db, "SELECT COUNT(*) FROM conversation_messages").await,
        0,
        "the messages went with it"
    );
    assert_eq!(
        store
            .append_messages(alice, ConversationId::new(), &[message("user", "hi")])
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn concurrent_appends_get_distinct_contiguous_numbers() {
    let db = TestDatabase::new().await;
    let store = db.store().await;
    let alice = user(&store, "alice").await;
    let chat = store
        .create_conversation(alice, "busy", None)
        .await
        .unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|task| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .append_messages(
                        alice,
                        chat.id,
                        &[
                            message("user", &format!("question {task}")),
                            message("assistant", &format!("answer {task}")),
                        ],
                    )
                    .await
                    .unwrap()
                    .unwrap()
            })
        })
        .collect();
    for task in tasks {
        let appended = task.await.unwrap();
        // Each append's messages stay together, in order.
        assert_eq!(appended[1].seq, appended[0].seq + 1);
        assert_eq!(appended[0].role, "user");
    }
    let messages = store
        .conversation_messages(alice, chat.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
        (1..=16).collect::<Vec<_>>()
    );
    for pair in messages.chunks(2) {
        let question = pair[0].body.replace("question", "answer");
        assert_eq!(question, pair[1].body, "an answer follows its question");
    }
    assert_eq!(
        store
            .conversation(alice, chat.id)
            .await
            .unwrap()
            .unwrap()
            .message_count,
        16
    );
}

#[tokio::test]
async fn deleting_a_user_deletes_their_conversations() {
    let db = TestDatabase::new().await;
    let store = db.store().await;
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let chat = store
        .create_conversation(alice, "mine", None)
        .await
        .unwrap();
    store
        .append_messages(alice, chat.id, &[message("user", "hi")])
        .await
        .unwrap();
    let kept = store.create_conversation(bob, "bob's", None).await.unwrap();
    store
        .append_messages(bob, kept.id, &[message("user", "hey")])
        .await
        .unwrap();
    assert!(store.delete_user(alice).await.unwrap());
    assert_eq!(store.conversation(alice, chat.id).await.unwrap(), None);
    assert_eq!(
        raw_count(&db, "SELECT COUNT(*) FROM conversations").await,
        1
    );
    assert_eq!(
        raw_count(&db, "SELECT COUNT(*) FROM conversation_messages").await,
        1
    );
    assert!(store.conversation(bob, kept.id).await.unwrap().is_some());
}
