//! Web sessions: a random token in a cookie, its SHA-256 in the database (`store::accounts`),
//! so a copy of the database lets nobody in and every server instance sees the same sessions.
//!
//! **Cookie.** `__Host-portico-session` with `Secure; HttpOnly; SameSite=Lax; Path=/` when the
//! public URL is https. The `__Host-` prefix makes browsers refuse the cookie unless it is
//! Secure, host-only and for `/`, so no subdomain or plain-http page can plant or overwrite it.
//! On plain http (local development and tests) browsers refuse both `Secure` and the prefix, so
//! the cookie is `portico-session` without `Secure`; everything else is the same. The cookie has
//! no `Max-Age`: the server alone decides when a session ends.
//!
//! **Lifetime.** 30 minutes idle, 12 hours absolute ([`IDLE`], [`ABSOLUTE`]). Each request moves
//! the idle expiry forward, written at most once a minute ([`TOUCH_EVERY`]) to save writes, so a
//! session may end up to a minute before 30 idle minutes have passed, never after.
//!
//! **Fixation.** A session is never upgraded in place: the password step starts a new one (and
//! ends any the browser brought), and completing the second factor ends that one and starts
//! another with a new token ([`start`], [`replace`]). A token known before a privilege change is
//! dead after it.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::Response;
use chrono::{DateTime, TimeDelta, Utc};
use identity::token::{hash_token, new_token};
use store::accounts::{Account, AccountStatus, Session};

use crate::signin::next::login_with_next;
use crate::{ui, AppState, WebError};

/// A session ends after this long without a request.
pub const IDLE: TimeDelta = TimeDelta::minutes(30);
/// A session ends this long after sign-in, however busy.
pub const ABSOLUTE: TimeDelta = TimeDelta::hours(12);
/// The idle expiry is written at most this often.
pub const TOUCH_EVERY: TimeDelta = TimeDelta::minutes(1);

/// The names and attributes of Portico's cookies, which depend on whether the public URL is
/// https (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cookies {
    secure: bool,
}

impl Cookies {
    pub fn for_public_url(public_url: &str) -> Cookies {
        Cookies {
            secure: public_url
                .get(..8)
                .is_some_and(|s| s.eq_ignore_ascii_case("https://")),
        }
    }

    /// Whether the cookies are `Secure` with the `__Host-` prefix (the public URL is https).
    pub fn secure(&self) -> bool {
        self.secure
    }

    /// The session cookie's name.
    pub fn session_name(&self) -> &'static str {
        if self.secure {
            "__Host-portico-session"
        } else {
            "portico-session"
        }
    }

    /// The name of the cookie that carries the anti-forgery secret of forms shown before
    /// sign-in ([`crate::csrf`]).
    pub fn pre_session_name(&self) -> &'static str {
        if self.secure {
            "__Host-portico-presession"
        } else {
            "portico-presession"
        }
    }

    /// `Set-Cookie` for a new session token.
    pub fn set_session(&self, token: &str) -> Option<HeaderValue> {
        self.build(self.session_name(), token, "Lax", None)
    }

    /// `Set-Cookie` that removes the session cookie.
    pub fn clear_session(&self) -> Option<HeaderValue> {
        self.build(self.session_name(), "", "Lax", Some(0))
    }

    /// `Set-Cookie` for the pre-session secret: `SameSite=Strict`, as nothing on another site
    /// ever needs to send it.
    pub fn set_pre_session(&self, secret: &str) -> Option<HeaderValue> {
        self.build(self.pre_session_name(), secret, "Strict", None)
    }

    fn build(
        &self,
        name: &str,
        value: &str,
        same_site: &str,
        max_age: Option<u32>,
    ) -> Option<HeaderValue> {
        let secure = if self.secure { "; Secure" } else { "" };
        let max_age = max_age
            .map(|s| format!("; Max-Age={s}"))
            .unwrap_or_default();
        HeaderValue::from_str(&format!(
            "{name}={value}; Path=/; HttpOnly; SameSite={same_site}{secure}{max_age}"
        ))
        .ok()
    }
}

