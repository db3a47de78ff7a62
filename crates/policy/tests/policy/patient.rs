//! Rule 4: a patient sees their own compartment, and only the reduced view below P9.

use policy::{Action, IdentityLevel, PatientScope, RestrictedRule};

use crate::support::*;

#[test]
fn patient_reads_own_resource() {
    let f = allowed(read(
        &patient("p1"),
        &resource("Observation", "o", &["p1"]),
        &[adult("p1")],
    ));
    assert_eq!(f.patients, only("p1"));
}

#[test]
fn patient_reads_own_patient_resource() {
    allowed(read(
        &patient("p1"),
        &resource("Patient", "p1", &["p1"]),
        &[adult("p1")],
    ));
}

#[test]
fn patient_reads_a_resource_shared_with_another_patient() {
    let r = resource("Communication", "c", &["p2", "p1"]);
    allowed(read(&patient("p1"), &r, &[adult("p1"), adult("p2")]));
}

#[test]
fn patient_reading_another_patients_resource_gets_not_found() {
    for t in [
        "Observation",
        "Patient",
        "Appointment",
        "Binary",
        "AuditEvent",
    ] {
        not_found(read(
            &patient("p1"),
            &resource(t, "x", &["p2"]),
            &[adult("p2")],
        ));
        not_found(on(
            &patient("p1"),
            Action::Update,
            &resource(t, "x", &["p2"]),
            &[adult("p2")],
        ));
    }
}

#[test]
fn patient_data_of_nobody_is_not_found_for_a_patient() {
    not_found(read(
        &patient("p1"),
        &resource("Communication", "c", &[]),
        &[],
    ));
}

#[test]
fn patient_search_is_confined_to_own_compartment() {
    for p in [None, Some(&adult("p1"))] {
        let f = allowed(search(&patient("p1"), "Observation", p));
        assert_eq!(f.patients, only("p1"));
    }
}

#[test]
fn patient_everything_or_compartment_search_of_another_patient_is_not_found() {
    let other = adult("p2");
    not_found(query(
        &patient("p1"),
        Action::Everything,
        "Observation",
        Some(&other),
    ));
    not_found(query(
        &patient("p1"),
        Action::Export,
        "Observation",
        Some(&other),
    ));
    not_found(search(&patient("p1"), "Observation", Some(&other)));
}

#[test]
fn patient_everything_of_self_is_own_compartment() {
    let f = allowed(query(
        &patient("p1"),
        Action::Everything,
        "Condition",
        Some(&adult("p1")),
    ));
    assert_eq!(f.patients, only("p1"));
}

#[test]
fn patient_export_of_all_patients_is_forbidden() {
    forbidden(query(&patient("p1"), Action::Export, "Observation", None));
    forbidden(query(
        &patient("p1"),
        Action::Everything,
        "Observation",
        None,
    ));
}

#[test]
fn patient_sees_own_restricted_and_sensitive_items() {
    let f = allowed(search(&patient("p1"), "Condition", None));
    assert_eq!(f.hide_restricted, RestrictedRule::Show);
    assert!(!f.hide_sensitive);
    allowed(read(
        &patient("p1"),
        &restricted(resource("Condition", "c", &["p1"]), None),
        &[adult("p1")],
    ));
    allowed(read(
        &patient("p1"),
        &sensitive(resource("Condition", "c", &["p1"])),
        &[adult("p1")],
    ));
}

#[test]
fn patient_below_p9_sees_demographics_appointments_questionnaires_and_messages() {
    for level in [IdentityLevel::P0, IdentityLevel::P5] {
        let who = patient_at("p1", level);
        for t in [
            "Patient",
            "Appointment",
            "QuestionnaireResponse",
            "Communication",
        ] {
            allowed(read(&who, &resource(t, "x", &["p1"]), &[adult("p1")]));
            allowed(search(&who, t, None));
        }
    }
}

#[test]
fn patient_below_p9_cannot_see_the_record_or_letters() {
    let who = patient_at("p1", IdentityLevel::P5);
    for t in [
        "Observation",
        "Condition",
        "DocumentReference",
        "Binary",
        "MedicationRequest",
    ] {
        let m = forbidden(read(&who, &resource(t, "x", &["p1"]), &[adult("p1")]));
        assert!(m.contains("P9"), "{m}");
        forbidden(search(&who, t, None));
    }
}

#[test]
fn patient_below_p9_reading_another_patient_is_still_not_found() {
    let who = patient_at("p1", IdentityLevel::P0);
    not_found(read(
        &who,
        &resource("Observation", "o", &["p2"]),
        &[adult("p2")],
    ));
}

#[test]
fn patient_may_not_create_a_patient() {
    forbidden(create(
        &patient("p1"),
        &resource("Patient", "p1", &["p1"]),
        &[adult("p1")],
    ));
}

