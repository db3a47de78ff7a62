//! Bundles: what each entry asks to be imported as.
//!
//! - `collection` and `searchset`: every entry's resource is stored (identity rule).
//! - `transaction`: every entry by its request (POST and `PUT Type/id` store the resource under
//!   the identity rule, `PUT Type?query` stores it as the resource the query finds, DELETE
//!   deletes), all entries in one store transaction: all are imported or none.
//! - `batch` and `history`: the same per entry, each entry on its own.
//!
//! Entries that read (GET, HEAD) or patch are refused: there is nothing to import in them.

use serde_json::{Map, Value};

/// What to do with one entry.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Store the resource under the identity rule. `request_type`/`request_id` come from a
    /// request URL (`POST Type`, `PUT Type/id`).
    Store {
        request_type: Option<String>,
        request_id: Option<String>,
    },
    /// `PUT Type?query`: store the resource as the one the query finds.
    StoreWhere {
        resource_type: String,
        query: String,
    },
    Delete {
        resource_type: String,
        id: String,
    },
    /// `DELETE Type?query`.
    DeleteWhere {
        resource_type: String,
        query: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The entry's position in `Bundle.entry`.
    pub index: usize,
    pub full_url: Option<String>,
    pub resource: Option<Value>,
    pub action: Action,
}

/// An entry that cannot be imported, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct BadEntry {
    pub index: usize,
    /// The entry's resource type when it has one.
    pub resource_type: Option<String>,
    pub reason: String,
}

#[derive(Debug)]
pub struct Expanded {
    /// All entries or none (a transaction).
    pub atomic: bool,
    pub entries: Vec<Result<Entry, BadEntry>>,
}

/// Splits a Bundle into entries. An error is about the Bundle as a whole.
pub fn expand(mut bundle: Map<String, Value>) -> Result<Expanded, String> {
    let kind = match bundle.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(_) => return Err("Bundle.type must be a string".into()),
        None => return Err("Bundle.type is missing".into()),
    };
    let (atomic, by_request) = match kind.as_str() {
        "transaction" => (true, true),
        "batch" | "history" => (false, true),
        "collection" | "searchset" => (false, false),
        other => {
            return Err(format!(
                "Bundle.type: a {other} Bundle is not imported: give a collection, transaction, batch, history or searchset Bundle"
            ))
        }
    };
    let raw = match bundle.remove("entry") {
        None => Vec::new(),
        Some(Value::Array(a)) => a,
        Some(_) => return Err("Bundle.entry must be an array".into()),
    };
    let entries = raw
        .into_iter()
        .enumerate()
        .map(|(index, e)| entry(index, e, by_request))
        .collect();
    Ok(Expanded { atomic, entries })
}

