//! `moauth demo`: the whole story on loopback, told step by step.
//!
//! Everything is real except the phone: a simulator SMSC on a loopback port, the daemon bound
//! to it over SMPP, a fresh store in a temporary directory, and the app's poll over HTTP.
//! `moauth demo --web` (`web`) shows the same in a browser, with a simulated phone.

pub mod web;

use std::time::Duration;

use anyhow::{Context, bail, ensure};
use serde_json::{Value, json};

use crate::cli::{SIM_PASSWORD, SIM_SYSTEM_ID, embedded_config};
use crate::core::DEFAULT_SHORT_CODE;
use crate::core::clock::Clock;
use crate::core::token::{Token, Verifier};
use crate::daemon::{Daemon, Options};
use crate::sim::{MoRequest, SimConfig, Simulator};

const PHONE: &str = "+8613800138000";
const WAIT: Duration = Duration::from_secs(10);

pub async fn run() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("moauth-demo-{}", std::process::id()));
    let result = story(&dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// The simulator on a free loopback port, with no control API: the demo drives it directly.
async fn start_simulator() -> anyhow::Result<Simulator> {
    Ok(Simulator::start(SimConfig {
        listen: "127.0.0.1:0".parse()?,
        control: None,
        system_id: SIM_SYSTEM_ID.into(),
        password: SIM_PASSWORD.into(),
        tls: None,
    })
    .await?)
}

async fn story(dir: &std::path::Path) -> anyhow::Result<()> {
    let sim = start_simulator().await?;
    let config = embedded_config(dir.join("store"), "127.0.0.1:0".parse()?, sim.smpp_addr);
    let daemon = Daemon::start(config, Clock::System, Options::default()).await?;
    let api = format!("http://{}", daemon.http_addr);
    say(
        0,
        &format!(
            "moauth is up: HTTP {api}, SMSC simulator at {} (SMPP)",
            sim.smpp_addr
        ),
    );
    ensure!(
        sim.wait_bound(1, WAIT).await,
        "moauth did not bind to the simulator"
    );
    say(0, "moauth bound to the SMSC as a transceiver");
    let http = reqwest::Client::new();

    println!("\n== 1. A new user registers by sending one SMS");
    let (verifier, token) = app_makes_token();
    let first = phone_sends(&sim, &format!("LOGIN {token}")).await?;
    let sms = sim.wait_submits(1, WAIT).await;
    let Some(credentials) = sms.first() else {
        bail!("no credential SMS came back")
    };
    say(
        9,
        &format!(
            "moauth created the account and texted {}: \"{}\"",
            credentials.to, credentials.text
        ),
    );
    let answer = app_polls(&http, &api, &verifier, &token).await?;
    ensure!(
        answer["state"] == "complete" && answer["created"] == true,
        "expected a new account: {answer}"
    );
    let account = answer["account_id"].clone();
    say(
        11,
        &format!("the app's poll got the session: {}", summary(&answer)),
    );
    let again = app_polls(&http, &api, &verifier, &token).await?;
    say(
        11,
        &format!(
            "polling again says {}: a session is handed out once",
            again["state"].as_str().unwrap_or("?")
        ),
    );
    ensure!(first == [0], "deliver_sm was not acknowledged");

    println!("\n== 2. The same number logs in again");
    let (verifier, token) = app_makes_token();
    phone_sends(&sim, &format!("LOGIN {token}")).await?;
    let answer = app_polls(&http, &api, &verifier, &token).await?;
    ensure!(
        answer["state"] == "complete" && answer["account_id"] == account,
        "expected the same account: {answer}"
    );
    say(
        11,
        &format!("same account, new session: {}", summary(&answer)),
    );
    say(
        9,
        &format!(
            "no credential SMS this time ({} SMS sent so far)",
            sim.submits().len()
        ),
    );

    println!("\n== 3. A mistyped token");
    let (verifier, token) = app_makes_token();
    let typo = mistype_last_symbol(&token.to_string());
    phone_sends(&sim, &format!("LOGIN {typo}")).await?;
    let sms = sim.wait_submits(2, WAIT).await;
    let Some(error_sms) = sms.get(1) else {
        bail!("no error SMS came back")
    };
    say(9, &format!("moauth texted back: \"{}\"", error_sms.text));
    let answer = app_polls(&http, &api, &verifier, &token).await?;
    ensure!(
        answer["state"] == "rejected",
        "expected a rejection: {answer}"
    );
    say(11, &format!("the app's poll says: {answer}"));

    daemon.shutdown().await;
    sim.stop();
    println!(
        "\nDone: moauth unbound, store flushed. Every step above crossed real SMPP and HTTP sockets."
    );
    Ok(())
}

fn app_makes_token() -> (Verifier, Token) {
    let verifier = Verifier::random();
    let token = Token::for_verifier(&verifier, Clock::System.now());
    say(
        2,
        &format!("the app makes a secret verifier and the token {token}"),
    );
    say(
        3,
        &format!(
            "the app opens the SMS composer: {}",
            token.sms_uri(DEFAULT_SHORT_CODE, "LOGIN")
        ),
    );
    (verifier, token)
}

async fn phone_sends(sim: &Simulator, text: &str) -> anyhow::Result<Vec<u32>> {
    let result = sim
        .send_mo(&MoRequest {
            from: PHONE.into(),
            to: Some(DEFAULT_SHORT_CODE.into()),
            text: text.into(),
            ..MoRequest::default()
        })
        .await?;
    say(
        4,
        &format!("the user taps send: {PHONE} → {DEFAULT_SHORT_CODE} \"{text}\""),
    );
    say(
        5,
        &format!(
            "the SMSC delivered it; moauth stored it, then answered deliver_sm_resp status {:?}",
            result.statuses
        ),
    );
    Ok(result.statuses)
}

async fn app_polls(
    http: &reqwest::Client,
    api: &str,
    verifier: &Verifier,
    token: &Token,
) -> anyhow::Result<Value> {
    let response = http
        .post(format!("{api}/v1/logins/poll"))
        .json(&json!({ "verifier": verifier.to_base64url(), "token": token.to_string(), "wait_ms": 10_000 }))
        .send()
        .await
        .context("polling moauth")?;
    Ok(response.json().await?)
}

/// What the app would show; the session itself stays out of the output.
fn summary(answer: &Value) -> String {
    let session = answer["session"].as_str().unwrap_or("");
    format!(
        "state={} account={} number={} session={}… ({} chars)",
        answer["state"].as_str().unwrap_or("?"),
        answer["account_id"].as_str().unwrap_or("?"),
        answer["msisdn"].as_str().unwrap_or("?"),
        &session[..session.len().min(4)],
        session.len()
    )
}

fn mistype_last_symbol(token: &str) -> String {
    let mut chars: Vec<char> = token.chars().collect();
    if let Some(last) = chars.last_mut() {
        *last = if *last == '7' { '8' } else { '7' };
    }
    chars.into_iter().collect()
}

fn say(step: u8, text: &str) {
    if step == 0 {
        println!("   {text}");
    } else {
        println!("   [{step:>2}] {text}");
    }
}
