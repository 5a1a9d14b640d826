//! Accounting: what each request cost (from the configured price table), per-key budgets, the
//! usage records (written in batches off the request path), and the gateway's metrics.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kai_config::PriceSettings;
use kai_core::{
    ApiKeyId, Budget, BudgetLimit, BudgetPeriod, UsageFilter, UsageId, UsageRecord, UserId,
    format_usd,
};
use kai_models::chat::Usage;
use kai_store::Store;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use time::{Date, OffsetDateTime, Time};
use tokio::sync::{mpsc, oneshot};

use crate::table::lock;

/// How long a key's budgets and spend are trusted before being read again from the database,
/// where other processes sharing it record their usage too.
const BUDGET_REFRESH: Duration = Duration::from_secs(5);

/// The most records written at once: as many as one statement stores, so that a batch never
/// holds the database (and, with SQLite, the CPU it shares with requests) for long.
const MAX_BATCH: usize = kai_store::USAGE_ROWS_PER_INSERT;

/// How long the writer gathers records before writing them.
const BATCH_WINDOW: Duration = Duration::from_millis(100);

/// Who is asking, for accounting and budgets.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The user.
    pub user_id: UserId,
    /// The API key used, if the request came with one (budgets are per key).
    pub api_key_id: Option<ApiKeyId>,
    /// The request's id, kept with its usage record.
    pub request_id: String,
}

/// One finished request, to account for.
pub(crate) struct Outcome<'a> {
    pub(crate) caller: &'a Caller,
    pub(crate) endpoint: &'static str,
    pub(crate) model: &'a str,
    pub(crate) provider: Option<(&'a str, &'a str)>,
    pub(crate) usage: Usage,
    pub(crate) latency: Duration,
    pub(crate) ttft: Option<Duration>,
    pub(crate) status: &'static str,
    pub(crate) stream: bool,
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// What the gateway knows of spending: the price table, the keys' budgets, the usage writer
/// and the metrics.
pub(crate) struct Accounting {
    store: Store,
    prices: Prices,
    budgets: Budgets,
    writer: UsageWriter,
    pub(crate) metrics: GatewayMetrics,
}

impl Accounting {
    /// Accounting over `store` with `prices`; starts the usage writer.
    pub(crate) fn new(store: Store, prices: &[PriceSettings]) -> Accounting {
        Accounting {
            writer: UsageWriter::start(store.clone()),
            store,
            prices: Prices::new(prices),
            budgets: Budgets::default(),
            metrics: GatewayMetrics::new(),
        }
    }

    /// Succeeds unless the caller's key has spent one of its budgets.
    pub(crate) async fn check_budget(&self, caller: &Caller) -> Result<(), OverBudget> {
        match caller.api_key_id {
            Some(key) => self.budgets.check(&self.store, key).await,
            None => Ok(()),
        }
    }

    /// Records one request: metrics at once, its usage record in the next batch, and its
    /// spend against the key's budgets. Returns what it cost, in millionths of a dollar.
    pub(crate) fn record(&self, outcome: Outcome<'_>) -> u64 {
        let (provider, upstream_model) = match outcome.provider {
            Some((p, m)) => (Some(p.to_owned()), Some(m.to_owned())),
            None => (None, None),
        };
        let cost_micros = match (&provider, &upstream_model) {
            (Some(p), Some(m)) => self.prices.cost_micros(
                p,
                m,
                outcome.usage.input_tokens,
                outcome.usage.output_tokens,
            ),
            _ => 0,
        };
        let record = UsageRecord {
            id: UsageId::new(),
            created_at: OffsetDateTime::now_utc(),
            request_id: outcome.caller.request_id.clone(),
            user_id: outcome.caller.user_id,
            api_key_id: outcome.caller.api_key_id,
            endpoint: outcome.endpoint.to_owned(),
            model: outcome.model.to_owned(),
            provider,
            upstream_model,
            input_tokens: outcome.usage.input_tokens,
            output_tokens: outcome.usage.output_tokens,
            latency_ms: millis(outcome.latency),
            ttft_ms: outcome.ttft.map(millis),
            status: outcome.status.to_owned(),
            cost_micros,
            stream: outcome.stream,
        };
        self.metrics.observe(&record);
        if let Some(key) = outcome.caller.api_key_id {
            self.budgets.spent(key, outcome.usage.total(), cost_micros);
        }
        self.writer.write(record);
        cost_micros
    }

    /// Forgets what is known of a key's budgets, after they changed.
    pub(crate) fn forget_budgets(&self, key: ApiKeyId) {
        self.budgets.forget(key);
    }

    /// Waits until every usage record so far is stored.
    pub(crate) async fn flush(&self) {
        self.writer.flush().await;
    }
}

