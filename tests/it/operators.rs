//! Operators' commands on a running daemon (issue #16 item 6): the real binary serves, the real
//! binary asks, over the admin listener. Erasing a number leaves nothing of it in any tree.

use crate::common;

use common::process::{Spawned, moauth};
use common::{ALICE, BOB};
use moauth::core::token::{Token, Verifier};
use serde_json::Value;

const ADMIN_KEY: &str = "operators-only-admin-key";

/// The `[http]` lines of a daemon whose operator commands listen on `port` behind the key.
fn admin_config(port: u16) -> String {
    format!("admin_listen = \"127.0.0.1:{port}\"\nadmin_key = \"{ADMIN_KEY}\"")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn log_in(d: &Spawned, from: &str) -> Value {
    let verifier = Verifier::random();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let token = Token::for_verifier(&verifier, now);
    d.phone_sends(from, &format!("LOGIN {token}")).await;
    let (_, answer) =
        common::poll_login(&common::http_client(), d.http, &verifier, &token, 10_000).await;
    assert_eq!(answer["state"], "complete", "{answer}");
    answer
}

/// `moauth ARGS… --config FILE`; asserts exit 0 and returns the printed JSON.
async fn operator(d: &Spawned, args: &[&str]) -> Value {
    let config = d.config_path.to_str().unwrap();
    let (code, out, err) = moauth(&[args, &["--config", config]].concat()).await;
    assert_eq!(code, 0, "moauth {args:?}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|_| panic!("{out}"))
}

#[tokio::test]
async fn an_operator_inspects_revokes_and_erases_a_number_on_a_running_daemon() {
    let mut d = Spawned::start(&admin_config(free_port()), &[]).await;
    log_in(&d, ALICE).await;
    log_in(&d, BOB).await;
    d.nth_submit(2).await;
    d.phone_sends(ALICE, "STOP").await;
    d.nth_submit(3).await;

    let shown = operator(&d, &["accounts", "show", ALICE]).await;
    assert_eq!(
        (&shown["msisdn"], &shown["opted_out"]),
        (&ALICE.into(), &true.into())
    );
    let account = shown["account_id"].as_str().unwrap().to_owned();
    let revoked = operator(&d, &["sessions", "revoke", "--account", &account]).await;
    assert_eq!(revoked["revoked"], 1);
    for (args, key) in [
        (&["inbox", "list"][..], "inbox"),
        (&["rejected", "list"], "rejected"),
    ] {
        assert!(operator(&d, args).await[key].is_array(), "{args:?}");
    }

    let erased = operator(&d, &["accounts", "delete", ALICE]).await;
    assert!(erased["erased"].as_u64().unwrap() >= 3, "{erased}");
    let config = d.config_path.to_str().unwrap().to_owned();
    let (code, _, err) = moauth(&["accounts", "show", ALICE, "--config", &config]).await;
    assert_ne!(code, 0);
    assert!(err.contains("no such account"), "{err}");

    d.signal(libc::SIGTERM);
    assert_eq!(d.exit_code().await, 0);
    let logs = d.logs.text();
    assert!(logs.contains("number erased"), "the erasure is logged");
    let alice_national = &ALICE[3..];
    for line in logs.lines().filter(|l| l.contains("number erased")) {
        assert!(!line.contains(alice_national), "unmasked: {line}");
    }

    // Every tree of the store, every key and value: nothing of ALICE's number; BOB's stays.
    let db = sled::open(d.dir.path().join("store")).unwrap();
    let (mut alice_found, mut bob_found) = (Vec::new(), 0);
    for name in db.tree_names() {
        let tree = db.open_tree(&name).unwrap();
        for entry in tree.iter() {
            let (key, value) = entry.unwrap();
            for bytes in [&key[..], &value[..]] {
                if contains(bytes, alice_national.as_bytes()) {
                    alice_found.push(String::from_utf8_lossy(&name).into_owned());
                }
                bob_found += usize::from(contains(bytes, &BOB.as_bytes()[3..]));
            }
        }
    }
    assert!(
        alice_found.is_empty(),
        "ALICE's number in trees {alice_found:?}"
    );
    assert!(bob_found > 0, "the scan finds a number that was not erased");
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Reaching the admin address is not enough (any local user reaches a loopback port): every
/// command needs the admin key, and a daemon without one refuses them all.
#[tokio::test]
async fn operator_commands_need_the_admin_key() {
    let http = common::http_client();
    let port = free_port();
    let _d = Spawned::start(&admin_config(port), &[]).await;
    let inbox = format!("http://127.0.0.1:{port}/admin/inbox");
    for key in [None, Some("not-the-admin-key")] {
        let mut request = http.get(&inbox);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "key {key:?}");
    }
    let response = http
        .get(&inbox)
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let port = free_port();
    let keyless = Spawned::start(&format!("admin_listen = \"127.0.0.1:{port}\""), &[]).await;
    let response = http
        .get(format!("http://127.0.0.1:{port}/admin/inbox"))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let config = keyless.config_path.to_str().unwrap();
    let (code, _, err) = moauth(&["inbox", "list", "--config", config]).await;
    assert_ne!(code, 0);
    assert!(err.contains("admin_key"), "{err}");
}
