//! Random bearer tokens and the hashes they are stored under.
//!
//! Session ids, refresh tokens, OAuth authorization codes and invitation codes are all bearer
//! secrets: whoever holds one is let in. The database keeps only [`hash_token`] of each, so a
//! leaked copy of the database (a backup, a replica, a log of queries) lets nobody in. A plain
//! SHA-256 suffices because the tokens are random with at least 59 bits of entropy (256 for
//! [`new_token`]): nobody can search that space, so a slow hash would add cost and no safety.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Bytes of randomness in a [`new_token`].
pub const TOKEN_BYTES: usize = 32;

/// A new random token: 32 bytes from the operating system's generator, base64url without
/// padding (43 characters, safe in URLs, cookies and headers).
pub fn new_token() -> String {
    let bytes: [u8; TOKEN_BYTES] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The SHA-256 of `token` as 64 lower-case hex digits: the form in which a token is stored and
/// looked up.
pub fn hash_token(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// Whether `a` and `b` are equal, in time that depends on their lengths only, not on where they
/// differ, so that comparing a secret does not tell an attacker how much of it they guessed.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// Lower-case hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn tokens_are_43_url_safe_characters_and_differ() {
        let tokens: HashSet<String> = (0..200).map(|_| new_token()).collect();
        assert_eq!(tokens.len(), 200);
        for t in &tokens {
            assert_eq!(t.len(), 43);
            assert!(t
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            assert_eq!(URL_SAFE_NO_PAD.decode(t).map(|b| b.len()), Ok(TOKEN_BYTES));
        }
    }

    #[test]
    fn hash_is_sha256_hex() {
        // FIPS 180-2 test vector.
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            hash_token(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_ne!(hash_token("a"), hash_token("A"));
    }

    #[test]
    fn constant_time_eq_compares_contents_and_lengths() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(constant_time_eq(b"", b""));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret1"));
        assert!(!constant_time_eq(b"", b"x"));
    }

    #[test]
    fn hex_encodes_every_nibble() {
        assert_eq!(hex(&[0x00, 0x0f, 0xf0, 0xff, 0x5a]), "000ff0ff5a");
    }
}
