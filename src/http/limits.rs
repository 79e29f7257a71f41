//! Abuse limits on the poll routes: a token bucket per client address, and a cap on the
//! long-polls open at once.
//!
//! The bucket is `governor`'s keyed GCRA, keyed by the TCP peer's address (IPv6 by its /64,
//! which one host usually owns whole), so one client cannot take the API from the others. Its
//! memory follows the clients seen recently: [`PollLimiter::sweep`] forgets every address whose
//! bucket is full again. Behind a reverse proxy every client has the proxy's address; limit
//! there, or raise the limit here. A long-poll holds a slot for up to 30 s, so their number is
//! capped over all clients; a poll that would exceed the cap is answered 429 at once rather
//! than queued (the client comes back after `Retry-After`). Both answer 429 with `Retry-After`
//! and the API's JSON error.

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::http::StatusCode;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use tokio_util::sync::CancellationToken;

use super::ApiError;
use crate::core::live::Live;
use crate::ops::config::LimitsConfig;

/// How often addresses with a full bucket are forgotten.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// What a client over the long-poll cap is told to wait.
const LONG_POLL_RETRY_SECS: u64 = 1;

type Keyed<C> =
    RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// The per-address bucket for the poll routes, as configured; None when switched off.
pub struct PollLimiter<C: Clock = DefaultClock> {
    /// `(poll_per_minute, poll_burst)` it was built from, so a reload rebuilds it only when
    /// they change (a rebuild forgets every bucket).
    pub quota: (u32, u32),
    limiter: Option<Keyed<C>>,
}

impl PollLimiter {
    pub fn new(limits: &LimitsConfig) -> Self {
        Self::with_clock(limits, DefaultClock::default())
    }
}

impl<C: Clock> PollLimiter<C> {
    pub fn with_clock(limits: &LimitsConfig, clock: C) -> Self {
        let quota = (limits.poll_per_minute, limits.poll_burst);
        let limiter = NonZeroU32::new(limits.poll_per_minute).map(|rate| {
            let burst = NonZeroU32::new(limits.poll_burst).unwrap_or(rate);
            let quota = Quota::per_minute(rate).allow_burst(burst);
            RateLimiter::new(quota, DefaultKeyedStateStore::default(), clock)
        });
        PollLimiter { quota, limiter }
    }

    /// Ok, or how long `peer` must wait before its next poll is taken.
    pub fn check(&self, peer: IpAddr) -> Result<(), Duration> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        limiter
            .check_key(&client_key(peer))
            .map_err(|not_until| not_until.wait_time_from(limiter.clock().now()))
    }

    /// Forgets addresses whose bucket is full again.
    pub fn sweep(&self) {
        if let Some(limiter) = &self.limiter {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    /// How many client addresses it tracks.
    pub fn clients(&self) -> usize {
        self.limiter.as_ref().map_or(0, |limiter| limiter.len())
    }
}

/// IPv6 hosts get a /64 each, so the bucket is per /64; IPv4 per address.
fn client_key(peer: IpAddr) -> IpAddr {
    match peer {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(bits))
            }
        },
    }
}

/// The long-polls open now, against a reloadable cap.
#[derive(Clone)]
pub struct LongPolls {
    open: Arc<AtomicUsize>,
    limits: Live<LimitsConfig>,
}

/// A long-poll's place under the cap, given back when dropped.
pub struct LongPollSlot(Arc<AtomicUsize>);

impl Drop for LongPollSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl LongPolls {
    pub fn new(limits: Live<LimitsConfig>) -> Self {
        LongPolls {
            open: Arc::new(AtomicUsize::new(0)),
            limits,
        }
    }

    /// A slot for one long-poll, or the 429 to answer when all are taken.
    pub fn enter(&self) -> Result<LongPollSlot, ApiError> {
        let cap = self.limits.load().max_long_polls;
        let open = self.open.fetch_add(1, Ordering::AcqRel) + 1;
        let slot = LongPollSlot(self.open.clone());
        if cap > 0 && open > cap {
            drop(slot);
            metrics::counter!("moauth_limit_hits_total", "limit" => "long_polls").increment(1);
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_long_polls",
                format!("{cap} long-polls are open; poll again shortly or with wait_ms 0"),
            )
            .retry_after(LONG_POLL_RETRY_SECS));
        }
        Ok(slot)
    }

    /// How many are open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }
}

