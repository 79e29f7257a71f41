//! The texts moauth sends back, from config templates with English and Chinese defaults.

use crate::core::auth::Credentials;
use serde::Deserialize;

/// Which reply an MO earned.
#[derive(Clone, PartialEq, Eq)]
pub enum Reply {
    Credentials(Credentials),
    BadToken,
    Expired,
    Replayed,
    Help,
    Stop,
    AuthCoreRefused,
    AuthCoreUnavailable,
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Reply {
    /// The reply's name in logs (a credential SMS shows as `credentials`, never its text).
    pub fn as_str(&self) -> &'static str {
        match self {
            Reply::Credentials(_) => "credentials",
            Reply::BadToken => "bad_token",
            Reply::Expired => "expired",
            Reply::Replayed => "replayed",
            Reply::Help => "help",
            Reply::Stop => "stop",
            Reply::AuthCoreRefused => "auth_core_refused",
            Reply::AuthCoreUnavailable => "auth_core_unavailable",
        }
    }

    /// The rejection an error reply stands for, as `moauth_mo_rejected_total` names it.
    pub fn rejection(&self) -> Option<&'static str> {
        match self {
            Reply::BadToken => Some("bad_token"),
            Reply::Expired => Some("expired"),
            Reply::Replayed => Some("replayed"),
            Reply::AuthCoreRefused => Some("auth_core_refused"),
            Reply::AuthCoreUnavailable => Some("auth_core_unavailable"),
            Reply::Credentials(_) | Reply::Help | Reply::Stop => None,
        }
    }
}

/// Resolved templates: config overrides, else the defaults of the configured language.
#[derive(Debug, Clone)]
pub struct Replies {
    app: String,
    credentials: String,
    bad_token: String,
    expired: String,
    replayed: String,
    help: String,
    stop: String,
    auth_core_refused: String,
    auth_core_unavailable: String,
}

impl Replies {
    pub fn from_config(t: &Templates) -> Self {
        let d = match t.language {
            Language::En => &EN,
            Language::Zh => &ZH,
        };
        let pick = |set: &Option<String>, default: &str| set.clone().unwrap_or(default.into());
        Replies {
            app: pick(&t.app, "moauth"),
            credentials: pick(&t.credentials, d.credentials),
            bad_token: pick(&t.bad_token, d.bad_token),
            expired: pick(&t.expired, d.expired),
            replayed: pick(&t.replayed, d.replayed),
            help: pick(&t.help, d.help),
            stop: pick(&t.stop, d.stop),
            auth_core_refused: pick(&t.auth_core_refused, d.auth_core_refused),
            auth_core_unavailable: pick(&t.auth_core_unavailable, d.auth_core_unavailable),
        }
    }

    pub fn render(&self, reply: &Reply) -> String {
        let template = match reply {
            Reply::Credentials(_) => &self.credentials,
            Reply::BadToken => &self.bad_token,
            Reply::Expired => &self.expired,
            Reply::Replayed => &self.replayed,
            Reply::Help => &self.help,
            Reply::Stop => &self.stop,
            Reply::AuthCoreRefused => &self.auth_core_refused,
            Reply::AuthCoreUnavailable => &self.auth_core_unavailable,
        };
        let text = template.replace("{app}", &self.app);
        match reply {
            Reply::Credentials(c) => text
                .replace("{login}", &c.login)
                .replace("{password}", &c.password),
            _ => text,
        }
    }
}

struct Defaults {
    credentials: &'static str,
    bad_token: &'static str,
    expired: &'static str,
    replayed: &'static str,
    help: &'static str,
    stop: &'static str,
    auth_core_refused: &'static str,
    auth_core_unavailable: &'static str,
}

const EN: Defaults = Defaults {
    credentials: "{app}: your account is {login}, password {password}. Keep it private.",
    bad_token: "{app}: the login code in your SMS is not valid. Please start again in the app.",
    expired: "{app}: this login code has expired. Please start again in the app.",
    replayed: "{app}: this login code was already used. Please start again in the app.",
    help: "{app}: to log in, tap \"Log in by SMS\" in the app and send the prepared message.",
    stop: "{app}: you will get no more messages from us.",
    auth_core_refused: "{app}: we cannot log you in with this number. Please contact support.",
    auth_core_unavailable: "{app}: sorry, we could not log you in just now. Please try again in the app later.",
};

const ZH: Defaults = Defaults {
    credentials: "【{app}】您的账号已创建：{login}，密码：{password}。请妥善保管。",
    bad_token: "【{app}】短信中的登录码无效，请在应用中重新发起登录。",
    expired: "【{app}】登录码已过期，请在应用中重新发起登录。",
    replayed: "【{app}】该登录码已被使用，请在应用中重新发起登录。",
    help: "【{app}】在应用中点击“短信登录”并发送预填的短信即可登录。",
    stop: "【{app}】已退订，您将不再收到我们的消息。",
    auth_core_refused: "【{app}】无法用此号码登录，请联系客服。",
    auth_core_unavailable: "【{app}】抱歉，暂时无法为您登录，请稍后在应用中重试。",
};

/// Reply texts. `{login}`, `{password}` and `{app}` are substituted.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Templates {
    #[serde(default = "default_language")]
    pub language: Language,
    pub app: Option<String>,
    pub credentials: Option<String>,
    pub bad_token: Option<String>,
    pub expired: Option<String>,
    pub replayed: Option<String>,
    pub help: Option<String>,
    pub stop: Option<String>,
    /// The remote auth core refused the login.
    pub auth_core_refused: Option<String>,
    /// The remote auth core did not answer within `[auth.remote] max_wait_secs`.
    pub auth_core_unavailable: Option<String>,
}

impl Default for Templates {
    fn default() -> Self {
        Templates {
            language: default_language(),
            app: None,
            credentials: None,
            bad_token: None,
            expired: None,
            replayed: None,
            help: None,
            stop: None,
            auth_core_refused: None,
            auth_core_unavailable: None,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    En,
    Zh,
}

fn default_language() -> Language {
    Language::En
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_template_fills_login_and_password() {
        let replies = Replies::from_config(&Templates::default());
        let text = replies.render(&Reply::Credentials(Credentials {
            login: "+8613800138000".into(),
            password: "abc".into(),
        }));
        assert_eq!(
            text,
            "moauth: your account is +8613800138000, password abc. Keep it private."
        );
    }

    #[test]
    fn chinese_defaults_and_overrides() {
        let templates = Templates {
            language: Language::Zh,
            app: Some("商城".into()),
            expired: Some("{app} expired".into()),
            ..Templates::default()
        };
        let replies = Replies::from_config(&templates);
        assert!(replies.render(&Reply::BadToken).starts_with("【商城】"));
        assert_eq!(replies.render(&Reply::Expired), "商城 expired");
    }
}
