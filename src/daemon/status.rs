//! What an operator wants at a glance: binds, queue depths and recent rates.
//!
//! One [`StatusReport`] feeds three readers: `GET /status` on the HTTP API (for
//! `moauth status` and monitoring), the systemd `STATUS=` line (`systemctl status`), and the
//! watchdog's log lines. Rates come from a counter the pipeline bumps and samples taken
//! every few seconds, so answering costs no store scan.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::stranded::StrandedReplies;
use crate::core::health::LinkStates;
use crate::core::store::StoreBase;

/// How often the rate sampler looks at the counter, and how far back it remembers.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(5);
const KEEP: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StatusReport {
    pub smsc: Vec<LinkStatus>,
    /// MOs stored and acknowledged but not yet processed.
    pub inbox: usize,
    /// Replies waiting for an SMSC to accept them.
    pub outbox: usize,
    /// New accounts waiting for their password to be made and texted. Absent from the
    /// answer of a daemon older than the field: read as 0.
    #[serde(default)]
    pub passwords_pending: usize,
    /// MOs processed since start, and per minute over the last 1 and 5 minutes.
    pub processed: u64,
    pub mo_per_min_1m: f64,
    pub mo_per_min_5m: f64,
    pub uptime_secs: u64,
    /// Replies queued for an `[[smsc]]` that no longer exists, by that name: none is sent.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub stranded: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LinkStatus {
    pub name: String,
    pub bound: bool,
    /// Why its connection last failed, while it has not bound again (for a pair, the first
    /// half's that has one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

impl StatusReport {
    /// The one-line form systemd shows under `systemctl status moauth`.
    pub fn line(&self) -> String {
        let bound = self.smsc.iter().filter(|l| l.bound).count();
        format!(
            "bound {bound}/{} SMSC; inbox {}, outbox {}; {:.1} MO/min",
            self.smsc.len(),
            self.inbox,
            self.outbox,
            self.mo_per_min_1m
        )
    }

    /// The multi-line form `moauth status` prints.
    pub fn table(&self) -> String {
        let mut out = String::new();
        for link in &self.smsc {
            let state = if link.bound { "bound" } else { "NOT BOUND" };
            out.push_str(&format!("smsc {:<16} {state}", link.name));
            if let Some(error) = &link.last_error {
                out.push_str(&format!(": {error}"));
            }
            out.push('\n');
        }
        out.push_str(&format!(
            "inbox    {:>8}  acknowledged MOs not yet processed\n",
            self.inbox
        ));
        out.push_str(&format!(
            "outbox   {:>8}  replies waiting for the SMSC\n",
            self.outbox
        ));
        out.push_str(&format!(
            "pending  {:>8}  new accounts waiting for their password\n",
            self.passwords_pending
        ));
        out.push_str(&format!(
            "MO/min   {:>8.1}  last minute ({:.1} over 5 minutes, {} since start)\n",
            self.mo_per_min_1m, self.mo_per_min_5m, self.processed
        ));
        out.push_str(&format!("uptime   {:>7}s\n", self.uptime_secs));
        for (smsc, count) in &self.stranded {
            out.push_str(&format!(
                "STRANDED {count:>8}  replies for [[smsc]] {smsc:?}, which no longer exists: {}\n",
                super::stranded::remedy(smsc)
            ));
        }
        out
    }
}

/// Everything a report is made from; cheap to clone into the HTTP router.
#[derive(Clone)]
pub struct StatusSource {
    pub store: Arc<dyn StoreBase>,
    pub links: LinkStates,
    pub smsc_names: Arc<Vec<String>>,
    pub rates: Rates,
    pub started: Instant,
    pub stranded: StrandedReplies,
}

impl StatusSource {
    pub fn report(&self) -> StatusReport {
        let bound = self.links.bound();
        let errors = self.links.last_errors();
        let (mo_per_min_1m, mo_per_min_5m) = self.rates.per_minute();
        let depths = self.store.depths();
        StatusReport {
            smsc: self
                .smsc_names
                .iter()
                .map(|name| LinkStatus {
                    name: name.clone(),
                    bound: bound.contains(name),
                    last_error: errors
                        .iter()
                        .find(|(label, _)| {
                            *label == name
                                || label
                                    .strip_prefix(name.as_str())
                                    .is_some_and(|half| half.starts_with('/'))
                        })
                        .map(|(_, error)| error.clone()),
                })
                .collect(),
            inbox: depths.inbox,
            outbox: depths.outbox,
            passwords_pending: depths.passwords_pending,
            processed: self.rates.total(),
            mo_per_min_1m,
            mo_per_min_5m,
            uptime_secs: self.started.elapsed().as_secs(),
            stranded: self.stranded.get(),
        }
    }
}

pub fn router(source: StatusSource) -> Router {
    Router::new()
        .route("/status", get(status))
        .with_state(source)
}

async fn status(State(source): State<StatusSource>) -> Json<StatusReport> {
    Json(source.report())
}

/// A running count and its recent samples.
#[derive(Clone, Default)]
pub struct Rates {
    /// Bumped by the pipeline for every MO it finished.
    pub counter: Arc<AtomicU64>,
    samples: Arc<Mutex<VecDeque<(Instant, u64)>>>,
}

impl Rates {
    pub fn total(&self) -> u64 {
        self.counter.load(Ordering::Relaxed)
    }

    /// Records the counter now; called every [`SAMPLE_EVERY`].
    pub fn sample(&self, now: Instant) {
        let mut samples = self.samples.lock().expect("rates lock");
        samples.push_back((now, self.total()));
        while samples
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > KEEP)
        {
            samples.pop_front();
        }
    }

    /// Per-minute rates over the last minute and the last five (or as much as is known).
    pub fn per_minute(&self) -> (f64, f64) {
        let samples = self.samples.lock().expect("rates lock");
        let Some(&(last_at, last)) = samples.back() else {
            return (0.0, 0.0);
        };
        let over = |window: Duration| {
            let (at, count) = samples
                .iter()
                .find(|(t, _)| last_at.duration_since(*t) <= window)
                .copied()
                .unwrap_or((last_at, last));
            let secs = last_at.duration_since(at).as_secs_f64();
            if secs == 0.0 {
                0.0
            } else {
                (last - count) as f64 * 60.0 / secs
            }
        };
        (over(Duration::from_secs(60)), over(KEEP))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_per_minute_over_their_window() {
        let rates = Rates::default();
        let start = Instant::now();
        for step in 0..=60u64 {
            rates.counter.store(step * 2, Ordering::Relaxed);
            rates.sample(start + Duration::from_secs(step * 5));
        }
        // 2 MOs every 5 s is 24 per minute, whichever window.
        let (one, five) = rates.per_minute();
        assert!((one - 24.0).abs() < 1e-9, "{one}");
        assert!((five - 24.0).abs() < 1e-9, "{five}");
    }

    #[test]
    fn status_line_says_binds_depths_and_rate() {
        let report = StatusReport {
            smsc: vec![
                LinkStatus {
                    name: "main".into(),
                    bound: true,
                    last_error: None,
                },
                LinkStatus {
                    name: "backup".into(),
                    bound: false,
                    last_error: Some("bind refused by 127.0.0.1:2776: ESME_RINVPASWD (0x0000000E, invalid password) (attempt 2)".into()),
                },
            ],
            inbox: 3,
            outbox: 1,
            passwords_pending: 2,
            processed: 10,
            mo_per_min_1m: 4.0,
            mo_per_min_5m: 2.0,
            uptime_secs: 60,
            stranded: BTreeMap::from([("old".to_owned(), 2)]),
        };
        assert_eq!(
            report.line(),
            "bound 1/2 SMSC; inbox 3, outbox 1; 4.0 MO/min"
        );
        assert!(
            report
                .table()
                .contains("pending         2  new accounts waiting for their password")
        );
        assert!(report.table().contains(
            "backup           NOT BOUND: bind refused by 127.0.0.1:2776: ESME_RINVPASWD"
        ));
        assert!(report.table().contains(
            "STRANDED        2  replies for [[smsc]] \"old\", which no longer exists: stop moauth, then `moauth outbox reroute --from old"
        ));
    }
}
