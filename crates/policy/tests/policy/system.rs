//! Rules 7 and 8: system clients, trusted integrations with system scopes, see every patient and
//! every label; only they export everything. Audit is append-only for everyone.

use policy::{Action, Filter, PatientScope};

use crate::support::*;

#[test]
fn system_client_sees_all_patients_and_labels() {
    assert_eq!(
        allowed(search(&system(), "Observation", None)),
        Filter::everything()
    );
    let r = restricted(resource("Condition", "c", &["p1"]), Some(OTHER_ORG));
    allowed(read(&system(), &r, &[]));
}

#[test]
fn system_export_of_all_patients_is_allowed() {
    assert_eq!(
        allowed(query(&system(), Action::Export, "Observation", None)).patients,
        PatientScope::Any
    );
}

#[test]
fn system_everything_for_one_patient_is_that_patient_only() {
    let f = allowed(query(
        &system(),
        Action::Everything,
        "Observation",
        Some(&adult("p1")),
    ));
    assert_eq!(f.patients, only("p1"));
}

#[test]
fn system_scope_limits_types_and_permissions() {
    let who = scoped(system(), "system/Observation.rs");
    allowed(search(&who, "Observation", None));
    forbidden(search(&who, "Condition", None));
    forbidden(create(&who, &resource("Observation", "o", &["p1"]), &[]));
}

#[test]
fn system_writes_with_write_scope() {
    let who = scoped(system(), "system/*.write");
    allowed(create(&who, &resource("Observation", "o", &["p1"]), &[]));
    allowed(create(&who, &resource("Group", "g", &[]), &[]));
    allowed(on(
        &who,
        Action::Delete,
        &resource("Organization", "o", &[]),
        &[],
    ));
}

#[test]
fn system_may_submit_audit_events_but_never_change_them() {
    allowed(create(
        &system(),
        &resource("AuditEvent", "a", &["p1"]),
        &[],
    ));
    forbidden(on(
        &system(),
        Action::Update,
        &resource("AuditEvent", "a", &["p1"]),
        &[],
    ));
    forbidden(write_new(
        &system(),
        Action::Update,
        &resource("AuditEvent", "a", &["p1"]),
        &[],
    ));
    forbidden(on(
        &system(),
        Action::Delete,
        &resource("AuditEvent", "a", &["p1"]),
        &[],
    ));
}

#[test]
fn system_may_use_types_the_policy_does_not_know() {
    allowed(search(&system(), "Basic", None));
    forbidden(search(&clinician(), "Basic", None));
}
