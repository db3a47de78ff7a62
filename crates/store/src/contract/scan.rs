//! Scans ([`Store::scan`]): cursor paging, the `lastUpdated` window, patient compartments.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::scan::{Compartment, ScanQuery, COMPARTMENT_DRIVE_LIMIT};
use crate::Store;

/// Every resource the scan `q` returns, page by page (`limit` per page), in order; checks that no
/// resource appears twice, that only the scanned type comes back, never a deleted version, and
/// that a page is full whenever another follows.
pub async fn scan_all(store: &dyn Store, q: &ScanQuery, limit: usize) -> Vec<ResourceVersion> {
    let mut q = q.clone();
    q.limit = limit;
    q.after = 0;
    let mut out: Vec<ResourceVersion> = Vec::new();
    let mut seen = HashSet::new();
    for _ in 0..100_000 {
        let page = match store.scan(&q).await {
            Ok(p) => p,
            Err(e) => panic!("scan {q:?} failed: {e}"),
        };
        assert!(page.resources.len() <= limit, "a page holds at most limit");
        for v in &page.resources {
            assert!(
                q.resource_types.contains(&v.resource_type),
                "a scan returns its types only, not {}",
                v.resource_type
            );
            assert!(!v.deleted, "a scan never returns a deletion");
            assert!(
                seen.insert(v.id.clone()),
                "{} appears twice in the scan {q:?}",
                v.id
            );
        }
        out.extend(page.resources.iter().cloned());
        match page.next_after {
            Some(after) => {
                assert_eq!(
                    page.resources.len(),
                    limit,
                    "a page followed by another is full"
                );
                assert!(after > q.after, "the cursor moves forward");
                q.after = after;
            }
            None => return out,
        }
    }
    panic!("the scan {q:?} does not end");
}

fn sorted_ids(versions: &[ResourceVersion]) -> Vec<String> {
    let mut ids = ids_of(versions);
    ids.sort();
    ids
}

async fn scan_ids(store: &dyn Store, q: &ScanQuery) -> Vec<String> {
    sorted_ids(&scan_all(store, q, 1000).await)
}

fn in_compartment(resource_type: &str, compartment: Compartment) -> ScanQuery {
    ScanQuery {
        compartment: Some(compartment),
        ..ScanQuery::all(resource_type, 1000)
    }
}

fn patients(ids: &[&String]) -> Compartment {
    Compartment::Patients(ids.iter().map(|s| s.to_string()).collect())
}

pub async fn scan_pages_cover_every_current_resource_once_in_store_order(store: Arc<dyn Store>) {
    let mut kept = Vec::new();
    for i in 0..23u32 {
        kept.push(create(&*store, patient("Scan", &format!("P{i}"), &nhs_number(i))).await);
    }
    create(
        &*store,
        observation(
            &format!("Patient/{}", kept[0].id),
            "8867-4",
            "Heart rate",
            70.0,
            "/min",
            "2024-01-01",
        ),
    )
    .await;
    // Two deleted, one updated (its new version is the one scanned).
    delete(&*store, "Patient", &kept[3].id).await;
    delete(&*store, "Patient", &kept[17].id).await;
    let updated = update(
        &*store,
        &kept[5].id.clone(),
        json!({"resourceType": "Patient", "id": kept[5].id, "active": false}),
    )
    .await;

    let whole = scan_all(&*store, &ScanQuery::all("Patient", 1000), 1000).await;
    assert_eq!(
        whole.len(),
        21,
        "23 patients less the 2 deleted, and no Observation"
    );
    for limit in [1, 4, 7, 21, 22] {
        let paged = scan_all(&*store, &ScanQuery::all("Patient", limit), limit).await;
        assert_eq!(
            ids_of(&paged),
            ids_of(&whole),
            "pages of {limit} give the same resources in the same order"
        );
    }
    // The order is the order of first storage: an update does not move a resource.
    let expected: Vec<String> = kept
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 17)
        .map(|(_, v)| v.id.clone())
        .collect();
    assert_eq!(ids_of(&whole), expected);
    let scanned = whole
        .iter()
        .find(|v| v.id == updated.id)
        .expect("the updated patient is scanned");
    assert_eq!(scanned, &updated, "the current version, exactly as read");
    assert!(
        scan_all(&*store, &ScanQuery::all("Flag", 10), 10)
            .await
            .is_empty(),
        "a type with nothing stored scans empty"
    );
}

