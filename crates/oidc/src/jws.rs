//! Compact JSON Web Signatures: splitting a token, checking its header, verifying its
//! signature with one key.
//!
//! The accepted algorithms are a closed list (RS256, RS512, ES256): `none`, HMAC and anything
//! else are refused before a key is looked at, so a token cannot choose a weaker check.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::signature::{self, UnparsedPublicKey};
use serde::Deserialize;

use crate::jwk::{KeyMaterial, VerificationKey};

/// A signature algorithm this crate verifies (and, for the RSA ones, signs with).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Rs256,
    Rs512,
    Es256,
}

impl Algorithm {
    /// The JOSE name, as in a header's `alg`.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Rs256 => "RS256",
            Algorithm::Rs512 => "RS512",
            Algorithm::Es256 => "ES256",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Algorithm> {
        match name {
            "RS256" => Some(Algorithm::Rs256),
            "RS512" => Some(Algorithm::Rs512),
            "ES256" => Some(Algorithm::Es256),
            _ => None,
        }
    }
}

/// The members of a JOSE header that matter here.
#[derive(Debug, Deserialize)]
struct RawHeader {
    alg: String,
    kid: Option<String>,
    /// Extensions the verifier must understand; this crate understands none.
    crit: Option<serde_json::Value>,
}

/// A compact JWS split into its parts, header checked, signature not yet verified.
#[derive(Debug)]
pub(crate) struct Compact<'a> {
    pub alg: Algorithm,
    pub kid: Option<String>,
    /// `header.payload`, the bytes the signature covers.
    signing_input: &'a str,
    payload: Vec<u8>,
    signature: Vec<u8>,
}

impl<'a> Compact<'a> {
    /// Splits and decodes a compact JWS. The reason in the error names the part at fault.
    pub fn parse(token: &'a str) -> Result<Compact<'a>, String> {
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("not a compact JWS (three base64url parts separated by dots)".into());
        };
        let decode = |part: &str, what: &str| {
            URL_SAFE_NO_PAD
                .decode(part)
                .map_err(|_| format!("its {what} is not base64url"))
        };
        let header: RawHeader = serde_json::from_slice(&decode(h, "header")?)
            .map_err(|_| "its header is not a JSON object with an `alg`".to_string())?;
        if header.crit.is_some() {
            return Err(
                "its header has critical extensions (`crit`), which are not supported".into(),
            );
        }
        let alg = Algorithm::from_name(&header.alg).ok_or_else(|| {
            format!(
                "it is signed with `{}`; only RS256, RS512 and ES256 are accepted",
                header.alg.chars().take(16).collect::<String>()
            )
        })?;
        Ok(Compact {
            alg,
            kid: header.kid,
            signing_input: &token[..h.len() + 1 + p.len()],
            payload: decode(p, "payload")?,
            signature: decode(s, "signature")?,
        })
    }

    /// Whether `key` made the signature.
    pub fn verifies_with(&self, key: &VerificationKey) -> bool {
        if !key.fits(self.alg) {
            return false;
        }
        let msg = self.signing_input.as_bytes();
        match (&key.material, self.alg) {
            (KeyMaterial::Rsa { n, e }, Algorithm::Rs256) => {
                signature::RsaPublicKeyComponents { n, e }
                    .verify(&signature::RSA_PKCS1_2048_8192_SHA256, msg, &self.signature)
                    .is_ok()
            }
            (KeyMaterial::Rsa { n, e }, Algorithm::Rs512) => {
                signature::RsaPublicKeyComponents { n, e }
                    .verify(&signature::RSA_PKCS1_2048_8192_SHA512, msg, &self.signature)
                    .is_ok()
            }
            (KeyMaterial::EcP256 { point }, Algorithm::Es256) => {
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(msg, &self.signature)
                    .is_ok()
            }
            _ => false,
        }
    }

    /// The payload bytes; trust them only after [`Compact::verifies_with`].
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }
}

/// `base64url(header).base64url(claims)`, the signing input of a new token.
pub(crate) fn signing_input(header: &serde_json::Value, claims: &serde_json::Value) -> String {
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(header: &str, payload: &str, sig: &[u8]) -> String {
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE_NO_PAD.encode(sig)
        )
    }

    #[test]
    fn alg_none_and_hmac_are_refused() {
        for alg in ["none", "HS256", "PS256", "rs256"] {
            let t = token(&format!(r#"{{"alg":"{alg}"}}"#), "{}", b"");
            let err = Compact::parse(&t).expect_err(alg);
            assert!(err.contains("only RS256, RS512 and ES256"), "{alg}: {err}");
        }
    }

    #[test]
    fn malformed_tokens_say_which_part_is_wrong() {
        assert!(Compact::parse("a.b").unwrap_err().contains("three"));
        assert!(Compact::parse("a.b.c.d").unwrap_err().contains("three"));
        assert!(Compact::parse("!!.e30.AA").unwrap_err().contains("header"));
        let bad_payload = format!("{}.!!.AA", URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256"}"#));
        assert!(Compact::parse(&bad_payload)
            .unwrap_err()
            .contains("payload"));
    }

    #[test]
    fn critical_extensions_are_refused() {
        let t = token(r#"{"alg":"RS256","crit":["exp"]}"#, "{}", b"x");
        assert!(Compact::parse(&t).unwrap_err().contains("crit"));
    }

    #[test]
    fn the_signing_input_is_header_dot_payload() {
        let t = token(r#"{"alg":"ES256","kid":"k1"}"#, r#"{"a":1}"#, b"sig");
        let c = Compact::parse(&t).expect("parses");
        assert_eq!(c.alg, Algorithm::Es256);
        assert_eq!(c.kid.as_deref(), Some("k1"));
        assert_eq!(c.signing_input.matches('.').count(), 1);
        assert!(t.starts_with(c.signing_input));
        assert_eq!(c.payload(), br#"{"a":1}"#);
    }
}
