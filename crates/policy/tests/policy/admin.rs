//! Rule 2: administrators run the portal and its directory; they see no patient data.

use policy::{Action, PatientScope};

use crate::support::*;

#[test]
fn admin_reading_patient_data_gets_not_found() {
    let p = adult("p1");
    for t in [
        "Patient",
        "Observation",
        "Appointment",
        "AuditEvent",
        "Binary",
    ] {
        let r = resource(t, "x", &["p1"]);
        not_found(read(&admin(), &r, std::slice::from_ref(&p)));
        not_found(on(&admin(), Action::Update, &r, std::slice::from_ref(&p)));
    }
}

#[test]
fn admin_searching_patient_data_is_forbidden() {
    forbidden(search(&admin(), "Observation", None));
    forbidden(query(
        &admin(),
        Action::Everything,
        "Observation",
        Some(&adult("p1")),
    ));
    forbidden(query(&admin(), Action::Export, "Patient", None));
}

#[test]
fn admin_may_not_create_patient_data() {
    forbidden(create(&admin(), &resource("Patient", "new", &["new"]), &[]));
}

#[test]
fn admin_may_write_the_organisation_directory() {
    for t in [
        "Organization",
        "Practitioner",
        "PractitionerRole",
        "Location",
        "HealthcareService",
    ] {
        let r = resource(t, "x", &[]);
        allowed(create(&admin(), &r, &[]));
        allowed(on(&admin(), Action::Update, &r, &[]));
        allowed(on(&admin(), Action::Delete, &r, &[]));
    }
}

#[test]
fn admin_may_not_write_schedules_slots_or_questionnaires() {
    for t in ["Schedule", "Slot", "Questionnaire", "Medication"] {
        forbidden(create(&admin(), &resource(t, "x", &[]), &[]));
    }
}

#[test]
fn admin_reads_reference_data() {
    let f = allowed(search(&admin(), "Organization", None));
    assert_eq!(f.patients, PatientScope::Any);
    allowed(read(&admin(), &resource("Slot", "s", &[]), &[]));
}

#[test]
fn admin_cannot_see_groups() {
    not_found(read(
        &admin(),
        &resource("Group", "g", &["p1"]),
        &[adult("p1")],
    ));
    forbidden(search(&admin(), "Group", None));
}

#[test]
fn admin_runs_no_patient_operations_even_over_reference_types() {
    forbidden(query(
        &admin(),
        Action::Everything,
        "Practitioner",
        Some(&adult("p1")),
    ));
    forbidden(query(
        &admin(),
        Action::Export,
        "Organization",
        Some(&adult("p1")),
    ));
}
