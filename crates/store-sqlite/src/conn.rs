//! What every connection shares: settings, binding the shared SQL's parameters, reading rows,
//! and turning SQLite errors into [`StoreError`]s.

use std::path::Path;
use std::time::Duration;

use chrono::DateTime;
use rusqlite::types::{ToSqlOutput, Type, Value, ValueRef};
use rusqlite::{params_from_iter, Connection, ErrorCode, Row, ToSql};
use store::sql::{Sql, SqlValue};
use store::{ResourceVersion, StoreError};

/// How long a connection waits for a lock another process holds (e.g. `portico migrate`).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Page cache per connection, in KiB (negative `cache_size` counts KiB). The writer's is large:
/// with 8 MiB, filling a store to a million resources slowed to a crawl as the index B-trees
/// outgrew it (not finished after 15 minutes); with 256 MiB it took 139 s (BENCHMARKS.md).
const WRITER_CACHE_KIB: i64 = 256 * 1024;
const READER_CACHE_KIB: i64 = 16 * 1024;
/// Reads go through the OS page cache without copying into SQLite's own cache.
const MMAP_BYTES: i64 = 1 << 30;
/// Searches build a handful of distinct statements per shape; keep the common ones prepared.
const STATEMENT_CACHE: usize = 128;

fn common(conn: &Connection, cache_kib: i64) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.pragma_update(None, "cache_size", -cache_kib)?;
    conn.pragma_update(None, "mmap_size", MMAP_BYTES)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(())
}

/// The write connection: WAL, and `synchronous=FULL` so that a commit is on disk before the
/// writer answers (an acknowledged write survives power loss and `kill -9`).
pub(crate) fn configure_writer(conn: &Connection) -> rusqlite::Result<String> {
    // The first statement that reads the file: a damaged or foreign file fails here.
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    // The checkpoint thread copies the WAL into the database file, off the commit path.
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    // After the writer resets a large WAL (writer.rs), the file is cut back to this size.
    conn.pragma_update(
        None,
        "journal_size_limit",
        crate::writer::WAL_LIMIT_BYTES as i64,
    )?;
    common(conn, WRITER_CACHE_KIB)?;
    Ok(mode)
}

pub(crate) fn configure_reader(conn: &Connection) -> rusqlite::Result<()> {
    common(conn, READER_CACHE_KIB)?;
    conn.pragma_update(None, "query_only", true)?;
    Ok(())
}

/// A bind parameter of the shared SQL, borrowed rather than copied.
pub(crate) struct Bind<'a>(pub &'a SqlValue);

impl ToSql for Bind<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self.0 {
            SqlValue::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            SqlValue::Int(i) => ToSqlOutput::Owned(Value::Integer(*i)),
            SqlValue::Real(f) => ToSqlOutput::Owned(Value::Real(*f)),
        })
    }
}

/// A row selecting [`store::sql::VERSION_COLUMNS`].
pub(crate) fn version_from_row(row: &Row<'_>) -> rusqlite::Result<ResourceVersion> {
    let ms: i64 = row.get(3)?;
    let last_updated = DateTime::from_timestamp_millis(ms).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            3,
            Type::Integer,
            "last_updated is out of range".into(),
        )
    })?;
    Ok(ResourceVersion {
        resource_type: row.get(0)?,
        id: row.get(1)?,
        version_id: row.get(2)?,
        last_updated,
        deleted: row.get::<_, i64>(4)? != 0,
        json: row.get(5)?,
    })
}

pub(crate) fn query_versions(
    conn: &Connection,
    sql: &Sql,
) -> Result<Vec<ResourceVersion>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&sql.text)
        .map_err(|e| db_err("preparing a query", e))?;
    let rows = stmt
        .query_map(
            params_from_iter(sql.params.iter().map(Bind)),
            version_from_row,
        )
        .map_err(|e| db_err("running a query", e))?;
    rows.collect::<rusqlite::Result<Vec<_>>>()
        .map_err(|e| db_err("reading query results", e))
}

/// Rows selecting [`store::sql::VERSION_COLUMNS`] and then `rid` ([`store::sql::scan`]).
pub(crate) fn query_scan_rows(
    conn: &Connection,
    sql: &Sql,
) -> Result<Vec<(ResourceVersion, i64)>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&sql.text)
        .map_err(|e| db_err("preparing a scan", e))?;
    let rows = stmt
        .query_map(params_from_iter(sql.params.iter().map(Bind)), |row| {
            Ok((version_from_row(row)?, row.get::<_, i64>(6)?))
        })
        .map_err(|e| db_err("running a scan", e))?;
    rows.collect::<rusqlite::Result<Vec<_>>>()
        .map_err(|e| db_err("reading scan results", e))
}

pub(crate) fn query_count(conn: &Connection, sql: &Sql) -> Result<u64, StoreError> {
    let mut stmt = conn
        .prepare_cached(&sql.text)
        .map_err(|e| db_err("preparing a count", e))?;
    let n: i64 = stmt
        .query_row(params_from_iter(sql.params.iter().map(Bind)), |r| r.get(0))
        .map_err(|e| db_err("running a count", e))?;
    Ok(n.max(0) as u64)
}

/// A SQLite error as a store error. SQLite's messages name tables and columns, never bound
/// values, so no patient data reaches the message.
pub(crate) fn db_err(context: &str, e: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(f, _) = &e {
        if f.code == ErrorCode::ConstraintViolation
            && matches!(
                f.extended_code,
                rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            )
        {
            return StoreError::Conflict(format!("{context}: {e}"));
        }
    }
    StoreError::Database(format!("{context}: {e}"))
}

/// An error opening or first reading the database file, naming the file and what to do.
pub(crate) fn open_err(path: &Path, e: rusqlite::Error) -> StoreError {
    let p = path.display();
    let msg = match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => {
            format!("{p} is not a SQLite database or is damaged ({e}); check the path, or restore the file from a backup")
        }
        Some(ErrorCode::DatabaseCorrupt) => {
            format!("database file {p} is damaged ({e}); restore it from a backup")
        }
        Some(ErrorCode::CannotOpen | ErrorCode::PermissionDenied | ErrorCode::ReadOnly) => format!(
            "cannot open database file {p} for reading and writing ({e}); check the permissions of the file and of its \
             directory (SQLite also creates {p}-wal and {p}-shm beside it)"
        ),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            format!("database file {p} is locked by another process ({e}); stop that process or retry")
        }
        _ => format!("cannot open database file {p}: {e}"),
    };
    StoreError::Database(msg)
}
