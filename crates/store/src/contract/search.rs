//! Every search feature, on small hand-made populations whose answers are worked out by hand.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::Store;

fn r(list: &[&String]) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

fn none() -> Vec<String> {
    Vec::new()
}

pub async fn search_token_code_system_and_identifier_forms(store: Arc<dyn Store>) {
    let nhs1 = nhs_number(1);
    let nhs2 = nhs_number(2);
    let p1 = create(
        &*store,
        patient_born("Khan", "Amina", &nhs1, "1990-04-01", "female"),
    )
    .await
    .id;
    let mut with_mrn = patient_born("Okafor", "Chidi", &nhs2, "1984-07-19", "male");
    if let Some(a) = with_mrn["identifier"].as_array_mut() {
        a.push(json!({"system": "https://leeds-hospital.example/Id/mrn", "value": "MRN123"}));
    }
    let p2 = create(&*store, with_mrn).await.id;
    let mut unsystemed = patient("Nowak", "Piotr", "TEMP-7");
    unsystemed["identifier"] = json!([{"value": "TEMP-7"}]);
    let p3 = create(&*store, unsystemed).await.id;

    let nhs_of = |n: &str| format!("{NHS_NUMBER}|{n}");
    let mrn_system_nhs1 = format!("https://leeds-hospital.example/Id/mrn|{nhs1}");
    let nhs_system = format!("{NHS_NUMBER}|");
    let none_system_nhs1 = format!("|{nhs1}");
    expect_searches(
        &*store,
        "Patient",
        &[
            ("identifier", &nhs_of(&nhs1), r(&[&p1])),
            ("identifier", &nhs2, r(&[&p2])),
            ("identifier", "MRN123", r(&[&p2])),
            (
                "identifier",
                "https://leeds-hospital.example/Id/mrn|MRN123",
                r(&[&p2]),
            ),
            ("identifier", &nhs_system, r(&[&p1, &p2])),
            ("identifier", "|TEMP-7", r(&[&p3])),
            ("identifier", "TEMP-7", r(&[&p3])),
            ("identifier", &none_system_nhs1, none()),
            ("identifier", &mrn_system_nhs1, none()),
            ("identifier", "mrn123", none()),
            ("gender", "female", r(&[&p1])),
            ("gender", "male", r(&[&p2])),
            ("gender", "female,male", r(&[&p1, &p2])),
            ("gender", "other", none()),
            ("active", "true", r(&[&p1, &p2, &p3])),
        ],
    )
    .await;

    let subject = format!("Patient/{p1}");
    let glucose = create(
        &*store,
        observation(
            &subject,
            "15074-8",
            "Glucose [Moles/volume] in Blood",
            5.4,
            "mmol/L",
            "2024-03-10T09:30:00Z",
        ),
    )
    .await
    .id;
    let mut hba1c = observation(
        &subject,
        "4548-4",
        "Hemoglobin A1c/Hemoglobin.total in Blood",
        48.0,
        "mmol/mol",
        "2024-03-10T09:30:00Z",
    );
    if let Some(a) = hba1c["code"]["coding"].as_array_mut() {
        a.push(json!({"system": SNOMED, "code": "1107481000000106", "display": "HbA1c level"}));
    }
    let hba1c = create(&*store, hba1c).await.id;
    let mut local = observation(
        &subject,
        "X-1",
        "Local test",
        1.0,
        "1",
        "2024-03-10T09:30:00Z",
    );
    local["code"] = json!({"coding": [{"code": "X-1"}], "text": "Local test"});
    let local = create(&*store, local).await.id;

    expect_searches(
        &*store,
        "Observation",
        &[
            ("code", "15074-8", r(&[&glucose])),
            ("code", "http://loinc.org|15074-8", r(&[&glucose])),
            ("code", "http://snomed.info/sct|15074-8", none()),
            ("code", "http://loinc.org|", r(&[&glucose, &hba1c])),
            (
                "code",
                "http://snomed.info/sct|1107481000000106",
                r(&[&hba1c]),
            ),
            ("code", "|X-1", r(&[&local])),
            ("code", "X-1", r(&[&local])),
            ("code", "|15074-8", none()),
            (
                "code",
                "http://loinc.org|15074-8,http://loinc.org|4548-4",
                r(&[&glucose, &hba1c]),
            ),
            ("status", "final", r(&[&glucose, &hba1c, &local])),
            (
                "category",
                "http://terminology.hl7.org/CodeSystem/observation-category|laboratory",
                r(&[&glucose, &hba1c, &local]),
            ),
        ],
    )
    .await;
}

pub async fn search_token_not_excludes_resources_with_any_matching_value(store: Arc<dyn Store>) {
    let female = create(
        &*store,
        patient_born("Ito", "Hana", &nhs_number(1), "1991-01-01", "female"),
    )
    .await
    .id;
    let male = create(
        &*store,
        patient_born("Ito", "Kenji", &nhs_number(2), "1992-01-01", "male"),
    )
    .await
    .id;
    let unknown = create(&*store, patient("Ito", "Sora", &nhs_number(3)))
        .await
        .id;
    let subject = format!("Patient/{female}");
    let glucose = create(
        &*store,
        observation(
            &subject,
            "15074-8",
            "Glucose",
            5.4,
            "mmol/L",
            "2024-03-10T09:30:00Z",
        ),
    )
    .await
    .id;
    let mut two_codes = observation(
        &subject,
        "4548-4",
        "HbA1c",
        48.0,
        "mmol/mol",
        "2024-03-10T09:30:00Z",
    );
    if let Some(a) = two_codes["code"]["coding"].as_array_mut() {
        a.push(json!({"system": SNOMED, "code": "1107481000000106"}));
    }
    let hba1c = create(&*store, two_codes).await.id;
    let nhs1 = format!("{NHS_NUMBER}|{}", nhs_number(1));

    expect_searches(
        &*store,
        "Patient",
        &[
            ("gender:not", "male", r(&[&female, &unknown])),
            ("gender:not", "male,female", r(&[&unknown])),
            ("identifier:not", &nhs1, r(&[&male, &unknown])),
        ],
    )
    .await;
    expect_searches(
        &*store,
        "Observation",
        &[
            // hba1c has a SNOMED coding too, but one of its codes matches: excluded.
            ("code:not", "http://loinc.org|4548-4", r(&[&glucose])),
            ("code:not", "http://loinc.org|", none()),
            ("code:not", "http://snomed.info/sct|", r(&[&glucose])),
            ("code:not", "718-7", r(&[&glucose, &hba1c])),
        ],
    )
    .await;
    // :not combines with other parameters.
    assert_eq!(
        search_ids(
            &*store,
            "Patient",
            &[("family", "ito"), ("gender:not", "female")]
        )
        .await,
        r(&[&male, &unknown])
    );
}

