//! The daemon under test: the release `moauth` binary as an operator runs it, in its own
//! process, so its CPU, memory and start-up are its own and not the driver's.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use moauth::cli::{SIM_PASSWORD, SIM_SYSTEM_ID};
use tokio::net::UnixDatagram;
use tokio::process::{Child, Command};

/// Bound for anything that should happen at once; reached only when something is broken.
const PATIENCE: Duration = Duration::from_secs(120);

pub struct Daemon {
    child: Child,
    pub http: SocketAddr,
    /// Process start → `READY=1` on the notify socket.
    pub ready_after: Duration,
}

impl Daemon {
    /// Starts `moauth run` on `store`, bound to the SMSC at `smsc`; returns at READY.
    pub async fn start(dir: &Path, store: &Path, smsc: SocketAddr) -> anyhow::Result<Daemon> {
        let http = free_port()?;
        let config = dir.join("moauth.toml");
        // MOAUTH_BENCH_CACHE_MB sets sled's cache_capacity (default: the daemon's own, 64 MiB).
        let cache = std::env::var("MOAUTH_BENCH_CACHE_MB")
            .map(|mb| format!("cache_capacity_mb = {mb}\n"))
            .unwrap_or_default();
        // MOAUTH_BENCH_MAX_TPS caps the bind's submit_sm rate as a carrier does (default: none).
        let max_tps: u32 = std::env::var("MOAUTH_BENCH_MAX_TPS")
            .ok()
            .and_then(|tps| tps.parse().ok())
            .unwrap_or(0);
        std::fs::write(
            &config,
            format!(
                r#"[store]
path = "{store}"
{cache}
[http]
listen = "{http}"
# A long-poller per login: at 5,000 MO/s thousands are open at once (README, `[http]`).
max_connections = 16384

[log]
level = "warn"

# One client and a thousand numbers: the abuse limits would bite, and they are not what is
# measured.
[limits]
poll_per_minute = 0
max_long_polls = 0
max_long_polls_per_client = 0
mint_per_minute = 0
mo_per_number_per_hour = 0
error_sms_per_number_per_hour = 0
new_accounts_per_prefix_per_hour = 0
# Thousands of credential SMS an hour: the global budget would hold them back.
sms_per_hour = 0
sms_per_day = 0

[[smsc]]
name = "sim"
address = "{smsc}"
system_id = "{SIM_SYSTEM_ID}"
password = "{SIM_PASSWORD}"
short_code = "10690000"
window = 100
max_tps = {max_tps}
"#,
                store = store.display()
            ),
        )?;
        let socket_path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&socket_path);
        let notify = UnixDatagram::bind(&socket_path)?;
        let started = Instant::now();
        // MOAUTH_BENCH_BIN runs another build (a saved one, for before/after figures).
        let binary = std::env::var("MOAUTH_BENCH_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_moauth").into());
        let child = Command::new(binary)
            .args(["--log-format", "json", "run", "--config"])
            .arg(&config)
            .env("NOTIFY_SOCKET", &socket_path)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("starting moauth")?;
        let mut buf = vec![0u8; 4096];
        loop {
            let n = tokio::time::timeout(PATIENCE, notify.recv(&mut buf))
                .await
                .context("no READY=1 from moauth")??;
            if String::from_utf8_lossy(&buf[..n])
                .lines()
                .any(|l| l == "READY=1")
            {
                break;
            }
        }
        let ready_after = started.elapsed();
        // Read what follows (STATUS lines): the daemon's send blocks once the buffer is full.
        tokio::spawn(async move { while notify.recv(&mut buf).await.is_ok() {} });
        Ok(Daemon {
            child,
            http,
            ready_after,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    /// Resident set size now, in MiB.
    pub fn rss_mib(&self) -> f64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kib| kib / 1024.0)
    }

    /// CPU time the daemon has used so far (user + system), in seconds.
    pub fn cpu_secs(&self) -> f64 {
        cpu_secs(&self.pid().to_string())
    }

    /// The daemon's `GET /status` report.
    pub async fn status(&self, http: &reqwest::Client) -> anyhow::Result<serde_json::Value> {
        Ok(http
            .get(format!("http://{}/status", self.http))
            .send()
            .await?
            .json()
            .await?)
    }

    /// Waits until `processed` MOs were finished and the inbox and outbox are empty.
    pub async fn settled(&self, http: &reqwest::Client, processed: u64) -> anyhow::Result<()> {
        let deadline = Instant::now() + PATIENCE * 5;
        loop {
            let s = self.status(http).await?;
            if s["processed"].as_u64() >= Some(processed) && s["inbox"] == 0 && s["outbox"] == 0 {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("daemon did not settle: {s}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGTERM, then waits for the drained exit.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        unsafe { libc::kill(self.pid() as i32, libc::SIGTERM) };
        tokio::time::timeout(PATIENCE, self.child.wait()).await??;
        Ok(())
    }
}

fn free_port() -> anyhow::Result<SocketAddr> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// Bytes under `path`, as `du` would count them.
pub fn disk_usage(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(path) {
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            total += if meta.is_dir() {
                disk_usage(&entry.path())
            } else {
                meta.blocks() * 512
            };
        }
    }
    total
}

/// CPU time (user + system) process `pid` (or "self") has used so far, in seconds.
pub fn cpu_secs(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: f64 = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse::<f64>().ok())
        .sum();
    // SAFETY: sysconf has no preconditions.
    let per_sec = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks / per_sec
}
