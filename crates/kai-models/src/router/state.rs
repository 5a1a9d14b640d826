//! What the router remembers about each deployment between requests: requests in flight, a
//! moving average of time to first token, a circuit breaker, and the last minute's requests and
//! tokens for rate limits. One state per (provider, upstream model), shared by every model name
//! routed to it and kept across configuration reloads.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The window per-minute limits count over.
const WINDOW: Duration = Duration::from_secs(60);

/// Weight of the newest sample in the time-to-first-token average.
const LATENCY_SMOOTHING: f64 = 0.3;

/// How the breaker behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerPolicy {
    /// Consecutive failures that open the breaker.
    pub failures: u32,
    /// The first cool-down; each one that follows a failed probe doubles, up to ten times this.
    pub cooldown: Duration,
}

/// Whether a deployment takes requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Taking requests.
    Healthy,
    /// Cooled down after failing; back on trial at the instant given.
    CoolingDown {
        /// When the next probe may go.
        until: Instant,
    },
    /// Cool-down over; one request is on trial and the others wait for its outcome.
    Probing,
}

#[derive(Debug, Default)]
struct Breaker {
    consecutive_failures: u32,
    /// How many times in a row it has opened; each doubles the cool-down.
    trips: u32,
    open_until: Option<Instant>,
    probe_in_flight: bool,
}

#[derive(Debug, Default)]
struct Usage {
    /// When each request of the last minute started.
    requests: VecDeque<Instant>,
    /// Tokens of finished requests, by when they started.
    tokens: VecDeque<(Instant, u64)>,
    /// Their sum.
    token_sum: u64,
    /// Estimated tokens of the requests in flight, not yet in `tokens`.
    reserved: u64,
}

impl Usage {
    fn prune(&mut self, now: Instant) {
        while self
            .requests
            .front()
            .is_some_and(|at| now.duration_since(*at) >= WINDOW)
        {
            self.requests.pop_front();
        }
        while let Some((at, tokens)) = self.tokens.front().copied() {
            if now.duration_since(at) < WINDOW {
                break;
            }
            self.tokens.pop_front();
            self.token_sum = self.token_sum.saturating_sub(tokens);
        }
    }
}

/// One deployment's live state.
#[derive(Debug, Default)]
pub struct DeploymentState {
    in_flight: AtomicU32,
    ttft: Mutex<Option<f64>>,
    breaker: Mutex<Breaker>,
    usage: Mutex<Usage>,
}

/// Why a deployment cannot take a request now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    /// Its breaker is open until then.
    CoolingDown(Instant),
    /// Another request is probing it.
    Probing,
    /// A per-minute limit is reached; a slot frees at the instant given.
    AtLimit(Instant),
}

/// A permission to send one request, holding its place in flight until dropped. Dropped
/// without a verdict (the caller went away), it frees a probe slot for the next request.
#[derive(Debug)]
pub struct Ticket {
    state: Arc<DeploymentState>,
    probe: bool,
    reserved_tokens: u64,
    reserved_at: Instant,
}

impl DeploymentState {
    /// Requests in flight now.
    #[must_use]
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// The moving average of time to first token, once there is a sample.
    #[must_use]
    pub fn ttft(&self) -> Option<Duration> {
        lock(&self.ttft).map(Duration::from_secs_f64)
    }

    /// The breaker's state now.
    #[must_use]
    pub fn health(&self, now: Instant) -> Health {
        let breaker = lock(&self.breaker);
        match breaker.open_until {
            Some(until) if until > now => Health::CoolingDown { until },
            Some(_) if breaker.probe_in_flight => Health::Probing,
            _ => Health::Healthy,
        }
    }

    /// Consecutive failures so far.
    #[must_use]
    pub fn consecutive_failures(&self) -> u32 {
        lock(&self.breaker).consecutive_failures
    }

    /// Requests and tokens counted in the last minute.
    #[must_use]
    pub fn last_minute(&self, now: Instant) -> (u32, u64) {
        let mut usage = lock(&self.usage);
        usage.prune(now);
        (
            u32::try_from(usage.requests.len()).unwrap_or(u32::MAX),
            usage.token_sum + usage.reserved,
        )
    }