pub async fn scan_since_and_until_bound_last_updated(store: Arc<dyn Store>) {
    let a = create(&*store, patient("Window", "A", &nhs_number(1))).await;
    tick().await;
    let b = create(&*store, patient("Window", "B", &nhs_number(2))).await;
    tick().await;
    let c = create(&*store, patient("Window", "C", &nhs_number(3))).await;
    let window = |after: Option<&ResourceVersion>, until: Option<&ResourceVersion>| ScanQuery {
        updated_after: after.map(|v| v.last_updated),
        updated_until: until.map(|v| v.last_updated),
        ..ScanQuery::all("Patient", 1000)
    };
    assert_eq!(
        scan_ids(&*store, &window(Some(&a), None)).await,
        ids(&[&b.id, &c.id]),
        "after is exclusive"
    );
    assert_eq!(
        scan_ids(&*store, &window(None, Some(&b))).await,
        ids(&[&a.id, &b.id]),
        "until is inclusive"
    );
    assert_eq!(
        scan_ids(&*store, &window(Some(&a), Some(&b))).await,
        ids(&[&b.id])
    );
    // Updated after the window closed: left out, not served in its older version.
    tick().await;
    update(
        &*store,
        &a.id.clone(),
        json!({"resourceType": "Patient", "id": a.id, "active": false}),
    )
    .await;
    assert_eq!(
        scan_ids(&*store, &window(None, Some(&c))).await,
        ids(&[&b.id, &c.id])
    );
}

