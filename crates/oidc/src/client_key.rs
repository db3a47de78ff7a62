//! The client's own RSA key: it signs the `private_key_jwt` client assertions, and its public
//! half is what gets registered with the provider (NHS login asks for a JWKS or public key).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{self, RsaKeyPair};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::PrivateKeyDer;

use crate::error::{Error, Result};
use crate::jws::{self, Algorithm};

/// An RSA private key (2048 to 8192 bits) read from PEM, PKCS#8 (`BEGIN PRIVATE KEY`) or
/// PKCS#1 (`BEGIN RSA PRIVATE KEY`).
pub struct ClientKey {
    pair: RsaKeyPair,
    /// RFC 7638 thumbprint of the public key: a key id that both sides can compute, so a rotated
    /// key gets a new id by itself.
    kid: String,
}

impl std::fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl ClientKey {
    /// Reads the key. The error says what kind of key was found when it is not a usable RSA key,
    /// never anything of the key itself.
    pub fn from_pem(pem: &str) -> Result<ClientKey> {
        let der = PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|_| {
            Error::PrivateKey(
                "no PEM private key found (expected BEGIN PRIVATE KEY or BEGIN RSA PRIVATE KEY)"
                    .into(),
            )
        })?;
        let pair = match &der {
            PrivateKeyDer::Pkcs8(k) => RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()),
            PrivateKeyDer::Pkcs1(k) => RsaKeyPair::from_der(k.secret_pkcs1_der()),
            _ => {
                return Err(Error::PrivateKey(
                    "the key is not an RSA key; private_key_jwt with RS512/RS256 needs one".into(),
                ))
            }
        }
        .map_err(|e| {
            Error::PrivateKey(format!(
                "not a usable RSA private key of 2048-8192 bits ({e})"
            ))
        })?;
        let kid = thumbprint(&pair);
        Ok(ClientKey { pair, kid })
    }

    /// The key id put in assertion headers and in [`ClientKey::public_jwks`].
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWKS document (`{"keys": [{"kty": "RSA", …}]}`), to register with the
    /// provider.
    pub fn public_jwks(&self) -> serde_json::Value {
        let (n, e) = public_components(&self.pair);
        serde_json::json!({"keys": [{
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "n": n,
            "e": e,
        }]})
    }

    /// Signs `claims` as a compact JWT with `alg` (RS256 or RS512).
    pub(crate) fn sign(
        &self,
        alg: Algorithm,
        claims: &serde_json::Value,
        rng: &SystemRandom,
    ) -> Result<String> {
        let padding: &'static dyn signature::RsaEncoding = match alg {
            Algorithm::Rs256 => &signature::RSA_PKCS1_SHA256,
            Algorithm::Rs512 => &signature::RSA_PKCS1_SHA512,
            Algorithm::Es256 => {
                return Err(Error::PrivateKey(
                    "an RSA key cannot sign ES256 assertions".into(),
                ))
            }
        };
        let header = serde_json::json!({"alg": alg.name(), "typ": "JWT", "kid": self.kid});
        let input = jws::signing_input(&header, claims);
        let mut sig = vec![0u8; self.pair.public().modulus_len()];
        self.pair
            .sign(padding, rng, input.as_bytes(), &mut sig)
            .map_err(|_| Error::PrivateKey("signing the client assertion failed".into()))?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }
}

fn public_components(pair: &RsaKeyPair) -> (String, String) {
    let public = signature::RsaPublicKeyComponents::<Vec<u8>>::from(pair.public());
    (
        URL_SAFE_NO_PAD.encode(&public.n),
        URL_SAFE_NO_PAD.encode(&public.e),
    )
}

/// RFC 7638: SHA-256 over the required members in lexicographic order, without whitespace.
fn thumbprint(pair: &RsaKeyPair) -> String {
    let (n, e) = public_components(pair);
    let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        canonical.as_bytes(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_keys;

    #[test]
    fn garbage_and_non_rsa_keys_are_refused_with_a_reason() {
        let err = ClientKey::from_pem("hello").unwrap_err().to_string();
        assert!(err.contains("no PEM private key"), "{err}");
        // A P-256 key in PKCS#8 is a valid PEM private key but not RSA.
        let ec = test_keys::ec_pkcs8_pem();
        let err = ClientKey::from_pem(&ec).unwrap_err().to_string();
        assert!(err.contains("RSA"), "{err}");
    }

    #[test]
    fn pkcs8_and_pkcs1_give_the_same_public_key() {
        let a = ClientKey::from_pem(&test_keys::rsa_pkcs8_pem()).expect("pkcs8");
        let b = ClientKey::from_pem(&test_keys::rsa_pkcs1_pem()).expect("pkcs1");
        assert_eq!(a.public_jwks(), b.public_jwks());
        assert_eq!(a.kid(), b.kid());
        assert_eq!(a.kid().len(), 43, "base64url of a SHA-256");
    }

    #[test]
    fn an_assertion_verifies_with_the_published_public_key() {
        let key = ClientKey::from_pem(&test_keys::rsa_pkcs8_pem()).expect("key");
        let jwks = key.public_jwks().to_string();
        let set = crate::jwk::KeySet::parse(jwks.as_bytes()).expect("jwks");
        let rng = SystemRandom::new();
        for alg in [Algorithm::Rs256, Algorithm::Rs512] {
            let token = key
                .sign(alg, &serde_json::json!({"iss": "me"}), &rng)
                .expect("signs");
            let compact = jws::Compact::parse(&token).expect("parses");
            assert_eq!(compact.alg, alg);
            let candidates = set.candidates(alg, compact.kid.as_deref());
            assert_eq!(candidates.len(), 1);
            assert!(compact.verifies_with(candidates[0]));
        }
    }

    #[test]
    fn debug_output_shows_no_key_material() {
        let key = ClientKey::from_pem(&test_keys::rsa_pkcs8_pem()).expect("key");
        let shown = format!("{key:?}");
        assert!(shown.contains(key.kid()));
        assert!(shown.len() < 100, "{shown}");
    }
}
