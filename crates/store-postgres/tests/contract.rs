//! The PostgreSQL store against a real server. Each test gets its own fresh database
//! (`PgStore::connect_fresh_for_tests`), so the tests run in parallel.
//!
//! Tests that need a server run when `PORTICO_TEST_POSTGRES_URL` is set (e.g.
//! `postgres://postgres@127.0.0.1:5432/test`); without it each says so in one line and returns.

use std::sync::Arc;

use serde_json::{json, Value};
use store::query::{self, ParseOptions};
use store::{
    ApiClient, HistoryQuery, HistoryScope, Prepared, SearchQuery, Store, StoreError, WriteOp,
    WriteOutcome,
};
use store_postgres::{PgOptions, PgStore};

/// The backend-neutral contract suite (`store::contract`), one test per rule.
mod contract_suite {
    use std::sync::Arc;

    async fn fresh_store() -> Option<Arc<dyn store::Store>> {
        let url = std::env::var(super::URL_VAR)
            .ok()
            .filter(|u| !u.is_empty())?;
        match store_postgres::PgStore::connect_fresh_for_tests(&url).await {
            Ok(store) => Some(Arc::new(store)),
            Err(e) => panic!("could not make a fresh test database: {e}"),
        }
    }

    store::contract_tests!(fresh_store);
}

const URL_VAR: &str = "PORTICO_TEST_POSTGRES_URL";

fn admin_url(test: &str) -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            println!("{test}: did not run on PostgreSQL: {URL_VAR} is not set");
            None
        }
    }
}

async fn fresh(test: &str) -> Option<Arc<PgStore>> {
    let url = admin_url(test)?;
    match PgStore::connect_fresh_for_tests(&url).await {
        Ok(store) => Some(Arc::new(store)),
        Err(e) => panic!("{test}: could not make a fresh test database: {e}"),
    }
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

fn prepared(value: Value) -> Prepared {
    Prepared::new(value).expect("test resource is valid")
}

fn patient(nhs: &str, family: &str, given: &str, birth_date: &str) -> Value {
    json!({
        "resourceType": "Patient",
        "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": nhs}],
        "name": [{"family": family, "given": [given]}],
        "birthDate": birth_date
    })
}

fn observation(patient_id: &str, code: &str, effective: &str) -> Value {
    json!({
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": format!("Patient/{patient_id}")},
        "effectiveDateTime": effective
    })
}

fn create(value: Value) -> WriteOp {
    WriteOp::Create {
        resource: prepared(value),
        if_none_exist: None,
        full_url: None,
    }
}

fn update(id: &str, mut value: Value, if_match: Option<i64>) -> WriteOp {
    value["id"] = json!(id);
    WriteOp::Update {
        id: id.to_string(),
        resource: prepared(value),
        if_match,
        full_url: None,
    }
}

fn search_query(resource_type: &str, params: &[(&str, &str)]) -> SearchQuery {
    let params: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    query::parse(resource_type, &params, &ParseOptions::default())
        .unwrap_or_else(|issues| panic!("search {params:?} does not parse: {issues:?}"))
}

async fn search_ids(store: &PgStore, resource_type: &str, params: &[(&str, &str)]) -> Vec<String> {
    let result = store
        .search(&search_query(resource_type, params))
        .await
        .expect("search runs");
    let mut ids: Vec<String> = result.matches.into_iter().map(|m| m.id).collect();
    ids.sort();
    ids
}

