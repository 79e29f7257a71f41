//! Per-number and per-prefix abuse limits on the SMS path, decided without I/O.
//!
//! The SMS path is where abuse costs money: every reply is an SMS we pay for, and every new
//! account may be an SMS with credentials. So a number may send only so many MOs an hour
//! (later ones are acknowledged to the SMSC, their outcome recorded as `rate_limited`, and
//! nothing more is done), may receive only so many replies other than credentials, may be on
//! a deny list (refused as `blocked_number`, never answered), and a number prefix (a block of
//! a carrier's range, where SMS-pumping fraud works) may open only so many new accounts an
//! hour.
//!
//! Each limit is a GCRA bucket per key ("n an hour, n at once"), with time passed in. The
//! state lives in memory: a restart forgets it, which only ever lets a little more through.
//! Keys whose bucket is full again are forgotten by [`NumberLimits::sweep`], so memory follows
//! the numbers active in the last hour. The rules are read per call, so a reload changes them
//! without forgetting what was counted.

use std::collections::HashMap;

use serde::Deserialize;

use crate::core::clock::UnixSecs;
use crate::core::decide::{Decision, Window};
use crate::core::login::LoginRecord;
use crate::core::login::LoginState;
use crate::core::login::RejectReason;
use crate::core::msisdn::Msisdn;
use crate::core::replies::Reply;
use crate::core::token::{Command, Token};

const HOUR_MS: u64 = 3_600_000;

/// Which limit refused something; also its label in `moauth_limit_hits_total{limit}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    DenyList,
    MoPerNumber,
    ErrorSmsPerNumber,
    NewAccountsPerPrefix,
    PasswordFailuresPerAccount,
    PasswordFailuresPerAddress,
    /// A reply to a number outside `reply_country_codes`.
    ReplyCountry,
    /// The global outbound SMS budget (`sms_per_hour`, `sms_per_day`).
    SmsBudget,
}

impl Limit {
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::DenyList => "deny_list",
            Limit::MoPerNumber => "mo_per_number",
            Limit::ErrorSmsPerNumber => "error_sms_per_number",
            Limit::NewAccountsPerPrefix => "new_accounts_per_prefix",
            Limit::PasswordFailuresPerAccount => "password_failures_per_account",
            Limit::PasswordFailuresPerAddress => "password_failures_per_address",
            Limit::ReplyCountry => "reply_country",
            Limit::SmsBudget => "sms_budget",
        }
    }

    /// How a login refused by this limit is recorded.
    pub fn reason(self) -> RejectReason {
        match self {
            Limit::DenyList => RejectReason::BlockedNumber,
            _ => RejectReason::RateLimited,
        }
    }
}

/// "`per_hour` an hour, `per_hour` at once" per key: GCRA over milliseconds.
#[derive(Debug, Default)]
struct Buckets {
    /// Theoretical arrival time of the next event per key, in Unix milliseconds.
    tat: HashMap<String, u64>,
}

impl Buckets {
    fn allows(&self, key: &str, per_hour: u32, now: UnixSecs) -> bool {
        if per_hour == 0 {
            return true;
        }
        let (interval, now) = (HOUR_MS / u64::from(per_hour), now * 1000);
        let tolerance = HOUR_MS - interval;
        self.tat.get(key).is_none_or(|&tat| tat <= now + tolerance)
    }

    /// Counts one event for `key`, allowed or not.
    fn count(&mut self, key: &str, per_hour: u32, now: UnixSecs) {
        if per_hour > 0 {
            let tat = self.tat.entry(key.to_owned()).or_insert(0);
            *tat = (*tat).max(now * 1000) + HOUR_MS / u64::from(per_hour);
        }
    }

    /// Counts one event for `key` if the bucket allows it; false (and nothing counted) if not.
    fn take(&mut self, key: &str, per_hour: u32, now: UnixSecs) -> bool {
        self.take_n(key, 1, per_hour, now)
    }