    /// Whether a request estimated at `tokens` may go now under the limits and the breaker.
    pub fn check(
        &self,
        now: Instant,
        rpm: Option<u32>,
        tpm: Option<u64>,
        tokens: u64,
    ) -> Result<(), Unavailable> {
        {
            let breaker = lock(&self.breaker);
            match breaker.open_until {
                Some(until) if until > now => return Err(Unavailable::CoolingDown(until)),
                Some(_) if breaker.probe_in_flight => return Err(Unavailable::Probing),
                _ => {}
            }
        }
        let mut usage = lock(&self.usage);
        usage.prune(now);
        if let Some(rpm) = rpm
            && usage.requests.len() >= rpm as usize
        {
            let oldest = usage.requests.front().copied().unwrap_or(now);
            return Err(Unavailable::AtLimit(oldest + WINDOW));
        }
        let counted = usage.token_sum + usage.reserved;
        if let Some(tpm) = tpm
            && counted > 0
            && counted.saturating_add(tokens) > tpm
        {
            // The slot frees when enough of the oldest tokens leave the window (or, if those in
            // flight alone are too many, in a moment at the earliest).
            let mut left = counted;
            let mut at = now + Duration::from_secs(1);
            for (when, count) in &usage.tokens {
                left -= count;
                at = *when + WINDOW;
                if left + tokens <= tpm {
                    break;
                }
            }
            return Err(Unavailable::AtLimit(at));
        }
        Ok(())
    }

    /// Takes a place for one request: counts it in flight and against the per-minute limits,
    /// and makes it the probe if the breaker is half open. Call [`DeploymentState::check`]
    /// first; this does not refuse.
    pub fn admit(self: &Arc<Self>, now: Instant, estimated_tokens: u64) -> Ticket {
        let probe = {
            let mut breaker = lock(&self.breaker);
            let half_open = breaker.open_until.is_some_and(|until| until <= now);
            if half_open {
                breaker.probe_in_flight = true;
            }
            half_open
        };
        {
            let mut usage = lock(&self.usage);
            usage.requests.push_back(now);
            usage.reserved += estimated_tokens;
        }
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        Ticket {
            state: Arc::clone(self),
            probe,
            reserved_tokens: estimated_tokens,
            reserved_at: now,
        }
    }
}

impl Ticket {
    /// The request succeeded: closes the breaker, feeds the latency average and replaces the
    /// token estimate with what was used.
    pub fn succeeded(self, ttft: Duration, tokens_used: Option<u64>) {
        {
            let mut average = lock(&self.state.ttft);
            let sample = ttft.as_secs_f64();
            *average = Some(match *average {
                Some(old) => old + LATENCY_SMOOTHING * (sample - old),
                None => sample,
            });
        }
        {
            let mut breaker = lock(&self.state.breaker);
            *breaker = Breaker::default();
        }
        if let Some(used) = tokens_used {
            self.settle_tokens(used);
        }
    }

    /// The request failed in a way that speaks to the deployment's health: after enough in a
    /// row, or a failed probe, the breaker opens. Returns the cool-down's end if it opened.
    pub fn failed(self, policy: BreakerPolicy, now: Instant) -> Option<Instant> {
        let mut breaker = lock(&self.state.breaker);
        breaker.consecutive_failures += 1;
        breaker.probe_in_flight = false;
        if self.probe || breaker.consecutive_failures >= policy.failures {
            breaker.trips += 1;
            let factor = 2u32.saturating_pow(breaker.trips - 1).min(10);
            let until = now + policy.cooldown * factor;
            breaker.open_until = Some(until);
            return Some(until);
        }
        None
    }

    /// The request ended without a verdict on the deployment (the caller went away, or the
    /// request itself was at fault).
    pub fn released(self, tokens_used: Option<u64>) {
        if let Some(used) = tokens_used {
            self.settle_tokens(used);
        }
    }

