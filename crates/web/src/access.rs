//! The access policy at the HTTP edge: who is asking ([`Requester`]: the policy's `Who` and the
//! audit context of the request), the facts the policy needs (loaded from the store here, so
//! that `policy::decide` stays pure), and the [`store::access::Access`] a query carries so that
//! the store filters rows in SQL.
//!
//! Every read goes through a filtered query, so a read and a search can never disagree: reading
//! `Type/id` is the search `_id=id` under the requester's filter for `Type`. A resource the
//! filter does not admit answers exactly as one that does not exist (404), so existence does not
//! leak.

use chrono::{DateTime, NaiveDate, Utc};
use policy::{
    Action, AgeRules, BreakGlass, Decision, Denial, Filter, IdentityLevel, PatientFacts, Scopes,
    StaffRole, Subject, Target, Who,
};
use store::access::Access;
use store::accounts::{Account, Role};
use store::audit::{AgentKind, AuditAction, AuditContext, AuditOutcome, AuditRecord};
use store::{Store, StoreError};

use crate::auth::{Principal, PrincipalKind};
use crate::client_ip::ClientIp;
use crate::error::WebError;
use crate::AppState;

/// Today's date in England and Wales (Europe/London), as ages and grant dates are counted.
pub fn london_today(now: DateTime<Utc>) -> NaiveDate {
    crate::ui::london::date(now)
}

/// Break-glass access is declared per request with this header (the reason, at least 10
/// characters) and [`BREAK_GLASS_PATIENT`] (the Patient id); it lasts for that request.
pub const BREAK_GLASS_REASON: &str = "portico-break-glass-reason";
pub const BREAK_GLASS_PATIENT: &str = "portico-break-glass-patient";

impl axum::extract::FromRequestParts<AppState> for Requester {
    type Rejection = WebError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let principal = Principal::from_request_parts(parts, state).await?;
        let Ok(ip) = ClientIp::from_request_parts(parts, state).await;
        let source = ip.0.map(|a| a.to_string());
        match principal.kind {
            PrincipalKind::System => {
                let text: Vec<&str> = principal.scopes.iter().map(|s| s.text.as_str()).collect();
                let scopes = Scopes::parse(&text.join(" "))
                    .map_err(|e| WebError::Forbidden(format!("the token's scopes: {e}")))?;
                Ok(Requester::system(&principal.client_id, scopes, source))
            }
            PrincipalKind::User(user) => {
                let store = state.store.as_ref();
                let revoked = || {
                    WebError::Unauthorized(
                        "the access token's grant was revoked or has ended; ask for a new token"
                            .into(),
                    )
                };
                if !crate::smart::grant_is_active(store, &user.grant_id).await {
                    return Err(revoked());
                }
                let account = store
                    .accounts()
                    .account_by_id(&user.account_id)
                    .await?
                    .filter(|a| a.status == store::accounts::AccountStatus::Active)
                    .ok_or_else(revoked)?;
                let header = |name: &str| {
                    parts
                        .headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .map(str::trim)
                        .filter(|v| !v.is_empty())
                        .map(str::to_string)
                };
                let now = state.now();
                let break_glass = match (header(BREAK_GLASS_REASON), header(BREAK_GLASS_PATIENT)) {
                    (Some(reason), Some(patient)) => {
                        let bg = BreakGlass {
                            patient,
                            reason,
                            expires: now + chrono::TimeDelta::minutes(15),
                        };
                        bg.validate(now)
                            .map_err(|e| WebError::BadRequest(fhir::Issue::error(fhir::IssueType::Invalid, e.to_string())))?;
                        Some(bg)
                    }
                    (None, None) => None,
                    _ => {
                        return Err(WebError::BadRequest(fhir::Issue::error(
                            fhir::IssueType::Required,
                            format!("break-glass access needs both {BREAK_GLASS_REASON} and {BREAK_GLASS_PATIENT}"),
                        )))
                    }
                };
                Requester::account(
                    store,
                    &account,
                    user.scopes,
                    Some(&principal.client_id),
                    source,
                    break_glass,
                )
                .await
            }
        }
    }
}

