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
//! benchmarks use a cluster with the default (durable) settings.
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
    let test = std::thread::current().name().unwrap_or("a test").to_owned();
    let cluster = tokio::task::spawn_blocking(|| CLUSTER.get_or_init(start).as_ref())
        .await
        .unwrap();
    let port = match cluster {
        Ok(cluster) => cluster.port,
        Err(why) if in_ci() => panic!("{test}: PostgreSQL is required under CI=true: {why}"),
        Err(why) => {
            // Straight to stderr: libtest captures eprintln! of passing tests, and a skip
            // must be seen.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: {why} (CI=true makes this a failure)"
            );
            return None;
        }
    };
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!("t{}", NEXT.fetch_add(1, Ordering::Relaxed));
    let admin = connect(&url(port, "postgres")).await;
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    Some(TestDatabase {
        url: url(port, &name),
        name,
    })
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

fn start() -> Result<Cluster, String> {
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
        let port = free_port();
        let mut pg_ctl = as_owner(&bin.join("pg_ctl"));
        pg_ctl
            .arg("-D")
            .arg(&data)
            .args(["-w", "-t", "60", "-l"])
            .arg(dir.join("log"))
            .arg("-o")
            .arg(format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off \
                 -c full_page_writes=off -c max_connections=300",
                dir.display()
            ))
            .arg("start");
        match run(pg_ctl, "pg_ctl start") {
            Ok(()) => return Ok(Cluster { port }),
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
