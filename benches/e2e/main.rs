//! `cargo bench --bench e2e`: every figure of BENCHMARKS.md, each beside its ceiling.
//!
//! The simulator and the load run in this process with logging off; the daemon is the release
//! `moauth` binary in its own process on a store under `target/`, so its CPU, memory and
//! start-up are measured alone. Rates are medians of `MOAUTH_BENCH_RUNS` runs (default 3).
//! The output is the Markdown that BENCHMARKS.md quotes.

mod daemon;
mod drive;
mod wrk;

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use moauth::cli::{SIM_PASSWORD, SIM_SYSTEM_ID};
use moauth::core::login::LoginRecord;
use moauth::core::login::LoginState;
use moauth::core::msisdn::Msisdn;
use moauth::sim::{MoRequest, SimConfig, Simulator};
use moauth::store::Store;

use daemon::{Daemon, disk_usage};
use drive::{Login, number, quantile};

const WINDOWS: [usize; 3] = [1, 10, 100];
const OFFERED: [u32; 3] = [100, 1_000, 5_000];

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
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

async fn sim() -> anyhow::Result<Simulator> {
    Ok(Simulator::start(SimConfig {
        listen: "127.0.0.1:0".parse()?,
        control: None,
        system_id: SIM_SYSTEM_ID.into(),
        password: SIM_PASSWORD.into(),
        tls: None,
    })
    .await?)
}

/// Rates of one batch of MOs through the daemon: acked MO/s, processed MO/s, submit_sm/s.
struct Rates {
    acked: f64,
    processed: f64,
    submits: f64,
    /// Daemon CPU time per MO, in microseconds: steadier than rates on a shared machine.
    cpu_us: f64,
    /// CPU use of the daemon and of this process (simulator and driver), in % of one core.
    daemon_pct: f64,
    driver_pct: f64,
}

/// Writes `count` completed logins into a store, as the pipeline would leave them.
async fn live_logins(path: &Path, count: usize) -> anyhow::Result<()> {
    let store = Store::open(path, 64)?;
    let now = moauth::core::clock::Clock::System.now();
    let numbers: Vec<Msisdn> = (0..1000)
        .map(|i| Msisdn::parse(&number(i)))
        .collect::<Result<_, _>>()?;
    for i in 0..count {
        let login = Login::fresh();
        let record = LoginRecord {
            state: LoginState::Complete {
                session: login.verifier.to_base64url(),
                account_id: (i % 1000).to_string(),
                created: false,
            },
            msisdn: Some(numbers[i % 1000].clone()),
            issued_at: now,
            decided_at: now,
            keep_until: now + 86_400,
        };
        store.commit_outcome(
            u64::MAX - i as u64,
            Some((login.token.challenge(), record)),
            &[],
            None,
        )?;
    }
    store.flush().await?;
    Ok(())
}

/// What every part of the run shares.
struct Bench {
    runs: usize,
    dir: std::path::PathBuf,
    http: reqwest::Client,
    sim: Simulator,
    daemon: Daemon,
    /// MOs the daemon has finished so far (its `processed` count once settled).
    processed: u64,
    /// Registered numbers: `number(0..users)`.
    users: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    moauth::install_crypto_provider();
    let parts =
        std::env::var("MOAUTH_BENCH_PARTS").unwrap_or_else(|_| "ingest,latency,poll,memory".into());
    let part = |name: &str| parts.split(',').any(|p| p == name);
    wrk::ensure_installed()?;
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-e2e");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    println!("Machine: {}", machine());
    let runs = env_or("MOAUTH_BENCH_RUNS", 3);
    println!(
        "Runs per figure: {runs} (median shown); daemon log level warn, simulator logging off.\n"
    );

    let sim = sim().await?;
    let daemon = Daemon::start(&dir, &dir.join("store"), sim.smpp_addr).await?;
    anyhow::ensure!(
        sim.wait_bound(1, Duration::from_secs(30)).await,
        "daemon did not bind"
    );
    let ready_empty = daemon.ready_after;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_idle = daemon.rss_mib();
    let mut bench = Bench {
        runs,
        dir,
        http: reqwest::Client::new(),
        sim,
        daemon,
        processed: 0,
        users: 0,
    };
    if part("ingest") {
        bench.ingest().await?;
    } else {
        bench
            .register(env_or("MOAUTH_BENCH_NEW_USERS", 300))
            .await?;
    }
    if part("latency") {
        bench.latency().await?;
    }
    if part("poll") {
        bench.poll().await?;
    }
    let Bench {
        daemon, sim, dir, ..
    } = bench;
    daemon.stop().await?;

