//! What one node keeps beside the shared database: wake-ups fed by LISTEN/NOTIFY and by its
//! own writes, queue depths refreshed in the background (a gauge must never cost a scan per
//! request), and whether the database answered lately (for `/readyz`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use deadpool_postgres::Pool;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use super::listen::Wake;

/// How often depths and reachability are refreshed.
const REFRESH: Duration = Duration::from_secs(1);

pub(super) struct Signals {
    pub mos_arrived: Notify,
    pub replies_queued: watch::Sender<u64>,
    pub events_queued: watch::Sender<u64>,
    /// Replies left the outbox (on this node); drains re-read the depth.
    pub replies_removed: Notify,
    pub inbox: AtomicUsize,
    pub parts: AtomicUsize,
    pub outbox: AtomicUsize,
    pub webhooks: AtomicUsize,
    /// Accounts marked "password pending", over every node: no write adjusts it, each
    /// refresh sets it (at most a second old, like the others for other nodes' writes).
    pub passwords_pending: AtomicUsize,
    /// The last depth refresh reached the database.
    pub reachable: AtomicBool,
    /// This node's writes in progress, and a count of those begun or ended: a refresh whose
    /// query overlapped one of them would overwrite its adjustment with a stale count.
    writes: AtomicUsize,
    generation: AtomicU64,
}

/// A write in progress (see [`Signals::writing`]).
pub(super) struct Writing<'a>(&'a Signals);

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        self.0.generation.fetch_add(1, Ordering::SeqCst);
        self.0.writes.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Default for Signals {
    fn default() -> Self {
        Signals {
            mos_arrived: Notify::new(),
            replies_queued: watch::channel(0).0,
            events_queued: watch::channel(0).0,
            replies_removed: Notify::new(),
            inbox: AtomicUsize::new(0),
            parts: AtomicUsize::new(0),
            outbox: AtomicUsize::new(0),
            webhooks: AtomicUsize::new(0),
            passwords_pending: AtomicUsize::new(0),
            reachable: AtomicBool::new(true),
            writes: AtomicUsize::new(0),
            generation: AtomicU64::new(0),
        }
    }
}

fn bump(sender: &watch::Sender<u64>) {
    sender.send_modify(|n| *n = n.wrapping_add(1));
}

/// Moves a gauge by `delta`, never below zero.
pub(super) fn adjust(gauge: &AtomicUsize, delta: i64) {
    let _ = gauge.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
        Some(if delta < 0 {
            n.saturating_sub(delta.unsigned_abs() as usize)
        } else {
            n.saturating_add(delta as usize)
        })
    });
}

impl Signals {
    /// Marks a write of this node as in progress until the guard drops; the write adjusts
    /// the gauges itself with what its statement reported, and no refresh overlapping it
    /// stores its counts.
    pub fn writing(&self) -> Writing<'_> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.generation.fetch_add(1, Ordering::SeqCst);
        Writing(self)
    }

    /// Turns a notification (or this node's own write) into local wake-ups; logins go to
    /// `login`, which wakes the polls waiting on them (all of them for `None`).
    pub fn wake(&self, wake: &Wake, login: impl Fn(Option<&crate::core::token::Challenge>)) {
        match wake {
            Wake::Login(challenge) => login(Some(challenge)),
            Wake::Inbox => self.mos_arrived.notify_one(),
            Wake::Outbox(_) => bump(&self.replies_queued),
            Wake::Webhooks => bump(&self.events_queued),
            Wake::Gap => {
                login(None);
                self.mos_arrived.notify_one();
                bump(&self.replies_queued);
                bump(&self.events_queued);
            }
        }
    }

    /// Reads the queue depths once; marks the database unreachable if that fails.
    ///
    /// It also looks for claims whose lease lapsed (their node died or stalled) and wakes this
    /// node's workers for them: no new MO or reply need arrive for an idle node to take over
    /// a dead node's work, and no NOTIFY announces a lease running out.
    pub async fn refresh(&self, pool: &Pool) {
        let before = self.generation.load(Ordering::SeqCst);
        let quiet = |s: &Signals| {
            s.writes.load(Ordering::SeqCst) == 0 && s.generation.load(Ordering::SeqCst) == before
        };
        let started_quiet = quiet(self);
        let counted = async {
            let client = pool.get().await?;
            let row = client
                .query_one(
                    "SELECT (SELECT count(*) FROM inbox), (SELECT count(*) FROM parts),
                            (SELECT count(*) FROM outbox), (SELECT count(*) FROM webhooks),
                            EXISTS (SELECT 1 FROM inbox WHERE lease_until < now()),
                            EXISTS (SELECT 1 FROM outbox WHERE lease_until < now()),
                            EXISTS (SELECT 1 FROM webhooks WHERE lease_until < now()),
                            (SELECT count(*) FROM password_pending)",
                    &[],
                )
                .await?;
            let lapsed: [bool; 3] = [row.get(4), row.get(5), row.get(6)];
            Ok::<_, super::PostgresError>((
                [row.get(0), row.get(1), row.get(2), row.get(3)],
                lapsed,
                row.get::<_, i64>(7),
            ))
        };
        match counted.await {
            Ok((counts, [inbox, outbox, webhooks], pending)) => {
                let pending = usize::try_from(pending).unwrap_or(0);
                self.passwords_pending.store(pending, Ordering::Relaxed);
                if inbox {
                    self.mos_arrived.notify_one();
                }
                if outbox {
                    bump(&self.replies_queued);
                }
                if webhooks {
                    bump(&self.events_queued);
                }
                let counts: [i64; 4] = counts;
                if !(started_quiet && quiet(self)) {
                    // This node wrote meanwhile and adjusted the gauges itself.
                    self.reachable.store(true, Ordering::Relaxed);
                    return;
                }
                for (gauge, n) in [&self.inbox, &self.parts, &self.outbox, &self.webhooks]
                    .into_iter()
                    .zip(counts)
                {
                    gauge.store(usize::try_from(n).unwrap_or(0), Ordering::Relaxed);
                }
                self.reachable.store(true, Ordering::Relaxed);
            }
            Err(e) => {
                if self.reachable.swap(false, Ordering::Relaxed) {
                    tracing::warn!("postgres: unreachable: {e}");
                }
            }
        }
    }
}

/// Refreshes `signals` every second until `stop`.
pub(super) fn spawn_refresh(pool: Pool, signals: Arc<Signals>, stop: CancellationToken) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(REFRESH);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => signals.refresh(&pool).await,
            }
        }
    });
}
