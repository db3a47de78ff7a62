//! What the store keeps and what it is asked to do.

use chrono::{DateTime, Utc};
use fhir::index::IndexEntry;
use serde_json::Value;

use crate::error::{Result, StoreError};
use crate::query::SearchQuery;

/// One version of one resource, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceVersion {
    pub resource_type: String,
    pub id: String,
    pub version_id: i64,
    pub last_updated: DateTime<Utc>,
    /// True for the version a delete created; it has no content.
    pub deleted: bool,
    /// The resource JSON exactly as served: it carries `id`, `meta.versionId` and
    /// `meta.lastUpdated`. Empty for deletions.
    pub json: String,
}

impl ResourceVersion {
    pub fn parse(&self) -> Result<Value> {
        serde_json::from_str(&self.json)
            .map_err(|e| StoreError::Database(format!("stored JSON is unreadable: {e}")))
    }
}

/// A resource checked and indexed before it reaches the writer, so that the single writer
/// (SQLite) only does database work.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub resource_type: String,
    pub value: Value,
    pub index: Vec<IndexEntry>,
}

impl Prepared {
    /// Validates against the R4 structure definitions and extracts the search index.
    pub fn new(value: Value) -> Result<Self> {
        fhir::validate::validate(&value).map_err(StoreError::Invalid)?;
        Self::trusted(value)
    }

    /// Indexes without validating: for resources the server built itself. The index holds the
    /// R4 search parameters' entries and the access entries ([`crate::access::full_index`]).
    pub fn trusted(value: Value) -> Result<Self> {
        let resource_type = value
            .get("resourceType")
            .and_then(Value::as_str)
            .filter(|t| fhir::is_supported_type(t))
            .ok_or_else(|| {
                StoreError::invalid(
                    fhir::Issue::error(
                        fhir::IssueType::Invalid,
                        "resourceType is missing or not a type this server stores",
                    )
                    .at("resourceType"),
                )
            })?
            .to_string();
        let index = crate::access::full_index(&resource_type, &value);
        Ok(Prepared {
            resource_type,
            value,
            index,
        })
    }

    /// Re-extracts the index after the server changed the resource (e.g. rewrote references).
    pub fn reindex(&mut self) {
        self.index = crate::access::full_index(&self.resource_type, &self.value);
    }
}

/// One write, as a FHIR interaction asks for it.
#[derive(Debug, Clone)]
pub enum WriteOp {
    /// Create with a server-assigned id. `if_none_exist` makes it conditional; `full_url` is the
    /// entry's `fullUrl` in a transaction (e.g. `urn:uuid:…`), which other entries may reference.
    Create {
        resource: Prepared,
        if_none_exist: Option<SearchQuery>,
        full_url: Option<String>,
    },
    /// Update (or create with a client-chosen id) `Type/id`; `if_match` is the version the client
    /// last saw.
    Update {
        id: String,
        resource: Prepared,
        if_match: Option<i64>,
        full_url: Option<String>,
    },
    /// Update the one resource matching `criteria`; create it when none matches.
    ConditionalUpdate {
        criteria: SearchQuery,
        resource: Prepared,
        if_match: Option<i64>,
        full_url: Option<String>,
    },
    Delete {
        resource_type: String,
        id: String,
    },
    /// Delete the one resource matching `criteria` (none: nothing to do).
    ConditionalDelete {
        criteria: SearchQuery,
    },
    /// Stores `value` under `key` in the portal state ([`crate::Store::state_put`]) in the same
    /// transaction as the other operations: bookkeeping that must never disagree with the
    /// resources it describes (the import journal) commits, or rolls back, with them.
    PutState {
        key: String,
        value: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum WriteOutcome {
    Created(ResourceVersion),
    /// An update; `changed` is false when the content was identical to the current version,
    /// in which case no new version was written.
    Updated {
        version: ResourceVersion,
        changed: bool,
    },
    /// A conditional create found this existing resource and created nothing.
    Existing(ResourceVersion),
    /// `version` is the deletion's version; None when there was nothing to delete.
    Deleted {
        resource_type: String,
        id: String,
        version: Option<ResourceVersion>,
    },
    /// A [`WriteOp::PutState`] was applied.
    StatePut,
}

impl WriteOutcome {
    /// The version the outcome is about (none for a delete of nothing or a state put).
    pub fn version(&self) -> Option<&ResourceVersion> {
        match self {
            WriteOutcome::Created(v) | WriteOutcome::Existing(v) => Some(v),
            WriteOutcome::Updated { version, .. } => Some(version),
            WriteOutcome::Deleted { version, .. } => version.as_ref(),
            WriteOutcome::StatePut => None,
        }
    }
}

/// Which history to list.
#[derive(Debug, Clone, PartialEq)]
pub enum HistoryScope {
    Instance { resource_type: String, id: String },
    Type { resource_type: String },
    System,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HistoryQuery {
    pub scope: HistoryScope,
    /// Only versions updated at or after this instant (`_since`).
    pub since: Option<DateTime<Utc>>,
    pub count: usize,
    pub offset: usize,
    /// The access policy's filters: only versions they admit are listed and counted, each
    /// judged by its own content ([`crate::access`]). None: every version.
    pub access: Option<crate::access::Access>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HistoryPage {
    /// Newest first.
    pub versions: Vec<ResourceVersion>,
    pub total: u64,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct SearchResult {
    pub matches: Vec<ResourceVersion>,
    /// `_include` and `_revinclude` results, without duplicates of `matches`.
    pub included: Vec<ResourceVersion>,
    /// Set when the query asked for `_total=accurate` or `_summary=count`.
    pub total: Option<u64>,
    /// Whether a next page exists.
    pub has_more: bool,
    /// What the client should know about an incomplete answer, e.g. that a `_revinclude` was
    /// cut short at [`SearchQuery::revinclude_limit`]; the HTTP layer reports each as a warning.
    pub warnings: Vec<String>,
}
