//! The FHIR REST interactions. Each route handler parses the request into domain values and
//! calls one interaction function, which asks the access policy, runs the filtered query or the
//! write and records the access; the interaction functions are shared with the entries of batch
//! and transaction Bundles.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequestParts, Path, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use fhir::{Issue, IssueType, OperationOutcome};
use policy::{Action, Denial};
use serde::de::DeserializeOwned;
use serde_json::Value;
use store::audit::AuditAction;
use store::query::{Condition, ReferenceValue, Test};
use store::{HistoryQuery, HistoryScope, Prepared, SearchQuery, StoreError, WriteOp, WriteOutcome};

use crate::access::{audited, denial_error, search_entity, stamp_author, Gate, Requester, Seen};
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
//
// Each interaction asks the access policy (through a [`Gate`]) before touching the store, runs
// its query under the policy's filter, and records the access ([`audited`]) before answering,
// so that the route handlers and the entries of batch and transaction Bundles share one gate.

fn not_found(resource_type: &str, id: &str) -> WebError {
    WebError::Store(StoreError::NotFound {
        resource_type: resource_type.to_string(),
        id: id.to_string(),
    })
}

fn denied<'a>(resource_type: &'a str, id: Option<&'a str>) -> impl Fn(Denial) -> WebError + 'a {
    move |d| denial_error(d, resource_type, id)
}

pub async fn read_interaction(
    state: &AppState,
    requester: &Requester,
    resource_type: &str,
    id: &str,
) -> Result<Reply, WebError> {
    let result = async {
        let gate = Gate::new(state, requester).await?;
        let (v, break_glass) = read_admitted(&gate, resource_type, id).await?;
        let mut seen = Seen {
            entity: Some(format!("{resource_type}/{id}/_history/{}", v.version_id)),
            break_glass,
            ..Seen::default()
        };
        seen.saw(&v);
        saw_binaries(&gate, &mut seen, [&v]).await?;
        let reply = Reply {
            status: StatusCode::OK,
            version: Some(v.version_id),
            last_modified: Some(v.last_updated),
            full_url: None,
            location: None,
            body: Some(v.json),
        };
        Ok((reply, seen))
    }
    .await;
    audited(
        state,
        requester,
        AuditAction::Read,
        format!("{resource_type}/{id}"),
        result,
    )
    .await
}

/// The current version of `resource_type/id` as the requester may see it: a lookup by `_id`
/// under the policy's filter, so that a read and a search always agree. 404 when it never
/// existed or is out of reach (the same answer), 410 when it is deleted and its last version
/// was within reach. Also answers whether the access relied on breaking glass.
pub(crate) async fn read_admitted(
    gate: &Gate<'_>,
    resource_type: &str,
    id: &str,
) -> Result<(store::ResourceVersion, bool), WebError> {
    if !fhir::types::is_valid_id(id) {
        return Err(not_found(resource_type, id));
    }
    let (access, break_glass) = gate
        .lookup(resource_type)
        .map_err(denied(resource_type, Some(id)))?;
    let params = [("_id".to_string(), id.to_string())];
    let mut q = store::query::parse(resource_type, &params, &gate.state.parse_options(false))
        .map_err(WebError::Search)?;
    q.count = 1;
    q.access = Some(access.clone());
    if let Some(v) = gate.store().search(&q).await?.matches.into_iter().next() {
        return Ok((v, break_glass));
    }
    match gate.store().read(resource_type, id).await? {
        Some(v) if v.deleted => {
            let page = gate
                .store()
                .history(&HistoryQuery {
                    scope: HistoryScope::Instance {
                        resource_type: resource_type.to_string(),
                        id: id.to_string(),
                    },
                    since: None,
                    count: 1,
                    offset: 0,
                    access: Some(access),
                })
                .await?;
            if page.versions.first().map(|h| h.version_id) == Some(v.version_id) {
                Err(StoreError::Gone {
                    resource_type: v.resource_type,
                    id: v.id,
                    version_id: v.version_id,
                }
                .into())
            } else {
                Err(not_found(resource_type, id))
            }
        }
        _ => Err(not_found(resource_type, id)),
    }
}

