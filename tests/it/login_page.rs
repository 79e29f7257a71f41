//! The login page and moauth.js in a real Chromium: the page makes its own code, the phone's
//! SMS goes through the simulator, and the page shows what the poll says. Screenshots of every
//! state land in target/tmp/browser/.

use moauth::cli::embedded_config;
use moauth::core::DEFAULT_SHORT_CODE;
use moauth::core::clock::Clock;
use moauth::core::token::{Token, composer_uri};
use moauth::daemon::{Daemon, Options};
use moauth::demo::web::phone_routes;
use serde_json::json;

use crate::common::browser::{Browser, Look, sms_body};
use crate::common::{self, ALICE, BOB, Harness, PATIENCE, loopback_sim};

/// The daemon with its login page on, as the app "shop".
async fn shop(tweak: impl FnOnce(&mut moauth::ops::config::Config)) -> Harness {
    Harness::start_with(Options::default(), |c| {
        c.http.login_page = true;
        c.templates.app = Some("shop".into());
        tweak(c);
    })
    .await
}

/// The page's token, read from its composer link.
async fn page_token(browser: &Browser) -> (String, Token) {
    let body = sms_body(&browser.sms_uri().await);
    let words: Vec<&str> = body.split(' ').collect();
    assert_eq!(words.len(), 3, "LOGIN T shop: {body}");
    (body.clone(), Token::parse(words[1]).unwrap())
}

#[tokio::test]
async fn the_pages_code_logs_in_and_the_page_shows_the_masked_number() {
    let Some(browser) = Browser::open(Look::default()).await else {
        return;
    };
    let h = shop(|_| {}).await;
    browser.goto(&h.api("/login")).await;
    let (body, token) = page_token(&browser).await;
    // The code is moauth's own: it parses, names the app, and matches the words to type.
    assert_eq!(body, format!("LOGIN {token} shop"));
    assert_eq!(
        browser.attr("a[data-moauth-sms]", "href").await.unwrap(),
        composer_uri(DEFAULT_SHORT_CODE, &body)
    );
    assert_eq!(
        browser.text(".moauth-text-to").await,
        format!("Text {body} to {DEFAULT_SHORT_CODE}")
    );
    let qr_loaded = browser
        .run(
            "const img = document.querySelector('[data-moauth-qr]');
             return img.complete && img.naturalWidth > 0 && img.src",
            vec![],
        )
        .await;
    assert!(
        qr_loaded
            .as_str()
            .is_some_and(|src| src.ends_with(&token.to_string())),
        "QR code not shown: {qr_loaded}"
    );
    assert!(browser.message().await.contains("shop"));
    browser.screenshot("pending").await;

    let sent = h.phone_sends(ALICE, &body).await;
    assert_eq!(sent.statuses, [0]);
    browser.wait_state("complete").await;
    assert_eq!(
        browser.message().await,
        "Logged in to shop as +86 138****8000."
    );
    browser.screenshot("complete").await;
    // The page collected the session: a second collection gets nothing.
    let login = h.daemon().store.login(&token.challenge()).await.unwrap();
    assert!(
        matches!(
            login.map(|l| l.state),
            Some(moauth::core::login::LoginState::Consumed)
        ),
        "the page's poll did not collect the session"
    );
    browser.close().await;
}

