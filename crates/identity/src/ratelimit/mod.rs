//! Rate limits and account lockout as pure arithmetic over a small state record.
//!
//! The caller keeps one state row per key (an IP address, an account) in the database and, in
//! one transaction, reads it, calls [`check`] (or the lockout functions) with the time, and
//! writes back the new state. Keeping the state in the database, rather than in a server's
//! memory, makes the limits hold across any number of Portico instances behind a load balancer.
//! The rules themselves are named constants in [`rules`], so they are reviewed in one place.

mod limiter;
mod lockout;
pub mod rules;

pub use limiter::{check, LimitRule, LimitState};
pub use lockout::{check_lockout, record_failure, LockoutRule, LockoutState};

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
