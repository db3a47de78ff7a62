//! The relying party: discovery at start, the authorization request, and the code exchange
//! that ends in a checked [`Identity`].

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::RwLock;
use reqwest::Url;
use ring::rand::SystemRandom;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::auth_state::{random_token, AuthState};
use crate::client_key::ClientKey;
use crate::discovery::{self, Metadata, RawMetadata};
use crate::error::{Error, Result};
use crate::http;
use crate::id_token::{self, check_signature, Claims, Expected, SignatureCheck};
use crate::identity::{self, Identity};
use crate::jwk::KeySet;
use crate::jws::Compact;

/// How long a client assertion is valid. NHS login allows at most five minutes; two leave room
/// for clock differences either way while keeping a captured assertion short-lived.
const ASSERTION_LIFETIME_SECS: u64 = 120;

/// Authorization parameters this client sets itself; an extra may not replace them.
const RESERVED: [&str; 9] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "vtr",
];

/// An OpenID Connect client of one provider (e.g. NHS login), registered with
/// `private_key_jwt` client authentication. Build it once at start with [`Client::discover`] and
/// share it (it is `Send + Sync`); the provider's keys are cached and refetched when a token
/// names a key not seen yet.
pub struct Client {
    http: reqwest::Client,
    metadata: Metadata,
    client_id: String,
    redirect_uri: String,
    key: ClientKey,
    keys: RwLock<Arc<KeySet>>,
    rng: SystemRandom,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("issuer", &self.metadata.issuer)
            .field("client_id", &self.client_id)
            .field("redirect_uri", &self.redirect_uri)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    id_token: Option<String>,
    access_token: Option<String>,
}

#[derive(Deserialize)]
struct TokenError {
    error: String,
    error_description: Option<String>,
}

impl Client {
    /// Fetches the provider's discovery document (`{issuer}/.well-known/openid-configuration`)
    /// and key set, and reads the client's RSA private key (PEM). `http` is used for every
    /// request to the provider: give it timeouts (and, in production, no redirects).
    pub async fn discover(
        issuer: &str,
        client_id: &str,
        private_key_pem: &str,
        redirect_uri: &str,
        http: reqwest::Client,
    ) -> Result<Client> {
        if client_id.is_empty() {
            return Err(Error::Config("the client id is empty".into()));
        }
        Url::parse(redirect_uri)
            .map_err(|e| Error::Config(format!("the redirect URI is not an absolute URL: {e}")))?;
        let key = ClientKey::from_pem(private_key_pem)?;
        let url = discovery::discovery_url(issuer)?;
        let raw: RawMetadata = http::json("provider discovery", http.get(url)).await?;
        let metadata = Metadata::check(raw, issuer)?;
        let keys = fetch_keys(&http, &metadata).await?;
        Ok(Client {
            http,
            metadata,
            client_id: client_id.to_string(),
            redirect_uri: redirect_uri.to_string(),
            key,
            keys: RwLock::new(Arc::new(keys)),
            rng: SystemRandom::new(),
        })
    }

    /// The provider's issuer identifier, as configured and confirmed by discovery.
    pub fn issuer(&self) -> &str {
        &self.metadata.issuer
    }

    /// The client's public key as a JWKS, to register with the provider.
    pub fn public_jwks(&self) -> serde_json::Value {
        self.key.public_jwks()
    }

