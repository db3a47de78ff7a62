//! Rules for system clients: trusted integrations, limited by their `system/` scopes only.

use super::{is_audit_change, Request};
use crate::decision::{Action, Decision, Denial, Filter, PatientScope, Target};

pub(super) fn decide(req: &Request<'_>) -> Result<Decision, Denial> {
    if is_audit_change(req) && req.action != Action::Create {
        return Err(Denial::Forbidden("audit events cannot be changed".into()));
    }
    req.require_scope(false)?;
    let filter = match req.target {
        Target::Query {
            patient: Some(p), ..
        } => Filter {
            patients: PatientScope::Only(vec![p.id.clone()]),
            ..Filter::everything()
        },
        _ => Filter::everything(),
    };
    Ok(Decision::Allow(filter))
}
