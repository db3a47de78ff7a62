//! `GET /fhir/Patient/{id}/$everything`: the patient's whole record (their compartment, see
//! [`crate::patient_record`]) as a `searchset` Bundle: the Patient first, then the rest of the
//! record in the order it was stored.
//!
//! The Bundle is streamed: it is written page by page from [`store::Store::scan`] (one
//! statement per page for every type of the record) while the client reads it, so a record of
//! any size costs the server one page of memory. Without `_count` the whole record comes in one
//! response; with `_count=n` each response holds at most `n` entries and a `next` link whose
//! `_cursor` (a store position) says where the following page starts. The cursor is not an
//! offset: pages never skip or repeat a resource when others are written meanwhile.
//!
//! Parameters: `_type` (the types wanted), `_since` (only resources last updated after it),
//! `_count`, `_cursor` (from a `next` link). The R4 `start`/`end` care-date range is not
//! supported: refused, or ignored with a warning under `Prefer: handling=lenient`. The access
//! policy decides for the patient (out of reach: 404, as if absent) and for each type: a type
//! the requester may not read is left out, and an `outcome` entry says which; each type's
//! filter goes into the scan. The access is recorded before the first byte is sent.
//!
//! A failure after the first bytes were sent cannot change the status any more: the response is
//! cut off (the client sees a truncated body, never a complete-looking partial record) and the
//! failure is logged with the request id.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use fhir::{Issue, IssueType, OperationOutcome};
use store::{Compartment, ResourceVersion, ScanQuery, Store, StoreError};

use crate::access::{audited, denial_error, patient_facts, Gate, Requester, Seen};
use crate::bundle::{push_full_url_of, push_link, url_with_params};
use crate::error::WebError;
use crate::http::{ignored_parameters_warning, negotiate, parse_query, prefer};
use crate::patient_record::{compartment_types, parse_since, parse_types};
use crate::rest::{read_current, Segments};
use crate::{AppState, FHIR_JSON};
use policy::{Action, Denial};
use store::access::{Access, Filter};
use store::audit::AuditAction;

/// Resources fetched from the store per step of an unpaged response.
const SCAN_PAGE: usize = 1000;

/// The parameters of a request, checked.
#[derive(Debug)]
struct Request {
    types: Option<Vec<&'static str>>,
    since: Option<DateTime<Utc>>,
    count: Option<usize>,
    /// The store position from `_cursor`.
    cursor: Option<i64>,
    /// The parameters that shape every page, for the links.
    kept: Vec<(String, String)>,
    ignored: Vec<String>,
}

impl Request {
    fn parse(
        params: &[(String, String)],
        max_count: usize,
        lenient: bool,
    ) -> Result<Request, WebError> {
        let mut type_values = Vec::new();
        let mut request = Request {
            types: None,
            since: None,
            count: None,
            cursor: None,
            kept: Vec::new(),
            ignored: Vec::new(),
        };
        for (k, v) in params {
            match k.as_str() {
                "_type" => {
                    type_values.push(v.as_str());
                    request.kept.push((k.clone(), v.clone()));
                }
                "_since" => {
                    request.since = Some(parse_since(v)?);
                    request.kept.push((k.clone(), v.clone()));
                }
                "_count" => {
                    let n =
                        store::query::parse_count(v, max_count).map_err(WebError::BadRequest)?;
                    if n == 0 {
                        return Err(WebError::BadRequest(
                            Issue::error(
                                IssueType::Invalid,
                                "_count must be at least 1 for $everything",
                            )
                            .at("_count"),
                        ));
                    }
                    request.count = Some(n);
                }
                "_cursor" => request.cursor = Some(parse_cursor(v)?),
                "_format" | "_pretty" => {}
                _ if lenient => request.ignored.push(k.clone()),
                _ => {
                    return Err(WebError::BadRequest(
                        Issue::error(
                            IssueType::NotSupported,
                            format!(
                            "$everything does not support the parameter {k:?}; use _type, _since \
                                 or _count (or send Prefer: handling=lenient to ignore it)"
                        ),
                        )
                        .at(k.clone()),
                    ))
                }
            }
        }
        request.types = parse_types(&type_values, true)?;
        Ok(request)
    }
}

fn parse_cursor(value: &str) -> Result<i64, WebError> {
    value
        .parse::<i64>()
        .ok()
        .filter(|a| *a >= 0 && value.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| {
            WebError::BadRequest(
                Issue::error(
                    IssueType::Invalid,
                    "_cursor is not one this server made; follow the Bundle's next link as it is",
                )
                .at("_cursor"),
            )
        })
}

