//! The provider's discovery document (OpenID Connect Discovery 1.0), checked once at start so
//! that a provider this client cannot work with is reported then, not at a user's sign-in.

use reqwest::Url;
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::jws::Algorithm;

/// The members of `/.well-known/openid-configuration` this client uses.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct RawMetadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    userinfo_endpoint: Option<String>,
    code_challenge_methods_supported: Option<Vec<String>>,
    token_endpoint_auth_methods_supported: Option<Vec<String>>,
    token_endpoint_auth_signing_alg_values_supported: Option<Vec<String>>,
}

/// Checked metadata.
#[derive(Debug, Clone)]
pub(crate) struct Metadata {
    pub issuer: String,
    pub authorization_endpoint: Url,
    pub token_endpoint: Url,
    pub jwks_uri: Url,
    pub userinfo_endpoint: Option<Url>,
    /// How the client assertion is signed: RS512 when offered (NHS login's), else RS256.
    pub assertion_alg: Algorithm,
}

/// Where the discovery document of `issuer` is.
pub(crate) fn discovery_url(issuer: &str) -> Result<Url> {
    let base = endpoint("issuer", issuer).map_err(Error::Config)?;
    if base.query().is_some() || base.fragment().is_some() {
        return Err(Error::Config(
            "the issuer URL must have no query or fragment".into(),
        ));
    }
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    Url::parse(&url).map_err(|e| Error::Config(format!("issuer URL: {e}")))
}

impl Metadata {
    /// Checks the document against the issuer it was fetched for.
    pub fn check(raw: RawMetadata, issuer: &str) -> Result<Metadata> {
        // Discovery 4.3: the document must name exactly the issuer it was fetched for, or
        // tokens from one issuer could be accepted as another's.
        if raw.issuer != issuer {
            return Err(Error::Metadata(format!(
                "it names issuer `{}`, not the configured `{issuer}`; set the issuer exactly as the provider writes it",
                raw.issuer
            )));
        }
        if let Some(methods) = &raw.code_challenge_methods_supported {
            if !methods.iter().any(|m| m == "S256") {
                return Err(Error::Metadata(
                    "the provider does not offer PKCE with S256 (code_challenge_methods_supported)"
                        .into(),
                ));
            }
        }
        if let Some(methods) = &raw.token_endpoint_auth_methods_supported {
            if !methods.iter().any(|m| m == "private_key_jwt") {
                return Err(Error::Metadata(
                    "the provider does not offer private_key_jwt client authentication (token_endpoint_auth_methods_supported)"
                        .into(),
                ));
            }
        }
        let assertion_alg = match &raw.token_endpoint_auth_signing_alg_values_supported {
            None => Algorithm::Rs512,
            Some(algs) if algs.iter().any(|a| a == "RS512") => Algorithm::Rs512,
            Some(algs) if algs.iter().any(|a| a == "RS256") => Algorithm::Rs256,
            Some(_) => {
                return Err(Error::Metadata(
                    "the provider accepts neither RS512 nor RS256 client assertions (token_endpoint_auth_signing_alg_values_supported)"
                        .into(),
                ))
            }
        };
        Ok(Metadata {
            issuer: raw.issuer,
            authorization_endpoint: endpoint("authorization_endpoint", &raw.authorization_endpoint)
                .map_err(Error::Metadata)?,
            token_endpoint: endpoint("token_endpoint", &raw.token_endpoint)
                .map_err(Error::Metadata)?,
            jwks_uri: endpoint("jwks_uri", &raw.jwks_uri).map_err(Error::Metadata)?,
            userinfo_endpoint: raw
                .userinfo_endpoint
                .as_deref()
                .map(|u| endpoint("userinfo_endpoint", u))
                .transpose()
                .map_err(Error::Metadata)?,
            assertion_alg,
        })
    }
}

