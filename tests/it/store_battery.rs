//! The store battery: what every backend behind `moauth::core::store` must do, written once
//! against the traits and run against each backend by `store_battery!` (sled below; a further
//! backend adds one line with how to open an empty store).
//!
//! Each check is a story a consumer relies on: the inbox hands MOs out oldest first and stores
//! a redelivery once, an outcome is all-or-nothing, a session leaves once however many polls
//! race, a number gets one account, queues keep an item until it is acknowledged, sweeps take
//! only what is due.

use std::sync::Arc;
use std::time::Duration;

use moauth::core::auth::{AuthAnswer, NewSession, SessionInfo, SessionKey};
use moauth::core::budget::{SmsCounts, Windows};
use moauth::core::clock::UnixSecs;
use moauth::core::login::{LoginRecord, LoginState, MintedLogin, RejectReason};
use moauth::core::mo::{MoMessage, RejectedMo};
use moauth::core::msisdn::Msisdn;
use moauth::core::outbound::{Outbound, QueuedEvent, SentRecord, SmsRoute};
use moauth::core::store::{
    Filed, NewAccount, NewLogin, Outcome, PartKey, PendingPassword, Store, SweepDue,
};
use moauth::core::token::{Challenge, Verifier};

/// Runs every check of the battery against the backend `$open` makes (an async expression
/// giving a fresh, empty `Arc<dyn Store>`, or None when the backend is not installed here,
/// which its opener says loudly), as tests in module `$backend`.
macro_rules! store_battery {
    ($backend:ident, $open:expr) => {
        mod $backend {
            use super::*;
            store_battery!(@checks $open;
                appended_mos_come_out_oldest_first,
                a_redelivery_within_the_window_is_stored_once,
                an_outcome_records_its_login_queues_its_sms_and_event_and_leaves_the_inbox,
                an_unreadable_mo_is_kept_aside,
                waiting_never_overwrites_a_decided_state,
                a_terminal_state_stays_terminal,
                a_session_is_taken_exactly_once_however_many_polls_race,
                a_watching_poll_wakes_when_its_login_is_recorded,
                parts_become_one_mo_once_all_came,
                a_minted_login_expires_once_and_never_over_a_decided_state,
                replies_stay_queued_until_acknowledged,
                replies_for_a_gone_smsc_are_counted_moved_or_dropped,
                events_stay_queued_until_acknowledged,
                a_receipt_settles_the_sms_it_reports_on,
                a_number_gets_one_account_however_many_logins_race,
                an_answer_is_kept_for_a_retry_until_settled,
                sweeps_take_only_what_is_due,
                a_session_is_found_by_its_hash_until_revoked,
                revoking_an_account_ends_all_its_sessions_and_no_other,
                sessions_are_swept_once_expired,
                a_session_left_to_the_commit_is_stored_only_with_its_login,
                a_password_is_replaced_only_for_an_existing_account,
                an_opt_out_holds_until_lifted,
                sms_budget_counts_add_up_per_window_and_start_again_in_the_next,
                erasing_a_number_leaves_no_record_of_it_and_spares_others,
                a_new_accounts_hash_and_sms_are_stored_together_once,
                a_password_set_meanwhile_is_neither_overwritten_nor_sent,
                a_mark_lifted_without_a_password_leaves_the_account_without_one,
            );
        }
    };
    (@checks $open:expr; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $check() {
                if let Some(store) = $open.await {
                    super::$check(store).await;
                }
            }
        )*
    };
}

store_battery!(sled, async {
    Some(Arc::new(moauth::store::sled::SledStore::temporary().unwrap()) as Arc<dyn Store>)
});

store_battery!(postgres, async {
    let db = crate::common::postgres::database().await?;
    let store = moauth::store::postgres::PgStore::open(&db.connection(), "battery", LEASE)
        .await
        .unwrap();
    Some(Arc::new(store) as Arc<dyn Store>)
});

/// How long a PostgreSQL claim lasts in the battery: longer than any check, so a claim
/// never lapses under a check that hands the same items out twice on purpose.
const LEASE: Duration = Duration::from_secs(60);

const NOW: UnixSecs = 1_800_000_000;

fn mo(from: &str, text: &str, received_at: UnixSecs) -> MoMessage {
    MoMessage {
        smsc: "main".into(),
        source_addr: from.into(),
        source_ton: 1,
        destination_addr: "10690000".into(),
        esm_class: 0,
        data_coding: 0,
        user_data: text.as_bytes().to_vec(),
        sar: None,
        received_at,
    }
}

fn challenge() -> Challenge {
    Verifier::random().challenge()
}

fn record(state: LoginState, keep_until: UnixSecs) -> LoginRecord {
    LoginRecord {
        state,
        msisdn: Some(Msisdn::parse("+8613800138000").unwrap()),
        issued_at: NOW - 10,
        decided_at: NOW,
        keep_until,
    }
}

fn complete(session: &str) -> LoginState {
    LoginState::Complete {
        session: session.into(),
        account_id: "1".into(),
        created: false,
    }
}

fn sms(smsc: &str, text: &str) -> Outbound {
    Outbound {
        smsc: smsc.into(),
        from: "10690000".into(),
        to: Msisdn::parse("+8613800138000").unwrap(),
        text: text.into(),
        created_at: NOW,
    }
}