/// The route handler.
pub async fn everything(
    State(state): State<AppState>,
    requester: Requester,
    Segments(id): Segments<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let params = parse_query(query.as_deref())?;
    negotiate(&headers, &params)?;
    let result = prepare(&state, &requester, &id, &params, &headers).await;
    let producer = audited(
        &state,
        &requester,
        AuditAction::Everything,
        format!("Patient/{id}/$everything"),
        result,
    )
    .await?;
    let request_id = crate::error::current_request_id();
    let stream = futures::stream::unfold(Some(producer), move |producer| {
        let request_id = request_id.clone();
        async move {
            let mut producer = producer?;
            match producer.next_chunk().await {
                Ok(Some(bytes)) => Some((Ok(bytes), Some(producer))),
                Ok(None) => None,
                Err(e) => {
                    tracing::error!(
                        request_id = request_id.as_deref().unwrap_or("-"),
                        error = %e,
                        "$everything stopped part way; the response was cut off"
                    );
                    Some((Err(std::io::Error::other(e.to_string())), None))
                }
            }
        }
    });
    let mut res = (StatusCode::OK, Body::from_stream(stream)).into_response();
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
    Ok(res)
}

/// Decides the request and makes the producer of its Bundle (nothing is sent yet).
async fn prepare(
    state: &AppState,
    requester: &Requester,
    id: &str,
    params: &[(String, String)],
    headers: &HeaderMap,
) -> Result<(Producer, Seen), WebError> {
    let request = Request::parse(params, state.config.max_count, prefer(headers).lenient)?;
    let gate = Gate::new(state, requester).await?;
    // The patient, or 404 (never existed, not an id, or out of reach) / 410 (deleted).
    let Some(facts) = patient_facts(gate.store(), id).await? else {
        return match requester.who.subject {
            policy::Subject::System { .. } => Err(read_current(gate.store(), "Patient", id)
                .await
                .err()
                .unwrap_or_else(|| denial_error(Denial::NotFound, "Patient", Some(id)))),
            _ => Err(denial_error(Denial::NotFound, "Patient", Some(id))),
        };
    };
    let patient = read_current(gate.store(), "Patient", id).await?;
    let decide = |t: &str| gate.query(Action::Everything, t, &[], Some(&facts));
    // The patient themself decides whether the record is in reach at all.
    let (_, mut break_glass) =
        decide("Patient").map_err(|d| denial_error(d, "Patient", Some(id)))?;
    let mut access = Access::uniform(Filter::nothing());
    let mut warnings = Vec::new();
    let types: Vec<&'static str> = match &request.types {
        Some(types) => {
            for t in types {
                let (a, bg) = decide(t).map_err(|d| denial_error(d, "Patient", Some(id)))?;
                access = access.with(t, a.filter_for(t).clone());
                break_glass |= bg;
            }
            types.clone()
        }
        None => {
            let mut readable = Vec::new();
            let mut hidden = Vec::new();
            for t in compartment_types() {
                match decide(t) {
                    Ok((a, bg)) => {
                        access = access.with(t, a.filter_for(t).clone());
                        break_glass |= bg;
                        readable.push(t);
                    }
                    Err(Denial::Forbidden(_)) => hidden.push(t),
                    Err(d) => return Err(denial_error(d, "Patient", Some(id))),
                }
            }
            if !hidden.is_empty() {
                warnings.push(Issue::warning(
                    IssueType::Forbidden,
                    format!(
                        "the record's {} resources are left out: you may not read them",
                        hidden.join(", ")
                    ),
                ));
            }
            readable
        }
    };
    if !request.ignored.is_empty() {
        warnings.push(ignored_parameters_warning(&request.ignored));
    }
    // The patient's own entry opens the first page, when the Patient filter admits it.
    let own_admitted = match patient.parse() {
        Ok(value) => access.filter_for("Patient").admits(
            &store::access::resource_facts("Patient", id, &value),
            std::slice::from_ref(&facts),
        ),
        Err(_) => false,
    };
    let own_entry = request.cursor.is_none()
        && own_admitted
        && types.contains(&"Patient")
        && request.since.is_none_or(|s| patient.last_updated > s);
    let producer = Producer {
        store: state.store.clone(),
        base: state.base.clone(),
        path: format!("Patient/{id}/$everything"),
        patient,
        types: types.iter().map(|t| t.to_string()).collect(),
        own_entry,
        since: request.since,
        count: request.count,
        kept: request.kept,
        self_cursor: request.cursor,
        outcome: (!warnings.is_empty())
            .then(|| OperationOutcome::new(warnings).to_json().to_string()),
        after: request.cursor.unwrap_or(0),
        exhausted: false,
        emitted: 0,
        any_entry: false,
        started: false,
        done: false,
        access,
    };
    let mut seen = Seen {
        break_glass,
        ..Seen::default()
    };
    seen.patients.insert(id.to_string());
    Ok((producer, seen))
}

/// Writes the Bundle a piece at a time.
struct Producer {
    store: Arc<dyn Store>,
    base: Arc<str>,
    /// `Patient/{id}/$everything`, for the links.
    path: String,
    patient: ResourceVersion,
    types: Vec<String>,
    /// Whether the patient's own entry opens this page.
    own_entry: bool,
    since: Option<DateTime<Utc>>,
    count: Option<usize>,
    kept: Vec<(String, String)>,
    self_cursor: Option<i64>,
    outcome: Option<String>,
    /// The store position the next scan continues from.
    after: i64,
    /// The scan has nothing after `after`.
    exhausted: bool,
    emitted: usize,
    any_entry: bool,
    started: bool,
    done: bool,
    /// The policy's filter of each type, applied in every scan.
    access: Access,
}

