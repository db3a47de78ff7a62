//! The import against a real store: SQLite in a temporary directory always, and PostgreSQL too
//! when `PORTICO_TEST_POSTGRES_URL` is set. Every test runs once per available backend.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use import::progress::Style;
use import::{Options, Summary};
use serde_json::{json, Value};
use store::{
    ApiClient, HistoryPage, HistoryQuery, HistoryScope, Prepared, ResourceVersion, ScanPage,
    ScanQuery, SearchQuery, SearchResult, Store, StoreError, WriteOp, WriteOutcome,
};

// ----- harness -----

async fn stores() -> Vec<(&'static str, Arc<dyn Store>)> {
    let mut out: Vec<(&'static str, Arc<dyn Store>)> = Vec::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite = store_sqlite::SqliteStore::open_path(&dir.path().join("portico.db"), true)
        .expect("open SQLite store")
        .keep_until_closed(dir);
    out.push(("sqlite", Arc::new(sqlite)));
    if let Some(url) = std::env::var("PORTICO_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
    {
        let pg = store_postgres::PgStore::connect_fresh_for_tests(&url)
            .await
            .expect("connect to PostgreSQL (PORTICO_TEST_POSTGRES_URL)");
        out.push(("postgres", Arc::new(pg)));
    }
    out
}

fn options(path: &Path) -> Options {
    Options {
        progress: Style::Quiet,
        // Small batches, so that a few lines already span several transactions.
        batch: 3,
        ..Options::new(path)
    }
}

async fn import(store: &Arc<dyn Store>, path: &Path) -> Summary {
    import::import(store.clone(), &options(path))
        .await
        .unwrap_or_else(|e| panic!("import {}: {e}", path.display()))
}

async fn import_again(store: &Arc<dyn Store>, path: &Path) -> Summary {
    let opts = Options {
        again: true,
        ..options(path)
    };
    import::import(store.clone(), &opts)
        .await
        .expect("import --again")
}

fn ndjson(dir: &Path, name: &str, lines: &[Value]) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&path, text).expect("write");
    path
}

fn patient(id: &str, family: &str) -> Value {
    json!({"resourceType": "Patient", "id": id, "name": [{"family": family}]})
}

fn observation(id: &str, patient: &str, value: f64) -> Value {
    json!({"resourceType": "Observation", "id": id, "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": format!("Patient/{patient}")},
        "valueQuantity": {"value": value, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}})
}

