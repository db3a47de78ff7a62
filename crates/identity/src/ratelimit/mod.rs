//! Rate limits and account lockout: the rules, and the arithmetic of lockout.
//!
//! A rate limit is counted by the database (`store`'s `rate_limit_hit`: one atomic statement
//! per hit over a fixed window), so it holds across any number of Portico instances behind a
//! load balancer; this module only names the numbers ([`LimitRule`], in [`rules`]) so that they
//! are reviewed in one place. Lockout lengths (doubling per lockout) are [`LockoutRule`].

mod lockout;
pub mod rules;

use chrono::TimeDelta;

pub use lockout::{check_lockout, record_failure, LockoutRule, LockoutState};

/// At most `max` attempts per window of `per_secs` seconds; the window starts at the first
/// attempt after the previous one ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitRule {
    pub max: u32,
    pub per_secs: i64,
}

impl LimitRule {
    /// The window as a duration (at least one second, so a rule can never mean "no window").
    pub fn window(&self) -> TimeDelta {
        TimeDelta::try_seconds(self.per_secs.max(1)).unwrap_or(TimeDelta::seconds(1))
    }
}

/// The answer to "may this attempt go ahead?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Allowed,
    /// Refused; the attempt may be retried after this many seconds (for `Retry-After` and for
    /// telling the person when to try again). Always at least 1.
    Limited {
        retry_after_secs: u64,
    },
}

impl Outcome {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Outcome::Allowed)
    }
}

/// Whole seconds from `now_ms` until `until_ms`, rounded up and at least 1, so that a retry
/// at `now + retry_after` is never early.
fn retry_after_secs(now_ms: i64, until_ms: i64) -> u64 {
    let ms = until_ms.saturating_sub(now_ms).max(1);
    u64::try_from(ms.saturating_add(999) / 1000).unwrap_or(1)
}
