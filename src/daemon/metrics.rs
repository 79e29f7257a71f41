//! `GET /metrics`: every counter, gauge and histogram in the Prometheus text format.
//!
//! Code everywhere emits through the `metrics` facade (`metrics::counter!` and friends), which
//! is a no-op until a recorder is installed. The recorder is process-global, so [`install`]
//! puts the Prometheus one in place once, when the first daemon starts, and every daemon in
//! the process renders the same registry (tests that assert exact values therefore run the
//! binary). What is a state rather than an event (queue depths, bind state) is read when
//! scraped, so it is never stale. The metric names are listed in the README's operator section.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::core::budget::{BudgetHealth, BudgetState};
use crate::core::clock::Clock;
use crate::core::health::LinkStates;
use crate::core::live::Live;
use crate::core::store::StoreBase;
use crate::http::limits::{LongPolls, PollLimiter};
use crate::ops::config::{AuthMode, Config};

/// The exposition format's content type (version 0.0.4 of the text format).
pub const CONTENT_TYPE_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Histogram buckets, in seconds: MO → session is measured to the millisecond (a login on
/// loopback takes a few ms; a remote auth core or a queue adds up to seconds; an auth core
/// outage, minutes), polls range from a millisecond to a 30 s long-poll.
const MO_TO_SESSION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0,
];
const POLL_BUCKETS: &[f64] = &[0.005, 0.025, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0];
/// Histogram samples wait in memory until the next upkeep folds them into buckets.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder if no daemon in this process has yet; its handle.
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("moauth_mo_to_session_seconds".into()),
                MO_TO_SESSION_BUCKETS,
            )
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full("moauth_poll_duration_seconds".into()),
                    POLL_BUCKETS,
                )
            })
            .expect("bucket lists are not empty");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if let Err(e) = metrics::set_global_recorder(recorder) {
            // A program embedding moauth brought its own recorder: ours stays empty.
            warn!(error = %e, "another metrics recorder is installed; /metrics will be empty");
        }
        describe();
        handle
    })
}

fn describe() {
    describe_counter!(
        "moauth_mo_received_total",
        "MOs stored in the inbox and acknowledged (redeliveries not counted)"
    );
    describe_counter!(
        "moauth_mo_redelivered_total",
        "MOs an SMSC delivered again, acknowledged without processing them twice"
    );
    describe_counter!(
        "moauth_mo_rejected_total",
        "MOs that led to no login, by reason"
    );
    describe_counter!(
        "moauth_logins_completed_total",
        "Logins the auth core completed"
    );
    describe_counter!(
        "moauth_accounts_created_total",
        "Accounts created by a login SMS"
    );
    describe_counter!(
        "moauth_sms_sent_total",
        "submit_sm accepted by the SMSC (one per SMS segment), by connection"
    );
    describe_counter!(
        "moauth_sms_failed_total",
        "Replies dropped: refused for good, retries exhausted or not encodable"
    );
    describe_counter!(
        "moauth_sms_throttled_total",
        "submit_sm answered ESME_RTHROTTLED or ESME_RMSGQFUL"
    );
    describe_counter!(
        "moauth_sms_unanswered_total",
        "submit_sm copies with no answer within response_timeout_secs (fate unknown)"
    );
    describe_counter!(
        "moauth_sms_resent_total",
        "Copies sent again because earlier copies went unanswered"
    );
    describe_counter!(
        "moauth_sms_unknown_total",
        "Replies given up after every copy went unanswered: the SMSC may have them"
    );
    describe_counter!(
        "moauth_dlr_total",
        "Delivery receipts by final state (unmatched: for no message we know)"
    );
    describe_gauge!(
        "moauth_smsc_bound",
        "1 while the SMSC connection is bound, else 0"
    );
    describe_counter!(
        "moauth_smsc_bind_failures_total",
        "Binds the SMSC refused, by SMPP status (ESME_RINVPASWD: wrong password)"
    );
    describe_gauge!(
        "moauth_outbox_stranded",
        "Replies queued for an [[smsc]] that no longer exists: no connection sends them"
    );
    describe_gauge!("moauth_inbox_depth", "MOs acknowledged, not yet processed");
    describe_gauge!(
        "moauth_outbox_depth",
        "Replies the SMSC has not accepted yet"
    );
    describe_gauge!(
        "moauth_passwords_pending",
        "New accounts waiting for their password to be made and texted (SMS budget spent, or hashing behind)"
    );
    describe_histogram!(
        "moauth_mo_to_session_seconds",
        Unit::Seconds,
        "From an MO's arrival to its login's commit, to the millisecond"
    );
    describe_histogram!(
        "moauth_poll_duration_seconds",
        Unit::Seconds,
        "Time to answer a poll, long-poll wait included, by answered state"
    );
    describe_counter!(
        "moauth_limit_hits_total",
        "Requests, MOs and replies an abuse limit refused, by limit"
    );
    describe_counter!(
        "moauth_sms_commands_total",
        "SMS commands received, by command: help, stop, start, password, logout"
    );
    describe_counter!(
        "moauth_sms_suppressed_total",
        "Replies not sent because the number opted out (STOP), by reason"
    );
    describe_counter!(
        "moauth_password_logins_total",
        "Password logins (POST /v1/password-logins), by result: ok, invalid, limited"
    );
    describe_gauge!(
        "moauth_sms_budget_exhausted",
        "1 while the global SMS budget holds this class of SMS back (replies: all but credentials)"
    );
    describe_gauge!("moauth_long_polls_active", "Long-polls open now");
    describe_gauge!(
        "moauth_poll_waiters",
        "Logins that open long-polls wait on (entries of the in-process notifier)"
    );
    describe_gauge!(
        "moauth_poll_rate_clients",
        "Client addresses the poll rate limiter tracks"
    );
    describe_gauge!(
        "moauth_auth_core_up",
        "1 while requests go to the auth core, 0 while its breaker holds them back"
    );
    describe_counter!(
        "moauth_auth_core_requests_total",
        "Remote auth core requests by outcome"
    );
    describe_gauge!(
        "moauth_webhook_queue_depth",
        "Webhook events waiting for their receiver's 2xx"
    );
    describe_counter!(
        "moauth_webhook_calls_total",
        "Webhook calls by outcome (a failed call is retried)"
    );
    // Present from the start, so a dashboard shows 0 rather than no data.
    for name in [
        "moauth_mo_received_total",
        "moauth_mo_redelivered_total",
        "moauth_logins_completed_total",
        "moauth_accounts_created_total",
    ] {
        metrics::counter!(name).increment(0);
    }
}

