//! Versioned schema migrations, embedded in the binary and applied in order on open.

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use store::StoreError;

/// One step of the schema: `migrations/{version:04}_{name}.sql`.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every migration, in the order they apply. Append only: a released migration never changes.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "resources",
        sql: include_str!("../migrations/0001_resources.sql"),
    },
    Migration {
        version: 2,
        name: "api_clients",
        sql: include_str!("../migrations/0002_api_clients.sql"),
    },
    Migration {
        version: 3,
        name: "planner_statistics",
        sql: include_str!("../migrations/0003_planner_statistics.sql"),
    },
    Migration {
        version: 4,
        name: "string_exact_index",
        sql: include_str!("../migrations/0004_string_exact_index.sql"),
    },
    Migration {
        version: 5,
        name: "server_state",
        sql: include_str!("../migrations/0005_server_state.sql"),
    },
    Migration {
        version: 6,
        name: "accounts",
        sql: include_str!("../migrations/0006_accounts.sql"),
    },
    Migration {
        version: 7,
        name: "audit_log",
        sql: include_str!("../migrations/0007_audit_log.sql"),
    },
    Migration {
        version: 8,
        name: "access",
        sql: include_str!("../migrations/0008_access.sql"),
    },
];

impl Migration {
    fn label(&self) -> String {
        format!("{:04}_{}", self.version, self.name)
    }
}

const CREATE_LEDGER: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL,
    applied_at INTEGER NOT NULL
)";

fn err(what: &str, e: rusqlite::Error) -> StoreError {
    StoreError::Database(format!("{what}: {e}"))
}