/// Notes the patients of the Binaries among `versions`: a Binary has no compartment of its own
/// and is reached through the letters (DocumentReferences) naming it, whose patients the audit
/// records, as far as the requester may see those letters.
async fn saw_binaries<'v>(
    gate: &Gate<'_>,
    seen: &mut Seen,
    versions: impl IntoIterator<Item = &'v store::ResourceVersion>,
) -> Result<(), WebError> {
    let ids: Vec<&str> = versions
        .into_iter()
        .filter(|v| v.resource_type == "Binary" && !v.deleted)
        .map(|v| v.id.as_str())
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    let Ok((access, _)) = gate.lookup("Binary") else {
        return Ok(());
    };
    let mut q = SearchQuery::all("DocumentReference");
    q.conditions.push(Condition::Param {
        code: store::access::BINARY_PARAM,
        test: Test::Reference(
            ids.iter()
                .map(|id| ReferenceValue::Local {
                    resource_type: Some("Binary".to_string()),
                    id: id.to_string(),
                })
                .collect(),
        ),
    });
    q.count = gate.state.config.max_count.max(1);
    q.access = Some(
        store::Access::uniform(store::access::Filter::nothing())
            .with("DocumentReference", access.filter_for("Binary").clone()),
    );
    for letter in gate.store().search(&q).await?.matches {
        seen.saw(&letter);
    }
    Ok(())
}

/// The current version of `resource_type/id` without any filter: 404 when it never existed (or
/// `id` is not an id), 410 when it is deleted. For callers that have decided already (a Group
/// export is for system clients only).
pub(crate) async fn read_current(
    store: &dyn store::Store,
    resource_type: &str,
    id: &str,
) -> Result<store::ResourceVersion, WebError> {
    if !fhir::types::is_valid_id(id) {
        return Err(not_found(resource_type, id));
    }
    match store.read(resource_type, id).await? {
        None => Err(not_found(resource_type, id)),
        Some(v) if v.deleted => Err(StoreError::Gone {
            resource_type: v.resource_type,
            id: v.id,
            version_id: v.version_id,
        }
        .into()),
        Some(v) => Ok(v),
    }
}

/// Whether version `version` of `resource_type/id` is among those `access` admits.
async fn version_admitted(
    state: &AppState,
    resource_type: &str,
    id: &str,
    version: i64,
    access: store::Access,
) -> Result<bool, WebError> {
    let mut query = HistoryQuery {
        scope: HistoryScope::Instance {
            resource_type: resource_type.to_string(),
            id: id.to_string(),
        },
        since: None,
        count: state.config.max_count.max(1),
        offset: 0,
        access: Some(access),
    };
    loop {
        let page = state.store.history(&query).await?;
        if page.versions.iter().any(|v| v.version_id == version) {
            return Ok(true);
        }
        // Newest first: once past the version (or out of pages) it was not admitted.
        match page.versions.last() {
            Some(last) if last.version_id > version => query.offset += page.versions.len(),
            _ => return Ok(false),
        }
    }
}

pub async fn vread_interaction(
    state: &AppState,
    requester: &Requester,
    resource_type: &str,
    id: &str,
    vid: &str,
) -> Result<Reply, WebError> {
    let result = async {
        let Some(version) = vid.parse::<i64>().ok().filter(|v| *v > 0) else {
            return Err(WebError::bad_request(format!(
                "{vid:?} is not a version id; versions are numbered 1, 2, 3, …"
            )));
        };
        let absent = || not_found(resource_type, &format!("{id}/_history/{version}"));
        if !fhir::types::is_valid_id(id) {
            return Err(absent());
        }
        let gate = Gate::new(state, requester).await?;
        let (access, break_glass) = gate
            .lookup(resource_type)
            .map_err(denied(resource_type, Some(id)))?;
        let Some(v) = state.store.vread(resource_type, id, version).await? else {
            return Err(absent());
        };
        if !version_admitted(state, resource_type, id, version, access).await? {
            return Err(absent());
        }
        if v.deleted {
            return Err(StoreError::Gone {
                resource_type: v.resource_type,
                id: v.id,
                version_id: v.version_id,
            }
            .into());
        }
        let mut seen = Seen {
            break_glass,
            ..Seen::default()
        };
        seen.saw(&v);
        saw_binaries(&gate, &mut seen, [&v]).await?;
        Ok((
            Reply {
                status: StatusCode::OK,
                version: Some(v.version_id),
                last_modified: Some(v.last_updated),
                full_url: Some(format!("{}/{}", v.resource_type, v.id)),
                location: None,
                body: Some(v.json),
            },
            seen,
        ))
    }
    .await;
    audited(
        state,
        requester,
        AuditAction::Vread,
        format!("{resource_type}/{id}/_history/{vid}"),
        result,
    )
    .await
}

