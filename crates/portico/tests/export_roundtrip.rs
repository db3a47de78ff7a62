//! Bulk Data export, then `portico import` of its files into an empty database, gives back the
//! same resources: a synthetic region is seeded and imported into one database, served, changed
//! a little over HTTP (an update, a delete), exported over HTTP at system level, and the NDJSON
//! files are imported with the `portico` binary into a fresh database. On SQLite always, on
//! PostgreSQL too when `PORTICO_TEST_POSTGRES_URL` is set.
//!
//! What "the same" means: every current, non-deleted resource of the source is in the new
//! database under the same type and id with the same content, `meta` included except
//! `meta.versionId` and `meta.lastUpdated`; nothing else is there. The import keeps ids but
//! writes each resource as new, so every one of them is version 1 in the new database, last
//! updated at the import (the source's history is not carried over: an export holds current
//! versions only), and a resource deleted in the source is simply absent.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{fresh_postgres, import_json, open, postgres_admin_url, sqlite_url};
use serde_json::{json, Value};
use store::{ScanQuery, Store};

/// Every current resource: `(type, id)` → (version, content without versionId and lastUpdated).
async fn current(store: &dyn Store) -> BTreeMap<(String, String), (i64, Value)> {
    let mut out = BTreeMap::new();
    for ty in fhir::RESOURCE_TYPES {
        let mut q = ScanQuery::all(ty, 1000);
        loop {
            let page = store.scan(&q).await.expect("scan");
            for v in &page.resources {
                let mut value = v.parse().expect("stored JSON");
                if let Some(meta) = value.get_mut("meta").and_then(Value::as_object_mut) {
                    meta.remove("versionId");
                    meta.remove("lastUpdated");
                }
                out.insert(
                    (v.resource_type.clone(), v.id.clone()),
                    (v.version_id, value),
                );
            }
            match page.next_after {
                Some(after) => q.after = after,
                None => break,
            }
        }
    }
    out
}

struct Served {
    base: String,
    token: String,
    http: reqwest::Client,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn serve(store: Arc<dyn Store>, exports: &Path) -> Served {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let config = web::WebConfig {
        public_url: base.clone(),
        export_dir: exports.to_path_buf(),
        export_file_resources: 500,
        ..web::WebConfig::default()
    };
    let state = web::AppState::new(store, Arc::new(config))
        .await
        .expect("app state");
    let token = state
        .issue_token("roundtrip", "system/*.read system/*.write")
        .expect("token");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(web::serve(listener, state, async {
        let _ = stopped.await;
    }));
    Served {
        base,
        token,
        http: reqwest::Client::new(),
        _stop: stop,
    }
}

impl Served {
    async fn send(&self, rb: reqwest::RequestBuilder) -> (u16, reqwest::header::HeaderMap, String) {
        let res = rb.bearer_auth(&self.token).send().await.expect("request");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        (status, headers, res.text().await.expect("body"))
    }

    async fn get(&self, url: &str) -> (u16, reqwest::header::HeaderMap, String) {
        let url = if url.starts_with("http") {
            url.to_string()
        } else {
            format!("{}{url}", self.base)
        };
        self.send(self.http.get(url)).await
    }

    /// The first resource of `ty`.
    async fn first(&self, ty: &str) -> Value {
        let (status, _, body) = self.get(&format!("/fhir/{ty}?_count=1")).await;
        assert_eq!(status, 200, "{body}");
        let bundle: Value = serde_json::from_str(&body).expect("bundle");
        bundle["entry"][0]["resource"].clone()
    }

