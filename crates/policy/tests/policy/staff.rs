//! Rules 6 and 9: staff see and write for patients their organisation has a legitimate
//! relationship with, within their role; restricted items only if their organisation wrote
//! them; breaking glass for one patient, audited.

use policy::{Action, Decision, PatientFacts, PatientScope, RestrictedRule, StaffRole};

use crate::support::*;

fn unrelated(id: &str) -> PatientFacts {
    PatientFacts {
        related_organisations: vec![OTHER_ORG.into()],
        ..adult(id)
    }
}

fn refusing(id: &str) -> PatientFacts {
    PatientFacts {
        refused_organisations: vec![ORG.into()],
        ..adult(id)
    }
}

const REASON: &str = "Unconscious in A&E, no GP record available";

#[track_caller]
fn broke_glass(d: Decision) -> policy::BreakGlassAccess {
    match d {
        Decision::BreakGlass(access) => access,
        other => panic!("expected BreakGlass, got {other:?}"),
    }
}

#[test]
fn staff_of_a_related_organisation_read_patient_data() {
    let f = allowed(read(
        &clinician(),
        &resource("Observation", "o", &["p1"]),
        &[adult("p1")],
    ));
    assert_eq!(f.patients, PatientScope::RelatedTo(ORG.into()));
}

#[test]
fn staff_of_an_unrelated_organisation_get_not_found() {
    not_found(read(
        &clinician(),
        &resource("Observation", "o", &["p1"]),
        &[unrelated("p1")],
    ));
    not_found(read(
        &clerk(),
        &resource("Appointment", "a", &["p1"]),
        &[unrelated("p1")],
    ));
    not_found(on(
        &clinician(),
        Action::Update,
        &resource("Observation", "o", &["p1"]),
        &[unrelated("p1")],
    ));
}

#[test]
fn a_consent_refusing_the_organisation_gives_not_found() {
    not_found(read(
        &clinician(),
        &resource("Observation", "o", &["p1"]),
        &[refusing("p1")],
    ));
    not_found(query(
        &clinician(),
        Action::Everything,
        "Observation",
        Some(&refusing("p1")),
    ));
}

#[test]
fn missing_patient_facts_count_as_unrelated() {
    not_found(read(
        &clinician(),
        &resource("Observation", "o", &["p1"]),
        &[],
    ));
}

#[test]
fn a_resource_shared_with_a_related_patient_is_visible() {
    let r = resource("Communication", "c", &["p2", "p1"]);
    allowed(read(&clinician(), &r, &[unrelated("p2"), adult("p1")]));
}

#[test]
fn patient_data_of_nobody_is_not_found_for_staff() {
    not_found(read(
        &clinician(),
        &resource("Communication", "c", &[]),
        &[],
    ));
    forbidden(create(
        &clinician(),
        &resource("Communication", "c", &[]),
        &[],
    ));
}

#[test]
fn staff_search_is_confined_to_related_patients() {
    let f = allowed(search(&clinician(), "Observation", None));
    assert_eq!(f.patients, PatientScope::RelatedTo(ORG.into()));
    assert_eq!(
        f.hide_restricted,
        RestrictedRule::HideUnlessAuthor(ORG.into())
    );
    assert!(!f.hide_sensitive);
}

#[test]
fn staff_everything_for_a_related_patient_is_that_patient_only() {
    let f = allowed(query(
        &clinician(),
        Action::Everything,
        "Observation",
        Some(&adult("p1")),
    ));
    assert_eq!(f.patients, only("p1"));
    assert_eq!(
        f.hide_restricted,
        RestrictedRule::HideUnlessAuthor(ORG.into())
    );
    not_found(query(
        &clinician(),
        Action::Everything,
        "Observation",
        Some(&unrelated("p2")),
    ));
    not_found(search(&clinician(), "Observation", Some(&unrelated("p2"))));
}

#[test]
fn staff_export_of_all_patients_is_forbidden() {
    forbidden(query(&clinician(), Action::Export, "Observation", None));
    allowed(query(
        &clinician(),
        Action::Export,
        "Observation",
        Some(&adult("p1")),
    ));
}

