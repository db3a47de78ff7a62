//! The HTTP details of FHIR: query strings, media types and `_format`, `Prefer`, `If-Match`,
//! request bodies, and the reply of an interaction with its headers.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::error::WebError;
use crate::FHIR_JSON;

/// The media type of a `Content-Type`/`Accept` item, without parameters.
pub fn media_type(value: &str) -> &str {
    value.split(';').next().unwrap_or("").trim()
}

fn is_json_media(m: &str) -> bool {
    [
        "application/fhir+json",
        "application/json",
        "application/json+fhir",
    ]
    .iter()
    .any(|j| m.eq_ignore_ascii_case(j))
}

fn decode_component(s: &str) -> Result<String, WebError> {
    let plus_free;
    let s = if s.contains('+') {
        plus_free = s.replace('+', " ");
        plus_free.as_str()
    } else {
        s
    };
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| {
            WebError::bad_request(
                "the query string is not UTF-8 once percent-decoded; percent-encode parameters as UTF-8",
            )
        })
}

/// Decodes `a=b&c=d` (query string or form body): `+` is a space, `%XX` a byte, UTF-8 required.
pub fn parse_params(raw: &str) -> Result<Vec<(String, String)>, WebError> {
    let mut out = Vec::new();
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = decode_component(k)?;
        if k.is_empty() {
            return Err(WebError::bad_request(format!(
                "the query has a value without a parameter name: {pair:?}"
            )));
        }
        out.push((k, decode_component(v)?));
    }
    Ok(out)
}

pub fn parse_query(raw: Option<&str>) -> Result<Vec<(String, String)>, WebError> {
    match raw {
        None | Some("") => Ok(Vec::new()),
        Some(q) => parse_params(q),
    }
}

/// What the client asked for with `Prefer: return=…`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Return {
    Minimal,
    #[default]
    Representation,
    OperationOutcome,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Prefer {
    pub ret: Return,
    /// `handling=lenient`.
    pub lenient: bool,
}

/// The warning for parameters skipped under `Prefer: handling=lenient`, so that search,
/// `$everything` and `$export` tell the client the same thing about what they ignored.
pub fn ignored_parameters_warning(ignored: &[String]) -> fhir::Issue {
    fhir::Issue::warning(
        fhir::IssueType::NotSupported,
        format!(
            "these parameters were not understood and were ignored (Prefer: handling=lenient): {}",
            ignored.join(", ")
        ),
    )
}

/// Reads every `Prefer` header (`return=…`, `handling=…`, comma- or header-separated).
pub fn prefer(headers: &HeaderMap) -> Prefer {
    let mut p = Prefer::default();
    for value in headers.get_all("prefer") {
        let Ok(text) = value.to_str() else { continue };
        for item in text.split(',') {
            let token = item.split(';').next().unwrap_or("").trim();
            let Some((k, v)) = token.split_once('=') else {
                continue;
            };
            let v = v.trim().trim_matches('"');
            match k.trim().to_ascii_lowercase().as_str() {
                "return" => match v {
                    "minimal" => p.ret = Return::Minimal,
                    "representation" => p.ret = Return::Representation,
                    "OperationOutcome" => p.ret = Return::OperationOutcome,
                    _ => {}
                },
                "handling" => match v {
                    "lenient" => p.lenient = true,
                    "strict" => p.lenient = false,
                    _ => {}
                },
                _ => {}
            }
        }
    }
    p
}

const JSON_ONLY: &str =
    "this server speaks FHIR JSON only: use _format=json or Accept: application/fhir+json (XML and other formats are not supported)";

/// Checks `_format` (which overrides `Accept`) and `Accept`: only JSON is served.
pub fn negotiate(headers: &HeaderMap, params: &[(String, String)]) -> Result<(), WebError> {
    if let Some((_, format)) = params.iter().rev().find(|(k, _)| k == "_format") {
        let m = media_type(format);
        if m.eq_ignore_ascii_case("json") || is_json_media(m) {
            return Ok(());
        }
        return Err(WebError::NotAcceptable(format!(
            "_format={format} cannot be served; {JSON_ONLY}"
        )));
    }
    check_accept(headers)
}

