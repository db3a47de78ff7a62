//! The SQLite backend against the store contract, and what only this backend has: opening
//! files, migrations, durability across reopen and `kill -9`, group commit.
//!
//! Every test uses a fresh database file in its own temporary directory.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use store::contract::{create_op, nhs_number, patient, update_op};
use store::{
    ApiClient, HistoryQuery, HistoryScope, ResourceVersion, SearchQuery, Store, StoreError,
    WriteOutcome,
};
use store_sqlite::SqliteStore;
use tempfile::TempDir;

fn temp_dir() -> TempDir {
    match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("cannot make a temporary directory: {e}"),
    }
}

fn url_of(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

fn open(path: &Path, create: bool) -> SqliteStore {
    match SqliteStore::open(&url_of(path), create) {
        Ok(s) => s,
        Err(e) => panic!("opening {} failed: {e}", path.display()),
    }
}

async fn fresh_store() -> Option<Arc<dyn Store>> {
    let dir = temp_dir();
    let store = open(&dir.path().join("portico.db"), true);
    Some(Arc::new(store.keep_until_closed(dir)))
}

store::contract_tests!(fresh_store);

fn open_error(url: &str, create: bool) -> String {
    match SqliteStore::open(url, create) {
        Ok(_) => panic!("opening {url} should fail"),
        Err(e) => e.to_string(),
    }
}

async fn create_patient(store: &dyn Store, serial: u32) -> ResourceVersion {
    match store
        .write(create_op(patient("Smith", "Ann", &nhs_number(serial))))
        .await
    {
        Ok(WriteOutcome::Created(v)) => v,
        other => panic!("creating a patient should answer Created, got {other:?}"),
    }
}

fn applied_migrations(path: &Path) -> Vec<(i64, String)> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT version, name FROM schema_migrations ORDER BY version")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

#[test]
fn url_forms_name_relative_and_absolute_files() {
    use std::path::PathBuf;
    let p = |u: &str| store_sqlite::parse_path(u).unwrap();
    assert_eq!(p("sqlite://portico.db"), PathBuf::from("portico.db"));
    assert_eq!(p("sqlite:portico.db"), PathBuf::from("portico.db"));
    assert_eq!(p("sqlite://./data/x.db"), PathBuf::from("./data/x.db"));
    assert_eq!(
        p("sqlite:///var/lib/portico/x.db"),
        PathBuf::from("/var/lib/portico/x.db")
    );
    for bad in [
        "postgres://localhost/db",
        "sqlite://",
        "sqlite:",
        "sqlite::memory:",
        "sqlite://x.db?mode=rwc",
    ] {
        let e = store_sqlite::parse_path(bad).unwrap_err().to_string();
        assert!(e.contains("sqlite://path/to/portico.db"), "{bad}: {e}");
    }
}

#[test]
fn a_missing_file_is_refused_without_create_and_not_created() {
    let dir = temp_dir();
    let path = dir.path().join("x.db");
    let e = open_error(&url_of(&path), false);
    assert_eq!(
        e,
        format!(
            "database error: database file {} does not exist; run portico migrate or pass --create",
            path.display()
        )
    );
    assert!(!path.exists(), "a refused open must not create the file");
}

#[test]
fn a_missing_directory_is_named() {
    let dir = temp_dir();
    let path = dir.path().join("no-such-dir").join("x.db");
    let e = open_error(&url_of(&path), true);
    assert!(
        e.contains(&format!(
            "directory {} ",
            dir.path().join("no-such-dir").display()
        )),
        "{e}"
    );
    assert!(e.contains("does not exist; create it"), "{e}");
}

#[test]
fn a_directory_is_not_a_database_file() {
    let dir = temp_dir();
    let e = open_error(&url_of(dir.path()), true);
    assert!(e.contains("is a directory, not a database file"), "{e}");
}

#[test]
fn a_file_that_is_not_sqlite_is_refused_with_its_path_and_the_fix() {
    let dir = temp_dir();
    let path = dir.path().join("notes.db");
    std::fs::write(
        &path,
        b"this is a text file, not a database, and it is long enough to have a header....",
    )
    .unwrap();
    let e = open_error(&url_of(&path), false);
    assert!(e.contains(&path.display().to_string()), "{e}");
    assert!(e.contains("is not a SQLite database or is damaged"), "{e}");
    assert!(e.contains("restore the file from a backup"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopening_keeps_every_version_and_applies_each_migration_once() {
    let dir = temp_dir();
    let path = dir.path().join("portico.db");
    let (id, first) = {
        let store = open(&path, true);
        assert_eq!(store.backend(), "sqlite");
        store.ping().await.unwrap();
        let v1 = create_patient(&store, 1).await;
        let mut p = patient("Smith", "Ann", &nhs_number(1));
        p["gender"] = json!("female");
        match store.write(update_op(&v1.id, p, Some(1))).await {
            Ok(WriteOutcome::Updated { changed: true, .. }) => {}
            other => panic!("update should write version 2, got {other:?}"),
        }
        (v1.id.clone(), v1)
    };
    let migrations = applied_migrations(&path);
    assert_eq!(migrations.len(), store_sqlite::migrate::MIGRATIONS.len());
    // Without create: the file exists now.
    let store = open(&path, false);
    let current = store.read("Patient", &id).await.unwrap().unwrap();
    assert_eq!(current.version_id, 2);
    assert!(current.json.contains("\"gender\":\"female\""));
    assert_eq!(store.vread("Patient", &id, 1).await.unwrap(), Some(first));
    drop(store);
    assert_eq!(
        applied_migrations(&path),
        migrations,
        "reopening must not re-apply migrations"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_commit_under_64_concurrent_writers_keeps_every_acknowledged_write() {
    let dir = temp_dir();
    let path = dir.path().join("portico.db");
    let store = Arc::new(open(&path, true));
    let mut tasks = Vec::new();
    for w in 0..64u32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..10u32 {
                ids.push(create_patient(store.as_ref(), w * 100 + i).await.id);
            }
            ids
        }));
    }
    let mut acknowledged = Vec::new();
    for t in tasks {
        acknowledged.extend(t.await.unwrap());
    }
    assert_eq!(acknowledged.len(), 640);
    assert_eq!(
        acknowledged.iter().collect::<HashSet<_>>().len(),
        640,
        "ids are unique"
    );
    drop(Arc::try_unwrap(store).unwrap_or_else(|_| panic!("store still shared")));

    let store = open(&path, false);
    let mut missing = 0;
    for id in &acknowledged {
        if store.read("Patient", id).await.unwrap().is_none() {
            missing += 1;
        }
    }
    assert_eq!(
        missing, 0,
        "every acknowledged write is present after reopen"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_request_among_concurrent_ones_is_rolled_back_alone() {
    let dir = temp_dir();
    let store = Arc::new(open(&dir.path().join("portico.db"), true));
    let target = create_patient(store.as_ref(), 7).await;
    let mut tasks = Vec::new();
    for i in 0..64u32 {
        let store = store.clone();
        let target_id = target.id.clone();
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                // A transaction whose second entry fails: its first entry must vanish too.
                let ops = vec![
                    create_op(patient("Doomed", "Dan", &nhs_number(1000 + i))),
                    update_op(
                        &target_id,
                        patient("Smith", "Changed", &nhs_number(7)),
                        Some(99),
                    ),
                ];
                Err(store.transaction(ops).await)
            } else {
                Ok(create_patient(store.as_ref(), 2000 + i).await.id)
            }
        }));
    }
    let mut kept = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(id) => kept.push(id),
            Err(r) => match r {
                Err(e) => assert!(
                    matches!(
                        e.root(),
                        StoreError::VersionConflict {
                            expected: 99,
                            current: 1,
                            ..
                        }
                    ),
                    "a stale If-Match is a version conflict, got {e:?}"
                ),
                Ok(v) => panic!("the transaction with a stale If-Match should fail, got {v:?}"),
            },
        }
    }
    assert_eq!(kept.len(), 32);
    for id in &kept {
        assert!(
            store.read("Patient", id).await.unwrap().is_some(),
            "a good request in the batch is kept"
        );
    }
    let all = store.search(&SearchQuery::all("Patient")).await.unwrap();
    assert_eq!(
        all.matches.len(),
        33,
        "the failed transactions left nothing behind"
    );
    assert!(all.matches.iter().all(|m| !m.json.contains("Doomed")));
    assert_eq!(
        store
            .read("Patient", &target.id)
            .await
            .unwrap()
            .unwrap()
            .version_id,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_updated_never_goes_back_even_when_the_clock_does() {
    let dir = temp_dir();
    let path = dir.path().join("portico.db");
    let id = {
        let store = open(&path, true);
        create_patient(&store, 3).await.id
    };
    // As if the version had been written by a clock a day ahead of ours.
    let ahead = fhir::datetime::now_millis().timestamp_millis() + 86_400_000;
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute("UPDATE resources SET last_updated = ?1", [ahead])
            .unwrap();
    }
    let store = open(&path, false);
    let v2 = match store
        .write(update_op(
            &id,
            patient("Smith", "Anne", &nhs_number(3)),
            None,
        ))
        .await
    {
        Ok(WriteOutcome::Updated { version, .. }) => version,
        other => panic!("update should succeed, got {other:?}"),
    };
    assert!(
        v2.last_updated.timestamp_millis() >= ahead,
        "version 2 is not older than version 1"
    );
    assert!(v2
        .json
        .contains(&fhir::datetime::format_instant(v2.last_updated)));
    let page = store
        .history(&HistoryQuery {
            scope: HistoryScope::Instance {
                resource_type: "Patient".into(),
                id: id.clone(),
            },
            since: None,
            count: 10,
            offset: 0,
            access: None,
        })
        .await
        .unwrap();
    let versions: Vec<i64> = page.versions.iter().map(|v| v.version_id).collect();
    assert_eq!(versions, vec![2, 1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_signing_key_is_made_once_and_kept_across_reopen() {
    let dir = temp_dir();
    let path = dir.path().join("portico.db");
    let key = {
        let store = Arc::new(open(&path, true));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let store = store.clone();
            tasks.push(tokio::spawn(
                async move { store.signing_key().await.unwrap() },
            ));
        }
        let mut keys = HashSet::new();
        for t in tasks {
            keys.insert(t.await.unwrap());
        }
        assert_eq!(keys.len(), 1, "concurrent first calls agree on one key");
        let key = keys.into_iter().next().unwrap();
        assert_eq!(key.len(), 32);
        assert!(key.iter().any(|b| *b != 0));
        key
    };
    let store = open(&path, false);
    assert_eq!(store.signing_key().await.unwrap(), key);
    let other_dir = temp_dir();
    let other = open(&other_dir.path().join("portico.db"), true);
    assert_ne!(
        other.signing_key().await.unwrap(),
        key,
        "each database has its own key"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_clients_round_trip_and_a_duplicate_id_is_a_conflict() {
    let dir = temp_dir();
    let store = open(&dir.path().join("portico.db"), true);
    let client = ApiClient {
        client_id: "lab-feed".into(),
        name: "Pathology feed".into(),
        secret_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        scopes: "system/Observation.write system/Patient.read".into(),
        created_at: fhir::datetime::now_millis(),
    };
    store.insert_api_client(&client).await.unwrap();
    assert_eq!(
        store.api_client("lab-feed").await.unwrap(),
        Some(client.clone())
    );
    assert_eq!(store.api_client("other").await.unwrap(), None);
    let e = store.insert_api_client(&client).await.unwrap_err();
    assert!(matches!(e, StoreError::Conflict(_)), "{e:?}");
}

/// The environment variable that turns [`kill9_child_writer`] into the child process of
/// [`acknowledged_writes_survive_kill_9`].
const KILL9_DB: &str = "PORTICO_TEST_KILL9_DB";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9() {
    let dir = temp_dir();
    let path = dir.path().join("portico.db");
    drop(open(&path, true));
    let exe = std::env::current_exe().unwrap();
    let mut child = std::process::Command::new(exe)
        .args([
            "--ignored",
            "--exact",
            "kill9_child_writer",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(KILL9_DB, &path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut acknowledged = Vec::new();
    let started = Instant::now();
    while acknowledged.len() < 300 && started.elapsed() < Duration::from_secs(60) {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(id) = line.strip_prefix("ACK ") {
                    acknowledged.push(id.to_string());
                }
            }
            _ => break,
        }
    }
    child.kill().unwrap(); // SIGKILL
                           // Acknowledgements printed before the kill are still in the pipe.
    for line in lines.map_while(|l| l.ok()) {
        if let Some(id) = line.strip_prefix("ACK ") {
            acknowledged.push(id.to_string());
        }
    }
    let _ = child.wait();
    assert!(
        acknowledged.len() >= 300,
        "the child acknowledged only {} writes",
        acknowledged.len()
    );

    let store = open(&path, false);
    let mut missing = Vec::new();
    for id in &acknowledged {
        if store.read("Patient", id).await.unwrap().is_none() {
            missing.push(id.clone());
        }
    }
    assert!(
        missing.is_empty(),
        "{} acknowledged writes were lost: {missing:?}",
        missing.len()
    );
}

/// Not a test on its own: the child process of [`acknowledged_writes_survive_kill_9`]. It
/// writes from 16 tasks, printing each id once its write is acknowledged, until it is killed
/// (or after 60 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by acknowledged_writes_survive_kill_9 as its child process"]
async fn kill9_child_writer() {
    let Some(path) = std::env::var_os(KILL9_DB) else {
        panic!("{KILL9_DB} is not set: this is the child of acknowledged_writes_survive_kill_9, not a test of its own");
    };
    let store = Arc::new(open(Path::new(&path), false));
    let out = Arc::new(std::sync::Mutex::new(std::io::stdout()));
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut tasks = Vec::new();
    for w in 0..16u32 {
        let (store, out) = (store.clone(), out.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = 0u32;
            while Instant::now() < deadline {
                let v = create_patient(store.as_ref(), w * 100_000 + i).await;
                let mut o = out.lock().unwrap();
                writeln!(o, "ACK {}", v.id).unwrap();
                o.flush().unwrap();
                i += 1;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// Under writes that never pause, with readers searching throughout, the WAL must stay near its
/// limit: PASSIVE checkpoints alone never let it restart, and it once grew to 12 GB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_stays_bounded_under_sustained_writes_and_reads() {
    let dir = temp_dir();
    let path = dir.path().join("portico.db");
    let store = Arc::new(open(&path, true));
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let wal = std::path::PathBuf::from(wal);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (store, stop) = (store.clone(), stop.clone());
        tokio::spawn(async move {
            let q = store::query::parse(
                "Patient",
                &[("family".to_string(), "smi".to_string())],
                &store::query::ParseOptions::default(),
            )
            .unwrap_or_else(|e| panic!("query: {e:?}"));
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                store.search(&q).await.unwrap();
            }
        })
    };
    let mut writers = Vec::new();
    for w in 0..8u32 {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..1500u32 {
                create_patient(store.as_ref(), w * 10_000 + i).await;
            }
        }));
    }
    let mut largest = 0;
    while writers.iter().any(|t| !t.is_finished()) {
        largest = largest.max(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for t in writers {
        t.await.unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    reader.await.unwrap();
    let limit = store_sqlite::WAL_LIMIT_BYTES;
    assert!(
        largest <= limit + limit / 2,
        "the WAL reached {largest} bytes; it must stay near {limit}"
    );
}

/// Two stores on one file, as two processes would be: each has its own writer, and SQLite's
/// write lock orders their transactions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_take_a_code_once_and_count_every_rate_limit_hit() {
    let dir = temp_dir();
    let path = dir.path().join("portico.db");
    let a = Arc::new(open(&path, true));
    let b = Arc::new(open(&path, false));
    store::contract::two_instances_take_once_and_count_every_hit(a, b).await;
}

/// A database whose access index was built by other rules (or, migrated forward, never built)
/// is rebuilt when it is opened; one recorded as current is left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_a_database_rebuilds_an_access_index_built_by_other_rules() {
    use store::contract::{access_index_is_complete, store_data_from_before_the_access_index};
    let dir = temp_dir();
    let path = dir.path().join("portico.db");
    {
        let store = open(&path, true);
        store_data_from_before_the_access_index(&store).await;
        assert!(!access_index_is_complete(&store).await);
    }
    {
        let store = open(&path, false);
        assert!(
            !access_index_is_complete(&store).await,
            "an index recorded as built by the current rules is not rebuilt"
        );
    }
    let recorded = |path: &Path| -> Vec<String> {
        let conn = rusqlite::Connection::open(path).unwrap();
        let mut stmt = conn.prepare("SELECT version FROM access_index").unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    };
    assert_eq!(recorded(&path), [store::access::ACCESS_INDEX_VERSION]);
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute("UPDATE access_index SET version = 'older rules'", [])
        .unwrap();
    let store = open(&path, false);
    assert!(access_index_is_complete(&store).await);
    drop(store);
    assert_eq!(recorded(&path), [store::access::ACCESS_INDEX_VERSION]);
}