    /// The URL to send the user's browser to, and the secrets to keep until the callback.
    ///
    /// `scopes` gets `openid` added if absent. `vtr` lists the acceptable vectors of trust, most
    /// wanted first (e.g. `["P9.Cp.Cd", "P9.Cp.Ck", "P9.Cm", "P5.Cp.Cd"]`); empty leaves the
    /// parameter out. `extra` adds parameters such as `prompt=none` and
    /// `asserted_login_identity` for NHS App single sign-on; it may not set the ones this
    /// client sets itself.
    pub fn authorize_url(
        &self,
        scopes: &[&str],
        vtr: &[&str],
        extra: &[(&str, &str)],
    ) -> Result<(Url, AuthState)> {
        if let Some((name, _)) = extra.iter().find(|(name, _)| RESERVED.contains(name)) {
            return Err(Error::ReservedParameter((*name).to_string()));
        }
        let auth = AuthState::generate(&self.rng)?;
        let mut scope: Vec<&str> = Vec::with_capacity(scopes.len() + 1);
        if !scopes.contains(&"openid") {
            scope.push("openid");
        }
        scope.extend_from_slice(scopes);

        let mut url = self.metadata.authorization_endpoint.clone();
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", &self.client_id)
                .append_pair("redirect_uri", &self.redirect_uri)
                .append_pair("scope", &scope.join(" "))
                .append_pair("state", &auth.state)
                .append_pair("nonce", &auth.nonce)
                .append_pair("code_challenge", &auth.pkce_challenge())
                .append_pair("code_challenge_method", "S256");
            if !vtr.is_empty() {
                let vtr = serde_json::to_string(vtr)
                    .map_err(|e| Error::Config(format!("vtr cannot be written as JSON: {e}")))?;
                query.append_pair("vtr", &vtr);
            }
            for (name, value) in extra {
                query.append_pair(name, value);
            }
        }
        Ok((url, auth))
    }

    /// Completes the sign-in: checks that the callback's `state` is this sign-in's, exchanges
    /// the code at the token endpoint (authenticated with a signed client assertion, and the
    /// PKCE verifier), validates the ID token and, when the ID token lacks claims, reads them
    /// from the userinfo endpoint.
    pub async fn exchange(
        &self,
        code: &str,
        auth: &AuthState,
        returned_state: &str,
    ) -> Result<Identity> {
        if !bool::from(returned_state.as_bytes().ct_eq(auth.state.as_bytes())) {
            return Err(Error::StateMismatch);
        }
        if code.is_empty() {
            return Err(Error::MissingCode);
        }
        let now = unix_now();
        let tokens = self.redeem(code, auth, now).await?;
        let id_token = tokens.id_token.ok_or_else(|| Error::BadResponse {
            what: "token endpoint",
            reason: "the response has no id_token (was the `openid` scope granted?)".into(),
        })?;

        let compact = Compact::parse(&id_token).map_err(Error::InvalidIdToken)?;
        self.verify_signature(&compact).await?;
        let mut claims = id_token::validate_claims(
            compact.payload(),
            Expected {
                issuer: &self.metadata.issuer,
                client_id: &self.client_id,
                nonce: &auth.nonce,
                now,
            },
        )?;

        if identity::needs_userinfo(&claims) {
            if let (Some(endpoint), Some(access_token)) =
                (&self.metadata.userinfo_endpoint, &tokens.access_token)
            {
                let userinfo: Claims = http::json(
                    "userinfo endpoint",
                    self.http.get(endpoint.clone()).bearer_auth(access_token),
                )
                .await?;
                identity::merge_userinfo(&mut claims, userinfo)?;
            }
        }
        Identity::from_claims(&claims)
    }

    /// Posts the code to the token endpoint.
    async fn redeem(&self, code: &str, auth: &AuthState, now: u64) -> Result<TokenResponse> {
        const WHAT: &str = "token endpoint";
        let assertion = self.client_assertion(now)?;
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &self.redirect_uri),
            ("code_verifier", &auth.pkce_verifier),
            ("client_id", &self.client_id),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", &assertion),
        ];
        let response = self
            .http
            .post(self.metadata.token_endpoint.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&form)
            .send()
            .await
            .map_err(|source| Error::Http { what: WHAT, source })?;
        let status = response.status();
        let body = http::read_body(WHAT, response).await?;
        if !status.is_success() {
            return Err(match serde_json::from_slice::<TokenError>(&body) {
                Ok(e) => Error::TokenRefused {
                    status: status.as_u16(),
                    error: printable(&e.error, 64),
                    description: e.error_description.map(|d| printable(&d, 200)),
                },
                Err(_) => Error::HttpStatus {
                    what: WHAT,
                    status: status.as_u16(),
                },
            });
        }
        serde_json::from_slice(&body).map_err(|e| Error::BadResponse {
            what: WHAT,
            reason: format!("not a token response: {}", http::without_values(&e)),
        })
    }

    /// RFC 7523 client assertion as NHS login wants it: iss = sub = client id, aud = the token
    /// endpoint, a unique jti, a short expiry.
    fn client_assertion(&self, now: u64) -> Result<String> {
        let claims = serde_json::json!({
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self.metadata.token_endpoint.as_str(),
            "jti": random_token(&self.rng)?,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_SECS,
        });
        self.key
            .sign(self.metadata.assertion_alg, &claims, &self.rng)
    }

    /// Verifies the ID token's signature with the cached keys; if none fits (the provider may
    /// have rotated its keys), fetches the key set once more and tries again.
    async fn verify_signature(&self, token: &Compact<'_>) -> Result<()> {
        let cached = Arc::clone(&self.keys.read());
        match check_signature(token, &cached) {
            SignatureCheck::Valid => return Ok(()),
            SignatureCheck::Invalid => return Err(Error::IdTokenSignature),
            SignatureCheck::NoKey => {}
        }
        tracing::info!(
            issuer = %self.metadata.issuer,
            "ID token signed with a key not in the cached key set; fetching the provider's keys again"
        );
        let fresh = Arc::new(fetch_keys(&self.http, &self.metadata).await?);
        *self.keys.write() = Arc::clone(&fresh);
        match check_signature(token, &fresh) {
            SignatureCheck::Valid => Ok(()),
            SignatureCheck::Invalid => Err(Error::IdTokenSignature),
            SignatureCheck::NoKey => Err(match &token.kid {
                Some(kid) => Error::UnknownSigningKey {
                    kid: printable(kid, 100),
                },
                None => Error::InvalidIdToken(format!(
                    "the provider publishes no key for its algorithm {}",
                    token.alg.name()
                )),
            }),
        }
    }
}

