//! `GET /metrics` after a scripted run of the real binary shows exactly what happened.
//!
//! The recorder is process-global, so this drives `moauth run` as a child process (with the
//! simulator in the test): no other test can add to its counters. Every step waits for its
//! effect (a poll's answer, a submit, a receipt) before the scrape.

use crate::common;

use std::collections::BTreeMap;

use common::process::Spawned;
use common::{ALICE, BOB, PATIENCE, mistyped, poll_login};
use moauth::core::clock::Clock;
use moauth::core::token::{Token, Verifier};
use moauth::sim::ReceiptStyle;
use serde_json::json;

/// `name{labels}` → value, for every sample line of the exposition.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').unwrap();
            (series.to_owned(), value.parse().unwrap())
        })
        .collect()
}

const CAROL: &str = "+8613700137000";
/// A permanent refusal: the message is dropped, not retried.
const ESME_RINVDSTADR: u32 = 0x0000_000B;

#[tokio::test]
async fn metrics_after_a_scripted_run_show_the_expected_counts() {
    let d = Spawned::start(
        "[limits]\nerror_sms_per_number_per_hour = 1\ndeny_numbers = [\"+8613900139000\"]",
        &[],
    )
    .await;
    d.sim.send_receipts(Some(ReceiptStyle::Hex));
    d.sim.throttle_next_submits(1);
    let http = common::http_client();
    let token = || {
        let verifier = Verifier::random();
        let token = Token::for_verifier(&verifier, Clock::System.now());
        (verifier, token)
    };
    let poll = |verifier: Verifier, token: Token, wait_ms: u64| {
        let http = http.clone();
        async move {
            poll_login(&http, d.http, &verifier, &token, wait_ms)
                .await
                .1
        }
    };

    // A registration (credentials SMS, throttled once, then accepted) and a login.
    for created in [true, false] {
        let (verifier, t) = token();
        d.phone_sends(ALICE, &format!("LOGIN {t}")).await;
        let answer = poll(verifier, t, 10_000).await;
        assert_eq!(
            (&answer["state"], &answer["created"]),
            (&json!("complete"), &json!(created))
        );
    }
    // Two mistyped tokens: one error SMS, which the SMSC refuses for good, the second held
    // back by the limit.
    assert_eq!(d.sim.wait_submits(1, PATIENCE).await.len(), 1);
    d.sim.refuse_next_submits(1, ESME_RINVDSTADR);
    for _ in 0..2 {
        let (verifier, t) = token();
        d.phone_sends(ALICE, &format!("LOGIN {}", mistyped(&t)))
            .await;
        let answer = poll(verifier, t, 10_000).await;
        assert_eq!(
            answer,
            json!({ "state": "rejected", "reason": "bad_token" })
        );
    }
    // A denied number, and a login nobody texted for.
    let (verifier, t) = token();
    d.phone_sends(BOB, &format!("LOGIN {t}")).await;
    let answer = poll(verifier, t, 10_000).await;
    assert_eq!(
        answer,
        json!({ "state": "rejected", "reason": "blocked_number" })
    );
    let (verifier, t) = token();
    assert_eq!(poll(verifier, t, 0).await["state"], "pending");
    // A third number asks for HELP: answered, after everything above.
    d.phone_sends(CAROL, "HELP").await;

    let sms = d.sim.wait_submits(2, PATIENCE).await;
    assert_eq!(sms.len(), 2, "{sms:?}");
    assert_eq!(sms[1].to, CAROL, "{sms:?}");
    // Its receipt is answered after the refused submit's resp was read (one stream, in order).
    assert_eq!(d.sim.wait_receipts_answered(2, PATIENCE).await, 2);
    assert_eq!(
        d.sim.submit_times().len(),
        4,
        "throttled, accepted, refused, accepted"
    );

    let response = http
        .get(format!("http://{}/metrics", d.http))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = response.text().await.unwrap();
    let samples = samples(&text);
    let value = |series: &str| samples.get(series).copied().unwrap_or(0.0);
    let expected = [
        ("moauth_mo_received_total", 6.0),
        ("moauth_mo_redelivered_total", 0.0),
        ("moauth_logins_completed_total", 2.0),
        ("moauth_accounts_created_total", 1.0),
        ("moauth_mo_rejected_total{reason=\"bad_token\"}", 2.0),
        ("moauth_mo_rejected_total{reason=\"blocked_number\"}", 1.0),
        ("moauth_mo_rejected_total{reason=\"rate_limited\"}", 0.0),
        (
            "moauth_limit_hits_total{limit=\"error_sms_per_number\"}",
            1.0,
        ),
        ("moauth_limit_hits_total{limit=\"deny_list\"}", 1.0),
        ("moauth_limit_hits_total{limit=\"poll_rate\"}", 0.0),
        ("moauth_sms_sent_total{smsc=\"sim\"}", 2.0),
        ("moauth_sms_throttled_total{smsc=\"sim\"}", 1.0),
        ("moauth_sms_failed_total{smsc=\"sim\"}", 1.0),
        ("moauth_dlr_total{smsc=\"sim\",stat=\"delivrd\"}", 2.0),
        ("moauth_smsc_bound{smsc=\"sim\"}", 1.0),
        ("moauth_inbox_depth", 0.0),
        ("moauth_outbox_depth", 0.0),
        ("moauth_long_polls_active", 0.0),
        ("moauth_poll_waiters", 0.0),
        ("moauth_mo_to_session_seconds_count", 2.0),
        (
            "moauth_poll_duration_seconds_count{state=\"complete\"}",
            2.0,
        ),
        (
            "moauth_poll_duration_seconds_count{state=\"rejected\"}",
            3.0,
        ),
        ("moauth_poll_duration_seconds_count{state=\"pending\"}", 1.0),
    ];
    let seen: Vec<(&str, f64)> = expected.iter().map(|(s, _)| (*s, value(s))).collect();
    assert_eq!(seen, expected, "{text}");
    // The histograms are real ones, with buckets.
    assert!(
        text.contains("moauth_mo_to_session_seconds_bucket{le=\"+Inf\"} 2"),
        "{text}"
    );
    assert!(samples.contains_key("moauth_mo_received_total"), "{text}");
    // MO → session to the millisecond: two loopback logins take more than nothing and are
    // not a whole number of seconds (the store's `received_at` alone would make them so).
    let latency = value("moauth_mo_to_session_seconds_sum");
    assert!(
        latency > 0.0 && latency.fract() != 0.0,
        "MO → session {latency} s in all: not measured in milliseconds\n{text}"
    );
    assert!(
        text.contains("moauth_mo_to_session_seconds_bucket{le=\"0.005\"}"),
        "{text}"
    );
}
