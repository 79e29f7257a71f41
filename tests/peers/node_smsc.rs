//! node-smpp's SMSC (`tests/peers/node-smsc/smsc.js`, npm `smpp` 0.5.1) in a `node` child
//! process, driven by JSON lines on its stdin: an SMPP implementation moauth shares no code
//! with. Included by path from the bench (`benches/e2e/smsc.rs`) and the interop tests
//! (`tests/it/common`), which each use part of it.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{oneshot, watch};

type Waiting = Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>;

pub struct NodeSmsc {
    pub addr: SocketAddr,
    stdin: tokio::sync::Mutex<ChildStdin>,
    next_id: AtomicU64,
    waiting: Waiting,
    /// Every submit_sm event, with when it arrived.
    submitted: Arc<Mutex<Vec<(Instant, Value)>>>,
    submits_seen: watch::Sender<usize>,
    /// Sessions bound in a mode that takes MOs.
    pub bound: watch::Sender<usize>,
    _child: Child,
}

impl NodeSmsc {
    /// Installs node-smpp into `dir` (once) and starts the SMSC on a free loopback port,
    /// accepting binds with these credentials.
    pub async fn start(dir: &Path, system_id: &str, password: &str) -> anyhow::Result<NodeSmsc> {
        let modules = install(dir)?;
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/node-smsc/smsc.js");
        let mut child = Command::new("node")
            .arg(&script)
            .args(["--system-id", system_id, "--password", password])
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
        let waiting: Waiting = Arc::default();
        let submitted: Arc<Mutex<Vec<(Instant, Value)>>> = Arc::default();
        let submits_seen = watch::Sender::new(0);
        let bound = watch::Sender::new(0);
        let (w, s, seen, b) = (
            waiting.clone(),
            submitted.clone(),
            submits_seen.clone(),
            bound.clone(),
        );
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let Ok(event) = serde_json::from_str::<Value>(&line) else {
                    eprintln!("node-smsc said {line}");
                    continue;
                };
                match event["event"].as_str() {
                    Some("submit_sm") => {
                        let mut submitted = s.lock().expect("submits lock");
                        submitted.push((Instant::now(), event));
                        seen.send_replace(submitted.len());
                    }
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
            submitted,
            submits_seen,
            bound,
            _child: child,
        })
    }

    /// Sends `command` with a fresh id and waits for the event that answers it.
    pub async fn request(&self, mut command: Value) -> anyhow::Result<Value> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        command["id"] = id.into();
        let (tx, rx) = oneshot::channel();
        self.waiting.lock().expect("waiting lock").insert(id, tx);
        let mut line = serde_json::to_vec(&command)?;
        line.push(b'\n');
        self.stdin.lock().await.write_all(&line).await?;
        rx.await.context("node-smsc exited")
    }

    /// Whether at least `count` sessions that take MOs are bound within `timeout`.
    pub async fn wait_bound(&self, count: usize, timeout: Duration) -> bool {
        let mut bound = self.bound.subscribe();
        tokio::time::timeout(timeout, bound.wait_for(|n| *n >= count))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// When each submit_sm arrived, in order.
    pub fn submit_times(&self) -> Vec<Instant> {
        let submitted = self.submitted.lock().expect("submits lock");
        submitted.iter().map(|(at, _)| *at).collect()
    }

    /// Every submit_sm event so far (`from`, `to`, `data_coding`, `text`, …).
    pub fn submits(&self) -> Vec<Value> {
        let submitted = self.submitted.lock().expect("submits lock");
        submitted.iter().map(|(_, event)| event.clone()).collect()
    }

    /// Waits until at least `count` submit_sm arrived (or `timeout`); all of them so far.
    pub async fn wait_submits(&self, count: usize, timeout: Duration) -> Vec<Value> {
        let mut seen = self.submits_seen.subscribe();
        let _ = tokio::time::timeout(timeout, seen.wait_for(|n| *n >= count)).await;
        self.submits()
    }
}

/// `npm ci` of tests/peers/node-smsc into `dir` (once); the `node_modules` to run it with.
/// `.ci/run` does the same into `target/tmp/node-smsc`, which the bench and the tests use.
pub fn install(dir: &Path) -> anyhow::Result<PathBuf> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/node-smsc");
    let modules = dir.join("node_modules");
    if modules.join("smpp/package.json").exists() {
        return Ok(modules);
    }
    std::fs::create_dir_all(dir)?;
    for file in ["package.json", "package-lock.json"] {
        std::fs::copy(source.join(file), dir.join(file))?;
    }
    eprintln!("npm ci (node-smpp) in {}", dir.display());
    let status = std::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--silent"])
        .current_dir(dir)
        .status()
        .context("running npm (Node.js and npm must be on PATH)")?;
    ensure!(status.success(), "npm ci failed in {}", dir.display());
    Ok(modules)
}
