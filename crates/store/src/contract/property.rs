//! Random populations and random searches: the store's answers must equal a brute-force
//! evaluation ([`crate::eval`]) of the parsed query over every stored resource.

use std::collections::HashMap;
use std::sync::Arc;

use fhir::index::IndexEntry;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use serde_json::{json, Value};

use super::*;
use crate::eval;
use crate::query::{self, ParseOptions};
use crate::Store;

const FAMILIES: &[&str] = &[
    "Smith", "Smyth", "Smithson", "O'Brien", "Öztürk", "Ozturk", "Ng", "Zoë",
];
const GIVENS: &[&str] = &["Ada", "Åsa", "Asa", "Zoë", "Zoe", "José", "Jose", "Li"];
const GENDERS: &[&str] = &["male", "female", "other", "unknown"];
const STATUSES: &[&str] = &["final", "amended", "preliminary"];
/// (system, code) of the Observation codes drawn from; the last has no system.
const CODES: &[(Option<&str>, &str)] = &[
    (Some(LOINC), "15074-8"),
    (Some(LOINC), "2339-0"),
    (Some(LOINC), "4548-4"),
    (Some(SNOMED), "1107481000000106"),
    (None, "X-1"),
];
const MRN: &str = "https://leeds-hospital.example/Id/mrn";
const PREFIXES: &[&str] = &["", "eq", "ne", "gt", "lt", "ge", "le", "sa", "eb"];
const PATIENTS: usize = 12;
const OBSERVATIONS: usize = 40;
/// How many random searches are checked against one random population.
const SEARCHES: u32 = 256;

#[derive(Debug, Clone)]
struct PatientSpec {
    family: Option<&'static str>,
    given: &'static str,
    gender: Option<&'static str>,
    birth_date: Option<String>,
    active: Option<bool>,
    /// Whether the patient also has a hospital number (MRN) without an NHS number system.
    mrn: bool,
}

#[derive(Debug, Clone)]
enum Effective {
    At(String),
    Period(String, Option<String>),
}

#[derive(Debug, Clone)]
struct ObservationSpec {
    codes: Vec<usize>,
    status: &'static str,
    /// Index of the subject Patient.
    subject: Option<usize>,
    effective: Option<Effective>,
    /// (value as written, unit kind: 0 UCUM mmol/L, 1 UCUM mg/dL, 2 unit text only).
    value: Option<(String, u8)>,
}

#[derive(Debug, Clone)]
struct Population {
    patients: Vec<PatientSpec>,
    observations: Vec<ObservationSpec>,
    /// Observations rewritten after creation, with their new content.
    updates: Vec<(usize, ObservationSpec)>,
    deleted_observations: Vec<usize>,
    /// Patients deleted at the end; observations still point to them.
    deleted_patients: Vec<usize>,
}

fn two_digits(range: std::ops::RangeInclusive<u32>) -> impl Strategy<Value = String> {
    range.prop_map(|n| format!("{n:02}"))
}

/// A date of year, month or day precision in `years`, months 1-3.
fn date_in(years: std::ops::RangeInclusive<i32>) -> impl Strategy<Value = String> {
    (years, 0..3u8, two_digits(1..=3), two_digits(1..=28)).prop_map(|(y, precision, m, d)| {
        match precision {
            0 => format!("{y}"),
            1 => format!("{y}-{m}"),
            _ => format!("{y}-{m}-{d}"),
        }
    })
}

/// A dateTime around 8-12 March 2024, of any precision, in one of three time zones.
fn datetime_near_march_2024(with_minutes_only: bool) -> impl Strategy<Value = String> {
    (
        0..6u8,
        two_digits(7..=13),
        two_digits(0..=23),
        select(vec!["00", "15", "30", "59"]),
        select(vec!["00", "30"]),
        select(vec!["Z", "+01:00", "-05:00"]),
    )
        .prop_map(move |(precision, day, h, m, s, tz)| match precision {
            0 => "2024".to_string(),
            1 => "2024-03".to_string(),
            2 => format!("2024-03-{day}"),
            3 if with_minutes_only => format!("2024-03-{day}T{h}:{m}{tz}"),
            _ => format!("2024-03-{day}T{h}:{m}:{s}{tz}"),
        })
}