async fn fetch_keys(http: &reqwest::Client, metadata: &Metadata) -> Result<KeySet> {
    const WHAT: &str = "provider key set (jwks_uri)";
    let response = http
        .get(metadata.jwks_uri.clone())
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|source| Error::Http { what: WHAT, source })?;
    let status = response.status();
    if !status.is_success() {
        return Err(Error::HttpStatus {
            what: WHAT,
            status: status.as_u16(),
        });
    }
    let body = http::read_body(WHAT, response).await?;
    KeySet::parse(&body).map_err(|reason| Error::BadResponse { what: WHAT, reason })
}

/// A provider-supplied text fit for an error message: printable ASCII only, bounded.
fn printable(text: &str, max: usize) -> String {
    text.chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(max)
        .collect()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth_state::pkce_challenge;
    use crate::jws::Algorithm;
    use crate::test_keys::{self, TokenSigner};
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn client(jwks_uri: &str, keys: KeySet) -> Client {
        let url = |u: &str| Url::parse(u).expect("URL");
        Client {
            http: reqwest::Client::new(),
            metadata: Metadata {
                issuer: "https://auth.example".into(),
                authorization_endpoint: url("https://auth.example/authorize?tenant=t1"),
                token_endpoint: url("https://auth.example/token"),
                jwks_uri: url(jwks_uri),
                userinfo_endpoint: None,
                assertion_alg: Algorithm::Rs512,
            },
            client_id: "portico".into(),
            redirect_uri: "https://portico.example/cb".into(),
            key: ClientKey::from_pem(&test_keys::rsa_pkcs8_pem()).expect("key"),
            keys: RwLock::new(Arc::new(keys)),
            rng: SystemRandom::new(),
        }
    }

    fn query(url: &Url) -> HashMap<String, String> {
        url.query_pairs().into_owned().collect()
    }

    #[test]
    fn the_authorization_url_carries_pkce_state_nonce_and_vtr() {
        let c = client("https://auth.example/jwks", KeySet::default());
        let (url, auth) = c
            .authorize_url(
                &["profile", "email"],
                &["P9.Cp.Cd", "P5.Cp.Cd"],
                &[("prompt", "none"), ("asserted_login_identity", "jwt")],
            )
            .expect("url");
        assert!(url
            .as_str()
            .starts_with("https://auth.example/authorize?tenant=t1&"));
        let q = query(&url);
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["client_id"], "portico");
        assert_eq!(q["redirect_uri"], "https://portico.example/cb");
        assert_eq!(q["scope"], "openid profile email");
        assert_eq!(q["state"], auth.state);
        assert_eq!(q["nonce"], auth.nonce);
        assert_eq!(q["code_challenge"], pkce_challenge(&auth.pkce_verifier));
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["vtr"], r#"["P9.Cp.Cd","P5.Cp.Cd"]"#);
        assert_eq!(q["prompt"], "none");
        assert_eq!(q["asserted_login_identity"], "jwt");
        assert!(!q.values().any(|v| v == &auth.pkce_verifier));

        let (again, second) = c.authorize_url(&["openid"], &[], &[]).expect("url");
        let q = query(&again);
        assert_eq!(q["scope"], "openid");
        assert!(!q.contains_key("vtr"));
        assert_ne!(second.state, auth.state);
    }

    #[test]
    fn extras_cannot_replace_the_clients_own_parameters() {
        let c = client("https://auth.example/jwks", KeySet::default());
        for name in RESERVED {
            let err = c.authorize_url(&[], &[], &[(name, "x")]).unwrap_err();
            assert!(
                matches!(&err, Error::ReservedParameter(n) if n == name),
                "{name}: {err}"
            );
        }
    }

    #[test]
    fn the_client_assertion_is_what_nhs_login_asks_for() {
        let c = client("https://auth.example/jwks", KeySet::default());
        let token = c.client_assertion(1_700_000_000).expect("assertion");
        let compact = Compact::parse(&token).expect("parses");
        assert_eq!(compact.alg, Algorithm::Rs512);
        assert_eq!(compact.kid.as_deref(), Some(c.key.kid()));
        let jwks = KeySet::parse(c.public_jwks().to_string().as_bytes()).expect("jwks");
        assert_eq!(check_signature(&compact, &jwks), SignatureCheck::Valid);
        let claims: serde_json::Value = serde_json::from_slice(compact.payload()).expect("json");
        assert_eq!(claims["iss"], "portico");
        assert_eq!(claims["sub"], "portico");
        assert_eq!(claims["aud"], "https://auth.example/token");
        assert_eq!(claims["iat"], 1_700_000_000u64);
        let lifetime = claims["exp"].as_u64().unwrap_or(0) - 1_700_000_000;
        assert!(lifetime > 0 && lifetime <= 300, "{lifetime}");
        let other = c.client_assertion(1_700_000_000).expect("assertion");
        let jti = |t: &str| {
            let c = Compact::parse(t).expect("parses");
            serde_json::from_slice::<serde_json::Value>(c.payload()).expect("json")["jti"].clone()
        };
        assert_ne!(jti(&token), jti(&other), "jti is unique");
    }

    /// Serves `body` as the JWKS to every request on loopback, counting the requests.
    async fn jwks_server(body: String) -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&hits);
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            }
        });
        (format!("http://{addr}/jwks"), hits)
    }

    #[tokio::test]
    async fn an_unknown_kid_fetches_the_keys_again_once() {
        let old = TokenSigner::es256();
        let rotated = TokenSigner::rs512();
        let (jwks_uri, hits) = jwks_server(rotated.jwks().to_string()).await;
        let c = client(&jwks_uri, old.key_set());
        let claims = serde_json::json!({"sub": "s"});

        // Signed with the provider's new key: one refetch, then valid, and cached.
        let token = rotated.sign(&claims);
        let parsed = Compact::parse(&token).expect("parses");
        c.verify_signature(&parsed)
            .await
            .expect("valid after refetch");
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        c.verify_signature(&parsed).await.expect("valid from cache");
        assert_eq!(hits.load(Ordering::SeqCst), 1);

        // A known kid with a bad signature is refused without fetching anything.
        let (input, _) = token.rsplit_once('.').expect("parts");
        let forged = format!("{input}.{}", test_keys::b64(&[1u8; 256]));
        let parsed = Compact::parse(&forged).expect("parses");
        assert!(matches!(
            c.verify_signature(&parsed).await,
            Err(Error::IdTokenSignature)
        ));
        assert_eq!(hits.load(Ordering::SeqCst), 1);

        // A kid the provider does not publish even after a refetch.
        let stranger = TokenSigner::rs512().with_kid("never-published");
        let token = stranger.sign(&claims);
        let parsed = Compact::parse(&token).expect("parses");
        let err = c.verify_signature(&parsed).await.unwrap_err();
        assert!(
            matches!(&err, Error::UnknownSigningKey { kid } if kid == "never-published"),
            "{err}"
        );
        assert_eq!(hits.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_wrong_state_is_refused_before_any_request() {
        // The token endpoint is unreachable: reaching it would give an HTTP error instead.
        let c = client("https://auth.example/jwks", KeySet::default());
        let (_, auth) = c.authorize_url(&[], &[], &[]).expect("url");
        let err = c.exchange("code", &auth, "other").await.unwrap_err();
        assert!(matches!(err, Error::StateMismatch), "{err}");
        let err = c.exchange("", &auth, &auth.state).await.unwrap_err();
        assert!(matches!(err, Error::MissingCode), "{err}");
    }

    #[test]
    fn provider_texts_are_cut_to_printable_ascii() {
        assert_eq!(
            printable("invalid_grant\n\u{1b}[31m", 64),
            "invalid_grant[31m"
        );
        assert_eq!(printable("abcdef", 3), "abc");
    }
}
