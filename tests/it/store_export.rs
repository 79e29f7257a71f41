//! `moauth store export` / `import`, the real binary on a real sled directory and a real
//! PostgreSQL: a store moves from sled to PostgreSQL and back with every record, a daemon on
//! the moved store finishes a login made before the move and takes the texted password, and
//! a bad file is refused with its line, leaving the target as it was.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::{Value, json};

use crate::common;
use common::nodes::{Node, write_config, write_config_with_store};
use common::postgres::database;
use common::process::moauth;
use common::{ALICE, BOB, PATIENCE, phone_sends, poll_login};
use moauth::core::clock::Clock;
use moauth::core::token::LoginStart;

const CAROL: &str = "+8613700137000";

fn sled_config(dir: &Path, name: &str, smsc: std::net::SocketAddr) -> String {
    let store = format!("path = \"{}\"", dir.join(name).display());
    path(&write_config_with_store(dir, name, &store, smsc, ""))
}

fn path(p: &Path) -> String {
    p.to_str().unwrap().to_owned()
}

/// `moauth store export --config CONFIG --output OUT`: exit code, stdout, stderr.
async fn run_export(config: &str, out: &Path) -> (i32, String, String) {
    moauth(&[
        "store",
        "export",
        "--config",
        config,
        "--output",
        &path(out),
    ])
    .await
}

/// `moauth store export` into `out`; the records' lines, sorted (backends list some kinds in
/// different orders), without the header.
async fn export(config: &str, out: &Path) -> Vec<String> {
    let (code, stdout, stderr) = run_export(config, out).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    let mode = std::fs::metadata(out).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the export holds secrets");
    let text = std::fs::read_to_string(out).unwrap();
    let mut lines: Vec<String> = text.lines().skip(1).map(str::to_owned).collect();
    lines.sort();
    lines
}

/// `moauth store export` that must fail, leaving no file; its stderr.
async fn export_refused(config: &str, out: &Path) -> String {
    let (code, _, err) = run_export(config, out).await;
    assert_eq!(code, 1, "{err}");
    assert!(!out.exists(), "a failed export left {}", out.display());
    err
}

async fn import(config: &str, file: &Path) -> (i32, String) {
    let (code, stdout, stderr) = moauth(&[
        "store",
        "import",
        "--config",
        config,
        "--input",
        &path(file),
    ])
    .await;
    (code, format!("{stdout}{stderr}"))
}

/// The password in the credential SMS sent to `to`.
fn texted_password(sim: &moauth::sim::Simulator, to: &str) -> String {
    let sms = sim
        .submits()
        .into_iter()
        .find(|s| s.to == to && s.text.contains("password "))
        .expect("a credential SMS");
    let after = sms.text.split("password ").nth(1).unwrap();
    after.split('.').next().unwrap().to_owned()
}

