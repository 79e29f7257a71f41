//! The subcommands `main.rs` hands over to, and the daemon's main loop.
//!
//! `run` owns the process-level concerns the library's [`Daemon`] leaves out: signals, the
//! systemd notify protocol and the watchdog, and reading the config file again on SIGHUP.
//! Everything it decides is logged, because under systemd the journal is all an operator sees.

use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::json;
use tracing::{error, info, warn};

use crate::core::DEFAULT_SHORT_CODE;
use crate::core::clock::Clock;
use crate::core::token::LoginStart;
use crate::daemon::status::StatusReport;
use crate::daemon::{Daemon, Options};
use crate::ops::config::{BindMode, Config, ConfigError, SmscConfig};
use crate::ops::logging::LogControl;
use crate::ops::notify::Notifier;
use crate::ops::signals::{Request, Signals};
use crate::sim::{FaultSettings, MoRequest, SimConfig, Simulator};
use crate::smpp::config::DefaultAlphabet;
use crate::store::config::StoreConfig;

/// Default SMPP credentials of the embedded simulator.
pub const SIM_SYSTEM_ID: &str = "moauth";
pub const SIM_PASSWORD: &str = "sim-pass";

/// `moauth token`: what an app does before opening the SMS composer.
pub fn token(json: bool, short_code: &str, keyword: &str, app: &str) {
    let LoginStart {
        verifier,
        token,
        sms_uri,
    } = LoginStart::new(Clock::System.now(), short_code, keyword, app);
    if json {
        println!(
            "{}",
            json!({ "verifier": verifier.to_base64url(), "token": token.to_string(), "sms_uri": sms_uri })
        );
    } else {
        println!("verifier  {}", verifier.to_base64url());
        println!("token     {token}");
        println!("sms uri   {sms_uri}");
        println!("The app keeps the verifier secret and polls POST /v1/logins/poll with it.");
    }
}

/// `moauth check-config FILE`: exit code 2 on any mistake, with file, line and key.
///
/// Beyond what `run` checks when it reads the file, it wants an SMSC to receive SMS from, and a
/// store directory this user can create or write; it does not take the store's lock, so it
/// also answers while the daemon runs (before a reload, say).
pub fn check_config(path: &Path) -> anyhow::Result<()> {
    let config = Config::load(path)?;
    let file = path.display().to_string();
    let mut problems = Vec::new();
    if config.smsc.is_empty() {
        problems.push(ConfigError::Unusable {
            file: file.clone(),
            key: "smsc".into(),
            message: "no [[smsc]] table: moauth would have no SMSC to receive login SMS from \
                      (config/moauth.toml documents one)"
                .into(),
        });
    }
    match &config.store {
        StoreConfig::Sled(sled) => {
            if let Err(e) = crate::store::sled::check_dir(&sled.path) {
                problems.push(ConfigError::Unusable {
                    file,
                    key: "store.path".into(),
                    message: e.to_string(),
                });
            }
        }
        // The URL is parsed as the driver will parse it (the message never repeats it: it may
        // hold a password); the database itself is not contacted.
        StoreConfig::Postgres(postgres) => {
            if let Err(e) = postgres.connection().config() {
                problems.push(ConfigError::Unusable {
                    file,
                    key: "store.url".into(),
                    message: e.to_string(),
                });
            }
        }
    }
    match problems.len() {
        0 => {}
        1 => return Err(problems.remove(0).into()),
        _ => return Err(ConfigError::Several(problems).into()),
    }
    println!(
        "{}: ok ({} SMSC connection{})",
        path.display(),
        config.smsc.len(),
        if config.smsc.len() == 1 { "" } else { "s" }
    );
    Ok(())
}

/// `moauth store migrate`: brings the configured database's schema up to this build's, as
/// `run` does at start, for operators who migrate before they roll the nodes.
pub async fn store_migrate(path: &Path) -> anyhow::Result<()> {
    let config = Config::load(path)?;
    let StoreConfig::Postgres(postgres) = &config.store else {
        bail!(
            "{}: [store] backend is sled, which has no schema to migrate",
            path.display()
        );
    };
    let pool = postgres.connection().pool()?;
    let mut client = pool
        .get()
        .await
        .context("connecting to the database in [store] url")?;
    let migrated = crate::store::postgres::migrate(&mut client).await?;
    if migrated.applied.is_empty() {
        println!("schema at version {}: nothing to apply", migrated.version);
    } else {
        let applied: Vec<String> = migrated.applied.iter().map(i32::to_string).collect();
        println!(
            "schema at version {}: applied {}",
            migrated.version,
            applied.join(", ")
        );
    }
    if migrated.ahead {
        println!("the database is newer than this build: a newer moauth migrated it");
    }
    Ok(())
}

