//! Properties of the policy over generated subjects, scopes, facts and questions. Ids and
//! organisations come from small pools so that matches and mismatches both happen often.

use chrono::{NaiveDate, TimeDelta};
use policy::{
    decide, Action, AgeRules, BreakGlass, Decision, Denial, FeatureSet, IdentityLevel, Labels,
    PatientFacts, PatientScope, Permissions, ProxyGrant, Relationship, ResourceFacts,
    RestrictedRule, ScopeContext, ScopeGrant, Scopes, StaffRole, Subject, Target, TypeClass, Who,
};
use proptest::prelude::*;
use proptest::sample::{select, subsequence};

use crate::support::{now, today};

const PATIENTS: &[&str] = &["p1", "p2", "p3"];
const ORGS: &[&str] = &["ORG1", "ORG2"];
const TYPES: &[&str] = &[
    "Patient",
    "Observation",
    "Condition",
    "Appointment",
    "Communication",
    "QuestionnaireResponse",
    "MedicationRequest",
    "DocumentReference",
    "Binary",
    "Consent",
    "AuditEvent",
    "Practitioner",
    "Slot",
    "Organization",
    "Group",
    "Basic",
];
const ACTIONS: &[Action] = &[
    Action::Read,
    Action::VRead,
    Action::History,
    Action::Search,
    Action::Create,
    Action::Update,
    Action::Delete,
    Action::Everything,
    Action::Export,
    Action::BinaryContent,
];

fn id() -> impl Strategy<Value = String> {
    select(PATIENTS).prop_map(str::to_string)
}

fn org() -> impl Strategy<Value = String> {
    select(ORGS).prop_map(str::to_string)
}

fn orgs() -> impl Strategy<Value = Vec<String>> {
    subsequence(ORGS, 0..=ORGS.len()).prop_map(|v| v.into_iter().map(str::to_string).collect())
}

fn day() -> impl Strategy<Value = NaiveDate> {
    // 1990 to 2030 around today (2024-06-01), including a few days either side of it.
    prop_oneof![
        (-14_600i64..2_400).prop_map(|d| today() + TimeDelta::days(d)),
        (-3i64..=3).prop_map(|d| today() + TimeDelta::days(d)),
    ]
}

/// Half the time a child or teenager (0 to 19, any day of the year), else any day.
fn birth_date() -> impl Strategy<Value = NaiveDate> {
    prop_oneof![
        (0i64..20 * 365).prop_map(|d| today() - TimeDelta::days(d)),
        day(),
    ]
}

fn patient_facts() -> impl Strategy<Value = PatientFacts> {
    (
        id(),
        prop::option::weighted(0.9, birth_date()),
        orgs(),
        orgs(),
        0u32..20,
        0u32..20,
    )
        .prop_map(
            |(id, birth_date, related, refused, full_until, ends_at)| PatientFacts {
                id,
                birth_date,
                related_organisations: related,
                refused_organisations: refused,
                age_rules: if full_until % 3 == 0 {
                    AgeRules {
                        full_until,
                        ends_at,
                    }
                } else {
                    AgeRules::default()
                },
            },
        )
}

/// Facts for most of `ids` (as the caller loads them; now and then one is missing) and
/// sometimes for a patient the resource does not name.
fn owners_for(ids: Vec<String>) -> impl Strategy<Value = Vec<PatientFacts>> {
    let n = ids.len();
    (
        prop::collection::vec(prop::option::weighted(0.85, patient_facts()), n),
        prop::option::weighted(0.2, patient_facts()),
    )
        .prop_map(move |(facts, extra)| {
            let mut owners: Vec<PatientFacts> = ids
                .iter()
                .zip(facts)
                .filter_map(|(id, f)| {
                    f.map(|f| PatientFacts {
                        id: id.clone(),
                        ..f
                    })
                })
                .collect();
            if let Some(extra) = extra {
                if !owners.iter().any(|o| o.id == extra.id) {
                    owners.push(extra);
                }
            }
            owners
        })
}

/// A resource with the facts of its owners.
fn resource_with_owners() -> impl Strategy<Value = (ResourceFacts, Vec<PatientFacts>)> {
    resource_facts().prop_flat_map(|r| {
        let owners = owners_for(r.patients.clone());
        (Just(r), owners)
    })
}

fn labels() -> impl Strategy<Value = Labels> {
    (any::<bool>(), any::<bool>(), prop::option::of(org())).prop_map(
        |(restricted, sensitive, author_organisation)| Labels {
            restricted,
            sensitive: sensitive || restricted,
            author_organisation,
        },
    )
}