/// Reasons of `moauth_mo_rejected_total`, as the pipeline counts them.
pub const REJECT_REASONS: &[&str] = &[
    "bad_token",
    "expired",
    "replayed",
    "rate_limited",
    "blocked_number",
    "auth_core_refused",
    "auth_core_unavailable",
    "malformed",
];
/// Limits of `moauth_limit_hits_total`: the HTTP ones and the pipeline's.
pub const LIMITS: &[&str] = &[
    "poll_rate",
    "long_polls",
    "long_polls_per_client",
    "mint_rate",
    "mo_per_number",
    "error_sms_per_number",
    "deny_list",
    "new_accounts_per_prefix",
    "reply_country",
    "sms_budget",
    "password_failures_per_account",
    "password_failures_per_address",
];
/// `state` values of `moauth_poll_duration_seconds`: the states a poll answers.
pub const POLL_STATES: &[&str] = &["pending", "complete", "consumed", "expired", "rejected"];
/// `stat` values of `moauth_dlr_total`: SMPP's final states in lower case, and the two catch-alls.
pub const DLR_STATS: &[&str] = &[
    "delivrd",
    "expired",
    "deleted",
    "undeliv",
    "acceptd",
    "unknown",
    "rejectd",
    "enroute",
    "other",
    "unmatched",
];

/// `status` values of `moauth_smsc_bind_failures_total` present from the start: the refusals
/// of a misconfigured bind. Others appear when an SMSC sends them.
pub const BIND_STATUSES: &[&str] = &["ESME_RINVPASWD", "ESME_RINVSYSID", "ESME_RBINDFAIL"];