/// Who is asking, as the policy sees them, and how their accesses are audited.
#[derive(Debug, Clone)]
pub struct Requester {
    pub who: Who,
    pub audit: AuditContext,
}

impl Requester {
    /// A system API client.
    pub fn system(client_id: &str, scopes: Scopes, source: Option<String>) -> Requester {
        Requester {
            who: Who {
                subject: Subject::System {
                    client_id: client_id.to_string(),
                },
                scopes,
            },
            audit: AuditContext {
                agent_kind: AgentKind::System,
                agent: client_id.to_string(),
                organisation: None,
                on_behalf_of: None,
                purpose: "system".into(),
                reason: None,
                source,
            },
        }
    }

    /// A signed-in person (directly, or through an app they granted: `app` is its client id),
    /// limited to `scopes`. A proxy's grant is read from their RelatedPerson.
    pub async fn account(
        store: &dyn Store,
        account: &Account,
        scopes: Scopes,
        app: Option<&str>,
        source: Option<String>,
        break_glass: Option<BreakGlass>,
    ) -> Result<Requester, WebError> {
        let level = identity_level(account);
        let not_linked = |what: &str| {
            WebError::Forbidden(format!(
                "this account is not linked to a {what}; ask the organisation to link it"
            ))
        };
        let (subject, kind, purpose, on_behalf_of) = match account.role {
            Role::Patient => {
                let patient = account
                    .patient_id
                    .clone()
                    .ok_or_else(|| not_linked("patient record"))?;
                (
                    Subject::Patient {
                        patient,
                        identity_level: level,
                    },
                    AgentKind::Patient,
                    "patient-access",
                    None,
                )
            }
            Role::Proxy => {
                let id = account
                    .related_person_id
                    .as_deref()
                    .ok_or_else(|| not_linked("person they act for"))?;
                let grant = match store.read("RelatedPerson", id).await? {
                    Some(v) if !v.deleted => policy::proxy_grant(&v.parse()?),
                    _ => None,
                }
                .ok_or_else(|| not_linked("person they act for"))?;
                let patient = grant.patient.clone();
                (
                    Subject::Proxy {
                        grant,
                        identity_level: level,
                    },
                    AgentKind::Proxy,
                    "patient-access",
                    Some(patient),
                )
            }
            Role::Clinician | Role::Clerical => {
                let organisation = account
                    .ods_code
                    .clone()
                    .ok_or_else(|| not_linked("organisation"))?;
                (
                    Subject::Staff {
                        practitioner_role: account.practitioner_role_id.clone().unwrap_or_default(),
                        organisation,
                        role: if account.role == Role::Clinician {
                            StaffRole::Clinician
                        } else {
                            StaffRole::Clerical
                        },
                        break_glass: break_glass.clone(),
                    },
                    AgentKind::Staff,
                    if break_glass.is_some() {
                        "break-glass"
                    } else {
                        "treatment"
                    },
                    None,
                )
            }
            Role::Admin => (Subject::Admin, AgentKind::Admin, "operations", None),
        };
        Ok(Requester {
            who: Who { subject, scopes },
            audit: AuditContext {
                agent_kind: if app.is_some() { AgentKind::App } else { kind },
                agent: match app {
                    Some(client) => format!("{}/{client}", account.account_id),
                    None => account.account_id.clone(),
                },
                organisation: account.ods_code.clone(),
                on_behalf_of,
                purpose: purpose.to_string(),
                reason: break_glass.map(|b| b.reason),
                source,
            },
        })
    }

    /// The requester's own patient (patient or proxy), whose facts a query decision needs.
    pub fn own_patient(&self) -> Option<&str> {
        self.who.own_patient()
    }

