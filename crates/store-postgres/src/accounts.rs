//! Accounts on PostgreSQL ([`store::accounts`]). Each "at most once" rule is one conditional
//! statement: under READ COMMITTED a racing `UPDATE` waits for the first one's row lock and
//! then checks its condition again against the committed row, and a racing `INSERT … ON
//! CONFLICT DO UPDATE` waits and then updates; so the rules hold across server instances.

use async_trait::async_trait;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::{Column, Postgres, Row, TypeInfo};
use store::accounts::{AccountSql, Arg, Cell, Statement, Written};
use store::{Result, StoreError};

use crate::{db_err, decode_err, PgStore};

fn bind(statement: &Statement) -> sqlx::query::Query<'_, Postgres, PgArguments> {
    let mut query = sqlx::query(statement.sql);
    for arg in &statement.args {
        query = match arg {
            Arg::Text(s) => query.bind(s.as_deref()),
            Arg::Int(i) => query.bind(*i),
        };
    }
    query
}

fn cells(row: &PgRow) -> Result<Vec<Cell>> {
    row.columns()
        .iter()
        .enumerate()
        .map(|(i, column)| {
            let value = match column.type_info().name() {
                "INT8" => row.try_get::<Option<i64>, _>(i).map(|v| v.map(Cell::Int)),
                "INT4" => row
                    .try_get::<Option<i32>, _>(i)
                    .map(|v| v.map(|n| Cell::Int(n.into()))),
                "INT2" => row
                    .try_get::<Option<i16>, _>(i)
                    .map(|v| v.map(|n| Cell::Int(n.into()))),
                "TEXT" | "VARCHAR" => row
                    .try_get::<Option<String>, _>(i)
                    .map(|v| v.map(Cell::Text)),
                other => {
                    return Err(StoreError::Database(format!(
                        "an account statement returned a column of type {other}"
                    )))
                }
            };
            Ok(value.map_err(decode_err)?.unwrap_or(Cell::Null))
        })
        .collect()
}

async fn run<'c, E>(conn: E, statement: &Statement) -> Result<Written>
where
    E: sqlx::Executor<'c, Database = Postgres>,
{
    if statement.returns_rows() {
        let rows = bind(statement).fetch_all(conn).await.map_err(db_err)?;
        let rows = rows.iter().map(cells).collect::<Result<Vec<_>>>()?;
        Ok(Written {
            changed: rows.len() as u64,
            rows,
        })
    } else {
        let done = bind(statement).execute(conn).await.map_err(db_err)?;
        Ok(Written {
            changed: done.rows_affected(),
            rows: Vec::new(),
        })
    }
}

#[async_trait]
impl AccountSql for PgStore {
    async fn read_rows(&self, statement: Statement) -> Result<Vec<Vec<Cell>>> {
        Ok(run(&self.pool, &statement).await?.rows)
    }

    async fn write_rows(&self, statements: Vec<Statement>) -> Result<Vec<Written>> {
        if let [one] = statements.as_slice() {
            // A single statement is atomic on its own; no BEGIN/COMMIT round trips.
            return Ok(vec![run(&self.pool, one).await?]);
        }
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let mut written = Vec::with_capacity(statements.len());
        for s in &statements {
            written.push(run(&mut *tx, s).await?);
        }
        tx.commit().await.map_err(db_err)?;
        Ok(written)
    }
}
