//! The pool of read-only connections. WAL lets them read while the writer writes; each read
//! runs on a blocking thread so the async workers never wait on the disk.

use std::path::Path;
use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use parking_lot::Mutex;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use store::scan::ScanConn;
use store::search::ReadConn;
use store::sql::{self, Sql, SqliteDialect};
use store::{ApiClient, ResourceVersion, Result, StoreError};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::conn::{
    configure_reader, db_err, open_err, query_count, query_scan_rows, query_versions,
    version_from_row,
};

/// The read by id statement, exactly as the shared SQL writes it, bound without building a
/// [`Sql`] each time.
static READ_SQL: LazyLock<String> = LazyLock::new(|| sql::read(&SqliteDialect, "", "").text);

const API_CLIENT_SQL: &str =
    "SELECT client_id, name, secret_hash, scopes, created_at FROM api_clients WHERE client_id = ?1";
const SERVER_KEY_SQL: &str = "SELECT value FROM server_keys WHERE name = ?1";
const STATE_SQL: &str = "SELECT value FROM server_state WHERE name = ?1";
/// Keys from `?1` up to (not including) `?2`, the prefix with its last character incremented.
const STATE_LIST_SQL: &str =
    "SELECT name, value FROM server_state WHERE name >= ?1 AND (?2 IS NULL OR name < ?2) ORDER BY name";

/// One read-only connection.
pub(crate) struct Reader {
    conn: Connection,
}

impl Reader {
    /// The connection, for reads kept in their own modules (e.g. [`crate::audit`]).
    pub(crate) fn connection(&self) -> &Connection {
        &self.conn
    }

    fn open(path: &Path) -> Result<Reader> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| open_err(path, e))?;
        configure_reader(&conn).map_err(|e| open_err(path, e))?;
        Ok(Reader { conn })
    }

    pub(crate) fn read(
        &mut self,
        resource_type: &str,
        id: &str,
    ) -> Result<Option<ResourceVersion>> {
        let mut stmt = self
            .conn
            .prepare_cached(&READ_SQL)
            .map_err(|e| db_err("preparing a read", e))?;
        stmt.query_row([resource_type, id], version_from_row)
            .optional()
            .map_err(|e| db_err("reading a resource", e))
    }

    pub(crate) fn api_client(&mut self, client_id: &str) -> Result<Option<ApiClient>> {
        let mut stmt = self
            .conn
            .prepare_cached(API_CLIENT_SQL)
            .map_err(|e| db_err("preparing an API client read", e))?;
        let row = stmt
            .query_row([client_id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })
            .optional()
            .map_err(|e| db_err("reading an API client", e))?;
        row.map(|(client_id, name, secret_hash, scopes, created)| {
            let created_at = chrono::DateTime::from_timestamp_millis(created).ok_or_else(|| {
                StoreError::Database("api_clients.created_at is out of range".into())
            })?;
            Ok(ApiClient {
                client_id,
                name,
                secret_hash,
                scopes,
                created_at,
            })
        })
        .transpose()
    }

    pub(crate) fn server_key(&mut self, name: &str) -> Result<Option<Vec<u8>>> {
        let mut stmt = self
            .conn
            .prepare_cached(SERVER_KEY_SQL)
            .map_err(|e| db_err("preparing a server key read", e))?;
        stmt.query_row([name], |r| r.get(0))
            .optional()
            .map_err(|e| db_err("reading a server key", e))
    }

    pub(crate) fn state(&mut self, name: &str) -> Result<Option<String>> {
        let mut stmt = self
            .conn
            .prepare_cached(STATE_SQL)
            .map_err(|e| db_err("preparing a server state read", e))?;
        stmt.query_row([name], |r| r.get(0))
            .optional()
            .map_err(|e| db_err("reading server state", e))
    }

    pub(crate) fn state_list(&mut self, prefix: &str) -> Result<Vec<(String, String)>> {
        let mut stmt = self
            .conn
            .prepare_cached(STATE_LIST_SQL)
            .map_err(|e| db_err("preparing a server state list", e))?;
        let end = store::prefix_end(prefix);
        let rows = stmt
            .query_map(rusqlite::params![prefix, end], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| db_err("listing server state", e))?;
        Ok(rows)
    }

    /// A read of the account tables ([`crate::accounts`]).
    pub(crate) fn account_rows(
        &mut self,
        statement: &store::accounts::Statement,
    ) -> Result<Vec<Vec<store::accounts::Cell>>> {
        crate::accounts::read(&self.conn, statement)
    }

    pub(crate) fn ping(&mut self) -> Result<()> {
        self.conn
            .query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
            .map(|_| ())
            .map_err(|e| db_err("ping", e))
    }
}

#[async_trait]
impl ReadConn for Reader {
    async fn versions(&mut self, sql: &Sql) -> Result<Vec<ResourceVersion>> {
        query_versions(&self.conn, sql)
    }

    async fn count(&mut self, sql: &Sql) -> Result<u64> {
        query_count(&self.conn, sql)
    }
}

#[async_trait]
impl ScanConn for Reader {
    async fn scan_rows(&mut self, sql: &Sql) -> Result<Vec<(ResourceVersion, i64)>> {
        query_scan_rows(&self.conn, sql)
    }
}

/// A fixed set of readers; a caller waits (asynchronously) for a free one.
pub(crate) struct Readers {
    idle: Mutex<Vec<Reader>>,
    permits: Arc<Semaphore>,
}

/// A checked-out reader; goes back to the pool when dropped, even if the read panicked or the
/// caller stopped waiting.
struct Lease {
    pool: Arc<Readers>,
    reader: Option<Reader>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(r) = self.reader.take() {
            self.pool.idle.lock().push(r);
        }
    }
}

impl Readers {
    pub(crate) fn open(path: &Path, n: usize) -> Result<Arc<Readers>> {
        let readers = (0..n)
            .map(|_| Reader::open(path))
            .collect::<Result<Vec<_>>>()?;
        Ok(Arc::new(Readers {
            idle: Mutex::new(readers),
            permits: Arc::new(Semaphore::new(n)),
        }))
    }

    /// Runs `f` on the calling thread when a reader is free at once (for statements that take
    /// microseconds, such as a read by id); otherwise waits for one like [`Readers::run`].
    pub(crate) async fn run_short<T, F>(self: &Arc<Self>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Reader) -> Result<T> + Send + 'static,
    {
        if let Ok(permit) = self.permits.clone().try_acquire_owned() {
            // Popped in its own statement: the lock must be released before the lease returns
            // the reader.
            let idle = self.idle.lock().pop();
            if let Some(reader) = idle {
                let mut lease = Lease {
                    pool: self.clone(),
                    reader: Some(reader),
                    _permit: permit,
                };
                return match lease.reader.as_mut() {
                    Some(r) => f(r),
                    None => Err(StoreError::Unavailable),
                };
            }
        }
        self.run(f).await
    }

    /// Runs `f` on a free reader on a blocking thread.
    pub(crate) async fn run<T, F>(self: &Arc<Self>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Reader) -> Result<T> + Send + 'static,
    {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Unavailable)?;
        let reader = self.idle.lock().pop().ok_or(StoreError::Unavailable)?;
        let mut lease = Lease {
            pool: self.clone(),
            reader: Some(reader),
            _permit: permit,
        };
        tokio::task::spawn_blocking(move || match lease.reader.as_mut() {
            Some(r) => f(r),
            None => Err(StoreError::Unavailable),
        })
        .await
        .map_err(|e| StoreError::Database(format!("a read stopped unexpectedly: {e}")))?
    }
}