/// Applies the migrations of `list` that the database has not recorded, each in its own
/// transaction; returns how many were applied. A failing migration is rolled back and stops the
/// run with its name and SQLite's error.
pub(crate) fn apply(conn: &mut Connection, list: &[Migration]) -> Result<usize, StoreError> {
    conn.execute_batch(CREATE_LEDGER)
        .map_err(|e| err("creating the schema_migrations table", e))?;
    let newest_known = list.iter().map(|m| m.version).max().unwrap_or(0);
    let newest_applied: Option<i64> = conn
        .query_row("SELECT MAX(version) FROM schema_migrations", [], |r| {
            r.get(0)
        })
        .map_err(|e| err("reading schema_migrations", e))?;
    if let Some(v) = newest_applied.filter(|v| *v > newest_known) {
        return Err(StoreError::Database(format!(
            "the database is at schema version {v}, newer than this build of Portico knows ({newest_known}); \
             run a Portico release at least as new as the one that migrated it"
        )));
    }
    let mut applied = 0;
    for m in list {
        // Immediate: a second process migrating the same file waits, then sees the ledger.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| err(&format!("starting migration {}", m.label()), e))?;
        let done = tx
            .query_row(
                "SELECT 1 FROM schema_migrations WHERE version = ?1",
                [m.version],
                |_| Ok(()),
            )
            .optional()
            .map_err(|e| err("reading schema_migrations", e))?
            .is_some();
        if done {
            continue;
        }
        tx.execute_batch(m.sql).map_err(|e| {
            StoreError::Database(format!(
                "migration {} failed: {e}; nothing of it was applied, the database stays at the previous version",
                m.label()
            ))
        })?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
            params![
                m.version,
                m.name,
                fhir::datetime::now_millis().timestamp_millis()
            ],
        )
        .map_err(|e| err(&format!("recording migration {}", m.label()), e))?;
        tx.commit()
            .map_err(|e| err(&format!("committing migration {}", m.label()), e))?;
        tracing::info!(migration = %m.label(), "applied schema migration");
        applied += 1;
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn versions(conn: &Connection) -> Vec<(i64, String)> {
        let mut stmt = conn
            .prepare("SELECT version, name FROM schema_migrations ORDER BY version")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    #[test]
    fn migrations_apply_once_in_order() {
        let mut conn = Connection::open_in_memory().unwrap();
        assert_eq!(apply(&mut conn, MIGRATIONS).unwrap(), MIGRATIONS.len());
        assert_eq!(apply(&mut conn, MIGRATIONS).unwrap(), 0);
        let v = versions(&conn);
        assert_eq!(
            v,
            vec![
                (1, "resources".to_string()),
                (2, "api_clients".to_string()),
                (3, "planner_statistics".to_string()),
                (4, "string_exact_index".to_string()),
                (5, "server_state".to_string()),
                (6, "accounts".to_string()),
                (7, "audit_log".to_string()),
                (8, "access".to_string())
            ]
        );
    }

    #[test]
    fn every_index_has_planner_statistics() {
        let mut conn = Connection::open_in_memory().unwrap();
        apply(&mut conn, MIGRATIONS).unwrap();
        let names = |sql: &str| -> Vec<String> {
            let mut stmt = conn.prepare(sql).unwrap();
            stmt.query_map([], |r| r.get(0))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap()
        };
        // A WITHOUT ROWID table's primary key is described under the table's own name.
        // `server_state`, the audit trail and the account tables are only ever read by a key, so
        // they need no statistics.
        let unsearched = format!(
            "'schema_migrations', 'api_clients', 'server_keys', 'server_state', 'audit_log', \
             {ACCOUNT_TABLES}"
        );
        let indexes = names(&format!(
            "SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name NOT IN ({unsearched}) \
             UNION SELECT name FROM sqlite_schema WHERE type = 'table' AND sql LIKE '%WITHOUT ROWID%' \
             AND name NOT IN ({unsearched}) ORDER BY name"
        ));
        let with_stats = names("SELECT idx FROM sqlite_stat1 WHERE idx IS NOT NULL ORDER BY idx");
        assert_eq!(
            indexes, with_stats,
            "every search index needs planner statistics (see 0003 and 0004)"
        );
    }

    /// The tables of 0006_accounts.
    const ACCOUNT_TABLES: &str = "'accounts', 'recovery_codes', 'webauthn_credentials', \
        'sessions', 'rate_limits', 'invitations', 'smart_apps', 'oauth_codes', 'oauth_grants', \
        'refresh_tokens'";

    #[test]
    fn the_account_tables_exist_and_lookups_use_their_keys() {
        let mut conn = Connection::open_in_memory().unwrap();
        apply(&mut conn, MIGRATIONS).unwrap();
        let tables: i64 = conn
            .query_row(
                &format!(
                    "SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table' AND name IN ({ACCOUNT_TABLES})"
                ),
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 10);
        let plan = |sql: &str| -> String {
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let rows: Vec<String> = stmt
                .query_map([], |r| r.get(3))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            rows.join("\n")
        };
        let by_nhs =
            plan(&store::accounts::sql::ACCOUNT_BY_NHS_NUMBER.replace("$1", "'9990000018'"));
        assert!(by_nhs.contains("accounts_patient_nhs_number"), "{by_nhs}");
        let end_all = plan(
            &store::accounts::sql::END_ALL_SESSIONS
                .replace("$1", "'a'")
                .replace("$2", "1")
                .replace("$3", "NULL"),
        );
        assert!(end_all.contains("sessions_account"), "{end_all}");
    }

    /// The steps SQLite plans for a search, as `EXPLAIN QUERY PLAN` describes them.
    fn plan(conn: &Connection, resource_type: &str, pairs: &[(&str, &str)]) -> String {
        let params: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let q = store::query::parse(resource_type, &params, &Default::default()).unwrap();
        let sql = store::sql::search_page(&store::sql::SqliteDialect, &q);
        let mut stmt = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {}", sql.text))
            .unwrap();
        let binds = sql.params.iter().map(crate::conn::Bind);
        let rows: Vec<String> = stmt
            .query_map(rusqlite::params_from_iter(binds), |r| r.get(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        rows.join("\n")
    }

    #[test]
    fn exact_string_searches_use_their_own_index() {
        let mut conn = Connection::open_in_memory().unwrap();
        apply(&mut conn, MIGRATIONS).unwrap();
        let exact = plan(&conn, "Patient", &[("family:exact", "Smith")]);
        assert!(
            exact.contains(
                "USING COVERING INDEX idx_string_exact (res_type=? AND param=? AND value_exact=?)"
            ),
            "{exact}"
        );
        let prefix = plan(&conn, "Patient", &[("family", "smi")]);
        assert!(prefix.contains("idx_string_lookup"), "{prefix}");
    }

    #[test]
    fn a_failing_migration_is_named_rolled_back_and_stops_the_run() {
        let mut conn = Connection::open_in_memory().unwrap();
        let list = [
            Migration {
                version: 1,
                name: "good",
                sql: "CREATE TABLE a (x INTEGER);",
            },
            Migration {
                version: 2,
                name: "bad",
                sql: "CREATE TABLE b (x INTEGER); CREATE TABLE a (y);",
            },
            Migration {
                version: 3,
                name: "later",
                sql: "CREATE TABLE c (x INTEGER);",
            },
        ];
        let e = apply(&mut conn, &list).unwrap_err().to_string();
        assert!(e.contains("migration 0002_bad failed"), "{e}");
        assert!(e.contains("already exists"), "{e}");
        assert_eq!(versions(&conn), vec![(1, "good".to_string())]);
        let b_exists: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name IN ('b', 'c')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(
            b_exists, 0,
            "the failed migration's first statement must be rolled back"
        );
    }

    #[test]
    fn a_database_newer_than_the_build_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        apply(&mut conn, MIGRATIONS).unwrap();
        conn.execute("INSERT INTO schema_migrations VALUES (99, 'future', 0)", [])
            .unwrap();
        let e = apply(&mut conn, MIGRATIONS).unwrap_err().to_string();
        assert!(e.contains("schema version 99"), "{e}");
    }
}
