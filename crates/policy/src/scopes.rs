//! SMART on FHIR scopes, parsed once at the edge (token or session) and checked by the policy.
//!
//! A scope says which resource types (one or `*`) may be touched with which permissions
//! (SMART v2 letters `c r u d s`; v1 `read` = `rs`, `write` = `cud`, `*` = all), in which context:
//! `patient/` (only the patient in context), `user/` (whatever the signed-in user may see) or
//! `system/` (a backend client with no user). Scopes only ever narrow what the subject's role
//! allows; they never widen it.

use std::fmt;
use std::str::FromStr;

use crate::error::PolicyError;

/// The context a scope applies in (`patient/`, `user/`, `system/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScopeContext {
    /// `patient/`: limited to the patient in context.
    Patient,
    /// `user/`: whatever the signed-in user may see.
    User,
    /// `system/`: a backend client; counts only for [`crate::Subject::System`].
    System,
}

impl ScopeContext {
    fn prefix(self) -> &'static str {
        match self {
            ScopeContext::Patient => "patient",
            ScopeContext::User => "user",
            ScopeContext::System => "system",
        }
    }
}

/// A set of SMART v2 permissions (`c r u d s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Permissions(u8);

impl Permissions {
    pub const CREATE: Permissions = Permissions(1);
    pub const READ: Permissions = Permissions(2);
    pub const UPDATE: Permissions = Permissions(4);
    pub const DELETE: Permissions = Permissions(8);
    pub const SEARCH: Permissions = Permissions(16);
    pub const NONE: Permissions = Permissions(0);
    pub const ALL: Permissions = Permissions(31);

    /// The union of two sets.
    pub const fn with(self, other: Permissions) -> Permissions {
        Permissions(self.0 | other.0)
    }

    /// Whether every permission in `other` is in `self`.
    pub const fn contains(self, other: Permissions) -> bool {
        self.0 & other.0 == other.0
    }

    /// The SMART v2 letter of a single permission, for messages.
    pub(crate) fn letter(self) -> &'static str {
        match self.0 {
            1 => "c",
            2 => "r",
            4 => "u",
            8 => "d",
            16 => "s",
            _ => "*",
        }
    }
}

/// One granted scope, e.g. `patient/Observation.rs` or `user/*.cruds`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ScopeGrant {
    pub context: ScopeContext,
    /// `None` for `*` (every resource type).
    pub resource_type: Option<String>,
    pub permissions: Permissions,
}

impl ScopeGrant {
    /// A grant of `permissions` on every resource type in `context`.
    pub fn all_types(context: ScopeContext, permissions: Permissions) -> ScopeGrant {
        ScopeGrant {
            context,
            resource_type: None,
            permissions,
        }
    }

    fn covers(&self, context: ScopeContext, resource_type: &str, needed: Permissions) -> bool {
        self.context == context
            && self
                .resource_type
                .as_deref()
                .is_none_or(|t| t == resource_type)
            && self.permissions.contains(needed)
    }
}

impl fmt::Display for ScopeGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ty = self.resource_type.as_deref().unwrap_or("*");
        let letters: String = [
            (Permissions::CREATE, 'c'),
            (Permissions::READ, 'r'),
            (Permissions::UPDATE, 'u'),
            (Permissions::DELETE, 'd'),
            (Permissions::SEARCH, 's'),
        ]
        .iter()
        .filter(|(p, _)| self.permissions.contains(*p))
        .map(|(_, l)| *l)
        .collect();
        write!(f, "{}/{}.{}", self.context.prefix(), ty, letters)
    }
}

/// Scopes that are about identity or launch, not resource access: accepted and ignored.
const NON_RESOURCE_SCOPES: &[&str] = &[
    "openid",
    "profile",
    "fhirUser",
    "launch",
    "launch/patient",
    "launch/encounter",
    "offline_access",
    "online_access",
];

impl FromStr for ScopeGrant {
    type Err = PolicyError;

    /// Parses `<patient|user|system>/<Type or *>.<read|write|*|cruds>`.
    fn from_str(text: &str) -> Result<ScopeGrant, PolicyError> {
        let problem = |p: &str| PolicyError::Scope {
            scope: text.to_string(),
            problem: p.to_string(),
        };
        let (context, rest) = if let Some(rest) = text.strip_prefix("patient/") {
            (ScopeContext::Patient, rest)
        } else if let Some(rest) = text.strip_prefix("user/") {
            (ScopeContext::User, rest)
        } else if let Some(rest) = text.strip_prefix("system/") {
            (ScopeContext::System, rest)
        } else {
            return Err(problem("must start with patient/, user/ or system/"));
        };
        if rest.contains('?') {
            return Err(problem("scopes with search restrictions are not supported"));
        }
        let (ty, perm) = rest.rsplit_once('.').ok_or_else(|| {
            problem("has no permission; write <Type or *>.<read, write, * or cruds>")
        })?;
        let resource_type = match ty {
            "*" => None,
            t if is_type_name(t) => Some(t.to_string()),
            _ => return Err(problem("names no resource type")),
        };
        let permissions = match perm {
            "read" => Permissions::READ.with(Permissions::SEARCH),
            "write" => Permissions::CREATE
                .with(Permissions::UPDATE)
                .with(Permissions::DELETE),
            "*" => Permissions::ALL,
            letters => parse_letters(letters).ok_or_else(|| {
                problem(
                    "permission must be read, write, * or letters from c, r, u, d, s in that order",
                )
            })?,
        };
        Ok(ScopeGrant {
            context,
            resource_type,
            permissions,
        })
    }
}

/// A FHIR resource type name: an ASCII capital letter then ASCII letters.
fn is_type_name(t: &str) -> bool {
    let mut bytes = t.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_uppercase()) && bytes.all(|b| b.is_ascii_alphabetic())
}

