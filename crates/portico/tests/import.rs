//! `portico seed` and `portico import` as a user runs them, including the promise that matters
//! most: an import killed with `kill -9` at any moment and run again ends with exactly the
//! database an uninterrupted import makes. On SQLite always, on PostgreSQL too when
//! `PORTICO_TEST_POSTGRES_URL` is set.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use common::{
    fresh_postgres, import_json, open, portico, postgres_admin_url, run, sqlite_url, text,
};
use rand::{Rng, SeedableRng};
use serde_json::Value;
use store::{HistoryQuery, HistoryScope, Store};

/// How many times the import is killed before it may finish.
const ROUNDS: usize = 8;

/// `portico seed` of `patients` patients into `dir/data`, always from the same seed.
fn seed(dir: &Path, patients: &str) -> std::path::PathBuf {
    common::seed(dir, patients, "11", "data")
}

/// Every version of every resource: (type, id, version, deleted, content without lastUpdated).
async fn snapshot(store: &dyn Store) -> BTreeSet<(String, String, i64, bool, String)> {
    let mut out = BTreeSet::new();
    let mut offset = 0;
    loop {
        let page = store
            .history(&HistoryQuery {
                scope: HistoryScope::System,
                since: None,
                count: 1000,
                offset,
                access: None,
            })
            .await
            .expect("history");
        if page.versions.is_empty() {
            break;
        }
        offset += page.versions.len();
        for v in page.versions {
            let content = if v.deleted {
                String::new()
            } else {
                let mut value = v.parse().expect("stored JSON");
                if let Some(meta) = value.get_mut("meta").and_then(Value::as_object_mut) {
                    meta.remove("lastUpdated");
                }
                value.to_string()
            };
            out.insert((v.resource_type, v.id, v.version_id, v.deleted, content));
        }
    }
    out
}

#[test]
fn seed_writes_the_same_files_for_the_same_seed() {
    let a = tempfile::tempdir().expect("temp dir");
    let b = tempfile::tempdir().expect("temp dir");
    let (da, db) = (seed(a.path(), "3"), seed(b.path(), "3"));
    let mut names: Vec<String> = std::fs::read_dir(&da)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.contains(&"Patient.ndjson".to_string()), "{names:?}");
    for name in names {
        let x = std::fs::read(da.join(&name)).expect("read");
        let y = std::fs::read(db.join(&name)).expect("read");
        assert!(x == y, "{name} differs between two runs with the same seed");
    }
}

