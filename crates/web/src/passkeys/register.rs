//! The account's passkeys (`GET /account/passkeys`): the list, adding one (a WebAuthn
//! registration in two JSON steps) and removing one (a form).
//!
//! Adding: `start` answers creation options for the signed-in account — its user handle is the
//! account id, its passkeys already added are excluded, user verification and a discoverable
//! credential are required — and keeps the ceremony's state on the server, bound to this
//! session. `finish` takes that state once, has webauthn-rs check the browser's answer against
//! it (challenge, origin, relying party, user verification, signature) and stores the passkey
//! under the name typed, or "Passkey added 1 April 2025". Both steps need a complete sign-in
//! less than [`super::RECENT_SIGN_IN`] ago.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Form;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use store::accounts::WebauthnCredential;
use store::StoreError;
use webauthn_rs::prelude::{Passkey, PasskeyRegistration, RegisterPublicKeyCredential, Uuid};

use super::ceremony::{self, Kind};
use super::{json, script, PasskeyEvent};
use crate::client_ip::ClientIp;
use crate::session::{self, Active, CurrentUser};
use crate::signin::account::CsrfOnlyForm;
use crate::ui::{self, london, text, Layout, Text};
use crate::{csrf, AppState, WebError};

/// Longest passkey name kept (characters).
pub const MAX_NAME_CHARS: usize = 60;

#[derive(Template)]
#[template(path = "passkeys.html")]
pub struct PasskeysPage {
    pub layout: Layout,
    pub t: &'static Text,
    pub notice: Option<&'static str>,
    pub passkeys: Vec<PasskeyRow>,
    /// Passkeys work on this server (its public URL is a domain name).
    pub available: bool,
    /// The sign-in is recent enough to add one.
    pub may_add: bool,
    pub script: &'static str,
    pub start: &'static str,
    pub finish: &'static str,
}

/// One passkey as the page lists it.
#[derive(Debug, Clone)]
pub struct PasskeyRow {
    pub name: String,
    pub added: String,
    pub last_used: String,
    pub remove_action: String,
    pub remove_csrf: String,
}

/// The form action that removes the passkey `credential_id`.
pub fn remove_action(credential_id: &str) -> String {
    format!("{}/{credential_id}/remove", super::PASSKEYS_PATH)
}

