//! Several nodes on one PostgreSQL, at the store's interface: two handles on one database
//! play two nodes, and each multi-node promise is checked where it is made — redeliveries
//! recognised across nodes, claims held by one node until their lease lapses, arrival order
//! per number, an outcome committed once, a session taken once, one account per number, a
//! long-poll woken by another node's commit, one sweeper at a time, an idle node woken to
//! take over a dead node's lapsed claims.

use std::time::{Duration, Instant};

use crate::common;

use common::postgres::{TestDatabase, database};
use common::{ALICE, BOB, PATIENCE};
use moauth::core::login::{LoginRecord, LoginState};
use moauth::core::mo::MoMessage;
use moauth::core::msisdn::Msisdn;
use moauth::core::outbound::{Outbound, SmsRoute};
use moauth::core::store::{
    AccountStore, IngestStore, LoginReads, NewAccount, NewLogin, OutboxStore, Outcome,
    PasswordStore, PipelineStore, PollStore, SweepDue, Swept,
};
use moauth::core::token::{Challenge, Verifier};
use moauth::store::postgres::{PgStore, SWEEP_LOCK};

const LEASE: Duration = Duration::from_secs(30);

async fn node(db: &TestDatabase, name: &str, lease: Duration) -> PgStore {
    PgStore::open(&db.connection(), name, lease).await.unwrap()
}

async fn nodes(db: &TestDatabase) -> (PgStore, PgStore) {
    (
        node(db, "node-a", LEASE).await,
        node(db, "node-b", LEASE).await,
    )
}

async fn count(db: &TestDatabase, table: &str) -> i64 {
    let client = db.client().await;
    client
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap()
        .get(0)
}

fn mo(from: &str, text: &str) -> MoMessage {
    MoMessage {
        smsc: "sim".into(),
        source_addr: from.trim_start_matches('+').into(),
        source_ton: 1,
        destination_addr: "10690000".into(),
        esm_class: 0,
        data_coding: 0,
        user_data: text.as_bytes().to_vec(),
        sar: None,
        received_at: 100,
    }
}

fn complete(session: &str) -> LoginRecord {
    LoginRecord {
        state: LoginState::Complete {
            session: session.into(),
            account_id: "1".into(),
            created: false,
        },
        msisdn: Some(Msisdn::parse(ALICE).unwrap()),
        issued_at: 90,
        decided_at: 100,
        keep_until: 1000,
    }
}

fn reply(text: &str) -> Outbound {
    Outbound {
        smsc: "sim".into(),
        from: "10690000".into(),
        to: Msisdn::parse(ALICE).unwrap(),
        text: text.into(),
        created_at: 100,
    }
}

fn decided(mo: u64, login: Option<(Challenge, LoginRecord)>, replies: Vec<Outbound>) -> Outcome {
    Outcome::Decided {
        mo,
        login,
        session: None,
        replies,
        event: None,
    }
}

#[tokio::test]
async fn a_redelivery_to_another_node_is_stored_once() {
    let Some(db) = database().await else { return };
    let (a, b) = nodes(&db).await;
    assert_eq!(a.append_mos(&[mo(ALICE, "LOGIN 1")], 600).await.unwrap(), 0);
    let again = [mo(ALICE, "LOGIN 1"), mo(BOB, "LOGIN 2")];
    assert_eq!(b.append_mos(&again, 600).await.unwrap(), 1);
    assert_eq!(count(&db, "inbox").await, 2);
    // Outside the window the same content is a new MO (a person sending it again).
    let mut later = mo(ALICE, "LOGIN 1");
    later.received_at = 100 + 601;
    assert_eq!(b.append_mos(&[later], 600).await.unwrap(), 0);
    assert_eq!(count(&db, "inbox").await, 3);
}

#[tokio::test]
async fn both_nodes_receiving_one_pdu_at_once_store_it_once() {
    let Some(db) = database().await else { return };
    let (a, b) = nodes(&db).await;
    let batch: Vec<MoMessage> = (0..50).map(|i| mo(ALICE, &format!("LOGIN {i}"))).collect();
    let (ra, rb) = tokio::join!(a.append_mos(&batch, 600), b.append_mos(&batch, 600));
    assert_eq!(
        ra.unwrap() + rb.unwrap(),
        50,
        "each MO a repeat on exactly one node"
    );
    assert_eq!(count(&db, "inbox").await, 50);
}