#[tokio::test]
async fn a_mistyped_code_never_completes_the_page_and_the_right_one_still_does() {
    let Some(browser) = Browser::open(Look::default()).await else {
        return;
    };
    let h = shop(|_| {}).await;
    browser.goto(&h.api("/login")).await;
    let (body, token) = page_token(&browser).await;
    // One challenge symbol wrong: the check refuses it, and the login it names is another.
    let mut typo: Vec<char> = body.chars().collect();
    typo[8] = if typo[8] == '7' { '8' } else { '7' };
    let typo: String = typo.into_iter().collect();
    h.phone_sends(ALICE, &typo).await;
    let replies = h.settled_submits(1).await;
    assert!(
        replies[0].text.to_lowercase().contains("code"),
        "error SMS: {}",
        replies[0].text
    );
    // The MO is fully handled (its reply is out); the page's login was never touched.
    assert!(
        h.daemon()
            .store
            .login(&token.challenge())
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(browser.state().await, "pending");
    browser.screenshot("pending-after-typo").await;

    h.phone_sends(ALICE, &body).await;
    browser.wait_state("complete").await;
    browser.close().await;
}

#[tokio::test]
async fn a_deny_listed_sender_turns_the_page_rejected_with_its_reason() {
    let Some(browser) = Browser::open(Look::default()).await else {
        return;
    };
    let h = shop(|c| c.limits.deny_numbers = vec![BOB.into()]).await;
    browser.goto(&h.api("/login")).await;
    let (body, _) = page_token(&browser).await;
    h.phone_sends(BOB, &body).await;
    browser.wait_state("rejected").await;
    assert_eq!(
        browser
            .attr("#moauth", "data-moauth-reason")
            .await
            .as_deref(),
        Some("blocked_number")
    );
    assert_eq!(
        browser.message().await,
        "Login refused: this phone number may not log in here."
    );
    assert_eq!(
        browser
            .run(
                "return document.activeElement.hasAttribute('data-moauth-retry')",
                vec![]
            )
            .await,
        true,
        "the retry button takes the focus"
    );
    browser.screenshot("rejected").await;
    browser.close().await;
}

#[tokio::test]
async fn a_code_past_its_window_turns_the_page_expired_and_enter_makes_a_new_one() {
    let Some(browser) = Browser::open(Look::default()).await else {
        return;
    };
    let h = shop(|c| c.login.max_age_secs = 1).await;
    browser.goto(&h.api("/login")).await;
    let (first, _) = page_token(&browser).await;
    h.clock.advance(60);
    browser.wait_state("expired").await;
    assert_eq!(browser.message().await, "This code has expired.");
    browser.screenshot("expired").await;
    // Keyboard only: the focused "Try again" button takes Enter.
    let focused = browser.client.active_element().await.unwrap();
    assert_eq!(focused.text().await.unwrap(), "Try again");
    focused.send_keys("\u{e007}").await.unwrap();
    let (second, _) = page_token(&browser).await;
    assert_ne!(first, second, "a new code after trying again");
    browser.close().await;
}

/// protocol/token.md §6: (verifier, issued_at, token) per row.
fn reference_vectors() -> Vec<(String, u64, String)> {
    let spec =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/protocol/token.md")).unwrap();
    let table = spec.split("## 6. Test vectors").nth(1).unwrap();
    // Rows of the first table only: the second one's second cell is no number.
    let vectors: Vec<_> = table
        .lines()
        .filter(|line| line.starts_with("| `"))
        .filter_map(|line| {
            let cells: Vec<&str> = line
                .split('|')
                .map(|cell| cell.trim().trim_matches('`'))
                .collect();
            let issued_at = cells[2].parse().ok()?;
            Some((cells[1].to_owned(), issued_at, cells[3].to_owned()))
        })
        .collect();
    assert_eq!(vectors.len(), 4, "the document's four vectors");
    vectors
}

#[tokio::test]
async fn the_javascript_token_equals_the_reference_vectors() {
    let Some(browser) = Browser::open(Look::default()).await else {
        return;
    };
    let h = shop(|_| {}).await;
    browser.goto(&h.api("/login")).await;
    for (verifier, issued_at, token) in reference_vectors() {
        let made = browser
            .run(
                "const m = await import(new URL('/moauth.js', location.href).href);
                 return await m.makeToken(arguments[0], arguments[1]);",
                vec![json!(verifier), json!(issued_at)],
            )
            .await;
        assert_eq!(made, json!(token), "verifier {verifier}");
    }
    // The URI the JavaScript builds is byte for byte the one moauth builds, non-ASCII included.
    let body = "登录 1CC6W-TAB6R-GSPD4-8JAH4-B1JN7-W80Y4 商店";
    let uri = browser
        .run(
            "const m = await import(new URL('/moauth.js', location.href).href);
             return [m.smsUri('10690000', arguments[0], { ios: false }),
                     m.smsUri('10690000', arguments[0], { ios: true })];",
            vec![json!(body)],
        )
        .await;
    let rfc = composer_uri("10690000", body);
    assert_eq!(uri, json!([rfc, rfc.replace("?body=", "&body=")]));
    // A verifier the browser makes is one moauth accepts.
    let made = browser
        .run(
            "const m = await import(new URL('/moauth.js', location.href).href);
             return m.makeVerifier();",
            vec![],
        )
        .await;
    moauth::core::token::Verifier::from_base64url(made.as_str().unwrap()).unwrap();
    browser.close().await;
}

#[tokio::test]
async fn the_page_requests_nothing_from_another_origin() {
    let Some(browser) = Browser::open(Look::default()).await else {
        return;
    };
    let h = shop(|_| {}).await;
    browser.goto(&h.api("/login")).await;
    let (body, _) = page_token(&browser).await;
    h.phone_sends(ALICE, &body).await;
    browser.wait_state("complete").await;
    let seen = browser
        .run(
            "return [location.origin,
                     performance.getEntriesByType('navigation').map(e => e.name),
                     performance.getEntriesByType('resource').map(e => e.name)]",
            vec![],
        )
        .await;
    let origin = seen[0].as_str().unwrap();
    let requests: Vec<&str> = seen[1]
        .as_array()
        .unwrap()
        .iter()
        .chain(seen[2].as_array().unwrap())
        .map(|name| name.as_str().unwrap())
        .collect();
    for path in [
        "/login",
        "/login/page.css",
        "/login/page.js",
        "/moauth.js",
        "/login/qr.svg",
        "/v1/logins/poll",
    ] {
        assert!(
            requests
                .iter()
                .any(|r| r.starts_with(&format!("{origin}{path}"))),
            "{path} not among {requests:?}"
        );
    }
    let foreign: Vec<_> = requests
        .iter()
        .filter(|r| !r.starts_with(&format!("{origin}/")))
        .collect();
    assert!(foreign.is_empty(), "requests to other origins: {foreign:?}");
    // And the policy that keeps a copy of the page that way.
    let response = h.http.get(h.api("/login")).send().await.unwrap();
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap();
    assert!(csp.starts_with("default-src 'none'") && csp.contains("connect-src 'self'"));
    browser.close().await;
}