pub async fn search_string_prefix_ignores_case_and_accents(store: Arc<dyn Store>) {
    let s1 = create(&*store, patient("Smith", "Zoë", &nhs_number(1)))
        .await
        .id;
    let s2 = create(&*store, patient("Smyth", "Zoe", &nhs_number(2)))
        .await
        .id;
    let s3 = create(&*store, patient("O'Brien-Smith", "Åsa", &nhs_number(3)))
        .await
        .id;
    let s4 = create(&*store, patient("SMITHSON", "John", &nhs_number(4)))
        .await
        .id;
    expect_searches(
        &*store,
        "Patient",
        &[
            ("family", "smi", r(&[&s1, &s4])),
            ("family", "SMITH", r(&[&s1, &s4])),
            ("family", "Smithson", r(&[&s4])),
            ("family", "smithsonian", none()),
            ("family", "o'brien", r(&[&s3])),
            ("family", "brien", none()),
            ("given", "zoe", r(&[&s1, &s2])),
            ("given", "ZOË", r(&[&s1, &s2])),
            ("given", "asa", r(&[&s3])),
            ("given", "Å", r(&[&s3])),
            ("name", "smy", r(&[&s2])),
            ("name", "john", r(&[&s4])),
            ("name", "zo", r(&[&s1, &s2])),
            ("family", "smith,smyth", r(&[&s1, &s2, &s4])),
        ],
    )
    .await;
}

pub async fn search_string_exact_and_contains(store: Arc<dyn Store>) {
    let s1 = create(&*store, patient("Smith", "Zoë", &nhs_number(1)))
        .await
        .id;
    let s2 = create(&*store, patient("Smyth", "Zoe", &nhs_number(2)))
        .await
        .id;
    let s3 = create(&*store, patient("O'Brien-Smith", "Åsa", &nhs_number(3)))
        .await
        .id;
    let s4 = create(&*store, patient("SMITHSON", "John", &nhs_number(4)))
        .await
        .id;
    let percent = create(&*store, patient("100%_Real", "Test", &nhs_number(5)))
        .await
        .id;
    let _ = &s2;
    expect_searches(
        &*store,
        "Patient",
        &[
            ("family:exact", "Smith", r(&[&s1])),
            ("family:exact", "smith", none()),
            ("family:exact", "Smit", none()),
            ("given:exact", "Zoë", r(&[&s1])),
            ("given:exact", "Zoe", r(&[&s2])),
            ("family:contains", "smith", r(&[&s1, &s3, &s4])),
            ("family:contains", "BRIEN-S", r(&[&s3])),
            ("family:contains", "thso", r(&[&s4])),
            ("given:contains", "oe", r(&[&s1, &s2])),
            // LIKE wildcards in the value are literal.
            ("family:contains", "%_", r(&[&percent])),
            ("family:contains", "_", r(&[&percent])),
            ("family:contains", "0%", r(&[&percent])),
            ("family:contains", "h%", none()),
        ],
    )
    .await;
}

pub async fn search_date_prefixes_on_dates(store: Arc<dyn Store>) {
    // A: a day; B: a month; C: a year; D: no birth date.
    let a = create(
        &*store,
        patient_born("Date", "Day", &nhs_number(1), "1980-05-17", "female"),
    )
    .await
    .id;
    let b = create(
        &*store,
        patient_born("Date", "Month", &nhs_number(2), "1980-05", "female"),
    )
    .await
    .id;
    let c = create(
        &*store,
        patient_born("Date", "Year", &nhs_number(3), "1981", "female"),
    )
    .await
    .id;
    let _d = create(&*store, patient("Date", "None", &nhs_number(4)))
        .await
        .id;
    expect_searches(
        &*store,
        "Patient",
        &[
            ("birthdate", "1980-05-17", r(&[&a])),
            ("birthdate", "eq1980-05-17", r(&[&a])),
            ("birthdate", "eq1980-05", r(&[&a, &b])),
            ("birthdate", "1980", r(&[&a, &b])),
            ("birthdate", "ne1980-05", r(&[&c])),
            ("birthdate", "ne1980-05-17", r(&[&b, &c])),
            ("birthdate", "gt1980-05-17", r(&[&b, &c])),
            ("birthdate", "gt1980-12-31", r(&[&c])),
            ("birthdate", "lt1980-05-17", r(&[&b])),
            ("birthdate", "lt1981-06", r(&[&a, &b, &c])),
            ("birthdate", "ge1980-05-17", r(&[&a, &b, &c])),
            ("birthdate", "ge1981", r(&[&c])),
            ("birthdate", "le1980-05-17", r(&[&a, &b])),
            ("birthdate", "le1980-05", r(&[&a, &b])),
            ("birthdate", "sa1980-05-17", r(&[&c])),
            ("birthdate", "sa1980", r(&[&c])),
            ("birthdate", "eb1981-01-01", r(&[&a, &b])),
            ("birthdate", "eb1980-05-17", none()),
            ("birthdate", "1980-05-17,1981", r(&[&a, &c])),
            ("birthdate", "1979", none()),
        ],
    )
    .await;
    assert_eq!(
        search_ids(
            &*store,
            "Patient",
            &[("birthdate", "ge1980"), ("birthdate", "lt1980-05-10")]
        )
        .await,
        r(&[&b]),
        "two date parameters must both hold"
    );
}