pub async fn search_interaction(
    state: &AppState,
    requester: &Requester,
    resource_type: &str,
    params: &[(String, String)],
    lenient: bool,
) -> Result<Reply, WebError> {
    let result = async {
        let mut q = store::query::parse(resource_type, params, &state.parse_options(lenient))
            .map_err(WebError::Search)?;
        let gate = Gate::new(state, requester).await?;
        let others: Vec<String> = q.types_touched().into_iter().map(str::to_string).collect();
        let (access, break_glass) = gate
            .query(Action::Search, resource_type, &others, None)
            .map_err(denied(resource_type, None))?;
        q.access = Some(access);
        let result = state.store.search(&q).await?;
        let mut seen = Seen {
            break_glass,
            ..Seen::default()
        };
        for v in result.matches.iter().chain(&result.included) {
            seen.saw(v);
        }
        saw_binaries(
            &gate,
            &mut seen,
            result.matches.iter().chain(&result.included),
        )
        .await?;
        let mut warnings = Vec::new();
        if !q.ignored.is_empty() {
            warnings.push(http::ignored_parameters_warning(&q.ignored));
        }
        for w in &result.warnings {
            warnings.push(Issue::warning(IssueType::TooCostly, w.clone()));
        }
        let outcome =
            (!warnings.is_empty()).then(|| OperationOutcome::new(warnings).to_json().to_string());
        Ok((
            Reply::json(
                StatusCode::OK,
                bundle::searchset(&state.base, &q, &result, outcome.as_deref()),
            ),
            seen,
        ))
    }
    .await;
    audited(
        state,
        requester,
        AuditAction::Search,
        search_entity(resource_type, params),
        result,
    )
    .await
}

/// The filters of a history query: the type's for instance and type history; for the whole
/// system, every type's (refused when any type is).
fn history_access(
    gate: &Gate<'_>,
    scope: &HistoryScope,
) -> Result<(store::Access, bool), WebError> {
    match scope {
        HistoryScope::Instance { resource_type, id } => gate
            .lookup(resource_type)
            .map_err(denied(resource_type, Some(id))),
        HistoryScope::Type { resource_type } => gate
            .lookup(resource_type)
            .map_err(denied(resource_type, None)),
        HistoryScope::System => {
            let mut access = store::Access::uniform(store::access::Filter::nothing());
            let mut break_glass = false;
            for t in fhir::RESOURCE_TYPES {
                let (a, bg) = gate.lookup(t).map_err(denied(t, None))?;
                access = access.with(t, a.filter_for(t).clone());
                break_glass |= bg;
            }
            // Every type decided alike as "every row" (system clients): nothing to add in SQL.
            if access.named().all(|(_, f)| store::access::is_everything(f)) {
                access = store::Access::everything();
            }
            Ok((access, break_glass))
        }
    }
}

pub async fn history_interaction(
    state: &AppState,
    requester: &Requester,
    scope: HistoryScope,
    params: &[(String, String)],
    lenient: bool,
) -> Result<Reply, WebError> {
    let path = match &scope {
        HistoryScope::Instance { resource_type, id } => format!("{resource_type}/{id}/_history"),
        HistoryScope::Type { resource_type } => format!("{resource_type}/_history"),
        HistoryScope::System => "_history".to_string(),
    };
    let result = history_seen(state, requester, scope, params, lenient, &path).await;
    audited(state, requester, AuditAction::History, path, result).await
}

async fn history_seen(
    state: &AppState,
    requester: &Requester,
    scope: HistoryScope,
    params: &[(String, String)],
    lenient: bool,
    path: &str,
) -> Result<(Reply, Seen), WebError> {
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
    let gate = Gate::new(state, requester).await?;
    let (access, break_glass) = history_access(&gate, &query.scope)?;
    query.access = Some(access);
    let page = state.store.history(&query).await?;
    if let HistoryScope::Instance { resource_type, id } = &query.scope {
        // No version within reach is the same answer as no resource at all.
        if page.total == 0 {
            let unwindowed = HistoryQuery {
                since: None,
                offset: 0,
                count: 1,
                ..query.clone()
            };
            if state.store.history(&unwindowed).await?.total == 0 {
                return Err(not_found(resource_type, id));
            }
        }
    }
    let mut seen = Seen {
        break_glass,
        ..Seen::default()
    };
    for v in &page.versions {
        seen.saw(v);
    }
    Ok((
        Reply::json(
            StatusCode::OK,
            bundle::history(&state.base, path, &kept, &page, query.count, query.offset),
        ),
        seen,
    ))
}

