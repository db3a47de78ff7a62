//! ID token validation (OpenID Connect Core 3.1.3.7): signature, issuer, audience, authorized
//! party, expiry, issue time and nonce.
//!
//! Split in two steps because the signature check may need the provider's keys fetched again
//! (key rotation), which is I/O the caller does; the rest is pure and takes `now` as an
//! argument so that it can be tested at any instant.

use serde_json::{Map, Value};
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};
use crate::jwk::KeySet;
use crate::jws::Compact;

/// Clock difference tolerated between the provider and this server, in seconds.
pub const LEEWAY_SECS: u64 = 60;

/// The claims of a validated token, or of the userinfo response.
pub type Claims = Map<String, Value>;

/// What the signature check found with the keys at hand.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SignatureCheck {
    Valid,
    /// A key fitting the header verified nothing: the token was altered or forged.
    Invalid,
    /// No published key fits the header's `kid`/`alg`: perhaps the provider rotated its keys.
    NoKey,
}

pub(crate) fn check_signature(token: &Compact<'_>, keys: &KeySet) -> SignatureCheck {
    let candidates = keys.candidates(token.alg, token.kid.as_deref());
    if candidates.is_empty() {
        SignatureCheck::NoKey
    } else if candidates.iter().any(|k| token.verifies_with(k)) {
        SignatureCheck::Valid
    } else {
        SignatureCheck::Invalid
    }
}

/// What the token must say to be for this client and this sign-in.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expected<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub nonce: &'a str,
    /// Seconds since the Unix epoch.
    pub now: u64,
}

/// Checks the claims of a token whose signature has been verified.
pub(crate) fn validate_claims(payload: &[u8], expected: Expected<'_>) -> Result<Claims> {
    let claims: Claims =
        serde_json::from_slice(payload).map_err(|_| invalid("its payload is not a JSON object"))?;

    match claims.get("iss").and_then(Value::as_str) {
        Some(iss) if iss == expected.issuer => {}
        Some(_) => return Err(invalid("its issuer (iss) is not the provider's issuer")),
        None => return Err(invalid("it has no issuer (iss)")),
    }

    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => return Err(invalid("it has no audience (aud)")),
    };
    if !audiences.contains(&expected.client_id) {
        return Err(invalid("its audience (aud) does not include this client"));
    }
    match claims.get("azp") {
        Some(Value::String(azp)) if azp == expected.client_id => {}
        Some(_) => {
            return Err(invalid(
                "its authorized party (azp) is another client, not this one",
            ))
        }
        None if audiences.len() > 1 => {
            return Err(invalid(
                "it has several audiences but no authorized party (azp)",
            ))
        }
        None => {}
    }

    let now = expected.now as f64;
    let leeway = LEEWAY_SECS as f64;
    let exp = number(&claims, "exp")?;
    if now > exp + leeway {
        return Err(invalid("it has expired (exp is in the past)"));
    }
    let iat = number(&claims, "iat")?;
    if iat > now + leeway {
        return Err(invalid(
            "it was issued in the future (iat); check this server's clock",
        ));
    }

    let nonce_ok = claims
        .get("nonce")
        .and_then(Value::as_str)
        .is_some_and(|n| bool::from(n.as_bytes().ct_eq(expected.nonce.as_bytes())));
    if !nonce_ok {
        return Err(Error::NonceMismatch);
    }

    match claims.get("sub").and_then(Value::as_str) {
        Some(sub) if !sub.is_empty() => Ok(claims),
        _ => Err(invalid("it has no subject (sub)")),
    }
}

fn number(claims: &Claims, name: &'static str) -> Result<f64> {
    claims
        .get(name)
        .and_then(Value::as_f64)
        .ok_or_else(|| Error::InvalidIdToken(format!("its `{name}` is missing or not a number")))
}

