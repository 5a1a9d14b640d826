//! What the gateway records of each model request, the totals drawn from those records, and the
//! per-key budgets that the totals are checked against.

use kai_core::{
    ApiKeyId, Budget, BudgetLimit, BudgetPeriod, UsageFilter, UsageGroup, UsageId, UsageRecord,
    UsageTotals,
};
use time::OffsetDateTime;

use crate::row::Columns;
use crate::{
    Store, StoreError, count_from_row, from_millis, is_unique_violation, millis, stored_int,
    with_pool,
};

/// Milliseconds in a UTC day (Unix time has no leap seconds).
const DAY_MS: i64 = 86_400_000;

macro_rules! usage_columns {
    () => {
        "id, created_at, request_id, user_id, api_key_id, endpoint, model, provider, \
         upstream_model, input_tokens, output_tokens, latency_ms, ttft_ms, status, cost_micros, \
         stream"
    };
}

/// The sums [`usage_totals`] reads. PostgreSQL sums BIGINTs as NUMERIC: the casts bring them
/// back to BIGINT, failing loudly on overflow as SQLite's SUM does.
macro_rules! totals_columns {
    () => {
        "COUNT(*) AS requests, \
         CAST(COALESCE(SUM(CASE WHEN status <> 'ok' THEN 1 ELSE 0 END), 0) AS BIGINT) AS errors, \
         CAST(COALESCE(SUM(input_tokens), 0) AS BIGINT) AS input_sum, \
         CAST(COALESCE(SUM(output_tokens), 0) AS BIGINT) AS output_sum, \
         CAST(COALESCE(SUM(cost_micros), 0) AS BIGINT) AS cost_sum"
    };
}

fn usage_record(row: &impl Columns) -> Result<UsageRecord, StoreError> {
    const TABLE: &str = "usage_records";
    let corrupt = |message: String| StoreError::Corrupt {
        table: TABLE,
        message,
    };
    let id = row.text("id")?;
    let user_id = row.text("user_id")?;
    let count = |column: &str| count_from_row(row.int(column)?, TABLE, column);
    Ok(UsageRecord {
        id: id
            .parse()
            .map_err(|_| corrupt(format!("id `{id}` is not a UUID")))?,
        created_at: from_millis(row.int("created_at")?),
        request_id: row.text("request_id")?,
        user_id: user_id
            .parse()
            .map_err(|_| corrupt(format!("record {id}: bad user id")))?,
        api_key_id: row
            .opt_text("api_key_id")?
            .map(|key| key.parse())
            .transpose()
            .map_err(|_| corrupt(format!("record {id}: bad API key id")))?,
        endpoint: row.text("endpoint")?,
        model: row.text("model")?,
        provider: row.opt_text("provider")?,
        upstream_model: row.opt_text("upstream_model")?,
        input_tokens: count("input_tokens")?,
        output_tokens: count("output_tokens")?,
        latency_ms: count("latency_ms")?,
        ttft_ms: row
            .opt_int("ttft_ms")?
            .map(|ms| count_from_row(ms, TABLE, "ttft_ms"))
            .transpose()?,
        status: row.text("status")?,
        cost_micros: count("cost_micros")?,
        stream: row.flag("stream")?,
    })
}

fn usage_totals(row: &impl Columns) -> Result<UsageTotals, StoreError> {
    let sum = |column: &str| count_from_row(row.int(column)?, "usage_records", column);
    Ok(UsageTotals {
        requests: sum("requests")?,
        errors: sum("errors")?,
        input_tokens: sum("input_sum")?,
        output_tokens: sum("output_sum")?,
        cost_micros: sum("cost_sum")?,
    })
}

/// A value bound to a query built at run time.
enum Value {
    Text(String),
    Int(i64),
}

/// The WHERE clause of a query built at run time, with the values its placeholders stand for.
/// Only the filters in use become conditions, so each query can use the index that fits it.
#[derive(Default)]
struct Conditions {
    clauses: Vec<String>,
    values: Vec<Value>,
}

