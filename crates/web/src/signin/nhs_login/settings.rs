//! NHS login's settings, and the client this server keeps for it.
//!
//! The settings are checked when the server starts (a client key that cannot sign stops it
//! with one line), but the provider is not asked anything then: discovery happens at the first
//! sign-in, so that NHS login being down does not keep the portal from starting. The client
//! found is kept for every later sign-in; a discovery that failed is tried again at the next
//! one, and a client whose provider stopped answering is dropped so that the next sign-in
//! discovers afresh (the provider may have moved its endpoints).

use std::sync::Arc;
use std::time::Duration;

use oidc::ClientKey;
use parking_lot::RwLock;

use super::state_cookie::Sealer;
use super::CALLBACK_PATH;
use crate::WebError;

/// How long one request to the provider may take in all, and to connect.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(15);
const PROVIDER_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What `PORTICO_OIDC_ISSUER`, `PORTICO_OIDC_CLIENT_ID` and `PORTICO_OIDC_KEY` configure: the
/// provider and this server's registration with it. `Debug` never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct NhsLoginConfig {
    issuer: String,
    client_id: String,
    key_pem: String,
}

impl std::fmt::Debug for NhsLoginConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NhsLoginConfig")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("key_pem", &"[redacted]")
            .finish()
    }
}

impl NhsLoginConfig {
    /// The settings, checked: the issuer exactly as the provider names itself (for NHS login,
    /// e.g. `https://auth.login.nhs.uk`), the client id NHS login issued, and the client's RSA
    /// private key as PEM (PKCS#8 or PKCS#1), whose public half was registered with NHS login.
    /// The error is one line for the operator; it never quotes the key.
    pub fn new(issuer: &str, client_id: &str, key_pem: &str) -> Result<NhsLoginConfig, String> {
        let issuer = issuer.trim();
        let client_id = client_id.trim();
        if issuer.is_empty() {
            return Err("the issuer is empty".into());
        }
        if client_id.is_empty() {
            return Err("the client id is empty".into());
        }
        ClientKey::from_pem(key_pem).map_err(|e| e.to_string())?;
        Ok(NhsLoginConfig {
            issuer: issuer.to_string(),
            client_id: client_id.to_string(),
            key_pem: key_pem.to_string(),
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The public half of the client key as a JWKS: what NHS login is given at registration.
    pub fn public_jwks(&self) -> Option<serde_json::Value> {
        ClientKey::from_pem(&self.key_pem)
            .ok()
            .map(|k| k.public_jwks())
    }
}

/// The NHS login side of one server: its settings, the client once discovered, and the sealer
/// of the state cookie.
pub(crate) struct NhsLogin {
    config: NhsLoginConfig,
    redirect_uri: String,
    http: reqwest::Client,
    client: RwLock<Option<Arc<oidc::Client>>>,
    pub(crate) sealer: Sealer,
}

impl NhsLogin {
    /// `public_url` is the server's (the redirect URI is `{public_url}/login/nhs/callback`);
    /// `server_key` the secret every server on the database shares, which the state cookie's
    /// key is derived from.
    pub(crate) fn new(
        config: &NhsLoginConfig,
        public_url: &str,
        server_key: &[u8],
    ) -> Result<NhsLogin, WebError> {
        // No redirects: an endpoint that redirects is a misconfiguration to report, not follow.
        let http = reqwest::Client::builder()
            .timeout(PROVIDER_TIMEOUT)
            .connect_timeout(PROVIDER_CONNECT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| WebError::Internal(format!("the NHS login HTTP client: {e}")))?;
        Ok(NhsLogin {
            config: config.clone(),
            redirect_uri: format!("{}{CALLBACK_PATH}", public_url.trim_end_matches('/')),
            http,
            client: RwLock::new(None),
            sealer: Sealer::new(server_key),
        })
    }

    /// The client, discovering the provider first if no client is kept.
    pub(crate) async fn client(&self) -> Result<Arc<oidc::Client>, oidc::Error> {
        if let Some(client) = self.client.read().as_ref() {
            return Ok(Arc::clone(client));
        }
        // Two first sign-ins at once may both discover; the later simply replaces the earlier.
        let client = Arc::new(
            oidc::Client::discover(
                &self.config.issuer,
                &self.config.client_id,
                &self.config.key_pem,
                &self.redirect_uri,
                self.http.clone(),
            )
            .await?,
        );
        *self.client.write() = Some(Arc::clone(&client));
        Ok(client)
    }

    /// Drops `client` (if it is still the one kept), so that the next sign-in discovers again.
    pub(crate) fn forget(&self, client: &Arc<oidc::Client>) {
        let mut kept = self.client.write();
        if kept.as_ref().is_some_and(|k| Arc::ptr_eq(k, client)) {
            *kept = None;
        }
    }

    #[cfg(test)]
    pub(crate) fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_that_is_not_an_rsa_pem_is_refused_without_being_quoted() {
        let fake = "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==\n-----END PRIVATE KEY-----\n";
        let err = NhsLoginConfig::new("https://auth.example", "portico", fake).unwrap_err();
        assert!(!err.contains("c2VjcmV0"), "{err}");
        assert!(err.contains("RSA") || err.contains("PEM"), "{err}");
        let err = NhsLoginConfig::new("https://auth.example", "portico", "not a key").unwrap_err();
        assert!(err.contains("PEM"), "{err}");
        assert!(NhsLoginConfig::new("", "portico", fake).is_err());
        assert!(NhsLoginConfig::new("https://auth.example", " ", fake).is_err());
    }

    #[test]
    fn the_key_is_never_shown_and_the_redirect_uri_follows_the_public_url() {
        let pem = oidc::testing::client_key_pem();
        let config = NhsLoginConfig::new(" https://auth.example ", "portico", pem).expect("valid");
        assert_eq!(config.issuer(), "https://auth.example");
        let shown = format!("{config:?}");
        assert!(!shown.contains("PRIVATE"), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
        assert_eq!(
            config.public_jwks().map(|j| j["keys"][0]["kty"].clone()),
            Some(serde_json::json!("RSA"))
        );
        let nhs =
            NhsLogin::new(&config, "https://portal.example.nhs.uk/", &[7u8; 32]).expect("nhs");
        assert_eq!(
            nhs.redirect_uri(),
            "https://portal.example.nhs.uk/login/nhs/callback"
        );
    }
}
