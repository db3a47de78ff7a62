//! Signing in with a passkey (`GET /login/passkey`, then two JSON steps), without a username or
//! password.
//!
//! `start` counts an attempt against the same per-IP limit as the password form
//! (`SIGN_IN_PER_IP`, so the two together get one budget) and answers request options with no
//! credential list: the browser offers whichever passkeys of this site it holds. Each start
//! allows one finish, so finishes are limited too. `finish` takes the ceremony's state once (a
//! replayed answer finds nothing), finds the passkey by the credential id the browser sent,
//! checks the user handle names the account that owns it, and has webauthn-rs verify the
//! assertion: challenge, origin, relying party, user verification, signature, and a signature
//! counter that moved on (a cloned authenticator shows an old one). The passkey's counter and
//! backup state are then stored, and a fresh session starts with the second factor done, ending
//! any session the browser brought.
//!
//! Every refusal gets the same answer and an audit record: an unknown ceremony or passkey, a
//! bad signature, an account that may not sign in now (locked — whatever the lock was for — or
//! disabled). The records name the account when the passkey identified one.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use identity::ratelimit::rules::SIGN_IN_PER_IP;
use serde::Deserialize;
use serde_json::json;
use store::accounts::{Account, AccountStatus};
use webauthn_rs::prelude::{
    DiscoverableAuthentication, DiscoverableKey, Passkey, PublicKeyCredential,
};

use super::ceremony::{self, Kind};
use super::{json, script, PasskeyEvent};
use crate::client_ip::ClientIp;
use crate::session;
use crate::signin::next::{next_or_default, safe_next, with_next};
use crate::signin::password::LoginQuery;
use crate::signin::{limits, LOGIN_PATH};
use crate::ui::{self, text, Layout, Text};
use crate::{AppState, WebError};

#[derive(Template)]
#[template(path = "passkey_signin.html")]
pub struct PasskeySignInPage {
    pub layout: Layout,
    pub t: &'static Text,
    /// Passkeys work on this server (its public URL is a domain name).
    pub available: bool,
    pub next: String,
    /// The password sign-in, keeping `next`.
    pub password_link: String,
    pub script: &'static str,
    pub start: &'static str,
    pub finish: &'static str,
}

/// `GET /login/passkey`: someone already signed in goes straight on.
pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let next = LoginQuery::parse(query.as_deref()).next.unwrap_or_default();
    match session::active(&state, &headers).await {
        Ok(Some(a)) if a.session.second_factor_done => {
            return ui::see_other(next_or_default(Some(&next)))
        }
        Ok(_) => {}
        Err(e) => return ui::failure(e),
    }
    let t = text::current();
    let next = safe_next(&next).unwrap_or_default().to_string();
    let page = PasskeySignInPage {
        layout: Layout::new(t.passkey_sign_in_title, false),
        t,
        available: super::relying_party(&state.config.public_url).is_some(),
        password_link: with_next(LOGIN_PATH, &next),
        next,
        script: script::script_url(),
        start: super::SIGN_IN_START_PATH,
        finish: super::SIGN_IN_FINISH_PATH,
    };
    ui::page(StatusCode::OK, &page)
}

/// `POST /login/passkey/start` (JSON).
pub async fn start(State(state): State<AppState>, ip: ClientIp, headers: HeaderMap) -> Response {
    json::respond(begin(&state, &ip, &headers).await)
}

async fn begin(state: &AppState, ip: &ClientIp, headers: &HeaderMap) -> Result<Response, WebError> {
    json::check_request(state, headers)?;
    let rp = super::relying_party_of(state)?;
    if !limits::allow(state, &limits::sign_in_ip_key(ip), &SIGN_IN_PER_IP).await? {
        super::log(state, PasskeyEvent::Failed { status: 429 }, None, ip).await?;
        return Err(WebError::TooManyRequests(
            "too many sign-in attempts from this address".into(),
        ));
    }
    let (options, authentication) = rp
        .start_discoverable_authentication()
        .map_err(|e| WebError::Internal(format!("passkey sign-in could not start: {e}")))?;
    let handle = ceremony::put(state, Kind::SignIn, None, &authentication).await?;
    // `mediation` (webauthn-rs sets "conditional", for autofill) is left out: the script asks
    // when the person presses the button.
    Ok(json::answer(
        StatusCode::OK,
        &json!({ "ceremony": handle, "publicKey": options.public_key }),
    ))
}