fn range_of(s: &str) -> fhir::datetime::Range {
    fhir::datetime::parse_datetime(s)
        .map(|d| d.range)
        .unwrap_or(fhir::datetime::Range { low: 0, high: 0 })
}

fn effective() -> impl Strategy<Value = Option<Effective>> {
    prop_oneof![
        1 => Just(None),
        4 => datetime_near_march_2024(false).prop_map(|s| Some(Effective::At(s))),
        2 => (datetime_near_march_2024(false), proptest::option::weighted(0.8, datetime_near_march_2024(false))).prop_map(
            |(a, b)| {
                Some(match b {
                    // A period must not end before it starts.
                    Some(b) if range_of(&b).high < range_of(&a).low => Effective::Period(b, Some(a)),
                    Some(b) => Effective::Period(a, Some(b)),
                    None => Effective::Period(a, None),
                })
            }
        ),
    ]
}

fn quantity_value() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => (3..=8u32).prop_map(|n| n.to_string()),
        1 => (30..=80u32).prop_map(|n| format!("{}.{}", n / 10, n % 10)),
        1 => (300..=800u32).prop_map(|n| format!("{}.{:02}", n / 100, n % 100)),
        // Multiples of 0.05: the bounds of one-decimal searches.
        2 => (60..=160u32).prop_map(|n| format!("{}.{:02}", n * 5 / 100, n * 5 % 100)),
        2 => select(binary_awkward_values()),
    ]
}

/// Two-decimal values that bound a one-decimal search's range where, computed in binary, the
/// bound misses them: 5.4 - 0.05 is 5.3500000000000005, not 5.35.
fn binary_awkward_values() -> Vec<String> {
    (300..=800i64)
        .filter(|m| m % 10 == 5)
        .filter(|&m| {
            let v = m as f64 / 100.0;
            let above = ((m + 5) / 10) as f64 / 10.0;
            let below = ((m - 5) / 10) as f64 / 10.0;
            above - 0.05 != v || below + 0.05 != v
        })
        .map(|m| decimal_text(m, 2))
        .collect()
}

/// `mantissa` × 10^-`scale` as decimal text.
fn decimal_text(mantissa: i64, scale: u32) -> String {
    if scale == 0 {
        return mantissa.to_string();
    }
    let unit = 10i64.pow(scale);
    format!(
        "{}.{:0width$}",
        mantissa / unit,
        mantissa % unit,
        width = scale as usize
    )
}

/// A search number whose implicit range ends exactly at `value`, which must have decimals and
/// end in 5: `5.45` gives `5.4` (range [5.35, 5.45), excluding it) or `5.5` ([5.45, 5.55),
/// including it).
fn boundary_of(value: &str, above: bool) -> String {
    let (int, frac) = value.split_once('.').unwrap_or((value, ""));
    let mantissa = format!("{int}{frac}").parse::<i64>().unwrap_or(545);
    let scale = (frac.len() as u32).max(1);
    let centre = if above { mantissa + 5 } else { mantissa - 5 };
    decimal_text(centre / 10, scale - 1)
}

/// Values that are the bound of some search number's range.
fn is_boundary(value: &str) -> bool {
    value.contains('.') && value.ends_with('5')
}

fn patient_spec() -> impl Strategy<Value = PatientSpec> {
    (
        proptest::option::weighted(0.9, select(FAMILIES)),
        select(GIVENS),
        proptest::option::weighted(0.8, select(GENDERS)),
        proptest::option::weighted(0.8, date_in(1980..=1981)),
        proptest::option::of(any::<bool>()),
        any::<bool>(),
    )
        .prop_map(
            |(family, given, gender, birth_date, active, mrn)| PatientSpec {
                family,
                given,
                gender,
                birth_date,
                active,
                mrn,
            },
        )
}

fn observation_spec() -> impl Strategy<Value = ObservationSpec> {
    (
        proptest::collection::vec(0..CODES.len(), 1..=2),
        select(STATUSES),
        proptest::option::weighted(0.9, 0..PATIENTS),
        effective(),
        proptest::option::weighted(0.85, (quantity_value(), 0..3u8)),
    )
        .prop_map(|(mut codes, status, subject, effective, value)| {
            codes.dedup();
            ObservationSpec {
                codes,
                status,
                subject,
                effective,
                value,
            }
        })
}

