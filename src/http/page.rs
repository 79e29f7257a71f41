//! The browser side: `/moauth.js` for apps, and the login page at `/login` built on it.
//!
//! The page makes its verifier and token in the browser (web/moauth.js); the server only renders
//! the HTML in the reader's language, the QR code of the `sms:` URI, and answers the same poll
//! as for any app. Everything the page loads comes from this origin, and its
//! Content-Security-Policy says so, so a copy of the page cannot quietly grow a third-party
//! request. The page and its QR code answer only while `[http] login_page` is on (reloadable);
//! `/moauth.js` is always served, for apps that embed it.
//!
//! Stable hooks for apps that test their copy: the root carries `data-moauth-state`
//! (`pending`, `complete`, `expired`, `rejected`; `consumed` or `error` in rare cases), the
//! composer link is `a[data-moauth-sms]`, the QR code `[data-moauth-qr]`.

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;

use super::ApiError;
use crate::core::clock::Clock;
use crate::core::live::Live;
use crate::core::token::{Token, composer_uri};
use crate::ops::config::{Config, Language};

pub const MOAUTH_JS: &str = include_str!("../../web/moauth.js");
const PAGE_JS: &str = include_str!("../../web/login.js");
const PAGE_CSS: &str = include_str!("../../web/login.css");

/// Only this origin, no inline code, no framing (a framed login page invites clickjacking).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// What the page shows besides the app's name; rebuilt from the config on reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageSettings {
    pub enabled: bool,
    pub short_code: String,
    pub keyword: String,
}

/// The app's name (`[templates] app`) as the page shows it, in the title, the warning and the
/// SMS body; server-minted logins put it in the SMS body too, so it is kept once, apart.
pub fn app_name(config: &Config) -> String {
    config
        .templates
        .app
        .clone()
        .unwrap_or_else(|| "moauth".into())
}

impl PageSettings {
    pub fn from_config(config: &Config) -> PageSettings {
        PageSettings {
            enabled: config.http.login_page,
            short_code: config
                .smsc
                .first()
                .map_or(crate::core::DEFAULT_SHORT_CODE.into(), |s| {
                    s.short_code.clone()
                }),
            keyword: config.login.keywords.first().cloned().unwrap_or_default(),
        }
    }

    /// The body the composer gets: `LOGIN T shop`. The app's name is a trailer the grammar
    /// ignores (protocol/token.md §5); it tells the person which app the code is for.
    pub fn sms_body(&self, token: &Token, app: &str) -> String {
        token.sms_body(&self.keyword, app)
    }
}

#[derive(Clone)]
pub struct PageState {
    pub settings: Live<PageSettings>,
    /// The app's name ([`app_name`]).
    pub app: Live<String>,
    pub clock: Clock,
    /// `moauth demo --web` only: the page shows the simulated phone beside the login.
    pub demo_phone: bool,
}

pub fn router(state: PageState) -> Router {
    Router::new()
        .route("/moauth.js", get(|| async { script(MOAUTH_JS) }))
        .route("/login", get(page))
        .route("/login/page.js", get(page_js))
        .route("/login/page.css", get(page_css))
        .route("/login/qr.svg", get(qr))
        .with_state(state)
}

fn script(source: &'static str) -> Response {
    asset("text/javascript; charset=utf-8", source)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=300"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

fn switched_off() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "the login page is switched off ([http] login_page)",
    )
}

async fn page_js(State(state): State<PageState>) -> Result<Response, ApiError> {
    if !state.settings.load().enabled {
        return Err(switched_off());
    }
    Ok(script(PAGE_JS))
}

async fn page_css(State(state): State<PageState>) -> Result<Response, ApiError> {
    if !state.settings.load().enabled {
        return Err(switched_off());
    }
    Ok(asset("text/css; charset=utf-8", PAGE_CSS))
}

async fn page(State(state): State<PageState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let settings = state.settings.load();
    if !settings.enabled {
        return Err(switched_off());
    }
    let language = language(
        headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or(""),
    );
    let app = state.app.load();
    let html = render(
        &settings,
        &app,
        language,
        state.clock.now(),
        state.demo_phone,
    );
    let mut response = (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // The page carries the server's clock (for the token's issued_at): never stale.
            (header::CACHE_CONTROL, "no-store"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::VARY, "Accept-Language"),
        ],
        html,
    )
        .into_response();
    let tag = match language {
        Language::En => "en",
        Language::Zh => "zh-CN",
    };
    response
        .headers_mut()
        .insert(header::CONTENT_LANGUAGE, HeaderValue::from_static(tag));
    Ok(response)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QrQuery {
    token: String,
}

