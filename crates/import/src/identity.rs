//! The identity rule: which stored resource an imported resource is. One rule, here, for NDJSON
//! lines and every kind of Bundle entry, so that importing the same data twice writes to the
//! same ids and the second run changes nothing.
//!
//! 1. The **source id**: the resource's own `id`; for a Bundle entry without one, the uuid of a
//!    `urn:uuid:` fullUrl, or the id in a `PUT Type/id` request.
//! 2. Without a source id, the resource of that type already stored with the same **identifier**
//!    (the first identifier that has both a system and a value), or with none stored, an id
//!    derived from the type and that identifier — the same id on every run and every machine.
//! 3. With neither, an id derived from the **content**: the same resource imported again is the
//!    same resource; a changed one is a new one.
//!
//! Step 2's search against the store is done by the caller ([`crate::prepare`]); the rest is
//! pure and lives here.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Where a resource's id comes from, before any lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// A source id (rule 1).
    Source(String),
    /// No source id; find the stored resource by this identifier (rule 2).
    Identifier { system: String, value: String },
    /// Neither: the id is [`content_id`] (rule 3).
    Content,
}

/// Why a source id cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadId(pub String);

/// Rule 1, then the choice between rules 2 and 3. `full_url` is the Bundle entry's fullUrl and
/// `request_id` the id of a `PUT Type/id` request (both None for an NDJSON line).
pub fn identify(
    resource: &Value,
    full_url: Option<&str>,
    request_id: Option<&str>,
) -> Result<Identity, BadId> {
    let body_id = match resource.get("id") {
        None => None,
        Some(Value::String(id)) => Some(id.as_str()),
        Some(_) => return Err(BadId("id must be a string".into())),
    };
    if let (Some(body), Some(url)) = (body_id, request_id) {
        if body != url {
            return Err(BadId(format!(
                "the resource's id {body:?} differs from the id {url:?} in request.url"
            )));
        }
    }
    let uuid = full_url.and_then(|u| u.strip_prefix("urn:uuid:"));
    if let Some(id) = body_id.or(request_id).or(uuid) {
        return if fhir::types::is_valid_id(id) {
            Ok(Identity::Source(id.to_string()))
        } else {
            Err(BadId(format!(
                "{id:?} is not a valid id: use 1-64 letters, digits, '-' or '.'"
            )))
        };
    }
    Ok(match first_identifier(resource) {
        Some((system, value)) => Identity::Identifier { system, value },
        None => Identity::Content,
    })
}

/// The first identifier with both a system and a value.
pub fn first_identifier(resource: &Value) -> Option<(String, String)> {
    let identifiers = match resource.get("identifier")? {
        Value::Array(a) => a.iter().collect::<Vec<_>>(),
        one @ Value::Object(_) => vec![one],
        _ => return None,
    };
    identifiers.into_iter().find_map(|i| {
        let system = i.get("system")?.as_str().filter(|s| !s.is_empty())?;
        let value = i.get("value")?.as_str().filter(|s| !s.is_empty())?;
        Some((system.to_string(), value.to_string()))
    })
}

/// The id rule 2 gives a resource of `resource_type` identified by `key` (e.g. the identifier's
/// `system|value`) when the store has none.
pub fn derived_id(resource_type: &str, key: &str) -> String {
    name_based_id(&[resource_type.as_bytes(), b"\n", key.as_bytes()])
}

/// The id rule 3 gives a resource: a hash of its type and JSON text.
pub fn content_id(resource_type: &str, resource: &Value) -> String {
    let text = resource.to_string();
    name_based_id(&[resource_type.as_bytes(), b"\ncontent\n", text.as_bytes()])
}

/// A UUID (version 8, name-based) from a SHA-256 of `parts`: it looks like the ids the server
/// gives, and cannot collide with a server's random or time-ordered ones (versions 4 and 7).
fn name_based_id(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    h.update(b"portico-import\n");
    for p in parts {
        h.update(p);
    }
    let digest = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex = crate::source::hex(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_resource_id_is_the_source_id() {
        let r = json!({"resourceType": "Patient", "id": "p1", "identifier": [{"system": "s", "value": "v"}]});
        assert_eq!(
            identify(
                &r,
                Some("urn:uuid:0b9c7e3a-1111-4222-8333-444455556666"),
                None
            ),
            Ok(Identity::Source("p1".into()))
        );
    }

    #[test]
    fn a_bundle_entry_without_id_takes_its_urn_uuid_or_its_put_id() {
        let r = json!({"resourceType": "Patient"});
        assert_eq!(
            identify(
                &r,
                Some("urn:uuid:0b9c7e3a-1111-4222-8333-444455556666"),
                None
            ),
            Ok(Identity::Source(
                "0b9c7e3a-1111-4222-8333-444455556666".into()
            ))
        );
        assert_eq!(
            identify(&r, Some("urn:uuid:x"), Some("p9")),
            Ok(Identity::Source("p9".into()))
        );
        // An absolute fullUrl is not an id.
        assert_eq!(
            identify(&r, Some("http://example.org/fhir/Patient/3"), None),
            Ok(Identity::Content)
        );
    }

    #[test]
    fn a_put_id_must_agree_with_the_body() {
        let r = json!({"resourceType": "Patient", "id": "a"});
        assert!(identify(&r, None, Some("b")).is_err());
        assert_eq!(
            identify(&r, None, Some("a")),
            Ok(Identity::Source("a".into()))
        );
    }

    #[test]
    fn invalid_ids_are_refused() {
        for bad in [
            json!("has space"),
            json!(""),
            json!(12),
            json!("x".repeat(65)),
        ] {
            let r = json!({"resourceType": "Patient", "id": bad});
            assert!(identify(&r, None, None).is_err(), "{r}");
        }
        let r = json!({"resourceType": "Patient"});
        assert!(identify(&r, Some("urn:uuid:not a uuid"), None).is_err());
    }

    #[test]
    fn without_a_source_id_the_first_full_identifier_identifies() {
        let r = json!({"resourceType": "Patient", "identifier": [
            {"value": "no-system"},
            {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9000000009"},
            {"system": "other", "value": "later"}
        ]});
        assert_eq!(
            identify(&r, None, None),
            Ok(Identity::Identifier {
                system: "https://fhir.nhs.uk/Id/nhs-number".into(),
                value: "9000000009".into()
            })
        );
        let single = json!({"resourceType": "DocumentReference", "masterIdentifier": {}, "identifier": {"system": "s", "value": "v"}});
        assert!(matches!(
            identify(&single, None, None),
            Ok(Identity::Identifier { .. })
        ));
        let none = json!({"resourceType": "Patient", "identifier": [{"system": "s"}]});
        assert_eq!(identify(&none, None, None), Ok(Identity::Content));
    }

    #[test]
    fn derived_ids_are_stable_valid_and_distinct() {
        let a = derived_id("Patient", "s|1");
        assert_eq!(a, derived_id("Patient", "s|1"));
        assert_ne!(a, derived_id("Patient", "s|2"));
        assert_ne!(a, derived_id("Practitioner", "s|1"));
        assert!(fhir::types::is_valid_id(&a), "{a}");
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "8");
        let r = json!({"resourceType": "Flag", "status": "active"});
        let c = content_id("Flag", &r);
        assert_eq!(c, content_id("Flag", &r));
        assert_ne!(
            c,
            content_id(
                "Flag",
                &json!({"resourceType": "Flag", "status": "inactive"})
            )
        );
    }
}