impl Conditions {
    fn of(filter: &UsageFilter) -> Conditions {
        let mut conditions = Conditions::default();
        if let Some(user) = filter.user_id {
            conditions.push("user_id =", Value::Text(user.to_string()));
        }
        if let Some(key) = filter.api_key_id {
            conditions.push("api_key_id =", Value::Text(key.to_string()));
        }
        if let Some(model) = &filter.model {
            conditions.push("model =", Value::Text(model.clone()));
        }
        if let Some(from) = filter.from {
            conditions.push("created_at >=", Value::Int(millis(from)));
        }
        if let Some(to) = filter.to {
            conditions.push("created_at <", Value::Int(millis(to)));
        }
        conditions
    }

    /// Adds `value` and returns the placeholder that stands for it.
    fn placeholder(&mut self, value: Value) -> String {
        self.values.push(value);
        format!("${}", self.values.len())
    }

    /// Adds the condition `test` (a column and an operator) against `value`.
    fn push(&mut self, test: &str, value: Value) {
        let placeholder = self.placeholder(value);
        self.clauses.push(format!("{test} {placeholder}"));
    }

    /// ` WHERE …`, or nothing when there are no conditions.
    fn where_clause(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.clauses.join(" AND "))
        }
    }
}

/// `$sql` (a `String` assembled from fixed fragments only) as a query with `$values` (a
/// `Vec<Value>`) bound in order.
macro_rules! query_with_values {
    ($sql:expr, $values:expr) => {{
        let mut query = sqlx::query(sqlx::AssertSqlSafe($sql.as_str()));
        for value in &$values {
            query = match value {
                Value::Text(text) => query.bind(text.as_str()),
                Value::Int(int) => query.bind(*int),
            };
        }
        query
    }};
}

/// A record's numbers as the database stores them.
struct StoredCounts {
    input_tokens: i64,
    output_tokens: i64,
    latency_ms: i64,
    ttft_ms: Option<i64>,
    cost_micros: i64,
}

impl StoredCounts {
    fn of(record: &UsageRecord) -> Result<StoredCounts, StoreError> {
        Ok(StoredCounts {
            input_tokens: stored_int(record.input_tokens, "input_tokens")?,
            output_tokens: stored_int(record.output_tokens, "output_tokens")?,
            latency_ms: stored_int(record.latency_ms, "latency_ms")?,
            ttft_ms: record
                .ttft_ms
                .map(|ms| stored_int(ms, "ttft_ms"))
                .transpose()?,
            cost_micros: stored_int(record.cost_micros, "cost_micros")?,
        })
    }
}

/// A budget's limit as stored: its kind and amount.
fn limit_parts(limit: BudgetLimit) -> (&'static str, u64) {
    match limit {
        BudgetLimit::Tokens(tokens) => ("tokens", tokens),
        BudgetLimit::UsdMicros(micros) => ("usd_micros", micros),
    }
}

fn budget(row: &impl Columns) -> Result<Budget, StoreError> {
    let corrupt = |message: String| StoreError::Corrupt {
        table: "key_budgets",
        message,
    };
    let period = BudgetPeriod::parse(&row.text("period")?).map_err(corrupt)?;
    let amount = count_from_row(row.int("amount")?, "key_budgets", "amount")?;
    let limit = match row.text("kind")?.as_str() {
        "tokens" => BudgetLimit::Tokens(amount),
        "usd_micros" => BudgetLimit::UsdMicros(amount),
        other => return Err(corrupt(format!("`{other}` is not a kind of limit"))),
    };
    Ok(Budget { period, limit })
}

/// The UTC day `day` days after 1970-01-01, as `YYYY-MM-DD`.
fn day_key(day: i64) -> Result<String, StoreError> {
    let date = day
        .checked_mul(DAY_MS / 1000)
        .and_then(|seconds| OffsetDateTime::from_unix_timestamp(seconds).ok())
        .ok_or_else(|| StoreError::Corrupt {
            table: "usage_records",
            message: format!("day {day} is out of range"),
        })?
        .date();
    Ok(format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    ))
}

/// Rows per `INSERT` of usage records, and so the batch [`Store::insert_usage`] stores in one
/// statement. Each statement is a round trip to the driver's thread, and with SQLite that round
/// trip was most of a record's cost; but SQLite then works on the whole statement without a
/// break, and on a small machine a long statement holds up the requests that share its CPU
/// (100 rows held them up for 2 ms). 16 rows take about a quarter of a millisecond.
pub const USAGE_ROWS_PER_INSERT: usize = 16;

