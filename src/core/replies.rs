//! The texts moauth sends back, from config templates with English and Chinese defaults.

use crate::core::auth::Credentials;
use crate::core::clock::UnixSecs;
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
    /// START undid an opt-out.
    Start,
    /// PASSWORD made a new password.
    NewPassword(Credentials),
    /// PASSWORD or LOGOUT from a number with no account.
    NoAccount,
    /// LOGOUT ended every session of the number.
    LoggedOut,
    /// `[login] notify_logins`: the account logged in at this time.
    LoginNotice(UnixSecs),
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
            Reply::Start => "start",
            Reply::NewPassword(_) => "new_password",
            Reply::NoAccount => "no_account",
            Reply::LoggedOut => "logged_out",
            Reply::LoginNotice(_) => "login_notice",
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
            Reply::Credentials(_)
            | Reply::Help
            | Reply::Stop
            | Reply::Start
            | Reply::NewPassword(_)
            | Reply::NoAccount
            | Reply::LoggedOut
            | Reply::LoginNotice(_) => None,
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
    start: String,
    new_password: String,
    no_account: String,
    logged_out: String,
    login_notice: String,
    /// Minutes east of UTC that `{time}` is written in.
    utc_offset_minutes: i32,
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
            start: pick(&t.start, d.start),
            new_password: pick(&t.new_password, d.new_password),
            no_account: pick(&t.no_account, d.no_account),
            logged_out: pick(&t.logged_out, d.logged_out),
            login_notice: pick(&t.login_notice, d.login_notice),
            utc_offset_minutes: t.utc_offset_minutes,
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
            Reply::Start => &self.start,
            Reply::NewPassword(_) => &self.new_password,
            Reply::NoAccount => &self.no_account,
            Reply::LoggedOut => &self.logged_out,
            Reply::LoginNotice(_) => &self.login_notice,
            Reply::AuthCoreRefused => &self.auth_core_refused,
            Reply::AuthCoreUnavailable => &self.auth_core_unavailable,
        };
        let text = template.replace("{app}", &self.app);
        match reply {
            Reply::Credentials(c) | Reply::NewPassword(c) => text
                .replace("{login}", &c.login)
                .replace("{password}", &c.password),
            Reply::LoginNotice(at) => text.replace("{time}", &self.clock_time(*at)),
            _ => text,
        }
    }

    /// `14:03`, or `14:03 UTC` when no offset is configured (the reader cannot guess it).
    fn clock_time(&self, at: UnixSecs) -> String {
        let local = at as i64 + i64::from(self.utc_offset_minutes) * 60;
        let minute_of_day = local.rem_euclid(86_400) / 60;
        let time = format!("{:02}:{:02}", minute_of_day / 60, minute_of_day % 60);
        if self.utc_offset_minutes == 0 {
            format!("{time} UTC")
        } else {
            time
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
    start: &'static str,
    new_password: &'static str,
    no_account: &'static str,
    logged_out: &'static str,
    login_notice: &'static str,
    auth_core_refused: &'static str,
    auth_core_unavailable: &'static str,
}

const EN: Defaults = Defaults {
    credentials: "{app}: your account is {login}, password {password}. Keep it private.",
    bad_token: "{app}: the login code in your SMS is not valid. Please start again in the app.",
    expired: "{app}: this login code has expired. Please start again in the app.",
    replayed: "{app}: this login code was already used. Please start again in the app.",
    help: "{app}: to log in, tap \"Log in by SMS\" in the app and send the prepared message.",
    stop: "{app}: you will get no more messages from us. Text START to get them again.",
    start: "{app}: you will get our messages again. Text STOP to stop them.",
    new_password: "{app}: your new password for {login} is {password}. The old one no longer works.",
    no_account: "{app}: this number has no account. To make one, log in by SMS in the app.",
    logged_out: "{app}: every session of this number has ended.",
    login_notice: "You logged in to {app} at {time}. Not you? Text LOGOUT to end every session.",
    auth_core_refused: "{app}: we cannot log you in with this number. Please contact support.",
    auth_core_unavailable: "{app}: sorry, we could not log you in just now. Please try again in the app later.",
};

const ZH: Defaults = Defaults {
    credentials: "【{app}】您的账号已创建：{login}，密码：{password}。请妥善保管。",
    bad_token: "【{app}】短信中的登录码无效，请在应用中重新发起登录。",
    expired: "【{app}】登录码已过期，请在应用中重新发起登录。",
    replayed: "【{app}】该登录码已被使用，请在应用中重新发起登录。",
    help: "【{app}】在应用中点击“短信登录”并发送预填的短信即可登录。",
    stop: "【{app}】已退订，您将不再收到我们的消息。回复START可恢复。",
    start: "【{app}】已恢复，您将再次收到我们的消息。回复TD可退订。",
    new_password: "【{app}】{login}的新密码：{password}。原密码已失效。",
    no_account: "【{app}】此号码尚无账号，请在应用中用短信登录以创建。",
    logged_out: "【{app}】此号码的所有登录已退出。",
    login_notice: "【{app}】您于{time}登录了{app}。如非本人操作，请回复LOGOUT退出所有登录。",
    auth_core_refused: "【{app}】无法用此号码登录，请联系客服。",
    auth_core_unavailable: "【{app}】抱歉，暂时无法为您登录，请稍后在应用中重试。",
};

/// Reply texts. `{login}`, `{password}`, `{app}` and `{time}` are substituted.
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
    pub start: Option<String>,
    pub new_password: Option<String>,
    pub no_account: Option<String>,
    pub logged_out: Option<String>,
    pub login_notice: Option<String>,
    /// Minutes east of UTC for `{time}` in `login_notice` (480 for China); 0 writes "UTC".
    #[serde(default)]
    pub utc_offset_minutes: i32,
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
            start: None,
            new_password: None,
            no_account: None,
            logged_out: None,
            login_notice: None,
            utc_offset_minutes: 0,
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

    #[test]
    fn login_notice_names_the_app_and_the_time_in_the_configured_zone() {
        let shop = Templates {
            app: Some("shop".into()),
            ..Templates::default()
        };
        // 2027-01-15 14:03:20 UTC.
        let at = 1_800_020_600 - 1_800_020_600 % 86_400 + 14 * 3_600 + 3 * 60 + 20;
        assert_eq!(
            Replies::from_config(&shop).render(&Reply::LoginNotice(at)),
            "You logged in to shop at 14:03 UTC. Not you? Text LOGOUT to end every session."
        );
        let beijing = Templates {
            language: Language::Zh,
            utc_offset_minutes: 480,
            ..shop
        };
        assert!(
            Replies::from_config(&beijing)
                .render(&Reply::LoginNotice(at))
                .contains("于22:03登录了shop")
        );
    }
}
