//! Invitation codes: what a letter or SMS gives a patient (or proxy) to create their account and
//! link it to their record.
//!
//! 12 symbols from an alphabet without 0/O/1/I/L (≈ 59.4 bits), printed in groups of four
//! (`7KQF-2M9X-P4HT`), accepted in any case with or without separators, and stored only as
//! [`crate::token::hash_token`] of the canonical form, like every bearer secret (see
//! [`crate::token`] for why a fast hash is right for random codes). Guessing is bounded by
//! [`crate::ratelimit::rules::INVITATION_PER_IP`] and by the expiry the caller stores.

use crate::code;
use crate::token::hash_token;

/// Symbols in an invitation code (separators excluded).
pub const CODE_LEN: usize = 12;

/// A new invitation: the code to print or send (grouped, upper case) and the hash to store.
pub fn generate() -> (String, String) {
    let raw = code::generate(CODE_LEN);
    let hash = hash_token(&raw);
    (code::group(&raw), hash)
}

/// The canonical form of a typed code (upper case, no separators), or None when it cannot be an
/// invitation code.
pub fn normalise(input: &str) -> Option<String> {
    code::normalise(input, CODE_LEN)
}

/// The stored hash of a typed code, or None when it cannot be an invitation code.
pub fn hash(input: &str) -> Option<String> {
    normalise(input).map(|c| hash_token(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_code_is_grouped_and_hashes_to_the_stored_hash() {
        let (code, stored) = generate();
        assert_eq!(code.len(), 14);
        assert_eq!(code.as_bytes()[4], b'-');
        assert_eq!(code.as_bytes()[9], b'-');
        assert!(code
            .bytes()
            .all(|b| b == b'-' || code::ALPHABET.contains(&b)));
        assert_eq!(hash(&code), Some(stored.clone()));
        assert_eq!(hash(&code.to_lowercase().replace('-', " ")), Some(stored));
    }

    #[test]
    fn stored_hash_is_the_token_hash_of_the_canonical_form() {
        assert_eq!(normalise("7kqf-2m9x-p4ht").as_deref(), Some("7KQF2M9XP4HT"));
        assert_eq!(hash("7kqf-2m9x-p4ht"), Some(hash_token("7KQF2M9XP4HT")));
    }

    #[test]
    fn confusable_or_wrong_length_input_is_refused() {
        assert_eq!(hash("7KQF-2M9X-P4H1"), None);
        assert_eq!(hash("7KQF-2M9X-P4HI"), None);
        assert_eq!(hash("7KQF-2M9X-P4HL"), None);
        assert_eq!(hash("7KQF-2M9X"), None);
    }
}
