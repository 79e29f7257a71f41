//! The README's log recipes, run as documented against the real daemon's output.
//!
//! Under systemd the daemon's stderr lines (JSON, since stderr is no terminal) reach the journal
//! beside systemd's own lines about the unit, which are plain text; `journalctl -u moauth -o
//! cat` prints both. So the journal is rebuilt here from the daemon's real stderr with such
//! lines around it, and every `journalctl -u moauth -o cat | …` command of the README's Logs
//! section runs on it (the part after the pipe, by `sh`), as an operator would paste it.

use crate::common;

use std::process::Stdio;

use common::process::Spawned;
use common::{ALICE, BOB, mistyped};
use moauth::core::clock::Clock;
use moauth::core::msisdn::Msisdn;
use moauth::core::token::{Token, Verifier};
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

const JOURNALCTL: &str = "journalctl -u moauth -o cat | ";
/// A permanent refusal: the reply is dropped with an ERROR line.
const ESME_RINVDSTADR: u32 = 0x0000_000B;

/// The commands of the README's `### Logs` section that read the journal, without the
/// `journalctl … |` in front, and each with its comment removed.
fn documented_recipes() -> Vec<String> {
    let readme = include_str!("../../README.md");
    let section = readme
        .split("\n### Logs\n")
        .nth(1)
        .expect("README has a Logs section");
    let block = section
        .split("```sh\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the Logs section opens with a sh block");
    block
        .lines()
        .filter_map(|line| line.strip_prefix(JOURNALCTL))
        .map(|command| match command.rsplit_once("  #") {
            Some((command, _comment)) => command.trim().to_owned(),
            None => command.trim().to_owned(),
        })
        .collect()
}

/// `sh -c command` with `input` on stdin: exit code and stdout.
async fn pipe(command: &str, input: &str) -> (i32, String) {
    let mut child = Command::new("sh")
        .args(["-c", command])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("sh");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).await.unwrap();
    drop(stdin);
    let output = tokio::time::timeout(common::PATIENCE, child.wait_with_output())
        .await
        .expect("the recipe finished")
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).unwrap(),
    )
}

#[tokio::test]
async fn the_readme_log_recipes_work_on_what_the_daemon_writes() {
    if std::process::Command::new("jq")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var("CI").is_err(),
            "jq is required under CI (.ci/run installs it)"
        );
        eprintln!("SKIPPED the README's log recipes: no jq");
        return;
    }
    let mut d = Spawned::start("", &[]).await;
    // A registration whose credential SMS the SMSC refuses (an ERROR line), a mistyped
    // token (a rejection), and a HELP from another number.
    d.sim.refuse_next_submits(1, ESME_RINVDSTADR);
    let token = Token::for_verifier(&Verifier::random(), Clock::System.now());
    d.phone_sends(ALICE, &format!("LOGIN {token}")).await;
    let typo = Token::for_verifier(&Verifier::random(), Clock::System.now());
    d.phone_sends(ALICE, &format!("LOGIN {}", mistyped(&typo)))
        .await;
    d.phone_sends(BOB, "HELP").await;
    common::eventually("the replies settled", async || {
        let logs = d.logs.text();
        logs.contains("reply dropped") && logs.matches("reply accepted").count() == 2
    })
    .await;
    d.signal(libc::SIGTERM);
    assert_eq!(d.exit_code().await, 0);

    let journal = format!(
        "Starting moauth.service - moauth, log in by SMS...\n{}\nStopping moauth.service - moauth, log in by SMS...\nmoauth.service: Deactivated successfully.\n",
        d.logs.text()
    );
    let alice = Msisdn::parse(ALICE).unwrap().masked();
    let recipes = documented_recipes();
    assert!(recipes.len() >= 3, "{recipes:?}");
    for recipe in &recipes {
        let (code, out) = pipe(recipe, &journal).await;
        assert_eq!(code, 0, "{recipe} failed; it printed:\n{out}");
        let lines: Vec<&str> = out.lines().collect();
        assert!(!lines.is_empty(), "{recipe} printed nothing");
        if recipe.starts_with("grep") {
            // The complaint of one number: its MOs and its replies, nothing of anyone else's.
            assert!(lines.iter().all(|l| l.contains(&alice)), "{recipe}:\n{out}");
            assert!(
                out.contains("\"outcome\":\"registered\""),
                "{recipe}:\n{out}"
            );
            assert!(out.contains("\"outcome\":\"rejected\""), "{recipe}:\n{out}");
            assert!(out.contains("ESME_RINVDSTADR"), "{recipe}:\n{out}");
            continue;
        }
        let values: Vec<Value> = lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{recipe}: {e}: {l}")))
            .collect();
        if recipe.contains("WARN") {
            assert!(
                values
                    .iter()
                    .all(|v| v["level"] == "WARN" || v["level"] == "ERROR"),
                "{recipe}:\n{out}"
            );
            assert!(
                values.iter().any(|v| v["status"] == "ESME_RINVDSTADR"),
                "{recipe}:\n{out}"
            );
        } else if recipe.contains("MO outcome") {
            let outcomes: Vec<&str> = values
                .iter()
                .map(|v| v["outcome"].as_str().unwrap())
                .collect();
            assert_eq!(outcomes, ["rejected", "help"], "{recipe}:\n{out}");
        } else {
            panic!("a recipe this test does not know: {recipe}");
        }
    }
}
