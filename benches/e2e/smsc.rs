//! The SMSCs the daemon binds to in the bench: moauth's own simulator, and node-smpp (npm
//! `smpp`) running `tests/peers/node-smsc/smsc.js`, a second SMPP implementation we did not
//! write, so that a shortcut in our simulator cannot flatter a figure.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use moauth::cli::{SIM_PASSWORD, SIM_SYSTEM_ID};
use moauth::sim::{MoRequest, SimConfig, Simulator};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{oneshot, watch};

/// One SMSC, whichever implementation.
#[derive(Clone)]
pub enum Smsc {
    Sim(Simulator),
    Node(Arc<NodeSmsc>),
}

impl Smsc {
    /// Starts the SMSC called `name` (`sim` or `node`); `dir` holds node-smpp's install.
    pub async fn start(name: &str, dir: &Path) -> anyhow::Result<Smsc> {
        match name {
            "sim" => Ok(Smsc::Sim(
                Simulator::start(SimConfig {
                    listen: "127.0.0.1:0".parse()?,
                    control: None,
                    system_id: SIM_SYSTEM_ID.into(),
                    password: SIM_PASSWORD.into(),
                    tls: None,
                })
                .await?,
            )),
            "node" => Ok(Smsc::Node(Arc::new(NodeSmsc::start(dir).await?))),
            other => bail!("unknown SMSC {other:?} (MOAUTH_BENCH_SMSCS takes sim,node)"),
        }
    }

    pub fn describe(&self) -> &'static str {
        match self {
            Smsc::Sim(_) => "moauth's simulator",
            Smsc::Node(_) => "node-smpp 0.5.1",
        }
    }

    pub fn addr(&self) -> SocketAddr {
        match self {
            Smsc::Sim(sim) => sim.smpp_addr,
            Smsc::Node(node) => node.addr,
        }
    }

    pub async fn wait_bound(&self, count: usize, timeout: Duration) -> bool {
        match self {
            Smsc::Sim(sim) => sim.wait_bound(count, timeout).await,
            Smsc::Node(node) => {
                let mut bound = node.bound.subscribe();
                tokio::time::timeout(timeout, bound.wait_for(|n| *n >= count))
                    .await
                    .is_ok_and(|r| r.is_ok())
            }
        }
    }

    /// One MO, answered with deliver_sm_resp OK.
    pub async fn send_mo(&self, mo: &MoRequest) -> anyhow::Result<()> {
        match self {
            Smsc::Sim(sim) => {
                let result = sim.send_mo(mo).await?;
                ensure!(
                    result.statuses.iter().all(|s| *s == 0),
                    "deliver_sm refused: {result:?}"
                );
            }
            Smsc::Node(node) => {
                let answer = node
                    .request(json!({ "cmd": "mo", "from": mo.from, "to": mo.to, "text": mo.text }))
                    .await?;
                ensure!(answer["status"] == 0, "deliver_sm refused: {answer}");
            }
        }
        Ok(())
    }

    /// Sends `mos` with at most `window` deliver_sm unanswered; MO/s by deliver_sm_resp.
    pub async fn at_window(&self, window: usize, mos: Vec<MoRequest>) -> anyhow::Result<f64> {
        match self {
            Smsc::Sim(sim) => sim_at_window(sim, window, mos).await,
            Smsc::Node(node) => {
                let count = mos.len();
                let mos: Vec<Value> = mos
                    .iter()
                    .map(|mo| json!({ "from": mo.from, "to": mo.to, "text": mo.text }))
                    .collect();
                let done = node
                    .request(json!({ "cmd": "mos", "window": window, "mos": mos }))
                    .await?;
                ensure!(done["failed"] == 0, "deliver_sm refused: {done}");
                let ms = done["ms"].as_f64().context("mos_done without ms")?;
                Ok(count as f64 / (ms / 1000.0))
            }
        }
    }

    /// When each submit_sm arrived, in order.
    pub fn submit_times(&self) -> Vec<Instant> {
        match self {
            Smsc::Sim(sim) => sim.submit_times(),
            Smsc::Node(node) => node.submits.lock().expect("submits lock").clone(),
        }
    }
}

