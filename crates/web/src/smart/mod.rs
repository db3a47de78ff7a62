//! SMART on FHIR for apps (SMART App Launch 2.x, standalone launch): discovery, the consent
//! screen, the authorization code and refresh token grants, id_tokens, and the connected apps a
//! person can see and revoke. System clients (client credentials) stay in [`crate::auth`].
//!
//! | route | what |
//! |---|---|
//! | `GET /.well-known/smart-configuration` (and under `/fhir`) | what the server supports ([`discovery`]) |
//! | `GET /.well-known/jwks.json` | the public key of id_tokens ([`keys`]) |
//! | `GET/POST /oauth/authorize` | consent screen and answer ([`authorize`]) |
//! | `POST /oauth/token` | `authorization_code`, `refresh_token` ([`token`]) |
//! | `GET /account/apps`, `POST /account/apps/{grant}/revoke` | connected apps ([`apps`]) |
//!
//! Apps are public clients registered by `portico admin create-app` ([`registration`]); every
//! one must use PKCE (S256). What a person can grant is decided by [`grantable`]. A grant is
//! what a person revokes: its refresh tokens die with it (and with a password change, in the
//! store), and its access tokens are short-lived and refused once [`grant_is_active`] says so.

pub mod apps;
pub mod authorize;
pub mod code;
pub mod describe;
pub mod discovery;
pub mod grantable;
pub mod id_token;
pub mod keys;
pub mod patients;
pub mod registration;
pub mod request;
pub mod token;

use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use store::accounts::AccountStatus;
use store::Store;

use crate::ui::headers::{security_headers, CONTENT_SECURITY_POLICY};
use crate::{AppState, WebError};

pub const AUTHORIZE_PATH: &str = "/oauth/authorize";
pub const CONFIGURATION_PATH: &str = "/.well-known/smart-configuration";
pub const JWKS_PATH: &str = "/.well-known/jwks.json";
pub const APPS_PATH: &str = "/account/apps";

/// What the SMART endpoints share, made once at start.
#[derive(Debug)]
pub struct SmartState {
    /// The id_token signing key.
    pub id_token_key: keys::IdTokenKey,
    /// `iss` of id_tokens and of the SMART configuration: the public URL.
    pub issuer: String,
}

impl SmartState {
    /// Loads (or makes, once per database) the id_token key.
    pub async fn load(store: &dyn Store, public_url: &str) -> Result<SmartState, WebError> {
        Ok(SmartState {
            id_token_key: keys::IdTokenKey::load_or_create(store).await?,
            issuer: public_url.trim_end_matches('/').to_string(),
        })
    }
}

/// Whether access tokens issued under grant `grant_id` may still be honoured: the grant exists,
/// is not revoked, and its account can still sign in. A store failure answers false: when in
/// doubt, no access.
pub async fn grant_is_active(store: &dyn Store, grant_id: &str) -> bool {
    let accounts = store.accounts();
    let Ok(Some(grant)) = accounts.grant(grant_id).await else {
        return false;
    };
    if grant.revoked_at.is_some() {
        return false;
    }
    matches!(
        accounts.account_by_id(&grant.account_id).await,
        Ok(Some(account)) if account.status == AccountStatus::Active
    )
}

/// The origin a page's form may lead to besides this server (the consent form's answer
/// redirects to the app), set by the handler as a response extension.
#[derive(Debug, Clone)]
pub struct FormTarget(pub String);

/// Widens the page's `form-action` to its [`FormTarget`]: browsers apply `form-action` to the
/// redirects that follow a form submission too.
async fn allow_form_target(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let Some(FormTarget(origin)) = res.extensions().get::<FormTarget>().cloned() else {
        return res;
    };
    let plain = origin
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'/' | b'.' | b'-' | b'[' | b']'));
    if !plain {
        return res;
    }
    let policy = CONTENT_SECURITY_POLICY.replace(
        "form-action 'self'",
        &format!("form-action 'self' {origin}"),
    );
    if let Ok(v) = HeaderValue::from_str(&policy) {
        res.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
    }
    res
}

/// The SMART routes: JSON discovery, and the pages (with the pages' security headers).
pub fn routes(state: &AppState) -> Router<AppState> {
    let pages = Router::new()
        .route(AUTHORIZE_PATH, get(authorize::show).post(authorize::answer))
        .route(APPS_PATH, get(apps::show))
        .route("/account/apps/{grant}/revoke", post(apps::revoke))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            security_headers,
        ))
        .layer(middleware::from_fn(allow_form_target));
    Router::new()
        .route(CONFIGURATION_PATH, get(discovery::configuration))
        .route(
            "/fhir/.well-known/smart-configuration",
            get(discovery::configuration),
        )
        .route(JWKS_PATH, get(discovery::jwks))
        .merge(pages)
}
