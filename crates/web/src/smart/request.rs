//! The authorisation request of `/oauth/authorize` (RFC 6749 §4.1.1, RFC 7636, SMART App
//! Launch), checked in the order that keeps it safe:
//!
//! 1. The client and its redirect URI. Until both are known good, nothing is sent back to the
//!    app: every problem is a page shown to the person ([`Refusal::Page`]), never a redirect,
//!    so Portico cannot be used to bounce someone to an address of an attacker's choosing.
//! 2. Everything else. A problem now goes back to the app's redirect URI as `error`,
//!    `error_description` and `state` ([`Refusal::Redirect`]).
//!
//! PKCE with S256 is required of every app, and `aud` must be this server's FHIR base URL, so
//! that a token asked for another server is never issued here.

use identity::pkce;
use store::accounts::SmartApp;

use super::code::MAX_NONCE_CHARS;
use super::grantable::{self, Decision};
use crate::AppState;
use store::accounts::Role;

/// The parameters the consent form carries through to its POST, in this order.
pub const CARRIED: [&str; 9] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "aud",
    "code_challenge",
    "code_challenge_method",
    "nonce",
];

/// A request whose client and redirect URI are good and whose other parameters are checked.
#[derive(Debug, Clone)]
pub struct AuthRequest {
    pub app: SmartApp,
    pub redirect_uri: String,
    pub state: Option<String>,
    /// As asked, space-separated.
    pub scope: String,
    pub code_challenge: String,
    pub nonce: Option<String>,
    /// The parameters as received, to carry through the consent form.
    pub params: Vec<(&'static str, String)>,
}

/// Why a page cannot even be answered to the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageProblem {
    /// No `client_id`, or one that is not a registered app.
    UnknownClient,
    /// No `redirect_uri`, or one not registered for the app.
    BadRedirect,
    /// The request cannot be read (a repeated parameter, a broken query).
    Malformed,
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Page(PageProblem),
    /// An RFC 6749 §4.1.2.1 error for the app, at its checked redirect URI.
    Redirect {
        redirect_uri: String,
        state: Option<String>,
        error: &'static str,
        description: String,
    },
}

/// The value of `name`, if given once and not empty.
fn value<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// Checks `params` (the query of the GET, or the consent form's carried fields).
pub async fn parse(state: &AppState, params: &[(String, String)]) -> Result<AuthRequest, Refusal> {
    for (i, (k, _)) in params.iter().enumerate() {
        if params[..i].iter().any(|(earlier, _)| earlier == k) {
            return Err(Refusal::Page(PageProblem::Malformed));
        }
    }
    let client_id = value(params, "client_id").ok_or(Refusal::Page(PageProblem::UnknownClient))?;
    let app = state
        .store
        .accounts()
        .smart_app(client_id)
        .await
        .map_err(|_| Refusal::Page(PageProblem::Malformed))?
        .ok_or(Refusal::Page(PageProblem::UnknownClient))?;
    let redirect_uri = value(params, "redirect_uri")
        .filter(|uri| app.redirect_uris.iter().any(|r| r == uri))
        .ok_or(Refusal::Page(PageProblem::BadRedirect))?
        .to_string();
    let state_param = value(params, "state").map(str::to_string);
    let refuse = |error: &'static str, description: String| Refusal::Redirect {
        redirect_uri: redirect_uri.clone(),
        state: state_param.clone(),
        error,
        description,
    };
    match value(params, "response_type") {
        Some("code") => {}
        None => {
            return Err(refuse(
                "invalid_request",
                "response_type is missing; use response_type=code".into(),
            ))
        }
        Some(_) => {
            return Err(refuse(
                "unsupported_response_type",
                "only response_type=code (authorization code with PKCE) is supported".into(),
            ))
        }
    }
    let expected_aud = state.base.trim_end_matches('/');
    match value(params, "aud") {
        Some(aud) if aud.trim_end_matches('/') == expected_aud => {}
        Some(_) => {
            return Err(refuse(
                "invalid_request",
                format!("aud names another server; this server's FHIR base URL is {expected_aud}"),
            ))
        }
        None => {
            return Err(refuse(
                "invalid_request",
                format!("aud is missing; send this server's FHIR base URL, {expected_aud}"),
            ))
        }
    }
    let code_challenge =
        match (
            value(params, "code_challenge"),
            value(params, "code_challenge_method"),
        ) {
            (Some(c), Some(m)) if pkce::is_supported_method(m) && pkce::is_valid_challenge(c) => {
                c.to_string()
            }
            (Some(_), Some(m)) if pkce::is_supported_method(m) => return Err(refuse(
                "invalid_request",
                "code_challenge must be the base64url SHA-256 of the code verifier (43 characters)"
                    .into(),
            )),
            (Some(_), Some(_)) => {
                return Err(refuse(
                    "invalid_request",
                    "code_challenge_method must be S256".into(),
                ))
            }
            _ => {
                return Err(refuse(
                    "invalid_request",
                    "PKCE is required: send code_challenge and code_challenge_method=S256".into(),
                ))
            }
        };
    let scope = value(params, "scope")
        .map(str::to_string)
        .ok_or_else(|| refuse("invalid_scope", "scope is missing".into()))?;
    // A scope list the policy cannot read is refused before anyone is asked.
    grantable::decide(&scope, Role::Patient, true).map_err(|e| refuse("invalid_scope", e.0))?;
    let nonce = value(params, "nonce").map(str::to_string);
    if nonce
        .as_deref()
        .is_some_and(|n| n.chars().count() > MAX_NONCE_CHARS)
    {
        return Err(refuse(
            "invalid_request",
            format!("nonce is longer than {MAX_NONCE_CHARS} characters"),
        ));
    }
    let params = CARRIED
        .iter()
        .filter_map(|name| value(params, name).map(|v| (*name, v.to_string())))
        .collect();
    Ok(AuthRequest {
        app,
        redirect_uri,
        state: state_param,
        scope,
        code_challenge,
        nonce,
        params,
    })
}

impl AuthRequest {
    /// A refusal with this request's redirect URI and state.
    pub fn refuse(&self, error: &'static str, description: impl Into<String>) -> Refusal {
        Refusal::Redirect {
            redirect_uri: self.redirect_uri.clone(),
            state: self.state.clone(),
            error,
            description: description.into(),
        }
    }

    /// What `role` may grant of the scopes asked, or `invalid_scope` when that is nothing.
    pub fn decide(&self, role: Role, patient_available: bool) -> Result<Decision, Refusal> {
        let decision = grantable::decide(&self.scope, role, patient_available)
            .map_err(|e| self.refuse("invalid_scope", e.0))?;
        if decision.is_empty_for_app() {
            return Err(self.refuse(
                "invalid_scope",
                "none of the requested scopes can be granted by this account",
            ));
        }
        Ok(decision)
    }
}