fn population() -> impl Strategy<Value = Population> {
    (
        proptest::collection::vec(patient_spec(), PATIENTS),
        proptest::collection::vec(observation_spec(), OBSERVATIONS),
        proptest::collection::vec((0..OBSERVATIONS, observation_spec()), 0..6),
        proptest::collection::vec(0..OBSERVATIONS, 0..4),
        proptest::collection::vec(0..PATIENTS, 1..=2),
    )
        .prop_map(
            |(patients, observations, updates, deleted_observations, deleted_patients)| {
                Population {
                    patients,
                    observations,
                    updates,
                    deleted_observations,
                    deleted_patients,
                }
            },
        )
}

fn patient_json(spec: &PatientSpec, serial: u32) -> Value {
    let mut name = json!({"use": "official", "given": [spec.given]});
    if let Some(f) = spec.family {
        name["family"] = json!(f);
    }
    let mut identifiers = vec![json!({"system": NHS_NUMBER, "value": nhs_number(serial)})];
    if spec.mrn {
        identifiers.push(json!({"system": MRN, "value": format!("MRN{serial}")}));
    }
    let mut p = json!({"resourceType": "Patient", "identifier": identifiers, "name": [name]});
    if let Some(g) = spec.gender {
        p["gender"] = json!(g);
    }
    if let Some(b) = &spec.birth_date {
        p["birthDate"] = json!(b);
    }
    if let Some(a) = spec.active {
        p["active"] = json!(a);
    }
    p
}

fn observation_json(spec: &ObservationSpec, patient_ids: &[String]) -> Value {
    let codings: Vec<Value> = spec
        .codes
        .iter()
        .map(|&i| match CODES[i] {
            (Some(system), code) => json!({"system": system, "code": code}),
            (None, code) => json!({"code": code}),
        })
        .collect();
    let mut o =
        json!({"resourceType": "Observation", "status": spec.status, "code": {"coding": codings}});
    if let Some(p) = spec.subject.and_then(|i| patient_ids.get(i)) {
        o["subject"] = json!({"reference": format!("Patient/{p}")});
    }
    match &spec.effective {
        Some(Effective::At(t)) => o["effectiveDateTime"] = json!(t),
        Some(Effective::Period(start, end)) => {
            let mut period = json!({"start": start});
            if let Some(e) = end {
                period["end"] = json!(e);
            }
            o["effectivePeriod"] = period;
        }
        None => {}
    }
    if let Some((text, unit)) = &spec.value {
        let value: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        o["valueQuantity"] = match unit {
            0 => json!({"value": value, "unit": "mmol/L", "system": UCUM, "code": "mmol/L"}),
            1 => json!({"value": value, "unit": "mg/dL", "system": UCUM, "code": "mg/dL"}),
            _ => json!({"value": value, "unit": "mmol/L"}),
        };
    }
    o
}

/// What is stored, as the brute force sees it.
#[derive(Debug)]
struct Stored {
    resource_type: String,
    id: String,
    last_updated: i64,
    entries: Vec<IndexEntry>,
    json: String,
}

