//! The global outbound SMS budget: how many SMS (segments, as billed) moauth may send per UTC
//! hour and per UTC day, over every number, decided without I/O.
//!
//! The per-number and per-prefix limits bound what one number or one block costs; an attacker
//! with many numbers still adds up. The budget caps the sum. Credential SMS (a new account's
//! password, PASSWORD's new one) keep a reserved share of it: other replies (error texts,
//! HELP, notices) may spend only the rest, so an attacker who burns error replies cannot stop
//! real users from getting their passwords.
//!
//! The windows are fixed (the clock hour and the UTC day, numbered from the epoch) rather than
//! sliding, so the counts are two integers a store can share between nodes with one atomic
//! add ([`crate::core::store::SmsBudgetStore`]). A window's first minutes may therefore follow
//! a spent previous window: at most twice a budget within an hour across the boundary.
//!
//! [`BudgetHealth`] remembers, for `/readyz`, the metrics and the log, which class of SMS this
//! node last found held back and until when (the end of the window that was spent).

use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::core::clock::UnixSecs;
use crate::core::limits::LimitsConfig;
use crate::core::replies::Reply;

const HOUR_SECS: u64 = 3_600;
const DAY_SECS: u64 = 86_400;

/// Which share of the budget an SMS may spend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsClass {
    /// A password: the whole budget, reserve included.
    Credentials,
    /// Anything else: the budget less the reserve.
    Reply,
}

impl SmsClass {
    pub fn of(reply: &Reply) -> SmsClass {
        match reply {
            Reply::Credentials(_) | Reply::NewPassword(_) => SmsClass::Credentials,
            _ => SmsClass::Reply,
        }
    }
}

/// The hour and the day `now` falls in, numbered from the epoch (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Windows {
    pub hour: u64,
    pub day: u64,
}

impl Windows {
    pub fn at(now: UnixSecs) -> Windows {
        Windows {
            hour: now / HOUR_SECS,
            day: now / DAY_SECS,
        }
    }
}

/// SMS counted in the current hour and day, over every node sharing the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SmsCounts {
    pub hour: u64,
    pub day: u64,
}

impl SmsCounts {
    /// The period whose count is past its cap in `caps` (the hour's first), if one is.
    pub fn over(self, caps: SmsCounts) -> Option<Period> {
        if self.hour > caps.hour {
            Some(Period::Hour)
        } else if self.day > caps.day {
            Some(Period::Day)
        } else {
            None
        }
    }
}

/// The budget that was spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Hour,
    Day,
}

impl Period {
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Hour => "hour",
            Period::Day => "day",
        }
    }

    /// When the window containing `now` ends: the budget is whole again.
    fn ends(self, now: UnixSecs) -> UnixSecs {
        let len = match self {
            Period::Hour => HOUR_SECS,
            Period::Day => DAY_SECS,
        };
        (now / len + 1) * len
    }
}

/// Whether the budget is switched on (either period above 0): off, nothing is counted.
pub fn is_on(rules: &LimitsConfig) -> bool {
    rules.sms_per_hour > 0 || rules.sms_per_day > 0
}

/// The most an SMS of `class` may bring each count to: its class's share of the hour's and
/// the day's budget, and no cap for a period switched off (0).
pub fn caps(rules: &LimitsConfig, class: SmsClass) -> SmsCounts {
    let share = |budget: u32| {
        let budget = u64::from(budget);
        match class {
            _ if budget == 0 => u64::MAX,
            SmsClass::Credentials => budget,
            SmsClass::Reply => {
                budget - budget * u64::from(rules.sms_reserved_for_credentials_percent) / 100
            }
        }
    };
    SmsCounts {
        hour: share(rules.sms_per_hour),
        day: share(rules.sms_per_day),
    }
}

/// Whether an SMS of `class` fits, given the counts `after` it was added; if not, the period
/// whose budget it would overspend (the hour's first).
pub fn fits(rules: &LimitsConfig, class: SmsClass, after: SmsCounts) -> Result<(), Period> {
    after.over(caps(rules, class)).map_or(Ok(()), Err)
}

/// The budget as `/readyz` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetState {
    /// SMS go out (or the budget is off).
    Ok,
    /// The replies' share is spent: only credential SMS go out.
    CredentialsOnly,
    /// Spent: no SMS goes out until the window ends.
    Exhausted,
}

/// Until when this node holds each class back, as it last found the shared counts.
#[derive(Debug, Clone, Default)]
pub struct BudgetHealth(Arc<Mutex<Holds>>);

#[derive(Debug, Default)]
struct Holds {
    replies_until: UnixSecs,
    credentials_until: UnixSecs,
}