/// A builder of the statement that stores `records` (at most [`USAGE_ROWS_PER_INSERT`] of them) with their
/// checked `counts`. A record whose id is stored already, or whose user is gone, is skipped.
/// The VALUES list's columns are `column1`…`column16` in both databases. Statements are kept
/// prepared: there are only as many as there are batch sizes.
macro_rules! insert_usage {
    ($records:expr, $counts:expr) => {{
        let mut insert = sqlx::QueryBuilder::new(concat!(
            "INSERT INTO usage_records (",
            usage_columns!(),
            ") SELECT * FROM ("
        ));
        insert.push_values($records.iter().zip($counts), |mut row, (record, counts)| {
            row.push_bind(record.id.to_string())
                .push_bind(millis(record.created_at))
                .push_bind(&record.request_id)
                .push_bind(record.user_id.to_string())
                .push_bind(record.api_key_id.map(|key| key.to_string()))
                .push_bind(&record.endpoint)
                .push_bind(&record.model)
                .push_bind(record.provider.as_deref())
                .push_bind(record.upstream_model.as_deref())
                .push_bind(counts.input_tokens)
                .push_bind(counts.output_tokens)
                .push_bind(counts.latency_ms)
                .push_bind(counts.ttft_ms)
                .push_bind(&record.status)
                .push_bind(counts.cost_micros)
                .push_bind(record.stream);
        });
        // SQLite parses `ON CONFLICT` after `INSERT … SELECT` only with a WHERE clause, which
        // the user check provides.
        insert.push(
            ") AS v WHERE EXISTS (SELECT 1 FROM users WHERE users.id = v.column4) \
             ON CONFLICT (id) DO NOTHING",
        );
        insert
    }};
}

impl Store {
    /// Stores records in one transaction (the gateway batches them). A record whose id is
    /// already stored is skipped, so a batch whose outcome was lost can be sent again; so is a
    /// record of a user deleted meanwhile, whose usage went with them. Fails with
    /// [`StoreError::TooLarge`], storing nothing, if a number exceeds `i64::MAX`.
    pub async fn insert_usage(&self, records: &[UsageRecord]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let counts = records
            .iter()
            .map(StoredCounts::of)
            .collect::<Result<Vec<_>, _>>()?;
        with_pool!(self, |pool| {
            if records.len() <= USAGE_ROWS_PER_INSERT {
                // One statement is a transaction of its own.
                insert_usage!(records, &counts)
                    .build()
                    .execute(pool)
                    .await?;
            } else {
                let mut tx = pool.begin().await?;
                for (records, counts) in records
                    .chunks(USAGE_ROWS_PER_INSERT)
                    .zip(counts.chunks(USAGE_ROWS_PER_INSERT))
                {
                    let mut insert = insert_usage!(records, counts);
                    insert.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
            }
        });
        Ok(())
    }

    /// Totals over the records `filter` selects.
    pub async fn usage_totals(&self, filter: &UsageFilter) -> Result<UsageTotals, StoreError> {
        let conditions = Conditions::of(filter);
        let sql = format!(
            "SELECT {} FROM usage_records{}",
            totals_columns!(),
            conditions.where_clause()
        );
        with_pool!(self, |pool| {
            let row = query_with_values!(sql, conditions.values)
                .fetch_one(pool)
                .await?;
            usage_totals(&row)
        })
    }

    /// Totals per group over the records `filter` selects, largest cost first, then by key.
    /// The key is the model name, the provider name (`""` when none answered), the API key id
    /// (`""` for login sessions), the user id, or the UTC day as `YYYY-MM-DD`.
    pub async fn usage_grouped(
        &self,
        filter: &UsageFilter,
        by: UsageGroup,
    ) -> Result<Vec<(String, UsageTotals)>, StoreError> {
        let key = match by {
            UsageGroup::Model => "model".to_owned(),
            UsageGroup::Provider => "COALESCE(provider, '')".to_owned(),
            UsageGroup::ApiKey => "COALESCE(api_key_id, '')".to_owned(),
            UsageGroup::User => "user_id".to_owned(),
            UsageGroup::Day => format!("created_at / {DAY_MS}"),
        };
        let conditions = Conditions::of(filter);
        let sql = format!(
            "SELECT {key} AS group_key, {} FROM usage_records{} GROUP BY {key}",
            totals_columns!(),
            conditions.where_clause()
        );
        let mut groups = with_pool!(self, |pool| {
            let rows = query_with_values!(sql, conditions.values)
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|row| {
                    let key = match by {
                        UsageGroup::Day => day_key(row.int("group_key")?)?,
                        _ => row.text("group_key")?,
                    };
                    Ok((key, usage_totals(row)?))
                })
                .collect::<Result<Vec<_>, StoreError>>()
        })?;
        // Sorted here rather than in SQL, where PostgreSQL would order keys by the database's
        // collation and SQLite by bytes.
        groups.sort_by(|(a_key, a), (b_key, b)| {
            b.cost_micros
                .cmp(&a.cost_micros)
                .then_with(|| a_key.cmp(b_key))
        });
        Ok(groups)
    }