#[tokio::test]
async fn chinese_readers_get_the_page_in_chinese() {
    let look = Look {
        languages: Some("zh-CN,zh"),
        ..Look::default()
    };
    let Some(browser) = Browser::open(look).await else {
        return;
    };
    let h = shop(|_| {}).await;
    browser.goto(&h.api("/login")).await;
    let (body, _) = page_token(&browser).await;
    assert_eq!(browser.text("h1").await, "登录 shop");
    assert_eq!(browser.attr("html", "lang").await.as_deref(), Some("zh-CN"));
    browser.screenshot("pending-zh").await;
    h.phone_sends(ALICE, &body).await;
    browser.wait_state("complete").await;
    assert_eq!(browser.message().await, "已登录 shop：+86 138****8000。");
    browser.close().await;
}

const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 \
                      (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";

#[tokio::test]
async fn a_phone_gets_the_composer_button_and_an_iphone_its_ampersand() {
    let look = Look {
        phone_user_agent: Some(IPHONE),
        ..Look::default()
    };
    let Some(browser) = Browser::open(look).await else {
        return;
    };
    let h = shop(|_| {}).await;
    browser.goto(&h.api("/login")).await;
    let uri = browser.sms_uri().await;
    assert!(
        uri.starts_with(&format!("sms:{DEFAULT_SHORT_CODE}&body=LOGIN%20")),
        "{uri}"
    );
    let shown = browser
        .run(
            "const visible = (css) => document.querySelector(css).offsetParent !== null;
             return [visible('[data-moauth-qr]'), visible('a[data-moauth-sms]')]",
            vec![],
        )
        .await;
    assert_eq!(
        shown,
        json!([false, true]),
        "QR hidden, composer button shown"
    );
    browser.screenshot("pending-iphone").await;
    // The body is the same either way: the phone's text still logs the page in.
    h.phone_sends(ALICE, &sms_body(&uri)).await;
    browser.wait_state("complete").await;
    browser.close().await;
}

#[tokio::test]
async fn the_demo_phone_sends_the_pages_sms_through_the_simulator() {
    let Some(browser) = Browser::open(Look::default()).await else {
        return;
    };
    let sim = loopback_sim().await;
    let dir = tempfile::tempdir().unwrap();
    let config = embedded_config(
        dir.path().join("store"),
        "127.0.0.1:0".parse().unwrap(),
        sim.smpp_addr,
    );
    let daemon = Daemon::start_with_demo_phone(config, Clock::System, phone_routes(sim.clone()))
        .await
        .unwrap();
    assert!(sim.wait_bound(1, PATIENCE).await);
    browser
        .goto(&format!("http://{}/login", daemon.http_addr))
        .await;
    let uri = browser.sms_uri().await;
    // The phone's composer holds what the page's link carries.
    common::eventually_ok("the phone's composer to hold the link's text", async || {
        let text = browser
            .run(
                "return document.querySelector('[data-demo-text]').value",
                vec![],
            )
            .await;
        if text.as_str() == Some(sms_body(&uri).as_str()) {
            Ok(())
        } else {
            Err(format!("it holds {text}"))
        }
    })
    .await;
    browser.screenshot("demo-pending").await;
    browser
        .client
        .find(fantoccini::Locator::Css("[data-demo-send]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser.wait_state("complete").await;
    // A new number: moauth texts the phone its credentials, and the phone shows them.
    common::eventually("a reply on the phone", async || {
        !browser.text("[data-demo-inbox]").await.is_empty()
    })
    .await;
    assert_eq!(sim.submits().len(), 1);
    browser.screenshot("demo").await;
    browser.close().await;
    daemon.shutdown().await;
    sim.stop();
}

#[tokio::test]
async fn the_page_is_off_unless_configured_and_moauth_js_is_always_there() {
    let h = Harness::start_with(Options::default(), |c| c.http.login_page = false).await;
    for path in ["/login", "/login/page.js", "/login/qr.svg?token=x"] {
        let response = h.http.get(h.api(path)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
    let response = h.http.get(h.api("/moauth.js")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("export class Login")
    );
    // Nor is the demo's phone anywhere outside the demo.
    let response = h.http.get(h.api("/demo/phone.js")).send().await.unwrap();
    assert_eq!(response.status(), 404);
}
