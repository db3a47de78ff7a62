//! The generator as its users see it: determinism, validity, closed references, NHS numbers,
//! waiting times, family links, the long tail of large records, and streaming to NDJSON.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use chrono::{Duration, NaiveDate};
use fhir::nhs_number::NhsNumber;
use seed::{generate, write_ndjson, Generator, IdStyle, Kind, Options, SeedError};
use serde_json::Value;

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 6, 2).expect("date")
}

fn region(patients: u64, seed: u64) -> Vec<Value> {
    let mut out = Vec::new();
    generate(&Options::new(patients, seed, today()), &mut |r| {
        out.push(r);
        Ok::<(), SeedError>(())
    })
    .expect("generate");
    out
}

fn label(r: &Value) -> String {
    format!(
        "{}/{}",
        r["resourceType"].as_str().unwrap_or("?"),
        r["id"].as_str().unwrap_or("?")
    )
}

/// Every `reference` string anywhere in a resource, and attachment URLs.
fn references(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("reference", Value::String(s)) => out.push(s.clone()),
                    ("url", Value::String(s)) if s.starts_with("Binary/") => out.push(s.clone()),
                    _ => references(v, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| references(v, out)),
        _ => {}
    }
}

fn read_ndjson(dir: &Path, kind: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(dir.join(format!("{kind}.ndjson"))).unwrap_or_default();
    text.lines()
        .map(|l| serde_json::from_str(l).expect("one JSON resource per line"))
        .collect()
}

#[test]
fn the_same_options_give_the_same_bytes_and_another_seed_other_ones() {
    let serialise = |rs: Vec<Value>| rs.iter().map(|r| r.to_string()).collect::<Vec<_>>();
    let a = serialise(region(120, 7));
    let b = serialise(region(120, 7));
    assert_eq!(a, b);
    let c = serialise(region(120, 8));
    assert_ne!(a, c);
    // No id of one seed's region appears in the other's: regions can be loaded side by side.
    let ids = |rs: &[String]| -> HashSet<String> {
        rs.iter()
            .filter_map(|r| serde_json::from_str::<Value>(r).ok())
            .map(|v| label(&v))
            .collect()
    };
    assert!(ids(&a).is_disjoint(&ids(&c)));
    // Another day moves the clinical dates with it.
    let mut later = Vec::new();
    generate(
        &Options::new(120, 7, today() + Duration::days(1)),
        &mut |r| {
            later.push(r.to_string());
            Ok::<(), SeedError>(())
        },
    )
    .expect("generate");
    assert_ne!(a, later);
}