    /// A record of `action` on `entity` with this request's context.
    pub fn record(
        &self,
        now: DateTime<Utc>,
        action: AuditAction,
        entity: Option<String>,
        patient: Option<String>,
        status: u16,
    ) -> AuditRecord {
        let outcome = match status {
            200..=399 => AuditOutcome::Success,
            401 | 403 | 404 => AuditOutcome::Denied,
            _ => AuditOutcome::Failed,
        };
        self.audit
            .record(now, action, entity, patient, outcome, Some(status))
    }
}

fn identity_level(account: &Account) -> IdentityLevel {
    match account.identity_level {
        store::accounts::IdentityLevel::P9 => IdentityLevel::P9,
        store::accounts::IdentityLevel::P5 => IdentityLevel::P5,
        store::accounts::IdentityLevel::P0 => IdentityLevel::P0,
    }
}

/// What the policy needs to know about a patient: birth date, the organisations related to
/// them and those their Consents refuse. None when there is no such (current) Patient.
pub async fn patient_facts(
    store: &dyn Store,
    patient_id: &str,
) -> Result<Option<PatientFacts>, StoreError> {
    let Some(patient) = store.read("Patient", patient_id).await? else {
        return Ok(None);
    };
    if patient.deleted {
        return Ok(None);
    }
    let value = patient.parse()?;
    let birth_date = value
        .get("birthDate")
        .and_then(serde_json::Value::as_str)
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
    Ok(Some(PatientFacts {
        id: patient_id.to_string(),
        birth_date,
        related_organisations: store::relationships::related_organisations(store, patient_id)
            .await?,
        refused_organisations: store::relationships::refused_organisations(store, patient_id)
            .await?,
        age_rules: AgeRules::default(),
    }))
}

/// The answer to a query-shaped decision: the filter, and whether it was break-glass access
/// (which the caller must audit as such and tell the patient about).
#[derive(Debug, Clone)]
pub struct Allowed {
    pub filter: Filter,
    pub break_glass: bool,
}

/// The policy's answer as an HTTP error: a denial that hides existence is the same 404 as a
/// resource that is not there.
pub fn denial_error(denial: Denial, resource_type: &str, id: Option<&str>) -> WebError {
    match denial {
        Denial::Unauthenticated => WebError::Unauthorized("sign in or send a bearer token".into()),
        Denial::Forbidden(why) => WebError::Forbidden(why),
        Denial::NotFound => match id {
            Some(id) => WebError::Store(StoreError::NotFound {
                resource_type: resource_type.to_string(),
                id: id.to_string(),
            }),
            None => WebError::NotFound(format!("{resource_type} not found")),
        },
    }
}

/// Decides a query over `resource_type` (a search, history, `$everything`, export, or the
/// filtered lookup behind a read): the filter its rows must pass.
pub fn decide_query(
    requester: &Requester,
    action: Action,
    resource_type: &str,
    patient: Option<&PatientFacts>,
    now: DateTime<Utc>,
    today: NaiveDate,
) -> Result<Allowed, Denial> {
    match policy::decide(
        &requester.who,
        action,
        Target::Query {
            resource_type,
            patient,
        },
        now,
        today,
    ) {
        Decision::Allow(filter) => Ok(Allowed {
            filter,
            break_glass: false,
        }),
        Decision::BreakGlass(access) => Ok(Allowed {
            filter: access.filter,
            break_glass: true,
        }),
        Decision::Deny(denial) => Err(denial),
    }
}

/// The [`Access`] of a query that returns `main` and may look into `others` (includes,
/// revincludes, chains): the main type's denial is the query's; another type denied is simply
/// filtered to nothing.
pub fn query_access(
    requester: &Requester,
    action: Action,
    main: &str,
    others: &[String],
    patient: Option<&PatientFacts>,
    now: DateTime<Utc>,
    today: NaiveDate,
) -> Result<(Access, bool), Denial> {
    let first = decide_query(requester, action, main, patient, now, today)?;
    let mut break_glass = first.break_glass;
    let mut access = Access::uniform(Filter::nothing()).with(main, first.filter);
    for other in others {
        if other == main {
            continue;
        }
        let filter = match decide_query(requester, Action::Search, other, patient, now, today) {
            Ok(a) => {
                break_glass |= a.break_glass;
                a.filter
            }
            Err(_) => Filter::nothing(),
        };
        access = access.with(other, filter);
    }
    Ok((access, break_glass))
}