    /// Counts `n` events for `key` if the bucket holds them all; false (and nothing counted)
    /// if not. A message of `n` segments is `n` SMS on the bill.
    fn take_n(&mut self, key: &str, n: u32, per_hour: u32, now: UnixSecs) -> bool {
        if per_hour == 0 {
            return true;
        }
        let interval = HOUR_MS / u64::from(per_hour);
        let tolerance = HOUR_MS - interval;
        let tat = self.tat.get(key).copied().unwrap_or(0).max(now * 1000);
        let after = tat + interval * u64::from(n.max(1) - 1);
        let allowed = after <= now * 1000 + tolerance;
        if allowed {
            self.tat.insert(key.to_owned(), after + interval);
        }
        allowed
    }

    /// Whole seconds until `key`'s bucket allows an event again; None if it does now.
    fn wait_secs(&self, key: &str, per_hour: u32, now: UnixSecs) -> Option<u64> {
        if self.allows(key, per_hour, now) {
            return None;
        }
        let tolerance = HOUR_MS - HOUR_MS / u64::from(per_hour);
        let tat = self.tat.get(key).copied().unwrap_or(0);
        Some((tat - tolerance - now * 1000).div_ceil(1000).max(1))
    }

    /// Forgets keys whose bucket is full again: they behave as if never seen.
    fn sweep(&mut self, now: UnixSecs) {
        self.tat.retain(|_, tat| *tat > now * 1000);
    }
}

/// What has been counted against each number and prefix.
#[derive(Debug, Default)]
pub struct NumberLimits {
    mos: Buckets,
    error_sms: Buckets,
    new_accounts: Buckets,
    /// The last MO admitted. An MO whose processing failed (the auth core was down) is
    /// processed again before any other, and must not count twice.
    last_admitted: Option<u64>,
}

impl NumberLimits {
    /// Whether MO `mo_id` from `sender` may be processed; counts it against the sender if
    /// so, once however often it is asked.
    pub fn admit_mo(
        &mut self,
        rules: &LimitsConfig,
        sender: &Msisdn,
        mo_id: u64,
        now: UnixSecs,
    ) -> Result<(), Limit> {
        let number = sender.digits();
        if rules
            .deny_numbers
            .iter()
            .any(|denied| number.starts_with(denied.trim_start_matches('+')))
        {
            return Err(Limit::DenyList);
        }
        if self.last_admitted != Some(mo_id)
            && !self.mos.take(number, rules.mo_per_number_per_hour, now)
        {
            return Err(Limit::MoPerNumber);
        }
        self.last_admitted = Some(mo_id);
        Ok(())
    }

    /// Whether `reply`, `segments` SMS long, may be sent to `to`. Nothing goes to a number
    /// outside the countries replies may go to (`countries`, country codes: pumping pays
    /// best to premium ranges abroad). Credentials may go otherwise (the account exists and
    /// its one SMS is what it was created for); anything else counts against the number,
    /// each segment as one SMS.
    pub fn may_reply(
        &mut self,
        rules: &LimitsConfig,
        countries: &[String],
        to: &Msisdn,
        reply: &Reply,
        segments: u32,
        now: UnixSecs,
    ) -> Result<(), Limit> {
        if !reply_country_allowed(countries, to) {
            return Err(Limit::ReplyCountry);
        }
        match reply {
            Reply::Credentials(_) => Ok(()),
            _ if self.error_sms.take_n(
                to.digits(),
                segments,
                rules.error_sms_per_number_per_hour,
                now,
            ) =>
            {
                Ok(())
            }
            _ => Err(Limit::ErrorSmsPerNumber),
        }
    }

    /// Whether a reply other than credentials could go to `to` now; counts nothing. Asked
    /// before a password is replaced: a new password that may not be texted would lock its
    /// owner out.
    pub fn reply_allowed(&self, rules: &LimitsConfig, to: &Msisdn, now: UnixSecs) -> bool {
        self.error_sms
            .allows(to.digits(), rules.error_sms_per_number_per_hour, now)
    }

    /// Whether `number`'s prefix may open another account now. Counts nothing: call
    /// [`NumberLimits::account_created`] when one was.
    pub fn may_create_account(
        &self,
        rules: &LimitsConfig,
        number: &Msisdn,
        now: UnixSecs,
    ) -> Result<(), Limit> {
        let prefix = prefix(rules, number);
        if self
            .new_accounts
            .allows(prefix, rules.new_accounts_per_prefix_per_hour, now)
        {
            Ok(())
        } else {
            Err(Limit::NewAccountsPerPrefix)
        }
    }