#[test]
fn import_reports_bad_lines_and_prints_one_json_summary() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("in");
    std::fs::create_dir(&data).expect("mkdir");
    std::fs::write(
        data.join("Patient.ndjson"),
        concat!(
            "{\"resourceType\":\"Patient\",\"id\":\"a\"}\n",
            "{\"resourceType\":\"Patient\",\"id\":\"b\",\"gender\":\"robot\"}\n",
            "not json\n",
            "{\"resourceType\":\"Patient\",\"id\":\"c\"}\n",
        ),
    )
    .expect("write");
    let db_url = sqlite_url(dir.path(), "p.db");
    let out = run(portico(dir.path())
        .env("PORTICO_DATABASE_URL", &db_url)
        .args(["import", "in", "--json", "--create"]));
    // Rejected lines do not make the import fail.
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary: Value = serde_json::from_str(text(&out.stdout).trim()).expect("one JSON object");
    assert_eq!(summary["created"], 2, "{summary}");
    assert_eq!(summary["rejected"], 2, "{summary}");
    assert_eq!(summary["by_type"]["Patient"]["rejected"], 1, "{summary}");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("in/Patient.ndjson:2: Patient.gender: "),
        "{stderr}"
    );
    assert!(
        stderr.contains("in/Patient.ndjson:3: not valid JSON"),
        "{stderr}"
    );

    // The same again: already imported, nothing written.
    let out = run(portico(dir.path())
        .env("PORTICO_DATABASE_URL", &db_url)
        .args(["import", "in"]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    assert!(table.contains("1 already imported"), "{table}");
}

#[test]
fn import_refuses_a_missing_path_and_a_missing_database() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db_url = sqlite_url(dir.path(), "p.db");
    let out = run(portico(dir.path())
        .env("PORTICO_DATABASE_URL", &db_url)
        .args(["import", "nowhere", "--create"]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(lines, ["error: nowhere does not exist"], "{err}");

    std::fs::write(dir.path().join("x.ndjson"), "{}\n").expect("write");
    let out = run(portico(dir.path())
        .env("PORTICO_DATABASE_URL", &db_url)
        .args(["import", "x.ndjson"]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("run `portico migrate` first, or pass --create"));
}

/// Adds a file that writes some seeded patients twice, differently from their seeded form, so
/// that the same resources are written again (new versions) while the import runs. Answers how
/// many patients it changes.
fn add_updates(data: &Path) -> u64 {
    let patients = std::fs::read_to_string(data.join("Patient.ndjson")).expect("Patient.ndjson");
    let first: Vec<Value> = patients
        .lines()
        .take(10)
        .map(|l| serde_json::from_str(l).expect("patient JSON"))
        .collect();
    let mut lines = String::new();
    for round in 0..2 {
        for p in &first {
            let mut p = p.clone();
            p["active"] = Value::Bool(false);
            if round == 1 {
                p["multipleBirthInteger"] = Value::from(2);
            }
            lines.push_str(&format!("{p}\n"));
        }
    }
    std::fs::write(data.join("Patient-updates.ndjson"), lines).expect("write updates");
    first.len() as u64
}

/// Imports `data` into `killed_url` while killing the process with SIGKILL at random moments,
/// then once more to the end, and checks the database equals `reference_url`'s (imported
/// without interruption), version ids included.
async fn kill_and_resume(dir: &Path, data: &Path, reference_url: &str, killed_url: &str) {
    // The updates file sorts before Patient.ndjson: each of those patients gets three versions.
    let changed = add_updates(data);
    let started = Instant::now();
    let reference = import_json(dir, reference_url, data, &[]);
    let uninterrupted = started.elapsed();
    let created = reference["created"].as_u64().unwrap_or(0);
    let updated = reference["updated"].as_u64().unwrap_or(0);
    assert!(created > 2000, "too little data to interrupt: {reference}");
    assert_eq!(updated, 2 * changed, "{reference}");
    assert_eq!(reference["rejected"], 0, "{reference}");
    let total = created + updated;

    let seed: u64 = rand::random();
    println!("kill moments drawn with seed {seed}; an uninterrupted import took {uninterrupted:?}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut interrupted = 0;
    for round in 0..ROUNDS {
        let mut child = portico(dir)
            .env("PORTICO_DATABASE_URL", killed_url)
            .arg("import")
            .arg(data)
            .arg("--create")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn import");
        let fraction: f64 = rng.random_range(0.03..0.3);
        std::thread::sleep(uninterrupted.mul_f64(fraction));
        let still_running = child.try_wait().expect("try_wait").is_none();
        let killed = Command::new("kill")
            .args(["-KILL", &child.id().to_string()])
            .status()
            .expect("kill");
        let status = child.wait().expect("wait");
        if still_running && killed.success() && !status.success() {
            interrupted += 1;
        }
        println!("round {round}: killed after {fraction:.2} of the uninterrupted time ({status})");
    }
    println!("{interrupted} of {ROUNDS} runs were killed mid-import");
    let last = import_json(dir, killed_url, data, &[]);
    assert_eq!(last["rejected"], 0, "{last}");

    let (a, b) = (open(reference_url).await, open(killed_url).await);
    let (sa, sb) = (snapshot(a.as_ref()).await, snapshot(b.as_ref()).await);
    assert_eq!(
        sa.len() as u64,
        total,
        "a version per created or updated resource"
    );
    if sa != sb {
        let only_a: Vec<_> = sa.difference(&sb).take(3).collect();
        let only_b: Vec<_> = sb.difference(&sa).take(3).collect();
        panic!(
            "the resumed import differs: {} versions vs {}; only uninterrupted: {only_a:?}; only resumed: {only_b:?}",
            sa.len(),
            sb.len()
        );
    }

    // And a rerun of a finished import writes nothing.
    let again = import_json(dir, killed_url, data, &[]);
    assert_eq!(again["files_already_imported"], again["files"], "{again}");
    // Everything again: the patients written three times are updated three times more (their
    // files say so), everything else is unchanged.
    let forced = import_json(dir, killed_url, data, &["--again"]);
    assert_eq!(
        forced["unchanged"].as_u64(),
        Some(created - changed),
        "{forced}"
    );
    assert_eq!(forced["updated"].as_u64(), Some(3 * changed), "{forced}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_import_killed_at_random_moments_ends_as_if_never_interrupted_on_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = seed(dir.path(), "12");
    let reference = sqlite_url(dir.path(), "reference.db");
    let killed = sqlite_url(dir.path(), "killed.db");
    kill_and_resume(dir.path(), &data, &reference, &killed).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_import_killed_at_random_moments_ends_as_if_never_interrupted_on_postgres() {
    let Some(admin) = postgres_admin_url() else {
        return;
    };
    let (reference, reference_url) = fresh_postgres(&admin).await;
    let (killed, killed_url) = fresh_postgres(&admin).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let data = seed(dir.path(), "12");
    kill_and_resume(dir.path(), &data, &reference_url, &killed_url).await;
    // Dropping the stores drops their test databases, once the imports are over.
    drop((reference, killed));
}