#[tokio::test]
async fn a_claim_is_one_nodes_until_its_lease_lapses() {
    let Some(db) = database().await else { return };
    let a = node(&db, "node-a", Duration::from_millis(300)).await;
    let b = node(&db, "node-b", LEASE).await;
    let both = [mo(ALICE, "LOGIN 1"), mo(BOB, "LOGIN 2")];
    a.append_mos(&both, 600).await.unwrap();
    let mine = a.oldest_mos(1).await.unwrap();
    assert_eq!(mine.len(), 1);
    let theirs = b.oldest_mos(10).await.unwrap();
    assert_eq!(theirs.len(), 1, "B gets the other MO, not A's");
    assert_ne!(theirs[0].0, mine[0].0);
    // A dies holding its claim: once the lease lapses B takes it over (beside its own).
    common::eventually("A's lease to lapse", async || {
        let claimed = b.oldest_mos(10).await.unwrap();
        if claimed.contains(&mine[0]) {
            assert_eq!(claimed.len(), 2);
            return true;
        }
        assert_eq!(claimed, theirs, "only its own until A's lease lapses");
        false
    })
    .await;
}

#[tokio::test]
async fn an_idle_node_is_woken_for_a_dead_nodes_lapsed_claims() {
    let Some(db) = database().await else { return };
    let a = node(&db, "node-a", Duration::from_millis(300)).await;
    let b = node(&db, "node-b", LEASE).await;
    let mut replies_queued = b.replies_queued();
    a.append_mos(&[mo(ALICE, "LOGIN 1"), mo(BOB, "LOGIN 2")], 600)
        .await
        .unwrap();
    let claimed = a.oldest_mos(2).await.unwrap();
    a.commit_outcomes(&[decided(claimed[0].0, None, vec![reply("one")])])
        .await
        .unwrap();
    let none = |_| false;
    assert_eq!(a.pending_replies("sim", &none, 10).await.unwrap().len(), 1);
    // B heard of both (NOTIFY), looked, and found them A's.
    tokio::time::timeout(PATIENCE, b.mos_arrived())
        .await
        .unwrap();
    tokio::time::timeout(PATIENCE, replies_queued.changed())
        .await
        .unwrap()
        .unwrap();
    assert!(b.oldest_mos(10).await.unwrap().is_empty());
    assert!(
        b.pending_replies("sim", &none, 10)
            .await
            .unwrap()
            .is_empty()
    );
    replies_queued.borrow_and_update();

    // A dies holding its claims. Nothing new arrives, yet B is woken once they lapse.
    drop(a);
    tokio::time::timeout(PATIENCE, b.mos_arrived())
        .await
        .expect("B never woken for the lapsed MO");
    let taken = b.oldest_mos(10).await.unwrap();
    assert_eq!(taken, claimed[1..], "B takes over A's undecided MO");
    tokio::time::timeout(PATIENCE, replies_queued.changed())
        .await
        .expect("B never woken for the lapsed reply")
        .unwrap();
    let texts: Vec<String> = b
        .pending_replies("sim", &none, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, o)| o.text)
        .collect();
    assert_eq!(texts, ["one"]);
}

#[tokio::test]
async fn one_numbers_mos_are_claimed_in_arrival_order() {
    let Some(db) = database().await else { return };
    let (a, b) = nodes(&db).await;
    let three = [mo(ALICE, "first"), mo(ALICE, "second"), mo(BOB, "other")];
    a.append_mos(&three, 600).await.unwrap();
    let claimed = a.oldest_mos(1).await.unwrap();
    assert_eq!(claimed[0].1.user_data, b"first");
    let theirs = b.oldest_mos(10).await.unwrap();
    let texts: Vec<&[u8]> = theirs.iter().map(|(_, m)| m.user_data.as_slice()).collect();
    assert_eq!(
        texts,
        [b"other".as_slice()],
        "second waits while A holds first"
    );
    a.commit_outcomes(&[decided(claimed[0].0, None, vec![])])
        .await
        .unwrap();
    let next = b.oldest_mos(10).await.unwrap();
    let texts: Vec<&[u8]> = next.iter().map(|(_, m)| m.user_data.as_slice()).collect();
    assert_eq!(texts, [b"second".as_slice(), b"other"]);
}

#[tokio::test]
async fn an_mo_decided_on_two_nodes_is_committed_once() {
    let Some(db) = database().await else { return };
    let a = node(&db, "node-a", Duration::ZERO).await;
    let b = node(&db, "node-b", LEASE).await;
    a.append_mos(&[mo(ALICE, "LOGIN 1")], 600).await.unwrap();
    let id = a.oldest_mos(1).await.unwrap()[0].0;
    // A's lease lapsed at once; B claims the same MO and both decide it.
    assert_eq!(b.oldest_mos(1).await.unwrap()[0].0, id);
    let challenge = Verifier::random().challenge();
    let (la, lb) = (complete("session-a"), complete("session-b"));
    let oa = [decided(
        id,
        Some((challenge, la.clone())),
        vec![reply("from a")],
    )];
    let ob = [decided(
        id,
        Some((challenge, lb.clone())),
        vec![reply("from b")],
    )];
    let (ca, cb) = tokio::join!(a.commit_outcomes(&oa), b.commit_outcomes(&ob));
    ca.unwrap();
    cb.unwrap();
    assert_eq!(count(&db, "outbox").await, 1, "one reply, not two");
    assert_eq!(count(&db, "inbox").await, 0);
    let record = b.login(&challenge).await.unwrap().unwrap();
    assert!(record == la || record == lb, "{record:?}");
}