    /// The records `filter` selects, newest first, at most `limit`; only those strictly older
    /// than the record `before` when it is given (keyset pagination on the time-ordered id).
    pub async fn usage_records(
        &self,
        filter: &UsageFilter,
        limit: u32,
        before: Option<UsageId>,
    ) -> Result<Vec<UsageRecord>, StoreError> {
        let mut conditions = Conditions::of(filter);
        if let Some(before) = before {
            conditions.push("id <", Value::Text(before.to_string()));
        }
        let where_clause = conditions.where_clause();
        let limit = conditions.placeholder(Value::Int(i64::from(limit)));
        let sql = format!(
            "SELECT {} FROM usage_records{where_clause} ORDER BY id DESC LIMIT {limit}",
            usage_columns!()
        );
        with_pool!(self, |pool| {
            let rows = query_with_values!(sql, conditions.values)
                .fetch_all(pool)
                .await?;
            rows.iter().map(usage_record).collect()
        })
    }

    /// The key's budgets, in (period, kind of limit) order.
    pub async fn key_budgets(&self, key: ApiKeyId) -> Result<Vec<Budget>, StoreError> {
        with_pool!(self, |pool| {
            // 'day' < 'month' and 'tokens' < 'usd_micros' in every collation, so this is the
            // order of the enums' variants.
            let rows = sqlx::query(
                "SELECT period, kind, amount FROM key_budgets WHERE api_key_id = $1 \
                 ORDER BY period, kind",
            )
            .bind(key.to_string())
            .fetch_all(pool)
            .await?;
            rows.iter().map(budget).collect()
        })
    }

    /// Replaces all of the key's budgets with `budgets`, in one transaction. `false` if the key
    /// does not exist. Fails with [`StoreError::Conflict`], changing nothing, if two budgets
    /// share a period and kind of limit, and with [`StoreError::TooLarge`] if an amount
    /// exceeds `i64::MAX`.
    pub async fn set_key_budgets(
        &self,
        key: ApiKeyId,
        budgets: &[Budget],
    ) -> Result<bool, StoreError> {
        let rows = budgets
            .iter()
            .map(|budget| {
                let (kind, amount) = limit_parts(budget.limit);
                Ok((
                    budget.period.as_str(),
                    kind,
                    stored_int(amount, "a budget")?,
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            // The delete goes first so that the transaction starts with its write.
            sqlx::query("DELETE FROM key_budgets WHERE api_key_id = $1")
                .bind(key.to_string())
                .execute(&mut *tx)
                .await?;
            let exists: Option<String> =
                sqlx::query_scalar("SELECT id FROM api_keys WHERE id = $1")
                    .bind(key.to_string())
                    .fetch_optional(&mut *tx)
                    .await?;
            if exists.is_none() {
                tx.rollback().await?;
                return Ok(false);
            }
            for (period, kind, amount) in &rows {
                let inserted = sqlx::query(
                    "INSERT INTO key_budgets (api_key_id, period, kind, amount) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(key.to_string())
                .bind(*period)
                .bind(*kind)
                .bind(*amount)
                .execute(&mut *tx)
                .await;
                match inserted {
                    Err(err) if is_unique_violation(&err) => {
                        return Err(StoreError::Conflict(
                            "a budget with the same period and kind of limit",
                        ));
                    }
                    other => other?,
                };
            }
            tx.commit().await?;
            Ok(true)
        })
    }
}
