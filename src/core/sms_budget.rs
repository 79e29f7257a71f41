//! Spending the global outbound SMS budget ([`super::budget`]): one way for every SMS that
//! moauth decides to send, from the login pipeline (replies, PASSWORD's new password) and
//! from the registrar (a new account's password), so neither can go around it.

use std::sync::Arc;

use tracing::warn;

use super::budget::{BudgetHealth, Period, SmsClass, SmsCounts, Windows, caps, fits, is_on};
use super::clock::UnixSecs;
use super::error::StoreError;
use super::limits::LimitsConfig;
use super::store::SmsBudgetStore;

/// The shared counts (one store, every node) and what this node last found of them.
#[derive(Clone)]
pub struct SmsBudget {
    pub counts: Arc<dyn SmsBudgetStore>,
    /// For `/readyz`, the metrics and the log.
    pub health: BudgetHealth,
}

impl SmsBudget {
    /// Spends `segments` on an SMS of `class`, or refuses it (spending nothing, and on sled
    /// writing nothing) when its class's share of the hour's or the day's budget is spent:
    /// true if it may go out. Spent before the SMS is committed: one whose write then fails,
    /// and is made again, counts twice, which only ever holds back a little early.
    pub async fn spend(
        &self,
        class: SmsClass,
        segments: u32,
        rules: &LimitsConfig,
        now: UnixSecs,
    ) -> Result<bool, StoreError> {
        if !is_on(rules) {
            return Ok(true);
        }
        let segments = u64::from(segments);
        let after = self
            .counts
            .count_sms(Windows::at(now), segments, caps(rules, class))
            .await?;
        // The store added them if and only if they fit its caps, which are `fits`'s.
        let Err(period) = fits(rules, class, after) else {
            self.health.sent(class);
            return Ok(true);
        };
        if self.health.held(class, period, now) {
            let (budget, spent) = match period {
                Period::Hour => (rules.sms_per_hour, after.hour),
                Period::Day => (rules.sms_per_day, after.day),
            };
            warn!(
                period = period.as_str(),
                budget,
                spent = spent.saturating_sub(segments),
                held = match class {
                    SmsClass::Credentials => "every SMS",
                    SmsClass::Reply => "every SMS but credentials",
                },
                "outbound SMS budget spent: SMS held back until its window ends; MOs are still processed"
            );
        }
        Ok(false)
    }

    /// Whether one more SMS of `class` fits now; spends nothing.
    pub async fn has_room(
        &self,
        class: SmsClass,
        rules: &LimitsConfig,
        now: UnixSecs,
    ) -> Result<bool, StoreError> {
        if !is_on(rules) {
            return Ok(true);
        }
        let counts = self
            .counts
            .count_sms(Windows::at(now), 0, caps(rules, class))
            .await?;
        let one_more = SmsCounts {
            hour: counts.hour + 1,
            day: counts.day + 1,
        };
        Ok(fits(rules, class, one_more).is_ok())
    }
}
