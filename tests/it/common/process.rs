//! The real `moauth` binary as systemd runs it, for the operations tests.
//!
//! The simulator runs in the test; between it and the daemon sits an [`SmppTap`] that
//! forwards bytes and notes each PDU the daemon sends (so a test can see the unbind); a
//! [`NotifySocket`] stands where systemd's notify socket would be; stderr is read as JSON log
//! lines. Every wait is for an event and bounded by `PATIENCE`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use moauth::cli::{SIM_PASSWORD, SIM_SYSTEM_ID};
use moauth::sim::{MoResult, Simulator, Submitted};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream, UnixDatagram};
use tokio::process::{Child, Command};
use tokio::sync::watch;

use super::PATIENCE;

pub const BIND_TRANSCEIVER: u32 = 0x0000_0009;
pub const UNBIND: u32 = 0x0000_0006;

/// A Unix datagram socket standing in for systemd's `NOTIFY_SOCKET`.
pub struct NotifySocket {
    socket: UnixDatagram,
    pub path: PathBuf,
    /// Every message received so far, in order.
    pub seen: Vec<String>,
}

impl NotifySocket {
    pub fn bind(dir: &Path) -> NotifySocket {
        let path = dir.join("notify.sock");
        NotifySocket {
            socket: UnixDatagram::bind(&path).unwrap(),
            path,
            seen: Vec::new(),
        }
    }

    /// A message with a line `line`, received already or still to come.
    pub async fn has_seen(&mut self, line: &str) -> String {
        let earlier = self.seen.iter().find(|m| m.lines().any(|l| l == line));
        match earlier {
            Some(message) => message.clone(),
            None => self.wait_for(line).await,
        }
    }

    /// The next message that has a line `line` (e.g. `READY=1`); earlier ones are kept in
    /// `seen` but skipped.
    pub async fn wait_for(&mut self, line: &str) -> String {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        let mut buf = vec![0u8; 4096];
        loop {
            let received = tokio::time::timeout_at(deadline, self.socket.recv(&mut buf)).await;
            let Ok(Ok(n)) = received else {
                panic!("no {line} on the notify socket; saw {:?}", self.seen);
            };
            let message = String::from_utf8_lossy(&buf[..n]).into_owned();
            self.seen.push(message.clone());
            if message.lines().any(|l| l == line) {
                return message;
            }
        }
    }
}

/// A TCP proxy in front of the simulator that records the command id of every PDU the
/// daemon sends.
pub struct SmppTap {
    pub addr: SocketAddr,
    sent: watch::Sender<Vec<u32>>,
}

impl SmppTap {
    pub async fn start(upstream: SocketAddr) -> SmppTap {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let sent = watch::channel(Vec::new()).0;
        let record = sent.clone();
        tokio::spawn(async move {
            while let Ok((daemon, _)) = listener.accept().await {
                let Ok(sim) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let (mut from_daemon, mut to_daemon) = daemon.into_split();
                let (mut from_sim, mut to_sim) = sim.into_split();
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut from_sim, &mut to_daemon).await;
                    let _ = to_daemon.shutdown().await;
                });
                let record = record.clone();
                tokio::spawn(async move {
                    let mut header = [0u8; 16];
                    while from_daemon.read_exact(&mut header).await.is_ok() {
                        let len = u32::from_be_bytes(header[..4].try_into().unwrap()) as usize;
                        let mut body = vec![0u8; len.saturating_sub(16)];
                        if from_daemon.read_exact(&mut body).await.is_err() {
                            break;
                        }
                        record.send_modify(|ids| {
                            ids.push(u32::from_be_bytes(header[4..8].try_into().unwrap()))
                        });
                        if to_sim.write_all(&header).await.is_err()
                            || to_sim.write_all(&body).await.is_err()
                        {
                            break;
                        }
                    }
                    let _ = to_sim.shutdown().await;
                });
            }
        });
        SmppTap { addr, sent }
    }

    /// How many PDUs with this command id the daemon has sent so far.
    pub fn count(&self, command_id: u32) -> usize {
        self.sent
            .borrow()
            .iter()
            .filter(|id| **id == command_id)
            .count()
    }
}

/// Everything the daemon wrote to stderr, line by line.
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<String>>>, Arc<watch::Sender<usize>>);

