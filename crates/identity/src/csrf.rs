//! Anti-forgery tokens for the server-rendered forms (the synchroniser-token pattern, OWASP CSRF
//! Cheat Sheet), made stateless with an HMAC.
//!
//! Each session has a random secret of its own (kept with the session row, never sent to the
//! browser). A form for `form_action` carries `HMAC-SHA256(session secret, "portico-csrf-v1" ‖
//! 0x00 ‖ form_action)`; a POST is accepted only with the token for its own action and session.
//! A page on another site can neither read the token nor compute it, so it cannot forge the POST;
//! a token leaked from one form does not work for another action, and every token dies with its
//! session (sign-out, expiry, or the rotation at sign-in). Nothing extra is stored per form.
//! The HTTP layer should still send `SameSite=Lax` cookies and check `Origin`: this is the layer
//! that holds when those are absent.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::token::constant_time_eq;

type HmacSha256 = Hmac<Sha256>;

/// Domain separation, so that the session secret's MAC can never be confused with another use.
const CONTEXT: &[u8] = b"portico-csrf-v1\0";

/// Shortest session secret accepted: an HMAC key shorter than 16 bytes could be guessed.
pub const MIN_SECRET_BYTES: usize = 16;

/// The token to embed in the form that posts to `form_action` (e.g. `/account/password`):
/// 43 base64url characters. None when `session_secret` is shorter than [`MIN_SECRET_BYTES`],
/// which is a fault of the caller that must not yield a guessable token.
pub fn csrf_token(session_secret: &[u8], form_action: &str) -> Option<String> {
    mac(session_secret, form_action).map(|tag| URL_SAFE_NO_PAD.encode(tag))
}

/// Whether `token` is the token for this session and `form_action`, compared in constant time.
/// False for any malformed token and for a too-short secret.
pub fn verify_csrf(session_secret: &[u8], form_action: &str, token: &str) -> bool {
    match mac(session_secret, form_action) {
        Some(expected) => constant_time_eq(
            URL_SAFE_NO_PAD.encode(expected).as_bytes(),
            token.as_bytes(),
        ),
        None => false,
    }
}

fn mac(session_secret: &[u8], form_action: &str) -> Option<Vec<u8>> {
    if session_secret.len() < MIN_SECRET_BYTES {
        return None;
    }
    // An HMAC accepts keys of any length, so this cannot fail; `ok()?` keeps it panic-free.
    let mut mac = HmacSha256::new_from_slice(session_secret).ok()?;
    mac.update(CONTEXT);
    mac.update(form_action.as_bytes());
    Some(mac.finalize().into_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    const OTHER_SECRET: &[u8] = b"fedcba9876543210fedcba9876543210";

    #[test]
    fn token_verifies_for_its_session_and_action() {
        let token = csrf_token(SECRET, "/account/password");
        assert!(token.is_some());
        let token = token.unwrap_or_default();
        assert_eq!(token.len(), 43);
        assert!(verify_csrf(SECRET, "/account/password", &token));
    }

    #[test]
    fn token_is_deterministic_hmac_sha256() {
        // The documented construction: HMAC-SHA256(key=SECRET, "portico-csrf-v1\0/x"), base64url.
        let a = csrf_token(SECRET, "/x");
        assert_eq!(a, csrf_token(SECRET, "/x"));
        let mut mac = HmacSha256::new_from_slice(SECRET).expect("any key length");
        mac.update(b"portico-csrf-v1\0/x");
        let want = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        assert_eq!(a.as_deref(), Some(want.as_str()));
    }

    #[test]
    fn token_fails_for_another_session_action_or_any_change() {
        let token = csrf_token(SECRET, "/account/password").unwrap_or_default();
        assert!(!verify_csrf(OTHER_SECRET, "/account/password", &token));
        assert!(!verify_csrf(SECRET, "/account/email", &token));
        assert!(!verify_csrf(SECRET, "/account/password", &token[1..]));
        assert!(!verify_csrf(
            SECRET,
            "/account/password",
            &format!("{token}A")
        ));
        assert!(!verify_csrf(SECRET, "/account/password", ""));
        let mut flipped = token.into_bytes();
        flipped[10] = if flipped[10] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).unwrap_or_default();
        assert!(!verify_csrf(SECRET, "/account/password", &flipped));
    }

    #[test]
    fn short_session_secrets_are_refused() {
        assert_eq!(csrf_token(b"", "/x"), None);
        assert_eq!(csrf_token(&SECRET[..15], "/x"), None);
        assert!(csrf_token(&SECRET[..16], "/x").is_some());
        assert!(!verify_csrf(b"", "/x", ""));
    }
}
