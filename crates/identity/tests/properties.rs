//! Property tests over arbitrary input: no parse or verify function of the crate panics on any
//! string, byte sequence, time or stored state, and the round trips hold.

use chrono::{DateTime, TimeDelta, Utc};
use identity::password::{check_strength, is_common, PasswordPolicy, Verification};
use identity::ratelimit::{self, LimitRule, LockoutRule, LockoutState};
use identity::{csrf, invitation, pkce, recovery, token, totp};
use proptest::prelude::*;

fn cheap() -> PasswordPolicy {
    PasswordPolicy::with_params(8, 1, 1).expect("valid params")
}

fn instant(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap_or(DateTime::UNIX_EPOCH)
}

/// Seconds within the years chrono can represent, with room for arithmetic.
fn any_secs() -> impl Strategy<Value = i64> {
    -200_000_000_000i64..200_000_000_000
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn strength_rules_never_panic(password in any::<String>(), context in proptest::collection::vec(any::<String>(), 0..4)) {
        let context: Vec<&str> = context.iter().map(String::as_str).collect();
        let _ = check_strength(&password, &context);
        let _ = is_common(&password);
    }

    #[test]
    fn verifying_any_string_as_a_hash_is_invalid_not_a_panic(password in any::<String>(), phc in any::<String>()) {
        prop_assert_eq!(cheap().verify(&password, &phc), Verification::Invalid);
    }

    #[test]
    fn verifying_phc_shaped_strings_with_any_parameters_never_panics(
        alg in prop::sample::select(vec!["argon2id", "argon2i", "argon2d", "argon2x", "pbkdf2"]),
        v in prop::sample::select(vec!["16", "19", "20", "", "-1"]),
        m in prop::sample::select(vec![0u64, 1, 7, 8, 64, 2_000_000, u64::from(u32::MAX), u64::MAX]),
        t in prop::sample::select(vec![0u64, 1, 2, 17, u64::from(u32::MAX)]),
        p in prop::sample::select(vec![0u64, 1, 2, 17, 300]),
        salt in "[A-Za-z0-9+/]{0,70}",
        hash in "[A-Za-z0-9+/]{0,100}",
    ) {
        let phc = format!("$${alg}$v={v}$m={m},t={t},p={p}$${salt}$${hash}");
        // Random output never matches; what matters is that parsing and bounds hold.
        prop_assert_eq!(cheap().verify("password", &phc), Verification::Invalid);
    }

    #[test]
    fn hash_then_verify_round_trips(password in "\\PC{0,40}", other in "\\PC{0,40}") {
        let policy = cheap();
        let phc = policy.hash(&password).expect("hash");
        prop_assert_eq!(policy.verify(&password, &phc), Verification::Valid { needs_rehash: false });
        if identity::password::normalise(&other) != identity::password::normalise(&password) {
            prop_assert_eq!(policy.verify(&other, &phc), Verification::Invalid);
        }
    }

    #[test]
    fn totp_parsing_and_verifying_never_panic(text in any::<String>(), code in any::<String>(), now in any::<i64>(), last in any::<Option<i64>>()) {
        let _ = totp::Secret::from_base32(&text);
        let secret = totp::Secret::generate();
        let _ = totp::verify(&secret, &code, now, last);
        let _ = totp::code_at(&secret, now);
    }

    #[test]
    fn totp_codes_verify_once(now in 0i64..10_000_000_000, bytes in proptest::collection::vec(any::<u8>(), 16..=64)) {
        let secret = totp::Secret::from_bytes(&bytes).expect("16 to 64 bytes");
        let parsed = totp::Secret::from_base32(&secret.to_base32());
        prop_assert_eq!(parsed, Ok(secret.clone()));
        let code = totp::code_at(&secret, now).expect("after 1970");
        let step = totp::verify(&secret, &code, now, None);
        prop_assert_eq!(step, Ok(totp::step_at(now)));
        prop_assert_eq!(totp::verify(&secret, &code, now, step.ok()), Err(totp::Rejection::Replayed));
    }

    #[test]
    fn recovery_and_invitation_parsing_never_panic(input in any::<String>()) {
        let _ = recovery::hash(&input);
        let _ = invitation::hash(&input);
        if let Some(canonical) = invitation::normalise(&input) {
            prop_assert_eq!(canonical.len(), 12);
        }
    }

    #[test]
    fn codes_hash_the_same_however_they_are_typed(spaces in proptest::collection::vec(prop::sample::select(vec!["", " ", "-", "  "]), 12)) {
        let (code, stored) = invitation::generate();
        let raw: String = code.chars().filter(|c| *c != '-').collect();
        let typed: String = raw.to_lowercase().chars().zip(&spaces).map(|(c, s)| format!("{c}{s}")).collect();
        prop_assert_eq!(invitation::hash(&typed), Some(stored));
    }

    #[test]
    fn pkce_never_panics_and_round_trips(verifier in any::<String>(), challenge in any::<String>(), good in "[A-Za-z0-9._~-]{43,128}") {
        let _ = pkce::verify_s256(&verifier, &challenge);
        let _ = pkce::verify(&challenge, &verifier, &challenge);
        let _ = pkce::challenge_s256(&verifier);
        let c = pkce::challenge_s256(&good).expect("valid verifier");
        prop_assert!(pkce::verify_s256(&good, &c));
        prop_assert!(pkce::verify("S256", &good, &c));
        prop_assert!(!pkce::verify("plain", &good, &good));
    }

    #[test]
    fn csrf_never_panics_and_binds_session_and_action(secret in proptest::collection::vec(any::<u8>(), 0..64), action in any::<String>(), other in any::<String>(), token in any::<String>()) {
        let _ = csrf::verify_csrf(&secret, &action, &token);
        if let Some(t) = csrf::csrf_token(&secret, &action) {
            prop_assert!(csrf::verify_csrf(&secret, &action, &t));
            if other != action {
                prop_assert!(!csrf::verify_csrf(&secret, &other, &t));
            }
        } else {
            prop_assert!(secret.len() < csrf::MIN_SECRET_BYTES);
        }
    }

    #[test]
    fn token_hash_is_always_64_hex(input in any::<String>()) {
        let h = token::hash_token(&input);
        prop_assert_eq!(h.len(), 64);
        prop_assert!(h.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    }

    #[test]
    fn limit_window_is_never_shorter_than_a_second(max in any::<u32>(), per_secs in any::<i64>()) {
        let rule = LimitRule { max, per_secs };
        prop_assert!(rule.window() >= TimeDelta::seconds(1));
        if (1..1_000_000_000).contains(&per_secs) {
            prop_assert_eq!(rule.window(), TimeDelta::seconds(per_secs));
        }
    }

    #[test]
    fn lockout_never_panics_and_never_locks_longer_than_the_maximum(
        failures in any::<u32>(), lockouts in any::<u32>(), last in any_secs(), until in proptest::option::of(any_secs()), now in any_secs(),
        rule_failures in any::<u32>(), base in any::<i64>(), max_secs in 0i64..10_000_000, forget in any::<i64>()
    ) {
        let rule = LockoutRule { failures: rule_failures, base_secs: base, max_secs, forget_after_secs: forget };
        let state = LockoutState { failures, lockouts, last_failure: instant(last), locked_until: until.map(instant) };
        let now = instant(now);
        let _ = ratelimit::check_lockout(Some(&state), now);
        let next = ratelimit::record_failure(Some(state), now, &rule);
        if next != state {
            if let Some(locked) = next.locked_until.filter(|u| *u > now) {
                prop_assert!(locked - now <= TimeDelta::seconds(max_secs));
            }
        }
    }
}