async fn created_id(store: &PgStore, value: Value) -> String {
    match store.write(create(value)).await.expect("create succeeds") {
        WriteOutcome::Created(v) => v.id,
        other => panic!("expected Created, got {other:?}"),
    }
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

#[tokio::test]
async fn create_read_vread_and_update_with_if_match() {
    let Some(store) = fresh("create_read_vread_and_update_with_if_match").await else {
        return;
    };
    assert_eq!(store.backend(), "postgres");
    store.ping().await.expect("ping");

    let created = match store
        .write(create(patient("9434765919", "Smith", "Ann", "1980-02-03")))
        .await
    {
        Ok(WriteOutcome::Created(v)) => v,
        other => panic!("expected Created, got {other:?}"),
    };
    assert_eq!(created.version_id, 1);
    let body: Value = serde_json::from_str(&created.json).expect("stored JSON");
    assert_eq!(body["id"], json!(created.id));
    assert_eq!(body["meta"]["versionId"], json!("1"));

    let read = store
        .read("Patient", &created.id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(read, created);

    let v2 = match store
        .write(update(
            &created.id,
            patient("9434765919", "Smith", "Anne", "1980-02-03"),
            Some(1),
        ))
        .await
    {
        Ok(WriteOutcome::Updated {
            version,
            changed: true,
        }) => version,
        other => panic!("expected a changed update, got {other:?}"),
    };
    assert_eq!(v2.version_id, 2);
    assert!(v2.last_updated >= created.last_updated);

    let stale = store
        .write(update(
            &created.id,
            patient("9434765919", "Smith", "Annie", "1980-02-03"),
            Some(1),
        ))
        .await;
    assert!(
        matches!(
            stale,
            Err(StoreError::VersionConflict {
                expected: 1,
                current: 2,
                ..
            })
        ),
        "a stale If-Match must conflict, got {stale:?}"
    );

    let unchanged = store
        .write(update(
            &created.id,
            patient("9434765919", "Smith", "Anne", "1980-02-03"),
            None,
        ))
        .await
        .expect("same content");
    assert!(
        matches!(unchanged, WriteOutcome::Updated { changed: false, ref version } if version.version_id == 2)
    );

    let v1 = store
        .vread("Patient", &created.id, 1)
        .await
        .expect("vread")
        .expect("v1 kept");
    assert_eq!(v1, created);
    let current = store
        .vread("Patient", &created.id, 2)
        .await
        .expect("vread")
        .expect("v2");
    assert_eq!(current, v2);
    assert_eq!(
        store.vread("Patient", &created.id, 3).await.expect("vread"),
        None
    );
    assert_eq!(
        store.read("Patient", "no-such-id").await.expect("read"),
        None
    );
    assert_eq!(
        store.read("Observation", &created.id).await.expect("read"),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_concurrent_updates_with_the_same_if_match_one_wins() {
    let Some(store) = fresh("sixteen_concurrent_updates_with_the_same_if_match_one_wins").await
    else {
        return;
    };
    let id = created_id(&store, patient("9434765919", "Race", "Start", "1970-01-01")).await;
    let start = Arc::new(tokio::sync::Barrier::new(16));
    let mut tasks = Vec::new();
    for i in 0..16 {
        let store = store.clone();
        let id = id.clone();
        let start = start.clone();
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            store
                .write(update(
                    &id,
                    patient("9434765919", "Race", &format!("Writer{i}"), "1970-01-01"),
                    Some(1),
                ))
                .await
        }));
    }
    let mut wins = 0;
    let mut conflicts = 0;
    for t in tasks {
        match t.await.expect("task ran") {
            Ok(WriteOutcome::Updated {
                version,
                changed: true,
            }) => {
                assert_eq!(version.version_id, 2);
                wins += 1;
            }
            Err(StoreError::VersionConflict {
                expected: 1,
                current: 2,
                ..
            }) => conflicts += 1,
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    assert_eq!((wins, conflicts), (1, 15));
    let current = store
        .read("Patient", &id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(current.version_id, 2);
    let history = store
        .history(&HistoryQuery {
            scope: HistoryScope::Instance {
                resource_type: "Patient".into(),
                id: id.clone(),
            },
            since: None,
            count: 50,
            offset: 0,
            access: None,
        })
        .await
        .expect("history");
    assert_eq!(history.total, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_updates_without_if_match_all_apply_and_time_never_goes_back() {
    let Some(store) =
        fresh("concurrent_updates_without_if_match_all_apply_and_time_never_goes_back").await
    else {
        return;
    };
    let id = created_id(&store, patient("9434765919", "Busy", "Start", "1970-01-01")).await;
    let start = Arc::new(tokio::sync::Barrier::new(16));
    let mut tasks = Vec::new();
    for i in 0..16 {
        let store = store.clone();
        let id = id.clone();
        let start = start.clone();
        let op = update(
            &id,
            patient("9434765919", "Busy", &format!("W{i}"), "1970-01-01"),
            None,
        );
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            store.write(op).await
        }));
    }
    for t in tasks {
        match t.await.expect("task ran") {
            Ok(WriteOutcome::Updated { changed: true, .. }) => {}
            other => panic!("every update without If-Match applies, got {other:?}"),
        }
    }
    assert_eq!(
        store
            .read("Patient", &id)
            .await
            .expect("read")
            .map(|v| v.version_id),
        Some(17)
    );
    assert_versions_move_forward(&store, "Patient", &id, 17).await;
}

/// Versions 1..=last of a resource exist and their `last_updated` never decreases.
async fn assert_versions_move_forward(store: &PgStore, resource_type: &str, id: &str, last: i64) {
    let mut previous = None;
    for v in 1..=last {
        let version = store
            .vread(resource_type, id, v)
            .await
            .expect("vread")
            .unwrap_or_else(|| panic!("version {v} is missing"));
        if let Some(p) = previous {
            assert!(
                version.last_updated >= p,
                "version {v} ({}) is earlier than version {} ({p})",
                version.last_updated,
                v - 1
            );
        }
        previous = Some(version.last_updated);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_puts_creating_one_client_chosen_id_become_create_then_updates() {
    let Some(store) =
        fresh("concurrent_puts_creating_one_client_chosen_id_become_create_then_updates").await
    else {
        return;
    };
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .write(update(
                    "chosen-1",
                    patient("9434765919", "Put", &format!("Writer{i}"), "1970-01-01"),
                    None,
                ))
                .await
        }));
    }
    let mut created = 0;
    let mut updated = 0;
    for t in tasks {
        match t.await.expect("task ran") {
            Ok(WriteOutcome::Created(_)) => created += 1,
            Ok(WriteOutcome::Updated { changed: true, .. }) => updated += 1,
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    assert_eq!((created, updated), (1, 7));
    let current = store
        .read("Patient", "chosen-1")
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(current.version_id, 8);
    assert_versions_move_forward(&store, "Patient", "chosen-1", 8).await;
}

#[tokio::test]
async fn delete_then_read_shows_the_deletion_and_keeps_history() {
    let Some(store) = fresh("delete_then_read_shows_the_deletion_and_keeps_history").await else {
        return;
    };
    let id = created_id(&store, patient("9434765919", "Gone", "Soon", "1990-05-06")).await;
    assert_eq!(
        search_ids(&store, "Patient", &[("family", "gone")]).await,
        vec![id.clone()]
    );

    let deleted = store
        .write(WriteOp::Delete {
            resource_type: "Patient".into(),
            id: id.clone(),
        })
        .await
        .expect("delete");
    let deletion = match deleted {
        WriteOutcome::Deleted {
            version: Some(v), ..
        } => v,
        other => panic!("expected a deletion version, got {other:?}"),
    };
    assert_eq!(deletion.version_id, 2);
    assert!(deletion.deleted);

    let read = store
        .read("Patient", &id)
        .await
        .expect("read")
        .expect("the deletion is current");
    assert!(read.deleted);
    assert!(read.json.is_empty());
    assert_eq!(read.version_id, 2);
    assert!(store
        .vread("Patient", &id, 1)
        .await
        .expect("vread")
        .is_some_and(|v| !v.deleted));
    assert!(
        search_ids(&store, "Patient", &[("family", "gone")])
            .await
            .is_empty(),
        "a deleted resource leaves the search indexes"
    );

    let again = store
        .write(WriteOp::Delete {
            resource_type: "Patient".into(),
            id: id.clone(),
        })
        .await
        .expect("second delete");
    assert!(matches!(again, WriteOutcome::Deleted { version: None, .. }));

    // Writing it again after the deletion continues its version history.
    let back = store
        .write(update(
            &id,
            patient("9434765919", "Gone", "Back", "1990-05-06"),
            None,
        ))
        .await
        .expect("recreate");
    assert_eq!(back.version().map(|v| v.version_id), Some(3));
    assert_eq!(
        search_ids(&store, "Patient", &[("given", "back")]).await,
        vec![id]
    );
}

#[tokio::test]
async fn history_lists_versions_newest_first_by_instance_type_and_system() {
    let Some(store) =
        fresh("history_lists_versions_newest_first_by_instance_type_and_system").await
    else {
        return;
    };
    let id = created_id(&store, patient("9434765919", "Hist", "One", "1960-01-01")).await;
    store
        .write(update(
            &id,
            patient("9434765919", "Hist", "Two", "1960-01-01"),
            Some(1),
        ))
        .await
        .expect("v2");
    store
        .write(WriteOp::Delete {
            resource_type: "Patient".into(),
            id: id.clone(),
        })
        .await
        .expect("v3");
    let other = created_id(
        &store,
        patient("9000000009", "Other", "Person", "1961-01-01"),
    )
    .await;
    let obs = created_id(
        &store,
        observation(&other, "8867-4", "2024-01-01T10:00:00Z"),
    )
    .await;

    let instance = HistoryQuery {
        scope: HistoryScope::Instance {
            resource_type: "Patient".into(),
            id: id.clone(),
        },
        since: None,
        count: 10,
        offset: 0,
        access: None,
    };
    let page = store.history(&instance).await.expect("instance history");
    assert_eq!(page.total, 3);
    let versions: Vec<i64> = page.versions.iter().map(|v| v.version_id).collect();
    assert_eq!(versions, vec![3, 2, 1]);
    assert!(page.versions[0].deleted);

    let paged = store
        .history(&HistoryQuery {
            count: 1,
            offset: 1,
            ..instance.clone()
        })
        .await
        .expect("second page");
    assert_eq!(paged.total, 3);
    assert_eq!(paged.versions.len(), 1);
    assert_eq!(paged.versions[0].version_id, 2);

    let by_type = store
        .history(&HistoryQuery {
            scope: HistoryScope::Type {
                resource_type: "Patient".into(),
            },
            since: None,
            count: 10,
            offset: 0,
            access: None,
        })
        .await
        .expect("type history");
    assert_eq!(by_type.total, 4);
    assert_eq!(by_type.versions[0].id, other, "newest first");

    let system = store
        .history(&HistoryQuery {
            scope: HistoryScope::System,
            since: None,
            count: 10,
            offset: 0,
            access: None,
        })
        .await
        .expect("system history");
    assert_eq!(system.total, 5);
    assert_eq!(system.versions[0].id, obs);

    let newest = system.versions[0].last_updated;
    let since = store
        .history(&HistoryQuery {
            scope: HistoryScope::System,
            since: Some(newest),
            count: 10,
            offset: 0,
            access: None,
        })
        .await
        .expect("history since");
    assert!(since.versions.iter().all(|v| v.last_updated >= newest));
    assert!(since.versions.iter().any(|v| v.id == obs));
    assert!(since.total < system.total || system.versions.iter().all(|v| v.last_updated == newest));
}

#[tokio::test]
async fn search_by_token_with_and_without_system() {
    let Some(store) = fresh("search_by_token_with_and_without_system").await else {
        return;
    };
    let a = created_id(&store, patient("9434765919", "Token", "A", "1980-01-01")).await;
    let b = created_id(&store, patient("9000000009", "Token", "B", "1980-01-01")).await;
    assert_eq!(
        search_ids(
            &store,
            "Patient",
            &[("identifier", "https://fhir.nhs.uk/Id/nhs-number|9434765919")]
        )
        .await,
        vec![a.clone()]
    );
    assert_eq!(
        search_ids(&store, "Patient", &[("identifier", "9000000009")]).await,
        vec![b.clone()]
    );
    assert_eq!(
        search_ids(
            &store,
            "Patient",
            &[("identifier", "https://fhir.nhs.uk/Id/nhs-number|")]
        )
        .await,
        sorted(vec![a.clone(), b.clone()])
    );
    assert!(search_ids(
        &store,
        "Patient",
        &[("identifier", "http://other|9434765919")]
    )
    .await
    .is_empty());
    assert_eq!(
        search_ids(&store, "Patient", &[("identifier:not", "9434765919")]).await,
        vec![b.clone()]
    );
    assert_eq!(
        search_ids(
            &store,
            "Patient",
            &[("identifier", "9434765919,9000000009")]
        )
        .await,
        sorted(vec![a.clone(), b])
    );
    assert_eq!(search_ids(&store, "Patient", &[("_id", &a)]).await, vec![a]);
}

#[tokio::test]
async fn search_by_string_prefix_ignores_case_and_accents() {
    let Some(store) = fresh("search_by_string_prefix_ignores_case_and_accents").await else {
        return;
    };
    let zoe = created_id(
        &store,
        patient("9434765919", "O'Brien", "Zoë", "1980-01-01"),
    )
    .await;
    let zola = created_id(&store, patient("9000000009", "Zola", "Émile", "1980-01-01")).await;
    let _other = created_id(&store, patient("9000000017", "Abbott", "Yan", "1980-01-01")).await;

    assert_eq!(
        search_ids(&store, "Patient", &[("given", "zoe")]).await,
        vec![zoe.clone()]
    );
    assert_eq!(
        search_ids(&store, "Patient", &[("given", "EMI")]).await,
        vec![zola.clone()]
    );
    assert_eq!(
        search_ids(&store, "Patient", &[("name", "zo")]).await,
        sorted(vec![zoe.clone(), zola.clone()])
    );
    assert_eq!(
        search_ids(&store, "Patient", &[("family", "o'b")]).await,
        vec![zoe.clone()]
    );
    assert!(
        search_ids(&store, "Patient", &[("family", "brien")])
            .await
            .is_empty(),
        "prefix, not contains"
    );
    assert_eq!(
        search_ids(&store, "Patient", &[("family:contains", "brie")]).await,
        vec![zoe.clone()]
    );
    assert_eq!(
        search_ids(&store, "Patient", &[("given:exact", "Zoë")]).await,
        vec![zoe.clone()]
    );
    assert!(search_ids(&store, "Patient", &[("given:exact", "zoe")])
        .await
        .is_empty());

    // Sorting by a string parameter compares code points, as on SQLite.
    let q = search_query("Patient", &[("_sort", "family")]);
    let result = store.search(&q).await.expect("sorted search");
    let families: Vec<String> = result
        .matches
        .iter()
        .map(|m| {
            serde_json::from_str::<Value>(&m.json).expect("json")["name"][0]["family"].to_string()
        })
        .collect();
    assert_eq!(families, vec!["\"Abbott\"", "\"O'Brien\"", "\"Zola\""]);
}

#[tokio::test]
async fn search_by_date_ge_and_other_prefixes() {
    let Some(store) = fresh("search_by_date_ge_and_other_prefixes").await else {
        return;
    };
    let old = created_id(&store, patient("9434765919", "Date", "Old", "1950-06-15")).await;
    let mid = created_id(&store, patient("9000000009", "Date", "Mid", "1980-01-01")).await;
    let young = created_id(&store, patient("9000000017", "Date", "Young", "2010-12-31")).await;

    assert_eq!(
        search_ids(&store, "Patient", &[("birthdate", "ge1980-01-01")]).await,
        sorted(vec![mid.clone(), young.clone()])
    );
    assert_eq!(
        search_ids(&store, "Patient", &[("birthdate", "ge1981")]).await,
        vec![young.clone()]
    );
    assert_eq!(
        search_ids(&store, "Patient", &[("birthdate", "lt1980-01-01")]).await,
        vec![old.clone()]
    );
    assert_eq!(
        search_ids(&store, "Patient", &[("birthdate", "1980")]).await,
        vec![mid.clone()]
    );
    assert_eq!(
        search_ids(
            &store,
            "Patient",
            &[("birthdate", "ge1950"), ("birthdate", "le1980-12-31")]
        )
        .await,
        sorted(vec![old, mid])
    );
    let all = search_ids(&store, "Patient", &[("_lastUpdated", "ge2000-01-01")]).await;
    assert_eq!(all.len(), 3);
}

#[tokio::test]
async fn search_by_reference_and_includes() {
    let Some(store) = fresh("search_by_reference_and_includes").await else {
        return;
    };
    let p1 = created_id(&store, patient("9434765919", "Ref", "One", "1980-01-01")).await;
    let p2 = created_id(&store, patient("9000000009", "Ref", "Two", "1980-01-01")).await;
    let o1 = created_id(&store, observation(&p1, "8867-4", "2024-01-01T10:00:00Z")).await;
    let o2 = created_id(&store, observation(&p1, "8310-5", "2024-01-02T10:00:00Z")).await;
    let o3 = created_id(&store, observation(&p2, "8867-4", "2024-01-03T10:00:00Z")).await;

    let p1_ref = format!("Patient/{p1}");
    assert_eq!(
        search_ids(&store, "Observation", &[("subject", &p1_ref)]).await,
        sorted(vec![o1.clone(), o2.clone()])
    );
    assert_eq!(
        search_ids(&store, "Observation", &[("patient", &p2)]).await,
        vec![o3.clone()]
    );
    assert_eq!(
        search_ids(
            &store,
            "Observation",
            &[("subject", &p1_ref), ("code", "http://loinc.org|8867-4")]
        )
        .await,
        vec![o1.clone()]
    );

    let mut q = search_query(
        "Observation",
        &[("code", "8867-4"), ("_include", "Observation:subject")],
    );
    q.total = true;
    let result = store.search(&q).await.expect("include");
    assert_eq!(result.total, Some(2));
    let mut included: Vec<String> = result.included.iter().map(|v| v.id.clone()).collect();
    included.sort();
    assert_eq!(included, sorted(vec![p1.clone(), p2.clone()]));

    let q = search_query(
        "Patient",
        &[("_id", &p1), ("_revinclude", "Observation:subject")],
    );
    let result = store.search(&q).await.expect("revinclude");
    assert_eq!(result.matches.len(), 1);
    let mut rev: Vec<String> = result.included.iter().map(|v| v.id.clone()).collect();
    rev.sort();
    assert_eq!(rev, sorted(vec![o1, o2]));
}

#[tokio::test]
async fn search_by_chain_follows_the_reference() {
    let Some(store) = fresh("search_by_chain_follows_the_reference").await else {
        return;
    };
    let p1 = created_id(
        &store,
        patient("9434765919", "Chain", "Alpha", "1980-01-01"),
    )
    .await;
    let p2 = created_id(&store, patient("9000000009", "Other", "Beta", "1980-01-01")).await;
    let o1 = created_id(&store, observation(&p1, "8867-4", "2024-01-01T10:00:00Z")).await;
    let _o2 = created_id(&store, observation(&p2, "8867-4", "2024-01-01T10:00:00Z")).await;

    assert_eq!(
        search_ids(&store, "Observation", &[("subject:Patient.name", "alph")]).await,
        vec![o1.clone()]
    );
    assert_eq!(
        search_ids(
            &store,
            "Observation",
            &[(
                "patient.identifier",
                "https://fhir.nhs.uk/Id/nhs-number|9434765919"
            )]
        )
        .await,
        vec![o1]
    );
    store
        .write(WriteOp::Delete {
            resource_type: "Patient".into(),
            id: p1,
        })
        .await
        .expect("delete");
    assert!(
        search_ids(&store, "Observation", &[("subject:Patient.name", "alph")])
            .await
            .is_empty(),
        "a chain does not follow references to deleted resources"
    );
}

#[tokio::test]
async fn search_pages_and_counts() {
    let Some(store) = fresh("search_pages_and_counts").await else {
        return;
    };
    for i in 0..5 {
        created_id(
            &store,
            patient("9434765919", &format!("Page{i}"), "P", "1980-01-01"),
        )
        .await;
    }
    let mut q = search_query("Patient", &[("_sort", "family"), ("_count", "2")]);
    q.total = true;
    let first = store.search(&q).await.expect("page 1");
    assert_eq!(first.total, Some(5));
    assert_eq!(first.matches.len(), 2);
    assert!(first.has_more);
    q.offset = 4;
    let last = store.search(&q).await.expect("page 3");
    assert_eq!(last.matches.len(), 1);
    assert!(!last.has_more);

    let count_only = search_query("Patient", &[("_summary", "count")]);
    let result = store.search(&count_only).await.expect("count");
    assert_eq!(result.total, Some(5));
    assert!(result.matches.is_empty());
}

#[tokio::test]
async fn a_failing_entry_rolls_back_the_whole_transaction() {
    let Some(store) = fresh("a_failing_entry_rolls_back_the_whole_transaction").await else {
        return;
    };
    let result = store
        .transaction(vec![
            create(patient("9434765919", "Rolled", "Back", "1980-01-01")),
            update(
                "does-not-exist",
                patient("9000000009", "Never", "Written", "1980-01-01"),
                Some(3),
            ),
        ])
        .await;
    match result {
        Err(StoreError::Entry { index: 1, source }) => {
            assert!(
                matches!(*source, StoreError::VersionConflict { .. }),
                "got {source:?}"
            )
        }
        other => panic!("expected entry 1 to fail, got {other:?}"),
    }
    assert!(search_ids(&store, "Patient", &[("family", "rolled")])
        .await
        .is_empty());
    let history = store
        .history(&HistoryQuery {
            scope: HistoryScope::System,
            since: None,
            count: 10,
            offset: 0,
            access: None,
        })
        .await
        .expect("history");
    assert_eq!(history.total, 0, "nothing of the first entry remains");

    // A transaction whose entries reference each other by urn:uuid commits as a whole.
    let outcomes = store
        .transaction(vec![
            WriteOp::Create {
                resource: prepared(patient("9434765919", "Bundle", "Pat", "1980-01-01")),
                if_none_exist: None,
                full_url: Some("urn:uuid:2b7e5bd6-1f0e-4d2c-9a51-4b2f6c1e0a01".into()),
            },
            WriteOp::Create {
                resource: prepared(json!({
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                    "subject": {"reference": "urn:uuid:2b7e5bd6-1f0e-4d2c-9a51-4b2f6c1e0a01"}
                })),
                if_none_exist: None,
                full_url: None,
            },
        ])
        .await
        .expect("transaction commits");
    let patient_id = outcomes[0].version().expect("created").id.clone();
    let obs_id = outcomes[1].version().expect("created").id.clone();
    assert_eq!(
        search_ids(
            &store,
            "Observation",
            &[("subject", &format!("Patient/{patient_id}"))]
        )
        .await,
        vec![obs_id]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_concurrent_conditional_creates_make_one_resource() {
    let Some(store) = fresh("eight_concurrent_conditional_creates_make_one_resource").await else {
        return;
    };
    // Several rounds, each with its own NHS number, so that a missing lock shows reliably.
    for round in 1..=5 {
        let nhs = store::contract::nhs_number(round);
        let criteria = search_query(
            "Patient",
            &[(
                "identifier",
                &format!("https://fhir.nhs.uk/Id/nhs-number|{nhs}"),
            )],
        );
        let start = Arc::new(tokio::sync::Barrier::new(8));
        let mut tasks = Vec::new();
        for i in 0..8 {
            let store = store.clone();
            let criteria = criteria.clone();
            let start = start.clone();
            let resource = prepared(patient(&nhs, "Once", &format!("Try{i}"), "1980-01-01"));
            tasks.push(tokio::spawn(async move {
                start.wait().await;
                store
                    .write(WriteOp::Create {
                        resource,
                        if_none_exist: Some(criteria),
                        full_url: None,
                    })
                    .await
            }));
        }
        let mut created = Vec::new();
        let mut existing = Vec::new();
        for t in tasks {
            match t.await.expect("task ran") {
                Ok(WriteOutcome::Created(v)) => created.push(v.id),
                Ok(WriteOutcome::Existing(v)) => existing.push(v.id),
                other => panic!("round {round}: unexpected outcome {other:?}"),
            }
        }
        assert_eq!(created.len(), 1, "round {round}: exactly one create");
        assert_eq!(existing.len(), 7);
        assert!(existing.iter().all(|id| *id == created[0]));
        assert_eq!(
            search_ids(&store, "Patient", &[("identifier", &nhs)]).await,
            created
        );
    }
}

#[tokio::test]
async fn conditional_update_and_delete_find_their_target() {
    let Some(store) = fresh("conditional_update_and_delete_find_their_target").await else {
        return;
    };
    let criteria = search_query(
        "Patient",
        &[("identifier", "https://fhir.nhs.uk/Id/nhs-number|9434765919")],
    );
    let first = store
        .write(WriteOp::ConditionalUpdate {
            criteria: criteria.clone(),
            resource: prepared(patient("9434765919", "Cond", "First", "1980-01-01")),
            if_match: None,
            full_url: None,
        })
        .await
        .expect("conditional update creates");
    let id = match first {
        WriteOutcome::Created(v) => v.id,
        other => panic!("expected Created, got {other:?}"),
    };
    let second = store
        .write(WriteOp::ConditionalUpdate {
            criteria: criteria.clone(),
            resource: prepared(patient("9434765919", "Cond", "Second", "1980-01-01")),
            if_match: None,
            full_url: None,
        })
        .await
        .expect("conditional update updates");
    assert!(
        matches!(second, WriteOutcome::Updated { ref version, changed: true } if version.id == id && version.version_id == 2)
    );
    created_id(&store, patient("9434765919", "Cond", "Twin", "1980-01-01")).await;
    let ambiguous = store.write(WriteOp::ConditionalDelete { criteria }).await;
    assert!(
        matches!(ambiguous, Err(StoreError::MultipleMatches { count: 2 })),
        "got {ambiguous:?}"
    );
}

#[tokio::test]
async fn last_updated_never_goes_back_when_another_instance_clock_is_ahead() {
    let Some(store) =
        fresh("last_updated_never_goes_back_when_another_instance_clock_is_ahead").await
    else {
        return;
    };
    let id = created_id(&store, patient("9434765919", "Clock", "Skew", "1980-01-01")).await;
    // Another instance, its clock an hour ahead, wrote the resource last.
    let ahead = fhir::datetime::now_millis().timestamp_millis() + 3_600_000;
    let url = url_for_database(&admin_url("clock").expect("url set"), store.database());
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .expect("direct connection");
    sqlx::query(
        "UPDATE resources SET last_updated = $1 WHERE res_type = 'Patient' AND res_id = $2",
    )
    .bind(ahead)
    .bind(&id)
    .execute(&mut conn)
    .await
    .expect("move the clock");

    let next = store
        .write(update(
            &id,
            patient("9434765919", "Clock", "Later", "1980-01-01"),
            Some(1),
        ))
        .await
        .expect("update despite skew");
    let version = next.version().expect("a version").clone();
    assert!(
        version.last_updated.timestamp_millis() >= ahead,
        "went back in time: {version:?}"
    );
    let stored = store
        .read("Patient", &id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(stored, version);
    let body: Value = serde_json::from_str(&stored.json).expect("json");
    assert_eq!(
        body["meta"]["lastUpdated"],
        json!(fhir::datetime::format_instant(stored.last_updated)),
        "the JSON and the column agree"
    );
}

#[tokio::test]
async fn signing_key_is_made_once_and_shared_by_instances() {
    let Some(store) = fresh("signing_key_is_made_once_and_shared_by_instances").await else {
        return;
    };
    let url = url_for_database(&admin_url("signing").expect("url set"), store.database());
    let other = PgStore::connect(&url).await.expect("second instance");
    let (a, b) = tokio::join!(store.signing_key(), other.signing_key());
    let (a, b) = (a.expect("key"), b.expect("key"));
    assert_eq!(a.len(), 32);
    assert_eq!(a, b);
    assert_eq!(store.signing_key().await.expect("key again"), a);
    assert_ne!(a, vec![0u8; 32]);
}

#[tokio::test]
async fn api_clients_round_trip_and_ids_are_unique() {
    let Some(store) = fresh("api_clients_round_trip_and_ids_are_unique").await else {
        return;
    };
    let created_at = chrono::DateTime::from_timestamp_millis(1_700_000_000_123).expect("instant");
    let client = ApiClient {
        client_id: "lab-feed".into(),
        name: "Lab feed".into(),
        secret_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        scopes: "system/Observation.write".into(),
        created_at,
    };
    store.insert_api_client(&client).await.expect("insert");
    assert_eq!(
        store.api_client("lab-feed").await.expect("get"),
        Some(client.clone())
    );
    assert_eq!(store.api_client("nobody").await.expect("get"), None);
    let again = store.insert_api_client(&client).await;
    assert!(
        matches!(again, Err(StoreError::Conflict(ref m)) if m.contains("lab-feed")),
        "got {again:?}"
    );
}

#[tokio::test]
async fn concurrent_instances_apply_migrations_once() {
    let Some(url) = admin_url("concurrent_instances_apply_migrations_once") else {
        return;
    };
    // An empty database that four instances start on at once.
    let name = format!(
        "portico_t_{}_mig{:08x}",
        chrono::Utc::now().timestamp(),
        rand::random::<u32>()
    );
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .expect("admin connection");
    sqlx::query(&format!(
        "CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8'"
    ))
    .execute(&mut admin)
    .await
    .expect("create database");
    let target = url_for_database(&url, &name);
    let starts = (0..4).map(|_| PgStore::connect(&target));
    let stores = futures::future::join_all(starts).await;
    for s in &stores {
        assert!(
            s.is_ok(),
            "an instance failed to start: {:?}",
            s.as_ref().err()
        );
    }
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&target)
        .await
        .expect("connect");
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(&mut conn)
        .await
        .expect("migrations table");
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .expect("migrations dir")
        .count() as i64;
    assert_eq!(applied, files);
    let store = stores
        .into_iter()
        .next()
        .expect("a store")
        .expect("connected");
    created_id(
        &store,
        patient("9434765919", "Migrated", "Ok", "1980-01-01"),
    )
    .await;
    drop(store);
    drop(conn);
    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&mut admin)
        .await;
}

#[tokio::test]
async fn connect_rejects_an_unparsable_url_without_showing_the_password() {
    let e = PgStore::connect("postgres://alice:hunter2@db.example:notaport/portico")
        .await
        .expect_err("bad URL");
    let msg = e.to_string();
    assert!(msg.contains("not a valid PostgreSQL URL"), "{msg}");
    assert!(
        msg.contains("postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE"),
        "{msg}"
    );
    assert!(!msg.contains("hunter2"), "{msg}");

    let e = PgStore::connect("mysql://alice:hunter2@db.example/portico")
        .await
        .expect_err("wrong scheme");
    let msg = e.to_string();
    assert!(msg.contains("postgres://"), "{msg}");
    assert!(!msg.contains("hunter2"), "{msg}");
}

#[tokio::test]
async fn connect_to_an_unreachable_port_says_so_without_the_password() {
    // Port 1 on the loopback interface: nothing listens there.
    let e = PgStore::connect("postgres://alice:hunter2@127.0.0.1:1/portico")
        .await
        .expect_err("unreachable");
    let msg = e.to_string();
    assert!(
        msg.contains("cannot reach PostgreSQL at 127.0.0.1:1"),
        "{msg}"
    );
    assert!(msg.contains("connection refused"), "{msg}");
    assert!(
        msg.contains("postgres://alice:***@127.0.0.1:1/portico"),
        "{msg}"
    );
    assert!(!msg.contains("hunter2"), "{msg}");

    // A host that does not answer at all times out with the configured limit.
    let options = PgOptions {
        connect_timeout: std::time::Duration::from_millis(300),
        ..PgOptions::default()
    };
    // 192.0.2.0/24 is TEST-NET-1: never routed.
    let e = PgStore::connect_with("postgres://alice:hunter2@192.0.2.1:5432/portico", &options)
        .await
        .expect_err("unreachable host");
    let msg = e.to_string();
    assert!(
        msg.contains("cannot reach PostgreSQL at 192.0.2.1:5432"),
        "{msg}"
    );
    assert!(!msg.contains("hunter2"), "{msg}");
}

#[tokio::test]
async fn connect_to_a_missing_database_or_unknown_user_says_what_to_do() {
    let Some(url) = admin_url("connect_to_a_missing_database_or_unknown_user_says_what_to_do")
    else {
        return;
    };
    let missing = url_for_database(&url, "portico_no_such_database");
    let msg = PgStore::connect(&missing)
        .await
        .expect_err("missing database")
        .to_string();
    assert!(
        msg.contains("no database \"portico_no_such_database\""),
        "{msg}"
    );
    assert!(msg.contains("createdb portico_no_such_database"), "{msg}");

    let after_scheme = url.find("://").map(|i| i + 3).expect("URL has a scheme");
    let host_and_rest = match url[after_scheme..].rfind('@') {
        Some(at) => &url[after_scheme + at + 1..],
        None => &url[after_scheme..],
    };
    let stranger = format!("postgres://portico_no_such_user:hunter2@{host_and_rest}");
    let msg = PgStore::connect(&stranger)
        .await
        .expect_err("unknown user")
        .to_string();
    assert!(
        msg.contains("refused user \"portico_no_such_user\""),
        "{msg}"
    );
    assert!(msg.contains("check the user and password"), "{msg}");
    assert!(!msg.contains("hunter2"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_take_a_code_once_and_count_every_rate_limit_hit() {
    let test = "two_instances_take_a_code_once_and_count_every_rate_limit_hit";
    let Some(a) = fresh(test).await else {
        return;
    };
    let Some(admin) = admin_url(test) else {
        return;
    };
    let b = PgStore::connect(&url_for_database(&admin, a.database()))
        .await
        .expect("a second instance on the same database");
    store::contract::two_instances_take_once_and_count_every_hit(a, Arc::new(b)).await;
}

/// A database whose access index was built by other rules (or, migrated forward, never built)
/// is rebuilt when a server connects; one recorded as current is left alone.
#[tokio::test]
async fn connecting_rebuilds_an_access_index_built_by_other_rules() {
    use store::contract::{access_index_is_complete, store_data_from_before_the_access_index};
    let Some(first) = fresh("access reindex").await else {
        return;
    };
    store_data_from_before_the_access_index(&*first).await;
    assert!(!access_index_is_complete(&*first).await);
    let url = url_for_database(
        &admin_url("access reindex").expect("url set"),
        first.database(),
    );
    let second = PgStore::connect(&url).await.expect("connect again");
    assert!(
        !access_index_is_complete(&second).await,
        "an index recorded as built by the current rules is not rebuilt"
    );
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .expect("connect");
    sqlx::query("UPDATE access_index SET version = 'older rules'")
        .execute(&mut conn)
        .await
        .expect("forget the version");
    // Several servers starting at once rebuild it once between them.
    let started: Vec<PgStore> = futures::future::join_all((0..3).map(|_| PgStore::connect(&url)))
        .await
        .into_iter()
        .map(|s| s.expect("connect concurrently"))
        .collect();
    for store in &started {
        assert!(access_index_is_complete(store).await);
    }
    let labels: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM idx_token WHERE param = '_portico-label'")
            .fetch_one(&mut conn)
            .await
            .expect("count label rows");
    assert_eq!(
        labels, 4,
        "one label row per current resource, none doubled"
    );
    let recorded: Vec<String> = sqlx::query_scalar("SELECT version FROM access_index")
        .fetch_all(&mut conn)
        .await
        .expect("read the version");
    assert_eq!(recorded, [store::access::ACCESS_INDEX_VERSION]);
}
