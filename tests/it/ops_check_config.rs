//! `moauth check-config` and `moauth run` on broken files: exit code 2, file:line:column and
//! the key, for each kind of mistake an operator makes.

use crate::common;

use common::process::moauth;

const GOOD: &str = r#"[store]
path = "/var/lib/moauth"

[http]
listen = "127.0.0.1:8080"

[[smsc]]
name = "main"
address = "127.0.0.1:2775"
system_id = "moauth"
password = "secret"
short_code = "10690000"
"#;

/// (what is wrong, the broken file, the `line:column: key` expected).
fn broken_files() -> Vec<(&'static str, String, &'static str)> {
    vec![
        (
            "unknown key",
            GOOD.replace("listen =", "listn ="),
            ":5:1: key `http.listn`",
        ),
        (
            "wrong type",
            GOOD.replace("\"127.0.0.1:2775\"", "2775"),
            ":9:11: key `smsc.address`",
        ),
        (
            "bad address",
            GOOD.replace("127.0.0.1:8080", "localhost-8080"),
            ":5:10: key `http.listen`",
        ),
        (
            "missing secret file",
            GOOD.replace(
                "password = \"secret\"",
                "password_file = \"/nonexistent/smsc-main\"",
            ),
            ":11:1: key `smsc.password_file`",
        ),
        (
            "missing secret variable",
            GOOD.replace(
                "password = \"secret\"",
                "password_env = \"MOAUTH_TEST_UNSET_SMSC_PASSWORD\"",
            ),
            ":11:1: key `smsc.password_env`",
        ),
        (
            "value out of range",
            GOOD.replace("\"secret\"", "\"longer-than-smpp-allows\""),
            ":11:1: key `smsc.password`",
        ),
        (
            "missing table",
            GOOD.replace("[store]\npath = \"/var/lib/moauth\"\n", ""),
            ":1:1: key `store`",
        ),
        (
            "missing key",
            GOOD.replace("short_code = \"10690000\"\n", ""),
            ":7:1: key `smsc.short_code`",
        ),
    ]
}

#[tokio::test]
async fn check_config_names_file_line_and_key_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    for (what, text, expected) in broken_files() {
        let path = dir.path().join("moauth.toml");
        std::fs::write(&path, &text).unwrap();
        let file = path.to_str().unwrap();
        let (code, _, err) = moauth(&["check-config", file]).await;
        assert_eq!(code, 2, "{what}: {err}");
        assert!(
            err.starts_with(&format!("{file}{expected}")),
            "{what}: expected {expected}, got {err}"
        );

        let (code, _, run_err) = moauth(&["run", "--config", file]).await;
        assert_eq!(code, 2, "{what}: run must refuse to start: {run_err}");
        assert!(run_err.contains(&format!("{file}{expected}")), "{run_err}");
    }
}

#[tokio::test]
async fn a_good_file_with_its_secret_in_the_environment_passes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("moauth.toml");
    let text = GOOD.replace(
        "password = \"secret\"",
        "password_env = \"MOAUTH_TEST_SMSC_PASSWORD\"",
    );
    std::fs::write(&path, text).unwrap();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_moauth"))
        .args(["check-config", path.to_str().unwrap()])
        .env("MOAUTH_TEST_SMSC_PASSWORD", "s3cret")
        .output()
        .await
        .unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{out}");
    assert!(out.contains("ok (1 SMSC connection)"), "{out}");
}