/// Every version of every resource: (type, id, version, deleted, content without lastUpdated).
async fn snapshot(store: &Arc<dyn Store>) -> BTreeSet<(String, String, i64, bool, String)> {
    let mut out = BTreeSet::new();
    let mut offset = 0;
    loop {
        let page = store
            .history(&HistoryQuery {
                scope: HistoryScope::System,
                since: None,
                count: 500,
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

async fn read(store: &Arc<dyn Store>, ty: &str, id: &str) -> Value {
    store
        .read(ty, id)
        .await
        .expect("read")
        .unwrap_or_else(|| panic!("{ty}/{id} is not stored"))
        .parse()
        .expect("JSON")
}

/// A store whose process "dies" (as with `kill -9`) the moment its transaction number `commits`
/// (from 0) has committed: that transaction's caller and every later write get an error, so
/// nothing the import does after that commit reaches the database.
struct DiesAfterCommit {
    inner: Arc<dyn Store>,
    commits: i64,
    started: std::sync::atomic::AtomicI64,
    dead: std::sync::atomic::AtomicBool,
    /// Transactions of the inner store not yet answered.
    in_flight: std::sync::atomic::AtomicI64,
}

impl DiesAfterCommit {
    fn new(inner: Arc<dyn Store>, commits: i64) -> Self {
        DiesAfterCommit {
            inner,
            commits,
            started: std::sync::atomic::AtomicI64::new(0),
            dead: std::sync::atomic::AtomicBool::new(false),
            in_flight: std::sync::atomic::AtomicI64::new(0),
        }
    }

    /// Waits until the transactions that reached the database before the "kill" are over
    /// (committed or not), as they are once a killed process's connections are gone.
    async fn settled(&self) {
        while self.in_flight.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    }

    fn alive(&self) -> store::Result<()> {
        if self.dead.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::Unavailable);
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Store for DiesAfterCommit {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    async fn ping(&self) -> store::Result<()> {
        self.inner.ping().await
    }
    async fn read(&self, t: &str, id: &str) -> store::Result<Option<ResourceVersion>> {
        self.inner.read(t, id).await
    }
    async fn vread(&self, t: &str, id: &str, v: i64) -> store::Result<Option<ResourceVersion>> {
        self.inner.vread(t, id, v).await
    }
    async fn history(&self, q: &HistoryQuery) -> store::Result<HistoryPage> {
        self.inner.history(q).await
    }
    async fn search(&self, q: &SearchQuery) -> store::Result<SearchResult> {
        self.inner.search(q).await
    }
    async fn scan(&self, q: &ScanQuery) -> store::Result<ScanPage> {
        self.inner.scan(q).await
    }
    fn accounts(&self) -> &dyn store::AccountStore {
        self.inner.accounts()
    }
    async fn append_audit(&self, records: Vec<store::AuditRecord>) -> store::Result<()> {
        self.alive()?;
        self.inner.append_audit(records).await
    }
    async fn audit_for_patient(
        &self,
        patient_id: &str,
        before: Option<i64>,
        limit: usize,
    ) -> store::Result<store::AuditPage> {
        self.inner
            .audit_for_patient(patient_id, before, limit)
            .await
    }
    async fn refresh_statistics(&self) -> store::Result<()> {
        self.inner.refresh_statistics().await
    }
    async fn seal_audit(&self) -> store::Result<u64> {
        self.inner.seal_audit().await
    }
    async fn audit_chain(
        &self,
        after_seq: i64,
        limit: usize,
    ) -> store::Result<Vec<store::AuditEntry>> {
        self.inner.audit_chain(after_seq, limit).await
    }
    async fn transaction_audited(
        &self,
        ops: Vec<WriteOp>,
        audit: Option<&store::AuditContext>,
    ) -> store::Result<Vec<WriteOutcome>> {
        self.alive()?;
        let n = self
            .started
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if n > self.commits {
            // Started after the fatal one: it never gets to the database, and its caller hears
            // nothing before the process is gone.
            while !self.dead.load(std::sync::atomic::Ordering::SeqCst) {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
            return Err(StoreError::Unavailable);
        }
        self.in_flight
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let result = self.inner.transaction_audited(ops, audit).await;
        self.in_flight
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        if n == self.commits {
            self.dead.store(true, std::sync::atomic::Ordering::SeqCst);
            return Err(StoreError::Unavailable);
        }
        result
    }
    async fn insert_api_client(&self, c: &ApiClient) -> store::Result<()> {
        self.inner.insert_api_client(c).await
    }
    async fn api_client(&self, id: &str) -> store::Result<Option<ApiClient>> {
        self.inner.api_client(id).await
    }
    async fn signing_key(&self) -> store::Result<Vec<u8>> {
        self.inner.signing_key().await
    }
    async fn state_get(&self, key: &str) -> store::Result<Option<String>> {
        self.inner.state_get(key).await
    }
    async fn state_put(&self, key: &str, value: &str) -> store::Result<()> {
        self.alive()?;
        self.inner.state_put(key, value).await
    }
    async fn state_delete(&self, key: &str) -> store::Result<()> {
        self.alive()?;
        self.inner.state_delete(key).await
    }
    async fn state_list(&self, prefix: &str) -> store::Result<Vec<(String, String)>> {
        self.inner.state_list(prefix).await
    }
    async fn state_compare_and_put(
        &self,
        key: &str,
        expected: Option<&str>,
        value: &str,
    ) -> store::Result<bool> {
        self.alive()?;
        self.inner.state_compare_and_put(key, expected, value).await
    }
}

// ----- tests -----

#[tokio::test]
async fn observations_before_their_patients_import_and_a_second_run_changes_nothing() {
    for (backend, store) in stores().await {
        let dir = tempfile::tempdir().expect("temp dir");
        let obs: Vec<Value> = (0..10)
            .map(|i| observation(&format!("o{i}"), &format!("p{}", i % 3), 60.0 + i as f64))
            .collect();
        ndjson(dir.path(), "1-Observation.ndjson", &obs);
        let patients: Vec<Value> = (0..3).map(|i| patient(&format!("p{i}"), "Smith")).collect();
        ndjson(dir.path(), "2-Patient.ndjson", &patients);

        let first = import(&store, dir.path()).await;
        assert_eq!(first.by_type["Observation"].created, 10, "{backend}");
        assert_eq!(first.by_type["Patient"].created, 3, "{backend}");
        assert_eq!(
            first.totals.rejected, 0,
            "{backend}: {:?}",
            first.rejections
        );
        let o = read(&store, "Observation", "o4").await;
        assert_eq!(o["subject"]["reference"], "Patient/p1", "{backend}");
        let before = snapshot(&store).await;
        assert_eq!(before.len(), 13, "{backend}");

        // Run again: the journal knows both files are done.
        let second = import(&store, dir.path()).await;
        assert_eq!(second.files_already_imported, 2, "{backend}");
        assert_eq!(second.totals.total(), 0, "{backend}");

        // Import again regardless: everything is unchanged, no new version anywhere.
        let third = import_again(&store, dir.path()).await;
        assert_eq!(third.totals.unchanged, 13, "{backend}: {third:?}");
        assert_eq!(third.totals.created + third.totals.updated, 0, "{backend}");
        assert_eq!(snapshot(&store).await, before, "{backend}");
    }
}

#[tokio::test]
async fn a_bad_line_is_reported_with_file_and_line_and_the_rest_is_imported() {
    for (backend, store) in stores().await {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("mixed.ndjson");
        let lines = [
            patient("a", "Ok").to_string(),
            "{\"resourceType\": \"Patient\", \"id\": ".to_string(),
            json!({"resourceType": "Patient", "id": "b", "birthDate": "1990-13-45"}).to_string(),
            json!({"resourceType": "Spaceship", "id": "c"}).to_string(),
            json!({"resourceType": "Patient", "id": "not valid!"}).to_string(),
            "[1, 2]".to_string(),
            String::new(),
            patient("d", "AlsoOk").to_string(),
        ];
        std::fs::write(&path, lines.join("\n")).expect("write");
        let s = import(&store, &path).await;
        assert_eq!(s.by_type["Patient"].created, 2, "{backend}: {s:?}");
        assert_eq!(s.totals.rejected, 5, "{backend}: {:?}", s.rejections);
        let shown = path.display().to_string();
        let expect = [
            (2, "the JSON ends too early"),
            (3, "Patient.birthDate"),
            (4, "Spaceship"),
            (5, "Patient.id"),
            (6, "not an array"),
        ];
        assert_eq!(s.rejections.len(), expect.len(), "{:?}", s.rejections);
        for (message, (line, fragment)) in s.rejections.iter().zip(expect) {
            let prefix = format!("{shown}:{line}: ");
            assert!(message.starts_with(&prefix), "{backend}: {message}");
            assert!(
                message.contains(fragment),
                "{backend}: {message} lacks {fragment}"
            );
        }
        assert!(store.read("Patient", "d").await.expect("read").is_some());
    }
}

#[tokio::test]
async fn a_changed_resource_becomes_version_two_and_the_rest_stays_unchanged() {
    for (backend, store) in stores().await {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = ndjson(
            dir.path(),
            "p.ndjson",
            &[patient("a", "One"), patient("b", "Two")],
        );
        import(&store, &path).await;
        ndjson(
            dir.path(),
            "p.ndjson",
            &[patient("a", "One"), patient("b", "Changed")],
        );
        // The file changed, so the journal does not skip it.
        let s = import(&store, &path).await;
        assert_eq!(s.totals.updated, 1, "{backend}: {s:?}");
        assert_eq!(s.totals.unchanged, 1, "{backend}");
        let b = read(&store, "Patient", "b").await;
        assert_eq!(b["meta"]["versionId"], "2", "{backend}");
        assert_eq!(b["name"][0]["family"], "Changed", "{backend}");
        let a = read(&store, "Patient", "a").await;
        assert_eq!(a["meta"]["versionId"], "1", "{backend}");
    }
}

#[tokio::test]
async fn the_same_resource_twice_in_the_input_gives_two_versions_in_order() {
    for (backend, store) in stores().await {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = ndjson(
            dir.path(),
            "p.ndjson",
            &[
                patient("a", "First"),
                patient("b", "Other"),
                patient("a", "Second"),
                patient("a", "Third"),
            ],
        );
        let s = import(&store, &path).await;
        assert_eq!(s.totals.created, 2, "{backend}: {s:?}");
        assert_eq!(s.totals.updated, 2, "{backend}");
        let a = read(&store, "Patient", "a").await;
        assert_eq!(a["meta"]["versionId"], "3", "{backend}");
        assert_eq!(a["name"][0]["family"], "Third", "{backend}");
    }
}

#[tokio::test]
async fn without_an_id_a_resource_is_found_by_identifier_or_given_a_stable_id() {
    for (backend, store) in stores().await {
        // One Patient the server already has, under an id it chose.
        let existing = json!({"resourceType": "Patient",
            "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9000000009"}],
            "name": [{"family": "Before"}]});
        let created = store
            .write(WriteOp::Create {
                resource: Prepared::new(existing).expect("valid"),
                if_none_exist: None,
                full_url: None,
            })
            .await
            .expect("create");
        let server_id = created.version().expect("version").id.clone();

        let dir = tempfile::tempdir().expect("temp dir");
        let path = ndjson(
            dir.path(),
            "p.ndjson",
            &[
                json!({"resourceType": "Patient",
                    "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9000000009"}],
                    "name": [{"family": "After"}]}),
                json!({"resourceType": "Patient",
                    "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9000000017"}]}),
                json!({"resourceType": "Flag", "status": "active", "code": {"text": "no identifier at all"},
                    "subject": {"reference": "Patient/x"}}),
            ],
        );
        let first = import(&store, &path).await;
        assert_eq!(first.totals.updated, 1, "{backend}: {first:?}");
        assert_eq!(first.totals.created, 2, "{backend}");
        let updated = read(&store, "Patient", &server_id).await;
        assert_eq!(updated["name"][0]["family"], "After", "{backend}");
        let before = snapshot(&store).await;

        let again = import_again(&store, &path).await;
        assert_eq!(again.totals.unchanged, 3, "{backend}: {again:?}");
        assert_eq!(snapshot(&store).await, before, "{backend}");
    }
}

