//! The demo region: a small, synthetic, deterministic slice of an NHS health economy, written
//! through the store like any other data.
//!
//! One trust (a hospital with diabetes and cardiology clinics), two GP practices, ten staff,
//! their locations, services, schedules and the next two weeks of slots, and patients with
//! NHS numbers from the test range, GP registrations and records: problems, allergies,
//! prescriptions, observations, immunisations, encounters, past and booked appointments, and
//! clinic letters.
//!
//! Everything comes from one fixed random seed, so two runs on the same day produce the same
//! resources. Birth dates are absolute; clinical dates are relative to `today`, so that "recent"
//! results and "upcoming" appointments stay so. Clinic times are Europe/London wall-clock times
//! written with their UTC offset. Names, addresses, ODS codes and professional registration
//! numbers are invented; telephone numbers are from Ofcom's range for drama, email addresses use
//! `example.com`. Medicines are given as text only (no dm+d codes).

use std::collections::{BTreeMap, HashSet};

use chrono::{Datelike, Duration, NaiveDate, Weekday};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use store::{Prepared, Store, StoreError, WriteOp};

use crate::error::{Error, Result};
use fhir::nhs_number::NhsNumber;

/// The seed of the demo region. Changing it changes every generated resource.
pub const SEED: u64 = 0x0050_7210_2024;

const ODS: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
const SNOMED: &str = "http://snomed.info/sct";
const LOINC: &str = "http://loinc.org";
const UCUM: &str = "http://unitsofmeasure.org";
const CVX: &str = "http://hl7.org/fhir/sid/cvx";
const GMC: &str = "https://fhir.hl7.org.uk/Id/gmc-number";
const NMC: &str = "https://fhir.hl7.org.uk/Id/nmc-number";
const GPHC: &str = "https://fhir.hl7.org.uk/Id/gphc-number";
const ROLE: &str = "http://terminology.hl7.org/CodeSystem/practitioner-role";
const OBS_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";
const CONDITION_CLINICAL: &str = "http://terminology.hl7.org/CodeSystem/condition-clinical";
const CONDITION_VER: &str = "http://terminology.hl7.org/CodeSystem/condition-ver-status";
const CONDITION_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/condition-category";
const ALLERGY_CLINICAL: &str = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical";
const ALLERGY_VER: &str = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification";
const ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
const APPOINTMENT_TYPE: &str = "http://terminology.hl7.org/CodeSystem/v2-0276";
const PHYSICAL_TYPE: &str = "http://terminology.hl7.org/CodeSystem/location-physical-type";
const ORG_TYPE: &str = "http://terminology.hl7.org/CodeSystem/organization-type";
const PARTICIPANT_TYPE: &str = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType";

/// The generated region, in the order it is written: `shared` in one transaction, then one
/// transaction per patient.
#[derive(Debug, Clone, PartialEq)]
pub struct Region {
    pub shared: Vec<Value>,
    pub patients: Vec<Vec<Value>>,
}

impl Region {
    pub fn resource_count(&self) -> usize {
        self.shared.len() + self.patients.iter().map(Vec::len).sum::<usize>()
    }

    /// Resources per type, for the summary printed after seeding.
    pub fn counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for r in self.shared.iter().chain(self.patients.iter().flatten()) {
            let t = r["resourceType"].as_str().unwrap_or("?").to_string();
            *counts.entry(t).or_insert(0) += 1;
        }
        counts
    }
}

/// What [`seed`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Seeded {
    pub resources: usize,
    pub patients: usize,
    pub counts: BTreeMap<String, usize>,
}

