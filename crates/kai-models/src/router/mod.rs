//! The router: picks a deployment for each request by the model's strategy, retries transient
//! failures with backoff, fails over to other deployments, cools down the ones that keep
//! failing, keeps to per-minute limits, and falls back to other models when configured.
//!
//! A streamed answer is routed until its first event: until then nothing has reached the
//! client, so a failure can still be retried elsewhere; after it, the stream is the client's
//! and a failure ends it.

mod state;
mod stream;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use kai_config::Strategy;
use rand::RngExt;

pub use self::state::{BreakerPolicy, DeploymentState, Health, Ticket, Unavailable};
pub use self::stream::RoutedStream;
use crate::chat::{ChatRequest, ChatResponse, EmbedRequest, EmbedResponse};
use crate::error::{ErrorKind, ProviderError};
use crate::provider::Provider;

/// One place a model is served.
#[derive(Debug, Clone)]
pub struct Deployment {
    provider: String,
    model: String,
    client: Arc<dyn Provider>,
    weight: u32,
    priority: u32,
    rpm: Option<u32>,
    tpm: Option<u64>,
    state: Arc<DeploymentState>,
}

impl Deployment {
    /// `model` at `provider`, served by `client`, with its live `state` (shared by every route
    /// to the same provider and model). Weight 1, priority 0, no limits.
    #[must_use]
    pub fn new(
        provider: impl Into<String>,
        model: impl Into<String>,
        client: Arc<dyn Provider>,
        state: Arc<DeploymentState>,
    ) -> Deployment {
        Deployment {
            provider: provider.into(),
            model: model.into(),
            client,
            weight: 1,
            priority: 0,
            rpm: None,
            tpm: None,
            state,
        }
    }

    /// Share of traffic under [`Strategy::Weighted`].
    #[must_use]
    pub fn with_weight(mut self, weight: u32) -> Deployment {
        self.weight = weight.max(1);
        self
    }

    /// Order under [`Strategy::Priority`], lowest first.
    #[must_use]
    pub fn with_priority(mut self, priority: u32) -> Deployment {
        self.priority = priority;
        self
    }

    /// Requests and tokens per minute it may take.
    #[must_use]
    pub fn with_limits(mut self, rpm: Option<u32>, tpm: Option<u64>) -> Deployment {
        self.rpm = rpm;
        self.tpm = tpm;
        self
    }

    /// The provider's name.
    #[must_use]
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// The provider's name for the model.
    #[must_use]
    pub fn model(&self) -> &str {
        &self.model
    }

    /// `provider/model`, as errors and logs name it.
    #[must_use]
    pub fn label(&self) -> String {
        format!("{}/{}", self.provider, self.model)
    }

    /// Its live state.
    #[must_use]
    pub fn state(&self) -> &Arc<DeploymentState> {
        &self.state
    }

    /// Its per-minute limits.
    #[must_use]
    pub fn limits(&self) -> (Option<u32>, Option<u64>) {
        (self.rpm, self.tpm)
    }
}

/// A model name clients use, and how it is served.
#[derive(Debug, Clone)]
pub struct Route {
    /// The name.
    pub name: String,
    /// How requests are spread.
    pub strategy: Strategy,
    /// Where it is served.
    pub deployments: Vec<Deployment>,
    /// Further attempts after a transient failure.
    pub retries: u32,
    /// Models to try when every deployment failed.
    pub fallbacks: Vec<String>,
    /// Models to try when the prompt is too long for this one.
    pub context_window_fallbacks: Vec<String>,
    /// Models to try when this one's provider refuses the content.
    pub content_policy_fallbacks: Vec<String>,
}

impl Route {
    /// A route with the given deployments, priority strategy, two retries, no fallbacks.
    #[must_use]
    pub fn new(name: impl Into<String>, deployments: Vec<Deployment>) -> Route {
        Route {
            name: name.into(),
            strategy: Strategy::Priority,
            deployments,
            retries: 2,
            fallbacks: Vec::new(),
            context_window_fallbacks: Vec::new(),
            content_policy_fallbacks: Vec::new(),
        }
    }
}

