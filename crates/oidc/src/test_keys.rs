//! Throwaway keys for the unit tests, made at run time (no private key is committed), and a
//! signer that plays the provider's part in issuing ID tokens.

use std::sync::OnceLock;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use serde_json::{json, Value};

use crate::jwk::KeySet;
use crate::jws;

/// One RSA key per test binary: generating one takes a while in a debug build.
fn rsa_key() -> &'static rsa::RsaPrivateKey {
    static KEY: OnceLock<rsa::RsaPrivateKey> = OnceLock::new();
    KEY.get_or_init(|| {
        rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("RSA key generation")
    })
}

pub fn rsa_pkcs8_pem() -> String {
    rsa_key()
        .to_pkcs8_pem(LineEnding::LF)
        .expect("PKCS#8 PEM")
        .to_string()
}

pub fn rsa_pkcs1_pem() -> String {
    rsa_key()
        .to_pkcs1_pem(LineEnding::LF)
        .expect("PKCS#1 PEM")
        .to_string()
}

fn ec_pkcs8_der() -> Vec<u8> {
    EcdsaKeyPair::generate_pkcs8(
        &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &SystemRandom::new(),
    )
    .expect("P-256 key generation")
    .as_ref()
    .to_vec()
}

pub fn ec_pkcs8_pem() -> String {
    let body = STANDARD.encode(ec_pkcs8_der());
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
        .collect();
    format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        lines.join("\n")
    )
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn b64_decode(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(text).expect("base64url")
}

enum Pair {
    Rsa(RsaKeyPair, &'static dyn signature::RsaEncoding),
    Ec(EcdsaKeyPair),
}

/// Signs ID tokens as a provider would, and publishes the matching JWKS.
pub struct TokenSigner {
    pair: Pair,
    alg: &'static str,
    kid: String,
}

impl TokenSigner {
    fn rsa(alg: &'static str, padding: &'static dyn signature::RsaEncoding) -> TokenSigner {
        let der = rsa_key().to_pkcs8_der().expect("PKCS#8 DER");
        let pair = RsaKeyPair::from_pkcs8(der.as_bytes()).expect("ring reads the key");
        TokenSigner {
            pair: Pair::Rsa(pair, padding),
            alg,
            kid: format!("rsa-{alg}"),
        }
    }

    pub fn rs512() -> TokenSigner {
        Self::rsa("RS512", &signature::RSA_PKCS1_SHA512)
    }

    pub fn rs256() -> TokenSigner {
        Self::rsa("RS256", &signature::RSA_PKCS1_SHA256)
    }

    pub fn es256() -> TokenSigner {
        let rng = SystemRandom::new();
        let pair = EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &ec_pkcs8_der(),
            &rng,
        )
        .expect("ring reads the key");
        let kid = format!("ec-{}", &b64(pair.public_key().as_ref())[..8]);
        TokenSigner {
            pair: Pair::Ec(pair),
            alg: "ES256",
            kid,
        }
    }

    pub fn with_kid(mut self, kid: &str) -> TokenSigner {
        self.kid = kid.to_string();
        self
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn sign(&self, claims: &Value) -> String {
        let header = json!({"alg": self.alg, "kid": self.kid, "typ": "JWT"});
        let input = jws::signing_input(&header, claims);
        let rng = SystemRandom::new();
        let sig = match &self.pair {
            Pair::Rsa(pair, padding) => {
                let mut sig = vec![0u8; pair.public().modulus_len()];
                pair.sign(*padding, &rng, input.as_bytes(), &mut sig)
                    .expect("RSA signing");
                sig
            }
            Pair::Ec(pair) => pair
                .sign(&rng, input.as_bytes())
                .expect("ECDSA signing")
                .as_ref()
                .to_vec(),
        };
        format!("{input}.{}", b64(&sig))
    }

    pub fn jwks(&self) -> Value {
        let key = match &self.pair {
            Pair::Rsa(pair, _) => {
                let public = signature::RsaPublicKeyComponents::<Vec<u8>>::from(pair.public());
                json!({
                    "kty": "RSA", "kid": self.kid, "use": "sig",
                    "n": b64(&public.n), "e": b64(&public.e),
                })
            }
            Pair::Ec(pair) => {
                let point = pair.public_key().as_ref();
                json!({
                    "kty": "EC", "crv": "P-256", "kid": self.kid, "use": "sig",
                    "x": b64(&point[1..33]), "y": b64(&point[33..65]),
                })
            }
        };
        json!({ "keys": [key] })
    }

    pub fn key_set(&self) -> KeySet {
        KeySet::parse(self.jwks().to_string().as_bytes()).expect("JWKS parses")
    }
}