impl Logs {
    /// Collects a child's stderr, line by line, until it closes.
    pub fn follow(stderr: tokio::process::ChildStderr) -> Logs {
        let logs = Logs::default();
        let collecting = logs.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                collecting.0.lock().unwrap().push(line);
                collecting.1.send_modify(|n| *n += 1);
            }
        });
        logs
    }

    pub fn text(&self) -> String {
        self.0.lock().unwrap().join("\n")
    }

    /// The first JSON log line whose `message` is `message`, once it was written.
    pub async fn wait_message(&self, message: &str) -> Value {
        let mut written = self.1.subscribe();
        let found = tokio::time::timeout(PATIENCE, async {
            loop {
                let hit = self.0.lock().unwrap().iter().find_map(|line| {
                    serde_json::from_str::<Value>(line)
                        .ok()
                        .filter(|v| v["message"] == message)
                });
                if let Some(hit) = hit {
                    return hit;
                }
                if written.changed().await.is_err() {
                    // stderr closed: nothing more will come; let the timeout report it.
                    std::future::pending::<()>().await;
                }
            }
        })
        .await;
        found.unwrap_or_else(|_| panic!("no log {message:?}; logs:\n{}", self.text()))
    }
}

/// The simulator, the tap and a `moauth run --config FILE` process on a temporary store.
pub struct Spawned {
    pub sim: Simulator,
    pub tap: SmppTap,
    pub notify: NotifySocket,
    pub config_path: PathBuf,
    pub dir: tempfile::TempDir,
    pub logs: Logs,
    pub http: SocketAddr,
    child: Option<Child>,
    env: Vec<(String, String)>,
    /// RLIMIT_FSIZE for the daemon: its store's files cannot grow past this (a full disk).
    file_size_limit: Option<u64>,
    /// RLIMIT_NOFILE for the daemon: as systemd's `LimitNOFILE=`.
    open_files_limit: Option<u64>,
}

impl Spawned {
    /// Starts everything; `extra` is TOML appended to the base config (tables only).
    /// Returns once the daemon said READY and bound to the simulator.
    pub async fn start(extra: &str, env: &[(&str, &str)]) -> Spawned {
        Self::start_limited(extra, env, None).await
    }

    /// As [`Spawned::start`], with the daemon's files limited to `file_size_limit` bytes:
    /// writes past it fail (EFBIG), as on a full disk.
    pub async fn start_limited(
        extra: &str,
        env: &[(&str, &str)],
        file_size_limit: Option<u64>,
    ) -> Spawned {
        Self::start_rlimited(extra, env, file_size_limit, None).await
    }

    /// As [`Spawned::start`], with the daemon allowed `open_files` descriptors at most.
    pub async fn start_with_open_files(extra: &str, open_files: u64) -> Spawned {
        Self::start_rlimited(extra, &[], None, Some(open_files)).await
    }

    async fn start_rlimited(
        extra: &str,
        env: &[(&str, &str)],
        file_size_limit: Option<u64>,
        open_files_limit: Option<u64>,
    ) -> Spawned {
        let sim = super::loopback_sim().await;
        let tap = SmppTap::start(sim.smpp_addr).await;
        let dir = tempfile::tempdir().unwrap();
        let notify = NotifySocket::bind(dir.path());
        let config_path = dir.path().join("moauth.toml");
        let mut spawned = Spawned {
            sim,
            tap,
            notify,
            config_path,
            logs: Logs::default(),
            http: "0.0.0.0:0".parse().unwrap(),
            child: None,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            dir,
            file_size_limit,
            open_files_limit,
        };
        std::fs::write(spawned.dir.path().join("smsc.password"), SIM_PASSWORD).unwrap();
        spawned.write_config(extra);
        spawned.launch().await;
        spawned
    }

    /// The config file the daemon reads: base settings, then `extra`.
    pub fn write_config(&self, extra: &str) {
        let dir = self.dir.path().display();
        let text = format!(
            r#"[store]
path = "{dir}/store"

[http]
listen = "127.0.0.1:0"

{extra}

[[smsc]]
name = "sim"
address = "{tap}"
system_id = "{SIM_SYSTEM_ID}"
password_file = "{dir}/smsc.password"
short_code = "10690000"
"#,
            tap = self.tap.addr,
        );
        std::fs::write(&self.config_path, text).unwrap();
    }

