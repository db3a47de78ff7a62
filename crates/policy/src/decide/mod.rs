//! [`decide`]: the checks common to every subject, then the subject's own rules.
//!
//! Each subject's rules run in the same order, which is what keeps existence from leaking:
//! first **reach** (is this data within the subject's sight at all? if not: `NotFound`), then
//! **permission** (role, grant feature, identity level, write rules, scopes: `Forbidden`), then
//! the **filter**. Scopes come last, so removing one can only turn an answer into `Forbidden`.

mod admin;
mod patient;
mod proxy;
mod staff;
mod system;

use chrono::{DateTime, NaiveDate, Utc};

pub use proxy::{age_band, AgeBand};

use crate::decision::{Action, Decision, Denial, Filter, PatientScope, RestrictedRule, Target};
use crate::facts::{PatientFacts, ResourceFacts};
use crate::feature::{type_class, Feature, TypeClass};
use crate::scopes::{Permissions, ScopeContext, Scopes};
use crate::who::{Subject, Who};

/// Decides whether `who` may do `action` on `target`, at instant `now` on the Europe/London date
/// `today`. Total: every question gets an answer, whatever the input.
pub fn decide(
    who: &Who,
    action: Action,
    target: Target<'_>,
    now: DateTime<Utc>,
    today: NaiveDate,
) -> Decision {
    let req = Request {
        who,
        action,
        target,
        class: type_class(target.resource_type()),
        now,
        today,
    };
    match decide_for_subject(&req) {
        Ok(decision) => decision,
        Err(denial) => Decision::Deny(denial),
    }
}

fn decide_for_subject(req: &Request<'_>) -> Result<Decision, Denial> {
    if matches!(req.who.subject, Subject::Anonymous) {
        return Err(Denial::Unauthenticated);
    }
    check_shape(req)?;
    match &req.who.subject {
        Subject::Anonymous => Err(Denial::Unauthenticated),
        Subject::Patient {
            patient,
            identity_level,
        } => patient::decide(req, patient, *identity_level),
        Subject::Proxy {
            grant,
            identity_level,
        } => proxy::decide(req, grant, *identity_level),
        Subject::Staff {
            organisation,
            role,
            break_glass,
            ..
        } => staff::decide(req, organisation, *role, break_glass.as_ref()),
        Subject::System { .. } => system::decide(req),
        Subject::Admin => admin::decide(req),
    }
}

/// One question, as the subject rules see it.
pub(crate) struct Request<'a> {
    who: &'a Who,
    action: Action,
    target: Target<'a>,
    class: TypeClass,
    now: DateTime<Utc>,
    today: NaiveDate,
}

impl Request<'_> {
    fn resource_type(&self) -> &str {
        self.target.resource_type()
    }

    /// The patient a query is confined to (`Patient/{id}/$everything`, a compartment search, a
    /// patient export). Whatever the type, a subject who cannot reach that patient gets
    /// `NotFound`, so that every part of one operation answers alike.
    fn query_patient(&self) -> Option<&PatientFacts> {
        match self.target {
            Target::Query { patient, .. } => patient,
            _ => None,
        }
    }

    /// Whether the action reads a patient's whole record (`$everything`, export).
    fn is_whole_record(&self) -> bool {
        matches!(self.action, Action::Everything | Action::Export)
    }

    /// The permission the action needs on the type.
    fn needed(&self) -> Permissions {
        match self.action {
            Action::Read | Action::VRead | Action::History | Action::BinaryContent => {
                Permissions::READ
            }
            Action::Search | Action::Everything | Action::Export => Permissions::SEARCH,
            Action::Create => Permissions::CREATE,
            Action::Update => Permissions::UPDATE,
            Action::Delete => Permissions::DELETE,
        }
    }

    /// Checks the scopes. People use `user/` scopes, and `patient/` ones when the request stays
    /// within the patient in context (`patient_scopes_apply`); system clients `system/` only.
    fn require_scope(&self, patient_scopes_apply: bool) -> Result<(), Denial> {
        let scopes = &self.who.scopes;
        let (ty, needed) = (self.resource_type(), self.needed());
        let (granted, named) = match self.who.subject {
            Subject::System { .. } => (
                scopes.grants(ScopeContext::System, ty, needed),
                ScopeContext::System,
            ),
            Subject::Patient { .. } | Subject::Proxy { .. } => (
                scopes.grants(ScopeContext::User, ty, needed)
                    || (patient_scopes_apply && scopes.grants(ScopeContext::Patient, ty, needed)),
                ScopeContext::Patient,
            ),
            _ => (
                scopes.grants(ScopeContext::User, ty, needed)
                    || (patient_scopes_apply && scopes.grants(ScopeContext::Patient, ty, needed)),
                ScopeContext::User,
            ),
        };
        if granted {
            Ok(())
        } else {
            Err(Denial::Forbidden(format!(
                "this needs the scope {}",
                Scopes::describe(named, ty, needed)
            )))
        }
    }

    /// Shared reference data: readable by every signed-in subject under `hide_restricted`,
    /// written only when `may_write`.
    fn reference(
        &self,
        hide_restricted: RestrictedRule,
        may_write: bool,
    ) -> Result<Decision, Denial> {
        let filter = Filter {
            patients: PatientScope::Any,
            hide_restricted,
            hide_sensitive: false,
        };
        match self.target {
            Target::Resource { facts, .. } if !filter.admits(facts, &[]) => {
                return Err(Denial::NotFound)
            }
            Target::New { facts, .. } if !filter.admits(facts, &[]) => {
                return Err(forbidden_label())
            }
            _ => {}
        }
        if self.action.is_write() && !may_write {
            return Err(Denial::Forbidden(format!(
                "{} is reference data; you cannot change it",
                self.resource_type()
            )));
        }
        self.require_scope(true)?;
        Ok(Decision::Allow(filter))
    }

    /// A type this subject may never touch: stored resources are absent, everything else is
    /// refused (which reveals nothing about any one resource).
    fn unreachable_type(&self) -> Result<Decision, Denial> {
        match self.target {
            Target::Resource { .. } => Err(Denial::NotFound),
            Target::New { .. } | Target::Query { .. } => Err(Denial::Forbidden(format!(
                "{} is not available to you",
                self.resource_type()
            ))),
        }
    }
}