#[test]
fn clerical_staff_cannot_see_the_clinical_record() {
    let p = [adult("p1")];
    for t in ["Observation", "Condition", "MedicationRequest", "Encounter"] {
        forbidden(read(&clerk(), &resource(t, "x", &["p1"]), &p));
        forbidden(search(&clerk(), t, None));
    }
    for t in [
        "Patient",
        "Appointment",
        "DocumentReference",
        "Binary",
        "Communication",
        "QuestionnaireResponse",
        "ServiceRequest",
    ] {
        allowed(read(&clerk(), &resource(t, "x", &["p1"]), &p));
        allowed(search(&clerk(), t, None));
    }
}

#[test]
fn clerical_staff_cannot_write_the_clinical_record() {
    let p = [adult("p1")];
    forbidden(create(&clerk(), &resource("Condition", "c", &["p1"]), &p));
    allowed(create(&clerk(), &resource("Appointment", "a", &["p1"]), &p));
    allowed(on(
        &clerk(),
        Action::Update,
        &resource("Appointment", "a", &["p1"]),
        &p,
    ));
}

#[test]
fn clinicians_write_and_delete_for_related_patients() {
    let p = [adult("p1")];
    allowed(create(
        &clinician(),
        &resource("Condition", "c", &["p1"]),
        &p,
    ));
    allowed(on(
        &clinician(),
        Action::Update,
        &resource("Condition", "c", &["p1"]),
        &p,
    ));
    allowed(on(
        &clinician(),
        Action::Delete,
        &resource("Condition", "c", &["p1"]),
        &p,
    ));
}

#[test]
fn staff_may_not_write_for_unrelated_patients() {
    not_found(create(
        &clinician(),
        &resource("Condition", "c", &["p2"]),
        &[unrelated("p2")],
    ));
    not_found(create(
        &clinician(),
        &resource("Condition", "c", &["p1", "p2"]),
        &[adult("p1"), unrelated("p2")],
    ));
}

#[test]
fn staff_may_register_a_new_patient() {
    let newcomer = PatientFacts {
        related_organisations: vec![],
        ..adult("new")
    };
    for who in [clinician(), clerk()] {
        allowed(create(
            &who,
            &resource("Patient", "new", &["new"]),
            std::slice::from_ref(&newcomer),
        ));
        allowed(create(&who, &resource("Patient", "new", &["new"]), &[]));
    }
    // Registration is not a way to write into someone else's record.
    not_found(create(
        &clinician(),
        &resource("Patient", "new", &["new", "p2"]),
        &[unrelated("p2")],
    ));
    not_found(create(
        &clinician(),
        &resource("Observation", "o", &["new"]),
        &[newcomer],
    ));
}

#[test]
fn restricted_items_are_shown_only_to_the_authoring_organisation() {
    let r = restricted(resource("Condition", "c", &["p1"]), Some(ORG));
    let p = PatientFacts {
        related_organisations: vec![ORG.into(), OTHER_ORG.into()],
        ..adult("p1")
    };
    allowed(read(&clinician(), &r, std::slice::from_ref(&p)));
    not_found(read(
        &staff(OTHER_ORG, StaffRole::Clinician),
        &r,
        std::slice::from_ref(&p),
    ));
    not_found(read(
        &clinician(),
        &restricted(resource("Condition", "c", &["p1"]), None),
        &[p],
    ));
}

#[test]
fn staff_see_sensitive_items() {
    allowed(read(
        &clinician(),
        &sensitive(resource("Condition", "c", &["p1"])),
        &[adult("p1")],
    ));
}

#[test]
fn staff_read_and_write_reference_data() {
    for who in [clinician(), clerk()] {
        allowed(create(&who, &resource("Slot", "s", &[]), &[]));
        allowed(on(
            &who,
            Action::Update,
            &resource("Questionnaire", "q", &[]),
            &[],
        ));
        let f = allowed(search(&who, "Practitioner", None));
        assert_eq!(f.patients, PatientScope::Any);
        assert_eq!(
            f.hide_restricted,
            RestrictedRule::HideUnlessAuthor(ORG.into())
        );
    }
}

#[test]
fn staff_may_use_groups() {
    allowed(search(&clinician(), "Group", None));
    allowed(create(&clinician(), &resource("Group", "g", &[]), &[]));
}

#[test]
fn staff_cannot_write_audit_events() {
    let p = [adult("p1")];
    forbidden(create(
        &clinician(),
        &resource("AuditEvent", "a", &["p1"]),
        &p,
    ));
    forbidden(on(
        &clinician(),
        Action::Update,
        &resource("AuditEvent", "a", &["p1"]),
        &p,
    ));
    forbidden(on(
        &clinician(),
        Action::Delete,
        &resource("AuditEvent", "a", &["p1"]),
        &p,
    ));
    allowed(read(
        &clinician(),
        &resource("AuditEvent", "a", &["p1"]),
        &p,
    ));
}

