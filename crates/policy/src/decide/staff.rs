//! Rules for staff: patients their organisation has a legitimate relationship with (and whose
//! Consent does not refuse it), within their role; restricted items only from their own
//! organisation; breaking glass for one patient.

use super::{is_audit_change, Request};
use crate::decision::{
    Action, BreakGlassAccess, Decision, Denial, Filter, PatientScope, RestrictedRule, Target,
};
use crate::facts::{PatientFacts, ResourceFacts};
use crate::feature::TypeClass;
use crate::who::{BreakGlass, StaffRole};

pub(super) fn decide(
    req: &Request<'_>,
    organisation: &str,
    role: StaffRole,
    break_glass: Option<&BreakGlass>,
) -> Result<Decision, Denial> {
    // An invalid declaration is ignored, as if none had been made.
    let glass = break_glass.filter(|b| b.validate(req.now).is_ok());
    let query_glass = match req.query_patient() {
        Some(p) if p.is_reachable_by(organisation) => None,
        Some(p) => match glass.filter(|b| b.patient == p.id) {
            Some(b) => Some(b),
            None => return Err(Denial::NotFound),
        },
        None => None,
    };
    let labels = RestrictedRule::HideUnlessAuthor(organisation.to_string());
    let feature = match req.class {
        TypeClass::PatientData(feature) => feature,
        TypeClass::Reference => return req.reference(labels, true),
        TypeClass::StaffOnly => return staff_only(req, labels),
        TypeClass::Unknown => return req.unreachable_type(),
    };
    let related = Filter {
        patients: PatientScope::RelatedTo(organisation.to_string()),
        hide_restricted: labels.clone(),
        hide_sensitive: false,
    };
    let confined_to = |patient: &str| Filter {
        patients: PatientScope::Only(vec![patient.to_string()]),
        hide_restricted: labels.clone(),
        hide_sensitive: false,
    };

    let (filter, glass_used) = match req.target {
        Target::Resource { facts, patients } => {
            if related.admits(facts, patients) {
                (related, None)
            } else {
                let via_glass = glass.filter(|b| confined_to(&b.patient).admits(facts, patients));
                match via_glass {
                    Some(b) => (confined_to(&b.patient), Some(b)),
                    None => return Err(Denial::NotFound),
                }
            }
        }
        Target::New { facts, patients } => {
            let glass_used = reach_new(req.action, facts, patients, organisation, glass)?;
            if !related.admits_labels(facts) {
                return Err(super::forbidden_label());
            }
            match glass_used {
                Some(b) => (confined_to(&b.patient), Some(b)),
                None => (related, None),
            }
        }
        Target::Query {
            patient: Some(p), ..
        } => (confined_to(&p.id), query_glass),
        Target::Query { patient: None, .. } => (related, None),
    };

    if role == StaffRole::Clerical && !feature.for_clerical_staff() {
        return Err(Denial::Forbidden(format!(
            "clerical staff cannot see or change {feature:?}"
        )));
    }
    if is_audit_change(req) {
        return Err(Denial::Forbidden(
            "audit events are written by Portico itself".into(),
        ));
    }
    req.require_scope(patient_scopes_apply(req))?;
    Ok(match glass_used {
        None => Decision::Allow(filter),
        Some(b) => Decision::BreakGlass(BreakGlassAccess {
            filter,
            patient: b.patient.clone(),
            reason: b.reason.clone(),
            expires: b.expires,
        }),
    })
}

/// Whether new content may be written: it must name patients, and each must be reachable, by
/// relationship or by breaking glass. A new Patient being registered needs no relationship yet
/// (the registration recorded with it creates one). Returns the break glass it relied on.
fn reach_new<'g>(
    action: Action,
    facts: &ResourceFacts,
    patients: &[PatientFacts],
    organisation: &str,
    glass: Option<&'g BreakGlass>,
) -> Result<Option<&'g BreakGlass>, Denial> {
    if facts.patients.is_empty() {
        return Err(Denial::Forbidden(format!(
            "a new {} must name the patient it is about",
            facts.resource_type
        )));
    }
    let registering = action == Action::Create && facts.resource_type == "Patient";
    let mut glass_used = None;
    for id in &facts.patients {
        if registering && *id == facts.id {
            continue;
        }
        if patients
            .iter()
            .any(|p| p.id == *id && p.is_reachable_by(organisation))
        {
            continue;
        }
        match glass.filter(|b| b.patient == *id) {
            Some(b) => glass_used = Some(b),
            None => return Err(Denial::NotFound),
        }
    }
    Ok(glass_used)
}

/// `patient/` scopes count when the request stays within the launch patient's data.
fn patient_scopes_apply(req: &Request<'_>) -> bool {
    let Some(context) = req.who.scopes.patient_context.as_deref() else {
        return false;
    };
    match req.target {
        Target::Resource { facts, .. } => facts.patients.iter().any(|p| p == context),
        Target::New { facts, .. } => super::only_about(facts, context),
        Target::Query { patient, .. } => patient.is_some_and(|p| p.id == context),
    }
}

/// Groups (cohorts, lists of patients): staff of any role, restricted ones only from their own
/// organisation.
fn staff_only(req: &Request<'_>, labels: RestrictedRule) -> Result<Decision, Denial> {
    let filter = Filter {
        patients: PatientScope::Any,
        hide_restricted: labels,
        hide_sensitive: false,
    };
    match req.target {
        Target::Resource { facts, .. } if !filter.admits(facts, &[]) => {
            return Err(Denial::NotFound)
        }
        Target::New { facts, .. } if !filter.admits(facts, &[]) => {
            return Err(super::forbidden_label())
        }
        _ => {}
    }
    req.require_scope(false)?;
    Ok(Decision::Allow(filter))
}
