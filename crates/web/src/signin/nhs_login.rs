//! "Sign in with NHS login": OpenID Connect (authorization code + PKCE, `private_key_jwt`) with
//! NHS login as the provider, through the [`oidc`] crate. On only when configured
//! (`PORTICO_OIDC_ISSUER`, `PORTICO_OIDC_CLIENT_ID`, `PORTICO_OIDC_KEY`: [`NhsLoginConfig`]).
//!
//! | route | what |
//! |---|---|
//! | `GET /login/nhs[?next=…][&assertedLoginIdentity=…]` | sends the browser to NHS login (302) |
//! | `GET /login/nhs/callback?code=…&state=…` (or `?error=…`) | finishes the sign-in |
//!
//! **Start.** The request asks for the scopes `openid profile email phone` and the vectors of
//! trust [`VTR`] (P9 wanted, P5 accepted). Its `state`, `nonce` and PKCE verifier, and `next`
//! (a local path, checked as `/login` checks it), go into a sealed cookie ([`state_cookie`]).
//! From the NHS App, the entry URL carries `assertedLoginIdentity`: it is passed on as
//! `asserted_login_identity` with `prompt=none`, so that the person is not asked to sign in
//! again (when NHS login cannot do that it answers `login_required`, and the person is offered
//! to try again without it).
//!
//! **Callback.** The cookie is always removed. An attempt counts against the per-IP sign-in
//! limit, as a password does. The code is exchanged (the `state` checked first), and the
//! [`Identity`] NHS login vouches for is matched to an account ([`link`]). NHS login has done
//! multi-factor authentication, so the new session has its second factor done; it is a new
//! session whatever the browser had (no fixation). Every outcome leaves an audit
//! record (entity `nhs-login`; never the NHS number or another claim), and every refusal gets
//! a page in plain English that says what the person can do.

mod link;
mod settings;
mod state_cookie;

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use identity::ratelimit::rules::SIGN_IN_PER_IP;
use oidc::Identity;
use serde::Deserialize;
use store::accounts::Account;

use super::audit::{self, Event};
use super::limits;
use super::next::{next_or_default, safe_next, with_next};
use crate::client_ip::ClientIp;
use crate::session;
use crate::ui::{self, text, Layout, Text};
use crate::{AppState, WebError};

pub use link::USERNAME_PREFIX;
pub(crate) use settings::NhsLogin;
pub use settings::NhsLoginConfig;

pub const START_PATH: &str = "/login/nhs";
pub const CALLBACK_PATH: &str = "/login/nhs/callback";

/// What Portico asks NHS login for: the NHS number, birth date and identity level come with
/// `profile`.
pub const SCOPES: [&str; 4] = ["openid", "profile", "email", "phone"];

/// The vectors of trust Portico accepts, most wanted first: P9 (identity verified, the record)
/// or P5 (details matched, a reduced view), each with any of NHS login's second factors.
pub const VTR: [&str; 6] = [
    "P9.Cp.Cd", "P9.Cp.Ck", "P9.Cm", "P5.Cp.Cd", "P5.Cp.Ck", "P5.Cm",
];

/// The audit records' entity: which way of signing in they are about.
const AUDIT_ENTITY: &str = "nhs-login";

/// Longest `assertedLoginIdentity` passed on; a JWT, far shorter in practice.
const MAX_ASSERTION_LEN: usize = 8192;

/// The NHS login routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(START_PATH, get(start))
        .route(CALLBACK_PATH, get(callback))
}

