//! Rules for a proxy (parent, guardian, carer): the granted patient's compartment while the grant
//! is in date, limited to its features; restricted items never; and for parents and guardians,
//! the child's age.

use chrono::NaiveDate;

use super::{only_about, require_identity, self_service_need, Request};
use crate::age::age_in_years;
use crate::decision::{Decision, Denial, Filter, PatientScope, RestrictedRule, Target};
use crate::facts::{AgeRules, PatientFacts};
use crate::feature::TypeClass;
use crate::who::{IdentityLevel, ProxyGrant};

/// Where a child's age puts a parental proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgeBand {
    /// Below `full_until`: the parent sees everything the grant covers.
    Child,
    /// From `full_until` until `ends_at`: sensitive items hidden unless a clinician allows them.
    YoungPerson,
    /// From `ends_at` (or age unknown): parental access ends unless the young person grants it.
    Adult,
}

/// The age band of someone born on `birth` (if known), on `today`, under `rules`. An unknown
/// or impossible birth date counts as adult: the safe side for a parental proxy. `ends_at` is
/// checked first, so rules set the wrong way round still end parental access on time.
pub fn age_band(birth: Option<NaiveDate>, today: NaiveDate, rules: AgeRules) -> AgeBand {
    match birth.and_then(|b| age_in_years(b, today)) {
        None => AgeBand::Adult,
        Some(age) if age >= rules.ends_at => AgeBand::Adult,
        Some(age) if age < rules.full_until => AgeBand::Child,
        Some(_) => AgeBand::YoungPerson,
    }
}

/// What the grant opens today: `None` for nothing at all, else whether sensitive items are
/// hidden. `patient` holds the granted patient's facts when the caller passed them.
fn grant_view(
    grant: &ProxyGrant,
    patient: Option<&PatientFacts>,
    today: NaiveDate,
) -> Option<bool> {
    if !grant.is_active(today) {
        return None;
    }
    if !grant.relationship.is_parental() {
        return Some(false);
    }
    let (birth, rules) =
        patient.map_or((None, AgeRules::default()), |p| (p.birth_date, p.age_rules));
    match age_band(birth, today, rules) {
        AgeBand::Child => Some(false),
        AgeBand::YoungPerson => Some(!grant.clinician_allows_sensitive),
        AgeBand::Adult => grant.young_person_consented.then_some(false),
    }
}

pub(super) fn decide(
    req: &Request<'_>,
    grant: &ProxyGrant,
    identity_level: IdentityLevel,
) -> Result<Decision, Denial> {
    let own = grant.patient.as_str();
    let facts = match req.target {
        Target::Resource { patients, .. } | Target::New { patients, .. } => {
            patients.iter().find(|p| p.id == own)
        }
        Target::Query { patient, .. } => patient.filter(|p| p.id == own),
    };
    let view = grant_view(grant, facts, req.today);
    if let Some(p) = req.query_patient() {
        if p.id != own || (view.is_none() && req.is_whole_record()) {
            return Err(Denial::NotFound);
        }
    }
    let type_feature = match req.class {
        TypeClass::PatientData(feature) => feature,
        TypeClass::Reference => return req.reference(RestrictedRule::Hide, false),
        TypeClass::StaffOnly | TypeClass::Unknown => return req.unreachable_type(),
    };
    let filter = match view {
        None => Filter::nothing(),
        Some(hide_sensitive) => Filter {
            patients: PatientScope::Only(vec![own.to_string()]),
            hide_restricted: RestrictedRule::Hide,
            hide_sensitive,
        },
    };
    match req.target {
        Target::Resource { facts, .. } => {
            if !filter.admits(facts, &[]) {
                return Err(Denial::NotFound);
            }
        }
        Target::New { facts, .. } => {
            if view.is_none() || !only_about(facts, own) {
                return Err(Denial::NotFound);
            }
            if !filter.admits(facts, &[]) {
                return Err(super::forbidden_label());
            }
        }
        Target::Query { .. } => {}
    }
    let feature = self_service_need(req, type_feature)?;
    if !grant.features.contains(feature) {
        return Err(Denial::Forbidden(format!(
            "the proxy grant does not cover {feature:?}"
        )));
    }
    require_identity(identity_level.is_full(), feature)?;
    req.require_scope(true)?;
    Ok(Decision::Allow(filter))
}