/// Writes the population and reads every resource back; the map holds the live ones.
async fn store_population(
    store: &dyn Store,
    pop: &Population,
) -> (Vec<String>, HashMap<(String, String), Stored>) {
    let mut patient_ids = Vec::new();
    for (i, spec) in pop.patients.iter().enumerate() {
        patient_ids.push(create(store, patient_json(spec, i as u32 + 1)).await.id);
    }
    let mut observation_ids = Vec::new();
    for spec in &pop.observations {
        observation_ids.push(create(store, observation_json(spec, &patient_ids)).await.id);
    }
    for (i, spec) in &pop.updates {
        let outcome = store
            .write(update_op(
                &observation_ids[*i],
                observation_json(spec, &patient_ids),
                None,
            ))
            .await;
        assert!(
            matches!(outcome, Ok(WriteOutcome::Updated { .. })),
            "update failed: {outcome:?}"
        );
    }
    let mut deleted: Vec<(&str, &String)> = Vec::new();
    let doomed = pop
        .deleted_observations
        .iter()
        .map(|&i| ("Observation", &observation_ids[i]))
        .chain(
            pop.deleted_patients
                .iter()
                .map(|&i| ("Patient", &patient_ids[i])),
        );
    for (ty, id) in doomed {
        if !deleted.contains(&(ty, id)) {
            delete(store, ty, id).await;
            deleted.push((ty, id));
        }
    }
    let mut live = HashMap::new();
    for (ty, list) in [("Patient", &patient_ids), ("Observation", &observation_ids)] {
        for id in list {
            let Some(v) = read(store, ty, id).await else {
                panic!("{ty}/{id} was written but cannot be read");
            };
            if v.deleted {
                continue;
            }
            let entries = fhir::index::extract(&body(&v));
            live.insert(
                (ty.to_string(), id.clone()),
                Stored {
                    resource_type: ty.to_string(),
                    id: id.clone(),
                    last_updated: v.last_updated.timestamp_millis(),
                    entries,
                    json: v.json.clone(),
                },
            );
        }
    }
    (patient_ids, live)
}

type Param = (String, String);

/// Values drawn from the stored population, so that searches hit what is there and its edges.
#[derive(Debug, Clone)]
struct Drawn {
    /// Every patient id, the deleted included, and one that never existed.
    patient_ids: Vec<String>,
    observation_ids: Vec<String>,
    /// Quantity values as written.
    quantities: Vec<String>,
    /// `lastUpdated` of the live resources, epoch milliseconds.
    instants: Vec<i64>,
    /// Birth dates and effective dates as written, and cut to each coarser precision.
    birth_dates: Vec<String>,
    effective_dates: Vec<String>,
}

/// `s` and the same date cut to year, month, day and (for a time) minutes.
fn truncations(s: &str) -> Vec<String> {
    let mut out = vec![s.to_string()];
    for n in [4, 7, 10] {
        if s.len() > n {
            out.push(s[..n].to_string());
        }
    }
    if let Some((date, rest)) = s.split_once('T') {
        if rest.len() > 8 {
            out.push(format!("{date}T{}{}", &rest[..5], &rest[8..]));
        }
    }
    out
}

/// A date search value: random near the population, or one of its own values cut to a precision.
fn date_value(
    random: impl Strategy<Value = String> + 'static,
    drawn: &[String],
) -> BoxedStrategy<String> {
    if drawn.is_empty() {
        return random.boxed();
    }
    prop_oneof![random, select(drawn.to_vec())].boxed()
}

fn p(name: impl Into<String>, value: impl Into<String>) -> Param {
    (name.into(), value.into())
}

fn with_prefix<S: Strategy<Value = String>>(values: S) -> impl Strategy<Value = String> {
    (select(PREFIXES), values).prop_map(|(prefix, v)| format!("{prefix}{v}"))
}

/// One or two alternatives joined by a comma.
fn alternatives<S: Strategy<Value = String>>(values: S) -> impl Strategy<Value = String> {
    proptest::collection::vec(values, 1..=2).prop_map(|v| v.join(","))
}

/// A search string near a name: a prefix or a substring, in some case, with or without accents.
fn name_text() -> impl Strategy<Value = (String, String)> {
    let names: Vec<&'static str> = FAMILIES.iter().chain(GIVENS).copied().collect();
    (select(names), 0..4usize, 1..5usize, 0..3u8).prop_map(|(name, start, len, case)| {
        let chars: Vec<char> = name.chars().collect();
        let start = start.min(chars.len() - 1);
        let end = (start + len).min(chars.len());
        let part: String = chars[start..end].iter().collect();
        let prefix: String = chars[..end].iter().collect();
        let cased = |s: String| match case {
            0 => s.to_lowercase(),
            1 => s.to_uppercase(),
            _ => s,
        };
        (cased(prefix), cased(part))
    })
}

fn string_param(codes: &'static [&'static str]) -> impl Strategy<Value = Param> {
    let names: Vec<&'static str> = FAMILIES.iter().chain(GIVENS).copied().collect();
    (
        select(codes),
        0..4u8,
        name_text(),
        select(names),
        any::<bool>(),
    )
        .prop_map(|(code, mode, (prefix, part), whole, lower)| match mode {
            0 => p(code, prefix),
            // A piece from inside a name: starts-with must not find it there.
            1 => p(code, part),
            2 => p(format!("{code}:contains"), part),
            _ => p(
                format!("{code}:exact"),
                if lower {
                    whole.to_lowercase()
                } else {
                    whole.to_string()
                },
            ),
        })
}

