//! FHIR Bulk Data export (Bulk Data Access IG STU2, the asynchronous request pattern):
//!
//! - **Kick-off**: `GET /fhir/$export` (every resource), `GET /fhir/Patient/$export` (every
//!   patient's compartment), `GET /fhir/Group/{id}/$export` (the compartments of the group's
//!   member patients, from `Group.member.entity`; members marked `inactive` are left out). It
//!   needs `Prefer: respond-async`; `Accept` may be absent or JSON. Parameters: `_outputFormat`
//!   (`application/fhir+ndjson`, `application/ndjson` or `ndjson`), `_type` (comma-separated;
//!   default every type, or every type of a patient's record for Patient and Group), `_since`
//!   (an instant: only resources last updated after it). Others are refused (400) unless the
//!   request says `Prefer: handling=lenient`. The access policy decides: only system clients
//!   export, with a search scope for every type they export (`system/*.read` or `*.rs` for
//!   everything; and read on Group for a Group export). The kick-off is recorded in the audit
//!   trail before it is answered. Answer: 202 with
//!   `Content-Location: {base}/$export-status/{job}`.
//! - **Status**: `GET {base}/$export-status/{job}`: 202 with `X-Progress` and `Retry-After`
//!   while running; 200 with the manifest (`transactionTime`, `request`, `requiresAccessToken`,
//!   `output: [{type, url, count}]`, `error: []`) when complete; 500 with an OperationOutcome
//!   when it failed. `DELETE` on the same URL cancels the export and removes its files (202);
//!   the job is then gone (404).
//! - **Files**: `GET {base}/$export-file/{job}/{Type}-{n}.ndjson`, `application/fhir+ndjson`,
//!   one resource per line exactly as stored (with `id` and `meta`), so that `portico import`
//!   loads them back as the same resources.
//!
//! Status, files and cancellation answer only the client that kicked the export off; any other
//! gets 404, as for a job that does not exist.
//!
//! **Consistency.** The kick-off records `transactionTime`; the export holds the current version
//! of every matching resource last updated at or before it. A resource changed after it is left
//! out of this export — not served in its older version — and is picked up by the next export
//! with `_since` set to this `transactionTime` (`_since` selects resources updated strictly
//! after it, so the two exports neither overlap nor leave a gap). Resources deleted before the
//! export reads them are not in it.
//!
//! **Who runs it.** The kick-off only records the job (`queued`); the export worker of every
//! serving process ([`worker`]) claims queued jobs from the database, so that exactly one server
//! runs each, whichever received the kick-off. A job whose server stopped (its heartbeat is
//! [`job::STALE_SECS`] old) is taken over by another worker and its files started again; after
//! [`job::MAX_ATTEMPTS`] such claims it is failed. Cancelling reaches the runner on any server
//! through the database.
//!
//! **Where files go.** `WebConfig::export_dir` (`PORTICO_EXPORT_DIR`), one folder per job (the
//! file names on disk begin with the number of the claim that wrote them). Jobs are kept
//! `export_retention_secs` after they finish and removed by a later kick-off. With several
//! servers on one database the folder must be shared storage: the server that writes an export
//! is rarely the one a status poll or download reaches.

pub mod job;
pub mod runner;
pub mod worker;

