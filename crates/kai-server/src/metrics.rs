//! Prometheus metrics: requests by route and status, their latency, requests in flight, build
//! information and the database pool. One registry per server instance, owned by its state, so
//! that servers in one process (tests) do not share counters.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

/// The media type of [`Metrics::render`]'s output.
pub(crate) const METRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Latency buckets in seconds: 0.5 ms to 10 s, dense where an API like this one lives.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
}

/// The server's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RequestLabels, Histogram>,
    in_flight: Gauge,
    pool_size: Gauge<u64, AtomicU64>,
    pool_idle: Gauge<u64, AtomicU64>,
    pool_max: Gauge<u64, AtomicU64>,
}

impl Metrics {
    /// A fresh registry with every kai metric registered, the gateway's among them.
    #[must_use]
    pub fn new(gateway: &kai_gateway::GatewayMetrics) -> Self {
        let mut registry = Registry::with_prefix("kai");
        gateway.register(&mut registry);
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route and status",
            requests.clone(),
        );
        let latency = Family::<RequestLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(LATENCY_BUCKETS)) as fn() -> Histogram,
        );
        registry.register_with_unit(
            "http_request_duration",
            "Time from receiving a request to sending its response head",
            prometheus_client::registry::Unit::Seconds,
            latency.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "http_requests_in_flight",
            "HTTP requests being handled now",
            in_flight.clone(),
        );
        registry.register(
            "build",
            "The running kai build",
            Info::new(BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_owned(),
            }),
        );
        let pool_size = Gauge::<u64, AtomicU64>::default();
        let pool_idle = Gauge::<u64, AtomicU64>::default();
        let pool_max = Gauge::<u64, AtomicU64>::default();
        registry.register(
            "db_pool_connections",
            "Open database connections, idle or in use",
            pool_size.clone(),
        );
        registry.register(
            "db_pool_idle_connections",
            "Open database connections waiting for work",
            pool_idle.clone(),
        );
        registry.register(
            "db_pool_max_connections",
            "The most connections the pool may open",
            pool_max.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            in_flight,
            pool_size,
            pool_idle,
            pool_max,
        }
    }

    /// Counts a request as started; the guard counts it as finished when dropped, even if the
    /// client went away mid-request.
    pub(crate) fn start(&self) -> InFlight<'_> {
        self.in_flight.inc();
        InFlight(&self.in_flight)
    }

    /// Records an answered request. Methods outside HTTP's standard set are counted as `other`:
    /// a client may send any token as a method, and each would otherwise become new series.
    pub(crate) fn observe(
        &self,
        method: &http::Method,
        route: &str,
        status: u16,
        elapsed: Duration,
    ) {
        let method = match *method {
            http::Method::GET
            | http::Method::HEAD
            | http::Method::POST
            | http::Method::PUT
            | http::Method::PATCH
            | http::Method::DELETE
            | http::Method::OPTIONS
            | http::Method::TRACE
            | http::Method::CONNECT => method.as_str(),
            _ => "other",
        };
        let labels = RequestLabels {
            method: method.to_owned(),
            route: route.to_owned(),
            status,
        };
        self.requests.get_or_create(&labels).inc();
        self.latency
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// The metrics in OpenMetrics text format, with the pool's state as of now.
    pub(crate) fn render(&self, pool: kai_store::PoolStats) -> String {
        self.pool_size.set(u64::from(pool.size));
        self.pool_idle.set(u64::from(pool.idle));
        self.pool_max.set(u64::from(pool.max));
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// Decrements the in-flight gauge when dropped.
pub(crate) struct InFlight<'a>(&'a Gauge);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}
