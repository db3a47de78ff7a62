//! The FHIR REST interactions. Each route handler parses the request into domain values, asks
//! [`authorize`], and calls one interaction function; the interaction functions are shared with
//! the entries of batch and transaction Bundles.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequestParts, Path, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use fhir::{Issue, IssueType, OperationOutcome};
use serde::de::DeserializeOwned;
use serde_json::Value;
use store::{HistoryQuery, HistoryScope, Prepared, SearchQuery, StoreError, WriteOp, WriteOutcome};

use crate::auth::{authorize, Action, Principal};
use crate::bundle;
use crate::error::WebError;
use crate::http::{
    self, body_bytes, check_resource_type, json_body, negotiate, parse_query, prefer, Reply, Return,
};
use crate::AppState;

/// Path parameters, with a malformed path reported as an OperationOutcome.
pub struct Segments<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Segments<T> {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(t)) => Ok(Segments(t)),
            Err(e) => Err(WebError::bad_request(format!(
                "the URL path could not be read: {}",
                e.body_text()
            ))),
        }
    }
}

pub fn check_type(resource_type: &str) -> Result<(), WebError> {
    if fhir::is_supported_type(resource_type) {
        Ok(())
    } else {
        Err(WebError::UnknownType(resource_type.to_string()))
    }
}

/// Validates and indexes an incoming resource of `resource_type`.
pub fn prepare(value: Value, resource_type: &str) -> Result<Prepared, WebError> {
    check_resource_type(&value, resource_type)?;
    Ok(Prepared::new(value)?)
}

fn outcome_text(issue: Issue) -> String {
    OperationOutcome::single(issue).to_json().to_string()
}

/// Search criteria of a conditional interaction (`If-None-Exist`, `PUT/DELETE Type?…`).
/// Parsed strictly even under `handling=lenient`: an ignored criterion would widen the match.
pub fn criteria(
    state: &AppState,
    resource_type: &str,
    params: &[(String, String)],
    what: &str,
) -> Result<SearchQuery, WebError> {
    let q = store::query::parse(resource_type, params, &state.parse_options(false))
        .map_err(WebError::Search)?;
    if q.conditions.is_empty() {
        return Err(WebError::bad_request(format!(
            "{what} needs search criteria, e.g. identifier=system|value"
        )));
    }
    Ok(q)
}

/// Parses an `If-None-Exist` value (`a=b&c=d`, optionally prefixed by `?` or `Type?`).
pub fn if_none_exist(
    state: &AppState,
    resource_type: &str,
    text: &str,
) -> Result<SearchQuery, WebError> {
    let text = text.trim();
    let text = match text.split_once('?') {
        Some((head, q)) if !head.contains('=') => q,
        _ => text,
    };
    let params = http::parse_params(text)?;
    criteria(state, resource_type, &params, "If-None-Exist")
}

// ----- interactions -----

pub async fn read_interaction(
    state: &AppState,
    resource_type: &str,
    id: &str,
) -> Result<Reply, WebError> {
    let v = read_current(&*state.store, resource_type, id).await?;
    Ok(Reply {
        status: StatusCode::OK,
        version: Some(v.version_id),
        last_modified: Some(v.last_updated),
        full_url: None,
        location: None,
        body: Some(v.json),
    })
}

/// The current version of `resource_type/id`: 404 when it never existed (or `id` is not an
/// id), 410 when it is deleted. Read, `$everything` (the patient) and Group export (the group)
/// all answer a missing resource this way.
pub(crate) async fn read_current(
    store: &dyn store::Store,
    resource_type: &str,
    id: &str,
) -> Result<store::ResourceVersion, WebError> {
    let not_found = || {
        WebError::Store(StoreError::NotFound {
            resource_type: resource_type.to_string(),
            id: id.to_string(),
        })
    };
    if !fhir::types::is_valid_id(id) {
        return Err(not_found());
    }
    match store.read(resource_type, id).await? {
        None => Err(not_found()),
        Some(v) if v.deleted => Err(StoreError::Gone {
            resource_type: v.resource_type,
            id: v.id,
            version_id: v.version_id,
        }
        .into()),
        Some(v) => Ok(v),
    }
}

pub async fn vread_interaction(
    state: &AppState,
    resource_type: &str,
    id: &str,
    vid: &str,
) -> Result<Reply, WebError> {
    let Some(version) = vid.parse::<i64>().ok().filter(|v| *v > 0) else {
        return Err(WebError::bad_request(format!(
            "{vid:?} is not a version id; versions are numbered 1, 2, 3, …"
        )));
    };
    let not_found = || {
        WebError::Store(StoreError::NotFound {
            resource_type: resource_type.to_string(),
            id: format!("{id}/_history/{version}"),
        })
    };
    if !fhir::types::is_valid_id(id) {
        return Err(not_found());
    }
    match state.store.vread(resource_type, id, version).await? {
        None => Err(not_found()),
        Some(v) if v.deleted => Err(StoreError::Gone {
            resource_type: v.resource_type,
            id: v.id,
            version_id: v.version_id,
        }
        .into()),
        Some(v) => Ok(Reply {
            status: StatusCode::OK,
            version: Some(v.version_id),
            last_modified: Some(v.last_updated),
            full_url: Some(format!("{}/{}", v.resource_type, v.id)),
            location: None,
            body: Some(v.json),
        }),
    }
}

