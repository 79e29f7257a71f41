//! The simulator checked against someone else's SMPP: python-smpplib binds to it, receives
//! injected MOs in GSM and UCS-2, and submits messages the simulator must record correctly.
//! Our simulator and daemon share rusmpp; this peer shares nothing with them.
//!
//! Needs python3; the test makes a virtual environment with smpplib under target/ the first
//! time (`.ci/run` does the same up front).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use moauth::sim::{MoRequest, SimConfig, Simulator};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

const SMPPLIB: &str = "smpplib==2.2.4";
const PATIENCE: Duration = Duration::from_secs(60);

/// The venv's python, made on first use.
fn python() -> PathBuf {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/py-venv");
    let python = venv.join("bin/python");
    let ready = std::process::Command::new(&python)
        .args(["-c", "import smpplib"])
        .status()
        .is_ok_and(|s| s.success());
    if !ready {
        let made = std::process::Command::new("python3")
            .arg("-m")
            .arg("venv")
            .arg(&venv)
            .status();
        assert!(made.is_ok_and(|s| s.success()), "python3 -m venv failed");
        let pip = std::process::Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", SMPPLIB])
            .status();
        assert!(
            pip.is_ok_and(|s| s.success()),
            "pip install {SMPPLIB} failed"
        );
    }
    python
}

#[tokio::test]
async fn smpplib_esme_receives_mos_and_submits_to_the_simulator() {
    let python = tokio::task::spawn_blocking(python).await.unwrap();
    let sim = Simulator::start(SimConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        control: None,
        system_id: "moauth".into(),
        password: "sim-pass".into(),
        tls: None,
    })
    .await
    .unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/smpplib_esme.py");
    let mut peer = tokio::process::Command::new(python)
        .arg(script)
        .arg(sim.smpp_addr.port().to_string())
        .arg("2")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(peer.stdout.take().unwrap()).lines();
    assert!(sim.wait_bound(1, PATIENCE).await, "smpplib did not bind");

    for text in ["LOGIN 1ABCD-EFGHJ", "登录 1ABCD-EFGHJ 你好"] {
        let acked = sim
            .send_mo(&MoRequest {
                from: "+8613800138000".into(),
                to: Some("10690000".into()),
                text: text.into(),
                ..MoRequest::default()
            })
            .await
            .unwrap();
        assert_eq!(acked.statuses, [0], "smpplib's deliver_sm_resp");
    }
    let submits = sim.wait_submits(2, PATIENCE).await;
    assert_eq!(submits.len(), 2);
    assert_eq!(
        (submits[0].text.as_str(), submits[0].data_coding),
        ("Hello from smpplib", 0)
    );
    assert_eq!(
        (submits[1].text.as_str(), submits[1].data_coding),
        ("你好，smpplib", 8)
    );
    assert!(
        submits
            .iter()
            .all(|s| s.to == "+8613800138000" && s.from == "10690000")
    );

    let mut received = None;
    while let Some(line) = tokio::time::timeout(PATIENCE, lines.next_line())
        .await
        .unwrap()
        .unwrap()
    {
        let event: Value = serde_json::from_str(&line).unwrap();
        if let Some(r) = event.get("received") {
            received = Some(r.clone());
        }
    }
    let received = received.expect("smpplib reported what it received");
    assert_eq!(received[0]["text"], "LOGIN 1ABCD-EFGHJ");
    assert_eq!(received[0]["data_coding"], 0);
    assert_eq!(received[1]["text"], "登录 1ABCD-EFGHJ 你好");
    assert_eq!(received[1]["data_coding"], 8);
    assert_eq!(received[0]["from"], "8613800138000");
    let status = tokio::time::timeout(PATIENCE, peer.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "smpplib peer failed: {status}");
}
