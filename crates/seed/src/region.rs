//! The shared part of the region: trusts and GP practices with their sites, services and staff,
//! the clinicians' schedules, and the free slots of the booking window. Built once, before any
//! patient's record, from a pass over every patient's profile that finds who is under which
//! hospital specialty (a few bytes per referred patient: the only state that grows with the
//! region).

use std::collections::{BTreeMap, HashMap};

use chrono::{Duration, NaiveDate};
use rand::Rng;
use serde_json::{json, Value};

use crate::calendar::at;
use crate::catalogue::Specialty;
use crate::clinics::{
    usage, Group, Schedule, Session, SlotKind, Usage, CLINIC_SESSION, GP_SESSION, NURSE_SESSION,
    PHARMACIST_SESSION,
};
use crate::ids::Ids;
use crate::json::{build, cc, reference, reference_to, GMC, GPHC, NMC, ODS, SNOMED, V2_0276};
use crate::kind::Kind;
use crate::population::{Layout, Person};
use crate::rng::{mix, stream, Draw, Purpose};
use crate::vocab::{landline, Town, BRITISH_SURNAMES_FOR_STAFF, STAFF_FEMALE, STAFF_MALE, TOWNS};

const PHYSICAL_TYPE: &str = "http://terminology.hl7.org/CodeSystem/location-physical-type";
const ORG_TYPE: &str = "http://terminology.hl7.org/CodeSystem/organization-type";

/// Booking windows: GP practices book three weeks ahead, hospital clinics eight.
const GP_HORIZON_DAYS: i64 = 21;
const CLINIC_HORIZON_DAYS: i64 = 56;

/// Lower-case letters and digits, other characters as hyphens: for readable ids.
pub(crate) fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

/// A place people go to.
#[derive(Debug, Clone)]
pub(crate) struct Site {
    pub id: String,
    pub name: String,
}

/// An NHS organisation: a trust or a GP practice.
#[derive(Debug, Clone)]
pub(crate) struct Org {
    pub id: String,
    pub ods: String,
    pub name: String,
    pub phone: String,
    pub line: String,
    pub town: &'static Town,
    pub postcode: String,
}

impl Org {
    pub(crate) fn reference(&self) -> Value {
        reference("Organization", &self.id, &self.name)
    }

    fn address(&self) -> Value {
        json!({"use": "work", "line": [self.line], "city": self.town.name, "district": self.town.county,
               "postalCode": self.postcode, "country": "GB"})
    }
}

pub(crate) struct Trust {
    pub org: Org,
    pub hospital: Site,
    pub outpatients: Site,
    pub emergency: Site,
    pub ward: Site,
    /// The identifier system of the trust's hospital numbers.
    pub mrn_system: String,
    /// Doctors who look after admitted patients.
    pub physicians: Vec<usize>,
    /// Consultants holding clinics, by specialty.
    pub consultants: BTreeMap<Specialty, Vec<usize>>,
}

