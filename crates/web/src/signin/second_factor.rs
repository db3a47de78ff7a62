//! The second step of signing in (`GET/POST /login/second-factor`): the code the authenticator
//! app shows now, or one of the recovery codes.
//!
//! A code is accepted once (the store's replay guard keeps the last step used, atomically across
//! instances), a recovery code once. Attempts are limited per account (`TOTP_PER_ACCOUNT`) and
//! every wrong code counts towards lockout. Success ends the half-signed-in session and starts
//! a new one with a new token (no session fixation across the privilege change).

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::Response;
use axum::Form;
use identity::ratelimit::rules::TOTP_PER_ACCOUNT;
use identity::totp::{self, Rejection};
use serde::Deserialize;

use super::audit::{self, Event};
use super::next::{next_or_default, safe_next, with_next};
use super::password::LoginQuery;
use super::{limits, SECOND_FACTOR_PATH, TOTP_PATH};
use crate::client_ip::ClientIp;
use crate::session::{self, SessionUser};
use crate::ui::{self, text, Errors, Layout, Text};
use crate::{csrf, AppState, WebError};

#[derive(Template)]
#[template(path = "second_factor.html")]
pub struct SecondFactorPage {
    pub layout: Layout,
    pub t: &'static Text,
    pub errors: Errors,
    pub csrf: String,
    pub next: String,
    /// Open the recovery-code part (it was used, or has an error).
    pub recovery_open: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SecondFactorForm {
    pub csrf: String,
    pub next: String,
    pub code: String,
    pub recovery_code: String,
    /// `recovery` when the recovery-code button was used.
    pub method: String,
}

fn second_factor_page(
    status: StatusCode,
    user: &SessionUser,
    errors: Errors,
    next: &str,
    recovery_open: bool,
) -> Response {
    let t = text::current();
    let page = SecondFactorPage {
        layout: Layout::new(t.second_factor_title, errors.has_errors())
            .signed_in(session::csrf_for(&user.session, super::LOGOUT_PATH)),
        t,
        errors,
        csrf: session::csrf_for(&user.session, SECOND_FACTOR_PATH),
        next: safe_next(next).unwrap_or_default().to_string(),
        recovery_open,
    };
    ui::page(status, &page)
}

/// Where a session that should not be on this page goes instead: on, when the second factor is
/// done; to set one up, when the account has none.
fn elsewhere(user: &SessionUser, next: &str) -> Option<Response> {
    if user.session.second_factor_done {
        return Some(ui::see_other(next_or_default(Some(next))));
    }
    if user.account.totp_secret.is_none() {
        return Some(ui::see_other(&with_next(TOTP_PATH, next)));
    }
    None
}

/// `GET /login/second-factor`.
pub async fn show(user: SessionUser, RawQuery(query): RawQuery) -> Response {
    let next = LoginQuery::parse(query.as_deref()).next.unwrap_or_default();
    if let Some(res) = elsewhere(&user, &next) {
        return res;
    }
    second_factor_page(StatusCode::OK, &user, Errors::new(), &next, false)
}

/// `POST /login/second-factor`.
pub async fn submit(
    State(state): State<AppState>,
    ip: ClientIp,
    user: SessionUser,
    Form(form): Form<SecondFactorForm>,
) -> Response {
    ui::respond(verify(&state, &ip, user, form).await)
}

async fn verify(
    state: &AppState,
    ip: &ClientIp,
    user: SessionUser,
    form: SecondFactorForm,
) -> Result<Response, WebError> {
    let t = text::current();
    csrf::check(&user.session.csrf_secret, SECOND_FACTOR_PATH, &form.csrf)?;
    if let Some(res) = elsewhere(&user, &form.next) {
        return Ok(res);
    }
    let account = &user.account;
    let now = state.now();
    let recovery = form.method == "recovery";
    let field = if recovery { "recovery_code" } else { "code" };
    let typed = if recovery {
        &form.recovery_code
    } else {
        &form.code
    };
    if typed.trim().is_empty() {
        let message = if recovery {
            t.enter_recovery_code
        } else {
            t.totp_malformed
        };
        return Ok(second_factor_page(
            StatusCode::BAD_REQUEST,
            &user,
            Errors::one(field, message),
            &form.next,
            recovery,
        ));
    }
    if account.is_locked(now)
        || !limits::allow(
            state,
            &limits::second_factor_key(&account.account_id),
            &TOTP_PER_ACCOUNT,
        )
        .await?
    {
        audit::log(state, &[Event::Failed { status: 429 }], Some(account), ip).await?;
        return Err(WebError::TooManyRequests(
            "too many second-factor attempts on this account".into(),
        ));
    }
    let accounts = state.store.accounts();
    let refused: Option<&'static str> = if recovery {
        match identity::recovery::hash(typed) {
            Some(hash)
                if accounts
                    .use_recovery_code(&account.account_id, &hash, now)
                    .await? =>
            {
                None
            }
            _ => Some(t.recovery_wrong),
        }
    } else {
        let stored = account.totp_secret.as_deref().unwrap_or_default();
        let secret = totp::Secret::from_base32(stored)
            .map_err(|_| WebError::Internal("an account's TOTP secret is unreadable".into()))?;
        match totp::verify(&secret, typed, now.timestamp(), account.totp_last_step) {
            Ok(step) if accounts.record_totp_step(&account.account_id, step).await? => None,
            // Another request used this step first.
            Ok(_) => Some(t.totp_replayed),
            Err(Rejection::Malformed) => Some(t.totp_malformed),
            Err(Rejection::Mismatch) => Some(t.totp_wrong),
            Err(Rejection::Replayed) => Some(t.totp_replayed),
        }
    };
    if let Some(message) = refused {
        let events: &[Event] = if limits::record_failure(state, account).await? {
            &[Event::Failed { status: 401 }, Event::LockedOut]
        } else {
            &[Event::Failed { status: 401 }]
        };
        audit::log(state, events, Some(account), ip).await?;
        return Ok(second_factor_page(
            StatusCode::UNAUTHORIZED,
            &user,
            Errors::one(field, message),
            &form.next,
            recovery,
        ));
    }
    complete(state, ip, &user, &form.next).await
}

/// The sign-in is complete: a new session with the second factor done replaces the half one,
/// failures are forgotten, and the event is recorded.
pub async fn complete(
    state: &AppState,
    ip: &ClientIp,
    user: &SessionUser,
    next: &str,
) -> Result<Response, WebError> {
    let (token, _) = session::replace(state, &user.session, true).await?;
    let accounts = state.store.accounts();
    accounts
        .reset_sign_in_failures(&user.account.account_id, state.now())
        .await?;
    accounts
        .rate_limit_clear(&limits::second_factor_key(&user.account.account_id))
        .await?;
    audit::log(state, &[Event::SignedIn], Some(&user.account), ip).await?;
    let mut res = ui::see_other(next_or_default(Some(next)));
    if let Some(cookie) = state.cookies().set_session(&token) {
        res.headers_mut().append(header::SET_COOKIE, cookie);
    }
    Ok(res)
}
