//! "I sent the SMS and nothing happened": every MO ends in one INFO line an operator can find
//! by the masked number or the token's first group, whatever became of it. Driven through the
//! real binary, with its JSON logs read back.

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

fn masked(number: &str) -> String {
    Msisdn::parse(number).unwrap().masked()
}

fn fresh_token() -> Token {
    Token::for_verifier(&Verifier::random(), Clock::System.now())
}

/// The `MO outcome` lines written so far.
fn outcome_lines(d: &Spawned) -> Vec<Value> {
    d.logs
        .text()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["message"] == "MO outcome")
        .collect()
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
            "credentials".into(),
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
    common::eventually("an outcome line for every MO", async || {
        outcome_lines(&d).len() >= expected.len()
    })
    .await;
    // Replies are sent after their outcome is committed and logged: once they are all out,
    // every line that could come has come.
    d.sim.wait_submits(4, common::PATIENCE).await;
    d.signal(libc::SIGTERM);
    assert_eq!(d.exit_code().await, 0);

    let lines = outcome_lines(&d);
    let got: Vec<[String; 5]> = lines.iter().map(summary).collect();
    assert_eq!(got, expected, "logs:\n{}", d.logs.text());
    for line in &lines {
        assert_eq!(line["level"], "INFO", "{line}");
        assert_eq!(line["smsc"], "sim", "{line}");
    }
    assert_eq!(lines[5]["limit"], "deny_list");
    let why = lines[6]["detail"].as_str().unwrap();
    assert!(why.starts_with("malformed user data header"), "{why}");
    // "I sent the SMS and nothing happened" is one grep of the masked number.
    let logs = d.logs.text();
    let carol: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains(&masked(CAROL)))
        .collect();
    assert_eq!(carol.len(), 1, "{carol:?}");
}
