//! Several nodes on one PostgreSQL, at the store's interface: two handles on one database
//! play two nodes, and each multi-node promise is checked where it is made — redeliveries
//! recognised across nodes, claims held by one node until their lease lapses, arrival order
//! per number, an outcome committed once, a session taken once.

use std::time::{Duration, Instant};

use crate::common;

use common::postgres::{TestDatabase, database};
use common::{ALICE, BOB, PATIENCE};
use moauth::core::login::{LoginRecord, LoginState};
use moauth::core::mo::MoMessage;
use moauth::core::msisdn::Msisdn;
use moauth::core::outbound::Outbound;
use moauth::core::token::Verifier;
use moauth::store::NewLogin;
use moauth::store::postgres::{Cutoffs, PgOutcome, PgStore, SWEEP_LOCK, Swept};

const LEASE: Duration = Duration::from_secs(30);

async fn nodes(db: &TestDatabase) -> (PgStore, PgStore) {
    let a = PgStore::open(&db.connection(), "node-a").await.unwrap();
    let b = PgStore::open(&db.connection(), "node-b").await.unwrap();
    (a, b)
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

#[tokio::test]
async fn a_redelivery_to_another_node_is_stored_once() {
    let Some(db) = database().await else { return };
    let (a, b) = nodes(&db).await;
    assert_eq!(a.append(&[mo(ALICE, "LOGIN 1")], 600).await.unwrap(), 0);
    assert_eq!(
        b.append(&[mo(ALICE, "LOGIN 1"), mo(BOB, "LOGIN 2")], 600)
            .await
            .unwrap(),
        1
    );
    assert_eq!(a.inbox_len().await.unwrap(), 2);
    // Outside the window the same content is a new MO (a person sending it again).
    let mut later = mo(ALICE, "LOGIN 1");
    later.received_at = 100 + 601;
    assert_eq!(b.append(&[later], 600).await.unwrap(), 0);
    assert_eq!(a.inbox_len().await.unwrap(), 3);
}

#[tokio::test]
async fn both_nodes_receiving_one_pdu_at_once_store_it_once() {
    let Some(db) = database().await else { return };
    let (a, b) = nodes(&db).await;
    let batch: Vec<MoMessage> = (0..50).map(|i| mo(ALICE, &format!("LOGIN {i}"))).collect();
    let (ra, rb) = tokio::join!(a.append(&batch, 600), b.append(&batch, 600));
    assert_eq!(
        ra.unwrap() + rb.unwrap(),
        50,
        "each MO a repeat on exactly one node"
    );
    assert_eq!(a.inbox_len().await.unwrap(), 50);
}

#[tokio::test]
async fn a_claim_is_one_nodes_until_its_lease_lapses() {
    let Some(db) = database().await else { return };
    let (a, b) = nodes(&db).await;
    a.append(&[mo(ALICE, "LOGIN 1"), mo(BOB, "LOGIN 2")], 600)
        .await
        .unwrap();
    let short = Duration::from_millis(300);
    let mine = a.claim_inbox(1, short).await.unwrap();
    assert_eq!(mine.len(), 1);
    let theirs = b.claim_inbox(10, LEASE).await.unwrap();
    assert_eq!(theirs.len(), 1, "B gets the other MO, not A's");
    assert_ne!(theirs[0].0, mine[0].0);
    // A dies holding its claim: once the lease lapses B takes it over.
    let deadline = Instant::now() + PATIENCE;
    let taken_over = loop {
        let claimed = b.claim_inbox(10, LEASE).await.unwrap();
        if !claimed.is_empty() {
            break claimed;
        }
        assert!(Instant::now() < deadline, "A's lease never lapsed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(taken_over, mine);
}

#[tokio::test]
async fn one_numbers_mos_are_claimed_in_arrival_order() {
    let Some(db) = database().await else { return };
    let (a, b) = nodes(&db).await;
    a.append(
        &[mo(ALICE, "first"), mo(ALICE, "second"), mo(BOB, "other")],
        600,
    )
    .await
    .unwrap();
    let claimed = a.claim_inbox(10, LEASE).await.unwrap();
    let texts: Vec<&[u8]> = claimed
        .iter()
        .map(|(_, m)| m.user_data.as_slice())
        .collect();
    assert_eq!(texts, [b"first".as_slice(), b"other"]);
    assert!(
        b.claim_inbox(10, LEASE).await.unwrap().is_empty(),
        "second waits for first"
    );
    let first = claimed[0].0;
    a.commit_outcomes(&[PgOutcome {
        mo_id: first,
        login: None,
        replies: &[],
        event: None,
    }])
    .await
    .unwrap();
    let next = b.claim_inbox(10, LEASE).await.unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].1.user_data, b"second");
}

#[tokio::test]
async fn an_mo_decided_on_two_nodes_is_committed_once() {
    let Some(db) = database().await else { return };
    let (a, b) = nodes(&db).await;
    a.append(&[mo(ALICE, "LOGIN 1")], 600).await.unwrap();
    let id = a.claim_inbox(1, Duration::ZERO).await.unwrap()[0].0;
    // A's lease lapsed at once; B claims the same MO and both decide it.
    assert_eq!(b.claim_inbox(1, LEASE).await.unwrap()[0].0, id);
    let challenge = Verifier::random().challenge();
    let (la, lb) = (complete("session-a"), complete("session-b"));
    let (ra, rb) = (vec![reply("from a")], vec![reply("from b")]);
    let oa = [PgOutcome {
        mo_id: id,
        login: Some((challenge, &la)),
        replies: &ra,
        event: None,
    }];
    let ob = [PgOutcome {
        mo_id: id,
        login: Some((challenge, &lb)),
        replies: &rb,
        event: None,
    }];
    let (ca, cb) = tokio::join!(a.commit_outcomes(&oa), b.commit_outcomes(&ob));
    assert_eq!(
        ca.unwrap() + cb.unwrap(),
        1,
        "exactly one node's outcome counts"
    );
    assert_eq!(a.outbox_len().await.unwrap(), 1, "one reply, not two");
    let record = b.login(&challenge).await.unwrap().unwrap();
    assert!(record == la || record == lb, "{record:?}");
}

#[tokio::test]
async fn a_session_is_taken_once_whichever_node_is_polled() {
    let Some(db) = database().await else { return };
    let (a, b) = nodes(&db).await;
    for round in 0..20 {
        a.append(&[mo(ALICE, &format!("LOGIN {round}"))], 600)
            .await
            .unwrap();
        let id = a.claim_inbox(1, LEASE).await.unwrap()[0].0;
        let challenge = Verifier::random().challenge();
        let record = complete(&format!("session-{round}"));
        a.commit_outcomes(&[PgOutcome {
            mo_id: id,
            login: Some((challenge, &record)),
            replies: &[],
            event: None,
        }])
        .await
        .unwrap();
        let (ta, tb) = tokio::join!(a.take_session(&challenge), b.take_session(&challenge));
        let taken: Vec<LoginRecord> = [ta.unwrap(), tb.unwrap()].into_iter().flatten().collect();
        assert_eq!(taken, [record], "round {round}");
        assert_eq!(
            a.login(&challenge).await.unwrap().unwrap().state,
            LoginState::Consumed
        );
    }
}

#[tokio::test]
async fn replies_are_claimed_per_smsc_and_return_after_a_lapsed_lease() {
    let Some(db) = database().await else { return };
    let (a, b) = nodes(&db).await;
    a.append(&[mo(ALICE, "LOGIN 1")], 600).await.unwrap();
    let id = a.claim_inbox(1, LEASE).await.unwrap()[0].0;
    let mut other = reply("via other");
    other.smsc = "other".into();
    let replies = vec![reply("one"), reply("two"), other];
    a.commit_outcomes(&[PgOutcome {
        mo_id: id,
        login: None,
        replies: &replies,
        event: None,
    }])
    .await
    .unwrap();
    let sim = a.claim_outbox("sim", 10, Duration::ZERO).await.unwrap();
    let texts: Vec<&str> = sim.iter().map(|(_, o)| o.text.as_str()).collect();
    assert_eq!(texts, ["one", "two"]);
    let theirs = b.claim_outbox("sim", 10, LEASE).await.unwrap();
    assert_eq!(theirs, sim, "A's lapsed claims are B's to send");
    assert!(a.claim_outbox("sim", 10, LEASE).await.unwrap().is_empty());
    b.ack_outbox(&[theirs[0].0, theirs[1].0]).await.unwrap();
    assert_eq!(
        a.outbox_len().await.unwrap(),
        1,
        "only the other SMSC's reply is left"
    );
}

#[tokio::test]
async fn one_node_sweeps_at_a_time_and_only_what_is_due() {
    let Some(db) = database().await else { return };
    let (a, _) = nodes(&db).await;
    let id = {
        a.append(&[mo(ALICE, "LOGIN 1"), mo(BOB, "LOGIN 2")], 600)
            .await
            .unwrap();
        a.claim_inbox(2, LEASE).await.unwrap()
    };
    let (old, young) = (
        Verifier::random().challenge(),
        Verifier::random().challenge(),
    );
    let mut kept_short = complete("s1");
    kept_short.keep_until = 150;
    let kept_long = complete("s2");
    a.commit_outcomes(&[
        PgOutcome {
            mo_id: id[0].0,
            login: Some((old, &kept_short)),
            replies: &[],
            event: None,
        },
        PgOutcome {
            mo_id: id[1].0,
            login: Some((young, &kept_long)),
            replies: &[],
            event: None,
        },
    ])
    .await
    .unwrap();
    let cutoffs = Cutoffs {
        now: 200,
        seen_before: 0,
        parts_before: 0,
        rejected_before: 0,
        sent_before: 0,
    };
    // Another node is sweeping: this one skips its turn.
    let mut other = db.client().await;
    let holder = other.transaction().await.unwrap();
    holder
        .execute("SELECT pg_advisory_xact_lock($1)", &[&SWEEP_LOCK])
        .await
        .unwrap();
    assert_eq!(a.sweep(cutoffs).await.unwrap(), None);
    holder.rollback().await.unwrap();
    let swept = a.sweep(cutoffs).await.unwrap().unwrap();
    assert_eq!(
        swept,
        Swept {
            logins: 1,
            ..Swept::default()
        }
    );
    assert!(a.login(&old).await.unwrap().is_none());
    assert_eq!(a.login(&young).await.unwrap(), Some(kept_long));
}

fn new_login<'a>(request_id: u64, msisdn: &'a Msisdn, password: &str) -> NewLogin<'a> {
    NewLogin {
        request_id,
        msisdn,
        password_hash_if_new: Some(format!("hash-of-{password}")),
        password_if_new: Some(password.into()),
        session: format!("session-{request_id}-{password}"),
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
        let (ra, rb) = (ra.unwrap().unwrap(), rb.unwrap().unwrap());
        assert_eq!(ra.account_id, rb.account_id, "round {round}");
        assert_eq!(
            u8::from(ra.created) + u8::from(rb.created),
            1,
            "one of the two created it"
        );
        assert_eq!(
            ra.credentials.is_some() as u8 + rb.credentials.is_some() as u8,
            1,
            "one password to send"
        );
    }
    assert_eq!(a.account_count().await.unwrap(), 10);
}