fn identifier_param(patients: usize) -> impl Strategy<Value = Param> {
    (0..=patients as u32 + 1, 0..6u8, any::<bool>()).prop_map(|(serial, form, not)| {
        let nhs = nhs_number(serial.max(1));
        let value = match form {
            0 => format!("{NHS_NUMBER}|{nhs}"),
            1 => nhs,
            2 => format!("|{nhs}"),
            3 => format!("{NHS_NUMBER}|"),
            4 => format!("{MRN}|MRN{serial}"),
            _ => format!("{MRN}|{nhs}"),
        };
        p(if not { "identifier:not" } else { "identifier" }, value)
    })
}

fn id_param(ids: Vec<String>) -> impl Strategy<Value = Param> {
    proptest::collection::vec(select(ids), 1..=3).prop_map(|v| p("_id", v.join(",")))
}

fn last_updated_param(instants: Vec<i64>) -> impl Strategy<Value = Param> {
    (select(PREFIXES), select(instants), -2..=2i64, any::<bool>()).prop_map(
        |(prefix, ms, shift, seconds)| {
            let t = chrono::DateTime::from_timestamp_millis(ms + shift).unwrap_or_default();
            let text = if seconds {
                t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
            } else {
                fhir::datetime::format_instant(t)
            };
            p("_lastUpdated", format!("{prefix}{text}"))
        },
    )
}

fn missing_param(codes: &'static [&'static str]) -> impl Strategy<Value = Param> {
    (select(codes), any::<bool>()).prop_map(|(code, m)| p(format!("{code}:missing"), m.to_string()))
}

/// Mostly within the population's birth dates (1980-1981), sometimes just outside.
fn birth_date_near() -> impl Strategy<Value = String> {
    prop_oneof![4 => date_in(1980..=1981), 1 => date_in(1979..=1982)]
}

fn patient_param(d: &Drawn) -> BoxedStrategy<Param> {
    prop_oneof![
        3 => string_param(&["family", "given", "name"]),
        3 => alternatives(with_prefix(date_value(birth_date_near(), &d.birth_dates))).prop_map(|v| p("birthdate", v)),
        2 => (alternatives(select(GENDERS).prop_map(str::to_string)), any::<bool>())
            .prop_map(|(v, not)| p(if not { "gender:not" } else { "gender" }, v)),
        2 => identifier_param(PATIENTS),
        1 => select(vec!["true", "false"]).prop_map(|v| p("active", v)),
        1 => id_param(d.patient_ids.clone()),
        1 => last_updated_param(d.instants.clone()),
        1 => missing_param(&["birthdate", "gender", "family", "active"]),
    ]
    .boxed()
}

fn code_value() -> impl Strategy<Value = String> {
    (select(CODES), 0..4u8).prop_map(|((system, code), form)| match (form, system) {
        (0, _) => code.to_string(),
        (1, Some(s)) => format!("{s}|{code}"),
        (1, None) => format!("|{code}"),
        (2, Some(s)) => format!("{s}|"),
        (2, None) => format!("{LOINC}|{code}"),
        (_, _) => format!("|{code}"),
    })
}

