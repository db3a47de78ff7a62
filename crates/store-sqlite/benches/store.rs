//! The SQLite store on its own: read by id, a single durable create, and a typical clinical
//! search, on a store holding 20,000 Observations of 200 patients.
//!
//! `cargo bench -p store-sqlite` (add `-- --quick` for a short run).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use store::audit::{AuditAction, AuditContext, AuditOutcome};
use store::contract::{create_op, nhs_number, observation, patient};
use store::query::{parse, ParseOptions};
use store::{Store, WriteOutcome};
use store_sqlite::SqliteStore;

const PATIENTS: usize = 200;
const OBSERVATIONS_PER_PATIENT: usize = 100;
const CODES: [(&str, &str, &str); 4] = [
    ("8867-4", "Heart rate", "/min"),
    ("8480-6", "Systolic blood pressure", "mm[Hg]"),
    ("2339-0", "Glucose", "mg/dL"),
    ("29463-7", "Body weight", "kg"),
];

struct Fixture {
    store: Arc<SqliteStore>,
    patient_ids: Vec<String>,
    observation_ids: Vec<String>,
    _dir: tempfile::TempDir,
}

fn ids_of(outcomes: Vec<WriteOutcome>) -> Vec<String> {
    outcomes
        .into_iter()
        .filter_map(|o| o.version().map(|v| v.id.clone()))
        .collect()
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let store = Arc::new(SqliteStore::open(&url, true).expect("open the bench store"));
    let ops = (0..PATIENTS)
        .map(|i| create_op(patient("Bench", "Pat", &nhs_number(i as u32 + 1))))
        .collect();
    let patient_ids = ids_of(store.transaction(ops).await.expect("create patients"));
    let mut observation_ids = Vec::new();
    for chunk in patient_ids.chunks(10) {
        let mut ops = Vec::new();
        for pid in chunk {
            for n in 0..OBSERVATIONS_PER_PATIENT {
                let (code, display, unit) = CODES[n % CODES.len()];
                let day = 1 + n % 28;
                let month = 1 + (n / 28) % 12;
                let effective = format!("2024-{month:02}-{day:02}T09:30:00Z");
                ops.push(create_op(observation(
                    &format!("Patient/{pid}"),
                    code,
                    display,
                    60.0 + n as f64,
                    unit,
                    &effective,
                )));
            }
        }
        observation_ids.extend(ids_of(
            store.transaction(ops).await.expect("create observations"),
        ));
    }
    Fixture {
        store,
        patient_ids,
        observation_ids,
        _dir: dir,
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let f = rt.block_on(fixture());
    let store = f.store.clone();

    let next = AtomicUsize::new(0);
    c.bench_function("read_by_id", |b| {
        b.to_async(&rt).iter(|| {
            let i = next.fetch_add(7919, Ordering::Relaxed) % f.observation_ids.len();
            let (store, id) = (store.clone(), f.observation_ids[i].clone());
            async move {
                let v = store.read("Observation", &id).await.expect("read");
                assert!(v.is_some());
            }
        })
    });

    // Throughput with many clients: what an HTTP server sees.
    let shared_ids = Arc::new(f.observation_ids.clone());
    c.bench_function("read_by_id_64_concurrent_x100", |b| {
        b.to_async(&rt).iter(|| {
            let store = store.clone();
            let ids = shared_ids.clone();
            async move {
                let mut tasks = Vec::with_capacity(64);
                for t in 0..64usize {
                    let (store, ids) = (store.clone(), ids.clone());
                    tasks.push(tokio::spawn(async move {
                        for k in 0..100usize {
                            let id = &ids[(t * 7919 + k * 104_729) % ids.len()];
                            let v = store.read("Observation", id).await.expect("read");
                            assert!(v.is_some());
                        }
                    }));
                }
                for t in tasks {
                    t.await.expect("reader task");
                }
            }
        })
    });

    // The same reads, each answered only once its audit record is durable (as the FHIR API
    // does): what auditing every read costs in throughput. Compare with the benchmark above.
    c.bench_function("read_by_id_audited_64_concurrent_x100", |b| {
        b.to_async(&rt).iter(|| {
            let store = store.clone();
            let ids = shared_ids.clone();
            async move {
                let mut tasks = Vec::with_capacity(64);
                for t in 0..64usize {
                    let (store, ids) = (store.clone(), ids.clone());
                    tasks.push(tokio::spawn(async move {
                        let ctx = AuditContext::portico("bench");
                        for k in 0..100usize {
                            let id = &ids[(t * 7919 + k * 104_729) % ids.len()];
                            let v = store.read("Observation", id).await.expect("read");
                            assert!(v.is_some());
                            let record = ctx.record(
                                chrono::Utc::now(),
                                AuditAction::Read,
                                Some(format!("Observation/{id}")),
                                None,
                                AuditOutcome::Success,
                                Some(200),
                            );
                            store.append_audit(vec![record]).await.expect("audit");
                        }
                    }));
                }
                for t in tasks {
                    t.await.expect("reader task");
                }
            }
        })
    });

    let serial = AtomicUsize::new(100_000);
    c.bench_function("create_single_durable", |b| {
        b.to_async(&rt).iter(|| {
            let n = serial.fetch_add(1, Ordering::Relaxed) as u32;
            let store = store.clone();
            async move {
                store
                    .write(create_op(patient("Bench", "New", &nhs_number(n))))
                    .await
                    .expect("create");
            }
        })
    });

    // Group commit: 16 clients, each waiting for its own durable acknowledgement.
    let serial = Arc::new(AtomicUsize::new(10_000_000));
    c.bench_function("create_16_concurrent_x50", |b| {
        b.to_async(&rt).iter(|| {
            let (store, serial) = (store.clone(), serial.clone());
            async move {
                let mut tasks = Vec::with_capacity(16);
                for _ in 0..16 {
                    let (store, serial) = (store.clone(), serial.clone());
                    tasks.push(tokio::spawn(async move {
                        for _ in 0..50 {
                            let n = serial.fetch_add(1, Ordering::Relaxed) as u32;
                            store
                                .write(create_op(patient("Bench", "Many", &nhs_number(n))))
                                .await
                                .expect("create");
                        }
                    }));
                }
                for t in tasks {
                    t.await.expect("writer task");
                }
            }
        })
    });

    let queries: Vec<_> = f
        .patient_ids
        .iter()
        .enumerate()
        .map(|(i, pid)| {
            let params = vec![
                ("patient".to_string(), format!("Patient/{pid}")),
                (
                    "code".to_string(),
                    format!("http://loinc.org|{}", CODES[i % CODES.len()].0),
                ),
                ("date".to_string(), "ge2024-03-01".to_string()),
            ];
            parse("Observation", &params, &ParseOptions::default())
                .expect("the bench search parses")
        })
        .collect();
    if std::env::var_os("PORTICO_BENCH_EXPLAIN").is_some() {
        explain_searches(&f, &queries[0]);
    }
    let next = AtomicUsize::new(0);
    c.bench_function("search_patient_code_date", |b| {
        b.to_async(&rt).iter(|| {
            let q = queries[next.fetch_add(1, Ordering::Relaxed) % queries.len()].clone();
            let store = store.clone();
            async move {
                let r = store.search(&q).await.expect("search");
                assert!(!r.matches.is_empty(), "the bench search finds observations");
            }
        })
    });
}

fn explain_searches(f: &Fixture, bench_query: &store::SearchQuery) {
    let d = store_sqlite::dialect();
    let pid = &f.patient_ids[0];
    let q = |ty: &str, pairs: &[(&str, &str)]| {
        let params: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        parse(ty, &params, &ParseOptions::default()).expect("parses")
    };
    let subject = format!("Patient/{pid}");
    let mut statements = vec![
        store::sql::search_page(d, bench_query),
        store::sql::search_page(
            d,
            &q(
                "Observation",
                &[
                    ("date", "ge2024-03-01"),
                    ("code", "8867-4"),
                    ("patient", &subject),
                ],
            ),
        ),
        store::sql::search_page(d, &q("Patient", &[])),
        store::sql::search_page(
            d,
            &q("Observation", &[("patient", &subject), ("_sort", "-date")]),
        ),
        store::sql::search_page(
            d,
            &q("Observation", &[("patient.identifier", "9990000018")]),
        ),
        store::sql::search_count(d, &q("Observation", &[("code", "8867-4")])),
    ];
    let inc = q("Observation", &[("_include", "Observation:patient")]);
    statements.push(store::sql::include(
        d,
        &inc.include[0],
        &f.observation_ids[..10],
        None,
    ));
    let rev = q("Patient", &[("_revinclude", "Observation:patient")]);
    statements.push(store::sql::revinclude(
        d,
        &rev.revinclude[0],
        "Patient",
        &f.patient_ids[..10],
        5000,
        None,
    ));
    for s in &statements {
        explain(f.store.path(), s);
    }
}

/// Prints SQLite's plan for a statement (set `PORTICO_BENCH_EXPLAIN=1`), to check that the
/// indexes serve it.
fn explain(path: &std::path::Path, sql: &store::sql::Sql) {
    use rusqlite::types::Value;
    let conn = rusqlite::Connection::open(path).expect("open the bench file");
    let params: Vec<Value> = sql
        .params
        .iter()
        .map(|p| match p {
            store::sql::SqlValue::Text(s) => Value::Text(s.clone()),
            store::sql::SqlValue::Int(i) => Value::Integer(*i),
            store::sql::SqlValue::Real(f) => Value::Real(*f),
        })
        .collect();
    let mut stmt = conn
        .prepare(&format!("EXPLAIN QUERY PLAN {}", sql.text))
        .expect("explain");
    let rows = stmt
        .query_map(rusqlite::params_from_iter(params), |r| {
            r.get::<_, String>(3)
        })
        .expect("explain rows");
    eprintln!("{}", sql.text);
    for r in rows {
        eprintln!("  {}", r.expect("plan row"));
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