/// The QR code of the `sms:` URI for `token`, as SVG. It takes a token rather than any text,
/// so the daemon renders only its own login links, with the configured short code and body.
async fn qr(
    State(state): State<PageState>,
    query: Result<Query<QrQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let settings = state.settings.load();
    if !settings.enabled {
        return Err(switched_off());
    }
    let Query(query) = query.map_err(|e| ApiError::bad_request("bad_request", e.body_text()))?;
    let token = Token::parse(&query.token)
        .map_err(|e| ApiError::bad_request("bad_token", e.to_string()))?;
    let svg = qr_svg(&composer_uri(
        &settings.short_code,
        &settings.sms_body(&token, &state.app.load()),
    ))
    .map_err(ApiError::internal)?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "private, max-age=600"),
            (header::CONTENT_SECURITY_POLICY, "default-src 'none'"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        svg,
    )
        .into_response())
}

/// Medium error correction: a phone camera reads it off a glossy laptop screen.
pub fn qr_svg(text: &str) -> Result<String, qrcode::types::QrError> {
    let code = qrcode::QrCode::with_error_correction_level(text, qrcode::EcLevel::M)?;
    Ok(code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(220, 220)
        .quiet_zone(true)
        .build())
}

/// The reader's language from `Accept-Language`: the first of English and Chinese by weight,
/// English when neither is asked for.
pub fn language(accept: &str) -> Language {
    let mut ranges: Vec<(f32, &str)> = accept
        .split(',')
        .filter_map(|range| {
            let mut parts = range.split(';');
            let tag = parts.next()?.trim();
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .map_or(Some(1.0), |q| q.trim().parse::<f32>().ok())?;
            (!tag.is_empty() && q > 0.0).then_some((q, tag))
        })
        .collect();
    // Stable: equal weights keep the order the browser sent.
    ranges.sort_by(|a, b| b.0.total_cmp(&a.0));
    ranges
        .iter()
        .find_map(|(_, tag)| {
            let primary = tag.split('-').next().unwrap_or("").to_ascii_lowercase();
            match primary.as_str() {
                "zh" => Some(Language::Zh),
                "en" => Some(Language::En),
                _ => None,
            }
        })
        .unwrap_or(Language::En)
}

/// The page's words. `{app}`, `{short_code}`, `{body}`, `{number}`, `{reason}` are filled in
/// (the last three by the page script).
struct Words {
    lang: &'static str,
    title: &'static str,
    lead: &'static str,
    scan: &'static str,
    qr_alt: &'static str,
    /// "Text {body} to {short_code}": the words for people who type.
    text_to: &'static str,
    open: &'static str,
    app_note: &'static str,
    starting: &'static str,
    noscript: &'static str,
    phone_title: &'static str,
    phone_hint: &'static str,
    phone_from: &'static str,
    phone_to: &'static str,
    phone_text: &'static str,
    phone_send: &'static str,
    phone_inbox: &'static str,
    /// For the page script: `pending`, `complete`, ..., `reasons.<reason>`.
    script: Script,
}

struct Script {
    pending: &'static str,
    complete: &'static str,
    expired: &'static str,
    rejected: &'static str,
    consumed: &'static str,
    insecure: &'static str,
    unreachable: &'static str,
    retry: &'static str,
    reasons: [(&'static str, &'static str); 6],
}

const EN: Words = Words {
    lang: "en",
    title: "Log in to {app}",
    lead: "Send one text message from your phone. No password, no code to type back.",
    scan: "Scan with your phone's camera, then tap send.",
    qr_alt: "QR code: opens your phone's messages with the login text for {app}",
    text_to: "Text {body} to {short_code}",
    open: "Open Messages",
    app_note: "This code logs you in to {app} and nothing else. If another site showed it to you, \
               do not send it.",
    starting: "Making your login code…",
    noscript: "This page needs JavaScript to make your login code.",
    phone_title: "Simulated phone",
    phone_hint: "Demo only: the text goes to moauth's built-in SMSC simulator, never to a \
                 carrier.",
    phone_from: "This phone's number",
    phone_to: "To",
    phone_text: "Message",
    phone_send: "Send SMS",
    phone_inbox: "Texts from moauth",
    script: Script {
        pending: "Waiting for your text to {short_code} to log in to {app}…",
        complete: "Logged in to {app} as {number}.",
        expired: "This code has expired.",
        rejected: "Login refused: {reason}",
        consumed: "This login was already collected in another window.",
        insecure: "This page needs a secure connection (https) to make a login code.",
        unreachable: "Cannot reach the server; still trying…",
        retry: "Try again",
        reasons: [
            ("bad_token", "the code in the text was mistyped."),
            ("replayed", "this code was already used."),
            (
                "rate_limited",
                "too many attempts from this number; wait a while.",
            ),
            ("blocked_number", "this phone number may not log in here."),
            ("auth_core_refused", "{app} refused this number."),
            (
                "auth_core_unavailable",
                "{app} could not be reached; try again later.",
            ),
        ],
    },
};

