//! System API clients: OAuth2 client credentials, signed access tokens and scopes (access
//! decisions are the policy's, through [`crate::access`]). The token endpoint also serves SMART
//! apps (authorization code and refresh token grants, in [`crate::smart::token`]); their access
//! tokens are of kind `user` and carry the account, the patient in context and the grant.
//!
//! An access token is `base64url(claims JSON) "." base64url(HMAC-SHA256(key, first part))`,
//! signed with the store's key ([`store::Store::signing_key`]) so that every server instance
//! accepts every other's tokens. Verifying one costs one HMAC and a small JSON parse: no
//! database access on the request path.

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::error::WebError;
use crate::AppState;

type HmacSha256 = Hmac<Sha256>;

/// What a request does to a resource type, as scopes grant it (SMART v2 letters `cruds`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Create,
    /// read, vread and history.
    Read,
    Update,
    Delete,
    Search,
}

impl Action {
    fn bit(self) -> u8 {
        match self {
            Action::Create => Permissions::CREATE,
            Action::Read => Permissions::READ,
            Action::Update => Permissions::UPDATE,
            Action::Delete => Permissions::DELETE,
            Action::Search => Permissions::SEARCH,
        }
    }

    /// Whether the action needs a `.write` (rather than `.read`) scope in SMART v1 terms.
    pub fn is_write(self) -> bool {
        matches!(self, Action::Create | Action::Update | Action::Delete)
    }
}

/// A set of SMART v2 permissions (`c r u d s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permissions(u8);

impl Permissions {
    const CREATE: u8 = 1;
    const READ: u8 = 2;
    const UPDATE: u8 = 4;
    const DELETE: u8 = 8;
    const SEARCH: u8 = 16;
    const ALL: u8 = 31;

    pub fn allows(self, action: Action) -> bool {
        self.0 & action.bit() != 0
    }

    fn contains(self, other: Permissions) -> bool {
        self.0 & other.0 == other.0
    }
}

/// One granted scope, e.g. `system/*.read` or `system/Patient.rs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// None for `*`.
    pub resource_type: Option<String>,
    pub permissions: Permissions,
    /// As written.
    pub text: String,
}

impl Scope {
    /// Whether this scope grants everything `other` grants.
    pub fn covers(&self, other: &Scope) -> bool {
        let type_ok = match (&self.resource_type, &other.resource_type) {
            (None, _) => true,
            (Some(a), Some(b)) => a == b,
            (Some(_), None) => false,
        };
        type_ok && self.permissions.contains(other.permissions)
    }