#[tokio::test]
async fn bundles_import_by_their_type() {
    for (backend, store) in stores().await {
        let dir = tempfile::tempdir().expect("temp dir");
        let collection = json!({"resourceType": "Bundle", "type": "collection", "entry": [
            {"fullUrl": "urn:uuid:0b9c7e3a-1111-4222-8333-444455556666",
             "resource": {"resourceType": "Patient", "name": [{"family": "Collected"}]}},
            {"fullUrl": "urn:uuid:0b9c7e3a-1111-4222-8333-777777777777",
             "resource": {"resourceType": "Observation", "status": "final", "code": {"text": "pulse"},
                "subject": {"reference": "urn:uuid:0b9c7e3a-1111-4222-8333-444455556666"}}}
        ]});
        // Pretty-printed, so that an entry's line is not the Bundle's.
        let bad_transaction = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": {"resourceType": "Patient", "id": "t1"}, "request": {"method": "PUT", "url": "Patient/t1"}},
            {"resource": {"resourceType": "Patient", "id": "t2", "gender": "robot"}, "request": {"method": "PUT", "url": "Patient/t2"}}
        ]});
        let transaction = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": {"resourceType": "Patient", "id": "t3"}, "request": {"method": "PUT", "url": "Patient/t3"}},
            {"fullUrl": "urn:uuid:0b9c7e3a-1111-4222-8333-888888888888",
             "resource": {"resourceType": "Flag", "status": "active", "code": {"text": "x"},
                "subject": {"reference": "Patient/t3"}},
             "request": {"method": "POST", "url": "Flag"}},
            {"request": {"method": "DELETE", "url": "Patient/gone"}}
        ]});
        let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": [
            {"resource": {"resourceType": "Patient", "id": "b1"}, "request": {"method": "PUT", "url": "Patient/b1"}},
            {"resource": {"resourceType": "Patient", "id": "b2"}, "request": {"method": "GET", "url": "Patient/b2"}},
            {"resource": {"resourceType": "Patient", "id": "b3"}, "request": {"method": "PUT", "url": "Patient/b3"}}
        ]});
        std::fs::write(dir.path().join("a-collection.json"), collection.to_string())
            .expect("write");
        std::fs::write(
            dir.path().join("b-bad-transaction.json"),
            serde_json::to_string_pretty(&bad_transaction).expect("json"),
        )
        .expect("write");
        let twice = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": {"resourceType": "Patient", "id": "w1"}, "request": {"method": "PUT", "url": "Patient/w1"}},
            {"resource": {"resourceType": "Patient", "id": "w1", "active": true}, "request": {"method": "PUT", "url": "Patient/w1"}}
        ]});
        ndjson(dir.path(), "c-bundles.ndjson", &[transaction, batch, twice]);

        let s = import(&store, dir.path()).await;
        let obs = read(
            &store,
            "Observation",
            "0b9c7e3a-1111-4222-8333-777777777777",
        )
        .await;
        assert_eq!(
            obs["subject"]["reference"], "Patient/0b9c7e3a-1111-4222-8333-444455556666",
            "{backend}"
        );
        // The bad transaction wrote nothing; its bad entry is reported at its own line.
        assert!(
            store.read("Patient", "t1").await.expect("read").is_none(),
            "{backend}"
        );
        let bad = s
            .rejections
            .iter()
            .find(|m| m.contains("b-bad-transaction.json"))
            .expect("the transaction is reported");
        assert!(
            bad.contains(":15: Bundle.entry[1]: Patient.gender"),
            "{backend}: {bad}"
        );
        assert!(bad.contains("whole transaction"), "{bad}");
        assert!(store
            .read("Flag", "0b9c7e3a-1111-4222-8333-888888888888")
            .await
            .expect("read")
            .is_some());
        // The batch's good entries landed; the GET entry did not.
        for id in ["b1", "b3", "t3"] {
            assert!(
                store.read("Patient", id).await.expect("read").is_some(),
                "{backend}: {id}"
            );
        }
        assert!(
            s.rejections
                .iter()
                .any(|m| m.contains("c-bundles.ndjson:2: Bundle.entry[1]: request.method GET")),
            "{backend}: {:?}",
            s.rejections
        );
        assert!(
            s.rejections.iter().any(|m| m.contains(
                "c-bundles.ndjson:3: Bundle.entry[1]: the transaction writes Patient/w1 twice"
            )),
            "{backend}: {:?}",
            s.rejections
        );
        assert!(store.read("Patient", "w1").await.expect("read").is_none());
        assert_eq!(s.totals.rejected, 5, "{backend}: {:?}", s.rejections);
        // Deleting what is not there changes nothing.
        assert_eq!(s.totals.deleted, 0, "{backend}");
    }
}