fn quantity_param(values: Vec<String>) -> impl Strategy<Value = Param> {
    let mut boundaries: Vec<String> = values.iter().filter(|v| is_boundary(v)).cloned().collect();
    if boundaries.is_empty() {
        boundaries.push("5.45".into());
    }
    let near = (
        select(values.clone()),
        select(vec![
            0.0, 0.0, -0.05, 0.05, -0.005, 0.005, -0.5, 0.5, -0.1, 0.1,
        ]),
        0..3usize,
    )
        .prop_map(|(base, delta, decimals)| {
            let n: f64 = base.parse::<f64>().unwrap_or(5.0) + delta;
            format!("{n:.decimals$}")
        });
    // Only eq and ne use the implicit range.
    let boundary = (
        select(vec!["", "eq", "ne"]),
        select(boundaries),
        any::<bool>(),
    )
        .prop_map(|(prefix, v, above)| format!("{prefix}{}", boundary_of(&v, above)));
    // Exactly a stored value, under every prefix.
    let exact = (select(PREFIXES), select(values.clone())).prop_map(|(p, v)| format!("{p}{v}"));
    (
        prop_oneof![1 => (select(PREFIXES), near).prop_map(|(p, n)| format!("{p}{n}")), 2 => boundary, 1 => exact],
        0..6u8,
    )
        .prop_map(|(number, unit)| {
            let unit = match unit {
                0 => "|http://unitsofmeasure.org|mmol/L",
                1 => "|http://unitsofmeasure.org|mg/dL",
                2 => "||mmol/L",
                _ => "",
            };
            p("value-quantity", format!("{number}{unit}"))
        })
}

fn reference_param(patient_ids: Vec<String>) -> impl Strategy<Value = Param> {
    (select(patient_ids), 0..4u8).prop_map(|(id, form)| match form {
        0 => p("subject", format!("Patient/{id}")),
        1 => p("subject", id),
        2 => p("subject:Patient", id),
        _ => p("patient", id),
    })
}

fn chain_param(d: &Drawn) -> impl Strategy<Value = Param> {
    prop_oneof![
        select(d.patient_ids.clone()).prop_map(|id| p("subject:Patient._id", id)),
        name_text().prop_map(|(prefix, _)| p("subject:Patient.family", prefix)),
        name_text().prop_map(|(prefix, _)| p("patient.name", prefix)),
        with_prefix(date_value(birth_date_near(), &d.birth_dates))
            .prop_map(|v| p("patient.birthdate", v)),
        select(GENDERS).prop_map(|g| p("subject:Patient.gender", g)),
        identifier_param(PATIENTS).prop_map(|(name, value)| (
            if name.ends_with(":not") {
                "patient.identifier:not".to_string()
            } else {
                "patient.identifier".to_string()
            },
            value
        )),
    ]
}

fn observation_param(d: &Drawn) -> BoxedStrategy<Param> {
    prop_oneof![
        3 => (alternatives(code_value()), any::<bool>()).prop_map(|(v, not)| p(if not { "code:not" } else { "code" }, v)),
        1 => alternatives(select(STATUSES).prop_map(str::to_string)).prop_map(|v| p("status", v)),
        4 => alternatives(with_prefix(date_value(datetime_near_march_2024(true), &d.effective_dates))).prop_map(|v| p("date", v)),
        5 => quantity_param(d.quantities.clone()),
        2 => reference_param(d.patient_ids.clone()),
        3 => chain_param(d),
        1 => id_param(d.observation_ids.clone()),
        1 => last_updated_param(d.instants.clone()),
        1 => missing_param(&["date", "value-quantity", "subject"]),
    ]
    .boxed()
}

fn drawn_from(
    pop: &Population,
    patient_ids: Vec<String>,
    observation_ids: Vec<String>,
    live: &HashMap<(String, String), Stored>,
) -> Drawn {
    let observations: Vec<&ObservationSpec> = pop
        .observations
        .iter()
        .chain(pop.updates.iter().map(|(_, s)| s))
        .collect();
    let mut quantities: Vec<String> = observations
        .iter()
        .filter_map(|s| s.value.as_ref().map(|(v, _)| v.clone()))
        .collect();
    quantities.push("5.4".into());
    let mut effective_dates: Vec<String> = observations
        .iter()
        .flat_map(|s| match &s.effective {
            Some(Effective::At(t)) => vec![t.clone()],
            Some(Effective::Period(a, b)) => std::iter::once(a.clone()).chain(b.clone()).collect(),
            None => Vec::new(),
        })
        .flat_map(|t| truncations(&t))
        .collect();
    effective_dates.sort();
    effective_dates.dedup();
    let mut birth_dates: Vec<String> = pop
        .patients
        .iter()
        .filter_map(|p| p.birth_date.as_deref())
        .flat_map(truncations)
        .collect();
    birth_dates.sort();
    birth_dates.dedup();
    let mut patient_ids = patient_ids;
    patient_ids.push("no-such-patient".into());
    let mut observation_ids = observation_ids;
    observation_ids.push("no-such-observation".into());
    let mut instants: Vec<i64> = live.values().map(|s| s.last_updated).collect();
    if instants.is_empty() {
        instants.push(fhir::datetime::now_millis().timestamp_millis());
    }
    Drawn {
        patient_ids,
        observation_ids,
        quantities,
        instants,
        birth_dates,
        effective_dates,
    }
}