async fn password_login(node: &Node, login: &str, password: &str) -> (u16, Value) {
    let response = common::http_client()
        .post(format!("http://{}/v1/password-logins", node.http))
        .json(&json!({ "login": login, "password": password }))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_moves_from_sled_to_postgres_and_back_and_logins_carry_on() {
    let Some(db) = database().await else { return };
    let sim = common::loopback_sim().await;
    let dir = tempfile::tempdir().unwrap();
    let http = common::http_client();
    let on_sled = sled_config(dir.path(), "sled", sim.smpp_addr);
    let on_pg = path(&write_config(dir.path(), "pg", &db.url, sim.smpp_addr, ""));

    // Before the move: Alice's first login completes (not yet polled) and she gets her
    // password; Bob logs in and collects his session.
    let mut node = Node::launch("sled", Path::new(&on_sled)).await;
    let alice = LoginStart::new(Clock::System.now(), "10690000", "LOGIN", "");
    let bob = LoginStart::new(Clock::System.now(), "10690000", "LOGIN", "");
    phone_sends(&sim, ALICE, &format!("LOGIN {}", alice.token)).await;
    phone_sends(&sim, BOB, &format!("LOGIN {}", bob.token)).await;
    let (_, answer) = poll_login(&http, node.http, &bob.verifier, &bob.token, 10_000).await;
    assert_eq!(answer["state"], "complete", "{answer}");
    let bob_account = answer["account_id"].clone();
    sim.wait_submits(2, PATIENCE).await;
    let password = texted_password(&sim, ALICE);

    // sled is one process's: no export while the daemon holds it.
    let err = export_refused(&on_sled, &dir.path().join("refused.jsonl")).await;
    assert!(
        err.contains("moauth is running on this store: stop it"),
        "{err}"
    );
    assert_eq!(node.stop().await, 0);

    // sled → file → PostgreSQL → file: the same records.
    let from_sled = export(&on_sled, &dir.path().join("sled.jsonl")).await;
    for kind in ["account", "session", "login", "seen", "sent", "sms_budget"] {
        assert!(
            from_sled
                .iter()
                .any(|l| l.starts_with(&format!("{{\"kind\":\"{kind}\""))),
            "no {kind} in {from_sled:#?}"
        );
    }
    let (code, out) = import(&on_pg, &dir.path().join("sled.jsonl")).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!(
            "imported {} records into the postgres store (exported from sled",
            from_sled.len() - 1
        )),
        "{out}"
    );
    let from_pg = export(&on_pg, &dir.path().join("pg.jsonl")).await;
    assert_eq!(from_pg, from_sled);

    // A store that holds something is not imported into.
    let (code, out) = import(&on_pg, &dir.path().join("sled.jsonl")).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("not empty") && out.contains("--replace"),
        "{out}"
    );

    // A node on the moved store answers Alice's poll and takes her texted password; Bob's
    // login stays collected.
    let mut node = Node::launch("pg", Path::new(&on_pg)).await;
    let (_, answer) = poll_login(&http, node.http, &alice.verifier, &alice.token, 0).await;
    assert_eq!(answer["state"], "complete", "{answer}");
    assert_eq!(answer["created"], true, "{answer}");
    let alice_account = answer["account_id"].clone();
    let (_, again) = poll_login(&http, node.http, &bob.verifier, &bob.token, 0).await;
    assert_eq!(again["state"], "consumed", "{again}");
    let (status, answer) = password_login(&node, ALICE, &password).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["account_id"], alice_account);
    // A new number gets an id of its own, not one the move brought along.
    let carol = LoginStart::new(Clock::System.now(), "10690000", "LOGIN", "");
    phone_sends(&sim, CAROL, &format!("LOGIN {}", carol.token)).await;
    let (_, answer) = poll_login(&http, node.http, &carol.verifier, &carol.token, 10_000).await;
    assert_eq!(answer["state"], "complete", "{answer}");
    assert_ne!(answer["account_id"], alice_account);
    assert_ne!(answer["account_id"], bob_account);
    assert_eq!(node.stop().await, 0);

    // And back: PostgreSQL → file → a new sled store, where the same holds.
    let back = sled_config(dir.path(), "back", sim.smpp_addr);
    let from_pg = export(&on_pg, &dir.path().join("pg-after.jsonl")).await;
    let (code, out) = import(&back, &dir.path().join("pg-after.jsonl")).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(export(&back, &dir.path().join("back.jsonl")).await, from_pg);
    let mut node = Node::launch("back", Path::new(&back)).await;
    let (_, answer) = poll_login(&http, node.http, &alice.verifier, &alice.token, 0).await;
    assert_eq!(answer["state"], "consumed", "{answer}");
    let (status, answer) = password_login(&node, ALICE, &password).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["account_id"], alice_account);
    let dave = LoginStart::new(Clock::System.now(), "10690000", "LOGIN", "");
    phone_sends(&sim, "+8613600136000", &format!("LOGIN {}", dave.token)).await;
    let (_, answer) = poll_login(&http, node.http, &dave.verifier, &dave.token, 10_000).await;
    assert_eq!(answer["state"], "complete", "{answer}");
    for earlier in [&alice_account, &bob_account] {
        assert_ne!(&answer["account_id"], earlier);
    }
    assert_eq!(node.stop().await, 0);
}

