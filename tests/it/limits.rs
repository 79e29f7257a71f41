//! The abuse limits biting, over real sockets: the N+1th poll gets 429 with Retry-After, a
//! long-poll over the cap is refused at once, and on the SMS path a flood from one number, a
//! denied number or a pumped number block gets its MOs acknowledged but no flood of SMS.

use crate::common;

use common::{ALICE, BOB, Harness, mistyped};
use moauth::daemon::{Options, api_key_hash};
use moauth::ops::config::ApiKey;
use serde_json::json;

/// The error every 429 carries, and its Retry-After in seconds.
async fn refused(response: reqwest::Response) -> (String, u64) {
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    (body["error"].as_str().unwrap().to_owned(), retry_after)
}

#[tokio::test]
async fn the_poll_after_the_burst_gets_429_with_retry_after() {
    let h = Harness::start_with(Options::default(), |c| {
        c.limits.poll_per_minute = 1;
        c.limits.poll_burst = 3;
    })
    .await;
    let (verifier, token) = h.app_token(0);
    for _ in 0..3 {
        let (status, answer) = h.poll(&verifier, &token, 0).await;
        assert_eq!((status, &answer["state"]), (200, &json!("pending")));
    }
    let body = json!({ "verifier": verifier.to_base64url(), "token": token.to_string() });
    let response = h
        .http
        .post(h.api("/v1/logins/poll"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let (error, retry_after) = refused(response).await;
    assert_eq!(error, "rate_limited");
    // One poll a minute refills the bucket: the wait is most of a minute, never 0.
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    // Probes are not polls: they stay answerable.
    let health = h.http.get(h.api("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn a_long_poll_over_the_cap_is_refused_at_once_until_one_ends() {
    let h = Harness::start_with(Options::default(), |c| c.limits.max_long_polls = 1).await;
    let (verifier, token) = h.app_token(0);
    let waiting = {
        let (http, addr, verifier, token) = (h.http.clone(), h.daemon().http_addr, verifier, token);
        tokio::spawn(
            async move { common::poll_login(&http, addr, &verifier, &token, 30_000).await },
        )
    };
    // Until the first long-poll holds the only slot, a second one may get it and answer
    // `pending` after its 100 ms; ask again until it is refused.
    let (other_verifier, other_token) = h.app_token(0);
    let body = json!({
        "verifier": other_verifier.to_base64url(),
        "token": other_token.to_string(),
        "wait_ms": 100,
    });
    let (error, retry_after) = common::eventually_ok("the cap to bite", async || {
        let response = h
            .http
            .post(h.api("/v1/logins/poll"))
            .json(&body)
            .send()
            .await
            .unwrap();
        match response.status().as_u16() {
            429 => Ok(refused(response).await),
            status => Err(format!("the poll got {status}")),
        }
    })
    .await;
    assert_eq!((error.as_str(), retry_after), ("too_many_long_polls", 1));
    // A poll that does not wait is never refused for the cap.
    let (status, _) = h.poll(&other_verifier, &other_token, 0).await;
    assert_eq!(status, 200);

    h.phone_sends(ALICE, &format!("LOGIN {token}")).await;
    let (status, answer) = waiting.await.unwrap();
    assert_eq!((status, &answer["state"]), (200, &json!("complete")));
    let (status, _) = h.poll(&other_verifier, &other_token, 100).await;
    assert_eq!(status, 200, "the slot was given back");
}

#[tokio::test]
async fn a_flood_of_bad_tokens_from_one_number_gets_only_a_few_sms() {
    let h = Harness::start_with(Options::default(), |c| {
        c.limits.error_sms_per_number_per_hour = 2;
    })
    .await;
    let mut bad = Vec::new();
    for _ in 0..8 {
        let (verifier, token) = h.app_token(0);
        let acked = h
            .phone_sends(ALICE, &format!("LOGIN {}", mistyped(&token)))
            .await;
        assert_eq!(acked.statuses, [0], "every MO is acknowledged");
        bad.push((verifier, token));
    }
    // Every one was processed: the login it claimed is marked, SMS or not.
    for (verifier, token) in &bad {
        let answer = h.poll_decided(verifier, token).await;
        assert_eq!(
            answer,
            json!({ "state": "rejected", "reason": "bad_token" })
        );
    }
    let sms = h.settled_submits(2).await;
    assert!(
        sms.iter()
            .all(|s| s.to == ALICE && s.text.contains("not valid")),
        "{sms:?}"
    );

    // Credentials are not error SMS: the number can still register and get its password.
    let (verifier, token) = h.app_token(0);
    h.phone_sends(ALICE, &format!("LOGIN {token}")).await;
    let (_, answer) = h.poll(&verifier, &token, 10_000).await;
    assert_eq!(answer["state"], "complete");
    let sms = h.settled_submits(3).await;
    assert!(sms[2].text.contains("password"), "{}", sms[2].text);

    // An hour later the number may be told again.
    h.clock.advance(3_600);
    let (_, token) = h.app_token(0);
    h.phone_sends(ALICE, &format!("LOGIN {}", mistyped(&token)))
        .await;
    h.settled_submits(4).await;
}

#[tokio::test]
async fn a_number_over_its_mo_limit_is_acknowledged_and_refused_without_sms() {
    let h = Harness::start_with(Options::default(), |c| c.limits.mo_per_number_per_hour = 2).await;
    for _ in 0..2 {
        let (verifier, token) = h.app_token(0);
        h.phone_sends(ALICE, &format!("LOGIN {token}")).await;
        let (_, answer) = h.poll(&verifier, &token, 10_000).await;
        assert_eq!(answer["state"], "complete");
    }
    let (verifier, token) = h.app_token(0);
    let acked = h.phone_sends(ALICE, &format!("LOGIN {token}")).await;
    assert_eq!(acked.statuses, [0]);
    let (_, answer) = h.poll(&verifier, &token, 10_000).await;
    assert_eq!(
        answer,
        json!({ "state": "rejected", "reason": "rate_limited" })
    );
    // The one SMS is the first login's credentials; other numbers are not affected.
    let (verifier, token) = h.app_token(0);
    h.phone_sends(BOB, &format!("LOGIN {token}")).await;
    let (_, answer) = h.poll(&verifier, &token, 10_000).await;
    assert_eq!(answer["state"], "complete");
    let mut to: Vec<String> = h
        .settled_submits(2)
        .await
        .into_iter()
        .map(|s| s.to)
        .collect();
    to.sort_unstable();
    assert_eq!(to, [ALICE, BOB]);
}

#[tokio::test]
async fn a_denied_number_is_acknowledged_never_answered_and_its_login_blocked() {
    let h = Harness::start_with(Options::default(), |c| {
        c.limits.deny_numbers = vec!["+861390013".into()];
    })
    .await;
    let (verifier, token) = h.app_token(0);
    let acked = h.phone_sends(BOB, &format!("LOGIN {token}")).await;
    assert_eq!(acked.statuses, [0]);
    let (_, answer) = h.poll(&verifier, &token, 10_000).await;
    assert_eq!(
        answer,
        json!({ "state": "rejected", "reason": "blocked_number" })
    );
    h.phone_sends(BOB, "HELP").await;
    let (_, mistake) = h.app_token(0);
    h.phone_sends(BOB, &format!("LOGIN {}", mistyped(&mistake)))
        .await;
    // ALICE's login commits after BOB's MOs (one pipeline, in order): then nothing for BOB
    // can still be on its way.
    let (verifier, token) = h.app_token(0);
    h.phone_sends(ALICE, &format!("LOGIN {token}")).await;
    let (_, answer) = h.poll(&verifier, &token, 10_000).await;
    assert_eq!(answer["state"], "complete");
    let sms = h.settled_submits(1).await;
    assert_eq!(sms[0].to, ALICE);
    assert_eq!(h.daemon().store.account_count().await.unwrap(), 1);
}

/// A login by SMS from `from`, as the app sees it.
async fn log_in(h: &Harness, from: &str) -> serde_json::Value {
    let (verifier, token) = h.app_token(0);
    h.phone_sends(from, &format!("LOGIN {token}")).await;
    h.poll(&verifier, &token, 10_000).await.1
}

#[tokio::test]
async fn new_accounts_per_prefix_stop_at_the_limit_while_known_numbers_log_in() {
    let h = Harness::start_with(Options::default(), |c| {
        c.limits.new_accounts_per_prefix_per_hour = 2;
        c.limits.new_account_prefix_digits = 9;
    })
    .await;
    // ALICE is +8613800138000; these two share her first 9 digits.
    assert_eq!(log_in(&h, ALICE).await["created"], true);
    assert_eq!(log_in(&h, "+8613800138001").await["created"], true);
    assert_eq!(
        log_in(&h, "+8613800138002").await,
        json!({ "state": "rejected", "reason": "rate_limited" })
    );
    let again = log_in(&h, ALICE).await;
    assert_eq!(
        (&again["state"], &again["created"]),
        (&json!("complete"), &json!(false))
    );
    assert_eq!(log_in(&h, BOB).await["created"], true, "another prefix");
    // Two accounts an hour: half an hour later there is room for one more.
    h.clock.advance(1_800);
    assert_eq!(log_in(&h, "+8613800138002").await["created"], true);
    let sms = h.settled_submits(4).await;
    assert!(sms.iter().all(|s| s.text.contains("password")), "{sms:?}");
    // New accounts' passwords are made side by side: in no particular order.
    let mut to: Vec<&str> = sms.iter().map(|s| s.to.as_str()).collect();
    to.sort_unstable();
    assert_eq!(
        to,
        ["+8613800138000", "+8613800138001", "+8613800138002", BOB]
    );
}

#[tokio::test]
async fn a_reload_changes_the_limits_at_once() {
    let h = Harness::start().await;
    let mut config = h.config.clone();
    config.limits.deny_numbers = vec![ALICE.into()];
    assert!(
        h.daemon().reload(&config).is_empty(),
        "limits reload in place"
    );
    let (verifier, token) = h.app_token(0);
    h.phone_sends(ALICE, &format!("LOGIN {token}")).await;
    let (_, answer) = h.poll(&verifier, &token, 10_000).await;
    assert_eq!(
        answer,
        json!({ "state": "rejected", "reason": "blocked_number" })
    );
}

#[tokio::test]
async fn the_token_lookup_checks_the_api_key_before_the_rate_limit() {
    let h = Harness::start_with(Options::default(), |c| {
        c.http.api_keys = vec![ApiKey {
            name: "shop".into(),
            sha256: api_key_hash("shop-key"),
        }];
        c.limits.poll_per_minute = 1;
        c.limits.poll_burst = 1;
    })
    .await;
    let (_, token, _) = h.mint("shop-key").await;
    let lookup = h.api(&format!("/v1/logins/{}", token.compact()));
    let keyed = h.http.get(&lookup).bearer_auth("shop-key");
    assert_eq!(keyed.send().await.unwrap().status(), 200);
    let (error, _) = refused(
        h.http
            .get(&lookup)
            .bearer_auth("shop-key")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(error, "rate_limited");
    // Without a good key the answer stays 401, whatever the bucket holds.
    for key in [None, Some("wrong-key")] {
        let mut request = h.http.get(&lookup);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        assert_eq!(request.send().await.unwrap().status(), 401, "{key:?}");
    }
}
