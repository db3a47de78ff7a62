//! What a backend implements to keep accounts: running this module's statements. The SQL text
//! is fixed here (`$1`, `$2`… placeholders; SQLite reads `?1`, `?2`…), so a backend only binds
//! arguments, runs statements and hands back cells.

use async_trait::async_trait;

use crate::error::Result;

/// A bound argument. Nulls carry their type: PostgreSQL needs it.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Text(Option<String>),
    Int(Option<i64>),
}

/// A value read back. Account tables hold only text, integers and nulls.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Text(String),
}

/// One statement of [`super::sql`] and its arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub sql: &'static str,
    pub args: Vec<Arg>,
}

impl Statement {
    pub fn new(sql: &'static str, args: Vec<Arg>) -> Statement {
        Statement { sql, args }
    }

    /// Whether the statement answers rows (a `SELECT`, or a write with `RETURNING`) rather
    /// than only a count of rows changed.
    pub fn returns_rows(&self) -> bool {
        self.sql.trim_start().starts_with("SELECT") || self.sql.contains(" RETURNING ")
    }

    /// The text with SQLite's numbered placeholders (`?1` for `$1`).
    pub fn sqlite_text(&self) -> String {
        self.sql.replace('$', "?")
    }
}

/// What a write statement did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Written {
    /// Rows inserted, updated or deleted.
    pub changed: u64,
    /// The rows of a `RETURNING` clause (empty otherwise).
    pub rows: Vec<Vec<Cell>>,
}

/// Implemented by each backend; [`super::AccountStore`] comes with it. Not for callers: they
/// use the named operations of [`super::AccountStore`].
#[async_trait]
pub trait AccountSql: Send + Sync {
    /// Runs one read-only statement; its rows.
    async fn read_rows(&self, statement: Statement) -> Result<Vec<Vec<Cell>>>;

    /// Runs the statements in order in one transaction, committed (durably) before this
    /// returns; what each did. A failing statement rolls back all of them.
    async fn write_rows(&self, statements: Vec<Statement>) -> Result<Vec<Written>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_with_returning_and_selects_return_rows() {
        let s = |sql| Statement::new(sql, vec![]);
        assert!(s("SELECT 1").returns_rows());
        assert!(s("UPDATE t SET a = 1 WHERE b = $1 RETURNING a").returns_rows());
        assert!(!s("UPDATE t SET a = 1 WHERE b = $1").returns_rows());
        assert!(!s("DELETE FROM t").returns_rows());
    }

    #[test]
    fn sqlite_placeholders_keep_their_numbers() {
        let s = Statement::new("SELECT a FROM t WHERE b = $2 AND c = $1", vec![]);
        assert_eq!(s.sqlite_text(), "SELECT a FROM t WHERE b = ?2 AND c = ?1");
    }
}