impl BudgetHealth {
    /// An SMS of `class` was held back at `now` because `period`'s budget is spent. True if
    /// it is the first since that class last went out: the one to log.
    pub fn held(&self, class: SmsClass, period: Period, now: UnixSecs) -> bool {
        let mut holds = self.0.lock().expect("budget holds lock");
        let until = period.ends(now);
        let first = match class {
            SmsClass::Credentials => holds.credentials_until <= now,
            SmsClass::Reply => holds.replies_until <= now,
        };
        // What holds a password back holds every other reply too.
        holds.replies_until = holds.replies_until.max(until);
        if class == SmsClass::Credentials {
            holds.credentials_until = holds.credentials_until.max(until);
        }
        first
    }

    /// An SMS of `class` went out: the budget has room for it again (a new window, or a
    /// reload that raised the budget).
    pub fn sent(&self, class: SmsClass) {
        let mut holds = self.0.lock().expect("budget holds lock");
        holds.credentials_until = 0;
        if class == SmsClass::Reply {
            holds.replies_until = 0;
        }
    }

    pub fn state(&self, now: UnixSecs) -> BudgetState {
        let holds = self.0.lock().expect("budget holds lock");
        if holds.credentials_until > now {
            BudgetState::Exhausted
        } else if holds.replies_until > now {
            BudgetState::CredentialsOnly
        } else {
            BudgetState::Ok
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-02 10:00:00 UTC: the start of an hour.
    const NOW: UnixSecs = 1_796_205_600;

    fn rules(per_hour: u32, per_day: u32, reserved: u32) -> LimitsConfig {
        LimitsConfig {
            sms_per_hour: per_hour,
            sms_per_day: per_day,
            sms_reserved_for_credentials_percent: reserved,
            ..LimitsConfig::default()
        }
    }

    fn counts(hour: u64, day: u64) -> SmsCounts {
        SmsCounts { hour, day }
    }

    #[test]
    fn replies_spend_only_what_the_credentials_reserve_leaves() {
        let rules = rules(10, 0, 30);
        assert_eq!(fits(&rules, SmsClass::Reply, counts(7, 7)), Ok(()));
        assert_eq!(
            fits(&rules, SmsClass::Reply, counts(8, 8)),
            Err(Period::Hour)
        );
        assert_eq!(fits(&rules, SmsClass::Credentials, counts(10, 10)), Ok(()));
        assert_eq!(
            fits(&rules, SmsClass::Credentials, counts(11, 11)),
            Err(Period::Hour)
        );
    }

    #[test]
    fn the_day_budget_holds_when_the_hour_has_room() {
        let rules = rules(100, 150, 0);
        assert_eq!(
            fits(&rules, SmsClass::Credentials, counts(5, 151)),
            Err(Period::Day)
        );
        assert_eq!(
            fits(&rules, SmsClass::Reply, counts(101, 151)),
            Err(Period::Hour),
            "the hour is named first"
        );
    }

    #[test]
    fn zero_switches_a_period_off() {
        let off = rules(0, 0, 30);
        assert!(!is_on(&off));
        assert_eq!(
            fits(&off, SmsClass::Reply, counts(1 << 40, 1 << 40)),
            Ok(())
        );
        assert!(is_on(&rules(0, 5, 30)));
    }

    #[test]
    fn windows_are_the_utc_hour_and_day() {
        assert_eq!(Windows::at(NOW).hour + 1, Windows::at(NOW + 3_600).hour);
        assert_eq!(Windows::at(NOW - 1).hour + 1, Windows::at(NOW).hour);
        assert_eq!(Windows::at(NOW).day, Windows::at(NOW + 3_600 * 13).day);
        assert_eq!(Windows::at(NOW).day + 1, Windows::at(NOW + 3_600 * 14).day);
    }

    #[test]
    fn health_is_held_until_the_spent_window_ends_and_logged_once() {
        let health = BudgetHealth::default();
        assert_eq!(health.state(NOW), BudgetState::Ok);
        assert!(health.held(SmsClass::Reply, Period::Hour, NOW + 10));
        assert!(
            !health.held(SmsClass::Reply, Period::Hour, NOW + 20),
            "once"
        );
        assert_eq!(health.state(NOW + 20), BudgetState::CredentialsOnly);
        assert!(health.held(SmsClass::Credentials, Period::Hour, NOW + 30));
        assert_eq!(health.state(NOW + 30), BudgetState::Exhausted);
        assert_eq!(health.state(NOW + 3_600), BudgetState::Ok, "a new hour");
        assert!(health.held(SmsClass::Reply, Period::Day, NOW + 3_600));
        assert_eq!(health.state(NOW + 7_200), BudgetState::CredentialsOnly);
        health.sent(SmsClass::Credentials);
        assert_eq!(health.state(NOW + 7_200), BudgetState::CredentialsOnly);
        health.sent(SmsClass::Reply);
        assert_eq!(
            health.state(NOW + 7_200),
            BudgetState::Ok,
            "raised by a reload"
        );
    }
}
