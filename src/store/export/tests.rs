//! The export format held to protocol/store-export.md, and a sled store through it and back.

use super::*;
use crate::core::auth::Credentials;
use crate::core::login::LoginState;
use crate::core::mo::Concat;
use crate::core::outbound::SmsRoute;
use crate::core::store::{AccountStore, LoginReads, NewAccount, NewLogin, OptOutStore};
use crate::store::sled::SledStore;

fn number() -> Msisdn {
    Msisdn::parse("+8613800138000").unwrap()
}

fn mo() -> MoMessage {
    MoMessage {
        smsc: "sim".into(),
        source_addr: "8613800138000".into(),
        source_ton: 1,
        destination_addr: "10690000".into(),
        esm_class: 0x40,
        data_coding: 0,
        user_data: vec![5, 0, 3, 7, 2, 1, b'L'],
        sar: Some(Concat {
            reference: 7,
            total: 2,
            seq: 1,
        }),
        received_at: 1_800_000_000,
    }
}

/// One record of every kind.
fn every_kind() -> Vec<Item> {
    let challenge = "0123456789ABCDEFGHJK".to_owned();
    vec![
        Item::Account {
            msisdn: number(),
            account: Account {
                id: 7,
                password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
                created_at: 1_800_000_000,
            },
        },
        Item::PasswordPending {
            account_id: 7,
            msisdn: number(),
            smsc: "sim".into(),
            from: "10690000".into(),
            since: 1_800_000_000,
        },
        Item::Session {
            hash: "ab".repeat(32),
            account_id: 7,
            expires_at: 1_802_592_000,
            issued_at: Some(1_800_000_000),
            msisdn: Some(number()),
        },
        Item::AuthAnswer {
            request_id: 12,
            answer: AuthAnswer {
                account_id: "7".into(),
                created: true,
                session: "s".repeat(43),
                credentials: Some(Credentials {
                    login: "+8613800138000".into(),
                    password: "pw".into(),
                }),
            },
        },
        Item::Login {
            challenge: challenge.clone(),
            record: LoginRecord {
                state: LoginState::Complete {
                    session: "s".repeat(43),
                    account_id: "7".into(),
                    created: true,
                },
                msisdn: Some(number()),
                issued_at: 1_800_000_000,
                decided_at: 1_800_000_001,
                keep_until: 1_800_003_600,
            },
        },
        Item::Minted {
            challenge,
            login: MintedLogin {
                backend: "shop".into(),
                issued_at: 1_800_000_000,
                expires_at: 1_800_000_600,
                keep_until: 1_800_004_200,
            },
            due: true,
        },
        Item::Inbox { id: 12, mo: mo() },
        Item::Seen {
            digest: "cd".repeat(16),
            seen_at: 1_800_000_000,
        },
        Item::Part {
            group: "73696d0002".into(),
            seq: 1,
            total: 2,
            mo: mo(),
        },
        Item::Rejected {
            id: 11,
            rejected: RejectedMo {
                mo: mo(),
                reason: "bad UDH".into(),
            },
        },
        Item::Outbox {
            id: 13,
            reply: Outbound {
                smsc: "sim".into(),
                from: "10690000".into(),
                to: number(),
                text: "password pw".into(),
                created_at: 1_800_000_001,
            },
        },
        Item::Sent {
            smsc: "sim".into(),
            message_id: "ab12".into(),
            record: SentRecord {
                to: number(),
                submitted_at: 1_800_000_002,
                outcome: Some("DELIVRD".into()),
            },
        },
        Item::Webhook {
            id: 14,
            event: QueuedEvent {
                backend: "shop".into(),
                event_id: "e1".into(),
                body: "{}".into(),
            },
        },
        Item::OptOut {
            msisdn: number(),
            since: 1_800_000_000,
        },
        Item::SmsBudget {
            period: "hour".into(),
            window: 500_000,
            count: 3,
        },
    ]
}

fn write(items: &[Item]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut writer = Writer::new(&mut out, "sled", 1_800_000_100).unwrap();
    for item in items {
        writer.put(item).unwrap();
    }
    writer.finish().unwrap();
    out
}

fn read_all(bytes: &[u8]) -> Result<Vec<(u64, Item)>, MoveError> {
    let mut reader = Reader::new(bytes)?;
    let mut items = Vec::new();
    while let Some(item) = reader.next_item()? {
        items.push(item);
    }
    Ok(items)
}