/// SMART v2 letters, each at most once and in the order `c r u d s`.
fn parse_letters(letters: &str) -> Option<Permissions> {
    const ORDER: [(u8, Permissions); 5] = [
        (b'c', Permissions::CREATE),
        (b'r', Permissions::READ),
        (b'u', Permissions::UPDATE),
        (b'd', Permissions::DELETE),
        (b's', Permissions::SEARCH),
    ];
    if letters.is_empty() {
        return None;
    }
    let mut permissions = Permissions::NONE;
    let mut next = 0;
    for b in letters.bytes() {
        let pos = ORDER.get(next..)?.iter().position(|(l, _)| *l == b)? + next;
        permissions = permissions.with(ORDER.get(pos)?.1);
        next = pos + 1;
    }
    Some(permissions)
}

/// The scopes a token or session carries. A web session carries its role's full scopes
/// ([`Scopes::full`]); a SMART app carries what the user approved.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scopes {
    pub grants: Vec<ScopeGrant>,
    /// For staff: the patient chosen at launch (SMART `launch/patient`), the only patient
    /// `patient/` scopes reach. Patients and proxies always have their own patient in context,
    /// so this is ignored for them.
    pub patient_context: Option<String>,
}

impl Scopes {
    /// No scopes: every data access is refused.
    pub fn none() -> Scopes {
        Scopes::default()
    }

    /// Every permission on every type in `context`: what a web session of the role carries.
    pub fn full(context: ScopeContext) -> Scopes {
        Scopes {
            grants: vec![ScopeGrant::all_types(context, Permissions::ALL)],
            patient_context: None,
        }
    }

    /// Parses a space-separated scope list (as in an OAuth2 token). Identity and launch scopes
    /// (`openid`, `fhirUser`, `launch/patient`, `offline_access`…) are accepted and ignored; any
    /// other malformed scope is an error, so that a typo is not silently a narrower grant.
    pub fn parse(text: &str) -> Result<Scopes, PolicyError> {
        let grants = text
            .split_whitespace()
            .filter(|s| !NON_RESOURCE_SCOPES.contains(s))
            .map(str::parse)
            .collect::<Result<Vec<ScopeGrant>, PolicyError>>()?;
        Ok(Scopes {
            grants,
            patient_context: None,
        })
    }

    /// Whether some grant in `context` covers `needed` on `resource_type`.
    pub fn grants(&self, context: ScopeContext, resource_type: &str, needed: Permissions) -> bool {
        self.grants
            .iter()
            .any(|g| g.covers(context, resource_type, needed))
    }

    /// The scope that would allow it, as text for a message: `patient/Observation.r`.
    pub(crate) fn describe(
        context: ScopeContext,
        resource_type: &str,
        needed: Permissions,
    ) -> String {
        format!("{}/{}.{}", context.prefix(), resource_type, needed.letter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(text: &str) -> ScopeGrant {
        match text.parse() {
            Ok(g) => g,
            Err(e) => panic!("{text}: {e}"),
        }
    }

    #[test]
    fn v1_read_is_read_and_search() {
        let g = grant("patient/Observation.read");
        assert_eq!(g.context, ScopeContext::Patient);
        assert_eq!(g.resource_type.as_deref(), Some("Observation"));
        assert_eq!(g.permissions, Permissions::READ.with(Permissions::SEARCH));
    }

    #[test]
    fn v1_write_is_create_update_delete() {
        let g = grant("user/*.write");
        assert_eq!(g.resource_type, None);
        assert_eq!(
            g.permissions,
            Permissions::CREATE
                .with(Permissions::UPDATE)
                .with(Permissions::DELETE)
        );
    }

    #[test]
    fn v2_letters_in_order() {
        assert_eq!(
            grant("system/Patient.rs").permissions,
            Permissions::READ.with(Permissions::SEARCH)
        );
        assert_eq!(grant("system/Patient.cruds").permissions, Permissions::ALL);
        assert_eq!(grant("system/Patient.*").permissions, Permissions::ALL);
    }

    #[test]
    fn v2_letters_out_of_order_or_repeated_are_refused() {
        for bad in [
            "user/Patient.sr",
            "user/Patient.rr",
            "user/Patient.x",
            "user/Patient.",
        ] {
            assert!(bad.parse::<ScopeGrant>().is_err(), "{bad}");
        }
    }

    #[test]
    fn malformed_scopes_are_refused() {
        for bad in [
            "Patient.read",
            "admin/Patient.read",
            "user/Patient",
            "user/patient.read",
            "user/Observation.rs?category=laboratory",
            "user/.read",
        ] {
            assert!(bad.parse::<ScopeGrant>().is_err(), "{bad}");
        }
    }

    #[test]
    fn identity_scopes_are_ignored_in_a_list() {
        let s = match Scopes::parse(
            "openid fhirUser launch/patient patient/Observation.rs offline_access",
        ) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(s.grants.len(), 1);
        assert!(s.grants(ScopeContext::Patient, "Observation", Permissions::SEARCH));
        assert!(!s.grants(ScopeContext::User, "Observation", Permissions::SEARCH));
        assert!(!s.grants(ScopeContext::Patient, "Condition", Permissions::READ));
        assert!(!s.grants(ScopeContext::Patient, "Observation", Permissions::CREATE));
    }

    #[test]
    fn a_bad_scope_in_a_list_fails_the_list() {
        assert!(Scopes::parse("patient/Observation.rs user/Foo").is_err());
    }

    #[test]
    fn display_round_trips() {
        for text in ["patient/Observation.rs", "user/*.cruds", "system/Patient.r"] {
            assert_eq!(grant(text).to_string(), text);
        }
    }
}
