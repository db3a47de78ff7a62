//! Rule 1: nobody signed in gets nothing, not even reference data.

use policy::{Action, Decision, Denial};

use crate::support::*;

#[test]
fn anonymous_is_unauthenticated_for_everything() {
    let who = anonymous();
    let p = adult("p1");
    let targets = [
        resource("Observation", "o1", &["p1"]),
        resource("Practitioner", "pr1", &[]),
        resource("Group", "g1", &["p1"]),
        resource("Patient", "p1", &["p1"]),
    ];
    for r in &targets {
        for action in [
            Action::Read,
            Action::VRead,
            Action::History,
            Action::Update,
            Action::Delete,
            Action::BinaryContent,
        ] {
            assert_eq!(
                on(&who, action, r, std::slice::from_ref(&p)),
                Decision::Deny(Denial::Unauthenticated),
                "{action:?} {}",
                r.resource_type
            );
        }
        assert_eq!(
            create(&who, r, std::slice::from_ref(&p)),
            Decision::Deny(Denial::Unauthenticated)
        );
    }
    for t in ["Observation", "Practitioner", "Patient"] {
        for action in [
            Action::Search,
            Action::History,
            Action::Everything,
            Action::Export,
        ] {
            assert_eq!(
                query(&who, action, t, Some(&p)),
                Decision::Deny(Denial::Unauthenticated)
            );
            assert_eq!(
                query(&who, action, t, None),
                Decision::Deny(Denial::Unauthenticated)
            );
        }
    }
}

#[test]
fn unauthenticated_is_401() {
    assert_eq!(Denial::Unauthenticated.status(), 401);
    assert_eq!(Denial::Forbidden("x".into()).status(), 403);
    assert_eq!(Denial::NotFound.status(), 404);
}
