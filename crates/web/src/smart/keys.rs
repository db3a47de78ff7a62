//! The key that signs id_tokens: ES256 (ECDSA P-256 with SHA-256), so that apps verify an
//! id_token with the public key published at `/.well-known/jwks.json` and never hold a secret
//! of ours. (Access tokens stay HMAC-signed with the store's symmetric key: only Portico itself
//! checks them.)
//!
//! The key is made once, by whichever server instance first needs it, and kept in the database
//! ([`store::Store::state_compare_and_put`] under [`STATE_KEY`], as a PKCS#8 document): every
//! instance on the same database signs with the same key, and a race between two first starts
//! keeps exactly one. It is not configuration and never leaves the database except as its public
//! half.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use store::Store;

use crate::WebError;

/// Where the private key is kept in the store's state table.
pub const STATE_KEY: &str = "server-key/id-token-es256";

/// The JWS algorithm of id_tokens.
pub const ALGORITHM: &str = "ES256";

/// The id_token signing key.
pub struct IdTokenKey {
    pair: EcdsaKeyPair,
    rng: SystemRandom,
    /// RFC 7638 thumbprint of the public key: the `kid` of the JWK and of every token header.
    kid: String,
}

impl std::fmt::Debug for IdTokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IdTokenKey(kid {})", self.kid)
    }
}

fn fault(what: &str) -> WebError {
    WebError::Internal(format!("the id_token signing key {what}"))
}

impl IdTokenKey {
    /// The key kept in `store`, made and stored first if there is none yet.
    pub async fn load_or_create(store: &dyn Store) -> Result<IdTokenKey, WebError> {
        if let Some(stored) = store.state_get(STATE_KEY).await? {
            return IdTokenKey::from_stored(&stored);
        }
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| fault("could not be generated"))?;
        let encoded = STANDARD.encode(pkcs8.as_ref());
        // Another instance may have stored one meanwhile: then its key is the key.
        store
            .state_compare_and_put(STATE_KEY, None, &encoded)
            .await?;
        let stored = store
            .state_get(STATE_KEY)
            .await?
            .ok_or_else(|| fault("vanished from the database after it was stored"))?;
        IdTokenKey::from_stored(&stored)
    }

    /// The key from its stored form (base64 of the PKCS#8 document).
    pub fn from_stored(stored: &str) -> Result<IdTokenKey, WebError> {
        let pkcs8 = STANDARD
            .decode(stored.trim())
            .map_err(|_| fault("in the database is not base64"))?;
        let rng = SystemRandom::new();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8, &rng)
            .map_err(|_| fault("in the database is not a P-256 PKCS#8 key"))?;
        let kid = thumbprint(pair.public_key().as_ref())
            .ok_or_else(|| fault("has an unexpected public key shape"))?;
        Ok(IdTokenKey { pair, rng, kid })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK Set (`/.well-known/jwks.json`).
    pub fn jwks(&self) -> Value {
        let (x, y) = coordinates(self.pair.public_key().as_ref()).unwrap_or_default();
        json!({"keys": [{
            "kty": "EC",
            "crv": "P-256",
            "x": x,
            "y": y,
            "use": "sig",
            "alg": ALGORITHM,
            "kid": self.kid,
        }]})
    }

    /// A compact JWS (`header.payload.signature`) of `claims`.
    pub fn sign(&self, claims: &Value) -> Result<String, WebError> {
        let header = json!({"alg": ALGORITHM, "typ": "JWT", "kid": self.kid});
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self
            .pair
            .sign(&self.rng, signing_input.as_bytes())
            .map_err(|_| fault("failed to sign"))?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        ))
    }
}

/// `x` and `y` (base64url) of an uncompressed P-256 point `04 ‖ x ‖ y`.
fn coordinates(point: &[u8]) -> Option<(String, String)> {
    match point {
        [0x04, rest @ ..] if rest.len() == 64 => {
            let (x, y) = rest.split_at(32);
            Some((URL_SAFE_NO_PAD.encode(x), URL_SAFE_NO_PAD.encode(y)))
        }
        _ => None,
    }
}

/// RFC 7638: SHA-256 of the required members in lexicographic order, no whitespace.
fn thumbprint(point: &[u8]) -> Option<String> {
    let (x, y) = coordinates(point)?;
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    Some(URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};

    fn fresh() -> IdTokenKey {
        let rng = SystemRandom::new();
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("generate");
        IdTokenKey::from_stored(&STANDARD.encode(pkcs8.as_ref())).expect("load")
    }

    fn public_key_from_jwks(jwks: &Value) -> Vec<u8> {
        let key = &jwks["keys"][0];
        let mut point = vec![0x04];
        for c in ["x", "y"] {
            let text = key[c].as_str().expect("coordinate");
            point.extend(URL_SAFE_NO_PAD.decode(text).expect("base64url"));
        }
        point
    }

    #[test]
    fn a_signed_token_verifies_with_the_published_key_and_names_its_kid() {
        let key = fresh();
        let token = key.sign(&json!({"sub": "a"})).expect("sign");
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).expect("b64")).expect("json");
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["kid"], key.kid());
        let jwks = key.jwks();
        assert_eq!(jwks["keys"][0]["kid"], key.kid());
        let public = UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, public_key_from_jwks(&jwks));
        let signature = URL_SAFE_NO_PAD.decode(parts[2]).expect("b64");
        let input = format!("{}.{}", parts[0], parts[1]);
        assert!(public.verify(input.as_bytes(), &signature).is_ok());
        assert!(public.verify(b"other input", &signature).is_err());
    }

    #[test]
    fn another_key_has_another_kid_and_its_tokens_do_not_verify() {
        let (a, b) = (fresh(), fresh());
        assert_ne!(a.kid(), b.kid());
        let token = a.sign(&json!({})).expect("sign");
        let parts: Vec<&str> = token.split('.').collect();
        let public =
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, public_key_from_jwks(&b.jwks()));
        let signature = URL_SAFE_NO_PAD.decode(parts[2]).expect("b64");
        let input = format!("{}.{}", parts[0], parts[1]);
        assert!(public.verify(input.as_bytes(), &signature).is_err());
    }

    #[test]
    fn a_damaged_stored_key_is_an_error_not_a_panic() {
        assert!(IdTokenKey::from_stored("not base64!").is_err());
        assert!(IdTokenKey::from_stored(&STANDARD.encode(b"not a key")).is_err());
    }
}