use axum::body::{Body, Bytes};
use axum::extract::{OriginalUri, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use fhir::{Issue, IssueType, OperationOutcome};
use serde_json::{json, Value};
use store::scan::MAX_COMPARTMENT_PATIENTS;
use store::Store;

use crate::access::{audited, denial_error, Gate, Requester, Seen};
use crate::auth::Principal;
use crate::error::WebError;
use crate::http::{check_accept, http_date, ignored_parameters_warning, parse_query, prefer};
use crate::patient_record::{compartment_types, parse_since, parse_types};
use crate::rest::{read_current, Segments};
use crate::{AppState, FHIR_JSON};
use store::audit::AuditAction;

use job::{is_file_name, is_job_id, new_job_id, Job, Level, Status};

/// The media type of export files.
pub const NDJSON: &str = "application/fhir+ndjson";

/// How long a client is asked to wait between status polls.
const RETRY_AFTER_SECS: u32 = 2;

/// Most exports one client may have running at once; more get 429.
pub const MAX_RUNNING_PER_CLIENT: usize = 4;

const OUTPUT_FORMATS: &[&str] = &["application/fhir+ndjson", "application/ndjson", "ndjson"];

/// The kick-off parameters, checked.
#[derive(Debug)]
struct KickOff {
    types: Option<Vec<&'static str>>,
    since: Option<DateTime<Utc>>,
    ignored: Vec<String>,
}

fn parse_kick_off(
    params: &[(String, String)],
    compartment_only: bool,
    lenient: bool,
) -> Result<KickOff, WebError> {
    let mut type_values = Vec::new();
    let mut since = None;
    let mut ignored = Vec::new();
    for (k, v) in params {
        match k.as_str() {
            "_type" => type_values.push(v.as_str()),
            "_since" => since = Some(parse_since(v)?),
            "_outputFormat" => {
                if !OUTPUT_FORMATS
                    .iter()
                    .any(|f| f.eq_ignore_ascii_case(v.trim()))
                {
                    return Err(WebError::BadRequest(
                        Issue::error(
                            IssueType::NotSupported,
                            format!(
                                "_outputFormat {:?} is not supported; this server writes NDJSON: use {}",
                                v.chars().take(64).collect::<String>(),
                                OUTPUT_FORMATS.join(", ")
                            ),
                        )
                        .at("_outputFormat"),
                    ));
                }
            }
            _ if lenient => ignored.push(k.clone()),
            _ => {
                return Err(WebError::BadRequest(
                    Issue::error(
                        IssueType::NotSupported,
                        format!(
                            "$export does not support the parameter {k:?}; use _type, _since or \
                             _outputFormat (or send Prefer: handling=lenient to ignore it)"
                        ),
                    )
                    .at(k.clone()),
                ))
            }
        }
    }
    Ok(KickOff {
        types: parse_types(&type_values, compartment_only)?,
        since,
        ignored,
    })
}

/// Whether a `Prefer` header asks for `respond-async`.
fn respond_async(headers: &HeaderMap) -> bool {
    headers.get_all("prefer").iter().any(|v| {
        v.to_str().is_ok_and(|text| {
            text.split(',').any(|item| {
                item.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .eq_ignore_ascii_case("respond-async")
            })
        })
    })
}

/// `GET /fhir/$export`.
pub async fn system_kick_off(
    State(state): State<AppState>,
    requester: Requester,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    kick_off(
        &state,
        &requester,
        &headers,
        &uri,
        query.as_deref(),
        Level::System,
    )
    .await
}

/// `GET /fhir/Patient/$export`.
pub async fn patient_kick_off(
    State(state): State<AppState>,
    requester: Requester,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    kick_off(
        &state,
        &requester,
        &headers,
        &uri,
        query.as_deref(),
        Level::Patient,
    )
    .await
}

/// `GET /fhir/Group/{id}/$export`.
pub async fn group_kick_off(
    State(state): State<AppState>,
    requester: Requester,
    Segments(id): Segments<String>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    kick_off(
        &state,
        &requester,
        &headers,
        &uri,
        query.as_deref(),
        Level::Group { id },
    )
    .await
}

async fn kick_off(
    state: &AppState,
    requester: &Requester,
    headers: &HeaderMap,
    uri: &axum::http::Uri,
    query: Option<&str>,
    level: Level,
) -> Result<Response, WebError> {
    let entity = match &level {
        Level::System => "$export".to_string(),
        Level::Patient => "Patient/$export".to_string(),
        Level::Group { id } => format!("Group/{id}/$export"),
    };
    let result = kick_off_decided(state, requester, headers, uri, query, level)
        .await
        .map(|res| (res, Seen::default()));
    audited(state, requester, AuditAction::Export, entity, result).await
}

/// The kick-off once audited around: the policy lets only system clients export (every patient's
/// data, or a Group's), each type under its scope.
async fn kick_off_decided(
    state: &AppState,
    requester: &Requester,
    headers: &HeaderMap,
    uri: &axum::http::Uri,
    query: Option<&str>,
    level: Level,
) -> Result<Response, WebError> {
    let policy::Subject::System { client_id } = &requester.who.subject else {
        return Err(WebError::Forbidden(
            "only system clients may export every patient's data".into(),
        ));
    };
    let params = parse_query(query)?;
    check_accept(headers)?;
    if !respond_async(headers) {
        return Err(WebError::BadRequest(
            Issue::error(
                IssueType::Invalid,
                "a Bulk Data export runs asynchronously: send the header Prefer: respond-async",
            )
            .at("Prefer"),
        ));
    }
    let compartment_only = level != Level::System;
    let request = parse_kick_off(&params, compartment_only, prefer(headers).lenient)?;
    let types: Vec<&'static str> = match request.types {
        Some(types) => types,
        None if compartment_only => compartment_types(),
        None => fhir::RESOURCE_TYPES.to_vec(),
    };
    let gate = Gate::new(state, requester).await?;
    for t in &types {
        gate.query(policy::Action::Export, t, &[], None)
            .map_err(|d| denial_error(d, t, None))?;
    }
    // A Group export's members are fixed now; a worker reads them when it runs the job.
    let members = match &level {
        Level::Group { id } => {
            gate.lookup("Group")
                .map_err(|d| denial_error(d, "Group", Some(id)))?;
            Some(group_members(&*state.store, id).await?)
        }
        Level::System | Level::Patient => None,
    };
    let jobs = state.store.state_list(job::KEY_PREFIX).await?;
    let now = Utc::now();
    let mut running = 0;
    for (_, text) in &jobs {
        let Ok(existing) = Job::parse(text) else {
            continue;
        };
        if state.export_expired(&existing, now) {
            state.export_runner().remove(&existing.id).await;
        } else if existing.client_id == *client_id && existing.is_pending() {
            running += 1;
        }
    }
    if running >= MAX_RUNNING_PER_CLIENT {
        return Err(WebError::TooManyRequests(format!(
            "this client already has {running} exports queued or running; wait for one to finish (or cancel one with DELETE on its status URL) and try again"
        )));
    }
    let transaction_time = fhir::datetime::now_millis();
    let path_and_query = uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/fhir/$export");
    let job = Job {
        id: new_job_id(),
        client_id: client_id.clone(),
        request: format!(
            "{}{path_and_query}",
            state.config.public_url.trim_end_matches('/')
        ),
        level,
        types: types.iter().map(|t| t.to_string()).collect(),
        since: request.since,
        transaction_time,
        status: Status::Queued,
        written: 0,
        types_done: 0,
        output: Vec::new(),
        error: None,
        heartbeat: transaction_time,
        finished_at: None,
        attempt: 0,
        worker: None,
    };
    if let Some(members) = members {
        let text = serde_json::to_string(&members)
            .map_err(|e| WebError::Internal(format!("could not encode a Group's members: {e}")))?;
        state
            .store
            .state_put(&Job::members_key(&job.id), &text)
            .await?;
    }
    // Recorded last: a worker that finds the job finds its members too.
    job.save(&*state.store).await?;
    let status_url = format!("{}/$export-status/{}", state.base, job.id);
    state.exports.wake();

    let mut issues = vec![Issue::information(format!(
        "export started; poll {status_url} for its progress"
    ))];
    if !request.ignored.is_empty() {
        issues.push(ignored_parameters_warning(&request.ignored));
    }
    let body = OperationOutcome::new(issues).to_json().to_string();
    let mut res = (StatusCode::ACCEPTED, body).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
    if let Ok(v) = HeaderValue::from_str(&status_url) {
        h.insert(header::CONTENT_LOCATION, v);
    }
    Ok(res)
}

