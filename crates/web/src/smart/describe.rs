//! Granted scopes in plain English, for the consent screen and the connected apps page: what
//! the app will be able to see and do, one sentence per kind of access, in the words of
//! [`crate::ui::text::SmartText`].

use policy::{Permissions, ScopeContext, ScopeGrant};

use super::grantable::{FHIR_USER, OFFLINE_ACCESS, OPENID};
use crate::ui::text::SmartText;

/// The sentences for the scopes in `scope` (space-separated), in order, each once. Scopes that
/// say nothing a person needs to know (`launch/patient`) give none.
pub fn describe(t: &SmartText, scope: &str) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut push = |line: String| {
        if !lines.contains(&line) {
            lines.push(line);
        }
    };
    for word in scope.split_whitespace() {
        match word {
            OPENID | FHIR_USER => push(t.scope_identity.to_string()),
            OFFLINE_ACCESS => push(t.scope_offline.to_string()),
            _ => {
                if let Ok(grant) = word.parse::<ScopeGrant>() {
                    for line in resource_lines(t, &grant) {
                        push(line);
                    }
                }
            }
        }
    }
    lines
}

fn resource_lines(t: &SmartText, grant: &ScopeGrant) -> Vec<String> {
    let what = grant
        .resource_type
        .as_deref()
        .map_or(t.scope_everything, |ty| t.resource_label(ty));
    let whose = match grant.context {
        ScopeContext::Patient => t.scope_whose_patient,
        ScopeContext::User | ScopeContext::System => t.scope_whose_user,
    };
    let sentence = |template: &str| template.replace("{what}", what).replace("{whose}", whose);
    let p = grant.permissions;
    let mut out = Vec::new();
    if p.contains(Permissions::READ) || p.contains(Permissions::SEARCH) {
        out.push(sentence(t.scope_read));
    }
    if p.contains(Permissions::CREATE) || p.contains(Permissions::UPDATE) {
        out.push(sentence(t.scope_write));
    }
    if p.contains(Permissions::DELETE) {
        out.push(sentence(t.scope_delete));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::text::EN_GB;

    #[test]
    fn read_scopes_say_what_can_be_seen_in_whose_record() {
        let lines = describe(&EN_GB.smart, "patient/*.read patient/Observation.rs");
        assert_eq!(
            lines,
            [
                "See everything in the health record",
                "See test results and measurements in the health record"
            ]
        );
    }

    #[test]
    fn writes_and_deletes_are_said_separately() {
        let lines = describe(&EN_GB.smart, "user/Appointment.cruds");
        assert_eq!(
            lines,
            [
                "See appointments in the records you can see",
                "Add and change appointments in the records you can see",
                "Delete appointments from the records you can see"
            ]
        );
    }

    #[test]
    fn identity_and_offline_access_are_named_once_and_launch_is_silent() {
        let lines = describe(
            &EN_GB.smart,
            "openid fhirUser launch/patient offline_access",
        );
        assert_eq!(
            lines,
            [
                "Know who you are",
                "Stay connected when you are not using it, until you disconnect it"
            ]
        );
    }
}
