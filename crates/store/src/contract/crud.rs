//! Create, read, vread, update, delete, history, conditional writes, transactions and
//! concurrent writers.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::{json, Value};

use super::*;
use crate::model::{HistoryScope, WriteOp, WriteOutcome};
use crate::write::same_content;
use crate::{Store, StoreError};

fn patient_scope(id: &str) -> HistoryScope {
    HistoryScope::Instance {
        resource_type: "Patient".into(),
        id: id.into(),
    }
}

fn type_scope(t: &str) -> HistoryScope {
    HistoryScope::Type {
        resource_type: t.into(),
    }
}

/// Versions are listed newest first: `lastUpdated` never increases down the list, and the
/// versions of one resource come in descending order.
fn assert_newest_first(versions: &[ResourceVersion]) {
    for pair in versions.windows(2) {
        assert!(
            pair[0].last_updated >= pair[1].last_updated,
            "history must be newest first: {}/{} v{} at {} is listed before {}/{} v{} at {}",
            pair[0].resource_type,
            pair[0].id,
            pair[0].version_id,
            pair[0].last_updated,
            pair[1].resource_type,
            pair[1].id,
            pair[1].version_id,
            pair[1].last_updated
        );
        if pair[0].resource_type == pair[1].resource_type && pair[0].id == pair[1].id {
            assert!(
                pair[0].version_id > pair[1].version_id,
                "versions of one resource are newest first"
            );
        }
    }
}

fn version_list(versions: &[ResourceVersion]) -> Vec<(String, i64)> {
    versions
        .iter()
        .map(|v| (v.id.clone(), v.version_id))
        .collect()
}

pub async fn create_assigns_id_version_1_and_last_updated(store: Arc<dyn Store>) {
    let before = fhir::datetime::now_millis();
    let nhs = nhs_number(1);
    let v = create(
        &*store,
        patient_born("Lovelace", "Ada", &nhs, "1985-12-10", "female"),
    )
    .await;
    let after = fhir::datetime::now_millis();
    assert_eq!(v.resource_type, "Patient");
    assert!(
        fhir::types::is_valid_id(&v.id),
        "the assigned id {:?} must be a valid FHIR id",
        v.id
    );
    assert_eq!(v.version_id, 1);
    assert!(!v.deleted);
    assert!(
        v.last_updated >= before && v.last_updated <= after,
        "lastUpdated {} must be the time of the write (between {before} and {after})",
        v.last_updated
    );
    let stored = body(&v);
    assert_eq!(stored["id"], json!(v.id));
    assert_eq!(stored["meta"]["versionId"], json!("1"));
    assert_eq!(
        stored["meta"]["lastUpdated"],
        json!(fhir::datetime::format_instant(v.last_updated))
    );
    assert_eq!(
        stored["meta"]["profile"],
        json!(["https://fhir.hl7.org.uk/StructureDefinition/UKCore-Patient"]),
        "meta elements the client sent are kept"
    );
    assert_eq!(stored["identifier"][0]["value"], json!(nhs));

    let second = create(&*store, patient("Hopper", "Grace", &nhs_number(2))).await;
    assert_ne!(second.id, v.id, "every create gets a new id");
}