#[test]
fn break_glass_opens_an_unrelated_patient_and_says_so() {
    let who = with_break_glass(clinician(), "p2", REASON, 60);
    let access = broke_glass(read(
        &who,
        &resource("Observation", "o", &["p2"]),
        &[unrelated("p2")],
    ));
    assert_eq!(access.patient, "p2");
    assert_eq!(access.reason, REASON);
    assert_eq!(access.filter.patients, only("p2"));
    assert_eq!(
        access.filter.hide_restricted,
        RestrictedRule::HideUnlessAuthor(ORG.into())
    );
}

#[test]
fn break_glass_overrides_a_consent_refusal() {
    let who = with_break_glass(clinician(), "p1", REASON, 60);
    broke_glass(read(
        &who,
        &resource("Observation", "o", &["p1"]),
        &[refusing("p1")],
    ));
}

#[test]
fn break_glass_is_for_one_patient_only() {
    let who = with_break_glass(clinician(), "p2", REASON, 60);
    not_found(read(
        &who,
        &resource("Observation", "o", &["p3"]),
        &[unrelated("p3")],
    ));
}

#[test]
fn break_glass_never_shows_restricted_items_of_other_organisations() {
    let who = with_break_glass(clinician(), "p2", REASON, 60);
    let r = restricted(resource("Condition", "c", &["p2"]), Some(OTHER_ORG));
    not_found(read(&who, &r, &[unrelated("p2")]));
}

#[test]
fn expired_break_glass_is_ignored() {
    let who = with_break_glass(clinician(), "p2", REASON, 0);
    not_found(read(
        &who,
        &resource("Observation", "o", &["p2"]),
        &[unrelated("p2")],
    ));
}

#[test]
fn break_glass_without_a_real_reason_is_ignored() {
    let who = with_break_glass(clinician(), "p2", "  urgent   ", 60);
    not_found(read(
        &who,
        &resource("Observation", "o", &["p2"]),
        &[unrelated("p2")],
    ));
}

#[test]
fn break_glass_longer_than_four_hours_is_ignored() {
    let who = with_break_glass(clinician(), "p2", REASON, 5 * 60);
    not_found(read(
        &who,
        &resource("Observation", "o", &["p2"]),
        &[unrelated("p2")],
    ));
}

#[test]
fn break_glass_is_not_reported_when_the_relationship_suffices() {
    let who = with_break_glass(clinician(), "p1", REASON, 60);
    allowed(read(
        &who,
        &resource("Observation", "o", &["p1"]),
        &[adult("p1")],
    ));
}

#[test]
fn break_glass_covers_queries_confined_to_the_patient() {
    let who = with_break_glass(clinician(), "p2", REASON, 60);
    let access = broke_glass(query(
        &who,
        Action::Everything,
        "Observation",
        Some(&unrelated("p2")),
    ));
    assert_eq!(access.filter.patients, only("p2"));
    // A search over all patients is not widened by it.
    let f = allowed(search(&who, "Observation", None));
    assert_eq!(f.patients, PatientScope::RelatedTo(ORG.into()));
}

#[test]
fn break_glass_does_not_lift_the_role() {
    let who = with_break_glass(clerk(), "p2", REASON, 60);
    forbidden(read(
        &who,
        &resource("Observation", "o", &["p2"]),
        &[unrelated("p2")],
    ));
    broke_glass(read(
        &who,
        &resource("Appointment", "a", &["p2"]),
        &[unrelated("p2")],
    ));
}

#[test]
fn break_glass_allows_writing_for_the_patient() {
    let who = with_break_glass(clinician(), "p2", REASON, 60);
    broke_glass(create(
        &who,
        &resource("Observation", "o", &["p2"]),
        &[unrelated("p2")],
    ));
}

#[test]
fn every_part_of_an_unrelated_patients_everything_is_not_found() {
    for t in ["Observation", "Practitioner", "Group"] {
        not_found(query(
            &clinician(),
            Action::Everything,
            t,
            Some(&unrelated("p2")),
        ));
    }
    allowed(query(
        &clinician(),
        Action::Everything,
        "Practitioner",
        Some(&adult("p1")),
    ));
}
