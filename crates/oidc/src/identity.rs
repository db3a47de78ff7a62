//! Who signed in, as far as this service needs to know: the provider's subject, the NHS number
//! (checked), and how well the person's identity was proven.
//!
//! NHS login's levels: P0 (an email and phone only), P5 (medium: details matched, not
//! proven), P9 (high: proven, e.g. with photo ID). Only P9 may see the record; the lower levels
//! get a reduced view. The level comes from `vot` (the vector of trust of this sign-in, e.g.
//! `P9.Cp.Cd`) and `identity_proofing_level`; when both are given the lower one counts, so that
//! a mistake on the provider's side can only reduce access.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::id_token::Claims;

/// How well the person's identity was proven (NHS login identity proofing levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum IdentityLevel {
    /// Low: no identity proven.
    P0,
    /// Medium: identity details matched but not verified.
    P5,
    /// High: identity verified.
    P9,
}

impl IdentityLevel {
    /// Whether the level is high enough to see the patient's record (P9); lower levels get a
    /// reduced view.
    pub fn allows_record_access(self) -> bool {
        self == IdentityLevel::P9
    }

    fn parse(text: &str) -> Option<IdentityLevel> {
        match text {
            "P0" => Some(IdentityLevel::P0),
            "P5" => Some(IdentityLevel::P5),
            "P9" => Some(IdentityLevel::P9),
            _ => None,
        }
    }
}

/// The signed-in person.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The provider's stable identifier for the person (`sub`): link accounts by this.
    pub subject: String,
    /// Ten digits, Modulus 11 checked; absent for P0 users and when `profile` was not asked for.
    pub nhs_number: Option<String>,
    pub identity_level: IdentityLevel,
    /// `YYYY-MM-DD` as the provider gives it.
    pub birthdate: Option<String>,
    pub email: Option<String>,
}

/// Personal data stays out of logs, even by accident through `{:?}`.
impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("identity_level", &self.identity_level)
            .field("nhs_number", &self.nhs_number.as_ref().map(|_| "…"))
            .field("birthdate", &self.birthdate.as_ref().map(|_| "…"))
            .field("email", &self.email.as_ref().map(|_| "…"))
            .finish_non_exhaustive()
    }
}

/// The claims an [`Identity`] is made of; when the ID token lacks any of them, the userinfo
/// endpoint is asked (OpenID Connect providers put scope claims there by default).
const IDENTITY_CLAIMS: [&str; 4] = [
    "nhs_number",
    "birthdate",
    "email",
    "identity_proofing_level",
];

/// Whether the ID token alone does not carry everything an [`Identity`] can hold.
pub(crate) fn needs_userinfo(id_claims: &Claims) -> bool {
    IDENTITY_CLAIMS.iter().any(|c| !id_claims.contains_key(*c))
}

/// Adds the userinfo claims the ID token lacks. The userinfo response must be about the same
/// person (OpenID Connect Core 5.3.4): a different `sub` is refused, since it would mean
/// attaching one person's details to another's sign-in.
pub(crate) fn merge_userinfo(id_claims: &mut Claims, userinfo: Claims) -> Result<()> {
    if userinfo.get("sub") != id_claims.get("sub") {
        return Err(Error::BadResponse {
            what: "userinfo",
            reason: "its subject (sub) is not the ID token's subject".into(),
        });
    }
    for (name, value) in userinfo {
        id_claims.entry(name).or_insert(value);
    }
    Ok(())
}

impl Identity {
    /// Builds the identity from validated claims.
    pub(crate) fn from_claims(claims: &Claims) -> Result<Identity> {
        let subject = match claims.get("sub").and_then(Value::as_str) {
            Some(s) if !s.is_empty() => s.to_string(),
            _ => {
                return Err(Error::InvalidClaim {
                    claim: "sub",
                    reason: "missing or empty".into(),
                })
            }
        };
        let nhs_number = optional_string(claims, "nhs_number")?
            .map(|n| {
                fhir::nhs_number::NhsNumber::parse(n)
                    .map(|n| n.digits())
                    .map_err(|_| Error::InvalidClaim {
                        claim: "nhs_number",
                        reason: "not a valid NHS number (10 digits with a Modulus 11 check digit)"
                            .into(),
                    })
            })
            .transpose()?;
        Ok(Identity {
            subject,
            nhs_number,
            identity_level: level(claims)?,
            birthdate: optional_string(claims, "birthdate")?.map(str::to_string),
            email: optional_string(claims, "email")?.map(str::to_string),
        })
    }
}

/// The lower of the levels given by `vot` and `identity_proofing_level`; P0 when neither is.
fn level(claims: &Claims) -> Result<IdentityLevel> {
    let from_vot = optional_string(claims, "vot")?
        .map(|vot| {
            level_of_vot(vot).ok_or_else(|| Error::InvalidClaim {
                claim: "vot",
                reason: "its identity component is not P0, P5 or P9".into(),
            })
        })
        .transpose()?;
    let from_ipl = optional_string(claims, "identity_proofing_level")?
        .map(|l| {
            IdentityLevel::parse(l).ok_or_else(|| Error::InvalidClaim {
                claim: "identity_proofing_level",
                reason: "not P0, P5 or P9".into(),
            })
        })
        .transpose()?;
    Ok(match (from_vot, from_ipl) {
        (Some(a), Some(b)) => a.min(b),
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => IdentityLevel::P0,
    })
}