fn event(backend: &str, id: &str) -> QueuedEvent {
    QueuedEvent {
        backend: backend.into(),
        event_id: id.into(),
        body: format!(r#"{{"event_id":"{id}"}}"#),
    }
}

/// Appends and takes the inbox's MOs, as ingest and the pipeline do.
async fn inbox(store: &Arc<dyn Store>, mos: &[MoMessage]) -> Vec<(u64, MoMessage)> {
    store.append_mos(mos, 600).await.unwrap();
    store.sync().await.unwrap();
    store.oldest_mos(100).await.unwrap()
}

fn decided(mo: u64, login: Option<(Challenge, LoginRecord)>) -> Outcome {
    Outcome::Decided {
        mo,
        login,
        session: None,
        replies: vec![],
        event: None,
    }
}

async fn appended_mos_come_out_oldest_first(store: Arc<dyn Store>) {
    store
        .append_mos(&[mo("1", "a", NOW), mo("1", "b", NOW)], 600)
        .await
        .unwrap();
    store.append_mos(&[mo("1", "c", NOW)], 600).await.unwrap();
    let taken = store.oldest_mos(10).await.unwrap();
    let texts: Vec<_> = taken.iter().map(|(_, m)| m.user_data.clone()).collect();
    assert_eq!(texts, [b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
    assert!(taken.windows(2).all(|w| w[0].0 < w[1].0), "ids rise");
    assert_eq!(store.oldest_mos(2).await.unwrap().len(), 2);
    assert_eq!(store.depths().inbox, 3);
    assert_eq!(store.oldest_mo_received_at().await.unwrap(), Some(NOW));
}

async fn a_redelivery_within_the_window_is_stored_once(store: Arc<dyn Store>) {
    let first = mo("1", "LOGIN x", NOW);
    assert_eq!(
        store
            .append_mos(&[first.clone(), first.clone()], 60)
            .await
            .unwrap(),
        1
    );
    let mut again = first.clone();
    again.received_at = NOW + 60;
    assert_eq!(store.append_mos(&[again.clone()], 60).await.unwrap(), 1);
    again.received_at = NOW + 61;
    assert_eq!(
        store
            .append_mos(&[mo("2", "LOGIN x", NOW + 61), again], 60)
            .await
            .unwrap(),
        0,
        "past the window it is a new MO; another sender is another MO"
    );
    assert_eq!(store.depths().inbox, 3);
}

async fn an_outcome_records_its_login_queues_its_sms_and_event_and_leaves_the_inbox(
    store: Arc<dyn Store>,
) {
    let taken = inbox(&store, &[mo("1", "a", NOW), mo("1", "b", NOW)]).await;
    let (first, second) = (challenge(), challenge());
    let outcomes = [
        Outcome::Decided {
            mo: taken[0].0,
            login: Some((first, record(complete("s1"), NOW + 600))),
            session: None,
            replies: vec![sms("main", "welcome")],
            event: Some(event("shop", "e1")),
        },
        decided(
            taken[1].0,
            Some((
                second,
                record(
                    LoginState::Rejected {
                        reason: RejectReason::BadToken,
                    },
                    NOW + 600,
                ),
            )),
        ),
    ];
    store.commit_outcomes(&outcomes).await.unwrap();
    store.sync().await.unwrap();
    assert!(store.oldest_mos(10).await.unwrap().is_empty());
    assert_eq!(
        store.login(&first).await.unwrap(),
        Some(record(complete("s1"), NOW + 600))
    );
    assert!(matches!(
        store.login(&second).await.unwrap().unwrap().state,
        LoginState::Rejected { .. }
    ));
    let depths = store.depths();
    assert_eq!((depths.inbox, depths.outbox, depths.webhooks), (0, 1, 1));
}

async fn an_unreadable_mo_is_kept_aside(store: Arc<dyn Store>) {
    let taken = inbox(&store, &[mo("1", "\u{1}", NOW)]).await;
    let rejected = RejectedMo {
        mo: taken[0].1.clone(),
        reason: "undecodable".into(),
    };
    store
        .commit_outcomes(&[Outcome::Rejected {
            mo: taken[0].0,
            rejected: rejected.clone(),
        }])
        .await
        .unwrap();
    assert_eq!(store.depths().inbox, 0);
    assert_eq!(store.rejected_mos().await.unwrap(), [rejected]);
}

async fn waiting_never_overwrites_a_decided_state(store: Arc<dyn Store>) {
    let (fresh, decided_one) = (challenge(), challenge());
    let waiting = record(LoginState::Waiting, NOW + 600);
    store.mark_waiting(&fresh, &waiting).await.unwrap();
    assert_eq!(store.login(&fresh).await.unwrap(), Some(waiting.clone()));

    let taken = inbox(&store, &[mo("1", "a", NOW)]).await;
    let done = record(complete("s"), NOW + 600);
    store
        .commit_outcomes(&[decided(taken[0].0, Some((decided_one, done.clone())))])
        .await
        .unwrap();
    store.mark_waiting(&decided_one, &waiting).await.unwrap();
    assert_eq!(store.login(&decided_one).await.unwrap(), Some(done));
}

/// The pipeline decides on a record it read before: a session a poll took meanwhile, and any
/// other final state, outlives an outcome decided on the older record (#14 item 11).
async fn a_terminal_state_stays_terminal(store: Arc<dyn Store>) {
    let replayed = LoginState::Rejected {
        reason: RejectReason::Replayed,
    };
    let (consumed, expired, claimed_twice, mistyped) =
        (challenge(), challenge(), challenge(), challenge());
    let taken = inbox(
        &store,
        &(0..8)
            .map(|i| mo("1", &i.to_string(), NOW))
            .collect::<Vec<_>>(),
    )
    .await;
    let ids: Vec<u64> = taken.iter().map(|(id, _)| *id).collect();
    let first = [
        (consumed, record(complete("s1"), NOW + 600)),
        (expired, record(LoginState::Expired, NOW + 600)),
        (claimed_twice, record(complete("s2"), NOW + 600)),
        (
            mistyped,
            record(
                LoginState::Rejected {
                    reason: RejectReason::BadToken,
                },
                NOW + 600,
            ),
        ),
    ];
    for (id, (challenge, login)) in ids.iter().zip(first.clone()) {
        store
            .commit_outcomes(&[decided(*id, Some((challenge, login)))])
            .await
            .unwrap();
    }
    let seen = store.login(&consumed).await.unwrap().unwrap();
    assert!(
        store
            .take_session(&consumed, &seen)
            .await
            .unwrap()
            .is_some()
    );

    let then = [
        (consumed, record(replayed.clone(), NOW + 600)),
        (expired, record(replayed.clone(), NOW + 600)),
        (claimed_twice, record(replayed.clone(), NOW + 600)),
        (mistyped, record(complete("s3"), NOW + 600)),
    ];
    for (id, (challenge, login)) in ids[4..].iter().zip(then) {
        store
            .commit_outcomes(&[decided(*id, Some((challenge, login)))])
            .await
            .unwrap();
    }
    let state = |c| {
        let store = store.clone();
        async move { store.login(&c).await.unwrap().unwrap().state }
    };
    assert_eq!(state(consumed).await, LoginState::Consumed);
    assert_eq!(state(expired).await, LoginState::Expired);
    // Still open: two numbers claiming one login both lose it; a valid SMS beats a typo.
    assert_eq!(state(claimed_twice).await, replayed);
    assert_eq!(state(mistyped).await, complete("s3"));
    assert!(store.oldest_mos(100).await.unwrap().is_empty());
}

async fn a_session_is_taken_exactly_once_however_many_polls_race(store: Arc<dyn Store>) {
    let login = challenge();
    let taken = inbox(&store, &[mo("1", "a", NOW)]).await;
    let done = record(complete("s"), NOW + 600);
    store
        .commit_outcomes(&[decided(taken[0].0, Some((login, done.clone())))])
        .await
        .unwrap();
    let polls: Vec<_> = (0..8)
        .map(|_| {
            let (store, done) = (store.clone(), done.clone());
            tokio::spawn(async move { store.take_session(&login, &done).await.unwrap() })
        })
        .collect();
    let mut winners = 0;
    for poll in polls {
        if let Some(won) = poll.await.unwrap() {
            assert_eq!(won, done);
            winners += 1;
        }
    }
    assert_eq!(winners, 1);
    assert_eq!(
        store.login(&login).await.unwrap().unwrap().state,
        LoginState::Consumed
    );
    assert_eq!(store.take_session(&login, &done).await.unwrap(), None);
}

async fn a_watching_poll_wakes_when_its_login_is_recorded(store: Arc<dyn Store>) {
    let (login, other) = (challenge(), challenge());
    let mut watch = store.watch_login(&login);
    let taken = inbox(&store, &[mo("1", "a", NOW), mo("1", "b", NOW)]).await;
    store
        .commit_outcomes(&[decided(
            taken[0].0,
            Some((other, record(complete("s"), NOW + 600))),
        )])
        .await
        .unwrap();
    assert!(
        futures::poll!(Box::pin(watch.changed())).is_pending(),
        "another login's change does not wake it"
    );
    store
        .commit_outcomes(&[decided(
            taken[1].0,
            Some((login, record(complete("t"), NOW + 600))),
        )])
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), watch.changed())
        .await
        .expect("woken by its login's change");
}

async fn parts_become_one_mo_once_all_came(store: Arc<dyn Store>) {
    let join = |parts: Vec<MoMessage>| {
        let mut whole = parts[0].clone();
        whole.user_data = parts.into_iter().flat_map(|p| p.user_data).collect();
        whole
    };
    let taken = inbox(
        &store,
        &[
            mo("1", "second", NOW),
            mo("1", "second, again", NOW + 1),
            mo("1", "first", NOW + 2),
        ],
    )
    .await;
    let at = |seq| PartKey {
        group: b"1/ref7",
        seq,
        total: 2,
    };
    let filed = store
        .file_part(taken[0].0, at(2), &taken[0].1, &join)
        .await
        .unwrap();
    assert_eq!(filed, Filed::Waiting);
    assert_eq!(store.depths().parts, 1);
    let filed = store
        .file_part(taken[1].0, at(2), &taken[1].1, &join)
        .await
        .unwrap();
    assert_eq!(filed, Filed::Duplicate);
    let Filed::Complete(whole) = store
        .file_part(taken[2].0, at(1), &taken[2].1, &join)
        .await
        .unwrap()
    else {
        panic!("the last part completes the message");
    };
    let left = store.oldest_mos(10).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].0, whole);
    assert_eq!(left[0].1.user_data, b"firstsecond");
    assert_eq!(store.depths().parts, 0);
}