/// How failures are retried and when deployments are cooled down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The first retry's delay; each later one doubles, with jitter.
    pub base_delay: Duration,
    /// The longest delay, and the longest `Retry-After` or limit wait the router sits out.
    pub max_delay: Duration,
    /// When deployments are cooled down.
    pub breaker: BreakerPolicy,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(20),
            breaker: BreakerPolicy {
                failures: 3,
                cooldown: Duration::from_secs(30),
            },
        }
    }
}

/// One try at one deployment, for error messages and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The model name it was made for (the requested one, or a fallback).
    pub model: String,
    /// `provider/model`.
    pub deployment: String,
    /// Why it failed, or `None` if it succeeded.
    pub error: Option<ProviderError>,
}

/// What a successful routing produced, and how.
#[derive(Debug)]
pub struct Routed<T> {
    /// The answer.
    pub value: T,
    /// The model name that answered: the requested one, or a fallback.
    pub model: String,
    /// The provider that answered.
    pub provider: String,
    /// The provider's name for the model.
    pub upstream_model: String,
    /// Every try, the successful one last.
    pub attempts: Vec<Attempt>,
    /// From the start of routing to the whole answer.
    pub latency: Duration,
}

/// Why a request could not be served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteErrorKind {
    /// No model has that name.
    UnknownModel,
    /// The provider found the request itself at fault: retrying elsewhere would not help.
    Rejected(ErrorKind),
    /// Every deployment is at its per-minute limit, or the providers said to slow down.
    RateLimited,
    /// Every deployment is cooling down after failures.
    Unavailable,
    /// Every attempt failed; the last failure's kind.
    Failed(ErrorKind),
}

/// A request the router could not serve, with everything that was tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteError {
    /// What went wrong.
    pub kind: RouteErrorKind,
    /// The model name the client asked for.
    pub model: String,
    /// The whole story, in one paragraph.
    pub message: String,
    /// When trying again may work.
    pub retry_after: Option<Duration>,
    /// Every try.
    pub attempts: Vec<Attempt>,
    /// The HTTP status of the last upstream answer, for errors the request caused.
    pub upstream_status: Option<u16>,
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RouteError {}

/// The routing table and its policy. Immutable: a configuration change builds a new router
/// over the same deployment states.
#[derive(Debug, Clone, Default)]
pub struct Router {
    routes: HashMap<String, Route>,
    names: Vec<String>,
    policy: RetryPolicy,
}

/// How one model's attempts ended.
struct ModelFailure {
    kind: RouteErrorKind,
    retry_after: Option<Duration>,
    note: String,
    upstream_status: Option<u16>,
}

impl Router {
    /// A router over `routes`, in the order given (which `models()` keeps).
    #[must_use]
    pub fn new(routes: Vec<Route>, policy: RetryPolicy) -> Router {
        let names = routes.iter().map(|route| route.name.clone()).collect();
        Router {
            routes: routes
                .into_iter()
                .map(|route| (route.name.clone(), route))
                .collect(),
            names,
            policy,
        }
    }

    /// The model names, in configuration order.
    #[must_use]
    pub fn models(&self) -> &[String] {
        &self.names
    }

    /// A model's route.
    #[must_use]
    pub fn route(&self, model: &str) -> Option<&Route> {
        self.routes.get(model)
    }

    /// A whole chat answer from `model`.
    pub async fn chat(
        &self,
        model: &str,
        request: &ChatRequest,
    ) -> Result<Routed<ChatResponse>, RouteError> {
        let estimate = estimated_chat_tokens(request);
        self.run(model, estimate, |deployment, ticket, started| {
            let mut request = request.clone();
            request.model = deployment.model.clone();
            let client = Arc::clone(&deployment.client);
            async move {
                match client.chat(&request).await {
                    Ok(response) => {
                        let used = response.usage.map(|u| u.total());
                        ticket.succeeded(started.elapsed(), used);
                        Ok(response)
                    }
                    Err(err) => Err((err, ticket)),
                }
            }
        })
        .await
    }