pub(crate) struct Practice {
    pub org: Org,
    pub site: Site,
    pub gps: Vec<usize>,
    pub nurses: Vec<usize>,
    pub pharmacists: Vec<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Employer {
    Trust(u64),
    Practice(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StaffKind {
    Gp,
    Nurse,
    Pharmacist,
    Consultant(Specialty),
    Physician,
}

pub(crate) struct Staff {
    pub id: String,
    pub role_id: String,
    pub prefix: &'static str,
    pub given: &'static str,
    pub family: &'static str,
    pub female: bool,
    pub kind: StaffKind,
    pub registration: String,
    pub employer: Employer,
    pub service: Option<usize>,
}

impl Staff {
    pub(crate) fn display(&self) -> String {
        format!("{} {} {}", self.prefix, self.given, self.family)
    }

    pub(crate) fn reference(&self) -> Value {
        reference("Practitioner", &self.id, &self.display())
    }

    pub(crate) fn job(&self) -> String {
        match self.kind {
            StaffKind::Gp => "General Practitioner".into(),
            StaffKind::Nurse => "Practice Nurse".into(),
            StaffKind::Pharmacist => "Clinical Pharmacist".into(),
            StaffKind::Consultant(s) => format!("Consultant, {}", s.info().clinic),
            StaffKind::Physician => "Consultant in Acute Medicine".into(),
        }
    }
}

pub(crate) struct Service {
    pub id: String,
    pub name: String,
    pub employer: Employer,
    pub site: Site,
    pub specialty: (&'static str, &'static str),
}

/// The shared part of the region, and the answers to "who owns this slot".
pub(crate) struct Region {
    pub layout: Layout,
    pub ids: Ids,
    pub trusts: Vec<Trust>,
    pub practices: Vec<Practice>,
    pub staff: Vec<Staff>,
    pub services: Vec<Service>,
    pub schedules: Vec<Schedule>,
    /// Patient indexes referred to each (trust, specialty), ascending.
    cohorts: BTreeMap<(u64, Specialty), Vec<u64>>,
    /// Schedules of each group.
    by_group: HashMap<Group, Vec<usize>>,
    /// Positions a group member owns per year, by group and kind.
    owned: HashMap<(Group, SlotKind), f64>,
}

const TRUST_SUFFIXES: &[&str] = &[
    "Hospitals NHS Foundation Trust",
    "Teaching Hospitals NHS Trust",
    "and District NHS Foundation Trust",
    "Royal Infirmary NHS Trust",
];
const PRACTICE_NAMES: &[&str] = &[
    "Riverside Medical Practice",
    "Hilltop Surgery",
    "Beacon Health Centre",
    "Millbank Surgery",
    "Parkview Medical Centre",
    "Canal Side Practice",
    "Oakwood Surgery",
    "Moorland Medical Practice",
    "Station Road Surgery",
    "Ashgrove Health Centre",
    "Kirkgate Medical Centre",
    "Low Green Surgery",
    "Weavers Yard Practice",
    "Castle View Surgery",
    "Heathfield Medical Centre",
    "Chapel Street Surgery",
];

fn trust_ods(t: u64) -> String {
    const SECOND: &[u8] = b"98765";
    const THIRD: &[u8] = b"ZYXWVUTSRQPNMLKJHGFEDCBA";
    let second = SECOND[(t as usize / THIRD.len()) % SECOND.len()];
    let third = THIRD[t as usize % THIRD.len()];
    format!("R{}{}", char::from(second), char::from(third))
}

impl Region {
    pub(crate) fn new(layout: Layout, ids: Ids) -> Region {
        let mut rng = stream(layout.seed, Purpose::Region, 0);

        // Who is referred where: one pass over every profile.
        let mut cohorts: BTreeMap<(u64, Specialty), Vec<u64>> = BTreeMap::new();
        for i in 0..layout.patients {
            let p = Person::new(&layout, i);
            for r in &p.referrals {
                cohorts.entry((p.trust, r.specialty)).or_default().push(i);
            }
        }

        let mut region = Region {
            layout,
            ids,
            trusts: Vec::new(),
            practices: Vec::new(),
            staff: Vec::new(),
            services: Vec::new(),
            schedules: Vec::new(),
            cohorts,
            by_group: HashMap::new(),
            owned: HashMap::new(),
        };
        for t in 0..region.layout.trusts {
            region.add_trust(t, &mut rng);
        }
        for p in 0..region.layout.practices {
            region.add_practice(p, &mut rng);
        }
        for s in &region.schedules {
            region.by_group.entry(s.group).or_default().push(s.index);
            *region.owned.entry((s.group, s.kind)).or_insert(0.0) += s.owned_per_year;
        }
        region
    }

    fn add_staff(
        &mut self,
        rng: &mut impl Rng,
        kind: StaffKind,
        employer: Employer,
        service: Option<usize>,
    ) -> usize {
        let n = self.staff.len();
        let female = rng.chance(0.55);
        let given = *rng.pick(if female { STAFF_FEMALE } else { STAFF_MALE });
        let family = *rng.pick(BRITISH_SURNAMES_FOR_STAFF);
        let prefix = match kind {
            StaffKind::Gp | StaffKind::Consultant(_) | StaffKind::Physician => "Dr",
            _ if female => "Ms",
            _ => "Mr",
        };
        let registration = match kind {
            StaffKind::Nurse => format!(
                "{:02}{}{:04}{}",
                70 + n % 30,
                char::from(b'A' + (n % 26) as u8),
                n % 10_000,
                char::from(b'E' + (n % 3) as u8)
            ),
            StaffKind::Pharmacist => format!("2{:06}", 100_000 + n),
            _ => format!("7{:06}", 100_000 + n),
        };
        let id = self.ids.shared(Kind::Practitioner, n as u64, || {
            format!("pr-{}-{}", slug(family), n + 1)
        });
        let role_id = self.ids.shared(Kind::PractitionerRole, n as u64, || {
            format!("pr-{}-{}-role", slug(family), n + 1)
        });
        self.staff.push(Staff {
            id,
            role_id,
            prefix,
            given,
            family,
            female,
            kind,
            registration,
            employer,
            service,
        });
        n
    }

    fn add_service(
        &mut self,
        name: String,
        employer: Employer,
        site: &Site,
        specialty: (&'static str, &'static str),
        slug_: String,
    ) -> usize {
        let n = self.services.len();
        let id = self.ids.shared(Kind::HealthcareService, n as u64, || slug_);
        self.services.push(Service {
            id,
            name,
            employer,
            site: site.clone(),
            specialty,
        });
        n
    }

    #[allow(clippy::too_many_arguments)]
    fn add_schedule(
        &mut self,
        staff: usize,
        service: usize,
        site: &Site,
        group: Group,
        kind: SlotKind,
        session: &'static Session,
        weekdays: u8,
        group_size: u64,
        horizon_days: i64,
    ) {
        let index = self.schedules.len();
        let staff_id = self.staff[staff].id.clone();
        let id = self.ids.shared(Kind::Schedule, index as u64, || {
            format!("sch-{}", staff_id.trim_start_matches("pr-"))
        });
        self.schedules.push(Schedule::new(
            index,
            id,
            staff,
            service,
            (site.id.clone(), site.name.clone()),
            group,
            kind,
            session,
            weekdays,
            group_size,
            mix(self.layout.seed, 0x5C4E_D000 + index as u64),
            horizon_days,
        ));
    }

    /// An organisation; its readable id is the first word of its name (`trust-northmoor`,
    /// `gp-riverside`), numbered from the `distinct`-th on, where names start to repeat.
    #[allow(clippy::too_many_arguments)]
    fn org(
        &self,
        kind_slug: &str,
        n: u64,
        distinct: usize,
        name: String,
        ods: String,
        town: &'static Town,
        rng: &mut impl Rng,
    ) -> Org {
        let slug_ = format!(
            "{kind_slug}-{}",
            slug(name.split_whitespace().next().unwrap_or("org"))
        );
        let slug_ = if (n as usize) < distinct {
            slug_
        } else {
            format!("{slug_}-{}", n + 1)
        };
        let id = self.ids.shared(
            Kind::Organization,
            self.trusts.len() as u64 + self.practices.len() as u64,
            || slug_,
        );
        let letters = crate::vocab::POSTCODE_UNIT_LETTERS;
        Org {
            id,
            ods,
            name,
            phone: landline(town, rng.random_range(0..1000)),
            line: format!(
                "{} {}",
                rng.random_range(1..120),
                rng.pick(crate::vocab::STREETS)
            ),
            town,
            postcode: format!(
                "{}{} {}{}{}",
                town.postcode_area,
                rng.random_range(1..21),
                rng.random_range(1..10),
                char::from(*rng.pick(letters)),
                char::from(*rng.pick(letters))
            ),
        }
    }

    fn site(&self, n: &mut u64, name: String, readable: String) -> Site {
        let id = self.ids.shared(Kind::Location, *n, || readable);
        *n += 1;
        Site { id, name }
    }

    fn location_count(&self) -> u64 {
        (self.trusts.len() * 4 + self.practices.len()) as u64
    }

    fn add_trust(&mut self, t: u64, rng: &mut impl Rng) {
        let town = &TOWNS[t as usize % TOWNS.len()];
        let suffix = TRUST_SUFFIXES[(t as usize / TOWNS.len()) % TRUST_SUFFIXES.len()];
        let name = if (t as usize) < TOWNS.len() * TRUST_SUFFIXES.len() {
            format!("{} {suffix}", town.name)
        } else {
            format!("{} {suffix} ({})", town.name, t + 1)
        };
        let org = self.org("trust", t, TOWNS.len(), name, trust_ods(t), town, rng);
        let base = slug(&org.id);
        let mut n = self.location_count();
        let hospital = self.site(
            &mut n,
            format!("{} General Hospital", town.name),
            format!("loc-{}-general", base.trim_start_matches("trust-")),
        );
        let outpatients = self.site(
            &mut n,
            format!("Outpatients Department, {} General Hospital", town.name),
            format!("loc-{}-outpatients", base.trim_start_matches("trust-")),
        );
        let emergency = self.site(
            &mut n,
            format!("Emergency Department, {} General Hospital", town.name),
            format!("loc-{}-emergency", base.trim_start_matches("trust-")),
        );
        let ward = self.site(
            &mut n,
            format!("Ward 7 (Acute Medicine), {} General Hospital", town.name),
            format!("loc-{}-ward-7", base.trim_start_matches("trust-")),
        );
        let mrn_system = format!("https://{}.trust.example/Id/mrn", org.ods.to_lowercase());
        let mut trust = Trust {
            org,
            hospital,
            outpatients,
            emergency,
            ward,
            mrn_system,
            physicians: Vec::new(),
            consultants: BTreeMap::new(),
        };
        for _ in 0..2 {
            let s = self.add_staff(rng, StaffKind::Physician, Employer::Trust(t), None);
            trust.physicians.push(s);
        }
        let outpatients = trust.outpatients.clone();
        let trust_slug = trust.org.id.clone();
        let trust_name = trust.org.name.clone();
        self.trusts.push(trust);
        let offered: Vec<Specialty> = Specialty::ALL
            .into_iter()
            .filter(|s| self.layout.offers(*s))
            .collect();
        for s in offered {
            let info = s.info();
            let cohort = self.cohorts.get(&(t, s)).map_or(0, Vec::len) as u64;
            let service = self.add_service(
                format!("{} Outpatients, {}", info.clinic, trust_name),
                Employer::Trust(t),
                &outpatients,
                (info.snomed, info.display),
                format!(
                    "hs-{}-{}",
                    trust_slug.trim_start_matches("trust-"),
                    slug(info.clinic)
                ),
            );
            // Enough clinics for the cohort to be seen about twice a year with room to spare.
            let per_consultant = 52.0 * CLINIC_SESSION.starts.len() as f64;
            let consultants = ((cohort as f64 * 1.2) / (per_consultant * 0.6))
                .ceil()
                .max(1.0) as usize;
            let mut list = Vec::new();
            for j in 0..consultants {
                let staff = self.add_staff(
                    rng,
                    StaffKind::Consultant(s),
                    Employer::Trust(t),
                    Some(service),
                );
                list.push(staff);
                let weekday = 1u8 << ((s.index() + j) % 5);
                self.add_schedule(
                    staff,
                    service,
                    &outpatients,
                    Group::Cohort(t, s),
                    SlotKind::Clinic(s),
                    &CLINIC_SESSION,
                    weekday,
                    cohort,
                    CLINIC_HORIZON_DAYS,
                );
            }
            if let Some(trust) = self.trusts.get_mut(t as usize) {
                trust.consultants.insert(s, list);
            }
        }
    }

    fn add_practice(&mut self, p: u64, rng: &mut impl Rng) {
        let town = &TOWNS[p as usize % TOWNS.len()];
        let base = PRACTICE_NAMES[p as usize % PRACTICE_NAMES.len()];
        let name = if (p as usize) < PRACTICE_NAMES.len() {
            base.to_string()
        } else {
            format!("{base} ({})", town.name)
        };
        let org = self.org(
            "gp",
            p,
            PRACTICE_NAMES.len(),
            name,
            format!("Y99{:03}", p + 1),
            town,
            rng,
        );
        let mut n = self.location_count();
        let site = self.site(
            &mut n,
            org.name.clone(),
            format!("loc-{}", org.id.trim_start_matches("gp-")),
        );
        let list = self.layout.list_size(p);
        let employer = Employer::Practice(p);
        let gp_service = self.add_service(
            format!("GP appointments, {}", org.name),
            employer,
            &site,
            ("394814009", "General practice"),
            format!("hs-{}-gp", org.id.trim_start_matches("gp-")),
        );
        let nurse_service = self.add_service(
            format!("Practice nurse clinic, {}", org.name),
            employer,
            &site,
            ("394814009", "General practice"),
            format!("hs-{}-nurse", org.id.trim_start_matches("gp-")),
        );
        let mut practice = Practice {
            org,
            site: site.clone(),
            gps: Vec::new(),
            nurses: Vec::new(),
            pharmacists: Vec::new(),
        };
        let gps = ((list + 800) / 1_600).max(2);
        let nurses = ((list + 1_500) / 3_000).max(1);
        let pharmacists = u64::from(list >= 4_000);
        for j in 0..gps {
            let s = self.add_staff(rng, StaffKind::Gp, employer, Some(gp_service));
            practice.gps.push(s);
            let day_off = 1u8 << (j % 5);
            self.add_schedule(
                s,
                gp_service,
                &site,
                Group::Practice(p),
                SlotKind::Gp,
                &GP_SESSION,
                0b11111 & !day_off,
                list,
                GP_HORIZON_DAYS,
            );
        }
        for j in 0..nurses {
            let s = self.add_staff(rng, StaffKind::Nurse, employer, Some(nurse_service));
            practice.nurses.push(s);
            let day_off = 1u8 << ((j + 2) % 5);
            self.add_schedule(
                s,
                nurse_service,
                &site,
                Group::Practice(p),
                SlotKind::Nurse,
                &NURSE_SESSION,
                0b11111 & !day_off,
                list,
                GP_HORIZON_DAYS,
            );
        }
        if pharmacists > 0 {
            let service = self.add_service(
                format!("Clinical pharmacist, {}", practice.org.name),
                employer,
                &site,
                ("394814009", "General practice"),
                format!(
                    "hs-{}-pharmacist",
                    practice.org.id.trim_start_matches("gp-")
                ),
            );
            let s = self.add_staff(rng, StaffKind::Pharmacist, employer, Some(service));
            practice.pharmacists.push(s);
            self.add_schedule(
                s,
                service,
                &site,
                Group::Practice(p),
                SlotKind::Pharmacist,
                &PHARMACIST_SESSION,
                0b01010,
                list,
                GP_HORIZON_DAYS,
            );
        }
        self.practices.push(practice);
    }

    pub(crate) fn trust(&self, t: u64) -> &Trust {
        &self.trusts[(t as usize).min(self.trusts.len() - 1)]
    }

    pub(crate) fn practice(&self, p: u64) -> &Practice {
        &self.practices[(p as usize).min(self.practices.len() - 1)]
    }

    /// The patient's usual GP.
    pub(crate) fn usual_gp(&self, person: &Person) -> &Staff {
        let practice = self.practice(person.practice);
        let n = practice.gps.len().max(1);
        &self.staff[practice.gps[(person.practice_rank / 4) as usize % n]]
    }

    /// The schedules a patient can hold appointments in: their practice's, and the clinics of
    /// the specialties they are referred to.
    pub(crate) fn schedules_of(&self, person: &Person) -> Vec<(&Schedule, u64)> {
        let mut out = Vec::new();
        for &s in self
            .by_group
            .get(&Group::Practice(person.practice))
            .into_iter()
            .flatten()
        {
            out.push((&self.schedules[s], person.practice_rank));
        }
        for r in &person.referrals {
            let group = Group::Cohort(person.trust, r.specialty);
            let Some(rank) = self
                .cohorts
                .get(&(person.trust, r.specialty))
                .and_then(|c| c.binary_search(&person.index).ok())
            else {
                continue;
            };
            for &s in self.by_group.get(&group).into_iter().flatten() {
                out.push((&self.schedules[s], rank as u64));
            }
        }
        out
    }

    /// The patient who owns a position, by their rank in the schedule's group.
    fn member(&self, group: Group, rank: u64) -> Option<u64> {
        match group {
            Group::Practice(p) => Some(self.layout.practice_member(p, rank)),
            Group::Cohort(t, s) => self
                .cohorts
                .get(&(t, s))
                .and_then(|c| c.get(rank as usize))
                .copied(),
        }
    }

    /// How often the patient needs this kind of appointment on `date`, per year.
    pub(crate) fn demand(&self, person: &Person, kind: SlotKind, date: NaiveDate) -> f64 {
        if date < person.birth {
            return 0.0;
        }
        let age = person.age(date);
        let conditions = person.conditions_on(date) as f64;
        match kind {
            SlotKind::Gp => {
                let base = match age {
                    ..5 => 4.0,
                    5..16 => 1.5,
                    16..45 if person.female => 3.0,
                    16..45 => 1.5,
                    45..65 => 3.0,
                    65..80 => 4.5,
                    _ => 6.0,
                };
                // About two consultations in three are face to face; the rest are by telephone.
                0.65 * base * (1.0 + 0.25 * conditions) * person.frailty.sqrt()
            }
            SlotKind::Nurse => {
                let reviews: f64 = person
                    .conditions
                    .iter()
                    .filter(|(_, onset)| *onset <= date)
                    .map(|(c, _)| c.info().reviews_per_year)
                    .sum();
                let base = if age >= 25 { 0.3 } else { 0.0 };
                base + reviews.min(4.0)
            }
            SlotKind::Pharmacist => {
                if conditions >= 3.0 {
                    1.0
                } else {
                    0.0
                }
            }
            SlotKind::Clinic(s) => person
                .referral(s)
                .map_or(0.0, |r| r.visits_per_year_on(date, self.layout.today)),
        }
    }

    /// Whether the patient uses the position (they must be its owner).
    pub(crate) fn use_of(&self, schedule: &Schedule, pos: i64, person: &Person) -> Option<Usage> {
        let (date, _) = schedule.when(pos);
        let today = self.layout.today;
        let owned = self
            .owned
            .get(&(schedule.group, schedule.kind))
            .copied()
            .unwrap_or(0.0);
        // The demo's showcase patient always has an appointment with their GP coming up.
        let showcase = person.showcase
            && schedule.kind == SlotKind::Gp
            && self.staff[schedule.staff].id == self.usual_gp(person).id
            && date >= today
            && date <= today + Duration::days(GP_HORIZON_DAYS);
        if showcase {
            return Some(Usage::Booked);
        }
        usage(
            self.layout.seed,
            schedule,
            pos,
            self.demand(person, schedule.kind, date),
            owned,
            today,
        )
    }

    /// The id of the slot at a position.
    pub(crate) fn slot_id(&self, schedule: &Schedule, pos: i64) -> String {
        self.ids.slot(schedule.index, pos, || {
            let (date, start) = schedule.when(pos);
            format!(
                "slot-{}-{}-{:02}{:02}",
                schedule.index + 1,
                date.format("%Y%m%d"),
                start / 60,
                start % 60
            )
        })
    }

    pub(crate) fn slot(&self, schedule: &Schedule, pos: i64, status: &str) -> Value {
        let (date, start) = schedule.when(pos);
        let service = &self.services[schedule.service];
        build(
            Kind::Slot,
            &self.slot_id(schedule, pos),
            json!({
                "serviceType": [{"text": service.name}],
                "specialty": [cc(SNOMED, service.specialty.0, service.specialty.1)],
                "appointmentType": cc(V2_0276, "ROUTINE", "Routine appointment - default if not valued"),
                "schedule": reference_to("Schedule", &schedule.id),
                "status": status,
                "start": at(date, start),
                "end": at(date, start + schedule.session.minutes),
            }),
        )
    }

    /// Every shared resource, in order: organisations, locations, services, practitioners and
    /// their roles, schedules, then the free slots of the booking window.
    pub(crate) fn shared<E>(&self, sink: &mut dyn FnMut(Value) -> Result<(), E>) -> Result<(), E> {
        for t in &self.trusts {
            sink(organization(&t.org))?;
        }
        for p in &self.practices {
            sink(organization(&p.org))?;
        }
        for t in &self.trusts {
            sink(location(&t.hospital, &t.org, "bu", "Building", None))?;
            sink(location(
                &t.outpatients,
                &t.org,
                "wi",
                "Wing",
                Some(&t.hospital),
            ))?;
            sink(location(
                &t.emergency,
                &t.org,
                "wi",
                "Wing",
                Some(&t.hospital),
            ))?;
            sink(location(&t.ward, &t.org, "wa", "Ward", Some(&t.hospital)))?;
        }
        for p in &self.practices {
            sink(location(&p.site, &p.org, "bu", "Building", None))?;
        }
        for s in &self.services {
            let org = self.employer(s.employer);
            sink(build(
                Kind::HealthcareService,
                &s.id,
                json!({
                    "active": true,
                    "providedBy": org.reference(),
                    "specialty": [cc(SNOMED, s.specialty.0, s.specialty.1)],
                    "location": [reference("Location", &s.site.id, &s.site.name)],
                    "name": s.name,
                    "telecom": [{"system": "phone", "value": org.phone, "use": "work"}],
                    "appointmentRequired": true,
                }),
            ))?;
        }
        for s in &self.staff {
            sink(self.practitioner(s))?;
        }
        for s in &self.staff {
            sink(self.practitioner_role(s))?;
        }
        let today = self.layout.today;
        for s in &self.schedules {
            let staff = &self.staff[s.staff];
            let service = &self.services[s.service];
            let (from, to) = s.window(today);
            sink(build(
                Kind::Schedule,
                &s.id,
                json!({
                    "active": true,
                    "serviceType": [{"text": service.name}],
                    "specialty": [cc(SNOMED, service.specialty.0, service.specialty.1)],
                    "actor": [
                        reference("PractitionerRole", &staff.role_id, &staff.display()),
                        reference("Location", &s.location, &s.location_name),
                    ],
                    "planningHorizon": {"start": at(from, 0), "end": at(to + Duration::days(1), 0)},
                    "comment": format!("{} – {}", staff.display(), service.name),
                }),
            ))?;
        }
        for s in &self.schedules {
            let (from, to) = s.window(today);
            let mut date = from;
            while date <= to {
                if s.is_open(date) {
                    let first = s.first_position(date);
                    for pos in first..first + s.session.starts.len() as i64 {
                        let used = s
                            .owner(pos)
                            .and_then(|rank| self.member(s.group, rank))
                            .and_then(|i| self.use_of(s, pos, &Person::new(&self.layout, i)));
                        if used.is_none() {
                            sink(self.slot(s, pos, "free"))?;
                        }
                    }
                }
                date += Duration::days(1);
            }
        }
        Ok(())
    }

    pub(crate) fn employer(&self, e: Employer) -> &Org {
        match e {
            Employer::Trust(t) => &self.trust(t).org,
            Employer::Practice(p) => &self.practice(p).org,
        }
    }

    fn practitioner(&self, s: &Staff) -> Value {
        let system = match s.kind {
            StaffKind::Nurse => NMC,
            StaffKind::Pharmacist => GPHC,
            _ => GMC,
        };
        let org = self.employer(s.employer);
        build(
            Kind::Practitioner,
            &s.id,
            json!({
                "identifier": [{"system": system, "value": s.registration}],
                "active": true,
                "name": [{"use": "official", "family": s.family, "given": [s.given], "prefix": [s.prefix]}],
                "telecom": [{"system": "phone", "value": org.phone, "use": "work"}],
                "gender": if s.female { "female" } else { "male" },
            }),
        )
    }

    fn practitioner_role(&self, s: &Staff) -> Value {
        let (code, display) = match s.kind {
            StaffKind::Gp => ("62247001", "General practitioner"),
            StaffKind::Nurse => ("224535009", "Registered nurse"),
            StaffKind::Pharmacist => ("46255001", "Pharmacist"),
            StaffKind::Consultant(_) | StaffKind::Physician => {
                ("158965000", "Medical practitioner")
            }
        };
        let org = self.employer(s.employer);
        let site = match s.employer {
            Employer::Trust(t) => {
                let trust = self.trust(t);
                if matches!(s.kind, StaffKind::Physician) {
                    &trust.ward
                } else {
                    &trust.outpatients
                }
            }
            Employer::Practice(p) => &self.practice(p).site,
        };
        let mut role = json!({
            "active": true,
            "practitioner": s.reference(),
            "organization": org.reference(),
            "code": [{"coding": [{"system": SNOMED, "code": code, "display": display}], "text": s.job()}],
            "location": [reference("Location", &site.id, &site.name)],
            "telecom": [{"system": "phone", "value": org.phone, "use": "work"}],
        });
        let specialty = match s.kind {
            StaffKind::Consultant(sp) => Some((sp.info().snomed, sp.info().display)),
            StaffKind::Physician => Some(("419192003", "Internal medicine")),
            _ => Some(("394814009", "General practice")),
        };
        if let Some((code, display)) = specialty {
            role["specialty"] = json!([cc(SNOMED, code, display)]);
        }
        if let Some(service) = s.service.and_then(|i| self.services.get(i)) {
            role["healthcareService"] =
                json!([reference("HealthcareService", &service.id, &service.name)]);
        }
        build(Kind::PractitionerRole, &s.role_id, role)
    }
}

fn organization(org: &Org) -> Value {
    build(
        Kind::Organization,
        &org.id,
        json!({
            "identifier": [{"system": ODS, "value": org.ods}],
            "active": true,
            "type": [cc(ORG_TYPE, "prov", "Healthcare Provider")],
            "name": org.name,
            "telecom": [{"system": "phone", "value": org.phone, "use": "work"}],
            "address": [org.address()],
        }),
    )
}

fn location(site: &Site, org: &Org, code: &str, display: &str, part_of: Option<&Site>) -> Value {
    let mut loc = json!({
        "status": "active",
        "name": site.name,
        "mode": "instance",
        "telecom": [{"system": "phone", "value": org.phone, "use": "work"}],
        "address": org.address(),
        "physicalType": cc(PHYSICAL_TYPE, code, display),
        "managingOrganization": org.reference(),
    });
    if let Some(parent) = part_of {
        loc["partOf"] = reference("Location", &parent.id, &parent.name);
    }
    build(Kind::Location, &site.id, loc)
}
