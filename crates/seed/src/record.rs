//! One patient's record: the Patient, their family links, and years of history — problems,
//! medicines and their repeat issues, allergies, immunisations, appointments with the slots they
//! took, encounters with what was measured there, laboratory reports, referrals and letters.
//!
//! How much history a patient has follows from their age and morbidity: the frail and
//! multimorbid (a long tail, from the profile's frailty) see the GP, the nurse and the hospital
//! more, are admitted more, and collect many repeat prescriptions, so a few records run to
//! around a thousand resources while most hold fifty to a hundred and fifty.

use base64::Engine as _;
use chrono::{Datelike, Duration, NaiveDate};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Map, Value};

use crate::calendar::{at, is_working_day, years, years_between, ymd};
use crate::catalogue::{
    age_band, Acute, Analyte, Chronic, Medicine, Panel, Specialty, Vaccine, ACUTE,
    ADMISSION_REASONS, ALLERGIES, AMLODIPINE, APIXABAN, ATORVASTATIN, CHILDHOOD, COVID, FLU,
    FLU_NASAL, PPV, SHINGLES, WARFARIN,
};
use crate::clinics::{Schedule, SlotKind, Usage};
use crate::json::{
    build, cc, quantity, reference, reference_to, round, ACT_CODE, CVX, DMD, ETHNIC_EXTENSION,
    ETHNIC_SYSTEM, INTERPRETATION, LOINC, OBS_CATEGORY, ROLE_CODE, SNOMED, UBRN, V2_0074, V2_0203,
    V2_0276,
};
use crate::kind::Kind;
use crate::letters::{self, Letter};
use crate::population::{Person, ReferralState, Role, Smoking};
use crate::region::{Org, Practice, Region, Site, Staff, Trust};
use crate::rng::{mix, stream, Draw, Purpose};

const CONDITION_CLINICAL: &str = "http://terminology.hl7.org/CodeSystem/condition-clinical";
const CONDITION_VER: &str = "http://terminology.hl7.org/CodeSystem/condition-ver-status";
const CONDITION_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/condition-category";
const ALLERGY_CLINICAL: &str = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical";
const ALLERGY_VER: &str = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification";
const COURSE: &str = "http://terminology.hl7.org/CodeSystem/medicationrequest-course-of-therapy";
const PARTICIPANT_TYPE: &str = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType";
const ADMIT_SOURCE: &str = "http://terminology.hl7.org/CodeSystem/admit-source";
const DISCHARGE: &str = "http://terminology.hl7.org/CodeSystem/discharge-disposition";
const NHS_VERIFICATION_EXT: &str =
    "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus";
const NHS_VERIFICATION: &str =
    "https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatusEngland";

/// Patient `index`'s whole record, the Patient first.
pub(crate) fn record(region: &Region, index: u64) -> Vec<Value> {
    let person = Person::new(&region.layout, index);
    let mut rec = Record::new(region, person, true);
    rec.write();
    rec.out
}

/// How many resources of each kind (indexed as [`Kind::ALL`]) patient `index`'s record holds,
/// found by making the same decisions as [`record`] without building any JSON.
pub(crate) fn record_size(region: &Region, index: u64) -> [u64; Kind::ALL.len()] {
    let person = Person::new(&region.layout, index);
    let mut rec = Record::new(region, person, false);
    rec.write();
    let mut sizes = rec.counters;
    sizes[Kind::Slot.index()] += rec.slots;
    sizes
}

/// A long-term condition as written, with what the record needs to refer to it.
struct Problem {
    kind: Chronic,
    onset: NaiveDate,
    id: String,
}

/// A repeat medicine and when it started.
struct Repeat {
    medicine: &'static Medicine,
    start: NaiveDate,
}

struct Record<'a> {
    region: &'a Region,
    /// Whether resources are built; when not, they are only counted (same random draws).
    full: bool,
    /// Busy slots written (they are numbered by their position, not by the record).
    slots: u64,
    person: Person,
    rng: ChaCha8Rng,
    out: Vec<Value>,
    counters: [u64; Kind::ALL.len()],
    patient_id: String,
    practice: &'a Practice,
    trust: &'a Trust,
    gp: &'a Staff,
    today: NaiveDate,
    history_start: NaiveDate,
    problems: Vec<Problem>,
    repeats: Vec<Repeat>,
    // Baselines that measurements drift from.
    height_cm: f64,
    bmi: f64,
    bmi_drift: f64,
    systolic: f64,
    diastolic: f64,
    cholesterol: f64,
    hba1c_start: f64,
    hba1c_target: f64,
    egfr_start: f64,
    egfr_decline: f64,
    haemoglobin: f64,
}

