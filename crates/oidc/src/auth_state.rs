//! What a sign-in must remember between sending the user to the provider and the callback:
//! `state` (binds the callback to this browser), `nonce` (binds the ID token to this sign-in)
//! and the PKCE verifier (binds the code to this client instance).
//!
//! The caller keeps it server-side or in an encrypted, HTTP-only cookie; it is serialisable for
//! that, and its `Debug` shows none of the values.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The secrets of one sign-in attempt.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthState {
    pub state: String,
    pub nonce: String,
    /// RFC 7636 `code_verifier`; only its SHA-256 (the challenge) went to the provider.
    pub pkce_verifier: String,
}

impl std::fmt::Debug for AuthState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthState { .. }")
    }
}

impl AuthState {
    /// Fresh random values: 256 bits each from the operating system.
    pub(crate) fn generate(rng: &SystemRandom) -> Result<AuthState> {
        Ok(AuthState {
            state: random_token(rng)?,
            nonce: random_token(rng)?,
            pkce_verifier: random_token(rng)?,
        })
    }

    /// RFC 7636 S256: `base64url(SHA-256(verifier))`.
    pub(crate) fn pkce_challenge(&self) -> String {
        pkce_challenge(&self.pkce_verifier)
    }
}

pub(crate) fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        verifier.as_bytes(),
    ))
}

/// 32 random bytes, base64url: 43 characters, within PKCE's 43–128 and URL-safe.
pub(crate) fn random_token(rng: &SystemRandom) -> Result<String> {
    let mut bytes = [0u8; 32];
    rng.fill(&mut bytes).map_err(|_| Error::Random)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_7636_example_challenge() {
        // RFC 7636 Appendix B.
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn values_are_fresh_distinct_and_pkce_sized() {
        let rng = SystemRandom::new();
        let a = AuthState::generate(&rng).expect("random");
        let b = AuthState::generate(&rng).expect("random");
        assert_ne!(a.state, b.state);
        assert_ne!(a.state, a.nonce);
        assert_ne!(a.nonce, a.pkce_verifier);
        assert_eq!(a.pkce_verifier.len(), 43);
        assert!(a
            .pkce_verifier
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    }

    #[test]
    fn debug_shows_no_secret() {
        let a = AuthState::generate(&SystemRandom::new()).expect("random");
        let shown = format!("{a:?}");
        assert!(!shown.contains(&a.state) && !shown.contains(&a.nonce));
    }
}