    /// Counts an account opened for `number`, even past the limit (one the auth core made
    /// although we could not ask first still counts).
    pub fn account_created(&mut self, rules: &LimitsConfig, number: &Msisdn, now: UnixSecs) {
        self.new_accounts.count(
            prefix(rules, number),
            rules.new_accounts_per_prefix_per_hour,
            now,
        );
    }

    pub fn sweep(&mut self, now: UnixSecs) {
        self.mos.sweep(now);
        self.error_sms.sweep(now);
        self.new_accounts.sweep(now);
    }
}

/// Failed password logins counted per login (an account, or a number that has none: the
/// limit must not tell them apart) and per client address, so the texted password cannot be
/// guessed online. Only failures count; a limited attempt is refused before any hashing.
#[derive(Debug, Default)]
pub struct PasswordGuesses {
    per_login: Buckets,
    per_address: Buckets,
}

impl PasswordGuesses {
    /// Whether an attempt may be checked now; if not, which limit and how many seconds
    /// until it may.
    pub fn admit(
        &self,
        rules: &LimitsConfig,
        login: &str,
        address: &str,
        now: UnixSecs,
    ) -> Result<(), (Limit, u64)> {
        let per_login = rules.password_failures_per_account_per_hour;
        let per_address = rules.password_failures_per_address_per_hour;
        if let Some(wait) = self.per_login.wait_secs(login, per_login, now) {
            return Err((Limit::PasswordFailuresPerAccount, wait));
        }
        if let Some(wait) = self.per_address.wait_secs(address, per_address, now) {
            return Err((Limit::PasswordFailuresPerAddress, wait));
        }
        Ok(())
    }

    pub fn failed(&mut self, rules: &LimitsConfig, login: &str, address: &str, now: UnixSecs) {
        let per_login = rules.password_failures_per_account_per_hour;
        let per_address = rules.password_failures_per_address_per_hour;
        self.per_login.count(login, per_login, now);
        self.per_address.count(address, per_address, now);
    }

    pub fn sweep(&mut self, now: UnixSecs) {
        self.per_login.sweep(now);
        self.per_address.sweep(now);
    }
}

fn prefix<'a>(rules: &LimitsConfig, number: &'a Msisdn) -> &'a str {
    let digits = number.digits();
    &digits[..rules.new_account_prefix_digits.min(digits.len())]
}

/// What an MO refused by `limit` leads to: a login it would have made is recorded as refused
/// (so the app's poll stops waiting), what `decide` recorded otherwise stands, and no SMS goes
/// out.
pub fn refuse(
    decision: Decision,
    limit: Limit,
    sender: &Msisdn,
    received_at: UnixSecs,
    window: &Window,
) -> Decision {
    match decision {
        Decision::LogIn(token) => Decision::Answer {
            record: Some((
                token.challenge(),
                refused_login(&token, limit, sender, received_at, window),
            )),
            reply: None,
        },
        Decision::Answer { record, .. } => Decision::Answer {
            record,
            reply: None,
        },
        // An opt-out is honoured whatever the limits (the pipeline sends no SMS for it).
        Decision::Command(Command::Stop) => decision,
        Decision::Command(_) => Decision::Answer {
            record: None,
            reply: None,
        },
    }
}

/// The record of a login `limit` refused.
pub fn refused_login(
    token: &Token,
    limit: Limit,
    sender: &Msisdn,
    received_at: UnixSecs,
    window: &Window,
) -> LoginRecord {
    LoginRecord {
        state: LoginState::Rejected {
            reason: limit.reason(),
        },
        msisdn: Some(sender.clone()),
        issued_at: token.issued_at(),
        decided_at: received_at,
        keep_until: window.keep_until(token.issued_at(), received_at),
    }
}