/// The name a new passkey gets: what was typed, without control characters or runs of spaces,
/// at most [`MAX_NAME_CHARS`] characters; when nothing is left, "Passkey added {date}".
pub fn passkey_name(typed: &str, now: DateTime<Utc>) -> String {
    let plain: String = typed.chars().filter(|c| !c.is_control()).collect();
    let name: String = plain
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(MAX_NAME_CHARS)
        .collect();
    let name = name.trim_end().to_string();
    if name.is_empty() {
        format!(
            "{} {}",
            text::current().passkey_default_name,
            london::long_date(now)
        )
    } else {
        name
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PasskeysQuery {
    done: String,
}

/// `GET /account/passkeys`.
pub async fn show(
    State(state): State<AppState>,
    user: CurrentUser,
    RawQuery(query): RawQuery,
) -> Response {
    ui::respond(passkeys_page(&state, &user, query.as_deref()).await)
}

async fn passkeys_page(
    state: &AppState,
    user: &CurrentUser,
    query: Option<&str>,
) -> Result<Response, WebError> {
    let t = text::current();
    let done: PasskeysQuery = query
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default();
    let notice = match done.done.as_str() {
        "added" => Some(t.passkey_added),
        "removed" => Some(t.passkey_removed),
        _ => None,
    };
    let stored = state
        .store
        .accounts()
        .webauthn_credentials(&user.account.account_id)
        .await?;
    let passkeys = stored
        .iter()
        .map(|c| {
            let action = remove_action(&c.credential_id);
            PasskeyRow {
                name: c.name.clone(),
                added: london::long_date(c.created_at),
                last_used: c
                    .last_used_at
                    .map_or_else(|| t.passkey_never_used.to_string(), london::long_date),
                remove_csrf: user.csrf(&action),
                remove_action: action,
            }
        })
        .collect();
    let page = PasskeysPage {
        layout: user.layout(t.passkeys_title, false),
        t,
        notice,
        passkeys,
        available: super::relying_party(&state.config.public_url).is_some(),
        may_add: super::recently_signed_in(&user.session, state.now()),
        script: script::script_url(),
        start: super::REGISTER_START_PATH,
        finish: super::REGISTER_FINISH_PATH,
    };
    Ok(ui::page(StatusCode::OK, &page))
}

/// The signed-in session of a JSON request, with the second factor done; 401 without one.
async fn signed_in(state: &AppState, headers: &HeaderMap) -> Result<Active, WebError> {
    match session::active(state, headers).await? {
        Some(active) if active.session.second_factor_done => Ok(active),
        _ => Err(WebError::Unauthorized(
            "adding a passkey needs a complete sign-in".into(),
        )),
    }
}

/// The answer when the sign-in is too old to add a passkey.
fn sign_in_again() -> Response {
    json::refuse(
        StatusCode::FORBIDDEN,
        "sign-in-again",
        text::current().passkey_sign_in_again,
    )
}

/// `POST /account/passkeys/register/start` (JSON).
pub async fn start(State(state): State<AppState>, headers: HeaderMap) -> Response {
    json::respond(begin(&state, &headers).await)
}

async fn begin(state: &AppState, headers: &HeaderMap) -> Result<Response, WebError> {
    json::check_request(state, headers)?;
    let user = signed_in(state, headers).await?;
    if !super::recently_signed_in(&user.session, state.now()) {
        return Ok(sign_in_again());
    }
    let rp = super::relying_party_of(state)?;
    let account = &user.account;
    let user_id = Uuid::parse_str(&account.account_id)
        .map_err(|_| WebError::Internal("an account id is not a UUID".into()))?;
    let existing = state
        .store
        .accounts()
        .webauthn_credentials(&account.account_id)
        .await?
        .iter()
        .filter_map(|c| serde_json::from_str::<Passkey>(&c.passkey).ok())
        .map(|p| p.cred_id().clone())
        .collect::<Vec<_>>();
    let (options, registration) = rp
        .start_passkey_registration(
            user_id,
            &account.username,
            &account.username,
            Some(existing),
        )
        .map_err(|e| WebError::Internal(format!("passkey registration could not start: {e}")))?;
    let mut public_key = serde_json::to_value(&options.public_key)
        .map_err(|e| WebError::Internal(format!("creation options not serialisable: {e}")))?;
    // Sign-in is usernameless, which only a discoverable credential can answer; webauthn-rs
    // asks for a non-discoverable one ("discouraged") and does not check either way.
    public_key["authenticatorSelection"]["residentKey"] = json!("required");
    public_key["authenticatorSelection"]["requireResidentKey"] = json!(true);
    let handle = ceremony::put(
        state,
        Kind::Registration,
        Some(&user.session.token_hash),
        &registration,
    )
    .await?;
    Ok(json::answer(
        StatusCode::OK,
        &json!({ "ceremony": handle, "publicKey": public_key }),
    ))
}

#[derive(Debug, Deserialize)]
struct FinishRequest {
    ceremony: String,
    #[serde(default)]
    name: String,
    credential: RegisterPublicKeyCredential,
}

/// `POST /account/passkeys/register/finish` (JSON).
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
    let t = text::current();
    json::check_request(state, headers)?;
    let user = signed_in(state, headers).await?;
    let now = state.now();
    if !super::recently_signed_in(&user.session, now) {
        return Ok(sign_in_again());
    }
    let rp = super::relying_party_of(state)?;
    let request: FinishRequest = json::parse(body)?;
    let failed = || json::refuse(StatusCode::BAD_REQUEST, "not-added", t.passkey_add_failed);
    let Some(started) =
        ceremony::take::<PasskeyRegistration>(state, Kind::Registration, &request.ceremony).await?
    else {
        return Ok(failed());
    };
    if started.session.as_deref() != Some(user.session.token_hash.as_str()) {
        return Ok(failed());
    }
    let passkey = match rp.finish_passkey_registration(&request.credential, &started.state) {
        Ok(passkey) => passkey,
        Err(e) => {
            tracing::info!(error = %e, "a passkey registration was refused");
            return Ok(failed());
        }
    };
    let stored = serde_json::to_string(&passkey)
        .map_err(|e| WebError::Internal(format!("a passkey is not serialisable: {e}")))?;
    let credential = WebauthnCredential {
        credential_id: super::credential_id(passkey.cred_id().as_ref()),
        account_id: user.account.account_id.clone(),
        name: passkey_name(&request.name, now),
        passkey: stored,
        created_at: now,
        last_used_at: None,
    };
    match state
        .store
        .accounts()
        .add_webauthn_credential(&credential)
        .await
    {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            return Ok(json::refuse(
                StatusCode::CONFLICT,
                "already-added",
                t.passkey_already_added,
            ))
        }
        Err(e) => return Err(e.into()),
    }
    super::log(state, PasskeyEvent::Added, Some(&user.account), ip).await?;
    Ok(json::answer(
        StatusCode::OK,
        &json!({ "redirect": format!("{}?done=added", super::PASSKEYS_PATH) }),
    ))
}

