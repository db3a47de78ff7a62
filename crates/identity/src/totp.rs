//! Time-based one-time passwords (RFC 6238) for the second factor: HMAC-SHA1, 6 digits, a new
//! code every 30 seconds — the profile every authenticator app supports.
//!
//! A code is accepted for the current step and one step either side (clock drift and typing
//! time), and each step at most once: the caller stores the step that [`verify`] returns and
//! passes it back as `last_used_step`, so a code seen over a shoulder or replayed from a phished
//! session cannot be used again (RFC 6238 § 5.2). Guessing is bounded by the rate limit
//! [`crate::ratelimit::rules::TOTP_PER_ACCOUNT`] — 3 acceptable codes in 10^6 and 5 tries per 5
//! minutes would still let a patient attacker win in months — and so wrong codes must also count
//! as failures toward [`crate::ratelimit::rules::ACCOUNT_LOCKOUT`], whose doubling lockout cuts
//! sustained guessing to a handful of tries a day.

use std::fmt;

use data_encoding::BASE32_NOPAD;
use hmac::{Hmac, Mac};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha1::Sha1;

use crate::token::constant_time_eq;
use crate::Error;

/// Digits in a code.
pub const DIGITS: usize = 6;
/// Seconds per time step.
pub const STEP_SECS: i64 = 30;
/// Steps accepted either side of the current one.
pub const SKEW_STEPS: i64 = 1;
/// Bytes in a generated secret: 160 bits, the HMAC-SHA1 block output size RFC 4226 recommends.
pub const SECRET_BYTES: usize = 20;
/// Shortest secret accepted (RFC 4226 § 4 requires at least 128 bits).
pub const MIN_SECRET_BYTES: usize = 16;
/// Longest secret accepted.
pub const MAX_SECRET_BYTES: usize = 64;
/// The issuer shown in authenticator apps.
pub const ISSUER: &str = "Portico";

/// Characters escaped in the otpauth label and issuer: all but RFC 3986 unreserved ones.
const LABEL_ESCAPE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A shared TOTP secret. Its `Debug` output hides the bytes, so it cannot end up in a log.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// A new random secret of [`SECRET_BYTES`] from the operating system's generator.
    pub fn generate() -> Self {
        let bytes: [u8; SECRET_BYTES] = rand::random();
        Secret(bytes.to_vec())
    }

    /// A secret from raw bytes (16 to 64 of them).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        if (MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&bytes.len()) {
            Ok(Secret(bytes.to_vec()))
        } else {
            Err(Error::InvalidTotpSecret)
        }
    }

    /// A secret from its base32 form (RFC 4648), as stored or as typed from an app's manual-entry
    /// screen: case, spaces and `=` padding are ignored.
    pub fn from_base32(text: &str) -> Result<Self, Error> {
        if text.len() > 4 * MAX_SECRET_BYTES {
            return Err(Error::InvalidTotpSecret);
        }
        let canonical: String = text
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '=')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let bytes = BASE32_NOPAD
            .decode(canonical.as_bytes())
            .map_err(|_| Error::InvalidTotpSecret)?;
        Self::from_bytes(&bytes)
    }

    /// The base32 form without padding (32 characters for a generated secret), as authenticator
    /// apps expect it.
    pub fn to_base32(&self) -> String {
        BASE32_NOPAD.encode(&self.0)
    }

    /// The raw bytes, for storage.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The `otpauth://` URI to show as a QR code:
    /// `otpauth://totp/Portico:{label}?secret=…&issuer=Portico`, with `label` (the account's
    /// username or email) percent-encoded.
    pub fn otpauth_uri(&self, label: &str) -> String {
        let issuer = utf8_percent_encode(ISSUER, LABEL_ESCAPE);
        let label = utf8_percent_encode(label, LABEL_ESCAPE);
        format!(
            "otpauth://totp/{issuer}:{label}?secret={}&issuer={issuer}",
            self.to_base32()
        )
    }
}

/// Why a code was not accepted. Tell the person only what [`Rejection::message`] says; the
/// variants are for the audit trail and for counting attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// Not six digits.
    Malformed,
    /// Six digits, but not the code for any acceptable step.
    Mismatch,
    /// The code for a step that was already used (or an earlier one).
    Replayed,
}