    async fn launch(&mut self) {
        let mut command = Command::new(env!("CARGO_BIN_EXE_moauth"));
        command
            .args(["--log-format", "json", "run", "--config"])
            .arg(&self.config_path)
            .env("NOTIFY_SOCKET", &self.notify.path)
            .env_remove("RUST_LOG")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(bytes) = self.file_size_limit {
            // SAFETY: between fork and exec only async-signal-safe calls (setrlimit, signal).
            unsafe {
                command.pre_exec(move || {
                    // A write past the limit then fails with EFBIG instead of killing.
                    libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                    let limit = libc::rlimit {
                        rlim_cur: bytes,
                        rlim_max: bytes,
                    };
                    match libc::setrlimit(libc::RLIMIT_FSIZE, &limit) {
                        0 => Ok(()),
                        _ => Err(std::io::Error::last_os_error()),
                    }
                });
            }
        }
        if let Some(open_files) = self.open_files_limit {
            // SAFETY: between fork and exec only an async-signal-safe call (setrlimit).
            unsafe {
                command.pre_exec(move || {
                    let limit = libc::rlimit {
                        rlim_cur: open_files,
                        rlim_max: open_files,
                    };
                    match libc::setrlimit(libc::RLIMIT_NOFILE, &limit) {
                        0 => Ok(()),
                        _ => Err(std::io::Error::last_os_error()),
                    }
                });
            }
        }
        let mut child = command.spawn().unwrap();
        self.logs = Logs::follow(child.stderr.take().unwrap());
        self.child = Some(child);
        self.notify.wait_for("READY=1").await;
        let started = self.logs.wait_message("moauth started").await;
        self.http = started["http"].as_str().unwrap().parse().unwrap();
        // The simulator counts a bind before it answers it, and the daemon logs "bound" once
        // it has read that answer: then both agree that this process is bound. (Counting the
        // simulator's sessions instead races with a killed predecessor's, which the simulator
        // may not yet have seen close.)
        self.logs.wait_message("bound").await;
    }

    /// Stops a daemon run with `RUST_LOG=trace` (SIGTERM, exit 0) and checks that none of
    /// `secrets` (what, value) reached its logs, which really hold trace lines; the logs.
    pub async fn stop_and_check_secrets(&mut self, secrets: &[(&str, &str)]) -> String {
        self.signal(libc::SIGTERM);
        assert_eq!(self.exit_code().await, 0);
        let logs = self.logs.text();
        assert!(
            logs.lines().any(|l| l.contains("\"level\":\"TRACE\"")),
            "the daemon really logged at trace"
        );
        for (what, secret) in secrets {
            assert!(!logs.contains(secret), "{what} {secret:?} is in the logs");
        }
        logs
    }

    /// The running daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .and_then(Child::id)
            .expect("daemon is running")
    }

    pub fn signal(&self, signal: i32) {
        let pid = self
            .child
            .as_ref()
            .and_then(Child::id)
            .expect("daemon is running") as i32;
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
    }

    /// Waits for the daemon to exit; its exit code.
    pub async fn exit_code(&mut self) -> i32 {
        let child = self.child.as_mut().expect("daemon was launched");
        let status = tokio::time::timeout(PATIENCE, child.wait())
            .await
            .unwrap_or_else(|_| panic!("daemon did not exit; logs:\n{}", self.logs.text()))
            .unwrap();
        status.code().unwrap_or(-1)
    }

    /// `GET path` on the daemon's HTTP API, as text.
    pub async fn get_text(&self, path: &str) -> String {
        super::http_client()
            .get(format!("http://{}{path}", self.http))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Lets the next [`Spawned::relaunch`] write as much as it likes (the disk was freed).
    pub fn lift_file_size_limit(&mut self) {
        self.file_size_limit = None;
    }

    /// Starts the daemon again on the same config and store (after it exited).
    pub async fn relaunch(&mut self) {
        self.launch().await;
    }

    pub async fn phone_sends(&self, from: &str, text: &str) -> MoResult {
        super::phone_sends(&self.sim, from, text).await
    }

    /// Waits for the `n`th submitted SMS (counting from 1) and returns it.
    pub async fn nth_submit(&self, n: usize) -> Submitted {
        let submits = self.sim.wait_submits(n, PATIENCE).await;
        assert!(
            submits.len() >= n,
            "only {} SMS: {submits:?}",
            submits.len()
        );
        submits[n - 1].clone()
    }
}

/// `moauth ARGS…` to completion: exit code, stdout, stderr.
pub async fn moauth(args: &[&str]) -> (i32, String, String) {
    let output = tokio::time::timeout(
        PATIENCE,
        Command::new(env!("CARGO_BIN_EXE_moauth"))
            .args(args)
            .env_remove("RUST_LOG")
            .env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("moauth did not finish")
    .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
