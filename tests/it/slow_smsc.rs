//! An SMSC that answers late, out of order or in ways our own simulator does not by default:
//! no SMS is multiplied, no receipt lost, no MO refused. Every case crosses real TCP.

use crate::common;

use std::time::Duration;

use common::process::{Spawned, moauth};
use common::{ALICE, Harness, PATIENCE, eventually, help_from};
use moauth::daemon::Options;
use moauth::sim::{Deliver, MoRequest, ReceiptStyle, SlowRequest};

#[tokio::test]
async fn a_submit_answered_after_the_timeout_is_sent_once_and_counts_as_sent() {
    let h = Harness::start_with(Options::default(), |c| c.smsc[0].response_timeout_secs = 1).await;
    h.sim
        .delay_responses(SlowRequest::SubmitSm, Duration::from_millis(2500));
    h.phone_sends(ALICE, "HELP").await;
    // The late ESME_ROK is matched to the submit that timed out: the message leaves the outbox
    // and is not sent again.
    let sms = h.settled_submits(1).await;
    assert!(sms[0].text.contains("tap"));
    assert_eq!(h.sim.submit_times().len(), 1, "one copy reached the SMSC");
}

#[tokio::test]
async fn an_unanswered_submit_is_resent_a_bounded_number_of_times_then_given_up() {
    let h = Harness::start_with(Options::default(), |c| {
        c.smsc[0].response_timeout_secs = 1;
        c.smsc[0].resend_after_secs = 1;
        c.smsc[0].max_resends = 2;
        // enquire_link is answered; only submits are swallowed.
        c.smsc[0].enquire_link_secs = 1;
    })
    .await;
    h.sim.hold_responses(true);
    h.phone_sends(ALICE, "HELP").await;
    tokio::time::timeout(PATIENCE, h.daemon().store.outbox_drained())
        .await
        .expect("an SMS whose fate stays unknown is given up, not kept for ever");
    let times = h.sim.submit_times();
    assert_eq!(times.len(), 3, "the first copy and two resends");
    for pair in times.windows(2) {
        let gap = pair[1].duration_since(pair[0]);
        assert!(
            gap >= Duration::from_millis(1900),
            "resent {gap:?} after the last copy: timeout and pause not both waited"
        );
    }
    assert_eq!(h.sim.bound_sessions(), 1, "the link stayed up");
}

#[tokio::test]
async fn the_window_counts_pdus_not_messages() {
    let h = Harness::start_with(Options::default(), |c| {
        c.smsc[0].window = 2;
        // Three GSM-7 segments per reply.
        c.templates.help = Some("x".repeat(400));
    })
    .await;
    h.sim.hold_responses(true);
    let mos: Vec<Deliver> = (0..4).map(help_from).collect();
    h.sim.deliver(&mos).await.unwrap();
    assert_eq!(h.sim.wait_outstanding(2, PATIENCE).await, 2);
    let store = h.daemon().store.clone();
    eventually("all replies queued", async || {
        store.depths().inbox == 0 && store.depths().outbox == 4
    })
    .await;
    h.sim.hold_responses(false);
    let sms = h.settled_submits(4).await;
    assert!(sms.iter().all(|s| s.parts == 3), "{sms:?}");
    assert_eq!(
        h.sim.max_outstanding(),
        2,
        "submit_sm PDUs in flight at once"
    );
}

#[tokio::test]
async fn a_receipt_that_arrives_before_its_submit_resp_is_matched() {
    let h = Harness::start().await;
    h.sim.send_receipts(Some(ReceiptStyle::Hex));
    h.sim.receipts_before_resp(true);
    h.sim
        .delay_responses(SlowRequest::SubmitSm, Duration::from_millis(300));
    h.phone_sends(ALICE, "HELP").await;
    let sms = h.settled_submits(1).await;
    assert_eq!(h.sim.wait_receipts_answered(1, PATIENCE).await, 1);
    let store = h.daemon().store.clone();
    let id = sms[0].message_id.clone();
    eventually("the early receipt to settle its message", async || {
        let sent = store.sent_record("sim", &id).await.unwrap();
        sent.and_then(|sent| sent.outcome).as_deref() == Some("DELIVRD")
    })
    .await;
}