pub async fn search_interaction(
    state: &AppState,
    principal: &Principal,
    resource_type: &str,
    params: &[(String, String)],
    lenient: bool,
) -> Result<Reply, WebError> {
    let q = store::query::parse(resource_type, params, &state.parse_options(lenient))
        .map_err(WebError::Search)?;
    let mut result = state.store.search(&q).await?;
    // Included resources of types the client may not read are left out.
    result
        .included
        .retain(|r| principal.allows(Action::Read, &r.resource_type));
    let mut warnings = Vec::new();
    if !q.ignored.is_empty() {
        warnings.push(http::ignored_parameters_warning(&q.ignored));
    }
    for w in &result.warnings {
        warnings.push(Issue::warning(IssueType::TooCostly, w.clone()));
    }
    let outcome =
        (!warnings.is_empty()).then(|| OperationOutcome::new(warnings).to_json().to_string());
    Ok(Reply::json(
        StatusCode::OK,
        bundle::searchset(&state.base, &q, &result, outcome.as_deref()),
    ))
}

pub async fn history_interaction(
    state: &AppState,
    scope: HistoryScope,
    params: &[(String, String)],
    lenient: bool,
) -> Result<Reply, WebError> {
    let mut query = HistoryQuery {
        scope,
        since: None,
        count: state.config.default_count.min(state.config.max_count),
        offset: 0,
        access: None,
    };
    let mut kept = Vec::new();
    let mut issues = Vec::new();
    for (k, v) in params {
        match k.as_str() {
            "_count" => match store::query::parse_count(v, state.config.max_count) {
                Ok(n) => query.count = n,
                Err(issue) => issues.push(issue),
            },
            "_offset" => match store::query::parse_offset(v) {
                Ok(n) => query.offset = n,
                Err(issue) => issues.push(issue),
            },
            "_since" => match fhir::datetime::parse_datetime(v).and_then(|d| chrono::DateTime::from_timestamp_millis(d.range.low)) {
                Some(t) => {
                    query.since = Some(t);
                    kept.push((k.clone(), v.clone()));
                }
                None => issues.push(
                    Issue::error(IssueType::Invalid, format!("_since must be an instant such as 2024-01-31T09:00:00Z, not {v:?}"))
                        .at("_since"),
                ),
            },
            "_format" | "_pretty" => {}
            _ if lenient => {}
            _ => issues.push(
                Issue::error(
                    IssueType::NotSupported,
                    format!("history does not support the parameter {k:?}; use _count, _offset or _since"),
                )
                .at(k.clone()),
            ),
        }
    }
    if !issues.is_empty() {
        return Err(WebError::Search(issues));
    }
    let page = state.store.history(&query).await?;
    let path = match &query.scope {
        HistoryScope::Instance { resource_type, id } => {
            if page.total == 0 && state.store.read(resource_type, id).await?.is_none() {
                return Err(StoreError::NotFound {
                    resource_type: resource_type.clone(),
                    id: id.clone(),
                }
                .into());
            }
            format!("{resource_type}/{id}/_history")
        }
        HistoryScope::Type { resource_type } => format!("{resource_type}/_history"),
        HistoryScope::System => "_history".to_string(),
    };
    Ok(Reply::json(
        StatusCode::OK,
        bundle::history(&state.base, &path, &kept, &page, query.count, query.offset),
    ))
}