/// `Accept`: absent, or naming JSON, FHIR JSON or a wildcard.
pub fn check_accept(headers: &HeaderMap) -> Result<(), WebError> {
    let mut any = false;
    for value in headers.get_all(header::ACCEPT) {
        let Ok(text) = value.to_str() else { continue };
        for item in text.split(',') {
            let m = media_type(item);
            if m.is_empty() {
                continue;
            }
            any = true;
            if is_json_media(m) || m == "*/*" || m.eq_ignore_ascii_case("application/*") {
                return Ok(());
            }
        }
    }
    if any {
        Err(WebError::NotAcceptable(format!(
            "the Accept header names no format this server produces; {JSON_ONLY}"
        )))
    } else {
        Ok(())
    }
}

/// The body of a request, or 413 when it exceeded `max_body_bytes`.
pub fn body_bytes(body: Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes, WebError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            WebError::BodyTooLarge { limit }
        } else {
            WebError::bad_request(format!(
                "the request body could not be read: {}",
                rejection.body_text()
            ))
        }
    })
}

/// Parses a JSON request body (`application/fhir+json` or `application/json`).
pub fn json_body(headers: &HeaderMap, body: &[u8]) -> Result<Value, WebError> {
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let m = ct.to_str().map(media_type).unwrap_or("");
        if !is_json_media(m) {
            return Err(WebError::UnsupportedMediaType(format!(
                "Content-Type {m:?} is not supported; send the body as application/fhir+json"
            )));
        }
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(WebError::bad_request(
            "the request body is empty; send a FHIR resource as JSON",
        ));
    }
    serde_json::from_slice(body).map_err(|e| WebError::Json {
        line: e.line(),
        column: e.column(),
        message: json_error_message(&e),
    })
}

/// serde_json's message without its trailing " at line X column Y" (reported separately).
fn json_error_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// A resource body for `resource_type`: a JSON object whose `resourceType` matches the URL.
pub fn check_resource_type(value: &Value, resource_type: &str) -> Result<(), WebError> {
    let Value::Object(map) = value else {
        return Err(WebError::bad_request(format!(
            "the body must be a {resource_type} resource (a JSON object), not {}",
            json_kind(value)
        )));
    };
    match map.get("resourceType") {
        Some(Value::String(t)) if t == resource_type => Ok(()),
        Some(Value::String(t)) => Err(WebError::bad_request_at(
            format!("the body is a {t} but the URL is for {resource_type}; send it to /fhir/{t}"),
            "resourceType",
        )),
        _ => Err(WebError::bad_request_at(
            format!("the body has no resourceType; add \"resourceType\": \"{resource_type}\""),
            "resourceType",
        )),
    }
}

pub fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `W/"3"` (or `"3"`, or `3`) → 3.
pub fn parse_etag(text: &str) -> Option<i64> {
    let t = text.trim();
    let t = t.strip_prefix("W/").unwrap_or(t);
    let t = t
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(t);
    t.parse::<i64>().ok().filter(|v| *v > 0)
}

/// `If-Match: W/"3"` → `Some(3)`; a malformed header is a 400.
pub fn if_match(headers: &HeaderMap) -> Result<Option<i64>, WebError> {
    match headers.get(header::IF_MATCH) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(parse_etag)
            .map(Some)
            .ok_or_else(|| {
                WebError::bad_request_at(
                    "If-Match must be a version ETag such as W/\"3\"",
                    "If-Match",
                )
            }),
    }
}

/// Formats an HTTP date (RFC 9110 IMF-fixdate).
pub fn http_date(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

pub fn etag_value(version: i64) -> String {
    format!("W/\"{version}\"")
}

/// The answer to one interaction, shared by the REST routes and Bundle entries.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: StatusCode,
    /// JSON text (a resource, a Bundle or an OperationOutcome).
    pub body: Option<String>,
    /// `Type/id/_history/vid`, relative to the FHIR base: the `Location` of a write.
    pub location: Option<String>,
    /// `Type/id`, relative to the FHIR base: the Bundle entry's `fullUrl`.
    pub full_url: Option<String>,
    pub version: Option<i64>,
    pub last_modified: Option<DateTime<Utc>>,
}

