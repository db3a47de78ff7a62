//! Builders for the policy tests: a fixed "today", people, resources and the common questions.

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, TimeZone, Utc};
use policy::{
    decide, Action, AgeRules, BreakGlass, Decision, Denial, FeatureSet, Filter, IdentityLevel,
    Labels, PatientFacts, ProxyGrant, Relationship, ResourceFacts, ScopeContext, Scopes, StaffRole,
    Subject, Target, Who,
};

pub const ORG: &str = "A81001";
pub const OTHER_ORG: &str = "B82002";

pub fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    match NaiveDate::from_ymd_opt(y, m, d) {
        Some(d) => d,
        None => panic!("bad test date {y}-{m}-{d}"),
    }
}

/// Today, Europe/London.
pub fn today() -> NaiveDate {
    date(2024, 6, 1)
}

pub fn now() -> DateTime<Utc> {
    match Utc.with_ymd_and_hms(2024, 6, 1, 12, 0, 0).single() {
        Some(t) => t,
        None => panic!("bad test instant"),
    }
}

/// An adult patient registered with [`ORG`].
pub fn adult(id: &str) -> PatientFacts {
    PatientFacts {
        id: id.into(),
        birth_date: Some(date(1980, 1, 1)),
        related_organisations: vec![ORG.into()],
        refused_organisations: vec![],
        age_rules: AgeRules::default(),
    }
}

/// A child who turned `years` old exactly `days_after_birthday` days before today.
pub fn child(id: &str, years: i32, days_after_birthday: i64) -> PatientFacts {
    let t = today() - TimeDelta::days(days_after_birthday);
    PatientFacts {
        birth_date: Some(date(t.year() - years, t.month(), t.day())),
        ..adult(id)
    }
}

pub fn resource(resource_type: &str, id: &str, patients: &[&str]) -> ResourceFacts {
    ResourceFacts {
        resource_type: resource_type.into(),
        id: id.into(),
        patients: patients.iter().map(|p| p.to_string()).collect(),
        labels: Labels::default(),
    }
}

pub fn restricted(mut r: ResourceFacts, author: Option<&str>) -> ResourceFacts {
    r.labels = Labels {
        restricted: true,
        sensitive: true,
        author_organisation: author.map(str::to_string),
    };
    r
}

pub fn sensitive(mut r: ResourceFacts) -> ResourceFacts {
    r.labels = Labels {
        restricted: false,
        sensitive: true,
        author_organisation: None,
    };
    r
}

pub fn patient(id: &str) -> Who {
    patient_at(id, IdentityLevel::P9)
}

pub fn patient_at(id: &str, identity_level: IdentityLevel) -> Who {
    Who {
        subject: Subject::Patient {
            patient: id.into(),
            identity_level,
        },
        scopes: Scopes::full(ScopeContext::User),
    }
}

/// A grant for `patient` covering every feature, valid since 2020, open-ended.
pub fn grant(patient: &str, relationship: Relationship) -> ProxyGrant {
    ProxyGrant {
        related_person: "rp-1".into(),
        patient: patient.into(),
        relationship,
        features: FeatureSet::all(),
        start: date(2020, 1, 1),
        end: None,
        young_person_consented: false,
        clinician_allows_sensitive: false,
    }
}

pub fn proxy(grant: ProxyGrant) -> Who {
    Who {
        subject: Subject::Proxy {
            grant,
            identity_level: IdentityLevel::P9,
        },
        scopes: Scopes::full(ScopeContext::User),
    }
}

pub fn staff(organisation: &str, role: StaffRole) -> Who {
    Who {
        subject: Subject::Staff {
            practitioner_role: "pr-1".into(),
            organisation: organisation.into(),
            role,
            break_glass: None,
        },
        scopes: Scopes::full(ScopeContext::User),
    }
}

pub fn clinician() -> Who {
    staff(ORG, StaffRole::Clinician)
}

pub fn clerk() -> Who {
    staff(ORG, StaffRole::Clerical)
}

pub fn with_break_glass(who: Who, patient: &str, reason: &str, minutes: i64) -> Who {
    match who.subject {
        Subject::Staff {
            practitioner_role,
            organisation,
            role,
            ..
        } => Who {
            subject: Subject::Staff {
                practitioner_role,
                organisation,
                role,
                break_glass: Some(BreakGlass {
                    patient: patient.into(),
                    reason: reason.into(),
                    expires: now() + TimeDelta::minutes(minutes),
                }),
            },
            scopes: who.scopes,
        },
        _ => panic!("break glass is for staff"),
    }
}

pub fn system() -> Who {
    Who {
        subject: Subject::System {
            client_id: "lab".into(),
        },
        scopes: Scopes::full(ScopeContext::System),
    }
}

pub fn admin() -> Who {
    Who {
        subject: Subject::Admin,
        scopes: Scopes::full(ScopeContext::User),
    }
}

pub fn anonymous() -> Who {
    Who {
        subject: Subject::Anonymous,
        scopes: Scopes::none(),
    }
}

pub fn scoped(mut who: Who, scopes: &str) -> Who {
    who.scopes = match Scopes::parse(scopes) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    who
}

pub fn on(who: &Who, action: Action, r: &ResourceFacts, patients: &[PatientFacts]) -> Decision {
    decide(
        who,
        action,
        Target::Resource { facts: r, patients },
        now(),
        today(),
    )
}

pub fn read(who: &Who, r: &ResourceFacts, patients: &[PatientFacts]) -> Decision {
    on(who, Action::Read, r, patients)
}

pub fn write_new(
    who: &Who,
    action: Action,
    r: &ResourceFacts,
    patients: &[PatientFacts],
) -> Decision {
    decide(
        who,
        action,
        Target::New { facts: r, patients },
        now(),
        today(),
    )
}

pub fn create(who: &Who, r: &ResourceFacts, patients: &[PatientFacts]) -> Decision {
    write_new(who, Action::Create, r, patients)
}

pub fn query(
    who: &Who,
    action: Action,
    resource_type: &str,
    patient: Option<&PatientFacts>,
) -> Decision {
    decide(
        who,
        action,
        Target::Query {
            resource_type,
            patient,
        },
        now(),
        today(),
    )
}

pub fn search(who: &Who, resource_type: &str, patient: Option<&PatientFacts>) -> Decision {
    query(who, Action::Search, resource_type, patient)
}

#[track_caller]
pub fn allowed(d: Decision) -> Filter {
    match d {
        Decision::Allow(f) => f,
        other => panic!("expected Allow, got {other:?}"),
    }
}

#[track_caller]
pub fn not_found(d: Decision) {
    assert_eq!(d, Decision::Deny(Denial::NotFound));
}

/// Asserts a 403 and returns its message.
#[track_caller]
pub fn forbidden(d: Decision) -> String {
    match d {
        Decision::Deny(Denial::Forbidden(m)) => m,
        other => panic!("expected Forbidden, got {other:?}"),
    }
}

pub fn only(id: &str) -> policy::PatientScope {
    policy::PatientScope::Only(vec![id.to_string()])
}
