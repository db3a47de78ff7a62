//! `portico audit verify`: an intact trail verifies (exit 0, with its last hash); a record
//! changed, removed or reordered behind the store's back is found (exit 3, naming the record).
//! On SQLite always, on PostgreSQL too when `PORTICO_TEST_POSTGRES_URL` is set.

mod common;

use std::path::Path;

use chrono::Utc;
use common::{fresh_postgres, open, portico, postgres_admin_url, run, sqlite_url, text};
use serde_json::Value;
use store::audit::{AgentKind, AuditAction, AuditContext, AuditOutcome};
use store::Store;

/// Appends `n` read records to the trail.
async fn fill(store: &dyn Store, n: usize) {
    let ctx = AuditContext {
        agent_kind: AgentKind::Staff,
        agent: "account-1".into(),
        organisation: Some("RX1".into()),
        on_behalf_of: None,
        purpose: "treatment".into(),
        reason: None,
        source: None,
    };
    let records = (0..n)
        .map(|i| {
            ctx.record(
                Utc::now(),
                AuditAction::Read,
                Some(format!("Observation/o{i}")),
                Some("pat-0001".into()),
                AuditOutcome::Success,
                Some(200),
            )
        })
        .collect();
    store.append_audit(records).await.expect("append");
}

/// `portico audit verify --json` against `url`: exit code and the JSON it printed.
fn verify(dir: &Path, url: &str) -> (i32, Value) {
    let out = run(portico(dir)
        .env("PORTICO_DATABASE_URL", url)
        .args(["audit", "verify", "--json"]));
    let stdout = text(&out.stdout);
    let json = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "not one JSON object ({e}): {stdout:?} {}",
            text(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), json)
}

fn migrate(dir: &Path, url: &str) {
    let out = run(portico(dir).env("PORTICO_DATABASE_URL", url).arg("migrate"));
    assert!(out.status.success(), "migrate: {}", text(&out.stderr));
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_finds_changed_removed_and_reordered_records_on_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = sqlite_url(dir.path(), "audit.db");
    migrate(dir.path(), &url);
    {
        let store = open(&url).await;
        fill(&*store, 50).await;
    }
    let (code, json) = verify(dir.path(), &url);
    assert_eq!(code, 0, "an intact trail verifies: {json}");
    assert_eq!(json["checked"], 50);
    assert_eq!(json["last_seq"], 50);
    assert_eq!(json["last_hash"].as_str().map(str::len), Some(64));
    assert!(json["fault"].is_null());

    let db = dir.path().join("audit.db");
    let sql = |statement: &str| {
        let conn = rusqlite::Connection::open(&db).expect("open");
        conn.execute_batch(statement).expect("tamper");
    };
    // Changed: another agent written into record 20.
    sql("UPDATE audit_log SET detail = replace(detail, 'account-1', 'account-2') WHERE seq = 20");
    let (code, json) = verify(dir.path(), &url);
    assert_eq!(code, 3, "{json}");
    assert_eq!(json["checked"], 19);
    assert!(
        json["fault"].as_str().unwrap_or("").contains("record 20"),
        "{json}"
    );
    sql("UPDATE audit_log SET detail = replace(detail, 'account-2', 'account-1') WHERE seq = 20");
    assert_eq!(verify(dir.path(), &url).0, 0, "restored, it verifies again");

    // Removed: record 30 gone.
    sql("CREATE TABLE kept AS SELECT * FROM audit_log WHERE seq = 30; DELETE FROM audit_log WHERE seq = 30");
    let (code, json) = verify(dir.path(), &url);
    assert_eq!(code, 3);
    assert!(
        json["fault"].as_str().unwrap_or("").contains("record 31"),
        "{json}"
    );
    sql("INSERT INTO audit_log SELECT * FROM kept; DROP TABLE kept");
    assert_eq!(verify(dir.path(), &url).0, 0);

    // Reordered: records 40 and 41 swap places (their content, hashes kept with the content).
    sql("UPDATE audit_log SET seq = -40 WHERE seq = 40; UPDATE audit_log SET seq = 40 WHERE seq = 41; \
         UPDATE audit_log SET seq = 41 WHERE seq = -40");
    let (code, json) = verify(dir.path(), &url);
    assert_eq!(code, 3);
    assert!(
        json["fault"].as_str().unwrap_or("").contains("record 40"),
        "{json}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_finds_a_changed_record_on_postgres() {
    let Some(admin) = postgres_admin_url() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let (fresh, url) = fresh_postgres(&admin).await;
    fill(&fresh, 40).await;
    let (code, json) = verify(dir.path(), &url);
    assert_eq!(code, 0, "an intact trail verifies: {json}");
    assert_eq!(
        json["checked"], 40,
        "records appended but not yet chained are chained first"
    );

    let pool = sqlx::PgPool::connect(&url).await.expect("connect");
    sqlx::query("UPDATE audit_log SET detail = replace(detail, 'o12\"', 'o99\"') WHERE seq = 13")
        .execute(&pool)
        .await
        .expect("tamper");
    pool.close().await;
    let (code, json) = verify(dir.path(), &url);
    assert_eq!(code, 3, "{json}");
    assert!(
        json["fault"].as_str().unwrap_or("").contains("record 13"),
        "{json}"
    );
    drop(fresh);
}
