//! Rule 3: every action needs the SMART scope for its type, in a context the subject may use.
//! Scopes only narrow what the role allows.

use policy::{Action, ScopeContext, Scopes};

use crate::support::*;

#[test]
fn read_needs_r_and_search_needs_s() {
    let p = adult("p1");
    let obs = resource("Observation", "o", &["p1"]);
    let r_only = scoped(patient("p1"), "patient/Observation.r");
    allowed(read(&r_only, &obs, std::slice::from_ref(&p)));
    forbidden(search(&r_only, "Observation", Some(&p)));
    let s_only = scoped(patient("p1"), "patient/Observation.s");
    forbidden(read(&s_only, &obs, std::slice::from_ref(&p)));
    allowed(search(&s_only, "Observation", Some(&p)));
}

#[test]
fn vread_history_and_binary_content_need_r() {
    let p = adult("p1");
    let s_only = scoped(patient("p1"), "patient/*.s");
    let r_only = scoped(patient("p1"), "patient/*.r");
    let bin = resource("Binary", "b", &["p1"]);
    for action in [Action::VRead, Action::History, Action::BinaryContent] {
        forbidden(on(&s_only, action, &bin, std::slice::from_ref(&p)));
        allowed(on(&r_only, action, &bin, std::slice::from_ref(&p)));
    }
    forbidden(query(&s_only, Action::History, "Observation", Some(&p)));
    allowed(query(&r_only, Action::History, "Observation", Some(&p)));
}

#[test]
fn everything_and_export_need_s() {
    let p = adult("p1");
    let r_only = scoped(patient("p1"), "patient/*.r");
    let s_only = scoped(patient("p1"), "patient/*.s");
    for action in [Action::Everything, Action::Export] {
        forbidden(query(&r_only, action, "Observation", Some(&p)));
        allowed(query(&s_only, action, "Observation", Some(&p)));
    }
}

#[test]
fn writes_need_c_u_and_d() {
    let p = adult("p1");
    let obs = resource("Observation", "o", &["p1"]);
    let read_only = scoped(clinician(), "user/*.read");
    forbidden(create(&read_only, &obs, std::slice::from_ref(&p)));
    forbidden(on(
        &read_only,
        Action::Update,
        &obs,
        std::slice::from_ref(&p),
    ));
    forbidden(on(
        &read_only,
        Action::Delete,
        &obs,
        std::slice::from_ref(&p),
    ));
    let c = scoped(clinician(), "user/Observation.c");
    allowed(create(&c, &obs, std::slice::from_ref(&p)));
    forbidden(on(&c, Action::Update, &obs, std::slice::from_ref(&p)));
    let ud = scoped(clinician(), "user/Observation.ud");
    allowed(on(&ud, Action::Update, &obs, std::slice::from_ref(&p)));
    allowed(on(&ud, Action::Delete, &obs, std::slice::from_ref(&p)));
    let write = scoped(clinician(), "user/Observation.write");
    allowed(create(&write, &obs, std::slice::from_ref(&p)));
    allowed(on(&write, Action::Delete, &obs, &[p]));
}

#[test]
fn missing_scope_message_names_the_scope() {
    let p = adult("p1");
    let who = scoped(patient("p1"), "patient/Condition.rs");
    let m = forbidden(read(&who, &resource("Observation", "o", &["p1"]), &[p]));
    assert!(m.contains("patient/Observation.r"), "{m}");
    let m = forbidden(search(
        &scoped(clinician(), "user/Condition.rs"),
        "Observation",
        None,
    ));
    assert!(m.contains("user/Observation.s"), "{m}");
}

#[test]
fn a_scope_for_another_type_does_not_help() {
    let who = scoped(patient("p1"), "patient/Condition.rs");
    forbidden(search(&who, "Observation", Some(&adult("p1"))));
}

#[test]
fn no_scopes_no_access() {
    let mut who = patient("p1");
    who.scopes = Scopes::none();
    forbidden(read(
        &who,
        &resource("Appointment", "a", &["p1"]),
        &[adult("p1")],
    ));
    forbidden(read(&who, &resource("Practitioner", "pr", &[]), &[]));
}

#[test]
fn system_scopes_do_not_count_for_people() {
    let p = adult("p1");
    for who in [
        scoped(patient("p1"), "system/*.*"),
        scoped(
            proxy(grant("p1", policy::Relationship::Carer)),
            "system/*.*",
        ),
        scoped(clinician(), "system/*.*"),
        scoped(admin(), "system/*.*"),
    ] {
        forbidden(search(&who, "Appointment", Some(&p)));
    }
}

#[test]
fn user_and_patient_scopes_do_not_count_for_system_clients() {
    for scopes in ["user/*.*", "patient/*.*"] {
        let who = scoped(system(), scopes);
        forbidden(search(&who, "Observation", None));
        forbidden(read(&who, &resource("Observation", "o", &["p1"]), &[]));
    }
}

#[test]
fn patient_scopes_for_staff_reach_only_the_launch_patient() {
    let p1 = adult("p1");
    let p2 = adult("p2");
    let mut who = scoped(clinician(), "patient/*.rs");
    who.scopes.patient_context = Some("p1".into());
    allowed(read(
        &who,
        &resource("Observation", "o", &["p1"]),
        std::slice::from_ref(&p1),
    ));
    forbidden(read(
        &who,
        &resource("Observation", "o", &["p2"]),
        std::slice::from_ref(&p2),
    ));
    let f = allowed(search(&who, "Observation", Some(&p1)));
    assert_eq!(f.patients, only("p1"));
    forbidden(search(&who, "Observation", Some(&p2)));
    // A search over all the organisation's patients is more than the launch patient.
    forbidden(search(&who, "Observation", None));
    // Reference data is no patient's: patient scopes cover it.
    allowed(search(&who, "Practitioner", None));
}

#[test]
fn patient_scopes_without_launch_patient_give_staff_no_patient_data() {
    let who = scoped(clinician(), "patient/*.rs");
    forbidden(read(
        &who,
        &resource("Observation", "o", &["p1"]),
        &[adult("p1")],
    ));
}

#[test]
fn missing_scope_on_another_patients_data_is_not_found() {
    let who = scoped(patient("p1"), "patient/Condition.rs");
    not_found(read(
        &who,
        &resource("Observation", "o", &["p2"]),
        &[adult("p2")],
    ));
    let mut who = clinician();
    who.scopes = Scopes::none();
    let unrelated = policy::PatientFacts {
        related_organisations: vec![],
        ..adult("p9")
    };
    not_found(read(
        &who,
        &resource("Observation", "o", &["p9"]),
        &[unrelated],
    ));
}

#[test]
fn full_user_scopes_are_what_a_web_session_carries() {
    let s = Scopes::full(ScopeContext::User);
    assert!(s.grants(ScopeContext::User, "Observation", policy::Permissions::ALL));
    assert!(!s.grants(
        ScopeContext::System,
        "Observation",
        policy::Permissions::READ
    ));
}
