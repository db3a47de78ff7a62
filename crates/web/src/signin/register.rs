//! Patient registration by NHS number (`GET/POST /register`): NHS number, date of birth,
//! postcode, and a username and password of the person's choosing.
//!
//! The details must match one Patient: the NHS number (Modulus 11 checked) finds it, the date of
//! birth must equal its `birthDate`, and the postcode must equal the `postalCode` of any of its
//! addresses (compared in upper case without spaces). Every mismatch — no such NHS number, a
//! wrong date or postcode, a patient who has an account already — gets the same answer, so the
//! form tells nothing about who is on the record; attempts are limited per IP address
//! (`INVITATION_PER_IP`, the onboarding limit). Only once the details match is the username
//! checked for availability, so the form cannot be used to probe usernames without them.
//!
//! The account is a patient account at identity level **P5**: the three details are known to
//! more people than the patient (family, anyone holding an old letter), so it gets the reduced
//! view the access policy gives P5 until the identity is checked further (NHS login at P9, or
//! an invitation sent to the registered address). Then straight to setting up the second
//! factor.

use askama::Template;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use axum::Form;
use fhir::nhs_number::NhsNumber;
use identity::password::check_strength;
use identity::ratelimit::rules::INVITATION_PER_IP;
use serde::Deserialize;
use serde_json::Value;
use store::accounts::{IdentityLevel, Role};

use super::audit::{self, Event};
use super::date_of_birth::{self, DateProblem};
use super::provision::{self, NewAccount, Refusal};
use super::{limits, REGISTER_PATH, TOTP_PATH};
use crate::client_ip::ClientIp;
use crate::csrf::{self, PreSession};
use crate::session;
use crate::ui::{self, text, Errors, Layout, Text};
use crate::{AppState, WebError};

#[derive(Template)]
#[template(path = "register.html")]
pub struct RegisterPage {
    pub layout: Layout,
    pub t: &'static Text,
    pub errors: Errors,
    pub csrf: String,
    pub form: RegisterForm,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RegisterForm {
    pub csrf: String,
    pub nhs_number: String,
    pub dob_day: String,
    pub dob_month: String,
    pub dob_year: String,
    pub postcode: String,
    pub username: String,
    pub password: String,
}

/// A postcode as compared: upper case, no spaces.
pub fn normalise_postcode(postcode: &str) -> String {
    postcode
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_uppercase)
        .collect()
}

/// Whether `patient` was born on `dob` and has an address with `postcode`.
pub fn patient_matches(patient: &Value, dob: chrono::NaiveDate, postcode: &str) -> bool {
    let born = patient["birthDate"].as_str() == Some(dob.format("%Y-%m-%d").to_string().as_str());
    let wanted = normalise_postcode(postcode);
    let lives = patient["address"].as_array().is_some_and(|addresses| {
        addresses.iter().any(|a| {
            a["postalCode"]
                .as_str()
                .is_some_and(|p| !wanted.is_empty() && normalise_postcode(p) == wanted)
        })
    });
    born && lives
}

fn register_page(
    status: StatusCode,
    state: &AppState,
    pre: &PreSession,
    errors: Errors,
    form: RegisterForm,
) -> Response {
    let t = text::current();
    let page = RegisterPage {
        layout: Layout::new(t.register_title, errors.has_errors()),
        t,
        errors,
        csrf: pre.token(REGISTER_PATH),
        form: RegisterForm {
            password: String::new(),
            csrf: String::new(),
            ..form
        },
    };
    pre.set_cookie(state.cookies(), ui::page(status, &page))
}

/// `GET /register`.
pub async fn show(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let pre = PreSession::for_form(&headers, state.cookies());
    register_page(
        StatusCode::OK,
        &state,
        &pre,
        Errors::new(),
        RegisterForm::default(),
    )
}

/// `POST /register`.
pub async fn submit(
    State(state): State<AppState>,
    ip: ClientIp,
    headers: HeaderMap,
    Form(form): Form<RegisterForm>,
) -> Response {
    ui::respond(register(&state, &ip, &headers, form).await)
}

/// Checks the fields that need no lookup: NHS number, date of birth, postcode, username and
/// password. The parsed NHS number and date when all are right.
fn check_fields(
    state: &AppState,
    form: &RegisterForm,
    errors: &mut Errors,
) -> Option<(NhsNumber, chrono::NaiveDate)> {
    let t = text::current();
    let nhs = if form.nhs_number.trim().is_empty() {
        errors.add("nhs_number", t.enter_nhs_number);
        None
    } else {
        NhsNumber::parse(&form.nhs_number)
            .map_err(|_| errors.add("nhs_number", t.nhs_number_invalid))
            .ok()
    };
    let dob = check_date_of_birth(
        state,
        &form.dob_day,
        &form.dob_month,
        &form.dob_year,
        errors,
    );
    if form.postcode.trim().is_empty() {
        errors.add("postcode", t.enter_postcode);
    }
    check_new_credentials(&form.username, &form.password, errors);
    match (nhs, dob) {
        (Some(n), Some(d)) if errors.is_empty() => Some((n, d)),
        _ => None,
    }
}