    pub fn allows(&self, action: Action, resource_type: &str) -> bool {
        self.resource_type
            .as_deref()
            .is_none_or(|t| t == resource_type)
            && self.permissions.allows(action)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ScopeError(pub String);

/// Parses one scope: `system/<Type|*>.<read|write|*>` (SMART v1) or `system/<Type|*>.<cruds>`
/// (SMART v2 letters in that order, e.g. `rs`, `cud`).
pub fn parse_scope(text: &str) -> Result<Scope, ScopeError> {
    let Some(rest) = text.strip_prefix("system/") else {
        return Err(ScopeError(format!(
            "scope {text:?} is not supported: API clients take system scopes such as system/*.read, \
             system/*.write or system/Patient.read"
        )));
    };
    if rest.contains('?') {
        return Err(ScopeError(format!(
            "scope {text:?} has a query; scopes with search restrictions are not supported"
        )));
    }
    let Some((ty, perm)) = rest.rsplit_once('.') else {
        return Err(ScopeError(format!(
            "scope {text:?} has no permission: write system/<Type or *>.<read, write, * or cruds>"
        )));
    };
    let resource_type = match ty {
        "*" => None,
        t if fhir::is_supported_type(t) => Some(t.to_string()),
        t => {
            return Err(ScopeError(format!(
                "scope {text:?} names {t:?}, which is not a resource type this server supports"
            )))
        }
    };
    let bits = match perm {
        "read" => Permissions::READ | Permissions::SEARCH,
        "write" => Permissions::CREATE | Permissions::UPDATE | Permissions::DELETE,
        "*" => Permissions::ALL,
        letters => parse_v2_permissions(letters).ok_or_else(|| {
            ScopeError(format!(
                "scope {text:?} has permission {letters:?}; use read, write, * or SMART v2 letters \
                 from c, r, u, d, s in that order (e.g. rs, cud)"
            ))
        })?,
    };
    Ok(Scope {
        resource_type,
        permissions: Permissions(bits),
        text: text.to_string(),
    })
}

fn parse_v2_permissions(letters: &str) -> Option<u8> {
    if letters.is_empty() {
        return None;
    }
    let order = [
        (b'c', Permissions::CREATE),
        (b'r', Permissions::READ),
        (b'u', Permissions::UPDATE),
        (b'd', Permissions::DELETE),
        (b's', Permissions::SEARCH),
    ];
    let mut bits = 0;
    let mut next = 0;
    for b in letters.bytes() {
        let pos = order[next..].iter().position(|(l, _)| *l == b)? + next;
        bits |= order[pos].1;
        next = pos + 1;
    }
    Some(bits)
}

/// Parses a space-separated list of scopes (at least one).
pub fn parse_scopes(text: &str) -> Result<Vec<Scope>, ScopeError> {
    let scopes = text
        .split_whitespace()
        .map(parse_scope)
        .collect::<Result<Vec<_>, _>>()?;
    if scopes.is_empty() {
        return Err(ScopeError(
            "no scopes given: list at least one, e.g. \"system/*.read system/*.write\"".into(),
        ));
    }
    Ok(scopes)
}

/// The authenticated caller of a request: a system client, or an app acting for a person.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    /// The system client's or the app's client id.
    pub client_id: String,
    /// A system client's scopes; empty for an app acting for a person (see [`Principal::kind`]).
    pub scopes: Vec<Scope>,
    pub kind: PrincipalKind,
}

/// Who is behind a bearer token.
#[derive(Debug, Clone, PartialEq)]
pub enum PrincipalKind {
    /// A system client (OAuth2 client credentials): no person involved.
    System,
    /// A SMART app acting for a signed-in person under a grant they approved.
    User(UserPrincipal),
}

/// The person an app acts for, and what they granted it.
#[derive(Debug, Clone, PartialEq)]
pub struct UserPrincipal {
    pub account_id: String,
    /// The patient in context (`patient/` scopes reach only this patient).
    pub patient: Option<String>,
    /// The grant the token was issued under; a revoked grant's tokens must not be honoured
    /// ([`crate::smart::grant_is_active`]).
    pub grant_id: String,
    /// The granted scopes, in the access policy's model, with the patient in context.
    pub scopes: policy::Scopes,
}

impl Principal {
    /// A system client with `scopes`.
    pub fn system(client_id: impl Into<String>, scopes: Vec<Scope>) -> Principal {
        Principal {
            client_id: client_id.into(),
            scopes,
            kind: PrincipalKind::System,
        }
    }

    /// The person an app acts for, or None for a system client.
    pub fn user(&self) -> Option<&UserPrincipal> {
        match &self.kind {
            PrincipalKind::User(u) => Some(u),
            PrincipalKind::System => None,
        }
    }

    /// Whether the system scopes allow `action` on `resource_type` (never for a user's app).
    pub fn allows(&self, action: Action, resource_type: &str) -> bool {
        self.scopes.iter().any(|s| s.allows(action, resource_type))
    }
}

/// Argon2id (default parameters) PHC string of a client secret.
///
/// Hashing fails only for inputs Argon2 cannot take (over 4 GiB); such a secret gets a hash that
/// no secret verifies against, so the client can never sign in.
pub fn hash_secret(secret: &str) -> String {
    let salt_bytes: [u8; 16] = rand::random();
    let salt = match SaltString::encode_b64(&salt_bytes) {
        Ok(salt) => salt,
        Err(e) => return format!("unusable-hash:{e}"),
    };
    match Argon2::default().hash_password(secret.as_bytes(), &salt) {
        Ok(hash) => hash.to_string(),
        Err(e) => format!("unusable-hash:{e}"),
    }
}

/// Whether `secret` matches a PHC hash made by [`hash_secret`]. CPU-heavy: call off the async
/// executor.
pub fn verify_secret(secret: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(hash) => Argon2::default()
            .verify_password(secret.as_bytes(), &hash)
            .is_ok(),
        Err(_) => false,
    }
}

