//! Reading every current resource of some types in pages, optionally only those in some
//! patients' compartments: what `Patient/$everything` and Bulk Data export are built on.
//!
//! A scan walks resources in `rid` order (the order they were first stored) and hands back a
//! cursor, the last `rid` of the page, from which the next page continues. Unlike `_offset`
//! paging, a page costs the same however deep it is, and a resource written while the scan runs
//! never shifts the others between pages. Only current, non-deleted versions are returned.
//!
//! One type at a time walks that type's `(res_type, rid)` index. Several types at once are for
//! the compartment of a few patients (up to [`COMPARTMENT_DRIVE_LIMIT`]): one statement finds
//! the whole record from the reference index instead of one statement per type. Several types
//! without such a compartment are correct but cannot follow one index in `rid` order.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::Result;
use crate::model::ResourceVersion;
use crate::sql::{self, Dialect, Sql};

/// Most rows one scan page returns, whatever the caller asks for: a page is held in memory.
pub const MAX_SCAN_LIMIT: usize = 10_000;

/// Up to this many patients, a compartment scan starts from the reference index rows that point
/// at them (fast for one patient's record); past it, it walks the type's resources in `rid`
/// order and checks each one's references, so that every page costs the same however many
/// patients are asked for (a large Group).
pub const COMPARTMENT_DRIVE_LIMIT: usize = 32;

/// Most patients one compartment scan may name: the SQL binds each id, and both databases limit
/// the number of bind parameters of a statement (SQLite 32,766, PostgreSQL 65,535).
pub const MAX_COMPARTMENT_PATIENTS: usize = 10_000;

/// Whose compartment a scan is limited to.
#[derive(Debug, Clone, PartialEq)]
pub enum Compartment {
    /// Resources in the compartment of any of these patients (by id): for a type with
    /// compartment parameters, those referencing one of them through such a parameter; for
    /// Patient, the patients themselves and the Patients that `link` to them. At most
    /// [`MAX_COMPARTMENT_PATIENTS`] ids.
    Patients(Vec<String>),
    /// Resources in the compartment of some patient: every Patient, and resources of other types
    /// referencing any Patient through one of their compartment parameters (`Patient/$export`).
    AnyPatient,
}

/// One page of a scan.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanQuery {
    /// The types scanned (one or more; none gives an empty page), in `rid` order together.
    pub resource_types: Vec<String>,
    /// Only resources last updated strictly after this instant (`_since`).
    pub updated_after: Option<DateTime<Utc>>,
    /// Only resources last updated at or before this instant (an export's `transactionTime`):
    /// resources changed after it are left out, not served in an older version.
    pub updated_until: Option<DateTime<Utc>>,
    pub compartment: Option<Compartment>,
    /// The cursor: only resources stored after this one (`0` to start; then the previous page's
    /// [`ScanPage::next_after`]).
    pub after: i64,
    /// Most resources in the page (1 to [`MAX_SCAN_LIMIT`]; other values are clamped).
    pub limit: usize,
    /// The access policy's filters: only resources they admit are returned, before the page
    /// is cut ([`crate::access`]). None: every resource.
    pub access: Option<crate::access::Access>,
}

impl ScanQuery {
    /// The first page of every current resource of `resource_type`.
    pub fn all(resource_type: &str, limit: usize) -> ScanQuery {
        ScanQuery {
            resource_types: vec![resource_type.to_string()],
            updated_after: None,
            updated_until: None,
            compartment: None,
            after: 0,
            limit,
            access: None,
        }
    }

    /// The page size the SQL asks for.
    pub fn effective_limit(&self) -> usize {
        self.limit.clamp(1, MAX_SCAN_LIMIT)
    }
}

/// A page of a scan, in `rid` order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ScanPage {
    pub resources: Vec<ResourceVersion>,
    /// The cursor of the next page; None when this page is the last.
    pub next_after: Option<i64>,
}

/// A connection that can run [`sql::scan`].
#[async_trait]
pub trait ScanConn: Send {
    /// Rows selecting [`sql::VERSION_COLUMNS`] followed by `rid`.
    async fn scan_rows(&mut self, sql: &Sql) -> Result<Vec<(ResourceVersion, i64)>>;
}

/// One page of a scan: the same steps on every backend.
pub async fn scan(conn: &mut dyn ScanConn, d: &dyn Dialect, q: &ScanQuery) -> Result<ScanPage> {
    let limit = q.effective_limit();
    if q.resource_types.is_empty() {
        return Ok(ScanPage::default());
    }
    if let Some(Compartment::Patients(ids)) = &q.compartment {
        if ids.is_empty() {
            return Ok(ScanPage::default());
        }
        if ids.len() > MAX_COMPARTMENT_PATIENTS {
            return Err(crate::StoreError::invalid(fhir::Issue::error(
                fhir::IssueType::TooCostly,
                format!(
                    "a compartment scan names {} patients; at most {MAX_COMPARTMENT_PATIENTS} \
                     can be asked for at once",
                    ids.len()
                ),
            )));
        }
    }
    // One row more than the page tells whether another page follows.
    let mut rows = conn.scan_rows(&sql::scan(d, q, limit + 1)).await?;
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next_after = if more {
        rows.last().map(|(_, rid)| *rid)
    } else {
        None
    };
    Ok(ScanPage {
        resources: rows.into_iter().map(|(v, _)| v).collect(),
        next_after,
    })
}