pub async fn search_date_prefixes_on_datetimes_with_time_zones(store: Arc<dyn Store>) {
    let subject = "Patient/someone";
    let at =
        |effective: &str| observation(subject, "8867-4", "Heart rate", 72.0, "/min", effective);
    // O1 at 09:30:00 UTC; O2 on the 10th in UTC-2, which is the 11th in UTC; O3 a period
    // across midnight; O4 a whole month.
    let o1 = create(&*store, at("2024-03-10T09:30:00+00:00")).await.id;
    let o2 = create(&*store, at("2024-03-10T23:30:00-02:00")).await.id;
    let mut period = at("2024-03-10T00:00:00Z");
    if let Some(o) = period.as_object_mut() {
        o.remove("effectiveDateTime");
        o.insert(
            "effectivePeriod".into(),
            json!({"start": "2024-03-09T22:00:00Z", "end": "2024-03-10T02:00:00Z"}),
        );
    }
    let o3 = create(&*store, period).await.id;
    let o4 = create(&*store, at("2024-03")).await.id;
    expect_searches(
        &*store,
        "Observation",
        &[
            ("date", "2024-03-10", r(&[&o1])),
            ("date", "2024-03-11", r(&[&o2])),
            ("date", "2024-03", r(&[&o1, &o2, &o3, &o4])),
            ("date", "2024-03-10T09:30Z", r(&[&o1])),
            ("date", "2024-03-10T10:30+01:00", r(&[&o1])),
            ("date", "2024-03-10T23:30:00-02:00", r(&[&o2])),
            ("date", "gt2024-03-10T09:30:00Z", r(&[&o2, &o4])),
            ("date", "lt2024-03-10T00:00:00Z", r(&[&o3, &o4])),
            ("date", "sa2024-03-10T02:00:00Z", r(&[&o1, &o2])),
            ("date", "eb2024-03-10T09:30:00Z", r(&[&o3])),
            ("date", "ne2024-03-10", r(&[&o2, &o3, &o4])),
            ("date", "ge2024-03-11", r(&[&o2, &o4])),
            ("date", "le2024-03-09", r(&[&o4])),
            ("date", "le2024-03-10", r(&[&o1, &o3, &o4])),
            ("date", "2024-04", none()),
        ],
    )
    .await;
}

pub async fn search_date_prefixes_on_periods(store: Arc<dyn Store>) {
    let subject = "Patient/someone";
    let with_onset = |key: &str, value: serde_json::Value| {
        let mut c = condition(subject, "44054006", "Diabetes mellitus type 2");
        c[key] = value;
        c
    };
    let c1 = create(
        &*store,
        with_onset(
            "onsetPeriod",
            json!({"start": "2023-01-10", "end": "2023-02-20"}),
        ),
    )
    .await
    .id;
    let c2 = create(&*store, with_onset("onsetDateTime", json!("2023-02-01")))
        .await
        .id;
    // Still going: no end.
    let c3 = create(
        &*store,
        with_onset("onsetPeriod", json!({"start": "2022-11-05"})),
    )
    .await
    .id;
    let _c4 = create(
        &*store,
        condition(subject, "38341003", "Hypertensive disorder"),
    )
    .await
    .id;
    expect_searches(
        &*store,
        "Condition",
        &[
            ("onset-date", "2023", r(&[&c1, &c2])),
            ("onset-date", "2023-01", none()),
            ("onset-date", "2023-02-01", r(&[&c2])),
            ("onset-date", "gt2023-02-01", r(&[&c1, &c3])),
            ("onset-date", "lt2023-01-11", r(&[&c1, &c3])),
            ("onset-date", "sa2023-01-09", r(&[&c1, &c2])),
            ("onset-date", "eb2023-02-21", r(&[&c1, &c2])),
            ("onset-date", "eb2023-02-20", r(&[&c2])),
            ("onset-date", "ge2023-03-01", r(&[&c3])),
            ("onset-date", "le2022-12", r(&[&c3])),
            ("onset-date", "ne2023", r(&[&c3])),
            ("onset-date", "gt2030", r(&[&c3])),
        ],
    )
    .await;
}

pub async fn search_reference_by_type_and_id_by_id_and_by_type_modifier(store: Arc<dyn Store>) {
    let p1 = create(&*store, patient("Ref", "One", &nhs_number(1)))
        .await
        .id;
    let p2 = create(&*store, patient("Ref", "Two", &nhs_number(2)))
        .await
        .id;
    let obs = |subject: &str| {
        observation(
            subject,
            "8867-4",
            "Heart rate",
            72.0,
            "/min",
            "2024-03-10T09:30:00Z",
        )
    };
    let r1 = create(&*store, obs(&format!("Patient/{p1}"))).await.id;
    let r2 = create(&*store, obs(&format!("Patient/{p2}"))).await.id;
    let mut no_subject = obs("Patient/x");
    if let Some(o) = no_subject.as_object_mut() {
        o.remove("subject");
    }
    let r3 = create(&*store, no_subject).await.id;
    let r4 = create(&*store, obs("https://other.example/fhir/Patient/9"))
        .await
        .id;
    let p1_ref = format!("Patient/{p1}");
    let p2_ref = format!("Patient/{p2}");
    let both = format!("{p1_ref},{p2_ref}");
    let group_ref = format!("Group/{p1}");
    expect_searches(
        &*store,
        "Observation",
        &[
            ("subject", &p1_ref, r(&[&r1])),
            ("subject", &p1, r(&[&r1])),
            ("subject:Patient", &p1, r(&[&r1])),
            ("subject:Group", &p1, none()),
            ("subject", &group_ref, none()),
            ("patient", &p2, r(&[&r2])),
            ("patient", &p2_ref, r(&[&r2])),
            ("subject", &both, r(&[&r1, &r2])),
            ("subject", "https://other.example/fhir/Patient/9", r(&[&r4])),
            ("subject:missing", "true", r(&[&r3])),
        ],
    )
    .await;
}

