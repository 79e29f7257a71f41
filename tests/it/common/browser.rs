//! A real Chromium, driven over WebDriver by chromedriver on a free loopback port.
//!
//! Debian's `chromium` and `chromium-driver` are needed (`MOAUTH_CHROMIUM` and
//! `MOAUTH_CHROMEDRIVER` override where they are). `.ci/run` installs them and runs the tests
//! with `CI=true`, under which a missing browser fails; on a developer's machine without them
//! the browser tests print a loud notice and pass without running.
//!
//! One browser at a time: a page per test on two shared cores is slow enough. chromedriver
//! runs in its own process group, so whatever Chromium processes it started end with it, even
//! when a test panics.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How the browser presents itself.
#[derive(Default)]
pub struct Look {
    /// `Accept-Language` (and UI language), e.g. `zh-CN,zh`.
    pub languages: Option<&'static str>,
    /// A phone's user agent and screen (Chrome's mobile emulation).
    pub phone_user_agent: Option<&'static str>,
}

pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

fn find(variable: &str, name: &str) -> Option<PathBuf> {
    if let Ok(path) = std::env::var(variable) {
        return Some(PathBuf::from(path)).filter(|path| path.is_file());
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Browser {
    /// A fresh browser (new profile), or `None` when Chromium is not installed and the tests
    /// may skip.
    pub async fn open(look: Look) -> Option<Browser> {
        let test = std::thread::current().name().unwrap_or("a test").to_owned();
        let (Some(chromium), Some(chromedriver)) = (
            find("MOAUTH_CHROMIUM", "chromium"),
            find("MOAUTH_CHROMEDRIVER", "chromedriver"),
        ) else {
            if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
                panic!("{test}: chromium and chromedriver are required under CI=true");
            }
            // Straight to stderr: libtest captures eprintln! of passing tests, and a skip
            // must be seen.
            let _ = writeln!(
                std::io::stderr(),
                "\n!!!!!!!! SKIPPED {test}: no chromium/chromedriver on PATH, so the login page \
                 is NOT tested. Install Debian's `chromium` and `chromium-driver` (CI=true makes \
                 this a failure). !!!!!!!!\n"
            );
            return None;
        };
        let turn = ONE_AT_A_TIME.lock().await;
        let port = free_port();
        let driver = {
            use std::os::unix::process::CommandExt;
            Command::new(chromedriver)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .expect("starting chromedriver")
        };
        let profile = tempfile::tempdir().unwrap();
        let mut args = vec![
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--hide-scrollbars".into(),
            "--window-size=1100,900".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let mut options = json!({ "binary": chromium, "args": [] });
        if let Some(languages) = look.languages {
            args.push(format!(
                "--lang={}",
                languages.split(',').next().unwrap_or(languages)
            ));
            options["prefs"] = json!({ "intl": { "accept_languages": languages } });
        }
        if let Some(agent) = look.phone_user_agent {
            options["mobileEmulation"] = json!({
                "deviceMetrics": { "width": 390, "height": 844, "pixelRatio": 2.0, "touch": true },
                "userAgent": agent,
            });
        }
        options["args"] = json!(args);
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert("goog:chromeOptions".into(), options);
        let url = format!("http://127.0.0.1:{port}");
        // chromedriver listens a moment after it starts: try until it takes the session.
        let client = super::eventually_ok("a WebDriver session", async || {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            ClientBuilder::new(connector)
                .capabilities(capabilities.clone())
                .connect(&url)
                .await
        })
        .await;
        Some(Browser {
            client,
            driver,
            _profile: profile,
            _turn: turn,
        })
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    /// Runs `script` (a function body; `return` a value or a promise) in the page.
    pub async fn run(&self, script: &str, args: Vec<Value>) -> Value {
        self.client.execute(script, args).await.unwrap()
    }

    /// The root's `data-moauth-state` (empty before the page has made its code).
    pub async fn state(&self) -> String {
        let state = self
            .run(
                "return document.getElementById('moauth').dataset.moauthState || ''",
                vec![],
            )
            .await;
        state.as_str().unwrap_or("").to_owned()
    }

    /// Waits until the page shows `state`; panics with the state it is stuck in otherwise.
    pub async fn wait_state(&self, state: &str) {
        super::eventually_ok(&format!("the page to show {state:?}"), async || {
            let now = self.state().await;
            if now == state {
                Ok(())
            } else {
                Err(format!(
                    "it stayed {now:?}; it says {:?}",
                    self.message().await
                ))
            }
        })
        .await
    }

    /// The live status line the page shows (and a screen reader announces).
    pub async fn message(&self) -> String {
        self.text("[data-moauth-message]").await
    }

    pub async fn text(&self, css: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub async fn attr(&self, css: &str, name: &str) -> Option<String> {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap()
            .attr(name)
            .await
            .unwrap()
    }

    /// The composer link's `sms:` URI, once the page has made its code.
    pub async fn sms_uri(&self) -> String {
        self.wait_state("pending").await;
        self.attr("a[data-moauth-sms]", "href").await.unwrap()
    }

    /// Saves a PNG of the window as `target/tmp/browser/<name>.png` and returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, self.client.screenshot().await.unwrap()).unwrap();
        path
    }

    /// Ends the session (Chromium exits), then chromedriver.
    pub async fn close(self) {
        self.client.clone().close().await.unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The whole group: chromedriver and any Chromium a failed test left running.
        unsafe { libc::kill(-(self.driver.id() as i32), libc::SIGKILL) };
        let _ = self.driver.wait();
    }
}

/// The SMS body inside an `sms:` URI (either `?body=` or iOS's `&body=`), percent-decoded.
pub fn sms_body(uri: &str) -> String {
    let encoded = uri
        .split_once("body=")
        .map(|(_, body)| body)
        .expect("an sms: URI with a body");
    let bytes = encoded.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(u8::from_str_radix(&encoded[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}
