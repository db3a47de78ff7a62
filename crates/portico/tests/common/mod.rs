//! What the `portico` binary tests share: running the binary with a clean environment, SQLite
//! files in temporary directories, fresh PostgreSQL databases, seeding, importing and opening
//! the databases the binary wrote. Each test file uses some of it, hence the `dead_code` allows.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use serde_json::Value;
use store::Store;

const BIN: &str = env!("CARGO_BIN_EXE_portico");

/// A `portico` command with none of the caller's PORTICO_* settings, run in `dir`.
pub fn portico(dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    for (name, _) in std::env::vars() {
        if name.starts_with("PORTICO_") || name == "RUST_LOG" {
            cmd.env_remove(&name);
        }
    }
    cmd.current_dir(dir).stdin(Stdio::null());
    cmd
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run portico")
}

#[allow(dead_code)]
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The URL of the SQLite file `file` in `dir`.
pub fn sqlite_url(dir: &Path, file: &str) -> String {
    format!("sqlite://{}", dir.join(file).display())
}

/// `portico seed --patients PATIENTS --seed SEED --out OUT` in `dir`, for a fixed day; the
/// folder it wrote.
#[allow(dead_code)]
pub fn seed(dir: &Path, patients: &str, seed: &str, out: &str) -> PathBuf {
    let done = run(portico(dir).args([
        "seed",
        "--patients",
        patients,
        "--out",
        out,
        "--seed",
        seed,
        "--today",
        "2026-06-01",
    ]));
    assert!(done.status.success(), "seed: {}", text(&done.stderr));
    dir.join(out)
}

/// `portico import PATH --json --create EXTRA…` into `db_url`; the summary.
#[allow(dead_code)]
pub fn import_json(dir: &Path, db_url: &str, path: &Path, extra: &[&str]) -> Value {
    let out = run(portico(dir)
        .env("PORTICO_DATABASE_URL", db_url)
        .arg("import")
        .arg(path)
        .args(["--json", "--create"])
        .args(extra));
    assert!(
        out.status.success(),
        "import failed ({}): {}",
        out.status,
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("stdout is not one JSON object ({e}): {stdout:?}"))
}

/// The store behind `url`, SQLite or PostgreSQL, as the binary left it.
#[allow(dead_code)]
pub async fn open(url: &str) -> Arc<dyn Store> {
    if url.starts_with("sqlite:") {
        Arc::new(store_sqlite::SqliteStore::open(url, false).expect("open SQLite"))
    } else {
        Arc::new(
            store_postgres::PgStore::connect(url)
                .await
                .expect("connect PostgreSQL"),
        )
    }
}

/// `PORTICO_TEST_POSTGRES_URL` when it is set; otherwise says the test did not run on
/// PostgreSQL.
pub fn postgres_admin_url() -> Option<String> {
    let admin = std::env::var("PORTICO_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty());
    if admin.is_none() {
        println!("did not run on PostgreSQL: PORTICO_TEST_POSTGRES_URL is not set");
    }
    admin
}

/// A fresh test database on the server `admin` names, and its URL. Dropping the store drops
/// the database, so keep it until the binary is done with it.
pub async fn fresh_postgres(admin: &str) -> (store_postgres::PgStore, String) {
    let fresh = store_postgres::PgStore::connect_fresh_for_tests(admin)
        .await
        .unwrap_or_else(|e| panic!("could not make a fresh test database: {e}"));
    let url = url_for_database(admin, fresh.database());
    (fresh, url)
}

/// The admin URL with its database replaced by `database`.
fn url_for_database(admin: &str, database: &str) -> String {
    let (base, query) = match admin.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (admin, String::new()),
    };
    let after_scheme = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_part = match base[after_scheme..].find('/') {
        Some(slash) => &base[..after_scheme + slash],
        None => base,
    };
    format!("{host_part}/{database}{query}")
}
