//! Recovery codes: single-use codes, shown once when the second factor is set up, that let a
//! person sign in after losing their authenticator.
//!
//! Each code is 12 symbols of a 31-symbol alphabet without look-alikes (≈ 59.4 bits), shown in
//! lower case as `k7qf-2m9x-p4ht`. They are stored as SHA-256 ([`crate::token::hash_token`] of
//! the canonical form) rather than with Argon2: a slow hash protects guessable secrets, and a
//! 59-bit random code is not guessable — an offline search of 2^59 SHA-256 per code costs more
//! than the account is worth, while online guessing is stopped by the rate limits long before.
//! A fast hash also lets the caller look a code up by its hash instead of trying each stored one.

use crate::code;
use crate::token::hash_token;

/// How many codes [`generate`] makes.
pub const CODE_COUNT: usize = 10;

/// Symbols in one code (separators excluded).
pub const CODE_LEN: usize = 12;

/// A new set of [`CODE_COUNT`] codes: the codes to show the person once (lower case, grouped)
/// and, in the same order, the hashes to store.
pub fn generate() -> (Vec<String>, Vec<String>) {
    (0..CODE_COUNT)
        .map(|_| {
            let raw = code::generate(CODE_LEN);
            let hash = hash_token(&raw);
            (code::group(&raw).to_ascii_lowercase(), hash)
        })
        .unzip()
}

/// The stored hash of a code as typed, ignoring case, spaces and dashes; None when the input
/// cannot be a recovery code (wrong length or a symbol outside the alphabet), so that it can be
/// refused without a lookup.
pub fn hash(code: &str) -> Option<String> {
    code::normalise(code, CODE_LEN).map(|c| hash_token(&c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ten_distinct_codes_with_matching_hashes() {
        let (codes, hashes) = generate();
        assert_eq!(codes.len(), CODE_COUNT);
        assert_eq!(hashes.len(), CODE_COUNT);
        assert_eq!(codes.iter().collect::<HashSet<_>>().len(), CODE_COUNT);
        for (code, stored) in codes.iter().zip(&hashes) {
            assert_eq!(hash(code).as_ref(), Some(stored));
        }
    }

    #[test]
    fn codes_look_like_k7qf_2m9x_p4ht() {
        let (codes, _) = generate();
        for code in codes {
            assert_eq!(code.len(), 14, "{code}");
            let parts: Vec<&str> = code.split('-').collect();
            assert_eq!(parts.len(), 3);
            assert!(parts.iter().all(|p| p.len() == 4));
            assert!(code
                .bytes()
                .all(|b| b == b'-' || b.is_ascii_digit() || b.is_ascii_lowercase()));
        }
    }

    #[test]
    fn entropy_is_at_least_50_bits() {
        let bits = CODE_LEN as f64 * (code::ALPHABET.len() as f64).log2();
        assert!(bits >= 50.0, "{bits}");
    }

    #[test]
    fn hash_ignores_case_spaces_and_dashes() {
        let stored = hash("k7qf-2m9x-p4ht");
        assert!(stored.is_some());
        assert_eq!(hash("K7QF2M9XP4HT"), stored);
        assert_eq!(hash(" k7qf 2m9x  p4ht "), stored);
        assert_ne!(hash("k7qf-2m9x-p4hu"), stored);
    }

    #[test]
    fn malformed_codes_have_no_hash() {
        assert_eq!(hash(""), None);
        assert_eq!(hash("k7qf-2m9x"), None);
        assert_eq!(hash("k7qf-2m9x-p4ht-2"), None);
        assert_eq!(hash("k7qf-2m9x-p4h!"), None);
    }
}
