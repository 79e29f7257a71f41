//! What the logs may say: a whole registration and login at the most verbose level, then a
//! search of every line for the secrets it involved.

mod common;

use common::ALICE;
use common::process::Spawned;
use moauth::cli::SIM_PASSWORD;
use moauth::token::{Token, Verifier};
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
    let password = sms
        .split("password ")
        .nth(1)
        .and_then(|rest| rest.split('.').next())
        .unwrap_or_else(|| panic!("no password in {sms:?}"))
        .to_owned();

    d.signal(libc::SIGTERM);
    assert_eq!(d.exit_code().await, 0);
    let logs = d.logs.text();
    assert!(
        logs.lines().any(|l| l.contains("\"level\":\"TRACE\"")),
        "the daemon really logged at trace"
    );
    for (what, secret) in [
        ("the new account's password", password.as_str()),
        ("the app's verifier", &verifier.to_base64url()),
        ("the session", &session),
        ("the SMSC password", SIM_PASSWORD),
    ] {
        assert!(!logs.contains(secret), "{what} {secret:?} is in the logs");
    }
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
}
