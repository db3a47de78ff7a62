//! Who lives in the region: households, and each person's profile — demographics, GP practice,
//! long-term conditions, hospital referrals.
//!
//! A profile is a pure function of (seed, patient index) and the region's [`Layout`], and cheap
//! to compute, so that any part of the generator can ask about any patient: the shared part
//! asks who owns a clinic slot, a child's record asks for their parent's name and NHS number.
//!
//! Patients come in blocks of four consecutive indexes; a block is one household. Half are
//! families (one or two parents with one or two children, sharing a surname and an address),
//! the rest four unrelated adults. Blocks are dealt to GP practices and trusts in turn, which
//! makes "the r-th patient on practice p's list" a formula, not a lookup.

use chrono::{Datelike, Duration, NaiveDate};
use fhir::nhs_number::NhsNumber;
use rand::Rng;

use crate::calendar::{age_on, years};
use crate::catalogue::{age_band, Chronic, Specialty};
use crate::rng::{mix, stream, Draw, Purpose};
use crate::vocab::{self, Ethnicity, Town, ETHNICITIES, STREETS, TOWNS};

/// Patients per household block.
pub(crate) const BLOCK: u64 = 4;
/// How far back a record's encounters, results and prescriptions go.
pub(crate) const HISTORY_YEARS: f64 = 5.0;
/// NHS numbers come from the test range, 999 000 0000–999 999 9999, of which 900,000 can be
/// handed out without repeats (see [`nhs_number`]).
pub const MAX_PATIENTS: u64 = 900_000;

/// The shape of the region, from the number of patients: how many practices and trusts, which
/// specialties the trusts offer.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub seed: u64,
    pub today: NaiveDate,
    pub patients: u64,
    pub practices: u64,
    pub trusts: u64,
    /// The trusts offer the first this-many of [`Specialty::ALL`].
    pub specialties: usize,
}

impl Layout {
    pub(crate) fn new(seed: u64, today: NaiveDate, patients: u64) -> Layout {
        // About one practice per 8,000 patients (at least two), one trust per 50,000 (at least
        // one); more specialties as the catchment grows.
        let practices = ((patients + 4_000) / 8_000).max(2);
        let trusts = ((patients + 25_000) / 50_000).max(1);
        let specialties = (4 + (patients / 2_500) as usize).min(Specialty::ALL.len());
        Layout {
            seed,
            today,
            patients,
            practices,
            trusts,
            specialties,
        }
    }

    pub(crate) fn history_start(&self) -> NaiveDate {
        self.today - years(HISTORY_YEARS)
    }

    pub(crate) fn offers(&self, s: Specialty) -> bool {
        s.index() < self.specialties
    }

    pub(crate) fn practice_of(&self, index: u64) -> u64 {
        (index / BLOCK) % self.practices
    }

    pub(crate) fn trust_of(&self, index: u64) -> u64 {
        (index / BLOCK) % self.trusts
    }

    /// The patient's position on their practice's list.
    pub(crate) fn practice_rank(&self, index: u64) -> u64 {
        (index / BLOCK / self.practices) * BLOCK + index % BLOCK
    }

    /// How many patients practice `p` has.
    pub(crate) fn list_size(&self, p: u64) -> u64 {
        let full_blocks = self.patients / BLOCK;
        let rest = self.patients % BLOCK;
        let full = if p >= full_blocks {
            0
        } else {
            (full_blocks - 1 - p) / self.practices + 1
        };
        let partial = if rest > 0 && full_blocks % self.practices == p {
            rest
        } else {
            0
        };
        full * BLOCK + partial
    }

    /// The patient at `rank` on practice `p`'s list.
    pub(crate) fn practice_member(&self, p: u64, rank: u64) -> u64 {
        (p + (rank / BLOCK) * self.practices) * BLOCK + rank % BLOCK
    }
}