/// `POST /account/passkeys/{id}/remove`.
pub async fn remove(
    State(state): State<AppState>,
    ip: ClientIp,
    user: CurrentUser,
    Path(id): Path<String>,
    Form(form): Form<CsrfOnlyForm>,
) -> Response {
    ui::respond(remove_one(&state, &ip, &user, &id, &form).await)
}

async fn remove_one(
    state: &AppState,
    ip: &ClientIp,
    user: &CurrentUser,
    id: &str,
    form: &CsrfOnlyForm,
) -> Result<Response, WebError> {
    csrf::check(&user.session.csrf_secret, &remove_action(id), &form.csrf)?;
    let removed = state
        .store
        .accounts()
        .remove_webauthn_credential(&user.account.account_id, id)
        .await?;
    if !removed {
        return Err(WebError::NotFound("no such passkey on this account".into()));
    }
    super::log(state, PasskeyEvent::Removed, Some(&user.account), ip).await?;
    Ok(ui::see_other(&format!(
        "{}?done=removed",
        super::PASSKEYS_PATH
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_750_000_000, 0).unwrap_or_default()
    }

    #[test]
    fn a_typed_name_is_kept_tidied_and_cut_to_sixty_characters() {
        assert_eq!(passkey_name("My phone", t0()), "My phone");
        assert_eq!(passkey_name("  My \t phone\n", t0()), "My phone");
        assert_eq!(passkey_name("a\u{0}b\u{7}c", t0()), "abc");
        let long = "x".repeat(100);
        assert_eq!(passkey_name(&long, t0()).chars().count(), MAX_NAME_CHARS);
        let cut_at_space = format!("{} tail", "y".repeat(MAX_NAME_CHARS - 1));
        assert_eq!(
            passkey_name(&cut_at_space, t0()),
            "y".repeat(MAX_NAME_CHARS - 1)
        );
    }

    #[test]
    fn without_a_name_the_passkey_is_named_by_its_london_date() {
        // 2025-06-15T15:06:40Z.
        assert_eq!(passkey_name("", t0()), "Passkey added 15 June 2025");
        assert_eq!(passkey_name(" \n ", t0()), "Passkey added 15 June 2025");
    }

    #[test]
    fn the_remove_action_names_the_credential() {
        assert_eq!(remove_action("abc_-1"), "/account/passkeys/abc_-1/remove");
    }
}
