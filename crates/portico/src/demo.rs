//! The demo region: the synthetic region of the `seed` crate at a small size, written through
//! the store like any other data.
//!
//! One trust, two GP practices, their staff, schedules and slots, and patients with NHS numbers
//! from the test range and years of records (see the `seed` crate for what is in them). Ids are
//! readable (`pat-0001`, `pat-0001-obs-3`, `Organization/trust-northmoor`), and patient
//! `pat-0001` always has diabetes, hypertension, an allergy, clinic letters and an appointment
//! with their GP coming up, so that every kind of record is there to look at.
//!
//! Everything comes from one fixed random seed, so two runs on the same day produce the same
//! resources; clinical dates are relative to `today`, so that "recent" results and "upcoming"
//! appointments stay so.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde_json::Value;
use store::{Prepared, Store, StoreError, WriteOp};

use crate::error::{Error, Result};

/// The seed of the demo region. Changing it changes every generated resource.
pub const SEED: u64 = 0x0050_7210_2024;

/// What [`seed`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Seeded {
    pub resources: usize,
    pub patients: usize,
    pub counts: BTreeMap<String, usize>,
}

/// The generator's options for the demo: the fixed seed, readable ids.
pub fn options(patients: u32, today: NaiveDate) -> seed::Options {
    let mut options = seed::Options::new(u64::from(patients), SEED, today);
    options.ids = seed::IdStyle::Readable;
    options
}

/// Generates the region and writes it: the shared part in one transaction, then one transaction
/// per patient. Every resource passes R4 validation on the way in ([`Prepared::new`]).
pub async fn seed(store: &dyn Store, patients: u32, today: NaiveDate) -> Result<Seeded> {
    let generator = seed::Generator::new(&options(patients, today))
        .map_err(|e| Error::Usage(format!("--patients: {e}")))?;
    let mut counts = BTreeMap::new();
    let mut shared = Vec::new();
    let Ok(()) = generator.shared(&mut |r| {
        shared.push(r);
        Ok::<(), std::convert::Infallible>(())
    });
    write(store, &shared, &mut counts).await?;
    drop(shared);
    for i in 0..generator.patients() {
        let record = generator.patient(i);
        write(store, &record, &mut counts).await?;
    }
    Ok(Seeded {
        resources: counts.values().sum(),
        patients: counts.get("Patient").copied().unwrap_or(0),
        counts,
    })
}

/// Writes resources in one transaction and counts them by type.
async fn write(
    store: &dyn Store,
    resources: &[Value],
    counts: &mut BTreeMap<String, usize>,
) -> Result<()> {
    store
        .transaction(operations(resources)?)
        .await
        .map_err(|e| seed_error(resources, e))?;
    for r in resources {
        let t = r["resourceType"].as_str().unwrap_or("?").to_string();
        *counts.entry(t).or_insert(0) += 1;
    }
    Ok(())
}

/// Each resource as an update with its client-chosen id (which creates it).
fn operations(resources: &[Value]) -> Result<Vec<WriteOp>> {
    resources
        .iter()
        .map(|r| {
            let id = r["id"].as_str().unwrap_or_default().to_string();
            let resource = Prepared::new(r.clone()).map_err(|e| invalid_demo_resource(r, e))?;
            Ok(WriteOp::Update {
                id,
                resource,
                if_match: None,
                full_url: None,
            })
        })
        .collect()
}

fn label(r: &Value) -> String {
    format!(
        "{}/{}",
        r["resourceType"].as_str().unwrap_or("?"),
        r["id"].as_str().unwrap_or("?")
    )
}

/// The demo data is ours: a resource the store refuses is a bug in the generator.
fn invalid_demo_resource(r: &Value, e: StoreError) -> Error {
    let detail = match &e {
        StoreError::Invalid(issues) => issues
            .iter()
            .map(|i| {
                format!(
                    "{} ({})",
                    i.diagnostics,
                    i.expression.as_deref().unwrap_or("-")
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    };
    Error::Server(format!(
        "demo resource {} is invalid (a bug in the seed crate's generator): {detail}",
        label(r)
    ))
}

fn seed_error(resources: &[Value], e: StoreError) -> Error {
    match &e {
        StoreError::Entry { index, .. } => match resources.get(*index) {
            Some(r) => Error::Server(format!(
                "writing demo resource {} failed: {}",
                label(r),
                e.root()
            )),
            None => Error::Store(e),
        },
        _ => Error::Store(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("date")
    }

    #[tokio::test]
    async fn seeding_writes_the_region_through_the_store_with_readable_ids() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = store_sqlite::SqliteStore::open_path(&dir.path().join("demo.db"), true)
            .expect("open store");
        let seeded = seed(&store, 8, day(2025, 6, 2)).await.expect("seed");
        assert_eq!(seeded.patients, 8);
        assert_eq!(seeded.counts["Organization"], 3);
        assert_eq!(seeded.resources, seeded.counts.values().sum::<usize>());
        for t in [
            "Patient",
            "Practitioner",
            "Schedule",
            "Slot",
            "Appointment",
            "Encounter",
            "Condition",
            "MedicationRequest",
            "Observation",
            "DocumentReference",
            "Binary",
        ] {
            assert!(seeded.counts.get(t).copied().unwrap_or(0) > 0, "no {t}");
        }
        // The ids the README and the banner show.
        for (t, id) in [
            ("Patient", "pat-0001"),
            ("Organization", "trust-northmoor"),
            ("Organization", "gp-riverside"),
            ("Organization", "gp-hilltop"),
        ] {
            let found = store.read(t, id).await.expect("read");
            assert!(found.is_some(), "{t}/{id} missing");
        }
    }

    #[test]
    fn the_first_patient_shows_every_kind_of_record_and_a_booked_appointment() {
        let today = day(2025, 6, 2);
        let generator = seed::Generator::new(&options(50, today)).expect("region");
        let record = generator.patient(0);
        let types: std::collections::HashSet<&str> = record
            .iter()
            .filter_map(|r| r["resourceType"].as_str())
            .collect();
        for t in [
            "Patient",
            "Condition",
            "MedicationRequest",
            "AllergyIntolerance",
            "Observation",
            "Encounter",
            "Appointment",
            "Immunization",
            "DocumentReference",
            "Binary",
        ] {
            assert!(types.contains(t), "pat-0001 has no {t}");
        }
        assert_eq!(record[0]["id"], "pat-0001");
        let booked = record
            .iter()
            .any(|r| r["resourceType"] == "Appointment" && r["status"] == "booked");
        assert!(booked, "pat-0001 has no booked appointment");
        let blood_pressure = record
            .iter()
            .any(|r| r["code"]["coding"][0]["code"] == "85354-9");
        assert!(blood_pressure);
    }
}