/// Prices per upstream model, in dollars per million tokens.
#[derive(Debug, Clone, Default)]
pub(crate) struct Prices {
    by_model: HashMap<String, (f64, f64)>,
}

impl Prices {
    pub(crate) fn new(prices: &[PriceSettings]) -> Prices {
        Prices {
            by_model: prices
                .iter()
                .map(|p| (p.model.clone(), (p.input, p.output)))
                .collect(),
        }
    }

    /// The cost in millionths of a dollar: `provider/model` is priced first, then `model`,
    /// and a model with no price costs nothing.
    pub(crate) fn cost_micros(
        &self,
        provider: &str,
        model: &str,
        input_tokens: u64,
        output_tokens: u64,
    ) -> u64 {
        let price = self
            .by_model
            .get(&format!("{provider}/{model}"))
            .or_else(|| self.by_model.get(model));
        match price {
            // Tokens times dollars per million tokens is exactly micro-dollars.
            Some((input, output)) => {
                let micros = input_tokens as f64 * input + output_tokens as f64 * output;
                micros.round().max(0.0) as u64
            }
            None => 0,
        }
    }
}

/// A request that may not go ahead, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverBudget {
    /// Which budget, how much is used, and when it resets.
    pub message: String,
    /// Until the budget resets.
    pub retry_after: Duration,
}

#[derive(Debug)]
struct KeySpend {
    budgets: Vec<Budget>,
    loaded: Instant,
    day: Date,
    day_tokens: u64,
    day_micros: u64,
    month_start: Date,
    month_tokens: u64,
    month_micros: u64,
}

/// Per-key budgets and what each key has spent in the current day and month.
#[derive(Debug, Default)]
pub(crate) struct Budgets {
    keys: Mutex<HashMap<ApiKeyId, KeySpend>>,
}

impl Budgets {
    /// Refuses a request from `key` if any of its budgets is spent.
    pub(crate) async fn check(&self, store: &Store, key: ApiKeyId) -> Result<(), OverBudget> {
        let now = OffsetDateTime::now_utc();
        let fresh = {
            let keys = lock(&self.keys);
            keys.get(&key).is_some_and(|spend| {
                spend.loaded.elapsed() < BUDGET_REFRESH && spend.day == now.date()
            })
        };
        if !fresh && let Err(err) = self.load(store, key, now).await {
            // A database hiccup must not turn into refusing (or granting) everything: keep
            // what is known and try again on the next request.
            tracing::warn!(error = %err, "cannot read an API key's budgets; using the last known");
        }
        let keys = lock(&self.keys);
        let Some(spend) = keys.get(&key) else {
            return Ok(());
        };
        for budget in &spend.budgets {
            let (used_tokens, used_micros, resets) = match budget.period {
                BudgetPeriod::Day => (spend.day_tokens, spend.day_micros, next_day(now)),
                BudgetPeriod::Month => (spend.month_tokens, spend.month_micros, next_month(now)),
            };
            let period = match budget.period {
                BudgetPeriod::Day => "daily",
                BudgetPeriod::Month => "monthly",
            };
            let spent = match budget.limit {
                BudgetLimit::Tokens(limit) if used_tokens >= limit => Some(format!(
                    "this API key's {period} budget of {limit} tokens is spent ({used_tokens} used)"
                )),
                BudgetLimit::UsdMicros(limit) if used_micros >= limit => Some(format!(
                    "this API key's {period} budget of ${} is spent (${} used)",
                    format_usd(limit),
                    format_usd(used_micros)
                )),
                _ => None,
            };
            if let Some(spent) = spent {
                let wait = resets - now;
                let retry_after = Duration::try_from(wait).unwrap_or(Duration::ZERO);
                let resets_at = resets
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default();
                return Err(OverBudget {
                    message: format!(
                        "{spent}; it resets at {resets_at}, or an admin can raise it at /api/v1/keys/{key}/budgets"
                    ),
                    retry_after,
                });
            }
        }
        Ok(())
    }

    async fn load(
        &self,
        store: &Store,
        key: ApiKeyId,
        now: OffsetDateTime,
    ) -> Result<(), kai_store::StoreError> {
        let budgets = store.key_budgets(key).await?;
        let day_start = now.replace_time(Time::MIDNIGHT);
        let month_start = day_start.replace_day(1).unwrap_or(day_start);
        let (day, month) = if budgets.is_empty() {
            (Default::default(), Default::default())
        } else {
            let filter = |from| UsageFilter {
                api_key_id: Some(key),
                from: Some(from),
                ..UsageFilter::default()
            };
            (
                store.usage_totals(&filter(day_start)).await?,
                store.usage_totals(&filter(month_start)).await?,
            )
        };
        lock(&self.keys).insert(
            key,
            KeySpend {
                budgets,
                loaded: Instant::now(),
                day: now.date(),
                day_tokens: day.input_tokens + day.output_tokens,
                day_micros: day.cost_micros,
                month_start: month_start.date(),
                month_tokens: month.input_tokens + month.output_tokens,
                month_micros: month.cost_micros,
            },
        );
        Ok(())
    }