#[tokio::test]
async fn an_mo_delivered_as_data_sm_logs_in() {
    let h = Harness::start().await;
    let (verifier, token) = h.app_token(0);
    let mo = Deliver {
        from: ALICE.into(),
        data_coding: 1,
        short_message: format!("LOGIN {token}").into_bytes(),
        data_sm: true,
        ..Deliver::default()
    };
    let acked = h.sim.deliver(&[mo]).await.unwrap();
    assert_eq!(
        acked.statuses,
        [0],
        "data_sm_resp OK once the MO is durable"
    );
    assert_eq!(
        h.poll(&verifier, &token, 10_000).await.1["state"],
        "complete"
    );
    h.settled_submits(1).await;
}

#[tokio::test]
async fn alert_notification_gets_no_response() {
    let h = Harness::start().await;
    // alert_notification (0x00000102): source 8613900000000, esme_addr 10690000.
    let mut body = vec![1, 1];
    body.extend_from_slice(b"8613900000000\0");
    body.extend_from_slice(&[1, 1]);
    body.extend_from_slice(b"10690000\0");
    let mut pdu = Vec::new();
    pdu.extend_from_slice(&(16 + body.len() as u32).to_be_bytes());
    pdu.extend_from_slice(&0x0000_0102u32.to_be_bytes());
    pdu.extend_from_slice(&0u32.to_be_bytes());
    pdu.extend_from_slice(&0x7000_0001u32.to_be_bytes());
    pdu.extend_from_slice(&body);
    h.sim.send_garbage(pdu).await.unwrap();
    // Answered in order on the same connection: any answer to the alert would come first.
    h.phone_sends(ALICE, "HELP").await;
    h.settled_submits(1).await;
    assert_eq!(h.sim.nacks_received(), 0);
    assert_eq!(h.sim.bind_attempts().len(), 1, "the session stayed up");
}

#[tokio::test]
async fn an_smsc_named_by_host_name_is_resolved_at_connect() {
    let sim = common::loopback_sim().await;
    let port = sim.smpp_addr.port();
    // `localhost` may resolve to ::1 first, where nothing listens: every address is tried.
    let h = Harness::start_on(sim, Options::default(), |c| {
        c.smsc[0].address = format!("localhost:{port}").try_into().unwrap();
    })
    .await;
    let (verifier, token) = h.app_token(0);
    h.phone_sends(ALICE, &format!("LOGIN {token}")).await;
    assert_eq!(
        h.poll(&verifier, &token, 10_000).await.1["state"],
        "complete"
    );
}

#[tokio::test]
async fn an_unresolvable_smsc_host_keeps_the_daemon_up_and_unbound() {
    let h = Harness::start_with(Options::default(), |c| {
        let mut second = c.smsc[0].clone();
        second.name = "nowhere".into();
        second.address = "no-such-smsc.invalid:2775".to_string().try_into().unwrap();
        c.smsc.push(second);
    })
    .await;
    let ready = h.readyz().await;
    assert_eq!(ready["smsc_bound"], serde_json::json!(["sim"]), "{ready}");
}

#[tokio::test]
async fn a_latin1_octet_under_data_coding_0_does_not_lose_the_token() {
    let h = Harness::start().await;
    let (verifier, token) = h.app_token(0);
    let mut text = format!("LOGIN {token} -- Caf").into_bytes();
    text.push(0xE9); // a carrier signature in Latin-1 under dc 0
    let mo = Deliver {
        from: ALICE.into(),
        data_coding: 0,
        short_message: text,
        ..Deliver::default()
    };
    assert_eq!(h.sim.deliver(&[mo]).await.unwrap().statuses, [0]);
    assert_eq!(
        h.poll(&verifier, &token, 10_000).await.1["state"],
        "complete"
    );
}