async fn sim_at_window(sim: &Simulator, window: usize, mos: Vec<MoRequest>) -> anyhow::Result<f64> {
    let count = mos.len();
    let mos = Arc::new(mos);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..window)
        .map(|_| {
            let (sim, mos, next) = (sim.clone(), mos.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(mo) = mos.get(i) else { return Ok(()) };
                    let result = sim.send_mo(mo).await?;
                    ensure!(
                        result.statuses.iter().all(|s| *s == 0),
                        "deliver_sm refused: {result:?}"
                    );
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await??;
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

/// node-smpp's SMSC in a `node` child process, driven by JSON lines on its stdin.
pub struct NodeSmsc {
    addr: SocketAddr,
    stdin: tokio::sync::Mutex<ChildStdin>,
    next_id: AtomicU64,
    waiting: Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>,
    submits: Arc<Mutex<Vec<Instant>>>,
    bound: watch::Sender<usize>,
    _child: Child,
}

impl NodeSmsc {
    async fn start(dir: &Path) -> anyhow::Result<NodeSmsc> {
        let modules = install(dir)?;
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/node-smsc/smsc.js");
        let mut child = Command::new("node")
            .arg(&script)
            .args(["--system-id", SIM_SYSTEM_ID, "--password", SIM_PASSWORD])
            .env("NODE_PATH", &modules)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("starting node (Node.js 18 or later must be on PATH)")?;
        let mut lines = BufReader::new(child.stdout.take().context("node stdout")?).lines();
        let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .context("node-smsc did not start listening")??
            .context("node-smsc exited")?;
        let listening: Value = serde_json::from_str(&first)?;
        let port = listening["port"]
            .as_u64()
            .with_context(|| format!("node-smsc said {first}"))?;
        let waiting: Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>> = Arc::default();
        let submits: Arc<Mutex<Vec<Instant>>> = Arc::default();
        let bound = watch::Sender::new(0);
        let (w, s, b) = (waiting.clone(), submits.clone(), bound.clone());
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let Ok(event) = serde_json::from_str::<Value>(&line) else {
                    eprintln!("bench: node-smsc said {line}");
                    continue;
                };
                match event["event"].as_str() {
                    Some("submit_sm") => s.lock().expect("submits lock").push(Instant::now()),
                    Some("bound" | "closed") => {
                        b.send_replace(event["receivers"].as_u64().unwrap_or(0) as usize);
                    }
                    Some("mo_resp" | "mos_done") => {
                        let id = event["id"].as_u64().unwrap_or(u64::MAX);
                        if let Some(tx) = w.lock().expect("waiting lock").remove(&id) {
                            let _ = tx.send(event);
                        }
                    }
                    _ => {}
                }
            }
        });
        Ok(NodeSmsc {
            addr: SocketAddr::from(([127, 0, 0, 1], u16::try_from(port)?)),
            stdin: tokio::sync::Mutex::new(child.stdin.take().context("node stdin")?),
            next_id: AtomicU64::new(0),
            waiting,
            submits,
            bound,
            _child: child,
        })
    }

    /// Sends `command` with a fresh id and waits for the event that answers it.
    async fn request(&self, mut command: Value) -> anyhow::Result<Value> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        command["id"] = id.into();
        let (tx, rx) = oneshot::channel();
        self.waiting.lock().expect("waiting lock").insert(id, tx);
        let mut line = serde_json::to_vec(&command)?;
        line.push(b'\n');
        self.stdin.lock().await.write_all(&line).await?;
        rx.await.context("node-smsc exited")
    }
}

/// `npm ci` of tests/peers/node-smsc into `dir` (once); the `node_modules` to run it with.
fn install(dir: &Path) -> anyhow::Result<PathBuf> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/node-smsc");
    let modules = dir.join("node_modules");
    if modules.join("smpp/package.json").exists() {
        return Ok(modules);
    }
    std::fs::create_dir_all(dir)?;
    for file in ["package.json", "package-lock.json"] {
        std::fs::copy(source.join(file), dir.join(file))?;
    }
    eprintln!("bench: npm ci (node-smpp) in {}", dir.display());
    let status = std::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--silent"])
        .current_dir(dir)
        .status()
        .context("running npm (Node.js and npm must be on PATH)")?;
    ensure!(status.success(), "npm ci failed in {}", dir.display());
    Ok(modules)
}
