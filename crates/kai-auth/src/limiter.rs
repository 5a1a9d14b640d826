//! Counting failed logins per client address.
//!
//! Per-account lockout lives in the database, shared by every process; this per-address count
//! lives in memory, per process. It stops one address from guessing across many accounts
//! without letting it lock every account by trying each once.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How many addresses are tracked before stale entries are swept out.
const SWEEP_AT: usize = 4096;

/// Failed logins per client address within a sliding window.
#[derive(Debug)]
pub(crate) struct ClientLimiter {
    limit: usize,
    window: Duration,
    failures: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

impl ClientLimiter {
    pub(crate) fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit: usize::try_from(limit).unwrap_or(usize::MAX).max(1),
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Counts an attempt from `addr` as failed before it is made, or `Err(wait)` if the address
    /// has used up its failures and must wait. Checking and counting under one lock is what
    /// keeps a burst of simultaneous attempts within the limit. An attempt that succeeds is
    /// taken back with [`ClientLimiter::forgive`].
    pub(crate) fn try_acquire(&self, addr: IpAddr) -> Result<(), Duration> {
        let now = Instant::now();
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if failures.len() >= SWEEP_AT {
            failures.retain(|_, times| {
                forget_before(times, now, self.window);
                !times.is_empty()
            });
        }
        let times = failures.entry(bucket(addr)).or_default();
        forget_before(times, now, self.window);
        if let Some(oldest) = times.front()
            && times.len() >= self.limit
        {
            return Err(self.window.saturating_sub(now - *oldest));
        }
        times.push_back(now);
        Ok(())
    }

    /// Takes back the newest counted attempt of `addr`: it turned out not to be a failure.
    pub(crate) fn forgive(&self, addr: IpAddr) {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(times) = failures.get_mut(&bucket(addr)) {
            times.pop_back();
            if times.is_empty() {
                failures.remove(&bucket(addr));
            }
        }
    }
}

fn forget_before(times: &mut VecDeque<Instant>, now: Instant, window: Duration) {
    while times
        .front()
        .is_some_and(|t| now.duration_since(*t) >= window)
    {
        times.pop_front();
    }
}

/// The unit an address is counted in. An IPv6 host usually controls a whole /64, so counting
/// single IPv6 addresses would let it rotate through billions of them.
fn bucket(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(segments.into())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_stopped_after_its_limit() {
        let limiter = ClientLimiter::new(3, Duration::from_secs(60));
        let addr: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..3 {
            limiter.try_acquire(addr).unwrap();
        }
        let wait = limiter.try_acquire(addr).unwrap_err();
        assert!(
            wait > Duration::from_secs(55) && wait <= Duration::from_secs(60),
            "{wait:?}"
        );
        assert!(
            limiter.try_acquire("192.0.2.2".parse().unwrap()).is_ok(),
            "other addresses are unaffected"
        );
    }

    #[test]
    fn forgiven_attempts_do_not_count() {
        let limiter = ClientLimiter::new(2, Duration::from_secs(60));
        let addr: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..10 {
            limiter.try_acquire(addr).unwrap();
            limiter.forgive(addr);
        }
        limiter.try_acquire(addr).unwrap();
        limiter.try_acquire(addr).unwrap();
        assert!(limiter.try_acquire(addr).is_err());
    }

    #[test]
    fn failures_age_out() {
        let limiter = ClientLimiter::new(1, Duration::from_millis(30));
        let addr: IpAddr = "192.0.2.1".parse().unwrap();
        limiter.try_acquire(addr).unwrap();
        assert!(limiter.try_acquire(addr).is_err());
        std::thread::sleep(Duration::from_millis(40));
        assert!(limiter.try_acquire(addr).is_ok());
    }

    #[test]
    fn ipv6_is_counted_per_64() {
        let limiter = ClientLimiter::new(1, Duration::from_secs(60));
        limiter
            .try_acquire("2001:db8:1:2::1".parse().unwrap())
            .unwrap();
        assert!(
            limiter
                .try_acquire("2001:db8:1:2:ffff::9".parse().unwrap())
                .is_err()
        );
        assert!(
            limiter
                .try_acquire("2001:db8:1:3::1".parse().unwrap())
                .is_ok()
        );
        limiter
            .try_acquire("::ffff:192.0.2.7".parse().unwrap())
            .unwrap();
        assert!(
            limiter.try_acquire("192.0.2.7".parse().unwrap()).is_err(),
            "mapped IPv4 is IPv4"
        );
    }
}
