//! `cargo bench --bench e2e`: every figure of BENCHMARKS.md, each beside its ceiling.
//!
//! The SMSC and the load run in this process (or, for node-smpp, in a `node` child) with
//! logging off; the daemon is the release `moauth` binary in its own process on a store under
//! `target/`, so its CPU, memory and start-up are measured alone. Every figure is taken against
//! each SMSC of `MOAUTH_BENCH_SMSCS` (moauth's simulator and node-smpp by default), beside that
//! SMSC's own null-ESME ceiling from the same run. Rates are medians of `MOAUTH_BENCH_RUNS`
//! runs (default 3). The output is the Markdown that BENCHMARKS.md quotes.

mod daemon;
mod drive;
mod smsc;
mod wrk;

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure};
use moauth::sim::MoRequest;

use daemon::{Daemon, disk_usage};
use drive::{Login, number, quantile};
use smsc::Smsc;

const WINDOWS: [usize; 3] = [1, 10, 100];
const OFFERED: [u32; 3] = [100, 1_000, 5_000];

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn env_list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{} CPUs ({cpu}), Linux {}, load average at start {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        kernel.trim(),
        load_average()
    )
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The one-minute load average now: printed beside every figure, since other builds share
/// the machine's cores.
fn load_now() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .unwrap_or("?")
        .to_owned()
}

/// Rates of one batch of MOs through the daemon: acked MO/s, processed MO/s, submit_sm/s.
struct Rates {
    acked: f64,
    processed: f64,
    /// New numbers: sessions seen by their long-pollers per second.
    sessions: Option<f64>,
    submits: f64,
    /// Daemon CPU time per MO, in microseconds: steadier than rates on a shared machine.
    cpu_us: f64,
    /// CPU use of the daemon and of this process (SMSC and driver), in % of one core.
    daemon_pct: f64,
    driver_pct: f64,
}

/// What every part of one SMSC's run shares.
struct Bench {
    runs: usize,
    dir: std::path::PathBuf,
    http: reqwest::Client,
    smsc_name: String,
    smsc: Smsc,
    daemon: Daemon,
    /// MOs the daemon has finished so far (its `processed` count once settled).
    processed: u64,
    /// Registered numbers: `number(0..users)`.
    users: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    moauth::install_crypto_provider();
    let parts = env_list("MOAUTH_BENCH_PARTS", "ingest,latency,poll,memory");
    let part = |name: &str| parts.iter().any(|p| p == name);
    if part("poll") || part("memory") {
        wrk::ensure_installed()?;
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-e2e");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    // node-smpp's install outlives the run's directory: `npm ci` once per target dir.
    let node_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("node-smsc");
    println!("Machine: {}", machine());
    let runs = env_or("MOAUTH_BENCH_RUNS", 3);
    println!(
        "Runs per figure: {runs} (median shown); daemon log level warn, SMSC logging off. \
         `load` is the one-minute load average when the figure was taken.\n"
    );
    let smscs = env_list("MOAUTH_BENCH_SMSCS", "sim,node");
    // Idle connections are dropped before the daemon's `[http] idle_timeout_secs` (5 s) can
    // close them: a poll sent on one the daemon is closing fails ("connection closed before
    // message completed"), as it did between batches of new numbers, whose credential SMS
    // the bench waits for.
    let http = reqwest::Client::builder()
        .pool_idle_timeout(Duration::from_secs(2))
        .build()?;
    for (i, name) in smscs.iter().enumerate() {
        let smsc = Smsc::start(name, &node_dir).await?;
        println!("# Against {}\n", smsc.describe());
        let store = dir.join(format!("store-{name}"));
        let daemon = Daemon::start(&dir, &store, smsc.addr()).await?;
        ensure!(
            smsc.wait_bound(1, Duration::from_secs(30)).await,
            "daemon did not bind to {name}"
        );
        let ready_empty = daemon.ready_after;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let rss_idle = daemon.rss_mib();
        let mut bench = Bench {
            runs,
            dir: dir.clone(),
            http: http.clone(),
            smsc_name: name.clone(),
            smsc: smsc.clone(),
            daemon,
            processed: 0,
            users: 0,
        };
        if part("ingest") {
            bench.ingest(&node_dir).await?;
        } else {
            let new_users = env_or("MOAUTH_BENCH_NEW_USERS", 300);
            let logins = bench.fresh_users(new_users);
            bench.through_daemon(100, logins, false).await?;
        }
        if part("latency") {
            bench.latency().await?;
        }
        // The poll API does not involve the SMSC: once is enough.
        if part("poll") && i == 0 {
            bench.poll().await?;
        }
        bench.daemon.stop().await?;
        println!("\n## Memory and start-up, empty store\n");
        println!("| figure | value |");
        println!("|---|---|");
        println!("| RSS idle, empty store, bound | {rss_idle:.1} MiB |");
        println!("| start → READY, empty store | {:.0} ms |", ms(ready_empty));
        // Logins made over SMPP: against the first SMSC only (it takes minutes).
        if part("memory") && i == 0 {
            memory(&dir, &smsc, &http).await?;
        }
        println!();
    }
    println!("Load average at the end: {}", load_average());
    Ok(())
}

impl Bench {
    fn poll_url(&self) -> String {
        poll_url_of(&self.daemon)
    }