fn invalid(reason: &str) -> Error {
    Error::InvalidIdToken(reason.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_keys::{self, TokenSigner};
    use serde_json::json;

    const NOW: u64 = 1_700_000_000;
    const ISS: &str = "https://auth.example";
    const CLIENT: &str = "portico";
    const NONCE: &str = "n-0S6_WzA2Mj";

    fn expected() -> Expected<'static> {
        Expected {
            issuer: ISS,
            client_id: CLIENT,
            nonce: NONCE,
            now: NOW,
        }
    }

    fn good_claims() -> Value {
        json!({
            "iss": ISS, "aud": CLIENT, "sub": "user-1", "nonce": NONCE,
            "iat": NOW - 5, "exp": NOW + 300,
        })
    }

    fn with(changes: Value) -> Value {
        let mut claims = good_claims();
        if let (Some(c), Some(ch)) = (claims.as_object_mut(), changes.as_object()) {
            for (k, v) in ch {
                if v.is_null() {
                    c.remove(k);
                } else {
                    c.insert(k.clone(), v.clone());
                }
            }
        }
        claims
    }

    fn check(claims: Value) -> Result<Claims> {
        validate_claims(claims.to_string().as_bytes(), expected())
    }

    fn reason(claims: Value) -> String {
        match check(claims) {
            Err(Error::InvalidIdToken(r)) => r,
            other => panic!("expected InvalidIdToken, got {other:?}"),
        }
    }

    #[test]
    fn good_claims_pass() {
        let claims = check(good_claims()).expect("valid");
        assert_eq!(claims["sub"], "user-1");
    }

    #[test]
    fn issuer_must_match_exactly() {
        assert!(reason(with(json!({"iss": "https://auth.example/"}))).contains("iss"));
        assert!(reason(with(json!({"iss": null}))).contains("iss"));
    }

    #[test]
    fn audience_must_include_this_client() {
        assert!(reason(with(json!({"aud": "other"}))).contains("aud"));
        assert!(reason(with(json!({"aud": null}))).contains("aud"));
        assert!(reason(with(json!({"aud": ["a", "b"]}))).contains("aud"));
        assert!(check(with(json!({"aud": [CLIENT]}))).is_ok());
    }

    #[test]
    fn several_audiences_need_azp_naming_this_client() {
        let two = json!(["other", CLIENT]);
        assert!(reason(with(json!({"aud": two}))).contains("azp"));
        assert!(reason(with(json!({"aud": two, "azp": "other"}))).contains("azp"));
        assert!(check(with(json!({"aud": two, "azp": CLIENT}))).is_ok());
        assert!(reason(with(json!({"azp": "other"}))).contains("azp"));
    }

    #[test]
    fn expiry_allows_the_leeway_and_no_more() {
        assert!(check(with(json!({"exp": NOW - LEEWAY_SECS}))).is_ok());
        assert!(reason(with(json!({"exp": NOW - LEEWAY_SECS - 1}))).contains("expired"));
        assert!(reason(with(json!({"exp": "soon"}))).contains("exp"));
        assert!(reason(with(json!({"exp": null}))).contains("exp"));
    }

    #[test]
    fn issue_time_in_the_future_beyond_the_leeway_is_refused() {
        assert!(check(with(json!({"iat": NOW + LEEWAY_SECS}))).is_ok());
        assert!(reason(with(json!({"iat": NOW + LEEWAY_SECS + 1}))).contains("future"));
        assert!(reason(with(json!({"iat": null}))).contains("iat"));
    }

    #[test]
    fn nonce_mismatch_or_absence_is_refused() {
        for nonce in [json!("another"), json!(null), json!(42), json!("")] {
            assert!(
                matches!(
                    check(with(json!({"nonce": nonce}))),
                    Err(Error::NonceMismatch)
                ),
                "{nonce}"
            );
        }
        let prefix = &NONCE[..NONCE.len() - 1];
        assert!(matches!(
            check(with(json!({ "nonce": prefix }))),
            Err(Error::NonceMismatch)
        ));
    }

    #[test]
    fn subject_is_required() {
        assert!(reason(with(json!({"sub": null}))).contains("sub"));
        assert!(reason(with(json!({"sub": ""}))).contains("sub"));
    }

    #[test]
    fn a_tampered_signature_or_payload_is_invalid_for_every_algorithm() {
        for signer in [
            TokenSigner::rs512(),
            TokenSigner::rs256(),
            TokenSigner::es256(),
        ] {
            let keys = signer.key_set();
            let token = signer.sign(&good_claims());
            let parsed = Compact::parse(&token).expect("parses");
            assert_eq!(check_signature(&parsed, &keys), SignatureCheck::Valid);

            // Flip one bit of the signature.
            let (input, sig) = token.rsplit_once('.').expect("three parts");
            let mut sig = test_keys::b64_decode(sig);
            sig[0] ^= 1;
            let forged = format!("{input}.{}", test_keys::b64(&sig));
            let parsed = Compact::parse(&forged).expect("parses");
            assert_eq!(check_signature(&parsed, &keys), SignatureCheck::Invalid);

            // Keep the signature, change the payload (another subject).
            let mut parts = token.split('.');
            let (h, _, s) = (parts.next(), parts.next(), parts.next());
            let payload = test_keys::b64(with(json!({"sub": "admin"})).to_string().as_bytes());
            let swapped = format!("{}.{payload}.{}", h.unwrap_or(""), s.unwrap_or(""));
            let parsed = Compact::parse(&swapped).expect("parses");
            assert_eq!(check_signature(&parsed, &keys), SignatureCheck::Invalid);
        }
    }

    #[test]
    fn a_token_signed_by_another_key_with_the_same_kid_is_invalid() {
        let provider = TokenSigner::es256();
        let attacker = TokenSigner::es256().with_kid(provider.kid());
        let token = attacker.sign(&good_claims());
        let parsed = Compact::parse(&token).expect("parses");
        assert_eq!(
            check_signature(&parsed, &provider.key_set()),
            SignatureCheck::Invalid
        );
    }

    #[test]
    fn an_unknown_kid_or_algorithm_without_a_key_asks_for_a_refetch() {
        let provider = TokenSigner::rs512();
        let other = TokenSigner::es256();
        let parsed_token = other.sign(&good_claims());
        let parsed = Compact::parse(&parsed_token).expect("parses");
        assert_eq!(
            check_signature(&parsed, &provider.key_set()),
            SignatureCheck::NoKey
        );
    }

    #[test]
    fn an_rsa_key_does_not_verify_a_token_claiming_another_rsa_hash() {
        // Signed RS256, header rewritten to RS512: the key fits, the signature does not.
        let signer = TokenSigner::rs256();
        let token = signer.sign(&good_claims());
        let mut parts = token.splitn(2, '.');
        let (_, rest) = (parts.next(), parts.next().unwrap_or(""));
        let header = json!({"alg": "RS512", "kid": signer.kid()}).to_string();
        let relabelled = format!("{}.{rest}", test_keys::b64(header.as_bytes()));
        let parsed = Compact::parse(&relabelled).expect("parses");
        assert_eq!(
            check_signature(&parsed, &signer.key_set()),
            SignatureCheck::Invalid
        );
    }
}
