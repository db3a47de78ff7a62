//! `portico-bench`: what the figures in BENCHMARKS.md are measured with.
//!
//! - `fill` writes a synthetic population (patients, each with many observations) through the
//!   real store, in batched transactions, and writes the ids wrk's scripts pick from.
//! - `record` adds patients with a whole record each (about `resources` resources of the
//!   compartment's usual types), for the `Patient/$everything` figures.
//! - `ceiling` serves the same stored JSON by primary key from SQLite with a bare axum handler:
//!   the most this machine can do, measured beside Portico so the ratio survives machine drift.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use clap::{Parser, Subcommand};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use store::{Prepared, Store, WriteOp};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Fill a store with `patients` patients, each with `observations` observations.
    Fill {
        #[arg(long)]
        database_url: String,
        #[arg(long, default_value_t = 10_000)]
        patients: usize,
        #[arg(long, default_value_t = 99)]
        observations: usize,
        /// Where to write the ids for the wrk scripts.
        #[arg(long, default_value = "bench-data")]
        out: PathBuf,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Add `patients` patients (`rec0`, `rec1`, …) with `resources` compartment resources each.
    Record {
        #[arg(long)]
        database_url: String,
        #[arg(long, default_value_t = 20)]
        patients: usize,
        #[arg(long, default_value_t = 1000)]
        resources: usize,
        /// Where to write `record-patients.txt` for bench/everything.lua.
        #[arg(long, default_value = "bench-data")]
        out: PathBuf,
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
    /// Bare axum + SQLite: GET /Observation/{id} returns the stored JSON by primary key.
    Ceiling {
        #[arg(long)]
        sqlite: PathBuf,
        #[arg(long, default_value = "127.0.0.1:8090")]
        addr: String,
    },
}

const CODES: &[(&str, &str, &str, f64, f64)] = &[
    ("8867-4", "Heart rate", "/min", 50.0, 110.0),
    ("8480-6", "Systolic blood pressure", "mm[Hg]", 95.0, 180.0),
    ("8462-4", "Diastolic blood pressure", "mm[Hg]", 55.0, 110.0),
    ("29463-7", "Body weight", "kg", 45.0, 130.0),
    ("4548-4", "Hemoglobin A1c", "%", 4.5, 11.0),
    ("2339-0", "Glucose", "mmol/L", 3.5, 15.0),
    ("8310-5", "Body temperature", "Cel", 35.5, 39.5),
    ("9279-1", "Respiratory rate", "/min", 10.0, 30.0),
];

fn nhs_number(rng: &mut StdRng) -> String {
    loop {
        if let Some(n) = fhir::nhs_number::NhsNumber::in_test_range(rng.random_range(0..1_000_000))
        {
            return n.digits();
        }
    }
}

fn patient(rng: &mut StdRng, id: &str) -> serde_json::Value {
    const FAMILY: &[&str] = &[
        "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Patel",
        "Khan",
    ];
    const GIVEN: &[&str] = &[
        "Oliver", "Amelia", "George", "Isla", "Harry", "Ava", "Noah", "Mia", "Leo", "Zoë",
    ];
    let year = rng.random_range(1930..2020);
    json!({
        "resourceType": "Patient",
        "id": id,
        "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": nhs_number(rng)}],
        "name": [{"use": "official", "family": FAMILY[rng.random_range(0..FAMILY.len())], "given": [GIVEN[rng.random_range(0..GIVEN.len())]]}],
        "gender": if rng.random_bool(0.5) { "female" } else { "male" },
        "birthDate": format!("{year}-{:02}-{:02}", rng.random_range(1..13), rng.random_range(1..29)),
        "address": [{"line": [format!("{} High Street", rng.random_range(1..200))], "city": "Leeds", "postalCode": "LS1 4AP"}]
    })
}

fn observation(rng: &mut StdRng, id: &str, patient: &str) -> serde_json::Value {
    let (code, display, unit, lo, hi) = CODES[rng.random_range(0..CODES.len())];
    let value: f64 = (rng.random_range(lo..hi) * 10.0_f64).round() / 10.0;
    json!({
        "resourceType": "Observation",
        "id": id,
        "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": display}]},
        "subject": {"reference": format!("Patient/{patient}")},
        "effectiveDateTime": format!("{}-{:02}-{:02}T{:02}:{:02}:00Z", rng.random_range(2015..2027), rng.random_range(1..13), rng.random_range(1..29), rng.random_range(7..19), rng.random_range(0..60)),
        "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}
    })
}

