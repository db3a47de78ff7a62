//! The synthetic region: a deterministic generator of an NHS health economy as FHIR R4
//! resources, for `portico seed` (NDJSON files, up to hundreds of thousands of patients) and
//! `portico demo` (a small region written through the store).
//!
//! The region has NHS trusts and GP practices (ODS codes), their sites, services and staff
//! (GMC, NMC and GPhC numbers), clinicians' schedules with free and booked slots, and patients
//! with NHS numbers from the test range, households (children with their parents as
//! RelatedPersons), and years of history scaled by age and morbidity: encounters, problems,
//! repeat medicines (dm+d) and the prescriptions issued from them, allergies, immunisations,
//! observations with plausible trends, laboratory reports, appointments, waiting-list referrals
//! with realistic waits, and letters. Everything is invented.
//!
//! Same [`Options`] (seed, size, date) give byte-identical output. Every decision is a function
//! of the seed and of what it is about, so patients can be generated one at a time, in any
//! order, or in parallel — see [`rng`] for how, and [`clinics`] for how a clinic slot is shared
//! between the shared part (free) and a patient's record (booked) without either asking the
//! other. Memory does not grow with the region except for a few bytes per patient referred to a
//! hospital specialty.

pub mod calendar;
pub mod catalogue;
pub mod clinics;
pub mod ids;
mod json;
pub mod kind;
mod letters;
pub mod ndjson;
pub mod population;
mod record;
mod region;
pub mod rng;
mod vocab;

use chrono::NaiveDate;
use serde_json::Value;

pub use ids::IdStyle;
pub use kind::Kind;
pub use ndjson::{write_ndjson, Summary};
pub use population::MAX_PATIENTS;

use population::Layout;
use region::Region;

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// How many patients.
    pub patients: u64,
    /// The random seed: the same seed gives the same region.
    pub seed: u64,
    /// The day the region is generated "as of": clinical dates are relative to it, so that
    /// upcoming appointments stay upcoming and recent results stay recent.
    pub today: NaiveDate,
    /// How resource ids look.
    pub ids: IdStyle,
}

impl Options {
    /// Options with UUID-formatted ids.
    pub fn new(patients: u64, seed: u64, today: NaiveDate) -> Options {
        Options {
            patients,
            seed,
            today,
            ids: IdStyle::Hashed,
        }
    }
}

/// Why a region could not be generated or written.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("{0} patients is more than the test range of NHS numbers can give distinct numbers to; use at most {max}", max = MAX_PATIENTS)]
    TooManyPatients(u64),
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing a resource as JSON failed: {0}")]
    Json(#[from] serde_json::Error),
}

/// A region ready to be generated: its shared part is laid out, patients are made on demand.
pub struct Generator {
    region: Region,
}

impl Generator {
    /// Lays out the region. This looks at every patient's profile once (to size the hospital
    /// clinics), so it takes about a second per 100,000 patients.
    pub fn new(opts: &Options) -> Result<Generator, SeedError> {
        if opts.patients > MAX_PATIENTS {
            return Err(SeedError::TooManyPatients(opts.patients));
        }
        let layout = Layout::new(opts.seed, opts.today, opts.patients);
        let ids = ids::Ids::new(opts.seed, opts.ids);
        Ok(Generator {
            region: Region::new(layout, ids),
        })
    }

    /// How many patients the region has.
    pub fn patients(&self) -> u64 {
        self.region.layout.patients
    }

    /// The shared resources — organisations, locations, services, practitioners and their
    /// roles, schedules, free slots — each passed to `sink` in order.
    pub fn shared<E>(&self, sink: &mut dyn FnMut(Value) -> Result<(), E>) -> Result<(), E> {
        self.region.shared(sink)
    }

    /// Patient `index`'s record (0-based), the Patient resource first. Every reference in it
    /// resolves to a resource of the same record or of the shared part.
    pub fn patient(&self, index: u64) -> Vec<Value> {
        record::record(&self.region, index)
    }

    /// How many resources of each type patient `index`'s record holds, without building it:
    /// the same decisions as [`Generator::patient`] at a fraction of the cost, for sizing a
    /// region or finding its largest records.
    pub fn record_size(&self, index: u64) -> RecordSize {
        RecordSize(record::record_size(&self.region, index))
    }

    /// The id of patient `index`'s Patient resource.
    pub fn patient_id(&self, index: u64) -> String {
        self.region.ids.patient(index)
    }
}

/// Resources in one patient's record, by type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordSize([u64; Kind::ALL.len()]);

impl RecordSize {
    /// Resources of one type.
    pub fn of(&self, kind: Kind) -> u64 {
        self.0[kind.index()]
    }

    /// All resources.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// Resources in the patient's compartment: all but the Slots and Binaries, which are
    /// linked to the patient only through an Appointment or a DocumentReference.
    pub fn in_compartment(&self) -> u64 {
        self.total() - self.of(Kind::Slot) - self.of(Kind::Binary)
    }
}

/// Generates the whole region, resource by resource: the shared part first, then patient by
/// patient. Stops at the first error `sink` returns.
pub fn generate<E: From<SeedError>>(
    opts: &Options,
    sink: &mut dyn FnMut(Value) -> Result<(), E>,
) -> Result<(), E> {
    let generator = Generator::new(opts)?;
    generator.shared(sink)?;
    for i in 0..generator.patients() {
        for resource in generator.patient(i) {
            sink(resource)?;
        }
    }
    Ok(())
}