pub async fn search_quantity_prefixes_precision_and_units(store: Arc<dyn Store>) {
    let subject = "Patient/someone";
    let q1 = create(
        &*store,
        observation(
            subject,
            "15074-8",
            "Glucose",
            5.4,
            "mmol/L",
            "2024-03-10T09:30:00Z",
        ),
    )
    .await
    .id;
    let q2 = create(
        &*store,
        observation(
            subject,
            "15074-8",
            "Glucose",
            5.45,
            "mmol/L",
            "2024-03-10T09:30:00Z",
        ),
    )
    .await
    .id;
    let q3 = create(
        &*store,
        observation(
            subject,
            "2339-0",
            "Glucose",
            100.0,
            "mg/dL",
            "2024-03-10T09:30:00Z",
        ),
    )
    .await
    .id;
    let mut unit_only = observation(
        subject,
        "15074-8",
        "Glucose",
        7.2,
        "mmol/L",
        "2024-03-10T09:30:00Z",
    );
    unit_only["valueQuantity"] = json!({"value": 7.2, "unit": "mmol/L"});
    let q4 = create(&*store, unit_only).await.id;
    let q5 = create(
        &*store,
        observation(
            subject,
            "15074-8",
            "Glucose",
            5.35,
            "mmol/L",
            "2024-03-10T09:30:00Z",
        ),
    )
    .await
    .id;
    expect_searches(
        &*store,
        "Observation",
        &[
            // 5.4 means [5.35, 5.45).
            ("value-quantity", "5.4", r(&[&q1, &q5])),
            ("value-quantity", "5.40", r(&[&q1])),
            ("value-quantity", "5.45", r(&[&q2])),
            ("value-quantity", "5", r(&[&q1, &q2, &q5])),
            ("value-quantity", "gt5.4", r(&[&q2, &q3, &q4])),
            ("value-quantity", "ge5.4", r(&[&q1, &q2, &q3, &q4])),
            ("value-quantity", "lt7.2", r(&[&q1, &q2, &q5])),
            ("value-quantity", "le7.2", r(&[&q1, &q2, &q4, &q5])),
            ("value-quantity", "ne5.4", r(&[&q2, &q3, &q4])),
            ("value-quantity", "sa7", r(&[&q3, &q4])),
            ("value-quantity", "eb5.4", r(&[&q5])),
            (
                "value-quantity",
                "5.4|http://unitsofmeasure.org|mmol/L",
                r(&[&q1, &q5]),
            ),
            (
                "value-quantity",
                "5.4|http://unitsofmeasure.org|mg/dL",
                none(),
            ),
            (
                "value-quantity",
                "gt5|http://unitsofmeasure.org|mmol/L",
                r(&[&q1, &q2, &q5]),
            ),
            (
                "value-quantity",
                "gt5|http://unitsofmeasure.org|mg/dL",
                r(&[&q3]),
            ),
            ("value-quantity", "gt5||mmol/L", r(&[&q1, &q2, &q4, &q5])),
            ("value-quantity", "5.4,100", r(&[&q1, &q3, &q5])),
        ],
    )
    .await;
}

pub async fn search_uri_matches_the_whole_uri(store: Arc<dyn Store>) {
    let questionnaire = |url: &str, title: &str| {
        json!({
            "resourceType": "Questionnaire",
            "url": url,
            "title": title,
            "status": "active",
            "item": [{"linkId": "1", "text": "Over the last two weeks…", "type": "choice"}]
        })
    };
    let phq = create(
        &*store,
        questionnaire("https://portico.example/Questionnaire/phq-9", "PHQ-9"),
    )
    .await
    .id;
    let gad = create(
        &*store,
        questionnaire("https://portico.example/Questionnaire/gad-7", "GAD-7"),
    )
    .await
    .id;
    expect_searches(
        &*store,
        "Questionnaire",
        &[
            ("url", "https://portico.example/Questionnaire/phq-9", r(&[&phq])),
            ("url", "https://portico.example/Questionnaire/phq-9,https://portico.example/Questionnaire/gad-7", r(&[&phq, &gad])),
            ("url", "https://portico.example/Questionnaire", none()),
            ("url", "https://portico.example/questionnaire/phq-9", none()),
        ],
    )
    .await;
}

pub async fn search_missing_true_and_false(store: Arc<dyn Store>) {
    let born = create(
        &*store,
        patient_born("Miss", "Born", &nhs_number(1), "2001-02-03", "other"),
    )
    .await
    .id;
    let unborn = create(&*store, patient("Miss", "Unknown", &nhs_number(2)))
        .await
        .id;
    let mut nameless = patient("x", "x", &nhs_number(3));
    if let Some(o) = nameless.as_object_mut() {
        o.remove("name");
    }
    let nameless = create(&*store, nameless).await.id;
    expect_searches(
        &*store,
        "Patient",
        &[
            ("birthdate:missing", "true", r(&[&unborn, &nameless])),
            ("birthdate:missing", "false", r(&[&born])),
            ("gender:missing", "true", r(&[&unborn, &nameless])),
            ("gender:missing", "false", r(&[&born])),
            ("family:missing", "true", r(&[&nameless])),
            ("family:missing", "false", r(&[&born, &unborn])),
            ("identifier:missing", "true", none()),
        ],
    )
    .await;
    let subject = format!("Patient/{born}");
    let with_value = create(
        &*store,
        observation(
            &subject,
            "8867-4",
            "Heart rate",
            72.0,
            "/min",
            "2024-03-10T09:30:00Z",
        ),
    )
    .await
    .id;
    let mut without = observation(
        &subject,
        "8867-4",
        "Heart rate",
        72.0,
        "/min",
        "2024-03-10T09:30:00Z",
    );
    if let Some(o) = without.as_object_mut() {
        o.remove("valueQuantity");
        o.insert(
            "dataAbsentReason".into(),
            json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason", "code": "not-performed"}]}),
        );
    }
    let without = create(&*store, without).await.id;
    expect_searches(
        &*store,
        "Observation",
        &[
            ("value-quantity:missing", "true", r(&[&without])),
            ("value-quantity:missing", "false", r(&[&with_value])),
            ("subject:missing", "false", r(&[&with_value, &without])),
        ],
    )
    .await;
}

pub async fn search_by_id_and_last_updated(store: Arc<dyn Store>) {
    let a = create(&*store, patient("When", "First", &nhs_number(1))).await;
    tick().await;
    let between = fhir::datetime::now_millis();
    tick().await;
    let b = create(&*store, patient("When", "Second", &nhs_number(2))).await;
    let c = create(&*store, patient("When", "Third", &nhs_number(3))).await;
    let both = format!("{},{}", a.id, b.id);
    let t = fhir::datetime::format_instant(between);
    let gt = format!("gt{t}");
    let lt = format!("lt{t}");
    let a_exactly = fhir::datetime::format_instant(a.last_updated);
    let ge_a = format!("ge{a_exactly}");
    expect_searches(
        &*store,
        "Patient",
        &[
            ("_id", &a.id, r(&[&a.id])),
            ("_id", &both, r(&[&a.id, &b.id])),
            ("_id", "nobody", none()),
            ("_lastUpdated", &gt, r(&[&b.id, &c.id])),
            ("_lastUpdated", &lt, r(&[&a.id])),
            ("_lastUpdated", &a_exactly, r(&[&a.id])),
            ("_lastUpdated", &ge_a, r(&[&a.id, &b.id, &c.id])),
            ("_lastUpdated", "ge2020", r(&[&a.id, &b.id, &c.id])),
            ("_lastUpdated", "lt2020", none()),
        ],
    )
    .await;
    assert_eq!(
        search_ids(&*store, "Patient", &[("_id", &both), ("_lastUpdated", &gt)]).await,
        r(&[&b.id])
    );
}