#[tokio::test]
async fn a_concat_element_of_the_wrong_length_is_skipped_and_the_rest_of_the_udh_read() {
    let h = Harness::start().await;
    // Two parts, each UDH led by an 8-bit concatenation IE of length 2 with the real
    // numbering after it as a 16-bit IE; and a one-part message whose UDH has only the bad IE.
    let (long_verifier, long_token) = h.app_token(0);
    let long = format!("LOGIN {long_token} {}", "sent from my phone ".repeat(9));
    let (short_verifier, short_token) = h.app_token(0);
    for (from, text) in [(ALICE, long), (common::BOB, format!("LOGIN {short_token}"))] {
        let delivers = moauth::sim::mo_delivers(
            &MoRequest {
                from: from.into(),
                text,
                malformed_concat: true,
                ..MoRequest::default()
            },
            7,
        )
        .unwrap();
        assert!(delivers.iter().all(|d| d.esm_class & 0x40 != 0));
        let acked = h.sim.deliver(&delivers).await.unwrap();
        assert!(acked.statuses.iter().all(|s| *s == 0), "{acked:?}");
    }
    for (verifier, token) in [(long_verifier, long_token), (short_verifier, short_token)] {
        assert_eq!(
            h.poll(&verifier, &token, 10_000).await.1["state"],
            "complete"
        );
    }
    h.settled_submits(2).await;
}

#[tokio::test]
async fn a_refused_password_is_named_shown_counted_and_not_retried_in_a_tight_loop() {
    let d = Spawned::start("", &[]).await;
    d.sim.refuse_binds_with(0x0E);
    let before = d.sim.bind_attempts().len();
    d.sim.drop_connections().await;
    let refused_at = *d
        .sim
        .wait_bind_attempts(before + 1, PATIENCE)
        .await
        .last()
        .unwrap();

    let logged = d
        .logs
        .wait_message("the SMSC refused our credentials: check system_id, password and system_type; restart moauth after fixing them to retry at once")
        .await;
    assert_eq!(logged["address"], d.tap.addr.to_string(), "{logged}");
    assert_eq!(logged["retry_in_secs"], 300, "{logged}");
    let down = d.logs.wait_message("SMSC link down").await;
    let error = d
        .logs
        .text()
        .lines()
        .filter(|l| l.contains("bind refused"))
        .map(str::to_owned)
        .next()
        .unwrap_or_else(|| panic!("no bind refusal logged: {down}"));
    assert!(
        error.contains("ESME_RINVPASWD (0x0000000E, invalid password)"),
        "{error}"
    );
    assert!(error.contains("\"attempt\":"), "{error}");

    let ready: serde_json::Value = serde_json::from_str(&d.get_text("/readyz").await).unwrap();
    let shown = ready["smsc_errors"]["sim"].as_str().unwrap_or_default();
    assert!(
        shown.starts_with(&format!("bind refused by {}: ESME_RINVPASWD", d.tap.addr)),
        "{ready}"
    );
    assert!(shown.contains("(attempt "), "{ready}");
    let (code, out, err) = moauth(&["status", "--url", &format!("http://{}", d.http)]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("smsc sim              NOT BOUND: bind refused by"),
        "{out}"
    );
    let metrics = d.get_text("/metrics").await;
    assert!(
        metrics
            .contains("moauth_smsc_bind_failures_total{smsc=\"sim\",status=\"ESME_RINVPASWD\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("# HELP moauth_smsc_bind_failures_total"));

    // The usual backoff would have tried again within a second; the next try is minutes away.
    // (A busy machine can only make fewer attempts in this time, never more.)
    tokio::time::sleep_until((refused_at + Duration::from_secs(3)).into()).await;
    assert_eq!(d.sim.bind_attempts().len(), before + 1);
}
