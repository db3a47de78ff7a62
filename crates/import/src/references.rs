//! References in imported resources.
//!
//! - `Type/id` (and absolute URLs to other servers) are kept as they are: the store does not
//!   require a target to exist, so the order of files does not matter.
//! - A reference to another entry of the same Bundle (its `urn:uuid:` fullUrl, or any fullUrl)
//!   becomes that entry's `Type/id`, as the identity rule decided it.
//! - A conditional reference (`Type?identifier=system|value`, as Synthea writes them) becomes
//!   the `Type/id` of the one resource the search finds; the search is the caller's.

use std::collections::HashMap;

use serde_json::Value;
use store::StoreError;

/// What a conditional reference turned into.
#[derive(Debug)]
pub enum Resolution {
    /// The one match, as `Type/id`.
    Found(String),
    /// No match yet: the target may come later in the import.
    NotYet,
}

/// Why a resource's references cannot be imported.
#[derive(Debug)]
pub enum RefError {
    /// The resource is at fault; the reason names the element.
    Reject(String),
    /// The store failed while resolving.
    Store(StoreError),
}

/// What [`rewrite`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Rewritten {
    /// Some reference was replaced.
    pub changed: bool,
    /// The first conditional reference that matches nothing yet, with where it is.
    pub unresolved: Option<String>,
}

/// The type and query of a conditional reference (`Patient?identifier=…`).
pub fn conditional(reference: &str) -> Option<(&str, &str)> {
    let (head, query) = reference.split_once('?')?;
    let mut chars = head.chars();
    let first = chars.next()?;
    (first.is_ascii_uppercase() && chars.all(|c| c.is_ascii_alphanumeric()) && !query.is_empty())
        .then_some((head, query))
}

/// Rewrites the references of `resource` (of type `resource_type`): Bundle-internal ones through
/// `aliases` (fullUrl to `Type/id`), conditional ones through `resolve`.
pub fn rewrite(
    resource: &mut Value,
    resource_type: &str,
    aliases: &HashMap<String, String>,
    resolve: &mut dyn FnMut(&str) -> Result<Resolution, RefError>,
) -> Result<Rewritten, RefError> {
    let mut walk = Walk {
        path: resource_type.to_string(),
        aliases,
        resolve,
        out: Rewritten::default(),
    };
    walk.value(resource)?;
    Ok(walk.out)
}

struct Walk<'a> {
    /// The FHIRPath of the element being walked, grown and cut back in place.
    path: String,
    aliases: &'a HashMap<String, String>,
    resolve: &'a mut dyn FnMut(&str) -> Result<Resolution, RefError>,
    out: Rewritten,
}

