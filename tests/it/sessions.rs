//! Sessions of the embedded auth core as an app backend uses them (issue #16): introspect on
//! each request, revoke on logout, and the texted password logging in, over real HTTP.

use crate::common;

use common::{ALICE, BOB, Harness};
use moauth::http::config::ApiKey;
use moauth::http::keys::api_key_hash;
use serde_json::{Value, json};

const KEY: &str = "shop-key";
const TTL: u64 = 3_600;

async fn harness() -> Harness {
    Harness::start_with(Default::default(), |c| {
        c.http.api_keys = vec![ApiKey {
            name: "shop".into(),
            sha256: api_key_hash(KEY),
        }];
        c.login.session_ttl_secs = TTL;
        c.limits.password_failures_per_account_per_hour = 3;
        c.limits.password_failures_per_address_per_hour = 5;
    })
    .await
}

/// A login by SMS from `from`; returns the poll's answer (session, account_id, ...).
async fn sms_login(h: &Harness, from: &str) -> Value {
    let (verifier, token) = h.app_token(0);
    h.phone_sends(from, &format!("LOGIN {token}")).await;
    let (status, answer) = h.poll(&verifier, &token, 10_000).await;
    assert_eq!((status, answer["state"].as_str()), (200, Some("complete")));
    answer
}

