//! What SIGHUP may change while the SMPP binds stay up, and what it may not.
//!
//! Templates, login window limits, keywords, API keys, webhooks and the log level are read through
//! [`arc_swap::ArcSwap`] handles: the pipeline and the HTTP handlers load the current value
//! per MO or request without a lock, and a reload swaps them all after the new file passed
//! every check, so a bad file changes nothing. Settings bound to a socket, the store or an
//! SMSC session (listen address, store path, `[[smsc]]`, numbering, auth core) need a restart;
//! a reload that changes them says so and leaves them as they are.
//! The abuse limits (`[limits]`) reload like the first group.

use std::sync::Arc;

use crate::core::decide::Window;
use crate::core::live::{Live, live};
use crate::core::replies::Replies;
use crate::http::keys::ApiKeys;
use crate::http::limits::{MintLimiter, PollLimiter};
use crate::http::page::{PageSettings, app_name};
use crate::ops::config::{Config, LimitsConfig, StoreConfig};
use crate::webhooks::Targets;

/// The reloadable part of the configuration, shared with the pipeline and the HTTP API.
#[derive(Clone)]
pub struct LiveSettings {
    pub replies: Live<Replies>,
    pub window: Live<Window>,
    pub keywords: Live<Vec<String>>,
    /// `[limits]`, read per MO and per request.
    pub limits: Live<LimitsConfig>,
    pub poll_limiter: Live<PollLimiter>,
    pub mint_limiter: Live<MintLimiter>,
    /// The backends' API keys; none switches the keyed routes off.
    pub api_keys: Live<ApiKeys>,
    /// Each backend's webhook, by backend name.
    pub webhooks: Live<Targets>,
    /// The login page: on or off, and the short code and keyword it shows.
    pub page: Live<PageSettings>,
    /// The app's name: on the login page and after the token in its SMS body and a minted
    /// login's.
    pub app: Live<String>,
}

impl LiveSettings {
    pub fn new(config: &Config) -> LiveSettings {
        LiveSettings {
            replies: live(Replies::from_config(&config.templates)),
            window: live(window(config)),
            keywords: live(config.login.keywords.clone()),
            limits: live(config.limits.clone()),
            poll_limiter: live(PollLimiter::new(&config.limits)),
            mint_limiter: live(MintLimiter::new(&config.limits)),
            api_keys: live(ApiKeys::from_config(&config.http.api_keys)),
            webhooks: live(Targets::from_config(&config.webhooks)),
            app: live(app_name(config)),
            page: live(PageSettings::from_config(config)),
        }
    }

    pub fn apply(&self, config: &Config) {
        self.replies
            .store(Arc::new(Replies::from_config(&config.templates)));
        self.window.store(Arc::new(window(config)));
        self.keywords.store(Arc::new(config.login.keywords.clone()));
        self.limits.store(Arc::new(config.limits.clone()));
        let quota = (config.limits.poll_per_minute, config.limits.poll_burst);
        if self.poll_limiter.load().quota != quota {
            self.poll_limiter
                .store(Arc::new(PollLimiter::new(&config.limits)));
        }
        let quota = (config.limits.mint_per_minute, config.limits.mint_burst);
        if self.mint_limiter.load().quota != quota {
            self.mint_limiter
                .store(Arc::new(MintLimiter::new(&config.limits)));
        }
        self.api_keys
            .store(Arc::new(ApiKeys::from_config(&config.http.api_keys)));
        self.webhooks
            .store(Arc::new(Targets::from_config(&config.webhooks)));
        self.app.store(Arc::new(app_name(config)));
        self.page.store(Arc::new(PageSettings::from_config(config)));
    }
}

