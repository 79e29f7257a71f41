//! How long a poll's answer holds: a session is handed out once, `consumed` stays apart from
//! `expired` for `[login] result_ttl_secs` after the token's window, and then the record
//! expires (and is swept) whether its session was collected or not.

use crate::common;

use common::{ALICE, BOB, Harness};
use serde_json::json;

/// Window (600 s) plus result TTL (3600 s), the defaults: a record's keep_until for a token
/// answered at once.
const KEPT_SECS: u64 = 600 + 3_600;

#[tokio::test]
async fn a_consumed_login_reads_consumed_until_its_result_ttl_then_expired() {
    let h = Harness::start().await;
    let (verifier, token) = h.app_token(0);
    h.phone_sends(ALICE, &format!("LOGIN {token}")).await;
    let (_, complete) = h.poll(&verifier, &token, 10_000).await;
    assert_eq!(complete["state"], "complete");
    assert_eq!(
        h.poll(&verifier, &token, 0).await.1,
        json!({ "state": "consumed" })
    );

    h.clock.advance(KEPT_SECS);
    assert_eq!(h.poll(&verifier, &token, 0).await.1["state"], "consumed");
    h.clock.advance(1);
    assert_eq!(h.poll(&verifier, &token, 0).await.1["state"], "expired");

    assert_eq!(
        h.daemon().store.sweep_logins(h.clock.now()).await.unwrap(),
        1
    );
    assert!(
        h.daemon()
            .store
            .login(&token.challenge())
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(h.poll(&verifier, &token, 0).await.1["state"], "expired");
}

#[tokio::test]
async fn a_session_nobody_collected_expires_with_its_record() {
    let h = Harness::start().await;
    let (verifier, token) = h.app_token(0);
    let (late_verifier, late_token) = h.app_token(0);
    h.phone_sends(ALICE, &format!("LOGIN {token}")).await;
    h.phone_sends(BOB, &format!("LOGIN {late_token}")).await;
    h.settled_submits(2).await;

    // Collected in time: once.
    h.clock.advance(KEPT_SECS);
    assert_eq!(h.poll(&verifier, &token, 0).await.1["state"], "complete");
    // One second too late, before any sweep ran: not handed out.
    h.clock.advance(1);
    let (status, late) = h.poll(&late_verifier, &late_token, 0).await;
    assert_eq!((status, late), (200, json!({ "state": "expired" })));
    assert_eq!(
        h.daemon().store.sweep_logins(h.clock.now()).await.unwrap(),
        2
    );
    assert_eq!(
        h.poll(&late_verifier, &late_token, 0).await.1["state"],
        "expired"
    );
}