// ----- writes -----

/// Asks the policy about a write before it runs, and shapes its content: the author tag is set
/// from who writes ([`stamp_author`]); a create or the new content of an update is decided as
/// [`Target::New`](policy::Target::New); an update or delete also on the stored version, which
/// out of reach answers 404 like absence. Conditional writes only match what the requester may
/// see. Answers whether any decision relied on breaking glass.
pub(crate) async fn gate_write(gate: &Gate<'_>, op: &mut WriteOp) -> Result<bool, WebError> {
    let mut break_glass = false;
    match op {
        WriteOp::Create {
            resource,
            if_none_exist,
            ..
        } => {
            let resource_type = resource.resource_type.clone();
            if let Some(criteria) = if_none_exist {
                break_glass |= filter_criteria(gate, criteria)?;
            }
            restamp(gate, resource)?;
            break_glass |= gate
                .decide_resource(Action::Create, &resource_type, "", &resource.value, true)
                .await?;
        }
        WriteOp::Update { id, resource, .. } => {
            let resource_type = resource.resource_type.clone();
            if let Some(current) = gate.store().read(&resource_type, id).await? {
                if !current.deleted {
                    break_glass |= gate
                        .decide_resource(
                            Action::Update,
                            &resource_type,
                            id,
                            &current.parse()?,
                            false,
                        )
                        .await?;
                }
            }
            restamp(gate, resource)?;
            break_glass |= gate
                .decide_resource(Action::Update, &resource_type, id, &resource.value, true)
                .await?;
        }
        WriteOp::ConditionalUpdate {
            criteria, resource, ..
        } => {
            let resource_type = resource.resource_type.clone();
            break_glass |= filter_criteria(gate, criteria)?;
            for current in matches_of(gate, criteria).await? {
                break_glass |= gate
                    .decide_resource(
                        Action::Update,
                        &resource_type,
                        &current.id,
                        &current.parse()?,
                        false,
                    )
                    .await?;
            }
            restamp(gate, resource)?;
            break_glass |= gate
                .decide_resource(Action::Update, &resource_type, "", &resource.value, true)
                .await?;
        }
        WriteOp::Delete { resource_type, id } => {
            if let Some(current) = gate.store().read(resource_type, id).await? {
                if !current.deleted {
                    break_glass |= gate
                        .decide_resource(
                            Action::Delete,
                            resource_type,
                            id,
                            &current.parse()?,
                            false,
                        )
                        .await?;
                }
            }
        }
        WriteOp::ConditionalDelete { criteria } => {
            let resource_type = criteria.resource_type.clone();
            break_glass |= filter_criteria(gate, criteria)?;
            for current in matches_of(gate, criteria).await? {
                break_glass |= gate
                    .decide_resource(
                        Action::Delete,
                        &resource_type,
                        &current.id,
                        &current.parse()?,
                        false,
                    )
                    .await?;
            }
        }
        WriteOp::PutState { .. } => {
            return Err(WebError::Forbidden(
                "portal state is not written over HTTP".into(),
            ))
        }
    }
    Ok(break_glass)
}

/// Confines the criteria of a conditional write to what the requester may search.
fn filter_criteria(gate: &Gate<'_>, criteria: &mut SearchQuery) -> Result<bool, WebError> {
    let resource_type = criteria.resource_type.clone();
    let others: Vec<String> = criteria
        .types_touched()
        .into_iter()
        .map(str::to_string)
        .collect();
    let (access, break_glass) = gate
        .query(Action::Search, &resource_type, &others, None)
        .map_err(denied(&resource_type, None))?;
    criteria.access = Some(access);
    Ok(break_glass)
}

/// What a conditional write's (filtered) criteria match now: at most two, which is enough to
/// decide on the one it would change (more than one is the store's error to report).
async fn matches_of(
    gate: &Gate<'_>,
    criteria: &SearchQuery,
) -> Result<Vec<store::ResourceVersion>, WebError> {
    let mut q = criteria.clone();
    q.count = 2;
    q.offset = 0;
    q.include.clear();
    q.revinclude.clear();
    q.total = false;
    q.summary_count = false;
    Ok(gate.store().search(&q).await?.matches)
}

