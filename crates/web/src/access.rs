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

use crate::error::WebError;

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