    /// A streamed chat answer from `model`, returned once its first event has arrived.
    pub async fn chat_stream(
        &self,
        model: &str,
        request: &ChatRequest,
    ) -> Result<Routed<RoutedStream>, RouteError> {
        let estimate = estimated_chat_tokens(request);
        let breaker = self.policy.breaker;
        self.run(model, estimate, |deployment, ticket, started| {
            let mut request = request.clone();
            request.model = deployment.model.clone();
            let client = Arc::clone(&deployment.client);
            async move {
                let mut stream = match client.chat_stream(&request).await {
                    Ok(stream) => stream,
                    Err(err) => return Err((err, ticket)),
                };
                match stream.next().await {
                    Some(Err(err)) => Err((err, ticket)),
                    first => Ok(RoutedStream::new(
                        first.and_then(Result::ok),
                        stream,
                        ticket,
                        started,
                        breaker,
                    )),
                }
            }
        })
        .await
    }

    /// Embeddings from `model`.
    pub async fn embed(
        &self,
        model: &str,
        request: &EmbedRequest,
    ) -> Result<Routed<EmbedResponse>, RouteError> {
        let estimate = request
            .inputs
            .iter()
            .map(|text| (text.len() as u64).div_ceil(4))
            .sum();
        self.run(model, estimate, |deployment, ticket, started| {
            let mut request = request.clone();
            request.model = deployment.model.clone();
            let client = Arc::clone(&deployment.client);
            async move {
                match client.embed(&request).await {
                    Ok(response) if response.vectors.len() != request.inputs.len() => Err((
                        ProviderError::malformed(format!(
                            "{} embeddings came back for {} inputs",
                            response.vectors.len(),
                            request.inputs.len()
                        )),
                        ticket,
                    )),
                    Ok(response) => {
                        let used = response.usage.map(|u| u.total());
                        ticket.succeeded(started.elapsed(), used);
                        Ok(response)
                    }
                    Err(err) => Err((err, ticket)),
                }
            }
        })
        .await
    }

    /// Runs `call` for `model` and, when it fails in a way a fallback answers, for the
    /// configured fallback models in order.
    async fn run<T, F, Fut>(
        &self,
        model: &str,
        estimate: u64,
        mut call: F,
    ) -> Result<Routed<T>, RouteError>
    where
        F: FnMut(&Deployment, Ticket, Instant) -> Fut,
        Fut: Future<Output = Result<T, (ProviderError, Ticket)>>,
    {
        let started = Instant::now();
        let Some(route) = self.routes.get(model) else {
            return Err(self.unknown_model(model));
        };
        let mut attempts = Vec::new();
        let mut notes = Vec::new();
        let mut tried_models = vec![model.to_owned()];
        let mut current = route;
        loop {
            match self
                .attempt_model(current, estimate, &mut call, &mut attempts, started)
                .await
            {
                Ok((value, deployment)) => {
                    return Ok(Routed {
                        value,
                        model: current.name.clone(),
                        provider: deployment.provider.clone(),
                        upstream_model: deployment.model.clone(),
                        attempts,
                        latency: started.elapsed(),
                    });
                }
                Err(failure) => {
                    let fallbacks = match &failure.kind {
                        RouteErrorKind::Rejected(ErrorKind::ContextLengthExceeded) => {
                            &route.context_window_fallbacks
                        }
                        RouteErrorKind::Rejected(ErrorKind::ContentFiltered) => {
                            &route.content_policy_fallbacks
                        }
                        RouteErrorKind::Rejected(_) | RouteErrorKind::UnknownModel => &Vec::new(),
                        _ => &route.fallbacks,
                    };
                    notes.push(format!("model `{}`: {}", current.name, failure.note));
                    let next = fallbacks
                        .iter()
                        .filter(|name| !tried_models.contains(name))
                        .find_map(|name| self.routes.get(name));
                    match next {
                        Some(next) => {
                            tracing::info!(
                                model = %current.name,
                                fallback = %next.name,
                                "falling back to another model"
                            );
                            tried_models.push(next.name.clone());
                            current = next;
                        }
                        None => {
                            return Err(RouteError {
                                kind: failure.kind,
                                model: model.to_owned(),
                                message: notes.join("; then "),
                                retry_after: failure.retry_after,
                                attempts,
                                upstream_status: failure.upstream_status,
                            });
                        }
                    }
                }
            }
        }
    }