/// Runs the searches; returns a description of the first (shrunk) disagreement.
fn check_searches(
    store: Arc<dyn Store>,
    handle: tokio::runtime::Handle,
    pop: Population,
) -> Result<(), String> {
    let (patient_ids, live) = handle.block_on(store_population(&*store, &pop));
    let ids_of_type = |t: &str| -> Vec<String> {
        let mut v: Vec<String> = live
            .keys()
            .filter(|(ty, _)| ty == t)
            .map(|(_, id)| id.clone())
            .collect();
        v.sort();
        v
    };
    let drawn = drawn_from(&pop, patient_ids, ids_of_type("Observation"), &live);
    let searches = prop_oneof![
        (
            Just("Patient"),
            proptest::collection::vec(patient_param(&drawn), 1..=2)
        ),
        (
            Just("Observation"),
            proptest::collection::vec(observation_param(&drawn), 1..=2)
        ),
    ];
    let search = (searches, 1..=40usize, any::<bool>());

    let resolve = |t: &str, id: &str| {
        live.get(&(t.to_string(), id.to_string()))
            .map(|s| (s.last_updated, s.entries.clone()))
    };
    let mut runner = search_runner();
    let result = runner.run(&search, |((resource_type, params), count, with_total)| {
        let q = query::parse(resource_type, &params, &ParseOptions::default())
            .map_err(|issues| TestCaseError::fail(format!("the generated search {params:?} does not parse: {issues:?}")))?;
        let mut expected: Vec<&Stored> = live
            .values()
            .filter(|s| s.resource_type == resource_type)
            .filter(|s| eval::matches_all(&q.conditions, &s.resource_type, &s.id, s.last_updated, &s.entries, &resolve))
            .collect();
        expected.sort_by(|a, b| a.id.cmp(&b.id));
        let expected_ids: Vec<String> = expected.iter().map(|s| s.id.clone()).collect();
        let got = handle.block_on(search_all_ids(&*store, &q, count));
        if got != expected_ids {
            let describe = |id: &String| {
                live.get(&(resource_type.to_string(), id.clone()))
                    .map(|s| format!("  {}/{}: {}\n    index: {:?}", s.resource_type, s.id, s.json, s.entries))
                    .unwrap_or_else(|| format!("  {resource_type}/{id}: not a live resource"))
            };
            let extra: Vec<String> = got.iter().filter(|i| !expected_ids.contains(i)).map(describe).collect();
            let missing: Vec<String> = expected_ids.iter().filter(|i| !got.contains(i)).map(describe).collect();
            return Err(TestCaseError::fail(format!(
                "{resource_type}?{params:?} (pages of {count}): the store returned {} resources, the brute force {}\nreturned but not expected:\n{}\nexpected but not returned:\n{}",
                got.len(),
                expected_ids.len(),
                extra.join("\n"),
                missing.join("\n")
            )));
        }
        if with_total {
            let mut counted = q.clone();
            counted.total = true;
            counted.count = 1;
            let total = handle
                .block_on(store.search(&counted))
                .map_err(|e| TestCaseError::fail(format!("{resource_type}?{params:?} with _total failed: {e}")))?
                .total;
            if total != Some(expected_ids.len() as u64) {
                return Err(TestCaseError::fail(format!(
                    "{resource_type}?{params:?}&_total=accurate: total {total:?}, but {} resources match",
                    expected_ids.len()
                )));
            }
        }
        Ok(())
    });
    match result {
        Ok(()) => Ok(()),
        Err(TestError::Fail(reason, (search, count, _))) => Err(format!(
            "the store disagrees with the brute-force evaluation on {search:?} (pages of {count}):\n{reason}"
        )),
        Err(TestError::Abort(reason)) => Err(format!("the property test stopped: {reason}")),
    }
}

