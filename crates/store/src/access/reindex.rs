//! Rebuilding the access index of data stored before it existed, or before its rules changed:
//! the data migration each backend runs when it opens a database.
//!
//! Schema migrations are SQL; the access entries come from Rust ([`super::access_entries`],
//! `policy::labels`), so they cannot be computed by a migration file. Instead the backend calls
//! [`reindex_if_stale`] after its migrations: it compares the version recorded in the one-row
//! table `access_index` with [`ACCESS_INDEX_VERSION`] and, when they differ,
//! recomputes the access entries of every current resource and the facts of every older version
//! in short transactions, then records the version. Each batch replaces what it recomputes, so
//! an interrupted run is simply run again at the next start. Until a resource has its entries a
//! filter that hides anything hides it (see the [module docs](super)), never the reverse.

use async_trait::async_trait;
use serde_json::Value;

use crate::error::Result;
use crate::model::ResourceVersion;
use crate::scan::ScanConn;
use crate::search::ReadConn;
use crate::sql::{self, Dialect, Sql};

/// The version of the rules the access index is built by. Raise it whenever what
/// [`super::access_entries`] computes changes (the policy's label codes, the consent rule,
/// the compartment), so that every database rebuilds its entries on its next start.
pub const ACCESS_INDEX_VERSION: &str = "1";

/// Resources recomputed per transaction: short enough that writers waiting on the lock barely
/// notice.
const BATCH: usize = 500;

/// How often a rebuild logs its progress, in versions.
const PROGRESS_EVERY: u64 = 100_000;

/// A connection the rebuild reads and writes through, outside the store's writer.
#[async_trait]
pub trait ReindexConn: ReadConn + ScanConn {
    /// Starts a transaction that excludes other writers of the rows it reads (SQLite:
    /// `BEGIN IMMEDIATE`; PostgreSQL: `BEGIN`, the rows read being locked by
    /// [`Dialect::row_lock`]).
    async fn begin(&mut self) -> Result<()>;
    async fn commit(&mut self) -> Result<()>;
    async fn rollback(&mut self) -> Result<()>;
    /// Runs a statement that returns no rows; answers how many rows it changed.
    async fn execute(&mut self, sql: &Sql) -> Result<u64>;
}

/// Rebuilds the access index unless the database records that it was built by this
/// [`ACCESS_INDEX_VERSION`]; answers how many versions were recomputed (None: none needed).
pub async fn reindex_if_stale(conn: &mut dyn ReindexConn, d: &dyn Dialect) -> Result<Option<u64>> {
    let current = conn
        .count(&sql::reindex::version_is(d, ACCESS_INDEX_VERSION))
        .await?;
    if current > 0 {
        return Ok(None);
    }
    reindex(conn, d).await.map(Some)
}

/// Recomputes the access entries of every current resource and the facts of every older
/// version, then records [`ACCESS_INDEX_VERSION`]. Answers how many versions it recomputed.
pub async fn reindex(conn: &mut dyn ReindexConn, d: &dyn Dialect) -> Result<u64> {
    let mut done = 0u64;
    let mut after_rid = 0i64;
    loop {
        let page = sql::reindex::current_page(d, after_rid, BATCH);
        conn.begin().await?;
        let batch = current_batch(conn, d, page).await;
        let Some((last, count)) = settle(conn, batch).await? else {
            break;
        };
        done += count;
        after_rid = last;
        progress(done);
    }
    let mut after = (String::new(), String::new(), 0i64);
    loop {
        let page = sql::reindex::history_page(d, (&after.0, &after.1, after.2), BATCH);
        conn.begin().await?;
        let batch = history_batch(conn, d, page).await;
        let Some((last, count)) = settle(conn, batch).await? else {
            break;
        };
        done += count;
        after = last;
        progress(done);
    }
    conn.begin().await?;
    let mut recorded = Ok(0);
    for statement in sql::reindex::record_version(d, ACCESS_INDEX_VERSION) {
        recorded = conn.execute(&statement).await;
        if recorded.is_err() {
            break;
        }
    }
    settle(conn, recorded).await?;
    tracing::info!(versions = done, "rebuilt the access index");
    Ok(done)
}

/// Says how far a long rebuild has come, every [`PROGRESS_EVERY`] versions.
fn progress(done: u64) {
    if done % PROGRESS_EVERY < BATCH as u64 {
        tracing::info!(versions = done, "rebuilding the access index");
    }
}

/// Ends the transaction `result` was worked out in: commits it if `result` is a success, rolls
/// it back otherwise.
async fn settle<T>(conn: &mut dyn ReindexConn, result: Result<T>) -> Result<T> {
    match result {
        Ok(value) => {
            conn.commit().await?;
            Ok(value)
        }
        Err(e) => {
            if let Err(rollback) = conn.rollback().await {
                tracing::warn!(error = %rollback, "rolling back a failed access reindex batch failed");
            }
            Err(e)
        }
    }
}

/// The stored JSON of a version; None (and a warning without content) if it is unreadable, in
/// which case the version gets no entries and stays hidden from every filter that hides.
fn parse(version: &ResourceVersion) -> Option<Value> {
    match serde_json::from_str(&version.json) {
        Ok(value) => Some(value),
        Err(_) => {
            tracing::warn!(
                resource_type = %version.resource_type,
                "a stored version is not readable JSON; it gets no access entries"
            );
            None
        }
    }
}

/// One page of current resources: answers the last `rid` and how many were recomputed, or None
/// when there were none.
async fn current_batch(
    conn: &mut dyn ReindexConn,
    d: &dyn Dialect,
    page: Sql,
) -> Result<Option<(i64, u64)>> {
    let rows = conn.scan_rows(&page).await?;
    let Some(last_rid) = rows.last().map(|(_, rid)| *rid) else {
        return Ok(None);
    };
    for (version, rid) in &rows {
        let entries = match parse(version) {
            Some(value) => {
                let index = fhir::index::extract(&value);
                super::access_entries(&version.resource_type, &value, &index)
            }
            None => Vec::new(),
        };
        for statement in
            sql::reindex::replace_access_rows(d, *rid, &version.resource_type, &entries)
        {
            conn.execute(&statement).await?;
        }
    }
    Ok(Some((last_rid, rows.len() as u64)))
}

type HistoryKey = (String, String, i64);

/// One page of older versions: answers the last key and how many were recomputed, or None
/// when there were none.
async fn history_batch(
    conn: &mut dyn ReindexConn,
    d: &dyn Dialect,
    page: Sql,
) -> Result<Option<(HistoryKey, u64)>> {
    let rows = conn.scan_rows(&page).await?;
    let Some(last) = rows
        .last()
        .map(|(v, _)| (v.resource_type.clone(), v.id.clone(), v.version_id))
    else {
        return Ok(None);
    };
    for (version, _) in &rows {
        let entries = match parse(version) {
            Some(value) => super::full_index(&version.resource_type, &value),
            None => Vec::new(),
        };
        for statement in sql::reindex::replace_version_facts(d, version, &entries) {
            conn.execute(&statement).await?;
        }
    }
    Ok(Some((last, rows.len() as u64)))
}
