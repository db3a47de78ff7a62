//! Rule 5: a proxy sees what their grant allows, while it is in date; the age rules for parents;
//! restricted items never.

use policy::{
    age_band, Action, AgeBand, AgeRules, Feature, FeatureSet, IdentityLevel, PatientFacts,
    PatientScope, Relationship, RestrictedRule, Subject,
};

use crate::support::*;

fn parent_of(child_facts: &PatientFacts) -> policy::Who {
    proxy(grant(&child_facts.id, Relationship::Parent))
}

fn obs(p: &str) -> policy::ResourceFacts {
    resource("Observation", "o", &[p])
}

#[test]
fn proxy_sees_the_granted_patient() {
    let p = adult("p1");
    let who = proxy(grant("p1", Relationship::Carer));
    let f = allowed(read(&who, &obs("p1"), std::slice::from_ref(&p)));
    assert_eq!(f.patients, only("p1"));
    let f = allowed(search(&who, "Observation", Some(&p)));
    assert_eq!(f.patients, only("p1"));
    assert_eq!(f.hide_restricted, RestrictedRule::Hide);
}

#[test]
fn proxy_reading_another_patient_gets_not_found() {
    let who = proxy(grant("p1", Relationship::Carer));
    not_found(read(&who, &obs("p2"), &[adult("p1"), adult("p2")]));
    not_found(query(
        &who,
        Action::Everything,
        "Observation",
        Some(&adult("p2")),
    ));
    not_found(search(&who, "Observation", Some(&adult("p2"))));
}

#[test]
fn proxy_grant_before_its_start_is_as_if_nothing() {
    let mut g = grant("p1", Relationship::Carer);
    g.start = today().succ_opt().unwrap_or(today());
    let who = proxy(g);
    not_found(read(&who, &obs("p1"), &[adult("p1")]));
    let f = allowed(search(&who, "Observation", Some(&adult("p1"))));
    assert_eq!(f.patients, PatientScope::None);
    not_found(query(
        &who,
        Action::Everything,
        "Observation",
        Some(&adult("p1")),
    ));
}

#[test]
fn proxy_grant_after_its_end_is_as_if_nothing() {
    let mut g = grant("p1", Relationship::Carer);
    g.end = today().pred_opt();
    let who = proxy(g);
    not_found(read(&who, &obs("p1"), &[adult("p1")]));
    assert_eq!(
        allowed(search(&who, "Observation", Some(&adult("p1")))).patients,
        PatientScope::None
    );
}

#[test]
fn proxy_grant_is_active_on_its_last_day() {
    let mut g = grant("p1", Relationship::Carer);
    g.end = Some(today());
    allowed(read(&proxy(g), &obs("p1"), &[adult("p1")]));
}

#[test]
fn proxy_without_the_feature_is_forbidden() {
    let mut g = grant("p1", Relationship::Carer);
    g.features = FeatureSet::all().without(Feature::Record);
    let who = proxy(g);
    let m = forbidden(read(&who, &obs("p1"), &[adult("p1")]));
    assert!(m.contains("Record"), "{m}");
    forbidden(search(&who, "Condition", Some(&adult("p1"))));
    allowed(read(
        &who,
        &resource("Appointment", "a", &["p1"]),
        &[adult("p1")],
    ));
}

#[test]
fn proxy_below_p9_gets_the_reduced_view() {
    let who = policy::Who {
        subject: Subject::Proxy {
            grant: grant("p1", Relationship::Carer),
            identity_level: IdentityLevel::P5,
        },
        scopes: policy::Scopes::full(policy::ScopeContext::User),
    };
    allowed(read(
        &who,
        &resource("Appointment", "a", &["p1"]),
        &[adult("p1")],
    ));
    let m = forbidden(read(&who, &obs("p1"), &[adult("p1")]));
    assert!(m.contains("P9"), "{m}");
    forbidden(read(
        &who,
        &resource("DocumentReference", "d", &["p1"]),
        &[adult("p1")],
    ));
}

