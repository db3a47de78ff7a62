//! The store's one error type.

use fhir::Issue;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The resource or search is not valid FHIR; each issue names the element at fault.
    #[error("invalid: {}", .0.first().map(|i| i.diagnostics.as_str()).unwrap_or("invalid input"))]
    Invalid(Vec<Issue>),
    #[error("{resource_type}/{id} not found")]
    NotFound { resource_type: String, id: String },
    #[error("{resource_type}/{id} was deleted")]
    Gone {
        resource_type: String,
        id: String,
        version_id: i64,
    },
    /// `If-Match` named a version that is no longer current.
    #[error("version conflict: {resource_type}/{id} is at version {current}, not {expected}")]
    VersionConflict {
        resource_type: String,
        id: String,
        expected: i64,
        current: i64,
    },
    /// A conditional create/update/delete matched more than one resource.
    #[error("the condition matched {count} resources; make it more selective")]
    MultipleMatches { count: usize },
    /// A concurrent writer got there first (unique key); retrying may succeed.
    #[error("conflict: {0}")]
    Conflict(String),
    /// An entry of a transaction failed; the whole transaction was rolled back.
    #[error("transaction entry {index} failed: {source}")]
    Entry {
        index: usize,
        #[source]
        source: Box<StoreError>,
    },
    #[error("the store is shutting down or its writer stopped")]
    Unavailable,
    #[error("database error: {0}")]
    Database(String),
}

impl StoreError {
    pub fn invalid(issue: Issue) -> Self {
        StoreError::Invalid(vec![issue])
    }

    /// The innermost error of a transaction entry failure.
    pub fn root(&self) -> &StoreError {
        match self {
            StoreError::Entry { source, .. } => source.root(),
            other => other,
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
