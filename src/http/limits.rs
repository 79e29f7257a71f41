//! Abuse limits on the API: a token bucket per client address on the poll routes, a cap on
//! the long-polls open at once (over all clients and per client), and a token bucket per API
//! key on `POST /v1/logins`.
//!
//! The buckets are `governor`'s keyed GCRA. The poll bucket is keyed by the client's address
//! (`http::client`: the TCP peer, or the client a trusted proxy names; IPv6 by its /64, which
//! one host usually owns whole), so one client cannot take the API from the others. Its
//! memory follows the clients seen recently: [`PollLimiter::sweep`] forgets every address whose
//! bucket is full again. A long-poll holds a slot for up to 30 s, so their number is capped
//! over all clients, and each client address gets at most a share of that cap, so a handful
//! of addresses cannot hold every slot; a poll that would exceed either is answered 429 at
//! once rather than queued (the client comes back after `Retry-After`). A mint costs a write
//! and a flush, so each key has its own bucket. All answer 429 with `Retry-After` and the
//! API's JSON error.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use tokio_util::sync::CancellationToken;

use super::ApiError;
use crate::core::limits::LimitsConfig;
use crate::core::live::Live;

/// How often addresses with a full bucket are forgotten.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// What a client over the long-poll cap is told to wait.
const LONG_POLL_RETRY_SECS: u64 = 1;

type Keyed<K, C> =
    RateLimiter<K, DefaultKeyedStateStore<K>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// A keyed bucket of `per_minute` holding `burst`, as configured; None when switched off.
/// The poll routes' ([`PollLimiter`], per client address) and the mints' ([`MintLimiter`],
/// per API key) are both one.
pub struct KeyedLimiter<K: Clone + Eq + Hash, C: Clock = DefaultClock> {
    /// `(per_minute, burst)` it was built from, so a reload rebuilds it only when they
    /// change (a rebuild forgets every bucket).
    pub quota: (u32, u32),
    limiter: Option<Keyed<K, C>>,
}

/// The per-address bucket for the poll routes.
pub type PollLimiter<C = DefaultClock> = KeyedLimiter<IpAddr, C>;
/// The per-key bucket on `POST /v1/logins`.
pub type MintLimiter = KeyedLimiter<String>;

impl<K: Clone + Eq + Hash, C: Clock> KeyedLimiter<K, C> {
    fn build((per_minute, burst): (u32, u32), clock: C) -> Self {
        let limiter = NonZeroU32::new(per_minute).map(|rate| {
            let burst = NonZeroU32::new(burst).unwrap_or(rate);
            let quota = Quota::per_minute(rate).allow_burst(burst);
            RateLimiter::new(quota, DefaultKeyedStateStore::default(), clock)
        });
        KeyedLimiter {
            quota: (per_minute, burst),
            limiter,
        }
    }

    /// Ok, or how long `key` must wait before its next event is taken.
    fn take(&self, key: &K) -> Result<(), Duration> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        limiter
            .check_key(key)
            .map_err(|not_until| not_until.wait_time_from(limiter.clock().now()))
    }

    /// Forgets keys whose bucket is full again.
    pub fn sweep(&self) {
        if let Some(limiter) = &self.limiter {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    /// How many keys (client addresses, API keys) it tracks.
    pub fn clients(&self) -> usize {
        self.limiter.as_ref().map_or(0, |limiter| limiter.len())
    }
}

impl PollLimiter {
    pub fn new(limits: &LimitsConfig) -> Self {
        Self::with_clock(limits, DefaultClock::default())
    }
}

impl<C: Clock> PollLimiter<C> {
    pub fn with_clock(limits: &LimitsConfig, clock: C) -> Self {
        Self::build((limits.poll_per_minute, limits.poll_burst), clock)
    }

    /// Ok, or how long `peer` must wait before its next poll is taken.
    pub fn check(&self, peer: IpAddr) -> Result<(), Duration> {
        self.take(&client_key(peer))
    }
}

/// IPv6 hosts get a /64 each, so the bucket is per /64; IPv4 per address, however written
/// (an IPv4-mapped IPv6 address is its IPv4 address). The key of every per-client limit:
/// polls, long-polls and password failures.
pub(super) fn client_key(peer: IpAddr) -> IpAddr {
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

/// The long-polls open now, over all clients and per client address, against reloadable caps.
#[derive(Clone)]
pub struct LongPolls {
    open: Arc<AtomicUsize>,
    /// Long-polls open per client key (`client_key`); an entry goes when its last one ends.
    per_client: Arc<Mutex<HashMap<IpAddr, usize>>>,
    limits: Live<LimitsConfig>,
}

/// A long-poll's place under the caps, given back when dropped.
pub struct LongPollSlot {
    polls: LongPolls,
    client: IpAddr,
}

impl Drop for LongPollSlot {
    fn drop(&mut self) {
        self.polls.open.fetch_sub(1, Ordering::AcqRel);
        let mut per_client = self.polls.clients();
        if let Some(open) = per_client.get_mut(&self.client) {
            *open -= 1;
            if *open == 0 {
                per_client.remove(&self.client);
            }
        }
    }
}

impl LongPolls {
    pub fn new(limits: Live<LimitsConfig>) -> Self {
        LongPolls {
            open: Arc::new(AtomicUsize::new(0)),
            per_client: Arc::default(),
            limits,
        }
    }

    /// A slot for one long-poll from `client`, or the 429 to answer when all are taken or
    /// the client holds its share.
    pub fn enter(&self, client: IpAddr) -> Result<LongPollSlot, ApiError> {
        let limits = self.limits.load();
        let (cap, share) = (limits.max_long_polls, limits.max_long_polls_per_client);
        let client = client_key(client);
        let held = {
            let mut per_client = self.clients();
            let held = per_client.entry(client).or_insert(0);
            *held += 1;
            *held
        };
        let open = self.open.fetch_add(1, Ordering::AcqRel) + 1;
        let slot = LongPollSlot {
            polls: self.clone(),
            client,
        };
        let refused = if share > 0 && held > share {
            Some((
                "long_polls_per_client",
                format!("this address holds {share} long-polls"),
            ))
        } else if cap > 0 && open > cap {
            Some(("long_polls", format!("{cap} long-polls are open")))
        } else {
            None
        };
        if let Some((limit, what)) = refused {
            drop(slot);
            metrics::counter!("moauth_limit_hits_total", "limit" => limit).increment(1);
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_long_polls",
                format!("{what}; poll again shortly or with wait_ms 0"),
            )
            .retry_after(LONG_POLL_RETRY_SECS));
        }
        Ok(slot)
    }

    /// How many are open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    fn clients(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.per_client.lock().expect("long-polls per client")
    }
}