#[tokio::test]
async fn conditional_references_resolve_whatever_the_file_order() {
    for (backend, store) in stores().await {
        let dir = tempfile::tempdir().expect("temp dir");
        let system = "http://hl7.org/fhir/sid/us-npi";
        // Synthea-style: the patient's bundle names its practitioner by identifier, and the
        // practitioner comes in a later file.
        let encounter_bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": "urn:uuid:0b9c7e3a-1111-4222-8333-000000000001",
             "resource": {"resourceType": "Patient", "id": "0b9c7e3a-1111-4222-8333-000000000001"},
             "request": {"method": "POST", "url": "Patient"}},
            {"fullUrl": "urn:uuid:0b9c7e3a-1111-4222-8333-000000000002",
             "resource": {"resourceType": "Encounter", "id": "0b9c7e3a-1111-4222-8333-000000000002",
                "status": "finished", "class": {"code": "AMB"},
                "subject": {"reference": "urn:uuid:0b9c7e3a-1111-4222-8333-000000000001"},
                "participant": [{"individual": {"reference": format!("Practitioner?identifier={system}|999")}}]},
             "request": {"method": "POST", "url": "Encounter"}}
        ]});
        let orphan = json!({"resourceType": "Encounter", "id": "orphan", "status": "finished",
            "class": {"code": "AMB"},
            "participant": [{"individual": {"reference": format!("Practitioner?identifier={system}|404")}}]});
        std::fs::write(dir.path().join("Alice.json"), encounter_bundle.to_string()).expect("write");
        ndjson(dir.path(), "Orphan.ndjson", &[orphan]);
        ndjson(
            dir.path(),
            "practitionerInformation.ndjson",
            &[json!({"resourceType": "Practitioner", "id": "pr1",
                "identifier": [{"system": system, "value": "999"}]})],
        );
        let s = import(&store, dir.path()).await;
        let enc = read(&store, "Encounter", "0b9c7e3a-1111-4222-8333-000000000002").await;
        assert_eq!(
            enc["participant"][0]["individual"]["reference"], "Practitioner/pr1",
            "{backend}"
        );
        assert_eq!(
            enc["subject"]["reference"],
            "Patient/0b9c7e3a-1111-4222-8333-000000000001"
        );
        assert_eq!(s.deferred_then_imported, 1, "{backend}: {s:?}");
        // The one whose practitioner never comes is rejected in the end, without the value.
        assert_eq!(s.totals.rejected, 1, "{backend}: {:?}", s.rejections);
        let m = &s.rejections[0];
        assert!(
            m.contains("Orphan.ndjson:1: Encounter.participant[0].individual.reference"),
            "{m}"
        );
        assert!(!m.contains("404"), "{m}");

        // Every file is complete: a second run skips them all.
        let again = import(&store, dir.path()).await;
        assert_eq!(again.files_already_imported, 3, "{backend}: {again:?}");
    }
}