/// Puts every series whose labels are known from the config in place at 0, so that a rate over
/// it (an alert on `rate(moauth_sms_failed_total[5m])`, a dashboard panel) has a series before
/// the first event rather than no data.
pub fn register_known(config: &Config) {
    // A registered histogram renders its `_count` and `_sum` at 0, so rates work at once.
    let _ = metrics::histogram!("moauth_mo_to_session_seconds");
    for state in POLL_STATES {
        let _ = metrics::histogram!("moauth_poll_duration_seconds", "state" => *state);
    }
    for reason in REJECT_REASONS {
        metrics::counter!("moauth_mo_rejected_total", "reason" => *reason).increment(0);
    }
    for limit in LIMITS {
        metrics::counter!("moauth_limit_hits_total", "limit" => *limit).increment(0);
    }
    for command in ["help", "stop", "start", "password", "logout"] {
        metrics::counter!("moauth_sms_commands_total", "command" => command).increment(0);
    }
    metrics::counter!("moauth_sms_suppressed_total", "reason" => "opted_out").increment(0);
    for result in ["ok", "invalid", "limited"] {
        metrics::counter!("moauth_password_logins_total", "result" => result).increment(0);
    }
    for smsc in &config.smsc {
        for name in [
            "moauth_sms_sent_total",
            "moauth_sms_failed_total",
            "moauth_sms_throttled_total",
            "moauth_sms_unanswered_total",
            "moauth_sms_resent_total",
            "moauth_sms_unknown_total",
        ] {
            metrics::counter!(name, "smsc" => smsc.name.clone()).increment(0);
        }
        for status in BIND_STATUSES {
            metrics::counter!("moauth_smsc_bind_failures_total", "smsc" => smsc.name.clone(), "status" => *status)
                .increment(0);
        }
        for stat in DLR_STATS {
            metrics::counter!("moauth_dlr_total", "smsc" => smsc.name.clone(), "stat" => *stat)
                .increment(0);
        }
    }
    // Both the embedded core and a remote one behind a closed breaker (its state at start)
    // are up; the breaker publishes every later change.
    metrics::gauge!("moauth_auth_core_up").set(1.0);
    if config.auth.mode == AuthMode::Remote {
        for outcome in ["ok", "refused", "retry", "unavailable"] {
            metrics::counter!("moauth_auth_core_requests_total", "outcome" => outcome).increment(0);
        }
    }
    if !config.webhooks.is_empty() {
        metrics::gauge!("moauth_webhook_queue_depth").set(0.0);
        for outcome in ["delivered", "failed"] {
            metrics::counter!("moauth_webhook_calls_total", "outcome" => outcome).increment(0);
        }
    }
}

/// Where the scrape-time gauges are read from.
#[derive(Clone)]
pub struct MetricsSource {
    pub store: Arc<dyn StoreBase>,
    pub links: LinkStates,
    /// Every connection's name as /readyz shows it (`NAME`, or `NAME/receiver` …).
    pub link_names: Arc<Vec<String>>,
    pub long_polls: LongPolls,
    pub poll_limiter: Live<PollLimiter>,
    pub sms_budget: BudgetHealth,
    pub clock: Clock,
}

pub fn router(source: MetricsSource) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(source)
}

async fn scrape(State(source): State<MetricsSource>) -> impl IntoResponse {
    let bound = source.links.bound();
    for name in source.link_names.iter() {
        let up = if bound.contains(name) { 1.0 } else { 0.0 };
        metrics::gauge!("moauth_smsc_bound", "smsc" => name.clone()).set(up);
    }
    let depths = source.store.depths();
    metrics::gauge!("moauth_inbox_depth").set(depths.inbox as f64);
    metrics::gauge!("moauth_outbox_depth").set(depths.outbox as f64);
    metrics::gauge!("moauth_passwords_pending").set(depths.passwords_pending as f64);
    metrics::gauge!("moauth_long_polls_active").set(source.long_polls.open() as f64);
    metrics::gauge!("moauth_poll_waiters").set(source.store.poll_waiters() as f64);
    metrics::gauge!("moauth_poll_rate_clients").set(source.poll_limiter.load().clients() as f64);
    let budget = source.sms_budget.state(source.clock.now());
    for (class, held) in [
        ("replies", budget != BudgetState::Ok),
        ("credentials", budget == BudgetState::Exhausted),
    ] {
        metrics::gauge!("moauth_sms_budget_exhausted", "class" => class)
            .set(f64::from(u8::from(held)));
    }
    let handle = install();
    handle.run_upkeep();
    ([(CONTENT_TYPE, CONTENT_TYPE_TEXT)], handle.render())
}

/// Folds histogram samples into their buckets even when nobody scrapes, so memory stays flat.
pub async fn upkeep(stop: CancellationToken) {
    let mut every = tokio::time::interval(UPKEEP_EVERY);
    loop {
        tokio::select! {
            _ = every.tick() => install().run_upkeep(),
            _ = stop.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emitted_metrics_render_in_the_text_format() {
        let handle = install();
        metrics::counter!("moauth_limit_hits_total", "limit" => "unit_test").increment(2);
        metrics::histogram!("moauth_mo_to_session_seconds").record(3.0);
        // The auth core's metrics (emitted elsewhere) render like any other.
        metrics::gauge!("moauth_auth_core_up").set(1.0);
        handle.run_upkeep();
        let text = handle.render();
        assert!(
            text.contains("moauth_limit_hits_total{limit=\"unit_test\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("moauth_mo_to_session_seconds_bucket{le=\"5\"}"),
            "{text}"
        );
        assert!(text.contains("moauth_auth_core_up 1"), "{text}");
        assert!(text.contains("# HELP moauth_mo_received_total"), "{text}");
    }
}