/// `moauth store export --config FILE --output OUT`: every record of the configured store into
/// OUT (`-`: standard output), per protocol/store-export.md. OUT is created new with mode 0600:
/// it holds password hashes, session digests and queued credential SMS. The sled store must
/// not be in use (its lock says by whom); PostgreSQL is read from one snapshot beside running
/// nodes.
pub async fn store_export(path: &Path, output: &Path) -> anyhow::Result<()> {
    use crate::store::export::Writer;
    let config = Config::load(path)?;
    let to_stdout = output.as_os_str() == "-";
    let out: Box<dyn std::io::Write + Send> = if to_stdout {
        Box::new(std::io::stdout())
    } else {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(output)
            .with_context(|| {
                format!(
                    "creating {} (an existing file is never overwritten)",
                    output.display()
                )
            })?;
        Box::new(file)
    };
    let out = std::io::BufWriter::new(out);
    let exported = async {
        match &config.store {
            StoreConfig::Sled(sled) => {
                // Opening would create an empty store where [store] path names none.
                if !sled.path.join("db").exists() {
                    bail!(
                        "no sled store at {}: check [store] path",
                        sled.path.display()
                    );
                }
                let store = crate::store::sled::SledStore::open(&sled.path, sled.cache_capacity_mb)
                    .map_err(sled_in_use)?;
                let mut writer = Writer::new(out, "sled", Clock::System.now())?;
                store.export(&mut |item| writer.put(item))?;
                Ok::<_, anyhow::Error>(writer.finish()?)
            }
            StoreConfig::Postgres(postgres) => {
                let mut writer = Writer::new(out, "postgres", Clock::System.now())?;
                crate::store::postgres::export(&postgres.connection(), &mut |item| {
                    writer.put(item)
                })
                .await?;
                Ok(writer.finish()?)
            }
        }
    }
    .await;
    match exported {
        Ok(records) => {
            eprintln!(
                "exported {records} records from the {} store{}",
                config.store.backend(),
                if to_stdout {
                    String::new()
                } else {
                    format!(" to {}", output.display())
                }
            );
            Ok(())
        }
        Err(e) => {
            // A file without its closing record would be refused anyway; remove it.
            if !to_stdout {
                let _ = std::fs::remove_file(output);
            }
            Err(e)
        }
    }
}

/// `moauth store import --config FILE --input IN [--replace]`: the records of IN (`-`:
/// standard input) into the configured store, which must be empty unless `replace`. On
/// PostgreSQL all of it or nothing (one transaction); on sled a store whose import did not
/// finish is refused by `run` until an import with `--replace` completes.
pub async fn store_import(path: &Path, input: &Path, replace: bool) -> anyhow::Result<()> {
    use crate::store::export::{Reader, import};
    let config = Config::load(path)?;
    let source: Box<dyn std::io::Read + Send> = if input.as_os_str() == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(
            std::fs::File::open(input).with_context(|| format!("opening {}", input.display()))?,
        )
    };
    let name = input.display().to_string();
    let reader = Reader::new(std::io::BufReader::new(source)).with_context(|| name.clone())?;
    let imported = match &config.store {
        StoreConfig::Sled(sled) => {
            let store =
                crate::store::sled::SledStore::open_for_import(&sled.path, sled.cache_capacity_mb)
                    .map_err(sled_in_use)?;
            import(reader, store.import_target(), replace).await
        }
        StoreConfig::Postgres(postgres) => {
            let target = crate::store::postgres::PgImport::begin(&postgres.connection())
                .await
                .context("opening the database in [store] url")?;
            import(reader, target, replace).await
        }
    }
    .with_context(|| name.clone())?;
    println!(
        "imported {} records into the {} store (exported from {} by moauth {})",
        imported.records,
        config.store.backend(),
        imported.from.backend,
        imported.from.moauth
    );
    Ok(())
}

/// The sled store is single-process: a command on it while moauth runs says what to do.
fn sled_in_use(e: crate::store::sled::OpenError) -> anyhow::Error {
    match e {
        locked @ crate::store::sled::OpenError::Locked { .. } => {
            anyhow::Error::new(locked).context(crate::store::sled::STOP_IT_FIRST)
        }
        other => other.into(),
    }
}