#[tokio::test]
async fn an_mo_logged_in_on_two_nodes_gets_one_answer() {
    let Some(db) = database().await else { return };
    let (a, b) = nodes(&db).await;
    let number = Msisdn::parse(ALICE).unwrap();
    let first = a
        .log_in(new_login(7, &number, "pa"))
        .await
        .unwrap()
        .unwrap();
    assert!(first.created);
    // A's lease lapsed; B retries the same MO (request 7) with a password of its own.
    let second = b
        .log_in(new_login(7, &number, "pb"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second, first, "same account, session and credentials");
    assert_eq!(b.auth_answer(7).await.unwrap(), Some(first));
    a.settle_answer(7).await.unwrap();
    assert_eq!(b.auth_answer(7).await.unwrap(), None);
    // A returning number without a hash to create with is logged in, not refused.
    let mut returning = new_login(8, &number, "x");
    returning.password_hash_if_new = None;
    let again = b.log_in(returning).await.unwrap().unwrap();
    assert!(!again.created);
    let stranger = Msisdn::parse(BOB).unwrap();
    let mut unknown = new_login(9, &stranger, "x");
    unknown.password_hash_if_new = None;
    assert!(
        a.log_in(unknown).await.unwrap().is_err(),
        "no account, none to create"
    );
}