#[tokio::test]
async fn compressed_files_import_like_plain_ones() {
    for (backend, store) in stores().await {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        for i in 0..50 {
            writeln!(enc, "{}", patient(&format!("z{i}"), "Zipped")).expect("gzip");
        }
        std::fs::write(
            dir.path().join("Patient.ndjson.gz"),
            enc.finish().expect("gzip"),
        )
        .expect("write");
        let s = import(&store, dir.path()).await;
        assert_eq!(s.totals.created, 50, "{backend}: {s:?}");
    }
}

#[tokio::test]
async fn an_interrupted_import_resumes_after_the_journaled_lines() {
    for (backend, store) in stores().await {
        let dir = tempfile::tempdir().expect("temp dir");
        let lines: Vec<Value> = (0..20)
            .map(|i| patient(&format!("r{i}"), "Resumed"))
            .collect();
        let path = ndjson(dir.path(), "p.ndjson", &lines);
        import(&store, &path).await;
        let before = snapshot(&store).await;
        // As if the run had been killed after the first 5 lines were journaled (and more had
        // been committed but not yet journaled).
        let records = store.state_list("import/file/").await.expect("journal");
        assert_eq!(records.len(), 1, "{backend}");
        let (key, text) = &records[0];
        let mut record: Value = serde_json::from_str(text).expect("record");
        let offset: u64 = lines[..5]
            .iter()
            .map(|l| l.to_string().len() as u64 + 1)
            .sum();
        record["done"] = json!(5);
        record["offset"] = json!(offset);
        record["read"] = json!(false);
        store
            .state_put(key, &record.to_string())
            .await
            .expect("put");

        let s = import(&store, &path).await;
        assert_eq!(s.lines_resumed, 5, "{backend}: {s:?}");
        assert_eq!(s.totals.unchanged, 15, "{backend}: {s:?}");
        assert_eq!(snapshot(&store).await, before, "{backend}");
    }
}