/// The ids of the group's active Patient members; 404/410 for a group that is not there.
async fn group_members(store: &dyn Store, id: &str) -> Result<Vec<String>, WebError> {
    let group = read_current(store, "Group", id).await?.parse()?;
    let members = member_patients(&group);
    if members.len() > MAX_COMPARTMENT_PATIENTS {
        return Err(WebError::BadRequest(Issue::error(
            IssueType::TooCostly,
            format!(
                "Group/{id} has {} patient members; a Group export takes at most \
                 {MAX_COMPARTMENT_PATIENTS}: export at Patient level (/fhir/Patient/$export) instead",
                members.len()
            ),
        )));
    }
    Ok(members)
}

/// `Group.member.entity` references to Patients (`Patient/{id}`, or an absolute URL ending so),
/// without repeats, leaving out members marked `inactive`.
fn member_patients(group: &Value) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for member in group["member"].as_array().into_iter().flatten() {
        if member["inactive"].as_bool() == Some(true) {
            continue;
        }
        let Some(reference) = member["entity"]["reference"].as_str() else {
            continue;
        };
        let mut parts = reference.rsplit('/');
        let (Some(id), Some("Patient")) = (parts.next(), parts.next()) else {
            continue;
        };
        if fhir::types::is_valid_id(id) && !ids.iter().any(|x| x == id) {
            ids.push(id.to_string());
        }
    }
    ids
}

