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

/// Failed logins per client address within a sliding window, and the checks in flight.
#[derive(Debug)]
pub(crate) struct ClientLimiter {
    limit: usize,
    window: Duration,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

/// One address's failures and checks in flight.
#[derive(Debug, Default)]
struct Bucket {
    failures: VecDeque<Instant>,
    in_flight: usize,
}

/// Whether an address may have a password checked now.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Yes; end the check with [`ClientLimiter::finish`].
    Allowed,
    /// The address has used up its failures and must wait this long.
    Throttled(Duration),
    /// Its failures and checks in flight together reach the limit: wait for a check to end.
    Busy,
}

impl ClientLimiter {
    pub(crate) fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit: usize::try_from(limit).unwrap_or(usize::MAX).max(1),
            window,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Starts a password check for `addr`, unless its failures fill the limit or, with the
    /// checks already in flight, would. Checking and counting under one lock is what keeps a
    /// burst of simultaneous attempts within the limit; counting checks apart from failures
    /// is what keeps simultaneous right passwords from being turned away.
    pub(crate) fn try_acquire(&self, addr: IpAddr) -> Admission {
        let now = Instant::now();
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() >= SWEEP_AT {
            buckets.retain(|_, bucket| {
                forget_before(&mut bucket.failures, now, self.window);
                !bucket.failures.is_empty() || bucket.in_flight > 0
            });
        }
        let bucket = buckets.entry(bucket(addr)).or_default();
        forget_before(&mut bucket.failures, now, self.window);
        if let Some(oldest) = bucket.failures.front()
            && bucket.failures.len() >= self.limit
        {
            return Admission::Throttled(self.window.saturating_sub(now - *oldest));
        }
        if bucket.failures.len() + bucket.in_flight >= self.limit {
            return Admission::Busy;
        }
        bucket.in_flight += 1;
        Admission::Allowed
    }

    /// Ends a check [`ClientLimiter::try_acquire`] allowed; a `failed` one counts against the
    /// address for the window.
    pub(crate) fn finish(&self, addr: IpAddr, failed: bool) {
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = bucket(addr);
        let Some(bucket) = buckets.get_mut(&key) else {
            return;
        };
        bucket.in_flight = bucket.in_flight.saturating_sub(1);
        if failed {
            bucket.failures.push_back(Instant::now());
        } else if bucket.failures.is_empty() && bucket.in_flight == 0 {
            buckets.remove(&key);
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

    fn fail(limiter: &ClientLimiter, addr: IpAddr) {
        assert_eq!(limiter.try_acquire(addr), Admission::Allowed);
        limiter.finish(addr, true);
    }

    #[test]
    fn an_address_is_stopped_after_its_limit() {
        let limiter = ClientLimiter::new(3, Duration::from_secs(60));
        let addr: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..3 {
            fail(&limiter, addr);
        }
        let Admission::Throttled(wait) = limiter.try_acquire(addr) else {
            panic!("not throttled");
        };
        assert!(
            wait > Duration::from_secs(55) && wait <= Duration::from_secs(60),
            "{wait:?}"
        );
        assert_eq!(
            limiter.try_acquire("192.0.2.2".parse().unwrap()),
            Admission::Allowed,
            "other addresses are unaffected"
        );
    }

    #[test]
    fn checks_in_flight_make_others_wait_but_right_passwords_do_not_count() {
        let limiter = ClientLimiter::new(2, Duration::from_secs(60));
        let addr: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..10 {
            assert_eq!(limiter.try_acquire(addr), Admission::Allowed);
            limiter.finish(addr, false);
        }
        assert_eq!(limiter.try_acquire(addr), Admission::Allowed);
        assert_eq!(limiter.try_acquire(addr), Admission::Allowed);
        assert_eq!(limiter.try_acquire(addr), Admission::Busy);
        limiter.finish(addr, false);
        assert_eq!(limiter.try_acquire(addr), Admission::Allowed);
        limiter.finish(addr, true);
        limiter.finish(addr, true);
        assert!(matches!(limiter.try_acquire(addr), Admission::Throttled(_)));
    }

    #[test]
    fn failures_age_out() {
        let limiter = ClientLimiter::new(1, Duration::from_millis(30));
        let addr: IpAddr = "192.0.2.1".parse().unwrap();
        fail(&limiter, addr);
        assert!(matches!(limiter.try_acquire(addr), Admission::Throttled(_)));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(limiter.try_acquire(addr), Admission::Allowed);
    }

    #[test]
    fn ipv6_is_counted_per_64() {
        let limiter = ClientLimiter::new(1, Duration::from_secs(60));
        fail(&limiter, "2001:db8:1:2::1".parse().unwrap());
        assert!(matches!(
            limiter.try_acquire("2001:db8:1:2:ffff::9".parse().unwrap()),
            Admission::Throttled(_)
        ));
        assert_eq!(
            limiter.try_acquire("2001:db8:1:3::1".parse().unwrap()),
            Admission::Allowed
        );
        fail(&limiter, "::ffff:192.0.2.7".parse().unwrap());
        assert!(
            matches!(
                limiter.try_acquire("192.0.2.7".parse().unwrap()),
                Admission::Throttled(_)
            ),
            "mapped IPv4 is IPv4"
        );
    }
}
