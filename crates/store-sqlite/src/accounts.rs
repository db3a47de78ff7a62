//! Accounts on SQLite ([`store::accounts`]): reads run on the reader pool; writes go to the
//! one writer like every other write, each request in its own savepoint of a group commit and
//! answered after the commit. With one writer per file (and `BEGIN IMMEDIATE` between
//! processes) the conditional statements of the "at most once" rules never interleave.

use async_trait::async_trait;
use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::{params_from_iter, Connection, ToSql};
use store::accounts::{AccountSql, Arg, Cell, Statement, Written};
use store::Result;

use crate::conn::db_err;
use crate::writer::Job;
use crate::SqliteStore;

/// An argument bound without copying its text.
struct Bound<'a>(&'a Arg);

impl ToSql for Bound<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self.0 {
            Arg::Text(Some(s)) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Arg::Int(Some(i)) => ToSqlOutput::Owned(Value::Integer(*i)),
            Arg::Text(None) | Arg::Int(None) => ToSqlOutput::Owned(Value::Null),
        })
    }
}

fn cell(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Cell> {
    Ok(match row.get_ref(i)? {
        ValueRef::Null => Cell::Null,
        ValueRef::Integer(n) => Cell::Int(n),
        ValueRef::Text(t) => Cell::Text(String::from_utf8(t.to_vec()).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into())
        })?),
        other => {
            return Err(rusqlite::Error::InvalidColumnType(
                i,
                format!("column {i}"),
                other.data_type(),
            ))
        }
    })
}

/// Runs one statement; its rows and the rows it changed.
fn run(conn: &Connection, statement: &Statement) -> Result<Written> {
    let what = "running an account statement";
    let mut stmt = conn
        .prepare_cached(&statement.sqlite_text())
        .map_err(|e| db_err(what, e))?;
    let columns = stmt.column_count();
    let rows = stmt
        .query_map(params_from_iter(statement.args.iter().map(Bound)), |row| {
            (0..columns).map(|i| cell(row, i)).collect()
        })
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<Vec<Cell>>>>())
        .map_err(|e| db_err(what, e))?;
    Ok(Written {
        changed: conn.changes(),
        rows,
    })
}

/// A read on a reader connection.
pub(crate) fn read(conn: &Connection, statement: &Statement) -> Result<Vec<Vec<Cell>>> {
    Ok(run(conn, statement)?.rows)
}

/// Writes on the writer's connection, inside the savepoint the writer opened for the request.
pub(crate) fn write(conn: &Connection, statements: &[Statement]) -> Result<Vec<Written>> {
    statements.iter().map(|s| run(conn, s)).collect()
}

#[async_trait]
impl AccountSql for SqliteStore {
    async fn read_rows(&self, statement: Statement) -> Result<Vec<Vec<Cell>>> {
        // Readers are `query_only`: a write sent here is refused by SQLite.
        self.readers
            .run_short(move |r| r.account_rows(&statement))
            .await
    }

    async fn write_rows(&self, statements: Vec<Statement>) -> Result<Vec<Written>> {
        self.submit(|reply| Job::Accounts { statements, reply })
            .await
    }
}