    /// Runs a system-level export and saves its files in `into`; the number of lines.
    async fn export_to(&self, into: &Path) -> u64 {
        let (status, headers, body) = self
            .send(
                self.http
                    .get(format!("{}/fhir/$export", self.base))
                    .header("prefer", "respond-async")
                    .header("accept", "application/fhir+json"),
            )
            .await;
        assert_eq!(status, 202, "kick-off: {body}");
        let status_url = headers
            .get("content-location")
            .and_then(|v| v.to_str().ok())
            .expect("Content-Location")
            .to_string();
        let mut manifest = None;
        for _ in 0..1200 {
            let (status, _, body) = self.get(&status_url).await;
            match status {
                202 => tokio::time::sleep(Duration::from_millis(50)).await,
                200 => {
                    manifest = Some(serde_json::from_str::<Value>(&body).expect("manifest"));
                    break;
                }
                other => panic!("status poll answered {other}: {body}"),
            }
        }
        let manifest = manifest.expect("the export finished");
        std::fs::create_dir_all(into).expect("mkdir");
        let mut lines = 0;
        for file in manifest["output"].as_array().expect("output") {
            let url = file["url"].as_str().expect("url");
            let (status, _, body) = self.get(url).await;
            assert_eq!(status, 200, "{url}");
            let name = url.rsplit('/').next().expect("file name");
            std::fs::write(into.join(name), &body).expect("save");
            lines += body.lines().count() as u64;
        }
        lines
    }
}

async fn round_trip(dir: &Path, source_url: &str, target_url: &str) {
    common::seed(dir, "15", "5", "region");
    let seeded = import_json(dir, source_url, &dir.join("region"), &[]);
    assert_eq!(seeded["rejected"], 0, "{seeded}");

    let source = open(source_url).await;
    let served = serve(source.clone(), &dir.join("exports")).await;
    // A second version of one resource, and a deleted one.
    let mut changed = served.first("Patient").await;
    changed["gender"] = json!("unknown");
    let id = changed["id"].as_str().expect("id").to_string();
    let (status, _, body) = served
        .send(
            served
                .http
                .put(format!("{}/fhir/Patient/{id}", served.base))
                .header("content-type", "application/fhir+json")
                .body(changed.to_string()),
        )
        .await;
    assert_eq!(status, 200, "update: {body}");
    let gone = served.first("Observation").await;
    let gone_id = gone["id"].as_str().expect("id").to_string();
    let (status, _, body) = served
        .send(
            served
                .http
                .delete(format!("{}/fhir/Observation/{gone_id}", served.base)),
        )
        .await;
    assert!(status < 300, "delete: {body}");

    let exported = served.export_to(&dir.join("exported")).await;
    let expected = current(source.as_ref()).await;
    assert_eq!(
        exported,
        expected.len() as u64,
        "one line per current resource"
    );
    assert_eq!(expected[&("Patient".to_string(), id.clone())].0, 2);
    assert!(!expected.contains_key(&("Observation".to_string(), gone_id.clone())));

    let imported = import_json(dir, target_url, &dir.join("exported"), &[]);
    assert_eq!(imported["rejected"], 0, "{imported}");
    assert_eq!(imported["created"].as_u64(), Some(exported), "{imported}");
    let target = open(target_url).await;
    let got = current(target.as_ref()).await;
    assert!(
        got.values().all(|(version, _)| *version == 1),
        "every resource is version 1 in the new database"
    );
    let strip =
        |m: &BTreeMap<(String, String), (i64, Value)>| -> BTreeMap<(String, String), Value> {
            m.iter().map(|(k, (_, v))| (k.clone(), v.clone())).collect()
        };
    let (expected, got) = (strip(&expected), strip(&got));
    let missing: Vec<_> = expected
        .keys()
        .filter(|k| !got.contains_key(*k))
        .take(5)
        .collect();
    let extra: Vec<_> = got
        .keys()
        .filter(|k| !expected.contains_key(*k))
        .take(5)
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, extra {extra:?}"
    );
    for (k, v) in &expected {
        assert_eq!(&got[k], v, "{k:?} differs after the round trip");
    }
    assert!(
        expected.len() > 500,
        "a real region went round: {} resources",
        expected.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn export_then_import_gives_the_same_resources_on_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let source = sqlite_url(dir.path(), "source.db");
    let target = sqlite_url(dir.path(), "target.db");
    round_trip(dir.path(), &source, &target).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn export_then_import_gives_the_same_resources_on_postgres() {
    let Some(admin) = postgres_admin_url() else {
        return;
    };
    let (source, source_url) = fresh_postgres(&admin).await;
    let (target, target_url) = fresh_postgres(&admin).await;
    let dir = tempfile::tempdir().expect("temp dir");
    round_trip(dir.path(), &source_url, &target_url).await;
    // Dropping the stores drops their test databases, once everything is over.
    drop((source, target));
}