#[tokio::test]
async fn a_session_is_taken_once_whichever_node_is_polled() {
    let Some(db) = database().await else { return };
    let (a, b) = nodes(&db).await;
    for round in 0..20 {
        a.append_mos(&[mo(ALICE, &format!("LOGIN {round}"))], 600)
            .await
            .unwrap();
        let id = a.oldest_mos(1).await.unwrap()[0].0;
        let challenge = Verifier::random().challenge();
        let record = complete(&format!("session-{round}"));
        a.commit_outcomes(&[decided(id, Some((challenge, record.clone())), vec![])])
            .await
            .unwrap();
        let (ta, tb) = tokio::join!(
            a.take_session(&challenge, &record),
            b.take_session(&challenge, &record)
        );
        let taken: Vec<LoginRecord> = [ta.unwrap(), tb.unwrap()].into_iter().flatten().collect();
        assert_eq!(taken, [record], "round {round}");
        assert_eq!(
            a.login(&challenge).await.unwrap().unwrap().state,
            LoginState::Consumed
        );
    }
}

#[tokio::test]
async fn a_long_poll_on_one_node_wakes_when_another_commits() {
    let Some(db) = database().await else { return };
    let (a, b) = nodes(&db).await;
    let challenge = Verifier::random().challenge();
    let mut watch = b.watch_login(&challenge);
    assert_eq!(b.login(&challenge).await.unwrap(), None);
    a.append_mos(&[mo(ALICE, "LOGIN 1")], 600).await.unwrap();
    let id = a.oldest_mos(1).await.unwrap()[0].0;
    let started = Instant::now();
    a.commit_outcomes(&[decided(id, Some((challenge, complete("s"))), vec![])])
        .await
        .unwrap();
    tokio::time::timeout(PATIENCE, watch.changed())
        .await
        .expect("B's waiter was never woken by A's commit");
    println!("woken on B {:?} after A's commit", started.elapsed());
    assert_eq!(b.login(&challenge).await.unwrap(), Some(complete("s")));
}

#[tokio::test]
async fn replies_are_claimed_per_smsc_and_return_after_a_lapsed_lease() {
    let Some(db) = database().await else { return };
    let a = node(&db, "node-a", Duration::ZERO).await;
    let b = node(&db, "node-b", LEASE).await;
    a.append_mos(&[mo(ALICE, "LOGIN 1")], 600).await.unwrap();
    let id = a.oldest_mos(1).await.unwrap()[0].0;
    let mut other = reply("via other");
    other.smsc = "other".into();
    let replies = vec![reply("one"), reply("two"), other];
    a.commit_outcomes(&[decided(id, None, replies)])
        .await
        .unwrap();
    let none = |_| false;
    let sim = a.pending_replies("sim", &none, 10).await.unwrap();
    let texts: Vec<&str> = sim.iter().map(|(_, o)| o.text.as_str()).collect();
    assert_eq!(texts, ["one", "two"]);
    let theirs = b.pending_replies("sim", &none, 10).await.unwrap();
    assert_eq!(theirs, sim, "A's lapsed claims are B's to send");
    assert!(
        a.pending_replies("sim", &none, 10)
            .await
            .unwrap()
            .is_empty(),
        "B's lease holds"
    );
    for (id, _) in &theirs {
        b.ack_reply(*id).await.unwrap();
    }
    assert_eq!(
        count(&db, "outbox").await,
        1,
        "only the other SMSC's reply is left"
    );
}

