//! Setting up the authenticator app (`GET/POST /account/totp`): right after the password step
//! for an account that has none (it gets no further before this is done), or from the account
//! page to replace it.
//!
//! The page shows a new secret as base32 text, as the `otpauth://` link and as a QR code (an SVG
//! image in a `data:` URL, which the CSP allows), and asks for the code the app then shows. The
//! secret travels in a hidden field with a MAC under the session's secret, so the server keeps
//! nothing until the code confirms it and no one can post a secret of their choosing for
//! another session. Confirmed, it replaces the old secret and ten new recovery codes replace
//! the old ones; they are shown once. Done during sign-in, it completes the sign-in (a new
//! session token). Replacing an existing authenticator needs a complete sign-in first.

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::Response;
use axum::Form;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use identity::totp::{self, Rejection, Secret};
use serde::Deserialize;

use super::audit::{self, Event};
use super::next::{next_or_default, safe_next, with_next};
use super::password::LoginQuery;
use super::{SECOND_FACTOR_PATH, TOTP_PATH};
use crate::client_ip::ClientIp;
use crate::session::{self, SessionUser};
use crate::ui::{self, text, Errors, Layout, Text};
use crate::{csrf, AppState, WebError};

#[derive(Template)]
#[template(path = "totp_setup.html")]
pub struct TotpSetupPage {
    pub layout: Layout,
    pub t: &'static Text,
    pub errors: Errors,
    pub csrf: String,
    pub next: String,
    /// Shown during sign-in: the account must set this up to continue.
    pub required: bool,
    pub secret: String,
    pub secret_mac: String,
    pub otpauth_uri: String,
    /// `data:image/svg+xml;base64,…` of the QR code, when one could be made.
    pub qr_data_url: Option<String>,
}

#[derive(Template)]
#[template(path = "recovery_codes.html")]
pub struct RecoveryCodesPage {
    pub layout: Layout,
    pub t: &'static Text,
    pub codes: Vec<String>,
    pub next: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TotpForm {
    pub csrf: String,
    pub next: String,
    pub secret: String,
    pub secret_mac: String,
    pub code: String,
}

/// What binds a secret in the form to the session that was shown it.
fn secret_action(secret: &str) -> String {
    format!("{TOTP_PATH}#secret={secret}")
}

/// The QR code of `uri` as an SVG `data:` URL.
pub fn qr_data_url(uri: &str) -> Option<String> {
    let code = qrcode::QrCode::new(uri.as_bytes()).ok()?;
    let svg = code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    Some(format!(
        "data:image/svg+xml;base64,{}",
        STANDARD.encode(svg)
    ))
}

fn setup_page(
    status: StatusCode,
    user: &SessionUser,
    secret: &Secret,
    errors: Errors,
    next: &str,
) -> Response {
    let t = text::current();
    let base32 = secret.to_base32();
    let uri = secret.otpauth_uri(&user.account.username);
    let page = TotpSetupPage {
        layout: Layout::new(t.totp_setup_title, errors.has_errors())
            .signed_in(session::csrf_for(&user.session, super::LOGOUT_PATH)),
        t,
        errors,
        csrf: session::csrf_for(&user.session, TOTP_PATH),
        next: safe_next(next).unwrap_or_default().to_string(),
        required: !user.session.second_factor_done,
        secret_mac: session::csrf_for(&user.session, &secret_action(&base32)),
        secret: base32,
        qr_data_url: qr_data_url(&uri),
        otpauth_uri: uri,
    };
    ui::page(status, &page)
}

/// A half-signed-in session may set up a first authenticator, not replace one.
fn may_set_up(user: &SessionUser) -> bool {
    user.session.second_factor_done || user.account.totp_secret.is_none()
}

/// `GET /account/totp`.
pub async fn show(user: SessionUser, RawQuery(query): RawQuery) -> Response {
    let next = LoginQuery::parse(query.as_deref()).next.unwrap_or_default();
    if !may_set_up(&user) {
        return ui::see_other(&with_next(SECOND_FACTOR_PATH, &next));
    }
    setup_page(
        StatusCode::OK,
        &user,
        &Secret::generate(),
        Errors::new(),
        &next,
    )
}

/// `POST /account/totp`.
pub async fn submit(
    State(state): State<AppState>,
    ip: ClientIp,
    user: SessionUser,
    Form(form): Form<TotpForm>,
) -> Response {
    ui::respond(confirm(&state, &ip, user, form).await)
}

async fn confirm(
    state: &AppState,
    ip: &ClientIp,
    user: SessionUser,
    form: TotpForm,
) -> Result<Response, WebError> {
    let t = text::current();
    csrf::check(&user.session.csrf_secret, TOTP_PATH, &form.csrf)?;
    if !may_set_up(&user) {
        return Ok(ui::see_other(&with_next(SECOND_FACTOR_PATH, &form.next)));
    }
    csrf::check(
        &user.session.csrf_secret,
        &secret_action(&form.secret),
        &form.secret_mac,
    )?;
    let secret = Secret::from_base32(&form.secret)
        .map_err(|_| WebError::Forbidden("the set-up form was altered".into()))?;
    let now = state.now();
    let step = match totp::verify(&secret, &form.code, now.timestamp(), None) {
        Ok(step) => step,
        Err(rejection) => {
            let message = match rejection {
                Rejection::Malformed => t.totp_malformed,
                Rejection::Mismatch | Rejection::Replayed => t.totp_wrong,
            };
            return Ok(setup_page(
                StatusCode::BAD_REQUEST,
                &user,
                &secret,
                Errors::one("code", message),
                &form.next,
            ));
        }
    };
    let accounts = state.store.accounts();
    let id = &user.account.account_id;
    accounts
        .set_totp(id, Some(&secret.to_base32()), Some(step), now)
        .await?;
    let (codes, hashes) = identity::recovery::generate();
    accounts.replace_recovery_codes(id, &hashes).await?;
    let signing_in = !user.session.second_factor_done;
    let mut events = vec![Event::SecondFactorChanged];
    let mut cookie = None;
    let session = if signing_in {
        let (token, session) = session::replace(state, &user.session, true).await?;
        accounts.reset_sign_in_failures(id, now).await?;
        events.push(Event::SignedIn);
        cookie = state.cookies().set_session(&token);
        session
    } else {
        user.session.clone()
    };
    audit::log(state, &events, Some(&user.account), ip).await?;
    let page = RecoveryCodesPage {
        layout: Layout::new(t.recovery_codes_title, false)
            .signed_in(session::csrf_for(&session, super::LOGOUT_PATH)),
        t,
        codes,
        next: next_or_default(Some(&form.next)).to_string(),
    };
    let mut res = ui::page(StatusCode::OK, &page);
    if let Some(cookie) = cookie {
        res.headers_mut().append(header::SET_COOKIE, cookie);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_qr_code_is_an_svg_data_url() {
        let url =
            qr_data_url("otpauth://totp/Portico:alice?secret=JBSWY3DPEHPK3PXP&issuer=Portico");
        let url = url.unwrap_or_default();
        let b64 = url
            .strip_prefix("data:image/svg+xml;base64,")
            .unwrap_or_default();
        let svg = STANDARD.decode(b64).unwrap_or_default();
        let svg = String::from_utf8_lossy(&svg);
        assert!(svg.contains("<svg"), "{svg}");
        assert!(!svg.contains("style="), "inline styles would break the CSP");
    }
}
