//! Rules for a patient acting for themselves: their own compartment, restricted items included;
//! the reduced view below P9; writes through the self-service workflows only.

use super::{only_about, require_identity, self_service_need, Request};
use crate::decision::{Decision, Denial, Filter, PatientScope, RestrictedRule, Target};
use crate::feature::TypeClass;
use crate::who::IdentityLevel;

pub(super) fn decide(
    req: &Request<'_>,
    own: &str,
    identity_level: IdentityLevel,
) -> Result<Decision, Denial> {
    if req.query_patient().is_some_and(|p| p.id != own) {
        return Err(Denial::NotFound);
    }
    let type_feature = match req.class {
        TypeClass::PatientData(feature) => feature,
        // Reference data is nobody's record: restricted items there are not theirs to see.
        TypeClass::Reference => return req.reference(RestrictedRule::Hide, false),
        TypeClass::StaffOnly | TypeClass::Unknown => return req.unreachable_type(),
    };
    let filter = Filter {
        patients: PatientScope::Only(vec![own.to_string()]),
        hide_restricted: RestrictedRule::Show,
        hide_sensitive: false,
    };
    let in_reach = match req.target {
        Target::Resource { facts, .. } => filter.admits(facts, &[]),
        Target::New { facts, .. } => only_about(facts, own),
        Target::Query { .. } => true,
    };
    if !in_reach {
        return Err(Denial::NotFound);
    }
    let feature = self_service_need(req, type_feature)?;
    require_identity(identity_level.is_full(), feature)?;
    req.require_scope(true)?;
    Ok(Decision::Allow(filter))
}
