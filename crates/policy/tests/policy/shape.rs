//! Questions that do not make sense (an action on the wrong kind of target) are refused, not
//! guessed at; the refusal depends only on the question, so it reveals nothing.

use policy::{decide, Action, Target};

use crate::support::*;

#[test]
fn search_on_a_single_resource_is_forbidden() {
    let r = resource("Observation", "o", &["p1"]);
    forbidden(on(&patient("p1"), Action::Search, &r, &[adult("p1")]));
    forbidden(on(&system(), Action::Export, &r, &[]));
}

#[test]
fn create_of_a_stored_resource_is_forbidden() {
    let r = resource("Observation", "o", &["p1"]);
    forbidden(on(&system(), Action::Create, &r, &[]));
}

#[test]
fn read_or_delete_of_new_content_is_forbidden() {
    let r = resource("Observation", "o", &["p1"]);
    forbidden(write_new(&system(), Action::Read, &r, &[]));
    forbidden(write_new(&system(), Action::Delete, &r, &[]));
}

#[test]
fn writes_on_a_query_are_forbidden() {
    for action in [
        Action::Create,
        Action::Update,
        Action::Delete,
        Action::Read,
        Action::VRead,
        Action::BinaryContent,
    ] {
        forbidden(query(&system(), action, "Observation", None));
    }
}

#[test]
fn update_of_new_content_is_a_question_of_its_own() {
    let r = resource("Observation", "o", &["p1"]);
    allowed(write_new(&system(), Action::Update, &r, &[]));
    let d = decide(
        &system(),
        Action::Update,
        Target::New {
            facts: &r,
            patients: &[],
        },
        now(),
        today(),
    );
    allowed(d);
}