/// Generates the region and writes it: the shared part in one transaction, then one transaction
/// per patient. Every resource passes R4 validation on the way in ([`Prepared::new`]).
pub async fn seed(store: &dyn Store, patients: u32, today: NaiveDate) -> Result<Seeded> {
    let region = region(patients, today);
    store
        .transaction(operations(&region.shared)?)
        .await
        .map_err(|e| seed_error(&region.shared, e))?;
    for record in &region.patients {
        store
            .transaction(operations(record)?)
            .await
            .map_err(|e| seed_error(record, e))?;
    }
    Ok(Seeded {
        resources: region.resource_count(),
        patients: region.patients.len(),
        counts: region.counts(),
    })
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

/// The demo data is ours: a resource the store refuses is a bug in this module.
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
        "demo resource {} is invalid (a bug in portico's demo data): {detail}",
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

/// The whole region for `patients` patients, as of `today`.
pub fn region(patients: u32, today: NaiveDate) -> Region {
    let mut g = Gen {
        rng: StdRng::seed_from_u64(SEED),
        today,
        nhs_numbers: HashSet::new(),
    };
    let mut shared = organisations();
    let staff = staff();
    for s in &staff {
        shared.push(s.practitioner());
        shared.push(s.role());
    }
    shared.extend(services());
    let mut clinics = Clinics::new(&staff, today);
    let patients = (1..=patients)
        .map(|n| g.patient_record(n, &staff, &mut clinics))
        .collect();
    shared.extend(clinics.schedules);
    shared.extend(clinics.slots);
    Region { shared, patients }
}

// ---------------------------------------------------------------------------------------------
// Organisations, places, services

struct Org {
    id: &'static str,
    ods: &'static str,
    name: &'static str,
    phone: &'static str,
    line: &'static str,
    postcode: &'static str,
    location: &'static str,
    location_name: &'static str,
}

static TRUST: Org = Org {
    id: "trust-northmoor",
    ods: "R9Z",
    name: "Northmoor Hospitals NHS Foundation Trust",
    phone: "0113 496 0000",
    line: "Infirmary Road",
    postcode: "NM1 3QA",
    location: "loc-northmoor-general",
    location_name: "Northmoor General Hospital",
};
static RIVERSIDE: Org = Org {
    id: "gp-riverside",
    ods: "Y99001",
    name: "Riverside Medical Practice",
    phone: "0113 496 0100",
    line: "2 Mill Lane",
    postcode: "NM2 5RD",
    location: "loc-riverside",
    location_name: "Riverside Medical Practice",
};
static HILLTOP: Org = Org {
    id: "gp-hilltop",
    ods: "Y99002",
    name: "Hilltop Surgery",
    phone: "0113 496 0200",
    line: "41 Beacon Street",
    postcode: "NM4 8HT",
    location: "loc-hilltop",
    location_name: "Hilltop Surgery",
};
const OUTPATIENTS: &str = "loc-northmoor-outpatients";

fn address(line: &str, postcode: &str, use_: &str) -> Value {
    json!({"use": use_, "line": [line], "city": "Northmoor", "district": "West Yorkshire",
           "postalCode": postcode, "country": "GB"})
}

fn cc(system: &str, code: &str, display: &str) -> Value {
    json!({"coding": [{"system": system, "code": code, "display": display}], "text": display})
}

fn reference(target: &str, display: &str) -> Value {
    json!({"reference": target, "display": display})
}

fn reference_to(target: &str) -> Value {
    json!({"reference": target})
}

fn organisations() -> Vec<Value> {
    let mut out = Vec::new();
    for (org, kind) in [
        (&TRUST, ("prov", "Healthcare Provider")),
        (&RIVERSIDE, ("prov", "Healthcare Provider")),
        (&HILLTOP, ("prov", "Healthcare Provider")),
    ] {
        out.push(json!({
            "resourceType": "Organization",
            "id": org.id,
            "identifier": [{"system": ODS, "value": org.ods}],
            "active": true,
            "type": [cc(ORG_TYPE, kind.0, kind.1)],
            "name": org.name,
            "telecom": [{"system": "phone", "value": org.phone, "use": "work"}],
            "address": [address(org.line, org.postcode, "work")],
        }));
        out.push(json!({
            "resourceType": "Location",
            "id": org.location,
            "status": "active",
            "name": org.location_name,
            "mode": "instance",
            "telecom": [{"system": "phone", "value": org.phone, "use": "work"}],
            "address": address(org.line, org.postcode, "work"),
            "physicalType": cc(PHYSICAL_TYPE, "bu", "Building"),
            "managingOrganization": reference(&format!("Organization/{}", org.id), org.name),
        }));
    }
    out.push(json!({
        "resourceType": "Location",
        "id": OUTPATIENTS,
        "status": "active",
        "name": "Outpatients Department, Northmoor General Hospital",
        "mode": "instance",
        "physicalType": cc(PHYSICAL_TYPE, "wi", "Wing"),
        "managingOrganization": reference(&format!("Organization/{}", TRUST.id), TRUST.name),
        "partOf": reference(&format!("Location/{}", TRUST.location), TRUST.location_name),
    }));
    out
}

/// A clinic run by the trust, or a practice's GP appointments.
struct Service {
    id: &'static str,
    name: &'static str,
    org: &'static Org,
    location: &'static str,
    specialty: (&'static str, &'static str),
}

static SERVICES: [Service; 4] = [
    Service {
        id: "hs-diabetes",
        name: "Diabetes and Endocrinology Outpatients",
        org: &TRUST,
        location: OUTPATIENTS,
        specialty: ("394583002", "Endocrinology"),
    },
    Service {
        id: "hs-cardiology",
        name: "Cardiology Outpatients",
        org: &TRUST,
        location: OUTPATIENTS,
        specialty: ("394579002", "Cardiology"),
    },
    Service {
        id: "hs-riverside-gp",
        name: "GP appointments, Riverside Medical Practice",
        org: &RIVERSIDE,
        location: RIVERSIDE.location,
        specialty: ("394814009", "General practice"),
    },
    Service {
        id: "hs-hilltop-gp",
        name: "GP appointments, Hilltop Surgery",
        org: &HILLTOP,
        location: HILLTOP.location,
        specialty: ("394814009", "General practice"),
    },
];

fn service(id: &str) -> &'static Service {
    SERVICES.iter().find(|s| s.id == id).unwrap_or(&SERVICES[0])
}