#[tokio::test]
async fn one_node_sweeps_at_a_time_and_only_what_is_due() {
    let Some(db) = database().await else { return };
    let (a, _) = nodes(&db).await;
    let two = [mo(ALICE, "LOGIN 1"), mo(BOB, "LOGIN 2")];
    a.append_mos(&two, 600).await.unwrap();
    let ids = a.oldest_mos(2).await.unwrap();
    let (old, young) = (
        Verifier::random().challenge(),
        Verifier::random().challenge(),
    );
    let mut kept_short = complete("s1");
    kept_short.keep_until = 150;
    let kept_long = complete("s2");
    a.commit_outcomes(&[
        decided(ids[0].0, Some((old, kept_short)), vec![]),
        decided(ids[1].0, Some((young, kept_long.clone())), vec![]),
    ])
    .await
    .unwrap();
    // Another node is sweeping: this one skips its turn.
    let mut other = db.client().await;
    let holder = other.transaction().await.unwrap();
    holder
        .execute("SELECT pg_advisory_xact_lock($1)", &[&SWEEP_LOCK])
        .await
        .unwrap();
    assert_eq!(a.sweep_logins(200).await.unwrap(), 0);
    let due = SweepDue {
        now: 200,
        parts_before: 200,
        seen_before: 200,
        rejected_before: 200,
        sent_before: 200,
    };
    assert_eq!(a.sweep_leftovers(due).await.unwrap(), Swept::default());
    holder.rollback().await.unwrap();
    assert_eq!(a.sweep_logins(200).await.unwrap(), 1);
    assert!(a.login(&old).await.unwrap().is_none());
    assert_eq!(a.login(&young).await.unwrap(), Some(kept_long));
    let swept = a.sweep_leftovers(due).await.unwrap();
    assert_eq!(swept.seen, 2, "both digests were received at 100");
}

/// A login whose new account would have its password texted through `smsc`.
fn new_login<'a>(request_id: u64, msisdn: &'a Msisdn, smsc: &str) -> NewLogin<'a> {
    NewLogin {
        request_id,
        msisdn,
        new_account: NewAccount {
            password_to: Some(SmsRoute {
                smsc: smsc.into(),
                from: "10690000".into(),
            }),
        },
        session: format!("session-{request_id}-{smsc}"),
        session_expires_at: 10_000,
        now: 100,
    }
}

#[tokio::test]
async fn a_new_numbers_first_logins_on_two_nodes_make_one_account() {
    let Some(db) = database().await else { return };
    let (a, b) = nodes(&db).await;
    for round in 0..10u64 {
        let number = Msisdn::parse(&format!("+86138001380{round:02}")).unwrap();
        let (ra, rb) = tokio::join!(
            a.log_in(new_login(2 * round, &number, "pa")),
            b.log_in(new_login(2 * round + 1, &number, "pb")),
        );
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        assert_eq!(ra.account_id, rb.account_id, "round {round}");
        assert_eq!(
            u8::from(ra.created) + u8::from(rb.created),
            1,
            "one created it"
        );
    }
    assert_eq!(a.account_count().await.unwrap(), 10);
    assert_eq!(
        count(&db, "password_pending").await,
        10,
        "one password to send each"
    );
}

#[tokio::test]
async fn a_pending_password_is_leased_to_one_node_and_sent_once() {
    let Some(db) = database().await else { return };
    let (a, b) = nodes(&db).await;
    let number = Msisdn::parse(ALICE).unwrap();
    assert!(
        a.log_in(new_login(1, &number, "sim"))
            .await
            .unwrap()
            .created
    );
    let taken = a.pending_passwords(&|_| false, 10).await.unwrap();
    assert_eq!(taken.len(), 1);
    assert!(
        b.pending_passwords(&|_| false, 10)
            .await
            .unwrap()
            .is_empty(),
        "leased to A"
    );
    // Both finish anyway (B took it over after a lapse, say): one hash, one SMS.
    let (from_a, from_b) = (reply("from a"), reply("from b"));
    let (ra, rb) = tokio::join!(
        a.store_password(&taken[0], Some(("hash-a", &from_a))),
        b.store_password(&taken[0], Some(("hash-b", &from_b))),
    );
    assert_eq!(u8::from(ra.unwrap()) + u8::from(rb.unwrap()), 1);
    assert_eq!(count(&db, "outbox").await, 1);
    assert_eq!(count(&db, "password_pending").await, 0);
    let hash = a.account(&number).await.unwrap().unwrap().password_hash;
    assert!(
        matches!(hash.as_deref(), Some("hash-a" | "hash-b")),
        "{hash:?}"
    );
}

#[tokio::test]
async fn an_mo_logged_in_on_two_nodes_gets_one_answer() {
    let Some(db) = database().await else { return };
    let (a, b) = nodes(&db).await;
    let number = Msisdn::parse(ALICE).unwrap();
    let first = a.log_in(new_login(7, &number, "pa")).await.unwrap();
    assert!(first.created);
    // A's lease lapsed; B retries the same MO (request 7).
    let second = b.log_in(new_login(7, &number, "pb")).await.unwrap();
    assert_eq!(second, first, "same account, session and credentials");
    assert_eq!(b.auth_answer(7).await.unwrap(), Some(first));
    a.settle_answers(&[7]).await.unwrap();
    assert_eq!(b.auth_answer(7).await.unwrap(), None);
    // A later MO of the same number logs in to the account, on either node.
    let returning = a.log_in(new_login(8, &number, "x")).await.unwrap();
    assert!(!returning.created);
    assert_eq!(returning.account_id, second.account_id);
}
