//! `GET /oauth/authorize` (the consent screen) and `POST /oauth/authorize` (the person's
//! answer): the authorisation code flow of SMART App Launch, standalone launch.
//!
//! The request is checked first ([`super::request`]: problems before the client and redirect
//! URI are known good are a page, later ones go back to the app). Then the person must be fully
//! signed in (password and second factor); otherwise they sign in and come back here (`next=`
//! this URL). The consent screen names the app, says in plain words what it will be able to
//! see and do ([`super::describe`]), for whom ([`super::patients`]), and what it asked for but
//! will not get ([`super::grantable`]). It posts back with an anti-forgery token; the POST checks
//! everything again, since nothing in a form can be trusted.
//!
//! Allow: a grant (the "connected app", replacing an earlier one of the same app for the same
//! record) and a code for it ([`super::code`]), then back to the app with `code` and `state`.
//! Do not allow: back to the app with `error=access_denied`. Both are audited when granted.

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Form;
use identity::token::hash_token;
use store::accounts::{Account, OAuthCode, OAuthGrant, Role};
use store::audit::{AuditAction, AuditOutcome, AuditRecord};
use url::Url;

use super::code::{self, CODE_TTL};
use super::patients::{self, Candidate};
use super::request::{self, AuthRequest, PageProblem, Refusal, CARRIED};
use super::{describe, FormTarget, AUTHORIZE_PATH};
use crate::client_ip::ClientIp;
use crate::session::{self, CurrentUser};
use crate::signin::next::{login_with_next, with_next};
use crate::signin::SECOND_FACTOR_PATH;
use crate::ui::{self, text, Layout, MessagePage, Text};
use crate::{csrf, AppState, WebError};

#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage {
    pub layout: Layout,
    pub t: &'static Text,
    pub heading: String,
    /// What the app will be able to do, in plain words.
    pub can: Vec<String>,
    /// Scopes asked for and not granted, as written.
    pub dropped: Vec<String>,
    pub whose: Option<&'static str>,
    /// The people a proxy chooses between (empty: no choice to make).
    pub people: Vec<Candidate>,
    pub csrf: String,
    pub carried: Vec<(&'static str, String)>,
}

/// The page for a request that cannot be answered to the app (400, never a redirect).
fn problem_page(problem: PageProblem) -> Response {
    let t = text::current();
    let body = match problem {
        PageProblem::UnknownClient => t.smart.oauth_unknown_client,
        PageProblem::BadRedirect => t.smart.oauth_bad_redirect,
        PageProblem::Malformed => t.smart.oauth_malformed,
    };
    let page = MessagePage {
        layout: Layout::new(t.smart.oauth_error_title, false),
        heading: t.smart.oauth_error_title,
        body,
        reference: None,
    };
    ui::page(StatusCode::BAD_REQUEST, &page)
}

/// 302 to a registered redirect URI with `params` added to its query.
fn back_to_app(redirect_uri: &str, params: &[(&str, &str)]) -> Response {
    let Ok(mut url) = Url::parse(redirect_uri) else {
        return problem_page(PageProblem::BadRedirect);
    };
    {
        let mut query = url.query_pairs_mut();
        for (name, value) in params {
            query.append_pair(name, value);
        }
    }
    match HeaderValue::from_str(url.as_str()) {
        Ok(location) => {
            let mut res = StatusCode::FOUND.into_response();
            res.headers_mut().insert(header::LOCATION, location);
            res
        }
        Err(_) => problem_page(PageProblem::BadRedirect),
    }
}

fn refused(refusal: Refusal) -> Response {
    match refusal {
        Refusal::Page(problem) => problem_page(problem),
        Refusal::Redirect {
            redirect_uri,
            state,
            error,
            description,
        } => {
            let mut params = vec![
                ("error", error),
                ("error_description", description.as_str()),
            ];
            if let Some(s) = &state {
                params.push(("state", s.as_str()));
            }
            back_to_app(&redirect_uri, &params)
        }
    }
}

/// The query or form as name-value pairs; None when it cannot be decoded.
fn pairs(raw: &str) -> Option<Vec<(String, String)>> {
    serde_urlencoded::from_str(raw).ok()
}

