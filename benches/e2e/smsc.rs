//! The SMSCs the daemon binds to in the bench: moauth's own simulator, and node-smpp (npm
//! `smpp`) running `tests/peers/node-smsc/smsc.js`, a second SMPP implementation we did not
//! write, so that a shortcut in our simulator cannot flatter a figure.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use moauth::cli::{SIM_PASSWORD, SIM_SYSTEM_ID};
use moauth::sim::{MoRequest, SimConfig, Simulator};
use serde_json::{Value, json};

#[path = "../../tests/peers/node_smsc.rs"]
mod node_smsc;
use node_smsc::NodeSmsc;

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
            "node" => Ok(Smsc::Node(Arc::new(
                NodeSmsc::start(dir, SIM_SYSTEM_ID, SIM_PASSWORD).await?,
            ))),
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
            Smsc::Node(node) => node.wait_bound(count, timeout).await,
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
            Smsc::Node(node) => node.submit_times(),
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