impl<'a> Record<'a> {
    fn new(region: &'a Region, person: Person, full: bool) -> Record<'a> {
        let layout = &region.layout;
        let mut rng = stream(layout.seed, Purpose::Record, person.index);
        let female = person.female;
        let record = Record {
            patient_id: region.ids.patient(person.index),
            practice: region.practice(person.practice),
            trust: region.trust(person.trust),
            gp: region.usual_gp(&person),
            today: layout.today,
            history_start: layout.history_start().max(person.birth),
            height_cm: if female {
                rng.normal(162.0, 6.5)
            } else {
                rng.normal(176.0, 7.0)
            },
            bmi: rng.normal(27.0, 4.5).clamp(17.5, 48.0),
            bmi_drift: rng.normal(0.1, 0.3),
            systolic: rng.normal(122.0, 9.0),
            diastolic: rng.normal(76.0, 6.0),
            cholesterol: rng.normal(5.6, 0.8).clamp(3.5, 8.5),
            hba1c_start: rng.random_range(62.0..90.0),
            hba1c_target: rng.random_range(47.0..60.0),
            egfr_start: rng.random_range(44.0..59.0),
            egfr_decline: rng.random_range(0.5..4.0),
            haemoglobin: if female {
                rng.normal(133.0, 8.0)
            } else {
                rng.normal(146.0, 9.0)
            },
            rng,
            region,
            full,
            slots: 0,
            person,
            out: Vec::with_capacity(128),
            counters: [0; Kind::ALL.len()],
            problems: Vec::new(),
            repeats: Vec::new(),
        };
        record
    }

    fn next_id(&mut self, kind: Kind) -> String {
        let n = &mut self.counters[kind.index()];
        *n += 1;
        let n = *n;
        if !self.full {
            return String::new();
        }
        self.region.ids.in_record(kind, self.person.index, n)
    }

    fn subject(&self) -> Value {
        reference("Patient", &self.patient_id, &self.person.name())
    }

    fn write(&mut self) {
        self.patient();
        self.related_people();
        self.long_term_conditions();
        self.allergies();
        self.repeat_medicines();
        self.immunisations();
        let referrals = self.referral_ids();
        self.appointments(&referrals);
        self.telephone_consultations();
        self.anticoagulation_monitoring();
        self.hospital_admissions();
        self.smoking_status();
        self.referrals(&referrals);
    }

    // -----------------------------------------------------------------------------------------
    // Demographics

    fn patient(&mut self) {
        if !self.full {
            self.counters[Kind::Patient.index()] += 1;
            return;
        }
        let p = &self.person;
        let age = p.age(self.today);
        let mut given = vec![p.given];
        given.extend(p.middle);
        let prefix = match (age < 18, p.female) {
            (true, true) => "Miss",
            (true, false) => "Master",
            (false, true) => "Ms",
            (false, false) => "Mr",
        };
        let mut telecom =
            vec![json!({"system": "phone", "value": p.mobile, "use": "mobile", "rank": 1})];
        if let Some(l) = &p.landline {
            telecom.push(json!({"system": "phone", "value": l, "use": "home"}));
        }
        if let Some(e) = &p.email {
            telecom.push(json!({"system": "email", "value": e, "use": "home"}));
        }
        let mut nhs = p.nhs.identifier();
        nhs["extension"] = json!([{
            "url": NHS_VERIFICATION_EXT,
            "valueCodeableConcept": cc(NHS_VERIFICATION, "01", "Number present and verified"),
        }]);
        let mrn = {
            let h = mix(self.region.layout.seed, 0x3A4E);
            let a = (h % 10_000_000) | 1;
            let a = if a % 10 == 5 { a + 2 } else { a };
            format!(
                "{}{:07}",
                &self.trust.org.ods[1..],
                (a * p.index + (h >> 32)) % 10_000_000
            )
        };
        let practice = &self.practice.org;
        let mut patient = json!({
            "extension": [{"url": ETHNIC_EXTENSION, "valueCodeableConcept": cc(ETHNIC_SYSTEM, p.ethnicity.code, p.ethnicity.display)}],
            "identifier": [
                nhs,
                {"use": "secondary", "type": cc(V2_0203, "MR", "Medical record number"),
                 "system": self.trust.mrn_system, "value": mrn, "assigner": self.trust.org.reference()},
            ],
            "active": true,
            "name": [{"use": "official", "family": p.family, "given": given, "prefix": [prefix]}],
            "telecom": telecom,
            "gender": if p.female { "female" } else { "male" },
            "birthDate": ymd(p.birth),
            "address": [{"use": "home", "type": "both", "line": [p.address.line], "city": p.address.town.name,
                         "district": p.address.town.county, "postalCode": p.address.postcode, "country": "GB"}],
            "communication": [{"language": cc("urn:ietf:bcp:47", "en-GB", "English (United Kingdom)"), "preferred": true}],
            "generalPractitioner": [practice.reference(), self.gp.reference()],
            "managingOrganization": practice.reference(),
        });
        if p.role == Role::Child {
            let contacts: Vec<Value> = p
                .parents
                .iter()
                .map(|&i| {
                    let parent = Person::new(&self.region.layout, i);
                    json!({
                        "relationship": [cc("http://terminology.hl7.org/CodeSystem/v2-0131", "N", "Next-of-Kin")],
                        "name": {"use": "official", "family": parent.family, "given": [parent.given]},
                        "telecom": [{"system": "phone", "value": parent.mobile, "use": "mobile"}],
                    })
                })
                .collect();
            if !contacts.is_empty() {
                patient["contact"] = Value::Array(contacts);
            }
        }
        let id = self.patient_id.clone();
        self.out.push(build(Kind::Patient, &id, patient));
    }

    /// A child's parents who are patients here, as RelatedPersons of the child: the people who
    /// will act for them (proxies).
    fn related_people(&mut self) {
        if self.person.role != Role::Child {
            return;
        }
        for &i in &self.person.parents.clone() {
            let parent = Person::new(&self.region.layout, i);
            let (code, display) = if self.rng.chance(0.1) {
                ("PRN", "parent")
            } else if parent.female {
                ("MTH", "mother")
            } else {
                ("FTH", "father")
            };
            let mut telecom =
                vec![json!({"system": "phone", "value": parent.mobile, "use": "mobile"})];
            if let Some(e) = &parent.email {
                telecom.push(json!({"system": "email", "value": e, "use": "home"}));
            }
            let id = self.next_id(Kind::RelatedPerson);
            if self.full {
                let resource = build(
                    Kind::RelatedPerson,
                    &id,
                    json!({
                        "identifier": [parent.nhs.identifier()],
                        "active": true,
                        "patient": self.subject(),
                        "relationship": [cc(ROLE_CODE, code, display)],
                        "name": [{"use": "official", "family": parent.family, "given": [parent.given]}],
                        "telecom": telecom,
                        "gender": if parent.female { "female" } else { "male" },
                        "birthDate": ymd(parent.birth),
                        "address": [{"use": "home", "line": [parent.address.line], "city": parent.address.town.name,
                                     "postalCode": parent.address.postcode, "country": "GB"}],
                    }),
                );
                self.out.push(resource);
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // Problems, allergies, medicines, immunisations

    fn long_term_conditions(&mut self) {
        for (kind, onset) in self.person.conditions.clone() {
            let info = kind.info();
            let id = self.next_id(Kind::Condition);
            if self.full {
                let resource = build(
                    Kind::Condition,
                    &id,
                    json!({
                        "clinicalStatus": cc(CONDITION_CLINICAL, "active", "Active"),
                        "verificationStatus": cc(CONDITION_VER, "confirmed", "Confirmed"),
                        "category": [cc(CONDITION_CATEGORY, "problem-list-item", "Problem List Item")],
                        "code": cc(SNOMED, info.snomed, info.display),
                        "subject": self.subject(),
                        "onsetDateTime": ymd(onset),
                        "recordedDate": ymd(onset),
                        "recorder": self.gp.reference(),
                    }),
                );
                self.out.push(resource);
            }
            self.problems.push(Problem { kind, onset, id });
        }
    }

    fn allergies(&mut self) {
        let age = self.person.age(self.today);
        let count = if self.person.showcase {
            1
        } else if self.rng.chance(if age < 18 { 0.12 } else { 0.22 }) {
            1 + usize::from(self.rng.chance(0.25))
        } else {
            0
        };
        let mut chosen: Vec<usize> = Vec::new();
        for _ in 0..count {
            let a = self.rng.random_range(0..ALLERGIES.len());
            if chosen.contains(&a) {
                continue;
            }
            chosen.push(a);
            let (code, display, category, criticality, reaction, reaction_display) = ALLERGIES[a];
            let recorded =
                self.person.birth + Duration::days(self.rng.random_range(365..(age.max(2) * 365)));
            let recorded = recorded.min(self.today);
            let id = self.next_id(Kind::AllergyIntolerance);
            if self.full {
                let resource = build(
                    Kind::AllergyIntolerance,
                    &id,
                    json!({
                        "clinicalStatus": cc(ALLERGY_CLINICAL, "active", "Active"),
                        "verificationStatus": cc(ALLERGY_VER, "confirmed", "Confirmed"),
                        "type": "allergy",
                        "category": [category],
                        "criticality": criticality,
                        "code": cc(SNOMED, code, display),
                        "patient": self.subject(),
                        "recordedDate": ymd(recorded),
                        "recorder": self.gp.reference(),
                        "reaction": [{"manifestation": [cc(SNOMED, reaction, reaction_display)],
                                      "severity": if criticality == "high" { "severe" } else { "mild" }}],
                    }),
                );
                self.out.push(resource);
            }
        }
    }

    fn repeat_medicines(&mut self) {
        let problems: Vec<(Chronic, NaiveDate, String)> = self
            .problems
            .iter()
            .map(|p| (p.kind, p.onset, p.id.clone()))
            .collect();
        for (kind, onset, condition_id) in problems {
            let info = kind.info();
            for treatment in info.treatments {
                if !self.rng.chance(treatment.probability) {
                    continue;
                }
                let start = onset
                    + years(treatment.after_years)
                    + Duration::days(self.rng.random_range(0..60));
                self.add_repeat(treatment.medicine, start, &condition_id, info.display);
            }
            // Most people with atrial fibrillation are anticoagulated: a few with warfarin
            // (monitored by INR tests, below), most with apixaban.
            if kind == Chronic::AtrialFibrillation && self.rng.chance(0.7) {
                let medicine = if self.rng.chance(0.25) {
                    &WARFARIN
                } else {
                    &APIXABAN
                };
                self.add_repeat(
                    medicine,
                    onset + Duration::days(14),
                    &condition_id,
                    info.display,
                );
            }
        }
    }

    fn add_repeat(
        &mut self,
        medicine: &'static Medicine,
        start: NaiveDate,
        condition_id: &str,
        reason: &str,
    ) {
        if start >= self.today
            || self
                .repeats
                .iter()
                .any(|r| std::ptr::eq(r.medicine, medicine))
        {
            return;
        }
        let template_id = self.next_id(Kind::MedicationRequest);
        let repeats_allowed = (365 / medicine.days.max(1)).max(1);
        let gp = self.gp.reference();
        if self.full {
            let template = build(
                Kind::MedicationRequest,
                &template_id,
                json!({
                    "status": "active",
                    "intent": "plan",
                    "category": [cc("http://terminology.hl7.org/CodeSystem/medicationrequest-category", "community", "Community")],
                    "medicationCodeableConcept": cc(DMD, medicine.dmd, medicine.name),
                    "subject": self.subject(),
                    "authoredOn": at(start, 10 * 60),
                    "requester": gp,
                    "reasonReference": [reference("Condition", condition_id, reason)],
                    "courseOfTherapyType": cc(COURSE, "continuous", "Continuous long term therapy"),
                    "dosageInstruction": [{"text": medicine.dosage}],
                    "dispenseRequest": {
                        "validityPeriod": {"start": ymd(start)},
                        "numberOfRepeatsAllowed": repeats_allowed,
                        "quantity": {"value": medicine.quantity, "unit": medicine.unit},
                        "expectedSupplyDuration": {"value": medicine.days, "unit": "days", "system": "http://unitsofmeasure.org", "code": "d"},
                    },
                }),
            );
            self.out.push(template);
        }
        // The prescriptions issued from it, one per supply, over the years the record covers.
        let mut issued = start.max(self.history_start);
        while issued < self.today {
            let issue_id = self.next_id(Kind::MedicationRequest);
            let prescriber = self.practice_gp();
            let issue_minute = 8 * 60 + self.rng.random_range(0..600);
            if self.full {
                let issue = build(
                    Kind::MedicationRequest,
                    &issue_id,
                    json!({
                        "status": "completed",
                        "intent": "order",
                        "category": [cc("http://terminology.hl7.org/CodeSystem/medicationrequest-category", "community", "Community")],
                        "medicationCodeableConcept": cc(DMD, medicine.dmd, medicine.name),
                        "subject": self.subject(),
                        "authoredOn": at(issued, issue_minute),
                        "requester": prescriber,
                        "basedOn": [reference_to("MedicationRequest", &template_id)],
                        "courseOfTherapyType": cc(COURSE, "continuous", "Continuous long term therapy"),
                        "dosageInstruction": [{"text": medicine.dosage}],
                        "dispenseRequest": {
                            "validityPeriod": {"start": ymd(issued), "end": ymd(issued + Duration::days(28))},
                            "quantity": {"value": medicine.quantity, "unit": medicine.unit},
                            "expectedSupplyDuration": {"value": medicine.days, "unit": "days", "system": "http://unitsofmeasure.org", "code": "d"},
                        },
                    }),
                );
                self.out.push(issue);
            }
            issued += Duration::days(i64::from(medicine.days) + self.rng.random_range(-3..6));
        }
        self.repeats.push(Repeat { medicine, start });
    }

    /// Any GP of the practice (the one who happens to sign).
    fn practice_gp(&mut self) -> Value {
        let gps = &self.practice.gps;
        let i = self.rng.random_range(0..gps.len().max(1));
        self.region.staff[gps[i.min(gps.len().saturating_sub(1))]].reference()
    }

    fn immunisations(&mut self) {
        let birth = self.person.birth;
        // The routine childhood schedule, for those young enough for it to be in this record.
        let childhood = if self.person.age(self.today) < 25 {
            CHILDHOOD
        } else {
            &[]
        };
        for (vaccine, age_days, dose) in childhood {
            let given = birth + Duration::days(age_days + self.rng.random_range(0..21));
            if given <= self.today && self.rng.chance(0.93) {
                self.immunization(vaccine, given, *dose);
            }
        }
        // Autumn campaigns: flu for the over-65s, people with a long-term condition that puts
        // them at risk, and children (nasal spray); COVID-19 for the over-75s.
        let first_year = self.history_start.year();
        for year in first_year..=self.today.year() {
            let day = NaiveDate::from_ymd_opt(year, 10, 1).unwrap_or(self.today)
                + Duration::days(self.rng.random_range(0..60));
            if day >= self.today || day < self.history_start {
                continue;
            }
            let age = self.person.age(day);
            let at_risk = self
                .problems
                .iter()
                .any(|p| p.onset <= day && p.kind.info().flu_risk);
            let (vaccine, uptake) = match age {
                2..=16 => (&FLU_NASAL, 0.45),
                _ if age >= 65 => (&FLU, 0.78),
                18.. if at_risk => (&FLU, 0.5),
                _ => continue,
            };
            if self.rng.chance(uptake) {
                self.immunization(vaccine, day, 1);
            }
            if year >= 2021 && age >= 75 && self.rng.chance(0.7) {
                let later = day + Duration::days(self.rng.random_range(0..10));
                self.immunization(&COVID, later, 1);
            }
        }
        let at = |years_old: f64| birth + years(years_old);
        let ppv = at(65.2);
        if ppv >= self.history_start && ppv < self.today && self.rng.chance(0.7) {
            self.immunization(&PPV, ppv, 1);
        }
        let shingles = at(70.3);
        if shingles >= self.history_start && shingles < self.today && self.rng.chance(0.45) {
            self.immunization(&SHINGLES, shingles, 1);
        }
    }

    fn immunization(&mut self, vaccine: &Vaccine, day: NaiveDate, dose: u32) {
        let infant = self.person.age(day) < 2;
        let (site_code, site_display) = if infant {
            ("LT", "left thigh")
        } else {
            ("LA", "left arm")
        };
        let lot = format!(
            "{}{}{:04}",
            char::from(b'A' + self.rng.random_range(0..26u8)),
            char::from(b'A' + self.rng.random_range(0..26u8)),
            self.rng.random_range(0..10_000)
        );
        let id = self.next_id(Kind::Immunization);
        let when = at(day, 9 * 60 + 10 * self.rng.random_range(0..40));
        if self.full {
            let resource = build(
                Kind::Immunization,
                &id,
                json!({
                    "status": "completed",
                    "vaccineCode": cc(CVX, vaccine.cvx, vaccine.display),
                    "patient": self.subject(),
                    "occurrenceDateTime": when,
                    "recorded": when,
                    "primarySource": true,
                    "location": reference("Location", &self.practice.site.id, &self.practice.site.name),
                    "lotNumber": lot,
                    "expirationDate": ymd(day + Duration::days(300)),
                    "site": cc("http://terminology.hl7.org/CodeSystem/v3-ActSite", site_code, site_display),
                    "route": cc("http://terminology.hl7.org/CodeSystem/v3-RouteOfAdministration", vaccine.route.0, vaccine.route.1),
                    "performer": [{"actor": self.practice.org.reference()}],
                    "protocolApplied": [{"doseNumberPositiveInt": dose}],
                }),
            );
            self.out.push(resource);
        }
    }

    // -----------------------------------------------------------------------------------------
    // Appointments and what happens at them

    /// Ids for the referrals, so that appointments can point at them before they are written.
    fn referral_ids(&mut self) -> Vec<String> {
        (0..self.person.referrals.len())
            .map(|_| self.next_id(Kind::ServiceRequest))
            .collect()
    }

    /// Every position the patient uses in their practice's and clinics' schedules, in date
    /// order.
    fn appointments(&mut self, referral_ids: &[String]) {
        let region = self.region;
        let mut used: Vec<(i64, NaiveDate, u32, &Schedule, Usage)> = Vec::new();
        for (schedule, rank) in region.schedules_of(&self.person) {
            let (_, window_end) = schedule.window(self.today);
            for pos in schedule.owned(rank, self.history_start, window_end) {
                if let Some(u) = region.use_of(schedule, pos, &self.person) {
                    let (date, start) = schedule.when(pos);
                    used.push((pos, date, start, schedule, u));
                }
            }
        }
        used.sort_by_key(|(pos, date, start, s, _)| (*date, *start, s.index, *pos));
        let mut attended = vec![false; self.person.referrals.len()];
        for (pos, date, start, schedule, usage) in used {
            let staff = &region.staff[schedule.staff];
            let referral = match schedule.kind {
                SlotKind::Clinic(s) => self.person.referrals.iter().position(|r| r.specialty == s),
                _ => None,
            };
            let based_on = referral.and_then(|i| referral_ids.get(i)).cloned();
            let first_visit = referral.is_some_and(|i| !attended.get(i).copied().unwrap_or(true));
            let description = match schedule.kind {
                SlotKind::Gp => "GP appointment".to_string(),
                SlotKind::Nurse => "Practice nurse review".to_string(),
                SlotKind::Pharmacist => {
                    "Medication review with the practice pharmacist".to_string()
                }
                SlotKind::Clinic(s) => format!(
                    "{} {}",
                    s.info().clinic,
                    if first_visit {
                        "new patient appointment"
                    } else {
                        "follow-up appointment"
                    }
                ),
            };
            let appointment = self.appointment(
                schedule,
                pos,
                date,
                start,
                usage,
                staff,
                &description,
                based_on.as_deref(),
            );
            if usage != Usage::Fulfilled {
                continue;
            }
            let minutes = schedule.session.minutes;
            match schedule.kind {
                SlotKind::Gp => self.gp_consultation(date, start, minutes, staff, &appointment),
                SlotKind::Nurse => self.nurse_review(date, start, minutes, staff, &appointment),
                SlotKind::Pharmacist => {
                    self.encounter_at_practice(
                        date,
                        start,
                        minutes,
                        staff,
                        &appointment,
                        ("182836005", "Review of medication"),
                        None,
                    );
                }
                SlotKind::Clinic(s) => {
                    if let Some(i) = referral {
                        if let Some(a) = attended.get_mut(i) {
                            *a = true;
                        }
                    }
                    self.clinic_attendance(
                        s,
                        date,
                        start,
                        minutes,
                        staff,
                        &appointment,
                        based_on.as_deref(),
                        first_visit,
                    );
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn appointment(
        &mut self,
        schedule: &Schedule,
        pos: i64,
        date: NaiveDate,
        start: u32,
        usage: Usage,
        staff: &Staff,
        description: &str,
        based_on: Option<&str>,
    ) -> String {
        let region = self.region;
        self.slots += 1;
        if self.full {
            self.out.push(region.slot(schedule, pos, "busy"));
        }
        let service = &region.services[schedule.service];
        let id = self.next_id(Kind::Appointment);
        let minutes = schedule.session.minutes;
        let booked_ahead = match schedule.kind {
            SlotKind::Clinic(_) => self.rng.random_range(14..70),
            _ => self.rng.random_range(1..21),
        };
        let mut created = date - Duration::days(booked_ahead);
        if let Some(r) = based_on.and_then(|_| match schedule.kind {
            SlotKind::Clinic(s) => self.person.referral(s),
            _ => None,
        }) {
            created = created.max(r.authored + Duration::days(1)).min(date);
        }
        let cancelled_by_patient = usage == Usage::Cancelled && self.rng.chance(0.6);
        if !self.full {
            return id;
        }
        let patient_status = match usage {
            Usage::Cancelled => "declined",
            Usage::NoShow => "declined",
            _ => "accepted",
        };
        let mut appointment = json!({
            "status": usage.status(),
            "serviceType": [{"text": service.name}],
            "specialty": [cc(SNOMED, service.specialty.0, service.specialty.1)],
            "appointmentType": cc(V2_0276, "ROUTINE", "Routine appointment - default if not valued"),
            "description": description,
            "start": at(date, start),
            "end": at(date, start + minutes),
            "minutesDuration": minutes,
            "slot": [reference_to("Slot", &region.slot_id(schedule, pos))],
            "created": at(created, 11 * 60),
            "participant": [
                {"actor": self.subject(), "required": "required", "status": patient_status},
                {"actor": staff.reference(), "required": "required", "status": "accepted"},
                {"actor": reference("Location", &schedule.location, &schedule.location_name), "required": "required", "status": "accepted"},
            ],
        });
        if let Some(sr) = based_on {
            appointment["basedOn"] = json!([reference_to("ServiceRequest", sr)]);
        }
        match usage {
            Usage::Booked => {
                appointment["patientInstruction"] = json!(
                    "Please arrive 10 minutes early and bring a list of your current medicines."
                );
            }
            Usage::Cancelled => {
                let (code, display) = if cancelled_by_patient {
                    ("pat", "Patient")
                } else {
                    ("prov", "Provider")
                };
                appointment["cancelationReason"] = cc(
                    "http://terminology.hl7.org/CodeSystem/appointment-cancellation-reason",
                    code,
                    display,
                );
            }
            _ => {}
        }
        self.out.push(build(Kind::Appointment, &id, appointment));
        id
    }

    #[allow(clippy::too_many_arguments)]
    fn encounter(
        &mut self,
        class: (&str, &str),
        kind: (&str, &str),
        period: (String, String),
        clinician: Value,
        org: &Org,
        site: &Site,
        appointment: Option<&str>,
        based_on: Option<&str>,
        extra: Value,
    ) -> String {
        let id = self.next_id(Kind::Encounter);
        if !self.full {
            return id;
        }
        let mut e = json!({
            "status": "finished",
            "class": {"system": ACT_CODE, "code": class.0, "display": class.1},
            "type": [cc(SNOMED, kind.0, kind.1)],
            "subject": self.subject(),
            "participant": [{"type": [cc(PARTICIPANT_TYPE, "PPRF", "primary performer")], "individual": clinician}],
            "period": {"start": period.0, "end": period.1},
            "location": [{"location": reference("Location", &site.id, &site.name)}],
            "serviceProvider": org.reference(),
        });
        if let Some(a) = appointment {
            e["appointment"] = json!([reference_to("Appointment", a)]);
        }
        if let Some(sr) = based_on {
            e["basedOn"] = json!([reference_to("ServiceRequest", sr)]);
        }
        if let (Value::Object(e), Value::Object(extra)) = (&mut e, extra) {
            e.extend(extra);
        }
        self.out.push(build(Kind::Encounter, &id, e));
        id
    }

    #[allow(clippy::too_many_arguments)]
    fn encounter_at_practice(
        &mut self,
        date: NaiveDate,
        start: u32,
        minutes: u32,
        staff: &Staff,
        appointment: &str,
        kind: (&str, &str),
        diagnosis: Option<&str>,
    ) -> String {
        let extra = match diagnosis {
            Some(c) => json!({"diagnosis": [{"condition": reference_to("Condition", c)}]}),
            None => json!({}),
        };
        let practice = self.practice;
        self.encounter(
            ("AMB", "ambulatory"),
            kind,
            (at(date, start), at(date, start + minutes)),
            staff.reference(),
            &practice.org,
            &practice.site,
            Some(appointment),
            None,
            extra,
        )
    }

    /// An acute problem, written as a resolved encounter diagnosis, perhaps with a prescription.
    fn acute_problem(
        &mut self,
        date: NaiveDate,
        recorder: Value,
    ) -> Option<(String, &'static Acute)> {
        let age = self.person.age(date);
        let choices: Vec<(&'static Acute, f64)> = ACUTE
            .iter()
            .filter(|a| age >= a.ages.0 && age <= a.ages.1)
            .map(|a| (a, a.weight))
            .collect();
        if choices.is_empty() {
            return None;
        }
        let acute = *self.rng.pick_weighted(&choices);
        let onset = date - Duration::days(self.rng.random_range(1..6));
        let id = self.next_id(Kind::Condition);
        if self.full {
            let resource = build(
                Kind::Condition,
                &id,
                json!({
                    "clinicalStatus": cc(CONDITION_CLINICAL, "resolved", "Resolved"),
                    "verificationStatus": cc(CONDITION_VER, "confirmed", "Confirmed"),
                    "category": [cc(CONDITION_CATEGORY, "encounter-diagnosis", "Encounter Diagnosis")],
                    "code": cc(SNOMED, acute.snomed, acute.display),
                    "subject": self.subject(),
                    "onsetDateTime": ymd(onset),
                    "abatementDateTime": ymd(date + Duration::days(acute.days)),
                    "recordedDate": ymd(date),
                    "recorder": recorder.clone(),
                }),
            );
            self.out.push(resource);
        }
        if let Some(m) = acute.medicine.filter(|_| self.rng.chance(0.7)) {
            let med_id = self.next_id(Kind::MedicationRequest);
            if self.full {
                let resource = build(
                    Kind::MedicationRequest,
                    &med_id,
                    json!({
                        "status": "completed",
                        "intent": "order",
                        "category": [cc("http://terminology.hl7.org/CodeSystem/medicationrequest-category", "community", "Community")],
                        "medicationCodeableConcept": cc(DMD, m.dmd, m.name),
                        "subject": self.subject(),
                        "authoredOn": at(date, 12 * 60),
                        "requester": recorder,
                        "reasonReference": [reference("Condition", &id, acute.display)],
                        "courseOfTherapyType": cc(COURSE, "acute", "Short course (acute) therapy"),
                        "dosageInstruction": [{"text": m.dosage}],
                        "dispenseRequest": {"quantity": {"value": m.quantity, "unit": m.unit},
                                            "expectedSupplyDuration": {"value": m.days, "unit": "days", "system": "http://unitsofmeasure.org", "code": "d"}},
                    }),
                );
                self.out.push(resource);
            }
        }
        Some((id, acute))
    }

    fn gp_consultation(
        &mut self,
        date: NaiveDate,
        start: u32,
        minutes: u32,
        staff: &Staff,
        appointment: &str,
    ) {
        let problem = if self.rng.chance(0.75) {
            self.acute_problem(date, staff.reference())
        } else {
            None
        };
        let encounter = self.encounter_at_practice(
            date,
            start,
            minutes,
            staff,
            appointment,
            ("11429006", "Consultation"),
            problem.as_ref().map(|(id, _)| id.as_str()),
        );
        let when = at(date, start + 5);
        if self.rng.chance(0.3) {
            let temperature = round(self.rng.normal(37.2, 0.6), 1);
            self.vital(
                &when,
                &encounter,
                staff,
                ("8310-5", "Body temperature"),
                temperature,
                ("Cel", "Cel"),
            );
            let pulse = round(self.rng.normal(82.0, 10.0), 0);
            self.vital(
                &when,
                &encounter,
                staff,
                ("8867-4", "Heart rate"),
                pulse,
                ("/min", "/min"),
            );
        }
        if self.person.age(date) >= 18 && self.rng.chance(0.3) {
            self.blood_pressure(date, &when, &encounter, staff);
        }
    }

    fn nurse_review(
        &mut self,
        date: NaiveDate,
        start: u32,
        minutes: u32,
        staff: &Staff,
        appointment: &str,
    ) {
        let age = self.person.age(date);
        let active: Vec<Chronic> = self
            .problems
            .iter()
            .filter(|p| p.onset <= date)
            .map(|p| p.kind)
            .collect();
        let kind = if active.is_empty() {
            ("185349003", "Encounter for check up")
        } else {
            ("390906007", "Follow-up encounter")
        };
        // Blood tests a week before the review, for the conditions that need them.
        let mut panels: Vec<Panel> = Vec::new();
        for c in &active {
            for p in c.info().panels {
                if !panels.contains(p) {
                    panels.push(*p);
                }
            }
        }
        if age >= 40
            && (active.is_empty()
                || active.iter().any(|c| {
                    matches!(
                        c,
                        Chronic::Diabetes | Chronic::CoronaryHeartDisease | Chronic::Stroke
                    )
                }))
            && !panels.contains(&Panel::Lipids)
            && self.rng.chance(0.5)
        {
            panels.push(Panel::Lipids);
        }
        let bloods = date - Duration::days(7);
        for p in panels {
            self.panel(p, bloods, None);
        }
        let encounter =
            self.encounter_at_practice(date, start, minutes, staff, appointment, kind, None);
        let when = at(date, start + 5);
        if age >= 16 {
            self.blood_pressure(date, &when, &encounter, staff);
            let weight = self.weight(date);
            self.vital(
                &when,
                &encounter,
                staff,
                ("29463-7", "Body weight"),
                weight,
                ("kg", "kg"),
            );
            let bmi = round(weight / (self.height_cm / 100.0).powi(2), 1);
            self.vital(
                &when,
                &encounter,
                staff,
                ("39156-5", "Body mass index (BMI) [Ratio]"),
                bmi,
                ("kg/m2", "kg/m2"),
            );
        } else {
            let (weight, height) = self.child_size(date);
            self.vital(
                &when,
                &encounter,
                staff,
                ("29463-7", "Body weight"),
                weight,
                ("kg", "kg"),
            );
            self.vital(
                &when,
                &encounter,
                staff,
                ("8302-2", "Body height"),
                height,
                ("cm", "cm"),
            );
        }
        if active
            .iter()
            .any(|c| matches!(c, Chronic::Asthma | Chronic::Copd))
        {
            let best = if self.person.female { 420.0 } else { 540.0 };
            let flow = round(self.rng.normal(best * 0.85, 35.0).clamp(150.0, 700.0), -1);
            self.vital(
                &when,
                &encounter,
                staff,
                (
                    "19935-6",
                    "Maximum expiratory gas flow Respiratory system airway by Peak flow meter",
                ),
                flow,
                ("L/min", "L/min"),
            );
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn clinic_attendance(
        &mut self,
        specialty: Specialty,
        date: NaiveDate,
        start: u32,
        minutes: u32,
        consultant: &Staff,
        appointment: &str,
        referral: Option<&str>,
        first: bool,
    ) {
        let info = specialty.info();
        let trust = self.trust;
        let kind = if first {
            ("11429006", "Consultation")
        } else {
            ("390906007", "Follow-up encounter")
        };
        let encounter = self.encounter(
            ("AMB", "ambulatory"),
            kind,
            (at(date, start), at(date, start + minutes)),
            consultant.reference(),
            &trust.org,
            &trust.outpatients,
            Some(appointment),
            referral,
            json!({"serviceType": cc(SNOMED, info.snomed, info.display)}),
        );
        let when = at(date, start + 10);
        let mut findings = Vec::new();
        match specialty {
            Specialty::Cardiology | Specialty::Renal | Specialty::ElderlyCare => {
                let (sys, dia) = self.blood_pressure(date, &when, &encounter, consultant);
                findings.push(format!("Blood pressure today was {sys}/{dia} mmHg."));
            }
            Specialty::Diabetes => {
                let hba1c = self.analyte_value(Analyte::Hba1c, date);
                self.panel(Panel::Hba1c, date, Some(&encounter));
                findings.push(format!("Their HbA1c today is {hba1c} mmol/mol."));
            }
            Specialty::Respiratory => {
                let sats = round(self.rng.normal(95.5, 1.5).min(100.0), 0);
                self.vital(
                    &when,
                    &encounter,
                    consultant,
                    (
                        "59408-5",
                        "Oxygen saturation in Arterial blood by Pulse oximetry",
                    ),
                    sats,
                    ("%", "%"),
                );
                findings.push(format!("Oxygen saturation was {sats}% on air."));
            }
            _ => {}
        }
        findings.push(if first {
            "We discussed the findings and the options, and agreed a plan together.".into()
        } else {
            "They report that things are stable since the last visit.".into()
        });
        let plan = if first {
            format!(
                "We will see them again in the {} clinic. No change to their medication from us.",
                info.clinic.to_lowercase()
            )
        } else {
            "Continue current treatment; we will review them again in the clinic in six months."
                .into()
        };
        let diagnoses: Vec<&str> = self
            .problems
            .iter()
            .filter(|p| p.onset <= date)
            .map(|p| p.kind.info().display)
            .collect();
        let medicines: Vec<&str> = self
            .repeats
            .iter()
            .filter(|r| r.start <= date)
            .map(|r| r.medicine.name)
            .collect();
        let gp = self.gp;
        let letter = letters::clinic_letter(
            &trust.org.name,
            info.clinic,
            &self.letter_patient(),
            &gp.display(),
            &self.practice.org.name,
            &consultant.display(),
            date,
            first,
            &diagnoses,
            &medicines,
            &findings.join(" "),
            &plan,
        );
        let written = next_working_day(date + Duration::days(self.rng.random_range(1..8)));
        self.letter(
            letter,
            ("371531000", "Report of clinical encounter"),
            written,
            consultant,
            &encounter,
            (at(date, start), at(date, start + minutes)),
            (info.snomed, info.display),
        );
    }

    fn letter_patient(&self) -> letters::Patient {
        let p = &self.person;
        letters::Patient {
            name: p.name(),
            birth: p.birth,
            nhs: p.nhs.formatted(),
            address: format!(
                "{}, {} {}",
                p.address.line, p.address.town.name, p.address.postcode
            ),
        }
    }

    /// A letter as a DocumentReference pointing at its text in a Binary.
    #[allow(clippy::too_many_arguments)]
    fn letter(
        &mut self,
        letter: Letter,
        kind: (&str, &str),
        written: NaiveDate,
        author: &Staff,
        encounter: &str,
        period: (String, String),
        setting: (&str, &str),
    ) {
        let html = self.rng.chance(0.3);
        let doc_id = self.next_id(Kind::DocumentReference);
        let binary_id = self.next_id(Kind::Binary);
        let minute = 16 * 60 + self.rng.random_range(0..90);
        if !self.full {
            return;
        }
        let (content_type, text) = if html {
            ("text/html; charset=utf-8", letter.html())
        } else {
            ("text/plain; charset=utf-8", letter.plain())
        };
        let data = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
        let when = at(written, minute);
        {
            self.out.push(build(
                Kind::Binary,
                &binary_id,
                json!({
                    "contentType": content_type,
                    "securityContext": reference_to("DocumentReference", &doc_id),
                    "data": data,
                }),
            ));
        }
        let trust = self.trust;
        if self.full {
            self.out.push(build(
                Kind::DocumentReference,
                &doc_id,
                json!({
                    "status": "current",
                    "docStatus": "final",
                    "type": cc(SNOMED, kind.0, kind.1),
                    "subject": self.subject(),
                    "date": when,
                    "author": [author.reference(), trust.org.reference()],
                    "custodian": trust.org.reference(),
                    "description": letter.title,
                    "content": [{"attachment": {
                        "contentType": content_type,
                        "url": format!("Binary/{binary_id}"),
                        "size": text.len(),
                        "title": letter.title,
                        "creation": when,
                    }}],
                    "context": {
                        "encounter": [reference_to("Encounter", encounter)],
                        "period": {"start": period.0, "end": period.1},
                        "practiceSetting": cc(SNOMED, setting.0, setting.1),
                    },
                }),
            ));
        }
    }

    // -----------------------------------------------------------------------------------------
    // Care without a slot

    /// Telephone consultations with a GP, about a third of all consultations.
    fn telephone_consultations(&mut self) {
        let mut date = self.history_start;
        loop {
            let rate = self.region.demand(&self.person, SlotKind::Gp, date) / 0.65 * 0.35;
            if rate <= 0.0 {
                break;
            }
            let gap = -(1.0 - self.rng.random::<f64>()).ln() / rate * 365.25;
            // Beyond a century the answer is the same (no more events) and dates stay valid.
            date += Duration::days(gap.ceil().clamp(1.0, 36_500.0) as i64);
            if date >= self.today {
                break;
            }
            if !is_working_day(date) {
                continue;
            }
            let gp = self.practice.gps[self
                .rng
                .random_range(0..self.practice.gps.len().max(1))
                .min(self.practice.gps.len().saturating_sub(1))];
            let staff = &self.region.staff[gp];
            let start = 8 * 60 + 10 * self.rng.random_range(0..50);
            let problem = if self.rng.chance(0.5) {
                self.acute_problem(date, staff.reference())
            } else {
                None
            };
            let extra = match &problem {
                Some((c, _)) => json!({"diagnosis": [{"condition": reference_to("Condition", c)}]}),
                None => json!({}),
            };
            let practice = self.practice;
            self.encounter(
                ("VR", "virtual"),
                ("185317003", "Telephone encounter"),
                (at(date, start), at(date, start + 10)),
                staff.reference(),
                &practice.org,
                &practice.site,
                None,
                None,
                extra,
            );
        }
    }

    /// INR tests every few weeks for people taking warfarin.
    fn anticoagulation_monitoring(&mut self) {
        let Some(start) = self
            .repeats
            .iter()
            .find(|r| std::ptr::eq(r.medicine, &WARFARIN))
            .map(|r| r.start)
        else {
            return;
        };
        let mut date = next_working_day(start.max(self.history_start) + Duration::days(7));
        while date < self.today {
            self.panel(Panel::Inr, date, None);
            date = next_working_day(date + Duration::days(self.rng.random_range(21..43)));
        }
    }

    /// Emergency admissions and attendances, more for the old, frail and multimorbid.
    fn hospital_admissions(&mut self) {
        let mut date = self.history_start;
        loop {
            let age = self.person.age(date);
            let rate = 0.012
                * [0.6, 0.6, 1.0, 3.0, 7.0][age_band(age)]
                * (1.0 + 0.5 * self.person.conditions_on(date) as f64)
                * self.person.frailty;
            let gap = -(1.0 - self.rng.random::<f64>()).ln() / rate * 365.25;
            // Beyond a century the answer is the same (no more events) and dates stay valid.
            date += Duration::days(gap.ceil().clamp(1.0, 36_500.0) as i64);
            if date >= self.today - Duration::days(2) {
                break;
            }
            let reasons: Vec<(&(&str, &str, i64), f64)> = ADMISSION_REASONS
                .iter()
                .filter(|r| age >= r.2)
                .map(|r| (r, 1.0))
                .collect();
            if reasons.is_empty() {
                continue;
            }
            let (code, display, _) = **self.rng.pick_weighted(&reasons);
            self.admission(date, code, display);
        }
    }

    fn admission(&mut self, date: NaiveDate, code: &str, display: &str) {
        let trust = self.trust;
        let physician = &self.region.staff[trust.physicians[self
            .rng
            .random_range(0..trust.physicians.len().max(1))
            .min(trust.physicians.len().saturating_sub(1))]];
        let arrival = 9 * 60 + self.rng.random_range(0..12 * 60);
        let admitted = self.rng.chance(0.6);
        let stay = if admitted {
            (1.0 + (-(1.0 - self.rng.random::<f64>()).ln()) * 4.0 * self.person.frailty.powf(0.3))
                .min(30.0) as i64
        } else {
            0
        };
        let discharged = (date + Duration::days(stay)).min(self.today - Duration::days(1));
        let condition_id = self.next_id(Kind::Condition);
        if self.full {
            self.out.push(build(
                Kind::Condition,
                &condition_id,
                json!({
                    "clinicalStatus": cc(CONDITION_CLINICAL, "resolved", "Resolved"),
                    "verificationStatus": cc(CONDITION_VER, "confirmed", "Confirmed"),
                    "category": [cc(CONDITION_CATEGORY, "encounter-diagnosis", "Encounter Diagnosis")],
                    "code": cc(SNOMED, code, display),
                    "subject": self.subject(),
                    "onsetDateTime": ymd(date),
                    "abatementDateTime": ymd(discharged + Duration::days(7)),
                    "recordedDate": ymd(date),
                    "recorder": physician.reference(),
                }),
            ));
        }
        let (class, kind, site, end) = if admitted {
            (
                ("IMP", "inpatient encounter"),
                ("183452005", "Emergency hospital admission"),
                &trust.ward,
                at(discharged, 11 * 60),
            )
        } else {
            (
                ("EMER", "emergency"),
                ("50849002", "Emergency room admission"),
                &trust.emergency,
                at(date, arrival + 240),
            )
        };
        let mut extra = json!({
            "reasonCode": [cc(SNOMED, code, display)],
            "diagnosis": [{"condition": reference("Condition", &condition_id, display)}],
        });
        if admitted {
            extra["hospitalization"] = json!({
                "admitSource": cc(ADMIT_SOURCE, "emd", "From accident/emergency department"),
                "dischargeDisposition": cc(DISCHARGE, "home", "Home"),
            });
        }
        let encounter = self.encounter(
            class,
            kind,
            (at(date, arrival), end),
            physician.reference(),
            &trust.org,
            site,
            None,
            None,
            extra,
        );
        let when = at(date, arrival + 20);
        let unwell = 1.0 + self.rng.random::<f64>();
        let pulse = round(self.rng.normal(88.0 + 8.0 * unwell, 8.0), 0);
        self.vital(
            &when,
            &encounter,
            physician,
            ("8867-4", "Heart rate"),
            pulse,
            ("/min", "/min"),
        );
        let resp = round(self.rng.normal(17.0 + 2.0 * unwell, 2.0), 0);
        self.vital(
            &when,
            &encounter,
            physician,
            ("9279-1", "Respiratory rate"),
            resp,
            ("/min", "/min"),
        );
        let temp = round(self.rng.normal(37.3 + 0.4 * unwell, 0.5), 1);
        self.vital(
            &when,
            &encounter,
            physician,
            ("8310-5", "Body temperature"),
            temp,
            ("Cel", "Cel"),
        );
        let sats = round(self.rng.normal(96.0 - unwell, 1.5).min(100.0), 0);
        self.vital(
            &when,
            &encounter,
            physician,
            (
                "59408-5",
                "Oxygen saturation in Arterial blood by Pulse oximetry",
            ),
            sats,
            ("%", "%"),
        );
        self.blood_pressure(date, &when, &encounter, physician);
        self.panel(Panel::FullBloodCount, date, Some(&encounter));
        self.panel(Panel::UreaAndElectrolytes, date, Some(&encounter));
        if admitted {
            let medicines: Vec<&str> = self
                .repeats
                .iter()
                .filter(|r| r.start <= date)
                .map(|r| r.medicine.name)
                .collect();
            let gp = self.gp;
            let letter = letters::discharge_summary(
                &trust.org.name,
                &trust.hospital.name,
                &self.letter_patient(),
                &gp.display(),
                &self.practice.org.name,
                &physician.display(),
                date,
                discharged,
                display,
                &medicines,
            );
            self.letter(
                letter,
                ("373942005", "Discharge summary"),
                discharged,
                physician,
                &encounter,
                (at(date, arrival), at(discharged, 11 * 60)),
                ("419192003", "Internal medicine"),
            );
        }
    }

    fn smoking_status(&mut self) {
        if self.person.age(self.today) < 16 {
            return;
        }
        let (code, display) = match self.person.smoking {
            Smoking::Never => ("266919005", "Never smoked tobacco"),
            Smoking::Ex => ("8517006", "Ex-smoker"),
            Smoking::Current => ("77176002", "Smoker"),
        };
        let day = next_working_day(self.today - Duration::days(self.rng.random_range(30..700)));
        if day < self.history_start {
            return;
        }
        let id = self.next_id(Kind::Observation);
        let gp = self.gp.reference();
        if self.full {
            self.out.push(build(
                Kind::Observation,
                &id,
                json!({
                    "status": "final",
                    "category": [cc(OBS_CATEGORY, "social-history", "Social History")],
                    "code": cc(LOINC, "72166-2", "Tobacco smoking status"),
                    "subject": self.subject(),
                    "effectiveDateTime": at(day, 10 * 60),
                    "issued": at(day, 10 * 60),
                    "performer": [gp],
                    "valueCodeableConcept": cc(SNOMED, code, display),
                }),
            ));
        }
    }

    fn referrals(&mut self, ids: &[String]) {
        for (i, r) in self.person.referrals.clone().iter().enumerate() {
            let Some(id) = ids.get(i) else { continue };
            if !self.full {
                continue;
            }
            let info = r.specialty.info();
            // On the waiting list until seen; a referral whose episode of care has begun is
            // fulfilled (its follow-ups are booked against it).
            let status = match &r.state {
                ReferralState::Waiting => "active",
                ReferralState::Treated { .. } => "completed",
            };
            let reason_text = r.reason.map_or(info.elective_reason, |c| c.info().display);
            let ubrn = format!(
                "{:012}",
                mix(
                    self.region.layout.seed,
                    0xB0B + self.person.index * 16 + i as u64
                ) % 1_000_000_000_000
            );
            let mut sr = json!({
                "identifier": [{"system": UBRN, "value": ubrn}],
                "status": status,
                "intent": "order",
                "category": [cc(SNOMED, "3457005", "Patient referral")],
                "priority": if r.urgent { "urgent" } else { "routine" },
                "code": {"coding": [{"system": SNOMED, "code": "306206005", "display": "Referral to service"}],
                         "text": format!("Referral to {}", info.clinic)},
                "subject": self.subject(),
                "authoredOn": at(r.authored, 10 * 60),
                "requester": self.gp.reference(),
                "performerType": cc(SNOMED, info.snomed, info.display),
                "performer": [self.trust.org.reference()],
                "reasonCode": [{"text": reason_text}],
                "note": [{"text": format!("Please see in the {} clinic.", info.clinic)}],
            });
            if let Some(c) = r
                .reason
                .and_then(|c| self.problems.iter().find(|p| p.kind == c))
            {
                sr["reasonReference"] =
                    json!([reference("Condition", &c.id, c.kind.info().display)]);
            }
            self.out.push(build(Kind::ServiceRequest, id, sr));
        }
    }

    // -----------------------------------------------------------------------------------------
    // Measurements

    fn vital(
        &mut self,
        when: &str,
        encounter: &str,
        performer: &Staff,
        code: (&str, &str),
        value: f64,
        unit: (&str, &str),
    ) {
        let id = self.next_id(Kind::Observation);
        if self.full {
            self.out.push(build(
                Kind::Observation,
                &id,
                json!({
                    "status": "final",
                    "category": [cc(OBS_CATEGORY, "vital-signs", "Vital Signs")],
                    "code": cc(LOINC, code.0, code.1),
                    "subject": self.subject(),
                    "encounter": reference_to("Encounter", encounter),
                    "effectiveDateTime": when,
                    "issued": when,
                    "performer": [performer.reference()],
                    "valueQuantity": quantity(value, unit.0, unit.1),
                }),
            ));
        }
    }

    /// A blood pressure panel; hypertension raises it until treatment brings it down.
    fn blood_pressure(
        &mut self,
        date: NaiveDate,
        when: &str,
        encounter: &str,
        performer: &Staff,
    ) -> (i64, i64) {
        let age = self.person.age(date) as f64;
        let mut sys = self.systolic + 0.35 * (age - 40.0).max(0.0);
        let mut dia = self.diastolic + 0.1 * (age - 40.0).max(0.0);
        if let Some(p) = self
            .problems
            .iter()
            .find(|p| p.kind == Chronic::Hypertension && p.onset <= date + Duration::days(60))
        {
            let treated = self
                .repeats
                .iter()
                .any(|r| r.start <= date && std::ptr::eq(r.medicine, &AMLODIPINE));
            let years_treated = years_between(p.onset, date).max(0.0);
            let excess = if treated {
                28.0 * (-years_treated / 1.5).exp() + 8.0
            } else {
                30.0
            };
            sys = sys.max(135.0) + excess;
            dia = dia.max(82.0) + excess / 3.0;
        }
        let sys = (sys + self.rng.normal(0.0, 7.0)).round() as i64;
        let dia = (dia + self.rng.normal(0.0, 5.0))
            .round()
            .min(sys as f64 - 20.0) as i64;
        let id = self.next_id(Kind::Observation);
        if !self.full {
            return (sys, dia);
        }
        let component = |code: &str, display: &str, value: i64| {
            json!({"code": cc(LOINC, code, display),
                   "valueQuantity": {"value": value, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}})
        };
        let mut obs = json!({
            "status": "final",
            "category": [cc(OBS_CATEGORY, "vital-signs", "Vital Signs")],
            "code": cc(LOINC, "85354-9", "Blood pressure panel with all children optional"),
            "subject": self.subject(),
            "encounter": reference_to("Encounter", encounter),
            "effectiveDateTime": when,
            "issued": when,
            "performer": [performer.reference()],
            "component": [
                component("8480-6", "Systolic blood pressure", sys),
                component("8462-4", "Diastolic blood pressure", dia),
            ],
        });
        if sys >= 140 || dia >= 90 {
            obs["interpretation"] = json!([cc(INTERPRETATION, "H", "High")]);
        }
        self.out.push(build(Kind::Observation, &id, obs));
        (sys, dia)
    }

    /// Weight on a date: the baseline BMI drifting slowly, with day-to-day noise.
    fn weight(&mut self, date: NaiveDate) -> f64 {
        let bmi = self.bmi + self.bmi_drift * years_between(self.history_start, date);
        let h = self.height_cm / 100.0;
        round(bmi.clamp(16.0, 55.0) * h * h + self.rng.normal(0.0, 0.6), 1)
    }

    fn child_size(&mut self, date: NaiveDate) -> (f64, f64) {
        let y = years_between(self.person.birth, date).max(0.0);
        let (w, h) = if y < 1.0 {
            (3.4 + 6.5 * y, 50.0 + 25.0 * y)
        } else if y < 10.0 {
            (9.9 + 2.4 * (y - 1.0), 75.0 + 6.8 * (y - 1.0))
        } else {
            (31.5 + 4.8 * (y - 10.0), 136.0 + 5.5 * (y - 10.0))
        };
        (
            round(w * self.rng.normal(1.0, 0.08), 1),
            round(h * self.rng.normal(1.0, 0.03), 1),
        )
    }

    /// A laboratory result on a date, following the patient's conditions and treatment.
    fn analyte_value(&mut self, a: Analyte, date: NaiveDate) -> f64 {
        let has = |c: Chronic| self.person.has(c, date);
        let onset = |c: Chronic| self.problems.iter().find(|p| p.kind == c).map(|p| p.onset);
        let on_statin = self
            .repeats
            .iter()
            .any(|r| r.start <= date && std::ptr::eq(r.medicine, &ATORVASTATIN));
        let egfr = if let Some(o) = onset(Chronic::Ckd).filter(|o| *o <= date) {
            self.egfr_start - self.egfr_decline * years_between(o, date)
        } else {
            95.0 - 0.7 * (self.person.age(date) as f64 - 40.0).max(0.0)
        };
        let egfr = (egfr + self.rng.normal(0.0, 3.0)).clamp(8.0, 90.0);
        let info = a.info();
        let v = match a {
            Analyte::Haemoglobin => {
                self.haemoglobin + self.rng.normal(0.0, 5.0)
                    - if has(Chronic::Ckd) { 12.0 } else { 0.0 }
            }
            Analyte::WhiteCells => self.rng.normal(7.0, 1.8).max(2.5),
            Analyte::Platelets => self.rng.normal(270.0, 60.0).max(60.0),
            Analyte::Mcv => self.rng.normal(90.0, 4.0),
            Analyte::Sodium => self.rng.normal(139.5, 2.2),
            Analyte::Potassium => self
                .rng
                .normal(if has(Chronic::Ckd) { 4.8 } else { 4.3 }, 0.35),
            Analyte::Urea => self.rng.normal(5.0, 1.0) * (75.0 / egfr).max(1.0),
            Analyte::Creatinine => 6_800.0 / egfr + self.rng.normal(0.0, 4.0),
            Analyte::Egfr => egfr,
            Analyte::Cholesterol => {
                self.cholesterol * if on_statin { 0.72 } else { 1.0 } + self.rng.normal(0.0, 0.25)
            }
            Analyte::Hdl => self
                .rng
                .normal(if self.person.female { 1.55 } else { 1.25 }, 0.2)
                .max(0.6),
            Analyte::Ldl => (self.cholesterol * if on_statin { 0.72 } else { 1.0 } - 1.9
                + self.rng.normal(0.0, 0.3))
            .max(0.8),
            Analyte::Triglycerides => self.rng.normal(1.5, 0.5).max(0.4),
            Analyte::Hba1c => match onset(Chronic::Diabetes).filter(|o| *o <= date) {
                Some(o) => {
                    let t = years_between(o, date);
                    self.hba1c_target
                        + (self.hba1c_start - self.hba1c_target) * (-t / 0.7).exp()
                        + self.rng.normal(0.0, 3.0)
                }
                None => self.rng.normal(37.0, 2.5),
            },
            Analyte::Tsh => match onset(Chronic::Hypothyroidism).filter(|o| *o <= date) {
                Some(o) if years_between(o, date) < 0.5 => self.rng.normal(9.0, 2.0),
                _ => self.rng.normal(2.0, 0.8).max(0.2),
            },
            Analyte::Inr => self.rng.normal(2.5, 0.45).max(1.0),
            Analyte::Acr => if has(Chronic::Diabetes) || has(Chronic::Ckd) {
                self.rng.normal(4.0, 2.5)
            } else {
                self.rng.normal(1.2, 0.5)
            }
            .max(0.2),
        };
        round(v, info.places)
    }

    /// A laboratory report with an Observation per analyte.
    fn panel(&mut self, panel: Panel, date: NaiveDate, encounter: Option<&str>) {
        let (code, display, analytes) = panel.definition();
        let trust = self.trust;
        let drawn = at(date, 8 * 60 + 30 + self.rng.random_range(0..120));
        let reported = at(date, 15 * 60 + self.rng.random_range(0..180));
        let mut results = Vec::new();
        for a in analytes {
            let info = a.info();
            let value = self.analyte_value(*a, date);
            let id = self.next_id(Kind::Observation);
            if !self.full {
                continue;
            }
            let mut obs = Map::new();
            obs.insert("status".into(), json!("final"));
            obs.insert(
                "category".into(),
                json!([cc(OBS_CATEGORY, "laboratory", "Laboratory")]),
            );
            obs.insert("code".into(), cc(LOINC, info.loinc, info.display));
            obs.insert("subject".into(), self.subject());
            if let Some(e) = encounter {
                obs.insert("encounter".into(), reference_to("Encounter", e));
            }
            obs.insert("effectiveDateTime".into(), json!(drawn));
            obs.insert("issued".into(), json!(reported));
            obs.insert("performer".into(), json!([trust.org.reference()]));
            let mut q = quantity(value, info.unit, info.ucum);
            if *a == Analyte::Egfr && value >= 90.0 {
                q["comparator"] = json!(">");
            }
            obs.insert("valueQuantity".into(), q);
            let flag = match (info.low, info.high) {
                (Some(low), _) if value < low => Some(("L", "Low")),
                (_, Some(high)) if value > high => Some(("H", "High")),
                _ => None,
            };
            if let Some((c, d)) = flag {
                obs.insert("interpretation".into(), json!([cc(INTERPRETATION, c, d)]));
            }
            let mut range = Map::new();
            if let Some(low) = info.low {
                range.insert("low".into(), quantity(low, info.unit, info.ucum));
            }
            if let Some(high) = info.high {
                range.insert("high".into(), quantity(high, info.unit, info.ucum));
            }
            if !range.is_empty() {
                obs.insert("referenceRange".into(), json!([Value::Object(range)]));
            }
            self.out
                .push(build(Kind::Observation, &id, Value::Object(obs)));
            results.push(reference("Observation", &id, info.display));
        }
        let id = self.next_id(Kind::DiagnosticReport);
        if !self.full {
            return;
        }
        let mut report = json!({
            "status": "final",
            "category": [cc(V2_0074, "LAB", "Laboratory")],
            "code": cc(LOINC, code, display),
            "subject": self.subject(),
            "effectiveDateTime": drawn,
            "issued": reported,
            "performer": [trust.org.reference()],
            "result": results,
        });
        if let Some(e) = encounter {
            report["encounter"] = reference_to("Encounter", e);
        }
        self.out.push(build(Kind::DiagnosticReport, &id, report));
    }
}

fn next_working_day(mut d: NaiveDate) -> NaiveDate {
    while !is_working_day(d) {
        d += Duration::days(1);
    }
    d
}
