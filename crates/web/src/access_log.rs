//! "Who has looked at my record" (`GET /account/access-log`): a patient's audit trail in plain
//! words, newest first, with emergency (break-glass) access highlighted and its reason shown.
//!
//! A patient sees the records about their own record. A proxy sees them for the person they act
//! for only when their grant includes the audit feature (the access policy's rule, asked here
//! as for any other read of that person's data). Who acted is shown as a person would recognise
//! them — "You", the proxy's name, "Staff at {organisation}", the app's or system's name — never
//! as internal ids.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use store::accounts::Role;
use store::audit::{AgentKind, AuditAction, AuditRecord};
use store::Store;

use crate::session::CurrentUser;
use crate::ui::{self, text, Text};
use crate::{AppState, WebError};

/// The page's path.
pub const ACCESS_LOG_PATH: &str = "/account/access-log";

/// Entries per page.
const PAGE: usize = 50;

pub fn routes() -> Router<AppState> {
    Router::new().route(ACCESS_LOG_PATH, get(show))
}

/// One line of the page.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub when: String,
    pub who: String,
    pub what: String,
    pub emergency: bool,
    pub reason: Option<String>,
    pub refused: bool,
}

#[derive(Template)]
#[template(path = "access_log.html")]
pub struct AccessLogPage {
    pub layout: ui::Layout,
    pub t: &'static Text,
    pub entries: Vec<Entry>,
    pub older: Option<String>,
    pub whose: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PageQuery {
    before: Option<i64>,
}

async fn show(
    State(state): State<AppState>,
    user: CurrentUser,
    RawQuery(query): RawQuery,
) -> Response {
    ui::respond(page(&state, &user, query.as_deref()).await)
}

async fn page(
    state: &AppState,
    user: &CurrentUser,
    query: Option<&str>,
) -> Result<Response, WebError> {
    let t = text::current();
    let q: PageQuery = query
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default();
    let store = state.store.as_ref();
    // Whose trail: a patient's own, or (with the audit feature) the person a proxy acts for.
    let (patient, whose) = match user.account.role {
        Role::Patient => (user.account.patient_id.clone(), None),
        Role::Proxy => match proxy_patient(state, user).await? {
            Some((patient, name)) => (Some(patient), Some(name)),
            None => (None, None),
        },
        _ => (None, None),
    };
    let Some(patient) = patient else {
        return Err(WebError::NotFound(t.access_log.none_to_show.into()));
    };
    let found = store.audit_for_patient(&patient, q.before, PAGE).await?;
    let mut names = Names::default();
    let mut entries = Vec::with_capacity(found.entries.len());
    for e in &found.entries {
        // A record that cannot be read back is shown as such rather than hidden.
        match e.record() {
            Ok(record) => entries.push(describe(store, t, user, &record, &mut names).await?),
            Err(_) => entries.push(Entry {
                when: String::new(),
                who: String::new(),
                what: t.access_log.unreadable.into(),
                emergency: false,
                reason: None,
                refused: false,
            }),
        }
    }
    let template = AccessLogPage {
        layout: user.layout(t.access_log.title, false),
        t,
        entries,
        older: found
            .next_before
            .map(|b| format!("{ACCESS_LOG_PATH}?before={b}")),
        whose,
    };
    Ok(ui::page(StatusCode::OK, &template))
}

/// The patient a proxy acts for, and their name, when the grant lets the proxy see the trail.
async fn proxy_patient(
    state: &AppState,
    user: &CurrentUser,
) -> Result<Option<(String, String)>, WebError> {
    let Some(rp) = user.account.related_person_id.as_deref() else {
        return Ok(None);
    };
    let Some(v) = state.store.read("RelatedPerson", rp).await? else {
        return Ok(None);
    };
    if v.deleted {
        return Ok(None);
    }
    let Some(grant) = policy::proxy_grant(&v.parse()?) else {
        return Ok(None);
    };
    let today = crate::access::london_today(state.now());
    if !grant.is_active(today) || !grant.features.contains(policy::Feature::Audit) {
        return Ok(None);
    }
    let name = person_name(state.store.as_ref(), "Patient", &grant.patient)
        .await?
        .unwrap_or_default();
    Ok(Some((grant.patient, name)))
}

/// Names already looked up for this page.
#[derive(Default)]
struct Names {
    organisations: HashMap<String, String>,
    people: HashMap<String, String>,
    apps: HashMap<String, String>,
}

async fn describe(
    store: &dyn Store,
    t: &'static Text,
    user: &CurrentUser,
    r: &AuditRecord,
    names: &mut Names,
) -> Result<Entry, WebError> {
    let l = &t.access_log;
    let who = match r.agent_kind {
        _ if r.agent == user.account.account_id => l.you.to_string(),
        AgentKind::Patient => l.the_patient.to_string(),
        AgentKind::Proxy => {
            let name = match names.people.get(&r.agent) {
                Some(n) => n.clone(),
                None => {
                    let n = proxy_name(store, &r.agent).await?.unwrap_or_default();
                    names.people.insert(r.agent.clone(), n.clone());
                    n
                }
            };
            if name.is_empty() {
                l.someone_acting.to_string()
            } else {
                l.named_acting.replace("{name}", &name)
            }
        }
        AgentKind::Staff => {
            let org = match &r.organisation {
                Some(code) => organisation_name(store, code, names).await?,
                None => String::new(),
            };
            l.staff_at.replace("{organisation}", &org)
        }
        AgentKind::App => {
            let client = r.agent.split_once('/').map(|(_, c)| c).unwrap_or("");
            let name = match names.apps.get(client) {
                Some(n) => n.clone(),
                None => {
                    let n = store
                        .accounts()
                        .smart_app(client)
                        .await?
                        .map(|a| a.name)
                        .unwrap_or_default();
                    names.apps.insert(client.to_string(), n.clone());
                    n
                }
            };
            l.app.replace("{app}", &name)
        }
        AgentKind::System => {
            let name = store
                .api_client(&r.agent)
                .await?
                .map(|c| c.name)
                .unwrap_or_else(|| r.agent.clone());
            l.system.replace("{system}", &name)
        }
        AgentKind::Admin => l.admin.to_string(),
        AgentKind::Portico => l.portico.to_string(),
        AgentKind::Anonymous => l.unknown.to_string(),
    };
    let thing = r
        .entity
        .as_deref()
        .map(|e| e.split(['/', '?']).next().unwrap_or(""))
        .map(|ty| l.thing(ty))
        .unwrap_or(l.record);
    let what = l.action(r.action).replace("{thing}", thing);
    Ok(Entry {
        when: crate::ui::london::date_time(r.recorded),
        who,
        what,
        emergency: r.is_break_glass(),
        reason: r.reason.clone(),
        refused: r.outcome != store::audit::AuditOutcome::Success,
    })
}

async fn organisation_name(
    store: &dyn Store,
    ods: &str,
    names: &mut Names,
) -> Result<String, WebError> {
    if let Some(n) = names.organisations.get(ods) {
        return Ok(n.clone());
    }
    let params = vec![(
        "identifier".to_string(),
        format!("{}|{ods}", policy::codes::ODS_ORGANISATION),
    )];
    let name = match store::query::parse("Organization", &params, &Default::default()) {
        Ok(q) => store
            .search(&q)
            .await?
            .matches
            .first()
            .and_then(|v| v.parse().ok())
            .and_then(|v| v.get("name").and_then(|n| n.as_str()).map(str::to_string)),
        Err(_) => None,
    }
    .unwrap_or_else(|| ods.to_string());
    names.organisations.insert(ods.to_string(), name.clone());
    Ok(name)
}

/// The display name of a proxy account's RelatedPerson.
async fn proxy_name(store: &dyn Store, account_id: &str) -> Result<Option<String>, WebError> {
    let Some(account) = store.accounts().account_by_id(account_id).await? else {
        return Ok(None);
    };
    match account.related_person_id {
        Some(rp) => person_name(store, "RelatedPerson", &rp).await,
        None => Ok(None),
    }
}

/// "Given Family" of a Patient or RelatedPerson.
async fn person_name(
    store: &dyn Store,
    resource_type: &str,
    id: &str,
) -> Result<Option<String>, WebError> {
    let Some(v) = store.read(resource_type, id).await? else {
        return Ok(None);
    };
    if v.deleted {
        return Ok(None);
    }
    let value = v.parse()?;
    let name = value.get("name").and_then(|n| n.get(0));
    let given = name
        .and_then(|n| n.get("given"))
        .and_then(|g| g.get(0))
        .and_then(|g| g.as_str());
    let family = name.and_then(|n| n.get("family")).and_then(|f| f.as_str());
    let parts: Vec<&str> = [given, family].into_iter().flatten().collect();
    Ok((!parts.is_empty()).then(|| parts.join(" ")))
}

/// The words of this page ([`Text::access_log`]).
#[derive(Debug)]
pub struct AccessLogText {
    pub title: &'static str,
    pub intro: &'static str,
    /// `{name}` is the person's name.
    pub intro_for: &'static str,
    pub empty: &'static str,
    pub none_to_show: &'static str,
    pub unreadable: &'static str,
    pub when: &'static str,
    pub who: &'static str,
    pub what: &'static str,
    pub emergency_tag: &'static str,
    pub refused_tag: &'static str,
    pub reason: &'static str,
    pub older: &'static str,
    pub you: &'static str,
    pub the_patient: &'static str,
    pub someone_acting: &'static str,
    pub named_acting: &'static str,
    pub staff_at: &'static str,
    pub app: &'static str,
    pub system: &'static str,
    pub admin: &'static str,
    pub portico: &'static str,
    pub unknown: &'static str,
    pub record: &'static str,
    /// `(resource type, words)`: what a kind of data is called.
    pub things: &'static [(&'static str, &'static str)],
    /// `(action, words)` with `{thing}`.
    pub actions: &'static [(AuditAction, &'static str)],
    pub other_action: &'static str,
}