/// Deterministic: the same populations and searches on every run and every backend.
fn search_runner() -> TestRunner {
    let config = Config {
        cases: SEARCHES,
        failure_persistence: None,
        max_shrink_iters: 512,
        fork: false,
        timeout: 0,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha))
}

/// A deterministic random population, as [`search_agrees_with_brute_force_evaluation_on_random_data`] stores it.
fn generate_population() -> Result<Population, String> {
    let mut runner = search_runner();
    population()
        .new_tree(&mut runner)
        .map(|tree| tree.current())
        .map_err(|reason| format!("could not generate a population: {reason}"))
}

pub async fn search_agrees_with_brute_force_evaluation_on_random_data(store: Arc<dyn Store>) {
    let pop = match generate_population() {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    };
    let handle = tokio::runtime::Handle::current();
    // The property runner is synchronous: run it on a blocking thread that drives the store's
    // futures on this runtime.
    let outcome = tokio::task::spawn_blocking(move || check_searches(store, handle, pop)).await;
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(disagreement)) => panic!("{disagreement}"),
        Err(e) => panic!("the property test's thread failed: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn populations_are_valid_fhir_and_deterministic() {
        let a = generate_population().unwrap_or_else(|e| panic!("{e}"));
        let b = generate_population().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            format!("{a:?}"),
            format!("{b:?}"),
            "the same seed gives the same population"
        );
        let ids: Vec<String> = (0..PATIENTS).map(|i| format!("p{i}")).collect();
        for (i, spec) in a.patients.iter().enumerate() {
            let value = patient_json(spec, i as u32 + 1);
            if let Err(issues) = fhir::validate::validate(&value) {
                panic!("generated patient is invalid: {issues:?}\n{value}");
            }
        }
        for spec in a
            .observations
            .iter()
            .chain(a.updates.iter().map(|(_, s)| s))
        {
            let value = observation_json(spec, &ids);
            if let Err(issues) = fhir::validate::validate(&value) {
                panic!("generated observation is invalid: {issues:?}\n{value}");
            }
        }
    }

    #[test]
    fn boundaries_end_exactly_at_the_value() {
        assert_eq!(boundary_of("5.45", false), "5.4");
        assert_eq!(boundary_of("5.45", true), "5.5");
        assert_eq!(boundary_of("5.5", false), "5");
        assert_eq!(boundary_of("5.5", true), "6");
        assert_eq!(boundary_of("3.05", false), "3.0");
        assert!(is_boundary("5.45") && !is_boundary("5.4") && !is_boundary("5"));
        assert_eq!(decimal_text(305, 2), "3.05");
        let awkward = binary_awkward_values();
        assert!(awkward.contains(&"5.35".to_string()), "{awkward:?}");
        assert!(awkward.iter().all(|v| is_boundary(v)));
    }

    #[test]
    fn dates_are_cut_to_every_coarser_precision() {
        assert_eq!(
            truncations("2024-03-10T09:30:00+01:00"),
            vec![
                "2024-03-10T09:30:00+01:00",
                "2024",
                "2024-03",
                "2024-03-10",
                "2024-03-10T09:30+01:00"
            ]
        );
        assert_eq!(truncations("1980-02"), vec!["1980-02", "1980"]);
    }

    #[test]
    fn generated_searches_parse() {
        let pop = generate_population().unwrap_or_else(|e| panic!("{e}"));
        let ids: Vec<String> = (0..PATIENTS).map(|i| format!("p{i}")).collect();
        let drawn = drawn_from(&pop, ids.clone(), ids, &HashMap::new());
        let strategy = prop_oneof![
            (
                Just("Patient"),
                proptest::collection::vec(patient_param(&drawn), 1..=2)
            ),
            (
                Just("Observation"),
                proptest::collection::vec(observation_param(&drawn), 1..=2)
            ),
        ];
        let mut runner = search_runner();
        let result = runner.run(&strategy, |(ty, params)| {
            query::parse(ty, &params, &ParseOptions::default())
                .map(|_| ())
                .map_err(|issues| TestCaseError::fail(format!("{ty}?{params:?}: {issues:?}")))
        });
        if let Err(e) = result {
            panic!("a generated search does not parse: {e}");
        }
    }
}
