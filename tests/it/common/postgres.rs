//! A throwaway PostgreSQL cluster for the tests: one per test binary, a fresh database per test.
//!
//! The first test that asks starts it (initdb + pg_ctl from Debian's postgresql-15, as the
//! `postgres` user when we are root, since initdb refuses to run as root) on a free loopback
//! port with its socket in its own directory, so several test binaries can run at once. A
//! guardian process in its own process group stops the cluster and removes its directory when
//! this process is gone, however it ends (normal exit, a panic, SIGKILL, Ctrl-C).
//!
//! The cluster runs with fsync off: these tests kill moauth nodes, never the database's
//! machine, and a commit is a commit to every other session with or without fsync. The
//! benchmarks use a cluster with the default (durable) settings ([`OwnCluster::start_durable`]).
//!
//! Without PostgreSQL installed the tests that need it say so on stderr and pass, except under
//! `CI=true`, where a missing PostgreSQL is a failure: CI must not go green by skipping.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use moauth::store::postgres::Connection;
use tokio_postgres::NoTls;

/// Where Debian puts the server binaries; `MOAUTH_PG_BIN` overrides it.
const DEBIAN_BIN: &str = "/usr/lib/postgresql/15/bin";

struct Cluster {
    port: u16,
    bin: PathBuf,
    dir: PathBuf,
    /// fsync on and pg_stat_statements loaded: the benchmarks' settings.
    durable: bool,
}

impl Cluster {
    fn pg_ctl(&self, action: &str) -> Command {
        let mut pg_ctl = as_owner(&self.bin.join("pg_ctl"));
        pg_ctl.arg("-D").arg(self.dir.join("data"));
        match action {
            "start" => pg_ctl
                .args(["-w", "-t", "60", "-l"])
                .arg(self.dir.join("log"))
                .arg("-o")
                .arg(format!(
                    "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=300 {}",
                    self.port,
                    self.dir.display(),
                    if self.durable {
                        "-c shared_preload_libraries=pg_stat_statements"
                    } else {
                        "-c fsync=off -c full_page_writes=off"
                    }
                ))
                .arg("start"),
            _ => pg_ctl.args(["-w", "-m", "fast", "stop"]),
        };
        pg_ctl
    }
}

/// A cluster of the calling test's own, for a test that stops and starts the database under
/// running nodes (the shared one serves every other test meanwhile).
pub struct OwnCluster(Cluster);

impl OwnCluster {
    /// A new cluster, or `None` (said loudly) as [`database`] does.
    pub async fn start() -> Option<OwnCluster> {
        let started = tokio::task::spawn_blocking(|| start(false)).await.unwrap();
        available(started).map(OwnCluster)
    }

    /// A cluster with PostgreSQL's default durability (fsync on) and pg_stat_statements
    /// loaded, for the benchmarks.
    pub async fn start_durable() -> Option<OwnCluster> {
        let started = tokio::task::spawn_blocking(|| start(true)).await.unwrap();
        available(started).map(OwnCluster)
    }

    /// A fresh, empty database in this cluster.
    pub async fn database(&self) -> TestDatabase {
        create_database(self.0.port).await
    }

    /// Stops the server (fast shutdown: sessions are cut, as in a crash or failover).
    pub async fn stop(&self) {
        let command = self.0.pg_ctl("stop");
        tokio::task::spawn_blocking(move || run(command, "pg_ctl stop"))
            .await
            .unwrap()
            .unwrap();
    }

    /// Starts it again on the same port.
    pub async fn restart(&self) {
        let command = self.0.pg_ctl("start");
        tokio::task::spawn_blocking(move || run(command, "pg_ctl start"))
            .await
            .unwrap()
            .unwrap();
    }
}

static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();

/// A database of its own for the calling test.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
}

impl TestDatabase {
    /// How a node reaches this database, with a small pool and a short statement timeout.
    pub fn connection(&self) -> Connection {
        Connection {
            url: self.url.clone(),
            pool_size: 4,
            statement_timeout: Duration::from_secs(10),
        }
    }

    /// A plain client, for tests that look at the database behind moauth's back.
    pub async fn client(&self) -> tokio_postgres::Client {
        connect(&self.url).await
    }
}