async fn a_minted_login_expires_once_and_never_over_a_decided_state(store: Arc<dyn Store>) {
    let (quiet, answered) = (challenge(), challenge());
    let minted = MintedLogin {
        backend: "shop".into(),
        issued_at: NOW - 600,
        expires_at: NOW,
        keep_until: NOW + 3_600,
    };
    store.mint(&quiet, &minted).await.unwrap();
    store.mint(&answered, &minted).await.unwrap();
    assert_eq!(store.minted(&quiet).await.unwrap(), Some(minted.clone()));
    assert!(store.due_minted(NOW, 10).await.unwrap().is_empty());
    let mut due = store.due_minted(NOW + 1, 10).await.unwrap();
    due.sort_by_key(|(_, c)| c.to_string());
    let mut expected = vec![(NOW, quiet), (NOW, answered)];
    expected.sort_by_key(|(_, c)| c.to_string());
    assert_eq!(due, expected);

    let taken = inbox(&store, &[mo("1", "a", NOW)]).await;
    let done = record(complete("s"), NOW + 600);
    store
        .commit_outcomes(&[decided(taken[0].0, Some((answered, done.clone())))])
        .await
        .unwrap();
    let expired = record(LoginState::Expired, NOW + 3_600);
    assert!(
        store
            .record_expiry(NOW, &quiet, &expired, &event("shop", "q"))
            .await
            .unwrap()
    );
    assert!(
        !store
            .record_expiry(NOW, &answered, &expired, &event("shop", "a"))
            .await
            .unwrap()
    );
    assert_eq!(store.login(&answered).await.unwrap(), Some(done));
    assert_eq!(store.login(&quiet).await.unwrap(), Some(expired));
    assert!(store.due_minted(u64::MAX, 10).await.unwrap().is_empty());
    assert_eq!(
        store.depths().webhooks,
        1,
        "one event, for the login it recorded"
    );

    let later = challenge();
    store
        .mint(
            &later,
            &MintedLogin {
                expires_at: NOW + 10,
                ..minted
            },
        )
        .await
        .unwrap();
    store.settle_due(NOW + 10, &later).await.unwrap();
    assert!(store.due_minted(u64::MAX, 10).await.unwrap().is_empty());
    assert_eq!(store.sweep_minted(NOW + 3_601).await.unwrap(), 3);
    assert_eq!(store.minted(&later).await.unwrap(), None);
}