/// `moauth run`: with a config file as configured; without one, on the embedded simulator.
///
/// A config mistake comes back as a [`crate::ops::config::ConfigError`] before anything
/// starts, so `main` can give it the same exit code 2 as `check-config`.
pub async fn run(config_file: Option<PathBuf>, log: LogControl) -> anyhow::Result<()> {
    // Installed first: a SIGTERM that arrives while the store opens must drain, not kill.
    let mut signals = Signals::install()?;
    let (config, _sim) = match &config_file {
        Some(path) => (Config::load(path)?, None),
        None => {
            let sim = Simulator::start(SimConfig {
                listen: "127.0.0.1:2775".parse()?,
                control: Some("127.0.0.1:2776".parse()?),
                system_id: SIM_SYSTEM_ID.into(),
                password: SIM_PASSWORD.into(),
                tls: None,
            })
            .await
            .context("starting the embedded simulator")?;
            eprintln!("=================================================================");
            eprintln!(" NO CONFIG FILE: moauth is talking to its BUILT-IN SMSC SIMULATOR");
            eprintln!(
                " SMPP {}  control http://{}",
                sim.smpp_addr,
                sim.control_addr.expect("control")
            );
            eprintln!(" store ./moauth-data; no real SMS will be sent or received.");
            eprintln!(" Give --config FILE to connect to a real SMSC.");
            eprintln!("=================================================================");
            (
                embedded_config(
                    "moauth-data".into(),
                    "127.0.0.1:8080".parse()?,
                    sim.smpp_addr,
                ),
                Some(sim),
            )
        }
    };
    log.set_level(&config.log.level)?;
    let notifier = Notifier;
    let daemon = Daemon::start(config, Clock::System, Options::default()).await?;
    // The store is open and HTTP listens; SMPP binds follow in the background (see STATUS).
    let mut last_status = daemon.status().line();
    notifier.ready(&last_status);

    let watchdog = notifier.watchdog_interval();
    let mut tick = tokio::time::interval(watchdog.unwrap_or(STATUS_EVERY).min(STATUS_EVERY));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            request = signals.next() => match request {
                Request::Stop => break,
                Request::Reload => reload(&daemon, config_file.as_deref(), &log, &notifier),
            },
            _ = tick.tick() => {
                if let Some(interval) = watchdog {
                    if daemon.healthy(interval).await {
                        notifier.watchdog();
                    } else {
                        error!("health check failed; not feeding the watchdog");
                    }
                }
                let status = daemon.status().line();
                if status != last_status {
                    notifier.status(&status);
                    last_status = status;
                }
            }
        }
    }
    info!("stopping: unbinding, finishing in-flight work, flushing the store");
    notifier.stopping();
    daemon.shutdown().await;
    Ok(())
}

/// How often STATUS= is refreshed when no watchdog asks for more.
const STATUS_EVERY: Duration = Duration::from_secs(5);

/// SIGHUP: read the file again; apply it only if it is entirely valid.
fn reload(daemon: &Daemon, path: Option<&Path>, log: &LogControl, notifier: &Notifier) {
    let Some(path) = path else {
        warn!("SIGHUP ignored: running on the built-in simulator, there is no file to reload");
        return;
    };
    notifier.reloading();
    match Config::load(path) {
        Ok(new) => {
            if let Err(e) = log.set_level(&new.log.level) {
                warn!(error = %e, "log level kept");
            }
            let waiting = daemon.reload(&new);
            if !waiting.is_empty() {
                warn!(
                    settings = %waiting.join(", "),
                    "reloaded; these changes take effect only at the next restart"
                );
            }
            info!(file = %path.display(), "configuration reloaded");
            notifier.ready(&daemon.status().line());
        }
        Err(e) => {
            error!(error = %e, "configuration NOT reloaded; the running one stays");
            notifier.ready(&format!("reload failed, old config kept: {e}"));
        }
    }
}

/// `moauth status`: what the daemon behind `url` reports, as a table or JSON.
pub async fn status(url: &str, json: bool) -> anyhow::Result<()> {
    let address = format!("{}/status", url.trim_end_matches('/'));
    let response = reqwest::get(&address)
        .await
        .with_context(|| format!("reaching moauth at {url}; is it running?"))?;
    if !response.status().is_success() {
        bail!("{address} answered {}", response.status());
    }
    let report: StatusReport = response.json().await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(())
}

/// Where a local client reaches the operators' routes (`/status`): the admin listener if there
/// is one, else the API's; a wildcard listen means loopback.
pub fn local_url(config: &Config) -> String {
    let addr = loopback(config.http.admin_listen.unwrap_or(config.http.listen));
    format!("http://{addr}")
}

/// Where a local client reaches a listener: a wildcard address (`0.0.0.0`, `[::]`) means
/// IPv4 loopback on the same port; any other address is used as it is.
fn loopback(mut addr: std::net::SocketAddr) -> std::net::SocketAddr {
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    addr
}

