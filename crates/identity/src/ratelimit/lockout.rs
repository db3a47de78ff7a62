//! Account lockout after repeated failures: after `failures` wrong passwords (or second-factor
//! codes) in a row the account is locked for `base_secs`, and each further lockout doubles the
//! time, up to `max_secs`. A clean stretch of `forget_after_secs` after the last failure or
//! lockout forgets everything.
//!
//! This slows guessing of one account to a few tries a day whatever the attacker's number of
//! IP addresses, which the per-IP limit alone cannot do. The price is that an attacker can keep
//! someone's account locked by failing on purpose, so the sign-in page should tell a locked-out
//! person when to try again and offer the reset route, which lockout does not block.

use chrono::{DateTime, TimeDelta, Utc};

use super::{retry_after_secs, Outcome};

/// The lockout policy: see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutRule {
    pub failures: u32,
    pub base_secs: i64,
    pub max_secs: i64,
    pub forget_after_secs: i64,
}

impl LockoutRule {
    /// Seconds of the `n`-th lockout (1-based): `base · 2^(n-1)`, at most `max_secs`.
    pub fn lockout_secs(&self, n: u32) -> i64 {
        let doublings = n.saturating_sub(1).min(62);
        self.base_secs
            .max(0)
            .saturating_mul(1_i64 << doublings)
            .min(self.max_secs.max(0))
    }
}

/// The stored lockout state of one account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutState {
    /// Failures since the last lockout (or since the state was forgotten).
    pub failures: u32,
    /// Lockouts so far, which sets the length of the next one.
    pub lockouts: u32,
    pub last_failure: DateTime<Utc>,
    pub locked_until: Option<DateTime<Utc>>,
}

/// Whether the account may attempt to sign in at `now`.
pub fn check_lockout(state: Option<&LockoutState>, now: DateTime<Utc>) -> Outcome {
    match state.and_then(|s| s.locked_until) {
        Some(until) if until > now => Outcome::Limited {
            retry_after_secs: retry_after_secs(now.timestamp_millis(), until.timestamp_millis()),
        },
        _ => Outcome::Allowed,
    }
}

/// The state after a failed attempt at `now`. A failure while the account is locked (which the
/// caller should not even have tried) changes nothing, so it cannot stretch a lockout. After a
/// successful sign-in the caller deletes the state.
pub fn record_failure(
    state: Option<LockoutState>,
    now: DateTime<Utc>,
    rule: &LockoutRule,
) -> LockoutState {
    let fresh = LockoutState {
        failures: 0,
        lockouts: 0,
        last_failure: now,
        locked_until: None,
    };
    let mut state = match state {
        Some(s) if s.locked_until.is_some_and(|until| until > now) => return s,
        Some(s) if forgotten(&s, now, rule) => fresh,
        Some(s) => s,
        None => fresh,
    };
    state.failures = state.failures.saturating_add(1);
    state.last_failure = now;
    if state.failures >= rule.failures {
        state.lockouts = state.lockouts.saturating_add(1);
        state.failures = 0;
        let secs = rule.lockout_secs(state.lockouts);
        state.locked_until = Some(
            TimeDelta::try_seconds(secs)
                .and_then(|d| now.checked_add_signed(d))
                .unwrap_or(now),
        );
    }
    state
}

