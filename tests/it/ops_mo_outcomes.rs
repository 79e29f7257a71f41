//! "I sent the SMS and nothing happened": every MO ends in one INFO line an operator can find
//! by the masked number or the token's first group, whatever became of it, and every reply in
//! one line with the SMPP status that settled it. Driven through the real binary, with its
//! JSON logs read back.

use crate::common;

use common::process::Spawned;
use common::{ALICE, BOB, mistyped};
use moauth::core::clock::Clock;
use moauth::core::msisdn::Msisdn;
use moauth::core::token::{Token, Verifier};
use moauth::sim::Deliver;
use serde_json::Value;

const CAROL: &str = "+8613700137000";
const DAVE: &str = "+8613600136000";
/// A permanent refusal: the reply is dropped, not retried.
const ESME_RINVDSTADR: u32 = 0x0000_000B;

fn masked(number: &str) -> String {
    Msisdn::parse(number).unwrap().masked()
}

fn fresh_token() -> Token {
    Token::for_verifier(&Verifier::random(), Clock::System.now())
}

/// The log lines written so far whose message starts with `message`.
fn lines_of(d: &Spawned, message: &str) -> Vec<Value> {
    d.logs
        .text()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["message"].as_str().unwrap().starts_with(message))
        .collect()
}

fn outcome_lines(d: &Spawned) -> Vec<Value> {
    lines_of(d, "MO outcome")
}

fn reply_lines(d: &Spawned) -> Vec<Value> {
    lines_of(d, "reply ")
}

/// (from, token, outcome, reason, reply) of a line; absent fields as "".
fn summary(line: &Value) -> [String; 5] {
    ["from", "token", "outcome", "reason", "reply"]
        .map(|field| line[field].as_str().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn every_mo_ends_in_one_info_line_with_the_smsc_the_masked_number_and_the_token() {
    let mut d = Spawned::start(&format!("[limits]\ndeny_numbers = [\"{CAROL}\"]"), &[]).await;
    let (first, second, typo, denied) =
        (fresh_token(), fresh_token(), fresh_token(), fresh_token());
    let group = |token: &Token| token.to_string()[..5].to_owned();
    // The first reply (the credential SMS) is refused for good; the others are accepted.
    d.sim.refuse_next_submits(1, ESME_RINVDSTADR);

    d.phone_sends(ALICE, &format!("LOGIN {first}")).await;
    d.phone_sends(ALICE, &format!("LOGIN {second}")).await;
    d.phone_sends(ALICE, &format!("LOGIN {}", mistyped(&typo)))
        .await;
    d.phone_sends(BOB, "HELP").await;
    d.phone_sends(BOB, "STOP").await;
    d.phone_sends(CAROL, &format!("LOGIN {denied}")).await;
    // A user data header that claims more octets than the message has: nothing can be read.
    d.sim
        .deliver(&[Deliver {
            from: DAVE.into(),
            esm_class: 0x40,
            data_coding: 1,
            short_message: vec![0x05, 0x00, 0x03],
            ..Deliver::default()
        }])
        .await
        .unwrap();

    let expected = [
        [
            masked(ALICE),
            group(&first),
            "registered".into(),
            "".into(),
            // The credentials follow once hashed, in a line of their own.
            "none".into(),
        ],
        [
            masked(ALICE),
            group(&second),
            "completed".into(),
            "".into(),
            "none".into(),
        ],
        [
            masked(ALICE),
            group(&typo),
            "rejected".into(),
            "bad_token".into(),
            "bad_token".into(),
        ],
        [
            masked(BOB),
            "".into(),
            "help".into(),
            "".into(),
            "help".into(),
        ],
        [
            masked(BOB),
            "".into(),
            "stop".into(),
            "".into(),
            "stop".into(),
        ],
        [
            masked(CAROL),
            group(&denied),
            "limited".into(),
            "blocked_number".into(),
            "none".into(),
        ],
        [
            masked(DAVE),
            "".into(),
            "malformed".into(),
            "".into(),
            "none".into(),
        ],
    ];
    common::eventually("a line for every MO and every reply", async || {
        outcome_lines(&d).len() >= expected.len()
            && reply_lines(&d).len() >= 4
            && !lines_of(&d, "credentials queued").is_empty()
    })
    .await;
    d.signal(libc::SIGTERM);
    assert_eq!(d.exit_code().await, 0);

    let lines = outcome_lines(&d);
    let got: Vec<[String; 5]> = lines.iter().map(summary).collect();
    assert_eq!(got, expected, "logs:\n{}", d.logs.text());
    for line in &lines {
        assert_eq!(line["level"], "INFO", "{line}");
        assert_eq!(line["smsc"], "sim", "{line}");
    }
    let credentials = lines_of(&d, "credentials queued");
    assert_eq!(credentials.len(), 1, "{credentials:?}");
    assert_eq!(
        (
            &credentials[0]["to"],
            &credentials[0]["smsc"],
            &credentials[0]["level"]
        ),
        (
            &Value::from(masked(ALICE)),
            &Value::from("sim"),
            &Value::from("INFO")
        )
    );
    assert_eq!(lines[5]["limit"], "deny_list");
    let why = lines[6]["detail"].as_str().unwrap();
    assert!(why.starts_with("malformed user data header"), "{why}");
    // "I sent the SMS and nothing happened" is one grep of the masked number.
    // One line per reply, by the status's SMPP name and the masked recipient.
    let mut replies: Vec<[String; 3]> = reply_lines(&d)
        .iter()
        .map(|l| ["message", "to", "status"].map(|f| l[f].as_str().unwrap_or_default().to_owned()))
        .collect();
    replies.sort();
    let accepted = |to: &str| {
        [
            "reply accepted".to_owned(),
            masked(to),
            "ESME_ROK".to_owned(),
        ]
    };
    assert_eq!(
        replies,
        [
            accepted(ALICE),
            accepted(BOB),
            accepted(BOB),
            [
                "reply dropped: the SMSC refused it for good".to_owned(),
                masked(ALICE),
                "ESME_RINVDSTADR".to_owned()
            ],
        ],
        "logs:\n{}",
        d.logs.text()
    );

    let logs = d.logs.text();
    let carol: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains(&masked(CAROL)))
        .collect();
    assert_eq!(carol.len(), 1, "{carol:?}");
}
