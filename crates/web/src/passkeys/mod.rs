//! Passkeys (WebAuthn): adding them to an account, signing in with one instead of a password
//! and security code, and removing them.
//!
//! A passkey with user verification (fingerprint, face, PIN) is two factors in one — something
//! you have and something you are or know — and, bound by the browser to this site's origin, it
//! cannot be phished. So a passkey sign-in is a complete sign-in: a fresh session with the
//! second factor done. Every passkey ceremony requires user verification.
//!
//! **Relying party.** Its id is the host of the public URL (`PORTICO_PUBLIC_URL`) and the only
//! origin accepted is the public URL's. Browsers accept only a domain name as a relying party
//! id, so on a server reached by IP address (the default `http://127.0.0.1:8080`) passkeys are
//! off: the pages say so and the endpoints answer 404. `http://localhost:…` works for
//! development.
//!
//! **Progressive enhancement.** Passkeys need the browser's `navigator.credentials`, so they
//! need JavaScript; the portal does not. The passkey controls are in the pages but hidden, and
//! `passkeys.js` ([`script`]) shows them only where `window.PublicKeyCredential` exists. Without
//! it, nothing of passkeys appears but a sentence saying they need a browser that has them, and
//! password + security code works as before. Removing a passkey is a plain form.
//!
//! **Discoverable credentials.** Sign-in is usernameless: the browser offers the passkeys it
//! holds for this site and answers with the chosen one's id and user handle (the account id,
//! a UUID). A passkey is therefore created as a discoverable ("resident") credential.
//!
//! Routes (behind [`crate::ui::headers::security_headers`]):
//!
//! | route | what |
//! |---|---|
//! | `GET /account/passkeys` | the account's passkeys (name, added, last used), add and remove ([`register`]) |
//! | `POST /account/passkeys/register/start` | JSON: creation options for the browser |
//! | `POST /account/passkeys/register/finish` | JSON: the new credential, checked and stored |
//! | `POST /account/passkeys/{id}/remove` | form (anti-forgery token): removes one |
//! | `GET /login/passkey` | the passkey sign-in page ([`signin`]) |
//! | `POST /login/passkey/start` | JSON: request options (any passkey of this site) |
//! | `POST /login/passkey/finish` | JSON: the assertion, checked; a new session |
//! | `GET /assets/passkeys.js` | the script ([`script`]) |
//!
//! The JSON endpoints' defences against forgery are in [`json`]; the ceremony state stays on the
//! server ([`ceremony`]). Adding a passkey needs a complete sign-in less than
//! [`RECENT_SIGN_IN`] ago (a passkey is a lasting way in, so a session left open on a shared
//! computer must not be enough to plant one); removing one needs a complete sign-in. Adding,
//! removing, signing in and every refused sign-in are audited.

pub mod ceremony;
pub mod json;
pub mod register;
pub mod script;
pub mod signin;

use axum::routing::{get, post};
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, TimeDelta, Utc};
use store::accounts::{Account, Session};
use webauthn_rs::prelude::Url;
use webauthn_rs::{Webauthn, WebauthnBuilder};

use crate::client_ip::ClientIp;
use crate::signin::audit::{self, Event};
use crate::ui::text;
use crate::{AppState, WebError};

pub const PASSKEYS_PATH: &str = "/account/passkeys";
pub const REGISTER_START_PATH: &str = "/account/passkeys/register/start";
pub const REGISTER_FINISH_PATH: &str = "/account/passkeys/register/finish";
pub const REMOVE_ROUTE: &str = "/account/passkeys/{id}/remove";
pub const SIGN_IN_PATH: &str = "/login/passkey";
pub const SIGN_IN_START_PATH: &str = "/login/passkey/start";
pub const SIGN_IN_FINISH_PATH: &str = "/login/passkey/finish";

/// How long after a complete sign-in a passkey may be added.
pub const RECENT_SIGN_IN: TimeDelta = TimeDelta::minutes(15);

/// The passkey routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(PASSKEYS_PATH, get(register::show))
        .route(REGISTER_START_PATH, post(register::start))
        .route(REGISTER_FINISH_PATH, post(register::finish))
        .route(REMOVE_ROUTE, post(register::remove))
        .route(SIGN_IN_PATH, get(signin::show))
        .route(SIGN_IN_START_PATH, post(signin::start))
        .route(SIGN_IN_FINISH_PATH, post(signin::finish))
        .route(script::SCRIPT_PATH, get(script::script))
}