pub async fn read_returns_exactly_the_stored_json(store: Arc<dyn Store>) {
    let input = json!({
        "resourceType": "Patient",
        "identifier": [{"system": NHS_NUMBER, "value": nhs_number(3)}],
        "name": [{"use": "official", "family": "Ní Bhriain", "given": ["Siobhán", "Zoë"], "prefix": ["Dr"]}],
        "telecom": [{"system": "phone", "value": "0113 496 0000", "use": "home"}],
        "gender": "female",
        "birthDate": "1972-02-29",
        "address": [{"line": ["1 Infirmary Street"], "city": "Leeds", "postalCode": "LS1 2JS"}],
        "_birthDate": {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime", "valueDateTime": "1972-02-29T04:05:00+00:00"}]}
    });
    let created = create(&*store, input.clone()).await;
    let Some(got) = read(&*store, "Patient", &created.id).await else {
        panic!("a created resource must be readable");
    };
    assert_eq!(
        got, created,
        "read returns the version create answered, byte for byte"
    );
    let stored = body(&got);
    assert!(
        same_content(&stored, &input),
        "the stored resource is the input plus id and meta: {stored}"
    );
    let keys: Vec<&str> = stored
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    assert_eq!(
        &keys[..3],
        &["resourceType", "id", "meta"],
        "resourceType, id and meta come first"
    );
    // Unicode survives the round trip unescaped and unchanged.
    assert_eq!(stored["name"][0]["given"][0], json!("Siobhán"));
}

pub async fn read_and_vread_of_unknown_resources_are_none(store: Arc<dyn Store>) {
    assert_eq!(read(&*store, "Patient", "no-such-patient").await, None);
    let v = create(&*store, patient("Turing", "Alan", &nhs_number(4))).await;
    assert_eq!(
        vread(&*store, "Patient", &v.id, 2).await,
        None,
        "version 2 does not exist yet"
    );
    assert_eq!(
        read(&*store, "Observation", &v.id).await,
        None,
        "ids are per type"
    );
    assert_eq!(vread(&*store, "Observation", &v.id, 1).await, None);
}

pub async fn vread_returns_every_old_version(store: Arc<dyn Store>) {
    let nhs = nhs_number(5);
    let v1 = create(&*store, patient("Franklin", "Rosalind", &nhs)).await;
    let v2 = update(&*store, &v1.id, patient("Franklin", "Rosalind Elsie", &nhs)).await;
    let v3 = update(&*store, &v1.id, patient("Franklin", "R. E.", &nhs)).await;
    assert_eq!((v2.version_id, v3.version_id), (2, 3));
    assert_eq!(vread(&*store, "Patient", &v1.id, 1).await, Some(v1.clone()));
    assert_eq!(vread(&*store, "Patient", &v1.id, 2).await, Some(v2.clone()));
    assert_eq!(vread(&*store, "Patient", &v1.id, 3).await, Some(v3.clone()));
    assert_eq!(body(&v1)["name"][0]["given"][0], json!("Rosalind"));
    assert_eq!(body(&v2)["meta"]["versionId"], json!("2"));
}

pub async fn update_bumps_the_version_and_keeps_the_old_one(store: Arc<dyn Store>) {
    let nhs = nhs_number(6);
    let v1 = create(&*store, patient("Seacole", "Mary", &nhs)).await;
    tick().await;
    let outcome = store
        .write(update_op(
            &v1.id,
            patient("Seacole", "Mary Jane", &nhs),
            None,
        ))
        .await;
    let Ok(WriteOutcome::Updated {
        version: v2,
        changed: true,
    }) = outcome
    else {
        panic!(
            "an update of an existing resource answers Updated{{changed: true}}, got {outcome:?}"
        );
    };
    assert_eq!(v2.id, v1.id);
    assert_eq!(v2.version_id, 2);
    assert!(
        v2.last_updated > v1.last_updated,
        "the new version has a later lastUpdated"
    );
    assert_eq!(body(&v2)["meta"]["versionId"], json!("2"));
    assert_eq!(read(&*store, "Patient", &v1.id).await, Some(v2));
    assert_eq!(vread(&*store, "Patient", &v1.id, 1).await, Some(v1));
}

pub async fn update_with_matching_if_match_succeeds(store: Arc<dyn Store>) {
    let nhs = nhs_number(7);
    let v1 = create(&*store, patient("Nightingale", "Florence", &nhs)).await;
    let outcome = store
        .write(update_op(
            &v1.id,
            patient("Nightingale", "Flo", &nhs),
            Some(1),
        ))
        .await;
    assert!(
        matches!(&outcome, Ok(WriteOutcome::Updated { version, changed: true }) if version.version_id == 2),
        "If-Match: 1 on version 1 succeeds, got {outcome:?}"
    );
    let outcome = store
        .write(update_op(
            &v1.id,
            patient("Nightingale", "Florence", &nhs),
            Some(2),
        ))
        .await;
    assert!(
        matches!(&outcome, Ok(WriteOutcome::Updated { version, .. }) if version.version_id == 3),
        "If-Match: 2 on version 2 succeeds, got {outcome:?}"
    );
}

pub async fn update_with_stale_if_match_is_a_version_conflict_and_writes_nothing(
    store: Arc<dyn Store>,
) {
    let nhs = nhs_number(8);
    let v1 = create(&*store, patient("Jenner", "Edward", &nhs)).await;
    let v2 = update(&*store, &v1.id, patient("Jenner", "Ed", &nhs)).await;
    let e = expect_err(
        store
            .write(update_op(&v1.id, patient("Jenner", "Teddy", &nhs), Some(1)))
            .await,
        "an update with If-Match naming an old version",
    );
    assert!(
        matches!(
            e.root(),
            StoreError::VersionConflict {
                expected: 1,
                current: 2,
                ..
            }
        ),
        "a stale If-Match is a VersionConflict naming both versions, got {e:?}"
    );
    assert_eq!(
        read(&*store, "Patient", &v1.id).await,
        Some(v2),
        "nothing was written"
    );
    let e = expect_err(
        store
            .write(update_op(
                "not-there-yet",
                patient("Jenner", "Teddy", &nhs),
                Some(1),
            ))
            .await,
        "an update with If-Match of a resource that does not exist",
    );
    assert!(
        matches!(e.root(), StoreError::VersionConflict { .. }),
        "got {e:?}"
    );
    assert_eq!(read(&*store, "Patient", "not-there-yet").await, None);
}

pub async fn update_of_an_unknown_id_creates_it_with_the_client_id(store: Arc<dyn Store>) {
    let outcome = store
        .write(update_op(
            "pat-lister-1",
            patient("Lister", "Joseph", &nhs_number(9)),
            None,
        ))
        .await;
    let Ok(WriteOutcome::Created(v)) = outcome else {
        panic!("an update of an unknown id creates it, got {outcome:?}");
    };
    assert_eq!((v.id.as_str(), v.version_id), ("pat-lister-1", 1));
    assert_eq!(body(&v)["id"], json!("pat-lister-1"));
    assert_eq!(read(&*store, "Patient", "pat-lister-1").await, Some(v));
    // The body may carry the same id.
    let mut with_id = patient("Lister", "Joe", &nhs_number(9));
    with_id["id"] = json!("pat-lister-1");
    let v2 = update(&*store, "pat-lister-1", with_id).await;
    assert_eq!(v2.version_id, 2);
}

pub async fn update_with_a_body_id_other_than_the_target_is_invalid(store: Arc<dyn Store>) {
    let mut p = patient("Snow", "John", &nhs_number(10));
    p["id"] = json!("someone-else");
    let e = expect_err(
        store.write(update_op("john-snow", p, None)).await,
        "an update whose body names another id",
    );
    assert!(matches!(e.root(), StoreError::Invalid(_)), "got {e:?}");
    let e = expect_err(
        store
            .write(update_op(
                "not a valid id!",
                patient("Snow", "John", &nhs_number(10)),
                None,
            ))
            .await,
        "an update to an invalid id",
    );
    assert!(matches!(e.root(), StoreError::Invalid(_)), "got {e:?}");
    assert_eq!(read(&*store, "Patient", "john-snow").await, None);
}

pub async fn identical_update_writes_no_new_version(store: Arc<dyn Store>) {
    let p = patient_born(
        "Fleming",
        "Alexander",
        &nhs_number(11),
        "1881-08-06",
        "male",
    );
    let v1 = create(&*store, p.clone()).await;
    tick().await;
    let outcome = store.write(update_op(&v1.id, p.clone(), None)).await;
    assert!(
        matches!(&outcome, Ok(WriteOutcome::Updated { version, changed: false }) if *version == v1),
        "an update with identical content answers the current version, unchanged; got {outcome:?}"
    );
    // The body as served (with id and meta) is identical content too.
    let outcome = store.write(update_op(&v1.id, body(&v1), Some(1))).await;
    assert!(
        matches!(&outcome, Ok(WriteOutcome::Updated { changed: false, .. })),
        "got {outcome:?}"
    );
    assert_eq!(read(&*store, "Patient", &v1.id).await, Some(v1.clone()));
    assert_eq!(
        vread(&*store, "Patient", &v1.id, 2).await,
        None,
        "no version 2 was written"
    );
    assert_eq!(
        history(&*store, patient_scope(&v1.id), None, 10, 0)
            .await
            .total,
        1
    );
}

pub async fn delete_leaves_a_deleted_version_and_older_versions_readable(store: Arc<dyn Store>) {
    let nhs = nhs_number(12);
    let v1 = create(&*store, patient("Hodgkin", "Dorothy", &nhs)).await;
    let v2 = update(&*store, &v1.id, patient("Hodgkin", "Dorothy Mary", &nhs)).await;
    tick().await;
    let d = delete(&*store, "Patient", &v1.id).await;
    assert_eq!(
        (d.id.as_str(), d.version_id, d.deleted),
        (v1.id.as_str(), 3, true)
    );
    assert!(d.json.is_empty(), "a deletion has no content");
    assert!(d.last_updated > v2.last_updated);
    let Some(current) = read(&*store, "Patient", &v1.id).await else {
        panic!("read after delete shows the deletion, not nothing");
    };
    assert!(
        current.deleted && current.version_id == 3,
        "got {current:?}"
    );
    assert_eq!(vread(&*store, "Patient", &v1.id, 1).await, Some(v1.clone()));
    assert_eq!(vread(&*store, "Patient", &v1.id, 2).await, Some(v2));
    assert_eq!(
        vread(&*store, "Patient", &v1.id, 3)
            .await
            .map(|v| v.deleted),
        Some(true)
    );
}

pub async fn delete_of_nothing_is_deleted_without_a_version(store: Arc<dyn Store>) {
    let op = WriteOp::Delete {
        resource_type: "Patient".into(),
        id: "never-existed".into(),
    };
    let outcome = store.write(op).await;
    assert!(
        matches!(&outcome, Ok(WriteOutcome::Deleted { version: None, .. })),
        "deleting what does not exist is not an error and writes nothing; got {outcome:?}"
    );
    assert_eq!(read(&*store, "Patient", "never-existed").await, None);
    let v = create(&*store, patient("Curie", "Marie", &nhs_number(13))).await;
    delete(&*store, "Patient", &v.id).await;
    let again = WriteOp::Delete {
        resource_type: "Patient".into(),
        id: v.id.clone(),
    };
    let outcome = store.write(again).await;
    assert!(
        matches!(&outcome, Ok(WriteOutcome::Deleted { version: None, .. })),
        "deleting a deleted resource writes nothing; got {outcome:?}"
    );
    assert_eq!(
        history(&*store, patient_scope(&v.id), None, 10, 0)
            .await
            .total,
        2
    );
}

pub async fn update_after_delete_brings_the_resource_back(store: Arc<dyn Store>) {
    let nhs = nhs_number(14);
    let v1 = create(&*store, patient("Harvey", "William", &nhs)).await;
    delete(&*store, "Patient", &v1.id).await;
    let outcome = store
        .write(update_op(&v1.id, patient("Harvey", "Will", &nhs), None))
        .await;
    let version = match &outcome {
        Ok(WriteOutcome::Updated {
            version,
            changed: true,
        })
        | Ok(WriteOutcome::Created(version)) => version.clone(),
        _ => panic!("an update after a delete writes a new version, got {outcome:?}"),
    };
    assert_eq!(
        version.version_id, 3,
        "versions keep counting through the deletion"
    );
    assert!(!version.deleted);
    assert_eq!(
        search_ids(&*store, "Patient", &[("identifier", &nhs)]).await,
        ids(&[&v1.id])
    );
    // Identical content to the version before the deletion is still a new version.
    delete(&*store, "Patient", &v1.id).await;
    let v5 = update(&*store, &v1.id, patient("Harvey", "Will", &nhs)).await;
    assert_eq!(v5.version_id, 5);
}

pub async fn instance_history_is_newest_first_with_total(store: Arc<dyn Store>) {
    let nhs = nhs_number(15);
    let v1 = create(&*store, patient("Pasteur", "Louis", &nhs)).await;
    tick().await;
    update(&*store, &v1.id, patient("Pasteur", "L.", &nhs)).await;
    tick().await;
    update(&*store, &v1.id, patient("Pasteur", "Louis", &nhs)).await;
    tick().await;
    delete(&*store, "Patient", &v1.id).await;
    // Another resource's versions stay out of it.
    create(&*store, patient("Koch", "Robert", &nhs_number(16))).await;
    let page = history(&*store, patient_scope(&v1.id), None, 10, 0).await;
    assert_eq!(page.total, 4);
    assert_eq!(
        page.versions
            .iter()
            .map(|v| v.version_id)
            .collect::<Vec<_>>(),
        vec![4, 3, 2, 1],
        "instance history lists every version, newest first"
    );
    assert!(page.versions[0].deleted && page.versions[0].json.is_empty());
    assert_eq!(page.versions[3], v1);
    assert_newest_first(&page.versions);
}

pub async fn type_and_system_history_are_newest_first_and_honour_since(store: Arc<dyn Store>) {
    let a = create(&*store, patient("Elion", "Gertrude", &nhs_number(17))).await;
    tick().await;
    let o = create(
        &*store,
        observation(
            &format!("Patient/{}", a.id),
            "2339-0",
            "Glucose [Mass/volume] in Blood",
            95.0,
            "mg/dL",
            "2024-03-10T09:30:00+00:00",
        ),
    )
    .await;
    tick().await;
    let since = fhir::datetime::now_millis();
    tick().await;
    let b = create(&*store, patient("Black", "James", &nhs_number(18))).await;
    tick().await;
    let a2 = update(&*store, &a.id, patient("Elion", "Trudy", &nhs_number(17))).await;

    let patients = history(&*store, type_scope("Patient"), None, 50, 0).await;
    assert_eq!(patients.total, 3);
    assert_eq!(
        version_list(&patients.versions),
        vec![(a.id.clone(), 2), (b.id.clone(), 1), (a.id.clone(), 1)],
        "type history holds only that type, newest first"
    );
    assert_newest_first(&patients.versions);

    let all = history(&*store, HistoryScope::System, None, 50, 0).await;
    assert_eq!(all.total, 4);
    assert_eq!(
        version_list(&all.versions),
        vec![
            (a.id.clone(), 2),
            (b.id.clone(), 1),
            (o.id.clone(), 1),
            (a.id.clone(), 1)
        ]
    );

    let recent = history(&*store, type_scope("Patient"), Some(since), 50, 0).await;
    assert_eq!(
        recent.total, 2,
        "_since keeps versions written at or after it"
    );
    assert_eq!(
        version_list(&recent.versions),
        vec![(a.id.clone(), 2), (b.id.clone(), 1)]
    );
    let recent_all = history(&*store, HistoryScope::System, Some(since), 50, 0).await;
    assert_eq!(recent_all.total, 2);
    let exactly = history(&*store, HistoryScope::System, Some(a2.last_updated), 50, 0).await;
    assert_eq!(
        version_list(&exactly.versions),
        vec![(a.id.clone(), 2)],
        "_since is inclusive"
    );
    let none = history(&*store, type_scope("Observation"), Some(since), 50, 0).await;
    assert_eq!((none.total, none.versions.len()), (0, 0));
}

pub async fn history_pages_cover_every_version_once(store: Arc<dyn Store>) {
    let mut written = Vec::new();
    for i in 0..4u32 {
        let nhs = nhs_number(20 + i);
        let v = create(&*store, patient("Page", &format!("Number{i}"), &nhs)).await;
        written.push((v.id.clone(), 1));
        let v2 = update(
            &*store,
            &v.id,
            patient("Page", &format!("Changed{i}"), &nhs),
        )
        .await;
        written.push((v2.id.clone(), 2));
    }
    let mut seen = Vec::new();
    let mut offset = 0;
    loop {
        let page = history(&*store, type_scope("Patient"), None, 3, offset).await;
        assert_eq!(
            page.total, 8,
            "the total counts every version, whatever the page"
        );
        assert!(page.versions.len() <= 3);
        seen.extend(version_list(&page.versions));
        if page.versions.len() < 3 {
            break;
        }
        offset += 3;
    }
    let unique: HashSet<_> = seen.iter().cloned().collect();
    assert_eq!(
        unique.len(),
        seen.len(),
        "no version is on two pages: {seen:?}"
    );
    let mut seen_sorted = seen.clone();
    seen_sorted.sort();
    written.sort();
    assert_eq!(
        seen_sorted, written,
        "the pages together hold every version"
    );
}

fn conditional_create(value: Value, criteria: &[(&str, &str)]) -> WriteOp {
    WriteOp::Create {
        resource: prepared(value),
        if_none_exist: Some(query("Patient", criteria)),
        full_url: None,
    }
}

pub async fn conditional_create_with_no_match_creates(store: Arc<dyn Store>) {
    let nhs = nhs_number(30);
    let criteria = format!("{NHS_NUMBER}|{nhs}");
    let outcome = store
        .write(conditional_create(
            patient("Sanger", "Frederick", &nhs),
            &[("identifier", &criteria)],
        ))
        .await;
    let Ok(WriteOutcome::Created(v)) = outcome else {
        panic!("If-None-Exist matching nothing creates, got {outcome:?}");
    };
    assert_eq!(v.version_id, 1);
    assert_eq!(
        search_ids(&*store, "Patient", &[("identifier", &criteria)]).await,
        ids(&[&v.id])
    );
}

pub async fn conditional_create_with_one_match_returns_it(store: Arc<dyn Store>) {
    let nhs = nhs_number(31);
    let criteria = format!("{NHS_NUMBER}|{nhs}");
    let existing = create(&*store, patient("Crick", "Francis", &nhs)).await;
    let outcome = store
        .write(conditional_create(
            patient("Crick", "Francis Harry", &nhs),
            &[("identifier", &criteria)],
        ))
        .await;
    assert_eq!(
        outcome.ok(),
        Some(WriteOutcome::Existing(existing.clone())),
        "If-None-Exist matching one resource answers it and creates nothing"
    );
    assert_eq!(read(&*store, "Patient", &existing.id).await, Some(existing));
    assert_eq!(
        history(&*store, type_scope("Patient"), None, 10, 0)
            .await
            .total,
        1
    );
}

pub async fn conditional_create_with_two_matches_is_refused(store: Arc<dyn Store>) {
    create(&*store, patient("Watson", "James", &nhs_number(32))).await;
    create(&*store, patient("Watson", "Janet", &nhs_number(33))).await;
    let e = expect_err(
        store
            .write(conditional_create(
                patient("Watson", "John", &nhs_number(34)),
                &[("family", "Watson")],
            ))
            .await,
        "a conditional create whose criteria match two resources",
    );
    assert!(
        matches!(e.root(), StoreError::MultipleMatches { count: 2 }),
        "got {e:?}"
    );
    assert_eq!(
        search_ids(&*store, "Patient", &[("family", "watson")])
            .await
            .len(),
        2,
        "nothing was created"
    );
}

fn conditional_update(value: Value, criteria: &[(&str, &str)]) -> WriteOp {
    WriteOp::ConditionalUpdate {
        criteria: query("Patient", criteria),
        resource: prepared(value),
        if_match: None,
        full_url: None,
    }
}

pub async fn conditional_update_with_no_match_creates(store: Arc<dyn Store>) {
    let nhs = nhs_number(35);
    let criteria = format!("{NHS_NUMBER}|{nhs}");
    let outcome = store
        .write(conditional_update(
            patient("Banting", "Frederick", &nhs),
            &[("identifier", &criteria)],
        ))
        .await;
    let Ok(WriteOutcome::Created(v)) = outcome else {
        panic!("a conditional update matching nothing creates, got {outcome:?}");
    };
    assert_eq!(v.version_id, 1);
    assert_eq!(
        search_ids(&*store, "Patient", &[("identifier", &criteria)]).await,
        ids(&[&v.id])
    );
}

pub async fn conditional_update_with_one_match_updates_it(store: Arc<dyn Store>) {
    let nhs = nhs_number(36);
    let criteria = format!("{NHS_NUMBER}|{nhs}");
    let existing = create(&*store, patient("Best", "Charles", &nhs)).await;
    let other = create(&*store, patient("Best", "George", &nhs_number(37))).await;
    let outcome = store
        .write(conditional_update(
            patient("Best", "Charles Herbert", &nhs),
            &[("identifier", &criteria)],
        ))
        .await;
    let Ok(WriteOutcome::Updated {
        version,
        changed: true,
    }) = outcome
    else {
        panic!("a conditional update matching one resource updates it, got {outcome:?}");
    };
    assert_eq!(
        (version.id.as_str(), version.version_id),
        (existing.id.as_str(), 2)
    );
    assert_eq!(
        body(&version)["name"][0]["given"][0],
        json!("Charles Herbert")
    );
    assert_eq!(
        read(&*store, "Patient", &other.id).await,
        Some(other),
        "the other resource is untouched"
    );
}

pub async fn conditional_update_with_two_matches_is_refused(store: Arc<dyn Store>) {
    let a = create(&*store, patient("Salk", "Jonas", &nhs_number(38))).await;
    let b = create(&*store, patient("Salk", "Donna", &nhs_number(39))).await;
    let e = expect_err(
        store
            .write(conditional_update(
                patient("Salk", "Peter", &nhs_number(40)),
                &[("family", "Salk")],
            ))
            .await,
        "a conditional update whose criteria match two resources",
    );
    assert!(
        matches!(e.root(), StoreError::MultipleMatches { count: 2 }),
        "got {e:?}"
    );
    assert_eq!(read(&*store, "Patient", &a.id).await, Some(a));
    assert_eq!(read(&*store, "Patient", &b.id).await, Some(b));
}

pub async fn conditional_delete_with_no_one_or_two_matches(store: Arc<dyn Store>) {
    let delete_where = |pairs: &[(&str, &str)]| WriteOp::ConditionalDelete {
        criteria: query("Patient", pairs),
    };
    let outcome = store.write(delete_where(&[("family", "Nobody")])).await;
    assert!(
        matches!(&outcome, Ok(WriteOutcome::Deleted { version: None, .. })),
        "a conditional delete matching nothing does nothing; got {outcome:?}"
    );

    let a = create(&*store, patient("Harrison", "John", &nhs_number(41))).await;
    let b = create(&*store, patient("Harrison", "George", &nhs_number(42))).await;
    let e = expect_err(
        store.write(delete_where(&[("family", "Harrison")])).await,
        "a conditional delete matching two resources",
    );
    assert!(
        matches!(e.root(), StoreError::MultipleMatches { count: 2 }),
        "got {e:?}"
    );
    assert_eq!(
        read(&*store, "Patient", &a.id).await,
        Some(a.clone()),
        "nothing was deleted"
    );
    assert_eq!(read(&*store, "Patient", &b.id).await, Some(b.clone()));

    let outcome = store
        .write(delete_where(&[("given", "George"), ("family", "Harrison")]))
        .await;
    match &outcome {
        Ok(WriteOutcome::Deleted {
            id,
            version: Some(v),
            ..
        }) => {
            assert_eq!(
                (id.as_str(), v.version_id, v.deleted),
                (b.id.as_str(), 2, true)
            );
        }
        _ => panic!("a conditional delete matching one resource deletes it, got {outcome:?}"),
    }
    assert!(read(&*store, "Patient", &b.id)
        .await
        .is_some_and(|v| v.deleted));
    assert_eq!(read(&*store, "Patient", &a.id).await, Some(a));
}

pub async fn transaction_is_all_or_nothing(store: Arc<dyn Store>) {
    let nhs = nhs_number(43);
    let existing = create(&*store, patient("Baker", "Josephine", &nhs)).await;
    let current = update(&*store, &existing.id, patient("Baker", "Jo", &nhs)).await;
    let new_nhs = nhs_number(44);
    let before = history(&*store, HistoryScope::System, None, 50, 0).await;

    let ops = vec![
        create_op(patient("Harvey", "Jane", &new_nhs)),
        update_op(&existing.id, patient("Baker", "Josie", &nhs), Some(1)),
    ];
    let e = expect_err(
        store.transaction(ops).await,
        "a transaction whose second entry has a stale If-Match",
    );
    assert!(
        matches!(&e, StoreError::Entry { index: 1, source } if matches!(**source, StoreError::VersionConflict { .. })),
        "the error names entry 1 and its VersionConflict, got {e:?}"
    );
    assert_eq!(
        search_ids(&*store, "Patient", &[("identifier", &new_nhs)]).await,
        Vec::<String>::new(),
        "the first entry's create was rolled back"
    );
    assert_eq!(read(&*store, "Patient", &existing.id).await, Some(current));
    let after = history(&*store, HistoryScope::System, None, 50, 0).await;
    assert_eq!(after, before, "no version of either entry remains");

    // The same transaction with the right version commits both.
    let ops = vec![
        create_op(patient("Harvey", "Jane", &new_nhs)),
        update_op(&existing.id, patient("Baker", "Josie", &nhs), Some(2)),
    ];
    let outcomes = match store.transaction(ops).await {
        Ok(o) => o,
        Err(e) => panic!("the corrected transaction should commit: {e}"),
    };
    assert_eq!(outcomes.len(), 2);
    assert!(matches!(&outcomes[0], WriteOutcome::Created(_)));
    assert!(
        matches!(&outcomes[1], WriteOutcome::Updated { version, .. } if version.version_id == 3)
    );
    assert_eq!(
        search_ids(&*store, "Patient", &[("identifier", &new_nhs)])
            .await
            .len(),
        1
    );
}

pub async fn transaction_rewrites_urn_uuid_references_to_the_new_ids(store: Arc<dyn Store>) {
    let patient_url = format!("urn:uuid:{}", crate::write::new_id());
    let nhs = nhs_number(45);
    let mut obs = observation(
        &patient_url,
        "15074-8",
        "Glucose [Moles/volume] in Blood",
        5.4,
        "mmol/L",
        "2024-03-10T09:30:00Z",
    );
    obs["performer"] = json!([{"reference": patient_url}]);
    let appt = appointment(
        &patient_url,
        "Practitioner/dr-who",
        "2024-04-02T09:00:00+01:00",
        "2024-04-02T09:15:00+01:00",
    );
    // The referring entries come first: references to later entries are rewritten too.
    let ops = vec![
        WriteOp::Create {
            resource: prepared(obs),
            if_none_exist: None,
            full_url: Some(format!("urn:uuid:{}", crate::write::new_id())),
        },
        create_op(appt),
        WriteOp::Create {
            resource: prepared(patient("Wiles", "Andrew", &nhs)),
            if_none_exist: None,
            full_url: Some(patient_url.clone()),
        },
    ];
    let outcomes = match store.transaction(ops).await {
        Ok(o) => o,
        Err(e) => panic!("the transaction should commit: {e}"),
    };
    let [WriteOutcome::Created(o), WriteOutcome::Created(a), WriteOutcome::Created(p)] =
        outcomes.as_slice()
    else {
        panic!("three creates answer three Created, in entry order: {outcomes:?}");
    };
    assert_eq!(p.resource_type, "Patient");
    let patient_ref = format!("Patient/{}", p.id);
    let stored = body(o);
    assert_eq!(
        stored["subject"]["reference"],
        json!(patient_ref),
        "urn:uuid: became Type/id"
    );
    assert_eq!(stored["performer"][0]["reference"], json!(patient_ref));
    assert_eq!(read(&*store, "Observation", &o.id).await.as_ref(), Some(o));
    assert_eq!(
        body(a)["participant"][0]["actor"]["reference"],
        json!(patient_ref)
    );
    assert_eq!(
        body(a)["participant"][1]["actor"]["reference"],
        json!("Practitioner/dr-who"),
        "other references are left alone"
    );
    // The rewritten references are what is indexed.
    assert_eq!(
        search_ids(&*store, "Observation", &[("subject", &patient_ref)]).await,
        ids(&[&o.id])
    );
    assert_eq!(
        search_ids(&*store, "Observation", &[("patient", &p.id)]).await,
        ids(&[&o.id])
    );
    assert_eq!(
        search_ids(&*store, "Appointment", &[("patient", &patient_ref)]).await,
        ids(&[&a.id])
    );
    assert_eq!(
        search_ids(&*store, "Observation", &[("subject", &patient_url)]).await,
        Vec::<String>::new()
    );
    let nhs_chain = format!("{NHS_NUMBER}|{nhs}");
    assert_eq!(
        search_ids(
            &*store,
            "Observation",
            &[("patient.identifier", &nhs_chain)]
        )
        .await,
        ids(&[&o.id])
    );
}

pub async fn transaction_answers_each_entry_in_order(store: Arc<dyn Store>) {
    let found_nhs = nhs_number(46);
    let found = create(&*store, patient("Fry", "Elizabeth", &found_nhs)).await;
    let gone = create(&*store, patient("Fry", "Joseph", &nhs_number(47))).await;
    let criteria = format!("{NHS_NUMBER}|{found_nhs}");
    let ops = vec![
        create_op(patient("Fry", "Betsy", &nhs_number(50))),
        WriteOp::Delete {
            resource_type: "Patient".into(),
            id: gone.id.clone(),
        },
        update_op("fry-2", patient("Fry", "Richard", &nhs_number(51)), None),
        conditional_create(
            patient("Fry", "Elizabeth", &found_nhs),
            &[("identifier", &criteria)],
        ),
        WriteOp::Delete {
            resource_type: "Patient".into(),
            id: "fry-never".into(),
        },
    ];
    let outcomes = match store.transaction(ops).await {
        Ok(o) => o,
        Err(e) => panic!("the transaction should commit: {e}"),
    };
    assert_eq!(outcomes.len(), 5, "one outcome per entry: {outcomes:?}");
    assert!(
        matches!(&outcomes[0], WriteOutcome::Created(v) if body(v)["name"][0]["given"][0] == "Betsy"),
        "{outcomes:?}"
    );
    assert!(
        matches!(&outcomes[1], WriteOutcome::Deleted { version: Some(v), .. } if v.id == gone.id),
        "{outcomes:?}"
    );
    assert!(
        matches!(&outcomes[2], WriteOutcome::Created(v) if v.id == "fry-2"),
        "{outcomes:?}"
    );
    assert_eq!(outcomes[3], WriteOutcome::Existing(found), "{outcomes:?}");
    assert!(
        matches!(&outcomes[4], WriteOutcome::Deleted { version: None, .. }),
        "{outcomes:?}"
    );
    assert!(read(&*store, "Patient", &gone.id)
        .await
        .is_some_and(|v| v.deleted));
    assert_eq!(
        search_ids(&*store, "Patient", &[("family", "fry")])
            .await
            .len(),
        3
    );
}

pub async fn concurrent_updates_with_the_same_if_match_let_exactly_one_win(store: Arc<dyn Store>) {
    let nhs = nhs_number(48);
    let v1 = create(&*store, patient("Race", "Start", &nhs)).await;
    let mut tasks = Vec::new();
    for i in 0..16 {
        let store = store.clone();
        let id = v1.id.clone();
        let nhs = nhs.clone();
        tasks.push(tokio::spawn(async move {
            let op = update_op(&id, patient("Race", &format!("Runner{i}"), &nhs), Some(1));
            (i, store.write(op).await)
        }));
    }
    let mut winners = Vec::new();
    let mut conflicts = 0;
    for t in tasks {
        let (i, result) = match t.await {
            Ok(r) => r,
            Err(e) => panic!("an updating task failed: {e}"),
        };
        match result {
            Ok(WriteOutcome::Updated {
                version,
                changed: true,
            }) => winners.push((i, version)),
            Err(e)
                if matches!(
                    e.root(),
                    StoreError::VersionConflict {
                        expected: 1,
                        current: 2,
                        ..
                    }
                ) =>
            {
                conflicts += 1
            }
            other => {
                panic!("each racing update either wins or is a VersionConflict, got {other:?}")
            }
        }
    }
    assert_eq!(winners.len(), 1, "exactly one racing update wins");
    assert_eq!(conflicts, 15);
    let (i, version) = &winners[0];
    assert_eq!(version.version_id, 2);
    let current = read(&*store, "Patient", &v1.id).await;
    assert_eq!(
        current.as_ref(),
        Some(version),
        "the winner's version is current"
    );
    assert_eq!(
        body(version)["name"][0]["given"][0],
        json!(format!("Runner{i}"))
    );
    assert_eq!(
        history(&*store, patient_scope(&v1.id), None, 50, 0)
            .await
            .total,
        2
    );
}

pub async fn concurrent_creates_are_all_stored(store: Arc<dyn Store>) {
    let mut tasks = Vec::new();
    for i in 0..64u32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let nhs = nhs_number(100 + i * 3);
            let outcome = store
                .write(create_op(patient("Many", &format!("Person{i}"), &nhs)))
                .await;
            (nhs, outcome)
        }));
    }
    let mut created = Vec::new();
    for t in tasks {
        match t.await {
            Ok((nhs, Ok(WriteOutcome::Created(v)))) => created.push((nhs, v)),
            Ok((_, other)) => panic!("every concurrent create succeeds, got {other:?}"),
            Err(e) => panic!("a creating task failed: {e}"),
        }
    }
    let unique: HashSet<&str> = created.iter().map(|(_, v)| v.id.as_str()).collect();
    assert_eq!(unique.len(), 64, "64 creates make 64 distinct ids");
    for (nhs, v) in &created {
        assert_eq!(read(&*store, "Patient", &v.id).await.as_ref(), Some(v));
        assert_eq!(
            search_ids(&*store, "Patient", &[("identifier", nhs)]).await,
            ids(&[&v.id])
        );
    }
    let all = search(
        &*store,
        "Patient",
        &[("_total", "accurate"), ("_count", "10")],
    )
    .await;
    assert_eq!(all.total, Some(64));
    assert_eq!(
        search_ids(&*store, "Patient", &[("family", "many")])
            .await
            .len(),
        64
    );
}