#[test]
fn every_resource_is_valid_r4_of_a_served_type_with_a_uk_core_profile() {
    let resources = region(300, 1);
    let mut problems = Vec::new();
    for r in &resources {
        let t = r["resourceType"].as_str().unwrap_or_default();
        assert!(fhir::types::is_supported_type(t), "{t}");
        assert!(
            fhir::types::is_valid_id(r["id"].as_str().unwrap_or_default()),
            "{}",
            label(r)
        );
        if t != "Binary" {
            let profile = r["meta"]["profile"][0].as_str().unwrap_or_default();
            assert_eq!(
                profile,
                format!("https://fhir.hl7.org.uk/StructureDefinition/UKCore-{t}")
            );
        }
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
    // Every type the generator knows appears at this size.
    let types: HashSet<&str> = resources
        .iter()
        .filter_map(|r| r["resourceType"].as_str())
        .collect();
    for k in Kind::ALL {
        assert!(types.contains(k.name()), "no {}", k.name());
    }
    // The check above is only worth something if the validator is awake.
    let mut broken = resources
        .iter()
        .find(|r| r["resourceType"] == "Appointment")
        .cloned()
        .expect("an appointment");
    broken["status"] = Value::String("bogus".into());
    assert!(fhir::validate::validate(&broken).is_err());
}

#[test]
fn ids_are_unique_and_every_reference_resolves_within_the_output() {
    for style in [IdStyle::Hashed, IdStyle::Readable] {
        let mut opts = Options::new(300, 2, today());
        opts.ids = style;
        let mut resources = Vec::new();
        generate(&opts, &mut |r| {
            resources.push(r);
            Ok::<(), SeedError>(())
        })
        .expect("generate");
        let mut ids = HashSet::new();
        for r in &resources {
            assert!(ids.insert(label(r)), "{} twice ({style:?})", label(r));
        }
        let mut refs = Vec::new();
        for r in &resources {
            references(r, &mut refs);
        }
        assert!(refs.len() > resources.len(), "{} references", refs.len());
        let dangling: Vec<&String> = refs.iter().filter(|r| !ids.contains(*r)).collect();
        assert!(
            dangling.is_empty(),
            "{} dangling ({style:?}), e.g. {:?}",
            dangling.len(),
            &dangling[..dangling.len().min(5)]
        );
    }
}

#[test]
fn appointments_take_their_own_busy_slot_and_free_slots_fill_the_booking_window() {
    let resources = region(400, 3);
    let slots: HashMap<String, &Value> = resources
        .iter()
        .filter(|r| r["resourceType"] == "Slot")
        .map(|r| (label(r), r))
        .collect();
    let mut taken = HashSet::new();
    let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
    for a in resources
        .iter()
        .filter(|r| r["resourceType"] == "Appointment")
    {
        let slot_ref = a["slot"][0]["reference"].as_str().unwrap_or_default();
        let slot = slots
            .get(slot_ref)
            .unwrap_or_else(|| panic!("{slot_ref} missing"));
        assert_eq!(slot["status"], "busy");
        assert_eq!(slot["start"], a["start"]);
        assert!(
            taken.insert(slot_ref.to_string()),
            "{slot_ref} booked twice"
        );
        *statuses
            .entry(a["status"].as_str().unwrap_or_default().to_string())
            .or_default() += 1;
        let roles: Vec<&str> = a["participant"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["actor"]["reference"].as_str())
            .map(|r| r.split('/').next().unwrap_or_default())
            .collect();
        assert_eq!(roles, ["Patient", "Practitioner", "Location"]);
    }
    for status in ["booked", "fulfilled", "cancelled", "noshow"] {
        assert!(
            statuses.get(status).copied().unwrap_or(0) > 0,
            "no {status}: {statuses:?}"
        );
    }
    // Booked appointments are in the future; busy slots are exactly the appointments' slots.
    for a in resources
        .iter()
        .filter(|r| r["resourceType"] == "Appointment" && r["status"] == "booked")
    {
        assert!(a["start"].as_str().unwrap_or_default() >= "2025-06-02");
    }
    let busy = slots.values().filter(|s| s["status"] == "busy").count();
    assert_eq!(busy, taken.len());
    // No two slots of a schedule start at the same time.
    let mut starts = HashSet::new();
    for s in slots.values() {
        let key = (
            s["schedule"]["reference"].to_string(),
            s["start"].to_string(),
        );
        assert!(starts.insert(key), "two slots at one time in one schedule");
    }
    let free_future = slots
        .values()
        .filter(|s| s["status"] == "free" && s["start"].as_str().unwrap_or_default() > "2025-06-03")
        .count();
    assert!(free_future > 100, "{free_future} free slots ahead");
}

#[test]
fn children_have_their_parents_as_related_persons_with_the_parents_nhs_numbers() {
    let resources = region(400, 4);
    let patients: HashMap<String, &Value> = resources
        .iter()
        .filter(|r| r["resourceType"] == "Patient")
        .map(|r| (label(r), r))
        .collect();
    let by_nhs: HashMap<&str, &Value> = patients
        .values()
        .map(|p| (p["identifier"][0]["value"].as_str().unwrap_or_default(), *p))
        .collect();
    let mut links = 0;
    for rp in resources
        .iter()
        .filter(|r| r["resourceType"] == "RelatedPerson")
    {
        let child = patients[rp["patient"]["reference"].as_str().unwrap_or_default()];
        let code = rp["relationship"][0]["coding"][0]["code"]
            .as_str()
            .unwrap_or_default();
        assert!(["MTH", "FTH", "PRN"].contains(&code), "{code}");
        assert_eq!(
            rp["relationship"][0]["coding"][0]["system"],
            "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
        );
        assert_eq!(rp["identifier"][0]["system"], fhir::nhs_number::SYSTEM);
        let parent = by_nhs
            .get(rp["identifier"][0]["value"].as_str().unwrap_or_default())
            .expect("the parent is a patient of the region");
        assert_eq!(parent["name"][0]["family"], rp["name"][0]["family"]);
        assert_eq!(parent["telecom"][0]["value"], rp["telecom"][0]["value"]);
        let child_birth = child["birthDate"].as_str().unwrap_or_default();
        let parent_birth = parent["birthDate"].as_str().unwrap_or_default();
        assert!(child_birth > "2007-06-02", "a child: {child_birth}");
        assert!(parent_birth < child_birth);
        if code == "MTH" {
            assert_eq!(parent["gender"], "female");
        }
        links += 1;
    }
    assert!(links >= 40, "{links} family links");
}

#[test]
fn record_sizes_have_a_long_tail_at_10000_patients() {
    let generator = Generator::new(&Options::new(10_000, 1, today())).expect("region");
    // The cheap count makes the same decisions as the real record.
    for i in [0u64, 1, 2, 57, 999, 4_321] {
        let record = generator.patient(i);
        let size = generator.record_size(i);
        assert_eq!(size.total(), record.len() as u64, "patient {i}");
        for k in Kind::ALL {
            let n = record
                .iter()
                .filter(|r| r["resourceType"] == k.name())
                .count() as u64;
            assert_eq!(size.of(k), n, "{} of patient {i}", k.name());
        }
    }
    let sizes: Vec<u64> = (0..10_000)
        .map(|i| generator.record_size(i).in_compartment())
        .collect();
    let mean = sizes.iter().sum::<u64>() as f64 / sizes.len() as f64;
    assert!((50.0..=150.0).contains(&mean), "mean {mean}");
    let large = sizes.iter().filter(|s| **s >= 800).count();
    let largest = sizes.iter().max().copied().unwrap_or(0);
    assert!(large >= 3, "{large} records of 800 or more");
    assert!((900..=3_000).contains(&largest), "largest {largest}");
}

#[test]
fn writing_ndjson_streams_every_resource_once_and_matches_the_summary() {
    let dir = tempfile::tempdir().expect("temp dir");
    let opts = Options::new(2_000, 9, today());
    let summary = write_ndjson(&opts, dir.path()).expect("write");
    assert_eq!(summary.counts["Patient"], 2_000);
    assert_eq!(summary.total, summary.counts.values().sum::<u64>());
    let mut bytes = 0;
    let mut files: Vec<String> = std::fs::read_dir(dir.path())
        .expect("read dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let expected: Vec<String> = summary
        .counts
        .keys()
        .map(|t| format!("{t}.ndjson"))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(files, expected);
    for (t, n) in &summary.counts {
        let path = dir.path().join(format!("{t}.ndjson"));
        let text = std::fs::read_to_string(&path).expect("read");
        bytes += text.len() as u64;
        assert_eq!(text.lines().count() as u64, *n, "{t}");
        let first: Value = serde_json::from_str(text.lines().next().unwrap_or("{}")).expect("json");
        assert_eq!(first["resourceType"], t.as_str());
    }
    assert_eq!(bytes, summary.bytes);

    // NHS numbers: valid, from the test range, one per patient.
    let mut seen = HashSet::new();
    for p in read_ndjson(dir.path(), "Patient") {
        let identifier = &p["identifier"][0];
        assert_eq!(identifier["system"], fhir::nhs_number::SYSTEM);
        let n = NhsNumber::parse(identifier["value"].as_str().unwrap_or_default()).expect("valid");
        assert!(n.is_test_number());
        assert!(seen.insert(n), "{n} twice");
        assert!(p["extension"][0]["url"]
            .as_str()
            .unwrap_or_default()
            .ends_with("Extension-UKCore-EthnicCategory"));
    }
    assert_eq!(seen.len(), 2_000);

    // The waiting list: active referrals ordered by the GP to a trust, waiting a median of
    // about 13 weeks, some over a year.
    let mut waits: Vec<i64> = read_ndjson(dir.path(), "ServiceRequest")
        .iter()
        .filter(|r| r["status"] == "active")
        .map(|r| {
            assert_eq!(r["intent"], "order");
            assert!(r["requester"]["reference"]
                .as_str()
                .unwrap_or_default()
                .starts_with("Practitioner/"));
            assert!(r["performer"][0]["reference"]
                .as_str()
                .unwrap_or_default()
                .starts_with("Organization/"));
            let authored = NaiveDate::parse_from_str(
                &r["authoredOn"].as_str().unwrap_or_default()[..10],
                "%Y-%m-%d",
            )
            .expect("date");
            (today() - authored).num_days()
        })
        .collect();
    waits.sort_unstable();
    assert!(waits.len() > 150, "{} waiting", waits.len());
    let median_weeks = waits[waits.len() / 2] as f64 / 7.0;
    assert!(
        (9.0..=17.0).contains(&median_weeks),
        "median {median_weeks} weeks"
    );
    assert!(
        waits.iter().any(|w| *w > 52 * 7),
        "nobody waits over 52 weeks"
    );
    assert!(
        waits.iter().any(|w| *w > 78 * 7),
        "nobody waits over 78 weeks"
    );

    // Organisations carry ODS codes: trusts three characters starting R, practices six.
    for o in read_ndjson(dir.path(), "Organization") {
        let ods = o["identifier"][0]["value"].as_str().unwrap_or_default();
        assert_eq!(
            o["identifier"][0]["system"],
            "https://fhir.nhs.uk/Id/ods-organization-code"
        );
        assert!(
            (ods.len() == 3 && ods.starts_with('R')) || ods.len() == 6,
            "{ods}"
        );
    }
}

#[test]
fn writing_the_same_region_twice_gives_the_same_files() {
    let opts = Options::new(150, 5, today());
    let (a, b) = (
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
    );
    let summary = write_ndjson(&opts, a.path()).expect("write a");
    write_ndjson(&opts, b.path()).expect("write b");
    for t in summary.counts.keys() {
        let x = std::fs::read(a.path().join(format!("{t}.ndjson"))).expect("a");
        let y = std::fs::read(b.path().join(format!("{t}.ndjson"))).expect("b");
        assert!(x == y, "{t}.ndjson differs between runs");
    }
}

#[test]
fn a_region_larger_than_the_test_range_allows_is_refused() {
    let err = Generator::new(&Options::new(seed::MAX_PATIENTS + 1, 1, today()))
        .err()
        .expect("refused");
    assert!(err.to_string().contains("at most 900000"), "{err}");
}

#[test]
fn a_region_without_patients_is_just_its_organisations_staff_and_free_slots() {
    let resources = region(0, 1);
    assert!(resources.iter().all(|r| r["resourceType"] != "Patient"));
    assert!(resources
        .iter()
        .any(|r| r["resourceType"] == "Organization"));
    assert!(resources
        .iter()
        .filter(|r| r["resourceType"] == "Slot")
        .all(|r| r["status"] == "free"));
}
