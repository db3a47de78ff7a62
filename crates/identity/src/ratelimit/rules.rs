//! Portico's rate-limit and lockout rules, in one place for review.
//!
//! The numbers follow OWASP ASVS 5.0 V6.3 (anti-automation) and NIST SP 800-63B § 3.2.2, which
//! caps consecutive failed attempts on one account at 100 at most; ours is far stricter.

use super::{LimitRule, LockoutRule};

/// Sign-in attempts (password step) from one IP address: 20 per 5 minutes.
pub const SIGN_IN_PER_IP: LimitRule = LimitRule {
    max: 20,
    per_secs: 5 * 60,
};

/// Second-factor attempts (TOTP or recovery code) on one account: 5 per 5 minutes.
pub const TOTP_PER_ACCOUNT: LimitRule = LimitRule {
    max: 5,
    per_secs: 5 * 60,
};

/// Invitation-code redemptions from one IP address: 10 per hour.
pub const INVITATION_PER_IP: LimitRule = LimitRule {
    max: 10,
    per_secs: 60 * 60,
};

/// Failed sign-ins on one account: 5 failures lock it for 15 minutes, each further lockout
/// doubles up to 24 hours, and a clean day forgets.
pub const ACCOUNT_LOCKOUT: LockoutRule = LockoutRule {
    failures: 5,
    base_secs: 15 * 60,
    max_secs: 24 * 60 * 60,
    forget_after_secs: 24 * 60 * 60,
};
