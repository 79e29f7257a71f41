//! Wires the daemon together: store, group commit, login pipeline, SMPP links and HTTP.
//!
//! Start order makes readiness honest: the store is open before anything can ack, HTTP listens
//! before `start` returns, links bind in the background. Shutdown runs the other way: links
//! unbind first (the SMSC stops handing us MOs and redelivers anything unanswered), the
//! pipeline finishes the MO in hand, HTTP drains, and the store is flushed last.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::auth::EmbeddedAuth;
use crate::clock::Clock;
use crate::http::{ApiState, router};
use crate::login::LoginPipeline;
use crate::login::decide::Window;
use crate::login::ingest::Ingest;
use crate::login::poll::Poller;
use crate::login::replies::Replies;
use crate::ops::config::Config;
use crate::smpp::link::{LinkStates, SmscLink};
use crate::store::{Store, StoreError};

#[derive(Debug, Error)]
pub enum DaemonError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("http listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Switches for tests and maintenance.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Store and acknowledge MOs but do not process them (the inbox keeps them).
    pub hold_inbox: bool,
}

pub struct Daemon {
    pub http_addr: SocketAddr,
    pub store: Store,
    pub links: LinkStates,
    stop_links: CancellationToken,
    stop_rest: CancellationToken,
    links_done: Vec<JoinHandle<()>>,
    rest_done: Vec<JoinHandle<()>>,
}

/// Long-polls still open at shutdown get this long to finish.
const HTTP_DRAIN: Duration = Duration::from_secs(5);

impl Daemon {
    pub async fn start(
        config: Config,
        clock: Clock,
        options: Options,
    ) -> Result<Daemon, DaemonError> {
        let store = Store::open(&config.store.path, config.store.cache_capacity_mb)?;
        let window = Window {
            max_age_secs: config.login.max_age_secs,
            max_future_secs: config.login.max_future_secs,
            result_ttl_secs: config.login.result_ttl_secs,
        };
        let links = LinkStates::default();
        let stop_links = CancellationToken::new();
        let stop_rest = CancellationToken::new();
        let mut rest_done = Vec::new();

        let listener = TcpListener::bind(config.http.listen)
            .await
            .map_err(|source| DaemonError::Listen {
                addr: config.http.listen,
                source,
            })?;
        let http_addr = listener
            .local_addr()
            .map_err(|source| DaemonError::Listen {
                addr: config.http.listen,
                source,
            })?;
        let api = ApiState {
            poller: Poller {
                store: store.clone(),
                clock: clock.clone(),
                window,
            },
            links: links.clone(),
            api_key_hashes: Arc::new(
                config
                    .http
                    .api_keys
                    .iter()
                    .filter_map(|k| hex_32(&k.sha256))
                    .collect(),
            ),
        };
        let stop_http = stop_rest.clone();
        rest_done.push(tokio::spawn(async move {
            let serve = axum::serve(listener, router(api))
                .with_graceful_shutdown(stop_http.clone().cancelled_owned());
            let _ = serve.await;
        }));

        if !options.hold_inbox {
            let pipeline = LoginPipeline {
                store: store.clone(),
                auth: Arc::new(EmbeddedAuth::new(
                    store.clone(),
                    clock.clone(),
                    config.login.session_ttl_secs,
                    config.login.send_credentials,
                )),
                replies: Replies::from_config(&config.templates),
                window,
                keywords: config.login.keywords.clone(),
                default_country_code: config.numbering.default_country_code.clone(),
                clock: clock.clone(),
            };
            rest_done.push(tokio::spawn(pipeline.run(stop_rest.clone())));
        }

        let (ingest, ingest_done) = Ingest::start(store.clone());
        rest_done.push(ingest_done);
        let links_done = config
            .smsc
            .iter()
            .map(|smsc| {
                let link = SmscLink {
                    config: smsc.clone(),
                    store: store.clone(),
                    ingest: ingest.clone(),
                    states: links.clone(),
                    clock: clock.clone(),
                };
                tokio::spawn(link.run(stop_links.clone()))
            })
            .collect();
        info!(http = %http_addr, smsc = config.smsc.len(), "moauth started");
        Ok(Daemon {
            http_addr,
            store,
            links,
            stop_links,
            stop_rest,
            links_done,
            rest_done,
        })
    }

    /// Drains and stops; every acknowledged MO is durable in the inbox when this returns.
    pub async fn shutdown(self) {
        self.stop_links.cancel();
        for link in self.links_done {
            let _ = link.await;
        }
        self.stop_rest.cancel();
        for task in self.rest_done {
            let abort = task.abort_handle();
            if tokio::time::timeout(HTTP_DRAIN, task).await.is_err() {
                warn!("a task did not finish in time; aborted");
                abort.abort();
            }
        }
        if let Err(e) = self.store.flush().await {
            warn!(error = %e, "final flush failed");
        }
        info!("moauth stopped");
    }
}

fn hex_32(hex: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// SHA-256 of an API key as the config expects it, for `moauth hash-key` and tests.
pub fn api_key_hash(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
