//! The access reindex ([`store::access::reindex`]) on this backend: run on the write connection
//! when a database is opened (before the writer starts), or on a connection of its own when
//! asked for later, each batch in an immediate transaction that the writer waits for.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{params_from_iter, Connection, OpenFlags};
use store::access::ReindexConn;
use store::scan::ScanConn;
use store::search::ReadConn;
use store::sql::Sql;
use store::{ResourceVersion, Result};

use crate::conn::{db_err, open_err, query_count, query_scan_rows, query_versions, Bind};

/// How long a batch waits for the writer's transaction to end.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// A write connection the reindex runs on.
pub(crate) struct Maintenance<'c>(pub(crate) &'c mut Connection);

impl Maintenance<'_> {
    fn run(&self, text: &str, what: &str) -> Result<()> {
        self.0.execute_batch(text).map_err(|e| db_err(what, e))
    }
}

#[async_trait]
impl ReadConn for Maintenance<'_> {
    async fn versions(&mut self, sql: &Sql) -> Result<Vec<ResourceVersion>> {
        query_versions(self.0, sql)
    }

    async fn count(&mut self, sql: &Sql) -> Result<u64> {
        query_count(self.0, sql)
    }
}

#[async_trait]
impl ScanConn for Maintenance<'_> {
    async fn scan_rows(&mut self, sql: &Sql) -> Result<Vec<(ResourceVersion, i64)>> {
        query_scan_rows(self.0, sql)
    }
}

#[async_trait]
impl ReindexConn for Maintenance<'_> {
    async fn begin(&mut self) -> Result<()> {
        self.run("BEGIN IMMEDIATE", "starting an access reindex batch")
    }

    async fn commit(&mut self) -> Result<()> {
        self.run("COMMIT", "committing an access reindex batch")
    }

    async fn rollback(&mut self) -> Result<()> {
        self.run("ROLLBACK", "rolling back an access reindex batch")
    }

    async fn execute(&mut self, sql: &Sql) -> Result<u64> {
        let mut stmt = self
            .0
            .prepare_cached(&sql.text)
            .map_err(|e| db_err("preparing an access index write", e))?;
        stmt.execute(params_from_iter(sql.params.iter().map(Bind)))
            .map(|n| n as u64)
            .map_err(|e| db_err("writing access index rows", e))
    }
}

/// Rebuilds the access index on `conn` if the database's was built by other rules.
pub(crate) fn if_stale(conn: &mut Connection) -> Result<Option<u64>> {
    futures::executor::block_on(store::access::reindex_if_stale(
        &mut Maintenance(conn),
        crate::dialect(),
    ))
}

/// Rebuilds the access index of the database at `path` on a connection of its own, while the
/// store's writer may be writing.
pub(crate) fn whole_file(path: &Path) -> Result<u64> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(path, flags).map_err(|e| open_err(path, e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .and_then(|_| conn.pragma_update(None, "synchronous", "FULL"))
        .map_err(|e| open_err(path, e))?;
    futures::executor::block_on(store::access::reindex(
        &mut Maintenance(&mut conn),
        crate::dialect(),
    ))
}
