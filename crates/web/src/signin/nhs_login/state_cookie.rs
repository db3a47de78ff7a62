//! What a sign-in with NHS login remembers between sending the browser away and its return —
//! `state`, `nonce`, the PKCE verifier and where to go afterwards — kept in the browser in a
//! sealed cookie, so that no server stores anything for sign-ins that are never finished and any
//! server on the database can finish one another started.
//!
//! **Sealed.** The value is encrypted and authenticated with AES-256-GCM: the browser (and
//! anything that reads its cookies) sees neither the PKCE verifier nor the nonce, and a changed
//! cookie does not open. Each cookie has its own key, derived from a random 32-byte salt sent
//! with it and a master key derived from the server key every server on the database shares
//! (`HMAC-SHA256(server key, label)`), so a nonce is never used twice under one key however many
//! cookies are made.
//!
//! **Short-lived.** It expires after [`LIFETIME`] (written inside the sealed value too, so an
//! old copy of the cookie does not open either), and the callback removes it, whatever the
//! outcome: one cookie serves one return from NHS login.
//!
//! **Cookie.** `__Host-portico-nhs-login` (`Secure`) on https, `portico-nhs-login` on plain
//! http, `HttpOnly; SameSite=Lax; Path=/`: Lax, because the return from NHS login is a top-level
//! navigation from another site, which Lax cookies accompany and Strict ones do not.

use axum::http::{header, HeaderMap, HeaderValue};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, TimeDelta, Utc};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use crate::session::Cookies;

/// How long a sign-in at NHS login may take. Long enough for someone who creates their NHS
/// login on the way (email and phone codes), short enough that a forgotten tab is dead.
pub(crate) const LIFETIME: TimeDelta = TimeDelta::minutes(30);

/// Bytes of the per-cookie salt.
const SALT_LEN: usize = 32;
/// What the master key is derived for, and what every sealed value is bound to (the AEAD's
/// associated data): a value sealed for another purpose under the same server key never opens.
const LABEL: &[u8] = b"portico/nhs-login/state-cookie/v1";
/// Longest cookie value read: far above what a sealed sign-in with the longest `next` takes.
const MAX_VALUE_LEN: usize = 4000;

/// One sign-in in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Pending {
    pub auth: oidc::AuthState,
    /// A safe local path, or empty (the account page).
    pub next: String,
    /// Unix seconds after which the cookie no longer opens.
    pub expires: i64,
}

/// Seals and opens [`Pending`] values.
pub(crate) struct Sealer {
    master: hmac::Key,
    rng: SystemRandom,
}

impl Sealer {
    pub(crate) fn new(server_key: &[u8]) -> Sealer {
        let derived = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, server_key), LABEL);
        Sealer {
            master: hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()),
            rng: SystemRandom::new(),
        }
    }

    /// The key of the cookie with `salt`.
    fn key(&self, salt: &[u8]) -> Option<LessSafeKey> {
        let key = hmac::sign(&self.master, salt);
        UnboundKey::new(&AES_256_GCM, key.as_ref())
            .ok()
            .map(LessSafeKey::new)
    }

    /// The cookie value: base64url of salt ‖ ciphertext ‖ tag. None only if the operating
    /// system's random source fails.
    pub(crate) fn seal(&self, pending: &Pending) -> Option<String> {
        let mut salt = [0u8; SALT_LEN];
        self.rng.fill(&mut salt).ok()?;
        let key = self.key(&salt)?;
        let mut data = serde_json::to_vec(pending).ok()?;
        // A key is used for this one value only, so the all-zero nonce is never repeated.
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key([0u8; NONCE_LEN]),
            Aad::from(LABEL),
            &mut data,
        )
        .ok()?;
        let mut out = salt.to_vec();
        out.extend_from_slice(&data);
        Some(URL_SAFE_NO_PAD.encode(out))
    }

    /// The sign-in in `value` if it was sealed by this server key, is unchanged and has not
    /// expired at `now`.
    pub(crate) fn open(&self, value: &str, now: DateTime<Utc>) -> Option<Pending> {
        if value.len() > MAX_VALUE_LEN {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(value).ok()?;
        if bytes.len() <= SALT_LEN {
            return None;
        }
        let (salt, sealed) = bytes.split_at(SALT_LEN);
        let key = self.key(salt)?;
        let mut data = sealed.to_vec();
        let plain = key
            .open_in_place(
                Nonce::assume_unique_for_key([0u8; NONCE_LEN]),
                Aad::from(LABEL),
                &mut data,
            )
            .ok()?;
        let pending: Pending = serde_json::from_slice(plain).ok()?;
        (now.timestamp() < pending.expires).then_some(pending)
    }
}

