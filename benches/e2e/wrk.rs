//! The poll API under wrk (keep-alive), and the bare axum handler it is measured beside.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};
use axum::Router;

pub struct WrkResult {
    pub requests_per_sec: f64,
    pub p99: String,
    /// Answers that were not 2xx (a bare rate of errors would look fast).
    pub non_2xx: u64,
}

/// Installs wrk from Debian when it is missing.
pub fn ensure_installed() -> anyhow::Result<()> {
    if Command::new("wrk").arg("--version").output().is_ok() {
        return Ok(());
    }
    eprintln!("bench: wrk not found; apt-get install -y wrk");
    let status = Command::new("apt-get")
        .args(["install", "-y", "wrk"])
        .status()
        .context("running apt-get")?;
    if !status.success() {
        bail!("could not install wrk; install it and run again");
    }
    Ok(())
}

/// `wrk` POSTing `body` to `url` for `secs` with 2 threads and 64 connections.
pub fn post(dir: &Path, url: &str, body: &str, secs: u32) -> anyhow::Result<WrkResult> {
    let script = dir.join("post.lua");
    std::fs::write(
        &script,
        format!(
            "wrk.method = \"POST\"\nwrk.body = '{body}'\nwrk.headers[\"Content-Type\"] = \"application/json\"\n"
        ),
    )?;
    let output = Command::new("wrk")
        .args(["-t2", "-c64", &format!("-d{secs}s"), "--latency", "-s"])
        .arg(&script)
        .arg(url)
        .output()
        .context("running wrk")?;
    let text = String::from_utf8_lossy(&output.stdout);
    let requests_per_sec = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .with_context(|| format!("no Requests/sec in wrk output:\n{text}"))?;
    let p99 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("99%"))
        .map(|v| v.trim().to_owned())
        .unwrap_or_default();
    let non_2xx = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Non-2xx or 3xx responses:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    Ok(WrkResult {
        requests_per_sec,
        p99,
        non_2xx,
    })
}

/// An axum server whose poll route returns a constant: what HTTP costs on this box.
pub async fn bare_axum() -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = Router::new().route(
        "/v1/logins/poll",
        axum::routing::post(|| async { axum::Json(serde_json::json!({ "state": "pending" })) }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}