/// An operator's command (`moauth accounts …`, `sessions`, `inbox`, `rejected`) sent
/// to the running daemon named by `config`, on its admin listener, the only place these routes
/// exist. Prints the answer; a refusal is an error with the daemon's message.
pub async fn operator(
    config: &Path,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> anyhow::Result<()> {
    let config = Config::load(config)?;
    let Some(admin) = config.http.admin_listen else {
        bail!(
            "operator commands reach the daemon on its admin listener: set [http] admin_listen (e.g. \"127.0.0.1:9090\") and restart"
        );
    };
    let Some(key) = &config.http.admin_key else {
        bail!(
            "operator commands carry the admin key: set [http] admin_key (or admin_key_file) in the daemon's config and restart"
        );
    };
    let admin = loopback(admin);
    let mut request = reqwest::Client::new()
        .request(method, format!("http://{admin}{path}"))
        .bearer_auth(key.expose());
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("reaching the daemon's admin listener at {admin}"))?;
    let status = response.status();
    let answer: serde_json::Value = response.json().await?;
    if !status.is_success() {
        bail!(
            "{} ({})",
            answer["message"].as_str().unwrap_or("refused"),
            status.as_u16()
        );
    }
    println!("{}", serde_json::to_string_pretty(&answer)?);
    Ok(())
}

/// The configuration used with the embedded simulator (`run` without a file, `demo`).
pub fn embedded_config(store: PathBuf, http: SocketAddr, smsc: SocketAddr) -> Config {
    let mut config = Config::defaults(store);
    config.http.listen = http;
    // Without a config file someone is trying moauth out: show them the page.
    config.http.login_page = true;
    config.smsc = vec![SmscConfig {
        name: "sim".into(),
        address: smsc.into(),
        system_id: SIM_SYSTEM_ID.into(),
        password: SIM_PASSWORD.into(),
        system_type: String::new(),
        address_range: String::new(),
        bind: BindMode::Transceiver,
        tls: false,
        tls_ca_file: None,
        tls_server_name: None,
        short_code: DEFAULT_SHORT_CODE.into(),
        interface_version: "3.4".into(),
        enquire_link_secs: 30,
        response_timeout_secs: 10,
        resend_after_secs: 60,
        max_resends: 1,
        window: 10,
        max_tps: 0,
        delivery_receipts: true,
        default_alphabet: DefaultAlphabet::Gsm,
    }];
    config
}

/// `moauth sim send`: inject an MO through a running simulator's control API.
pub async fn sim_send(control: &str, request: MoRequest) -> anyhow::Result<()> {
    sim_post(control, "mo", &request).await
}

/// POSTs `body` to a running simulator's control API and prints its answer.
async fn sim_post(control: &str, path: &str, body: &impl serde::Serialize) -> anyhow::Result<()> {
    let response = reqwest::Client::new()
        .post(format!("{}/{path}", control.trim_end_matches('/')))
        .json(body)
        .send()
        .await
        .with_context(|| format!("reaching the simulator at {control}"))?;
    let status = response.status();
    let body: serde_json::Value = response.json().await?;
    if !status.is_success() {
        bail!("simulator: {}", body["message"].as_str().unwrap_or("error"));
    }
    println!("{body}");
    Ok(())
}

/// `moauth sim submits`: what the ESME has submitted so far.
pub async fn sim_submits(control: &str) -> anyhow::Result<()> {
    let body: serde_json::Value =
        reqwest::get(format!("{}/submits", control.trim_end_matches('/')))
            .await
            .with_context(|| format!("reaching the simulator at {control}"))?
            .json()
            .await?;
    println!("{}", serde_json::to_string_pretty(&body)?);
    Ok(())
}

/// The faults `moauth sim` flags ask for: `delays` as `REQUEST=MILLISECONDS`.
pub fn fault_settings(
    delays: &[String],
    receipts: Option<&str>,
    receipts_first: Option<bool>,
    refuse_binds: Option<bool>,
) -> anyhow::Result<FaultSettings> {
    let mut settings = FaultSettings {
        receipts: receipts
            .map(str::parse)
            .transpose()
            .map_err(anyhow::Error::msg)?,
        receipts_first,
        refuse_binds,
        ..FaultSettings::default()
    };
    for delay in delays {
        let (request, ms) = delay
            .split_once('=')
            .with_context(|| format!("--delay {delay:?}: write REQUEST=MILLISECONDS"))?;
        let request = request.parse().map_err(anyhow::Error::msg)?;
        let ms = ms
            .parse()
            .with_context(|| format!("--delay {delay:?}: {ms:?} is not milliseconds"))?;
        settings.delay_ms.insert(request, ms);
    }
    Ok(settings)
}

/// `moauth sim faults`: change the faults a running simulator shows.
pub async fn sim_faults(control: &str, settings: &FaultSettings) -> anyhow::Result<()> {
    sim_post(control, "faults", settings).await
}

/// A `host:port` to listen on; the host may be a name (`localhost:2775`), and its first
/// address is used.
pub async fn resolve(address: &str) -> anyhow::Result<SocketAddr> {
    tokio::net::lookup_host(address)
        .await
        .with_context(|| format!("{address:?}: not host:port, or the host does not resolve"))?
        .next()
        .with_context(|| format!("{address:?}: the host has no address"))
}