/// One request's view of the policy: the requester, the clock read once, and the facts of the
/// patient the requester's queries are confined to (a patient's or proxy's own patient, which
/// every query decision of theirs needs; the patient a staff member breaks glass for).
pub struct Gate<'a> {
    pub state: &'a AppState,
    pub requester: &'a Requester,
    pub now: DateTime<Utc>,
    pub today: NaiveDate,
    own: Option<PatientFacts>,
}

impl<'a> Gate<'a> {
    /// Reads the clock and loads the own patient's facts.
    pub async fn new(state: &'a AppState, requester: &'a Requester) -> Result<Gate<'a>, WebError> {
        let now = state.now();
        // A break-glass request is confined to the patient it names: the policy lets staff
        // break glass only in queries about that one patient.
        let confined = requester
            .own_patient()
            .or(requester.break_glass().map(|b| b.patient.as_str()));
        let own = match confined {
            Some(p) => patient_facts(state.store.as_ref(), p).await?,
            None => None,
        };
        Ok(Gate {
            state,
            requester,
            now,
            today: london_today(now),
            own,
        })
    }

    pub fn store(&self) -> &dyn Store {
        self.state.store.as_ref()
    }

    /// [`query_access`] with the own patient's facts (or `patient`'s when given).
    pub fn query(
        &self,
        action: Action,
        main: &str,
        others: &[String],
        patient: Option<&PatientFacts>,
    ) -> Result<(Access, bool), Denial> {
        query_access(
            self.requester,
            action,
            main,
            others,
            patient.or(self.own.as_ref()),
            self.now,
            self.today,
        )
    }

    /// The filter of one lookup of `resource_type` by id (read, vread, instance history): a
    /// type history query, which needs the read permission rather than the search one.
    pub fn lookup(&self, resource_type: &str) -> Result<(Access, bool), Denial> {
        self.query(Action::History, resource_type, &[], None)
    }

    /// Decides `action` on a single resource (`new`: content about to be written; otherwise the
    /// stored version), loading the facts of the patients it belongs to.
    pub async fn decide_resource(
        &self,
        action: Action,
        resource_type: &str,
        id: &str,
        value: &serde_json::Value,
        new: bool,
    ) -> Result<bool, WebError> {
        let facts = store::access::resource_facts(resource_type, id, value);
        let mut patients = Vec::new();
        for p in &facts.patients {
            if let Some(f) = patient_facts(self.store(), p).await? {
                patients.push(f);
            }
        }
        let target = if new {
            Target::New {
                facts: &facts,
                patients: &patients,
            }
        } else {
            Target::Resource {
                facts: &facts,
                patients: &patients,
            }
        };
        match policy::decide(&self.requester.who, action, target, self.now, self.today) {
            Decision::Allow(_) => Ok(false),
            Decision::BreakGlass(_) => Ok(true),
            Decision::Deny(d) => Err(denial_error(
                d,
                resource_type,
                (!id.is_empty()).then_some(id),
            )),
        }
    }
}

/// Sets who wrote a resource, so that nobody can claim another organisation's authorship (the
/// restricted rule trusts it): patients and proxies write no author tag; staff write their own
/// organisation's; system clients and administrators' content is kept as sent.
pub fn stamp_author(requester: &Requester, value: &mut serde_json::Value) {
    let organisation = match &requester.who.subject {
        Subject::Patient { .. } | Subject::Proxy { .. } => None,
        Subject::Staff { organisation, .. } => Some(organisation.clone()),
        _ => return,
    };
    let Some(resource) = value.as_object_mut() else {
        return;
    };
    let meta = resource
        .entry("meta")
        .or_insert_with(|| serde_json::json!({}));
    let Some(meta) = meta.as_object_mut() else {
        return;
    };
    let mut tags: Vec<serde_json::Value> = match meta.remove("tag") {
        Some(serde_json::Value::Array(tags)) => tags,
        _ => Vec::new(),
    };
    tags.retain(|t| {
        t.get("system").and_then(serde_json::Value::as_str) != Some(store::access::ODS_SYSTEM)
    });
    if let Some(ods) = organisation {
        tags.push(serde_json::json!({"system": store::access::ODS_SYSTEM, "code": ods}));
    }
    if !tags.is_empty() {
        meta.insert("tag".into(), serde_json::Value::Array(tags));
    }
    if meta.is_empty() {
        resource.remove("meta");
    }
}