/// POST `path` with a form body and the API key; returns the status and JSON body.
async fn form(h: &Harness, path: &str, fields: &[(&str, &str)]) -> (u16, Value) {
    let response = h
        .http
        .post(h.api(path))
        .bearer_auth(KEY)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(fields).unwrap())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn keyed_json(h: &Harness, path: &str, body: Value, key: Option<&str>) -> (u16, Value) {
    let mut request = h.http.post(h.api(path)).json(&body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn introspect(h: &Harness, session: &str) -> Value {
    let (status, answer) = form(h, "/v1/sessions/introspect", &[("token", session)]).await;
    assert_eq!(status, 200, "{answer}");
    answer
}

#[tokio::test]
async fn a_session_from_an_sms_login_introspects_active_until_revoked() {
    let h = harness().await;
    let login = sms_login(&h, ALICE).await;
    let session = login["session"].as_str().unwrap();
    assert_eq!(
        introspect(&h, session).await,
        json!({
            "active": true,
            "sub": login["account_id"],
            "msisdn": ALICE,
            "iat": common::START,
            "exp": common::START + TTL,
        })
    );
    let (status, by_json) = keyed_json(
        &h,
        "/v1/sessions/introspect",
        json!({ "token": session }),
        Some(KEY),
    )
    .await;
    assert_eq!((status, &by_json["active"]), (200, &json!(true)));

    let (status, answer) = form(&h, "/v1/sessions/revoke", &[("token", session)]).await;
    assert_eq!((status, answer), (200, json!({})));
    assert_eq!(introspect(&h, session).await, json!({ "active": false }));
    let (status, _) = form(&h, "/v1/sessions/revoke", &[("token", session)]).await;
    assert_eq!(status, 200, "revoking what is gone is still 200 (RFC 7009)");
}

#[tokio::test]
async fn unknown_and_expired_sessions_answer_alike_and_keys_are_required() {
    let h = harness().await;
    let login = sms_login(&h, ALICE).await;
    let session = login["session"].as_str().unwrap();
    assert_eq!(
        introspect(&h, "no-such-session").await,
        json!({ "active": false })
    );
    let (status, _) = keyed_json(
        &h,
        "/v1/sessions/introspect",
        json!({ "token": session }),
        None,
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = keyed_json(
        &h,
        "/v1/sessions/introspect",
        json!({ "token": session }),
        Some("wrong-key"),
    )
    .await;
    assert_eq!(status, 401);
    // RFC 7662's `token_type_hint` is a string: any other type is a malformed request.
    for path in ["/v1/sessions/introspect", "/v1/sessions/revoke"] {
        for hint in [json!(7), json!(null)] {
            let (status, answer) = keyed_json(
                &h,
                path,
                json!({ "token": session, "token_type_hint": hint }),
                Some(KEY),
            )
            .await;
            assert_eq!(status, 400, "{path} with {hint}: {answer}");
        }
    }
    assert_eq!(introspect(&h, session).await["active"], true, "not revoked");

    h.clock.advance(TTL - 1);
    assert_eq!(introspect(&h, session).await["active"], true);
    h.clock.advance(1);
    assert_eq!(
        introspect(&h, session).await,
        json!({ "active": false }),
        "session_ttl_secs after it was issued"
    );
    assert_eq!(
        h.daemon()
            .store
            .sweep_sessions(h.clock.now() + 1)
            .await
            .unwrap(),
        1,
        "the expired session is due for the sweep"
    );
}

#[tokio::test]
async fn revoke_all_ends_every_session_of_one_account_only() {
    let h = harness().await;
    let first = sms_login(&h, ALICE).await;
    let second = sms_login(&h, ALICE).await;
    let bob = sms_login(&h, BOB).await;
    let account = first["account_id"].as_str().unwrap();
    let (status, answer) = form(&h, "/v1/sessions/revoke-all", &[("account_id", account)]).await;
    assert_eq!((status, answer), (200, json!({ "revoked": 2 })));
    for login in [&first, &second] {
        let session = login["session"].as_str().unwrap();
        assert_eq!(introspect(&h, session).await["active"], false);
    }
    assert_eq!(
        introspect(&h, bob["session"].as_str().unwrap()).await["active"],
        true
    );
    let (status, answer) = form(&h, "/v1/sessions/revoke-all", &[("account_id", "x")]).await;
    assert_eq!((status, &answer["error"]), (400, &json!("bad_account_id")));
}

async fn password_login(h: &Harness, login: &str, password: &str) -> (u16, Value, Option<u64>) {
    let response = h
        .http
        .post(h.api("/v1/password-logins"))
        .json(&json!({ "login": login, "password": password }))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    (status, response.json().await.unwrap(), retry_after)
}

/// `moauth_password_logins_total` by result, as `/metrics` shows it now.
async fn password_logins(h: &Harness) -> std::collections::HashMap<&'static str, f64> {
    let mut counts = std::collections::HashMap::new();
    for result in ["ok", "invalid", "limited"] {
        let series = format!("moauth_password_logins_total{{result=\"{result}\"}}");
        let count = common::scrape(&h.http, h.daemon().http_addr, &series).await;
        counts.insert(result, count.unwrap_or(0.0));
    }
    counts
}

#[tokio::test]
async fn the_texted_password_logs_in_and_guessing_is_refused_then_limited() {
    let h = harness().await;
    // The metrics recorder is the test binary's, shared with tests running beside this one:
    // this test's password logins show as growth of at least its own count.
    let before = password_logins(&h).await;
    let login = sms_login(&h, ALICE).await;
    let sms = h.settled_submits(1).await;
    let password = common::texted_password(&sms[0].text);

    let (status, answer, _) = password_login(&h, ALICE, &password).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["account_id"], login["account_id"]);
    assert_eq!(answer["expires_at"], common::START + TTL);
    let session = answer["session"].as_str().unwrap();
    assert_ne!(session, login["session"].as_str().unwrap());
    assert_eq!(introspect(&h, session).await["sub"], login["account_id"]);

    let refused = json!({
        "error": "invalid_credentials",
        "message": "the login or the password is wrong",
    });
    let (status, answer, _) = password_login(&h, ALICE, "wrong-password").await;
    assert_eq!((status, &answer), (401, &refused));
    let (status, answer, _) = password_login(&h, BOB, &password).await;
    assert_eq!(
        (status, &answer),
        (401, &refused),
        "an unknown number is answered as a wrong password"
    );
    let (status, answer, _) = password_login(&h, "not a number", &password).await;
    assert_eq!((status, &answer), (401, &refused));

    // Three failures an hour per login: ALICE's third, then even the right password waits.
    password_login(&h, ALICE, "wrong-again").await;
    password_login(&h, ALICE, "wrong-thrice").await;
    let (status, answer, retry_after) = password_login(&h, ALICE, &password).await;
    assert_eq!((status, &answer["error"]), (429, &json!("rate_limited")));
    assert_eq!(retry_after, Some(1_200));
    // Five an hour per address: this client has failed five times, so BOB waits too.
    let (status, _, retry_after) = password_login(&h, BOB, "guess").await;
    assert_eq!(status, 429);
    assert!(retry_after.unwrap() >= 1);

    h.clock.advance(3_600);
    let (status, _, _) = password_login(&h, ALICE, &password).await;
    assert_eq!(status, 200, "the buckets refill");
    let after = password_logins(&h).await;
    for (result, grew_by) in [("ok", 2.0), ("invalid", 5.0), ("limited", 2.0)] {
        let grown = after[result] - before[result];
        assert!(
            grown >= grew_by,
            "{result}: {grown} more, expected {grew_by}"
        );
    }
}