/// A new client id and secret (the secret is shown once and only its hash is stored).
pub fn new_client_credentials() -> (String, String) {
    let id: [u8; 12] = rand::random();
    let secret: [u8; 32] = rand::random();
    (
        format!("client-{}", hex(&id)),
        URL_SAFE_NO_PAD.encode(secret),
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What an access token says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    pub client_id: String,
    /// Space-separated.
    pub scopes: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    /// A system client's token, or an app's acting for a person (tokens from before this
    /// field are system tokens).
    #[serde(default)]
    pub kind: TokenKind,
    /// The account a user token acts for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// The patient in context of a user token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient: Option<String>,
    /// The grant a user token was issued under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<String>,
}

/// The kind of an access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    #[default]
    System,
    User,
}

impl Claims {
    /// The claims of a new token valid `ttl_secs` from `now`, with a fresh `jti`.
    pub fn new(client_id: &str, scopes: &str, ttl_secs: u64, now: i64) -> Claims {
        let jti: [u8; 16] = rand::random();
        Claims {
            client_id: client_id.to_string(),
            scopes: scopes.to_string(),
            exp: now.saturating_add(i64::try_from(ttl_secs).unwrap_or(i64::MAX)),
            iat: now,
            jti: hex(&jti),
            kind: TokenKind::System,
            sub: None,
            patient: None,
            grant: None,
        }
    }
}

/// Why a token was refused (the message is shown to the client).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the access token is malformed; get a new one from POST /oauth/token")]
    Malformed,
    #[error(
        "the access token's signature is not valid here; get a new one from POST /oauth/token"
    )]
    BadSignature,
    #[error("the access token has expired; get a new one from POST /oauth/token")]
    Expired,
}

/// Signs and verifies access tokens with the server's key.
#[derive(Clone)]
pub struct TokenSigner {
    mac: HmacSha256,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSigner(..)")
    }
}

impl TokenSigner {
    pub fn new(key: &[u8]) -> Result<Self, WebError> {
        if key.len() < 32 {
            return Err(WebError::Internal(format!(
                "the token signing key from the store has {} bytes; at least 32 are needed",
                key.len()
            )));
        }
        let mac = HmacSha256::new_from_slice(key)
            .map_err(|e| WebError::Internal(format!("the token signing key is unusable: {e}")))?;
        Ok(TokenSigner { mac })
    }

    fn sign(&self, data: &[u8]) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(data);
        mac.finalize().into_bytes().into()
    }

    /// A token for `client_id` with `scopes`, valid `ttl_secs` from `now` (epoch seconds).
    pub fn issue(
        &self,
        client_id: &str,
        scopes: &str,
        ttl_secs: u64,
        now: i64,
    ) -> Result<String, WebError> {
        self.sign_claims(&Claims::new(client_id, scopes, ttl_secs, now))
    }

    /// A token saying `claims`.
    pub fn sign_claims(&self, claims: &Claims) -> Result<String, WebError> {
        let json = serde_json::to_vec(claims)
            .map_err(|e| WebError::Internal(format!("could not encode token claims: {e}")))?;
        let payload = URL_SAFE_NO_PAD.encode(json);
        let mac = URL_SAFE_NO_PAD.encode(self.sign(payload.as_bytes()));
        Ok(format!("{payload}.{mac}"))
    }

    /// The claims of a token signed with this key and not expired at `now` (epoch seconds).
    pub fn verify(&self, token: &str, now: i64) -> Result<Claims, TokenError> {
        let (payload, signature) = token.split_once('.').ok_or(TokenError::Malformed)?;
        let mut sig = [0u8; 32];
        match URL_SAFE_NO_PAD.decode_slice(signature, &mut sig) {
            Ok(32) => {}
            _ => return Err(TokenError::Malformed),
        }
        let mut mac = self.mac.clone();
        mac.update(payload.as_bytes());
        // Constant-time comparison.
        mac.verify_slice(&sig)
            .map_err(|_| TokenError::BadSignature)?;
        let json = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| TokenError::Malformed)?;
        let claims: Claims = serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)?;
        if claims.exp <= now {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

/// The bearer token's principal, or 401.
pub fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Principal, WebError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(WebError::Unauthorized(
            "this endpoint needs an access token: get one from POST /oauth/token \
             (grant_type=client_credentials) and send it as Authorization: Bearer <token>"
                .into(),
        ));
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .ok_or_else(|| {
            WebError::Unauthorized(
                "the Authorization header must be \"Bearer <access token>\"".into(),
            )
        })?;
    let claims = state
        .signer
        .verify(token, state.now().timestamp())
        .map_err(|e| WebError::Unauthorized(e.to_string()))?;
    principal_of(claims).map_err(|e| WebError::Unauthorized(e.to_string()))
}

