//! The account page (`GET /account`): who you are, and the security settings — a new
//! authenticator app, a new password, signing out everywhere else.
//!
//! Changing the password needs the current one (a wrong one counts towards lockout, so a
//! borrowed session cannot be used to guess it), checks the new one's strength, records
//! `credentials_changed_at` (which retires refresh tokens issued before) and ends every other
//! session. "Sign out everywhere" ends every session of the account except the one in use.

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Form;
use identity::password::{check_strength, Verification};
use serde::Deserialize;

use super::audit::{self, Event};
use super::{argon, limits, ACCOUNT_PATH, LOGIN_PATH, PASSWORD_PATH, SIGN_OUT_EVERYWHERE_PATH};
use crate::client_ip::ClientIp;
use crate::session::{self, CurrentUser};
use crate::ui::{self, text, Errors, Text};
use crate::{csrf, AppState, WebError};

#[derive(Template)]
#[template(path = "account.html")]
pub struct AccountPage {
    pub layout: ui::Layout,
    pub t: &'static Text,
    pub username: String,
    pub role: &'static str,
    pub identity_level: &'static str,
    pub has_totp: bool,
    pub recovery_left: u32,
    pub notice: Option<&'static str>,
    pub sign_out_everywhere_csrf: String,
}

#[derive(Template)]
#[template(path = "password.html")]
pub struct PasswordPage {
    pub layout: ui::Layout,
    pub t: &'static Text,
    pub errors: Errors,
    pub csrf: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct AccountQuery {
    done: String,
}

/// `GET /`: the account page when signed in, else the sign-in page.
pub async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match session::active(&state, &headers).await {
        Ok(Some(a)) if a.session.second_factor_done => ui::see_other(ACCOUNT_PATH),
        Ok(_) => ui::see_other(LOGIN_PATH),
        Err(e) => ui::failure(e),
    }
}

/// `GET /account`.
pub async fn show(
    State(state): State<AppState>,
    user: CurrentUser,
    RawQuery(query): RawQuery,
) -> Response {
    ui::respond(account_page(&state, &user, query.as_deref()).await)
}

async fn account_page(
    state: &AppState,
    user: &CurrentUser,
    query: Option<&str>,
) -> Result<Response, WebError> {
    let t = text::current();
    let done: AccountQuery = query
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default();
    let notice = match done.done.as_str() {
        "password" => Some(t.password_changed),
        "elsewhere" => Some(t.signed_out_elsewhere),
        _ => None,
    };
    let recovery_left = state
        .store
        .accounts()
        .recovery_codes_left(&user.account.account_id)
        .await?;
    let page = AccountPage {
        layout: user.layout(t.account_title, false),
        t,
        username: user.account.username.clone(),
        role: t.role(user.account.role),
        identity_level: user.account.identity_level.as_str(),
        has_totp: user.account.totp_secret.is_some(),
        recovery_left,
        notice,
        sign_out_everywhere_csrf: user.csrf(SIGN_OUT_EVERYWHERE_PATH),
    };
    Ok(ui::page(StatusCode::OK, &page))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CsrfOnlyForm {
    pub csrf: String,
}

/// `POST /account/sign-out-everywhere`: ends every other session of the account; this one is
/// kept, so the person sees the result and can carry on.
pub async fn sign_out_everywhere(
    State(state): State<AppState>,
    ip: ClientIp,
    user: CurrentUser,
    Form(form): Form<CsrfOnlyForm>,
) -> Response {
    ui::respond(end_others(&state, &ip, &user, &form).await)
}

async fn end_others(
    state: &AppState,
    ip: &ClientIp,
    user: &CurrentUser,
    form: &CsrfOnlyForm,
) -> Result<Response, WebError> {
    csrf::check(
        &user.session.csrf_secret,
        SIGN_OUT_EVERYWHERE_PATH,
        &form.csrf,
    )?;
    state
        .store
        .accounts()
        .end_all_sessions(
            &user.account.account_id,
            Some(&user.session.token_hash),
            state.now(),
        )
        .await?;
    audit::log(
        state,
        &[Event::SignedOutEverywhere],
        Some(&user.account),
        ip,
    )
    .await?;
    Ok(ui::see_other("/account?done=elsewhere"))
}

fn password_page(status: StatusCode, user: &CurrentUser, errors: Errors) -> Response {
    let t = text::current();
    let page = PasswordPage {
        layout: user.layout(t.password_title, errors.has_errors()),
        t,
        errors,
        csrf: user.csrf(PASSWORD_PATH),
    };
    ui::page(status, &page)
}

/// `GET /account/password`.
pub async fn show_password(user: CurrentUser) -> Response {
    password_page(StatusCode::OK, &user, Errors::new())
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PasswordForm {
    pub csrf: String,
    pub current_password: String,
    pub new_password: String,
}

/// `POST /account/password`.
pub async fn change_password(
    State(state): State<AppState>,
    ip: ClientIp,
    user: CurrentUser,
    Form(form): Form<PasswordForm>,
) -> Response {
    ui::respond(change(&state, &ip, &user, &form).await)
}

async fn change(
    state: &AppState,
    ip: &ClientIp,
    user: &CurrentUser,
    form: &PasswordForm,
) -> Result<Response, WebError> {
    let t = text::current();
    csrf::check(&user.session.csrf_secret, PASSWORD_PATH, &form.csrf)?;
    let mut errors = Errors::new();
    if form.current_password.is_empty() {
        errors.add("current_password", t.enter_current_password);
    }
    if form.new_password.is_empty() {
        errors.add("new_password", t.enter_new_password);
    } else if let Err(w) = check_strength(&form.new_password, &[&user.account.username]) {
        errors.add("new_password", t.weakness(w));
    }
    if errors.has_errors() {
        return Ok(password_page(StatusCode::BAD_REQUEST, user, errors));
    }
    let verdict = argon::verify(
        state,
        &form.current_password,
        user.account.password_hash.clone(),
    )
    .await?;
    if verdict == Verification::Invalid {
        let events: &[Event] = if limits::record_failure(state, &user.account).await? {
            &[Event::Failed { status: 401 }, Event::LockedOut]
        } else {
            &[Event::Failed { status: 401 }]
        };
        audit::log(state, events, Some(&user.account), ip).await?;
        return Ok(password_page(
            StatusCode::UNAUTHORIZED,
            user,
            Errors::one("current_password", t.current_password_wrong),
        ));
    }
    let hash = argon::hash(state, &form.new_password).await?;
    let now = state.now();
    let accounts = state.store.accounts();
    accounts
        .update_password(&user.account.account_id, &hash, now)
        .await?;
    accounts
        .end_all_sessions(
            &user.account.account_id,
            Some(&user.session.token_hash),
            now,
        )
        .await?;
    audit::log(state, &[Event::PasswordChanged], Some(&user.account), ip).await?;
    Ok(ui::see_other("/account?done=password"))
}