#[test]
fn patient_may_message_answer_questionnaires_order_prescriptions_and_reschedule() {
    let p = [adult("p1")];
    allowed(create(
        &patient("p1"),
        &resource("Communication", "c", &["p1"]),
        &p,
    ));
    allowed(create(
        &patient("p1"),
        &resource("QuestionnaireResponse", "q", &["p1"]),
        &p,
    ));
    allowed(on(
        &patient("p1"),
        Action::Update,
        &resource("QuestionnaireResponse", "q", &["p1"]),
        &p,
    ));
    allowed(write_new(
        &patient("p1"),
        Action::Update,
        &resource("QuestionnaireResponse", "q", &["p1"]),
        &p,
    ));
    allowed(create(
        &patient("p1"),
        &resource("MedicationRequest", "m", &["p1"]),
        &p,
    ));
    allowed(on(
        &patient("p1"),
        Action::Update,
        &resource("Appointment", "a", &["p1"]),
        &p,
    ));
    allowed(create(
        &patient("p1"),
        &resource("Observation", "reading", &["p1"]),
        &p,
    ));
    allowed(create(
        &patient("p1"),
        &resource("Consent", "c", &["p1"]),
        &p,
    ));
}

#[test]
fn patient_may_not_write_the_clinical_record_or_book_directly() {
    let p = [adult("p1")];
    for t in [
        "Condition",
        "AllergyIntolerance",
        "Appointment",
        "DocumentReference",
        "AuditEvent",
        "Patient",
    ] {
        forbidden(create(&patient("p1"), &resource(t, "x", &["p1"]), &p));
    }
    forbidden(on(
        &patient("p1"),
        Action::Update,
        &resource("Observation", "o", &["p1"]),
        &p,
    ));
    forbidden(on(
        &patient("p1"),
        Action::Update,
        &resource("Patient", "p1", &["p1"]),
        &p,
    ));
}

#[test]
fn patient_may_not_delete() {
    let p = [adult("p1")];
    for t in [
        "Communication",
        "QuestionnaireResponse",
        "Appointment",
        "Observation",
    ] {
        forbidden(on(
            &patient("p1"),
            Action::Delete,
            &resource(t, "x", &["p1"]),
            &p,
        ));
    }
}

#[test]
fn patient_may_not_write_into_another_compartment() {
    let ps = [adult("p1"), adult("p2")];
    not_found(create(
        &patient("p1"),
        &resource("Communication", "c", &["p1", "p2"]),
        &ps,
    ));
    not_found(create(
        &patient("p1"),
        &resource("Communication", "c", &["p2"]),
        &ps,
    ));
    not_found(create(
        &patient("p1"),
        &resource("Communication", "c", &[]),
        &ps,
    ));
}

#[test]
fn patient_below_p9_may_message_but_not_submit_readings() {
    let who = patient_at("p1", IdentityLevel::P5);
    let p = [adult("p1")];
    allowed(create(&who, &resource("Communication", "c", &["p1"]), &p));
    forbidden(create(&who, &resource("Observation", "o", &["p1"]), &p));
}

#[test]
fn patient_reads_reference_data_but_not_restricted_reference_data() {
    let f = allowed(search(&patient("p1"), "Practitioner", None));
    assert_eq!(f.patients, PatientScope::Any);
    assert_eq!(f.hide_restricted, RestrictedRule::Hide);
    allowed(read(
        &patient_at("p1", IdentityLevel::P0),
        &resource("Location", "l", &[]),
        &[],
    ));
    not_found(read(
        &patient("p1"),
        &restricted(resource("Location", "l", &[]), Some(ORG)),
        &[],
    ));
}

#[test]
fn patient_may_not_write_reference_data() {
    forbidden(create(&patient("p1"), &resource("Slot", "s", &[]), &[]));
    forbidden(on(
        &patient("p1"),
        Action::Update,
        &resource("Slot", "s", &[]),
        &[],
    ));
}

#[test]
fn patient_cannot_see_groups_or_unknown_types() {
    not_found(read(
        &patient("p1"),
        &resource("Group", "g", &["p1"]),
        &[adult("p1")],
    ));
    forbidden(search(&patient("p1"), "Group", None));
    not_found(read(
        &patient("p1"),
        &resource("Basic", "b", &["p1"]),
        &[adult("p1")],
    ));
    forbidden(search(&patient("p1"), "Basic", None));
}

#[test]
fn every_part_of_another_patients_everything_is_not_found() {
    for t in ["Observation", "Practitioner", "Group", "Basic"] {
        not_found(query(
            &patient("p1"),
            Action::Everything,
            t,
            Some(&adult("p2")),
        ));
    }
}