/// One resource of a whole record: mostly observations, then the other usual types, all in
/// the patient's compartment.
fn record_resource(rng: &mut StdRng, id: &str, patient: &str) -> serde_json::Value {
    let subject = json!({"reference": format!("Patient/{patient}")});
    let day = format!(
        "{}-{:02}-{:02}",
        rng.random_range(2010..2027),
        rng.random_range(1..13),
        rng.random_range(1..29)
    );
    let snomed = |code: &str, display: &str| json!({"coding": [{"system": "http://snomed.info/sct", "code": code, "display": display}]});
    match rng.random_range(0..100) {
        0..=59 => observation(rng, id, patient),
        60..=64 => json!({
            "resourceType": "Condition", "id": id, "subject": subject,
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
            "code": snomed("44054006", "Diabetes mellitus type 2"),
            "onsetDateTime": day,
        }),
        65..=74 => json!({
            "resourceType": "MedicationRequest", "id": id, "status": "active", "intent": "order",
            "medicationCodeableConcept": {"coding": [{"system": "https://dmd.nhs.uk", "code": "39720311000001101", "display": "Metformin 500mg tablets"}]},
            "subject": subject, "authoredOn": day,
            "dosageInstruction": [{"text": "One tablet twice a day"}],
        }),
        75..=84 => json!({
            "resourceType": "Encounter", "id": id, "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": subject,
            "period": {"start": format!("{day}T09:00:00Z"), "end": format!("{day}T09:20:00Z")},
        }),
        85..=89 => json!({
            "resourceType": "Immunization", "id": id, "status": "completed",
            "vaccineCode": snomed("39114911000001105", "Influenza vaccine"),
            "patient": subject, "occurrenceDateTime": day,
        }),
        90..=91 => json!({
            "resourceType": "AllergyIntolerance", "id": id, "patient": subject,
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": "active"}]},
            "code": snomed("91936005", "Allergy to penicillin"),
        }),
        92..=96 => json!({
            "resourceType": "Appointment", "id": id, "status": "booked",
            "start": format!("{day}T10:00:00Z"), "end": format!("{day}T10:15:00Z"),
            "participant": [{"actor": subject, "status": "accepted"}],
        }),
        _ => json!({
            "resourceType": "DiagnosticReport", "id": id, "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "24331-1", "display": "Lipid panel"}]},
            "subject": subject, "effectiveDateTime": day,
        }),
    }
}