impl Producer {
    /// The next piece of the body; None once it is complete.
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, StoreError> {
        if self.done {
            return Ok(None);
        }
        let mut out = String::new();
        if !self.started {
            self.started = true;
            out.push_str("{\"resourceType\":\"Bundle\",\"type\":\"searchset\"");
            if let Some(oo) = self.outcome.take() {
                self.entry_start(&mut out);
                out.push_str("{\"resource\":");
                out.push_str(&oo);
                out.push_str(",\"search\":{\"mode\":\"outcome\"}}");
            }
            if self.own_entry {
                let (id, json) = (self.patient.id.clone(), self.patient.json.clone());
                self.push_entry(&mut out, "Patient", &id, &json);
            }
            return Ok(Some(out.into()));
        }
        // Steps until something is written or the Bundle ends.
        loop {
            let full = self.count.is_some_and(|c| self.emitted >= c);
            if full || self.exhausted {
                let more = full && !self.exhausted && self.more_follow().await?;
                self.finish(&mut out, more);
                return Ok(Some(out.into()));
            }
            let limit = match self.count {
                Some(c) => c - self.emitted,
                None => SCAN_PAGE,
            };
            let page = self.store.scan(&self.query(limit)).await?;
            for v in &page.resources {
                if !self.is_own_row(v) {
                    self.push_entry(&mut out, &v.resource_type, &v.id, &v.json);
                }
            }
            match page.next_after {
                Some(after) => self.after = after,
                None => self.exhausted = true,
            }
            if !out.is_empty() {
                return Ok(Some(out.into()));
            }
        }
    }

    fn query(&self, limit: usize) -> ScanQuery {
        ScanQuery {
            resource_types: self.types.clone(),
            updated_after: self.since,
            updated_until: None,
            compartment: Some(Compartment::Patients(vec![self.patient.id.clone()])),
            after: self.after,
            limit,
            access: Some(self.access.clone()),
        }
    }

    /// The patient's own row, which the first page sends before everything else.
    fn is_own_row(&self, v: &ResourceVersion) -> bool {
        v.resource_type == "Patient" && v.id == self.patient.id
    }

    /// Whether anything but the patient's own row follows the current position.
    async fn more_follow(&mut self) -> Result<bool, StoreError> {
        // Two rows: one of them may be the patient's own.
        let page = self.store.scan(&self.query(2)).await?;
        Ok(page.resources.iter().any(|v| !self.is_own_row(v)))
    }

    fn entry_start(&mut self, out: &mut String) {
        // FHIR JSON never has an empty array: `entry` opens with the first entry.
        out.push_str(if self.any_entry { "," } else { ",\"entry\":[" });
        self.any_entry = true;
    }

    fn push_entry(&mut self, out: &mut String, resource_type: &str, id: &str, json: &str) {
        self.entry_start(out);
        out.push('{');
        push_full_url_of(out, &self.base, resource_type, id);
        out.push_str(",\"resource\":");
        out.push_str(json);
        out.push_str(",\"search\":{\"mode\":\"match\"}}");
        self.emitted += 1;
    }

    fn link(&self, cursor: Option<i64>) -> String {
        let mut params = self.kept.clone();
        if let Some(c) = self.count {
            params.push(("_count".into(), c.to_string()));
        }
        if let Some(c) = cursor {
            params.push(("_cursor".into(), c.to_string()));
        }
        url_with_params(&self.base, &self.path, &params)
    }

    fn finish(&mut self, out: &mut String, more: bool) {
        if self.any_entry {
            out.push(']');
        }
        out.push_str(",\"link\":[");
        push_link(out, "self", &self.link(self.self_cursor));
        if more {
            out.push(',');
            push_link(out, "next", &self.link(Some(self.after)));
        }
        out.push_str("]}");
        self.done = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        assert_eq!(parse_cursor("42").unwrap(), 42);
        for bad in [
            "",
            "Observation:42",
            "-1",
            "+5",
            "4x",
            "99999999999999999999",
        ] {
            assert!(parse_cursor(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn parameters_are_checked() {
        let r = Request::parse(
            &pairs(&[("_type", "Observation"), ("_count", "5")]),
            1000,
            false,
        )
        .unwrap();
        assert_eq!(r.types.unwrap(), ["Observation"]);
        assert_eq!(r.count, Some(5));
        assert!(Request::parse(&pairs(&[("_count", "0")]), 1000, false).is_err());
        assert!(Request::parse(&pairs(&[("start", "2020")]), 1000, false).is_err());
        let lenient = Request::parse(&pairs(&[("start", "2020")]), 1000, true).unwrap();
        assert_eq!(lenient.ignored, ["start"]);
        assert!(Request::parse(&pairs(&[("_since", "soon")]), 1000, false).is_err());
        assert!(Request::parse(&pairs(&[("_type", "Practitioner")]), 1000, false).is_err());
    }
}
