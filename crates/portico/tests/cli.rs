//! The `portico` binary, run as a user runs it: real processes, real SQLite files in temporary
//! directories, real HTTP on loopback ports.

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{fresh_postgres, portico, postgres_admin_url, run, sqlite_url};
use serde_json::Value;

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The one `error: …` line a failed command prints.
fn error_line(out: &Output) -> String {
    let err = stderr(out);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(
        lines.len(),
        1,
        "expected one error line, stderr was:\n{err}"
    );
    lines[0].to_string()
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    listener.local_addr().expect("local addr").port()
}

/// Kills the child when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_healthy(base: &str, child: &mut Child) {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = client.get(format!("{base}/healthz")).send().await {
            if r.status().is_success() {
                return;
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the server exited with {status} before answering /healthz");
        }
        assert!(
            Instant::now() < deadline,
            "no answer from {base}/healthz within 60s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn token(base: &str, client_id: &str, secret: &str) -> String {
    let response = reqwest::Client::new()
        .post(format!("{base}/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", secret),
            ("scope", "system/*.read system/*.write"),
        ])
        .send()
        .await
        .expect("POST /oauth/token");
    assert!(
        response.status().is_success(),
        "token: {}",
        response.status()
    );
    let body: Value = response.json().await.expect("token JSON");
    body["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no access_token in {body}"))
        .to_string()
}

fn create_client_json(dir: &Path, db_url: &str) -> (String, String) {
    let out = run(portico(dir).env("PORTICO_DATABASE_URL", db_url).args([
        "admin",
        "create-client",
        "--name",
        "test",
        "--scopes",
        "system/*.read system/*.write",
        "--json",
    ]));
    assert!(
        out.status.success(),
        "create-client failed: {}",
        stderr(&out)
    );
    let text = stdout(&out);
    let value: Value = serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("stdout is not one JSON object ({e}): {text:?}"));
    let object = value.as_object().expect("a JSON object");
    assert_eq!(object.len(), 2, "{value}");
    let id = value["client_id"]
        .as_str()
        .expect("client_id string")
        .to_string();
    let secret = value["client_secret"]
        .as_str()
        .expect("client_secret string")
        .to_string();
    assert!(!id.is_empty() && secret.len() >= 32, "{value}");
    (id, secret)
}

#[test]
fn migrate_creates_the_sqlite_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("new.db");
    let out = run(portico(dir.path())
        .env("PORTICO_DATABASE_URL", format!("sqlite://{}", db.display()))
        .arg("migrate"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(db.is_file());
    // Applying again finds nothing to do and still succeeds.
    let again = run(portico(dir.path())
        .env("PORTICO_DATABASE_URL", format!("sqlite://{}", db.display()))
        .arg("migrate"));
    assert!(again.status.success(), "{}", stderr(&again));
}

#[test]
fn migrate_uses_the_default_database_url() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = run(portico(dir.path()).arg("migrate"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        dir.path().join("portico.db").is_file(),
        "default sqlite://portico.db not created"
    );
}

#[test]
fn serve_refuses_a_missing_sqlite_file_without_create() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = run(portico(dir.path())
        .env("PORTICO_DATABASE_URL", "sqlite://./x.db")
        .env("PORTICO_HTTP_ADDR", format!("127.0.0.1:{}", free_port()))
        .arg("serve"));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(
        error_line(&out),
        "error: PORTICO_DATABASE_URL: sqlite file ./x.db does not exist; run `portico migrate` or `portico serve --create`"
    );
    assert!(!dir.path().join("x.db").exists(), "serve created the file");
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_with_create_makes_a_missing_sqlite_file_and_serves_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("fresh.db");
    assert!(!db.exists());
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let child = portico(dir.path())
        .env("PORTICO_DATABASE_URL", format!("sqlite://{}", db.display()))
        .env("PORTICO_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .args(["serve", "--create"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn serve --create");
    let mut server = Running(child);
    wait_healthy(&base, &mut server.0).await;
    assert!(
        db.is_file(),
        "serve --create did not create {}",
        db.display()
    );

    let http = reqwest::Client::new();
    let response = http
        .get(format!("{base}/fhir/metadata"))
        .send()
        .await
        .expect("GET /fhir/metadata");
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        content_type.starts_with("application/fhir+json"),
        "{content_type}"
    );
    let statement: Value = response.json().await.expect("CapabilityStatement JSON");
    assert_eq!(statement["resourceType"], "CapabilityStatement");
    assert_eq!(statement["fhirVersion"], "4.0.1");
    let ready = http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .expect("readyz");
    assert!(ready.status().is_success(), "readyz: {}", ready.status());
    drop(server);

    // The file it made is a migrated database: serve without --create now accepts it.
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let child = portico(dir.path())
        .env("PORTICO_DATABASE_URL", format!("sqlite://{}", db.display()))
        .env("PORTICO_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn serve");
    let mut again = Running(child);
    wait_healthy(&base, &mut again.0).await;
}

