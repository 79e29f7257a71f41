//! The daemon under a service manager: the notify protocol, the watchdog, `moauth status`.

use crate::common;

use common::process::{Spawned, moauth};

#[tokio::test]
async fn notify_socket_gets_ready_status_watchdog_and_stopping() {
    // systemd sets WATCHDOG_USEC from WatchdogSec=; 400 ms means a ping every 200 ms.
    let mut d = Spawned::start("", &[("WATCHDOG_USEC", "400000")]).await;
    let ready = &d.notify.seen[d.notify.seen.len() - 1];
    assert!(
        ready.contains("STATUS="),
        "READY comes with a status: {ready}"
    );

    d.notify.wait_for("WATCHDOG=1").await;
    d.notify.wait_for("WATCHDOG=1").await;
    // STATUS follows the bind, which runs in the background: before or between the pings.
    d.notify
        .has_seen("STATUS=bound 1/1 SMSC; inbox 0, outbox 0; 0.0 MO/min")
        .await;

    d.signal(libc::SIGTERM);
    let stopping = d.notify.wait_for("STOPPING=1").await;
    assert!(stopping.contains("STATUS=draining"), "{stopping}");
    assert_eq!(d.exit_code().await, 0, "logs:\n{}", d.logs.text());
}

#[tokio::test]
async fn operator_status_shows_binds_depths_and_rates() {
    let mut d = Spawned::start("", &[]).await;
    d.phone_sends(common::ALICE, "HELP").await;
    d.nth_submit(1).await;

    let url = format!("http://{}", d.http);
    let (code, out, err) = moauth(&["status", "--url", &url]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("smsc sim              bound"), "{out}");
    assert!(out.contains("inbox           0"), "{out}");
    assert!(out.contains("MO/min"), "{out}");

    // The reply can reach the SMSC a moment before the pipeline counts its MO as finished
    // (after the flush), so ask until the count shows it; PATIENCE bounds the asking.
    let report = tokio::time::timeout(common::PATIENCE, async {
        loop {
            let (code, out, _) = moauth(&["status", "--url", &url, "--json"]).await;
            assert_eq!(code, 0);
            let report: serde_json::Value = serde_json::from_str(&out).unwrap();
            if report["processed"] == 1 {
                return report;
            }
        }
    })
    .await
    .expect("the finished MO was never counted");
    assert_eq!(report["smsc"][0]["bound"], true);

    d.signal(libc::SIGINT);
    assert_eq!(d.exit_code().await, 0);
}
