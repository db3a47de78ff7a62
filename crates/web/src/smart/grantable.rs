//! What a person may grant an app, from the scopes it asked for: the rule of the consent
//! screen. Scopes are parsed by the access policy's scope model ([`policy::Scopes::parse`]), so
//! the token endpoint, the FHIR API and this screen read a scope the same way; a scope that
//! model cannot read fails the whole request (`invalid_scope`), so a typo never becomes a
//! silently narrower grant.
//!
//! The rule (scopes only narrow what a role may do; they never widen it):
//!
//! - Patients and proxies grant `patient/` scopes, for their own record or the person they
//!   choose; `user/` scopes are dropped, as the patient context already says whose record.
//! - Staff and administrators grant `user/` scopes (what they may see anyway); `patient/`
//!   scopes are dropped, as there is no patient picker for staff here.
//! - A `system/` scope is never granted through a person's consent.
//! - `openid`, `fhirUser` and `offline_access` are granted to everyone; `launch/patient` only
//!   when there is a patient in context. EHR launch (`launch`, `launch/encounter`) and other
//!   identity scopes are not supported and are dropped.
//! - A scope for a resource type this server does not hold is dropped.
//!
//! What is dropped is shown on the consent screen; what remains is the grant.

use policy::{ScopeContext, ScopeGrant, Scopes};
use store::accounts::Role;

/// The identity and lifetime scopes Portico grants.
pub const OPENID: &str = "openid";
pub const FHIR_USER: &str = "fhirUser";
pub const OFFLINE_ACCESS: &str = "offline_access";
pub const LAUNCH_PATIENT: &str = "launch/patient";

/// The requested scopes split into what is granted and what is not.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Decision {
    /// Granted scopes, in the order asked, each once.
    pub granted: Vec<String>,
    /// Asked for but not granted, in the order asked.
    pub dropped: Vec<String>,
}

impl Decision {
    /// The granted scopes as an OAuth2 `scope` value.
    pub fn scope(&self) -> String {
        self.granted.join(" ")
    }

    /// Whether the grant reaches data (some resource scope), rather than only identity.
    pub fn has_resource_access(&self) -> bool {
        self.granted
            .iter()
            .any(|s| s.contains('/') && s != LAUNCH_PATIENT)
    }

    /// Whether any granted scope is for the patient in context (so the grant needs one).
    pub fn needs_patient(&self) -> bool {
        self.granted
            .iter()
            .any(|s| s.starts_with("patient/") || s == LAUNCH_PATIENT)
    }

    /// Whether the app may do anything at all with this grant.
    pub fn is_empty_for_app(&self) -> bool {
        !self.has_resource_access() && !self.granted.iter().any(|s| s == OPENID)
    }

    pub fn grants(&self, scope: &str) -> bool {
        self.granted.iter().any(|s| s == scope)
    }
}

/// Why a scope list cannot be considered at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable(pub String);

fn is_staff(role: Role) -> bool {
    matches!(role, Role::Clinician | Role::Clerical | Role::Admin)
}

/// Decides which of `requested` (a space-separated `scope` value) `role` may grant, given
/// whether a patient can be in context (a patient's own record, or a proxy's person).
pub fn decide(
    requested: &str,
    role: Role,
    patient_available: bool,
) -> Result<Decision, Unreadable> {
    Scopes::parse(requested).map_err(|e| Unreadable(e.to_string()))?;
    let mut decision = Decision::default();
    for word in requested.split_whitespace() {
        if decision
            .granted
            .iter()
            .chain(&decision.dropped)
            .any(|s| s == word)
        {
            continue;
        }
        let grant = match word {
            OPENID | FHIR_USER | OFFLINE_ACCESS => true,
            LAUNCH_PATIENT => !is_staff(role) && patient_available,
            _ => match word.parse::<ScopeGrant>() {
                Ok(scope) => resource_scope_allowed(&scope, role, patient_available),
                // Identity or launch scopes the policy accepts but Portico does not support.
                Err(_) => false,
            },
        };
        if grant {
            decision.granted.push(word.to_string());
        } else {
            decision.dropped.push(word.to_string());
        }
    }
    Ok(decision)
}

fn resource_scope_allowed(scope: &ScopeGrant, role: Role, patient_available: bool) -> bool {
    let known_type = scope
        .resource_type
        .as_deref()
        .is_none_or(fhir::is_supported_type);
    let context_ok = match scope.context {
        ScopeContext::Patient => !is_staff(role) && patient_available,
        ScopeContext::User => is_staff(role),
        ScopeContext::System => false,
    };
    known_type && context_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decided(requested: &str, role: Role, patient: bool) -> Decision {
        match decide(requested, role, patient) {
            Ok(d) => d,
            Err(e) => panic!("{requested}: {}", e.0),
        }
    }

    #[test]
    fn a_patient_grants_patient_scopes_and_identity_but_not_user_or_system_scopes() {
        let d = decided(
            "openid fhirUser launch/patient patient/*.read user/*.read system/*.read offline_access",
            Role::Patient,
            true,
        );
        assert_eq!(
            d.granted,
            [
                "openid",
                "fhirUser",
                "launch/patient",
                "patient/*.read",
                "offline_access"
            ]
        );
        assert_eq!(d.dropped, ["user/*.read", "system/*.read"]);
        assert!(d.needs_patient() && d.has_resource_access());
    }

    #[test]
    fn staff_grant_user_scopes_only_and_get_no_patient_context() {
        let d = decided(
            "openid launch/patient patient/Observation.rs user/Observation.rs user/*.cruds",
            Role::Clinician,
            true,
        );
        assert_eq!(d.granted, ["openid", "user/Observation.rs", "user/*.cruds"]);
        assert_eq!(d.dropped, ["launch/patient", "patient/Observation.rs"]);
        assert!(!d.needs_patient());
    }

    #[test]
    fn without_a_patient_in_reach_patient_scopes_are_dropped() {
        let d = decided("patient/*.read launch/patient openid", Role::Proxy, false);
        assert_eq!(d.granted, ["openid"]);
        assert!(!d.is_empty_for_app());
        let d = decided("patient/*.read", Role::Patient, false);
        assert!(d.is_empty_for_app());
    }

    #[test]
    fn a_system_scope_is_never_granted_by_anyone() {
        for role in Role::ALL {
            let d = decided("system/*.read system/Patient.cruds", role, true);
            assert!(d.granted.is_empty(), "{role:?}");
        }
    }

    #[test]
    fn unsupported_launch_scopes_and_unknown_types_are_dropped_and_repeats_counted_once() {
        let d = decided(
            "launch launch/encounter profile patient/Nonexistent.read patient/Observation.read patient/Observation.read",
            Role::Patient,
            true,
        );
        assert_eq!(d.granted, ["patient/Observation.read"]);
        assert_eq!(
            d.dropped,
            [
                "launch",
                "launch/encounter",
                "profile",
                "patient/Nonexistent.read"
            ]
        );
    }

    #[test]
    fn a_malformed_scope_fails_the_whole_request() {
        assert!(decide("patient/*.read patient/Observation", Role::Patient, true).is_err());
        assert!(decide("patient/Observation.sr", Role::Patient, true).is_err());
    }
}