pub async fn search_values_are_alternatives_and_parameters_all_apply(store: Arc<dyn Store>) {
    let a = create(
        &*store,
        patient_born("Alt", "Ann", &nhs_number(1), "1970-01-01", "female"),
    )
    .await
    .id;
    let b = create(
        &*store,
        patient_born("Alt", "Bob", &nhs_number(2), "1980-01-01", "male"),
    )
    .await
    .id;
    let c = create(
        &*store,
        patient_born("Other", "Cat", &nhs_number(3), "1990-01-01", "female"),
    )
    .await
    .id;
    assert_eq!(
        search_ids(&*store, "Patient", &[("given", "ann,bob,cat")]).await,
        r(&[&a, &b, &c])
    );
    assert_eq!(
        search_ids(
            &*store,
            "Patient",
            &[("given", "ann,bob,cat"), ("gender", "female")]
        )
        .await,
        r(&[&a, &c])
    );
    assert_eq!(
        search_ids(
            &*store,
            "Patient",
            &[
                ("family", "alt"),
                ("gender", "female"),
                ("birthdate", "lt1980")
            ]
        )
        .await,
        r(&[&a])
    );
    assert_eq!(
        search_ids(
            &*store,
            "Patient",
            &[("family", "alt"), ("family", "other")]
        )
        .await,
        none()
    );
    // An escaped comma is part of the value, not a separator.
    let comma = create(&*store, patient("Smith, Jr", "Dan", &nhs_number(4)))
        .await
        .id;
    assert_eq!(
        search_ids(&*store, "Patient", &[("family:exact", r"Smith\, Jr")]).await,
        r(&[&comma])
    );
}

pub async fn search_chain_through_patient_identifier(store: Arc<dyn Store>) {
    let p1 = create(&*store, patient("Chain", "One", "9990000018"))
        .await
        .id;
    let p2 = create(&*store, patient("Chain", "Two", &nhs_number(2)))
        .await
        .id;
    let a1 = create(
        &*store,
        appointment(
            &format!("Patient/{p1}"),
            "Practitioner/gp-1",
            "2024-04-02T09:00:00+01:00",
            "2024-04-02T09:15:00+01:00",
        ),
    )
    .await
    .id;
    let a2 = create(
        &*store,
        appointment(
            &format!("Patient/{p2}"),
            "Practitioner/gp-1",
            "2024-04-02T09:15:00+01:00",
            "2024-04-02T09:30:00+01:00",
        ),
    )
    .await
    .id;
    let p2_nhs = format!("{NHS_NUMBER}|{}", nhs_number(2));
    expect_searches(
        &*store,
        "Appointment",
        &[
            (
                "patient.identifier",
                "https://fhir.nhs.uk/Id/nhs-number|9990000018",
                r(&[&a1]),
            ),
            ("patient.identifier", &p2_nhs, r(&[&a2])),
            (
                "patient.identifier",
                "https://fhir.nhs.uk/Id/nhs-number|9990000000",
                none(),
            ),
            ("patient.family", "chain", r(&[&a1, &a2])),
            ("patient.given", "two", r(&[&a2])),
            ("actor:Patient.given", "one", r(&[&a1])),
            ("patient._id", &p1, r(&[&a1])),
        ],
    )
    .await;
    // A chain only reaches live targets.
    delete(&*store, "Patient", &p1).await;
    assert_eq!(
        search_ids(
            &*store,
            "Appointment",
            &[(
                "patient.identifier",
                "https://fhir.nhs.uk/Id/nhs-number|9990000018"
            )]
        )
        .await,
        none()
    );
    // And the target's current values.
    update(&*store, &p2, patient("Renamed", "Two", &nhs_number(2))).await;
    assert_eq!(
        search_ids(&*store, "Appointment", &[("patient.family", "chain")]).await,
        none()
    );
    assert_eq!(
        search_ids(&*store, "Appointment", &[("patient.family", "renamed")]).await,
        r(&[&a2])
    );
}

pub async fn search_chain_with_a_type_modifier(store: Arc<dyn Store>) {
    let ada = create(
        &*store,
        patient_born("Lovelace", "Ada", &nhs_number(1), "1985-12-10", "female"),
    )
    .await
    .id;
    let alan = create(
        &*store,
        patient_born("Turing", "Alan", &nhs_number(2), "1982-06-23", "male"),
    )
    .await
    .id;
    let obs = |p: &str, v: f64| {
        observation(
            &format!("Patient/{p}"),
            "15074-8",
            "Glucose",
            v,
            "mmol/L",
            "2024-03-10T09:30:00Z",
        )
    };
    let o_ada = create(&*store, obs(&ada, 5.4)).await.id;
    let o_alan = create(&*store, obs(&alan, 6.1)).await.id;
    let mut to_device = obs(&ada, 5.0);
    to_device["subject"] = json!({"reference": format!("Device/{ada}")});
    let _o_device = create(&*store, to_device).await.id;
    expect_searches(
        &*store,
        "Observation",
        &[
            ("subject:Patient.name", "lovelace", r(&[&o_ada])),
            ("subject:Patient.name", "ADA", r(&[&o_ada])),
            (
                "subject:Patient.name",
                "turing,lovelace",
                r(&[&o_ada, &o_alan]),
            ),
            ("subject:Patient.birthdate", "lt1984", r(&[&o_alan])),
            ("subject:Patient.gender", "female", r(&[&o_ada])),
            ("patient.name:exact", "Turing", r(&[&o_alan])),
            ("subject:Patient.name", "grace", none()),
        ],
    )
    .await;
    assert_eq!(
        search_ids(
            &*store,
            "Observation",
            &[
                ("subject:Patient.name", "lovelace"),
                ("value-quantity", "gt5")
            ]
        )
        .await,
        r(&[&o_ada])
    );
    assert_eq!(
        search_ids(
            &*store,
            "Observation",
            &[
                ("subject:Patient.name", "lovelace"),
                ("value-quantity", "gt6")
            ]
        )
        .await,
        none()
    );
}

