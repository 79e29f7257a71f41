//! Store errors an operator can act on: a second moauth on the same store names the first one's
//! pid, an unwritable store names its path, cause and fix once, and both exit with status 3,
//! which the unit does not restart on (a restart every 2 s cures neither). `check-config` finds
//! an unusable store directory and a config without an SMSC before the daemon starts.

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;

use tokio::process::Command;

use crate::common::process::{Spawned, moauth};
use crate::common::{self, PATIENCE};

/// Stands in for the service user; in the range systemd keeps for dynamic users.
const SERVICE_UID: u32 = 64_322;

#[tokio::test]
async fn a_second_moauth_on_the_same_store_names_the_first_and_exits_3() {
    let mut first = Spawned::start("", &[]).await;
    let config = first.config_path.to_str().unwrap().to_owned();
    let (code, _, stderr) = moauth(&["run", "--config", &config]).await;
    let store = first.dir.path().join("store");
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "another moauth (pid {}) holds the store at {}",
            first.pid(),
            store.display()
        )),
        "{stderr}"
    );
    assert!(
        !stderr.contains("WouldBlock") && !stderr.contains("Os {"),
        "{stderr}"
    );
    // check-config looks at the store without taking it: it answers while the daemon runs.
    let (code, stdout, stderr) = moauth(&["check-config", &config]).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    first.signal(libc::SIGTERM);
    assert_eq!(first.exit_code().await, 0);
}

#[tokio::test]
async fn an_unwritable_store_names_path_cause_and_fix_once_and_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // Made by root, as if the install had created it instead of StateDirectory=.
    let store = dir.path().join("store");
    std::fs::create_dir(&store).unwrap();
    std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o700)).unwrap();
    let config = dir.path().join("moauth.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\npath = {store:?}\n\n[http]\nlisten = \"127.0.0.1:0\"\n\n[[smsc]]\n\
             name = \"main\"\naddress = \"127.0.0.1:9\"\nsystem_id = \"moauth\"\n\
             password = \"secret\"\nshort_code = \"10690000\"\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
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
        command
    };

    let output = tokio::time::timeout(PATIENCE, as_service(&["run", "--config"]).output())
        .await
        .expect("moauth gives up at once")
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "cannot use the store at {}: Permission denied",
            store.display()
        )) && stderr.contains("must belong to the user moauth runs as"),
        "{stderr}"
    );
    assert_eq!(stderr.matches("Permission denied").count(), 1, "{stderr}");

    let output = tokio::time::timeout(PATIENCE, as_service(&["check-config"]).output())
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("key `store.path`: cannot use the store at"),
        "{stderr}"
    );
}

#[tokio::test]
async fn check_config_wants_a_usable_store_directory_and_an_smsc() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-directory");
    std::fs::write(&file, "").unwrap();
    let config = dir.path().join("moauth.toml");
    std::fs::write(
        &config,
        format!("[store]\npath = {:?}\n", file.join("store")),
    )
    .unwrap();
    let (code, stdout, stderr) = moauth(&["check-config", config.to_str().unwrap()]).await;
    assert_eq!(code, 2, "{stdout}{stderr}");
    // Both mistakes at once, each with the file and the key.
    let at = config.display();
    assert!(
        stderr.contains(&format!("{at}: key `smsc`: no [[smsc]] table")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{at}: key `store.path`: cannot use the store at"))
            && stderr.contains("[store] path must be a directory"),
        "{stderr}"
    );
}