#[test]
fn proxy_for_child_under_11_sees_full_record() {
    let kid = child("c1", 10, 100);
    let who = parent_of(&kid);
    let f = allowed(search(&who, "Condition", Some(&kid)));
    assert!(!f.hide_sensitive);
    allowed(read(
        &who,
        &sensitive(resource("Condition", "c", &["c1"])),
        &[kid],
    ));
}

#[test]
fn proxy_for_child_aged_11_to_15_does_not_see_sensitive_items() {
    for (years, days) in [(11, 0), (13, 40), (15, 364)] {
        let kid = child("c1", years, days);
        let who = parent_of(&kid);
        let f = allowed(search(&who, "Condition", Some(&kid)));
        assert!(f.hide_sensitive, "{years}y{days}d");
        assert_eq!(f.patients, only("c1"));
        not_found(read(
            &who,
            &sensitive(resource("Condition", "c", &["c1"])),
            std::slice::from_ref(&kid),
        ));
        allowed(read(&who, &resource("Condition", "c", &["c1"]), &[kid]));
    }
}

#[test]
fn proxy_for_child_aged_11_to_15_sees_sensitive_items_when_a_clinician_allows() {
    let kid = child("c1", 13, 0);
    let mut g = grant("c1", Relationship::Guardian);
    g.clinician_allows_sensitive = true;
    let who = proxy(g);
    assert!(!allowed(search(&who, "Condition", Some(&kid))).hide_sensitive);
    allowed(read(
        &who,
        &sensitive(resource("Condition", "c", &["c1"])),
        &[kid],
    ));
}

#[test]
fn parental_proxy_ends_at_16() {
    let kid = child("c1", 16, 0);
    let who = parent_of(&kid);
    not_found(read(
        &who,
        &resource("Appointment", "a", &["c1"]),
        std::slice::from_ref(&kid),
    ));
    assert_eq!(
        allowed(search(&who, "Appointment", Some(&kid))).patients,
        PatientScope::None
    );
    not_found(query(&who, Action::Everything, "Appointment", Some(&kid)));
}

#[test]
fn parental_proxy_continues_after_16_when_the_young_person_grants_it() {
    let kid = child("c1", 17, 0);
    let mut g = grant("c1", Relationship::Parent);
    g.young_person_consented = true;
    let who = proxy(g);
    allowed(read(
        &who,
        &sensitive(resource("Condition", "c", &["c1"])),
        std::slice::from_ref(&kid),
    ));
    not_found(read(
        &who,
        &restricted(resource("Condition", "c", &["c1"]), None),
        &[kid],
    ));
}

#[test]
fn age_band_boundaries_fall_on_the_birthdays() {
    let rules = AgeRules::default();
    let band =
        |years, days_after| age_band(child("c", years, days_after).birth_date, today(), rules);
    assert_eq!(band(0, 0), AgeBand::Child);
    assert_eq!(band(10, 364), AgeBand::Child);
    assert_eq!(band(11, 0), AgeBand::YoungPerson);
    assert_eq!(band(15, 364), AgeBand::YoungPerson);
    assert_eq!(band(16, 0), AgeBand::Adult);
    assert_eq!(age_band(None, today(), rules), AgeBand::Adult);
}

#[test]
fn child_born_on_29_february_turns_11_on_1_march_in_a_common_year() {
    let rules = AgeRules::default();
    let birth = Some(date(2008, 2, 29));
    assert_eq!(age_band(birth, date(2019, 2, 28), rules), AgeBand::Child);
    assert_eq!(
        age_band(birth, date(2019, 3, 1), rules),
        AgeBand::YoungPerson
    );
    // 16 falls in a leap year: on 29 February itself.
    assert_eq!(
        age_band(birth, date(2024, 2, 28), rules),
        AgeBand::YoungPerson
    );
    assert_eq!(age_band(birth, date(2024, 2, 29), rules), AgeBand::Adult);
}