impl AccessLogText {
    pub fn thing(&self, resource_type: &str) -> &'static str {
        self.things
            .iter()
            .find(|(t, _)| *t == resource_type)
            .map(|(_, w)| *w)
            .unwrap_or(self.record)
    }

    pub fn action(&self, action: AuditAction) -> &'static str {
        self.actions
            .iter()
            .find(|(a, _)| *a == action)
            .map(|(_, w)| *w)
            .unwrap_or(self.other_action)
    }
}

pub const EN_GB: AccessLogText = AccessLogText {
    title: "Who has looked at your record",
    intro: "Every time someone looks at or changes your health record in Portico, it is written down here. Newest first.",
    intro_for: "Every time someone looks at or changes {name}'s health record in Portico, it is written down here. Newest first.",
    empty: "No one has looked at the record yet.",
    none_to_show: "There is no record to show for this account.",
    unreadable: "An entry that could not be read. Contact us if you see this.",
    when: "When",
    who: "Who",
    what: "What",
    emergency_tag: "Emergency access",
    refused_tag: "Refused",
    reason: "Reason given:",
    older: "Older entries",
    you: "You",
    the_patient: "The patient",
    someone_acting: "Someone who acts for you",
    named_acting: "{name}, who acts for you",
    staff_at: "Staff at {organisation}",
    app: "An app you connected: {app}",
    system: "A connected system: {system}",
    admin: "A Portico administrator",
    portico: "Portico, updating the record from another system",
    unknown: "Someone who was not signed in",
    record: "part of the record",
    things: &[
        ("Patient", "personal details"),
        ("Observation", "a test result or measurement"),
        ("DiagnosticReport", "a test report"),
        ("Condition", "a health problem"),
        ("AllergyIntolerance", "an allergy"),
        ("MedicationRequest", "a medicine"),
        ("MedicationStatement", "a medicine"),
        ("Immunization", "a vaccination"),
        ("Encounter", "a visit"),
        ("Appointment", "an appointment"),
        ("ServiceRequest", "a referral"),
        ("Task", "a task"),
        ("DocumentReference", "a letter or document"),
        ("Binary", "a letter or document"),
        ("Communication", "a message"),
        ("QuestionnaireResponse", "a questionnaire answer"),
        ("Consent", "a consent choice"),
        ("RelatedPerson", "someone who acts for you"),
        ("Flag", "a flag on the record"),
    ],
    actions: &[
        (AuditAction::Read, "Looked at {thing}"),
        (AuditAction::Vread, "Looked at an earlier version of {thing}"),
        (AuditAction::Search, "Searched the record for {thing}"),
        (AuditAction::History, "Looked at the history of {thing}"),
        (AuditAction::Everything, "Looked at the whole record"),
        (AuditAction::Export, "Copied the record"),
        (AuditAction::BinaryContent, "Opened {thing}"),
        (AuditAction::Create, "Added {thing}"),
        (AuditAction::Update, "Changed {thing}"),
        (AuditAction::Delete, "Removed {thing}"),
        (AuditAction::BreakGlass, "Opened the record in an emergency"),
        (AuditAction::SignIn, "Signed in"),
        (AuditAction::SignInFailed, "Tried to sign in"),
        (AuditAction::SignOut, "Signed out"),
        (AuditAction::GrantApp, "Connected an app"),
        (AuditAction::RevokeApp, "Disconnected an app"),
        (AuditAction::CredentialChange, "Changed how they sign in"),
    ],
    other_action: "Used {thing}",
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::london::date_time as london;
    use chrono::TimeZone;

    #[test]
    fn times_are_shown_in_london_across_the_clock_change() {
        let winter = chrono::Utc.with_ymd_and_hms(2026, 1, 15, 15, 4, 0).unwrap();
        assert_eq!(london(winter), "15 January 2026, 3:04pm");
        let summer = chrono::Utc.with_ymd_and_hms(2026, 7, 1, 8, 30, 0).unwrap();
        assert_eq!(london(summer), "1 July 2026, 9:30am");
        // 29 March 2026: clocks go forward at 01:00 UTC.
        let before = chrono::Utc.with_ymd_and_hms(2026, 3, 29, 0, 59, 0).unwrap();
        let after = chrono::Utc.with_ymd_and_hms(2026, 3, 29, 1, 0, 0).unwrap();
        assert_eq!(london(before), "29 March 2026, 12:59am");
        assert_eq!(london(after), "29 March 2026, 2:00am");
    }

    #[test]
    fn every_action_and_common_type_has_plain_words() {
        let l = &EN_GB;
        assert_eq!(
            l.action(AuditAction::Read)
                .replace("{thing}", l.thing("Observation")),
            "Looked at a test result or measurement"
        );
        assert_eq!(l.thing("NoSuchType"), l.record);
        for (ty, words) in l.things {
            assert!(
                fhir::is_supported_type(ty) || *ty == "Binary",
                "{ty} is a type we serve"
            );
            assert!(!words.is_empty());
        }
        assert_eq!(l.action(AuditAction::SignIn), "Signed in");
    }
}