fn entry(index: usize, e: Value, by_request: bool) -> Result<Entry, BadEntry> {
    let Value::Object(mut e) = e else {
        return Err(bad(index, None, "the entry must be a JSON object".into()));
    };
    let resource = match e.remove("resource") {
        None => None,
        Some(r @ Value::Object(_)) => Some(r),
        Some(_) => return Err(bad(index, None, "resource must be a JSON object".into())),
    };
    let resource_type = resource
        .as_ref()
        .and_then(|r| r.get("resourceType"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let fail = |reason: String| bad(index, resource_type.clone(), reason);
    let full_url = match e.remove("fullUrl") {
        None => None,
        Some(Value::String(u)) => Some(u),
        Some(_) => return Err(fail("fullUrl must be a string".into())),
    };
    let action = if by_request {
        let request = match e.get("request") {
            Some(Value::Object(r)) => r,
            _ => {
                return Err(fail(
                    "the entry has no request; give request.method and request.url".into(),
                ))
            }
        };
        let method = request.get("method").and_then(Value::as_str).unwrap_or("");
        let url = request.get("url").and_then(Value::as_str).unwrap_or("");
        if url.is_empty() {
            return Err(fail("request.url is missing".into()));
        }
        let target = parse_url(url).map_err(&fail)?;
        match (method, target) {
            ("POST", Target { id: None, query: _, resource_type }) => Action::Store {
                request_type: Some(resource_type),
                request_id: None,
            },
            ("PUT", Target { id: Some(id), query: None, resource_type }) => Action::Store {
                request_type: Some(resource_type),
                request_id: Some(id),
            },
            ("PUT", Target { id: None, query: Some(query), resource_type }) => Action::StoreWhere {
                resource_type,
                query,
            },
            ("DELETE", Target { id: Some(id), query: None, resource_type }) => Action::Delete {
                resource_type,
                id,
            },
            ("DELETE", Target { id: None, query: Some(query), resource_type }) => {
                Action::DeleteWhere {
                    resource_type,
                    query,
                }
            }
            ("POST" | "PUT" | "DELETE", _) => {
                return Err(fail(format!(
                    "request.url {url:?} does not fit {method}: use POST Type, PUT Type/id, PUT Type?query, DELETE Type/id or DELETE Type?query"
                )))
            }
            ("", _) => return Err(fail("request.method is missing".into())),
            (other, _) => {
                return Err(fail(format!(
                    "request.method {other} is not imported: only POST, PUT and DELETE entries write"
                )))
            }
        }
    } else {
        Action::Store {
            request_type: None,
            request_id: None,
        }
    };
    let needs_resource = matches!(action, Action::Store { .. } | Action::StoreWhere { .. });
    if needs_resource && resource.is_none() {
        return Err(fail("the entry has no resource".into()));
    }
    Ok(Entry {
        index,
        full_url,
        resource,
        action,
    })
}

fn bad(index: usize, resource_type: Option<String>, reason: String) -> BadEntry {
    BadEntry {
        index,
        resource_type,
        reason,
    }
}

/// A request URL taken apart: `Type`, `Type/id`, `Type?query`, possibly absolute
/// (`http://server/fhir/Type/id`) or with a version (`Type/id/_history/2`).
#[derive(Debug, PartialEq)]
struct Target {
    resource_type: String,
    id: Option<String>,
    query: Option<String>,
}

fn parse_url(url: &str) -> Result<Target, String> {
    let (path, query) = match url.split_once('?') {
        Some((p, q)) => (p, Some(q.to_string())),
        None => (url, None),
    };
    let mut segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    if let [.., _, "_history", _] = segments.as_slice() {
        segments.truncate(segments.len() - 2);
    }
    let is_type = |s: &str| {
        let mut c = s.chars();
        c.next().is_some_and(|f| f.is_ascii_uppercase()) && c.all(|c| c.is_ascii_alphanumeric())
    };
    let target = match segments.as_slice() {
        [.., t, id] if is_type(t) && !is_type(id) && query.is_none() => Target {
            resource_type: t.to_string(),
            id: Some(id.to_string()),
            query: None,
        },
        [.., t] if is_type(t) => Target {
            resource_type: t.to_string(),
            id: None,
            query: query.filter(|q| !q.is_empty()),
        },
        _ => {
            return Err(format!(
                "request.url {url:?} names no resource type: give Type, Type/id or Type?query"
            ))
        }
    };
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bundle(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn request_urls_are_taken_apart() {
        let t = |u: &str| parse_url(u).expect(u);
        assert_eq!(t("Patient").resource_type, "Patient");
        assert_eq!(t("Patient/1").id.as_deref(), Some("1"));
        assert_eq!(
            t("http://example.org/fhir/Patient/1").id.as_deref(),
            Some("1")
        );
        assert_eq!(t("Patient/1/_history/3").id.as_deref(), Some("1"));
        assert_eq!(
            t("Organization?identifier=https://github.com/synthetichealth/synthea|x")
                .query
                .as_deref(),
            Some("identifier=https://github.com/synthetichealth/synthea|x")
        );
        assert!(parse_url("metadata").is_err());
        assert!(parse_url("").is_err());
    }

    #[test]
    fn a_collection_stores_every_resource() {
        let b = bundle(
            json!({"resourceType": "Bundle", "type": "collection", "entry": [
                {"fullUrl": "urn:uuid:1", "resource": {"resourceType": "Patient"}},
                {"resource": {"resourceType": "Observation"}},
                {"fullUrl": "urn:uuid:3"}
            ]}),
        );
        let x = expand(b).expect("expand");
        assert!(!x.atomic);
        assert_eq!(x.entries.len(), 3);
        let first = x.entries[0].as_ref().expect("first");
        assert_eq!(first.full_url.as_deref(), Some("urn:uuid:1"));
        assert_eq!(
            first.action,
            Action::Store {
                request_type: None,
                request_id: None
            }
        );
        let third = x.entries[2].as_ref().expect_err("no resource");
        assert_eq!(third.index, 2);
        assert!(third.reason.contains("no resource"), "{}", third.reason);
    }

    #[test]
    fn transactions_are_atomic_and_follow_their_requests() {
        let b = bundle(
            json!({"resourceType": "Bundle", "type": "transaction", "entry": [
                {"resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}},
                {"resource": {"resourceType": "Patient", "id": "a"}, "request": {"method": "PUT", "url": "Patient/a"}},
                {"resource": {"resourceType": "Organization"}, "request": {"method": "PUT", "url": "Organization?identifier=s|1"}},
                {"request": {"method": "DELETE", "url": "Flag/f1"}},
                {"request": {"method": "DELETE", "url": "Flag?identifier=s|2"}},
                {"request": {"method": "GET", "url": "Patient/a"}},
                {"resource": {"resourceType": "Patient"}, "request": {"method": "PUT", "url": "Patient"}}
            ]}),
        );
        let x = expand(b).expect("expand");
        assert!(x.atomic);
        let actions: Vec<Result<&Action, &str>> = x
            .entries
            .iter()
            .map(|e| e.as_ref().map(|e| &e.action).map_err(|b| b.reason.as_str()))
            .collect();
        assert_eq!(
            actions[1],
            Ok(&Action::Store {
                request_type: Some("Patient".into()),
                request_id: Some("a".into())
            })
        );
        assert_eq!(
            actions[2],
            Ok(&Action::StoreWhere {
                resource_type: "Organization".into(),
                query: "identifier=s|1".into()
            })
        );
        assert_eq!(
            actions[3],
            Ok(&Action::Delete {
                resource_type: "Flag".into(),
                id: "f1".into()
            })
        );
        assert!(matches!(actions[4], Ok(Action::DeleteWhere { .. })));
        assert!(actions[5].is_err_and(|r| r.contains("GET is not imported")));
        assert!(actions[6].is_err_and(|r| r.contains("does not fit PUT")));
    }

    #[test]
    fn documents_and_malformed_bundles_are_refused_whole() {
        for b in [
            json!({"resourceType": "Bundle", "type": "document", "entry": []}),
            json!({"resourceType": "Bundle"}),
            json!({"resourceType": "Bundle", "type": "batch", "entry": {}}),
        ] {
            assert!(expand(bundle(b.clone())).is_err(), "{b}");
        }
        let empty = expand(bundle(json!({"resourceType": "Bundle", "type": "batch"})))
            .expect("empty batch");
        assert!(empty.entries.is_empty());
    }
}
