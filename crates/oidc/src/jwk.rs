//! The provider's published signing keys (JWKS) and how a token's header picks one.
//!
//! Only what ID tokens need: RSA keys (RS256, RS512) and P-256 keys (ES256). Keys of other
//! types, or marked for encryption, are kept out so they can never verify a signature.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;

use crate::jws::Algorithm;

/// One verification key, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VerificationKey {
    pub kid: Option<String>,
    /// The `alg` the key is restricted to, if the provider says.
    pub alg: Option<String>,
    pub material: KeyMaterial,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyMaterial {
    /// Big-endian modulus and exponent.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// Uncompressed P-256 point: `0x04 || x || y`.
    EcP256 { point: Vec<u8> },
}

impl VerificationKey {
    /// Whether this key may verify a signature made with `alg`.
    pub fn fits(&self, alg: Algorithm) -> bool {
        if self.alg.as_deref().is_some_and(|a| a != alg.name()) {
            return false;
        }
        matches!(
            (&self.material, alg),
            (KeyMaterial::Rsa { .. }, Algorithm::Rs256 | Algorithm::Rs512)
                | (KeyMaterial::EcP256 { .. }, Algorithm::Es256)
        )
    }
}

/// The usable keys of a JWKS document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct KeySet {
    keys: Vec<VerificationKey>,
}

#[derive(Deserialize)]
struct RawSet {
    keys: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawKey {
    kty: String,
    kid: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    alg: Option<String>,
    n: Option<String>,
    e: Option<String>,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

impl KeySet {
    /// Parses a JWKS document. Keys that cannot verify ID tokens (other types, encryption keys,
    /// malformed members) are skipped rather than failing the whole set: providers publish
    /// keys for other purposes beside the signing ones.
    pub fn parse(body: &[u8]) -> Result<KeySet, String> {
        let raw: RawSet = serde_json::from_slice(body)
            .map_err(|e| format!("not a JWKS document (an object with a `keys` array): {e}"))?;
        let keys = raw
            .keys
            .into_iter()
            .filter_map(|value| serde_json::from_value::<RawKey>(value).ok())
            .filter_map(decode)
            .collect();
        Ok(KeySet { keys })
    }

    /// The keys a token with this header may have been signed with: the one with its `kid`
    /// when it names one, otherwise every key that fits the algorithm.
    pub fn candidates(&self, alg: Algorithm, kid: Option<&str>) -> Vec<&VerificationKey> {
        self.keys
            .iter()
            .filter(|k| k.fits(alg))
            .filter(|k| kid.is_none() || k.kid.as_deref() == kid)
            .collect()
    }
}

fn decode(raw: RawKey) -> Option<VerificationKey> {
    if raw.use_.as_deref().is_some_and(|u| u != "sig") {
        return None;
    }
    let b64 = |v: Option<String>| v.and_then(|s| URL_SAFE_NO_PAD.decode(s).ok());
    let material = match raw.kty.as_str() {
        "RSA" => KeyMaterial::Rsa {
            n: strip_leading_zeros(b64(raw.n)?),
            e: strip_leading_zeros(b64(raw.e)?),
        },
        "EC" if raw.crv.as_deref() == Some("P-256") => {
            let (x, y) = (b64(raw.x)?, b64(raw.y)?);
            if x.len() != 32 || y.len() != 32 {
                return None;
            }
            let mut point = Vec::with_capacity(65);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            KeyMaterial::EcP256 { point }
        }
        _ => return None,
    };
    Some(VerificationKey {
        kid: raw.kid,
        alg: raw.alg,
        material,
    })
}

/// ring wants the minimal big-endian form; JWKs written by some libraries carry a leading zero.
fn strip_leading_zeros(mut bytes: Vec<u8>) -> Vec<u8> {
    let zeros = bytes.iter().take_while(|b| **b == 0).count();
    bytes.drain(..zeros.min(bytes.len().saturating_sub(1)));
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rsa_jwk(kid: &str, extra: serde_json::Value) -> serde_json::Value {
        let mut key = serde_json::json!({"kty": "RSA", "kid": kid, "n": "AQAB", "e": "AQAB"});
        if let (Some(k), Some(e)) = (key.as_object_mut(), extra.as_object()) {
            k.extend(e.clone());
        }
        key
    }

    #[test]
    fn encryption_keys_and_unknown_types_are_not_candidates() {
        let doc = serde_json::json!({"keys": [
            rsa_jwk("enc", serde_json::json!({"use": "enc"})),
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            {"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": "AAAA"},
            rsa_jwk("sig", serde_json::json!({"use": "sig"})),
        ]});
        let set = KeySet::parse(doc.to_string().as_bytes()).expect("parses");
        let kids: Vec<_> = set
            .candidates(Algorithm::Rs256, None)
            .iter()
            .map(|k| k.kid.clone())
            .collect();
        assert_eq!(kids, vec![Some("sig".to_string())]);
    }

    #[test]
    fn kid_picks_one_key_and_alg_restriction_is_honoured() {
        let doc = serde_json::json!({"keys": [
            rsa_jwk("a", serde_json::json!({"alg": "RS256"})),
            rsa_jwk("b", serde_json::json!({})),
        ]});
        let set = KeySet::parse(doc.to_string().as_bytes()).expect("parses");
        assert_eq!(set.candidates(Algorithm::Rs512, Some("a")).len(), 0);
        assert_eq!(set.candidates(Algorithm::Rs256, Some("a")).len(), 1);
        assert_eq!(set.candidates(Algorithm::Rs512, None).len(), 1);
        assert_eq!(set.candidates(Algorithm::Es256, None).len(), 0);
        assert_eq!(set.candidates(Algorithm::Rs256, Some("zzz")).len(), 0);
    }

    #[test]
    fn ec_keys_need_p256_coordinates_of_32_bytes() {
        let good = URL_SAFE_NO_PAD.encode([7u8; 32]);
        let short = URL_SAFE_NO_PAD.encode([7u8; 31]);
        let doc = serde_json::json!({"keys": [
            {"kty": "EC", "kid": "ok", "crv": "P-256", "x": good, "y": good},
            {"kty": "EC", "kid": "short", "crv": "P-256", "x": short, "y": good},
            {"kty": "EC", "kid": "p384", "crv": "P-384", "x": good, "y": good},
        ]});
        let set = KeySet::parse(doc.to_string().as_bytes()).expect("parses");
        let kids: Vec<_> = set
            .candidates(Algorithm::Es256, None)
            .iter()
            .map(|k| k.kid.clone())
            .collect();
        assert_eq!(kids, vec![Some("ok".to_string())]);
    }

    #[test]
    fn a_document_without_keys_is_an_error() {
        assert!(KeySet::parse(b"{\"nokeys\": []}").is_err());
        assert!(KeySet::parse(b"not json").is_err());
    }

    #[test]
    fn leading_zeros_are_stripped_but_not_the_last_byte() {
        assert_eq!(strip_leading_zeros(vec![0, 0, 1, 2]), vec![1, 2]);
        assert_eq!(strip_leading_zeros(vec![0, 0]), vec![0]);
        assert_eq!(strip_leading_zeros(vec![]), Vec::<u8>::new());
    }
}
