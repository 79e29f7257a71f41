//! moauth nodes on PostgreSQL: real `moauth run` processes sharing one database, each bound to
//! the test's simulator, for the tests that kill, restart and poll them.
//!
//! A node is ready once it logged `moauth started` (its store is open and migrated, HTTP
//! listens) and `bound` (its SMPP link read the bind answer). Every wait is for an event and
//! bounded by `PATIENCE`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use moauth::cli::{SIM_PASSWORD, SIM_SYSTEM_ID};
use tokio::process::{Child, Command};

use super::process::Logs;
use super::{PATIENCE, http_client};

/// Writes a node's config into `dir` (the database URL in a file beside it, as a secret
/// would be); `extra` is TOML appended after `[http]` (tables only).
pub fn write_config(dir: &Path, node: &str, url: &str, smsc: SocketAddr, extra: &str) -> PathBuf {
    let url_file = dir.join(format!("{node}.db-url"));
    std::fs::write(&url_file, url).unwrap();
    let store = format!(
        r#"backend = "postgres"
url_file = "{url_file}"
pool_size = 8
statement_timeout_ms = 2000
lease_secs = 2
node = "{node}""#,
        url_file = url_file.display(),
    );
    write_config_with_store(dir, node, &store, smsc, extra)
}

/// As [`write_config`], with `store` as the body of `[store]`.
pub fn write_config_with_store(
    dir: &Path,
    node: &str,
    store: &str,
    smsc: SocketAddr,
    extra: &str,
) -> PathBuf {
    let password_file = dir.join("smsc.password");
    std::fs::write(&password_file, SIM_PASSWORD).unwrap();
    let text = format!(
        r#"[store]
{store}

[http]
listen = "127.0.0.1:0"

{extra}

[[smsc]]
name = "sim"
address = "{smsc}"
system_id = "{SIM_SYSTEM_ID}"
password_file = "{password_file}"
short_code = "10690000"
"#,
        password_file = password_file.display(),
    );
    let path = dir.join(format!("{node}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// One `moauth run --config FILE` process.
pub struct Node {
    pub name: String,
    pub http: SocketAddr,
    pub logs: Logs,
    config: PathBuf,
    child: Child,
}

impl Node {
    /// Starts a node and returns once it serves HTTP and is bound to its SMSC.
    pub async fn launch(name: &str, config: &Path) -> Node {
        let mut child = Command::new(env!("CARGO_BIN_EXE_moauth"))
            .args(["--log-format", "json", "run", "--config"])
            .arg(config)
            .env_remove("RUST_LOG")
            .env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let logs = Logs::follow(child.stderr.take().unwrap());
        let started = logs.wait_message("moauth started").await;
        let http = started["http"].as_str().unwrap().parse().unwrap();
        logs.wait_message("bound").await;
        Node {
            name: name.to_owned(),
            http,
            logs,
            config: config.to_owned(),
            child,
        }
    }

    /// SIGKILL: no drain, no unbind; returns once the process is gone.
    pub async fn kill(&mut self) {
        self.child.start_kill().unwrap();
        let status = tokio::time::timeout(PATIENCE, self.child.wait())
            .await
            .expect("killed node did not exit")
            .unwrap();
        assert_eq!(status.code(), None, "{} died by the signal", self.name);
    }

    pub fn signal(&self, signal: i32) {
        let pid = self.child.id().expect("node is running") as i32;
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
    }

    /// SIGTERM, then the exit code of the drained stop.
    pub async fn stop(&mut self) -> i32 {
        self.signal(libc::SIGTERM);
        let status = tokio::time::timeout(PATIENCE, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("{} did not stop; logs:\n{}", self.name, self.logs.text()))
            .unwrap();
        status.code().unwrap_or(-1)
    }

    /// Starts the node again on the same config, after [`Node::kill`] or [`Node::stop`].
    pub async fn relaunch(&mut self) {
        *self = Node::launch(&self.name, &self.config).await;
    }

    /// `/readyz`: its status code and answer.
    pub async fn readyz(&self) -> (u16, serde_json::Value) {
        let response = http_client()
            .get(format!("http://{}/readyz", self.http))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    /// Waits until `/readyz` answers `status` with `"store": store`; that answer.
    pub async fn wait_readyz(&self, status: u16, store: &str) -> serde_json::Value {
        super::eventually_ok(
            &format!("{}: /readyz {status} with store {store}", self.name),
            async || match self.readyz().await {
                (now, answer) if now == status && answer["store"] == store => Ok(answer),
                (now, answer) => Err(format!("it stayed {now} ({answer})")),
            },
        )
        .await
    }
}