/// What an access returned, for its audit records.
#[derive(Debug, Default)]
pub struct Seen {
    /// The entity recorded on success (`Type/id/_history/v`); None keeps the request's.
    pub entity: Option<String>,
    /// Every patient whose data was returned.
    pub patients: std::collections::BTreeSet<String>,
    /// Whether the access relied on breaking glass.
    pub break_glass: bool,
}

impl Seen {
    /// Notes the patients `version` belongs to.
    pub fn saw(&mut self, version: &store::ResourceVersion) {
        if version.deleted {
            return;
        }
        if let Ok(value) = version.parse() {
            let facts = store::access::resource_facts(&version.resource_type, &version.id, &value);
            self.patients.extend(facts.patients);
        }
    }
}

/// The audit entity of a search: the type and the parameter names it used, never their values.
pub fn search_entity(resource_type: &str, params: &[(String, String)]) -> String {
    let names: std::collections::BTreeSet<&str> = params
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| !matches!(*k, "_format" | "_pretty"))
        .collect();
    let names: Vec<&str> = names.into_iter().collect();
    format!("{resource_type}?{}", names.join("&"))
}

/// Records an access and, only once its records are durable, hands its result back: one record
/// per patient whose data was returned (one without patient when none), one for a failure or
/// refusal; a break-glass access adds a [`AuditAction::BreakGlass`] record and a notification
/// to the patient (a `Communication`, written on its own).
pub async fn audited<T>(
    state: &AppState,
    requester: &Requester,
    action: AuditAction,
    entity: String,
    result: Result<(T, Seen), WebError>,
) -> Result<T, WebError> {
    let now = state.now();
    let (records, out) = match result {
        Ok((value, seen)) => {
            let entity = seen.entity.clone().unwrap_or(entity);
            let mut records: Vec<AuditRecord> = if seen.patients.is_empty() {
                vec![requester.record(now, action, Some(entity.clone()), None, 200)]
            } else {
                seen.patients
                    .iter()
                    .map(|p| {
                        requester.record(now, action, Some(entity.clone()), Some(p.clone()), 200)
                    })
                    .collect()
            };
            if seen.break_glass {
                if let Some(bg) = requester.break_glass() {
                    records.push(requester.record(
                        now,
                        AuditAction::BreakGlass,
                        Some(entity.clone()),
                        Some(bg.patient.clone()),
                        200,
                    ));
                    notify_break_glass(state, requester, bg, now).await?;
                }
            }
            (records, Ok(value))
        }
        Err(e) => {
            let status = e.status().as_u16();
            (
                vec![requester.record(now, action, Some(entity), None, status)],
                Err(e),
            )
        }
    };
    state.store.append_audit(records).await?;
    out
}

impl Requester {
    /// The staff member's break-glass declaration of this request, if any.
    pub fn break_glass(&self) -> Option<&BreakGlass> {
        match &self.who.subject {
            Subject::Staff { break_glass, .. } => break_glass.as_ref(),
            _ => None,
        }
    }
}

/// The code system of the `notification` category of Portico's own Communications.
pub const NOTIFICATION_CATEGORY_SYSTEM: &str = "urn:portico:communication-category";