/// The caller a verified token names.
fn principal_of(claims: Claims) -> Result<Principal, TokenError> {
    match claims.kind {
        TokenKind::System => {
            let scopes = parse_scopes(&claims.scopes).map_err(|_| TokenError::Malformed)?;
            Ok(Principal::system(claims.client_id, scopes))
        }
        TokenKind::User => {
            let (Some(account_id), Some(grant_id)) = (claims.sub, claims.grant) else {
                return Err(TokenError::Malformed);
            };
            let mut scopes =
                policy::Scopes::parse(&claims.scopes).map_err(|_| TokenError::Malformed)?;
            scopes.patient_context = claims.patient.clone();
            Ok(Principal {
                client_id: claims.client_id,
                scopes: Vec::new(),
                kind: PrincipalKind::User(UserPrincipal {
                    account_id,
                    patient: claims.patient,
                    grant_id,
                    scopes,
                }),
            })
        }
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = WebError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        authenticate(state, &parts.headers)
    }
}

fn oauth(status: StatusCode, error: &'static str, description: impl Into<String>) -> WebError {
    WebError::OAuth {
        status,
        error,
        description: description.into(),
    }
}

fn invalid_request(description: impl Into<String>) -> WebError {
    oauth(StatusCode::BAD_REQUEST, "invalid_request", description)
}

fn invalid_client() -> WebError {
    oauth(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "unknown client or wrong secret",
    )
}

/// Client id and secret from `Authorization: Basic` (RFC 6749 §2.3.1: each form-urlencoded).
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, WebError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let bad = || {
        invalid_request("the Authorization header must be Basic base64(client_id:client_secret)")
    };
    let text = value.to_str().map_err(|_| bad())?;
    let (scheme, encoded) = text.split_once(' ').ok_or_else(bad)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(bad());
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| bad())?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
    let unescape = |s: &str| -> Result<String, WebError> {
        let s = s.replace('+', " ");
        percent_encoding::percent_decode_str(&s)
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| bad())
    };
    Ok(Some((unescape(id)?, unescape(secret)?)))
}

/// `POST /oauth/token`: the client credentials grant for system clients; the authorization code
/// and refresh token grants for SMART apps ([`crate::smart::token`]).
pub async fn token_endpoint(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, WebError> {
    let body = crate::http::body_bytes(body, state.config.max_body_bytes)?;
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(crate::http::media_type)
        .is_some_and(|m| m.eq_ignore_ascii_case("application/x-www-form-urlencoded"));
    if !form_type {
        return Err(invalid_request(
            "send the token request as application/x-www-form-urlencoded",
        ));
    }
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&body)
        .map_err(|_| invalid_request("the form body could not be decoded"))?;
    let mut fields: std::collections::HashMap<&str, &str> = std::collections::HashMap::new();
    for (k, v) in &form {
        if fields.insert(k.as_str(), v.as_str()).is_some() {
            return Err(invalid_request(format!(
                "parameter {k} is given more than once"
            )));
        }
    }
    let basic = basic_credentials(&headers)?;
    match fields.get("grant_type") {
        None => Err(invalid_request(
            "grant_type is missing; use grant_type=client_credentials",
        )),
        Some(&"client_credentials") => client_credentials(&state, basic, &fields).await,
        Some(&"authorization_code") => {
            crate::smart::token::authorization_code(&state, basic.is_some(), &fields).await
        }
        Some(&"refresh_token") => {
            crate::smart::token::refresh(&state, basic.is_some(), &fields).await
        }
        Some(other) => Err(oauth(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            format!(
                "grant_type {other:?} is not supported here; use client_credentials, \
                 authorization_code or refresh_token"
            ),
        )),
    }
}

/// The form fields of a token request, each given once.
pub type TokenForm<'a> = std::collections::HashMap<&'a str, &'a str>;

/// An RFC 6749 §5.2 error of the token endpoint.
pub fn token_error(
    status: StatusCode,
    error: &'static str,
    description: impl Into<String>,
) -> WebError {
    oauth(status, error, description)
}