    println!("\n## Memory and start-up\n");
    println!("| figure | value |");
    println!("|---|---|");
    println!("| RSS idle, empty store, bound | {rss_idle:.1} MiB |");
    println!("| start → READY, empty store | {:.0} ms |", ms(ready_empty));
    if part("memory") {
        memory(&dir, &sim).await?;
    }
    println!("\nLoad average at the end: {}", load_average());
    Ok(())
}

impl Bench {
    /// A batch through the daemon: acked MO/s, then processed MO/s and submit_sm/s once the
    /// inbox and outbox are empty again.
    async fn through_daemon(
        &mut self,
        window: usize,
        mos: Vec<MoRequest>,
    ) -> anyhow::Result<Rates> {
        let count = mos.len() as u64;
        let submits_before = self.sim.submit_times().len();
        let started = Instant::now();
        let cpu_before = self.daemon.cpu_secs();
        let driver_before = daemon::cpu_secs("self");
        let acked = drive::at_window(&self.sim, window, mos).await?;
        self.processed += count;
        self.daemon.settled(&self.http, self.processed).await?;
        let wall = started.elapsed().as_secs_f64();
        let processed = count as f64 / wall;
        let daemon_cpu = self.daemon.cpu_secs() - cpu_before;
        let cpu_us = daemon_cpu * 1e6 / count as f64;
        let driver_pct = (daemon::cpu_secs("self") - driver_before) / wall * 100.0;
        let times = self.sim.submit_times();
        let submits = match &times[submits_before..] {
            [first, .., last] => {
                (times.len() - submits_before - 1) as f64 / (*last - *first).as_secs_f64()
            }
            _ => 0.0,
        };
        Ok(Rates {
            acked,
            processed,
            submits,
            cpu_us,
            daemon_pct: daemon_cpu / wall * 100.0,
            driver_pct,
        })
    }

    /// `count` new numbers register; they are returning users from then on.
    async fn register(&mut self, count: usize) -> anyhow::Result<Rates> {
        let mos = (self.users..self.users + count)
            .map(|i| Login::fresh().mo(&number(i)))
            .collect();
        self.users += count;
        self.through_daemon(100, mos).await
    }

    async fn ingest(&mut self) -> anyhow::Result<()> {
        let new_users = env_or("MOAUTH_BENCH_NEW_USERS", 300);
        let logins = env_or("MOAUTH_BENCH_LOGINS", 20_000);
        println!("## MO ingest with durable ack\n");
        println!(
            "| users | window | MO/s acked | MO/s processed | submit_sm/s | daemon CPU µs/MO | CPU daemon / driver | null-ESME MO/s | acked / ceiling |"
        );
        println!("|---|---|---|---|---|---|---|---|---|");
        let null_sim = sim_with_null_esme().await?;
        let windows: Vec<usize> = std::env::var("MOAUTH_BENCH_WINDOWS")
            .ok()
            .map(|w| w.split(',').filter_map(|w| w.parse().ok()).collect())
            .unwrap_or_else(|| WINDOWS.to_vec());
        // New users first: they are the returning users of everything after.
        let mut table = Vec::new();
        for &window in &windows {
            let mut rates = Vec::new();
            for _ in 0..self.runs {
                let mos = (self.users..self.users + new_users)
                    .map(|i| Login::fresh().mo(&number(i)))
                    .collect();
                self.users += new_users;
                rates.push(self.through_daemon(window, mos).await?);
            }
            table.push((
                "new (registration + credentials SMS)",
                new_users,
                window,
                rates,
            ));
        }
        for &window in &windows {
            let mut rates = Vec::new();
            for _ in 0..self.runs {
                let mos = (0..logins)
                    .map(|i| Login::fresh().mo(&number(i % self.users)))
                    .collect();
                rates.push(self.through_daemon(window, mos).await?);
            }
            table.push(("returning (login)", logins, window, rates));
        }
        for (kind, count, window, rates) in table {
            let mut ceilings = Vec::new();
            for _ in 0..self.runs {
                let mos = (0..count).map(|i| Login::fresh().mo(&number(i))).collect();
                ceilings.push(drive::at_window(&null_sim, window, mos).await?);
            }
            let acked = median(rates.iter().map(|r| r.acked).collect());
            let ceiling = median(ceilings);
            println!(
                "| {kind} | {window} | {acked:.0} | {:.0} | {:.0} | {:.0} | {:.0}% / {:.0}% | {ceiling:.0} | {:.2} |",
                median(rates.iter().map(|r| r.processed).collect()),
                median(rates.iter().map(|r| r.submits).collect()),
                median(rates.iter().map(|r| r.cpu_us).collect()),
                median(rates.iter().map(|r| r.daemon_pct).collect()),
                median(rates.iter().map(|r| r.driver_pct).collect()),
                acked / ceiling
            );
        }
        Ok(())
    }

