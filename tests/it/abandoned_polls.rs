//! Ten thousand long-polls opened with fresh valid tokens and abandoned (#12): anyone can make
//! a valid token, so whatever an open poll holds must go when its client does. After every
//! wave the daemon's login notifier is empty again (`moauth_poll_waiters`), and its resident
//! memory after all waves stays within a stated tolerance of what it was after a warm-up.
//!
//! The polls come in waves of [`WAVE`]: the daemon serves `max_connections` (1024 by default)
//! at once, and the default `max_long_polls` is 1000, so a wave is as many as a stock daemon
//! holds open. Both limits that would refuse one address this many polls are opened: the
//! poll rate limit is off, and the per-client share of the long-poll cap is a whole wave.

use crate::common;

use common::process::Spawned;
use moauth::core::clock::Clock;
use moauth::core::token::{Token, Verifier};
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const WAVE: usize = 1000;
const WAVES: usize = 10;
/// Waves before the first measurement: the allocator's arenas and the runtime's buffers grow
/// over the first few thousand connections, then level off (measured: +9 MiB over the first
/// 5,000 polls, under 2 MiB over the next 10,000, flat after about 12,000).
const WARM_UP_WAVES: usize = 5;
/// Resident memory may grow this much from after the warm-up to after the last wave: allocator
/// slack, not a per-poll leak (630 bytes left behind by each of 10,000 polls would exceed it).
const RSS_TOLERANCE_KIB: u64 = 6 * 1024;

/// The daemon's resident set size in KiB, from /proc/PID/status.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

/// Opens `WAVE` long-polls of 30 s, each for a fresh token of its own, waits until the
/// daemon holds every one open, then closes every connection without reading an answer.
async fn abandoned_wave(d: &Spawned, http: &reqwest::Client) {
    let mut clients = Vec::with_capacity(WAVE);
    for _ in 0..WAVE {
        let verifier = Verifier::random();
        let token = Token::for_verifier(&verifier, Clock::System.now());
        let body = json!({
            "verifier": verifier.to_base64url(),
            "token": token.to_string(),
            "wait_ms": 30_000,
        })
        .to_string();
        let mut stream = TcpStream::connect(d.http).await.unwrap();
        let request = format!(
            "POST /v1/logins/poll HTTP/1.1\r\nHost: moauth\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        clients.push(stream);
    }
    common::eventually("every poll of the wave waiting", async || {
        common::scrape(http, d.http, "moauth_poll_waiters").await == Some(WAVE as f64)
    })
    .await;
    drop(clients);
    common::eventually("the notifier empty after the clients left", async || {
        common::scrape(http, d.http, "moauth_poll_waiters").await == Some(0.0)
            && common::scrape(http, d.http, "moauth_long_polls_active").await == Some(0.0)
    })
    .await;
}

#[tokio::test]
async fn ten_thousand_abandoned_long_polls_leave_no_waiter_and_no_memory_behind() {
    let config = format!("[limits]\npoll_per_minute = 0\nmax_long_polls_per_client = {WAVE}");
    let mut d = Spawned::start(&config, &[]).await;
    let http = common::http_client();

    for _ in 0..WARM_UP_WAVES {
        abandoned_wave(&d, &http).await;
    }
    let warm = rss_kib(d.pid());
    for _ in 0..WAVES {
        abandoned_wave(&d, &http).await;
    }
    let after = rss_kib(d.pid());
    eprintln!(
        "RSS after {} warm-up long-polls: {warm} KiB; after {} more, all abandoned: {after} KiB",
        WAVE * WARM_UP_WAVES,
        WAVE * WAVES
    );
    assert!(
        after <= warm + RSS_TOLERANCE_KIB,
        "RSS grew from {warm} KiB to {after} KiB over {} abandoned long-polls",
        WAVE * WAVES
    );
    d.signal(libc::SIGTERM);
    assert_eq!(d.exit_code().await, 0, "logs:\n{}", d.logs.text());
}
