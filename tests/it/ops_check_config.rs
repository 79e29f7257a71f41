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

/// Two entries in each array table, the second of each wrong: every mistake names the second
/// entry's own line, not the first entry's.
const TWO_OF_EACH: &str = r#"[store]
path = "/var/lib/moauth"

[http]
listen = "127.0.0.1:8080"

[[http.api_keys]]
name = "shop"
sha256 = "abababababababababababababababababababababababababababababababab"

[[http.api_keys]]
name = "blog"
sha256 = "not-hex"

[[smsc]]
name = "main"
address = "127.0.0.1:2775"
system_id = "moauth"
password = "secret"
short_code = "10690000"
window = 5

[[smsc]]
name = "backup"
address = "127.0.0.1:2776"
system_id = "moauth"
password = "secret"
short_code = "10690000"
window = 0

[[webhooks]]
backend = "shop"
url = "https://shop.example/hook"
secret = "s"

[[webhooks]]
backend = "blog"
url = "ftp://blog.example/"
secret = "s"
"#;

/// `moauth check-config` on `text`: its exit code and stderr's lines.
async fn check(text: &str) -> (i32, Vec<String>, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("moauth.toml");
    std::fs::write(&path, text).unwrap();
    let file = path.to_str().unwrap().to_owned();
    let (code, _, err) = moauth(&["check-config", &file]).await;
    let lines = err
        .lines()
        .filter_map(|l| l.strip_prefix(&file))
        .map(str::to_owned)
        .collect();
    (code, lines, err)
}

#[tokio::test]
async fn mistakes_in_later_array_entries_name_their_own_line() {
    let (code, lines, err) = check(TWO_OF_EACH).await;
    assert_eq!(code, 2, "{err}");
    for expected in [
        ":13:1: key `http.api_keys.sha256`",
        ":29:1: key `smsc.window`",
        ":38:1: key `webhooks.url`",
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(expected)),
            "expected {expected} in:\n{err}"
        );
    }
    assert_eq!(lines.len(), 3, "{err}");
}

#[tokio::test]
async fn type_errors_in_several_sections_and_entries_come_at_once() {
    let text = TWO_OF_EACH
        .replace(
            "sha256 = \"not-hex\"",
            &format!("sha256 = \"{}\"", "cd".repeat(32)),
        )
        .replace("window = 0", "window = \"ten\"")
        .replace("window = 5", "window = -5")
        .replace("ftp://blog.example/", "https://blog.example/")
        .replace("[store]\npath = \"/var/lib/moauth\"", "[store]\npath = 7");
    let (code, lines, err) = check(&text).await;
    assert_eq!(code, 2, "{err}");
    for expected in [
        ":2:8: key `store.path`",
        ":21:10: key `smsc.window`",
        ":29:10: key `smsc.window`",
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(expected)),
            "expected {expected} in:\n{err}"
        );
    }
    assert_eq!(lines.len(), 3, "{err}");
}

#[tokio::test]
async fn a_second_smsc_with_the_same_name_is_refused_at_its_line() {
    let text = TWO_OF_EACH
        .replace(
            "sha256 = \"not-hex\"",
            &format!("sha256 = \"{}\"", "cd".repeat(32)),
        )
        .replace("window = 0", "window = 1")
        .replace("ftp://blog.example/", "https://blog.example/")
        .replace("name = \"backup\"", "name = \"main\"");
    let (code, lines, err) = check(&text).await;
    assert_eq!(code, 2, "{err}");
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].starts_with(":24:1: key `smsc.name`"), "{err}");
    assert!(lines[0].contains("\"main\""), "{err}");
}

#[tokio::test]
async fn a_postgres_store_passes_the_check_and_run_says_the_database_is_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("moauth.toml");
    let text = GOOD.replace(
        "path = \"/var/lib/moauth\"",
        "backend = \"postgres\"\nurl = \"postgres://moauth:Pw-in-url@127.0.0.1:1/moauth\"",
    );
    std::fs::write(&path, text).unwrap();
    let file = path.to_str().unwrap();
    let (code, out, err) = moauth(&["check-config", file]).await;
    assert_eq!(code, 0, "{out}{err}");
    // Nothing listens on port 1. Exit 1, not 3: the database may be failing over, and a
    // restart can then succeed.
    let (code, _, err) = moauth(&["run", "--config", file]).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("error connecting to server"), "{err}");
    assert!(!err.contains("Pw-in-url"), "{err}");
}

#[tokio::test]
async fn default_alphabet_takes_gsm_latin1_or_ascii_and_names_anything_else() {
    for alphabet in ["gsm", "latin1", "ascii"] {
        let text = format!("{GOOD}default_alphabet = \"{alphabet}\"\n");
        let (code, _, err) = check(&text).await;
        assert_eq!(code, 0, "{alphabet}: {err}");
    }
    let (code, lines, err) = check(&format!("{GOOD}default_alphabet = \"ebcdic\"\n")).await;
    assert_eq!(code, 2, "{err}");
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].starts_with(":13:20: key `smsc.default_alphabet`"),
        "{err}"
    );
    assert!(lines[0].contains("latin1"), "says what it takes: {err}");
}