impl Walk<'_> {
    fn at(&self) -> &str {
        &self.path
    }

    fn value(&mut self, v: &mut Value) -> Result<(), RefError> {
        let len = self.path.len();
        match v {
            Value::Object(m) => {
                for (k, child) in m.iter_mut() {
                    if k == "reference" {
                        if let Value::String(s) = child {
                            self.reference(s)?;
                            continue;
                        }
                    }
                    if matches!(child, Value::Object(_) | Value::Array(_)) {
                        self.path.push('.');
                        self.path.push_str(k);
                        let r = self.value(child);
                        self.path.truncate(len);
                        r?;
                    }
                }
            }
            Value::Array(a) => {
                for (i, child) in a.iter_mut().enumerate() {
                    use std::fmt::Write;
                    if !matches!(child, Value::Object(_) | Value::Array(_)) {
                        continue;
                    }
                    let _ = write!(self.path, "[{i}]");
                    let r = self.value(child);
                    self.path.truncate(len);
                    r?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn reference(&mut self, s: &mut String) -> Result<(), RefError> {
        if let Some(target) = self.aliases.get(s.as_str()) {
            *s = target.clone();
            self.out.changed = true;
            return Ok(());
        }
        if s.starts_with("urn:uuid:") || s.starts_with("urn:oid:") {
            return Err(RefError::Reject(format!(
                "{}.reference: {s} names no entry of this Bundle; refer to the target as Type/id",
                self.at()
            )));
        }
        if let Some((target_type, _)) = conditional(s) {
            if !fhir::is_supported_type(target_type) {
                return Err(RefError::Reject(format!(
                    "{}.reference: a conditional reference to {target_type} cannot be resolved: Portico does not store {target_type} resources",
                    self.at()
                )));
            }
            match (self.resolve)(s).map_err(|e| match e {
                RefError::Reject(why) => {
                    RefError::Reject(format!("{}.reference: {why}", self.at()))
                }
                other => other,
            })? {
                Resolution::Found(target) => {
                    *s = target;
                    self.out.changed = true;
                }
                Resolution::NotYet => {
                    if self.out.unresolved.is_none() {
                        self.out.unresolved = Some(format!(
                            "{}.reference: the conditional reference to {target_type} ({}) matches no {target_type}",
                            self.at(),
                            described_query(s)
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// A conditional reference's parameters without their values (which may be patient data, such
/// as an NHS number): `identifier=…`.
pub fn described_query(reference: &str) -> String {
    let Some((_, query)) = conditional(reference) else {
        return String::new();
    };
    query
        .split('&')
        .map(|p| match p.split_once('=') {
            Some((name, _)) => format!("{name}=…"),
            None => p.to_string(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn none(_: &str) -> Result<Resolution, RefError> {
        Ok(Resolution::NotYet)
    }

    #[test]
    fn conditional_references_are_recognised() {
        assert_eq!(
            conditional("Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|999"),
            Some((
                "Practitioner",
                "identifier=http://hl7.org/fhir/sid/us-npi|999"
            ))
        );
        assert_eq!(conditional("Patient/1"), None);
        assert_eq!(conditional("http://x/fhir/Patient?x=1"), None);
        assert_eq!(conditional("Patient?"), None);
        assert_eq!(conditional("#contained"), None);
    }

    #[test]
    fn bundle_references_become_type_and_id_and_plain_ones_stay() {
        let mut aliases = HashMap::new();
        aliases.insert("urn:uuid:abc".to_string(), "Patient/p1".to_string());
        aliases.insert(
            "http://example.org/fhir/Practitioner/9".to_string(),
            "Practitioner/9".to_string(),
        );
        let mut r = json!({"resourceType": "Observation",
            "subject": {"reference": "urn:uuid:abc"},
            "performer": [{"reference": "Practitioner/2"}, {"reference": "http://example.org/fhir/Practitioner/9"}],
            "note": [{"text": "reference"}]});
        let out = rewrite(&mut r, "Observation", &aliases, &mut none).expect("rewrite");
        assert!(out.changed);
        assert_eq!(r["subject"]["reference"], "Patient/p1");
        assert_eq!(r["performer"][0]["reference"], "Practitioner/2");
        assert_eq!(r["performer"][1]["reference"], "Practitioner/9");
    }

    #[test]
    fn a_dangling_urn_uuid_is_rejected_with_its_path() {
        let mut r = json!({"resourceType": "Observation", "performer": [{"reference": "Practitioner/1"}, {"reference": "urn:uuid:gone"}]});
        let Err(RefError::Reject(why)) = rewrite(&mut r, "Observation", &HashMap::new(), &mut none)
        else {
            panic!("accepted a dangling reference");
        };
        assert!(
            why.starts_with("Observation.performer[1].reference: urn:uuid:gone names no entry"),
            "{why}"
        );
    }

    #[test]
    fn conditional_references_are_resolved_or_reported_without_their_values() {
        let mut r = json!({"resourceType": "Encounter",
            "subject": {"reference": "Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|9000000009"},
            "participant": [{"individual": {"reference": "Practitioner?identifier=npi|1"}}]});
        let mut asked = Vec::new();
        let mut resolve = |q: &str| {
            asked.push(q.to_string());
            Ok(if q.starts_with("Practitioner") {
                Resolution::Found("Practitioner/pr1".into())
            } else {
                Resolution::NotYet
            })
        };
        let out = rewrite(&mut r, "Encounter", &HashMap::new(), &mut resolve).expect("rewrite");
        assert_eq!(asked.len(), 2);
        assert_eq!(
            r["participant"][0]["individual"]["reference"],
            "Practitioner/pr1"
        );
        let unresolved = out.unresolved.expect("unresolved");
        assert_eq!(
            unresolved,
            "Encounter.subject.reference: the conditional reference to Patient (identifier=…) matches no Patient"
        );
        assert!(!unresolved.contains("9000000009"));
    }

    #[test]
    fn conditional_references_to_types_not_stored_are_rejected() {
        let mut r = json!({"resourceType": "Observation", "device": {"reference": "Device?identifier=a|b"}});
        assert!(matches!(
            rewrite(&mut r, "Observation", &HashMap::new(), &mut none),
            Err(RefError::Reject(_))
        ));
    }
}