/// The `P` component of a vector of trust (RFC 8485), e.g. `P9` of `P9.Cp.Cd`. A vector
/// without one proves no identity: P0.
fn level_of_vot(vot: &str) -> Option<IdentityLevel> {
    let mut components = vot.split('.').filter(|c| c.starts_with('P'));
    match (components.next(), components.next()) {
        (None, _) => Some(IdentityLevel::P0),
        (Some(p), None) => IdentityLevel::parse(p),
        (Some(_), Some(_)) => None,
    }
}

fn optional_string<'a>(claims: &'a Claims, name: &'static str) -> Result<Option<&'a str>> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(Error::InvalidClaim {
            claim: name,
            reason: "not a string".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Claims {
        v.as_object().cloned().expect("object")
    }

    fn identity(v: Value) -> Result<Identity> {
        Identity::from_claims(&claims(v))
    }

    #[test]
    fn a_p9_user_with_a_valid_nhs_number() {
        let id = identity(json!({
            "sub": "abc", "vot": "P9.Cp.Cd", "identity_proofing_level": "P9",
            "nhs_number": "9434765919", "birthdate": "1970-01-01", "email": "a@example.org",
        }))
        .expect("valid");
        assert_eq!(id.subject, "abc");
        assert_eq!(id.nhs_number.as_deref(), Some("9434765919"));
        assert_eq!(id.identity_level, IdentityLevel::P9);
        assert!(id.identity_level.allows_record_access());
        assert_eq!(id.birthdate.as_deref(), Some("1970-01-01"));
        assert_eq!(id.email.as_deref(), Some("a@example.org"));
    }

    #[test]
    fn a_bad_check_digit_is_refused_without_echoing_the_number() {
        let err = identity(json!({"sub": "abc", "nhs_number": "9434765918"})).unwrap_err();
        assert!(matches!(
            err,
            Error::InvalidClaim {
                claim: "nhs_number",
                ..
            }
        ));
        assert!(!err.to_string().contains("943"), "{err}");
        assert!(identity(json!({"sub": "abc", "nhs_number": 9434765919u64})).is_err());
        assert!(identity(json!({"sub": "abc", "nhs_number": "943476591"})).is_err());
    }

    #[test]
    fn the_lower_of_vot_and_identity_proofing_level_counts() {
        let level = |v: Value| identity(v).map(|i| i.identity_level);
        let sub = |extra: Value| {
            let mut c = json!({"sub": "s"});
            if let (Some(o), Some(e)) = (c.as_object_mut(), extra.as_object()) {
                o.extend(e.clone());
            }
            c
        };
        assert_eq!(
            level(sub(
                json!({"vot": "P9.Cp.Cd", "identity_proofing_level": "P5"})
            ))
            .ok(),
            Some(IdentityLevel::P5)
        );
        assert_eq!(
            level(sub(
                json!({"vot": "P5.Cm", "identity_proofing_level": "P9"})
            ))
            .ok(),
            Some(IdentityLevel::P5)
        );
        assert_eq!(
            level(sub(json!({"vot": "P9.Cp.Ck"}))).ok(),
            Some(IdentityLevel::P9)
        );
        assert_eq!(
            level(sub(json!({"identity_proofing_level": "P5"}))).ok(),
            Some(IdentityLevel::P5)
        );
        assert_eq!(
            level(sub(json!({"vot": "Cp.Cd"}))).ok(),
            Some(IdentityLevel::P0)
        );
        assert_eq!(level(sub(json!({}))).ok(), Some(IdentityLevel::P0));
        assert!(level(sub(json!({"vot": "P7.Cp"}))).is_err());
        assert!(level(sub(json!({"vot": "P9.P5.Cp"}))).is_err());
        assert!(level(sub(json!({"identity_proofing_level": "high"}))).is_err());
        assert!(!IdentityLevel::P5.allows_record_access());
        assert!(!IdentityLevel::P0.allows_record_access());
    }

    #[test]
    fn userinfo_fills_gaps_but_never_overrides_or_changes_subject() {
        let mut id = claims(json!({"sub": "s", "identity_proofing_level": "P5"}));
        merge_userinfo(
            &mut id,
            claims(
                json!({"sub": "s", "identity_proofing_level": "P9", "nhs_number": "9434765919"}),
            ),
        )
        .expect("same subject");
        assert_eq!(id["identity_proofing_level"], "P5");
        assert_eq!(id["nhs_number"], "9434765919");

        let mut id = claims(json!({"sub": "s"}));
        let err = merge_userinfo(&mut id, claims(json!({"sub": "other", "nhs_number": "x"})));
        assert!(err.is_err());
        assert!(!id.contains_key("nhs_number"));
        assert!(merge_userinfo(&mut id, claims(json!({"nhs_number": "x"}))).is_err());
    }

    #[test]
    fn userinfo_is_needed_only_when_a_claim_is_missing() {
        let full = claims(json!({
            "sub": "s", "nhs_number": "9434765919", "birthdate": "1970-01-01",
            "email": "a@example.org", "identity_proofing_level": "P9",
        }));
        assert!(!needs_userinfo(&full));
        for missing in IDENTITY_CLAIMS {
            let mut c = full.clone();
            c.remove(missing);
            assert!(needs_userinfo(&c), "{missing}");
        }
    }

    #[test]
    fn debug_output_hides_personal_data() {
        let id = identity(json!({
            "sub": "abc", "nhs_number": "9434765919", "birthdate": "1970-01-01",
            "email": "a@example.org",
        }))
        .expect("valid");
        let shown = format!("{id:?}");
        for secret in ["9434765919", "1970", "a@example.org"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }
}