/// The cookie's name.
pub(crate) fn name(cookies: Cookies) -> &'static str {
    if cookies.secure() {
        "__Host-portico-nhs-login"
    } else {
        "portico-nhs-login"
    }
}

/// `Set-Cookie` for a sealed sign-in.
pub(crate) fn set(cookies: Cookies, value: &str) -> Option<HeaderValue> {
    build(cookies, value, LIFETIME.num_seconds())
}

/// `Set-Cookie` that removes it.
pub(crate) fn clear(cookies: Cookies) -> Option<HeaderValue> {
    build(cookies, "", 0)
}

fn build(cookies: Cookies, value: &str, max_age: i64) -> Option<HeaderValue> {
    let secure = if cookies.secure() { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Lax{secure}; Max-Age={max_age}",
        name(cookies)
    ))
    .ok()
}

/// The cookie's value from the request, when it looks like one (base64url, not too long).
pub(crate) fn read(headers: &HeaderMap, cookies: Cookies) -> Option<&str> {
    let wanted = name(cookies);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == wanted)
        .map(|(_, v)| v.trim())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= MAX_VALUE_LEN
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(next: &str, expires: i64) -> Pending {
        Pending {
            auth: oidc::AuthState {
                state: "state-value".into(),
                nonce: "nonce-value".into(),
                pkce_verifier: "verifier-value-verifier-value-verifier-value".into(),
            },
            next: next.into(),
            expires,
        }
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap_or_default()
    }

    #[test]
    fn a_sealed_sign_in_opens_until_it_expires_and_hides_its_secrets() {
        let sealer = Sealer::new(&[1u8; 32]);
        let p = pending("/records?page=2", 1_000);
        let value = sealer.seal(&p).expect("sealed");
        assert_eq!(sealer.open(&value, at(999)), Some(p.clone()));
        assert_eq!(sealer.open(&value, at(1_000)), None, "expired");
        let raw = URL_SAFE_NO_PAD.decode(&value).expect("base64url");
        let text = String::from_utf8_lossy(&raw);
        for secret in ["verifier-value", "nonce-value", "state-value", "records"] {
            assert!(!text.contains(secret), "{secret} readable in the cookie");
        }
        // Every seal has its own salt (and key).
        assert_ne!(sealer.seal(&p), Some(value));
    }

    #[test]
    fn a_changed_cookie_or_another_servers_key_does_not_open() {
        let sealer = Sealer::new(&[1u8; 32]);
        let value = sealer.seal(&pending("", 1_000)).expect("sealed");
        let mut raw = URL_SAFE_NO_PAD.decode(&value).expect("base64url");
        for i in [0, SALT_LEN, raw.len() - 1] {
            raw[i] ^= 1;
            let changed = URL_SAFE_NO_PAD.encode(&raw);
            assert_eq!(sealer.open(&changed, at(0)), None, "byte {i} flipped");
            raw[i] ^= 1;
        }
        assert_eq!(Sealer::new(&[2u8; 32]).open(&value, at(0)), None);
        assert_eq!(sealer.open(&value[..value.len() - 4], at(0)), None);
        for junk in ["", "abc", "!!!", &"A".repeat(5000)] {
            assert_eq!(sealer.open(junk, at(0)), None, "{junk:.10}");
        }
    }

    #[test]
    fn the_cookie_is_host_prefixed_on_https_and_read_back_by_name() {
        let https = Cookies::for_public_url("https://portal.example.nhs.uk");
        let set_value = set(https, "abc").expect("header");
        assert_eq!(
            set_value.to_str().unwrap_or_default(),
            "__Host-portico-nhs-login=abc; Path=/; HttpOnly; SameSite=Lax; Secure; Max-Age=1800"
        );
        let http = Cookies::for_public_url("http://127.0.0.1:8080");
        let cleared = clear(http).expect("header");
        assert_eq!(
            cleared.to_str().unwrap_or_default(),
            "portico-nhs-login=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"
        );
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("portico-session=x; portico-nhs-login=Ab-_9"),
        );
        assert_eq!(read(&headers, http), Some("Ab-_9"));
        assert_eq!(read(&headers, https), None);
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("portico-nhs-login=a+b"),
        );
        assert_eq!(read(&headers, http), None);
    }
}
