//! Review item 8, the global SMS budget: replies to many numbers add up, so the SMS sent per
//! hour and per day are capped over all of them, with a share kept for credential SMS. Over
//! real sockets: MOs through the simulator, SMS counted as the simulator received them,
//! `/readyz`, `/metrics` and the log of the real binary.

use crate::common;

use common::nodes::{Node, write_config};
use common::process::{Logs, Spawned};
use common::{ALICE, BOB, Harness, PATIENCE};
use moauth::core::clock::Clock;
use moauth::core::token::{Token, Verifier};
use moauth::daemon::Options;
use serde_json::Value;

/// The n-th of a block of numbers no other test here texts from.
fn number(n: usize) -> String {
    format!("+86137001370{n:02}")
}

/// The JSON log lines whose message starts with `message`.
fn lines_of(logs: &Logs, message: &str) -> Vec<Value> {
    logs.text()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| {
            line["message"]
                .as_str()
                .is_some_and(|m| m.starts_with(message))
        })
        .collect()
}

async fn readyz(d: &Spawned) -> Value {
    serde_json::from_str(&d.get_text("/readyz").await).unwrap()
}

async fn metric(d: &Spawned, series: &str) -> f64 {
    let http = common::http_client();
    common::scrape(&http, d.http, series)
        .await
        .unwrap_or_else(|| panic!("no {series}"))
}

