//! Patient registration with an invitation code (`GET/POST /register/invitation`): the code
//! from a letter or SMS (`portico admin invite`), the date of birth, and a username and
//! password of the person's choosing.
//!
//! The code is stored only as its hash. Each code allows [`MAX_ATTEMPTS`] attempts (counted
//! atomically in the database whatever the answer), works once (taken atomically), and expires;
//! attempts are also limited per IP address (`INVITATION_PER_IP`). An unknown, used, expired or
//! exhausted code and a wrong date of birth all get the same answer.
//!
//! The account is a patient account at identity level **P9**: the code went by post to the
//! address on the patient's record (or by SMS to its number), so the trust of that registered
//! contact vouches for the person, as a letter-based PIN does for GP online services. Then
//! straight to setting up the second factor.

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Form;
use fhir::nhs_number::NhsNumber;
use identity::ratelimit::rules::INVITATION_PER_IP;
use serde::Deserialize;
use serde_json::Value;
use store::accounts::{IdentityLevel, Role};

use super::audit::{self, Event};
use super::provision::{self, NewAccount, Refusal};
use super::register::{check_date_of_birth, check_new_credentials, signed_in_to_set_up};
use super::{limits, INVITATION_PATH};
use crate::client_ip::ClientIp;
use crate::csrf::{self, PreSession};
use crate::ui::{self, text, Errors, Layout, Text};
use crate::{AppState, WebError};

/// Attempts one invitation code allows, right or wrong.
pub const MAX_ATTEMPTS: u32 = 5;

#[derive(Template)]
#[template(path = "invitation.html")]
pub struct InvitationPage {
    pub layout: Layout,
    pub t: &'static Text,
    pub errors: Errors,
    pub csrf: String,
    pub form: InvitationForm,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct InvitationForm {
    pub csrf: String,
    pub code: String,
    pub dob_day: String,
    pub dob_month: String,
    pub dob_year: String,
    pub username: String,
    pub password: String,
}

fn invitation_page(
    status: StatusCode,
    state: &AppState,
    pre: &PreSession,
    errors: Errors,
    form: InvitationForm,
) -> Response {
    let t = text::current();
    let page = InvitationPage {
        layout: Layout::new(t.invitation_title, errors.has_errors()),
        t,
        errors,
        csrf: pre.token(INVITATION_PATH),
        form: InvitationForm {
            password: String::new(),
            csrf: String::new(),
            ..form
        },
    };
    pre.set_cookie(state.cookies(), ui::page(status, &page))
}

/// `GET /register/invitation`.
pub async fn show(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let pre = PreSession::for_form(&headers, state.cookies());
    invitation_page(
        StatusCode::OK,
        &state,
        &pre,
        Errors::new(),
        InvitationForm::default(),
    )
}

/// `POST /register/invitation`.
pub async fn submit(
    State(state): State<AppState>,
    ip: ClientIp,
    headers: HeaderMap,
    Form(form): Form<InvitationForm>,
) -> Response {
    ui::respond(redeem(&state, &ip, &headers, form).await)
}

/// The NHS number on a Patient resource, when it has a valid one.
fn nhs_number_of(patient: &Value) -> Option<String> {
    patient["identifier"].as_array()?.iter().find_map(|i| {
        (i["system"].as_str() == Some(fhir::nhs_number::SYSTEM))
            .then(|| i["value"].as_str())
            .flatten()
            .and_then(|v| NhsNumber::parse(v).ok())
            .map(|n| n.digits())
    })
}

async fn redeem(
    state: &AppState,
    ip: &ClientIp,
    headers: &HeaderMap,
    form: InvitationForm,
) -> Result<Response, WebError> {
    let t = text::current();
    let pre = csrf::check_pre_session(headers, state.cookies(), INVITATION_PATH, &form.csrf)?;
    let mut errors = Errors::new();
    if form.code.trim().is_empty() {
        errors.add("code", t.enter_invitation_code);
    }
    let dob = check_date_of_birth(
        state,
        &form.dob_day,
        &form.dob_month,
        &form.dob_year,
        &mut errors,
    );
    check_new_credentials(&form.username, &form.password, &mut errors);
    let Some(dob) = dob.filter(|_| errors.is_empty()) else {
        return Ok(invitation_page(
            StatusCode::BAD_REQUEST,
            state,
            &pre,
            errors,
            form,
        ));
    };
    if !limits::allow(state, &limits::invitation_ip_key(ip), &INVITATION_PER_IP).await? {
        return Err(WebError::TooManyRequests(
            "too many invitation attempts from this address".into(),
        ));
    }
    let not_accepted = |form: InvitationForm| {
        invitation_page(
            StatusCode::BAD_REQUEST,
            state,
            &pre,
            Errors::one("code", t.invitation_not_accepted),
            form,
        )
    };
    let Some(code_hash) = identity::invitation::hash(&form.code) else {
        return Ok(not_accepted(form));
    };
    let now = state.now();
    let accounts = state.store.accounts();
    if accounts
        .count_invitation_attempt(&code_hash, now, MAX_ATTEMPTS)
        .await?
        .is_none()
    {
        return Ok(not_accepted(form));
    }
    let Some(invitation) = accounts.invitation(&code_hash).await? else {
        return Ok(not_accepted(form));
    };
    let patient = match state.store.read("Patient", &invitation.patient_id).await? {
        Some(v) if !v.deleted => v.parse()?,
        _ => return Ok(not_accepted(form)),
    };
    if patient["birthDate"].as_str() != Some(dob.format("%Y-%m-%d").to_string().as_str()) {
        return Ok(not_accepted(form));
    }
    let nhs_number = nhs_number_of(&patient);
    if let Some(n) = &nhs_number {
        if accounts.account_by_nhs_number(n).await?.is_some() {
            return Ok(not_accepted(form));
        }
    }
    let username = provision::normalise_username(&form.username).unwrap_or_default();
    if accounts.account_by_username(&username).await?.is_some() {
        return Ok(invitation_page(
            StatusCode::BAD_REQUEST,
            state,
            &pre,
            Errors::one("username", t.username_taken),
            form,
        ));
    }
    // The code is used up here, once, whatever happens next.
    let Some(patient_id) = accounts.take_invitation(&code_hash, now).await? else {
        return Ok(not_accepted(form));
    };
    let new = NewAccount {
        username,
        role: Some(Role::Patient),
        patient_id: Some(patient_id),
        nhs_number,
        identity_level: Some(IdentityLevel::P9),
        ..NewAccount::default()
    };
    let account = match provision::create_account(
        state.store.as_ref(),
        &state.passwords,
        new,
        &form.password,
        now,
    )
    .await?
    {
        Ok(a) => a,
        Err(Refusal::UsernameTaken) => {
            return Ok(invitation_page(
                StatusCode::BAD_REQUEST,
                state,
                &pre,
                Errors::one("username", t.username_taken),
                form,
            ))
        }
        Err(_) => return Ok(not_accepted(form)),
    };
    audit::log(state, &[Event::Registered], Some(&account), ip).await?;
    signed_in_to_set_up(state, headers, &account.account_id).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_nhs_number_is_taken_from_a_valid_identifier_only() {
        let p = json!({"identifier": [
            {"system": "https://example.org/mrn", "value": "9434765919"},
            {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "943 476 5919"}]});
        assert_eq!(nhs_number_of(&p).as_deref(), Some("9434765919"));
        let bad = json!({"identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9434765918"}]});
        assert_eq!(nhs_number_of(&bad), None);
        assert_eq!(nhs_number_of(&json!({})), None);
    }
}
