//! The small subcommands: everything `main.rs` hands over that is not the daemon itself.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::json;

use crate::clock::Clock;
use crate::daemon::{Daemon, Options};
use crate::ops::config::{Config, SmscConfig};
use crate::sim::{MoRequest, SimConfig, Simulator};
use crate::token::{Token, Verifier};

/// Default SMPP credentials of the embedded simulator.
pub const SIM_SYSTEM_ID: &str = "moauth";
pub const SIM_PASSWORD: &str = "sim-pass";
pub const DEFAULT_SHORT_CODE: &str = "10690000";

/// `moauth token`: what an app does before opening the SMS composer.
pub fn token(json: bool, short_code: &str, keyword: &str) {
    let verifier = Verifier::random();
    let token = Token::for_verifier(&verifier, Clock::System.now());
    let sms_uri = token.sms_uri(short_code, keyword);
    if json {
        println!(
            "{}",
            json!({ "verifier": verifier.to_base64url(), "token": token.to_string(), "sms_uri": sms_uri })
        );
    } else {
        println!("verifier  {}", verifier.to_base64url());
        println!("token     {token}");
        println!("sms uri   {sms_uri}");
        println!("The app keeps the verifier secret and polls POST /v1/logins/poll with it.");
    }
}

/// `moauth check-config FILE`: exit code 2 on any mistake, with file, line and key.
pub fn check_config(path: &Path) -> anyhow::Result<()> {
    let config = Config::load(path)?;
    println!(
        "{}: ok ({} SMSC connection{})",
        path.display(),
        config.smsc.len(),
        if config.smsc.len() == 1 { "" } else { "s" }
    );
    Ok(())
}

/// `moauth run`: with a config file as configured; without one, on the embedded simulator.
pub async fn run(config: Option<PathBuf>) -> anyhow::Result<()> {
    let (config, _sim) = match config {
        Some(path) => (Config::load(&path)?, None),
        None => {
            let sim = Simulator::start(SimConfig {
                listen: "127.0.0.1:2775".parse()?,
                control: Some("127.0.0.1:2776".parse()?),
                system_id: SIM_SYSTEM_ID.into(),
                password: SIM_PASSWORD.into(),
            })
            .await
            .context("starting the embedded simulator")?;
            eprintln!("=================================================================");
            eprintln!(" NO CONFIG FILE: moauth is talking to its BUILT-IN SMSC SIMULATOR");
            eprintln!(
                " SMPP {}  control http://{}",
                sim.smpp_addr,
                sim.control_addr.expect("control")
            );
            eprintln!(" store ./moauth-data; no real SMS will be sent or received.");
            eprintln!(" Give --config FILE to connect to a real SMSC.");
            eprintln!("=================================================================");
            (
                embedded_config(
                    "moauth-data".into(),
                    "127.0.0.1:8080".parse()?,
                    sim.smpp_addr,
                ),
                Some(sim),
            )
        }
    };
    let daemon = Daemon::start(config, Clock::System, Options::default()).await?;
    tokio::signal::ctrl_c()
        .await
        .context("waiting for a signal")?;
    daemon.shutdown().await;
    Ok(())
}

/// The configuration used with the embedded simulator (`run` without a file, `demo`).
pub fn embedded_config(store: PathBuf, http: SocketAddr, smsc: SocketAddr) -> Config {
    let mut config = Config::defaults(store);
    config.http.listen = http;
    config.smsc = vec![SmscConfig {
        name: "sim".into(),
        address: smsc,
        system_id: SIM_SYSTEM_ID.into(),
        password: SIM_PASSWORD.into(),
        system_type: String::new(),
        short_code: DEFAULT_SHORT_CODE.into(),
        interface_version: "3.4".into(),
        enquire_link_secs: 30,
        response_timeout_secs: 10,
        window: 10,
    }];
    config
}

/// `moauth sim send`: inject an MO through a running simulator's control API.
pub async fn sim_send(control: &str, request: MoRequest) -> anyhow::Result<()> {
    let response = reqwest::Client::new()
        .post(format!("{}/mo", control.trim_end_matches('/')))
        .json(&request)
        .send()
        .await
        .with_context(|| format!("reaching the simulator at {control}"))?;
    let status = response.status();
    let body: serde_json::Value = response.json().await?;
    if !status.is_success() {
        bail!("simulator: {}", body["message"].as_str().unwrap_or("error"));
    }
    println!("{body}");
    Ok(())
}

/// `moauth sim submits`: what the ESME has submitted so far.
pub async fn sim_submits(control: &str) -> anyhow::Result<()> {
    let body: serde_json::Value =
        reqwest::get(format!("{}/submits", control.trim_end_matches('/')))
            .await
            .with_context(|| format!("reaching the simulator at {control}"))?
            .json()
            .await?;
    println!("{}", serde_json::to_string_pretty(&body)?);
    Ok(())
}