/// Imports `lines` once per backend for reference; then, for every `commits` below `up_to`,
/// into fresh stores with the import "killed" right after its transaction `commits` commits, and
/// then again to the end: each must end with exactly the reference's versions, and leave no
/// batch records behind. Answers how many imports were killed.
async fn killed_after_each_commit_then_rerun(lines: &[Value], up_to: i64) -> usize {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = ndjson(dir.path(), "p.ndjson", lines);
    let mut references = std::collections::HashMap::new();
    for (backend, store) in stores().await {
        let s = import(&store, &path).await;
        assert_eq!(s.totals.rejected, 0, "{backend}: {:?}", s.rejections);
        references.insert(backend, snapshot(&store).await);
    }
    let mut killed = 0;
    for commits in 0..up_to {
        for (backend, store) in stores().await {
            let dying = Arc::new(DiesAfterCommit::new(store.clone(), commits));
            // Past the last transaction nothing dies, and the import just finishes.
            if import::import(dying.clone(), &options(&path))
                .await
                .is_err()
            {
                killed += 1;
            }
            dying.settled().await;
            let rerun = import(&store, &path).await;
            let after = snapshot(&store).await;
            assert!(
                after == references[backend],
                "{backend}: killed after commit {commits}, the rerun ends with {} versions instead of {} ({rerun:?})",
                after.len(),
                references[backend].len()
            );
            let left = store.state_list("import/batch/").await.expect("state_list");
            assert!(left.is_empty(), "{backend}: batch records left: {left:?}");
        }
    }
    killed
}

