//! The password step of signing in (`GET/POST /login`) and signing out (`POST /logout`).
//!
//! A wrong username, a wrong password, a locked account and a disabled account all get the same
//! answer, "Enter a correct username and password", after the same Argon2 work (a dummy check
//! when there is no hash to check), so the page is no oracle of which accounts exist or are
//! locked. A correct password on an account with an out-of-date hash stores a new hash.

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use axum::Form;
use identity::password::Verification;
use identity::ratelimit::rules::SIGN_IN_PER_IP;
use serde::Deserialize;
use store::accounts::AccountStatus;

use super::audit::{self, Event};
use super::next::{next_or_default, safe_next, with_next};
use super::{argon, limits, LOGIN_PATH, LOGOUT_PATH, SECOND_FACTOR_PATH, TOTP_PATH};
use crate::client_ip::ClientIp;
use crate::csrf::{self, PreSession};
use crate::session;
use crate::ui::{self, text, Errors, Layout, Text};
use crate::{AppState, WebError};

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    pub layout: Layout,
    pub t: &'static Text,
    pub errors: Errors,
    pub csrf: String,
    pub next: String,
    pub username: String,
    pub signed_out: bool,
    /// The "Continue to NHS login" link, when NHS login is configured.
    pub nhs_login: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LoginQuery {
    pub next: Option<String>,
    pub signed_out: Option<String>,
}

impl LoginQuery {
    pub fn parse(query: Option<&str>) -> LoginQuery {
        query
            .and_then(|q| serde_urlencoded::from_str(q).ok())
            .unwrap_or_default()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LoginForm {
    pub csrf: String,
    pub username: String,
    pub password: String,
    pub next: String,
}

fn login_page(
    status: StatusCode,
    pre: &PreSession,
    state: &AppState,
    errors: Errors,
    next: &str,
    username: &str,
    signed_out: bool,
) -> Response {
    let t = text::current();
    let page = LoginPage {
        layout: Layout::new(t.sign_in_title, errors.has_errors()),
        t,
        errors,
        csrf: pre.token(LOGIN_PATH),
        next: safe_next(next).unwrap_or_default().to_string(),
        username: username.to_string(),
        signed_out,
        nhs_login: super::nhs_login::button_href(state, next),
    };
    pre.set_cookie(state.cookies(), ui::page(status, &page))
}

/// `GET /login`: the form; someone already signed in goes straight on.
pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let query = LoginQuery::parse(query.as_deref());
    let next = query.next.unwrap_or_default();
    match session::active(&state, &headers).await {
        Ok(Some(a)) if a.session.second_factor_done => {
            return ui::see_other(next_or_default(Some(&next)))
        }
        Ok(_) => {}
        Err(e) => return ui::failure(e),
    }
    let pre = PreSession::for_form(&headers, state.cookies());
    login_page(
        StatusCode::OK,
        &pre,
        &state,
        Errors::new(),
        &next,
        "",
        query.signed_out.is_some(),
    )
}

/// `POST /login`.
pub async fn submit(
    State(state): State<AppState>,
    ip: ClientIp,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    ui::respond(sign_in(&state, &ip, &headers, form).await)
}

async fn sign_in(
    state: &AppState,
    ip: &ClientIp,
    headers: &HeaderMap,
    form: LoginForm,
) -> Result<Response, WebError> {
    let t = text::current();
    let pre = csrf::check_pre_session(headers, state.cookies(), LOGIN_PATH, &form.csrf)?;
    let username = form.username.trim();
    let mut errors = Errors::new();
    if username.is_empty() {
        errors.add("username", t.enter_username);
    }
    if form.password.is_empty() {
        errors.add("password", t.enter_password);
    }
    if errors.has_errors() {
        return Ok(login_page(
            StatusCode::BAD_REQUEST,
            &pre,
            state,
            errors,
            &form.next,
            username,
            false,
        ));
    }
    if !limits::allow(state, &limits::sign_in_ip_key(ip), &SIGN_IN_PER_IP).await? {
        audit::log(state, &[Event::Failed { status: 429 }], None, ip).await?;
        return Err(WebError::TooManyRequests(
            "too many sign-in attempts from this address".into(),
        ));
    }
    let now = state.now();
    let account = state.store.accounts().account_by_username(username).await?;
    let usable = account
        .as_ref()
        .filter(|a| a.status == AccountStatus::Active && !a.is_locked(now));
    let stored = usable.and_then(|a| a.password_hash.clone());
    let has_hash = stored.is_some();
    let verdict = argon::verify(state, &form.password, stored).await?;
    let wrong_page = || {
        login_page(
            StatusCode::UNAUTHORIZED,
            &pre,
            state,
            Errors::one("username", t.wrong_credentials),
            &form.next,
            username,
            false,
        )
    };
    let (account, needs_rehash) = match (usable, verdict) {
        (Some(a), Verification::Valid { needs_rehash }) => (a.clone(), needs_rehash),
        (Some(a), Verification::Invalid) if has_hash => {
            let events: &[Event] = if limits::record_failure(state, a).await? {
                &[Event::Failed { status: 401 }, Event::LockedOut]
            } else {
                &[Event::Failed { status: 401 }]
            };
            audit::log(state, events, Some(a), ip).await?;
            return Ok(wrong_page());
        }
        _ => {
            // No such account, or one that may not sign in now (locked, disabled, no password).
            let status = if account.is_some() { 423 } else { 401 };
            audit::log(state, &[Event::Failed { status }], account.as_ref(), ip).await?;
            return Ok(wrong_page());
        }
    };
    if needs_rehash {
        let hash = argon::hash(state, &form.password).await?;
        state
            .store
            .accounts()
            .rehash_password(&account.account_id, &hash, now)
            .await?;
    }
    let old = session::token_of(state, headers);
    let (token, _) = session::start(state, &account.account_id, false, old.as_deref()).await?;
    let step = if account.totp_secret.is_some() {
        SECOND_FACTOR_PATH
    } else {
        TOTP_PATH
    };
    let mut res = ui::see_other(&with_next(step, &form.next));
    if let Some(cookie) = state.cookies().set_session(&token) {
        res.headers_mut().append(header::SET_COOKIE, cookie);
    }
    Ok(res)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LogoutForm {
    pub csrf: String,
}

/// `POST /logout`: ends this session (with or without the second factor done).
pub async fn logout(
    State(state): State<AppState>,
    ip: ClientIp,
    headers: HeaderMap,
    Form(form): Form<LogoutForm>,
) -> Response {
    ui::respond(sign_out(&state, &ip, &headers, form).await)
}

async fn sign_out(
    state: &AppState,
    ip: &ClientIp,
    headers: &HeaderMap,
    form: LogoutForm,
) -> Result<Response, WebError> {
    let Some(active) = session::active(state, headers).await? else {
        return Ok(ui::see_other(LOGIN_PATH));
    };
    csrf::check(&active.session.csrf_secret, LOGOUT_PATH, &form.csrf)?;
    let now = state.now();
    state
        .store
        .accounts()
        .end_session(&active.session.token_hash, now)
        .await?;
    audit::log(state, &[Event::SignedOut], Some(&active.account), ip).await?;
    let mut res = ui::see_other("/login?signed_out=1");
    if let Some(cookie) = state.cookies().clear_session() {
        res.headers_mut().append(header::SET_COOKIE, cookie);
    }
    Ok(res)
}