impl Rejection {
    /// The message for the person signing in.
    pub fn message(&self) -> &'static str {
        match self {
            Rejection::Malformed => "Enter the 6-digit code from your authenticator app.",
            Rejection::Mismatch => {
                "That code is not correct. Enter the code your authenticator app shows now."
            }
            Rejection::Replayed => "That code has already been used. Wait for the next code.",
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

/// The time step of `now_unix` (seconds since 1970): `floor(now / 30)`.
pub fn step_at(now_unix: i64) -> i64 {
    now_unix.div_euclid(STEP_SECS)
}

/// The code for `now_unix`, as an authenticator app shows it (for tests and for an
/// administrator's setup check). Times before 1970 have no code.
pub fn code_at(secret: &Secret, now_unix: i64) -> Option<String> {
    code_at_step(secret, step_at(now_unix))
}

/// The code for one time step, or None for a negative step.
fn code_at_step(secret: &Secret, step: i64) -> Option<String> {
    let counter = u64::try_from(step).ok()?;
    let value = hotp_value(&secret.0, counter)? % 1_000_000;
    Some(format!("{value:06}"))
}

/// RFC 4226 § 5.3: HMAC-SHA1 of the big-endian counter, dynamically truncated to 31 bits.
fn hotp_value(key: &[u8], counter: u64) -> Option<u32> {
    let mut mac = Hmac::<Sha1>::new_from_slice(key).ok()?;
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest.get(19)? & 0x0f);
    let bytes: [u8; 4] = digest.get(offset..offset + 4)?.try_into().ok()?;
    Some(u32::from_be_bytes(bytes) & 0x7fff_ffff)
}

/// Checks `code` (six digits; spaces ignored, as apps show `287 082`) against the steps
/// `now-1 ..= now+1`, refusing any step at or before `last_used_step`. On success returns the
/// step it matched, which the caller must store as the new `last_used_step` in the same
/// transaction that accepts the sign-in. All candidate steps are compared, in constant time.
pub fn verify(
    secret: &Secret,
    code: &str,
    now_unix: i64,
    last_used_step: Option<i64>,
) -> Result<i64, Rejection> {
    if code.len() > 4 * DIGITS {
        return Err(Rejection::Malformed);
    }
    let digits: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if digits.len() != DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Rejection::Malformed);
    }
    let now = step_at(now_unix);
    let mut accepted = None;
    let mut replayed = false;
    for skew in -SKEW_STEPS..=SKEW_STEPS {
        let Some(step) = now.checked_add(skew) else {
            continue;
        };
        let Some(expected) = code_at_step(secret, step) else {
            continue;
        };
        if constant_time_eq(expected.as_bytes(), digits.as_bytes()) {
            if last_used_step.is_some_and(|used| step <= used) {
                replayed = true;
            } else {
                accepted = Some(step);
            }
        }
    }
    match accepted {
        Some(step) => Ok(step),
        None if replayed => Err(Rejection::Replayed),
        None => Err(Rejection::Mismatch),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SHA-1 seed of RFC 6238 Appendix B and RFC 4226 Appendix D.
    const RFC_KEY: &[u8] = b"12345678901234567890";

    fn rfc_secret() -> Secret {
        Secret::from_bytes(RFC_KEY).expect("20 bytes")
    }

    #[test]
    fn rfc4226_appendix_d_hotp_values() {
        let want = [
            755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489,
        ];
        for (counter, want) in want.iter().enumerate() {
            let value = hotp_value(RFC_KEY, counter as u64).map(|v| v % 1_000_000);
            assert_eq!(value, Some(*want), "counter {counter}");
        }
    }

    #[test]
    fn rfc6238_appendix_b_sha1_vectors() {
        let vectors: [(i64, u32); 6] = [
            (59, 94287082),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
            (20000000000, 65353130),
        ];
        let secret = rfc_secret();
        for (time, eight_digits) in vectors {
            let step = u64::try_from(step_at(time)).unwrap_or_default();
            assert_eq!(
                hotp_value(RFC_KEY, step).map(|v| v % 100_000_000),
                Some(eight_digits),
                "t={time}"
            );
            let six = format!("{:06}", eight_digits % 1_000_000);
            assert_eq!(code_at(&secret, time).as_deref(), Some(six.as_str()));
            assert_eq!(verify(&secret, &six, time, None), Ok(step_at(time)));
        }
        assert_eq!(code_at(&secret, 59).as_deref(), Some("287082"));
    }

    #[test]
    fn window_is_one_step_either_side() {
        let secret = rfc_secret();
        let now = 1_234_567_890;
        let step = step_at(now);
        let code_for = |s: i64| code_at(&secret, s * STEP_SECS).unwrap_or_default();
        assert_eq!(
            verify(&secret, &code_for(step - 1), now, None),
            Ok(step - 1)
        );
        assert_eq!(verify(&secret, &code_for(step), now, None), Ok(step));
        assert_eq!(
            verify(&secret, &code_for(step + 1), now, None),
            Ok(step + 1)
        );
        assert_eq!(
            verify(&secret, &code_for(step - 2), now, None),
            Err(Rejection::Mismatch)
        );
        assert_eq!(
            verify(&secret, &code_for(step + 2), now, None),
            Err(Rejection::Mismatch)
        );
    }

    #[test]
    fn step_edges_at_29_and_30_seconds() {
        let secret = rfc_secret();
        // t=59 is in step 1; at t=60 (step 2) the same code is still accepted (previous step),
        // at t=90 (step 3) it is not.
        assert_eq!(verify(&secret, "287082", 59, None), Ok(1));
        assert_eq!(verify(&secret, "287082", 60, None), Ok(1));
        assert_eq!(verify(&secret, "287082", 89, None), Ok(1));
        assert_eq!(
            verify(&secret, "287082", 90, None),
            Err(Rejection::Mismatch)
        );
        // Step 1 is also next step's neighbour: accepted at t=0..29 (step 0).
        assert_eq!(verify(&secret, "287082", 0, None), Ok(1));
        assert_eq!(step_at(29), 0);
        assert_eq!(step_at(30), 1);
        assert_eq!(step_at(-1), -1);
    }

    #[test]
    fn a_used_step_and_earlier_ones_are_refused() {
        let secret = rfc_secret();
        let now = 1_111_111_111;
        let step = step_at(now);
        let code = code_at(&secret, now).unwrap_or_default();
        assert_eq!(verify(&secret, &code, now, None), Ok(step));
        assert_eq!(
            verify(&secret, &code, now, Some(step)),
            Err(Rejection::Replayed)
        );
        assert_eq!(
            verify(&secret, &code, now, Some(step + 1)),
            Err(Rejection::Replayed)
        );
        assert_eq!(verify(&secret, &code, now, Some(step - 1)), Ok(step));
        // The previous step's code after the current one was used: refused too.
        let previous = code_at(&secret, now - STEP_SECS).unwrap_or_default();
        assert_eq!(
            verify(&secret, &previous, now, Some(step)),
            Err(Rejection::Replayed)
        );
    }

    #[test]
    fn input_that_is_not_six_digits_is_malformed() {
        let secret = rfc_secret();
        for bad in [
            "",
            "28708",
            "2870822",
            "28708a",
            "２８７０８２",
            "287-082",
            "+87082",
        ] {
            assert_eq!(
                verify(&secret, bad, 59, None),
                Err(Rejection::Malformed),
                "{bad}"
            );
        }
        assert_eq!(verify(&secret, " 287 082 ", 59, None), Ok(1));
    }

    #[test]
    fn times_before_1970_have_no_code_and_extreme_times_do_not_overflow() {
        let secret = rfc_secret();
        assert_eq!(code_at(&secret, -31), None);
        assert_eq!(
            verify(&secret, "123456", -100, None),
            Err(Rejection::Mismatch)
        );
        assert!(verify(&secret, "123456", i64::MAX, None).is_err());
        assert!(verify(&secret, "123456", i64::MIN, Some(i64::MAX)).is_err());
    }

    #[test]
    fn base32_round_trip_and_lenient_input() {
        let secret = Secret::generate();
        assert_eq!(secret.as_bytes().len(), SECRET_BYTES);
        let text = secret.to_base32();
        assert_eq!(text.len(), 32);
        assert!(!text.contains('='));
        assert_eq!(Secret::from_base32(&text), Ok(secret.clone()));
        let typed = text
            .to_lowercase()
            .chars()
            .collect::<Vec<_>>()
            .chunks(4)
            .map(|c| c.iter().collect::<String>())
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(Secret::from_base32(&typed), Ok(secret));
        // RFC 4648 § 10 gives BASE32("foobar") = "MZXW6YTBOI======"; the same alphabet and bit
        // order for 16 bytes, without the padding:
        let foobar16 = Secret::from_bytes(b"foobarfoobarfoob").expect("16 bytes");
        assert_eq!(foobar16.to_base32(), "MZXW6YTBOJTG633CMFZGM33PMI");
        assert_eq!(
            Secret::from_base32("MZXW6YTBOJTG633CMFZGM33PMI======"),
            Ok(foobar16)
        );
    }

    #[test]
    fn bad_secrets_are_refused() {
        for bad in ["", "MZXW6YTBOI", "not base32!", "MZXW6YTBOI1======", "A"] {
            assert_eq!(
                Secret::from_base32(bad),
                Err(Error::InvalidTotpSecret),
                "{bad}"
            );
        }
        assert_eq!(Secret::from_bytes(&[0; 15]), Err(Error::InvalidTotpSecret));
        assert_eq!(Secret::from_bytes(&[0; 65]), Err(Error::InvalidTotpSecret));
        assert!(Secret::from_bytes(&[0; 16]).is_ok());
        assert!(Secret::from_bytes(&[0; 64]).is_ok());
    }

    #[test]
    fn otpauth_uri_format() {
        let secret = rfc_secret();
        assert_eq!(
            secret.otpauth_uri("jane.doe@example.org"),
            "otpauth://totp/Portico:jane.doe%40example.org?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Portico"
        );
        assert_eq!(
            secret.otpauth_uri("a b:c&d"),
            "otpauth://totp/Portico:a%20b%3Ac%26d?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Portico"
        );
    }

    #[test]
    fn rejection_messages_say_what_to_do_and_differ() {
        let all = [
            Rejection::Malformed,
            Rejection::Mismatch,
            Rejection::Replayed,
        ];
        for r in all {
            assert!(r.to_string().ends_with('.'), "{r:?}");
        }
        assert_ne!(Rejection::Mismatch.message(), Rejection::Replayed.message());
        assert!(Rejection::Malformed.message().contains("6-digit"));
    }

    #[test]
    fn debug_hides_the_secret() {
        let secret = rfc_secret();
        let shown = format!("{secret:?}");
        assert!(!shown.contains("1234"));
        assert!(!shown.contains(&secret.to_base32()));
    }
}