#[tokio::test]
async fn stopped_between_commit_and_journal_a_rerun_writes_no_extra_versions() {
    // The same patients again and again, each time different: every line is a new version.
    let mut lines = Vec::new();
    for round in 0..4 {
        for i in 0..8 {
            lines.push(patient(&format!("d{i}"), &format!("Round{round}")));
        }
    }
    let killed = killed_after_each_commit_then_rerun(&lines, 12).await;
    assert!(killed >= 12, "only {killed} imports were killed");
}

/// A batch Bundle whose two entries write `Patient/{id}` twice, differently.
fn batch_writing_twice(id: &str, round: u32) -> Value {
    let entry = |n: u32| {
        json!({"resource": patient(id, &format!("Round{round}Entry{n}")),
            "request": {"method": "PUT", "url": format!("Patient/{id}")}})
    };
    json!({"resourceType": "Bundle", "type": "batch", "entry": [entry(1), entry(2)]})
}

#[tokio::test]
async fn killed_right_after_a_batch_commits_a_rerun_writes_no_extra_versions() {
    // Every line writes one patient twice (so a line written again makes new versions), and
    // later lines write the same patients again.
    let mut lines = Vec::new();
    for round in 0..3 {
        for i in 0..3 {
            lines.push(batch_writing_twice(&format!("w{i}"), round));
        }
    }
    lines.push(patient("w-last", "Last"));
    // One line per transaction (two writes each, with batches of three; the last two lines
    // share one): nine transactions.
    let killed = killed_after_each_commit_then_rerun(&lines, 10).await;
    assert!(killed >= 9, "only {killed} imports were killed");
}