#[test]
fn unsupported_database_scheme_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = run(portico(dir.path())
        .env(
            "PORTICO_DATABASE_URL",
            "mysql://root:hunter2@127.0.0.1/portico",
        )
        .arg("migrate"));
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        error_line(&out),
        "error: PORTICO_DATABASE_URL: unsupported scheme mysql; use sqlite://path or postgres://…"
    );
    assert!(!stderr(&out).contains("hunter2"));
}

#[test]
fn unparsable_http_address_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = run(portico(dir.path())
        .env("PORTICO_HTTP_ADDR", "localhost")
        .args(["serve", "--create"]));
    assert_eq!(out.status.code(), Some(2));
    let line = error_line(&out);
    assert!(
        line.starts_with("error: PORTICO_HTTP_ADDR: cannot parse \"localhost\""),
        "{line}"
    );
    assert!(!dir.path().join("portico.db").exists());
}

#[test]
fn bad_config_file_names_the_file_and_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("portico.toml");
    std::fs::write(&file, "http_addr = \"127.0.0.1:9999\"\nlog = [\n").expect("write config");
    let out = run(portico(dir.path()).args(["--config", "portico.toml", "migrate"]));
    assert_eq!(out.status.code(), Some(2));
    let line = error_line(&out);
    assert!(line.starts_with("error: portico.toml: line "), "{line}");
}

