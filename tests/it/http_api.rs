//! The HTTP API's answers to app backends, mistakes included, over a real HTTP client.

use crate::common;

use common::{ALICE, Harness};
use moauth::daemon::{Options, api_key_hash};
use moauth::ops::config::ApiKey;
use serde_json::{Value, json};

async fn raw_post(h: &Harness, body: &str, content_type: &str) -> (u16, Value) {
    let response = h
        .http
        .post(h.api("/v1/logins/poll"))
        .header("content-type", content_type)
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn client_mistakes_get_json_errors_with_4xx() {
    let h = Harness::start().await;
    let (verifier, token) = h.app_token(0);
    let v = verifier.to_base64url();
    let t = token.to_string();
    let cases: Vec<(String, &str, u16, &str)> = vec![
        ("{not json".into(), "application/json", 400, "bad_request"),
        (
            json!({"verifier": v, "token": t, "wait_ms": "soon"}).to_string(),
            "application/json",
            400,
            "bad_request",
        ),
        (
            json!({"verifier": v, "token": t, "extra": 1}).to_string(),
            "application/json",
            400,
            "bad_request",
        ),
        (
            json!({"verifier": v}).to_string(),
            "application/json",
            400,
            "bad_request",
        ),
        (
            json!({"verifier": "short", "token": t}).to_string(),
            "application/json",
            400,
            "bad_verifier",
        ),
        (
            json!({"verifier": v, "token": "1234"}).to_string(),
            "application/json",
            400,
            "bad_token",
        ),
        (
            json!({"verifier": v, "token": t, "wait_ms": 30_001}).to_string(),
            "application/json",
            400,
            "bad_request",
        ),
        (
            json!({"verifier": v, "token": t}).to_string(),
            "text/plain",
            415,
            "unsupported_media_type",
        ),
        (
            format!("{{\"verifier\": \"{}\"}}", "x".repeat(10_000)),
            "application/json",
            413,
            "payload_too_large",
        ),
    ];
    for (body, content_type, want_status, want_code) in cases {
        let (status, answer) = raw_post(&h, &body, content_type).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (want_status, Some(want_code)),
            "{body:.80}: {answer}"
        );
        assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
}

#[tokio::test]
async fn unknown_route_is_a_json_404() {
    let h = Harness::start().await;
    let response = h.http.get(h.api("/v1/nothing")).send().await.unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "not_found"
    );
}

#[tokio::test]
async fn token_lookup_needs_a_backend_api_key() {
    let h = Harness::start_with(Options::default(), |c| {
        c.http.api_keys = vec![ApiKey {
            name: "shop".into(),
            sha256: api_key_hash("s3cret-key"),
        }];
    })
    .await;
    let (_, token, _) = h.mint("s3cret-key").await;
    h.phone_sends(ALICE, &format!("LOGIN {token}")).await;
    let url = h.api(&format!("/v1/logins/{}?wait_ms=10000", token.compact()));

    let anonymous = h.http.get(&url).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let wrong = h.http.get(&url).bearer_auth("guess").send().await.unwrap();
    assert_eq!(wrong.status(), 401);

    let answer: Value = h
        .http
        .get(&url)
        .bearer_auth("s3cret-key")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["state"], "complete");
    let again: Value = h
        .http
        .get(&url)
        .bearer_auth("s3cret-key")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again["state"], "consumed");
}

#[tokio::test]
async fn token_lookup_is_off_without_keys() {
    let h = Harness::start().await;
    let (_, token) = h.app_token(0);
    let response = h
        .http
        .get(h.api(&format!("/v1/logins/{token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn probes_report_liveness_and_the_smsc_bind() {
    let h = Harness::start().await;
    let health = h.http.get(h.api("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = h.http.get(h.api("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(
        ready.json::<Value>().await.unwrap()["smsc_bound"],
        json!(["sim"])
    );

    h.sim.stop();
    common::eventually("/readyz to fail without an SMSC", async || {
        let ready = h.http.get(h.api("/readyz")).send().await.unwrap();
        ready.status() == 503
    })
    .await;
}

#[tokio::test]
async fn odd_bodies_paths_and_keys_are_client_mistakes_not_server_faults() {
    let h = Harness::start_with(Options::default(), |c| {
        c.http.api_keys = vec![ApiKey {
            name: "shop".into(),
            sha256: api_key_hash("s3cret-key"),
        }];
    })
    .await;
    for body in ["null", "[]", "42", "\"text\"", "{}", ""] {
        let (status, answer) = raw_post(&h, body, "application/json").await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (400, Some("bad_request")),
            "{body}"
        );
    }
    let lookups = [
        ("/v1/logins/%FF%FE", Some("s3cret-key"), 400, "bad_token"),
        (
            "/v1/logins/1ABCD?wait_ms=-1",
            Some("s3cret-key"),
            400,
            "bad_request",
        ),
        (
            "/v1/logins/1ABCD?other=1",
            Some("s3cret-key"),
            400,
            "bad_request",
        ),
        ("/v1/logins/1ABCD", Some(""), 401, "unauthorized"),
        ("/v1/logins/1ABCD", None, 401, "unauthorized"),
    ];
    for (path, key, want_status, want_code) in lookups {
        let mut request = h.http.get(h.api(path));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let answer: Value = response.json().await.unwrap();
        assert_eq!(
            (status, answer["error"].as_str()),
            (want_status, Some(want_code)),
            "{path}: {answer}"
        );
    }
}