    /// `count` new numbers, each with a fresh login; they are returning users from then on.
    fn fresh_users(&mut self, count: usize) -> Vec<(Login, String)> {
        let logins = (self.users..self.users + count)
            .map(|i| (Login::fresh(), number(i)))
            .collect();
        self.users += count;
        logins
    }

    /// A batch through the daemon: acked MO/s, then processed MO/s and submit_sm/s once the
    /// inbox and outbox are empty again; with `sessions`, also the rate at which each login's
    /// long-poller got its session.
    async fn through_daemon(
        &mut self,
        window: usize,
        logins: Vec<(Login, String)>,
        sessions: bool,
    ) -> anyhow::Result<Rates> {
        let count = logins.len() as u64;
        let logins_count = logins.len();
        let mos: Vec<MoRequest> = logins.iter().map(|(l, n)| l.mo(n)).collect();
        let submits_before = self.smsc.submit_times().len();
        let started = Instant::now();
        let polls = sessions.then(|| {
            let logins = logins.into_iter().map(|(l, _)| l).collect();
            tokio::spawn(sessions_complete(
                self.http.clone(),
                self.poll_url(),
                logins,
            ))
        });
        let cpu_before = self.daemon.cpu_secs();
        let driver_before = daemon::cpu_secs("self");
        let acked = self.smsc.at_window(window, mos).await?;
        self.processed += count;
        self.daemon.settled(&self.http, self.processed).await?;
        if sessions {
            // New numbers: their credential SMS follow the logins (the registrar hashes
            // beside the pipeline), so an empty outbox is not the end of the batch.
            let deadline = Instant::now() + Duration::from_secs(300);
            while self.smsc.submit_times().len() < submits_before + logins_count {
                anyhow::ensure!(
                    Instant::now() < deadline,
                    "credential SMS missing: {} of {logins_count}",
                    self.smsc.submit_times().len() - submits_before
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let wall = started.elapsed().as_secs_f64();
        let processed = count as f64 / wall;
        let daemon_cpu = self.daemon.cpu_secs() - cpu_before;
        let cpu_us = daemon_cpu * 1e6 / count as f64;
        let driver_pct = (daemon::cpu_secs("self") - driver_before) / wall * 100.0;
        let sessions = match polls {
            Some(polls) => {
                let last = polls.await??;
                Some(count as f64 / (last - started).as_secs_f64())
            }
            None => None,
        };
        let times = self.smsc.submit_times();
        let submits = match &times[submits_before..] {
            [first, .., last] => {
                (times.len() - submits_before - 1) as f64 / (*last - *first).as_secs_f64()
            }
            _ => 0.0,
        };
        Ok(Rates {
            acked,
            processed,
            sessions,
            submits,
            cpu_us,
            daemon_pct: daemon_cpu / wall * 100.0,
            driver_pct,
        })
    }

    async fn ingest(&mut self, node_dir: &Path) -> anyhow::Result<()> {
        let new_users = env_or("MOAUTH_BENCH_NEW_USERS", 300);
        let logins = env_or("MOAUTH_BENCH_LOGINS", 20_000);
        println!("## MO ingest with durable ack\n");
        println!(
            "| users | window | MO/s acked | MO/s processed | sessions/s | submit_sm/s | daemon CPU µs/MO | CPU daemon / driver | null-ESME MO/s | processed / ceiling | load |"
        );
        println!("|---|---|---|---|---|---|---|---|---|---|---|");
        let null_smsc = Smsc::start(&self.smsc_name, node_dir).await?;
        drive::null_esme(&null_smsc).await?;
        let windows: Vec<usize> = env_list("MOAUTH_BENCH_WINDOWS", "1,10,100")
            .iter()
            .filter_map(|w| w.parse().ok())
            .collect();
        let windows = if windows.is_empty() {
            WINDOWS.to_vec()
        } else {
            windows
        };
        // New users first: they are the returning users of everything after.
        let mut table = Vec::new();
        for &window in &windows {
            let mut rates = Vec::new();
            for _ in 0..self.runs {
                let logins = self.fresh_users(new_users);
                rates.push(self.through_daemon(window, logins, true).await?);
            }
            table.push((
                "new (registration + credentials SMS)",
                new_users,
                window,
                rates,
                load_now(),
            ));
        }
        for &window in &windows {
            let mut rates = Vec::new();
            for _ in 0..self.runs {
                let logins = (0..logins)
                    .map(|i| (Login::fresh(), number(i % self.users)))
                    .collect();
                rates.push(self.through_daemon(window, logins, false).await?);
            }
            table.push(("returning (login)", logins, window, rates, load_now()));
        }
        for (kind, count, window, rates, load) in table {
            let mut ceilings = Vec::new();
            for _ in 0..self.runs {
                let mos = (0..count).map(|i| Login::fresh().mo(&number(i))).collect();
                ceilings.push(null_smsc.at_window(window, mos).await?);
            }
            let processed = median(rates.iter().map(|r| r.processed).collect());
            let ceiling = median(ceilings);
            let sessions: Vec<f64> = rates.iter().filter_map(|r| r.sessions).collect();
            println!(
                "| {kind} | {window} | {:.0} | {processed:.0} | {} | {:.0} | {:.0} | {:.0}% / {:.0}% | {ceiling:.0} | {:.3} | {load} |",
                median(rates.iter().map(|r| r.acked).collect()),
                if sessions.is_empty() {
                    "—".to_owned()
                } else {
                    format!("{:.0}", median(sessions))
                },
                median(rates.iter().map(|r| r.submits).collect()),
                median(rates.iter().map(|r| r.cpu_us).collect()),
                median(rates.iter().map(|r| r.daemon_pct).collect()),
                median(rates.iter().map(|r| r.driver_pct).collect()),
                processed / ceiling
            );
        }
        Ok(())
    }

    async fn latency(&mut self) -> anyhow::Result<()> {
        println!("\n## MO → session seen by a long-poller (returning users)\n");
        println!(
            "| offered MO/s | MOs | p50 | p99 | p99.9 | polls without a session | errors | daemon CPU | driver CPU | load |"
        );
        println!("|---|---|---|---|---|---|---|---|---|---|");
        let poll_url = self.poll_url();
        for rate in OFFERED {
            let seconds = if rate >= 1_000 { 3 } else { 5 };
            let (daemon_cpu, driver_cpu) = (self.daemon.cpu_secs(), daemon::cpu_secs("self"));
            let started = Instant::now();
            let seen = drive::offered(
                &self.smsc,
                &self.http,
                &poll_url,
                self.users,
                rate,
                Duration::from_secs(seconds),
            )
            .await?;
            let wall = started.elapsed().as_secs_f64();
            let daemon_cpu = (self.daemon.cpu_secs() - daemon_cpu) / wall * 100.0;
            let driver_cpu = (daemon::cpu_secs("self") - driver_cpu) / wall * 100.0;
            let load = load_now();
            let sent = seen.latencies.len() + seen.no_session + seen.errors;
            // Every MO that reached the daemon is processed before the next load starts.
            let status = self.daemon.status(&self.http).await?;
            self.processed = status["processed"].as_u64().unwrap_or(self.processed);
            self.daemon.settled(&self.http, self.processed).await?;
            let l = &seen.latencies;
            println!(
                "| {rate} | {sent} | {:.2} ms | {:.2} ms | {:.2} ms | {} | {}{} | {daemon_cpu:.0}% | {driver_cpu:.0}% | {load} |",
                ms(quantile(l, 0.5)),
                ms(quantile(l, 0.99)),
                ms(quantile(l, 0.999)),
                seen.no_session,
                seen.errors,
                seen.first_error
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default(),
            );
        }
        Ok(())
    }

    async fn poll(&mut self) -> anyhow::Result<()> {
        println!("\n## Poll API (wrk, 2 threads, 64 keep-alive connections)\n");
        let poll_url = self.poll_url();
        let completed = Login::fresh();
        self.smsc.send_mo(&completed.mo(&number(0))).await?;
        self.processed += 1;
        let first: serde_json::Value = self
            .http
            .post(&poll_url)
            .json(&completed.poll_body(10_000))
            .send()
            .await?
            .json()
            .await?;
        ensure!(
            first["state"] == "complete",
            "login did not complete: {first}"
        );
        let pending = Login::fresh();
        let bare = wrk::bare_axum().await?;
        let secs = env_or("MOAUTH_BENCH_WRK_SECS", 8) as u32;
        println!("| target | req/s | p99 | non-2xx | / bare axum | load |");
        println!("|---|---|---|---|---|---|");
        let bare_result = wrk::post(
            &self.dir,
            &format!("http://{bare}/v1/logins/poll"),
            &pending.poll_body(0).to_string(),
            secs,
        )?;
        let bare_load = load_now();
        for (what, login) in [
            ("completed login (answers `consumed`)", &completed),
            ("pending login", &pending),
        ] {
            let r = wrk::post(&self.dir, &poll_url, &login.poll_body(0).to_string(), secs)?;
            println!(
                "| {what} | {:.0} | {} | {} | {:.2} | {} |",
                r.requests_per_sec,
                r.p99,
                r.non_2xx,
                r.requests_per_sec / bare_result.requests_per_sec,
                load_now()
            );
        }
        println!(
            "| bare axum, constant answer | {:.0} | {} | {} | 1.00 | {bare_load} |",
            bare_result.requests_per_sec, bare_result.p99, bare_result.non_2xx
        );
        Ok(())
    }
}

/// Long-polls each login until it is complete; when the last one was.
async fn sessions_complete(
    http: reqwest::Client,
    poll_url: String,
    logins: Vec<Login>,
) -> anyhow::Result<Instant> {
    let polls: Vec<_> = logins
        .into_iter()
        .map(|login| {
            let (http, url) = (http.clone(), poll_url.clone());
            tokio::spawn(async move {
                loop {
                    let answer: serde_json::Value = http
                        .post(&url)
                        .json(&login.poll_body(30_000))
                        .send()
                        .await?
                        .json()
                        .await?;
                    match answer["state"].as_str() {
                        Some("complete") => return Ok(Instant::now()),
                        Some("pending") => continue,
                        _ => bail!("login ended without a session: {answer}"),
                    }
                }
            })
        })
        .collect();
    let mut last = Instant::now();
    for poll in polls {
        last = last.max(poll.await??);
    }
    Ok(last)
}

/// `MOAUTH_BENCH_LIVE_LOGINS` logins made over SMPP through the pipeline into a fresh store:
/// RSS, size on disk per live login, start-up with that store.
async fn memory(dir: &Path, smsc: &Smsc, http: &reqwest::Client) -> anyhow::Result<()> {
    let live = env_or("MOAUTH_BENCH_LIVE_LOGINS", 1_000_000);
    let users = 100;
    let chunk = 50_000;
    let store = dir.join("store-live");
    let daemon = Daemon::start(dir, &store, smsc.addr()).await?;
    ensure!(
        smsc.wait_bound(1, Duration::from_secs(30)).await,
        "daemon did not bind"
    );
    let register: Vec<MoRequest> = (0..users).map(|i| Login::fresh().mo(&number(i))).collect();
    smsc.at_window(100, register).await?;
    daemon.settled(http, users as u64).await?;
    let started = Instant::now();
    let cpu_before = daemon.cpu_secs();
    let mut made = 0;
    while made < live {
        let n = chunk.min(live - made);
        let mos = (made..made + n)
            .map(|i| Login::fresh().mo(&number(i % users)))
            .collect();
        smsc.at_window(100, mos).await?;
        made += n;
        daemon.settled(http, (users + made) as u64).await?;
    }
    let took = started.elapsed().as_secs_f64();
    let cpu_us = (daemon.cpu_secs() - cpu_before) * 1e6 / live as f64;
    let load_made = load_now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_made = daemon.rss_mib();
    let size = disk_usage(&store);
    let poll = Login::fresh().poll_body(0).to_string();
    wrk::post(dir, &poll_url_of(&daemon), &poll, 3)?;
    let rss_polled = daemon.rss_mib();
    daemon.stop().await?;
    let again = Daemon::start(dir, &store, smsc.addr()).await?;
    let ready_again = again.ready_after;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_again = again.rss_mib();
    again.stop().await?;
    println!("\n## Memory, disk and start-up after {live} logins made over SMPP\n");
    println!("| figure | value |");
    println!("|---|---|");
    println!(
        "| {live} logins over SMPP (window 100, {users} numbers) | {took:.0} s: {:.0} logins/s processed, {cpu_us:.0} µs daemon CPU per login, load {load_made} |",
        live as f64 / took
    );
    println!("| RSS after them, idle | {rss_made:.1} MiB |");
    println!("| RSS after 3 s of polls | {rss_polled:.1} MiB |");
    println!(
        "| store on disk, {live} live logins | {:.0} MiB, {:.0} bytes per live login |",
        size as f64 / 1_048_576.0,
        size as f64 / live as f64
    );
    println!(
        "| start → READY with that store, then RSS idle | {:.0} ms, {rss_again:.1} MiB |",
        ms(ready_again)
    );
    Ok(())
}

fn poll_url_of(daemon: &Daemon) -> String {
    format!("http://{}/v1/logins/poll", daemon.http)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
