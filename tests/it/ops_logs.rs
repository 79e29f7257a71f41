//! What the logs may say: a whole registration and login at the most verbose level, then a
//! search of every line for the secrets it involved.

use crate::common;

use common::ALICE;
use common::process::Spawned;
use common::receiver::Receiver;
use moauth::cli::SIM_PASSWORD;
use moauth::core::token::{Token, Verifier};
use moauth::daemon::api_key_hash;
use serde_json::Value;

#[tokio::test]
async fn passwords_verifiers_and_sessions_never_reach_the_logs_at_any_level() {
    let mut d = Spawned::start("", &[("RUST_LOG", "trace")]).await;
    let verifier = Verifier::random();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let token = Token::for_verifier(&verifier, now);
    assert_eq!(
        d.phone_sends(ALICE, &format!("LOGIN {token}"))
            .await
            .statuses,
        [0]
    );

    let (_, answer) =
        common::poll_login(&common::http_client(), d.http, &verifier, &token, 10_000).await;
    assert_eq!(answer["state"], "complete", "{answer}");
    let session = answer["session"].as_str().unwrap().to_owned();
    let sms = d.nth_submit(1).await.text;
    let password = common::texted_password(&sms);

    let logs = d
        .stop_and_check_secrets(&[
            ("the new account's password", password.as_str()),
            ("the app's verifier", &verifier.to_base64url()),
            ("the session", &session),
            ("the SMSC password", SIM_PASSWORD),
        ])
        .await;
    let digits = ALICE.trim_start_matches("+86");
    for line in logs.lines() {
        let level: Value = serde_json::from_str(line).unwrap_or(Value::Null);
        if matches!(level["level"].as_str(), Some("INFO" | "WARN" | "ERROR")) {
            assert!(!line.contains(digits), "unmasked phone number: {line}");
        }
    }
    assert!(
        logs.contains("+86 138****8000"),
        "the masked form is what info lines show"
    );
    // Fields are names and values an operator can grep, never Rust's Debug form of a struct
    // or an Option (at trace, so debug lines are covered too).
    for line in logs.lines() {
        let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        for (name, value) in &fields {
            if let Some(text) = value.as_str() {
                assert!(
                    !debug_formatted(text),
                    "field {name} is a Debug dump: {line}"
                );
            }
        }
    }
}

/// Whether `text` reads like `{:?}` of a struct (`Name { field: … }`) or an Option.
fn debug_formatted(text: &str) -> bool {
    let struct_like = text.match_indices(" { ").any(|(at, _)| {
        let before = text[..at].rsplit(|c: char| !c.is_alphanumeric()).next();
        let after = text[at + 3..].split(':').next().unwrap_or("");
        before.is_some_and(|w| w.starts_with(|c: char| c.is_ascii_uppercase()))
            && !after.is_empty()
            && after.chars().all(|c| c.is_ascii_lowercase() || c == '_')
    });
    struct_like || text.starts_with("Some(") || text == "None"
}

#[test]
fn debug_dumps_are_told_from_messages() {
    assert!(debug_formatted(
        "FaultSettings { delay_ms: {}, receipts: None }"
    ));
    assert!(debug_formatted("Some(\"000\")"));
    assert!(debug_formatted("None"));
    assert!(!debug_formatted("MO outcome"));
    assert!(!debug_formatted("{\"delay_ms\":{}}"));
    assert!(!debug_formatted("+86 138****8000"));
}

const SHOP_KEY: &str = "shop-api-key-never-logged";
const CRM_KEY: &str = "crm-api-key-never-logged";
const HOOK_SECRET: &str = "webhook-secret-never-logged";

fn backend_config(name: &str, key: &str, webhook: Option<&Receiver>) -> String {
    let mut toml = format!(
        "[[http.api_keys]]\nname = \"{name}\"\nsha256 = \"{}\"\n",
        api_key_hash(key)
    );
    if let Some(receiver) = webhook {
        toml += &format!(
            "\n[[webhooks]]\nbackend = \"{name}\"\nurl = \"{}\"\nsecret_env = \"MOAUTH_TEST_HOOK_SECRET\"\n",
            receiver.url()
        );
    }
    toml
}

