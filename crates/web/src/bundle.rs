//! Bundles written as text: stored resources are copied into the Bundle as the JSON strings they
//! are stored as, never parsed and re-serialised (except when `_elements` asks for a subset).

use chrono::{DateTime, Utc};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{Map, Value};
use store::{HistoryPage, ResourceVersion, SearchQuery, SearchResult};

use crate::http::{etag_value, Reply};

/// What stays literal in a query component: RFC 3986 unreserved characters.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

const SUBSETTED_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue";

/// Appends `s` as a JSON string literal.
pub fn push_str_literal(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escaped = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if escaped.is_empty() {
            out.push_str(&format!("\\u{b:04x}"));
        } else {
            out.push_str(escaped);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// `{base}/{path}?{params}&_count=…&_offset=…`, every component percent-encoded.
pub fn page_url(
    base: &str,
    path: &str,
    params: &[(String, String)],
    count: usize,
    offset: usize,
) -> String {
    let paging = [
        ("_count".to_string(), count.to_string()),
        ("_offset".to_string(), offset.to_string()),
    ];
    url_with_params(base, path, params.iter().chain(&paging))
}

/// `{base}/{path}?k=v&…`, every component percent-encoded (no `?` without parameters).
pub fn url_with_params<'a>(
    base: &str,
    path: &str,
    params: impl IntoIterator<Item = &'a (String, String)>,
) -> String {
    let mut url = String::with_capacity(base.len() + path.len() + 64);
    url.push_str(base);
    url.push('/');
    url.push_str(path);
    let mut sep = '?';
    for (k, v) in params {
        url.push(sep);
        sep = '&';
        url.extend(utf8_percent_encode(k, COMPONENT));
        url.push('=');
        url.extend(utf8_percent_encode(v, COMPONENT));
    }
    url
}

fn push_links(
    out: &mut String,
    base: &str,
    path: &str,
    params: &[(String, String)],
    count: usize,
    offset: usize,
    has_more: bool,
) {
    out.push_str("\"link\":[");
    push_link(out, "self", &page_url(base, path, params, count, offset));
    if has_more && count > 0 {
        out.push(',');
        push_link(
            out,
            "next",
            &page_url(base, path, params, count, offset.saturating_add(count)),
        );
    }
    if offset > 0 && count > 0 {
        out.push(',');
        push_link(
            out,
            "previous",
            &page_url(base, path, params, count, offset.saturating_sub(count)),
        );
    }
    out.push(']');
}

pub(crate) fn push_link(out: &mut String, relation: &str, url: &str) {
    out.push_str("{\"relation\":");
    push_str_literal(out, relation);
    out.push_str(",\"url\":");
    push_str_literal(out, url);
    out.push('}');
}

fn push_full_url(out: &mut String, base: &str, v: &ResourceVersion) {
    push_full_url_of(out, base, &v.resource_type, &v.id);
}

/// `"fullUrl":"{base}/{type}/{id}"`.
pub(crate) fn push_full_url_of(out: &mut String, base: &str, resource_type: &str, id: &str) {
    out.push_str("\"fullUrl\":");
    push_str_literal(out, &format!("{base}/{resource_type}/{id}"));
}

/// The resource reduced to `resourceType`, `id`, `meta` and the listed top-level elements,
/// tagged SUBSETTED.
pub fn subset(json: &str, elements: &[String]) -> Option<String> {
    let Ok(Value::Object(full)) = serde_json::from_str::<Value>(json) else {
        return None;
    };
    let resource_type = full
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let wanted = |k: &str| {
        elements.iter().any(|e| {
            let e = e
                .strip_prefix(&resource_type)
                .and_then(|r| r.strip_prefix('.'))
                .unwrap_or(e);
            e == k
        })
    };
    let mut out = Map::with_capacity(elements.len() + 3);
    for (k, v) in full {
        if matches!(k.as_str(), "resourceType" | "id" | "meta") || wanted(&k) {
            out.insert(k, v);
        }
    }
    let meta = out
        .entry("meta")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(meta) = meta {
        let tag = serde_json::json!({"system": SUBSETTED_SYSTEM, "code": "SUBSETTED", "display": "subsetted"});
        match meta.get_mut("tag") {
            Some(Value::Array(tags)) => tags.push(tag),
            _ => {
                meta.insert("tag".into(), Value::Array(vec![tag]));
            }
        }
    }
    serde_json::to_string(&Value::Object(out)).ok()
}

/// A `searchset` Bundle. `base` is `{public_url}/fhir`; `outcome` an OperationOutcome (JSON)
/// reported as an entry with `search.mode` `outcome`.
pub fn searchset(
    base: &str,
    q: &SearchQuery,
    result: &SearchResult,
    outcome: Option<&str>,
) -> String {
    let size: usize = result
        .matches
        .iter()
        .chain(&result.included)
        .map(|v| v.json.len() + 160)
        .sum();
    let mut out = String::with_capacity(size + 512);
    out.push_str("{\"resourceType\":\"Bundle\",\"type\":\"searchset\"");
    if let Some(total) = result.total {
        out.push_str(",\"total\":");
        out.push_str(&total.to_string());
    }
    out.push(',');
    push_links(
        &mut out,
        base,
        &q.resource_type,
        &q.canonical,
        q.count,
        q.offset,
        result.has_more,
    );
    let mut first = true;
    let mut sep = |out: &mut String| {
        // FHIR JSON never has an empty array: `entry` is only written when there is one.
        out.push_str(if first { ",\"entry\":[" } else { "," });
        first = false;
    };
    if let Some(oo) = outcome {
        sep(&mut out);
        out.push_str("{\"resource\":");
        out.push_str(oo);
        out.push_str(",\"search\":{\"mode\":\"outcome\"}}");
    }
    for (v, mode) in result
        .matches
        .iter()
        .map(|v| (v, "match"))
        .chain(result.included.iter().map(|v| (v, "include")))
    {
        if v.deleted {
            continue;
        }
        sep(&mut out);
        out.push('{');
        push_full_url(&mut out, base, v);
        out.push_str(",\"resource\":");
        match (&q.elements, mode) {
            (Some(elements), "match") => match subset(&v.json, elements) {
                Some(s) => out.push_str(&s),
                None => out.push_str(&v.json),
            },
            _ => out.push_str(&v.json),
        }
        out.push_str(",\"search\":{\"mode\":\"");
        out.push_str(mode);
        out.push_str("\"}}");
    }
    if !first {
        out.push(']');
    }
    out.push('}');
    out
}

/// A `history` Bundle, newest first. `path` is the history URL below `base` (e.g.
/// `Patient/1/_history`), `params` the parameters that shaped it other than paging.
pub fn history(
    base: &str,
    path: &str,
    params: &[(String, String)],
    page: &HistoryPage,
    count: usize,
    offset: usize,
) -> String {
    let size: usize = page.versions.iter().map(|v| v.json.len() + 300).sum();
    let mut out = String::with_capacity(size + 512);
    out.push_str("{\"resourceType\":\"Bundle\",\"type\":\"history\",\"total\":");
    out.push_str(&page.total.to_string());
    out.push(',');
    let has_more = (offset as u64).saturating_add(page.versions.len() as u64) < page.total;
    push_links(&mut out, base, path, params, count, offset, has_more);
    for (i, v) in page.versions.iter().enumerate() {
        out.push_str(if i == 0 { ",\"entry\":[" } else { "," });
        out.push('{');
        push_full_url(&mut out, base, v);
        if !v.deleted {
            out.push_str(",\"resource\":");
            out.push_str(&v.json);
        }
        let (method, url, status) = if v.deleted {
            ("DELETE", format!("{}/{}", v.resource_type, v.id), "200 OK")
        } else if v.version_id == 1 {
            ("POST", v.resource_type.clone(), "201 Created")
        } else {
            ("PUT", format!("{}/{}", v.resource_type, v.id), "200 OK")
        };
        out.push_str(",\"request\":{\"method\":\"");
        out.push_str(method);
        out.push_str("\",\"url\":");
        push_str_literal(&mut out, &url);
        out.push_str("},\"response\":{\"status\":\"");
        out.push_str(status);
        out.push_str("\",\"etag\":");
        push_str_literal(&mut out, &etag_value(v.version_id));
        out.push_str(",\"lastModified\":");
        push_str_literal(&mut out, &fhir::datetime::format_instant(v.last_updated));
        out.push_str("}}");
    }
    if !page.versions.is_empty() {
        out.push(']');
    }
    out.push('}');
    out
}

/// `201 Created`.
pub fn status_line(status: axum::http::StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

/// One entry of a `batch-response` or `transaction-response`.
pub fn push_response_entry(out: &mut String, base: &str, reply: &Reply, is_error: bool) {
    out.push('{');
    let mut need_comma = false;
    if let Some(full) = &reply.full_url {
        out.push_str("\"fullUrl\":");
        push_str_literal(out, &format!("{base}/{full}"));
        need_comma = true;
    }
    if let (Some(body), false) = (&reply.body, is_error) {
        if need_comma {
            out.push(',');
        }
        out.push_str("\"resource\":");
        out.push_str(body);
        need_comma = true;
    }
    if need_comma {
        out.push(',');
    }
    out.push_str("\"response\":{\"status\":");
    push_str_literal(out, &status_line(reply.status));
    if let Some(loc) = &reply.location {
        out.push_str(",\"location\":");
        push_str_literal(out, loc);
    }
    if let Some(v) = reply.version {
        out.push_str(",\"etag\":");
        push_str_literal(out, &etag_value(v));
    }
    if let Some(t) = reply.last_modified {
        out.push_str(",\"lastModified\":");
        push_str_literal(out, &format_last_modified(t));
    }
    if let (Some(body), true) = (&reply.body, is_error) {
        out.push_str(",\"outcome\":");
        out.push_str(body);
    }
    out.push_str("}}");
}

fn format_last_modified(t: DateTime<Utc>) -> String {
    fhir::datetime::format_instant(t)
}

/// A `batch-response` or `transaction-response` Bundle; each reply with whether it is an error.
pub fn response_bundle(base: &str, bundle_type: &str, replies: &[(Reply, bool)]) -> String {
    let size: usize = replies
        .iter()
        .map(|(r, _)| r.body.as_ref().map_or(0, String::len) + 200)
        .sum();
    let mut out = String::with_capacity(size + 128);
    out.push_str("{\"resourceType\":\"Bundle\",\"type\":");
    push_str_literal(&mut out, bundle_type);
    for (i, (reply, is_error)) in replies.iter().enumerate() {
        out.push_str(if i == 0 { ",\"entry\":[" } else { "," });
        push_response_entry(&mut out, base, reply, *is_error);
    }
    if !replies.is_empty() {
        out.push(']');
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_literals_are_valid_json() {
        let tricky = "a\"b\\c\nd\u{1}é";
        let mut out = String::new();
        push_str_literal(&mut out, tricky);
        assert_eq!(serde_json::from_str::<String>(&out).unwrap(), tricky);
    }

    #[test]
    fn page_urls_encode_every_component() {
        let url = page_url(
            "http://h/fhir",
            "Observation",
            &[
                ("subject:Patient.name".into(), "Zoë & co".into()),
                ("date".into(), "ge2020-01-01T00:00:00+01:00".into()),
            ],
            10,
            20,
        );
        assert_eq!(
            url,
            "http://h/fhir/Observation?subject%3APatient.name=Zo%C3%AB%20%26%20co&date=ge2020-01-01T00%3A00%3A00%2B01%3A00&_count=10&_offset=20"
        );
    }

    fn version(id: &str, json: &str) -> ResourceVersion {
        ResourceVersion {
            resource_type: "Patient".into(),
            id: id.into(),
            version_id: 1,
            last_updated: chrono::DateTime::from_timestamp_millis(0).unwrap(),
            deleted: false,
            json: json.into(),
        }
    }

    #[test]
    fn searchset_is_valid_json_and_never_has_empty_arrays() {
        let q = SearchQuery::all("Patient");
        let empty: Value = serde_json::from_str(&searchset(
            "http://h/fhir",
            &q,
            &SearchResult::default(),
            None,
        ))
        .unwrap();
        assert!(empty.get("entry").is_none());
        assert_eq!(empty["link"][0]["relation"], "self");
        let result = SearchResult {
            matches: vec![version("a", r#"{"resourceType":"Patient","id":"a"}"#)],
            included: vec![version("b", r#"{"resourceType":"Patient","id":"b"}"#)],
            total: Some(1),
            has_more: true,
            warnings: Vec::new(),
        };
        let v: Value = serde_json::from_str(&searchset(
            "http://h/fhir",
            &q,
            &result,
            Some(r#"{"resourceType":"OperationOutcome"}"#),
        ))
        .unwrap();
        assert_eq!(v["total"], 1);
        assert_eq!(v["entry"][0]["search"]["mode"], "outcome");
        assert_eq!(v["entry"][1]["fullUrl"], "http://h/fhir/Patient/a");
        assert_eq!(v["entry"][2]["search"]["mode"], "include");
        assert_eq!(
            v["link"][1]["url"],
            "http://h/fhir/Patient?_count=50&_offset=50"
        );
    }

    #[test]
    fn paging_links_saturate_instead_of_overflowing() {
        let mut q = SearchQuery::all("Patient");
        q.offset = usize::MAX - 1;
        q.count = 10;
        let result = SearchResult {
            has_more: true,
            ..SearchResult::default()
        };
        let v: Value =
            serde_json::from_str(&searchset("http://h/fhir", &q, &result, None)).unwrap();
        assert_eq!(
            v["link"][1]["url"],
            format!("http://h/fhir/Patient?_count=10&_offset={}", usize::MAX)
        );
    }

    #[test]
    fn history_bundles_are_valid_json() {
        let page = HistoryPage {
            versions: vec![],
            total: 0,
        };
        let v: Value =
            serde_json::from_str(&history("http://h/fhir", "_history", &[], &page, 10, 0)).unwrap();
        assert_eq!(v["total"], 0);
        assert!(v.get("entry").is_none());
        let mut deleted = version("a", "");
        deleted.deleted = true;
        deleted.version_id = 2;
        let page = HistoryPage {
            versions: vec![
                deleted,
                version("a", r#"{"resourceType":"Patient","id":"a"}"#),
            ],
            total: 2,
        };
        let v: Value = serde_json::from_str(&history(
            "http://h/fhir",
            "Patient/a/_history",
            &[],
            &page,
            10,
            0,
        ))
        .unwrap();
        assert_eq!(v["entry"][0]["request"]["method"], "DELETE");
        assert!(v["entry"][0].get("resource").is_none());
        assert_eq!(v["entry"][1]["request"]["method"], "POST");
    }

    #[test]
    fn subset_keeps_listed_elements_and_tags() {
        let json = r#"{"resourceType":"Patient","id":"1","meta":{"versionId":"1"},"name":[{"family":"X"}],"gender":"male","birthDate":"2000"}"#;
        let v: Value =
            serde_json::from_str(&subset(json, &["name".into(), "Patient.gender".into()]).unwrap())
                .unwrap();
        assert_eq!(v["name"][0]["family"], "X");
        assert_eq!(v["gender"], "male");
        assert!(v.get("birthDate").is_none());
        assert_eq!(v["meta"]["versionId"], "1");
        assert_eq!(v["meta"]["tag"][0]["code"], "SUBSETTED");
    }
}