    /// Counts what the request used; its estimate is let go when the ticket drops.
    fn settle_tokens(&self, used: u64) {
        let mut usage = lock(&self.state.usage);
        usage.tokens.push_back((self.reserved_at, used));
        usage.token_sum += used;
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.state.in_flight.fetch_sub(1, Ordering::Relaxed);
        {
            let mut usage = lock(&self.state.usage);
            usage.reserved = usage.reserved.saturating_sub(self.reserved_tokens);
        }
        if self.probe {
            // Whatever the verdict was, the trial is over.
            lock(&self.state.breaker).probe_in_flight = false;
        }
    }
}

/// Locks a mutex, recovering from a poisoned one: the state is plain counters, consistent at
/// every step, so a panic elsewhere cannot leave it half-written.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: BreakerPolicy = BreakerPolicy {
        failures: 2,
        cooldown: Duration::from_secs(10),
    };

    #[test]
    fn the_breaker_opens_probes_and_closes() {
        let state = Arc::new(DeploymentState::default());
        let t0 = Instant::now();
        assert_eq!(state.admit(t0, 0).failed(POLICY, t0), None);
        let until = state.admit(t0, 0).failed(POLICY, t0).unwrap();
        assert_eq!(until, t0 + Duration::from_secs(10));
        assert_eq!(
            state.check(t0, None, None, 0),
            Err(Unavailable::CoolingDown(until))
        );

        // After the cool-down one request goes on trial; others wait for it.
        let later = until + Duration::from_millis(1);
        assert_eq!(state.check(later, None, None, 0), Ok(()));
        let probe = state.admit(later, 0);
        assert_eq!(state.health(later), Health::Probing);
        assert_eq!(state.check(later, None, None, 0), Err(Unavailable::Probing));

        // A failed probe opens it again, for twice as long.
        let again = probe.failed(POLICY, later).unwrap();
        assert_eq!(again, later + Duration::from_secs(20));

        // A successful probe closes it for good.
        let after = again + Duration::from_millis(1);
        state
            .admit(after, 0)
            .succeeded(Duration::from_millis(50), None);
        assert_eq!(state.health(after), Health::Healthy);
        assert_eq!(state.consecutive_failures(), 0);
        assert_eq!(state.in_flight(), 0);
    }

    #[test]
    fn cool_downs_stop_doubling_at_ten_times() {
        let state = Arc::new(DeploymentState::default());
        let mut now = Instant::now();
        let mut last = Duration::ZERO;
        for _ in 0..8 {
            let ticket = state.admit(now, 0);
            if let Some(until) = ticket.failed(POLICY, now) {
                last = until - now;
                now = until + Duration::from_millis(1);
            }
        }
        assert_eq!(last, Duration::from_secs(100));
    }

    #[test]
    fn per_minute_limits_count_requests_and_tokens() {
        let state = Arc::new(DeploymentState::default());
        let t0 = Instant::now();
        for _ in 0..3 {
            state.admit(t0, 0).released(Some(0));
        }
        assert_eq!(
            state.check(t0, Some(3), None, 0),
            Err(Unavailable::AtLimit(t0 + WINDOW))
        );
        assert_eq!(state.check(t0 + WINDOW, Some(3), None, 0), Ok(()));

        let tokens = Arc::new(DeploymentState::default());
        let ticket = tokens.admit(t0, 100);
        // The estimate is replaced by what was used.
        ticket.succeeded(Duration::from_millis(10), Some(900));
        assert_eq!(tokens.last_minute(t0), (1, 900));
        assert_eq!(tokens.check(t0, None, Some(1000), 50), Ok(()));
        assert_eq!(
            tokens.check(t0, None, Some(1000), 200),
            Err(Unavailable::AtLimit(t0 + WINDOW))
        );
    }

    #[test]
    fn latency_is_a_moving_average() {
        let state = Arc::new(DeploymentState::default());
        let now = Instant::now();
        state
            .admit(now, 0)
            .succeeded(Duration::from_millis(100), None);
        state
            .admit(now, 0)
            .succeeded(Duration::from_millis(200), None);
        let ttft = state.ttft().unwrap().as_secs_f64();
        assert!((ttft - 0.13).abs() < 1e-9, "{ttft}");
    }
}