/// The job `id` if it exists, belongs to `principal` and is not cancelled; else 404.
async fn owned_job(state: &AppState, principal: &Principal, id: &str) -> Result<Job, WebError> {
    let missing = || {
        WebError::NotFound(format!(
            "there is no export job {id} for this client; it may have been cancelled, have expired, or belong to another client"
        ))
    };
    if !is_job_id(id) {
        return Err(missing());
    }
    let Some(job) = Job::load(&*state.store, id).await? else {
        return Err(missing());
    };
    if job.client_id != principal.client_id || Job::cancelled(&*state.store, id).await? {
        return Err(missing());
    }
    Ok(job)
}

/// `GET /fhir/$export-status/{job}`.
pub async fn status(
    State(state): State<AppState>,
    principal: Principal,
    Segments(id): Segments<String>,
) -> Result<Response, WebError> {
    let job = owned_job(&state, &principal, &id).await?;
    let now = Utc::now();
    match job.status {
        // A job whose server stopped is still to be done: a worker takes it over.
        Status::Queued | Status::Running => {
            let mut res = StatusCode::ACCEPTED.into_response();
            let h = res.headers_mut();
            if let Ok(v) = HeaderValue::from_str(&job.progress()) {
                h.insert("x-progress", v);
            }
            h.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
            Ok(res)
        }
        Status::Failed => Err(WebError::Internal(format!(
            "the export failed: {}",
            job.error.as_deref().unwrap_or("no reason was recorded")
        ))),
        Status::Complete => {
            let manifest = manifest(&state.base, &job);
            let mut res = (StatusCode::OK, manifest.to_string()).into_response();
            let h = res.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            let expires = i64::try_from(state.config.export_retention_secs)
                .ok()
                .and_then(chrono::TimeDelta::try_seconds)
                .and_then(|keep| job.finished_at.unwrap_or(now).checked_add_signed(keep));
            if let Some(v) = expires.and_then(|t| HeaderValue::from_str(&http_date(t)).ok()) {
                h.insert(header::EXPIRES, v);
            }
            Ok(res)
        }
    }
}

/// The completion manifest of the Bulk Data IG.
fn manifest(base: &str, job: &Job) -> Value {
    let output: Vec<Value> = job
        .output
        .iter()
        .map(|f| {
            json!({
                "type": f.resource_type,
                "url": format!("{base}/$export-file/{}/{}", job.id, f.name),
                "count": f.count,
            })
        })
        .collect();
    json!({
        "transactionTime": fhir::datetime::format_instant(job.transaction_time),
        "request": job.request,
        "requiresAccessToken": true,
        "output": output,
        "error": [],
    })
}

/// `DELETE /fhir/$export-status/{job}`: cancels the export and removes its files.
pub async fn cancel(
    State(state): State<AppState>,
    principal: Principal,
    Segments(id): Segments<String>,
) -> Result<Response, WebError> {
    owned_job(&state, &principal, &id).await?;
    state
        .store
        .state_put(&Job::cancel_key(&id), "cancelled")
        .await?;
    // A running export here stops at its next page and removes its files itself; one running on
    // another server sees the cancellation at its next progress write and does the same. One
    // that has finished, is queued, or whose server stopped is removed now.
    if !state.exports.cancel(&id) {
        worker::remove_unless_running(&state.export_runner(), &id, job::STALE_SECS).await?;
    }
    let body = OperationOutcome::single(Issue::information(format!(
        "export {id} is cancelled and its files removed"
    )))
    .to_json()
    .to_string();
    let mut res = (StatusCode::ACCEPTED, body).into_response();
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
    Ok(res)
}