/// An endpoint must be HTTPS; plain HTTP only on this machine (loopback), for tests and local
/// development, where nothing crosses a network.
pub(crate) fn endpoint(name: &str, text: &str) -> std::result::Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("{name} is not a URL: {e}"))?;
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" => Ok(url),
        "http" if loopback => Ok(url),
        _ => Err(format!(
            "{name} must be an https URL (plain http only on loopback): {url}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ISS: &str = "https://auth.login.nhs.uk";

    fn raw(changes: serde_json::Value) -> RawMetadata {
        let mut doc = json!({
            "issuer": ISS,
            "authorization_endpoint": "https://auth.login.nhs.uk/authorize",
            "token_endpoint": "https://auth.login.nhs.uk/token",
            "jwks_uri": "https://auth.login.nhs.uk/.well-known/jwks.json",
            "userinfo_endpoint": "https://auth.login.nhs.uk/userinfo",
            "token_endpoint_auth_signing_alg_values_supported": ["RS512"],
        });
        if let (Some(d), Some(c)) = (doc.as_object_mut(), changes.as_object()) {
            d.extend(c.clone());
        }
        serde_json::from_value(doc).expect("metadata shape")
    }

    fn error(changes: serde_json::Value) -> String {
        match Metadata::check(raw(changes), ISS) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("expected an error"),
        }
    }

    #[test]
    fn nhs_login_shaped_metadata_is_accepted_with_rs512() {
        let m = Metadata::check(raw(json!({})), ISS).expect("valid");
        assert_eq!(m.assertion_alg, Algorithm::Rs512);
        assert_eq!(m.token_endpoint.as_str(), "https://auth.login.nhs.uk/token");
    }

    #[test]
    fn the_assertion_algorithm_follows_the_provider() {
        let alg = |algs: serde_json::Value| {
            Metadata::check(
                raw(json!({"token_endpoint_auth_signing_alg_values_supported": algs})),
                ISS,
            )
            .map(|m| m.assertion_alg)
        };
        assert_eq!(alg(json!(["RS256"])).ok(), Some(Algorithm::Rs256));
        assert_eq!(alg(json!(["RS256", "RS512"])).ok(), Some(Algorithm::Rs512));
        assert_eq!(alg(json!(null)).ok(), Some(Algorithm::Rs512));
        assert!(alg(json!(["ES256", "PS256"])).is_err());
    }

    #[test]
    fn the_issuer_must_be_the_configured_one() {
        assert!(error(json!({"issuer": "https://evil.example"})).contains("issuer"));
        assert!(error(json!({"issuer": "https://auth.login.nhs.uk/"})).contains("issuer"));
    }

    #[test]
    fn plain_http_endpoints_only_on_loopback() {
        assert!(
            error(json!({"token_endpoint": "http://auth.login.nhs.uk/token"}))
                .contains("token_endpoint")
        );
        let local = |host: &str| {
            Metadata::check(
                raw(json!({"jwks_uri": format!("http://{host}:4000/jwks")})),
                ISS,
            )
            .is_ok()
        };
        assert!(local("127.0.0.1"));
        assert!(local("localhost"));
        assert!(local("[::1]"));
        assert!(!local("10.0.0.1"));
        assert!(error(json!({"userinfo_endpoint": "ftp://x/"})).contains("userinfo"));
    }

    #[test]
    fn pkce_and_private_key_jwt_must_be_offered_when_listed() {
        assert!(error(json!({"code_challenge_methods_supported": ["plain"]})).contains("S256"));
        assert!(
            error(json!({"token_endpoint_auth_methods_supported": ["client_secret_basic"]}))
                .contains("private_key_jwt")
        );
    }

    #[test]
    fn the_discovery_url_is_under_the_issuer() {
        let url = |i: &str| discovery_url(i).map(|u| u.to_string());
        assert_eq!(
            url("https://auth.login.nhs.uk").ok().as_deref(),
            Some("https://auth.login.nhs.uk/.well-known/openid-configuration")
        );
        assert_eq!(
            url("https://idp.example/tenant/").ok().as_deref(),
            Some("https://idp.example/tenant/.well-known/openid-configuration")
        );
        assert!(url("http://idp.example").is_err());
        assert!(url("https://idp.example?x=1").is_err());
        assert!(url("not a url").is_err());
    }
}
