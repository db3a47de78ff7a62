//! The one error type of the HTTP layer, and how each error becomes a response.
//!
//! Every FHIR error is an OperationOutcome served as `application/fhir+json`; the OAuth token
//! endpoint answers RFC 6749 JSON instead. The request id of the failing request is appended to
//! the first issue's diagnostics so that a user can quote it and support can find the log line.
//!
//! Status codes of `StoreError::Invalid`: **400** when any issue is about the shape of the input
//! (issue codes `structure`, `invalid`, `not-supported`, `too-long`, …: unknown elements, wrong
//! JSON types, a missing or wrong `resourceType`, an id that does not match the URL), **422** when
//! the resource is well-formed and every issue is about its content (issue codes `value`,
//! `required`, `invariant`: a malformed date, a missing required element, a code outside a
//! required binding).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use fhir::{Issue, IssueType};
use serde_json::{json, Value};
use store::StoreError;

use crate::FHIR_JSON;

tokio::task_local! {
    /// The id of the request being served (set by the request-id middleware).
    pub(crate) static REQUEST_ID: std::sync::Arc<str>;
}

/// The id of the request being served, when called while serving one.
pub fn current_request_id() -> Option<std::sync::Arc<str>> {
    REQUEST_ID.try_with(|id| id.clone()).ok()
}

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Search or history parameters that could not be understood.
    #[error("invalid search: {}", first_diagnostics(.0))]
    Search(Vec<Issue>),
    /// Any other malformed request (400).
    #[error("bad request: {}", .0.diagnostics)]
    BadRequest(Issue),
    #[error("the body is not valid JSON: {message} at line {line}, column {column}")]
    Json {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("the request body is larger than {limit} bytes")]
    BodyTooLarge { limit: usize },
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    #[error("not acceptable: {0}")]
    NotAcceptable(String),
    #[error("method {method} is not allowed on {path}")]
    MethodNotAllowed { method: String, path: String },
    #[error("{0} is not a resource type this server supports")]
    UnknownType(String),
    #[error("no such endpoint: {0}")]
    NoRoute(String),
    /// Something the request names that is not there (or not there for this client), other
    /// than a resource.
    #[error("not found: {0}")]
    NotFound(String),
    /// The client has too much under way already (e.g. running exports).
    #[error("too many requests: {0}")]
    TooManyRequests(String),
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// `If-None-Match` matched: the client's copy is current.
    #[error("not modified")]
    NotModified,
    /// An OAuth2 token endpoint error (RFC 6749 §5.2), answered as plain JSON.
    #[error("{error}: {description}")]
    OAuth {
        status: StatusCode,
        error: &'static str,
        description: String,
    },
    /// An entry of a transaction Bundle failed; nothing was committed.
    #[error("Bundle.entry[{index}]: {source}")]
    Entry {
        index: usize,
        #[source]
        source: Box<WebError>,
    },
    #[error("internal error: {0}")]
    Internal(String),
}

fn first_diagnostics(issues: &[Issue]) -> &str {
    issues.first().map(|i| i.diagnostics.as_str()).unwrap_or("")
}

impl WebError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        WebError::BadRequest(Issue::error(IssueType::Invalid, message))
    }

    pub fn bad_request_at(message: impl Into<String>, expression: impl Into<String>) -> Self {
        WebError::BadRequest(Issue::error(IssueType::Invalid, message).at(expression))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            WebError::Store(e) => store_status(e.root()),
            WebError::Search(_) | WebError::BadRequest(_) | WebError::Json { .. } => {
                StatusCode::BAD_REQUEST
            }
            WebError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            WebError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            WebError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            WebError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            WebError::UnknownType(_) | WebError::NoRoute(_) | WebError::NotFound(_) => {
                StatusCode::NOT_FOUND
            }
            WebError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            WebError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            WebError::Forbidden(_) => StatusCode::FORBIDDEN,
            WebError::NotModified => StatusCode::NOT_MODIFIED,
            WebError::OAuth { status, .. } => *status,
            WebError::Entry { source, .. } => source.status(),
            WebError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The issues of the OperationOutcome this error is reported as.
    pub fn issues(&self) -> Vec<Value> {
        match self {
            WebError::Store(e) => store_issues(e.root()).iter().map(Issue::to_json).collect(),
            WebError::Search(issues) => issues.iter().map(Issue::to_json).collect(),
            WebError::BadRequest(issue) => vec![issue.to_json()],
            WebError::Json { line, column, message } => vec![Issue::error(
                IssueType::Structure,
                format!(
                    "the body is not valid JSON: {message} (line {line}, column {column}); \
                     check for a missing comma, quote or bracket near there"
                ),
            )
            .to_json()],
            WebError::BodyTooLarge { limit } => vec![Issue::error(
                IssueType::TooLong,
                format!(
                    "the request body is larger than the server's limit of {limit} bytes; send a \
                     smaller body (split large Bundles) or raise the setting max_body_bytes"
                ),
            )
            .to_json()],
            WebError::UnsupportedMediaType(m) | WebError::NotAcceptable(m) => {
                vec![Issue::error(IssueType::NotSupported, m.clone()).to_json()]
            }
            WebError::MethodNotAllowed { method, path } => vec![Issue::error(
                IssueType::NotSupported,
                format!("{method} is not supported on {path}; see /fhir/metadata for the supported interactions"),
            )
            .to_json()],
            WebError::UnknownType(t) => vec![Issue::error(
                IssueType::NotSupported,
                format!("{t:?} is not a resource type this server supports; see /fhir/metadata for the list"),
            )
            .to_json()],
            WebError::NoRoute(p) => vec![Issue::error(
                IssueType::NotFound,
                format!("there is no endpoint at {p}; the FHIR API is under /fhir (see /fhir/metadata)"),
            )
            .to_json()],
            WebError::NotFound(m) => vec![Issue::error(IssueType::NotFound, m.clone()).to_json()],
            WebError::TooManyRequests(m) => {
                vec![Issue::error(IssueType::TooCostly, m.clone()).to_json()]
            }
            WebError::Unauthorized(m) => vec![Issue::error(IssueType::Login, m.clone()).to_json()],
            WebError::Forbidden(m) => vec![Issue::error(IssueType::Forbidden, m.clone()).to_json()],
            WebError::NotModified => Vec::new(),
            WebError::OAuth { description, .. } => {
                vec![Issue::error(IssueType::Security, description.clone()).to_json()]
            }
            WebError::Entry { index, source } => {
                let at = format!("Bundle.entry[{index}]");
                source
                    .issues()
                    .into_iter()
                    .map(|mut issue| {
                        let mut expressions = vec![Value::String(at.clone())];
                        if let Some(Value::Array(inner)) = issue.get("expression") {
                            expressions.extend(inner.iter().cloned());
                        }
                        issue["expression"] = Value::Array(expressions);
                        if let Some(Value::String(d)) = issue.get_mut("diagnostics") {
                            *d = format!("{at}: {d}");
                        }
                        issue
                    })
                    .collect()
            }
            WebError::Internal(m) => vec![Issue::error(IssueType::Exception, m.clone()).to_json()],
        }
    }

    /// The OperationOutcome, with the request id in the first issue's diagnostics.
    pub fn outcome_json(&self) -> Value {
        let mut issues = self.issues();
        if let (Some(id), Some(first)) = (current_request_id(), issues.first_mut()) {
            if let Some(Value::String(d)) = first.get_mut("diagnostics") {
                d.push_str(&format!(" [request id {id}]"));
            }
        }
        json!({"resourceType": "OperationOutcome", "issue": issues})
    }
}

