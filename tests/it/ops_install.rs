//! The README's install, run the way systemd runs it: the config file with the owner, group and
//! mode the README's `install` line gives it, the store directory as `StateDirectory=` makes it,
//! and `check-config` and `run` as an unprivileged uid in the group the unit's `User=` names,
//! with no supplementary groups and the unit's umask. (The test runs as root, like CI, to
//! switch uid.)

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::common::{self, PATIENCE};

/// Stands in for the service user; in the range systemd keeps for dynamic users.
const SERVICE_UID: u32 = 64_321;

/// `-x VALUE` of a shell command line, if the flag is there.
fn flag<'a>(words: &[&'a str], name: &str) -> Option<&'a str> {
    words.iter().position(|w| *w == name).map(|i| words[i + 1])
}

/// The shell block under "### Install" in the README.
fn readme_install_block() -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split("\n### Install\n")
        .nth(1)
        .expect("README has an Install section");
    let block = section.split("```sh\n").nth(1).expect("a sh block");
    block.split("\n```").next().unwrap().to_owned()
}

fn unit_setting(key: &str) -> Option<String> {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/systemd/moauth.service"
    ))
    .unwrap();
    unit.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .map(str::to_owned)
}

#[tokio::test]
async fn readme_install_starts_as_the_service_user() {
    let block = readme_install_block();
    let line = block
        .lines()
        .flat_map(|l| l.split("&&"))
        .find(|c| c.contains("config/moauth.toml /etc/moauth/moauth.toml"))
        .expect("the README installs config/moauth.toml");
    let words: Vec<&str> = line.split_whitespace().collect();
    let mode = u32::from_str_radix(flag(&words, "-m").expect("install -m MODE"), 8).unwrap();
    let owner = flag(&words, "-o").unwrap_or("root");
    let group = flag(&words, "-g").unwrap_or("root");
    let user = unit_setting("User").unwrap_or_else(|| "moauth".into());
    assert_eq!(owner, "root", "the config belongs to root: {line}");
    // The service runs as `user` in the group of the same name (DynamicUser=yes uses a static
    // user of that name if the install created one).
    let gid = if group == user { SERVICE_UID } else { 0 };
    if group == user {
        assert!(
            block.contains("useradd") && block.contains(&user),
            "the README creates the user {user} it gives the config to:\n{block}"
        );
    }

    let sim = common::loopback_sim().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // StateDirectory=moauth with StateDirectoryMode=0700: made and chowned by systemd.
    let state = dir.path().join("moauth");
    std::fs::create_dir(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(&state, Some(SERVICE_UID), Some(SERVICE_UID)).unwrap();
    // The documented config as shipped; only the addresses and the store path point here.
    let shipped =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/moauth.toml"))
            .unwrap();
    let config = dir.path().join("moauth.toml");
    std::fs::write(
        &config,
        shipped
            .replace("\"/var/lib/moauth\"", &format!("{:?}", state))
            .replace("127.0.0.1:8080", "127.0.0.1:0")
            .replace("127.0.0.1:2775", &sim.smpp_addr.to_string()),
    )
    .unwrap();
    std::os::unix::fs::chown(&config, Some(0), Some(gid)).unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(mode)).unwrap();

    let (_bin_dir, binary) = common::binary_for_any_user();
    let as_service = |args: &[&str]| {
        let mut command = Command::new(&binary);
        command
            .args(args)
            .arg(&config)
            .uid(SERVICE_UID)
            .gid(SERVICE_UID)
            .env_remove("RUST_LOG")
            .env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        // SAFETY: umask(2) is async-signal-safe and touches only the child.
        unsafe {
            command.pre_exec(|| {
                libc::umask(0o077);
                Ok(())
            });
        }
        command
    };

    // ExecStartPre=
    let output = tokio::time::timeout(PATIENCE, as_service(&["check-config"]).output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        output.status.success(),
        "check-config as the service user, config {owner}:{group} {mode:o}: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    // ExecStart=
    let mut child = as_service(&["--log-format", "json", "run", "--config"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = String::new();
    let http = tokio::time::timeout(PATIENCE, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            seen.push_str(&line);
            seen.push('\n');
            let Ok(json) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if json["message"] == "moauth started" {
                return Some(json["http"].as_str().unwrap().to_owned());
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .unwrap_or_else(|| panic!("the daemon did not start as the service user:\n{seen}"));
    assert!(sim.wait_bound(1, PATIENCE).await, "bound to the SMSC");
    // Drain stderr so the daemon never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let client = common::http_client();
    common::eventually_ok("/readyz 200", async || {
        let status = client
            .get(format!("http://{http}/readyz"))
            .send()
            .await
            .unwrap()
            .status();
        if status == 200 {
            Ok(())
        } else {
            Err(format!("/readyz {status}"))
        }
    })
    .await;
    // The store belongs to the service user, as systemd would leave it.
    let db = std::fs::read_dir(&state).unwrap().count();
    assert!(db > 0, "the store was written in the state directory");

    // SAFETY: kill(2) on our own child.
    assert_eq!(
        unsafe { libc::kill(child.id().unwrap() as i32, libc::SIGTERM) },
        0
    );
    let status = tokio::time::timeout(PATIENCE, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0), "a drained stop");
}