pub async fn search_count_pages_with_has_more_and_offset_without_overlap(store: Arc<dyn Store>) {
    let mut all = Vec::new();
    for i in 0..7u32 {
        all.push(
            create(
                &*store,
                patient("Paged", &format!("P{i}"), &nhs_number(i + 1)),
            )
            .await
            .id,
        );
    }
    all.sort();
    for sort in [None, Some("_id"), Some("-given"), Some("-_lastUpdated")] {
        let mut pairs = vec![("family", "paged"), ("_count", "3")];
        if let Some(s) = sort {
            pairs.push(("_sort", s));
        }
        let mut seen = Vec::new();
        for (offset, expected_len, expected_more) in
            [("0", 3, true), ("3", 3, true), ("6", 1, false)]
        {
            let mut p = pairs.clone();
            p.push(("_offset", offset));
            let page = search(&*store, "Patient", &p).await;
            assert_eq!(
                page.matches.len(),
                expected_len,
                "page at offset {offset} of {pairs:?}"
            );
            assert_eq!(
                page.has_more, expected_more,
                "has_more at offset {offset} of {pairs:?}"
            );
            seen.extend(ids_of(&page.matches));
        }
        let unique: HashSet<&String> = seen.iter().collect();
        assert_eq!(
            unique.len(),
            7,
            "no resource is on two pages of {pairs:?}: {seen:?}"
        );
        seen.sort();
        assert_eq!(seen, all, "the pages of {pairs:?} cover every match");
    }
    let exact = search(&*store, "Patient", &[("family", "paged"), ("_count", "7")]).await;
    assert_eq!(
        (exact.matches.len(), exact.has_more),
        (7, false),
        "a page that holds the rest has no next page"
    );
    let past = search(
        &*store,
        "Patient",
        &[("family", "paged"), ("_count", "3"), ("_offset", "9")],
    )
    .await;
    assert_eq!((past.matches.len(), past.has_more), (0, false));
}

pub async fn search_sort_by_several_keys_and_descending(store: Arc<dyn Store>) {
    let mk = |family: &str, given: &str, n: u32, birth: Option<&str>| {
        let mut p = patient(family, given, &nhs_number(n));
        if let Some(b) = birth {
            p["birthDate"] = json!(b);
        }
        p
    };
    let adams_90 = create(&*store, mk("Adams", "A", 1, Some("1990-01-01")))
        .await
        .id;
    tick().await;
    let adams_85 = create(&*store, mk("Adams", "B", 2, Some("1985-06-01")))
        .await
        .id;
    tick().await;
    let baker_70 = create(&*store, mk("Baker", "C", 3, Some("1970-03-03")))
        .await
        .id;
    tick().await;
    let baker_00 = create(&*store, mk("baker", "D", 4, Some("2000-12-12")))
        .await
        .id;
    tick().await;
    let clark = create(&*store, mk("Clark", "E", 5, None)).await.id;

    let order = |pairs: Vec<(&'static str, &'static str)>| {
        let store = store.clone();
        async move { ids_of(&search(&*store, "Patient", &pairs).await.matches) }
    };
    assert_eq!(
        order(vec![("_sort", "family,-birthdate")]).await,
        vec![
            adams_90.clone(),
            adams_85.clone(),
            baker_00.clone(),
            baker_70.clone(),
            clark.clone()
        ],
        "family ascending (ignoring case), then birth date descending"
    );
    assert_eq!(
        order(vec![("_sort", "-family,birthdate")]).await,
        vec![
            clark.clone(),
            baker_70.clone(),
            baker_00.clone(),
            adams_85.clone(),
            adams_90.clone()
        ]
    );
    assert_eq!(
        order(vec![("_sort", "birthdate")]).await,
        vec![
            baker_70.clone(),
            adams_85.clone(),
            adams_90.clone(),
            baker_00.clone(),
            clark.clone()
        ],
        "resources without a value sort last"
    );
    assert_eq!(
        order(vec![("_sort", "-birthdate")]).await,
        vec![
            baker_00.clone(),
            adams_90.clone(),
            adams_85.clone(),
            baker_70.clone(),
            clark.clone()
        ],
        "resources without a value sort last, descending too"
    );
    assert_eq!(
        order(vec![("_sort", "-_lastUpdated")]).await,
        vec![
            clark.clone(),
            baker_00.clone(),
            baker_70.clone(),
            adams_85.clone(),
            adams_90.clone()
        ]
    );
    let mut by_id = vec![
        adams_90.clone(),
        adams_85.clone(),
        baker_70.clone(),
        baker_00.clone(),
        clark.clone(),
    ];
    by_id.sort();
    assert_eq!(order(vec![("_sort", "_id")]).await, by_id);
    by_id.reverse();
    assert_eq!(order(vec![("_sort", "-_id")]).await, by_id);
    // Sorting applies before paging.
    assert_eq!(
        order(vec![
            ("_sort", "family,-birthdate"),
            ("_count", "2"),
            ("_offset", "2")
        ])
        .await,
        vec![baker_00, baker_70]
    );
}

pub async fn search_include_adds_each_referenced_resource_once(store: Arc<dyn Store>) {
    let p1 = create(&*store, patient("Inc", "One", &nhs_number(1)))
        .await
        .id;
    let p2 = create(&*store, patient("Inc", "Two", &nhs_number(2)))
        .await
        .id;
    let p3 = create(&*store, patient("Inc", "Gone", &nhs_number(3)))
        .await
        .id;
    let obs = |p: &str, code: &str| {
        observation(
            &format!("Patient/{p}"),
            code,
            "Test",
            1.0,
            "1",
            "2024-03-10T09:30:00Z",
        )
    };
    let o1 = create(&*store, obs(&p1, "2339-0")).await.id;
    let o2 = create(&*store, obs(&p1, "2339-0")).await.id;
    let o3 = create(&*store, obs(&p2, "718-7")).await.id;
    let o4 = create(&*store, obs(&p3, "2339-0")).await.id;
    delete(&*store, "Patient", &p3).await;
    let mut panel = obs(&p1, "24331-1");
    panel["hasMember"] = json!([{"reference": format!("Observation/{o1}")}, {"reference": format!("Observation/{o3}")}]);
    let panel = create(&*store, panel).await.id;

    let included = |res: &SearchResult| {
        let mut v: Vec<(String, String)> = res
            .included
            .iter()
            .map(|v| (v.resource_type.clone(), v.id.clone()))
            .collect();
        v.sort();
        v
    };
    let glucose = search(
        &*store,
        "Observation",
        &[("code", "2339-0"), ("_include", "Observation:subject")],
    )
    .await;
    assert_eq!(
        r(&ids_of(&glucose.matches).iter().collect::<Vec<_>>()),
        r(&[&o1, &o2, &o4])
    );
    assert_eq!(
        included(&glucose),
        vec![("Patient".to_string(), p1.clone())],
        "the patient two matches point to is included once; the deleted patient not at all"
    );
    let typed = search(
        &*store,
        "Observation",
        &[("_id", &o3), ("_include", "Observation:subject:Patient")],
    )
    .await;
    assert_eq!(included(&typed), vec![("Patient".to_string(), p2.clone())]);
    let both = search(
        &*store,
        "Observation",
        &[
            ("_id", &format!("{o1},{o3}")),
            ("_include", "Observation:subject"),
            ("_include", "Observation:patient"),
        ],
    )
    .await;
    let mut expected = vec![
        ("Patient".to_string(), p1.clone()),
        ("Patient".to_string(), p2.clone()),
    ];
    expected.sort();
    assert_eq!(
        included(&both),
        expected,
        "two include parameters reaching one resource add it once"
    );
    // A resource already among the matches is not repeated among the included.
    let members = search(
        &*store,
        "Observation",
        &[
            ("_id", &format!("{panel},{o1}")),
            ("_include", "Observation:has-member"),
        ],
    )
    .await;
    assert_eq!(
        included(&members),
        vec![("Observation".to_string(), o3.clone())]
    );
    // Without _include nothing is added.
    assert!(search(&*store, "Observation", &[("_id", &o1)])
        .await
        .included
        .is_empty());
}