/// Patient `index`'s NHS number: distinct for every index below [`MAX_PATIENTS`].
///
/// The first five of the six free digits are an affine permutation (from the seed) of
/// `index mod 100,000`; the sixth is the `index / 100,000`-th digit, in a seed-rotated order,
/// that gives a valid Modulus 11 check digit. Of the ten candidates at most one fails (the sixth
/// digit has weight 2, so the ten give ten different remainders), so nine are always there.
///
/// Indexes at or above [`MAX_PATIENTS`] wrap around (the generator refuses such regions).
pub(crate) fn nhs_number(seed: u64, index: u64) -> NhsNumber {
    let index = index % MAX_PATIENTS;
    let h = mix(seed, 0x4E48_5300);
    // Odd and not a multiple of 5: coprime with 100,000, so the map is a permutation.
    let mut a = (h % 100_000) | 1;
    // `a` is odd, so it is a multiple of 5 exactly when it ends in 5.
    if a % 10 == 5 {
        a += 2;
    }
    let b = (h >> 20) % 100_000;
    let prefix = (a * (index % 100_000) + b) % 100_000;
    let rotation = (h >> 40) % 10;
    let wanted = index / 100_000;
    let mut found = 0;
    for t in 0..10 {
        let digit = (rotation + t) % 10;
        if let Some(n) = NhsNumber::in_test_range((prefix * 10 + digit) as u32) {
            if found == wanted {
                return n;
            }
            found += 1;
        }
    }
    first_test_number()
}

/// The first number of the test range (999 000 0018); only a fallback that the argument above
/// shows is never taken.
fn first_test_number() -> NhsNumber {
    let mut serial = 0;
    loop {
        if let Some(n) = NhsNumber::in_test_range(serial) {
            return n;
        }
        serial += 1;
    }
}

/// Waiting time for a first hospital appointment (referral to treatment), in days: log-normal
/// with a median of 13 weeks and a long tail (about 4% over 52 weeks, 1% over 78), at most two
/// years — roughly England's waiting list.
pub(crate) fn rtt_wait_days(rng: &mut impl Rng) -> i64 {
    loop {
        let days = 91.0 * (0.8 * rng.normal(0.0, 1.0)).exp();
        if (1.0..=730.0).contains(&days) {
            return days.round() as i64;
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Single,
    Parent,
    Child,
}

#[derive(Debug, Clone)]
pub(crate) struct Address {
    pub line: String,
    pub town: &'static Town,
    pub postcode: String,
}

/// A household block: who is who, and what a family shares.
struct Household {
    roles: [Role; 4],
    family: &'static str,
    ethnicity: &'static Ethnicity,
    address: Address,
    /// Ages in days of the members who are parents or children.
    ages: [i64; 4],
    /// Whether each member is female, for parents and children.
    female: [bool; 4],
}

fn address(rng: &mut impl Rng, town: &'static Town) -> Address {
    let house = rng.random_range(1..250);
    let street = rng.pick(STREETS);
    let letters = vocab::POSTCODE_UNIT_LETTERS;
    let postcode = format!(
        "{}{} {}{}{}",
        town.postcode_area,
        rng.random_range(1..21),
        rng.random_range(1..10),
        char::from(*rng.pick(letters)),
        char::from(*rng.pick(letters)),
    );
    Address {
        line: format!("{house} {street}"),
        town,
        postcode,
    }
}

impl Household {
    fn new(layout: &Layout, block: u64) -> Household {
        let mut rng = stream(layout.seed, Purpose::Household, block);
        // Block 0 holds the showcase patient (an older adult); block 1 is always a family, so
        // that even the smallest region has children with their parents.
        let family = match block {
            0 => false,
            1 => true,
            _ => rng.chance(0.5),
        };
        let town = &TOWNS[(layout.practice_of(block * BLOCK) as usize) % TOWNS.len()];
        let ethnicity: &'static Ethnicity = rng.pick_weighted(&ETHNICITIES);
        let names = ethnicity.names;
        let family_name = *rng.pick(names.family);
        let address = address(&mut rng, town);
        let mut roles = [Role::Single; 4];
        let mut ages = [0i64; 4];
        let mut female = [false; 4];
        if family {
            let parent_age = rng.random_range(24..51) * 365 + rng.random_range(0..365);
            roles[0] = Role::Parent;
            ages[0] = parent_age;
            female[0] = rng.chance(0.6);
            if block == 1 || rng.chance(0.75) {
                roles[1] = Role::Parent;
                ages[1] = (parent_age + rng.random_range(-4 * 365..5 * 365)).max(20 * 365);
                female[1] = if rng.chance(0.95) {
                    !female[0]
                } else {
                    female[0]
                };
            }
            let youngest_parent = if roles[1] == Role::Parent {
                ages[0].min(ages[1])
            } else {
                ages[0]
            };
            let oldest_child = (youngest_parent - 18 * 366).clamp(1, 18 * 365 - 1);
            for m in [2usize, 3] {
                if m == 2 || block == 1 || rng.chance(0.7) {
                    roles[m] = Role::Child;
                    ages[m] = rng.random_range(0..oldest_child);
                    female[m] = rng.chance(0.49);
                }
            }
        }
        Household {
            roles,
            family: family_name,
            ethnicity,
            address,
            ages,
            female,
        }
    }
}

/// Whether a patient is waiting for a first hospital appointment or has been seen.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ReferralState {
    /// On the waiting list: no attendance yet (one may be booked in the coming weeks).
    Waiting,
    /// Seen from `first` on, followed up `per_year` times a year until `discharge`.
    Treated {
        first: NaiveDate,
        discharge: Option<NaiveDate>,
        per_year: f64,
    },
}

/// A referral from the GP to a hospital specialty.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Referral {
    pub specialty: Specialty,
    pub authored: NaiveDate,
    pub state: ReferralState,
    /// The long-term condition it is for, if any.
    pub reason: Option<Chronic>,
    pub urgent: bool,
}