pub async fn concurrent_conditional_creates_make_one_resource(store: Arc<dyn Store>) {
    let nhs = nhs_number(49);
    let criteria = format!("{NHS_NUMBER}|{nhs}");
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        let op = conditional_create(patient("Once", "Only", &nhs), &[("identifier", &criteria)]);
        tasks.push(tokio::spawn(async move { store.write(op).await }));
    }
    let mut created = Vec::new();
    let mut existing = Vec::new();
    for t in tasks {
        match t.await {
            Ok(Ok(WriteOutcome::Created(v))) => created.push(v.id),
            Ok(Ok(WriteOutcome::Existing(v))) => existing.push(v.id),
            Ok(other) => {
                panic!("a retried conditional create answers Created or Existing, got {other:?}")
            }
            Err(e) => panic!("a creating task failed: {e}"),
        }
    }
    assert_eq!(
        created.len(),
        1,
        "exactly one of the racing conditional creates creates"
    );
    assert!(
        existing.iter().all(|id| *id == created[0]),
        "the others answer the one created"
    );
    assert_eq!(
        search_ids(&*store, "Patient", &[("identifier", &criteria)]).await,
        created
    );
}

pub async fn server_state_puts_replaces_lists_by_prefix_and_deletes(store: Arc<dyn Store>) {
    let get = |k: &'static str| {
        let store = store.clone();
        async move { store.state_get(k).await.expect("state_get") }
    };
    assert_eq!(get("import/a").await, None);
    for (k, v) in [
        ("import/a", "1"),
        ("import/b", "2"),
        ("import0", "outside"),
        ("export/x", "3"),
        ("import/a", "10"),
    ] {
        store.state_put(k, v).await.expect("state_put");
    }
    assert_eq!(
        get("import/a").await.as_deref(),
        Some("10"),
        "a put replaces"
    );
    let listed = store.state_list("import/").await.expect("state_list");
    assert_eq!(
        listed,
        vec![
            ("import/a".to_string(), "10".to_string()),
            ("import/b".to_string(), "2".to_string())
        ],
        "only keys with the prefix, in key order"
    );
    assert_eq!(store.state_list("").await.expect("state_list").len(), 4);
    store.state_delete("import/a").await.expect("state_delete");
    store
        .state_delete("never/there")
        .await
        .expect("deleting nothing is fine");
    assert_eq!(get("import/a").await, None);
    assert_eq!(store.state_list("import/").await.expect("list").len(), 1);
}