/// What each line looks like; a change here is a new format version.
#[test]
fn the_format_is_pinned() {
    let text = String::from_utf8(write(&every_kind())).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        format!(
            r#"{{"kind":"moauth-store-export","format":1,"moauth":"{}","backend":"sled","exported_at":1800000100}}"#,
            env!("CARGO_PKG_VERSION")
        )
    );
    let mo = r#"{"smsc":"sim","source_addr":"8613800138000","source_ton":1,"destination_addr":"10690000","esm_class":64,"data_coding":0,"user_data":[5,0,3,7,2,1,76],"sar":{"reference":7,"total":2,"seq":1},"received_at":1800000000}"#;
    let expected = [
        r#"{"kind":"account","msisdn":"+8613800138000","account":{"id":7,"password_hash":"$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA","created_at":1800000000}}"#.to_owned(),
        r#"{"kind":"password_pending","account_id":7,"msisdn":"+8613800138000","smsc":"sim","from":"10690000","since":1800000000}"#.to_owned(),
        format!(r#"{{"kind":"session","hash":"{}","account_id":7,"expires_at":1802592000,"issued_at":1800000000,"msisdn":"+8613800138000"}}"#, "ab".repeat(32)),
        format!(r#"{{"kind":"auth_answer","request_id":12,"answer":{{"account_id":"7","created":true,"session":"{s}","credentials":{{"login":"+8613800138000","password":"pw"}}}}}}"#, s = "s".repeat(43)),
        format!(r#"{{"kind":"login","challenge":"0123456789ABCDEFGHJK","record":{{"state":{{"state":"complete","session":"{s}","account_id":"7","created":true}},"msisdn":"+8613800138000","issued_at":1800000000,"decided_at":1800000001,"keep_until":1800003600}}}}"#, s = "s".repeat(43)),
        r#"{"kind":"minted","challenge":"0123456789ABCDEFGHJK","login":{"backend":"shop","issued_at":1800000000,"expires_at":1800000600,"keep_until":1800004200},"due":true}"#.to_owned(),
        format!(r#"{{"kind":"inbox","id":12,"mo":{mo}}}"#),
        format!(r#"{{"kind":"seen","digest":"{}","seen_at":1800000000}}"#, "cd".repeat(16)),
        format!(r#"{{"kind":"part","group":"73696d0002","seq":1,"total":2,"mo":{mo}}}"#),
        format!(r#"{{"kind":"rejected","id":11,"rejected":{{"mo":{mo},"reason":"bad UDH"}}}}"#),
        r#"{"kind":"outbox","id":13,"reply":{"smsc":"sim","from":"10690000","to":"+8613800138000","text":"password pw","created_at":1800000001}}"#.to_owned(),
        r#"{"kind":"sent","smsc":"sim","message_id":"ab12","record":{"to":"+8613800138000","submitted_at":1800000002,"outcome":"DELIVRD"}}"#.to_owned(),
        r#"{"kind":"webhook","id":14,"event":{"backend":"shop","event_id":"e1","body":"{}"}}"#.to_owned(),
        r#"{"kind":"opt_out","msisdn":"+8613800138000","since":1800000000}"#.to_owned(),
        r#"{"kind":"sms_budget","period":"hour","window":500000,"count":3}"#.to_owned(),
        r#"{"kind":"end","records":15}"#.to_owned(),
    ];
    assert_eq!(
        lines[1..],
        expected.iter().map(String::as_str).collect::<Vec<_>>()[..]
    );
    let read = read_all(text.as_bytes()).unwrap();
    assert_eq!(read.len(), 15);
    assert_eq!(read[0].0, 2, "records are numbered by their line");
    assert_eq!(read[14].1.kind(), "sms_budget");
}

#[test]
fn a_bad_file_is_refused_with_its_line() {
    let good = String::from_utf8(write(&every_kind())).unwrap();
    let error = |text: &str| read_all(text.as_bytes()).unwrap_err().to_string();

    let later = good.replacen("\"format\":1", "\"format\":2", 1);
    assert!(
        error(&later).contains("export format 2"),
        "{}",
        error(&later)
    );
    assert!(error("hello\n").starts_with("line 1: not a moauth store export"));

    // Line 4 (the third record) broken.
    let mut lines: Vec<&str> = good.lines().collect();
    lines[3] = r#"{"kind":"auth_answer","request_id":"twelve"}"#;
    let broken = lines.join("\n") + "\n";
    assert!(error(&broken).starts_with("line 4: "), "{}", error(&broken));
    lines[3] = r#"{"kind":"tea","cups":2}"#;
    let unknown = lines.join("\n") + "\n";
    assert!(
        error(&unknown).starts_with("line 4: unknown variant `tea`"),
        "{}",
        error(&unknown)
    );

    // Cut short: no trailer, or half a line.
    let cut: String = good.lines().take(6).map(|l| format!("{l}\n")).collect();
    assert!(
        error(&cut).contains("without its closing `end` record"),
        "{}",
        error(&cut)
    );
    let half = &good[..good.len() - 5];
    assert!(error(half).contains("cut short"), "{}", error(half));

    // A trailer that does not count what came before (a line dropped in between).
    let dropped: Vec<&str> = good
        .lines()
        .enumerate()
        .filter(|(i, _)| *i != 2)
        .map(|(_, l)| l)
        .collect();
    let dropped = dropped.join("\n") + "\n";
    assert!(
        error(&dropped).contains("the trailer counts 15 records, the file holds 14"),
        "{}",
        error(&dropped)
    );
}

/// What a sled store holds, as lines of its export.
fn export_lines(store: &SledStore) -> Vec<String> {
    let mut lines = Vec::new();
    store
        .export(&mut |item| {
            lines.push(serde_json::to_string(item).unwrap());
            Ok(())
        })
        .unwrap();
    lines
}

#[tokio::test]
async fn a_sled_store_goes_through_its_export_and_back_whole() {
    let source = SledStore::temporary().unwrap();
    let mut items = every_kind();
    // The items carry ids from an imaginary store: put them in, then use the store.
    let target = SledStore::temporary().unwrap();
    let mut bytes = write(&items);
    let imported = import(
        Reader::new(&bytes[..]).unwrap(),
        source.clone().import_target(),
        false,
    )
    .await
    .unwrap();
    assert_eq!(imported.records, 15);
    let first = export_lines(&source);
    assert_eq!(first.len(), 15);

    // New records after the import get ids past every imported one.
    let answer = source
        .log_in(NewLogin {
            request_id: 99,
            msisdn: &Msisdn::parse("+8613900139000").unwrap(),
            if_new: Some(NewAccount {
                password_to: Some(SmsRoute {
                    smsc: "sim".into(),
                    from: "10690000".into(),
                }),
            }),
            session: "t".repeat(43),
            session_expires_at: 1_802_592_000,
            now: 1_800_000_050,
        })
        .await
        .unwrap();
    let new_id: u64 = answer.account_id.parse().unwrap();
    assert!(new_id > 14, "account id {new_id} reuses an imported id");
    source.set_opt_out(&number(), false, 1).await.unwrap();
    assert!(!source.opted_out(&number()).await.unwrap());

    // Through a file into another store: the same records come out.
    let mut file = Vec::new();
    let mut writer = Writer::new(&mut file, "sled", 1).unwrap();
    source.export(&mut |item| writer.put(item)).unwrap();
    writer.finish().unwrap();
    import(
        Reader::new(&file[..]).unwrap(),
        target.clone().import_target(),
        false,
    )
    .await
    .unwrap();
    assert_eq!(export_lines(&target), export_lines(&source));
    let challenge = crate::core::token::Challenge::from_bytes(b"0123456789ABCDEFGHJK").unwrap();
    assert!(matches!(
        target.login(&challenge).await.unwrap().unwrap().state,
        LoginState::Complete { .. }
    ));
    let key = crate::core::auth::SessionKey::of(&"t".repeat(43));
    assert_eq!(
        target.session(&key).await.unwrap().unwrap().account_id,
        new_id
    );

    // A store that holds something is refused, unless replaced.
    let refused = import(
        Reader::new(&file[..]).unwrap(),
        target.clone().import_target(),
        false,
    )
    .await;
    assert!(matches!(refused, Err(MoveError::NotEmpty)));
    items.truncate(1);
    bytes = write(&items);
    import(
        Reader::new(&bytes[..]).unwrap(),
        target.clone().import_target(),
        true,
    )
    .await
    .unwrap();
    assert_eq!(export_lines(&target).len(), 1);
}

/// PostgreSQL refuses a session or a pending password whose account the file does not hold
/// (a foreign key): sled refuses them too, naming the line, and keeps nothing of the file.
#[tokio::test]
async fn a_session_or_pending_password_of_no_account_is_refused_with_its_line() {
    let every = every_kind();
    let [account, pending, session] = [&every[0], &every[1], &every[2]];
    let orphan = |item: &Item| match item.clone() {
        Item::PasswordPending {
            msisdn,
            smsc,
            from,
            since,
            ..
        } => Item::PasswordPending {
            account_id: 99,
            msisdn,
            smsc,
            from,
            since,
        },
        Item::Session {
            hash,
            expires_at,
            issued_at,
            msisdn,
            ..
        } => Item::Session {
            hash,
            account_id: 99,
            expires_at,
            issued_at,
            msisdn,
        },
        other => other,
    };
    for (items, refused) in [
        (vec![account.clone(), orphan(session)], "line 3 (session): "),
        (vec![orphan(pending)], "line 2 (password_pending): "),
        (
            vec![account.clone(), pending.clone(), orphan(pending)],
            "line 4 (password_pending): ",
        ),
    ] {
        let store = SledStore::temporary().unwrap();
        let bytes = write(&items);
        let error = import(
            Reader::new(&bytes[..]).unwrap(),
            store.clone().import_target(),
            false,
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(error.starts_with(refused), "{error}");
        assert!(error.contains("account 99"), "{error}");
        assert!(
            !store.import_target().is_empty().await.unwrap(),
            "the half-done import is not marked"
        );
    }
}