/// The reply to a completed write, shaped by `Prefer: return=…`.
pub fn write_reply(outcome: WriteOutcome, ret: Return) -> Reply {
    let (status, version, message) = match outcome {
        WriteOutcome::Created(v) => {
            let m = format!(
                "created {}/{} (version {})",
                v.resource_type, v.id, v.version_id
            );
            (StatusCode::CREATED, v, m)
        }
        WriteOutcome::Updated { version, changed } => {
            let m = if changed {
                format!(
                    "updated {}/{} to version {}",
                    version.resource_type, version.id, version.version_id
                )
            } else {
                format!(
                    "{}/{} was unchanged; it stays at version {}",
                    version.resource_type, version.id, version.version_id
                )
            };
            (StatusCode::OK, version, m)
        }
        WriteOutcome::Existing(v) => {
            let m = format!(
                "{}/{} already matches the If-None-Exist criteria; nothing was created",
                v.resource_type, v.id
            );
            (StatusCode::OK, v, m)
        }
        WriteOutcome::Deleted {
            resource_type,
            id,
            version,
        } => {
            let message = match &version {
                Some(_) => format!("deleted {resource_type}/{id}"),
                None if id.is_empty() => format!("no {resource_type} matched; nothing was deleted"),
                None => format!(
                    "{resource_type}/{id} did not exist or was already deleted; nothing to do"
                ),
            };
            let mut reply = match ret {
                Return::OperationOutcome => {
                    Reply::json(StatusCode::OK, outcome_text(Issue::information(message)))
                }
                _ => Reply::empty(StatusCode::NO_CONTENT),
            };
            if let Some(v) = version {
                reply.version = Some(v.version_id);
                reply.last_modified = Some(v.last_updated);
            }
            return reply;
        }
        // No HTTP interaction writes portal state; answered as "nothing to show" all the same.
        WriteOutcome::StatePut => return Reply::empty(StatusCode::NO_CONTENT),
    };
    let mut reply = Reply::about(status, &version);
    reply.body = match ret {
        Return::Representation => Some(version.json),
        Return::Minimal => None,
        Return::OperationOutcome => Some(outcome_text(Issue::information(message))),
    };
    reply
}

async fn write(state: &AppState, op: WriteOp, ret: Return) -> Result<Response, WebError> {
    let outcome = state.store.write(op).await?;
    Ok(write_reply(outcome, ret).into_http(&state.base))
}