fn resource_facts() -> impl Strategy<Value = ResourceFacts> {
    (select(TYPES), subsequence(PATIENTS, 0..=2), labels()).prop_map(|(t, patients, labels)| {
        ResourceFacts {
            resource_type: t.to_string(),
            id: "r1".into(),
            patients: patients.into_iter().map(str::to_string).collect(),
            labels,
        }
    })
}

fn scope_grant() -> impl Strategy<Value = ScopeGrant> {
    (
        select(
            &[
                ScopeContext::Patient,
                ScopeContext::User,
                ScopeContext::System,
            ][..],
        ),
        prop::option::of(select(TYPES).prop_map(str::to_string)),
        0u8..32,
    )
        .prop_map(|(context, resource_type, bits)| {
            let permissions = [
                Permissions::CREATE,
                Permissions::READ,
                Permissions::UPDATE,
                Permissions::DELETE,
                Permissions::SEARCH,
            ]
            .iter()
            .enumerate()
            .filter(|(i, _)| bits & (1 << i) != 0)
            .fold(Permissions::NONE, |acc, (_, p)| acc.with(*p));
            ScopeGrant {
                context,
                resource_type,
                permissions,
            }
        })
}

fn scopes() -> impl Strategy<Value = Scopes> {
    (
        prop::collection::vec(scope_grant(), 0..6),
        prop::option::of(id()),
        any::<bool>(),
    )
        .prop_map(|(mut grants, patient_context, full)| {
            if full {
                // Often hold everything, so that the other rules are what decides.
                for c in [
                    ScopeContext::Patient,
                    ScopeContext::User,
                    ScopeContext::System,
                ] {
                    grants.push(ScopeGrant::all_types(c, Permissions::ALL));
                }
            }
            Scopes {
                grants,
                patient_context,
            }
        })
}

fn level() -> impl Strategy<Value = IdentityLevel> {
    prop_oneof![
        3 => Just(IdentityLevel::P9),
        1 => Just(IdentityLevel::P5),
        1 => Just(IdentityLevel::P0),
    ]
}

fn features() -> impl Strategy<Value = FeatureSet> {
    prop_oneof![
        Just(FeatureSet::all()),
        subsequence(&policy::Feature::ALL[..], 0..=10).prop_map(|v| v.into_iter().collect()),
    ]
}

fn grant() -> impl Strategy<Value = ProxyGrant> {
    (
        id(),
        select(
            &[
                Relationship::Parent,
                Relationship::Guardian,
                Relationship::Carer,
                Relationship::Other,
            ][..],
        ),
        features(),
        day(),
        prop::option::of(day()),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(patient, relationship, features, start, end, consented, allows)| ProxyGrant {
                related_person: "rp".into(),
                patient,
                relationship,
                features,
                start: start.min(today()),
                end,
                young_person_consented: consented,
                clinician_allows_sensitive: allows,
            },
        )
}

fn break_glass() -> impl Strategy<Value = Option<BreakGlass>> {
    prop::option::of(
        (
            id(),
            select(&["", "urgent", "Unconscious in A&E, collapsed at home"][..]),
            -60i64..600,
        )
            .prop_map(|(patient, reason, minutes)| BreakGlass {
                patient,
                reason: reason.to_string(),
                expires: now() + TimeDelta::minutes(minutes),
            }),
    )
}

fn subject() -> impl Strategy<Value = Subject> {
    prop_oneof![
        Just(Subject::Anonymous),
        (id(), level()).prop_map(|(patient, identity_level)| Subject::Patient {
            patient,
            identity_level
        }),
        (grant(), level()).prop_map(|(grant, identity_level)| Subject::Proxy {
            grant,
            identity_level
        }),
        (
            org(),
            select(&[StaffRole::Clinician, StaffRole::Clerical][..]),
            break_glass()
        )
            .prop_map(|(organisation, role, break_glass)| Subject::Staff {
                practitioner_role: "pr".into(),
                organisation,
                role,
                break_glass,
            }),
        Just(Subject::System {
            client_id: "c".into()
        }),
        Just(Subject::Admin),
    ]
}

fn who() -> impl Strategy<Value = Who> {
    (subject(), scopes()).prop_map(|(subject, scopes)| Who { subject, scopes })
}

fn action() -> impl Strategy<Value = Action> {
    select(ACTIONS)
}

/// The kind of target a question is about, with the facts it carries.
#[derive(Debug, Clone)]
enum Question {
    Resource(ResourceFacts, Vec<PatientFacts>),
    New(ResourceFacts, Vec<PatientFacts>),
    Query(String, Option<PatientFacts>),
}

impl Question {
    fn target(&self) -> Target<'_> {
        match self {
            Question::Resource(facts, patients) => Target::Resource { facts, patients },
            Question::New(facts, patients) => Target::New { facts, patients },
            Question::Query(resource_type, patient) => Target::Query {
                resource_type,
                patient: patient.as_ref(),
            },
        }
    }
}