/// The date of birth from its three fields, or its error on the day field.
pub fn check_date_of_birth(
    state: &AppState,
    day: &str,
    month: &str,
    year: &str,
    errors: &mut Errors,
) -> Option<chrono::NaiveDate> {
    let t = text::current();
    match date_of_birth::parse(day, month, year, state.now().date_naive()) {
        Ok(d) => Some(d),
        Err(DateProblem::Missing) => {
            errors.add("dob_day", t.enter_date_of_birth);
            None
        }
        Err(DateProblem::Invalid) => {
            errors.add("dob_day", t.date_of_birth_invalid);
            None
        }
    }
}

/// The chosen username and password: acceptable, and the password strong enough.
pub fn check_new_credentials(username: &str, password: &str, errors: &mut Errors) {
    let t = text::current();
    let normalised = provision::normalise_username(username);
    if normalised.is_none() {
        errors.add("username", t.username_invalid);
    }
    if password.is_empty() {
        errors.add("password", t.enter_new_password);
    } else if let Err(w) = check_strength(password, &[normalised.as_deref().unwrap_or(username)]) {
        errors.add("password", t.weakness(w));
    }
}

async fn register(
    state: &AppState,
    ip: &ClientIp,
    headers: &HeaderMap,
    form: RegisterForm,
) -> Result<Response, WebError> {
    let t = text::current();
    let pre = csrf::check_pre_session(headers, state.cookies(), REGISTER_PATH, &form.csrf)?;
    let mut errors = Errors::new();
    let Some((nhs, dob)) = check_fields(state, &form, &mut errors) else {
        return Ok(register_page(
            StatusCode::BAD_REQUEST,
            state,
            &pre,
            errors,
            form,
        ));
    };
    if !limits::allow(state, &limits::register_ip_key(ip), &INVITATION_PER_IP).await? {
        return Err(WebError::TooManyRequests(
            "too many registration attempts from this address".into(),
        ));
    }
    let not_matched = |form: RegisterForm| {
        register_page(
            StatusCode::BAD_REQUEST,
            state,
            &pre,
            Errors::one("nhs_number", t.details_not_matched),
            form,
        )
    };
    let store = state.store.as_ref();
    let patient = match provision::patient_by_nhs_number(store, &nhs).await? {
        Some(p) if patient_matches(&p.resource, dob, &form.postcode) => p,
        _ => return Ok(not_matched(form)),
    };
    if store
        .accounts()
        .account_by_nhs_number(&nhs.digits())
        .await?
        .is_some()
    {
        return Ok(not_matched(form));
    }
    let new = NewAccount {
        username: form.username.clone(),
        role: Some(Role::Patient),
        patient_id: Some(patient.id),
        nhs_number: Some(nhs.digits()),
        identity_level: Some(IdentityLevel::P5),
        ..NewAccount::default()
    };
    let account =
        match provision::create_account(store, &state.passwords, new, &form.password, state.now())
            .await?
        {
            Ok(a) => a,
            Err(Refusal::UsernameTaken) => {
                return Ok(register_page(
                    StatusCode::BAD_REQUEST,
                    state,
                    &pre,
                    Errors::one("username", t.username_taken),
                    form,
                ))
            }
            Err(_) => return Ok(not_matched(form)),
        };
    audit::log(state, &[Event::Registered], Some(&account), ip).await?;
    signed_in_to_set_up(state, headers, &account.account_id).await
}

/// After registration: a half-signed-in session (password known, no second factor yet), sent
/// to set up the authenticator app.
pub async fn signed_in_to_set_up(
    state: &AppState,
    headers: &HeaderMap,
    account_id: &str,
) -> Result<Response, WebError> {
    let old = session::token_of(state, headers);
    let (token, _) = session::start(state, account_id, false, old.as_deref()).await?;
    let mut res = ui::see_other(TOTP_PATH);
    if let Some(cookie) = state.cookies().set_session(&token) {
        res.headers_mut().append(header::SET_COOKIE, cookie);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dob() -> chrono::NaiveDate {
        chrono::NaiveDate::from_ymd_opt(1984, 3, 5).unwrap_or_default()
    }

    #[test]
    fn postcodes_compare_without_case_or_spaces() {
        assert_eq!(normalise_postcode(" ls1  4ap "), "LS14AP");
        let p = json!({"birthDate": "1984-03-05", "address": [{"postalCode": "LS99 9ZZ"}, {"postalCode": "LS1 4AP"}]});
        assert!(patient_matches(&p, dob(), "ls14ap"));
        assert!(!patient_matches(&p, dob(), "LS1 4AQ"));
        assert!(!patient_matches(&p, dob(), ""));
    }

    #[test]
    fn the_date_of_birth_must_be_the_records_exact_day() {
        let p = json!({"birthDate": "1984-03-05", "address": [{"postalCode": "LS1 4AP"}]});
        let other = chrono::NaiveDate::from_ymd_opt(1984, 3, 6).unwrap_or_default();
        assert!(!patient_matches(&p, other, "LS1 4AP"));
        let partial = json!({"birthDate": "1984", "address": [{"postalCode": "LS1 4AP"}]});
        assert!(!patient_matches(&partial, dob(), "LS1 4AP"));
        let no_address = json!({"birthDate": "1984-03-05"});
        assert!(!patient_matches(&no_address, dob(), "LS1 4AP"));
    }
}