/// Names of the settings that differ between `running` and `new` but only change at restart.
pub fn needs_restart(running: &Config, new: &Config) -> Vec<&'static str> {
    // Not every config struct is PartialEq; their Debug forms compare just as well, except
    // for their secrets, which Debug leaves out: those are compared apart.
    let differs =
        |a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug| format!("{a:?}") != format!("{b:?}");
    let smsc_passwords = |c: &Config| {
        c.smsc
            .iter()
            .map(|s| s.password.clone())
            .collect::<Vec<_>>()
    };
    let auth_secret = |c: &Config| c.auth.remote.as_ref().map(|r| r.secret.clone());
    let store_url = |c: &Config| match &c.store {
        StoreConfig::Postgres(postgres) => Some(postgres.url.clone()),
        StoreConfig::Sled(_) => None,
    };
    let connections = |c: &Config| {
        (
            c.http.max_connections,
            c.http.header_read_timeout_secs,
            c.http.idle_timeout_secs,
        )
    };
    let checks: [(&'static str, bool); 12] = [
        (
            "store",
            differs(&running.store, &new.store) || store_url(running) != store_url(new),
        ),
        ("http.listen", running.http.listen != new.http.listen),
        (
            "http.admin_listen",
            running.http.admin_listen != new.http.admin_listen,
        ),
        (
            "http.admin_key",
            running.http.admin_key != new.http.admin_key,
        ),
        (
            "http.trusted_proxies",
            running.http.trusted_proxies != new.http.trusted_proxies,
        ),
        (
            "http.cors_origins",
            running.http.cors_origins != new.http.cors_origins,
        ),
        (
            "http connection limits",
            connections(running) != connections(new),
        ),
        (
            "smsc",
            differs(&running.smsc, &new.smsc) || smsc_passwords(running) != smsc_passwords(new),
        ),
        ("numbering", differs(&running.numbering, &new.numbering)),
        (
            "login.session_ttl_secs",
            running.login.session_ttl_secs != new.login.session_ttl_secs,
        ),
        (
            "login.send_credentials",
            running.login.send_credentials != new.login.send_credentials,
        ),
        (
            "auth",
            differs(&running.auth, &new.auth) || auth_secret(running) != auth_secret(new),
        ),
    ];
    checks
        .into_iter()
        .filter(|(_, changed)| *changed)
        .map(|(name, _)| name)
        .collect()
}

fn window(config: &Config) -> Window {
    Window {
        max_age_secs: config.login.max_age_secs,
        max_future_secs: config.login.max_future_secs,
        result_ttl_secs: config.login.result_ttl_secs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::replies::Reply;

    #[test]
    fn apply_swaps_templates_and_keys_in_place() {
        let mut config = Config::defaults("/tmp/x".into());
        let live = LiveSettings::new(&config);
        let reader = live.replies.clone();
        config.templates.help = Some("new help".into());
        let keys = live.api_keys.clone();
        assert!(keys.load().is_empty());
        config.http.api_keys = vec![crate::ops::config::ApiKey {
            name: "shop".into(),
            sha256: crate::http::keys::api_key_hash("k"),
        }];
        live.apply(&config);
        assert_eq!(reader.load().render(&Reply::Help), "new help");
        assert_eq!(keys.load().authenticate("k"), Some("shop"));
    }

    #[test]
    fn the_poll_limiter_is_rebuilt_only_when_its_quota_changes() {
        let mut config = Config::defaults("/tmp/x".into());
        let live = LiveSettings::new(&config);
        let before = live.poll_limiter.load_full();
        config.limits.max_long_polls = 1;
        live.apply(&config);
        assert!(
            Arc::ptr_eq(&before, &live.poll_limiter.load_full()),
            "buckets kept"
        );
        assert_eq!(live.limits.load().max_long_polls, 1);
        config.limits.poll_per_minute = 1;
        live.apply(&config);
        assert_eq!(
            live.poll_limiter.load().quota,
            (1, config.limits.poll_burst)
        );
    }

    #[test]
    fn only_restart_bound_settings_are_named() {
        let running = Config::defaults("/tmp/x".into());
        let mut new = running.clone();
        new.templates.help = Some("changed".into());
        new.login.max_age_secs = 60;
        assert!(needs_restart(&running, &new).is_empty());
        new.http.listen = "127.0.0.1:9999".parse().unwrap();
        assert_eq!(needs_restart(&running, &new), ["http.listen"]);
        new.auth.mode = crate::ops::config::AuthMode::Remote;
        assert_eq!(needs_restart(&running, &new), ["http.listen", "auth"]);
    }

    /// Debug leaves secrets out; a changed SMSC password still waits for a restart.
    #[test]
    fn a_changed_secret_is_named_although_debug_hides_it() {
        let mut running = crate::cli::embedded_config(
            "/tmp/x".into(),
            "127.0.0.1:0".parse().unwrap(),
            "127.0.0.1:2775".parse().unwrap(),
        );
        running.smsc[0].password = "old".into();
        let mut new = running.clone();
        new.smsc[0].password = "new".into();
        assert_eq!(format!("{:?}", running.smsc), format!("{:?}", new.smsc));
        assert_eq!(needs_restart(&running, &new), ["smsc"]);
    }
}