/// `GET /fhir/$export-file/{job}/{name}`: one NDJSON file of a complete export, streamed.
pub async fn file(
    State(state): State<AppState>,
    principal: Principal,
    Segments((id, name)): Segments<(String, String)>,
) -> Result<Response, WebError> {
    let job = owned_job(&state, &principal, &id).await?;
    let missing = || WebError::NotFound(format!("export {id} has no file {name}"));
    if job.status != Status::Complete
        || !is_file_name(&name)
        || !job.output.iter().any(|f| f.name == name)
    {
        return Err(missing());
    }
    let path = state.export_runner().file_path(&id, job.attempt, &name);
    let file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(WebError::NotFound(format!(
                "the file {name} of export {id} is not on this server; with several servers, PORTICO_EXPORT_DIR must be shared storage"
            )))
        }
        Err(e) => return Err(WebError::Internal(format!("could not open an export file: {e}"))),
    };
    let length = file.metadata().await.ok().map(|m| m.len());
    let stream = futures::stream::try_unfold(file, |mut file| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 64 * 1024];
        let n = file.read(&mut buf).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.truncate(n);
        Ok::<_, std::io::Error>(Some((Bytes::from(buf), file)))
    });
    let mut res = (StatusCode::OK, Body::from_stream(stream)).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(NDJSON));
    if let Some(len) = length {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    Ok(res)
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
    fn kick_off_parameters_are_checked() {
        let k = parse_kick_off(
            &pairs(&[
                ("_type", "Observation,Patient"),
                ("_outputFormat", "ndjson"),
            ]),
            false,
            false,
        )
        .unwrap();
        assert_eq!(k.types.unwrap(), ["Patient", "Observation"]);
        for f in OUTPUT_FORMATS {
            assert!(
                parse_kick_off(&pairs(&[("_outputFormat", f)]), false, false).is_ok(),
                "{f}"
            );
        }
        assert!(parse_kick_off(&pairs(&[("_outputFormat", "text/csv")]), false, false).is_err());
        assert!(parse_kick_off(&pairs(&[("_typeFilter", "x")]), false, false).is_err());
        assert_eq!(
            parse_kick_off(&pairs(&[("_typeFilter", "x")]), false, true)
                .unwrap()
                .ignored,
            ["_typeFilter"]
        );
        assert!(parse_kick_off(&pairs(&[("_type", "Practitioner")]), true, false).is_err());
        assert!(parse_kick_off(&pairs(&[("_type", "Practitioner")]), false, false).is_ok());
        assert!(parse_kick_off(&pairs(&[("_since", "never")]), false, false).is_err());
    }

    #[test]
    fn prefer_respond_async_is_found_among_other_preferences() {
        let mut h = HeaderMap::new();
        assert!(!respond_async(&h));
        h.insert(
            "prefer",
            HeaderValue::from_static("handling=lenient, respond-async"),
        );
        assert!(respond_async(&h));
        h.insert("prefer", HeaderValue::from_static("return=minimal"));
        assert!(!respond_async(&h));
    }

    #[test]
    fn group_members_are_active_patient_references_once() {
        let group = json!({"resourceType": "Group", "member": [
            {"entity": {"reference": "Patient/a"}},
            {"entity": {"reference": "http://h/fhir/Patient/b"}},
            {"entity": {"reference": "Patient/a"}},
            {"entity": {"reference": "Patient/c"}, "inactive": true},
            {"entity": {"reference": "Practitioner/d"}},
            {"entity": {"display": "no reference"}}
        ]});
        assert_eq!(member_patients(&group), ["a", "b"]);
        assert!(member_patients(&json!({"resourceType": "Group"})).is_empty());
    }
}
