//! An operator renames or removes an `[[smsc]]` while replies wait for it: at start they go
//! out through the connection with their short code, and what none can take is reported
//! (log, metric, `moauth status`) until `moauth outbox reroute` or `drop` deals with it.

use crate::common;

use std::sync::Arc;

use common::ALICE;
use common::process::{Spawned, moauth};
use moauth::core::mo::MoMessage;
use moauth::core::msisdn::Msisdn;
use moauth::core::outbound::Outbound;
use moauth::core::store::{Outcome, Store};
use moauth::store::sled::SledStore;

fn reply(smsc: &str, from: &str, text: &str) -> Outbound {
    Outbound {
        smsc: smsc.into(),
        from: from.into(),
        to: Msisdn::parse(ALICE).unwrap(),
        text: text.into(),
        created_at: 1_800_000_000,
    }
}

/// Queues `replies` in the stopped daemon's store, as an earlier run with other [[smsc]]
/// names would have left them.
async fn leave_in_outbox(d: &Spawned, replies: Vec<Outbound>) {
    let store: Arc<dyn Store> = Arc::new(SledStore::open(&d.dir.path().join("store"), 16).unwrap());
    let mo = MoMessage {
        smsc: "old".into(),
        source_addr: ALICE.trim_start_matches('+').into(),
        source_ton: 1,
        destination_addr: "10690000".into(),
        esm_class: 0,
        data_coding: 1,
        user_data: b"HELP".to_vec(),
        sar: None,
        received_at: 1_800_000_000,
    };
    store.append_mos(&[mo], 600).await.unwrap();
    store.sync().await.unwrap();
    let taken = store.oldest_mos(10).await.unwrap();
    let outcome = Outcome::Decided {
        mo: taken[0].0,
        login: None,
        session: None,
        replies,
        event: None,
    };
    store.commit_outcomes(&[outcome]).await.unwrap();
    store.sync().await.unwrap();
}

async fn stop(d: &mut Spawned) {
    d.signal(libc::SIGTERM);
    assert_eq!(d.exit_code().await, 0);
}

async fn status(d: &Spawned) -> String {
    let (code, out, err) = moauth(&["status", "--url", &format!("http://{}", d.http)]).await;
    assert_eq!(code, 0, "{err}");
    out
}

#[tokio::test]
async fn replies_of_a_renamed_smsc_go_out_by_short_code_and_the_rest_are_reported_until_moved() {
    let mut d = Spawned::start("", &[]).await;
    let config = d.config_path.to_str().unwrap().to_owned();
    stop(&mut d).await;
    leave_in_outbox(
        &d,
        vec![
            // "old" was renamed "sim": same short code, so the reply follows it.
            reply("old", "10690000", "renamed"),
            // "gone" had a short code no connection has now.
            reply("gone", "10690001", "stranded"),
            reply("unwanted", "10690002", "dropped"),
        ],
    )
    .await;
    d.relaunch().await;

    let sent = d.nth_submit(1).await;
    assert_eq!(sent.text, "renamed");
    let logged = d
        .logs
        .wait_message("replies are queued for an [[smsc]] that no longer exists and no connection has their short code: they will not be sent")
        .await;
    assert!(
        ["gone", "unwanted"].contains(&logged["smsc"].as_str().unwrap()),
        "{logged}"
    );
    assert_eq!(logged["replies"], 1, "{logged}");
    let shown = status(&d).await;
    assert!(
        shown.contains("STRANDED        1  replies for [[smsc]] \"gone\", which no longer exists: stop moauth, then `moauth outbox reroute --from gone --to NAME`"),
        "{shown}"
    );
    let metrics = d.get_text("/metrics").await;
    assert!(
        metrics.contains("moauth_outbox_stranded{smsc=\"gone\"} 1"),
        "{metrics}"
    );

    // The embedded store is the daemon's while it runs: the command says so.
    let (code, _, err) = moauth(&["outbox", "list", "--config", &config]).await;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("moauth is running on this store: stop it"),
        "{err}"
    );

    stop(&mut d).await;
    let (code, out, err) = moauth(&["outbox", "list", "--config", &config]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("gone"), "{out}");
    assert!(out.contains("no such [[smsc]]"), "{out}");
    let (code, _, err) = moauth(&[
        "outbox", "reroute", "--from", "gone", "--to", "nowhere", "--config", &config,
    ])
    .await;
    assert_eq!(code, 1);
    assert!(
        err.contains("--to \"nowhere\" is no [[smsc]] in the config (there are: sim)"),
        "{err}"
    );
    let (code, out, err) = moauth(&[
        "outbox", "reroute", "--from", "gone", "--to", "sim", "--config", &config,
    ])
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("1 replies"), "{out}");
    let (code, out, err) =
        moauth(&["outbox", "drop", "--smsc", "unwanted", "--config", &config]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("1 replies"), "{out}");

    d.relaunch().await;
    let sent = d.nth_submit(2).await;
    assert_eq!(sent.text, "stranded");
    assert!(!status(&d).await.contains("STRANDED"));
    // Nothing else: the dropped reply never went.
    common::eventually("the outbox drained", async || {
        let (_, out, _) =
            moauth(&["status", "--url", &format!("http://{}", d.http), "--json"]).await;
        let report: serde_json::Value = serde_json::from_str(&out).unwrap();
        report["outbox"] == 0
    })
    .await;
    assert_eq!(d.sim.submits().len(), 2);
}