async fn replies_stay_queued_until_acknowledged(store: Arc<dyn Store>) {
    let mut queued = store.replies_queued();
    let taken = inbox(&store, &[mo("1", "a", NOW)]).await;
    store
        .commit_outcomes(&[Outcome::Decided {
            mo: taken[0].0,
            login: None,
            session: None,
            replies: vec![
                sms("main", "one"),
                sms("other", "two"),
                sms("main", "three"),
            ],
            event: None,
        }])
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), queued.changed())
        .await
        .expect("told that replies were queued")
        .unwrap();
    store.sync().await.unwrap();
    let main = store.pending_replies("main", &|_| false, 10).await.unwrap();
    let texts: Vec<_> = main.iter().map(|(_, m)| m.text.as_str()).collect();
    assert_eq!(texts, ["one", "three"]);
    let first = main[0].0;
    let skipping = store
        .pending_replies("main", &|id| id == first, 10)
        .await
        .unwrap();
    assert_eq!(skipping.len(), 1);
    assert_eq!(skipping[0].1.text, "three");

    store.ack_reply(first).await.unwrap();
    store.ack_reply(main[1].0).await.unwrap();
    assert!(
        store
            .pending_replies("main", &|_| false, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.depths().outbox, 1);
    let other = store
        .pending_replies("other", &|_| false, 10)
        .await
        .unwrap();
    store.ack_reply(other[0].0).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), store.outbox_drained())
        .await
        .expect("drained");
}

async fn replies_for_a_gone_smsc_are_counted_moved_or_dropped(store: Arc<dyn Store>) {
    let taken = inbox(&store, &[mo("1", "a", NOW)]).await;
    let mut elsewhere = sms("old", "elsewhere");
    elsewhere.from = "10690001".into();
    store
        .commit_outcomes(&[Outcome::Decided {
            mo: taken[0].0,
            login: None,
            session: None,
            replies: vec![
                sms("old", "one"),
                elsewhere,
                sms("main", "two"),
                sms("gone", "three"),
            ],
            event: None,
        }])
        .await
        .unwrap();
    store.sync().await.unwrap();
    let counts = store.queued_per_smsc().await.unwrap();
    let count = |name: &str| counts.get(name).copied().unwrap_or(0);
    assert_eq!((count("old"), count("main"), count("gone")), (2, 1, 1));

    // Only the reply sent from the short code another connection has moves to it.
    let moved = store
        .reroute_replies("old", &|m| {
            (m.from == "10690000").then(|| "main".to_owned())
        })
        .await
        .unwrap();
    assert_eq!(moved, 1);
    store.sync().await.unwrap();
    let main = store.pending_replies("main", &|_| false, 10).await.unwrap();
    let texts: Vec<_> = main.iter().map(|(_, m)| m.text.as_str()).collect();
    assert_eq!(texts, ["one", "two"]);
    assert_eq!(main[0].1.smsc, "main");
    let left = store.pending_replies("old", &|_| false, 10).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].1.text, "elsewhere");

    assert_eq!(store.drop_replies("gone").await.unwrap(), 1);
    assert_eq!(store.drop_replies("gone").await.unwrap(), 0);
    store.sync().await.unwrap();
    let counts = store.queued_per_smsc().await.unwrap();
    assert_eq!(counts.get("gone"), None);
    assert_eq!(counts.get("main"), Some(&2));
    assert_eq!(store.depths().outbox, 3);
}

async fn events_stay_queued_until_acknowledged(store: Arc<dyn Store>) {
    let mut queued = store.events_queued();
    let taken = inbox(&store, &[mo("1", "a", NOW), mo("1", "b", NOW)]).await;
    let outcomes: Vec<_> = taken
        .iter()
        .zip(["shop", "crm"])
        .map(|((id, _), backend)| Outcome::Decided {
            mo: *id,
            login: Some((challenge(), record(LoginState::Expired, NOW + 600))),
            session: None,
            replies: vec![],
            event: Some(event(backend, backend)),
        })
        .collect();
    store.commit_outcomes(&outcomes).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), queued.changed())
        .await
        .expect("told that events were queued")
        .unwrap();
    let all = store.pending_events(&|_, _| false, 10).await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].1, event("shop", "shop"));
    let not_shop = store
        .pending_events(&|_, e| e.backend == "shop", 10)
        .await
        .unwrap();
    assert_eq!(not_shop.len(), 1);
    assert_eq!(not_shop[0].1.backend, "crm");
    store.ack_event(all[0].0).await.unwrap();
    let left = store.pending_events(&|_, _| false, 10).await.unwrap();
    assert_eq!(left, [all[1].clone()]);
    assert_eq!(store.depths().webhooks, 1);
}

async fn a_receipt_settles_the_sms_it_reports_on(store: Arc<dyn Store>) {
    let sent = SentRecord {
        to: Msisdn::parse("+8613800138000").unwrap(),
        submitted_at: NOW,
        outcome: None,
    };
    store.record_sent("main", "AB12", &sent).await.unwrap();
    assert_eq!(
        store.sent_record("main", "ab12").await.unwrap(),
        Some(sent.clone()),
        "message ids compare without case"
    );
    assert_eq!(store.sent_record("other", "AB12").await.unwrap(), None);
    let settled = store
        .settle_sent("main", &["171".into(), "ab12".into()], "DELIVRD")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(settled.outcome.as_deref(), Some("DELIVRD"));
    assert_eq!(
        store
            .sent_record("main", "AB12")
            .await
            .unwrap()
            .unwrap()
            .outcome
            .as_deref(),
        Some("DELIVRD")
    );
    assert_eq!(
        store
            .settle_sent("main", &["unknown".into()], "DELIVRD")
            .await
            .unwrap(),
        None
    );
}

/// Where the battery's new accounts have their passwords texted.
fn route() -> SmsRoute {
    SmsRoute {
        smsc: "main".into(),
        from: "10690000".into(),
    }
}

/// A login of `msisdn`; the account it may create has its password pending.
fn new_login(request_id: u64, msisdn: &Msisdn) -> NewLogin<'_> {
    NewLogin {
        request_id,
        msisdn,
        new_account: NewAccount {
            password_to: Some(route()),
        },
        session: format!("session-{request_id}"),
        session_expires_at: NOW + 3_600,
        now: NOW,
    }
}