/// Refuses actions on the wrong kind of target, `$everything` without a patient, and an export
/// of every patient by anyone but a system client. Depends only on the question, never on data.
fn check_shape(req: &Request<'_>) -> Result<(), Denial> {
    use Action::*;
    let fits = match req.target {
        Target::Resource { .. } => matches!(
            req.action,
            Read | VRead | History | Update | Delete | BinaryContent
        ),
        Target::New { .. } => matches!(req.action, Create | Update),
        Target::Query { .. } => matches!(req.action, Search | History | Everything | Export),
    };
    if !fits {
        return Err(Denial::Forbidden(format!(
            "{:?} does not apply to {}",
            req.action,
            match req.target {
                Target::Resource { .. } => "a stored resource",
                Target::New { .. } => "new content",
                Target::Query { .. } => "a query",
            }
        )));
    }
    if let Target::Query { patient: None, .. } = req.target {
        if req.action == Everything {
            return Err(Denial::Forbidden("$everything needs a patient".into()));
        }
        if req.action == Export && !matches!(req.who.subject, Subject::System { .. }) {
            return Err(Denial::Forbidden(
                "only system clients may export every patient's data".into(),
            ));
        }
    }
    Ok(())
}

/// What patients and proxies may write, and the feature each write belongs to: the portal's
/// self-service workflows. Anything else (the clinical record, bookings, deletions) is staff
/// work.
fn self_service_feature(resource_type: &str, action: Action) -> Option<Feature> {
    match (resource_type, action) {
        // Cancel or reschedule.
        ("Appointment", Action::Update) => Some(Feature::Appointments),
        ("Communication", Action::Create) => Some(Feature::Messages),
        ("QuestionnaireResponse", Action::Create | Action::Update) => Some(Feature::Questionnaires),
        // A repeat prescription request.
        ("MedicationRequest", Action::Create) => Some(Feature::Prescriptions),
        // A home reading (remote monitoring).
        ("Observation", Action::Create) => Some(Feature::Readings),
        ("Consent", Action::Create | Action::Update) => Some(Feature::Consent),
        _ => None,
    }
}

/// The feature a patient's or proxy's request needs: the write's, or the type's for reads.
fn self_service_need(req: &Request<'_>, type_feature: Feature) -> Result<Feature, Denial> {
    if !req.action.is_write() {
        return Ok(type_feature);
    }
    self_service_feature(req.resource_type(), req.action).ok_or_else(|| {
        Denial::Forbidden(format!(
            "patients and proxies cannot {} {} resources",
            verb(req.action),
            req.resource_type()
        ))
    })
}

/// Refuses the reduced view's holders anything outside it.
fn require_identity(full: bool, feature: Feature) -> Result<(), Denial> {
    if full || feature.in_reduced_view() {
        Ok(())
    } else {
        Err(Denial::Forbidden(format!(
            "{feature:?} needs identity verified to P9"
        )))
    }
}

/// Whether `facts` names patients and every one of them is `patient`: new content may only be
/// written into compartments the writer reaches.
fn only_about(facts: &ResourceFacts, patient: &str) -> bool {
    !facts.patients.is_empty() && facts.patients.iter().all(|p| p == patient)
}

fn forbidden_label() -> Denial {
    Denial::Forbidden("you cannot write an item with these confidentiality labels".into())
}

fn verb(action: Action) -> &'static str {
    match action {
        Action::Create => "create",
        Action::Update => "update",
        Action::Delete => "delete",
        _ => "read",
    }
}

/// AuditEvents are append-only: the store writes its own; only system clients submit others.
fn is_audit_change(req: &Request<'_>) -> bool {
    req.resource_type() == "AuditEvent" && req.action.is_write()
}
