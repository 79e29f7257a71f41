//! Wires the daemon together: store, group commit, login pipeline, SMPP links and HTTP.
//!
//! Start order makes readiness honest: the store is open before anything can ack, HTTP listens
//! before `start` returns, links bind in the background. Shutdown runs the other way: links
//! unbind first (the SMSC stops handing us MOs and redelivers anything unanswered), the
//! pipeline finishes the MO in hand, HTTP drains (open long-polls answer with their login's
//! state at once), and the store is flushed last.
//!
//! The daemon does not read signals or talk to systemd itself (`cli::run` does): it offers
//! what that loop needs, [`Daemon::reload`], [`Daemon::status`] and [`Daemon::healthy`], so
//! tests can drive every piece in-process.

pub mod metrics;
pub mod reload;
pub mod status;
pub mod stranded;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use thiserror::Error;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::auth::hasher::HashError;
use crate::auth::{EmbeddedAuth, Hasher, Registrar, RemoteAuth, RemoteError};
use crate::core::arrivals::Arrivals;
use crate::core::auth::{AuthCore, SessionCore};
use crate::core::budget::BudgetHealth;
use crate::core::clock::Clock;
use crate::core::error::StoreError;
use crate::core::health::LinkStates;
use crate::core::sms_budget::SmsBudget;
use crate::core::store::Store;
use crate::daemon::reload::{LiveSettings, needs_restart};
use crate::http::limits::{self, LongPolls};
use crate::http::page::{self, PageState};
use crate::http::serve::{self, ServeLimits};
use crate::http::{ApiState, admin_router, router};
use crate::login::LoginPipeline;
use crate::login::mint::Minter;
use crate::login::poll::Poller;
use crate::ops::config::{AuthMode, Config, StoreConfig};
use crate::smpp::link::{Role, SmscLink};
use crate::smpp::receipt::EarlyReceipts;
use crate::smpp::tls::{TlsClient, TlsError};
use crate::store::ingest::Ingest;
use crate::store::postgres::{PgStore, PostgresError};
use crate::store::sled::{OpenError, SledStore};
use crate::webhooks::Hooks;
use metrics::MetricsSource;
use status::{Rates, StatusReport, StatusSource};
use stranded::StrandedReplies;

pub use crate::http::keys::api_key_hash;
use crate::webhooks::dispatch::{self, Dispatcher};