/// A fresh, empty database, or `None` (said loudly) when PostgreSQL is not installed and we are
/// not in CI.
pub async fn database() -> Option<TestDatabase> {
    let cluster = tokio::task::spawn_blocking(|| CLUSTER.get_or_init(|| start(false)).as_ref())
        .await
        .unwrap();
    Some(create_database(available(cluster)?.port).await)
}

/// The cluster, or `None` after saying why on stderr (a failure under CI).
fn available<C>(cluster: Result<C, impl std::fmt::Display>) -> Option<C> {
    let test = std::thread::current().name().unwrap_or("a test").to_owned();
    match cluster {
        Ok(cluster) => Some(cluster),
        Err(why) if in_ci() => panic!("{test}: PostgreSQL is required under CI=true: {why}"),
        Err(why) => {
            // Straight to stderr: libtest captures eprintln! of passing tests, and a skip
            // must be seen.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: {why} (CI=true makes this a failure)"
            );
            None
        }
    }
}

async fn create_database(port: u16) -> TestDatabase {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!("t{}", NEXT.fetch_add(1, Ordering::Relaxed));
    let admin = connect(&url(port, "postgres")).await;
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    TestDatabase {
        url: url(port, &name),
        name,
    }
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

fn url(port: u16, database: &str) -> String {
    format!("postgres://postgres@127.0.0.1:{port}/{database}")
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

fn bin_dir() -> Result<PathBuf, String> {
    let dir =
        std::env::var_os("MOAUTH_PG_BIN").map_or_else(|| PathBuf::from(DEBIAN_BIN), PathBuf::from);
    if dir.join("initdb").is_file() {
        Ok(dir)
    } else {
        Err(format!(
            "PostgreSQL is not installed (no {}; `apt-get install postgresql`, or set MOAUTH_PG_BIN)",
            dir.join("initdb").display()
        ))
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// `program` as the cluster's owner: `postgres` when we are root, else ourselves.
fn as_owner(program: &Path) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn run(mut command: Command, what: &str) -> Result<(), String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(durable: bool) -> Result<Cluster, String> {
    let bin = bin_dir()?;
    let dir = tempfile::Builder::new()
        .prefix("moauth-pg-")
        .tempdir()
        .map_err(|e| e.to_string())?
        .keep();
    guard(&bin, &dir)?;
    // The cluster's owner must be able to enter (mktemp makes 0700) and write here.
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .map_err(|e| e.to_string())?;
    if is_root() {
        run(
            {
                let mut c = Command::new("chown");
                c.arg("postgres").arg(&dir);
                c
            },
            "chown postgres",
        )?;
    }
    let data = dir.join("data");
    let mut initdb = as_owner(&bin.join("initdb"));
    initdb.arg("-D").arg(&data).args([
        "-A",
        "trust",
        "-U",
        "postgres",
        "-E",
        "UTF8",
        "--locale=C",
        "--no-sync",
    ]);
    run(initdb, "initdb")?;
    // A port free a moment ago may be taken by the time the server binds it: try a few.
    let mut last = String::new();
    for _ in 0..5 {
        let cluster = Cluster {
            port: free_port(),
            bin: bin.clone(),
            dir: dir.clone(),
            durable,
        };
        match run(cluster.pg_ctl("start"), "pg_ctl start") {
            Ok(()) => return Ok(cluster),
            Err(e) => {
                last = format!(
                    "{e}\n{}",
                    std::fs::read_to_string(dir.join("log")).unwrap_or_default()
                )
            }
        }
    }
    Err(last)
}

/// Starts the process that stops the cluster and removes `dir` once this process is gone.
fn guard(bin: &Path, dir: &Path) -> Result<(), String> {
    let stop = if is_root() {
        "runuser -u postgres -- \"$2/pg_ctl\""
    } else {
        "\"$2/pg_ctl\""
    };
    let script = format!(
        "while [ -d /proc/$1 ]; do sleep 0.5; done; \
         {stop} -D \"$3/data\" -m immediate stop >/dev/null 2>&1; rm -rf \"$3\""
    );
    std::os::unix::process::CommandExt::process_group(
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("moauth-pg-guard")
            .arg(std::process::id().to_string())
            .arg(bin)
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
        0,
    )
    .spawn()
    .map(drop)
    .map_err(|e| format!("guard: {e}"))
}