impl Referral {
    /// Whether the patient is seen in this specialty's clinic on `date`'s side of things: the
    /// follow-up rate that applies then (0 outside the period of care).
    pub(crate) fn visits_per_year_on(&self, date: NaiveDate, today: NaiveDate) -> f64 {
        match &self.state {
            ReferralState::Waiting => {
                if date >= today {
                    // A first appointment is booked for some of those waiting.
                    1.5
                } else {
                    0.0
                }
            }
            ReferralState::Treated {
                first,
                discharge,
                per_year,
            } => {
                if date < *first || discharge.is_some_and(|d| date > d) {
                    0.0
                } else {
                    *per_year
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Smoking {
    Never,
    Ex,
    Current,
}

/// Everything about a patient that other parts of the generator may need to know.
#[derive(Debug, Clone)]
pub(crate) struct Person {
    pub index: u64,
    pub role: Role,
    /// For a child: the indexes of their parents in the region.
    pub parents: Vec<u64>,
    pub female: bool,
    pub birth: NaiveDate,
    pub ethnicity: &'static Ethnicity,
    pub given: &'static str,
    pub middle: Option<&'static str>,
    pub family: &'static str,
    pub address: Address,
    pub mobile: String,
    pub landline: Option<String>,
    pub email: Option<String>,
    pub nhs: NhsNumber,
    pub practice: u64,
    pub practice_rank: u64,
    pub trust: u64,
    /// How much more than their age predicts this person is ill (log-normal around 1).
    pub frailty: f64,
    pub smoking: Smoking,
    /// Long-term conditions with their onset.
    pub conditions: Vec<(Chronic, NaiveDate)>,
    pub referrals: Vec<Referral>,
    /// Patient 0, the one the demo points people at: an older adult with diabetes and
    /// hypertension, so that every kind of record is there to look at.
    pub showcase: bool,
}

impl Person {
    /// Patient `index`'s profile. `index` must be below `layout.patients` and
    /// [`MAX_PATIENTS`] (the generator checks both before it starts).
    pub(crate) fn new(layout: &Layout, index: u64) -> Person {
        let block = index / BLOCK;
        let member = (index % BLOCK) as usize;
        let household = Household::new(layout, block);
        let mut rng = stream(layout.seed, Purpose::Profile, index);
        let today = layout.today;
        let showcase = index == 0;
        let role = household.roles[member];

        let (age_days, female, ethnicity) = match role {
            Role::Single => {
                let band = *rng.pick_weighted(&[
                    ((18, 30), 20.0),
                    ((30, 45), 21.0),
                    ((45, 65), 26.5),
                    ((65, 80), 23.5),
                    ((80, 100), 9.0),
                ]);
                let age: i64 = if showcase {
                    67
                } else {
                    rng.random_range(band.0..band.1)
                };
                let p_female = match age {
                    ..65 => 0.5,
                    65..80 => 0.54,
                    _ => 0.62,
                };
                let ethnicity: &'static Ethnicity = rng.pick_weighted(&ETHNICITIES);
                (
                    age * 365 + rng.random_range(0..365),
                    rng.chance(p_female),
                    ethnicity,
                )
            }
            _ => (
                household.ages[member],
                household.female[member],
                household.ethnicity,
            ),
        };
        let birth = today - Duration::days(age_days.max(0));
        let age = age_on(birth, today);
        let names = match ethnicity.older_names {
            Some(older) if birth.year() < 1970 => older,
            _ => ethnicity.names,
        };
        let pool = if female { names.female } else { names.male };
        let given = *rng.pick(pool);
        let middle = if rng.chance(0.4) {
            Some(*rng.pick(pool)).filter(|m| *m != given)
        } else {
            None
        };
        let family = match role {
            Role::Single => *rng.pick(ethnicity.names.family),
            _ => household.family,
        };
        let address = match role {
            Role::Single => {
                let town = household.address.town;
                address(&mut rng, town)
            }
            _ => household.address.clone(),
        };
        let mobile = vocab::mobile(rng.random_range(0..1000));
        let landline = (age >= 50 && rng.chance(0.5) || role != Role::Single && rng.chance(0.3))
            .then(|| vocab::landline(address.town, rng.random_range(0..1000)));
        let email = (age >= 16 && rng.chance(0.75)).then(|| {
            format!(
                "{}.{}{}@example.com",
                vocab::email_part(given),
                vocab::email_part(family),
                index % 997
            )
        });
        let parents = if role == Role::Child {
            (0..BLOCK)
                .filter(|&m| household.roles[m as usize] == Role::Parent)
                .map(|m| block * BLOCK + m)
                .collect()
        } else {
            Vec::new()
        };

        let frailty = (rng.normal(0.0, 0.75)).exp();
        let smoking = if age < 16 {
            Smoking::Never
        } else {
            *rng.pick_weighted(&[
                (Smoking::Never, 62.0),
                (Smoking::Ex, 25.0),
                (Smoking::Current, 13.0),
            ])
        };

        let mut conditions = Vec::new();
        for c in Chronic::ALL {
            let info = c.info();
            let mut p = info.prevalence[age_band(age)];
            if female {
                p *= info.female_factor;
            }
            if smoking != Smoking::Never {
                if c == Chronic::Copd {
                    p *= 3.0;
                }
                if c == Chronic::CoronaryHeartDisease {
                    p *= 1.5;
                }
            }
            let p = 1.0 - (1.0 - p.min(0.95)).powf(frailty);
            let forced = showcase && matches!(c, Chronic::Diabetes | Chronic::Hypertension);
            if (rng.chance(p) || forced) && age >= info.onset_from_age {
                let onset_age = rng.random_range(info.onset_from_age as f64..=age as f64 + 0.99);
                let onset = (birth + years(onset_age)).min(today - Duration::days(14));
                let onset = if forced { today - years(6.5) } else { onset };
                conditions.push((c, onset));
            }
        }

        let practice = layout.practice_of(index);
        let mut person = Person {
            index,
            role,
            parents,
            female,
            birth,
            ethnicity,
            given,
            middle,
            family,
            address,
            mobile,
            landline,
            email,
            nhs: nhs_number(layout.seed, index),
            practice,
            practice_rank: layout.practice_rank(index),
            trust: layout.trust_of(index),
            frailty,
            smoking,
            conditions,
            referrals: Vec::new(),
            showcase,
        };
        person.referrals = referrals(layout, &person, age, &mut rng);
        person
    }

    pub(crate) fn age(&self, on: NaiveDate) -> i64 {
        age_on(self.birth, on)
    }

    pub(crate) fn name(&self) -> String {
        format!("{} {}", self.given, self.family)
    }

    pub(crate) fn has(&self, c: Chronic, on: NaiveDate) -> bool {
        self.conditions
            .iter()
            .any(|(k, onset)| *k == c && *onset <= on)
    }

    /// Long-term conditions present on `date`.
    pub(crate) fn conditions_on(&self, date: NaiveDate) -> usize {
        self.conditions.iter().filter(|(_, o)| *o <= date).count()
    }

    pub(crate) fn referral(&self, s: Specialty) -> Option<&Referral> {
        self.referrals.iter().find(|r| r.specialty == s)
    }
}

fn referrals(layout: &Layout, p: &Person, age: i64, rng: &mut impl Rng) -> Vec<Referral> {
    let today = layout.today;
    let mut out: Vec<Referral> = Vec::new();
    let add = |r: Referral, out: &mut Vec<Referral>| {
        if layout.offers(r.specialty)
            && r.specialty.accepts(age, p.female)
            && out.iter().all(|o| o.specialty != r.specialty)
        {
            out.push(r);
        }
    };
    let treated = |authored: NaiveDate, wait: i64, chronic: bool, rng: &mut dyn rand::RngCore| {
        let first = authored + Duration::days(wait);
        if first >= today {
            return ReferralState::Waiting;
        }
        let discharge = if chronic && rng.random::<f64>() < 0.6 {
            None
        } else if chronic {
            Some(first + years(rng.random_range(1.0..3.0)))
        } else {
            Some(first + years(rng.random_range(0.2..1.0)))
        };
        ReferralState::Treated {
            first,
            discharge,
            per_year: if chronic { 2.0 } else { 3.0 },
        }
    };

    // Referrals for long-term conditions: a specialist clinic that follows the patient up.
    for (c, onset) in &p.conditions {
        let info = c.info();
        let Some((specialty, chance)) = info.specialty else {
            continue;
        };
        let forced = p.showcase && *c == Chronic::Diabetes;
        if forced || rng.chance(chance) {
            let authored = *onset + Duration::days(rng.random_range(20..365));
            let wait = rtt_wait_days(rng) / 2;
            let state = if forced {
                // The showcase patient is under the diabetes clinic for good, so that their
                // record always has clinic letters.
                ReferralState::Treated {
                    first: authored + Duration::days(30),
                    discharge: None,
                    per_year: 2.0,
                }
            } else {
                treated(authored.min(today - Duration::days(1)), wait, true, rng)
            };
            let urgent = rng.chance(0.1);
            add(
                Referral {
                    specialty,
                    authored: authored.min(today - Duration::days(1)),
                    state,
                    reason: Some(*c),
                    urgent,
                },
                &mut out,
            );
        }
    }
    let electives: Vec<(Specialty, f64)> = Specialty::ALL
        .iter()
        .filter(|s| layout.offers(**s) && s.accepts(age, p.female))
        .map(|s| (*s, s.elective_weight()))
        .collect();
    if electives.is_empty() {
        return out;
    }
    // An episode of elective care in the last few years, finished or nearly.
    if rng.chance(if age < 18 { 0.1 } else { 0.2 }) {
        let specialty = *rng.pick_weighted(&electives);
        let authored =
            today - Duration::days(rng.random_range(120..(HISTORY_YEARS * 365.0) as i64));
        let wait = rtt_wait_days(rng);
        let state = treated(authored, wait, false, rng);
        let urgent = rng.chance(0.15);
        add(
            Referral {
                specialty,
                authored,
                state,
                reason: None,
                urgent,
            },
            &mut out,
        );
    }
    // The waiting list: about one person in eight, more of the old.
    let waiting = [0.06, 0.09, 0.12, 0.18, 0.22][age_band(age)];
    if (p.showcase && layout.offers(Specialty::Cardiology)) || rng.chance(waiting) {
        let specialty = if p.showcase {
            Specialty::Cardiology
        } else {
            *rng.pick_weighted(&electives)
        };
        let authored = today - Duration::days(rtt_wait_days(rng));
        let urgent = rng.chance(0.08);
        add(
            Referral {
                specialty,
                authored,
                state: ReferralState::Waiting,
                reason: None,
                urgent,
            },
            &mut out,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn layout(patients: u64) -> Layout {
        Layout::new(
            11,
            NaiveDate::from_ymd_opt(2025, 6, 2).expect("date"),
            patients,
        )
    }

    #[test]
    fn practice_lists_partition_the_patients_by_rank() {
        for n in [1u64, 5, 50, 53, 10_001] {
            let l = layout(n);
            let total: u64 = (0..l.practices).map(|p| l.list_size(p)).sum();
            assert_eq!(total, n);
            for i in 0..n {
                let p = l.practice_of(i);
                let r = l.practice_rank(i);
                assert!(r < l.list_size(p), "n={n} i={i}");
                assert_eq!(l.practice_member(p, r), i);
            }
        }
    }

    #[test]
    fn nhs_numbers_are_distinct_valid_test_numbers_up_to_the_maximum() {
        let mut seen = HashSet::new();
        for i in (0..MAX_PATIENTS).step_by(7).chain([MAX_PATIENTS - 1]) {
            let n = nhs_number(3, i);
            assert!(n.is_test_number());
            assert!(NhsNumber::parse(&n.digits()).is_ok());
            assert!(seen.insert(n), "{n} repeated at {i}");
        }
    }

    #[test]
    fn rtt_waits_have_a_13_week_median_and_a_long_tail() {
        let mut rng = stream(5, Purpose::Profile, 0);
        let mut waits: Vec<i64> = (0..20_000).map(|_| rtt_wait_days(&mut rng)).collect();
        waits.sort_unstable();
        let median = waits[waits.len() / 2];
        assert!((84..=98).contains(&median), "median {median} days");
        let over = |weeks: i64| waits.iter().filter(|w| **w > weeks * 7).count() as f64 / 20_000.0;
        assert!((0.02..0.07).contains(&over(52)), "{}", over(52));
        assert!(over(78) > 0.003, "{}", over(78));
        assert!(*waits.last().unwrap_or(&0) <= 730);
    }

    #[test]
    fn children_are_younger_than_their_parents_by_18_years_and_share_their_address() {
        let l = layout(4_000);
        let mut children = 0;
        for i in 0..4_000 {
            let p = Person::new(&l, i);
            if p.role == Role::Child {
                children += 1;
                assert!(!p.parents.is_empty());
                for &parent in &p.parents {
                    let q = Person::new(&l, parent);
                    assert_eq!(q.role, Role::Parent);
                    assert!(q.birth + years(18.0) <= p.birth + Duration::days(1), "{i}");
                    assert_eq!(q.address.line, p.address.line);
                    assert_eq!(q.family, p.family);
                }
            }
        }
        let share = children as f64 / 4_000.0;
        assert!((0.15..0.28).contains(&share), "{share}");
    }

    #[test]
    fn the_showcase_patient_has_diabetes_and_hypertension() {
        let l = layout(50);
        let p = Person::new(&l, 0);
        assert!(p.showcase);
        assert_eq!(p.age(l.today), 67);
        assert!(p.has(Chronic::Diabetes, l.today) && p.has(Chronic::Hypertension, l.today));
        assert!(p.referral(Specialty::Diabetes).is_some());
    }
}
