//! The `moauth` command line: parse, then hand over to the library.
//!
//! Exit codes: 0 done (a drained stop included), 1 failure, 2 a mistake in the config file
//! (from `check-config` and from `run` alike, so scripts and systemd see the same thing),
//! 3 a store that another process holds or that cannot be used (a restart cannot fix either;
//! the unit's RestartPreventExitStatus lists 2 and 3).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use moauth::cli;
use moauth::daemon::DaemonError;
use moauth::daemon::stranded;
use moauth::ops::config::{Config, ConfigError};
use moauth::ops::logging::{self, LogFormat};
use moauth::sim::{FaultSettings, MoRequest, SimConfig, Simulator};
use reqwest::Method;

/// mimalloc, not glibc's malloc: the store allocates and frees a copy of a B-tree node for
/// every write, and that churn is cheaper and leaves less resident memory behind with
/// mimalloc (before/after in BENCHMARKS.md, "Profile").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(version, about = "Register or log in to an app by sending one SMS")]
struct Args {
    /// Log format; `auto` is human text on a terminal and JSON lines otherwise (systemd).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Auto)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon; without --config it talks to a built-in SMSC simulator.
    Run {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// The whole story on loopback: token, SMS, account, session, poll.
    Demo {
        /// Serve the login page with a simulated phone beside it, and print its URL.
        #[arg(long)]
        web: bool,
        /// With --web: the page's address (default 127.0.0.1:8080, or any port if taken).
        #[arg(long, requires = "web")]
        listen: Option<std::net::SocketAddr>,
    },
    /// Print a fresh verifier, token and sms: URI, as an app would make them.
    Token {
        #[arg(long)]
        json: bool,
        #[arg(long, default_value = moauth::core::DEFAULT_SHORT_CODE)]
        short_code: String,
        #[arg(long, default_value = "LOGIN")]
        keyword: String,
        /// The app's name, put after the token so the person sees which app the code is for.
        #[arg(long, default_value = "")]
        app: String,
    },
    /// Check a config file; exit code 2 with file, line and key on any mistake.
    CheckConfig { file: PathBuf },
    /// Operations on the store named by --config.
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// Replies queued per SMSC, and moving or dropping those of an [[smsc]] that no longer
    /// exists. On the embedded store, with moauth stopped (it holds the store).
    Outbox {
        #[command(subcommand)]
        command: OutboxCommand,
        #[arg(long, global = true, default_value = "/etc/moauth/moauth.toml")]
        config: PathBuf,
    },
    /// Ask a running daemon for its binds, queue depths and rates.
    Status {
        /// The daemon's operator routes; by default the `http.admin_listen` (else `http.listen`)
        /// of --config, else port 8080.
        #[arg(long)]
        url: Option<String>,
        #[arg(long, default_value = "/etc/moauth/moauth.toml")]
        config: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// An account of the embedded auth core, on a running daemon (needs `[http] admin_listen`).
    Accounts {
        #[command(subcommand)]
        command: AccountsCommand,
        #[arg(long, global = true, default_value = "/etc/moauth/moauth.toml")]
        config: PathBuf,
    },
    /// Sessions of the embedded auth core, on a running daemon.
    Sessions {
        #[command(subcommand)]
        command: SessionsCommand,
        #[arg(long, global = true, default_value = "/etc/moauth/moauth.toml")]
        config: PathBuf,
    },
    /// MOs acknowledged and not yet processed, on a running daemon.
    Inbox {
        #[command(subcommand)]
        command: ListCommand,
        #[arg(long, global = true, default_value = "/etc/moauth/moauth.toml")]
        config: PathBuf,
    },
    /// MOs set aside as unreadable, on a running daemon.
    Rejected {
        #[command(subcommand)]
        command: ListCommand,
        #[arg(long, global = true, default_value = "/etc/moauth/moauth.toml")]
        config: PathBuf,
    },
    /// The built-in SMSC simulator.
    Sim {
        #[command(subcommand)]
        command: Option<SimCommand>,
        #[arg(long, default_value = "127.0.0.1:2775")]
        listen: String,
        #[arg(long, default_value = "127.0.0.1:2776")]
        control: String,
        #[arg(long, default_value = cli::SIM_SYSTEM_ID)]
        system_id: String,
        #[arg(long, default_value = cli::SIM_PASSWORD)]
        password: String,
        #[command(flatten)]
        faults: Box<FaultArgs>,
    },
}

/// Faults for the simulator to show, as real SMSCs do on bad days.
#[derive(clap::Args)]
struct FaultArgs {
    /// Answer a kind of request late: REQUEST=MILLISECONDS, REQUEST one of submit_sm,
    /// enquire_link, bind, unbind. Repeatable.
    #[arg(long = "delay", value_name = "REQUEST=MS")]
    delays: Vec<String>,
    /// Send a delivery receipt for every submit that asks, its message id in hex or decimal.
    #[arg(long, value_name = "hex|decimal")]
    receipts: Option<String>,
    /// Send each receipt before the submit_sm_resp it reports on.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    receipts_first: Option<bool>,
    /// Refuse every bind (ESME_RBINDFAIL).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    refuse_binds: Option<bool>,
}

impl FaultArgs {
    fn settings(&self) -> anyhow::Result<FaultSettings> {
        cli::fault_settings(
            &self.delays,
            self.receipts.as_deref(),
            self.receipts_first,
            self.refuse_binds,
        )
    }
}

#[derive(Subcommand)]
enum OutboxCommand {
    /// Replies waiting, per SMSC name.
    List,
    /// Hand the replies queued for one SMSC name to a configured [[smsc]].
    Reroute {
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
    },
    /// Delete the replies queued for one SMSC name, unsent.
    Drop {
        #[arg(long)]
        smsc: String,
    },
}

#[derive(Subcommand)]
enum AccountsCommand {
    /// The account of NUMBER (E.164 with +): id, creation time, opt-out.
    Show { number: String },
    /// Erase NUMBER: its account, sessions, login records and every record naming it.
    Delete { number: String },
}

#[derive(Subcommand)]
enum SessionsCommand {
    /// End every session of an account.
    Revoke {
        #[arg(long)]
        account: String,
    },
}

#[derive(Subcommand)]
enum ListCommand {
    List,
}

#[derive(Subcommand)]
enum StoreCommand {
    /// Bring the PostgreSQL schema up to this build's version (`run` also does at start).
    Migrate {
        #[arg(long, default_value = "/etc/moauth/moauth.toml")]
        config: PathBuf,
    },
    /// Write every record of the store to a file (protocol/store-export.md), to move it to
    /// another backend or keep it as a backup. The sled store only with moauth stopped;
    /// PostgreSQL from one snapshot, beside running nodes.
    Export {
        #[arg(long, default_value = "/etc/moauth/moauth.toml")]
        config: PathBuf,
        /// The file to create (mode 0600, never overwritten), or `-` for standard output.
        #[arg(long, short)]
        output: PathBuf,
    },
    /// Read an export into the store of --config, which must be empty (or --replace).
    Import {
        #[arg(long, default_value = "/etc/moauth/moauth.toml")]
        config: PathBuf,
        /// The export to read, or `-` for standard input.
        #[arg(long, short)]
        input: PathBuf,
        /// Discard everything the store holds first.
        #[arg(long)]
        replace: bool,
    },
}

#[derive(Subcommand)]
enum SimCommand {
    /// Inject an MO into a running simulator, as a phone would send it.
    Send {
        #[arg(long, default_value = "http://127.0.0.1:2776")]
        control: String,
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: Option<String>,
        #[arg(long)]
        text: String,
        /// Deliver it as data_sm (text in message_payload), as some SMSCs do.
        #[arg(long)]
        data_sm: bool,
        /// Send the text as Latin-1 octets under data_coding 0.
        #[arg(long)]
        latin1: bool,
        /// Put an 8-bit concatenation IE of the wrong length in front of every UDH.
        #[arg(long)]
        malformed_concat: bool,
    },
    /// List what the ESME submitted to a running simulator.
    Submits {
        #[arg(long, default_value = "http://127.0.0.1:2776")]
        control: String,
    },
    /// Change the faults a running simulator shows (what is not given stays as it is).
    Faults {
        #[arg(long, default_value = "http://127.0.0.1:2776")]
        control: String,
        #[command(flatten)]
        faults: Box<FaultArgs>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    moauth::install_crypto_provider();
    let args = Args::parse();
    let quiet = matches!(
        args.command,
        Command::Demo { .. }
            | Command::Token { .. }
            | Command::Accounts { .. }
            | Command::Sessions { .. }
            | Command::Outbox { .. }
            | Command::Inbox { .. }
            | Command::Rejected { .. }
            | Command::Store { .. }
    );
    let log = logging::init(args.log_format, if quiet { "warn" } else { "info" });
    let result = match args.command {
        Command::Run { config } => cli::run(config, log).await,
        Command::Demo { web: false, .. } => moauth::demo::run().await,
        Command::Demo { web: true, listen } => moauth::demo::web::run(listen).await,
        Command::Token {
            json,
            short_code,
            keyword,
            app,
        } => {
            cli::token(json, &short_code, &keyword, &app);
            Ok(())
        }
        Command::CheckConfig { file } => cli::check_config(&file),
        Command::Store {
            command: StoreCommand::Migrate { config },
        } => cli::store_migrate(&config).await,
        Command::Store {
            command: StoreCommand::Export { config, output },
        } => cli::store_export(&config, &output).await,
        Command::Store {
            command:
                StoreCommand::Import {
                    config,
                    input,
                    replace,
                },
        } => cli::store_import(&config, &input, replace).await,
        Command::Outbox { command, config } => outbox(&config, command).await,
        Command::Status { url, config, json } => {
            let url = match url {
                Some(url) => url,
                None => Config::load(&config)
                    .map(|c| cli::local_url(&c))
                    .unwrap_or_else(|_| "http://127.0.0.1:8080".into()),
            };
            cli::status(&url, json).await
        }
        Command::Accounts { command, config } => {
            let (method, number) = match &command {
                AccountsCommand::Show { number } => (Method::GET, number),
                AccountsCommand::Delete { number } => (Method::DELETE, number),
            };
            let path = format!("/admin/accounts/{}", number.replace('+', "%2B"));
            cli::operator(&config, method, &path, None).await
        }
        Command::Sessions {
            command: SessionsCommand::Revoke { account },
            config,
        } => {
            let body = serde_json::json!({ "account_id": account });
            cli::operator(
                &config,
                Method::POST,
                "/admin/sessions/revoke-all",
                Some(body),
            )
            .await
        }
        Command::Inbox { config, .. } => {
            cli::operator(&config, Method::GET, "/admin/inbox", None).await
        }
        Command::Rejected { config, .. } => {
            cli::operator(&config, Method::GET, "/admin/rejected", None).await
        }
        Command::Sim {
            command:
                Some(SimCommand::Send {
                    control,
                    from,
                    to,
                    text,
                    data_sm,
                    latin1,
                    malformed_concat,
                }),
            ..
        } => {
            let request = MoRequest {
                from,
                to,
                text,
                data_sm,
                latin1,
                malformed_concat,
            };
            cli::sim_send(&control, request).await
        }
        Command::Sim {
            command: Some(SimCommand::Submits { control }),
            ..
        } => cli::sim_submits(&control).await,
        Command::Sim {
            command: Some(SimCommand::Faults { control, faults }),
            ..
        } => async { cli::sim_faults(&control, &faults.settings()?).await }.await,
        Command::Sim {
            command: None,
            listen,
            control,
            system_id,
            password,
            faults,
        } => {
            async { run_sim(listen, control, system_id, password, faults.settings()?).await }.await
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<ConfigError>().is_some() => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
        Err(e)
            if e.downcast_ref::<DaemonError>()
                .is_some_and(DaemonError::restart_cannot_fix) =>
        {
            eprintln!("moauth: {e:#}");
            ExitCode::from(3)
        }
        Err(e) => {
            eprintln!("moauth: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn outbox(config: &std::path::Path, command: OutboxCommand) -> anyhow::Result<()> {
    let config = Config::load(config)?;
    match command {
        OutboxCommand::List => print!("{}", stranded::list(&config).await?),
        OutboxCommand::Reroute { from, to } => {
            let moved = stranded::reroute(&config, &from, &to).await?;
            println!("{moved} replies queued for {from:?} now go out through {to:?}");
        }
        OutboxCommand::Drop { smsc } => {
            let dropped = stranded::drop(&config, &smsc).await?;
            println!("{dropped} replies queued for {smsc:?} dropped, unsent");
        }
    }
    Ok(())
}

async fn run_sim(
    listen: String,
    control: String,
    system_id: String,
    password: String,
    faults: FaultSettings,
) -> anyhow::Result<()> {
    let sim = Simulator::start(SimConfig {
        listen: cli::resolve(&listen).await?,
        control: Some(cli::resolve(&control).await?),
        system_id,
        password,
        tls: None,
    })
    .await?;
    sim.set_faults(&faults);
    eprintln!(
        "simulator: SMPP {} control http://{}",
        sim.smpp_addr,
        sim.control_addr.expect("control")
    );
    tokio::signal::ctrl_c().await?;
    sim.stop();
    Ok(())
}