pub async fn search_revinclude_adds_referring_resources_once_without_deleted(
    store: Arc<dyn Store>,
) {
    let p1 = create(&*store, patient("Rev", "One", &nhs_number(1)))
        .await
        .id;
    let p2 = create(&*store, patient("Rev", "Two", &nhs_number(2)))
        .await
        .id;
    let obs = |p: &str| {
        observation(
            &format!("Patient/{p}"),
            "8867-4",
            "Heart rate",
            70.0,
            "/min",
            "2024-03-10T09:30:00Z",
        )
    };
    let o1 = create(&*store, obs(&p1)).await.id;
    let o2 = create(&*store, obs(&p1)).await.id;
    let o3 = create(&*store, obs(&p2)).await.id;
    let gone = create(&*store, obs(&p1)).await.id;
    delete(&*store, "Observation", &gone).await;
    let a1 = create(
        &*store,
        appointment(
            &format!("Patient/{p1}"),
            "Practitioner/gp-1",
            "2024-04-02T09:00:00Z",
            "2024-04-02T09:15:00Z",
        ),
    )
    .await
    .id;

    let included = |res: &SearchResult| {
        let mut v: Vec<(String, String)> = res
            .included
            .iter()
            .map(|v| (v.resource_type.clone(), v.id.clone()))
            .collect();
        v.sort();
        v
    };
    let obs_of = |ids: &[&String]| {
        let mut v: Vec<(String, String)> = ids
            .iter()
            .map(|i| ("Observation".to_string(), i.to_string()))
            .collect();
        v.sort();
        v
    };
    let one = search(
        &*store,
        "Patient",
        &[
            ("_id", &p1),
            ("_revinclude", "Observation:subject"),
            ("_revinclude", "Observation:patient"),
        ],
    )
    .await;
    assert_eq!(ids_of(&one.matches), vec![p1.clone()]);
    assert_eq!(
        included(&one),
        obs_of(&[&o1, &o2]),
        "each referring Observation once, the deleted one not at all"
    );
    let both = search(
        &*store,
        "Patient",
        &[
            ("family", "rev"),
            ("_revinclude", "Observation:subject"),
            ("_revinclude", "Appointment:patient"),
        ],
    )
    .await;
    let mut expected = obs_of(&[&o1, &o2, &o3]);
    expected.push(("Appointment".to_string(), a1.clone()));
    expected.sort();
    assert_eq!(included(&both), expected);
    // Only what refers to the page's matches.
    let page = search(
        &*store,
        "Patient",
        &[("_id", &p2), ("_revinclude", "Observation:subject")],
    )
    .await;
    assert_eq!(included(&page), obs_of(&[&o3]));
    // A referring resource updated to point elsewhere no longer comes along.
    update(&*store, &o2, obs(&p2)).await;
    let one = search(
        &*store,
        "Patient",
        &[("_id", &p1), ("_revinclude", "Observation:subject")],
    )
    .await;
    assert_eq!(included(&one), obs_of(&[&o1]));
}

pub async fn search_total_accurate_and_summary_count(store: Arc<dyn Store>) {
    for i in 0..5u32 {
        create(
            &*store,
            patient("Counted", &format!("N{i}"), &nhs_number(i + 1)),
        )
        .await;
    }
    create(&*store, patient("Other", "X", &nhs_number(9))).await;
    let gone = create(&*store, patient("Counted", "Gone", &nhs_number(10)))
        .await
        .id;
    delete(&*store, "Patient", &gone).await;

    let page = search(
        &*store,
        "Patient",
        &[
            ("family", "counted"),
            ("_total", "accurate"),
            ("_count", "2"),
        ],
    )
    .await;
    assert_eq!(
        page.total,
        Some(5),
        "_total=accurate counts every match, not the page; deletions excluded"
    );
    assert_eq!(page.matches.len(), 2);
    assert!(page.has_more);
    let counted = search(
        &*store,
        "Patient",
        &[("family", "counted"), ("_summary", "count")],
    )
    .await;
    assert_eq!(counted.total, Some(5));
    assert!(
        counted.matches.is_empty() && counted.included.is_empty(),
        "_summary=count returns only the total"
    );
    let plain = search(&*store, "Patient", &[("family", "counted")]).await;
    assert_eq!(plain.total, None, "no total unless asked for");
    let nothing = search(
        &*store,
        "Patient",
        &[("family", "nobody"), ("_total", "accurate")],
    )
    .await;
    assert_eq!(
        (nothing.total, nothing.matches.len(), nothing.has_more),
        (Some(0), 0, false)
    );
}