/// `GET /oauth/authorize`.
pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(params) = pairs(query.as_deref().unwrap_or_default()) else {
        return problem_page(PageProblem::Malformed);
    };
    let req = match request::parse(&state, &params).await {
        Ok(req) => req,
        Err(refusal) => return refused(refusal),
    };
    let active = match session::active(&state, &headers).await {
        Ok(active) => active,
        Err(e) => return ui::failure(e),
    };
    let user = match active {
        None => return ui::see_other(&login_with_next(&uri)),
        Some(a) if !a.session.second_factor_done => {
            let here = uri.path_and_query().map(|pq| pq.as_str()).unwrap_or("/");
            return ui::see_other(&with_next(SECOND_FACTOR_PATH, here));
        }
        Some(a) => CurrentUser {
            account: a.account,
            session: a.session,
        },
    };
    ui::respond(consent(&state, &user, &req).await)
}

async fn consent(
    state: &AppState,
    user: &CurrentUser,
    req: &AuthRequest,
) -> Result<Response, WebError> {
    let t = text::current();
    let people = patients::candidates(state.store.as_ref(), &user.account).await?;
    let decision = match req.decide(user.account.role, !people.is_empty()) {
        Ok(d) => d,
        Err(refusal) => return Ok(refused(refusal)),
    };
    let whose = match user.account.role {
        Role::Patient if decision.needs_patient() => Some(t.smart.consent_whose_patient),
        Role::Clinician | Role::Clerical | Role::Admin => Some(t.smart.consent_whose_staff),
        _ => None,
    };
    let people = if user.account.role == Role::Proxy && decision.needs_patient() {
        people
    } else {
        Vec::new()
    };
    let page = ConsentPage {
        layout: user.layout(t.smart.consent_title, false),
        t,
        heading: t.smart.consent_heading.replace("{app}", &req.app.name),
        can: describe::describe(&t.smart, &decision.scope()),
        dropped: decision.dropped.clone(),
        whose,
        people,
        csrf: user.csrf(AUTHORIZE_PATH),
        carried: req.params.clone(),
    };
    let mut res = ui::page(StatusCode::OK, &page);
    // The answer to this form redirects to the app: the page's CSP must allow that target.
    if let Some(origin) = Url::parse(&req.redirect_uri)
        .ok()
        .map(|u| u.origin().ascii_serialization())
    {
        res.extensions_mut().insert(FormTarget(origin));
    }
    Ok(res)
}

/// `POST /oauth/authorize`: Allow or Do not allow.
pub async fn answer(
    State(state): State<AppState>,
    ip: ClientIp,
    user: CurrentUser,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    ui::respond(answer_inner(&state, &ip, &user, fields).await)
}

async fn answer_inner(
    state: &AppState,
    ip: &ClientIp,
    user: &CurrentUser,
    fields: Vec<(String, String)>,
) -> Result<Response, WebError> {
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    csrf::check(
        &user.session.csrf_secret,
        AUTHORIZE_PATH,
        field("csrf").unwrap_or_default(),
    )?;
    let carried: Vec<(String, String)> = fields
        .iter()
        .filter(|(k, _)| CARRIED.contains(&k.as_str()))
        .cloned()
        .collect();
    let req = match request::parse(state, &carried).await {
        Ok(req) => req,
        Err(refusal) => return Ok(refused(refusal)),
    };
    match field("decision") {
        Some("approve") => {}
        Some("deny") => {
            return Ok(refused(
                req.refuse("access_denied", "the person did not allow the app"),
            ))
        }
        _ => return Ok(problem_page(PageProblem::Malformed)),
    }
    let people = patients::candidates(state.store.as_ref(), &user.account).await?;
    let decision = match req.decide(user.account.role, !people.is_empty()) {
        Ok(d) => d,
        Err(refusal) => return Ok(refused(refusal)),
    };
    let patient_id = if decision.needs_patient() {
        match chosen(&people, field("patient")) {
            Some(id) => Some(id),
            None => return Ok(problem_page(PageProblem::Malformed)),
        }
    } else {
        None
    };
    let code = approve(state, user, &req, decision.scope(), patient_id, ip).await?;
    let mut params = vec![("code", code.as_str())];
    if let Some(s) = &req.state {
        params.push(("state", s.as_str()));
    }
    Ok(back_to_app(&req.redirect_uri, &params))
}