/// Tells the patient their record was opened by breaking glass: a completed `Communication` to
/// them, written (and audited as Portico's) before the access is answered.
async fn notify_break_glass(
    state: &AppState,
    requester: &Requester,
    bg: &BreakGlass,
    now: DateTime<Utc>,
) -> Result<(), WebError> {
    let organisation = requester
        .audit
        .organisation
        .clone()
        .unwrap_or_else(|| "an organisation".into());
    let date = london_today(now).format("%-d %B %Y");
    let text = format!(
        "Your record was opened in an emergency by {organisation} on {date}: {}",
        bg.reason
    );
    let value = serde_json::json!({
        "resourceType": "Communication",
        "status": "completed",
        "category": [{
            "coding": [{"system": NOTIFICATION_CATEGORY_SYSTEM, "code": "notification"}],
            "text": "notification",
        }],
        "subject": {"reference": format!("Patient/{}", bg.patient)},
        "recipient": [{"reference": format!("Patient/{}", bg.patient)}],
        "sent": now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "payload": [{"contentString": text}],
    });
    let op = store::WriteOp::Create {
        resource: store::Prepared::trusted(value)?,
        if_none_exist: None,
        full_url: None,
    };
    state
        .store
        .transaction_audited(
            vec![op],
            Some(&AuditContext::portico("break-glass-notification")),
        )
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ODS: &str = store::access::ODS_SYSTEM;

    fn as_subject(subject: Subject) -> Requester {
        let mut r = Requester::system("c", Scopes::default(), None);
        r.who.subject = subject;
        r
    }

    fn staff(ods: &str) -> Requester {
        as_subject(Subject::Staff {
            practitioner_role: "role-1".into(),
            organisation: ods.into(),
            role: StaffRole::Clinician,
            break_glass: None,
        })
    }

    fn patient() -> Requester {
        as_subject(Subject::Patient {
            patient: "p1".into(),
            identity_level: IdentityLevel::P9,
        })
    }

    fn tagged(code: &str) -> serde_json::Value {
        json!({"resourceType": "Observation", "meta": {"tag": [
            {"system": ODS, "code": code},
            {"system": "urn:other", "code": "keep"}
        ]}})
    }

    #[test]
    fn patients_cannot_write_an_author_tag() {
        let mut v = tagged("A81001");
        stamp_author(&patient(), &mut v);
        assert_eq!(
            v["meta"]["tag"],
            json!([{"system": "urn:other", "code": "keep"}])
        );
        let mut bare = json!({"resourceType": "Observation", "meta": {"tag": [
            {"system": ODS, "code": "A81001"}]}});
        stamp_author(&patient(), &mut bare);
        assert!(bare.get("meta").is_none(), "{bare}");
        assert_eq!(policy::labels(&bare).author_organisation, None);
    }

    #[test]
    fn staff_write_as_their_own_organisation() {
        let mut v = tagged("B82002");
        stamp_author(&staff("A81001"), &mut v);
        assert_eq!(
            policy::labels(&v).author_organisation.as_deref(),
            Some("A81001")
        );
        let tags = v["meta"]["tag"].as_array().cloned().unwrap_or_default();
        assert_eq!(tags.len(), 2, "{v}");
        let mut untagged = json!({"resourceType": "Observation"});
        stamp_author(&staff("A81001"), &mut untagged);
        assert_eq!(
            untagged["meta"]["tag"],
            json!([{"system": ODS, "code": "A81001"}])
        );
    }

    #[test]
    fn system_clients_content_is_kept_as_sent() {
        let mut v = tagged("B82002");
        stamp_author(&Requester::system("c", Scopes::default(), None), &mut v);
        assert_eq!(v, tagged("B82002"));
    }

    #[test]
    fn a_search_is_recorded_by_its_parameter_names_only() {
        let params = vec![
            ("name".to_string(), "Pond".to_string()),
            ("_count".to_string(), "5".to_string()),
            ("name".to_string(), "Amy".to_string()),
            ("_format".to_string(), "json".to_string()),
        ];
        let entity = search_entity("Patient", &params);
        assert_eq!(entity, "Patient?_count&name");
        assert!(!entity.contains("Pond") && !entity.contains("Amy"));
    }
}
