//! `GET /.well-known/smart-configuration` (SMART App Launch 2.x, "Conformance": also served
//! under the FHIR base, where the IG puts it) and `GET /.well-known/jwks.json`, the public key
//! that id_tokens are signed with.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::{AUTHORIZE_PATH, JWKS_PATH};
use crate::signin::ACCOUNT_PATH;
use crate::AppState;

/// What Portico supports, in the SMART capability codes.
pub const CAPABILITIES: [&str; 10] = [
    "launch-standalone",
    "client-public",
    "client-confidential-symmetric",
    "context-standalone-patient",
    "permission-patient",
    "permission-user",
    "permission-offline",
    "permission-v1",
    "permission-v2",
    "sso-openid-connect",
];

/// Scopes an app may ask for (wildcards stand for each resource type too).
pub const SCOPES_SUPPORTED: [&str; 16] = [
    "openid",
    "fhirUser",
    "launch/patient",
    "offline_access",
    "patient/*.read",
    "patient/*.write",
    "patient/*.rs",
    "patient/*.cruds",
    "user/*.read",
    "user/*.write",
    "user/*.rs",
    "user/*.cruds",
    "system/*.read",
    "system/*.write",
    "system/*.rs",
    "system/*.cruds",
];

/// The SMART configuration of a server whose public URL is `public_url` (no trailing slash).
pub fn smart_configuration(public_url: &str) -> Value {
    json!({
        "issuer": public_url,
        "jwks_uri": format!("{public_url}{JWKS_PATH}"),
        "authorization_endpoint": format!("{public_url}{AUTHORIZE_PATH}"),
        "token_endpoint": format!("{public_url}/oauth/token"),
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
        "scopes_supported": SCOPES_SUPPORTED,
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "management_endpoint": format!("{public_url}{ACCOUNT_PATH}/apps"),
        "capabilities": CAPABILITIES,
    })
}

fn json_response(body: &Value, cache: &'static str) -> Response {
    let mut res = (StatusCode::OK, axum::Json(body)).into_response();
    let headers = res.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    // Apps running in a browser read these from their own origin.
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    res
}

/// `GET /.well-known/smart-configuration`.
pub async fn configuration(State(state): State<AppState>) -> Response {
    json_response(
        &smart_configuration(&state.smart.issuer),
        "public, max-age=3600",
    )
}

/// `GET /.well-known/jwks.json`.
pub async fn jwks(State(state): State<AppState>) -> Response {
    json_response(&state.smart.id_token_key.jwks(), "public, max-age=3600")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_absolute_under_the_public_url() {
        let c = smart_configuration("https://p.example");
        assert_eq!(c["issuer"], "https://p.example");
        assert_eq!(
            c["authorization_endpoint"],
            "https://p.example/oauth/authorize"
        );
        assert_eq!(c["token_endpoint"], "https://p.example/oauth/token");
        assert_eq!(c["jwks_uri"], "https://p.example/.well-known/jwks.json");
        assert_eq!(c["code_challenge_methods_supported"], json!(["S256"]));
    }
}