async fn record(
    url: &str,
    patients: usize,
    resources: usize,
    out: PathBuf,
    seed: u64,
) -> Result<(), Box<dyn std::error::Error>> {
    let store = open(url).await?;
    std::fs::create_dir_all(&out)?;
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut ids = String::new();
    let mut written = 0;
    for p in 0..patients {
        let pid = format!("rec{p}");
        let mut ops = vec![WriteOp::Update {
            id: pid.clone(),
            resource: Prepared::new(patient(&mut rng, &pid))?,
            if_match: None,
            full_url: None,
        }];
        for r in 1..resources {
            let rid = format!("rec{p}-{r}");
            ops.push(WriteOp::Update {
                id: rid.clone(),
                resource: Prepared::new(record_resource(&mut rng, &rid, &pid))?,
                if_match: None,
                full_url: None,
            });
        }
        written += store.transaction(ops).await?.len();
        ids.push_str(&pid);
        ids.push('\n');
    }
    std::fs::write(out.join("record-patients.txt"), ids)?;
    println!(
        "wrote {patients} records of {resources} resources ({written} in all) in {:.1}s to {url}",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn open(url: &str) -> Result<Arc<dyn Store>, store::StoreError> {
    if url.starts_with("postgres") {
        Ok(Arc::new(store_postgres::PgStore::connect(url).await?))
    } else {
        Ok(Arc::new(store_sqlite::SqliteStore::open(url, true)?))
    }
}

async fn fill(
    url: &str,
    patients: usize,
    observations: usize,
    out: PathBuf,
    seed: u64,
) -> Result<(), Box<dyn std::error::Error>> {
    let store = open(url).await?;
    std::fs::create_dir_all(&out)?;
    let started = Instant::now();
    let per_patient = observations + 1;
    let total = patients * per_patient;
    // Patients go in chunks; a few chunks are in flight at once so the writer always has work.
    let chunk = (2000 / per_patient).max(1);
    let concurrency = 4;
    let mut pending = futures::stream::FuturesUnordered::new();
    let mut written = 0usize;
    let mut ids_pat = String::new();
    let mut ids_obs = String::new();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut next = 0usize;
    use futures::StreamExt;
    loop {
        while pending.len() < concurrency && next < patients {
            let end = (next + chunk).min(patients);
            let mut ops = Vec::with_capacity((end - next) * per_patient);
            for p in next..end {
                let pid = format!("p{p}");
                ids_pat.push_str(&pid);
                ids_pat.push('\n');
                ops.push(WriteOp::Update {
                    id: pid.clone(),
                    resource: Prepared::new(patient(&mut rng, &pid))?,
                    if_match: None,
                    full_url: None,
                });
                for o in 0..observations {
                    let oid = format!("o{p}-{o}");
                    if o == 0 {
                        ids_obs.push_str(&oid);
                        ids_obs.push('\n');
                    }
                    ops.push(WriteOp::Update {
                        id: oid.clone(),
                        resource: Prepared::new(observation(&mut rng, &oid, &pid))?,
                        if_match: None,
                        full_url: None,
                    });
                }
            }
            next = end;
            let s = store.clone();
            pending.push(async move { s.transaction(ops).await.map(|o| o.len()) });
        }
        match pending.next().await {
            Some(r) => {
                written += r?;
                if written % 100_000 < chunk * per_patient {
                    let secs = started.elapsed().as_secs_f64();
                    eprintln!(
                        "{written}/{total} resources, {:.0}/s",
                        written as f64 / secs
                    );
                }
            }
            None => break,
        }
    }
    let secs = started.elapsed().as_secs_f64();
    std::fs::write(out.join("patients.txt"), ids_pat)?;
    std::fs::write(out.join("observations.txt"), ids_obs)?;
    println!(
        "wrote {written} resources in {secs:.1}s ({:.0}/s) to {url}",
        written as f64 / secs
    );
    Ok(())
}

thread_local! {
    /// One read-only connection per runtime worker thread: the least a handler can do.
    static CONN: std::cell::RefCell<Option<rusqlite::Connection>> = const { std::cell::RefCell::new(None) };
}

fn ceiling_lookup(path: &std::path::Path, id: &str) -> rusqlite::Result<Option<String>> {
    CONN.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            let c = rusqlite::Connection::open_with_flags(
                path,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                    | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            c.pragma_update(None, "mmap_size", 1i64 << 30)?;
            *slot = Some(c);
        }
        let Some(conn) = slot.as_ref() else {
            return Ok(None);
        };
        let mut st = conn.prepare_cached(
            "SELECT content FROM resources WHERE res_type = 'Observation' AND res_id = ?1",
        )?;
        let mut rows = st.query([id])?;
        match rows.next()? {
            Some(r) => Ok(Some(r.get::<_, String>(0)?)),
            None => Ok(None),
        }
    })
}

async fn ceiling_read(State(path): State<Arc<PathBuf>>, Path(id): Path<String>) -> Response {
    match ceiling_lookup(&path, &id) {
        Ok(Some(body)) => ([(header::CONTENT_TYPE, "application/fhir+json")], body).into_response(),
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn ceiling(sqlite: PathBuf, addr: &str) -> Result<(), Box<dyn std::error::Error>> {
    let app = axum::Router::new()
        .route("/Observation/{id}", axum::routing::get(ceiling_read))
        .with_state(Arc::new(sqlite));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    eprintln!("ceiling server on http://{addr}/Observation/{{id}}");
    axum::serve(listener, app).await?;
    Ok(())
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Fill {
            database_url,
            patients,
            observations,
            out,
            seed,
        } => fill(&database_url, patients, observations, out, seed).await,
        Cmd::Record {
            database_url,
            patients,
            resources,
            out,
            seed,
        } => record(&database_url, patients, resources, out, seed).await,
        Cmd::Ceiling { sqlite, addr } => ceiling(sqlite, &addr).await,
    };
    if let Err(e) = r {
        eprintln!("portico-bench: {e}");
        std::process::exit(1);
    }
}
