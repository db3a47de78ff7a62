//! Rules for portal administrators: the organisation directory, and no patient data at all.
//! A stored patient resource is `NotFound` (an administrator learns no ids); a query over patient
//! data is `Forbidden` (which says nothing about any one patient).

use super::Request;
use crate::decision::{Decision, Denial, RestrictedRule};
use crate::feature::{is_directory, TypeClass};

pub(super) fn decide(req: &Request<'_>) -> Result<Decision, Denial> {
    if req.query_patient().is_some() {
        return Err(Denial::Forbidden(
            "administrators do not see patients' records".into(),
        ));
    }
    match req.class {
        TypeClass::Reference => {
            req.reference(RestrictedRule::Hide, is_directory(req.resource_type()))
        }
        TypeClass::PatientData(_) | TypeClass::StaffOnly | TypeClass::Unknown => {
            req.unreachable_type()
        }
    }
}