    /// Counts a finished request against its key's spend at once, before its record reaches
    /// the database.
    pub(crate) fn spent(&self, key: ApiKeyId, tokens: u64, micros: u64) {
        let today = OffsetDateTime::now_utc().date();
        if let Some(spend) = lock(&self.keys).get_mut(&key) {
            if spend.day == today {
                spend.day_tokens += tokens;
                spend.day_micros += micros;
            }
            if spend.month_start.month() == today.month()
                && spend.month_start.year() == today.year()
            {
                spend.month_tokens += tokens;
                spend.month_micros += micros;
            }
        }
    }

    /// Forgets a key's cached budgets, after they were changed.
    pub(crate) fn forget(&self, key: ApiKeyId) {
        lock(&self.keys).remove(&key);
    }
}

fn next_day(now: OffsetDateTime) -> OffsetDateTime {
    now.replace_time(Time::MIDNIGHT) + time::Duration::days(1)
}

fn next_month(now: OffsetDateTime) -> OffsetDateTime {
    let first = now
        .replace_time(Time::MIDNIGHT)
        .replace_day(1)
        .unwrap_or(now);
    let (year, month) = (first.year(), first.month());
    let (year, month) = if month == time::Month::December {
        (year + 1, time::Month::January)
    } else {
        (year, month.next())
    };
    first
        .replace_year(year)
        .and_then(|d| d.replace_month(month))
        .unwrap_or(first)
}

enum WriterMessage {
    Record(Box<UsageRecord>),
    Flush(oneshot::Sender<()>),
}

/// Writes usage records in batches, off the request path.
#[derive(Debug, Clone)]
pub(crate) struct UsageWriter {
    sender: mpsc::UnboundedSender<WriterMessage>,
}

impl WriterMessage {
    /// Puts a record in the batch, or a flush among those waiting for it.
    fn sort(self, batch: &mut Vec<UsageRecord>, waiting: &mut Vec<oneshot::Sender<()>>) {
        match self {
            WriterMessage::Record(record) => batch.push(*record),
            WriterMessage::Flush(done) => waiting.push(done),
        }
    }
}

impl std::fmt::Debug for WriterMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriterMessage::Record(_) => f.write_str("Record"),
            WriterMessage::Flush(_) => f.write_str("Flush"),
        }
    }
}

impl UsageWriter {
    /// Starts the writer task. It gathers records for up to [`BATCH_WINDOW`] (or
    /// [`MAX_BATCH`] of them, or until a flush is asked for) and writes each batch in one
    /// statement: at hundreds of requests a second, one insert each would cost more than
    /// the requests themselves.
    pub(crate) fn start(store: Store) -> UsageWriter {
        let (sender, mut receiver) = mpsc::unbounded_channel::<WriterMessage>();
        tokio::spawn(async move {
            let mut batch: Vec<UsageRecord> = Vec::new();
            let mut waiting: Vec<oneshot::Sender<()>> = Vec::new();
            let mut arrived = Vec::with_capacity(MAX_BATCH);
            while let Some(first) = receiver.recv().await {
                first.sort(&mut batch, &mut waiting);
                // One timer for the whole window, not one per record.
                let window = tokio::time::sleep(BATCH_WINDOW);
                tokio::pin!(window);
                while batch.len() < MAX_BATCH && waiting.is_empty() {
                    tokio::select! {
                        biased;
                        received = receiver.recv_many(&mut arrived, MAX_BATCH - batch.len()) => {
                            if received == 0 {
                                break;
                            }
                            for message in arrived.drain(..) {
                                message.sort(&mut batch, &mut waiting);
                            }
                        }
                        () = &mut window => break,
                    }
                }
                if !batch.is_empty() {
                    if let Err(err) = store.insert_usage(&batch).await {
                        tracing::error!(error = %err, records = batch.len(), "cannot store usage records; they are lost");
                    }
                    batch.clear();
                }
                for done in waiting.drain(..) {
                    let _ = done.send(());
                }
            }
        });
        UsageWriter { sender }
    }

    pub(crate) fn write(&self, record: UsageRecord) {
        if self
            .sender
            .send(WriterMessage::Record(Box::new(record)))
            .is_err()
        {
            tracing::error!("the usage writer has stopped; a usage record is lost");
        }
    }