const ZH: Words = Words {
    lang: "zh-CN",
    title: "登录 {app}",
    lead: "用手机发一条短信即可登录，无需密码，也无需回填验证码。",
    scan: "用手机相机扫描二维码，然后点击发送。",
    qr_alt: "二维码：在手机上打开已写好 {app} 登录短信的信息应用",
    text_to: "或发送短信 {body} 到 {short_code}",
    open: "打开短信",
    app_note: "此代码只用于登录 {app}。如果是其他网站让你发送它，请不要发送。",
    starting: "正在生成登录代码…",
    noscript: "此页面需要启用 JavaScript 才能生成登录代码。",
    phone_title: "模拟手机",
    phone_hint: "仅用于演示：短信发往 moauth 内置的短信中心模拟器，不会经过运营商。",
    phone_from: "本机号码",
    phone_to: "收件人",
    phone_text: "短信内容",
    phone_send: "发送短信",
    phone_inbox: "moauth 发来的短信",
    script: Script {
        pending: "正在等待你发送短信到 {short_code} 以登录 {app}…",
        complete: "已登录 {app}：{number}。",
        expired: "此代码已过期。",
        rejected: "登录被拒绝：{reason}",
        consumed: "此登录已在其他窗口完成。",
        insecure: "此页面需要安全连接（https）才能生成登录代码。",
        unreachable: "无法连接服务器，正在重试…",
        retry: "重试",
        reasons: [
            ("bad_token", "短信中的代码有误。"),
            ("replayed", "此代码已被使用。"),
            ("rate_limited", "此号码尝试次数过多，请稍后再试。"),
            ("blocked_number", "此号码不能在此登录。"),
            ("auth_core_refused", "{app} 拒绝了此号码。"),
            ("auth_core_unavailable", "暂时无法连接 {app}，请稍后再试。"),
        ],
    },
};

/// Escapes text for HTML element content and double-quoted attributes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The page. Every configured value is escaped; the words the script needs travel as a JSON
/// data block (never executed, so the CSP needs no inline script).
pub fn render(
    settings: &PageSettings,
    app_name: &str,
    language: Language,
    now: u64,
    demo_phone: bool,
) -> String {
    let w = match language {
        Language::En => &EN,
        Language::Zh => &ZH,
    };
    let app = escape(app_name);
    let short_code = escape(&settings.short_code);
    let fill = |text: &str| {
        escape(text)
            .replace("{app}", &app)
            .replace("{short_code}", &short_code)
    };
    let script_words = |text: &str| text.replace("{app}", app_name);
    let reasons: serde_json::Map<String, serde_json::Value> = w
        .script
        .reasons
        .iter()
        .map(|(code, text)| ((*code).to_owned(), json!(script_words(text))))
        .collect();
    let words = json!({
        "pending": script_words(w.script.pending).replace("{short_code}", &settings.short_code),
        "complete": script_words(w.script.complete),
        "expired": w.script.expired,
        "rejected": w.script.rejected,
        "consumed": w.script.consumed,
        "insecure": w.script.insecure,
        "unreachable": w.script.unreachable,
        "retry": w.script.retry,
        "reasons": reasons,
    });
    // No `<` at all inside the block (JSON reads `\u003c` back as `<`): a configured name
    // can neither close the block nor open the parser's odd `<!--`/`<script` states in it.
    let words = words.to_string().replace('<', "\\u003c");
    let text_to = fill(w.text_to).replace(
        "{body}",
        &format!(
            "<strong class=\"moauth-body\" data-moauth-body>{} …</strong>",
            escape(&settings.keyword)
        ),
    );
    let text_to = text_to.replace(&short_code, &format!("<strong>{short_code}</strong>"));
    let phone = if demo_phone {
        format!(
            r#"
<aside class="moauth-phone-sim" aria-labelledby="phone-title" data-demo-phone>
  <h2 id="phone-title">{title}</h2>
  <p class="hint">{hint}</p>
  <label>{from} <input data-demo-from value="+8613800138000" autocomplete="off"></label>
  <p>{to} <output data-demo-to>{short_code}</output></p>
  <label>{text} <textarea data-demo-text rows="3"></textarea></label>
  <button type="button" data-demo-send>{send}</button>
  <h3>{inbox}</h3>
  <ol class="inbox" data-demo-inbox aria-live="polite"></ol>
</aside>
<script type="module" src="/demo/phone.js"></script>"#,
            title = escape(w.phone_title),
            hint = escape(w.phone_hint),
            from = escape(w.phone_from),
            to = escape(w.phone_to),
            text = escape(w.phone_text),
            send = escape(w.phone_send),
            inbox = escape(w.phone_inbox),
        )
    } else {
        String::new()
    };
    format!(
        r#"<!doctype html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="stylesheet" href="/login/page.css">
<script type="module" src="/login/page.js"></script>
</head>
<body>
<div class="moauth-layout">
<main id="moauth" class="moauth" aria-labelledby="moauth-title" data-moauth-short-code="{short_code}" data-moauth-keyword="{keyword}" data-moauth-app="{app}" data-moauth-now="{now}">
  <h1 id="moauth-title">{title}</h1>
  <p class="lead">{lead}</p>
  <div class="moauth-waiting">
    <figure class="moauth-qr">
      <img data-moauth-qr alt="{qr_alt}">
      <figcaption>{scan}</figcaption>
    </figure>
    <p class="moauth-text-to">{text_to}</p>
    <p><a class="moauth-button" data-moauth-sms href="sms:{short_code}">{open}</a></p>
    <p class="moauth-app-note">{app_note}</p>
  </div>
  <p class="moauth-message" role="status" aria-live="polite" data-moauth-message>{starting}</p>
  <p><button type="button" class="moauth-button" data-moauth-retry hidden>{retry}</button></p>
  <noscript><p>{noscript}</p></noscript>
</main>{phone}
</div>
<script type="application/json" id="moauth-words">{words}</script>
</body>
</html>
"#,
        lang = w.lang,
        title = fill(w.title),
        keyword = escape(&settings.keyword),
        lead = escape(w.lead),
        qr_alt = fill(w.qr_alt),
        scan = escape(w.scan),
        open = escape(w.open),
        app_note = fill(w.app_note),
        starting = escape(w.starting),
        retry = escape(w.script.retry),
        noscript = escape(w.noscript),
    )
}