#[derive(Debug, Error)]
pub enum DaemonError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    StoreOpen(#[from] OpenError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Auth(#[from] RemoteError),
    #[error(transparent)]
    Hasher(#[from] HashError),
    #[error("webhook client: {0}")]
    WebhookClient(#[from] reqwest::Error),
    #[error(transparent)]
    Postgres(#[from] PostgresError),
    #[error("http listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

impl DaemonError {
    /// Whether restarting the process cannot help (another process holds the store, the
    /// store directory is unusable, the database URL does not parse, the schema was changed
    /// by hand): `main` exits 3 for these, which the unit does not restart. A database that
    /// cannot be reached is not among them: it may be failing over.
    pub fn restart_cannot_fix(&self) -> bool {
        matches!(
            self,
            DaemonError::StoreOpen(
                OpenError::Locked { .. }
                    | OpenError::Unusable { .. }
                    | OpenError::ImportUnfinished { .. }
            ) | DaemonError::Postgres(
                PostgresError::Url(_) | PostgresError::MigrationChanged { .. }
            )
        )
    }
}

/// Switches for tests and maintenance.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Store and acknowledge MOs but do not process them (the inbox keeps them).
    pub hold_inbox: bool,
}

pub struct Daemon {
    pub http_addr: SocketAddr,
    /// Where `/metrics` and `/status` are served when `[http] admin_listen` is set.
    pub admin_addr: Option<SocketAddr>,
    /// The one store, seen by each consumer through its own trait.
    pub store: Arc<dyn Store>,
    pub links: LinkStates,
    live: LiveSettings,
    /// The configuration started with; what a reload cannot change stays as it says.
    running: Config,
    status: StatusSource,
    stop_links: CancellationToken,
    stop_rest: CancellationToken,
    links_done: Vec<JoinHandle<()>>,
    rest_done: Vec<JoinHandle<()>>,
}

/// Each task gets this long to finish at shutdown. Open long-polls answer at once (with their
/// login's state), so only a stuck task reaches it.
const HTTP_DRAIN: Duration = Duration::from_secs(5);

impl Daemon {
    pub async fn start(
        config: Config,
        clock: Clock,
        options: Options,
    ) -> Result<Daemon, DaemonError> {
        Self::serve(config, clock, options, None).await
    }

    /// `moauth demo --web` only: the daemon plus the simulated phone's routes, which the login
    /// page then shows beside itself. A daemon started from a config file never has them.
    pub async fn start_with_demo_phone(
        config: Config,
        clock: Clock,
        phone: Router,
    ) -> Result<Daemon, DaemonError> {
        Self::serve(config, clock, Options::default(), Some(phone)).await
    }

    async fn serve(
        config: Config,
        clock: Clock,
        options: Options,
        demo_phone: Option<Router>,
    ) -> Result<Daemon, DaemonError> {
        crate::install_crypto_provider();
        // Before anything starts: a bad CA file refuses the start, it does not half-start.
        let mut tls = std::collections::HashMap::new();
        for smsc in config.smsc.iter().filter(|s| s.tls) {
            let client = TlsClient::new(
                smsc.tls_ca_file.as_deref(),
                smsc.tls_server_name.as_deref(),
                smsc.address.host(),
            )?;
            tls.insert(smsc.name.clone(), Arc::new(client));
        }
        let webhook_client = dispatch::client()?;
        let store = open_store(&config).await?;
        metrics::install();
        metrics::register_known(&config);
        // Before the links ask for their replies: those of a renamed [[smsc]] join theirs.
        let stranded = StrandedReplies::default();
        stranded::reconcile(store.as_ref(), &config.smsc, &stranded).await?;
        // One auth core (and for the remote one, one HTTP client) for the daemon's life.
        let mut hashing = None;
        let (auth, sessions): (Arc<dyn AuthCore>, Option<Arc<dyn SessionCore>>) =
            match config.auth.mode {
                AuthMode::Remote => {
                    let remote = config
                        .auth
                        .remote
                        .as_ref()
                        .ok_or(RemoteError::NotConfigured)?;
                    (Arc::new(RemoteAuth::new(remote, clock.clone())?), None)
                }
                AuthMode::Embedded => {
                    let hasher = Hasher::start(&config.auth.argon2)?;
                    let registrations = Arc::new(Notify::new());
                    let embedded = Arc::new(EmbeddedAuth::new(
                        store.clone(),
                        clock.clone(),
                        config.login.session_ttl_secs,
                        config.login.send_credentials,
                        hasher.clone(),
                        registrations.clone(),
                    ));
                    hashing = Some((hasher, registrations));
                    (embedded.clone(), Some(embedded))
                }
            };
        let live = LiveSettings::new(&config);
        let links = LinkStates::default();
        let stop_links = CancellationToken::new();
        let stop_rest = CancellationToken::new();
        let mut rest_done = Vec::new();

        let (listener, http_addr) = listen(config.http.listen).await?;
        let admin = match config.http.admin_listen {
            Some(addr) => Some(listen(addr).await?),
            None => None,
        };
        let long_polls = LongPolls::new(live.limits.clone());
        let sms_budget = BudgetHealth::default();
        let api = ApiState {
            poller: Poller {
                store: store.clone(),
                clock: clock.clone(),
                window: live.window.clone(),
                stopping: stop_rest.clone(),
            },
            links: links.clone(),
            poll_limiter: live.poll_limiter.clone(),
            long_polls: long_polls.clone(),
            auth: auth.clone(),
            api_keys: live.api_keys.clone(),
            mint_limiter: live.mint_limiter.clone(),
            trusted_proxies: Arc::new(config.http.trusted_proxies.clone()),
            cors_origins: Arc::new(config.http.cors_origins.clone()),
            minter: Minter {
                store: store.clone(),
                clock: clock.clone(),
                window: live.window.clone(),
                keywords: live.keywords.clone(),
                app: live.app.clone(),
                short_code: config
                    .smsc
                    .first()
                    .map_or(crate::core::DEFAULT_SHORT_CODE.into(), |s| {
                        s.short_code.clone()
                    }),
            },
            sessions,
            limits: live.limits.clone(),
            password_gate: Default::default(),
            sms_budget: sms_budget.clone(),
        };
        let status = StatusSource {
            store: store.clone(),
            links: links.clone(),
            smsc_names: Arc::new(config.smsc.iter().map(|s| s.name.clone()).collect()),
            rates: Rates::default(),
            started: Instant::now(),
            stranded,
        };
        let scraped = MetricsSource {
            store: store.clone(),
            links: links.clone(),
            link_names: Arc::new(
                config
                    .smsc
                    .iter()
                    .flat_map(|s| Role::for_mode(s.bind).iter().map(|r| r.label(&s.name)))
                    .collect(),
            ),
            long_polls,
            poll_limiter: live.poll_limiter.clone(),
            sms_budget: sms_budget.clone(),
            clock: clock.clone(),
        };
        let page = page::router(PageState {
            settings: live.page.clone(),
            app: live.app.clone(),
            clock: clock.clone(),
            demo_phone: demo_phone.is_some(),
        });
        let operators = status::router(status.clone()).merge(metrics::router(scraped));
        let serve_limits = ServeLimits {
            max_connections: config.http.max_connections,
            header_read_timeout: Duration::from_secs(config.http.header_read_timeout_secs),
            idle_timeout: Duration::from_secs(config.http.idle_timeout_secs),
        }
        .within(serve::open_file_limit());
        let pages = page.merge(demo_phone.unwrap_or_default());
        // With an admin listener the operators' routes are served there and only there; the
        // operators' commands (accounts, sessions, queues) exist only there.
        let (app, admin_addr) = match admin {
            Some((admin_listener, admin_addr)) => {
                let commands = crate::http::admin::router(crate::http::admin::AdminState {
                    store: store.clone(),
                    smsc_names: status.smsc_names.clone(),
                    key_sha256: config
                        .http
                        .admin_key
                        .as_ref()
                        .map(|key| crate::http::keys::digest(key.expose())),
                });
                rest_done.push(tokio::spawn(serve::serve(
                    admin_listener,
                    admin_router(api.clone(), operators.merge(commands)),
                    serve_limits,
                    stop_rest.clone(),
                )));
                (router(api, pages), Some(admin_addr))
            }
            None => (router(api, operators.merge(pages)), None),
        };
        rest_done.push(tokio::spawn(serve::serve(
            listener,
            app,
            serve_limits,
            stop_rest.clone(),
        )));
        rest_done.push(tokio::spawn(metrics::upkeep(stop_rest.clone())));
        rest_done.push(tokio::spawn(limits::sweep(
            live.poll_limiter.clone(),
            live.mint_limiter.clone(),
            stop_rest.clone(),
        )));
        rest_done.push(tokio::spawn(sample_rates(
            status.rates.clone(),
            stop_rest.clone(),
        )));

        // New accounts' passwords, beside the pipeline; it resumes what a crash left.
        if let Some((hasher, wake)) = hashing {
            let registrar = Registrar {
                store: store.clone(),
                opt_outs: store.clone(),
                hasher,
                replies: live.replies.clone(),
                limits: live.limits.clone(),
                default_country_code: config.numbering.default_country_code.clone(),
                clock: clock.clone(),
                wake,
                sms_budget: SmsBudget {
                    counts: store.clone(),
                    health: sms_budget.clone(),
                },
            };
            rest_done.push(tokio::spawn(registrar.run(stop_rest.clone())));
        }
        let arrivals = Arrivals::default();
        if !options.hold_inbox {
            let pipeline = LoginPipeline {
                store: store.clone(),
                auth,
                replies: live.replies.clone(),
                window: live.window.clone(),
                keywords: live.keywords.clone(),
                default_country_code: config.numbering.default_country_code.clone(),
                inbound: config.inbound.clone(),
                clock: clock.clone(),
                processed: status.rates.counter.clone(),
                limits: live.limits.clone(),
                number_limits: Default::default(),
                arrivals: arrivals.clone(),
                hooks: Hooks {
                    store: store.clone(),
                    targets: live.webhooks.clone(),
                },
                opt_outs: store.clone(),
                commands: config.login.commands.commands(),
                notify_logins: config.login.notify_logins,
                sms_budget: SmsBudget {
                    counts: store.clone(),
                    health: sms_budget,
                },
            };
            rest_done.push(tokio::spawn(pipeline.run(stop_rest.clone())));
        }
        let dispatcher = Dispatcher {
            store: store.clone(),
            targets: live.webhooks.clone(),
            clock: clock.clone(),
            client: webhook_client,
        };
        rest_done.push(tokio::spawn(dispatcher.run(stop_rest.clone())));

        let (ingest, ingest_done) = Ingest::start(
            store.clone(),
            config.inbound.redelivery_window_secs,
            arrivals,
        );
        rest_done.push(ingest_done);
        let early_receipts = Arc::new(Mutex::new(EarlyReceipts::default()));
        let links_done = config
            .smsc
            .iter()
            .flat_map(|smsc| {
                Role::for_mode(smsc.bind)
                    .iter()
                    .map(move |role| (smsc, *role))
            })
            .map(|(smsc, role)| {
                let link = SmscLink {
                    config: smsc.clone(),
                    role,
                    tls: tls.get(&smsc.name).cloned(),
                    store: store.clone(),
                    ingest: ingest.clone(),
                    states: links.clone(),
                    clock: clock.clone(),
                    early_receipts: early_receipts.clone(),
                };
                tokio::spawn(link.run(stop_links.clone()))
            })
            .collect();
        info!(http = %http_addr, admin = admin_addr.map(|a| a.to_string()), smsc = config.smsc.len(), "moauth started");
        Ok(Daemon {
            http_addr,
            admin_addr,
            store,
            links,
            live,
            running: config,
            status,
            stop_links,
            stop_rest,
            links_done,
            rest_done,
        })
    }

    /// Applies the reloadable part of `new` (templates, limits, keywords, API keys) at once;
    /// returns the changed settings that wait for a restart.
    pub fn reload(&self, new: &Config) -> Vec<&'static str> {
        self.live.apply(new);
        // [[smsc]] changes wait for a restart: the running ones are checked again, so a
        // reload repeats the report of replies no connection sends.
        let (store, smsc, stranded) = (
            self.store.clone(),
            self.running.smsc.clone(),
            self.status.stranded.clone(),
        );
        tokio::spawn(async move {
            if let Err(e) = stranded::reconcile(store.as_ref(), &smsc, &stranded).await {
                warn!(error = %e, "checking for replies of gone [[smsc]] failed");
            }
        });
        needs_restart(&self.running, new)
    }

    pub fn status(&self) -> StatusReport {
        self.status.report()
    }

    /// Healthy while every task is running and the store completes a flush within `within`:
    /// the watchdog is fed only then, so a wedged store or a dead pipeline gets us restarted.
    pub async fn healthy(&self, within: Duration) -> bool {
        let running = |tasks: &[JoinHandle<()>]| tasks.iter().all(|t| !t.is_finished());
        running(&self.links_done)
            && running(&self.rest_done)
            && matches!(
                tokio::time::timeout(within, self.store.sync()).await,
                Ok(Ok(()))
            )
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
        if let Err(e) = self.store.sync().await {
            warn!(error = %e, "final flush failed");
        }
        info!("moauth stopped");
    }
}

/// The store `config` names, open (and for PostgreSQL, migrated).
pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>, DaemonError> {
    Ok(match &config.store {
        StoreConfig::Sled(sled) => Arc::new(SledStore::open(&sled.path, sled.cache_capacity_mb)?),
        StoreConfig::Postgres(postgres) => {
            let node = postgres.node_name();
            let store = PgStore::open(
                &postgres.connection(),
                &node,
                Duration::from_secs(postgres.lease_secs),
            )
            .await?;
            info!(%node, "postgres store open; schema up to date");
            Arc::new(store)
        }
    })
}

/// Connections the kernel may hold for a listener before the process accepts them (capped
/// by `net.core.somaxconn`). Apps long-poll on a connection each, so at thousands of logins
/// a second thousands of connections arrive a second; the 1,024 of `TcpListener::bind`
/// overflowed within a 200 ms pause of the process, and every connection dropped then waits
/// for the client's SYN to be resent, a second or more later.
const LISTEN_BACKLOG: u32 = 4096;

/// A listener on `addr` and the address it got (port 0 picks a free one).
async fn listen(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), DaemonError> {
    let error = |source| DaemonError::Listen { addr, source };
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .map_err(error)?;
    socket.set_reuseaddr(true).map_err(error)?;
    socket.bind(addr).map_err(error)?;
    let listener = socket.listen(LISTEN_BACKLOG).map_err(error)?;
    let bound = listener.local_addr().map_err(error)?;
    Ok((listener, bound))
}

async fn sample_rates(rates: Rates, stop: CancellationToken) {
    let mut every = tokio::time::interval(status::SAMPLE_EVERY);
    loop {
        tokio::select! {
            _ = every.tick() => rates.sample(Instant::now()),
            _ = stop.cancelled() => return,
        }
    }
}
