//! Review item 6 with the real binary: a poll that cannot make taking a session durable (the
//! disk filled up just then, here a file-size limit lowered on the running daemon) must not
//! lose the session: it answers an error, later polls do not say `consumed`, and once there
//! is room again (a restart without the limit) the session is collected, once.

use std::path::Path;

use crate::common;

use common::ALICE;
use common::process::Spawned;
use moauth::core::clock::Clock;
use moauth::core::token::{Token, Verifier};
use serde_json::Value;

/// Only so the daemon ignores SIGXFSZ (the harness sets that up with any limit): far above
/// what the test writes, until it is lowered.
const ROOMY: u64 = 1 << 30;

/// The largest file under `dir`.
fn largest_file(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                largest_file(&entry.path())
            } else {
                meta.len()
            }
        })
        .max()
        .unwrap_or(0)
}

/// The disk is full from now on: no file of the daemon may grow past its current size.
fn disk_full_now(d: &Spawned) {
    let limit = largest_file(&d.dir.path().join("store"));
    let limit = libc::rlimit {
        rlim_cur: limit,
        rlim_max: ROOMY,
    };
    // SAFETY: prlimit(2) on our own child's pid, with a valid rlimit and no old-value pointer.
    let set = unsafe {
        libc::prlimit(
            d.pid() as i32,
            libc::RLIMIT_FSIZE,
            &limit,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(set, 0, "{}", std::io::Error::last_os_error());
}

async fn poll(d: &Spawned, verifier: &Verifier, token: &Token) -> (u16, Value) {
    let http = common::http_client();
    common::poll_login(&http, d.http, verifier, token, 0).await
}

#[tokio::test]
async fn a_poll_that_cannot_commit_taking_the_session_leaves_it_collectable() {
    let mut d = Spawned::start_limited("", &[], Some(ROOMY)).await;
    let verifier = Verifier::random();
    let token = Token::for_verifier(&verifier, Clock::System.now());
    d.phone_sends(ALICE, &format!("LOGIN {token}")).await;
    // Logged once the outcome is durable: the session waits in the store.
    d.logs.wait_message("MO outcome").await;
    // The credential SMS settled too (its outbox entry removed), and `/readyz`'s flush made
    // all that durable: the poll's take is the next write.
    d.logs.wait_message("reply accepted").await;
    let http = common::http_client();
    common::eventually("the outbox is empty", async || {
        common::scrape(&http, d.http, "moauth_outbox_depth").await == Some(0.0)
    })
    .await;
    let ready = http
        .get(format!("http://{}/readyz", d.http))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);

    disk_full_now(&d);
    for attempt in ["first", "second"] {
        let (status, answer) = poll(&d, &verifier, &token).await;
        assert_eq!(status, 500, "{attempt} poll: {answer}");
        assert_eq!(answer["error"], "internal", "{attempt} poll: {answer}");
    }

    // Room again: the session was never handed out, so it is there to collect, once.
    d.signal(libc::SIGKILL);
    d.exit_code().await;
    common::eventually("the simulator saw the bind go", async || {
        d.sim.bound_sessions() == 0
    })
    .await;
    d.lift_file_size_limit();
    d.relaunch().await;
    let (_, answer) = poll(&d, &verifier, &token).await;
    assert_eq!(answer["state"], "complete", "{answer}");
    assert!(answer["session"].is_string(), "{answer}");
    let (_, again) = poll(&d, &verifier, &token).await;
    assert_eq!(again["state"], "consumed", "{again}");
}