/// Whether `forget_after_secs` have passed since the later of the last failure and the end of the
/// last lockout.
fn forgotten(state: &LockoutState, now: DateTime<Utc>, rule: &LockoutRule) -> bool {
    let last = state
        .locked_until
        .map_or(state.last_failure, |until| until.max(state.last_failure));
    now.signed_duration_since(last).num_seconds() >= rule.forget_after_secs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ratelimit::rules::ACCOUNT_LOCKOUT;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).expect("valid")
    }

    /// The state after `n` (at least one) failures at `now`.
    fn fail_n(state: Option<LockoutState>, now: DateTime<Utc>, n: u32) -> LockoutState {
        (0..n)
            .fold(state, |s, _| Some(record_failure(s, now, &ACCOUNT_LOCKOUT)))
            .expect("n > 0")
    }

    #[test]
    fn four_failures_do_not_lock_the_fifth_locks_for_15_minutes() {
        let four = fail_n(None, t0(), 4);
        assert_eq!(check_lockout(Some(&four), t0()), Outcome::Allowed);
        let five = fail_n(Some(four), t0(), 1);
        assert_eq!(
            check_lockout(Some(&five), t0()),
            Outcome::Limited {
                retry_after_secs: 900
            }
        );
        let almost = t0() + TimeDelta::seconds(899);
        assert_eq!(
            check_lockout(Some(&five), almost),
            Outcome::Limited {
                retry_after_secs: 1
            }
        );
        assert_eq!(
            check_lockout(Some(&five), t0() + TimeDelta::seconds(900)),
            Outcome::Allowed
        );
    }

    #[test]
    fn lockouts_double_up_to_24_hours() {
        let secs: Vec<i64> = (1..=9).map(|n| ACCOUNT_LOCKOUT.lockout_secs(n)).collect();
        assert_eq!(
            secs,
            [900, 1800, 3600, 7200, 14400, 28800, 57600, 86400, 86400]
        );
        assert_eq!(ACCOUNT_LOCKOUT.lockout_secs(u32::MAX), 86400);

        // Walk through them: five failures right after each lockout ends.
        let mut now = t0();
        let mut state = None;
        for want in [900, 1800, 3600, 7200] {
            let s = fail_n(state, now, 5);
            assert_eq!(
                check_lockout(Some(&s), now),
                Outcome::Limited {
                    retry_after_secs: want
                }
            );
            now += TimeDelta::seconds(want as i64);
            state = Some(s);
        }
    }

    #[test]
    fn failures_while_locked_change_nothing() {
        let locked = fail_n(None, t0(), 5);
        let later = t0() + TimeDelta::seconds(60);
        assert_eq!(
            record_failure(Some(locked), later, &ACCOUNT_LOCKOUT),
            locked
        );
    }

    #[test]
    fn a_quiet_day_forgets_failures_and_lockouts() {
        let s = fail_n(None, t0(), 5); // locked until t0 + 15 min, lockouts = 1
        let s = fail_n(Some(s), t0() + TimeDelta::seconds(900), 3);
        assert_eq!(s.failures, 3);
        // 24 h after the last failure: forgotten, so this failure is the first of a new series.
        let next_day = t0() + TimeDelta::seconds(900 + 86_400);
        let s = record_failure(Some(s), next_day, &ACCOUNT_LOCKOUT);
        assert_eq!((s.failures, s.lockouts, s.locked_until), (1, 0, None));
        // Not yet forgotten one second earlier.
        let s2 = fail_n(None, t0(), 5);
        let s2 = fail_n(Some(s2), t0() + TimeDelta::seconds(900), 3);
        let s2 = record_failure(
            Some(s2),
            t0() + TimeDelta::seconds(900 + 86_399),
            &ACCOUNT_LOCKOUT,
        );
        assert_eq!((s2.failures, s2.lockouts), (4, 1));
    }

    #[test]
    fn forgetting_counts_from_the_end_of_a_long_lockout() {
        let mut now = t0();
        let mut state = None;
        for n in 1..=8 {
            let s = fail_n(state, now, 5);
            now += TimeDelta::seconds(ACCOUNT_LOCKOUT.lockout_secs(n));
            state = Some(s);
        }
        // The 8th lockout lasted 24 h and has just ended; the next series still locks for 24 h.
        let s = fail_n(state, now, 5);
        assert_eq!(
            check_lockout(Some(&s), now),
            Outcome::Limited {
                retry_after_secs: 86_400
            }
        );
    }

    #[test]
    fn no_state_is_allowed() {
        assert_eq!(check_lockout(None, t0()), Outcome::Allowed);
    }
}