async fn a_number_gets_one_account_however_many_logins_race(store: Arc<dyn Store>) {
    let number = Msisdn::parse("+8613800138000").unwrap();
    let logins: Vec<_> = (10..18)
        .map(|id| {
            let (store, number) = (store.clone(), number.clone());
            tokio::spawn(async move { store.log_in(new_login(id, &number)).await.unwrap() })
        })
        .collect();
    let mut answers: Vec<AuthAnswer> = Vec::new();
    for login in logins {
        answers.push(login.await.unwrap());
    }
    assert_eq!(answers.iter().filter(|a| a.created).count(), 1);
    assert!(
        answers
            .iter()
            .all(|a| a.account_id == answers[0].account_id)
    );
    // The credentials follow once hashed: no answer carries any.
    assert!(answers.iter().all(|a| a.credentials.is_none()));
    assert_eq!(store.account_count().await.unwrap(), 1);
    let account = store.account(&number).await.unwrap().unwrap();
    assert_eq!(account.password_hash, None, "pending");
    let pending = store.pending_passwords(&|_| false, 10).await.unwrap();
    assert_eq!(
        pending,
        [PendingPassword {
            msisdn: number,
            account_id: account.id,
            to: route(),
            since: NOW,
        }],
        "one mark, for the one account"
    );
}

async fn an_answer_is_kept_for_a_retry_until_settled(store: Arc<dyn Store>) {
    let number = Msisdn::parse("+8613900139000").unwrap();
    assert_eq!(store.auth_answer(5).await.unwrap(), None);
    let answer = store.log_in(new_login(5, &number)).await.unwrap();
    assert_eq!(store.auth_answer(5).await.unwrap(), Some(answer));
    store.settle_answers(&[5]).await.unwrap();
    assert_eq!(store.auth_answer(5).await.unwrap(), None);
    assert!(store.account(&number).await.unwrap().is_some());
}

async fn sweeps_take_only_what_is_due(store: Arc<dyn Store>) {
    let (old, young) = (challenge(), challenge());
    let taken = inbox(
        &store,
        &[
            mo("1", "a", NOW),
            mo("1", "b", NOW),
            mo("1", "part", NOW - 500),
            mo("1", "bad", NOW - 100),
        ],
    )
    .await;
    store
        .commit_outcomes(&[
            decided(taken[0].0, Some((old, record(complete("s"), NOW + 10)))),
            decided(taken[1].0, Some((young, record(complete("t"), NOW + 20)))),
            Outcome::Rejected {
                mo: taken[3].0,
                rejected: RejectedMo {
                    mo: taken[3].1.clone(),
                    reason: "bad".into(),
                },
            },
        ])
        .await
        .unwrap();
    let join = |parts: Vec<MoMessage>| parts[0].clone();
    store
        .file_part(
            taken[2].0,
            PartKey {
                group: b"g",
                seq: 1,
                total: 2,
            },
            &taken[2].1,
            &join,
        )
        .await
        .unwrap();

    assert_eq!(store.sweep_logins(NOW + 15).await.unwrap(), 1);
    assert_eq!(store.login(&old).await.unwrap(), None);
    assert!(store.login(&young).await.unwrap().is_some());

    for (id, submitted_at) in [("old", NOW - 300), ("young", NOW - 100)] {
        let sent = SentRecord {
            to: Msisdn::parse("+8613800138000").unwrap(),
            submitted_at,
            outcome: None,
        };
        store.record_sent("main", id, &sent).await.unwrap();
    }
    let swept = store
        .sweep_leftovers(SweepDue {
            now: NOW,
            parts_before: NOW - 400,
            seen_before: NOW - 200,
            rejected_before: NOW - 200,
            sent_before: NOW - 200,
        })
        .await
        .unwrap();
    assert_eq!((swept.parts, swept.rejected, swept.sent), (1, 0, 1));
    assert_eq!(store.sent_record("main", "old").await.unwrap(), None);
    assert!(store.sent_record("main", "young").await.unwrap().is_some());
    assert_eq!(swept.seen, 1, "the digest of the MO received at NOW - 500");
    assert_eq!(store.depths().parts, 0);
    assert_eq!(store.rejected_mos().await.unwrap().len(), 1);
    assert_eq!(
        store
            .append_mos(&[mo("1", "part", NOW - 500)], 600)
            .await
            .unwrap(),
        0,
        "its digest is gone, so it is stored again"
    );
}

/// An account for `number` with one session from its SMS login; returns the account id.
async fn account_with_session(store: &Arc<dyn Store>, number: &Msisdn, request_id: u64) -> u64 {
    let answer = store.log_in(new_login(request_id, number)).await.unwrap();
    answer.account_id.parse().unwrap()
}

fn password_session(
    account_id: u64,
    number: &Msisdn,
    name: &str,
    expires_at: UnixSecs,
) -> NewSession {
    NewSession {
        account_id,
        msisdn: number.clone(),
        key: SessionKey::of(name),
        issued_at: NOW + 1,
        expires_at,
    }
}

