//! SMPP the way carriers speak it, inbound: codings, concatenated MOs, receipts, redelivery.
//! Every case crosses real TCP from the simulator to the daemon.

use crate::common;

use common::{ALICE, BOB, Harness, PATIENCE};
use moauth::core::mo::Concat;
use moauth::core::token::{Token, Verifier};
use moauth::daemon::Options;
use moauth::sim::{Deliver, ReceiptStyle};
use moauth::smpp::text;

fn deliver(from: &str, data_coding: u8, short_message: Vec<u8>) -> Deliver {
    Deliver {
        from: from.into(),
        data_coding,
        short_message,
        ..Deliver::default()
    }
}

fn ucs2(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

/// A login SMS with the characters each coding is there for.
fn body_in(data_coding: u8, token: &Token) -> Vec<u8> {
    match data_coding {
        0 => {
            let text = format!("LOGIN {token} €[]{{}}~^\\|");
            text::encode_sms(&text, 0).unwrap().remove(0).short_message
        }
        1 => format!("login {token} sent from my phone").into_bytes(),
        3 => format!("LOGIN {token} café")
            .chars()
            .map(|c| c as u8)
            .collect(),
        _ => ucs2(&format!("登录 {token} 😀 发自我的手机")),
    }
}

async fn logs_in(h: &Harness, verifier: &Verifier, token: &Token) {
    let (_, answer) = h.poll(verifier, token, 10_000).await;
    assert_eq!(answer["state"], "complete", "{answer}");
}

#[tokio::test]
async fn every_coding_carries_a_token() {
    let h = Harness::start().await;
    for data_coding in [0, 1, 3, 8] {
        let (verifier, token) = h.app_token(0);
        let acked = h
            .sim
            .deliver(&[deliver(ALICE, data_coding, body_in(data_coding, &token))])
            .await
            .unwrap();
        assert_eq!(acked.statuses, [0], "data_coding {data_coding}");
        logs_in(&h, &verifier, &token).await;
    }
    let gsm = text::encode_sms("€[]{}~^\\|", 0).unwrap().remove(0);
    assert_eq!(gsm.data_coding, 0, "extension characters stay GSM 7-bit");
    assert_eq!(gsm.short_message.len(), 18, "each is an escape pair");
}

#[tokio::test]
async fn unknown_coding_is_acknowledged_not_processed() {
    let h = Harness::start().await;
    let acked = h
        .sim
        .deliver(&[deliver(ALICE, 4, vec![0xde, 0xad])])
        .await
        .unwrap();
    assert_eq!(acked.statuses, [0]);
    let (verifier, token) = h.app_token(0);
    h.phone_sends(ALICE, &format!("LOGIN {token}")).await;
    logs_in(&h, &verifier, &token).await;
    h.settled_submits(1).await;
    let store = &h.daemon().store;
    assert!(store.inbox.is_empty());
    let rejected = store.rejected.all().unwrap();
    assert_eq!(rejected.len(), 1, "kept with its reason, not dropped");
    assert_eq!(rejected[0].mo.user_data, [0xde, 0xad]);
    assert!(rejected[0].reason.contains('4'), "{}", rejected[0].reason);
}

#[tokio::test]
async fn three_part_mo_in_shuffled_order_with_a_duplicate_across_a_restart() {
    let mut h = Harness::start_with(Options { hold_inbox: true }, |_| {}).await;
    let (verifier, token) = h.app_token(0);
    let long = format!("登录 {token} {}", "这是一条很长的短信，".repeat(12));
    let parts: Vec<Deliver> = text::encode_sms(&long, 0x5a)
        .unwrap()
        .into_iter()
        .map(|s| Deliver {
            esm_class: 0x40,
            ..deliver(ALICE, s.data_coding, s.short_message)
        })
        .collect();
    assert_eq!(parts.len(), 3);
    let acked = h
        .sim
        .deliver(&[parts[2].clone(), parts[0].clone(), parts[2].clone()])
        .await
        .unwrap();
    assert_eq!(acked.statuses, [0, 0, 0]);

    h.restart(Options::default()).await;
    assert_eq!(h.poll(&verifier, &token, 0).await.1["state"], "pending");
    h.sim.deliver(&[parts[1].clone()]).await.unwrap();
    logs_in(&h, &verifier, &token).await;
    h.settled_submits(1).await;
    assert!(h.daemon().store.parts.is_empty() && h.daemon().store.inbox.is_empty());
}

#[tokio::test]
async fn sar_parts_from_two_phones_with_one_reference_do_not_mix() {
    let h = Harness::start().await;
    let (va, ta) = h.app_token(0);
    let (vb, tb) = h.app_token(0);
    let sar = |seq| {
        Some(Concat {
            reference: 7,
            total: 2,
            seq,
        })
    };
    let text_a = format!("LOGIN {ta}");
    let text_b = format!("LOGIN {tb}");
    let (a1, a2) = text_a.split_at(12);
    let (b1, b2) = text_b.split_at(20);
    let part = |from: &str, text: &str, seq| Deliver {
        sar: sar(seq),
        ..deliver(from, 1, text.as_bytes().to_vec())
    };
    h.sim
        .deliver(&[
            part(ALICE, a2, 2),
            part(BOB, b1, 1),
            part(ALICE, a1, 1),
            part(BOB, b2, 2),
        ])
        .await
        .unwrap();
    logs_in(&h, &va, &ta).await;
    logs_in(&h, &vb, &tb).await;
}

#[tokio::test]
async fn redelivered_mo_is_acknowledged_and_processed_once() {
    let h = Harness::start().await;
    let (verifier, token) = h.app_token(0);
    let mo = deliver(ALICE, 1, format!("LOGIN {token}").into_bytes());
    let acked = h.sim.deliver(&[mo.clone(), mo]).await.unwrap();
    assert_eq!(acked.statuses, [0, 0]);
    logs_in(&h, &verifier, &token).await;
    let sms = h.settled_submits(1).await;
    assert!(sms[0].text.contains("password"));
    assert_eq!(h.daemon().store.accounts.count(), 1);
}

#[tokio::test]
async fn receipts_match_their_message_in_hex_and_in_decimal() {
    for style in [ReceiptStyle::Hex, ReceiptStyle::Decimal] {
        let h = Harness::start().await;
        h.sim.send_receipts(Some(style));
        let (verifier, token) = h.app_token(0);
        h.phone_sends(ALICE, &format!("LOGIN {token}")).await;
        logs_in(&h, &verifier, &token).await;
        let sms = h.settled_submits(1).await;
        assert_eq!(
            h.sim.wait_receipts_answered(1, PATIENCE).await,
            1,
            "{style:?}"
        );
        let sent = h
            .daemon()
            .store
            .sent
            .get("sim", &sms[0].message_id)
            .unwrap()
            .unwrap();
        assert_eq!(sent.outcome.as_deref(), Some("DELIVRD"), "{style:?}");
        assert_eq!(sent.to.as_str(), ALICE);
    }
}