/// Takes one poll from `peer`'s bucket, or the 429 to answer. The token lookup asks only once
/// the API key is good, so a caller without one hears 401, never 429.
pub fn admit(limiter: &Live<PollLimiter>, peer: IpAddr) -> Result<(), ApiError> {
    let Err(wait) = limiter.load().check(peer) else {
        return Ok(());
    };
    metrics::counter!("moauth_limit_hits_total", "limit" => "poll_rate").increment(1);
    // Retry-After is in whole seconds: round up, so the retry is not refused again.
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    Err(ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        "too many polls from this address; retry after the time in Retry-After",
    )
    .retry_after(secs.max(1)))
}

/// Forgets idle clients every minute, so memory follows the clients seen recently.
pub async fn sweep(limiter: Live<PollLimiter>, stop: CancellationToken) {
    let mut every = tokio::time::interval(SWEEP_EVERY);
    loop {
        tokio::select! {
            _ = every.tick() => limiter.load().sweep(),
            _ = stop.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock as FakeClock;

    fn limits(per_minute: u32, burst: u32) -> LimitsConfig {
        LimitsConfig {
            poll_per_minute: per_minute,
            poll_burst: burst,
            ..LimitsConfig::default()
        }
    }

    #[test]
    fn a_client_gets_its_burst_then_waits_for_the_refill() {
        let clock = FakeClock::default();
        let limiter = PollLimiter::with_clock(&limits(60, 3), clock.clone());
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        for _ in 0..3 {
            assert_eq!(limiter.check(a), Ok(()));
        }
        let wait = limiter.check(a).unwrap_err();
        assert!(
            wait <= Duration::from_secs(1) && wait > Duration::ZERO,
            "{wait:?}"
        );
        assert_eq!(limiter.check(b), Ok(()), "buckets are per client");
        clock.advance(Duration::from_secs(1));
        assert_eq!(limiter.check(a), Ok(()));
        assert!(limiter.check(a).is_err());
    }

    #[test]
    fn ipv6_clients_share_a_bucket_per_64() {
        let limiter = PollLimiter::with_clock(&limits(60, 1), FakeClock::default());
        assert_eq!(limiter.check("2001:db8::1".parse().unwrap()), Ok(()));
        assert!(limiter.check("2001:db8::ffff:2".parse().unwrap()).is_err());
        assert_eq!(limiter.check("2001:db8:0:1::1".parse().unwrap()), Ok(()));
    }

    #[test]
    fn sweep_forgets_clients_whose_bucket_refilled() {
        let clock = FakeClock::default();
        let limiter = PollLimiter::with_clock(&limits(60, 2), clock.clone());
        for i in 0..10u8 {
            limiter.check(IpAddr::from([192, 0, 2, i])).unwrap();
        }
        limiter.sweep();
        assert_eq!(limiter.clients(), 10);
        clock.advance(Duration::from_secs(2));
        limiter.sweep();
        assert_eq!(limiter.clients(), 0);
    }

    #[test]
    fn zero_per_minute_switches_the_limit_off() {
        let limiter = PollLimiter::with_clock(&limits(0, 0), FakeClock::default());
        for _ in 0..1000 {
            assert_eq!(limiter.check("192.0.2.1".parse().unwrap()), Ok(()));
        }
    }

    #[test]
    fn long_polls_over_the_cap_are_refused_until_one_ends() {
        let cap = Live::new(arc_swap::ArcSwap::from_pointee(LimitsConfig {
            max_long_polls: 2,
            ..LimitsConfig::default()
        }));
        let polls = LongPolls::new(cap);
        let first = polls.enter().unwrap();
        let _second = polls.enter().unwrap();
        assert!(polls.enter().is_err());
        assert_eq!(polls.open(), 2, "a refused poll holds no slot");
        drop(first);
        let _third = polls.enter().unwrap();
        assert_eq!(polls.open(), 2);
    }
}
