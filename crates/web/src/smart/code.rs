//! Authorisation codes: `{random}.{grant id}[.{nonce}]`, stored only as their SHA-256
//! ([`identity::token::hash_token`]), valid [`CODE_TTL`] and usable once
//! ([`store::AccountStore::take_oauth_code`]).
//!
//! The code carries the id of the grant it was issued under, and the OpenID `nonce` of the
//! authorisation request, because the stored code row has no place for them: the token
//! endpoint needs the grant to issue refresh tokens under it (and to revoke it when a code is
//! used twice, RFC 6749 §4.1.2), and the nonce for the id_token. Neither is secret from the
//! app, and neither can be altered: the stored hash covers the whole code, so a changed grant
//! id or nonce is a code that was never issued.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::TimeDelta;
use identity::token::new_token;

/// How long a code may wait for the token request.
pub const CODE_TTL: TimeDelta = TimeDelta::seconds(60);

/// Longest `nonce` accepted (it travels inside the code).
pub const MAX_NONCE_CHARS: usize = 256;

/// A new code for `grant_id` (a UUID), carrying `nonce`.
pub fn new_code(grant_id: &str, nonce: Option<&str>) -> String {
    let random = new_token();
    match nonce {
        Some(n) => format!("{random}.{grant_id}.{}", URL_SAFE_NO_PAD.encode(n)),
        None => format!("{random}.{grant_id}"),
    }
}

/// What a code says besides its secret part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeParts {
    pub grant_id: String,
    pub nonce: Option<String>,
}

/// The grant id and nonce of a code of the shape [`new_code`] makes; None for anything else.
/// (Only the store's hash says whether the code was really issued.)
pub fn parse(code: &str) -> Option<CodeParts> {
    if code.len() > 1024 {
        return None;
    }
    let mut parts = code.split('.');
    let (_random, grant_id) = (parts.next()?, parts.next()?);
    let nonce = match parts.next() {
        Some(encoded) => Some(String::from_utf8(URL_SAFE_NO_PAD.decode(encoded).ok()?).ok()?),
        None => None,
    };
    if parts.next().is_some() || uuid::Uuid::parse_str(grant_id).is_err() {
        return None;
    }
    Some(CodeParts {
        grant_id: grant_id.to_string(),
        nonce,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_gives_back_its_grant_and_nonce() {
        let grant = uuid::Uuid::new_v4().to_string();
        let code = new_code(&grant, Some("n-0 S.x"));
        assert_eq!(
            parse(&code),
            Some(CodeParts {
                grant_id: grant.clone(),
                nonce: Some("n-0 S.x".into())
            })
        );
        let plain = new_code(&grant, None);
        assert_eq!(parse(&plain).and_then(|p| p.nonce), None);
        assert_ne!(new_code(&grant, None), plain);
    }

    #[test]
    fn anything_else_is_not_a_code() {
        let grant = uuid::Uuid::new_v4().to_string();
        for bad in [
            String::new(),
            "abc".into(),
            "abc.not-a-uuid".into(),
            format!("abc.{grant}.!!"),
            format!("abc.{grant}.bm9uY2U.extra"),
            format!("abc.{grant}.{}", "a".repeat(2000)),
        ] {
            assert_eq!(parse(&bad), None, "{bad}");
        }
    }
}