fn services() -> Vec<Value> {
    SERVICES
        .iter()
        .map(|s| {
            json!({
                "resourceType": "HealthcareService",
                "id": s.id,
                "active": true,
                "providedBy": reference(&format!("Organization/{}", s.org.id), s.org.name),
                "specialty": [cc(SNOMED, s.specialty.0, s.specialty.1)],
                "location": [reference_to(&format!("Location/{}", s.location))],
                "name": s.name,
                "telecom": [{"system": "phone", "value": s.org.phone, "use": "work"}],
                "appointmentRequired": true,
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Staff

#[derive(Clone, Copy, PartialEq)]
enum Profession {
    Doctor,
    Nurse,
    Pharmacist,
}

struct Staff {
    id: &'static str,
    prefix: &'static str,
    given: &'static str,
    family: &'static str,
    gender: &'static str,
    profession: Profession,
    registration: &'static str,
    org: &'static Org,
    /// The service they hold appointments for, if they do.
    service: Option<&'static str>,
}

impl Staff {
    fn display(&self) -> String {
        format!("{} {} {}", self.prefix, self.given, self.family)
    }

    fn reference(&self) -> Value {
        reference(&format!("Practitioner/{}", self.id), &self.display())
    }

    fn role_id(&self) -> String {
        format!("{}-role", self.id)
    }

    fn practitioner(&self) -> Value {
        let system = match self.profession {
            Profession::Doctor => GMC,
            Profession::Nurse => NMC,
            Profession::Pharmacist => GPHC,
        };
        json!({
            "resourceType": "Practitioner",
            "id": self.id,
            "identifier": [{"system": system, "value": self.registration}],
            "active": true,
            "name": [{"use": "official", "family": self.family, "given": [self.given], "prefix": [self.prefix]}],
            "telecom": [{"system": "phone", "value": self.org.phone, "use": "work"}],
            "gender": self.gender,
        })
    }

    fn role(&self) -> Value {
        let (code, display) = match self.profession {
            Profession::Doctor => ("doctor", "Doctor"),
            Profession::Nurse => ("nurse", "Nurse"),
            Profession::Pharmacist => ("pharmacist", "Pharmacist"),
        };
        let mut role = json!({
            "resourceType": "PractitionerRole",
            "id": self.role_id(),
            "active": true,
            "practitioner": self.reference(),
            "organization": reference(&format!("Organization/{}", self.org.id), self.org.name),
            "code": [cc(ROLE, code, display)],
            "location": [reference(&format!("Location/{}", self.org.location), self.org.location_name)],
        });
        if let Some(id) = self.service {
            let s = service(id);
            role["specialty"] = json!([cc(SNOMED, s.specialty.0, s.specialty.1)]);
            role["healthcareService"] =
                json!([reference(&format!("HealthcareService/{}", s.id), s.name)]);
        }
        role
    }
}

fn staff() -> Vec<Staff> {
    use Profession::*;
    let s = |id, prefix, given, family, gender, profession, registration, org, service| Staff {
        id,
        prefix,
        given,
        family,
        gender,
        profession,
        registration,
        org,
        service,
    };
    vec![
        s(
            "pr-okafor",
            "Dr",
            "Amara",
            "Okafor",
            "female",
            Doctor,
            "7100001",
            &TRUST,
            Some("hs-diabetes"),
        ),
        s(
            "pr-whitfield",
            "Dr",
            "James",
            "Whitfield",
            "male",
            Doctor,
            "7100002",
            &TRUST,
            Some("hs-cardiology"),
        ),
        s(
            "pr-mensah",
            "Ms",
            "Grace",
            "Mensah",
            "female",
            Nurse,
            "71A0003E",
            &TRUST,
            None,
        ),
        s(
            "pr-hughes",
            "Dr",
            "Tom",
            "Hughes",
            "male",
            Doctor,
            "7100004",
            &TRUST,
            None,
        ),
        s(
            "pr-collins",
            "Dr",
            "Sarah",
            "Collins",
            "female",
            Doctor,
            "7100005",
            &RIVERSIDE,
            Some("hs-riverside-gp"),
        ),
        s(
            "pr-siddiqui",
            "Dr",
            "Imran",
            "Siddiqui",
            "male",
            Doctor,
            "7100006",
            &RIVERSIDE,
            Some("hs-riverside-gp"),
        ),
        s(
            "pr-price", "Ms", "Ellen", "Price", "female", Nurse, "71B0007E", &RIVERSIDE, None,
        ),
        s(
            "pr-macleod",
            "Dr",
            "Fiona",
            "MacLeod",
            "female",
            Doctor,
            "7100008",
            &HILLTOP,
            Some("hs-hilltop-gp"),
        ),
        s(
            "pr-osei",
            "Dr",
            "Daniel",
            "Osei",
            "male",
            Doctor,
            "7100009",
            &HILLTOP,
            Some("hs-hilltop-gp"),
        ),
        s(
            "pr-evans", "Mr", "Rhys", "Evans", "male", Pharmacist, "2100010", &HILLTOP, None,
        ),
    ]
}

// ---------------------------------------------------------------------------------------------
// Schedules and slots

/// Europe/London's offset on a date, for daytime clinic times: British Summer Time runs from the
/// last Sunday of March to the last Sunday of October.
fn london_offset(date: NaiveDate) -> &'static str {
    let last_sunday = |month: u32| -> NaiveDate {
        let first_of_next = NaiveDate::from_ymd_opt(date.year(), month + 1, 1).unwrap_or(date);
        let mut d = first_of_next - Duration::days(1);
        while d.weekday() != Weekday::Sun {
            d -= Duration::days(1);
        }
        d
    };
    if date >= last_sunday(3) && date < last_sunday(10) {
        "+01:00"
    } else {
        "+00:00"
    }
}

/// A Europe/London wall-clock time as a FHIR instant with its offset.
fn at(date: NaiveDate, minutes_after_midnight: u32) -> String {
    format!(
        "{}T{:02}:{:02}:00{}",
        date.format("%Y-%m-%d"),
        minutes_after_midnight / 60,
        minutes_after_midnight % 60,
        london_offset(date)
    )
}

fn is_working_day(d: NaiveDate) -> bool {
    !matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
}

struct SlotPlan {
    schedule: String,
    date: NaiveDate,
    start: u32,
    minutes: u32,
}

/// The bookable time: a schedule per clinician who sees patients, and slots for the next two
/// weeks. Patients' booked appointments take free slots as they are generated.
struct Clinics {
    schedules: Vec<Value>,
    slots: Vec<Value>,
    plans: Vec<SlotPlan>,
}

impl Clinics {
    fn new(staff: &[Staff], today: NaiveDate) -> Clinics {
        let mut schedules = Vec::new();
        let mut slots = Vec::new();
        let mut plans = Vec::new();
        let days: Vec<NaiveDate> = (1..=14)
            .map(|n| today + Duration::days(n))
            .filter(|d| is_working_day(*d))
            .collect();
        for s in staff {
            let Some(service_id) = s.service else {
                continue;
            };
            let svc = service(service_id);
            let schedule_id = format!("sch-{}", s.id.trim_start_matches("pr-"));
            let hospital = svc.org.id == TRUST.id;
            schedules.push(json!({
                "resourceType": "Schedule",
                "id": schedule_id,
                "active": true,
                "serviceType": [{"text": svc.name}],
                "specialty": [cc(SNOMED, svc.specialty.0, svc.specialty.1)],
                "actor": [
                    reference(&format!("PractitionerRole/{}", s.role_id()), &s.display()),
                    reference(&format!("Location/{}", svc.location), if hospital { "Outpatients Department" } else { s.org.location_name }),
                ],
                "planningHorizon": {"start": at(today, 0), "end": at(today + Duration::days(15), 0)},
                "comment": format!("{} – {}", s.display(), svc.name),
            }));
            // Hospital clinics: every other working day, 30-minute slots from 09:30.
            // GP surgeries: every working day, 15-minute slots from 08:30.
            let (every, first, minutes, count) = if hospital {
                (2, 9 * 60 + 30, 30, 6)
            } else {
                (1, 8 * 60 + 30, 15, 6)
            };
            for (i, day) in days.iter().enumerate() {
                if i % every != 0 {
                    continue;
                }
                for k in 0..count {
                    let start = first + k * minutes;
                    let n = plans.len() + 1;
                    slots.push(json!({
                        "resourceType": "Slot",
                        "id": format!("slot-{n:04}"),
                        "schedule": reference_to(&format!("Schedule/{schedule_id}")),
                        "status": "free",
                        "start": at(*day, start),
                        "end": at(*day, start + minutes),
                        "serviceType": [{"text": svc.name}],
                    }));
                    plans.push(SlotPlan {
                        schedule: schedule_id.clone(),
                        date: *day,
                        start,
                        minutes,
                    });
                }
            }
        }
        Clinics {
            schedules,
            slots,
            plans,
        }
    }

    /// Books a free slot of the clinician's schedule, chosen by `pick`; marks it busy.
    fn book(&mut self, staff_id: &str, pick: usize) -> Option<(String, NaiveDate, u32, u32)> {
        let schedule = format!("sch-{}", staff_id.trim_start_matches("pr-"));
        let free: Vec<usize> = (0..self.plans.len())
            .filter(|&i| self.plans[i].schedule == schedule && self.slots[i]["status"] == "free")
            .collect();
        if free.is_empty() {
            return None;
        }
        let i = free[pick % free.len()];
        self.slots[i]["status"] = json!("busy");
        let p = &self.plans[i];
        let id = self.slots[i]["id"].as_str().unwrap_or_default().to_string();
        Some((id, p.date, p.start, p.minutes))
    }
}

// ---------------------------------------------------------------------------------------------
// Patients

const GIVEN_FEMALE: &[&str] = &[
    "Olivia", "Amelia", "Isla", "Ava", "Mia", "Freya", "Lily", "Grace", "Sophie", "Evie", "Aisha",
    "Zara", "Margaret", "Patricia", "Susan", "Janet", "Priya", "Niamh", "Chloe", "Hannah", "Joan",
    "Dorothy", "Fatima", "Megan",
];
const GIVEN_MALE: &[&str] = &[
    "Oliver", "George", "Harry", "Noah", "Jack", "Leo", "Arthur", "Oscar", "Muhammad", "Charlie",
    "Thomas", "William", "David", "John", "Michael", "Peter", "Rajesh", "Kwame", "Liam", "Callum",
    "Owen", "Ryan", "Brian", "Keith",
];
const FAMILY: &[&str] = &[
    "Smith",
    "Jones",
    "Taylor",
    "Brown",
    "Williams",
    "Wilson",
    "Johnson",
    "Davies",
    "Patel",
    "Robinson",
    "Wright",
    "Thompson",
    "Evans",
    "Walker",
    "White",
    "Roberts",
    "Green",
    "Hall",
    "Khan",
    "Wood",
    "Clarke",
    "Jackson",
    "Hussain",
    "Turner",
    "Hill",
    "Moore",
    "Cooper",
    "Ward",
    "Begum",
    "Nowak",
    "O'Brien",
    "Zoë-Ashworth",
];
const STREETS: &[&str] = &[
    "Acacia Avenue",
    "Bramble Close",
    "Canal Street",
    "Dale View",
    "Elm Grove",
    "Fountain Street",
    "Greenhill Road",
    "Holly Bank",
    "Ivy Terrace",
    "Juniper Way",
    "Kestrel Drive",
    "Lister Lane",
    "Moorside Road",
    "Newlands Crescent",
    "Orchard Walk",
];

/// A long-term condition with what follows from it in the record.
struct Problem {
    code: &'static str,
    display: &'static str,
    /// Probability for an adult of 40 or over; a third of it for younger adults.
    prevalence: f64,
    medicine: &'static str,
    dosage: &'static str,
}

const PROBLEMS: &[Problem] = &[
    Problem {
        code: "44054006",
        display: "Type 2 diabetes mellitus",
        prevalence: 0.2,
        medicine: "Metformin 500mg tablets",
        dosage: "Take one tablet twice a day with meals",
    },
    Problem {
        code: "59621000",
        display: "Essential hypertension",
        prevalence: 0.3,
        medicine: "Amlodipine 5mg tablets",
        dosage: "Take one tablet once a day",
    },
    Problem {
        code: "195967001",
        display: "Asthma",
        prevalence: 0.12,
        medicine: "Salbutamol 100micrograms/dose inhaler",
        dosage: "Inhale one or two puffs when required for breathlessness, up to four times a day",
    },
    Problem {
        code: "40930008",
        display: "Hypothyroidism",
        prevalence: 0.06,
        medicine: "Levothyroxine sodium 50microgram tablets",
        dosage: "Take one tablet each morning",
    },
    Problem {
        code: "396275006",
        display: "Osteoarthritis",
        prevalence: 0.15,
        medicine: "Paracetamol 500mg tablets",
        dosage: "Take two tablets up to four times a day when required for pain",
    },
    Problem {
        code: "35489007",
        display: "Depressive disorder",
        prevalence: 0.08,
        medicine: "Sertraline 50mg tablets",
        dosage: "Take one tablet once a day",
    },
];
const DIABETES: &str = "44054006";
const HYPERTENSION: &str = "59621000";

/// (SNOMED code, display, category, criticality, reaction code, reaction display)
const ALLERGIES: &[(&str, &str, &str, &str, &str, &str)] = &[
    (
        "91936005",
        "Allergy to penicillin",
        "medication",
        "high",
        "271807003",
        "Eruption of skin",
    ),
    (
        "91935009",
        "Allergy to peanuts",
        "food",
        "high",
        "39579001",
        "Anaphylaxis",
    ),
    (
        "300916003",
        "Latex allergy",
        "environment",
        "low",
        "126485001",
        "Urticaria",
    ),
];

struct Gen {
    rng: StdRng,
    today: NaiveDate,
    nhs_numbers: HashSet<NhsNumber>,
}

/// Builds one patient's resources, numbering their ids.
struct Record<'a> {
    patient_id: String,
    patient_name: String,
    resources: Vec<Value>,
    counter: BTreeMap<&'static str, usize>,
    gp: &'a Staff,
}

impl Record<'_> {
    fn next_id(&mut self, short: &'static str) -> String {
        let n = self.counter.entry(short).or_insert(0);
        *n += 1;
        format!("{}-{short}-{n}", self.patient_id)
    }

    fn subject(&self) -> Value {
        reference(&format!("Patient/{}", self.patient_id), &self.patient_name)
    }
}

impl Gen {
    fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p.clamp(0.0, 1.0))
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        *items.choose(&mut self.rng).unwrap_or(&items[0])
    }

    fn days_ago(&mut self, from: i64, to: i64) -> NaiveDate {
        self.today - Duration::days(self.rng.random_range(from..=to))
    }

    /// A working day `from..=to` days back.
    fn working_day_ago(&mut self, from: i64, to: i64) -> NaiveDate {
        let mut d = self.days_ago(from, to);
        while !is_working_day(d) {
            d -= Duration::days(1);
        }
        d
    }

    fn round1(x: f64) -> f64 {
        (x * 10.0).round() / 10.0
    }

    fn patient_record(&mut self, n: u32, staff: &[Staff], clinics: &mut Clinics) -> Vec<Value> {
        let female = self.chance(0.51);
        let given = if female {
            self.pick(GIVEN_FEMALE)
        } else {
            self.pick(GIVEN_MALE)
        };
        let family = self.pick(FAMILY);
        // Ages 0–94, weighted towards adults as a GP list is. The first patient is the one the
        // README and the demo banner show: always an older adult with diabetes, hypertension and
        // an allergy, so that every kind of record is there to look at.
        let showcase = n == 1;
        let age: i64 = if self.chance(0.18) {
            self.rng.random_range(0..18)
        } else {
            self.rng.random_range(18..95)
        };
        let age = if showcase { 67 } else { age };
        let birth_date = self.today - Duration::days(age * 365 + self.rng.random_range(0..365));
        let nhs = loop {
            let serial = self.rng.random_range(0..1_000_000);
            if let Some(candidate) = NhsNumber::in_test_range(serial) {
                if self.nhs_numbers.insert(candidate) {
                    break candidate;
                }
            }
        };
        let practice = if n % 2 == 1 { &RIVERSIDE } else { &HILLTOP };
        let gps: Vec<&Staff> = staff
            .iter()
            .filter(|s| s.org.id == practice.id && s.profession == Profession::Doctor)
            .collect();
        let gp = gps[(n as usize / 2) % gps.len()];
        let patient_id = format!("pat-{n:04}");
        let mut rec = Record {
            patient_name: format!("{given} {family}"),
            patient_id,
            resources: Vec::new(),
            counter: BTreeMap::new(),
            gp,
        };
        let house = self.rng.random_range(1..180);
        let street = self.pick(STREETS);
        let postcode = format!(
            "NM{} {}{}{}",
            self.rng.random_range(1..10),
            self.rng.random_range(1..10),
            char::from(b'A' + self.rng.random_range(0..26u8)),
            char::from(b'A' + self.rng.random_range(0..26u8))
        );
        let mut telecom = vec![
            json!({"system": "phone", "value": format!("07700 900{:03}", n % 1000), "use": "mobile"}),
        ];
        if age >= 16 {
            let local: String = format!("{given}.{family}{n}")
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '.')
                .collect::<String>()
                .to_lowercase();
            telecom.push(
                json!({"system": "email", "value": format!("{local}@example.com"), "use": "home"}),
            );
        }
        rec.resources.push(json!({
            "resourceType": "Patient",
            "id": rec.patient_id,
            "identifier": [nhs.identifier()],
            "active": true,
            "name": [{"use": "official", "family": family, "given": [given],
                      "prefix": [if age < 18 { if female { "Miss" } else { "Master" } } else if female { "Ms" } else { "Mr" }]}],
            "telecom": telecom,
            "gender": if female { "female" } else { "male" },
            "birthDate": birth_date.format("%Y-%m-%d").to_string(),
            "address": [address(&format!("{house} {street}"), &postcode, "home")],
            "generalPractitioner": [
                reference(&format!("Organization/{}", practice.id), practice.name),
                gp.reference(),
            ],
            "managingOrganization": reference(&format!("Organization/{}", practice.id), practice.name),
        }));

        // Long-term conditions and their treatment.
        let mut problems = Vec::new();
        if age >= 18 {
            for p in PROBLEMS {
                let chance = if age >= 40 {
                    p.prevalence
                } else {
                    p.prevalence / 3.0
                };
                let forced = showcase && (p.code == DIABETES || p.code == HYPERTENSION);
                if self.chance(chance) || forced {
                    problems.push(p);
                }
            }
        } else if self.chance(0.1) {
            problems.extend(PROBLEMS.iter().filter(|p| p.code == "195967001"));
        }
        for p in &problems {
            let onset = self.days_ago(200, 3650);
            let cond_id = rec.next_id("cond");
            rec.resources.push(json!({
                "resourceType": "Condition",
                "id": cond_id,
                "clinicalStatus": cc(CONDITION_CLINICAL, "active", "Active"),
                "verificationStatus": cc(CONDITION_VER, "confirmed", "Confirmed"),
                "category": [cc(CONDITION_CATEGORY, "problem-list-item", "Problem List Item")],
                "code": cc(SNOMED, p.code, p.display),
                "subject": rec.subject(),
                "onsetDateTime": onset.format("%Y-%m-%d").to_string(),
                "recordedDate": onset.format("%Y-%m-%d").to_string(),
                "recorder": rec.gp.reference(),
            }));
            let authored = self.working_day_ago(7, 120);
            let med_id = rec.next_id("med");
            rec.resources.push(json!({
                "resourceType": "MedicationRequest",
                "id": med_id,
                "status": "active",
                "intent": "order",
                "courseOfTherapyType": cc("http://terminology.hl7.org/CodeSystem/medicationrequest-course-of-therapy", "continuous", "Continuous long term therapy"),
                "medicationCodeableConcept": {"text": p.medicine},
                "subject": rec.subject(),
                "authoredOn": at(authored, 10 * 60),
                "requester": rec.gp.reference(),
                "reasonReference": [reference(&format!("Condition/{cond_id}"), p.display)],
                "dosageInstruction": [{"text": p.dosage}],
                "dispenseRequest": {"numberOfRepeatsAllowed": 5,
                                    "quantity": {"value": 56, "unit": "tablet"},
                                    "expectedSupplyDuration": {"value": 28, "unit": "days", "system": UCUM, "code": "d"}},
            }));
        }

        // Allergies.
        if self.chance(0.25) || showcase {
            let a = self.pick(ALLERGIES);
            let recorded = self.days_ago(100, 4000);
            let id = rec.next_id("allergy");
            rec.resources.push(json!({
                "resourceType": "AllergyIntolerance",
                "id": id,
                "clinicalStatus": cc(ALLERGY_CLINICAL, "active", "Active"),
                "verificationStatus": cc(ALLERGY_VER, "confirmed", "Confirmed"),
                "type": "allergy",
                "category": [a.2],
                "criticality": a.3,
                "code": cc(SNOMED, a.0, a.1),
                "patient": rec.subject(),
                "recordedDate": recorded.format("%Y-%m-%d").to_string(),
                "recorder": rec.gp.reference(),
                "reaction": [{"manifestation": [cc(SNOMED, a.4, a.5)], "severity": if a.3 == "high" { "severe" } else { "mild" }}],
            }));
        }

        // A GP review in the last year, with measurements taken there.
        let review_day = self.working_day_ago(20, 330);
        let review_start = 9 * 60 + 10 * self.rng.random_range(0..30);
        let review = self.encounter(
            &mut rec,
            review_day,
            review_start,
            gp,
            practice,
            "185349003",
            "Encounter for check up",
        );
        if age >= 16 {
            let weight = Self::round1(self.rng.random_range(48.0..118.0));
            let height = Self::round1(if female {
                self.rng.random_range(150.0..178.0)
            } else {
                self.rng.random_range(160.0..195.0)
            });
            let bmi = Self::round1(weight / (height / 100.0) / (height / 100.0));
            let when = at(review_day, 9 * 60 + 30);
            self.vital(
                &mut rec,
                &review,
                &when,
                "29463-7",
                "Body weight",
                weight,
                "kg",
                "kg",
            );
            self.vital(
                &mut rec,
                &review,
                &when,
                "8302-2",
                "Body height",
                height,
                "cm",
                "cm",
            );
            self.vital(
                &mut rec,
                &review,
                &when,
                "39156-5",
                "Body mass index (BMI) [Ratio]",
                bmi,
                "kg/m2",
                "kg/m2",
            );
            let hypertensive = problems.iter().any(|p| p.code == HYPERTENSION);
            self.blood_pressure(&mut rec, &review, &when, hypertensive);
            if age >= 40 {
                let chol = Self::round1(self.rng.random_range(3.4..7.6));
                self.lab(
                    &mut rec,
                    &review,
                    &when,
                    "2093-3",
                    "Cholesterol [Moles/volume] in Serum or Plasma",
                    chol,
                    "mmol/L",
                );
            }
        }

        // Diabetes: HbA1c every few months, a hospital clinic visit with a letter to the GP.
        if problems.iter().any(|p| p.code == DIABETES) {
            for months_ago in [3, 6, 9] {
                let day = self.working_day_ago(months_ago * 30 - 10, months_ago * 30 + 10);
                let when = at(day, 8 * 60 + 45);
                let value = self.rng.random_range(44..92) as f64;
                self.lab(
                    &mut rec,
                    &Value::Null,
                    &when,
                    "59261-8",
                    "Hemoglobin A1c/Hemoglobin.total in Blood by IFCC protocol",
                    value,
                    "mmol/mol",
                );
            }
            let consultant = staff.iter().find(|s| s.id == "pr-okafor").unwrap_or(gp);
            self.clinic_visit(&mut rec, consultant, "hs-diabetes", "diabetes");
        } else if problems.iter().any(|p| p.code == HYPERTENSION) && self.chance(0.4) {
            let consultant = staff.iter().find(|s| s.id == "pr-whitfield").unwrap_or(gp);
            self.clinic_visit(&mut rec, consultant, "hs-cardiology", "cardiology");
        }

        // Immunisations: seasonal flu for the over-65s and those with a long-term condition,
        // COVID-19 boosters for the over-50s.
        if age >= 65 || (!problems.is_empty() && age >= 18) {
            // The last two autumns' campaigns (October), counting this one once it has begun.
            let latest = if self.today.month() >= 11 {
                self.today.year()
            } else {
                self.today.year() - 1
            };
            for years_ago in [0, 1] {
                let day =
                    NaiveDate::from_ymd_opt(latest - years_ago, 10, self.rng.random_range(1..29))
                        .unwrap_or(self.today);
                self.immunization(
                    &mut rec,
                    day,
                    "141",
                    "Influenza, seasonal, injectable",
                    practice,
                );
            }
        }
        if age >= 50 && self.chance(0.7) {
            let day = self.days_ago(150, 500);
            self.immunization(&mut rec, day, "208", "SARS-COV-2 (COVID-19) vaccine, mRNA, spike protein, LNP, preservative free, 30 mcg/0.3mL dose", practice);
        }

        // A booked appointment with the GP in the next two weeks, for most.
        if self.chance(0.6) || showcase {
            let pick = self.rng.random_range(0..1000);
            if let Some((slot, day, start, minutes)) = clinics.book(gp.id, pick) {
                self.appointment(
                    &mut rec,
                    "booked",
                    day,
                    start,
                    minutes,
                    gp,
                    service(gp.service.unwrap_or("hs-riverside-gp")),
                    Some(&slot),
                    "Routine review",
                );
            }
        }
        // And now and then one cancelled by the patient.
        if self.chance(0.1) {
            let day = self.working_day_ago(30, 90);
            self.appointment(
                &mut rec,
                "cancelled",
                day,
                11 * 60,
                15,
                gp,
                service(gp.service.unwrap_or("hs-riverside-gp")),
                None,
                "Medication review",
            );
        }
        rec.resources
    }

    #[allow(clippy::too_many_arguments)]
    fn encounter(
        &mut self,
        rec: &mut Record,
        day: NaiveDate,
        start: u32,
        clinician: &Staff,
        org: &Org,
        code: &str,
        display: &str,
    ) -> Value {
        let minutes = if org.id == TRUST.id { 30 } else { 15 };
        let service = SERVICES
            .iter()
            .find(|s| s.org.id == org.id && clinician.service == Some(s.id))
            .or_else(|| SERVICES.iter().find(|s| s.org.id == org.id));
        let service = service.unwrap_or(&SERVICES[0]);
        let appointment = self.appointment(
            rec,
            "fulfilled",
            day,
            start,
            minutes,
            clinician,
            service,
            None,
            display,
        );
        let id = rec.next_id("enc");
        let location = if org.id == TRUST.id {
            OUTPATIENTS
        } else {
            org.location
        };
        rec.resources.push(json!({
            "resourceType": "Encounter",
            "id": id,
            "status": "finished",
            "class": {"system": ACT_CODE, "code": "AMB", "display": "ambulatory"},
            "type": [cc(SNOMED, code, display)],
            "subject": rec.subject(),
            "participant": [{
                "type": [cc(PARTICIPANT_TYPE, "PPRF", "primary performer")],
                "individual": clinician.reference(),
            }],
            "appointment": [appointment],
            "period": {"start": at(day, start), "end": at(day, start + minutes)},
            "location": [{"location": reference_to(&format!("Location/{location}"))}],
            "serviceProvider": reference(&format!("Organization/{}", org.id), org.name),
        }));
        reference(&format!("Encounter/{id}"), display)
    }

    #[allow(clippy::too_many_arguments)]
    fn appointment(
        &mut self,
        rec: &mut Record,
        status: &str,
        day: NaiveDate,
        start: u32,
        minutes: u32,
        clinician: &Staff,
        service: &Service,
        slot: Option<&str>,
        description: &str,
    ) -> Value {
        let id = rec.next_id("appt");
        let location = service.location;
        let participant_status = if status == "cancelled" {
            "declined"
        } else {
            "accepted"
        };
        let mut appointment = json!({
            "resourceType": "Appointment",
            "id": id,
            "status": status,
            "serviceType": [{"text": service.name}],
            "specialty": [cc(SNOMED, service.specialty.0, service.specialty.1)],
            "appointmentType": cc(APPOINTMENT_TYPE, "ROUTINE", "Routine appointment - default if not valued"),
            "description": description,
            "start": at(day, start),
            "end": at(day, start + minutes),
            "minutesDuration": minutes,
            "created": at(day - Duration::days(self.rng.random_range(7..40)), 14 * 60),
            "participant": [
                {"actor": rec.subject(), "required": "required", "status": participant_status},
                {"actor": clinician.reference(), "required": "required", "status": "accepted"},
                {"actor": reference_to(&format!("Location/{location}")), "required": "required", "status": "accepted"},
            ],
        });
        if let Some(slot) = slot {
            appointment["slot"] = json!([{"reference": format!("Slot/{slot}")}]);
            appointment["patientInstruction"] =
                json!("Please arrive 10 minutes early and bring a list of your current medicines.");
        }
        if status == "cancelled" {
            appointment["cancelationReason"] = cc(
                "http://terminology.hl7.org/CodeSystem/appointment-cancellation-reason",
                "pat",
                "Patient",
            );
        }
        rec.resources.push(appointment);
        reference(&format!("Appointment/{id}"), description)
    }

    #[allow(clippy::too_many_arguments)]
    fn vital(
        &mut self,
        rec: &mut Record,
        encounter: &Value,
        when: &str,
        code: &str,
        display: &str,
        value: f64,
        unit: &str,
        ucum: &str,
    ) {
        let observation = Observation {
            category: cc(OBS_CATEGORY, "vital-signs", "Vital Signs"),
            performer: rec.gp.reference(),
            code: cc(LOINC, code, display),
            quantity: json!({"value": value, "unit": unit, "system": UCUM, "code": ucum}),
        };
        observation.push(rec, encounter, when);
    }

    #[allow(clippy::too_many_arguments)]
    fn lab(
        &mut self,
        rec: &mut Record,
        encounter: &Value,
        when: &str,
        code: &str,
        display: &str,
        value: f64,
        unit: &str,
    ) {
        let observation = Observation {
            category: cc(OBS_CATEGORY, "laboratory", "Laboratory"),
            performer: reference(&format!("Organization/{}", TRUST.id), TRUST.name),
            code: cc(LOINC, code, display),
            quantity: json!({"value": value, "unit": unit, "system": UCUM, "code": unit}),
        };
        observation.push(rec, encounter, when);
    }

    fn blood_pressure(
        &mut self,
        rec: &mut Record,
        encounter: &Value,
        when: &str,
        hypertensive: bool,
    ) {
        let (systolic, diastolic) = if hypertensive {
            (
                self.rng.random_range(132..172),
                self.rng.random_range(82..104),
            )
        } else {
            (
                self.rng.random_range(104..138),
                self.rng.random_range(62..88),
            )
        };
        let id = rec.next_id("obs");
        let component = |code: &str, display: &str, value: i32| {
            json!({"code": cc(LOINC, code, display),
                   "valueQuantity": {"value": value, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"}})
        };
        rec.resources.push(json!({
            "resourceType": "Observation",
            "id": id,
            "status": "final",
            "category": [cc(OBS_CATEGORY, "vital-signs", "Vital Signs")],
            "code": cc(LOINC, "85354-9", "Blood pressure panel with all children optional"),
            "subject": rec.subject(),
            "encounter": encounter,
            "effectiveDateTime": when,
            "issued": when,
            "performer": [rec.gp.reference()],
            "component": [
                component("8480-6", "Systolic blood pressure", systolic),
                component("8462-4", "Diastolic blood pressure", diastolic),
            ],
        }));
    }

    fn immunization(
        &mut self,
        rec: &mut Record,
        day: NaiveDate,
        cvx: &str,
        display: &str,
        practice: &Org,
    ) {
        let id = rec.next_id("imm");
        let lot = format!(
            "{}{:05}",
            char::from(b'A' + self.rng.random_range(0..26u8)),
            self.rng.random_range(0..100_000)
        );
        rec.resources.push(json!({
            "resourceType": "Immunization",
            "id": id,
            "status": "completed",
            "vaccineCode": cc(CVX, cvx, display),
            "patient": rec.subject(),
            "occurrenceDateTime": at(day, 10 * 60),
            "recorded": at(day, 10 * 60),
            "primarySource": true,
            "location": reference(&format!("Location/{}", practice.location), practice.location_name),
            "lotNumber": lot,
            "site": cc("http://terminology.hl7.org/CodeSystem/v3-ActSite", "LA", "left arm"),
            "route": cc("http://terminology.hl7.org/CodeSystem/v3-RouteOfAdministration", "IM", "Injection, intramuscular"),
            "performer": [{"actor": reference(&format!("Organization/{}", practice.id), practice.name)}],
        }));
    }

    /// A hospital outpatient visit, and the clinic letter to the GP (a DocumentReference with
    /// the letter's text in a Binary).
    fn clinic_visit(
        &mut self,
        rec: &mut Record,
        consultant: &Staff,
        service_id: &str,
        clinic: &str,
    ) {
        let day = self.working_day_ago(14, 150);
        let start = 9 * 60 + 30 + 30 * self.rng.random_range(0..6);
        let svc = service(service_id);
        let encounter = self.encounter(
            rec,
            day,
            start,
            consultant,
            &TRUST,
            "11429006",
            "Consultation",
        );
        let letter = format!(
            "Northmoor Hospitals NHS Foundation Trust\n{}\n\nDear {},\n\nRe: {}\n\nI saw {} in the {} clinic on {}. \
             We reviewed their recent results and current medicines, which remain unchanged. \
             I would be grateful if you could continue their care in general practice; we will see them again in six months.\n\n\
             Yours sincerely,\n\n{}\nConsultant, {}\n",
            svc.name,
            rec.gp.display(),
            rec.patient_name,
            rec.patient_name,
            clinic,
            day.format("%-d %B %Y"),
            consultant.display(),
            svc.name,
        );
        use base64::Engine as _;
        let data = base64::engine::general_purpose::STANDARD.encode(letter.as_bytes());
        let binary_id = rec.next_id("letter-bin");
        let doc_id = rec.next_id("letter");
        let written = at(day + Duration::days(2), 16 * 60);
        rec.resources.push(json!({
            "resourceType": "Binary",
            "id": binary_id,
            "contentType": "text/plain; charset=utf-8",
            "securityContext": {"reference": format!("DocumentReference/{doc_id}")},
            "data": data,
        }));
        rec.resources.push(json!({
            "resourceType": "DocumentReference",
            "id": doc_id,
            "status": "current",
            "docStatus": "final",
            "type": cc(LOINC, "11488-4", "Consult note"),
            "subject": rec.subject(),
            "date": written,
            "author": [consultant.reference()],
            "custodian": reference(&format!("Organization/{}", TRUST.id), TRUST.name),
            "description": format!("Clinic letter: {}", svc.name),
            "content": [{"attachment": {
                "contentType": "text/plain; charset=utf-8",
                "url": format!("Binary/{binary_id}"),
                "size": letter.len(),
                "title": format!("{} clinic letter", capitalise(clinic)),
                "creation": written,
            }}],
            "context": {"encounter": [encounter], "period": {"start": at(day, start)}},
        }));
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// A measured value (vital sign or laboratory result) as the demo records it.
struct Observation {
    category: Value,
    performer: Value,
    code: Value,
    quantity: Value,
}

impl Observation {
    fn push(self, rec: &mut Record, encounter: &Value, when: &str) {
        let id = rec.next_id("obs");
        let mut obs = json!({
            "resourceType": "Observation",
            "id": id,
            "status": "final",
            "category": [self.category],
            "code": self.code,
            "subject": rec.subject(),
            "effectiveDateTime": when,
            "issued": when,
            "performer": [self.performer],
            "valueQuantity": self.quantity,
        });
        if !encounter.is_null() {
            obs["encounter"] = encounter.clone();
        }
        rec.resources.push(obs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("date")
    }

    #[test]
    fn every_demo_resource_is_valid_r4() {
        let region = region(50, day(2025, 3, 28));
        let mut problems = Vec::new();
        for r in region.shared.iter().chain(region.patients.iter().flatten()) {
            if let Err(issues) = fhir::validate::validate(r) {
                for i in issues {
                    problems.push(format!(
                        "{}: {} at {:?}",
                        label(r),
                        i.diagnostics,
                        i.expression
                    ));
                }
            }
        }
        assert!(
            problems.is_empty(),
            "{} problems, first: {:#?}",
            problems.len(),
            &problems[..problems.len().min(10)]
        );

        // The check above is only worth something if the validator is awake.
        let mut broken = region.patients[0]
            .iter()
            .find(|r| r["resourceType"] == "Appointment")
            .cloned()
            .expect("an appointment");
        broken["status"] = json!("bogus");
        assert!(fhir::validate::validate(&broken).is_err());
    }

    #[test]
    fn region_is_deterministic_for_a_given_day() {
        assert_eq!(region(20, day(2025, 6, 2)), region(20, day(2025, 6, 2)));
    }

    #[test]
    fn region_has_the_shape_the_demo_promises() {
        let region = region(50, day(2025, 6, 2));
        let counts = region.counts();
        assert_eq!(counts["Patient"], 50);
        assert_eq!(counts["Organization"], 3);
        assert_eq!(counts["Practitioner"], 10);
        assert_eq!(counts["PractitionerRole"], 10);
        for t in [
            "Location",
            "HealthcareService",
            "Schedule",
            "Slot",
            "Appointment",
            "Encounter",
            "Condition",
            "AllergyIntolerance",
            "MedicationRequest",
            "Observation",
            "Immunization",
            "DocumentReference",
            "Binary",
        ] {
            assert!(
                counts.get(t).copied().unwrap_or(0) > 0,
                "no {t}: {counts:?}"
            );
        }
        assert!(
            region.resource_count() < 3000,
            "{} resources",
            region.resource_count()
        );
        let trust = &region.shared[0];
        assert_eq!(
            trust["identifier"][0]["system"],
            "https://fhir.nhs.uk/Id/ods-organization-code"
        );
    }

    #[test]
    fn patients_have_unique_valid_test_nhs_numbers_and_a_gp() {
        let region = region(200, day(2025, 6, 2));
        let mut seen = HashSet::new();
        for record in &region.patients {
            let patient = &record[0];
            assert_eq!(patient["resourceType"], "Patient");
            let identifier = &patient["identifier"][0];
            assert_eq!(identifier["system"], fhir::nhs_number::SYSTEM);
            let number = NhsNumber::parse(identifier["value"].as_str().unwrap_or_default())
                .expect("valid NHS number");
            assert!(number.is_test_number());
            assert!(seen.insert(number), "duplicate {number}");
            assert_eq!(
                patient["generalPractitioner"].as_array().map(Vec::len),
                Some(2)
            );
        }
    }

    #[test]
    fn booked_appointments_take_free_slots_in_the_future() {
        let today = day(2025, 6, 2);
        let region = region(50, today);
        let slots: BTreeMap<String, &Value> = region
            .shared
            .iter()
            .filter(|r| r["resourceType"] == "Slot")
            .map(|r| (format!("Slot/{}", r["id"].as_str().unwrap_or_default()), r))
            .collect();
        let booked: Vec<&Value> = region
            .patients
            .iter()
            .flatten()
            .filter(|r| r["resourceType"] == "Appointment" && r["status"] == "booked")
            .collect();
        assert!(booked.len() >= 15, "{} booked", booked.len());
        let mut used = HashSet::new();
        for a in &booked {
            let slot_ref = a["slot"][0]["reference"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let slot = slots
                .get(&slot_ref)
                .unwrap_or_else(|| panic!("{slot_ref} missing"));
            assert_eq!(slot["status"], "busy");
            assert_eq!(slot["start"], a["start"]);
            assert!(used.insert(slot_ref), "slot booked twice");
            assert!(a["start"].as_str().unwrap_or_default() > "2025-06-02T23:59");
        }
        let busy = slots.values().filter(|s| s["status"] == "busy").count();
        assert_eq!(busy, booked.len());
        let past: Vec<&Value> = region
            .patients
            .iter()
            .flatten()
            .filter(|r| r["resourceType"] == "Appointment" && r["status"] == "fulfilled")
            .collect();
        assert!(past.len() >= 50);
    }

    #[test]
    fn the_first_patient_shows_every_kind_of_record() {
        let region = region(5, day(2025, 6, 2));
        let types: HashSet<&str> = region.patients[0]
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
        let booked = region.patients[0]
            .iter()
            .any(|r| r["resourceType"] == "Appointment" && r["status"] == "booked");
        assert!(booked, "pat-0001 has no booked appointment");
        let blood_pressure = region.patients[0]
            .iter()
            .any(|r| r["code"]["coding"][0]["code"] == "85354-9");
        assert!(blood_pressure);
    }

    #[test]
    fn clinic_times_carry_the_london_offset() {
        assert_eq!(
            at(day(2025, 1, 15), 9 * 60 + 30),
            "2025-01-15T09:30:00+00:00"
        );
        assert_eq!(
            at(day(2025, 7, 15), 9 * 60 + 30),
            "2025-07-15T09:30:00+01:00"
        );
        // 2025: BST from Sunday 30 March to Sunday 26 October.
        assert_eq!(london_offset(day(2025, 3, 29)), "+00:00");
        assert_eq!(london_offset(day(2025, 3, 30)), "+01:00");
        assert_eq!(london_offset(day(2025, 10, 25)), "+01:00");
        assert_eq!(london_offset(day(2025, 10, 26)), "+00:00");
    }

    #[test]
    fn letters_point_at_their_binary() {
        let region = region(50, day(2025, 6, 2));
        let all: Vec<&Value> = region.patients.iter().flatten().collect();
        let docs: Vec<&&Value> = all
            .iter()
            .filter(|r| r["resourceType"] == "DocumentReference")
            .collect();
        assert!(!docs.is_empty());
        for d in docs {
            let url = d["content"][0]["attachment"]["url"]
                .as_str()
                .unwrap_or_default();
            let id = url.trim_start_matches("Binary/");
            assert!(
                all.iter()
                    .any(|r| r["resourceType"] == "Binary" && r["id"] == id),
                "{url} missing"
            );
        }
    }
}