/// The relying party of the public URL `public_url`: id its host, origin its origin. None when
/// the host is not a domain name (an IP address), which browsers refuse as a relying party id.
pub fn relying_party(public_url: &str) -> Option<Webauthn> {
    let url = Url::parse(public_url).ok()?;
    let rp_id = url.domain()?.to_string();
    let origin = Url::parse(&url.origin().ascii_serialization()).ok()?;
    WebauthnBuilder::new(&rp_id, &origin)
        .ok()?
        .rp_name(text::current().service_name)
        .build()
        .ok()
}

/// The server's relying party, or 404 when passkeys are off here.
pub fn relying_party_of(state: &AppState) -> Result<Webauthn, WebError> {
    relying_party(&state.config.public_url).ok_or_else(|| {
        WebError::NotFound("passkeys need the public URL to be a domain name".into())
    })
}

/// A credential id as the store keeps it and URLs carry it: unpadded base64url.
pub fn credential_id(raw: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(raw)
}

/// Whether the session's complete sign-in was less than [`RECENT_SIGN_IN`] ago. A session is
/// made anew at each complete sign-in, so its creation is when that happened.
pub fn recently_signed_in(session: &Session, now: DateTime<Utc>) -> bool {
    session.second_factor_done && now.signed_duration_since(session.created_at) < RECENT_SIGN_IN
}

/// A passkey event for the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasskeyEvent {
    /// A complete sign-in with a passkey.
    SignedIn,
    /// A refused passkey sign-in (`status` 401), or one stopped by the rate limit (429) or a
    /// locked or disabled account (423).
    Failed {
        status: u16,
    },
    Added,
    Removed,
}

/// Writes the audit record of `event`: the sign-in records with `entity` saying a passkey was
/// used, and a credential change naming the passkey change. Durable when it returns.
pub async fn log(
    state: &AppState,
    event: PasskeyEvent,
    account: Option<&Account>,
    ip: &ClientIp,
) -> Result<(), WebError> {
    let (base, entity, status) = match event {
        PasskeyEvent::SignedIn => (Event::SignedIn, "passkey", None),
        PasskeyEvent::Failed { status } => (Event::Failed { status }, "passkey", None),
        PasskeyEvent::Added => (Event::SecondFactorChanged, "passkey-added", Some(201)),
        PasskeyEvent::Removed => (Event::SecondFactorChanged, "passkey-removed", None),
    };
    let mut record = audit::record(state, base, account, ip);
    record.entity = Some(entity.to_string());
    if status.is_some() {
        record.status = status;
    }
    state.store.append_audit(vec![record]).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relying_party_needs_a_domain_name() {
        assert!(relying_party("https://portal.example.nhs.uk").is_some());
        assert!(relying_party("https://portal.example.nhs.uk/portico/").is_some());
        assert!(relying_party("http://localhost:8080").is_some());
        assert!(relying_party("http://127.0.0.1:8080").is_none());
        assert!(relying_party("http://[::1]:8080").is_none());
        assert!(relying_party("not a url").is_none());
    }

    #[test]
    fn credential_ids_are_unpadded_base64url() {
        assert_eq!(credential_id(&[0xfb, 0xff, 0x01]), "-_8B");
        assert_eq!(credential_id(&[]), "");
    }

    #[test]
    fn a_passkey_may_be_added_only_soon_after_a_complete_sign_in() {
        let t0 = DateTime::from_timestamp(1_750_000_000, 0).unwrap_or_default();
        let mut s = Session {
            token_hash: "h".into(),
            account_id: "a".into(),
            created_at: t0,
            last_seen_at: t0,
            idle_expires_at: t0 + TimeDelta::minutes(30),
            absolute_expires_at: t0 + TimeDelta::hours(12),
            csrf_secret: "s".into(),
            second_factor_done: true,
            acting_for_patient: None,
            ended_at: None,
        };
        assert!(recently_signed_in(&s, t0));
        assert!(recently_signed_in(&s, t0 + TimeDelta::minutes(14)));
        assert!(!recently_signed_in(&s, t0 + TimeDelta::minutes(15)));
        s.second_factor_done = false;
        assert!(!recently_signed_in(&s, t0));
    }
}
