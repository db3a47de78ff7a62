//! Anti-forgery tokens on every state-changing form (the synchroniser-token pattern of
//! [`identity::csrf`]): a hidden `csrf` field holding an HMAC of the form's action under a
//! secret the browser's other sites cannot read.
//!
//! Signed in, the secret is the session's own (`Session::csrf_secret`, never sent to the
//! browser). Before sign-in (the sign-in and registration forms) there is no session, so a
//! pre-session cookie carries a random secret (`HttpOnly; SameSite=Strict`): another site can
//! neither read it nor make the browser send it, so it cannot compute a valid token, and a
//! forged login (signing the victim into the attacker's account) fails too.
//!
//! A POST whose token is missing or wrong is answered 403 before anything is read or changed.

use axum::http::{header, HeaderMap};
use axum::response::Response;
use identity::csrf::{csrf_token, verify_csrf};

use crate::session::{cookie_value, Cookies};
use crate::WebError;

/// The token for the form that posts to `action` under `secret` (a session's or a
/// pre-session's). Secrets are 43-character random tokens, so the token always exists; an
/// empty string (which never verifies) stands for the impossible short secret.
pub fn token(secret: &str, action: &str) -> String {
    csrf_token(secret.as_bytes(), action).unwrap_or_default()
}

/// Refuses (403) a form whose token is not the one for `action` under `secret`.
pub fn check(secret: &str, action: &str, token: &str) -> Result<(), WebError> {
    if verify_csrf(secret.as_bytes(), action, token) {
        Ok(())
    } else {
        Err(WebError::Forbidden(
            "the form's anti-forgery token is missing or wrong".into(),
        ))
    }
}

/// The pre-session secret of a browser not signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreSession {
    pub secret: String,
    /// Made for this response: the cookie must be set.
    pub fresh: bool,
}

impl PreSession {
    /// The secret from the request's cookie, or a new one (to be set with
    /// [`PreSession::set_cookie`]) when there is none: what a page showing a form uses.
    pub fn for_form(headers: &HeaderMap, cookies: Cookies) -> PreSession {
        match PreSession::existing(headers, cookies) {
            Some(secret) => PreSession {
                secret,
                fresh: false,
            },
            None => PreSession {
                secret: identity::token::new_token(),
                fresh: true,
            },
        }
    }

    /// The secret the request's cookie carries: what a POST is checked against. A POST without
    /// one fails the check (there is nothing to check the token against).
    pub fn existing(headers: &HeaderMap, cookies: Cookies) -> Option<String> {
        cookie_value(headers, cookies.pre_session_name())
            .filter(|s| s.len() >= identity::csrf::MIN_SECRET_BYTES)
            .map(str::to_string)
    }

    /// The token for the form that posts to `action`.
    pub fn token(&self, action: &str) -> String {
        token(&self.secret, action)
    }

    /// Sets the cookie on `response` when the secret is new.
    pub fn set_cookie(&self, cookies: Cookies, mut response: Response) -> Response {
        if self.fresh {
            if let Some(v) = cookies.set_pre_session(&self.secret) {
                response.headers_mut().append(header::SET_COOKIE, v);
            }
        }
        response
    }
}

/// Checks a pre-sign-in form: the token must match `action` under the pre-session cookie.
pub fn check_pre_session(
    headers: &HeaderMap,
    cookies: Cookies,
    action: &str,
    token: &str,
) -> Result<PreSession, WebError> {
    let secret = PreSession::existing(headers, cookies).unwrap_or_default();
    check(&secret, action, token)?;
    Ok(PreSession {
        secret,
        fresh: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn a_pre_session_token_checks_only_with_its_cookie_and_action() {
        let cookies = Cookies::for_public_url("http://localhost");
        let pre = PreSession::for_form(&HeaderMap::new(), cookies);
        assert!(pre.fresh);
        let token = pre.token("/login");
        let mut headers = HeaderMap::new();
        let cookie = format!("portico-presession={}", pre.secret);
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&cookie).unwrap_or(HeaderValue::from_static("")),
        );
        assert!(check_pre_session(&headers, cookies, "/login", &token).is_ok());
        assert!(check_pre_session(&headers, cookies, "/register", &token).is_err());
        assert!(check_pre_session(&headers, cookies, "/login", "").is_err());
        assert!(check_pre_session(&HeaderMap::new(), cookies, "/login", &token).is_err());
        let again = PreSession::for_form(&headers, cookies);
        assert_eq!((again.secret, again.fresh), (pre.secret, false));
    }
}