/// The HTTP status of a store error (the innermost one of a failed transaction entry).
pub fn store_status(e: &StoreError) -> StatusCode {
    match e {
        StoreError::Invalid(issues) => invalid_status(issues),
        StoreError::NotFound { .. } => StatusCode::NOT_FOUND,
        StoreError::Gone { .. } => StatusCode::GONE,
        StoreError::VersionConflict { .. } | StoreError::MultipleMatches { .. } => {
            StatusCode::PRECONDITION_FAILED
        }
        StoreError::Conflict(_) => StatusCode::CONFLICT,
        StoreError::Entry { source, .. } => store_status(source),
        StoreError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        StoreError::Database(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// 422 when every error is about the content of a well-formed resource, else 400.
pub fn invalid_status(issues: &[Issue]) -> StatusCode {
    let content_only = !issues.is_empty()
        && issues
            .iter()
            .filter(|i| matches!(i.severity, fhir::Severity::Error | fhir::Severity::Fatal))
            .all(|i| {
                matches!(
                    i.code,
                    IssueType::Value | IssueType::Required | IssueType::Invariant
                )
            });
    if content_only {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::BAD_REQUEST
    }
}

fn store_issues(e: &StoreError) -> Vec<Issue> {
    match e {
        StoreError::Invalid(issues) if !issues.is_empty() => issues.clone(),
        StoreError::Invalid(_) => vec![Issue::error(IssueType::Invalid, "the input is not valid")],
        StoreError::NotFound { resource_type, id } => vec![Issue::error(
            IssueType::NotFound,
            format!("{resource_type}/{id} does not exist"),
        )],
        StoreError::Gone {
            resource_type,
            id,
            version_id,
        } => vec![Issue::error(
            IssueType::Deleted,
            format!("{resource_type}/{id} was deleted (version {version_id})"),
        )],
        StoreError::VersionConflict {
            resource_type,
            id,
            expected,
            current,
        } => vec![Issue::error(
            IssueType::Conflict,
            format!(
                "If-Match asked for version {expected} of {resource_type}/{id} but the current \
                 version is {current}; read it again and retry"
            ),
        )],
        StoreError::MultipleMatches { count } => vec![Issue::error(
            IssueType::MultipleMatches,
            format!("the condition matched {count} or more resources; make it more selective"),
        )],
        StoreError::Conflict(m) => vec![Issue::error(
            IssueType::Conflict,
            format!("a concurrent write got there first ({m}); retrying may succeed"),
        )],
        StoreError::Entry { source, .. } => store_issues(source),
        StoreError::Unavailable => vec![Issue::error(
            IssueType::Exception,
            "the store is shutting down or its writer stopped; retry shortly",
        )],
        StoreError::Database(m) => vec![Issue::error(
            IssueType::Exception,
            format!("the database failed: {m}"),
        )],
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            // Store and internal errors carry no resource content, only what failed.
            let id = current_request_id();
            tracing::error!(request_id = id.as_deref().unwrap_or("-"), status = status.as_u16(), error = %self, "request failed");
        }
        match &self {
            WebError::NotModified => return StatusCode::NOT_MODIFIED.into_response(),
            WebError::OAuth {
                error, description, ..
            } => {
                let body = json!({"error": error, "error_description": description});
                let mut res = (status, axum::Json(body)).into_response();
                let headers = res.headers_mut();
                headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                if status == StatusCode::UNAUTHORIZED {
                    headers.insert(
                        header::WWW_AUTHENTICATE,
                        HeaderValue::from_static("Basic realm=\"portico\""),
                    );
                }
                return res;
            }
            _ => {}
        }
        let body = self.outcome_json().to_string();
        let mut res = (status, body).into_response();
        let headers = res.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
        if let WebError::Unauthorized(_) = self {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"portico\", error=\"invalid_token\""),
            );
        }
        res
    }
}