/// Sets the author tag of content about to be written and indexes it again.
fn restamp(gate: &Gate<'_>, resource: &mut Prepared) -> Result<(), WebError> {
    let mut value = std::mem::take(&mut resource.value);
    stamp_author(gate.requester, &mut value);
    *resource = Prepared::trusted(value)?;
    Ok(())
}

/// The audit action and entity of a write operation.
pub(crate) fn write_audit(op: &WriteOp) -> (AuditAction, String) {
    match op {
        WriteOp::Create { resource, .. } => (AuditAction::Create, resource.resource_type.clone()),
        WriteOp::Update { id, resource, .. } => (
            AuditAction::Update,
            format!("{}/{id}", resource.resource_type),
        ),
        WriteOp::ConditionalUpdate { resource, .. } => {
            (AuditAction::Update, resource.resource_type.clone())
        }
        WriteOp::Delete { resource_type, id } => {
            (AuditAction::Delete, format!("{resource_type}/{id}"))
        }
        WriteOp::ConditionalDelete { criteria } => {
            (AuditAction::Delete, criteria.resource_type.clone())
        }
        WriteOp::PutState { .. } => (AuditAction::Update, "state".into()),
    }
}

/// Records a refused or failed write (a successful one is recorded by the store, in its
/// transaction), then hands the error back.
pub(crate) async fn audit_refusal(
    state: &AppState,
    requester: &Requester,
    action: AuditAction,
    entity: String,
    error: WebError,
) -> WebError {
    let record = requester.record(
        state.now(),
        action,
        Some(entity),
        None,
        error.status().as_u16(),
    );
    match state.store.append_audit(vec![record]).await {
        Ok(()) => error,
        Err(e) => e.into(),
    }
}