    /// Waits until every record sent so far is stored.
    pub(crate) async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.sender.send(WriterMessage::Flush(done)).is_ok() {
            let _ = wait.await;
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    model: String,
    provider: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    model: String,
    provider: String,
    direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabels {
    model: String,
    provider: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct DeploymentLabels {
    pub(crate) provider: String,
    pub(crate) upstream_model: String,
}

/// Latency buckets in seconds, for model calls: 5 ms to 2 minutes.
const BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// The gateway's Prometheus metrics.
#[derive(Debug, Clone)]
pub struct GatewayMetrics {
    requests: Family<RequestLabels, Counter>,
    tokens: Family<TokenLabels, Counter>,
    cost: Family<ModelLabels, Counter<f64, std::sync::atomic::AtomicU64>>,
    latency: Family<ModelLabels, Histogram, fn() -> Histogram>,
    ttft: Family<ModelLabels, Histogram, fn() -> Histogram>,
    pub(crate) healthy: Family<DeploymentLabels, Gauge>,
    pub(crate) in_flight: Family<DeploymentLabels, Gauge>,
}

fn histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

impl GatewayMetrics {
    pub(crate) fn new() -> GatewayMetrics {
        GatewayMetrics {
            requests: Family::default(),
            tokens: Family::default(),
            cost: Family::default(),
            latency: Family::new_with_constructor(histogram as fn() -> Histogram),
            ttft: Family::new_with_constructor(histogram as fn() -> Histogram),
            healthy: Family::default(),
            in_flight: Family::default(),
        }
    }

    /// Adds the gateway's metrics to `registry` (whose prefix, `kai`, they share).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "gateway_requests",
            "Model requests, by model, provider that answered and status",
            self.requests.clone(),
        );
        registry.register(
            "gateway_tokens",
            "Tokens read (input) and written (output), by model and provider",
            self.tokens.clone(),
        );
        registry.register(
            "gateway_cost_usd",
            "Cost in US dollars from the price table, by model and provider",
            self.cost.clone(),
        );
        registry.register_with_unit(
            "gateway_request_duration",
            "Time from receiving a model request to its whole answer",
            Unit::Seconds,
            self.latency.clone(),
        );
        registry.register_with_unit(
            "gateway_time_to_first_token",
            "Time from receiving a model request to its first token",
            Unit::Seconds,
            self.ttft.clone(),
        );
        registry.register(
            "gateway_deployment_healthy",
            "1 while a deployment takes requests, 0 while it is cooled down after failures",
            self.healthy.clone(),
        );
        registry.register(
            "gateway_deployment_in_flight",
            "Requests in flight per deployment",
            self.in_flight.clone(),
        );
    }

    pub(crate) fn observe(&self, record: &UsageRecord) {
        let provider = record.provider.clone().unwrap_or_default();
        self.requests
            .get_or_create(&RequestLabels {
                model: record.model.clone(),
                provider: provider.clone(),
                status: record.status.clone(),
            })
            .inc();
        let labels = ModelLabels {
            model: record.model.clone(),
            provider: provider.clone(),
        };
        for (direction, count) in [
            ("input", record.input_tokens),
            ("output", record.output_tokens),
        ] {
            self.tokens
                .get_or_create(&TokenLabels {
                    model: record.model.clone(),
                    provider: provider.clone(),
                    direction,
                })
                .inc_by(count);
        }
        self.cost
            .get_or_create(&labels)
            .inc_by(record.cost_micros as f64 / 1e6);
        self.latency
            .get_or_create(&labels)
            .observe(record.latency_ms as f64 / 1000.0);
        if let Some(ttft) = record.ttft_ms {
            self.ttft
                .get_or_create(&labels)
                .observe(ttft as f64 / 1000.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_prefer_the_provider_specific_entry() {
        let prices = Prices::new(&[
            PriceSettings {
                model: "gpt-4o".into(),
                input: 2.5,
                output: 10.0,
            },
            PriceSettings {
                model: "azure/gpt-4o".into(),
                input: 5.0,
                output: 15.0,
            },
        ]);
        assert_eq!(prices.cost_micros("openai", "gpt-4o", 1000, 100), 3500);
        assert_eq!(prices.cost_micros("azure", "gpt-4o", 1000, 100), 6500);
        assert_eq!(prices.cost_micros("openai", "unpriced", 1000, 100), 0);
    }

    #[test]
    fn periods_reset_at_utc_midnight_and_the_first_of_the_month() {
        let at = time::macros::datetime!(2026-12-31 15:30 UTC);
        assert_eq!(next_day(at), time::macros::datetime!(2027-01-01 0:00 UTC));
        assert_eq!(next_month(at), time::macros::datetime!(2027-01-01 0:00 UTC));
        let at = time::macros::datetime!(2026-01-31 23:59 UTC);
        assert_eq!(next_month(at), time::macros::datetime!(2026-02-01 0:00 UTC));
    }
}