#[derive(Debug, Deserialize)]
struct FinishRequest {
    ceremony: String,
    #[serde(default)]
    next: String,
    credential: PublicKeyCredential,
}

/// Why a passkey sign-in was refused; every reason gets the same answer.
enum Refusal {
    /// No account was identified (unknown ceremony or passkey, user handle of another account).
    Unknown,
    /// The account was identified, and its passkey failed verification.
    Failed(Account),
    /// The account may not sign in now (locked or disabled).
    Barred(Account),
}

/// `POST /login/passkey/finish` (JSON).
pub async fn finish(
    State(state): State<AppState>,
    ip: ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    json::respond(complete(&state, &ip, &headers, &body).await)
}

async fn complete(
    state: &AppState,
    ip: &ClientIp,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response, WebError> {
    json::check_request(state, headers)?;
    let rp = super::relying_party_of(state)?;
    let request: FinishRequest = json::parse(body)?;
    let account = match verify(state, &rp, &request).await? {
        Ok(account) => account,
        Err(refusal) => {
            let (status, account) = match &refusal {
                Refusal::Unknown => (401, None),
                Refusal::Failed(a) => (401, Some(a)),
                Refusal::Barred(a) => (423, Some(a)),
            };
            super::log(state, PasskeyEvent::Failed { status }, account, ip).await?;
            return Ok(json::refuse(
                StatusCode::UNAUTHORIZED,
                "not-signed-in",
                text::current().passkey_sign_in_failed,
            ));
        }
    };
    let old = session::token_of(state, headers);
    let (token, _) = session::start(state, &account.account_id, true, old.as_deref()).await?;
    state
        .store
        .accounts()
        .reset_sign_in_failures(&account.account_id, state.now())
        .await?;
    super::log(state, PasskeyEvent::SignedIn, Some(&account), ip).await?;
    let mut res = json::answer(
        StatusCode::OK,
        &json!({ "redirect": next_or_default(Some(&request.next)) }),
    );
    if let Some(cookie) = state.cookies().set_session(&token) {
        res.headers_mut().append(header::SET_COOKIE, cookie);
    }
    Ok(res)
}

/// Checks the assertion; the account it signs in, or why not. Stores the passkey's new
/// counter and backup state when it passes.
async fn verify(
    state: &AppState,
    rp: &webauthn_rs::Webauthn,
    request: &FinishRequest,
) -> Result<Result<Account, Refusal>, WebError> {
    let Some(started) =
        ceremony::take::<DiscoverableAuthentication>(state, Kind::SignIn, &request.ceremony)
            .await?
    else {
        return Ok(Err(Refusal::Unknown));
    };
    let Ok((user_id, raw_id)) = rp.identify_discoverable_authentication(&request.credential) else {
        return Ok(Err(Refusal::Unknown));
    };
    let accounts = state.store.accounts();
    let credential_id = super::credential_id(raw_id);
    let Some(stored) = accounts.webauthn_credential(&credential_id).await? else {
        return Ok(Err(Refusal::Unknown));
    };
    if stored.account_id != user_id.to_string() {
        return Ok(Err(Refusal::Unknown));
    }
    let Some(account) = accounts.account_by_id(&stored.account_id).await? else {
        return Ok(Err(Refusal::Unknown));
    };
    let mut passkey: Passkey = serde_json::from_str(&stored.passkey)
        .map_err(|e| WebError::Internal(format!("a stored passkey is unreadable: {e}")))?;
    let key = DiscoverableKey::from(&passkey);
    let result =
        match rp.finish_discoverable_authentication(&request.credential, started.state, &[key]) {
            Ok(result) if result.user_verified() => result,
            Ok(_) => return Ok(Err(Refusal::Failed(account))),
            Err(e) => {
                tracing::info!(error = %e, "a passkey sign-in was refused");
                return Ok(Err(Refusal::Failed(account)));
            }
        };
    let now = state.now();
    if account.status != AccountStatus::Active || account.is_locked(now) {
        return Ok(Err(Refusal::Barred(account)));
    }
    passkey.update_credential(&result);
    let updated = serde_json::to_string(&passkey)
        .map_err(|e| WebError::Internal(format!("a passkey is not serialisable: {e}")))?;
    accounts
        .update_webauthn_credential(&credential_id, &updated, now)
        .await?;
    Ok(Ok(account))
}