#[test]
fn config_file_settings_apply_and_environment_overrides_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("portico.toml"),
        "database_url = \"sqlite://from-file.db\"\n",
    )
    .expect("write config");
    let out = run(portico(dir.path()).args(["migrate", "--config", "portico.toml"]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(dir.path().join("from-file.db").is_file());
    let out = run(portico(dir.path())
        .env("PORTICO_DATABASE_URL", "sqlite://from-env.db")
        .args(["migrate", "--config", "portico.toml"]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(dir.path().join("from-env.db").is_file());
}

#[test]
fn serve_reports_a_port_in_use() {
    let dir = tempfile::tempdir().expect("temp dir");
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    let out = run(portico(dir.path())
        .env("PORTICO_HTTP_ADDR", addr.to_string())
        .args(["serve", "--create"]));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let line = error_line(&out);
    assert!(
        line.starts_with(&format!(
            "error: PORTICO_HTTP_ADDR: {addr} is already in use; "
        )),
        "{line}"
    );
    drop(taken);
}

#[test]
fn unreachable_postgres_is_reported_without_the_password() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = run(portico(dir.path())
        .env(
            "PORTICO_DATABASE_URL",
            "postgres://u:secretpw@127.0.0.1:1/x",
        )
        .env("PORTICO_HTTP_ADDR", format!("127.0.0.1:{}", free_port()))
        .arg("serve"));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let line = error_line(&out);
    assert!(line.starts_with("error: PORTICO_DATABASE_URL: "), "{line}");
    assert!(line.contains("127.0.0.1:1"), "{line}");
    assert!(!stderr(&out).contains("secretpw"), "{}", stderr(&out));
    assert!(!stdout(&out).contains("secretpw"));
}

#[test]
fn every_command_has_help() {
    let dir = tempfile::tempdir().expect("temp dir");
    for sub in ["serve", "migrate", "demo", "import", "seed", "admin"] {
        let out = run(portico(dir.path()).args([sub, "--help"]));
        assert!(out.status.success(), "{sub} --help: {}", stderr(&out));
    }
}

#[test]
fn create_client_refuses_bad_scopes_and_a_missing_database() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = run(portico(dir.path()).args([
        "admin",
        "create-client",
        "--name",
        "x",
        "--scopes",
        "patient/*.read",
        "--json",
    ]));
    assert_eq!(out.status.code(), Some(2));
    assert!(error_line(&out).starts_with("error: --scopes: "));
    assert!(stdout(&out).is_empty());
    let out = run(portico(dir.path()).args([
        "admin",
        "create-client",
        "--name",
        "x",
        "--scopes",
        "system/*.read",
    ]));
    assert_eq!(out.status.code(), Some(2));
    assert!(error_line(&out).contains("does not exist; run `portico migrate` first"));
}

/// `migrate`, then `serve`: health checks, 401 without a token, a client registered while the
/// server runs, its token, a search, a Bulk Data export written to `PORTICO_EXPORT_DIR`, and a
/// graceful stop on SIGTERM.
async fn serve_round_trip(dir: &Path, db_url: &str) {
    let out = run(portico(dir)
        .env("PORTICO_DATABASE_URL", db_url)
        .arg("migrate"));
    assert!(out.status.success(), "{}", stderr(&out));

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let child = portico(dir)
        .env("PORTICO_DATABASE_URL", db_url)
        .env("PORTICO_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("PORTICO_EXPORT_DIR", dir.join("exports"))
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn serve");
    let mut server = Running(child);
    wait_healthy(&base, &mut server.0).await;

    let http = reqwest::Client::new();
    let ready = http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .expect("readyz");
    assert!(ready.status().is_success());
    let anonymous = http
        .get(format!("{base}/fhir/Patient"))
        .send()
        .await
        .expect("anonymous");
    assert_eq!(anonymous.status().as_u16(), 401);

    // A client registered while the server runs can sign in at once.
    let (id, secret) = create_client_json(dir, db_url);
    let token = token(&base, &id, &secret).await;
    let response = http
        .get(format!("{base}/fhir/Patient"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("GET /fhir/Patient");
    assert_eq!(response.status().as_u16(), 200);
    let bundle: Value = response.json().await.expect("bundle");
    assert_eq!(bundle["resourceType"], "Bundle");
    assert_eq!(bundle["type"], "searchset");

    // An export lands in PORTICO_EXPORT_DIR.
    let created = http
        .post(format!("{base}/fhir/Patient"))
        .bearer_auth(&token)
        .header("Content-Type", "application/fhir+json")
        .body(r#"{"resourceType":"Patient","name":[{"family":"Exported"}]}"#)
        .send()
        .await
        .expect("POST /fhir/Patient");
    assert_eq!(created.status().as_u16(), 201);
    let kick_off = http
        .get(format!("{base}/fhir/$export?_type=Patient"))
        .bearer_auth(&token)
        .header("Prefer", "respond-async")
        .header("Accept", "application/fhir+json")
        .send()
        .await
        .expect("kick-off");
    assert_eq!(kick_off.status().as_u16(), 202);
    let status_url = kick_off
        .headers()
        .get("Content-Location")
        .and_then(|v| v.to_str().ok())
        .expect("Content-Location")
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    let manifest: Value = loop {
        let status = http
            .get(&status_url)
            .bearer_auth(&token)
            .send()
            .await
            .expect("status");
        if status.status().as_u16() == 200 {
            break status.json().await.expect("manifest");
        }
        assert_eq!(status.status().as_u16(), 202, "export status");
        assert!(
            Instant::now() < deadline,
            "the export did not finish in 30s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(manifest["output"][0]["count"], 1, "{manifest}");
    let files: Vec<PathBuf> = std::fs::read_dir(dir.join("exports"))
        .expect("PORTICO_EXPORT_DIR was created")
        .flat_map(|job| std::fs::read_dir(job.expect("entry").path()).expect("job folder"))
        .map(|f| f.expect("file").path())
        .collect();
    assert_eq!(
        files.len(),
        1,
        "one NDJSON file in PORTICO_EXPORT_DIR: {files:?}"
    );
    let line = std::fs::read_to_string(&files[0]).expect("read the export file");
    assert!(line.contains("\"Exported\""), "{line}");

    // SIGTERM: a graceful stop, exit status 0.
    let pid = server.0.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = server.0.try_wait().expect("try_wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "serve did not stop within 30s of SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "serve exited with {status} after SIGTERM");
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_answers_health_tokens_and_fhir_searches_on_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db_url = sqlite_url(dir.path(), "serve.db");
    serve_round_trip(dir.path(), &db_url).await;
}

/// The same on PostgreSQL, in a fresh database, when `PORTICO_TEST_POSTGRES_URL` names a server
/// (CI sets it); without it this test says so and checks nothing.
#[tokio::test(flavor = "multi_thread")]
async fn serve_answers_health_tokens_and_fhir_searches_on_postgres() {
    let Some(admin) = postgres_admin_url() else {
        return;
    };
    let (fresh, db_url) = fresh_postgres(&admin).await;
    let dir = tempfile::tempdir().expect("temp dir");
    serve_round_trip(dir.path(), &db_url).await;
    // Dropping the store drops its test database, so it lives until the server has stopped.
    drop(fresh);
}

/// What the demo printed: its URL, the API client's id and secret, and the demo sign-ins as
/// (username, password, authenticator secret).
struct DemoBanner {
    url: String,
    id: String,
    secret: String,
    sign_ins: Vec<(String, String, String)>,
}

/// Reads the demo's stdout until its credentials and sign-ins are printed.
fn demo_banner(child: &mut Child) -> DemoBanner {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        // Keeps reading after the banner is taken, so that the demo never writes to a closed
        // pipe.
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let (mut url, mut id, mut secret) = (None, None, None);
    let mut sign_ins = Vec::new();
    let mut pending: Option<(String, String)> = None;
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(left).unwrap_or_else(|_| {
            panic!("the demo did not print its URL, credentials and sign-ins within 300s")
        });
        if let Some(rest) = line.strip_prefix("Portico demo is running at ") {
            url = Some(rest.trim().to_string());
        } else if let Some(rest) = line.trim().strip_prefix("API client:") {
            id = rest.split_whitespace().last().map(str::to_string);
        } else if let Some(rest) = line.trim().strip_prefix("client_secret") {
            secret = rest.split_whitespace().last().map(str::to_string);
        } else if line.contains(" username ") && line.contains(" password ") {
            let words: Vec<&str> = line.split_whitespace().collect();
            let after = |key: &str| {
                words
                    .iter()
                    .position(|w| *w == key)
                    .and_then(|i| words.get(i + 1))
                    .map(|w| w.to_string())
                    .unwrap_or_default()
            };
            pending = Some((after("username"), after("password")));
        } else if let Some(rest) = line.trim().strip_prefix("authenticator secret ") {
            if let Some((username, password)) = pending.take() {
                sign_ins.push((username, password, rest.trim().to_string()));
            }
        } else if line.starts_with("Try it") {
            break;
        }
    }
    DemoBanner {
        url: url.unwrap_or_default(),
        id: id.unwrap_or_default(),
        secret: secret.unwrap_or_default(),
        sign_ins,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_seeds_a_region_and_serves_it_with_the_printed_credentials() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("demo.db");
    let port = free_port();
    let child = portico(dir.path())
        .env("PORTICO_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .args(["demo", "--db"])
        .arg(&db)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn demo");
    let mut demo = Running(child);
    let DemoBanner {
        url,
        id,
        secret,
        sign_ins,
    } = demo_banner(&mut demo.0);
    assert_eq!(url, format!("http://127.0.0.1:{port}"));
    wait_healthy(&url, &mut demo.0).await;

    let token = token(&url, &id, &secret).await;
    let http = reqwest::Client::new();
    let count = |query: &'static str| {
        let request = http.get(format!("{url}/fhir/{query}")).bearer_auth(&token);
        async move {
            let response = request.send().await.expect("search");
            assert_eq!(response.status().as_u16(), 200, "{query}");
            let bundle: Value = response.json().await.expect("bundle");
            bundle["total"]
                .as_u64()
                .unwrap_or_else(|| panic!("no total for {query}: {bundle}"))
        }
    };
    assert_eq!(count("Patient?_summary=count").await, 50);
    assert_eq!(count("Organization?_summary=count").await, 3);
    // Staff scale with the region (GPs and nurses per list size, consultants per specialty).
    assert!(count("Practitioner?_summary=count").await >= 8);
    assert!(count("Appointment?status=booked&_summary=count").await >= 5);
    assert!(count("Observation?code=http://loinc.org|85354-9&_summary=count").await >= 30);
    assert!(count("DocumentReference?_summary=count").await >= 1);

    // The printed sign-ins exist, linked as described, and their passwords and secrets work.
    let names: Vec<&str> = sign_ins.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(names, ["demo-patient", "demo-parent", "demo-clinician"]);
    let store = store_sqlite::SqliteStore::open(&format!("sqlite://{}", db.display()), false)
        .expect("open the demo database");
    for (username, password, totp_secret) in &sign_ins {
        let account = store::Store::accounts(&store)
            .account_by_username(username)
            .await
            .expect("read account")
            .unwrap_or_else(|| panic!("no account {username}"));
        let hash = account.password_hash.as_deref().expect("a password");
        assert!(
            matches!(
                identity::password::PasswordPolicy::portico().verify(password, hash),
                identity::password::Verification::Valid { .. }
            ),
            "the printed password of {username} verifies"
        );
        assert_eq!(account.totp_secret.as_deref(), Some(totp_secret.as_str()));
        match username.as_str() {
            "demo-patient" => assert_eq!(account.patient_id.as_deref(), Some("pat-0001")),
            "demo-parent" => assert!(account.related_person_id.is_some()),
            _ => assert!(account.ods_code.is_some()),
        }
    }
    drop(store);
    drop(demo);

    // The demo never reuses a database unless told to.
    let out = run(portico(dir.path())
        .env("PORTICO_HTTP_ADDR", format!("127.0.0.1:{}", free_port()))
        .args(["demo", "--db"])
        .arg(&db));
    assert_eq!(out.status.code(), Some(2));
    let line = error_line(&out);
    assert!(
        line.contains("already exists") && line.contains("--force"),
        "{line}"
    );
}

// ----- admin create-account and invite -----

/// `portico admin ARGS…` with `stdin` piped in, against `db_url`.
fn admin_with_stdin(dir: &Path, db_url: &str, args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    let mut child = portico(dir)
        .env("PORTICO_DATABASE_URL", db_url)
        .arg("admin")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start portico");
    if let Some(mut input) = child.stdin.take() {
        input.write_all(stdin.as_bytes()).expect("write stdin");
    }
    child.wait_with_output().expect("portico finished")
}

fn migrated(dir: &Path) -> String {
    let url = sqlite_url(dir, "accounts.db");
    let out = run(portico(dir)
        .env("PORTICO_DATABASE_URL", &url)
        .arg("migrate"));
    assert!(out.status.success(), "{}", stderr(&out));
    url
}

fn json_object(out: &Output) -> serde_json::Map<String, Value> {
    let text = stdout(out);
    let value: Value = serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("stdout is not one JSON object ({e}): {text:?}"));
    value.as_object().expect("an object").clone()
}

const GOOD_PASSWORD: &str = "lantern cobalt meadow 31";

#[tokio::test(flavor = "multi_thread")]
async fn create_account_with_totp_prints_a_secret_that_verifies() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = migrated(dir.path());
    let out = admin_with_stdin(
        dir.path(),
        &url,
        &[
            "create-account",
            "--role",
            "admin",
            "--username",
            "Ops.Admin",
            "--password-stdin",
            "--with-totp",
            "--json",
        ],
        &format!("{GOOD_PASSWORD}\n"),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let object = json_object(&out);
    assert_eq!(object.len(), 2, "{object:?}");
    let id = object["account_id"].as_str().expect("account_id");
    let secret_text = object["totp_secret"].as_str().expect("totp_secret");
    let secret = identity::totp::Secret::from_base32(secret_text).expect("base32 secret");
    let now = chrono::Utc::now().timestamp();
    let code = identity::totp::code_at(&secret, now).expect("code");
    assert!(identity::totp::verify(&secret, &code, now, None).is_ok());

    let store = common::open(&url).await;
    let account = store
        .accounts()
        .account_by_id(id)
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(account.username, "ops.admin");
    assert_eq!(account.role, store::accounts::Role::Admin);
    assert_eq!(account.totp_secret.as_deref(), Some(secret_text));
    let hash = account.password_hash.expect("a password hash");
    let policy = identity::password::PasswordPolicy::portico();
    assert!(matches!(
        policy.verify(GOOD_PASSWORD, &hash),
        identity::password::Verification::Valid {
            needs_rehash: false
        }
    ));

    // Without --with-totp there is no secret, and the human form says what comes next.
    let out = admin_with_stdin(
        dir.path(),
        &url,
        &[
            "create-account",
            "--role",
            "clinician",
            "--username",
            "dr.who",
            "--ods",
            "rx1",
            "--password-stdin",
        ],
        GOOD_PASSWORD,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("authenticator app at their first sign-in"));
    let staff = store
        .accounts()
        .account_by_username("dr.who")
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(staff.ods_code.as_deref(), Some("RX1"));
    assert_eq!(staff.totp_secret, None);
}

#[test]
fn create_account_refuses_weak_passwords_and_wrong_links_with_exit_2() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = migrated(dir.path());
    let cases: [(&[&str], &str, &str); 7] = [
        (
            &["--role", "patient", "--username", "weak"],
            "password123\n",
            "--password-stdin: the password is not accepted",
        ),
        (
            &["--role", "patient", "--username", "empty"],
            "\n",
            "standard input gave no password",
        ),
        (
            &[
                "--role",
                "patient",
                "--username",
                "pat",
                "--nhs-number",
                "9434765918",
            ],
            GOOD_PASSWORD,
            "--nhs-number: not a valid NHS number",
        ),
        (
            &[
                "--role",
                "patient",
                "--username",
                "pat",
                "--nhs-number",
                "9434765919",
            ],
            GOOD_PASSWORD,
            "--nhs-number: no patient with that NHS number",
        ),
        (
            &["--role", "proxy", "--username", "carer"],
            GOOD_PASSWORD,
            "--role proxy needs --related-person",
        ),
        (
            &[
                "--role",
                "proxy",
                "--username",
                "carer",
                "--related-person",
                "nope",
            ],
            GOOD_PASSWORD,
            "no RelatedPerson with that id",
        ),
        (
            &["--role", "admin", "--username", "a b"],
            GOOD_PASSWORD,
            "--username: the username must be",
        ),
    ];
    for (args, stdin, want) in cases {
        let mut all = vec!["create-account", "--password-stdin"];
        all.extend_from_slice(args);
        let out = admin_with_stdin(dir.path(), &url, &all, stdin);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let line = error_line(&out);
        assert!(line.contains(want), "{args:?}: {line}");
        assert!(
            !line.contains(stdin.trim()) || stdin.trim().is_empty(),
            "the password is not echoed"
        );
    }
    // A username already taken.
    let args = [
        "create-account",
        "--role",
        "admin",
        "--username",
        "twice",
        "--password-stdin",
    ];
    assert!(admin_with_stdin(dir.path(), &url, &args, GOOD_PASSWORD)
        .status
        .success());
    let out = admin_with_stdin(dir.path(), &url, &args, GOOD_PASSWORD);
    assert_eq!(out.status.code(), Some(2));
    assert!(error_line(&out).contains("already exists"));
}

fn import_patient(dir: &Path, url: &str) -> String {
    let data = dir.join("Patient.ndjson");
    std::fs::write(
        &data,
        r#"{"resourceType":"Patient","id":"pat-1","identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9434765919"}],"birthDate":"1984-03-05"}"#,
    )
    .expect("write data");
    common::import_json(dir, url, &data, &[]);
    "pat-1".to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn create_account_links_a_patient_by_nhs_number_at_p9() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = migrated(dir.path());
    let patient = import_patient(dir.path(), &url);
    let out = admin_with_stdin(
        dir.path(),
        &url,
        &[
            "create-account",
            "--role",
            "patient",
            "--username",
            "patient1",
            "--nhs-number",
            "943 476 5919",
            "--password-stdin",
            "--json",
        ],
        GOOD_PASSWORD,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let object = json_object(&out);
    assert_eq!(object.len(), 1, "no totp_secret without --with-totp");
    let store = common::open(&url).await;
    let account = store
        .accounts()
        .account_by_nhs_number("9434765919")
        .await
        .expect("read")
        .expect("linked");
    assert_eq!(account.patient_id.as_deref(), Some(patient.as_str()));
    assert_eq!(account.identity_level, store::accounts::IdentityLevel::P9);
    assert_eq!(
        Some(account.account_id.as_str()),
        object["account_id"].as_str()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn invite_prints_a_code_stored_only_as_its_hash() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = migrated(dir.path());
    let patient = import_patient(dir.path(), &url);
    let out = run(portico(dir.path()).env("PORTICO_DATABASE_URL", &url).args([
        "admin",
        "invite",
        "--patient",
        &patient,
        "--json",
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    let object = json_object(&out);
    assert_eq!(object.len(), 2, "{object:?}");
    let code = object["code"].as_str().expect("code");
    assert_eq!(code.len(), 14, "{code}");
    assert_eq!(code.as_bytes()[4], b'-');
    let expires = object["expires"].as_str().expect("expires");
    let expires = chrono::DateTime::parse_from_rfc3339(expires).expect("RFC 3339");
    let days = (expires.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_days();
    assert!((29..=30).contains(&days), "{days}");
    let hash = identity::invitation::hash(code).expect("a valid code");
    let store = common::open(&url).await;
    let stored = store
        .accounts()
        .invitation(&hash)
        .await
        .expect("read")
        .expect("stored under its hash");
    assert_eq!(stored.patient_id, patient);
    assert_eq!(stored.used_at, None);

    let out = run(portico(dir.path()).env("PORTICO_DATABASE_URL", &url).args([
        "admin",
        "invite",
        "--patient",
        "nobody",
        "--json",
    ]));
    assert_eq!(out.status.code(), Some(2));
    assert!(error_line(&out).contains("no Patient with that id"));
}

#[test]
fn nhs_login_settings_that_cannot_work_stop_serve_with_one_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let serve = |vars: &[(&str, &str)]| {
        let mut cmd = portico(dir.path());
        cmd.env("PORTICO_HTTP_ADDR", format!("127.0.0.1:{}", free_port()));
        for (name, value) in vars {
            cmd.env(name, value);
        }
        run(cmd.args(["serve", "--create"]))
    };
    let issuer = ("PORTICO_OIDC_ISSUER", "https://auth.login.nhs.uk");
    let client_id = ("PORTICO_OIDC_CLIENT_ID", "portico");

    let out = serve(&[issuer]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let line = error_line(&out);
    assert!(
        line.starts_with("error: PORTICO_OIDC_CLIENT_ID: not set; sign-in with NHS login needs PORTICO_OIDC_ISSUER, PORTICO_OIDC_CLIENT_ID and PORTICO_OIDC_KEY together"),
        "{line}"
    );

    // PEM-shaped but no key: refused before the database is created or the port bound.
    let not_a_key = "-----BEGIN PRIVATE KEY-----\nbm90LWEta2V5\n-----END PRIVATE KEY-----\n";
    let out = serve(&[issuer, client_id, ("PORTICO_OIDC_KEY", not_a_key)]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let line = error_line(&out);
    assert!(line.starts_with("error: PORTICO_OIDC_KEY: "), "{line}");
    assert!(!stderr(&out).contains("bm90LWEta2V5"), "{}", stderr(&out));
    assert!(!dir.path().join("portico.db").exists(), "serve went on");
}

// ----- admin create-app -----

#[tokio::test(flavor = "multi_thread")]
async fn create_app_registers_a_public_client_and_refuses_unsafe_redirect_uris() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = migrated(dir.path());
    let out = run(portico(dir.path()).env("PORTICO_DATABASE_URL", &url).args([
        "admin",
        "create-app",
        "--name",
        "Health diary",
        "--redirect-uri",
        "https://diary.example/callback",
        "--redirect-uri",
        "http://127.0.0.1:7000/cb",
        "--json",
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    let object = json_object(&out);
    assert_eq!(object.len(), 1, "{object:?}");
    let client_id = object["client_id"].as_str().expect("client_id");
    let store = common::open(&url).await;
    let app = store
        .accounts()
        .smart_app(client_id)
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(app.name, "Health diary");
    assert_eq!(
        app.redirect_uris,
        ["https://diary.example/callback", "http://127.0.0.1:7000/cb"]
    );

    for bad in [
        "http://diary.example/callback",
        "https://diary.example/cb#x",
    ] {
        let out = run(portico(dir.path()).env("PORTICO_DATABASE_URL", &url).args([
            "admin",
            "create-app",
            "--name",
            "Leaky",
            "--redirect-uri",
            bad,
            "--json",
        ]));
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", stderr(&out));
        let line = error_line(&out);
        assert!(line.contains("--redirect-uri"), "{line}");
        assert!(
            line.contains("must be https, or http on the loopback address"),
            "{line}"
        );
        assert!(stdout(&out).is_empty(), "nothing on stdout for {bad}");
    }
}