/// The value of the cookie `name` from the request's `Cookie` headers. Only a plain token
/// (base64url, at most 64 characters) is taken: anything else is treated as absent.
pub fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.trim())
        .filter(|v| is_plain_token(v))
}

fn is_plain_token(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 64
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A new session row for `account_id` at `now`; the token (for the cookie) and the row.
fn new_session(
    account_id: &str,
    second_factor_done: bool,
    now: DateTime<Utc>,
) -> (String, Session) {
    let token = new_token();
    let absolute = now + ABSOLUTE;
    let session = Session {
        token_hash: hash_token(&token),
        account_id: account_id.to_string(),
        created_at: now,
        last_seen_at: now,
        idle_expires_at: (now + IDLE).min(absolute),
        absolute_expires_at: absolute,
        csrf_secret: new_token(),
        second_factor_done,
        acting_for_patient: None,
        ended_at: None,
    };
    (token, session)
}

/// Starts a session for `account_id` and ends the one the browser brought (`old_token`), if
/// any: the answer to session fixation. Returns the new token for the cookie.
pub async fn start(
    state: &AppState,
    account_id: &str,
    second_factor_done: bool,
    old_token: Option<&str>,
) -> Result<(String, Session), WebError> {
    let now = state.now();
    let accounts = state.store.accounts();
    if let Some(old) = old_token {
        accounts.end_session(&hash_token(old), now).await?;
    }
    let (token, session) = new_session(account_id, second_factor_done, now);
    accounts.create_session(&session).await?;
    Ok((token, session))
}

/// Ends `old` and starts a new session for its account: a privilege change (the second factor
/// done) always gets a new token.
pub async fn replace(
    state: &AppState,
    old: &Session,
    second_factor_done: bool,
) -> Result<(String, Session), WebError> {
    let now = state.now();
    let accounts = state.store.accounts();
    accounts.end_session(&old.token_hash, now).await?;
    let (token, session) = new_session(&old.account_id, second_factor_done, now);
    accounts.create_session(&session).await?;
    Ok((token, session))
}

/// A live session and its active account, as found from a request's cookie.
#[derive(Debug, Clone)]
pub struct Active {
    pub session: Session,
    pub account: Account,
}

/// The live session the request's cookie names, with its account; None when there is no
/// cookie, the session ended or expired, or the account is gone or disabled. Records the
/// request on the session (at most once a minute).
pub async fn active(state: &AppState, headers: &HeaderMap) -> Result<Option<Active>, WebError> {
    let Some(token) = cookie_value(headers, state.cookies().session_name()) else {
        return Ok(None);
    };
    let accounts = state.store.accounts();
    let now = state.now();
    let Some(session) = accounts.session(&hash_token(token)).await? else {
        return Ok(None);
    };
    if !session.is_live(now) {
        return Ok(None);
    }
    let Some(account) = accounts.account_by_id(&session.account_id).await? else {
        return Ok(None);
    };
    if account.status != AccountStatus::Active {
        return Ok(None);
    }
    if now.signed_duration_since(session.last_seen_at) >= TOUCH_EVERY
        && !accounts
            .touch_session(&session.token_hash, now, now + IDLE)
            .await?
    {
        return Ok(None);
    }
    Ok(Some(Active { session, account }))
}

/// The session token the request carries, if any (whether or not it is live).
pub fn token_of(state: &AppState, headers: &HeaderMap) -> Option<String> {
    cookie_value(headers, state.cookies().session_name()).map(str::to_string)
}

/// The anti-forgery token of the form that posts to `action`, for this session.
pub fn csrf_for(session: &Session, action: &str) -> String {
    crate::csrf::token(&session.csrf_secret, action)
}

/// Someone fully signed in (password and second factor) with an active account: what every
/// page behind sign-in asks for. Without one, a page request is redirected to `/login` (with
/// `?next=` the page, so the person comes back to it); a session still waiting for its second
/// factor is sent to finish it.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub account: Account,
    pub session: Session,
}

impl CurrentUser {
    /// The anti-forgery token of the form that posts to `action`.
    pub fn csrf(&self, action: &str) -> String {
        csrf_for(&self.session, action)
    }