/// The patient the person chose, if they may choose them; with one person to choose from and
/// no choice sent (a patient's own record), that person.
fn chosen(people: &[Candidate], asked: Option<&str>) -> Option<String> {
    match asked {
        Some(id) => people.iter().find(|p| p.patient_id == id),
        None if people.len() == 1 => people.first(),
        None => None,
    }
    .map(|p| p.patient_id.clone())
}

/// Records the grant (retiring the app's earlier grant for the same record) and its code;
/// the code.
async fn approve(
    state: &AppState,
    user: &CurrentUser,
    req: &AuthRequest,
    scopes: String,
    patient_id: Option<String>,
    ip: &ClientIp,
) -> Result<String, WebError> {
    let accounts = state.store.accounts();
    let account = &user.account;
    let now = state.now();
    for old in accounts.active_grants(&account.account_id).await? {
        if old.client_id == req.app.client_id && old.patient_id == patient_id {
            accounts.revoke_grant(&old.grant_id, now).await?;
            accounts.revoke_refresh_tokens(&old.grant_id, now).await?;
        }
    }
    let grant = OAuthGrant {
        grant_id: uuid::Uuid::new_v4().to_string(),
        account_id: account.account_id.clone(),
        client_id: req.app.client_id.clone(),
        scopes: scopes.clone(),
        patient_id: patient_id.clone(),
        created_at: now,
        revoked_at: None,
    };
    accounts.create_grant(&grant).await?;
    let code = code::new_code(&grant.grant_id, req.nonce.as_deref());
    accounts
        .insert_oauth_code(&OAuthCode {
            code_hash: hash_token(&code),
            client_id: req.app.client_id.clone(),
            account_id: account.account_id.clone(),
            redirect_uri: req.redirect_uri.clone(),
            scopes,
            code_challenge: req.code_challenge.clone(),
            patient_id,
            created_at: now,
            expires_at: now + CODE_TTL,
            used_at: None,
        })
        .await?;
    state
        .store
        .append_audit(vec![app_audit(
            account,
            AuditAction::GrantApp,
            &grant,
            now,
            ip,
        )])
        .await?;
    Ok(code)
}

/// The audit record of a person connecting or disconnecting an app.
pub fn app_audit(
    account: &Account,
    action: AuditAction,
    grant: &OAuthGrant,
    now: chrono::DateTime<chrono::Utc>,
    ip: &ClientIp,
) -> AuditRecord {
    let for_someone_else = account.role == Role::Proxy;
    AuditRecord {
        recorded: now,
        agent_kind: crate::signin::audit::agent_kind(account.role),
        agent: account.account_id.clone(),
        organisation: account.ods_code.clone(),
        on_behalf_of: grant.patient_id.clone().filter(|_| for_someone_else),
        patient: grant.patient_id.clone(),
        action,
        entity: Some(grant.client_id.clone()),
        purpose: "app-consent".into(),
        reason: None,
        outcome: AuditOutcome::Success,
        status: Some(200),
        source: ip.0.map(|ip| ip.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(id: &str) -> Candidate {
        Candidate {
            patient_id: id.into(),
            label: id.into(),
        }
    }

    #[test]
    fn only_a_person_on_the_list_can_be_chosen() {
        let people = [person("a"), person("b")];
        assert_eq!(chosen(&people, Some("b")).as_deref(), Some("b"));
        assert_eq!(chosen(&people, Some("c")), None);
        assert_eq!(chosen(&people, None), None);
        assert_eq!(chosen(&people[..1], None).as_deref(), Some("a"));
        assert_eq!(chosen(&[], None), None);
    }

    #[test]
    fn errors_go_back_to_the_app_with_state_and_codes_keep_the_uri_query() {
        let res = back_to_app(
            "https://app.example/cb?tenant=1",
            &[("error", "access_denied"), ("state", "s 1&x")],
        );
        assert_eq!(res.status(), StatusCode::FOUND);
        let location = res
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert_eq!(
            location,
            "https://app.example/cb?tenant=1&error=access_denied&state=s+1%26x"
        );
    }
}
