//! Rate limits and account lockout, kept in the database so that they hold across every
//! server instance (the numbers are `identity::ratelimit::rules`).
//!
//! - Per IP: every password attempt counts against `SIGN_IN_PER_IP` (key `signin-ip:{ip}`),
//!   every registration or invitation attempt against `INVITATION_PER_IP`
//!   (`register-ip:{ip}`, `invitation-ip:{ip}`). Counters are not cleared on success, or one
//!   good account would reset the budget for guessing others.
//! - Per account: second-factor attempts count against `TOTP_PER_ACCOUNT`
//!   (`second-factor:{account}`), and every wrong password or code is a failure towards
//!   lockout: the 5th, 10th, 15th… failure since the last full sign-in locks the account for
//!   15 minutes, doubling each time up to 24 hours (`ACCOUNT_LOCKOUT`). A day with no failure
//!   after the last one (or after the lock ended) forgets them. Only a complete sign-in
//!   (password and second factor) resets the count, so knowing the password does not buy more
//!   guesses at the code.

use chrono::{DateTime, TimeDelta, Utc};
use identity::ratelimit::rules::ACCOUNT_LOCKOUT;
use identity::ratelimit::LimitRule;
use store::accounts::Account;

use crate::client_ip::ClientIp;
use crate::{AppState, WebError};

pub fn sign_in_ip_key(ip: &ClientIp) -> String {
    format!("signin-ip:{}", ip.key())
}

pub fn register_ip_key(ip: &ClientIp) -> String {
    format!("register-ip:{}", ip.key())
}

pub fn invitation_ip_key(ip: &ClientIp) -> String {
    format!("invitation-ip:{}", ip.key())
}

pub fn second_factor_key(account_id: &str) -> String {
    format!("second-factor:{account_id}")
}

/// Counts one attempt on `key`; whether it may go ahead.
pub async fn allow(state: &AppState, key: &str, rule: &LimitRule) -> Result<bool, WebError> {
    let now = state.now();
    let count = state
        .store
        .accounts()
        .rate_limit_hit(key, now, rule.window(), rule.max)
        .await?;
    Ok(!count.is_limited(now))
}

/// Until when the account is locked after the store counted failure number `failures`.
pub fn lock_after(failures: u32, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    // Whole multiples only: the 5th, 10th, 15th… failure locks (no `%`, which the MSRV's
    // clippy and the current one want written differently).
    let lockouts = failures.checked_div(ACCOUNT_LOCKOUT.failures)?;
    if lockouts == 0 || lockouts.saturating_mul(ACCOUNT_LOCKOUT.failures) != failures {
        return None;
    }
    let secs = ACCOUNT_LOCKOUT.lockout_secs(lockouts);
    TimeDelta::try_seconds(secs).and_then(|d| now.checked_add_signed(d))
}

/// Whether the account's failures are old enough to forget: a whole quiet day since the last
/// failure (the account's last update) or since its lock ended.
pub fn failures_forgotten(account: &Account, now: DateTime<Utc>) -> bool {
    let last = account
        .locked_until
        .map_or(account.updated_at, |until| until.max(account.updated_at));
    account.failed_sign_ins > 0
        && now.signed_duration_since(last).num_seconds() >= ACCOUNT_LOCKOUT.forget_after_secs
}

/// Records a wrong password or code on `account`, locking it when the count says so. Returns
/// whether this failure locked it.
pub async fn record_failure(state: &AppState, account: &Account) -> Result<bool, WebError> {
    let now = state.now();
    let accounts = state.store.accounts();
    if failures_forgotten(account, now) {
        accounts
            .reset_sign_in_failures(&account.account_id, now)
            .await?;
    }
    let Some(failures) = accounts
        .record_sign_in_failure(&account.account_id, now)
        .await?
    else {
        return Ok(false);
    };
    match lock_after(failures, now) {
        Some(until) => {
            accounts
                .lock_account_until(&account.account_id, Some(until), now)
                .await?;
            Ok(true)
        }
        None => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::accounts::Role;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default()
    }

    #[test]
    fn every_fifth_failure_locks_for_twice_as_long_up_to_a_day() {
        assert_eq!(lock_after(0, t0()), None);
        assert_eq!(lock_after(4, t0()), None);
        assert_eq!(lock_after(5, t0()), Some(t0() + TimeDelta::minutes(15)));
        assert_eq!(lock_after(6, t0()), None);
        assert_eq!(lock_after(10, t0()), Some(t0() + TimeDelta::minutes(30)));
        assert_eq!(lock_after(15, t0()), Some(t0() + TimeDelta::hours(1)));
        assert_eq!(lock_after(40, t0()), Some(t0() + TimeDelta::hours(24)));
        assert_eq!(lock_after(u32::MAX - 4, t0()), None);
        assert_eq!(
            lock_after(5 * 1000, t0()),
            Some(t0() + TimeDelta::hours(24))
        );
    }

    #[test]
    fn failures_are_forgotten_after_a_quiet_day_counted_from_the_lock_end() {
        let mut a = Account::new("x", Role::Patient, t0());
        assert!(!failures_forgotten(&a, t0() + TimeDelta::days(2)));
        a.failed_sign_ins = 3;
        assert!(!failures_forgotten(&a, t0() + TimeDelta::hours(23)));
        assert!(failures_forgotten(&a, t0() + TimeDelta::hours(24)));
        a.locked_until = Some(t0() + TimeDelta::hours(24));
        assert!(!failures_forgotten(&a, t0() + TimeDelta::hours(47)));
        assert!(failures_forgotten(&a, t0() + TimeDelta::hours(48)));
    }
}