/// A small deterministic generator for the garbage test (no dependency needed).
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[tokio::test]
async fn garbage_never_panics_and_every_line_is_imported_or_reported() {
    let mut rng = XorShift(0x5eed_1234_abcd_0001);
    let valid = [
        patient("g1", "Good").to_string(),
        observation("g-obs", "g1", 72.0).to_string(),
        json!({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": patient("g2", "InBundle")}]}).to_string(),
    ];
    // Random bytes (invalid UTF-8, NUL, carriage returns), and valid lines with bytes flipped,
    // cut short or spliced together.
    let mut lines: Vec<Vec<u8>> = Vec::new();
    for i in 0..400 {
        let line: Vec<u8> = match i % 4 {
            0 => (0..rng.below(200))
                .map(|_| rng.below(256) as u8)
                .filter(|b| *b != b'\n')
                .collect(),
            1 => {
                let mut l = valid[rng.below(3) as usize].clone().into_bytes();
                for _ in 0..=rng.below(4) {
                    let at = rng.below(l.len() as u64) as usize;
                    l[at] = match rng.below(256) as u8 {
                        b'\n' => b' ',
                        b => b,
                    };
                }
                l
            }
            2 => {
                let l = valid[rng.below(3) as usize].as_bytes();
                l[..rng.below(l.len() as u64) as usize].to_vec()
            }
            _ => {
                let a = valid[rng.below(3) as usize].as_bytes();
                let b = valid[rng.below(3) as usize].as_bytes();
                let mut l = a[..a.len() / 2].to_vec();
                l.extend_from_slice(&b[b.len() / 2..]);
                l
            }
        };
        lines.push(line);
    }
    lines.push(patient("control", "Control").to_string().into_bytes());
    let non_empty = lines
        .iter()
        .filter(|l| !l.iter().all(|b| b.is_ascii_whitespace()))
        .count() as u64;

    for (backend, store) in stores().await {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("garbage.ndjson");
        let mut text = Vec::new();
        for l in &lines {
            text.extend_from_slice(l);
            text.push(b'\n');
        }
        std::fs::write(&path, &text).expect("write");
        // A gzip file cut in half and a Bundle document cut short, beside it.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&text).expect("gzip");
        let gz = gz.finish().expect("gzip");
        std::fs::write(dir.path().join("cut.ndjson.gz"), &gz[..gz.len() / 2]).expect("write");
        std::fs::write(
            dir.path().join("cut.json"),
            &valid[2].as_bytes()[..valid[2].len() / 2],
        )
        .expect("write");

        let s = import::import(store.clone(), &options(&path))
            .await
            .unwrap_or_else(|e| panic!("{backend}: garbage stopped the import: {e}"));
        let t = &s.totals;
        let seen = t.created + t.updated + t.unchanged + t.rejected;
        assert!(
            seen >= non_empty,
            "{backend}: {non_empty} non-empty lines, but only {seen} imported or reported: {s:?}"
        );
        assert!(t.rejected > 0, "{backend}: garbage must be rejected");
        for message in &s.rejections {
            assert!(
                message.starts_with(&format!("{}:", path.display())),
                "{backend}: {message}"
            );
        }
        assert!(store
            .read("Patient", "control")
            .await
            .expect("read")
            .is_some());

        // The whole folder, with the cut gzip and the cut Bundle: no panic, and they are
        // reported rather than silently skipped.
        let all = import::import(store.clone(), &options(dir.path())).await;
        match all {
            Ok(s) => assert!(
                s.rejections
                    .iter()
                    .any(|m| m.contains("cut.ndjson.gz") || m.contains("cut.json")),
                "{backend}: the cut files are reported: {:?}",
                s.rejections
            ),
            Err(e) => assert!(!e.to_string().is_empty(), "{backend}"),
        }
    }
}