fn query_params(
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Vec<(String, String)>, WebError> {
    let params = parse_query(query)?;
    negotiate(headers, &params)?;
    Ok(params)
}

// ----- route handlers -----

pub async fn read(
    State(state): State<AppState>,
    principal: Principal,
    Segments((resource_type, id)): Segments<(String, String)>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    query_params(&headers, query.as_deref())?;
    check_type(&resource_type)?;
    authorize(&principal, Action::Read, &resource_type)?;
    let reply = read_interaction(&state, &resource_type, &id).await?;
    if let (Some(v), Some(tag)) = (reply.version, headers.get(header::IF_NONE_MATCH)) {
        if tag.to_str().ok().and_then(http::parse_etag) == Some(v) {
            return Err(WebError::NotModified);
        }
    }
    Ok(reply.into_http(&state.base))
}

pub async fn vread(
    State(state): State<AppState>,
    principal: Principal,
    Segments((resource_type, id, vid)): Segments<(String, String, String)>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    query_params(&headers, query.as_deref())?;
    check_type(&resource_type)?;
    authorize(&principal, Action::Read, &resource_type)?;
    let mut reply = vread_interaction(&state, &resource_type, &id, &vid).await?;
    reply.full_url = None;
    Ok(reply.into_http(&state.base))
}

pub async fn search_get(
    State(state): State<AppState>,
    principal: Principal,
    Segments(resource_type): Segments<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let params = query_params(&headers, query.as_deref())?;
    search_type(&state, &principal, &resource_type, &headers, &params).await
}

/// A type-level search once its parameters are gathered (from the query, or the query and a form).
async fn search_type(
    state: &AppState,
    principal: &Principal,
    resource_type: &str,
    headers: &HeaderMap,
    params: &[(String, String)],
) -> Result<Response, WebError> {
    check_type(resource_type)?;
    authorize(principal, Action::Search, resource_type)?;
    let lenient = prefer(headers).lenient;
    Ok(
        search_interaction(state, principal, resource_type, params, lenient)
            .await?
            .into_http(&state.base),
    )
}

/// `POST /fhir/{type}/_search`: form parameters merged with the query string's.
pub async fn search_post(
    State(state): State<AppState>,
    principal: Principal,
    Segments(resource_type): Segments<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, WebError> {
    let mut params = parse_query(query.as_deref())?;
    let body = body_bytes(body, state.config.max_body_bytes)?;
    if !body.is_empty() {
        let form = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(http::media_type)
            .is_some_and(|m| m.eq_ignore_ascii_case("application/x-www-form-urlencoded"));
        if !form {
            return Err(WebError::UnsupportedMediaType(
                "POST _search takes its parameters as application/x-www-form-urlencoded".into(),
            ));
        }
        let text = std::str::from_utf8(&body)
            .map_err(|_| WebError::bad_request("the form body is not UTF-8"))?;
        params.extend(http::parse_params(text)?);
    }
    negotiate(&headers, &params)?;
    search_type(&state, &principal, &resource_type, &headers, &params).await
}

pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    Segments(resource_type): Segments<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, WebError> {
    query_params(&headers, query.as_deref())?;
    check_type(&resource_type)?;
    authorize(&principal, Action::Create, &resource_type)?;
    let condition = match headers.get("if-none-exist") {
        None => None,
        Some(v) => {
            authorize(&principal, Action::Search, &resource_type)?;
            let text = v.to_str().map_err(|_| {
                WebError::bad_request_at(
                    "If-None-Exist must be a query string in ASCII",
                    "If-None-Exist",
                )
            })?;
            Some(if_none_exist(&state, &resource_type, text)?)
        }
    };
    let body = body_bytes(body, state.config.max_body_bytes)?;
    let resource = prepare(json_body(&headers, &body)?, &resource_type)?;
    let op = WriteOp::Create {
        resource,
        if_none_exist: condition,
        full_url: None,
    };
    write(&state, op, prefer(&headers).ret).await
}

pub async fn update(
    State(state): State<AppState>,
    principal: Principal,
    Segments((resource_type, id)): Segments<(String, String)>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, WebError> {
    query_params(&headers, query.as_deref())?;
    check_type(&resource_type)?;
    authorize(&principal, Action::Update, &resource_type)?;
    let if_match = http::if_match(&headers)?;
    let body = body_bytes(body, state.config.max_body_bytes)?;
    let value = json_body(&headers, &body)?;
    check_resource_type(&value, &resource_type)?;
    if value.get("id").is_none() {
        return Err(WebError::bad_request_at(
            format!("an update must carry the resource's id: add \"id\": \"{id}\""),
            format!("{resource_type}.id"),
        ));
    }
    let op = WriteOp::Update {
        id,
        resource: Prepared::new(value)?,
        if_match,
        full_url: None,
    };
    write(&state, op, prefer(&headers).ret).await
}

pub async fn conditional_update(
    State(state): State<AppState>,
    principal: Principal,
    Segments(resource_type): Segments<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, WebError> {
    let params = query_params(&headers, query.as_deref())?;
    check_type(&resource_type)?;
    authorize(&principal, Action::Update, &resource_type)?;
    authorize(&principal, Action::Search, &resource_type)?;
    let criteria = criteria(&state, &resource_type, &params, "a conditional update")?;
    let if_match = http::if_match(&headers)?;
    let body = body_bytes(body, state.config.max_body_bytes)?;
    let resource = prepare(json_body(&headers, &body)?, &resource_type)?;
    let op = WriteOp::ConditionalUpdate {
        criteria,
        resource,
        if_match,
        full_url: None,
    };
    write(&state, op, prefer(&headers).ret).await
}

pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    Segments((resource_type, id)): Segments<(String, String)>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    query_params(&headers, query.as_deref())?;
    check_type(&resource_type)?;
    authorize(&principal, Action::Delete, &resource_type)?;
    if !fhir::types::is_valid_id(&id) {
        return Err(StoreError::NotFound { resource_type, id }.into());
    }
    write(
        &state,
        WriteOp::Delete { resource_type, id },
        prefer(&headers).ret,
    )
    .await
}

pub async fn conditional_delete(
    State(state): State<AppState>,
    principal: Principal,
    Segments(resource_type): Segments<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let params = query_params(&headers, query.as_deref())?;
    check_type(&resource_type)?;
    authorize(&principal, Action::Delete, &resource_type)?;
    authorize(&principal, Action::Search, &resource_type)?;
    let criteria = criteria(&state, &resource_type, &params, "a conditional delete")?;
    write(
        &state,
        WriteOp::ConditionalDelete { criteria },
        prefer(&headers).ret,
    )
    .await
}

pub async fn history_instance(
    State(state): State<AppState>,
    principal: Principal,
    Segments((resource_type, id)): Segments<(String, String)>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let params = query_params(&headers, query.as_deref())?;
    check_type(&resource_type)?;
    authorize(&principal, Action::Read, &resource_type)?;
    let scope = HistoryScope::Instance { resource_type, id };
    Ok(
        history_interaction(&state, scope, &params, prefer(&headers).lenient)
            .await?
            .into_http(&state.base),
    )
}

pub async fn history_type(
    State(state): State<AppState>,
    principal: Principal,
    Segments(resource_type): Segments<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let params = query_params(&headers, query.as_deref())?;
    check_type(&resource_type)?;
    authorize(&principal, Action::Read, &resource_type)?;
    let scope = HistoryScope::Type { resource_type };
    Ok(
        history_interaction(&state, scope, &params, prefer(&headers).lenient)
            .await?
            .into_http(&state.base),
    )
}

/// Whole-system history: needs read access to every type.
pub async fn history_system(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let params = query_params(&headers, query.as_deref())?;
    for t in fhir::RESOURCE_TYPES {
        authorize(&principal, Action::Read, t)?;
    }
    Ok(history_interaction(
        &state,
        HistoryScope::System,
        &params,
        prefer(&headers).lenient,
    )
    .await?
    .into_http(&state.base))
}