#[test]
fn leap_day_rule_applies_to_decisions() {
    let kid = PatientFacts {
        birth_date: Some(date(2008, 2, 29)),
        ..adult("c1")
    };
    let mut g = grant("c1", Relationship::Parent);
    g.start = date(2008, 3, 1);
    let who = proxy(g);
    let sens = sensitive(resource("Condition", "c", &["c1"]));
    let at = |d| {
        policy::decide(
            &who,
            Action::Read,
            policy::Target::Resource {
                facts: &sens,
                patients: std::slice::from_ref(&kid),
            },
            now(),
            d,
        )
    };
    allowed(at(date(2019, 2, 28)));
    not_found(at(date(2019, 3, 1)));
}

#[test]
fn birth_date_in_the_future_counts_as_unknown() {
    assert_eq!(
        age_band(Some(date(2030, 1, 1)), today(), AgeRules::default()),
        AgeBand::Adult
    );
}

#[test]
fn age_rules_are_per_organisation() {
    let rules = AgeRules {
        full_until: 12,
        ends_at: 18,
    };
    let mut kid = child("c1", 11, 10);
    kid.age_rules = rules;
    let who = parent_of(&kid);
    assert!(!allowed(search(&who, "Condition", Some(&kid))).hide_sensitive);
    let mut teen = child("c1", 17, 10);
    teen.age_rules = rules;
    assert!(allowed(search(&who, "Condition", Some(&teen))).hide_sensitive);
}

#[test]
fn inconsistent_age_rules_end_access_at_ends_at() {
    // full_until above ends_at: the end of parental access wins.
    let rules = AgeRules {
        full_until: 18,
        ends_at: 16,
    };
    assert_eq!(
        age_band(child("c", 16, 0).birth_date, today(), rules),
        AgeBand::Adult
    );
    assert_eq!(
        age_band(child("c", 15, 0).birth_date, today(), rules),
        AgeBand::Child
    );
}

#[test]
fn unknown_birth_date_counts_as_adult_for_parents() {
    let kid = PatientFacts {
        birth_date: None,
        ..adult("c1")
    };
    not_found(read(
        &parent_of(&kid),
        &obs("c1"),
        std::slice::from_ref(&kid),
    ));
    allowed(read(
        &proxy(grant("c1", Relationship::Carer)),
        &obs("c1"),
        &[kid],
    ));
}

#[test]
fn missing_patient_facts_count_as_unknown_birth_date() {
    let who = proxy(grant("c1", Relationship::Parent));
    not_found(read(&who, &obs("c1"), &[]));
    assert_eq!(
        allowed(search(&who, "Observation", None)).patients,
        PatientScope::None
    );
}

#[test]
fn carers_have_no_age_rule() {
    let teen = child("c1", 13, 0);
    let who = proxy(grant("c1", Relationship::Carer));
    assert!(!allowed(search(&who, "Condition", Some(&teen))).hide_sensitive);
    allowed(read(
        &who,
        &sensitive(resource("Condition", "c", &["c1"])),
        &[teen],
    ));
    let who = proxy(grant("p1", Relationship::Other));
    allowed(read(&who, &obs("p1"), &[adult("p1")]));
}

#[test]
fn restricted_items_are_hidden_from_every_proxy() {
    let cases = [
        (child("c1", 5, 0), Relationship::Parent),
        (child("c1", 13, 0), Relationship::Guardian),
        (adult("c1"), Relationship::Carer),
    ];
    for (facts, rel) in cases {
        let mut g = grant("c1", rel);
        g.clinician_allows_sensitive = true;
        g.young_person_consented = true;
        let who = proxy(g);
        let r = restricted(resource("Condition", "c", &["c1"]), Some(ORG));
        not_found(read(&who, &r, std::slice::from_ref(&facts)));
        let f = allowed(search(&who, "Condition", Some(&facts)));
        assert_eq!(f.hide_restricted, RestrictedRule::Hide);
    }
}

