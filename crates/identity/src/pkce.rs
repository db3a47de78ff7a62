//! Proof Key for Code Exchange (RFC 7636) for SMART on FHIR apps, which are public clients: the
//! app sends `code_challenge = BASE64URL(SHA256(code_verifier))` when it asks for an
//! authorization code and the verifier when it redeems the code, so a code intercepted on the way
//! back to the app is useless to anyone else.
//!
//! Only the `S256` method is supported: `plain` sends the secret itself as the challenge and
//! protects nothing against an attacker who can read the authorization request (OAuth 2.0
//! Security BCP, RFC 9700 § 2.1.1; SMART App Launch 2.x requires S256).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::token::constant_time_eq;
use crate::Error;

/// The one `code_challenge_method` accepted.
pub const METHOD_S256: &str = "S256";

/// Shortest code verifier allowed (RFC 7636 § 4.1).
pub const VERIFIER_MIN_LEN: usize = 43;
/// Longest code verifier allowed (RFC 7636 § 4.1).
pub const VERIFIER_MAX_LEN: usize = 128;

/// Length of an S256 challenge: base64url of 32 bytes, unpadded.
const CHALLENGE_LEN: usize = 43;

/// Whether `method` is a `code_challenge_method` Portico accepts (only `S256`, case-sensitive as
/// RFC 7636 defines it).
pub fn is_supported_method(method: &str) -> bool {
    method == METHOD_S256
}

/// Whether `verifier` is a well-formed code verifier: 43 to 128 characters of
/// `A-Z a-z 0-9 - . _ ~`.
pub fn is_valid_verifier(verifier: &str) -> bool {
    (VERIFIER_MIN_LEN..=VERIFIER_MAX_LEN).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Whether `challenge` has the shape of an S256 challenge (43 base64url characters), for
/// refusing a malformed authorization request up front.
pub fn is_valid_challenge(challenge: &str) -> bool {
    challenge.len() == CHALLENGE_LEN
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

/// The S256 challenge for `verifier`: what a client sends with its authorization request.
pub fn challenge_s256(verifier: &str) -> Result<String, Error> {
    if !is_valid_verifier(verifier) {
        return Err(Error::InvalidCodeVerifier);
    }
    Ok(URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())))
}

/// Whether `verifier` is well formed and its S256 challenge equals `challenge` (compared in
/// constant time). Any malformed input is simply not a match.
pub fn verify_s256(verifier: &str, challenge: &str) -> bool {
    if !is_valid_challenge(challenge) {
        return false;
    }
    match challenge_s256(verifier) {
        Ok(expected) => constant_time_eq(expected.as_bytes(), challenge.as_bytes()),
        Err(_) => false,
    }
}

/// [`verify_s256`] for the method stored with the authorization code: any method other than
/// `S256` (including `plain` and a missing one) never verifies.
pub fn verify(method: &str, verifier: &str, challenge: &str) -> bool {
    is_supported_method(method) && verify_s256(verifier, challenge)
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7636 Appendix B.
    const RFC_VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const RFC_CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn rfc7636_appendix_b_vector() {
        assert_eq!(challenge_s256(RFC_VERIFIER).as_deref(), Ok(RFC_CHALLENGE));
        assert!(verify_s256(RFC_VERIFIER, RFC_CHALLENGE));
        assert!(verify("S256", RFC_VERIFIER, RFC_CHALLENGE));
    }

    #[test]
    fn wrong_verifier_or_challenge_fails() {
        let other = "eBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert!(!verify_s256(other, RFC_CHALLENGE));
        let mut challenge = RFC_CHALLENGE.to_string();
        challenge.replace_range(0..1, "F");
        assert!(!verify_s256(RFC_VERIFIER, &challenge));
    }

    #[test]
    fn plain_and_unknown_methods_are_refused() {
        // With `plain` the challenge is the verifier itself: refused even though it "matches".
        assert!(!verify("plain", RFC_VERIFIER, RFC_VERIFIER));
        assert!(!verify("plain", RFC_VERIFIER, RFC_CHALLENGE));
        assert!(!verify("s256", RFC_VERIFIER, RFC_CHALLENGE));
        assert!(!verify("", RFC_VERIFIER, RFC_CHALLENGE));
        assert!(!is_supported_method("plain"));
    }

    #[test]
    fn verifier_length_edges() {
        let min = "a".repeat(VERIFIER_MIN_LEN);
        let max = "~".repeat(VERIFIER_MAX_LEN);
        assert!(is_valid_verifier(&min));
        assert!(is_valid_verifier(&max));
        assert!(!is_valid_verifier(&min[1..]));
        assert!(!is_valid_verifier(&format!("{max}~")));
        assert_eq!(challenge_s256(&min[1..]), Err(Error::InvalidCodeVerifier));
        let challenge = challenge_s256(&max).unwrap_or_default();
        assert!(verify_s256(&max, &challenge));
    }

    #[test]
    fn verifier_characters_outside_the_unreserved_set_are_refused() {
        let base = "a".repeat(42);
        for bad in ['+', '/', '=', ' ', '%', 'é'] {
            let verifier = format!("{base}{bad}");
            assert!(!is_valid_verifier(&verifier), "{verifier}");
        }
        for good in ['-', '.', '_', '~', 'Z', '9'] {
            assert!(is_valid_verifier(&format!("{base}{good}")));
        }
    }

    #[test]
    fn challenge_shape() {
        assert!(is_valid_challenge(RFC_CHALLENGE));
        assert!(!is_valid_challenge(&RFC_CHALLENGE[1..]));
        assert!(!is_valid_challenge(&format!("{RFC_CHALLENGE}=")));
        assert!(!is_valid_challenge(&RFC_CHALLENGE.replace('-', "+")));
    }
}