impl MintLimiter {
    pub fn new(limits: &LimitsConfig) -> Self {
        Self::build(
            (limits.mint_per_minute, limits.mint_burst),
            DefaultClock::default(),
        )
    }

    /// Takes one mint from `backend`'s bucket, or the 429 to answer.
    pub fn admit(&self, backend: &str) -> Result<(), ApiError> {
        let Err(wait) = self.take(&backend.to_owned()) else {
            return Ok(());
        };
        metrics::counter!("moauth_limit_hits_total", "limit" => "mint_rate").increment(1);
        Err(too_many(
            wait,
            "too many logins minted with this key; retry after the time in Retry-After",
        ))
    }
}

/// A 429 `rate_limited` telling the client to wait `wait`, rounded up to whole seconds (so
/// the retry is not refused again).
fn too_many(wait: Duration, message: &'static str) -> ApiError {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message).retry_after(secs.max(1))
}

/// Takes one poll from `peer`'s bucket, or the 429 to answer. The token lookup asks only once
/// the API key is good, so a caller without one hears 401, never 429.
pub fn admit(limiter: &Live<PollLimiter>, peer: IpAddr) -> Result<(), ApiError> {
    let Err(wait) = limiter.load().check(peer) else {
        return Ok(());
    };
    metrics::counter!("moauth_limit_hits_total", "limit" => "poll_rate").increment(1);
    Err(too_many(
        wait,
        "too many polls from this address; retry after the time in Retry-After",
    ))
}

/// Forgets idle clients and keys every minute, so memory follows those seen recently.
pub async fn sweep(limiter: Live<PollLimiter>, mints: Live<MintLimiter>, stop: CancellationToken) {
    let mut every = tokio::time::interval(SWEEP_EVERY);
    loop {
        tokio::select! {
            _ = every.tick() => {
                limiter.load().sweep();
                mints.load().sweep();
            }
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
        let client = |i: u8| IpAddr::from([192, 0, 2, i]);
        let first = polls.enter(client(1)).unwrap();
        let _second = polls.enter(client(2)).unwrap();
        assert!(polls.enter(client(3)).is_err());
        assert_eq!(polls.open(), 2, "a refused poll holds no slot");
        drop(first);
        let _third = polls.enter(client(3)).unwrap();
        assert_eq!(polls.open(), 2);
    }

    #[test]
    fn a_client_holds_at_most_its_share_of_the_long_polls() {
        let cap = Live::new(arc_swap::ArcSwap::from_pointee(LimitsConfig {
            max_long_polls: 10,
            max_long_polls_per_client: 2,
            ..LimitsConfig::default()
        }));
        let polls = LongPolls::new(cap);
        let v6 = |s: &str| s.parse::<IpAddr>().unwrap();
        let held = [
            polls.enter(v6("2001:db8::1")).unwrap(),
            polls.enter(v6("2001:db8::2")).unwrap(),
        ];
        assert!(polls.enter(v6("2001:db8::ffff")).is_err(), "same /64");
        let _other = polls.enter(v6("2001:db8:0:1::1")).unwrap();
        drop(held);
        assert_eq!(polls.open(), 1);
        assert!(
            polls.clients().len() == 1,
            "an address with none open is forgotten"
        );
        let _again = polls.enter(v6("2001:db8::1")).unwrap();
    }
}