    /// Tries one model's deployments until one answers, its attempts run out, or nothing is
    /// left to try.
    async fn attempt_model<'r, T, F, Fut>(
        &self,
        route: &'r Route,
        estimate: u64,
        call: &mut F,
        attempts: &mut Vec<Attempt>,
        started: Instant,
    ) -> Result<(T, &'r Deployment), ModelFailure>
    where
        F: FnMut(&Deployment, Ticket, Instant) -> Fut,
        Fut: Future<Output = Result<T, (ProviderError, Ticket)>>,
    {
        let budget = route.retries + 1;
        let mut tries: Vec<u32> = vec![0; route.deployments.len()];
        let mut excluded = vec![false; route.deployments.len()];
        let mut last: Option<ProviderError> = None;
        let mut rate_limited_until: Option<Duration> = None;
        let mut made = 0;
        while made < budget {
            let now = Instant::now();
            let mut fresh = Vec::new();
            let mut again = Vec::new();
            let mut blocked: Vec<Unavailable> = Vec::new();
            for (i, deployment) in route.deployments.iter().enumerate() {
                if excluded[i] {
                    continue;
                }
                let (rpm, tpm) = deployment.limits();
                match deployment.state.check(now, rpm, tpm, estimate) {
                    Ok(()) if tries[i] == 0 => fresh.push(i),
                    Ok(()) => again.push(i),
                    Err(why) => blocked.push(why),
                }
            }
            let pool = if fresh.is_empty() { &again } else { &fresh };
            let Some(chosen) = pick(route, pool) else {
                // Nothing can take the request now. Wait for a per-minute slot if one frees
                // soon; otherwise say why.
                let soonest_slot = blocked
                    .iter()
                    .filter_map(|why| match why {
                        Unavailable::AtLimit(at) => Some(*at),
                        _ => None,
                    })
                    .min();
                if let Some(at) = soonest_slot
                    && at.saturating_duration_since(now) <= self.policy.max_delay
                    && last.is_none()
                {
                    tokio::time::sleep_until(at.into()).await;
                    continue;
                }
                return Err(self.nothing_left(route, &blocked, last, rate_limited_until, now));
            };
            let deployment = &route.deployments[chosen];
            if tries[chosen] > 0 {
                let wait = match last.as_ref().and_then(|err| err.retry_after) {
                    Some(asked) => asked,
                    None => self.backoff(tries[chosen]),
                };
                tokio::time::sleep(wait).await;
            }
            tries[chosen] += 1;
            made += 1;
            let ticket = deployment.state.admit(Instant::now(), estimate);
            match call(deployment, ticket, started).await {
                Ok(value) => {
                    attempts.push(Attempt {
                        model: route.name.clone(),
                        deployment: deployment.label(),
                        error: None,
                    });
                    return Ok((value, deployment));
                }
                Err((err, ticket)) => {
                    tracing::warn!(
                        model = %route.name,
                        deployment = %deployment.label(),
                        error = %err,
                        "model call failed"
                    );
                    if err.kind.counts_against_health() {
                        if let Some(until) = ticket.failed(self.policy.breaker, Instant::now()) {
                            tracing::warn!(
                                deployment = %deployment.label(),
                                cooldown_s = until.saturating_duration_since(Instant::now()).as_secs_f32(),
                                "deployment cooled down after repeated failures"
                            );
                        }
                    } else {
                        ticket.released(None);
                    }
                    attempts.push(Attempt {
                        model: route.name.clone(),
                        deployment: deployment.label(),
                        error: Some(err.clone()),
                    });
                    if !err.kind.is_deployment_fault() {
                        // The request itself is at fault: another deployment would say the same.
                        return Err(ModelFailure {
                            kind: RouteErrorKind::Rejected(err.kind),
                            retry_after: None,
                            note: format!("{} refused the request: {err}", deployment.label()),
                            upstream_status: err.status,
                        });
                    }
                    let waits_too_long = err
                        .retry_after
                        .is_some_and(|wait| wait > self.policy.max_delay);
                    if err.kind == ErrorKind::RateLimited {
                        rate_limited_until = match (rate_limited_until, err.retry_after) {
                            (Some(a), Some(b)) => Some(a.min(b)),
                            (a, b) => a.or(b),
                        };
                    }
                    if !err.kind.is_transient() || waits_too_long {
                        excluded[chosen] = true;
                    }
                    last = Some(err);
                }
            }
        }
        let summary = summarize(attempts, &route.name);
        let last = last.unwrap_or_else(|| ProviderError::new(ErrorKind::Server, "no attempt made"));
        let kind = if last.kind == ErrorKind::RateLimited {
            RouteErrorKind::RateLimited
        } else {
            RouteErrorKind::Failed(last.kind)
        };
        let mut note = format!("every attempt failed ({budget} allowed): {summary}");
        let now = Instant::now();
        let resting: Vec<String> = route
            .deployments
            .iter()
            .filter(|d| {
                let (rpm, tpm) = d.limits();
                d.state.check(now, rpm, tpm, 0).is_err()
                    && !attempts
                        .iter()
                        .any(|a| a.model == route.name && a.deployment == d.label())
            })
            .map(|d| describe(d, now))
            .collect();
        if !resting.is_empty() {
            note.push_str("; not tried: ");
            note.push_str(&resting.join(", "));
        }
        Err(ModelFailure {
            kind,
            retry_after: rate_limited_until,
            note,
            upstream_status: None,
        })
    }

    fn nothing_left(
        &self,
        route: &Route,
        blocked: &[Unavailable],
        last: Option<ProviderError>,
        rate_limited_until: Option<Duration>,
        now: Instant,
    ) -> ModelFailure {
        let soonest = |pick: fn(&Unavailable) -> Option<Instant>| {
            blocked
                .iter()
                .filter_map(pick)
                .min()
                .map(|at| at.saturating_duration_since(now))
        };
        let cooling = soonest(|why| match why {
            Unavailable::CoolingDown(at) => Some(*at),
            _ => None,
        });
        let at_limit = soonest(|why| match why {
            Unavailable::AtLimit(at) => Some(*at),
            _ => None,
        });
        if let Some(last) = last {
            let kind = if last.kind == ErrorKind::RateLimited {
                RouteErrorKind::RateLimited
            } else {
                RouteErrorKind::Failed(last.kind)
            };
            return ModelFailure {
                kind,
                retry_after: rate_limited_until.or(cooling).or(at_limit),
                note: format!(
                    "no deployment left to try after the last failure ({last}); {}",
                    describe_blocked(route, now)
                ),
                upstream_status: None,
            };
        }
        if let Some(wait) = at_limit.filter(|_| cooling.is_none()) {
            return ModelFailure {
                kind: RouteErrorKind::RateLimited,
                retry_after: Some(wait),
                note: format!(
                    "every deployment is at its per-minute limit; {}",
                    describe_blocked(route, now)
                ),
                upstream_status: None,
            };
        }
        ModelFailure {
            kind: RouteErrorKind::Unavailable,
            retry_after: cooling
                .or(at_limit)
                .map(|wait| wait.max(Duration::from_secs(1))),
            note: format!(
                "every deployment is cooling down after repeated failures; {}",
                describe_blocked(route, now)
            ),
            upstream_status: None,
        }
    }

    /// The wait before retrying a deployment for the `n`th time: doubling from the base
    /// delay, capped, with "equal jitter" (half fixed, half random) so that many clients
    /// retrying at once spread out.
    fn backoff(&self, n: u32) -> Duration {
        let exponent = n.saturating_sub(1).min(16);
        let cap = self
            .policy
            .base_delay
            .saturating_mul(1 << exponent)
            .min(self.policy.max_delay);
        let half = cap / 2;
        half + half.mul_f64(rand::rng().random::<f64>())
    }

    fn unknown_model(&self, model: &str) -> RouteError {
        let known = if self.names.is_empty() {
            "no models are configured".to_owned()
        } else {
            format!("the models are: {}", self.names.join(", "))
        };
        RouteError {
            kind: RouteErrorKind::UnknownModel,
            model: model.to_owned(),
            message: format!(
                "there is no model named {}; {known} (GET /v1/models)",
                quoted_name(model)
            ),
            retry_after: None,
            attempts: Vec::new(),
            upstream_status: None,
        }
    }
}