fn question() -> impl Strategy<Value = Question> {
    prop_oneof![
        resource_with_owners().prop_map(|(r, p)| Question::Resource(r, p)),
        resource_with_owners().prop_map(|(r, p)| Question::New(r, p)),
        (select(TYPES), prop::option::of(patient_facts()))
            .prop_map(|(t, p)| Question::Query(t.to_string(), p)),
    ]
}

fn ask(who: &Who, action: Action, q: &Question) -> Decision {
    decide(who, action, q.target(), now(), today())
}

fn grants_access(d: &Decision) -> bool {
    matches!(d, Decision::Allow(_) | Decision::BreakGlass(_))
}

fn is_patient_data(resource_type: &str) -> bool {
    matches!(policy::type_class(resource_type), TypeClass::PatientData(_))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// decide answers every question, and every denial is 401, 403 or 404.
    #[test]
    fn decide_is_total(who in who(), action in action(), q in question()) {
        if let Decision::Deny(denial) = ask(&who, action, &q) {
            prop_assert!(matches!(denial.status(), 401 | 403 | 404));
        }
    }

    /// (a) A patient or proxy is never allowed a resource outside their patient's compartment.
    #[test]
    fn patients_and_proxies_never_reach_other_compartments(
        who in who(), action in action(), q in question()
    ) {
        let own = who.own_patient().map(str::to_string);
        if let (Some(own), Question::Resource(r, _) | Question::New(r, _)) = (own, &q) {
            if is_patient_data(&r.resource_type) && !r.patients.contains(&own) {
                prop_assert!(!grants_access(&ask(&who, action, &q)));
            }
        }
    }

    /// (b) A patient's or proxy's query over patient data is confined to their patient.
    #[test]
    fn patient_and_proxy_queries_are_confined(who in who(), action in action(), q in question()) {
        if let (Some(own), Question::Query(t, _)) = (who.own_patient(), &q) {
            if is_patient_data(t) {
                if let Decision::Allow(f) = ask(&who, action, &q) {
                    prop_assert!(
                        f.patients == PatientScope::Only(vec![own.to_string()])
                            || f.patients == PatientScope::None,
                        "{:?}", f.patients
                    );
                }
            }
        }
    }

    /// (c) Anonymous callers are never allowed anything.
    #[test]
    fn anonymous_is_never_allowed(scopes in scopes(), action in action(), q in question()) {
        let who = Who { subject: Subject::Anonymous, scopes };
        prop_assert_eq!(ask(&who, action, &q), Decision::Deny(Denial::Unauthenticated));
    }

    /// (d) Removing a scope never turns a denial into an access.
    #[test]
    fn fewer_scopes_never_allow_more(
        who in who(), action in action(), q in question(), drop in any::<prop::sample::Index>()
    ) {
        if who.scopes.grants.is_empty() {
            return Ok(());
        }
        let mut fewer = who.clone();
        fewer.scopes.grants.remove(drop.index(who.scopes.grants.len()));
        let before = ask(&who, action, &q);
        let after = ask(&fewer, action, &q);
        if !grants_access(&before) {
            prop_assert!(!grants_access(&after), "{:?} then {:?}", before, after);
        }
    }

    /// (e) A restricted resource is never shown to a proxy, nor to staff of an organisation
    /// that did not write it (breaking glass or not).
    #[test]
    fn restricted_items_stay_hidden(who in who(), action in action(), q in question()) {
        let Question::Resource(r, _) = &q else { return Ok(()) };
        if !r.labels.restricted {
            return Ok(());
        }
        let d = ask(&who, action, &q);
        match &who.subject {
            Subject::Proxy { .. } => prop_assert!(!grants_access(&d)),
            Subject::Staff { organisation, .. }
                if r.labels.author_organisation.as_deref() != Some(organisation.as_str()) =>
            {
                prop_assert!(!grants_access(&d))
            }
            _ => {}
        }
    }

    /// (e) Query filters never show restricted rows to proxies, and to staff only their own.
    #[test]
    fn restricted_rows_stay_out_of_queries(who in who(), action in action(), q in question()) {
        let Question::Query(..) = &q else { return Ok(()) };
        let filter = match ask(&who, action, &q) {
            Decision::Allow(f) => f,
            Decision::BreakGlass(a) => a.filter,
            Decision::Deny(_) => return Ok(()),
        };
        match &who.subject {
            Subject::Proxy { .. } => prop_assert_eq!(filter.hide_restricted, RestrictedRule::Hide),
            Subject::Staff { organisation, .. } => prop_assert_eq!(
                filter.hide_restricted,
                RestrictedRule::HideUnlessAuthor(organisation.clone())
            ),
            _ => {}
        }
    }

    /// (f) Outside the subject's reach the answer is always 404, never 403: no existence oracle.
    #[test]
    fn out_of_reach_is_always_not_found(who in who(), action in action(), q in question()) {
        let Question::Resource(r, owners) = &q else { return Ok(()) };
        if !is_patient_data(&r.resource_type) || !ACTIONS_ON_RESOURCES.contains(&action) {
            return Ok(());
        }
        // The oracle restates the rules independently of the crate's helpers.
        let out_of_reach = match &who.subject {
            Subject::Patient { patient, .. } => !r.patients.contains(patient),
            Subject::Proxy { grant, .. } => {
                let active = grant.start <= today() && grant.end.is_none_or(|end| today() <= end);
                !r.patients.contains(&grant.patient) || !active || r.labels.restricted
            }
            Subject::Staff { organisation, break_glass, .. } => {
                let related = r.patients.iter().any(|p| {
                    owners.iter().any(|o| {
                        &o.id == p
                            && o.related_organisations.contains(organisation)
                            && !o.refused_organisations.contains(organisation)
                    })
                });
                let glass = break_glass.as_ref().is_some_and(|b| {
                    b.reason.trim().chars().count() >= 10
                        && b.expires > now()
                        && b.expires <= now() + TimeDelta::hours(4)
                        && r.patients.contains(&b.patient)
                });
                let label_ok = !r.labels.restricted
                    || r.labels.author_organisation.as_deref() == Some(organisation.as_str());
                !(related || glass) || !label_ok
            }
            Subject::Admin => true,
            Subject::Anonymous | Subject::System { .. } => false,
        };
        if out_of_reach {
            prop_assert_eq!(ask(&who, action, &q), Decision::Deny(Denial::NotFound));
        }
    }

    /// A read and a search agree: with every scope held, a stored resource may be read exactly
    /// when the filter of a search over its type admits it.
    #[test]
    fn reads_agree_with_search_filters(who in who(), (r, owners) in resource_with_owners()) {
        if matches!(who.subject, Subject::Staff { break_glass: Some(_), .. }) {
            return Ok(());
        }
        let mut who = who;
        who.scopes.grants = [ScopeContext::Patient, ScopeContext::User, ScopeContext::System]
            .into_iter()
            .map(|c| ScopeGrant::all_types(c, Permissions::ALL))
            .collect();
        // Patients and proxies pass their own patient's facts with every query.
        let own_facts = who
            .own_patient()
            .and_then(|own| owners.iter().find(|o| o.id == own))
            .cloned();
        let search = Question::Query(r.resource_type.clone(), own_facts);
        let read = ask(&who, Action::Read, &Question::Resource(r.clone(), owners.clone()));
        match ask(&who, Action::Search, &search) {
            Decision::Allow(f) => prop_assert_eq!(
                grants_access(&read),
                f.admits(&r, &owners),
                "filter {:?} read {:?}", f, read
            ),
            other => prop_assert!(!grants_access(&read), "search {:?} read {:?}", other, read),
        }
    }

    /// Every part of one patient's `$everything` or export answers alike: either the patient is
    /// out of reach (404 for every type) or no type says so.
    #[test]
    fn whole_record_operations_agree_across_types(
        who in who(), p in patient_facts(), export in any::<bool>()
    ) {
        let action = if export { Action::Export } else { Action::Everything };
        let answers: Vec<bool> = TYPES
            .iter()
            .map(|t| {
                ask(&who, action, &Question::Query(t.to_string(), Some(p.clone())))
                    == Decision::Deny(Denial::NotFound)
            })
            .collect();
        prop_assert!(answers.iter().all(|a| *a == answers[0]), "{:?}", answers);
    }

    /// Breaking glass is reported only to staff, about the declared patient.
    #[test]
    fn break_glass_is_reported_for_the_declared_patient_only(
        who in who(), action in action(), q in question()
    ) {
        if let Decision::BreakGlass(access) = ask(&who, action, &q) {
            let Subject::Staff { break_glass: Some(b), .. } = &who.subject else {
                return Err(TestCaseError::fail("break glass for a non-staff subject"));
            };
            prop_assert_eq!(&access.patient, &b.patient);
            prop_assert_eq!(access.filter.patients, PatientScope::Only(vec![b.patient.clone()]));
            prop_assert!(b.validate(now()).is_ok());
        }
    }
}

/// The actions asked about a stored resource.
const ACTIONS_ON_RESOURCES: &[Action] = &[
    Action::Read,
    Action::VRead,
    Action::History,
    Action::Update,
    Action::Delete,
    Action::BinaryContent,
];
