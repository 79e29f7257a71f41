//! `/readyz` says what the SMSC and the store can do now: a store that can no longer write (a
//! full disk, here a file-size limit on the real binary) makes it fail, while the daemon stops
//! acknowledging MOs, so the SMSC keeps them.

use crate::common;

use common::ALICE;
use common::process::Spawned;
use moauth::sim::Deliver;
use serde_json::{Value, json};

/// The store's files may grow to this; the first writes past it fail with EFBIG.
const DISK: u64 = 64 * 1024;

/// `/readyz`'s status and the two things this test is about: the store and the binds.
async fn readyz(http: &reqwest::Client, d: &Spawned) -> (u16, Value, Value) {
    let response = http
        .get(format!("http://{}/readyz", d.http))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    (status, body["store"].clone(), body["smsc_bound"].clone())
}

#[tokio::test]
async fn a_store_that_cannot_write_is_not_ready_and_acknowledges_nothing() {
    let d = Spawned::start_limited("", &[], Some(DISK)).await;
    let http = common::http_client();
    assert_eq!(
        readyz(&http, &d).await,
        (200, json!("open"), json!(["sim"]))
    );

    // Distinct MOs (a repeat would be taken for a redelivery and not stored) until one is
    // answered with an error: the store could not make it durable.
    let mut sent = 0;
    let refused = loop {
        assert!(sent < 5_000, "the store never filled up");
        let batch: Vec<Deliver> = (sent..sent + 20)
            .map(|i| Deliver {
                from: ALICE.into(),
                data_coding: 1,
                short_message: format!("HELLO {i}").into_bytes(),
                ..Deliver::default()
            })
            .collect();
        sent += batch.len();
        let acked = d.sim.deliver(&batch).await.unwrap();
        if let Some(status) = acked.statuses.iter().find(|s| **s != 0) {
            break *status;
        }
    };
    assert_eq!(
        refused, 0x64,
        "ESME_RX_T_APPN: a temporary error, the SMSC redelivers"
    );
    assert_eq!(
        readyz(&http, &d).await,
        (503, json!("unavailable"), json!(["sim"]))
    );
}