pub async fn scan_compartment_holds_exactly_the_patients_resources(store: Arc<dyn Store>) {
    let s = &*store;
    let p1 = create(s, patient("Comp", "One", &nhs_number(1))).await.id;
    let p2 = create(s, patient("Comp", "Two", &nhs_number(2))).await.id;
    let p3 = create(s, patient("Comp", "Three", &nhs_number(3))).await.id;
    // A Patient linking to p1 is in p1's compartment.
    let mut linking = patient("Comp", "Linked", &nhs_number(4));
    linking["link"] = json!([{"other": {"reference": format!("Patient/{p1}")}, "type": "seealso"}]);
    let p4 = create(s, linking).await.id;
    let practitioner = create(
        s,
        json!({"resourceType": "Practitioner", "name": [{"family": "Doctor"}]}),
    )
    .await
    .id;
    let r1 = format!("Patient/{p1}");
    let r2 = format!("Patient/{p2}");
    let o1 = create(
        s,
        observation(&r1, "8867-4", "Heart rate", 70.0, "/min", "2024-01-01"),
    )
    .await
    .id;
    let o2 = create(
        s,
        observation(&r2, "8867-4", "Heart rate", 71.0, "/min", "2024-01-02"),
    )
    .await
    .id;
    // In p2's compartment through `performer`, not `subject`.
    let mut by_p2 = observation(&r1, "8480-6", "Systolic", 120.0, "mm[Hg]", "2024-01-03");
    if let Some(o) = by_p2.as_object_mut() {
        o.remove("subject");
    }
    by_p2["performer"] = json!([{"reference": r2}]);
    let o3 = create(s, by_p2).await.id;
    // About no patient at all.
    let mut unattached = observation(&r1, "8480-6", "Systolic", 121.0, "mm[Hg]", "2024-01-04");
    if let Some(o) = unattached.as_object_mut() {
        o.remove("subject");
    }
    let o4 = create(s, unattached).await.id;
    // Deleted: in no compartment any more.
    let o5 = create(
        s,
        observation(&r1, "8867-4", "Heart rate", 72.0, "/min", "2024-01-05"),
    )
    .await
    .id;
    delete(s, "Observation", &o5).await;
    // One appointment with both patients: once in each compartment, once for both.
    let both = create(
        s,
        json!({
            "resourceType": "Appointment",
            "status": "booked",
            "start": "2025-03-01T09:00:00Z",
            "end": "2025-03-01T09:20:00Z",
            "participant": [
                {"actor": {"reference": r1}, "status": "accepted"},
                {"actor": {"reference": r2}, "status": "accepted"},
                {"actor": {"reference": format!("Practitioner/{practitioner}")}, "status": "accepted"}
            ]
        }),
    )
    .await
    .id;
    let solo = create(
        s,
        appointment(
            &r1,
            &format!("Practitioner/{practitioner}"),
            "2025-03-02T09:00:00Z",
            "2025-03-02T09:20:00Z",
        ),
    )
    .await
    .id;

    let cases: Vec<(&str, Compartment, Vec<String>)> = vec![
        ("Observation", patients(&[&p1]), ids(&[&o1])),
        ("Observation", patients(&[&p2]), ids(&[&o2, &o3])),
        ("Observation", patients(&[&p1, &p2]), ids(&[&o1, &o2, &o3])),
        ("Observation", patients(&[&p3]), ids(&[])),
        (
            "Observation",
            Compartment::AnyPatient,
            ids(&[&o1, &o2, &o3]),
        ),
        ("Appointment", patients(&[&p1]), ids(&[&both, &solo])),
        ("Appointment", patients(&[&p2]), ids(&[&both])),
        ("Appointment", patients(&[&p1, &p2]), ids(&[&both, &solo])),
        ("Appointment", Compartment::AnyPatient, ids(&[&both, &solo])),
        ("Patient", patients(&[&p1]), ids(&[&p1, &p4])),
        ("Patient", patients(&[&p2, &p3]), ids(&[&p2, &p3])),
        (
            "Patient",
            Compartment::AnyPatient,
            ids(&[&p1, &p2, &p3, &p4]),
        ),
        ("Practitioner", patients(&[&p1]), ids(&[])),
        ("Practitioner", Compartment::AnyPatient, ids(&[])),
        ("Observation", Compartment::Patients(Vec::new()), ids(&[])),
    ];
    let mut wrong = Vec::new();
    for (ty, compartment, expected) in cases {
        let q = in_compartment(ty, compartment.clone());
        let got = scan_ids(s, &q).await;
        if got != expected {
            wrong.push(format!(
                "{ty} in {compartment:?}: expected {expected:?}, got {got:?}"
            ));
        }
        // Paged one at a time, the same answer.
        let paged = sorted_ids(&scan_all(s, &q, 1).await);
        if paged != got {
            wrong.push(format!(
                "{ty} in {compartment:?} paged by 1: {paged:?}, whole: {got:?}"
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "compartment scans answered wrongly:\n{}",
        wrong.join("\n")
    );
    assert_eq!(
        scan_ids(s, &ScanQuery::all("Observation", 1000)).await,
        ids(&[&o1, &o2, &o3, &o4]),
        "without a compartment: every current Observation, none deleted"
    );
}

pub async fn scan_compartment_of_many_patients_agrees_with_few(store: Arc<dyn Store>) {
    let s = &*store;
    let mut real = Vec::new();
    let mut obs = Vec::new();
    for i in 0..3u32 {
        let id = create(s, patient("Many", &format!("P{i}"), &nhs_number(i)))
            .await
            .id;
        let reference = format!("Patient/{id}");
        for day in 1..=3 {
            let o = observation(
                &reference,
                "8867-4",
                "Heart rate",
                60.0 + f64::from(day),
                "/min",
                &format!("2024-02-0{day}"),
            );
            obs.push(create(s, o).await.id);
        }
        real.push(id);
    }
    let other = create(s, patient("Many", "Outside", &nhs_number(9)))
        .await
        .id;
    create(
        s,
        observation(
            &format!("Patient/{other}"),
            "8867-4",
            "Heart rate",
            90.0,
            "/min",
            "2024-02-09",
        ),
    )
    .await;
    // Past the drive limit: the scan checks each resource instead of starting from the index.
    let mut many: Vec<String> = (0..COMPARTMENT_DRIVE_LIMIT + 5)
        .map(|i| format!("no-such-patient-{i}"))
        .collect();
    many.extend(real.iter().cloned());
    let few = Compartment::Patients(real.clone());
    let lots = Compartment::Patients(many);
    for limit in [1, 2, 1000] {
        let a = sorted_ids(&scan_all(s, &in_compartment("Observation", few.clone()), limit).await);
        let b = sorted_ids(&scan_all(s, &in_compartment("Observation", lots.clone()), limit).await);
        let mut expected = obs.clone();
        expected.sort();
        assert_eq!(a, expected, "few patients, pages of {limit}");
        assert_eq!(b, expected, "many patients, pages of {limit}");
        let pa = sorted_ids(&scan_all(s, &in_compartment("Patient", lots.clone()), limit).await);
        let mut expected_patients = real.clone();
        expected_patients.sort();
        assert_eq!(
            pa, expected_patients,
            "patients among many ids, pages of {limit}"
        );
    }
}

pub async fn scan_of_several_types_is_their_scans_merged_in_store_order(store: Arc<dyn Store>) {
    let s = &*store;
    let p1 = create(s, patient("Merge", "One", &nhs_number(1))).await.id;
    let p2 = create(s, patient("Merge", "Two", &nhs_number(2))).await.id;
    let practitioner = create(
        s,
        json!({"resourceType": "Practitioner", "name": [{"family": "Doctor"}]}),
    )
    .await
    .id;
    let (r1, r2) = (format!("Patient/{p1}"), format!("Patient/{p2}"));
    let mut linking = patient("Merge", "Linked", &nhs_number(3));
    linking["link"] = json!([{"other": {"reference": r1}, "type": "seealso"}]);
    create(s, linking).await;
    for i in 0..4u32 {
        let who = if i % 2 == 0 { &r1 } else { &r2 };
        create(
            s,
            observation(
                who,
                "8867-4",
                "Heart rate",
                60.0 + f64::from(i),
                "/min",
                "2024-03-01",
            ),
        )
        .await;
        create(s, condition(who, "44054006", "Diabetes mellitus type 2")).await;
        create(
            s,
            appointment(
                who,
                &format!("Practitioner/{practitioner}"),
                "2025-04-01T09:00:00Z",
                "2025-04-01T09:10:00Z",
            ),
        )
        .await;
    }
    let types = [
        "Patient",
        "Observation",
        "Appointment",
        "Practitioner",
        "Condition",
    ];
    let many = |c: Option<Compartment>| ScanQuery {
        resource_types: types.iter().map(|t| t.to_string()).collect(),
        compartment: c,
        ..ScanQuery::all("Patient", 1000)
    };
    let mut lots: Vec<String> = (0..COMPARTMENT_DRIVE_LIMIT + 1)
        .map(|i| format!("no-such-patient-{i}"))
        .collect();
    lots.push(p1.clone());
    for compartment in [
        None,
        Some(patients(&[&p1])),
        Some(patients(&[&p1, &p2])),
        Some(Compartment::Patients(lots)),
        Some(Compartment::AnyPatient),
    ] {
        // What each type's own scan gives, merged.
        let mut expected: Vec<ResourceVersion> = Vec::new();
        for t in types {
            let one = ScanQuery {
                compartment: compartment.clone(),
                ..ScanQuery::all(t, 1000)
            };
            expected.extend(scan_all(s, &one, 1000).await);
        }
        let whole = scan_all(s, &many(compartment.clone()), 1000).await;
        assert_eq!(
            sorted_ids(&whole),
            sorted_ids(&expected),
            "several types in {compartment:?}: the union of each type's scan"
        );
        for limit in [1, 3] {
            let paged = scan_all(s, &many(compartment.clone()), limit).await;
            assert_eq!(
                ids_of(&paged),
                ids_of(&whole),
                "several types in {compartment:?}, pages of {limit}: same resources, same order"
            );
        }
        if compartment.is_some() {
            assert!(
                !whole.iter().any(|v| v.resource_type == "Practitioner"),
                "no Practitioner is in a compartment"
            );
        }
    }
    // Store order across types: the first resources stored come first.
    let all = scan_all(s, &many(None), 1000).await;
    assert_eq!(all[0].id, p1);
    assert_eq!(all[1].id, p2);
    assert_eq!(all[2].id, practitioner);
    let none = ScanQuery {
        resource_types: Vec::new(),
        ..ScanQuery::all("Patient", 10)
    };
    assert!(scan_all(s, &none, 10).await.is_empty(), "no types, nothing");
}