async fn a_session_is_found_by_its_hash_until_revoked(store: Arc<dyn Store>) {
    let number = Msisdn::parse("+8613800138000").unwrap();
    let id = account_with_session(&store, &number, 1).await;
    let key = SessionKey::of("session-1");
    assert_eq!(
        store.session(&key).await.unwrap(),
        Some(SessionInfo {
            account_id: id,
            msisdn: Some(number.clone()),
            issued_at: Some(NOW),
            expires_at: NOW + 3_600,
        })
    );
    assert_eq!(
        store.session(&SessionKey::of("session-2")).await.unwrap(),
        None
    );
    store
        .add_session(password_session(id, &number, "by-password", NOW + 60))
        .await
        .unwrap();
    let by_password = store
        .session(&SessionKey::of("by-password"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (by_password.issued_at, by_password.expires_at),
        (Some(NOW + 1), NOW + 60)
    );
    assert!(store.revoke_session(&key).await.unwrap());
    assert!(!store.revoke_session(&key).await.unwrap(), "gone already");
    assert_eq!(store.session(&key).await.unwrap(), None);
    assert!(
        store
            .session(&SessionKey::of("by-password"))
            .await
            .unwrap()
            .is_some()
    );
}

async fn revoking_an_account_ends_all_its_sessions_and_no_other(store: Arc<dyn Store>) {
    let (alice, bob) = (
        Msisdn::parse("+8613800138000").unwrap(),
        Msisdn::parse("+8613900139000").unwrap(),
    );
    let a = account_with_session(&store, &alice, 1).await;
    let b = account_with_session(&store, &bob, 2).await;
    store.log_in(new_login(3, &alice)).await.unwrap();
    store
        .add_session(password_session(a, &alice, "alice-web", NOW + 60))
        .await
        .unwrap();
    assert_eq!(store.revoke_sessions(a).await.unwrap(), 3);
    for gone in ["session-1", "session-3", "alice-web"] {
        assert_eq!(
            store.session(&SessionKey::of(gone)).await.unwrap(),
            None,
            "{gone}"
        );
    }
    assert_eq!(
        store
            .session(&SessionKey::of("session-2"))
            .await
            .unwrap()
            .map(|s| s.account_id),
        Some(b)
    );
    assert_eq!(store.revoke_sessions(a).await.unwrap(), 0);
    assert!(
        store.account(&alice).await.unwrap().is_some(),
        "the account stays"
    );
}

async fn sessions_are_swept_once_expired(store: Arc<dyn Store>) {
    let number = Msisdn::parse("+8613800138000").unwrap();
    let id = account_with_session(&store, &number, 1).await;
    for (name, expires_at) in [("soon", NOW + 10), ("later", NOW + 20)] {
        store
            .add_session(password_session(id, &number, name, expires_at))
            .await
            .unwrap();
    }
    assert_eq!(
        store.sweep_sessions(NOW + 10).await.unwrap(),
        0,
        "not before its expiry"
    );
    assert_eq!(store.sweep_sessions(NOW + 11).await.unwrap(), 1);
    assert_eq!(store.session(&SessionKey::of("soon")).await.unwrap(), None);
    assert!(
        store
            .session(&SessionKey::of("later"))
            .await
            .unwrap()
            .is_some()
    );
    store
        .revoke_session(&SessionKey::of("later"))
        .await
        .unwrap();
    assert_eq!(
        store.sweep_sessions(NOW + 10_000).await.unwrap(),
        1,
        "only the SMS login's session was left"
    );
    assert_eq!(
        store.revoke_sessions(id).await.unwrap(),
        0,
        "nothing left to revoke"
    );
}

/// The embedded auth core leaves a returning login's session to the pipeline's commit: it
/// is stored, indexed by account and by expiry, exactly when the login state that hands it
/// out is recorded.
async fn a_session_left_to_the_commit_is_stored_only_with_its_login(store: Arc<dyn Store>) {
    let number = Msisdn::parse("+8613800138000").unwrap();
    let id = account_with_session(&store, &number, 1).await;
    let taken = inbox(
        &store,
        &[mo("1", "a", NOW), mo("1", "b", NOW), mo("1", "c", NOW)],
    )
    .await;
    let (kept, lost) = (challenge(), challenge());
    store
        .commit_outcomes(&[decided(
            taken[0].0,
            Some((lost, record(LoginState::Expired, NOW + 600))),
        )])
        .await
        .unwrap();
    let left = |mo: u64, challenge, name: &str| Outcome::Decided {
        mo,
        login: Some((challenge, record(complete(name), NOW + 600))),
        session: Some(password_session(id, &number, name, NOW + 10)),
        replies: vec![],
        event: Some(event("shop", name)),
    };
    store
        .commit_outcomes(&[
            left(taken[1].0, kept, "handed-out"),
            // An expired login stays expired: its session is handed to nobody, and no event
            // tells of a state that was not recorded.
            left(taken[2].0, lost, "never-handed-out"),
        ])
        .await
        .unwrap();
    store.sync().await.unwrap();
    let events = store.pending_events(&|_, _| false, 10).await.unwrap();
    assert_eq!(
        events
            .iter()
            .map(|(_, e)| e.event_id.as_str())
            .collect::<Vec<_>>(),
        ["handed-out"]
    );
    assert_eq!(store.depths().webhooks, 1);
    // An outcome whose MO already left the inbox (committed before, or its number erased)
    // leaves nothing.
    let late = challenge();
    store
        .commit_outcomes(&[left(taken[1].0, late, "late")])
        .await
        .unwrap();
    assert_eq!(store.login(&late).await.unwrap(), None);
    assert_eq!(store.session(&SessionKey::of("late")).await.unwrap(), None);
    assert_eq!(store.depths().webhooks, 1);
    assert_eq!(
        store.login(&lost).await.unwrap().unwrap().state,
        LoginState::Expired
    );
    assert_eq!(
        store
            .session(&SessionKey::of("never-handed-out"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.session(&SessionKey::of("handed-out")).await.unwrap(),
        Some(SessionInfo {
            account_id: id,
            msisdn: Some(number.clone()),
            issued_at: Some(NOW + 1),
            expires_at: NOW + 10,
        })
    );
    // Indexed by expiry: the sweep finds it; and by account: revocation finds the other.
    assert_eq!(store.sweep_sessions(NOW + 11).await.unwrap(), 1);
    assert_eq!(
        store.session(&SessionKey::of("handed-out")).await.unwrap(),
        None
    );
    store
        .commit_outcomes(&[Outcome::Decided {
            mo: inbox(&store, &[mo("1", "d", NOW)]).await[0].0,
            login: Some((challenge(), record(complete("again"), NOW + 600))),
            session: Some(password_session(id, &number, "again", NOW + 60)),
            replies: vec![],
            event: None,
        }])
        .await
        .unwrap();
    assert_eq!(
        store.revoke_sessions(id).await.unwrap(),
        2,
        "the SMS login's and this"
    );
    assert_eq!(store.session(&SessionKey::of("again")).await.unwrap(), None);
}

async fn a_password_is_replaced_only_for_an_existing_account(store: Arc<dyn Store>) {
    let number = Msisdn::parse("+8613800138000").unwrap();
    assert!(
        !store
            .set_password(&number, "$argon2id$new".into())
            .await
            .unwrap()
    );
    assert!(
        store.account(&number).await.unwrap().is_none(),
        "none created"
    );
    let id = account_with_session(&store, &number, 1).await;
    assert!(
        store
            .set_password(&number, "$argon2id$new".into())
            .await
            .unwrap()
    );
    let account = store.account(&number).await.unwrap().unwrap();
    assert_eq!(
        (account.id, account.password_hash.as_deref()),
        (id, Some("$argon2id$new"))
    );
}

async fn an_opt_out_holds_until_lifted(store: Arc<dyn Store>) {
    let (alice, bob) = (
        Msisdn::parse("+8613800138000").unwrap(),
        Msisdn::parse("+8613900139000").unwrap(),
    );
    assert!(!store.opted_out(&alice).await.unwrap());
    assert!(store.set_opt_out(&alice, true, NOW).await.unwrap());
    assert!(
        !store.set_opt_out(&alice, true, NOW + 1).await.unwrap(),
        "already"
    );
    assert!(store.opted_out(&alice).await.unwrap());
    assert!(!store.opted_out(&bob).await.unwrap());
    assert!(
        !store.set_opt_out(&bob, false, NOW).await.unwrap(),
        "nothing to lift"
    );
    assert!(store.set_opt_out(&alice, false, NOW + 2).await.unwrap());
    assert!(!store.opted_out(&alice).await.unwrap());
}

async fn sms_budget_counts_add_up_per_window_and_start_again_in_the_next(store: Arc<dyn Store>) {
    let counts = |hour, day| SmsCounts { hour, day };
    let uncapped = counts(u64::MAX, u64::MAX);
    let at = Windows { hour: 100, day: 4 };
    assert_eq!(
        store.count_sms(at, 0, uncapped).await.unwrap(),
        counts(0, 0)
    );
    assert_eq!(
        store.count_sms(at, 3, uncapped).await.unwrap(),
        counts(3, 3)
    );
    // Concurrent spenders (other nodes) are all counted, and none takes the count past its
    // cap: 3 + 9 × 2 = 21 at most.
    let cap = counts(21, 100);
    let spent = futures::future::join_all((0..10).map(|_| store.count_sms(at, 2, cap))).await;
    assert!(spent.iter().all(Result::is_ok), "{spent:?}");
    let made = spent.iter().flatten().filter(|c| c.hour <= 21).count() as u64;
    assert!(made >= 1, "{spent:?}");
    assert_eq!(
        store.count_sms(at, 0, uncapped).await.unwrap().hour,
        3 + 2 * made
    );
    // One at a time they fill the cap to the last SMS, and then are refused.
    let mut tries = 0;
    while store.count_sms(at, 2, cap).await.unwrap().hour <= 21 {
        tries += 1;
        assert!(tries <= 10, "the cap never refused");
    }
    assert_eq!(
        store.count_sms(at, 0, uncapped).await.unwrap(),
        counts(21, 21),
        "a refused addition is not counted"
    );
    // The day's cap refuses as well; the answer is what the counts would have been.
    assert_eq!(
        store.count_sms(at, 1, counts(100, 21)).await.unwrap(),
        counts(22, 22)
    );
    assert_eq!(
        store.count_sms(at, 0, uncapped).await.unwrap(),
        counts(21, 21)
    );
    // The next hour starts from 0, the day goes on.
    let next = Windows { hour: 101, day: 4 };
    assert_eq!(
        store.count_sms(next, 1, uncapped).await.unwrap(),
        counts(1, 22)
    );
    // A node whose clock lags adds to the current windows rather than restarting them.
    assert_eq!(
        store.count_sms(at, 1, uncapped).await.unwrap(),
        counts(2, 23)
    );
    let tomorrow = Windows { hour: 124, day: 5 };
    assert_eq!(
        store.count_sms(tomorrow, 4, uncapped).await.unwrap(),
        counts(4, 4)
    );
    // Adding nothing reads: the counts as they are, a window since ended as 0.
    assert_eq!(
        store.count_sms(tomorrow, 0, uncapped).await.unwrap(),
        counts(4, 4)
    );
    let later = Windows { hour: 125, day: 5 };
    assert_eq!(
        store.count_sms(later, 0, uncapped).await.unwrap(),
        counts(0, 4)
    );
    assert_eq!(
        store.count_sms(tomorrow, 1, uncapped).await.unwrap(),
        counts(5, 5)
    );
}

async fn erasing_a_number_leaves_no_record_of_it_and_spares_others(store: Arc<dyn Store>) {
    let (alice, bob) = (
        Msisdn::parse("+8613800138000").unwrap(),
        Msisdn::parse("+8613900139000").unwrap(),
    );
    let a = account_with_session(&store, &alice, 1).await;
    let b = account_with_session(&store, &bob, 2).await;
    store
        .add_session(password_session(a, &alice, "alice-web", NOW + 60))
        .await
        .unwrap();
    store.set_opt_out(&alice, true, NOW).await.unwrap();
    store.set_opt_out(&bob, true, NOW).await.unwrap();
    // In the inbox: one from each (ALICE's written nationally, as some SMSCs do); the two
    // taken below become a rejected MO of ALICE's and a decided login of each.
    let taken = inbox(
        &store,
        &[
            mo("+8613800138000", "rejected", NOW),
            mo("+8613900139000", "bob's login", NOW),
            mo("13800138000", "waiting", NOW),
            mo("+8613900139000", "bob waiting", NOW),
            mo("+8613800138000", "part", NOW),
        ],
    )
    .await;
    let joined_never = |_: Vec<MoMessage>| -> MoMessage { unreachable!("one part of two") };
    let at = PartKey {
        group: b"alice/ref1",
        seq: 1,
        total: 2,
    };
    let filed = store
        .file_part(taken[4].0, at, &taken[4].1, &joined_never)
        .await
        .unwrap();
    assert_eq!(filed, Filed::Waiting);
    let bob_login = LoginRecord {
        msisdn: Some(bob.clone()),
        ..record(complete("b"), NOW + 600)
    };
    let (alice_challenge, bob_challenge) = (challenge(), challenge());
    let mut to_bob = sms("main", "for bob");
    to_bob.to = bob.clone();
    store
        .commit_outcomes(&[
            Outcome::Rejected {
                mo: taken[0].0,
                rejected: RejectedMo {
                    mo: taken[0].1.clone(),
                    reason: "bad".into(),
                },
            },
            Outcome::Decided {
                mo: taken[1].0,
                login: Some((bob_challenge, bob_login)),
                session: None,
                replies: vec![sms("main", "for alice"), to_bob],
                event: None,
            },
        ])
        .await
        .unwrap();
    store
        .mark_waiting(&alice_challenge, &record(LoginState::Waiting, NOW + 600))
        .await
        .unwrap();
    store
        .record_sent(
            "main",
            "m1",
            &SentRecord {
                to: alice.clone(),
                submitted_at: NOW,
                outcome: None,
            },
        )
        .await
        .unwrap();

    let before = store.depths();
    assert_eq!((before.inbox, before.parts, before.outbox), (2, 1, 2));
    assert!(store.erase_number(&alice).await.unwrap() >= 10);
    store.sync().await.unwrap();
    // The gauges behind `/metrics` and `/status` follow the erasure.
    let after = store.depths();
    assert_eq!((after.inbox, after.parts, after.outbox), (1, 0, 1));

    assert!(store.account(&alice).await.unwrap().is_none());
    for gone in ["session-1", "alice-web"] {
        assert_eq!(store.session(&SessionKey::of(gone)).await.unwrap(), None);
    }
    assert_eq!(store.auth_answer(1).await.unwrap(), None);
    assert_eq!(store.login(&alice_challenge).await.unwrap(), None);
    assert!(!store.opted_out(&alice).await.unwrap());
    assert_eq!(store.sent_record("main", "m1").await.unwrap(), None);
    assert!(store.rejected_mos().await.unwrap().is_empty());
    let left: Vec<String> = store
        .oldest_mos(100)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, mo)| mo.source_addr)
        .collect();
    assert_eq!(left, ["+8613900139000"]);
    let queued = store
        .pending_replies("main", &|_| false, 100)
        .await
        .unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].1.to, bob);

    // BOB keeps everything.
    assert_eq!(store.account(&bob).await.unwrap().map(|x| x.id), Some(b));
    assert!(
        store
            .session(&SessionKey::of("session-2"))
            .await
            .unwrap()
            .is_some()
    );
    assert!(store.auth_answer(2).await.unwrap().is_some());
    assert!(store.login(&bob_challenge).await.unwrap().is_some());
    assert!(store.opted_out(&bob).await.unwrap());
    assert_eq!(
        marked(&store).await,
        [bob],
        "ALICE's password is no longer pending"
    );
}