/// `moauth_sms_budget_exhausted` for the replies and for credentials.
async fn exhausted(d: &Spawned) -> (f64, f64) {
    let replies = metric(d, r#"moauth_sms_budget_exhausted{class="replies"}"#).await;
    let credentials = metric(d, r#"moauth_sms_budget_exhausted{class="credentials"}"#).await;
    (replies, credentials)
}

/// A login by SMS from `from` with a fresh token; its state as the app's poll sees it.
async fn log_in(d: &Spawned, from: &str) -> Value {
    let verifier = Verifier::random();
    let token = Token::for_verifier(&verifier, Clock::System.now());
    d.phone_sends(from, &format!("LOGIN {token}")).await;
    let http = common::http_client();
    common::poll_login(&http, d.http, &verifier, &token, 10_000)
        .await
        .1
}

/// The daily budget only: a test that crossed a clock hour would see an hourly one refill.
const BUDGET: &str = "[limits]
sms_per_hour = 0
sms_per_day = 4
sms_reserved_for_credentials_percent = 50
";

#[tokio::test]
async fn a_spent_budget_holds_replies_keeps_passwords_flowing_and_says_so_once() {
    let mut d = Spawned::start(BUDGET, &[]).await;
    assert_eq!(readyz(&d).await["sms_budget"], "ok");
    assert_eq!(exhausted(&d).await, (0.0, 0.0));

    // Half of 4 is for replies other than credentials: two error texts go, the third not.
    for n in 0..3 {
        d.phone_sends(&number(n), "HELLO").await;
    }
    let held = d
        .logs
        .wait_message("outbound SMS budget spent: SMS held back until its window ends; MOs are still processed")
        .await;
    assert_eq!(
        (&held["period"], &held["budget"], &held["spent"]),
        (&"day".into(), &4.into(), &2.into()),
        "{held}"
    );
    assert_eq!(d.nth_submit(2).await.to, number(1));
    assert_eq!(readyz(&d).await["sms_budget"], "credentials_only");
    assert_eq!(exhausted(&d).await, (1.0, 0.0));

    // New users still get their passwords from the reserve; more error texts do not go, and
    // are not logged again.
    assert_eq!(log_in(&d, &number(10)).await["created"], true);
    d.phone_sends(&number(3), "HELLO").await;
    assert_eq!(log_in(&d, &number(11)).await["created"], true);
    assert_eq!(d.nth_submit(4).await.to, number(11));

    // Spent: a new account still logs in (the session reaches the app), only its SMS stays.
    let last = log_in(&d, &number(12)).await;
    assert_eq!(
        (&last["state"], &last["created"]),
        (&"complete".into(), &true.into())
    );
    assert_eq!(readyz(&d).await["sms_budget"], "exhausted");
    assert_eq!(exhausted(&d).await, (1.0, 1.0));
    assert_eq!(
        metric(&d, r#"moauth_limit_hits_total{limit="sms_budget"}"#).await,
        3.0
    );
    let spent = lines_of(&d.logs, "outbound SMS budget spent");
    let held: Vec<&Value> = spent.iter().map(|line| &line["held"]).collect();
    assert_eq!(
        held,
        ["every SMS but credentials", "every SMS"],
        "one line per exhaustion"
    );
    // New accounts' passwords are made side by side: in no particular order.
    let mut to: Vec<String> = d.sim.submits().into_iter().map(|s| s.to).collect();
    to.sort_unstable();
    assert_eq!(to, [number(0), number(1), number(10), number(11)]);
    d.signal(libc::SIGTERM);
    assert_eq!(d.exit_code().await, 0);
}

/// One credential SMS a day, then none.
const ONE_PASSWORD: &str = "[limits]
sms_per_hour = 0
sms_per_day = 1
sms_reserved_for_credentials_percent = 0
";

/// Operators see new accounts wait for their password: `moauth_passwords_pending` and
/// `/status` count one whose SMS the spent budget holds, and drop back to 0 once it went.
#[tokio::test]
async fn a_password_held_by_the_budget_is_counted_as_pending_until_it_goes() {
    let mut d = Spawned::start(ONE_PASSWORD, &[]).await;
    let pending = async |d: &Spawned| metric(d, "moauth_passwords_pending").await;
    assert_eq!(pending(&d).await, 0.0, "present from the start");

    assert_eq!(log_in(&d, &number(30)).await["created"], true);
    // Its mark goes in the write that queues the SMS: gone before the SMS can leave.
    assert_eq!(d.nth_submit(1).await.to, number(30));
    assert_eq!(pending(&d).await, 0.0);

    // Spent: the next new account's password waits.
    assert_eq!(log_in(&d, &number(31)).await["created"], true);
    common::eventually("the registrar found the budget spent", async || {
        exhausted(&d).await.1 == 1.0
    })
    .await;
    assert_eq!(pending(&d).await, 1.0);
    let status: Value = serde_json::from_str(&d.get_text("/status").await).unwrap();
    assert_eq!(status["passwords_pending"], 1, "{status}");

    // A raised budget lets it go, with the next new account's (whose login wakes the
    // registrar).
    d.write_config(&ONE_PASSWORD.replace("sms_per_day = 1", "sms_per_day = 10"));
    d.signal(libc::SIGHUP);
    d.notify.wait_for("RELOADING=1").await;
    d.notify.wait_for("READY=1").await;
    assert_eq!(log_in(&d, &number(32)).await["created"], true);
    d.nth_submit(3).await;
    let mut to: Vec<String> = d.sim.submits().into_iter().map(|s| s.to).collect();
    to.sort_unstable();
    assert_eq!(to, [number(30), number(31), number(32)]);
    assert_eq!(pending(&d).await, 0.0);
    let status: Value = serde_json::from_str(&d.get_text("/status").await).unwrap();
    assert_eq!(status["passwords_pending"], 0, "{status}");
    d.signal(libc::SIGTERM);
    assert_eq!(d.exit_code().await, 0);
}

#[tokio::test]
async fn the_budget_is_whole_again_in_the_next_hour_and_a_reload_raises_it() {
    let h = Harness::start_with(Options::default(), |c| {
        c.limits.sms_per_hour = 2;
        c.limits.sms_per_day = 0;
        c.limits.sms_reserved_for_credentials_percent = 0;
    })
    .await;
    // Each text its own: the same text again from a number is taken for a redelivery.
    for (i, from) in [ALICE, BOB, ALICE].into_iter().enumerate() {
        h.phone_sends(from, &format!("HELLO {i}")).await;
    }
    // The pipeline takes MOs in order: once this login is complete, the third HELLO was held.
    let (verifier, token) = h.app_token(0);
    h.phone_sends(BOB, &format!("LOGIN {token}")).await;
    assert_eq!(
        h.poll(&verifier, &token, 10_000).await.1["state"],
        "complete"
    );
    h.settled_submits(2).await;
    assert_eq!(h.readyz().await["sms_budget"], "exhausted");

    h.clock.advance(3_600);
    assert_eq!(h.readyz().await["sms_budget"], "ok");
    h.phone_sends(ALICE, "HELLO 3").await;
    h.settled_submits(3).await;

    h.phone_sends(ALICE, "HELLO 4").await;
    h.phone_sends(BOB, "HELLO 5").await;
    let (verifier, token) = h.app_token(0);
    h.phone_sends(number(0).as_str(), &format!("LOGIN {token}"))
        .await;
    assert_eq!(
        h.poll(&verifier, &token, 10_000).await.1["state"],
        "complete"
    );
    h.settled_submits(4).await;
    assert_eq!(h.readyz().await["sms_budget"], "exhausted");

    let mut config = h.config.clone();
    config.limits.sms_per_hour = 10;
    assert!(
        h.daemon().reload(&config).is_empty(),
        "limits reload in place"
    );
    h.phone_sends(BOB, "HELLO 6").await;
    let sms = h.settled_submits(5).await;
    assert_eq!(sms[4].to, BOB);
    assert_eq!(h.readyz().await["sms_budget"], "ok");
}

/// The budget is one for every node on a PostgreSQL store, not one each: a node started
/// after another spent it sends nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_on_postgres_share_one_budget() {
    let Some(db) = common::postgres::database().await else {
        return;
    };
    let sim = common::loopback_sim().await;
    let dir = tempfile::tempdir().unwrap();
    let budget =
        "[limits]\nsms_per_hour = 0\nsms_per_day = 2\nsms_reserved_for_credentials_percent = 0\n";
    let config_a = write_config(dir.path(), "a", &db.url, sim.smpp_addr, budget);
    let config_b = write_config(dir.path(), "b", &db.url, sim.smpp_addr, budget);
    let mut a = Node::launch("a", &config_a).await;
    for n in 0..2 {
        common::phone_sends(&sim, &number(20 + n), "HELLO").await;
    }
    sim.wait_submits(2, PATIENCE).await;
    assert_eq!(a.stop().await, 0);

    let mut b = Node::launch("b", &config_b).await;
    for n in 2..4 {
        common::phone_sends(&sim, &number(20 + n), "HELLO").await;
    }
    common::eventually("node b decided both MOs", async || {
        lines_of(&b.logs, "MO outcome").len() == 2
    })
    .await;
    let outcomes = lines_of(&b.logs, "MO outcome");
    let held: Vec<&Value> = outcomes.iter().map(|l| &l["reply_held_by"]).collect();
    assert_eq!(held, ["sms_budget", "sms_budget"], "{}", b.logs.text());
    assert_eq!(sim.submits().len(), 2, "{:?}", sim.submits());
    assert_eq!(b.readyz().await.1["sms_budget"], "credentials_only");
    // A new account's password waits for the budget too, and the node counts it.
    let token = Token::for_verifier(&Verifier::random(), Clock::System.now());
    common::phone_sends(&sim, &number(24), &format!("LOGIN {token}")).await;
    let http = common::http_client();
    common::eventually("node b counts the password that waits", async || {
        common::scrape(&http, b.http, "moauth_passwords_pending").await == Some(1.0)
    })
    .await;
    assert_eq!(sim.submits().len(), 2, "{:?}", sim.submits());
    assert_eq!(b.stop().await, 0);
}
