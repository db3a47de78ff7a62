//! Passwords: how they are stored ([`PasswordPolicy`], Argon2id) and which ones are refused
//! ([`check_strength`], NIST SP 800-63B and OWASP ASVS 5.0 V6).
//!
//! Every password is put in Unicode normalisation form NFKC before it is hashed or checked
//! (NIST SP 800-63B § 3.1.1.2), so that the same password typed on two devices — say `é` as one
//! code point on one and as `e` plus a combining accent on the other — is the same password.

mod common_list;
mod hashing;
mod patterns;
mod strength;

use unicode_normalization::UnicodeNormalization;

pub use common_list::{common_list_len, is_common};
pub use hashing::{PasswordPolicy, Verification, MAX_PASSWORD_BYTES};
pub use strength::{check_strength, Weakness, MAX_CHARS, MIN_CHARS};

/// `password` in Unicode normalisation form NFKC: the form that is hashed and checked.
pub fn normalise(password: &str) -> String {
    password.nfkc().collect()
}

/// NFKC then lower case: the form in which passwords are compared with the common-password list
/// and with personal information, which ignore case.
fn fold(password: &str) -> String {
    normalise(password).to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalise_makes_composed_and_decomposed_forms_equal() {
        assert_eq!(normalise("caf\u{e9}"), normalise("cafe\u{301}"));
        // Compatibility forms too: full-width letters and the "fi" ligature.
        assert_eq!(normalise("\u{ff30}\u{ff41}ss"), "Pass");
        assert_eq!(normalise("\u{fb01}sh"), "fish");
    }

    #[test]
    fn fold_ignores_case() {
        assert_eq!(fold("PassWORD"), "password");
        assert_eq!(fold("\u{ff30}ASS"), "pass");
    }
}