/// The "Continue to NHS login" link of the sign-in page, returning to `next`; None when NHS
/// login is not configured.
pub(crate) fn button_href(state: &AppState, next: &str) -> Option<String> {
    state
        .nhs_login
        .as_ref()
        .map(|_| with_next(START_PATH, next))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct StartQuery {
    next: Option<String>,
    #[serde(rename = "assertedLoginIdentity")]
    asserted_login_identity: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

fn parse<T: for<'de> Deserialize<'de> + Default>(query: Option<&str>) -> T {
    query
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default()
}

/// An NHS App assertion is a JWT: base64url parts and dots. Anything else is not passed on.
fn acceptable_assertion(jwt: &str) -> bool {
    !jwt.is_empty()
        && jwt.len() <= MAX_ASSERTION_LEN
        && jwt
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// `GET /login/nhs`.
pub async fn start(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    ui::respond(begin(&state, &headers, query.as_deref()).await)
}

async fn begin(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Response, WebError> {
    let Some(nhs) = state.nhs_login.clone() else {
        return Err(WebError::NoRoute(START_PATH.into()));
    };
    let query: StartQuery = parse(query);
    let next = query
        .next
        .as_deref()
        .and_then(safe_next)
        .unwrap_or_default()
        .to_string();
    let assertion = query
        .asserted_login_identity
        .filter(|a| acceptable_assertion(a));
    // Someone signed in goes on, unless the NHS App says who should be signed in.
    if assertion.is_none() {
        if let Some(active) = session::active(state, headers).await? {
            if active.session.second_factor_done {
                return Ok(ui::see_other(next_or_default(Some(&next))));
            }
        }
    }
    let client = match nhs.client().await {
        Ok(client) => client,
        Err(e) => {
            tracing::warn!(error = %e, "NHS login: the provider could not be discovered");
            return Ok(message(Message::Unavailable, 503, &next));
        }
    };
    let extra: Vec<(&str, &str)> = match assertion.as_deref() {
        Some(jwt) => vec![("prompt", "none"), ("asserted_login_identity", jwt)],
        None => Vec::new(),
    };
    let (url, auth) = client
        .authorize_url(&SCOPES, &VTR, &extra)
        .map_err(|e| WebError::Internal(format!("NHS login authorization request: {e}")))?;
    let pending = state_cookie::Pending {
        auth,
        next,
        expires: (state.now() + state_cookie::LIFETIME).timestamp(),
    };
    let sealed = nhs
        .sealer
        .seal(&pending)
        .ok_or_else(|| WebError::Internal("the NHS login state could not be sealed".into()))?;
    let (Ok(location), Some(cookie)) = (
        HeaderValue::from_str(url.as_str()),
        state_cookie::set(state.cookies(), &sealed),
    ) else {
        return Err(WebError::Internal(
            "the NHS login redirect could not be written".into(),
        ));
    };
    let mut res = StatusCode::FOUND.into_response();
    res.headers_mut().insert(header::LOCATION, location);
    res.headers_mut().append(header::SET_COOKIE, cookie);
    Ok(res)
}

/// `GET /login/nhs/callback`.
pub async fn callback(
    State(state): State<AppState>,
    ip: ClientIp,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let mut res = ui::respond(finish(&state, &ip, &headers, query.as_deref()).await);
    if let Some(clear) = state_cookie::clear(state.cookies()) {
        res.headers_mut().append(header::SET_COOKIE, clear);
    }
    res
}

async fn finish(
    state: &AppState,
    ip: &ClientIp,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Response, WebError> {
    let Some(nhs) = state.nhs_login.clone() else {
        return Err(WebError::NoRoute(CALLBACK_PATH.into()));
    };
    let query: CallbackQuery = parse(query);
    let pending = state_cookie::read(headers, state.cookies())
        .and_then(|value| nhs.sealer.open(value, state.now()));
    let next = pending.as_ref().map(|p| p.next.clone()).unwrap_or_default();

    if let Some(error) = &query.error {
        // A protocol word such as access_denied or login_required; the description is the
        // provider's free text and is neither logged nor shown.
        tracing::info!(error = %printable(error), "NHS login answered with an error");
        return refuse(state, ip, Message::Cancelled, 401, None, &next).await;
    }
    let (Some(pending), Some(code), Some(returned_state)) = (pending, query.code, query.state)
    else {
        return refuse(state, ip, Message::Expired, 400, None, &next).await;
    };
    if !limits::allow(state, &limits::sign_in_ip_key(ip), &SIGN_IN_PER_IP).await? {
        failed(state, ip, 429, None).await?;
        return Err(WebError::TooManyRequests(
            "too many sign-in attempts from this address".into(),
        ));
    }
    let client = match nhs.client().await {
        Ok(client) => client,
        Err(e) => {
            tracing::warn!(error = %e, "NHS login: the provider could not be discovered");
            return refuse(state, ip, Message::Unavailable, 503, None, &next).await;
        }
    };
    let identity = match client.exchange(&code, &pending.auth, &returned_state).await {
        Ok(identity) => identity,
        Err(oidc::Error::StateMismatch | oidc::Error::MissingCode) => {
            return refuse(state, ip, Message::Expired, 403, None, &next).await;
        }
        Err(e) => {
            // The oidc crate's errors carry no token, code or claim value.
            tracing::warn!(error = %e, "NHS login: the sign-in could not be completed");
            if matches!(
                e,
                oidc::Error::Http { .. }
                    | oidc::Error::HttpStatus { .. }
                    | oidc::Error::BadResponse { .. }
            ) {
                nhs.forget(&client);
            }
            return refuse(state, ip, Message::Failed, 502, None, &next).await;
        }
    };
    sign_in(state, ip, headers, &identity, &next).await
}

/// Matches the identity to an account and starts its session, or says why not.
async fn sign_in(
    state: &AppState,
    ip: &ClientIp,
    headers: &HeaderMap,
    identity: &Identity,
    next: &str,
) -> Result<Response, WebError> {
    let (account, change) = match link::resolve(state.store.as_ref(), identity, state.now()).await?
    {
        link::Outcome::SignIn { account, change } => (account, change),
        link::Outcome::NoRecord => {
            return refuse(state, ip, Message::NoRecord, 404, None, next).await;
        }
        link::Outcome::Refused { reason, account } => {
            let (page, status) = match reason {
                link::Refusal::Disabled => (Message::Refused, 423),
                link::Refusal::Conflict => (Message::Refused, 409),
                link::Refusal::HasAccount => (Message::HasAccount, 409),
            };
            return refuse(state, ip, page, status, account.as_ref(), next).await;
        }
    };
    let old = session::token_of(state, headers);
    let (token, _) = session::start(state, &account.account_id, true, old.as_deref()).await?;
    let mut records = Vec::with_capacity(2);
    match change {
        link::Change::None => {}
        link::Change::Created => records.push(record(state, ip, Event::Registered, &account)),
        link::Change::Linked => {
            let mut linked = record(state, ip, Event::Registered, &account);
            linked.entity = Some(format!("{AUDIT_ENTITY}-link"));
            linked.status = Some(200);
            records.push(linked);
        }
    }
    records.push(record(state, ip, Event::SignedIn, &account));
    state.store.append_audit(records).await?;
    let mut res = ui::see_other(next_or_default(Some(next)));
    if let Some(cookie) = state.cookies().set_session(&token) {
        res.headers_mut().append(header::SET_COOKIE, cookie);
    }
    Ok(res)
}

fn record(
    state: &AppState,
    ip: &ClientIp,
    event: Event,
    account: &Account,
) -> store::audit::AuditRecord {
    let mut r = audit::record(state, event, Some(account), ip);
    r.entity = Some(AUDIT_ENTITY.to_string());
    r
}

/// Records a failed sign-in with NHS login and answers with the page that says so, under the
/// status recorded.
async fn refuse(
    state: &AppState,
    ip: &ClientIp,
    which: Message,
    status: u16,
    account: Option<&Account>,
    next: &str,
) -> Result<Response, WebError> {
    failed(state, ip, status, account).await?;
    Ok(message(which, status, next))
}

/// Records a failed sign-in with NHS login.
async fn failed(
    state: &AppState,
    ip: &ClientIp,
    status: u16,
    account: Option<&Account>,
) -> Result<(), WebError> {
    let mut r = audit::record(state, Event::Failed { status }, account, ip);
    r.entity = Some(AUDIT_ENTITY.to_string());
    state.store.append_audit(vec![r]).await?;
    Ok(())
}

/// A provider-supplied word fit for a log line: printable ASCII, bounded.
fn printable(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        .take(64)
        .collect()
}

/// The pages of a sign-in that did not end signed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Message {
    /// The provider could not be reached or discovered.
    Unavailable,
    /// The provider answered with an error (the person cancelled, `prompt=none` failed, …).
    Cancelled,
    /// No sign-in of this browser to finish, or its `state` does not match.
    Expired,
    /// The code exchange or the ID token failed.
    Failed,
    NoRecord,
    /// An account exists for the NHS number but may not be linked at this level.
    HasAccount,
    Refused,
}

impl Message {
    /// Heading and text.
    fn words(self, t: &'static Text) -> (&'static str, &'static str) {
        match self {
            Message::Unavailable => (t.nhs_login_unavailable_title, t.nhs_login_unavailable_body),
            Message::Cancelled => (t.nhs_login_cancelled_title, t.nhs_login_cancelled_body),
            Message::Expired => (t.nhs_login_expired_title, t.nhs_login_expired_body),
            Message::Failed => (t.nhs_login_failed_title, t.nhs_login_failed_body),
            Message::NoRecord => (t.nhs_login_no_record_title, t.nhs_login_no_record_body),
            Message::HasAccount => (t.nhs_login_has_account_title, t.nhs_login_has_account_body),
            Message::Refused => (t.nhs_login_refused_title, t.nhs_login_refused_body),
        }
    }

    /// Whether trying again can help.
    fn retry(self) -> bool {
        matches!(
            self,
            Message::Unavailable | Message::Cancelled | Message::Expired | Message::Failed
        )
    }
}

#[derive(Template)]
#[template(path = "nhs_login_message.html")]
struct MessagePage {
    layout: Layout,
    t: &'static Text,
    heading: &'static str,
    body: &'static str,
    /// "Try again": back to NHS login, returning to the same `next`.
    try_again: Option<String>,
}

fn message(which: Message, status: u16, next: &str) -> Response {
    let t = text::current();
    let (heading, body) = which.words(t);
    let page = MessagePage {
        layout: Layout::new(heading, false),
        t,
        heading,
        body,
        try_again: which.retry().then(|| with_next(START_PATH, next)),
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    ui::page(status, &page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_jwt_shaped_assertions_are_passed_on() {
        assert!(acceptable_assertion(
            "eyJhbGciOiJSUzUxMiJ9.eyJzdWIiOiJ4In0.c2ln-_"
        ));
        for bad in [
            "",
            "a b",
            "a\"b",
            "<script>",
            &"a".repeat(MAX_ASSERTION_LEN + 1),
        ] {
            assert!(!acceptable_assertion(bad), "{bad:.20}");
        }
    }

    #[test]
    fn provider_words_are_cut_to_plain_ascii() {
        assert_eq!(printable("access_denied"), "access_denied");
        assert_eq!(printable("x\n\u{1b}[31m<b>"), "x31mb");
        assert_eq!(printable(&"e".repeat(100)).len(), 64);
    }

    #[test]
    fn every_page_has_its_own_heading_and_only_transient_failures_offer_a_retry() {
        let all = [
            Message::Unavailable,
            Message::Cancelled,
            Message::Expired,
            Message::Failed,
            Message::NoRecord,
            Message::HasAccount,
            Message::Refused,
        ];
        let t = text::current();
        let headings: std::collections::HashSet<&str> = all.iter().map(|m| m.words(t).0).collect();
        assert_eq!(headings.len(), all.len(), "each page has its own heading");
        let retried: Vec<Message> = all.into_iter().filter(|m| m.retry()).collect();
        assert_eq!(
            retried,
            [
                Message::Unavailable,
                Message::Cancelled,
                Message::Expired,
                Message::Failed
            ]
        );
    }
}