    async fn latency(&mut self) -> anyhow::Result<()> {
        println!("\n## MO → session seen by a long-poller (returning users)\n");
        println!(
            "| offered MO/s | MOs | p50 | p99 | p99.9 | polls without a session | errors | daemon CPU | driver CPU |"
        );
        println!("|---|---|---|---|---|---|---|---|---|");
        let poll_url = poll_url_of(&self.daemon);
        for rate in OFFERED {
            let seconds = if rate >= 1_000 { 3 } else { 5 };
            let (daemon_cpu, driver_cpu) = (self.daemon.cpu_secs(), daemon::cpu_secs("self"));
            let started = Instant::now();
            let seen = drive::offered(
                &self.sim,
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
            let sent = seen.latencies.len() + seen.no_session + seen.errors;
            // Every MO that reached the daemon is processed before the next load starts.
            let status = self.daemon.status(&self.http).await?;
            self.processed = status["processed"].as_u64().unwrap_or(self.processed);
            self.daemon.settled(&self.http, self.processed).await?;
            let l = &seen.latencies;
            println!(
                "| {rate} | {sent} | {:.2} ms | {:.2} ms | {:.2} ms | {} | {}{} | {daemon_cpu:.0}% | {driver_cpu:.0}% |",
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
        let poll_url = poll_url_of(&self.daemon);
        let completed = Login::fresh();
        self.sim.send_mo(&completed.mo(&number(0))).await?;
        self.processed += 1;
        let first: serde_json::Value = self
            .http
            .post(&poll_url)
            .json(&completed.poll_body(10_000))
            .send()
            .await?
            .json()
            .await?;
        anyhow::ensure!(
            first["state"] == "complete",
            "login did not complete: {first}"
        );
        let pending = Login::fresh();
        let bare = wrk::bare_axum().await?;
        let secs = env_or("MOAUTH_BENCH_WRK_SECS", 8) as u32;
        println!("| target | req/s | p99 | non-2xx | / bare axum |");
        println!("|---|---|---|---|---|");
        let bare_result = wrk::post(
            &self.dir,
            &format!("http://{bare}/v1/logins/poll"),
            &pending.poll_body(0).to_string(),
            secs,
        )?;
        for (what, login) in [
            ("completed login (answers `consumed`)", &completed),
            ("pending login", &pending),
        ] {
            let r = wrk::post(&self.dir, &poll_url, &login.poll_body(0).to_string(), secs)?;
            println!(
                "| {what} | {:.0} | {} | {} | {:.2} |",
                r.requests_per_sec,
                r.p99,
                r.non_2xx,
                r.requests_per_sec / bare_result.requests_per_sec
            );
        }
        println!(
            "| bare axum, constant answer | {:.0} | {} | {} | 1.00 |",
            bare_result.requests_per_sec, bare_result.p99, bare_result.non_2xx
        );
        Ok(())
    }
}

/// A store with `MOAUTH_BENCH_LIVE_LOGINS` live logins: RSS, size on disk, start-up.
async fn memory(dir: &Path, sim: &Simulator) -> anyhow::Result<()> {
    let live = env_or("MOAUTH_BENCH_LIVE_LOGINS", 1_000_000);
    let store = dir.join("store-live");
    let filling = Instant::now();
    live_logins(&store, live)
        .await
        .context("writing live logins")?;
    let filled_in = filling.elapsed();
    let daemon = Daemon::start(dir, &store, sim.smpp_addr).await?;
    let ready_full = daemon.ready_after;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_live_idle = daemon.rss_mib();
    let poll = Login::fresh().poll_body(0).to_string();
    wrk::post(dir, &poll_url_of(&daemon), &poll, 3)?;
    let rss_live_polled = daemon.rss_mib();
    let size = disk_usage(&store);
    daemon.stop().await?;
    // sled replays its log up to the snapshot it writes on open: a restart reads less.
    let again = Daemon::start(dir, &store, sim.smpp_addr).await?;
    let ready_again = again.ready_after;
    again.stop().await?;
    println!(
        "| start → READY, {live} live logins, first start after writing them | {:.0} ms |",
        ms(ready_full)
    );
    println!(
        "| start → READY, {live} live logins, restart | {:.0} ms |",
        ms(ready_again)
    );
    println!("| RSS with {live} live logins, idle | {rss_live_idle:.1} MiB |");
    println!("| RSS with {live} live logins, after 3 s of polls | {rss_live_polled:.1} MiB |");
    println!(
        "| store on disk with {live} live logins | {:.0} MiB (written in {:.0} s) |",
        size as f64 / 1_048_576.0,
        filled_in.as_secs_f64()
    );
    Ok(())
}

fn poll_url_of(daemon: &Daemon) -> String {
    format!("http://{}/v1/logins/poll", daemon.http)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn sim_with_null_esme() -> anyhow::Result<Simulator> {
    let sim = sim().await?;
    drive::null_esme(&sim).await?;
    Ok(sim)
}