    /// The layout of a page of this person (with the sign-out link).
    pub fn layout(&self, heading: &str, has_errors: bool) -> ui::Layout {
        ui::Layout::new(heading, has_errors).signed_in(self.csrf("/logout"))
    }
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        match active(state, &parts.headers).await {
            Ok(Some(Active { session, account })) if session.second_factor_done => {
                Ok(CurrentUser { account, session })
            }
            Ok(Some(_)) => Err(ui::see_other(crate::signin::SECOND_FACTOR_PATH)),
            Ok(None) => Err(ui::see_other(&login_with_next(&parts.uri))),
            Err(e) => Err(ui::failure(e)),
        }
    }
}

/// Any live session, with or without the second factor: for the pages of the sign-in itself
/// (the second factor, setting one up). Without one, the request is sent to `/login`.
#[derive(Debug, Clone)]
pub struct SessionUser {
    pub account: Account,
    pub session: Session,
}

impl FromRequestParts<AppState> for SessionUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        match active(state, &parts.headers).await {
            Ok(Some(Active { session, account })) => Ok(SessionUser { account, session }),
            Ok(None) => Err(ui::see_other(crate::signin::LOGIN_PATH)),
            Err(e) => Err(ui::failure(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_cookies_are_host_prefixed_and_secure() {
        let c = Cookies::for_public_url("https://portal.example.nhs.uk");
        assert!(c.secure());
        let v = c
            .set_session("abc")
            .map(|v| v.to_str().unwrap_or_default().to_string());
        assert_eq!(
            v.as_deref(),
            Some("__Host-portico-session=abc; Path=/; HttpOnly; SameSite=Lax; Secure")
        );
        let p = c
            .set_pre_session("xyz")
            .map(|v| v.to_str().unwrap_or_default().to_string());
        assert_eq!(
            p.as_deref(),
            Some("__Host-portico-presession=xyz; Path=/; HttpOnly; SameSite=Strict; Secure")
        );
    }

    #[test]
    fn plain_http_cookies_have_no_prefix_and_no_secure() {
        let c = Cookies::for_public_url("http://127.0.0.1:8080");
        assert!(!c.secure());
        let v = c
            .set_session("abc")
            .map(|v| v.to_str().unwrap_or_default().to_string());
        assert_eq!(
            v.as_deref(),
            Some("portico-session=abc; Path=/; HttpOnly; SameSite=Lax")
        );
        let cleared = c
            .clear_session()
            .map(|v| v.to_str().unwrap_or_default().to_string());
        assert_eq!(
            cleared.as_deref(),
            Some("portico-session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0")
        );
    }

    #[test]
    fn cookie_value_finds_the_named_plain_token_only() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; portico-session=tok_EN-123; b=2"),
        );
        headers.append(header::COOKIE, HeaderValue::from_static("evil=x;y"));
        assert_eq!(
            cookie_value(&headers, "portico-session"),
            Some("tok_EN-123")
        );
        assert_eq!(cookie_value(&headers, "b"), Some("2"));
        assert_eq!(cookie_value(&headers, "missing"), None);
        let mut odd = HeaderMap::new();
        odd.insert(
            header::COOKIE,
            HeaderValue::from_static("s=a%20b; t=; u=<x>"),
        );
        assert_eq!(cookie_value(&odd, "s"), None);
        assert_eq!(cookie_value(&odd, "t"), None);
        assert_eq!(cookie_value(&odd, "u"), None);
    }

    #[test]
    fn a_new_session_expires_idle_after_30_minutes_and_absolutely_after_12_hours() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
        let (token, s) = new_session("acc", false, now);
        assert_eq!(s.token_hash, hash_token(&token));
        assert_ne!(s.csrf_secret, token);
        assert_eq!(s.idle_expires_at, now + TimeDelta::minutes(30));
        assert_eq!(s.absolute_expires_at, now + TimeDelta::hours(12));
        assert!(s.is_live(now + TimeDelta::minutes(29)));
        assert!(!s.is_live(now + TimeDelta::minutes(30)));
    }
}