/// The demo phone's script, served by the demo's own routes.
pub const DEMO_PHONE_JS: &str = include_str!("../../web/demo-phone.js");

/// `GET` answers for the demo phone's script: a JavaScript asset.
pub fn demo_phone_js() -> Response {
    script(DEMO_PHONE_JS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::token::Verifier;

    fn settings() -> PageSettings {
        PageSettings {
            enabled: true,
            short_code: "10690000".into(),
            keyword: "LOGIN".into(),
        }
    }

    #[test]
    fn chinese_only_when_asked_for_before_english() {
        assert_eq!(language(""), Language::En);
        assert_eq!(language("zh-CN,zh;q=0.9,en;q=0.8"), Language::Zh);
        assert_eq!(language("en-US,en;q=0.9,zh;q=0.8"), Language::En);
        assert_eq!(language("fr-FR, zh-TW;q=0.5, en;q=0.4"), Language::Zh);
        assert_eq!(language("de, fr;q=0.5"), Language::En);
        assert_eq!(language("en;q=0.2, zh;q=0.3"), Language::Zh);
        assert_eq!(language("zh;q=0, en"), Language::En);
        assert_eq!(language("zh;q=bogus"), Language::En);
    }

    #[test]
    fn the_body_names_the_app_after_the_token_and_still_reads_as_that_token() {
        let token = Token::for_verifier(&Verifier::random(), 1_800_000_000);
        let body = settings().sms_body(&token, "shop");
        assert_eq!(body, format!("LOGIN {token} shop"));
        let keywords = vec!["LOGIN".to_string()];
        assert_eq!(
            crate::core::token::parse_body(&body, &keywords),
            crate::core::token::Body::Login(token)
        );
    }

    #[test]
    fn configured_words_cannot_break_out_of_the_markup() {
        let html = render(
            &settings(),
            "<script>alert(1)</script>\"'&",
            Language::En,
            1,
            false,
        );
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;"));
        // The JSON block holds the raw name, with no `<` that could end the block early.
        let block = html.split("id=\"moauth-words\">").nth(1).unwrap();
        let block = block.split("</script>").next().unwrap();
        let words: serde_json::Value = serde_json::from_str(block).unwrap();
        assert!(words["complete"].as_str().unwrap().contains("alert(1)"));
    }

    #[test]
    fn the_phone_appears_only_in_the_demo() {
        let html = render(&settings(), "shop", Language::Zh, 1, false);
        assert!(html.contains("登录 shop") && !html.contains("data-demo-phone"));
        let html = render(&settings(), "shop", Language::En, 1, true);
        assert!(html.contains("data-demo-phone") && html.contains("/demo/phone.js"));
    }

    #[test]
    fn the_qr_code_is_an_svg() {
        let svg = qr_svg("sms:10690000?body=LOGIN%201CC6W-TAB6R-GSPD4-8JAH4-B1JN7-W80Y4").unwrap();
        assert!(svg.contains("<svg") && svg.contains("</svg>"));
    }
}