#[test]
fn proxy_writes_through_the_portal_workflows() {
    let kid = [child("c1", 5, 0)];
    let who = parent_of(&kid[0]);
    allowed(on(
        &who,
        Action::Update,
        &resource("Appointment", "a", &["c1"]),
        &kid,
    ));
    allowed(write_new(
        &who,
        Action::Update,
        &resource("Appointment", "a", &["c1"]),
        &kid,
    ));
    allowed(create(&who, &resource("Communication", "m", &["c1"]), &kid));
    allowed(create(
        &who,
        &resource("QuestionnaireResponse", "q", &["c1"]),
        &kid,
    ));
    allowed(on(
        &who,
        Action::Update,
        &resource("QuestionnaireResponse", "q", &["c1"]),
        &kid,
    ));
    allowed(create(
        &who,
        &resource("MedicationRequest", "m", &["c1"]),
        &kid,
    ));
}

#[test]
fn proxy_never_deletes() {
    let kid = [child("c1", 5, 0)];
    let who = parent_of(&kid[0]);
    for t in [
        "Appointment",
        "Communication",
        "QuestionnaireResponse",
        "MedicationRequest",
    ] {
        forbidden(on(&who, Action::Delete, &resource(t, "x", &["c1"]), &kid));
    }
}

#[test]
fn proxy_may_not_write_the_record_or_create_patients() {
    let kid = [child("c1", 5, 0)];
    let who = parent_of(&kid[0]);
    forbidden(create(&who, &resource("Condition", "x", &["c1"]), &kid));
    forbidden(create(&who, &resource("Appointment", "x", &["c1"]), &kid));
    forbidden(create(&who, &resource("Patient", "c1", &["c1"]), &kid));
}

#[test]
fn proxy_writes_need_the_feature() {
    let kid = [child("c1", 5, 0)];
    let mut g = grant("c1", Relationship::Parent);
    g.features = FeatureSet::empty().with(Feature::Appointments);
    let who = proxy(g);
    allowed(on(
        &who,
        Action::Update,
        &resource("Appointment", "a", &["c1"]),
        &kid,
    ));
    forbidden(create(&who, &resource("Communication", "m", &["c1"]), &kid));
    forbidden(create(
        &who,
        &resource("MedicationRequest", "m", &["c1"]),
        &kid,
    ));
}

#[test]
fn proxy_may_not_write_restricted_items() {
    let kid = [child("c1", 5, 0)];
    let who = parent_of(&kid[0]);
    forbidden(create(
        &who,
        &restricted(resource("Communication", "m", &["c1"]), None),
        &kid,
    ));
}

#[test]
fn proxy_may_not_write_for_another_patient() {
    let who = proxy(grant("c1", Relationship::Carer));
    not_found(create(
        &who,
        &resource("Communication", "m", &["p2"]),
        &[adult("p2")],
    ));
}

#[test]
fn proxy_reads_reference_data_even_without_an_active_grant() {
    let mut g = grant("c1", Relationship::Carer);
    g.end = today().pred_opt();
    let who = proxy(g);
    allowed(read(&who, &resource("Practitioner", "pr", &[]), &[]));
    let f = allowed(search(&who, "Location", None));
    assert_eq!(f.patients, PatientScope::Any);
}

#[test]
fn proxy_is_never_given_any_patient_for_patient_data() {
    let who = proxy(grant("c1", Relationship::Carer));
    for t in ["Patient", "Observation", "AuditEvent", "Consent"] {
        let f = allowed(search(&who, t, Some(&adult("c1"))));
        assert_eq!(f.patients, only("c1"));
    }
}

#[test]
fn every_part_of_everything_is_not_found_once_the_grant_ends() {
    let mut g = grant("p1", Relationship::Carer);
    g.end = today().pred_opt();
    let who = proxy(g);
    for t in ["Observation", "Practitioner"] {
        not_found(query(&who, Action::Everything, t, Some(&adult("p1"))));
        not_found(query(&who, Action::Everything, t, Some(&adult("p2"))));
    }
}