/// The numbers whose password is pending, oldest first.
async fn marked(store: &Arc<dyn Store>) -> Vec<Msisdn> {
    let marks = store.pending_passwords(&|_| false, 10).await.unwrap();
    marks.into_iter().map(|p| p.msisdn).collect()
}

/// The one pending password of `number`'s new account, and the SMS that would carry it.
async fn pending_of(store: &Arc<dyn Store>, number: &Msisdn) -> (PendingPassword, Outbound) {
    let mut found = store.pending_passwords(&|_| false, 10).await.unwrap();
    found.retain(|p| &p.msisdn == number);
    assert_eq!(found.len(), 1, "{found:?}");
    let mut sms = sms("main", "password: abc");
    sms.to = number.clone();
    (found.remove(0), sms)
}

async fn a_new_accounts_hash_and_sms_are_stored_together_once(store: Arc<dyn Store>) {
    let (alice, bob) = (
        Msisdn::parse("+8613800138000").unwrap(),
        Msisdn::parse("+8613900139000").unwrap(),
    );
    account_with_session(&store, &alice, 1).await;
    account_with_session(&store, &bob, 2).await;
    assert_eq!(marked(&store).await, [alice.clone(), bob.clone()]);
    let skipping = store.pending_passwords(&|m| m == &alice, 10).await.unwrap();
    assert_eq!(skipping.len(), 1);
    assert_eq!(skipping[0].msisdn, bob);
    assert_eq!(
        store.pending_passwords(&|_| false, 1).await.unwrap().len(),
        1
    );

    let mut queued = store.replies_queued();
    let (pending, sms) = pending_of(&store, &alice).await;
    assert!(
        store
            .store_password(&pending, Some(("$argon2id$alice", &sms)))
            .await
            .unwrap()
    );
    tokio::time::timeout(Duration::from_secs(10), queued.changed())
        .await
        .expect("told that a reply was queued")
        .unwrap();
    store.sync().await.unwrap();
    let account = store.account(&alice).await.unwrap().unwrap();
    assert_eq!(account.password_hash.as_deref(), Some("$argon2id$alice"));
    let outbox = store.pending_replies("main", &|_| false, 10).await.unwrap();
    assert_eq!(outbox.len(), 1);
    assert_eq!(outbox[0].1, sms);
    assert_eq!(store.depths().outbox, 1);

    // The same mark again (a second node, a retry): no second hash, no second SMS.
    let mut other = sms.clone();
    other.text = "password: xyz".into();
    assert!(
        !store
            .store_password(&pending, Some(("$argon2id$again", &other)))
            .await
            .unwrap()
    );
    let account = store.account(&alice).await.unwrap().unwrap();
    assert_eq!(account.password_hash.as_deref(), Some("$argon2id$alice"));
    assert_eq!(
        store
            .pending_replies("main", &|_| false, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(marked(&store).await, [bob]);
}

async fn a_password_set_meanwhile_is_neither_overwritten_nor_sent(store: Arc<dyn Store>) {
    let number = Msisdn::parse("+8613800138000").unwrap();
    account_with_session(&store, &number, 1).await;
    let (pending, sms) = pending_of(&store, &number).await;
    // PASSWORD texted while the registrar was hashing.
    assert!(
        store
            .set_password(&number, "$argon2id$reset".into())
            .await
            .unwrap()
    );
    assert!(
        !store
            .store_password(&pending, Some(("$argon2id$late", &sms)))
            .await
            .unwrap()
    );
    let account = store.account(&number).await.unwrap().unwrap();
    assert_eq!(account.password_hash.as_deref(), Some("$argon2id$reset"));
    assert!(
        store
            .pending_replies("main", &|_| false, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(marked(&store).await.is_empty());
}

async fn a_mark_lifted_without_a_password_leaves_the_account_without_one(store: Arc<dyn Store>) {
    let number = Msisdn::parse("+8613800138000").unwrap();
    account_with_session(&store, &number, 1).await;
    let (pending, _) = pending_of(&store, &number).await;
    assert!(!store.store_password(&pending, None).await.unwrap());
    assert!(marked(&store).await.is_empty());
    assert_eq!(
        store.account(&number).await.unwrap().unwrap().password_hash,
        None
    );
    // A number whose password is not to be texted is never marked.
    let quiet = Msisdn::parse("+8613900139000").unwrap();
    let mut login = new_login(2, &quiet);
    login.new_account = NewAccount { password_to: None };
    assert!(store.log_in(login).await.unwrap().created);
    assert!(marked(&store).await.is_empty());
    assert_eq!(store.depths().outbox, 0);
}