/// A break-glass write's extra record and the patient's notification (its own write, after the
/// change committed).
pub(crate) async fn audit_break_glass_write(
    state: &AppState,
    requester: &Requester,
    entity: String,
) -> Result<(), WebError> {
    audited(
        state,
        requester,
        AuditAction::BreakGlass,
        entity,
        Ok((
            (),
            Seen {
                break_glass: true,
                ..Seen::default()
            },
        )),
    )
    .await
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

/// One write, decided by the policy ([`gate_write`]) and committed with its audit record;
/// a refusal or failure is recorded too.
pub(crate) async fn write_interaction(
    state: &AppState,
    requester: &Requester,
    mut op: WriteOp,
) -> Result<WriteOutcome, WebError> {
    let (action, entity) = write_audit(&op);
    let result = async {
        let gate = Gate::new(state, requester).await?;
        let break_glass = gate_write(&gate, &mut op).await?;
        let outcome = state
            .store
            .transaction_audited(vec![op], Some(&requester.audit))
            .await?
            .pop()
            .ok_or_else(|| StoreError::Database("a write produced no outcome".into()))?;
        Ok::<_, WebError>((outcome, break_glass))
    }
    .await;
    match result {
        Ok((outcome, break_glass)) => {
            if break_glass {
                audit_break_glass_write(state, requester, entity).await?;
            }
            Ok(outcome)
        }
        Err(e) => Err(audit_refusal(state, requester, action, entity, e).await),
    }
}

async fn write(
    state: &AppState,
    requester: &Requester,
    op: WriteOp,
    ret: Return,
) -> Result<Response, WebError> {
    let outcome = write_interaction(state, requester, op).await?;
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
    requester: Requester,
    Segments((resource_type, id)): Segments<(String, String)>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    query_params(&headers, query.as_deref())?;
    check_type(&resource_type)?;
    let reply = read_interaction(&state, &requester, &resource_type, &id).await?;
    if let (Some(v), Some(tag)) = (reply.version, headers.get(header::IF_NONE_MATCH)) {
        if tag.to_str().ok().and_then(http::parse_etag) == Some(v) {
            return Err(WebError::NotModified);
        }
    }
    Ok(reply.into_http(&state.base))
}

pub async fn vread(
    State(state): State<AppState>,
    requester: Requester,
    Segments((resource_type, id, vid)): Segments<(String, String, String)>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    query_params(&headers, query.as_deref())?;
    check_type(&resource_type)?;
    let mut reply = vread_interaction(&state, &requester, &resource_type, &id, &vid).await?;
    reply.full_url = None;
    Ok(reply.into_http(&state.base))
}

pub async fn search_get(
    State(state): State<AppState>,
    requester: Requester,
    Segments(resource_type): Segments<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let params = query_params(&headers, query.as_deref())?;
    search_type(&state, &requester, &resource_type, &headers, &params).await
}

/// A type-level search once its parameters are gathered (from the query, or the query and a form).
async fn search_type(
    state: &AppState,
    requester: &Requester,
    resource_type: &str,
    headers: &HeaderMap,
    params: &[(String, String)],
) -> Result<Response, WebError> {
    check_type(resource_type)?;
    let lenient = prefer(headers).lenient;
    Ok(
        search_interaction(state, requester, resource_type, params, lenient)
            .await?
            .into_http(&state.base),
    )
}

/// `POST /fhir/{type}/_search`: form parameters merged with the query string's.
pub async fn search_post(
    State(state): State<AppState>,
    requester: Requester,
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
    search_type(&state, &requester, &resource_type, &headers, &params).await
}

pub async fn create(
    State(state): State<AppState>,
    requester: Requester,
    Segments(resource_type): Segments<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, WebError> {
    query_params(&headers, query.as_deref())?;
    check_type(&resource_type)?;
    let condition = match headers.get("if-none-exist") {
        None => None,
        Some(v) => {
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
    write(&state, &requester, op, prefer(&headers).ret).await
}

pub async fn update(
    State(state): State<AppState>,
    requester: Requester,
    Segments((resource_type, id)): Segments<(String, String)>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, WebError> {
    query_params(&headers, query.as_deref())?;
    check_type(&resource_type)?;
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
    write(&state, &requester, op, prefer(&headers).ret).await
}

pub async fn conditional_update(
    State(state): State<AppState>,
    requester: Requester,
    Segments(resource_type): Segments<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, WebError> {
    let params = query_params(&headers, query.as_deref())?;
    check_type(&resource_type)?;
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
    write(&state, &requester, op, prefer(&headers).ret).await
}

pub async fn delete(
    State(state): State<AppState>,
    requester: Requester,
    Segments((resource_type, id)): Segments<(String, String)>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    query_params(&headers, query.as_deref())?;
    check_type(&resource_type)?;
    if !fhir::types::is_valid_id(&id) {
        return Err(StoreError::NotFound { resource_type, id }.into());
    }
    write(
        &state,
        &requester,
        WriteOp::Delete { resource_type, id },
        prefer(&headers).ret,
    )
    .await
}

pub async fn conditional_delete(
    State(state): State<AppState>,
    requester: Requester,
    Segments(resource_type): Segments<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let params = query_params(&headers, query.as_deref())?;
    check_type(&resource_type)?;
    let criteria = criteria(&state, &resource_type, &params, "a conditional delete")?;
    write(
        &state,
        &requester,
        WriteOp::ConditionalDelete { criteria },
        prefer(&headers).ret,
    )
    .await
}

pub async fn history_instance(
    State(state): State<AppState>,
    requester: Requester,
    Segments((resource_type, id)): Segments<(String, String)>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let params = query_params(&headers, query.as_deref())?;
    check_type(&resource_type)?;
    let scope = HistoryScope::Instance { resource_type, id };
    Ok(
        history_interaction(&state, &requester, scope, &params, prefer(&headers).lenient)
            .await?
            .into_http(&state.base),
    )
}

pub async fn history_type(
    State(state): State<AppState>,
    requester: Requester,
    Segments(resource_type): Segments<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let params = query_params(&headers, query.as_deref())?;
    check_type(&resource_type)?;
    let scope = HistoryScope::Type { resource_type };
    Ok(
        history_interaction(&state, &requester, scope, &params, prefer(&headers).lenient)
            .await?
            .into_http(&state.base),
    )
}

/// Whole-system history: needs read access to every type.
pub async fn history_system(
    State(state): State<AppState>,
    requester: Requester,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let params = query_params(&headers, query.as_deref())?;
    Ok(history_interaction(
        &state,
        &requester,
        HistoryScope::System,
        &params,
        prefer(&headers).lenient,
    )
    .await?
    .into_http(&state.base))
}