/// A file: header, one account, then `more` from line 3 on, then the trailer.
fn file_with(dir: &Path, name: &str, format: u32, more: &[&str]) -> std::path::PathBuf {
    let header = json!({ "kind": "moauth-store-export", "format": format, "moauth": "0.0.0",
        "backend": "sled", "exported_at": 1_800_000_000u64 });
    let account = json!({ "kind": "account", "msisdn": ALICE,
        "account": { "id": 3, "password_hash": "$argon2id$x", "created_at": 1_800_000_000u64 } });
    let records = 1 + more.len();
    let more: String = more.iter().map(|line| format!("{line}\n")).collect();
    let text = format!("{header}\n{account}\n{more}{{\"kind\":\"end\",\"records\":{records}}}\n");
    let file = dir.join(name);
    std::fs::write(&file, text).unwrap();
    file
}

#[tokio::test]
async fn a_bad_export_is_refused_with_its_line_and_imports_nothing() {
    let Some(db) = database().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let smsc = "127.0.0.1:2775".parse().unwrap();
    let on_pg = path(&write_config(dir.path(), "pg", &db.url, smsc, ""));
    let on_sled = sled_config(dir.path(), "sled", smsc);
    let opt_out = json!({ "kind": "opt_out", "msisdn": BOB, "since": 1_800_000_000u64 });
    let opt_out = opt_out.to_string();

    // A typo in [store] path is not exported as an empty store (nor made one).
    let err = export_refused(&on_sled, &dir.path().join("none.jsonl")).await;
    assert!(err.contains("no sled store at"), "{err}");
    assert!(!dir.path().join("sled").exists());

    let later = file_with(dir.path(), "later.jsonl", 9, &[&opt_out]);
    for config in [&on_pg, &on_sled] {
        let (code, out) = import(config, &later).await;
        assert_eq!(code, 1, "{out}");
        assert!(out.contains("line 1: export format 9"), "{out}");
    }

    // Line 3 is no record; the account on line 2 is not kept either.
    let broken = file_with(
        dir.path(),
        "broken.jsonl",
        1,
        &[r#"{"kind":"opt_out","msisdn":"#],
    );
    // PostgreSQL takes records in pipelined batches: the rows after a refused one fail too
    // (the transaction is aborted), and the refused one is what is named.
    let no_account = json!({ "kind": "session", "hash": "ab".repeat(32), "account_id": 99,
        "expires_at": 1_900_000_000u64 })
    .to_string();
    let refused = file_with(dir.path(), "refused.jsonl", 1, &[&no_account, &opt_out]);
    let (code, out) = import(&on_pg, &broken).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("broken.jsonl: line 3: "), "{out}");
    // A line that reads but that PostgreSQL refuses (a session of no account) is named too.
    let (code, out) = import(&on_pg, &refused).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("refused.jsonl: line 3 (session): "), "{out}");
    // sled has no foreign key, and refuses the same record.
    let (code, out) = import(&sled_config(dir.path(), "orphans", smsc), &refused).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("refused.jsonl: line 3 (session): ") && out.contains("account 99"),
        "{out}"
    );
    assert_eq!(
        export(&on_pg, &dir.path().join("empty.jsonl")).await,
        vec![r#"{"kind":"end","records":0}"#.to_owned()],
        "a refused import left records behind"
    );

    // On sled the half-done import is marked: nothing runs on it until it is done again.
    let (code, out) = import(&on_sled, &broken).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("line 3: "), "{out}");
    let err = export_refused(&on_sled, &dir.path().join("half.jsonl")).await;
    assert!(err.contains("did not finish"), "{err}");
    let good = file_with(dir.path(), "good.jsonl", 1, &[&opt_out]);
    let (code, out) = import(&on_sled, &good).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("--replace"), "{out}");
    let (code, stdout, stderr) = moauth(&[
        "store",
        "import",
        "--config",
        &on_sled,
        "--input",
        &path(&good),
        "--replace",
    ])
    .await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(
        export(&on_sled, &dir.path().join("done.jsonl")).await.len(),
        3
    );
}