impl Reply {
    pub fn json(status: StatusCode, body: String) -> Self {
        Reply {
            status,
            body: Some(body),
            location: None,
            full_url: None,
            version: None,
            last_modified: None,
        }
    }

    pub fn empty(status: StatusCode) -> Self {
        Reply {
            status,
            body: None,
            location: None,
            full_url: None,
            version: None,
            last_modified: None,
        }
    }

    /// A reply about a written version (the body is set by the caller).
    pub fn about(status: StatusCode, v: &store::ResourceVersion) -> Self {
        Reply {
            status,
            body: None,
            location: Some(format!(
                "{}/{}/_history/{}",
                v.resource_type, v.id, v.version_id
            )),
            full_url: Some(format!("{}/{}", v.resource_type, v.id)),
            version: Some(v.version_id),
            last_modified: Some(v.last_updated),
        }
    }

    /// The HTTP response, `Location` made absolute with `base` (`{public_url}/fhir`).
    pub fn into_http(self, base: &str) -> Response {
        let has_body = self.body.is_some();
        let mut res = match self.body {
            Some(body) => (self.status, body).into_response(),
            None => self.status.into_response(),
        };
        let headers = res.headers_mut();
        if has_body {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
        }
        if let Some(v) = self.version {
            if let Ok(h) = HeaderValue::from_str(&etag_value(v)) {
                headers.insert(header::ETAG, h);
            }
        }
        if let Some(t) = self.last_modified {
            if let Ok(h) = HeaderValue::from_str(&http_date(t)) {
                headers.insert(header::LAST_MODIFIED, h);
            }
        }
        if let Some(loc) = self.location {
            if let Ok(h) = HeaderValue::from_str(&format!("{base}/{loc}")) {
                headers.insert(header::LOCATION, h);
            }
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_decode_plus_and_percent() {
        let p = parse_params("name=J%C3%B6rg+Smith&date=ge2020-01-01T00%3A00%3A00%2B01%3A00&flag")
            .unwrap();
        assert_eq!(p[0], ("name".into(), "Jörg Smith".into()));
        assert_eq!(p[1].1, "ge2020-01-01T00:00:00+01:00");
        assert_eq!(p[2], ("flag".into(), String::new()));
    }

    #[test]
    fn params_refuse_invalid_utf8_and_keep_bad_escapes_literal() {
        assert!(parse_params("name=%FF%FE").is_err());
        assert_eq!(parse_params("name=%zz").unwrap()[0].1, "%zz");
        assert!(parse_params("=x").is_err());
    }

    #[test]
    fn etags_parse_weak_and_strong() {
        assert_eq!(parse_etag("W/\"3\""), Some(3));
        assert_eq!(parse_etag("\"12\""), Some(12));
        assert_eq!(parse_etag("W/\"x\""), None);
        assert_eq!(parse_etag("0"), None);
    }

    #[test]
    fn prefer_reads_return_and_handling() {
        let mut h = HeaderMap::new();
        h.insert(
            "prefer",
            HeaderValue::from_static("return=minimal, handling=lenient"),
        );
        assert_eq!(
            prefer(&h),
            Prefer {
                ret: Return::Minimal,
                lenient: true
            }
        );
        h.insert(
            "prefer",
            HeaderValue::from_static("return=OperationOutcome"),
        );
        assert_eq!(prefer(&h).ret, Return::OperationOutcome);
    }

    #[test]
    fn format_and_accept() {
        let h = HeaderMap::new();
        assert!(negotiate(&h, &[("_format".into(), "json".into())]).is_ok());
        assert!(negotiate(&h, &[("_format".into(), "application/fhir+json".into())]).is_ok());
        assert!(negotiate(&h, &[("_format".into(), "xml".into())]).is_err());
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/fhir+xml"),
        );
        assert!(negotiate(&h, &[]).is_err());
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/html, */*;q=0.8"),
        );
        assert!(negotiate(&h, &[]).is_ok());
    }

    #[test]
    fn http_dates_are_imf_fixdate() {
        let t = DateTime::parse_from_rfc3339("2024-03-05T07:08:09.123Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(http_date(t), "Tue, 05 Mar 2024 07:08:09 GMT");
    }
}