async fn mint(d: &Spawned, key: &str) -> (u16, Value) {
    let response = common::http_client()
        .post(format!("http://{}/v1/logins", d.http))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn backends_are_logged_by_name_and_sighup_changes_the_keys_never_logged() {
    let mut receiver = Receiver::start(HOOK_SECRET).await;
    let mut d = Spawned::start(
        &backend_config("shop-backend", SHOP_KEY, Some(&receiver)),
        &[
            ("RUST_LOG", "trace"),
            ("MOAUTH_TEST_HOOK_SECRET", HOOK_SECRET),
        ],
    )
    .await;
    let (status, minted) = mint(&d, SHOP_KEY).await;
    assert_eq!(status, 201, "{minted}");
    let token = minted["token"].as_str().unwrap().to_owned();
    d.phone_sends(ALICE, &format!("LOGIN {token}")).await;
    let event = receiver.next_event().await;
    assert_eq!(event["state"], "complete", "{event}");
    let session = event["session"].as_str().unwrap().to_owned();

    // SIGHUP with shop's key swapped for crm's: who gets in changes, the binds stay.
    d.write_config(&backend_config("crm-backend", CRM_KEY, None));
    d.signal(libc::SIGHUP);
    d.logs.wait_message("configuration reloaded").await;
    assert_eq!(mint(&d, SHOP_KEY).await.0, 401);
    assert_eq!(mint(&d, CRM_KEY).await.0, 201);

    d.signal(libc::SIGTERM);
    assert_eq!(d.exit_code().await, 0);
    let logs = d.logs.text();
    for name in ["shop-backend", "crm-backend"] {
        assert!(
            logs.lines()
                .any(|l| l.contains("login minted") && l.contains(name)),
            "no log names backend {name}"
        );
    }
    for (what, secret) in [
        ("shop's API key", SHOP_KEY),
        ("crm's API key", CRM_KEY),
        ("the webhook secret", HOOK_SECRET),
        ("the minted verifier", minted["verifier"].as_str().unwrap()),
        ("the session sent by webhook", &session),
    ] {
        assert!(!logs.contains(secret), "{what} {secret:?} is in the logs");
    }
}

/// The embedded core's session routes and SMS commands at trace level: the texted passwords
/// (first and replaced), both sessions, the verifier and the API key never show.
#[tokio::test]
async fn session_routes_and_texted_passwords_never_reach_the_logs() {
    let mut d = Spawned::start(
        &backend_config("shop", SHOP_KEY, None),
        &[("RUST_LOG", "trace")],
    )
    .await;
    let http = common::http_client();
    let api = |path: &str| format!("http://{}{path}", d.http);
    let verifier = Verifier::random();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let token = Token::for_verifier(&verifier, now);
    d.phone_sends(ALICE, &format!("LOGIN {token}")).await;
    let (_, answer) = common::poll_login(&http, d.http, &verifier, &token, 10_000).await;
    let sms_session = answer["session"].as_str().unwrap().to_owned();
    let first = common::texted_password(&d.nth_submit(1).await.text);

    let login: Value = http
        .post(api("/v1/password-logins"))
        .json(&serde_json::json!({ "login": ALICE, "password": first }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let password_session = login["session"].as_str().unwrap().to_owned();
    for (path, token) in [
        ("/v1/sessions/introspect", &password_session),
        ("/v1/sessions/revoke", &password_session),
    ] {
        let status = http
            .post(api(path))
            .bearer_auth(SHOP_KEY)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={token}"))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200);
    }
    d.phone_sends(ALICE, "PASSWORD").await;
    let replaced = d.nth_submit(2).await.text;
    let replaced = replaced
        .split(" is ")
        .nth(1)
        .unwrap()
        .split('.')
        .next()
        .unwrap()
        .to_owned();
    d.phone_sends(ALICE, "LOGOUT").await;
    d.nth_submit(3).await;

    d.stop_and_check_secrets(&[
        ("the texted password", first.as_str()),
        ("the replaced password", replaced.as_str()),
        ("the SMS login's session", &sms_session),
        ("the password login's session", &password_session),
        ("the app's verifier", &verifier.to_base64url()),
        ("the API key", SHOP_KEY),
    ])
    .await;
}