pub async fn search_never_matches_a_deleted_resource(store: Arc<dyn Store>) {
    let nhs = nhs_number(1);
    let p = create(
        &*store,
        patient_born("Deleted", "Dee", &nhs, "1950-05-05", "female"),
    )
    .await
    .id;
    let keep = create(&*store, patient("Kept", "Kay", &nhs_number(2)))
        .await
        .id;
    let o = create(
        &*store,
        observation(
            &format!("Patient/{p}"),
            "8867-4",
            "Heart rate",
            60.0,
            "/min",
            "2024-03-10T09:30:00Z",
        ),
    )
    .await
    .id;
    delete(&*store, "Patient", &p).await;
    delete(&*store, "Observation", &o).await;
    let p_ref = format!("Patient/{p}");
    for (ty, pairs) in [
        ("Patient", vec![("identifier", nhs.as_str())]),
        ("Patient", vec![("_id", p.as_str())]),
        ("Patient", vec![("family", "deleted")]),
        ("Patient", vec![("birthdate", "1950")]),
        ("Patient", vec![("gender:not", "male")]),
        ("Patient", vec![("birthdate:missing", "false")]),
        ("Patient", vec![("_lastUpdated", "ge2020")]),
        ("Observation", vec![("subject", p_ref.as_str())]),
        ("Observation", vec![("code", "8867-4")]),
        ("Observation", vec![("value-quantity:missing", "false")]),
    ] {
        let got = search_ids(&*store, ty, &pairs).await;
        assert!(
            !got.contains(&p) && !got.contains(&o),
            "{ty}?{pairs:?} matched a deleted resource: {got:?}"
        );
    }
    assert_eq!(
        search_ids(&*store, "Patient", &[("gender:not", "male")]).await,
        r(&[&keep])
    );
    let counted = search(&*store, "Patient", &[("_summary", "count")]).await;
    assert_eq!(counted.total, Some(1));
}

pub async fn search_matches_only_the_current_version_after_update(store: Arc<dyn Store>) {
    let nhs = nhs_number(1);
    let p = create(
        &*store,
        patient_born("Before", "Bea", &nhs, "1960-01-01", "female"),
    )
    .await
    .id;
    let new_nhs = nhs_number(2);
    let mut after = patient_born("After", "Bea", &new_nhs, "1961-02-02", "female");
    if let Some(o) = after.as_object_mut() {
        o.remove("gender");
    }
    update(&*store, &p, after).await;
    expect_searches(
        &*store,
        "Patient",
        &[
            ("family", "before", none()),
            ("family", "after", r(&[&p])),
            ("identifier", &nhs, none()),
            ("identifier", &new_nhs, r(&[&p])),
            ("birthdate", "1960", none()),
            ("birthdate", "1961-02-02", r(&[&p])),
            ("gender", "female", none()),
            ("gender:missing", "true", r(&[&p])),
            ("given", "bea", r(&[&p])),
        ],
    )
    .await;
}

pub async fn search_quantity_beyond_fifteen_decimals_counts_fifteen(store: Arc<dyn Store>) {
    let subject = "Patient/someone";
    let at = |value: f64| {
        observation(
            subject,
            "15074-8",
            "Glucose",
            value,
            "mmol/L",
            "2024-03-10T09:30:00Z",
        )
    };
    let five = create(&*store, at(5.0)).await.id;
    let five_four = create(&*store, at(5.4)).await.id;
    let just_below = create(&*store, at(4.9999)).await.id;
    let large = create(&*store, at(1234.0)).await.id;
    // A double holds no more than about 16 significant digits: 400 written decimals mean the
    // same as 15, a range of ±5e-16 around the value, which holds the value itself.
    let zeros = "0".repeat(400);
    let five_long = format!("5.{zeros}");
    let not_five_long = format!("ne5.{zeros}");
    let five_four_long = format!("5.4{zeros}");
    let just_below_long = format!("4.9999{zeros}");
    let large_long = format!("1234.{zeros}");
    let ge_five_long = format!("ge5.{zeros}|http://unitsofmeasure.org|mmol/L");
    expect_searches(
        &*store,
        "Observation",
        &[
            ("value-quantity", &five_long, r(&[&five])),
            (
                "value-quantity",
                &not_five_long,
                r(&[&five_four, &just_below, &large]),
            ),
            ("value-quantity", &five_four_long, r(&[&five_four])),
            ("value-quantity", &just_below_long, r(&[&just_below])),
            ("value-quantity", &large_long, r(&[&large])),
            (
                "value-quantity",
                &ge_five_long,
                r(&[&five, &five_four, &large]),
            ),
        ],
    )
    .await;
}

pub async fn search_revinclude_past_its_limit_is_cut_short_and_says_so(store: Arc<dyn Store>) {
    let p = create(&*store, patient("Many", "Results", &nhs_number(1)))
        .await
        .id;
    let subject = format!("Patient/{p}");
    for _ in 0..3 {
        create(
            &*store,
            observation(
                &subject,
                "8867-4",
                "Heart rate",
                70.0,
                "/min",
                "2024-03-10T09:30:00Z",
            ),
        )
        .await;
    }
    let pairs = [("_id", p.as_str()), ("_revinclude", "Observation:subject")];
    let run = |limit: usize| {
        let mut q = query("Patient", &pairs);
        q.revinclude_limit = limit;
        let store = store.clone();
        async move {
            match store.search(&q).await {
                Ok(r) => r,
                Err(e) => panic!("search with _revinclude limited to {limit} failed: {e}"),
            }
        }
    };
    let cut = run(2).await;
    assert_eq!(ids_of(&cut.matches), vec![p.clone()]);
    assert_eq!(
        cut.included.len(),
        2,
        "a _revinclude stops at the query's limit"
    );
    assert_eq!(
        cut.warnings.len(),
        1,
        "a _revinclude cut short says so: {:?}",
        cut.warnings
    );
    assert!(
        cut.warnings[0].contains("Observation:subject") && cut.warnings[0].contains(" 2 "),
        "the warning names the _revinclude and the limit: {}",
        cut.warnings[0]
    );
    let whole = run(3).await;
    assert_eq!(whole.included.len(), 3);
    assert!(
        whole.warnings.is_empty(),
        "exactly the limit is not cut short: {:?}",
        whole.warnings
    );
}

pub async fn search_count_zero_gives_only_the_total_and_the_deepest_offset_runs(
    store: Arc<dyn Store>,
) {
    for i in 0..3u32 {
        create(
            &*store,
            patient("Zero", &format!("N{i}"), &nhs_number(i + 1)),
        )
        .await;
    }
    let counted = search(
        &*store,
        "Patient",
        &[("family", "zero"), ("_count", "0"), ("_total", "accurate")],
    )
    .await;
    assert_eq!(
        (counted.total, counted.matches.len(), counted.has_more),
        (Some(3), 0, false),
        "_count=0 with _total=accurate: the total and no matches"
    );
    let bare = search(&*store, "Patient", &[("family", "zero"), ("_count", "0")]).await;
    assert_eq!((bare.total, bare.matches.len()), (None, 0));
    let offset = query::MAX_OFFSET.to_string();
    let deepest = search(
        &*store,
        "Patient",
        &[("family", "zero"), ("_offset", &offset)],
    )
    .await;
    assert!(deepest.matches.is_empty() && !deepest.has_more);
}
