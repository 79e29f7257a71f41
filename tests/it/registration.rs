//! Registration off the login path (issue #12 item 4): a new number's session does not wait
//! for its password's Argon2id hash, its credential SMS follows once the hash is stored, and a
//! SIGKILL between the account's creation and the hash costs neither the password nor a
//! second account. Driven through the real binary, over SMPP and HTTP.

use crate::common;

use common::process::Spawned;
use common::{ALICE, Harness, http_client, poll_login};
use moauth::core::clock::Clock;
use moauth::core::msisdn::Msisdn;
use moauth::core::store::AccountStore;
use moauth::core::token::{Token, Verifier};
use serde_json::{Value, json};

/// Argon2id so costly that no hash ends while a test runs (hours on these machines, with 8
/// KiB each pass): whatever the daemon answers meanwhile, it answered without one.
const ENDLESS_HASH: &str = "[auth.argon2]\nmemory_kib = 8\niterations = 4000000000\nthreads = 1";

async fn password_login(http: &reqwest::Client, api: &str, password: &str) -> (u16, Value) {
    let response = http
        .post(format!("{api}/v1/password-logins"))
        .json(&json!({ "login": ALICE, "password": password }))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn a_new_number_gets_its_session_then_the_sms_with_a_password_that_works() {
    let h = Harness::start().await;
    let (verifier, token) = h.app_token(0);
    h.phone_sends(ALICE, &format!("LOGIN {token}")).await;
    let (status, answer) = h.poll(&verifier, &token, 10_000).await;
    assert_eq!((status, &answer["state"]), (200, &json!("complete")));
    assert_eq!(answer["created"], true);
    let sms = h.settled_submits(1).await;
    assert_eq!(sms[0].to, ALICE);
    let password = common::texted_password(&sms[0].text);
    let (status, session) = password_login(&h.http, &h.api(""), &password).await;
    assert_eq!(status, 200, "{session}");
    assert_eq!(session["account_id"], answer["account_id"]);
}

#[tokio::test]
async fn a_sigkill_before_the_hash_leaves_one_account_whose_new_password_is_texted_and_works() {
    let mut d = Spawned::start(ENDLESS_HASH, &[]).await;
    let http = http_client();
    let verifier = Verifier::random();
    let token = Token::for_verifier(&verifier, Clock::System.now());
    d.phone_sends(ALICE, &format!("LOGIN {token}")).await;
    let (status, answer) = poll_login(&http, d.http, &verifier, &token, 10_000).await;
    assert_eq!((status, &answer["state"]), (200, &json!("complete")));
    assert_eq!(answer["created"], true);
    assert!(answer["session"].as_str().is_some_and(|s| s.len() >= 43));
    // The hash cannot have ended: the session came without it, and nothing was texted.
    assert!(d.sim.submits().is_empty(), "{:?}", d.sim.submits());

    // Killed between the account's creation and its password: the mark survives.
    d.signal(libc::SIGKILL);
    d.exit_code().await;
    d.write_config("");
    d.relaunch().await;
    let sms = d.nth_submit(1).await;
    assert_eq!(sms.to, ALICE);
    let api = format!("http://{}", d.http);
    let (status, session) = password_login(&http, &api, &common::texted_password(&sms.text)).await;
    assert_eq!(status, 200, "{session}");
    assert_eq!(session["account_id"], answer["account_id"]);
    let (status, _) = password_login(&http, &api, "0123456789abc").await;
    assert_eq!(status, 401, "a wrong password is still wrong");

    // The number's next login finds the same account, and texts no second password.
    let verifier = Verifier::random();
    let token = Token::for_verifier(&verifier, Clock::System.now());
    d.phone_sends(ALICE, &format!("LOGIN {token}")).await;
    let (_, again) = poll_login(&http, d.http, &verifier, &token, 10_000).await;
    assert_eq!(
        (&again["state"], &again["created"], &again["account_id"]),
        (&json!("complete"), &json!(false), &answer["account_id"])
    );
    d.signal(libc::SIGTERM);
    assert_eq!(d.exit_code().await, 0);
    assert_eq!(d.sim.submits().len(), 1, "{:?}", d.sim.submits());
    let store = moauth::store::sled::SledStore::open(&d.dir.path().join("store"), 16).unwrap();
    assert_eq!(store.account_count().await.unwrap(), 1);
    let account = store.account(&Msisdn::parse(ALICE).unwrap()).await;
    assert!(account.unwrap().is_some_and(|a| a.password_hash.is_some()));
}