/// A model name as an error message may echo it, in backticks: whole when it is of a sensible
/// length (the longest real ones are well under a hundred characters), its start and length
/// otherwise, so that a client cannot make kai send back, or log, whatever it sent.
fn quoted_name(name: &str) -> String {
    const SHOWN: usize = 100;
    match name.char_indices().nth(SHOWN) {
        None => format!("`{name}`"),
        Some((end, _)) => format!("`{}…` ({} characters)", &name[..end], name.chars().count()),
    }
}

/// Chooses among the deployment indexes in `pool` by the route's strategy.
fn pick(route: &Route, pool: &[usize]) -> Option<usize> {
    let deployments = &route.deployments;
    match route.strategy {
        Strategy::Priority => pool
            .iter()
            .copied()
            .min_by_key(|&i| (deployments[i].priority, i)),
        Strategy::Weighted => {
            let total: u64 = pool.iter().map(|&i| u64::from(deployments[i].weight)).sum();
            if total == 0 {
                return pool.first().copied();
            }
            let mut ticket = rand::rng().random_range(0..total);
            for &i in pool {
                let weight = u64::from(deployments[i].weight);
                if ticket < weight {
                    return Some(i);
                }
                ticket -= weight;
            }
            pool.last().copied()
        }
        Strategy::LeastBusy => {
            random_among_best(pool, |i| u64::from(deployments[i].state.in_flight()))
        }
        Strategy::Latency => random_among_best(pool, |i| {
            // Never measured comes first, so every deployment gets measured.
            deployments[i].state.ttft().map_or(0, |ttft| {
                u64::try_from(ttft.as_micros()).unwrap_or(u64::MAX)
            })
        }),
    }
}

