//! SMPP over TLS: the daemon verifies the SMSC's certificate against the configured CA and
//! carries a login through the encrypted link; a certificate it cannot verify is refused.

use crate::common;

use std::sync::Arc;

use common::{ALICE, Harness, PATIENCE};
use moauth::cli::{SIM_PASSWORD, SIM_SYSTEM_ID};
use moauth::daemon::Options;
use moauth::sim::{SimConfig, Simulator};

async fn tls_sim(config: Arc<rustls::ServerConfig>) -> Simulator {
    Simulator::start(SimConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        control: None,
        system_id: SIM_SYSTEM_ID.into(),
        password: SIM_PASSWORD.into(),
        tls: Some(config),
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn a_login_crosses_an_smpp_link_over_tls() {
    let (server, pem) = common::self_signed("smsc.test");
    let tls = tls_sim(server).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("smsc-ca.pem");
    std::fs::write(&ca, pem).unwrap();
    let h = Harness::start_on(tls, Options::default(), |c| {
        c.smsc[0].tls = true;
        c.smsc[0].tls_ca_file = Some(ca);
        c.smsc[0].tls_server_name = Some("smsc.test".into());
    })
    .await;

    let (verifier, token) = h.app_token(0);
    h.phone_sends(ALICE, &format!("LOGIN {token}")).await;
    assert_eq!(
        h.poll(&verifier, &token, 10_000).await.1["state"],
        "complete"
    );
    let sms = h.settled_submits(1).await;
    assert!(sms[0].text.contains("password"));
}

#[tokio::test]
async fn an_smsc_certificate_for_another_name_is_refused() {
    let (server, pem) = common::self_signed("smsc.test");
    let sim = tls_sim(server).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("smsc-ca.pem");
    std::fs::write(&ca, pem).unwrap();
    let mut config = moauth::cli::embedded_config(
        dir.path().join("store"),
        "127.0.0.1:0".parse().unwrap(),
        sim.smpp_addr,
    );
    config.smsc[0].tls = true;
    config.smsc[0].tls_ca_file = Some(ca);
    config.smsc[0].tls_server_name = Some("other.test".into());
    let daemon = moauth::daemon::Daemon::start(
        config,
        moauth::core::clock::Clock::System,
        Options::default(),
    )
    .await
    .unwrap();
    // The handshake fails before any bind: the simulator sees TLS attempts but no bind, and
    // the daemon keeps retrying with backoff. Two failed handshakes are enough to show it.
    let attempts = sim.wait_handshake_failures(2, PATIENCE).await;
    assert!(attempts >= 2);
    assert!(sim.bind_attempts().is_empty());
    assert!(daemon.links.bound().is_empty());
    daemon.shutdown().await;
}
