//! The JSON endpoints of the passkey ceremonies: what a request must carry, and how they answer.
//!
//! **Forgery.** These endpoints take no anti-forgery field: a page of another site cannot make a
//! browser send them anyway. A cross-site request with `Content-Type: application/json` is not
//! a "simple" request, so the browser first asks (CORS preflight), and Portico never allows it;
//! a form or a `no-cors` fetch cannot set that type, so a request without it is refused (415)
//! before anything else. On top, the `Origin` header must be the public URL's origin (403):
//! browsers set it on every POST from a script, and a page cannot forge it. (The pages are
//! served with `Referrer-Policy: no-referrer`, under which a browser would send `Origin: null`;
//! `passkeys.js` therefore asks for `same-origin` on its own requests.)
//!
//! **Answers.** Success is `200` with a JSON object; failure is a JSON object
//! `{"error": code, "message": words to show}` with the status, never an HTML page, so the
//! script can show the message where the person is looking.

use axum::body::Bytes;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use webauthn_rs::prelude::Url;

use crate::error::current_request_id;
use crate::ui::text;
use crate::{AppState, WebError};

/// Largest body a ceremony endpoint reads: an attestation is a few kilobytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The origin of the public URL (`scheme://host[:port]`), as browsers write `Origin`; None
/// when the URL has no such origin.
pub fn expected_origin(public_url: &str) -> Option<String> {
    let origin = Url::parse(public_url).ok()?.origin();
    origin.is_tuple().then(|| origin.ascii_serialization())
}

/// Whether the `Content-Type` is JSON (`application/json`, with or without parameters).
pub fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

/// Refuses a request that is not JSON (415) or not from the public URL's origin (403).
pub fn check_request(state: &AppState, headers: &HeaderMap) -> Result<(), WebError> {
    if !is_json(headers) {
        return Err(WebError::UnsupportedMediaType(
            "passkey requests must be application/json".into(),
        ));
    }
    let sent = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    match (sent, expected_origin(&state.config.public_url)) {
        (Some(sent), Some(expected)) if sent == expected => Ok(()),
        _ => Err(WebError::Forbidden(
            "a passkey request must come from this service's own pages".into(),
        )),
    }
}

/// The body as `T`; 413 past [`MAX_BODY_BYTES`], 400 when it is not a `T`.
pub fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, WebError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(WebError::BodyTooLarge {
            limit: MAX_BODY_BYTES,
        });
    }
    serde_json::from_slice(body)
        .map_err(|e| WebError::bad_request(format!("the passkey request is malformed: {e}")))
}

/// A JSON answer.
pub fn answer(status: StatusCode, body: &Value) -> Response {
    let mut res = (status, body.to_string()).into_response();
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// A refusal the person can act on: `message` is shown to them.
pub fn refuse(status: StatusCode, error: &str, message: &str) -> Response {
    answer(status, &json!({ "error": error, "message": message }))
}

/// The JSON answer for an error of the request or the server: the words fit the status (sign
/// in again, reload, wait, or a problem with a reference); server faults are logged with the
/// request id, never with request data.
pub fn failure(error: WebError) -> Response {
    let t = text::current();
    let status = error.status();
    let (code, message) = match status {
        StatusCode::UNAUTHORIZED => ("signed-out", t.passkey_signed_out.to_string()),
        StatusCode::FORBIDDEN => ("forbidden", t.forbidden_body.to_string()),
        StatusCode::NOT_FOUND => ("unavailable", t.passkeys_unavailable.to_string()),
        StatusCode::TOO_MANY_REQUESTS => ("too-many", t.too_many_body.to_string()),
        s if s.is_client_error() => ("bad-request", t.passkey_failed.to_string()),
        _ => {
            let id = current_request_id();
            tracing::error!(
                request_id = id.as_deref().unwrap_or("-"),
                error = %error,
                "a passkey request failed"
            );
            let reference = id
                .map(|id| format!(" {}: {id}", t.reference_label))
                .unwrap_or_default();
            ("problem", format!("{}{reference}", t.problem_title))
        }
    };
    answer(status, &json!({ "error": code, "message": message }))
}

/// Turns a JSON handler's result into its response.
pub fn respond(result: Result<Response, WebError>) -> Response {
    result.unwrap_or_else(failure)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_origin_is_scheme_host_and_port_only() {
        assert_eq!(
            expected_origin("https://portal.example.nhs.uk/").as_deref(),
            Some("https://portal.example.nhs.uk")
        );
        assert_eq!(
            expected_origin("https://Portal.Example.nhs.uk:443/portico").as_deref(),
            Some("https://portal.example.nhs.uk")
        );
        assert_eq!(
            expected_origin("http://localhost:8080").as_deref(),
            Some("http://localhost:8080")
        );
        assert_eq!(expected_origin("not a url"), None);
        assert_eq!(expected_origin("data:text/plain,x"), None);
    }

    #[test]
    fn only_application_json_counts_as_json() {
        let with = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(v));
            h
        };
        assert!(is_json(&with("application/json")));
        assert!(is_json(&with("Application/JSON; charset=utf-8")));
        for no in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/jsonx",
            "application/fhir+json",
        ] {
            assert!(!is_json(&with(no)), "{no}");
        }
        assert!(!is_json(&HeaderMap::new()));
    }
}
