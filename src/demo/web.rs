//! `moauth demo --web`: the login page in a browser, with a simulated phone beside it.
//!
//! The simulator and the daemon run as in `moauth demo`, and `/login` is the real page. The
//! phone is two routes that only this demo adds to the daemon's HTTP port (so the page still
//! loads nothing from another origin): `POST /demo/sms` hands a text to the simulator as an MO
//! from the number typed into the phone, and `GET /demo/replies` lists what moauth texted back
//! to that number.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::ensure;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::cli::embedded_config;
use crate::core::DEFAULT_SHORT_CODE;
use crate::core::clock::Clock;
use crate::daemon::{Daemon, DaemonError};
use crate::http::ApiError;
use crate::http::page;
use crate::sim::{MoRequest, Simulator};

/// How long `GET /demo/replies` waits for a reply that may never come (a known number's login
/// gets none).
const REPLY_WAIT: Duration = Duration::from_secs(5);

pub async fn run(listen: Option<SocketAddr>) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("moauth-demo-web-{}", std::process::id()));
    let result = serve(&dir, listen).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn serve(dir: &std::path::Path, listen: Option<SocketAddr>) -> anyhow::Result<()> {
    let sim = super::start_simulator().await?;
    let start = |addr: SocketAddr| {
        let config = embedded_config(dir.join("store"), addr, sim.smpp_addr);
        Daemon::start_with_demo_phone(config, Clock::System, phone_routes(sim.clone()))
    };
    let daemon = match listen {
        Some(addr) => start(addr).await?,
        // Port 8080 when it is free, so the URL is easy to remember; any port otherwise.
        None => match start("127.0.0.1:8080".parse()?).await {
            Err(DaemonError::Listen { .. }) => start("127.0.0.1:0".parse()?).await?,
            started => started?,
        },
    };
    ensure!(
        sim.wait_bound(1, super::WAIT).await,
        "moauth did not bind to the simulator"
    );
    println!(
        "moauth is up, bound to its built-in SMSC simulator (no real SMS leaves this machine)."
    );
    println!();
    println!("    Open http://{}/login", daemon.http_addr);
    println!();
    println!("No phone needed: press \"Send SMS\" on the simulated phone beside the page.");
    println!("Edit the text first to see a typo refused. Ctrl-C stops the demo.");
    tokio::signal::ctrl_c().await?;
    daemon.shutdown().await;
    sim.stop();
    Ok(())
}

/// The simulated phone's routes, for the daemon to serve.
pub fn phone_routes(sim: Simulator) -> Router {
    Router::new()
        .route("/demo/phone.js", get(|| async { page::demo_phone_js() }))
        .route("/demo/sms", post(sms))
        .route("/demo/replies", get(replies))
        .with_state(sim)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Sms {
    from: String,
    text: String,
}

async fn sms(
    State(sim): State<Simulator>,
    body: Result<Json<Sms>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(sms) = body.map_err(ApiError::from_json)?;
    let result = sim
        .send_mo(&MoRequest {
            from: sms.from,
            to: Some(DEFAULT_SHORT_CODE.into()),
            text: sms.text,
            ..MoRequest::default()
        })
        .await
        .map_err(|e| ApiError::bad_request("bad_request", e.to_string()))?;
    // Every deliver_sm_resp is in: moauth has the MO durably in its inbox.
    Ok(Json(json!({ "statuses": result.statuses })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RepliesQuery {
    to: String,
    #[serde(default)]
    seen: usize,
}

/// What moauth texted to `to`, oldest first; waits a while for more than `seen` of them.
async fn replies(
    State(sim): State<Simulator>,
    query: Result<Query<RepliesQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request("bad_request", e.body_text()))?;
    let digits = |number: &str| number.trim_start_matches('+').to_owned();
    let to = digits(&query.to);
    let deadline = Instant::now() + REPLY_WAIT;
    loop {
        let all = sim.submits();
        let mine: Vec<&str> = all
            .iter()
            .filter(|sms| digits(&sms.to) == to)
            .map(|sms| sms.text.as_str())
            .collect();
        let now = Instant::now();
        if mine.len() > query.seen || now >= deadline {
            return Ok(Json(json!({ "replies": mine })));
        }
        sim.wait_submits(all.len() + 1, deadline - now).await;
    }
}
