//! The access reindex ([`store::access::reindex`]) on this backend, on one connection that holds
//! a session advisory lock while it runs: servers starting together run it once, the others
//! wait and then find it done. Each batch locks the resources it recomputes (`FOR UPDATE`), so a
//! concurrent write of one of them waits for the batch instead of being overwritten by it.

use async_trait::async_trait;
use sqlx::postgres::PgConnection;
use sqlx::Row;
use store::access::ReindexConn;
use store::scan::ScanConn;
use store::search::ReadConn;
use store::sql::{PostgresDialect, Sql};
use store::{ResourceVersion, Result};

use crate::{bind_all, count, db_err, decode_err, version_from_row, versions};

/// The advisory lock that serialises reindexes across server instances.
const LOCK: &str = "SELECT pg_advisory_lock(hashtextextended('portico access reindex', 0))";
const UNLOCK: &str = "SELECT pg_advisory_unlock(hashtextextended('portico access reindex', 0))";
/// The tables a reindex rewrites.
const ANALYZE: &str = "ANALYZE resources, idx_token, idx_reference, history_access";

/// A connection the reindex runs on.
pub(crate) struct Maintenance<'c>(pub(crate) &'c mut PgConnection);

impl Maintenance<'_> {
    async fn run(&mut self, statement: &str) -> Result<()> {
        sqlx::query(statement)
            .execute(&mut *self.0)
            .await
            .map(|_| ())
            .map_err(db_err)
    }
}

#[async_trait]
impl ReadConn for Maintenance<'_> {
    async fn versions(&mut self, sql: &Sql) -> Result<Vec<ResourceVersion>> {
        versions(self.0, sql).await
    }

    async fn count(&mut self, sql: &Sql) -> Result<u64> {
        count(self.0, sql).await
    }
}

#[async_trait]
impl ScanConn for Maintenance<'_> {
    async fn scan_rows(&mut self, sql: &Sql) -> Result<Vec<(ResourceVersion, i64)>> {
        let rows = bind_all(sql)
            .fetch_all(&mut *self.0)
            .await
            .map_err(db_err)?;
        rows.iter()
            .map(|row| Ok((version_from_row(row)?, row.try_get(6).map_err(decode_err)?)))
            .collect()
    }
}

#[async_trait]
impl ReindexConn for Maintenance<'_> {
    async fn begin(&mut self) -> Result<()> {
        self.run("BEGIN").await
    }

    async fn commit(&mut self) -> Result<()> {
        self.run("COMMIT").await
    }

    async fn rollback(&mut self) -> Result<()> {
        self.run("ROLLBACK").await
    }

    async fn execute(&mut self, sql: &Sql) -> Result<u64> {
        bind_all(sql)
            .execute(&mut *self.0)
            .await
            .map(|r| r.rows_affected())
            .map_err(db_err)
    }
}

/// Runs the reindex on `conn` under the advisory lock: always (`force`), or only when the
/// database's access index was built by other rules. Answers how many versions it recomputed.
pub(crate) async fn run(conn: &mut PgConnection, force: bool) -> Result<Option<u64>> {
    let mut m = Maintenance(conn);
    m.run(LOCK).await?;
    let result = if force {
        store::access::reindex(&mut m, &PostgresDialect)
            .await
            .map(Some)
    } else {
        store::access::reindex_if_stale(&mut m, &PostgresDialect).await
    };
    let unlocked = m.run(UNLOCK).await;
    let done = result?;
    unlocked?;
    if done.is_some_and(|n| n > 0) {
        // The planner needs statistics over the rows just written: without them it chose plans
        // for the relationship filter that ran for minutes instead of milliseconds.
        m.run(ANALYZE).await?;
    }
    Ok(done)
}