/// Abuse limits (`[limits]`), each reloadable on SIGHUP; 0 switches a limit off.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Poll requests per minute per client IP (IPv6 per /64), a token bucket ...
    #[serde(default = "default_poll_per_minute")]
    pub poll_per_minute: u32,
    /// ... holding this many at once.
    #[serde(default = "default_poll_burst")]
    pub poll_burst: u32,
    /// Long-polls (`wait_ms` above 0) open at once, over every client ...
    #[serde(default = "default_max_long_polls")]
    pub max_long_polls: usize,
    /// ... and from one client address (IPv6 per /64), so a few cannot hold them all.
    #[serde(default = "default_max_long_polls_per_client")]
    pub max_long_polls_per_client: usize,
    /// `POST /v1/logins` per minute per API key (each costs a write and a flush) ...
    #[serde(default = "default_mint_per_minute")]
    pub mint_per_minute: u32,
    /// ... holding this many at once.
    #[serde(default = "default_mint_burst")]
    pub mint_burst: u32,
    /// MOs per sender per hour that are processed; later ones are acknowledged and refused.
    #[serde(default = "default_mo_per_number")]
    pub mo_per_number_per_hour: u32,
    /// Replies other than credentials (error texts, HELP, STOP) per number per hour.
    #[serde(default = "default_error_sms_per_number")]
    pub error_sms_per_number_per_hour: u32,
    /// Numbers or number prefixes, E.164 with `+`, whose MOs are refused without a reply.
    #[serde(default)]
    pub deny_numbers: Vec<String>,
    /// Country codes (digits, e.g. "86") replies may go to; empty means `[numbering]
    /// default_country_code` only.
    #[serde(default)]
    pub reply_country_codes: Vec<String>,
    /// New accounts per number prefix per hour (SMS-pumping defence) ...
    #[serde(default = "default_new_accounts_per_prefix")]
    pub new_accounts_per_prefix_per_hour: u32,
    /// ... where the prefix is this many leading digits of the E.164 number.
    #[serde(default = "default_new_account_prefix_digits")]
    pub new_account_prefix_digits: usize,
    /// Failed password logins per login (number) per hour; past it, 429 with Retry-After.
    #[serde(default = "default_password_failures_per_account")]
    pub password_failures_per_account_per_hour: u32,
    /// Failed password logins per client address per hour.
    #[serde(default = "default_password_failures_per_address")]
    pub password_failures_per_address_per_hour: u32,
    /// SMS (segments) sent per UTC clock hour over every number (the global budget) ...
    #[serde(default = "default_sms_per_hour")]
    pub sms_per_hour: u32,
    /// ... and per UTC day.
    #[serde(default = "default_sms_per_day")]
    pub sms_per_day: u32,
    /// Percent of each budget only credential SMS may spend.
    #[serde(default = "default_sms_reserved_for_credentials")]
    pub sms_reserved_for_credentials_percent: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            poll_per_minute: default_poll_per_minute(),
            poll_burst: default_poll_burst(),
            max_long_polls: default_max_long_polls(),
            max_long_polls_per_client: default_max_long_polls_per_client(),
            mint_per_minute: default_mint_per_minute(),
            mint_burst: default_mint_burst(),
            mo_per_number_per_hour: default_mo_per_number(),
            error_sms_per_number_per_hour: default_error_sms_per_number(),
            deny_numbers: Vec::new(),
            reply_country_codes: Vec::new(),
            new_accounts_per_prefix_per_hour: default_new_accounts_per_prefix(),
            new_account_prefix_digits: default_new_account_prefix_digits(),
            password_failures_per_account_per_hour: default_password_failures_per_account(),
            password_failures_per_address_per_hour: default_password_failures_per_address(),
            sms_per_hour: default_sms_per_hour(),
            sms_per_day: default_sms_per_day(),
            sms_reserved_for_credentials_percent: default_sms_reserved_for_credentials(),
        }
    }
}

fn default_password_failures_per_account() -> u32 {
    10
}
fn default_password_failures_per_address() -> u32 {
    50
}

fn default_sms_per_hour() -> u32 {
    2_000
}
fn default_sms_per_day() -> u32 {
    20_000
}
fn default_sms_reserved_for_credentials() -> u32 {
    30
}

fn default_poll_per_minute() -> u32 {
    600
}
fn default_poll_burst() -> u32 {
    120
}
fn default_max_long_polls() -> usize {
    1000
}
fn default_max_long_polls_per_client() -> usize {
    100
}
fn default_mint_per_minute() -> u32 {
    600
}
fn default_mint_burst() -> u32 {
    120
}
fn default_mo_per_number() -> u32 {
    20
}
fn default_error_sms_per_number() -> u32 {
    5
}
fn default_new_accounts_per_prefix() -> u32 {
    100
}
fn default_new_account_prefix_digits() -> usize {
    7
}