/// A random one of those with the lowest `score`, so ties share the load.
fn random_among_best(pool: &[usize], score: impl Fn(usize) -> u64) -> Option<usize> {
    let best = pool.iter().map(|&i| score(i)).min()?;
    let ties: Vec<usize> = pool.iter().copied().filter(|&i| score(i) == best).collect();
    let index = rand::rng().random_range(0..ties.len());
    ties.get(index).copied()
}

/// What each deployment of `route` is doing now, for error messages.
fn describe_blocked(route: &Route, now: Instant) -> String {
    route
        .deployments
        .iter()
        .map(|deployment| describe(deployment, now))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What one deployment is doing now: `provider/model is cooling down for 28 s more`.
fn describe(deployment: &Deployment, now: Instant) -> String {
    let (rpm, tpm) = deployment.limits();
    let state = match deployment.state.check(now, rpm, tpm, 0) {
        Ok(()) => "available".to_owned(),
        Err(Unavailable::CoolingDown(until)) => format!(
            "cooling down for {:.0} s more",
            until.saturating_duration_since(now).as_secs_f32().ceil()
        ),
        Err(Unavailable::Probing) => "being probed".to_owned(),
        Err(Unavailable::AtLimit(at)) => format!(
            "at its per-minute limit for {:.0} s more",
            at.saturating_duration_since(now).as_secs_f32().ceil()
        ),
    };
    format!("{} is {state}", deployment.label())
}

/// The failures of `model`'s attempts, grouped by deployment.
fn summarize(attempts: &[Attempt], model: &str) -> String {
    let mut order: Vec<&str> = Vec::new();
    let mut by_deployment: HashMap<&str, Vec<&ProviderError>> = HashMap::new();
    for attempt in attempts.iter().filter(|a| a.model == model) {
        if let Some(err) = &attempt.error {
            if !by_deployment.contains_key(attempt.deployment.as_str()) {
                order.push(&attempt.deployment);
            }
            by_deployment
                .entry(&attempt.deployment)
                .or_default()
                .push(err);
        }
    }
    order
        .iter()
        .map(|deployment| {
            let errors = &by_deployment[deployment];
            let last = errors.last().map(ToString::to_string).unwrap_or_default();
            if errors.len() == 1 {
                format!("{deployment}: {last}")
            } else {
                format!("{deployment}: {last} ({} attempts)", errors.len())
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Tokens a chat request may use, for limits decided before the provider counts.
fn estimated_chat_tokens(request: &ChatRequest) -> u64 {
    request.estimated_prompt_tokens() + u64::from(request.sampling.max_tokens.unwrap_or(0))
}