/// A token response (RFC 6749 §5.1): JSON, never cached.
pub fn token_response(body: serde_json::Value) -> Response {
    let mut res = (StatusCode::OK, axum::Json(body)).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    res
}

/// The client credentials grant of a system client.
async fn client_credentials(
    state: &AppState,
    basic: Option<(String, String)>,
    fields: &TokenForm<'_>,
) -> Result<Response, WebError> {
    let (client_id, secret) = match (basic, fields.get("client_id"), fields.get("client_secret")) {
        (Some(_), _, Some(_)) => {
            return Err(invalid_request(
                "send the client secret either with HTTP Basic or in the form, not both",
            ))
        }
        (Some(creds), _, None) => creds,
        (None, Some(id), Some(secret)) => (id.to_string(), secret.to_string()),
        (None, _, _) => {
            return Err(oauth(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "client authentication is missing: send client_id and client_secret in the form or with HTTP Basic",
            ))
        }
    };
    let client = state.store.api_client(&client_id).await?;
    let hash = client.as_ref().map(|c| c.secret_hash.clone());
    let verified = tokio::task::spawn_blocking(move || match hash {
        Some(hash) => verify_secret(&secret, &hash),
        None => {
            // Spend the same time on unknown clients, so that timing does not reveal which ids exist.
            static DUMMY: OnceLock<String> = OnceLock::new();
            let _ = verify_secret(
                &secret,
                DUMMY.get_or_init(|| hash_secret("portico-dummy-secret")),
            );
            false
        }
    })
    .await
    .map_err(|e| WebError::Internal(format!("secret verification did not finish: {e}")))?;
    let Some(client) = client.filter(|_| verified) else {
        return Err(invalid_client());
    };
    let granted = parse_scopes(&client.scopes).unwrap_or_default();
    let scopes = match fields
        .get("scope")
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
    {
        None => granted
            .iter()
            .map(|s| s.text.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        Some(requested) => {
            let requested = parse_scopes(requested)
                .map_err(|e| oauth(StatusCode::BAD_REQUEST, "invalid_scope", e.0))?;
            if let Some(extra) = requested
                .iter()
                .find(|r| !granted.iter().any(|g| g.covers(r)))
            {
                return Err(oauth(
                    StatusCode::BAD_REQUEST,
                    "invalid_scope",
                    format!("scope {} is not granted to this client", extra.text),
                ));
            }
            requested
                .iter()
                .map(|s| s.text.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        }
    };
    if scopes.is_empty() {
        return Err(oauth(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "this client has no usable scopes; recreate it with e.g. --scopes \"system/*.read\"",
        ));
    }
    let ttl = state.config.token_ttl_secs;
    let token = state
        .signer
        .issue(&client.client_id, &scopes, ttl, state.now().timestamp())?;
    Ok(token_response(serde_json::json!({
        "access_token": token,
        "token_type": "bearer",
        "expires_in": ttl,
        "scope": scopes,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(scopes: &str) -> Principal {
        Principal::system("c", parse_scopes(scopes).unwrap())
    }

    #[test]
    fn read_scope_allows_reads_not_writes() {
        let p = principal("system/*.read");
        assert!(p.allows(Action::Read, "Patient"));
        assert!(p.allows(Action::Search, "Observation"));
        assert!(!p.allows(Action::Create, "Patient"));
    }

    #[test]
    fn type_scope_is_limited_to_its_type() {
        let p = principal("system/Patient.*");
        assert!(p.allows(Action::Update, "Patient"));
        assert!(!p.allows(Action::Read, "Observation"));
    }

    #[test]
    fn smart_v2_letters_are_parsed_in_order() {
        let p = principal("system/Observation.rs system/Patient.cud");
        assert!(p.allows(Action::Search, "Observation"));
        assert!(!p.allows(Action::Create, "Observation"));
        assert!(p.allows(Action::Delete, "Patient"));
        assert!(!p.allows(Action::Read, "Patient"));
        assert!(parse_scope("system/Patient.sr").is_err());
        assert!(parse_scope("system/Patient.rr").is_err());
    }

    #[test]
    fn bad_scopes_are_refused_with_a_reason() {
        assert!(parse_scope("patient/*.read").is_err());
        assert!(parse_scope("system/Nope.read").is_err());
        assert!(parse_scope("system/Patient").is_err());
        assert!(parse_scopes("  ").is_err());
    }

    #[test]
    fn wildcard_covers_narrower_scopes() {
        let all = parse_scope("system/*.*").unwrap();
        let read = parse_scope("system/Patient.read").unwrap();
        assert!(all.covers(&read));
        assert!(!read.covers(&all));
        assert!(parse_scope("system/*.read")
            .unwrap()
            .covers(&parse_scope("system/Patient.rs").unwrap()));
    }

    #[test]
    fn tokens_round_trip_and_expire() {
        let signer = TokenSigner::new(&[7u8; 32]).unwrap();
        let token = signer.issue("c1", "system/*.read", 60, 1000).unwrap();
        let claims = signer.verify(&token, 1001).unwrap();
        assert_eq!(claims.client_id, "c1");
        assert_eq!(claims.scopes, "system/*.read");
        assert_eq!(signer.verify(&token, 1060), Err(TokenError::Expired));
    }

    #[test]
    fn tampered_or_foreign_tokens_are_refused() {
        let signer = TokenSigner::new(&[7u8; 32]).unwrap();
        let other = TokenSigner::new(&[8u8; 32]).unwrap();
        let token = signer.issue("c1", "system/*.read", 60, 1000).unwrap();
        assert_eq!(other.verify(&token, 1001), Err(TokenError::BadSignature));
        let (payload, sig) = token.split_once('.').unwrap();
        let forged_claims = URL_SAFE_NO_PAD.encode(
            br#"{"client_id":"c1","scopes":"system/*.*","exp":99999,"iat":1000,"jti":"x"}"#,
        );
        assert_eq!(
            signer.verify(&format!("{forged_claims}.{sig}"), 1001),
            Err(TokenError::BadSignature)
        );
        assert_eq!(signer.verify(payload, 1001), Err(TokenError::Malformed));
        assert_eq!(signer.verify("a.b.c", 1001), Err(TokenError::Malformed));
        assert!(TokenSigner::new(&[1u8; 8]).is_err());
    }

    #[test]
    fn a_user_token_names_the_person_grant_and_patient_and_has_no_system_scopes() {
        let signer = TokenSigner::new(&[7u8; 32]).unwrap();
        let mut claims = Claims::new("app-1", "openid patient/*.read", 60, 1000);
        claims.kind = TokenKind::User;
        claims.sub = Some("acc-1".into());
        claims.patient = Some("pat-1".into());
        claims.grant = Some("grant-1".into());
        let token = signer.sign_claims(&claims).unwrap();
        let principal = principal_of(signer.verify(&token, 1001).unwrap()).unwrap();
        let user = principal.user().expect("a user principal");
        assert_eq!(user.account_id, "acc-1");
        assert_eq!(user.grant_id, "grant-1");
        assert_eq!(user.patient.as_deref(), Some("pat-1"));
        assert_eq!(user.scopes.patient_context.as_deref(), Some("pat-1"));
        assert!(user.scopes.grants(
            policy::ScopeContext::Patient,
            "Observation",
            policy::Permissions::READ
        ));
        assert!(!principal.allows(Action::Read, "Patient"));

        // A user token without its person or grant is malformed, not a system token.
        claims.grant = None;
        let token = signer.sign_claims(&claims).unwrap();
        assert_eq!(
            principal_of(signer.verify(&token, 1001).unwrap()),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn tokens_from_before_the_kind_claim_are_system_tokens() {
        let old: Claims = serde_json::from_str(
            r#"{"client_id":"c1","scopes":"system/*.read","exp":2000,"iat":1000,"jti":"x"}"#,
        )
        .unwrap();
        assert_eq!(old.kind, TokenKind::System);
        let principal = principal_of(old).unwrap();
        assert!(principal.user().is_none());
        assert!(principal.allows(Action::Read, "Patient"));
    }

    #[test]
    fn secrets_hash_with_argon2id_and_verify() {
        let (id, secret) = new_client_credentials();
        assert!(id.starts_with("client-"));
        let hash = hash_secret(&secret);
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_secret(&secret, &hash));
        assert!(!verify_secret("wrong", &hash));
        assert!(!verify_secret(&secret, "not a hash"));
    }
}