/// Whether replies may go to `to`: its number starts with one of `countries` (country codes).
pub fn reply_country_allowed(countries: &[String], to: &Msisdn) -> bool {
    countries
        .iter()
        .any(|cc| to.digits().starts_with(cc.as_str()))
}

impl LimitsConfig {
    /// The country codes replies may go to: `reply_country_codes`, or else the default
    /// country's alone.
    pub fn reply_countries<'a>(&'a self, default_country_code: &'a String) -> &'a [String] {
        match self.reply_country_codes.as_slice() {
            [] => std::slice::from_ref(default_country_code),
            codes => codes,
        }
    }

    /// What types alone cannot say, as (key path within `[limits]`, message) pairs.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        for (i, number) in self.deny_numbers.iter().enumerate() {
            let digits = number.strip_prefix('+').unwrap_or_default();
            if digits.is_empty() || digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                problems.push((
                    format!("deny_numbers.{i}"),
                    format!(
                        "{number:?} is not an E.164 number or prefix (\"+\" and 1 to 15 digits)"
                    ),
                ));
            }
        }
        for (i, code) in self.reply_country_codes.iter().enumerate() {
            if !(1..=3).contains(&code.len()) || !code.bytes().all(|b| b.is_ascii_digit()) {
                problems.push((
                    format!("reply_country_codes.{i}"),
                    format!("{code:?} is not a country code (1 to 3 digits, no \"+\")"),
                ));
            }
        }
        if !(1..=15).contains(&self.new_account_prefix_digits) {
            problems.push(("new_account_prefix_digits".into(), "must be 1 to 15".into()));
        }
        if self.sms_reserved_for_credentials_percent > 100 {
            problems.push((
                "sms_reserved_for_credentials_percent".into(),
                "must be 0 to 100".into(),
            ));
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::auth::Credentials;
    use crate::core::token::{Token, Verifier};
    use std::sync::atomic::{AtomicU64, Ordering};

    const NOW: UnixSecs = 1_800_000_000;
    const WINDOW: Window = Window {
        max_age_secs: 600,
        max_future_secs: 120,
        result_ttl_secs: 3600,
    };

    fn number(n: &str) -> Msisdn {
        Msisdn::parse(n).unwrap()
    }

    /// Each call a new MO id, as the inbox hands them out.
    fn admit(
        limits: &mut NumberLimits,
        rules: &LimitsConfig,
        sender: &Msisdn,
        now: UnixSecs,
    ) -> Result<(), Limit> {
        static NEXT_MO: AtomicU64 = AtomicU64::new(1);
        limits.admit_mo(rules, sender, NEXT_MO.fetch_add(1, Ordering::Relaxed), now)
    }

    fn rules() -> LimitsConfig {
        LimitsConfig {
            mo_per_number_per_hour: 3,
            error_sms_per_number_per_hour: 2,
            new_accounts_per_prefix_per_hour: 2,
            new_account_prefix_digits: 7,
            deny_numbers: vec!["+1900".into(), "+8613900139000".into()],
            ..LimitsConfig::default()
        }
    }

    #[test]
    fn a_number_gets_its_hourly_mos_then_is_refused_until_the_bucket_refills() {
        let (rules, alice, bob) = (rules(), number("+8613800138000"), number("+8613700137000"));
        let mut limits = NumberLimits::default();
        for _ in 0..3 {
            assert_eq!(admit(&mut limits, &rules, &alice, NOW), Ok(()));
        }
        assert_eq!(
            admit(&mut limits, &rules, &alice, NOW),
            Err(Limit::MoPerNumber)
        );
        assert_eq!(admit(&mut limits, &rules, &bob, NOW), Ok(()), "per number");
        // One MO every 20 minutes comes back.
        assert_eq!(
            admit(&mut limits, &rules, &alice, NOW + 1199),
            Err(Limit::MoPerNumber)
        );
        assert_eq!(admit(&mut limits, &rules, &alice, NOW + 1200), Ok(()));
        assert_eq!(
            admit(&mut limits, &rules, &alice, NOW + 1200),
            Err(Limit::MoPerNumber)
        );
    }

    #[test]
    fn refused_mos_do_not_count_against_the_number() {
        let (rules, alice) = (rules(), number("+8613800138000"));
        let mut limits = NumberLimits::default();
        for _ in 0..100 {
            let _ = admit(&mut limits, &rules, &alice, NOW);
        }
        // A flood does not push the refill further out: 20 minutes later one is allowed.
        assert_eq!(admit(&mut limits, &rules, &alice, NOW + 1200), Ok(()));
    }

    #[test]
    fn an_mo_processed_again_after_a_failure_counts_once() {
        let (rules, alice) = (rules(), number("+8613800138000"));
        let mut limits = NumberLimits::default();
        for _ in 0..10 {
            assert_eq!(limits.admit_mo(&rules, &alice, 7, NOW), Ok(()));
        }
        for _ in 0..2 {
            assert_eq!(admit(&mut limits, &rules, &alice, NOW), Ok(()));
        }
        assert_eq!(
            admit(&mut limits, &rules, &alice, NOW),
            Err(Limit::MoPerNumber)
        );
    }

    #[test]
    fn deny_list_matches_numbers_and_prefixes() {
        let rules = rules();
        let mut limits = NumberLimits::default();
        for denied in ["+19005550100", "+8613900139000"] {
            assert_eq!(
                admit(&mut limits, &rules, &number(denied), NOW),
                Err(Limit::DenyList)
            );
        }
        assert_eq!(
            admit(&mut limits, &rules, &number("+8613900139001"), NOW),
            Ok(())
        );
    }

    #[test]
    fn error_replies_are_limited_but_credentials_always_go() {
        let (rules, alice) = (rules(), number("+8613800138000"));
        let china = ["86".to_owned()];
        let mut limits = NumberLimits::default();
        let mut reply = |r: &Reply| limits.may_reply(&rules, &china, &alice, r, 1, NOW);
        assert_eq!(reply(&Reply::BadToken), Ok(()));
        assert_eq!(reply(&Reply::Help), Ok(()));
        assert_eq!(reply(&Reply::Expired), Err(Limit::ErrorSmsPerNumber));
        let credentials = Reply::Credentials(Credentials {
            login: alice.digits().into(),
            password: "p".into(),
        });
        assert_eq!(reply(&credentials), Ok(()));
    }

    #[test]
    fn every_segment_of_a_long_reply_counts_against_the_number() {
        let (rules, alice) = (rules(), number("+8613800138000"));
        let china = ["86".to_owned()];
        let mut limits = NumberLimits::default();
        // Two a number: one reply of three segments is more than that, and counts nothing.
        let three = limits.may_reply(&rules, &china, &alice, &Reply::Help, 3, NOW);
        assert_eq!(three, Err(Limit::ErrorSmsPerNumber));
        let two = limits.may_reply(&rules, &china, &alice, &Reply::Help, 2, NOW);
        assert_eq!(two, Ok(()));
        let one = limits.may_reply(&rules, &china, &alice, &Reply::Help, 1, NOW);
        assert_eq!(one, Err(Limit::ErrorSmsPerNumber));
    }

    #[test]
    fn replies_go_only_to_the_allowed_countries() {
        let rules = rules();
        let mut limits = NumberLimits::default();
        let credentials = Reply::Credentials(Credentials {
            login: "447700900123".into(),
            password: "p".into(),
        });
        let uk = number("+447700900123");
        let china = ["86".to_owned()];
        for reply in [&Reply::Help, &credentials] {
            let sent = limits.may_reply(&rules, &china, &uk, reply, 1, NOW);
            assert_eq!(sent, Err(Limit::ReplyCountry));
        }
        let both = ["86".to_owned(), "44".to_owned()];
        assert_eq!(
            limits.may_reply(&rules, &both, &uk, &Reply::Help, 1, NOW),
            Ok(())
        );
    }

    #[test]
    fn new_accounts_are_limited_per_prefix() {
        let rules = rules();
        let mut limits = NumberLimits::default();
        let same_block = ["+8613800138000", "+8613800138001", "+8613800138002"].map(number);
        for n in &same_block[..2] {
            assert_eq!(limits.may_create_account(&rules, n, NOW), Ok(()));
            limits.account_created(&rules, n, NOW);
        }
        assert_eq!(
            limits.may_create_account(&rules, &same_block[2], NOW),
            Err(Limit::NewAccountsPerPrefix)
        );
        let other_block = number("+8613900000000");
        assert_eq!(limits.may_create_account(&rules, &other_block, NOW), Ok(()));
        // Half an hour later one more account may open in the block.
        assert_eq!(
            limits.may_create_account(&rules, &same_block[2], NOW + 1800),
            Ok(())
        );
    }

    #[test]
    fn zero_switches_a_limit_off() {
        let rules = LimitsConfig {
            mo_per_number_per_hour: 0,
            ..rules()
        };
        let mut limits = NumberLimits::default();
        let alice = number("+8613800138000");
        for _ in 0..1000 {
            assert_eq!(admit(&mut limits, &rules, &alice, NOW), Ok(()));
        }
    }

    #[test]
    fn sweep_forgets_only_full_buckets() {
        let (rules, alice, bob) = (rules(), number("+8613800138000"), number("+8613700137000"));
        let mut limits = NumberLimits::default();
        admit(&mut limits, &rules, &alice, NOW).unwrap();
        for _ in 0..3 {
            admit(&mut limits, &rules, &bob, NOW + 1000).unwrap();
        }
        limits.sweep(NOW + 1300);
        assert_eq!(limits.mos.tat.len(), 1, "alice's bucket is full again");
        assert_eq!(
            admit(&mut limits, &rules, &bob, NOW + 1300),
            Err(Limit::MoPerNumber)
        );
    }

    #[test]
    fn a_refused_login_is_recorded_and_nothing_is_sent() {
        let token = Token::for_verifier(&Verifier::random(), NOW);
        let alice = number("+8613800138000");
        let refused = refuse(
            Decision::LogIn(token),
            Limit::DenyList,
            &alice,
            NOW,
            &WINDOW,
        );
        let Decision::Answer {
            record: Some((challenge, record)),
            reply: None,
        } = refused
        else {
            panic!("{refused:?}")
        };
        assert_eq!(challenge, token.challenge());
        assert_eq!(
            record.state,
            LoginState::Rejected {
                reason: RejectReason::BlockedNumber
            }
        );
        let error = Decision::Answer {
            record: None,
            reply: Some(Reply::BadToken),
        };
        assert_eq!(
            refuse(error, Limit::MoPerNumber, &alice, NOW, &WINDOW),
            Decision::Answer {
                record: None,
                reply: None
            }
        );
    }

    #[test]
    fn password_failures_are_limited_per_login_and_per_address_with_the_wait() {
        let rules = LimitsConfig {
            password_failures_per_account_per_hour: 3,
            password_failures_per_address_per_hour: 5,
            ..LimitsConfig::default()
        };
        let mut guesses = PasswordGuesses::default();
        for _ in 0..3 {
            assert_eq!(
                guesses.admit(&rules, "+8613800138000", "10.0.0.1", NOW),
                Ok(())
            );
            guesses.failed(&rules, "+8613800138000", "10.0.0.1", NOW);
        }
        // Three an hour: the next is allowed 20 minutes after the first.
        assert_eq!(
            guesses.admit(&rules, "+8613800138000", "10.0.0.2", NOW),
            Err((Limit::PasswordFailuresPerAccount, 1_200))
        );
        assert_eq!(
            guesses.admit(&rules, "+8613800138000", "10.0.0.2", NOW + 1_200),
            Ok(())
        );
        for n in 0..2 {
            let login = format!("+861380013800{n}");
            guesses.failed(&rules, &login, "10.0.0.1", NOW);
        }
        assert_eq!(
            guesses.admit(&rules, "+8613700137000", "10.0.0.1", NOW),
            Err((Limit::PasswordFailuresPerAddress, 720))
        );
        guesses.sweep(NOW + 3_600);
        assert_eq!(
            guesses.admit(&rules, "+8613800138000", "10.0.0.1", NOW + 3_600),
            Ok(())
        );
    }
}
