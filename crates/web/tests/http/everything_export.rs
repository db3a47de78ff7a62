//! `Patient/$everything` and Bulk Data export over HTTP, on every available backend. A module of
//! the `http` test binary (one link step), reusing its harness.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::*;

// ----- building a small region -----

fn observation(subject: &str, code: &str) -> Value {
    json!({"resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": subject}})
}

fn condition(subject: &str) -> Value {
    json!({"resourceType": "Condition", "subject": {"reference": subject},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "44054006"}]}})
}

fn appointment(actors: &[&str]) -> Value {
    let participant: Vec<Value> = actors
        .iter()
        .map(|a| json!({"actor": {"reference": a}, "status": "accepted"}))
        .collect();
    json!({"resourceType": "Appointment", "status": "booked",
        "start": "2025-05-01T09:00:00Z", "end": "2025-05-01T09:15:00Z", "participant": participant})
}

fn group(members: &[(&str, bool)]) -> Value {
    let member: Vec<Value> = members
        .iter()
        .map(|(m, inactive)| json!({"entity": {"reference": m}, "inactive": inactive}))
        .collect();
    json!({"resourceType": "Group", "type": "person", "actual": true, "member": member})
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

/// `Type/id` of every entry of a Bundle that is a match, in order.
fn match_keys(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|e| e["search"]["mode"] == "match")
                .map(|e| {
                    format!(
                        "{}/{}",
                        e["resource"]["resourceType"].as_str().unwrap_or_default(),
                        e["resource"]["id"].as_str().unwrap_or_default()
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn key(ty: &str, v: &Value) -> String {
    format!("{ty}/{}", id_of(v))
}

/// The patients and resources of one test's region.
struct Region {
    ann: Value,
    bob: Value,
    /// A Patient linking to Ann: in Ann's compartment.
    linked: Value,
    practitioner: Value,
    /// Everything in Ann's compartment other than Ann, as `Type/id`.
    ann_record: Vec<String>,
    /// Everything in Bob's compartment other than Bob.
    bob_record: Vec<String>,
}

async fn region(s: &Server) -> Region {
    let ann = s.create(patient("Everything-Ann")).await;
    let bob = s.create(patient("Everything-Bob")).await;
    let ann_ref = format!("Patient/{}", id_of(&ann));
    let bob_ref = format!("Patient/{}", id_of(&bob));
    let mut linking = patient("Everything-Linked");
    linking["link"] = json!([{"other": {"reference": ann_ref}, "type": "seealso"}]);
    let linked = s.create(linking).await;
    let practitioner = s
        .create(json!({"resourceType": "Practitioner", "name": [{"family": "Carer"}]}))
        .await;
    let pract_ref = format!("Practitioner/{}", id_of(&practitioner));
    let mut ann_record = vec![key("Patient", &linked)];
    let mut bob_record = Vec::new();
    for code in ["8867-4", "8480-6", "29463-7"] {
        ann_record.push(key(
            "Observation",
            &s.create(observation(&ann_ref, code)).await,
        ));
    }
    bob_record.push(key(
        "Observation",
        &s.create(observation(&bob_ref, "8867-4")).await,
    ));
    ann_record.push(key("Condition", &s.create(condition(&ann_ref)).await));
    ann_record.push(key(
        "Appointment",
        &s.create(appointment(&[&ann_ref, &pract_ref])).await,
    ));
    let shared = key(
        "Appointment",
        &s.create(appointment(&[&ann_ref, &bob_ref])).await,
    );
    ann_record.push(shared.clone());
    bob_record.push(shared);
    // Deleted: in nobody's record any more.
    let gone = s.create(observation(&ann_ref, "2339-0")).await;
    let r = s
        .delete(&format!("/fhir/Observation/{}", id_of(&gone)))
        .await;
    assert!(r.status < 300, "[{}] delete: {}", s.backend, r.text);
    Region {
        ann,
        bob,
        linked,
        practitioner,
        ann_record,
        bob_record,
    }
}

async fn everything(s: &Server, path: &str) -> Value {
    let r = s.get(path).await;
    assert_eq!(r.status, 200, "[{}] {path}: {}", s.backend, r.text);
    assert!(
        r.header("content-type")
            .unwrap_or_default()
            .starts_with("application/fhir+json"),
        "[{}] content-type",
        s.backend
    );
    r.json()
}

// ----- $everything -----

#[tokio::test]
async fn everything_is_exactly_the_patients_compartment_patient_first() {
    for s in servers().await {
        let b = s.backend;
        let reg = region(&s).await;
        let ann = id_of(&reg.ann);
        let bundle = everything(&s, &format!("/fhir/Patient/{ann}/$everything")).await;
        assert_eq!(bundle["resourceType"], "Bundle");
        assert_eq!(bundle["type"], "searchset");
        let keys = match_keys(&bundle);
        assert_eq!(keys[0], format!("Patient/{ann}"), "[{b}] the patient first");
        assert_eq!(
            sorted(keys[1..].to_vec()),
            sorted(reg.ann_record.clone()),
            "[{b}] exactly Ann's compartment: no Practitioner, none of Bob's, nothing deleted"
        );
        for e in bundle["entry"].as_array().unwrap() {
            let r = &e["resource"];
            assert_eq!(
                e["fullUrl"],
                format!(
                    "{}/fhir/{}/{}",
                    s.base,
                    r["resourceType"].as_str().unwrap(),
                    id_of(r)
                ),
                "[{b}]"
            );
        }
        // Resources come as stored.
        let stored = s.get(&format!("/fhir/Patient/{ann}")).await.json();
        assert_eq!(bundle["entry"][0]["resource"], stored, "[{b}]");
        assert!(
            link(&bundle, "self").unwrap().contains("/$everything"),
            "[{b}]"
        );
        assert!(
            link(&bundle, "next").is_none(),
            "[{b}] no paging without _count"
        );

        let bob = id_of(&reg.bob);
        let bundle = everything(&s, &format!("/fhir/Patient/{bob}/$everything")).await;
        let keys = match_keys(&bundle);
        assert_eq!(keys[0], format!("Patient/{bob}"));
        assert_eq!(
            sorted(keys[1..].to_vec()),
            sorted(reg.bob_record.clone()),
            "[{b}]"
        );
        assert!(!keys.contains(&key("Practitioner", &reg.practitioner)));
    }
}

#[tokio::test]
async fn everything_filters_by_type_and_since() {
    for s in servers().await {
        let b = s.backend;
        let reg = region(&s).await;
        let ann = id_of(&reg.ann);
        let only = |ty: &str| -> Vec<String> {
            reg.ann_record
                .iter()
                .filter(|k| k.starts_with(&format!("{ty}/")))
                .cloned()
                .collect()
        };
        let bundle = everything(
            &s,
            &format!("/fhir/Patient/{ann}/$everything?_type=Condition,Observation"),
        )
        .await;
        let mut expected = only("Condition");
        expected.extend(only("Observation"));
        assert_eq!(
            sorted(match_keys(&bundle)),
            sorted(expected),
            "[{b}] no Patient unless asked"
        );

        let bundle = everything(
            &s,
            &format!("/fhir/Patient/{ann}/$everything?_type=Patient"),
        )
        .await;
        assert_eq!(
            match_keys(&bundle),
            vec![format!("Patient/{ann}"), key("Patient", &reg.linked)],
            "[{b}]"
        );

        // _since: only what changed after the instant (Ann herself included once updated).
        tokio::time::sleep(Duration::from_millis(20)).await;
        let since = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        tokio::time::sleep(Duration::from_millis(20)).await;
        let fresh = s
            .create(observation(&format!("Patient/{ann}"), "4548-4"))
            .await;
        let bundle = everything(
            &s,
            &format!("/fhir/Patient/{ann}/$everything?_since={since}"),
        )
        .await;
        let keys = match_keys(&bundle);
        assert!(keys.contains(&key("Observation", &fresh)), "[{b}] {keys:?}");
        assert!(
            !keys.contains(&format!("Patient/{ann}")),
            "[{b}] Ann is older than _since"
        );
        let mut renamed = reg.ann.clone();
        renamed["name"] = json!([{"family": "Everything-Ann", "given": ["Renamed"]}]);
        let r = s.put_json(&format!("/fhir/Patient/{ann}"), &renamed).await;
        assert_eq!(r.status, 200, "[{b}] {}", r.text);
        let bundle = everything(
            &s,
            &format!("/fhir/Patient/{ann}/$everything?_since={since}"),
        )
        .await;
        assert_eq!(
            match_keys(&bundle),
            vec![format!("Patient/{ann}"), key("Observation", &fresh)],
            "[{b}]"
        );
    }
}

#[tokio::test]
async fn everything_pages_with_count_cover_the_record_once_in_order() {
    for s in servers().await {
        let b = s.backend;
        let reg = region(&s).await;
        let ann = id_of(&reg.ann);
        let whole = match_keys(&everything(&s, &format!("/fhir/Patient/{ann}/$everything")).await);
        for count in [1, 2, 3, whole.len(), whole.len() + 1] {
            let mut got = Vec::new();
            let mut next = Some(format!("/fhir/Patient/{ann}/$everything?_count={count}"));
            let mut pages = 0;
            while let Some(url) = next {
                let page = everything(&s, &url).await;
                let keys = match_keys(&page);
                assert!(keys.len() <= count, "[{b}] a page holds at most _count");
                next = link(&page, "next");
                if next.is_some() {
                    assert_eq!(
                        keys.len(),
                        count,
                        "[{b}] a page followed by another is full"
                    );
                }
                got.extend(keys);
                pages += 1;
                assert!(pages <= whole.len() + 1, "[{b}] paging does not end");
            }
            assert_eq!(
                got, whole,
                "[{b}] pages of {count}: every resource once, same order"
            );
            assert_eq!(
                pages,
                whole.len().div_ceil(count),
                "[{b}] no empty last page"
            );
        }
        // A cursor that the server did not make is refused.
        for bad in ["nonsense", "-4", "Observation:12", "1x"] {
            let r = s
                .get(&format!(
                    "/fhir/Patient/{ann}/$everything?_count=2&_cursor={bad}"
                ))
                .await;
            assert_outcome(&r, 400, "invalid", &format!("[{b}] cursor {bad}"));
        }
    }
}

#[tokio::test]
async fn everything_streams_a_record_larger_than_a_store_page() {
    for s in servers().await {
        let b = s.backend;
        let p = s.create(patient("Everything-Big")).await;
        let pref = format!("Patient/{}", id_of(&p));
        let entries: Vec<Value> = (0..1234)
            .map(|i| {
                json!({"resource": observation(&pref, if i % 2 == 0 { "8867-4" } else { "8480-6" }),
                    "request": {"method": "POST", "url": "Observation"}})
            })
            .collect();
        let r = s
            .post_json(
                "/fhir",
                &json!({"resourceType": "Bundle", "type": "transaction", "entry": entries}),
            )
            .await;
        assert_eq!(r.status, 200, "[{b}] {}", &r.text[..r.text.len().min(300)]);
        let bundle = everything(&s, &format!("/fhir/Patient/{}/$everything", id_of(&p))).await;
        let keys = match_keys(&bundle);
        assert_eq!(keys.len(), 1235, "[{b}]");
        let unique: BTreeSet<&String> = keys.iter().collect();
        assert_eq!(unique.len(), keys.len(), "[{b}] no resource twice");
    }
}

#[tokio::test]
async fn everything_errors_unknown_deleted_and_bad_parameters() {
    for s in servers().await {
        let b = s.backend;
        let r = s.get("/fhir/Patient/no-such-patient/$everything").await;
        assert_outcome(&r, 404, "not-found", &format!("[{b}] unknown"));
        let p = s.create(patient("Everything-Gone")).await;
        let id = id_of(&p);
        let r = s.delete(&format!("/fhir/Patient/{id}")).await;
        assert!(r.status < 300, "[{b}] {}", r.text);
        let r = s.get(&format!("/fhir/Patient/{id}/$everything")).await;
        assert_outcome(&r, 410, "deleted", &format!("[{b}] deleted"));

        let alive = id_of(&s.create(patient("Everything-Params")).await);
        for (query, code) in [
            ("_type=Practitioner", "invalid"),
            ("_type=Spaceship", "invalid"),
            ("_count=0", "invalid"),
            ("_count=abc", "invalid"),
            ("_since=tomorrow", "invalid"),
            ("start=2020-01-01", "not-supported"),
        ] {
            let r = s
                .get(&format!("/fhir/Patient/{alive}/$everything?{query}"))
                .await;
            assert_outcome(&r, 400, code, &format!("[{b}] {query}"));
        }
        // Leniently, an unknown parameter is ignored and reported.
        let r = send(
            s.req(
                Method::GET,
                &format!("/fhir/Patient/{alive}/$everything?start=2020-01-01"),
            )
            .header("prefer", "handling=lenient"),
        )
        .await;
        assert_eq!(r.status, 200, "[{b}] {}", r.text);
        let v = r.json();
        assert_eq!(v["entry"][0]["search"]["mode"], "outcome", "[{b}]");
        assert_eq!(match_keys(&v), vec![format!("Patient/{alive}")], "[{b}]");
        // Other routes next to it still work.
        let r = s.get(&format!("/fhir/Patient/{alive}/_history")).await;
        assert_eq!(r.status, 200, "[{b}] {}", r.text);
    }
}

#[tokio::test]
async fn everything_needs_a_token_and_leaves_out_types_the_client_may_not_read() {
    for s in servers().await {
        let b = s.backend;
        let reg = region(&s).await;
        let ann = id_of(&reg.ann);
        let path = format!("/fhir/Patient/{ann}/$everything");
        let r = send(s.anon(Method::GET, &path)).await;
        assert_outcome(&r, 401, "login", &format!("[{b}] no token"));
        let narrow = s
            .state
            .issue_token("narrow", "system/Patient.read system/Observation.read")
            .unwrap();
        let r = send(s.with_token(&narrow, Method::GET, &path)).await;
        assert_eq!(r.status, 200, "[{b}] {}", r.text);
        let v = r.json();
        assert_eq!(
            v["entry"][0]["search"]["mode"], "outcome",
            "[{b}] says what is left out"
        );
        assert!(v["entry"][0]["resource"]["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("Appointment"));
        let keys = match_keys(&v);
        assert!(
            keys.iter()
                .all(|k| k.starts_with("Patient/") || k.starts_with("Observation/")),
            "[{b}] {keys:?}"
        );
        assert_eq!(
            keys.iter()
                .filter(|k| k.starts_with("Observation/"))
                .count(),
            3
        );
        let r = send(s.with_token(&narrow, Method::GET, &format!("{path}?_type=Condition"))).await;
        assert_outcome(
            &r,
            403,
            "forbidden",
            &format!("[{b}] asked for a type it may not read"),
        );
        let no_patient = s
            .state
            .issue_token("nopat", "system/Observation.read")
            .unwrap();
        let r = send(s.with_token(&no_patient, Method::GET, &path)).await;
        assert_outcome(&r, 403, "forbidden", &format!("[{b}] no Patient scope"));
    }
}

// ----- Bulk Data export -----

/// A server per backend whose exports go to a temporary folder (returned with it).
async fn export_servers(file_resources: usize) -> Vec<(Server, tempfile::TempDir)> {
    let mut out = Vec::new();
    for (name, store, dir) in stores().await {
        let exports = tempfile::tempdir().expect("export dir");
        let config = WebConfig {
            export_dir: exports.path().to_path_buf(),
            export_file_resources: file_resources,
            ..WebConfig::default()
        };
        out.push((start(name, store, dir, config).await, exports));
    }
    out
}

fn kick_off(s: &Server, token: &str, path: &str) -> RequestBuilder {
    s.with_token(token, Method::GET, path)
        .header("prefer", "respond-async")
        .header("accept", "application/fhir+json")
}

/// Kicks off an export and returns its status URL.
async fn start_export(s: &Server, token: &str, path: &str) -> String {
    let r = send(kick_off(s, token, path)).await;
    assert_eq!(r.status, 202, "[{}] kick-off {path}: {}", s.backend, r.text);
    let location = r.header("content-location").expect("Content-Location");
    assert!(
        location.starts_with(&format!("{}/fhir/$export-status/", s.base)),
        "{location}"
    );
    location
}

/// Polls until the export completes; returns the manifest.
async fn wait_for(s: &Server, token: &str, status_url: &str) -> Value {
    for _ in 0..600 {
        let r = send(s.with_token(token, Method::GET, status_url)).await;
        match r.status {
            202 => {
                assert!(
                    r.header("x-progress").is_some(),
                    "[{}] X-Progress",
                    s.backend
                );
                assert!(
                    r.header("retry-after").is_some(),
                    "[{}] Retry-After",
                    s.backend
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            200 => {
                assert!(r
                    .header("content-type")
                    .unwrap_or_default()
                    .starts_with("application/json"));
                return r.json();
            }
            other => panic!("[{}] status poll answered {other}: {}", s.backend, r.text),
        }
    }
    panic!("[{}] the export did not finish", s.backend);
}

/// Downloads every output file; returns `Type/id` → line, checking each file's type and count.
async fn download(s: &Server, token: &str, manifest: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for file in manifest["output"].as_array().expect("output") {
        let url = file["url"].as_str().expect("url");
        let r = send(s.with_token(token, Method::GET, url)).await;
        assert_eq!(r.status, 200, "[{}] {url}: {}", s.backend, r.text);
        assert_eq!(
            r.header("content-type").as_deref(),
            Some("application/fhir+ndjson")
        );
        let lines: Vec<&str> = r.text.lines().collect();
        assert_eq!(
            lines.len() as u64,
            file["count"].as_u64().unwrap(),
            "[{}] count of {url}",
            s.backend
        );
        assert!(r.text.ends_with('\n'));
        for line in lines {
            let v: Value = serde_json::from_str(line).expect("each line is a resource");
            assert_eq!(v["resourceType"], file["type"], "[{}] {url}", s.backend);
            let k = key(v["resourceType"].as_str().unwrap(), &v);
            assert!(
                out.insert(k.clone(), line.to_string()).is_none(),
                "[{}] {k} exported twice",
                s.backend
            );
        }
    }
    out
}

#[tokio::test]
async fn system_export_holds_every_current_resource_as_stored() {
    for (s, exports) in export_servers(2).await {
        let b = s.backend;
        let reg = region(&s).await;
        let status = start_export(
            &s,
            &s.token,
            "/fhir/$export?_outputFormat=application/fhir%2Bndjson",
        )
        .await;
        let manifest = wait_for(&s, &s.token, &status).await;
        assert_eq!(manifest["requiresAccessToken"], true);
        assert_eq!(
            manifest["request"],
            format!(
                "{}/fhir/$export?_outputFormat=application/fhir%2Bndjson",
                s.base
            )
        );
        assert!(manifest["transactionTime"].is_string());
        assert_eq!(manifest["error"], json!([]));
        let files = download(&s, &s.token, &manifest).await;
        let mut expected: Vec<String> = reg.ann_record.clone();
        expected.extend(reg.bob_record.iter().cloned());
        expected.extend([
            key("Patient", &reg.ann),
            key("Patient", &reg.bob),
            key("Practitioner", &reg.practitioner),
        ]);
        expected.sort();
        expected.dedup();
        assert_eq!(files.keys().cloned().collect::<Vec<_>>(), expected, "[{b}]");
        // Each line is the resource exactly as a read serves it.
        for (k, line) in &files {
            let r = s.get(&format!("/fhir/{k}")).await;
            assert_eq!(&r.text, line, "[{b}] {k}");
        }
        // Two resources per file: Observations are split.
        let obs_files = manifest["output"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["type"] == "Observation")
            .count();
        assert_eq!(obs_files, 2, "[{b}] 4 Observations in files of 2");
        assert!(
            exports.path().read_dir().unwrap().count() == 1,
            "[{b}] one job folder"
        );
    }
}

#[tokio::test]
async fn patient_and_group_exports_hold_only_their_compartments() {
    for (s, _exports) in export_servers(1000).await {
        let b = s.backend;
        let reg = region(&s).await;
        let loner = s.create(patient("Export-Loner")).await;
        let loner_obs = s
            .create(observation(&format!("Patient/{}", id_of(&loner)), "8867-4"))
            .await;

        // Patient level: every patient's compartment, no Practitioner.
        let status = start_export(&s, &s.token, "/fhir/Patient/$export").await;
        let files = download(&s, &s.token, &wait_for(&s, &s.token, &status).await).await;
        let mut expected: Vec<String> = reg.ann_record.clone();
        expected.extend(reg.bob_record.iter().cloned());
        expected.extend([
            key("Patient", &reg.ann),
            key("Patient", &reg.bob),
            key("Patient", &loner),
            key("Observation", &loner_obs),
        ]);
        expected.sort();
        expected.dedup();
        assert_eq!(
            files.keys().cloned().collect::<Vec<_>>(),
            expected,
            "[{b}] Patient level"
        );

        // Group level: Ann and (inactive) Bob are members; only Ann's record comes out.
        let g = s
            .create(group(&[
                (&format!("Patient/{}", id_of(&reg.ann)), false),
                (&format!("Patient/{}", id_of(&reg.bob)), true),
            ]))
            .await;
        let status =
            start_export(&s, &s.token, &format!("/fhir/Group/{}/$export", id_of(&g))).await;
        let files = download(&s, &s.token, &wait_for(&s, &s.token, &status).await).await;
        let mut expected = reg.ann_record.clone();
        expected.push(key("Patient", &reg.ann));
        // The Group itself has Ann as a member: it is in her compartment.
        expected.push(key("Group", &g));
        expected.sort();
        assert_eq!(
            files.keys().cloned().collect::<Vec<_>>(),
            expected,
            "[{b}] Group level"
        );

        let r = send(kick_off(&s, &s.token, "/fhir/Group/no-such-group/$export")).await;
        assert_outcome(&r, 404, "not-found", &format!("[{b}] unknown group"));
    }
}

#[tokio::test]
async fn export_type_and_since_select_and_chain_without_overlap() {
    for (s, _exports) in export_servers(1000).await {
        let b = s.backend;
        let reg = region(&s).await;
        let status = start_export(&s, &s.token, "/fhir/$export?_type=Observation,Condition").await;
        let first = wait_for(&s, &s.token, &status).await;
        let types: BTreeSet<&str> = first["output"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["type"].as_str().unwrap())
            .collect();
        assert_eq!(types, BTreeSet::from(["Condition", "Observation"]), "[{b}]");
        let files = download(&s, &s.token, &first).await;
        assert_eq!(
            files.len(),
            5,
            "[{b}] Ann's 3 + Bob's 1 Observations, 1 Condition"
        );

        // The next export from the first one's transactionTime holds only what changed since.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let fresh = s
            .create(observation(
                &format!("Patient/{}", id_of(&reg.bob)),
                "4548-4",
            ))
            .await;
        let since = first["transactionTime"]
            .as_str()
            .unwrap()
            .replace('+', "%2B");
        let status = start_export(
            &s,
            &s.token,
            &format!("/fhir/$export?_type=Observation,Condition&_since={since}"),
        )
        .await;
        let files = download(&s, &s.token, &wait_for(&s, &s.token, &status).await).await;
        assert_eq!(
            files.keys().cloned().collect::<Vec<_>>(),
            vec![key("Observation", &fresh)],
            "[{b}]"
        );
    }
}

#[tokio::test]
async fn export_kick_off_refuses_what_it_cannot_do() {
    for (s, _exports) in export_servers(1000).await {
        let b = s.backend;
        let r = send(s.req(Method::GET, "/fhir/$export")).await;
        assert_outcome(
            &r,
            400,
            "invalid",
            &format!("[{b}] no Prefer: respond-async"),
        );
        for (query, code) in [
            ("_outputFormat=text/csv", "not-supported"),
            ("_type=Spaceship", "invalid"),
            ("_since=last-week", "invalid"),
            ("_typeFilter=Observation%3Fcode%3D1", "not-supported"),
        ] {
            let r = send(kick_off(&s, &s.token, &format!("/fhir/$export?{query}"))).await;
            assert_outcome(&r, 400, code, &format!("[{b}] {query}"));
        }
        let r = send(kick_off(
            &s,
            &s.token,
            "/fhir/Patient/$export?_type=Practitioner",
        ))
        .await;
        assert_outcome(
            &r,
            400,
            "invalid",
            &format!("[{b}] Practitioner is in no compartment"),
        );
        let r = send(
            s.req(Method::GET, "/fhir/$export")
                .header("prefer", "respond-async")
                .header("accept", "application/fhir+xml"),
        )
        .await;
        assert_outcome(&r, 406, "not-supported", &format!("[{b}] XML"));
        // Leniently, an unknown parameter is ignored and said so.
        let r = send(
            kick_off(&s, &s.token, "/fhir/$export?_typeFilter=x&_type=Patient")
                .header("prefer", "handling=lenient"),
        )
        .await;
        assert_eq!(r.status, 202, "[{b}] {}", r.text);
        assert!(r.text.contains("_typeFilter"), "[{b}] {}", r.text);
    }
}

#[tokio::test]
async fn export_needs_a_token_and_read_scope_for_every_type() {
    for (s, _exports) in export_servers(1000).await {
        let b = s.backend;
        let r = send(
            s.anon(Method::GET, "/fhir/$export")
                .header("prefer", "respond-async"),
        )
        .await;
        assert_outcome(&r, 401, "login", &format!("[{b}] no token"));
        let patients_only = s
            .state
            .issue_token("pat-reader", "system/Patient.read")
            .unwrap();
        for path in [
            "/fhir/$export",
            "/fhir/Patient/$export",
            "/fhir/$export?_type=Patient,Observation",
        ] {
            let r = send(kick_off(&s, &patients_only, path)).await;
            assert_outcome(&r, 403, "forbidden", &format!("[{b}] {path}"));
        }
        let writer = s.state.issue_token("writer", "system/*.write").unwrap();
        let r = send(kick_off(&s, &writer, "/fhir/$export")).await;
        assert_outcome(
            &r,
            403,
            "forbidden",
            &format!("[{b}] write scopes do not read"),
        );
        let status = start_export(&s, &patients_only, "/fhir/$export?_type=Patient").await;
        wait_for(&s, &patients_only, &status).await;
    }
}

#[tokio::test]
async fn export_jobs_are_private_to_the_client_that_started_them() {
    for (s, _exports) in export_servers(1000).await {
        let b = s.backend;
        region(&s).await;
        let status = start_export(&s, &s.token, "/fhir/$export").await;
        let manifest = wait_for(&s, &s.token, &status).await;
        let file = manifest["output"][0]["url"].as_str().unwrap().to_string();
        let other = s.state.issue_token("someone-else", "system/*.*").unwrap();
        for (method, url) in [
            (Method::GET, &status),
            (Method::GET, &file),
            (Method::DELETE, &status),
        ] {
            let r = send(s.with_token(&other, method.clone(), url)).await;
            assert_outcome(
                &r,
                404,
                "not-found",
                &format!("[{b}] {method} {url} by another client"),
            );
            let r = send(s.anon(method.clone(), url)).await;
            assert_outcome(
                &r,
                401,
                "login",
                &format!("[{b}] {method} {url} without a token"),
            );
        }
        // Still there for its owner.
        let r = send(s.req(Method::GET, &file)).await;
        assert_eq!(r.status, 200, "[{b}]");
        for bad in [
            format!("{}/fhir/$export-status/not-a-job", s.base),
            format!(
                "{}/fhir/$export-file/{}/..%2F..%2Fetc%2Fpasswd",
                s.base,
                status.rsplit('/').next().unwrap()
            ),
            format!(
                "{}/fhir/$export-file/{}/Observation-99.ndjson",
                s.base,
                status.rsplit('/').next().unwrap()
            ),
        ] {
            let r = send(s.req(Method::GET, &bad)).await;
            assert_outcome(&r, 404, "not-found", &format!("[{b}] {bad}"));
        }
    }
}

#[tokio::test]
async fn cancelling_an_export_removes_it_and_its_files() {
    for (s, exports) in export_servers(1000).await {
        let b = s.backend;
        region(&s).await;
        // A finished export.
        let status = start_export(&s, &s.token, "/fhir/$export").await;
        let manifest = wait_for(&s, &s.token, &status).await;
        let file = manifest["output"][0]["url"].as_str().unwrap().to_string();
        assert_eq!(exports.path().read_dir().unwrap().count(), 1, "[{b}]");
        let r = s.delete(&status).await;
        assert_eq!(r.status, 202, "[{b}] {}", r.text);
        for url in [&status, &file] {
            let r = s.get(url).await;
            assert_outcome(&r, 404, "not-found", &format!("[{b}] {url} after cancel"));
        }
        let r = s.delete(&status).await;
        assert_outcome(&r, 404, "not-found", &format!("[{b}] cancelled twice"));
        assert_eq!(
            exports.path().read_dir().unwrap().count(),
            0,
            "[{b}] files removed"
        );

        // Cancelled at once after kick-off: whatever stage it reached, it is gone.
        let status = start_export(&s, &s.token, "/fhir/$export").await;
        let r = s.delete(&status).await;
        assert_eq!(r.status, 202, "[{b}] {}", r.text);
        let r = s.get(&status).await;
        assert_outcome(&r, 404, "not-found", &format!("[{b}] status after cancel"));
        let mut gone = false;
        for _ in 0..400 {
            let files = exports.path().read_dir().unwrap().count();
            let records = s.state.store.state_list("export").await.unwrap();
            if files == 0 && records.is_empty() {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert!(
            gone,
            "[{b}] the export's files, record and cancellation are removed"
        );
    }
}

/// A job record as a runner on some server would have written it (claim number `attempt`),
/// `heartbeat_age` seconds ago.
async fn running_job(s: &Server, client_id: &str, heartbeat_age: i64, attempt: u32) -> String {
    use web::export::job::{new_job_id, Job, Level, Status};
    let now = chrono::Utc::now();
    let job = Job {
        id: new_job_id(),
        client_id: client_id.into(),
        request: format!("{}/fhir/$export", s.base),
        level: Level::System,
        types: vec!["Patient".into(), "Observation".into()],
        since: None,
        transaction_time: now,
        status: Status::Running,
        written: 1500,
        types_done: 1,
        output: Vec::new(),
        error: None,
        heartbeat: now - chrono::TimeDelta::seconds(heartbeat_age),
        finished_at: None,
        attempt,
        worker: Some("a-server-that-stopped".into()),
    };
    job.save(&*s.state.store).await.expect("save job");
    format!("{}/fhir/$export-status/{}", s.base, job.id)
}

/// The job behind a status URL, as stored.
async fn stored_job(s: &Server, status_url: &str) -> web::export::job::Job {
    let id = status_url.rsplit('/').next().expect("job id");
    web::export::job::Job::load(&*s.state.store, id)
        .await
        .expect("load job")
        .expect("the job is stored")
}

/// Polls until the export is no longer queued or running; returns the answer.
async fn wait_until_over(s: &Server, status_url: &str) -> Resp {
    for _ in 0..600 {
        let r = s.get(status_url).await;
        if r.status != 202 {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("[{}] the export did not end", s.backend);
}

#[tokio::test]
async fn a_running_export_answers_202_with_progress_and_retry_after() {
    for (s, _exports) in export_servers(1000).await {
        let b = s.backend;
        let status = running_job(&s, "test-admin", 0, 1).await;
        let r = s.get(&status).await;
        assert_eq!(r.status, 202, "[{b}] {}", r.text);
        assert_eq!(
            r.header("x-progress").as_deref(),
            Some("1500 resources written; exporting Observation (type 2 of 2)"),
            "[{b}]"
        );
        assert_eq!(r.header("retry-after").as_deref(), Some("2"), "[{b}]");
        // A live runner's job is not taken over.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let job = stored_job(&s, &status).await;
        assert_eq!(job.attempt, 1, "[{b}]");
        assert_eq!(
            job.worker.as_deref(),
            Some("a-server-that-stopped"),
            "[{b}]"
        );
    }
}

#[tokio::test]
async fn an_export_whose_server_stopped_is_taken_over_then_failed_after_three_tries() {
    for (s, exports) in export_servers(1000).await {
        let b = s.backend;
        s.create(patient("Export-Resumed")).await;
        // Stopped mid-way: a partial file of its first claim is left behind.
        let status = running_job(&s, "test-admin", 3600, 1).await;
        let id = status.rsplit('/').next().unwrap().to_string();
        std::fs::create_dir_all(exports.path().join(&id)).unwrap();
        let first_claim = exports.path().join(&id).join("1.Patient-1.ndjson");
        std::fs::write(&first_claim, "{\"half\":").unwrap();
        let manifest = wait_for(&s, &s.token, &status).await;
        let files = download(&s, &s.token, &manifest).await;
        assert_eq!(files.len(), 1, "[{b}] the one Patient, exported again");
        let job = stored_job(&s, &status).await;
        assert_eq!(job.attempt, 2, "[{b}] taken over once");
        assert_ne!(job.worker.as_deref(), Some("a-server-that-stopped"));
        assert!(
            !first_claim.exists(),
            "[{b}] the first claim's files are gone"
        );
        let on_disk: Vec<String> = std::fs::read_dir(exports.path().join(&id))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            on_disk,
            ["2.Patient-1.ndjson"],
            "[{b}] the second claim's file"
        );

        // Stopped on every claim: failed rather than tried forever.
        let status = running_job(&s, "test-admin", 3600, 3).await;
        let r = wait_until_over(&s, &status).await;
        assert_outcome(&r, 500, "exception", &format!("[{b}] stopped three times"));
        assert!(
            r.text.contains("stopped before it finished"),
            "[{b}] {}",
            r.text
        );
        // It stays failed, and can be removed.
        let r = s.get(&status).await;
        assert_outcome(&r, 500, "exception", &format!("[{b}] failed job"));
        let r = s.delete(&status).await;
        assert_eq!(r.status, 202, "[{b}] {}", r.text);
        let r = s.get(&status).await;
        assert_outcome(&r, 404, "not-found", &format!("[{b}] removed"));
    }
    // A folder that cannot be made: the export fails, and says it was the files.
    for (name, store, dir) in stores().await {
        let blocker = tempfile::NamedTempFile::new().expect("temp file");
        let config = WebConfig {
            export_dir: blocker.path().join("exports"),
            ..WebConfig::default()
        };
        let s = start(name, store, dir, config).await;
        s.create(patient("Export-Fails")).await;
        let status = start_export(&s, &s.token, "/fhir/$export").await;
        let r = wait_until_over(&s, &status).await;
        assert_outcome(&r, 500, "exception", &format!("[{name}] unwritable folder"));
        assert!(
            r.text.contains("writing the export files failed"),
            "[{name}] {}",
            r.text
        );
    }
}

// ----- several servers on one database -----

/// A server like [`start`]'s but without an export worker: it records jobs and answers about
/// them, and never runs one.
async fn start_without_worker(
    backend: &'static str,
    store: Arc<dyn Store>,
    config: WebConfig,
) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let config = WebConfig {
        public_url: format!("http://{addr}"),
        ..config
    };
    let state = AppState::new(store, Arc::new(config))
        .await
        .expect("app state");
    let token = state
        .issue_token("test-admin", "system/*.*")
        .expect("token");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let router = web::router(state.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
    });
    Server {
        backend,
        base: format!("http://{addr}"),
        http: reqwest::Client::new(),
        state,
        token,
        _dir: None,
        _shutdown: tx,
    }
}

/// Per backend: server A without a worker and server B with one, on one database and one
/// (shared) export folder.
async fn two_servers() -> Vec<(Server, Server, tempfile::TempDir)> {
    let mut out = Vec::new();
    for (name, store, dir) in stores().await {
        let exports = tempfile::tempdir().expect("export dir");
        let config = WebConfig {
            export_dir: exports.path().to_path_buf(),
            ..WebConfig::default()
        };
        let a = start_without_worker(name, store.clone(), config.clone()).await;
        let b = start(name, store, dir, config).await;
        out.push((a, b, exports));
    }
    out
}

#[tokio::test]
async fn an_export_kicked_off_on_one_server_is_run_by_another_and_cancelled_from_the_first() {
    for (a, b, exports) in two_servers().await {
        let name = a.backend;
        let reg = region(&a).await;
        let status = start_export(&a, &a.token, "/fhir/Patient/$export").await;
        // Only B has a worker; A answers the polls and serves the files from the shared folder.
        let files = download(&a, &a.token, &wait_for(&a, &a.token, &status).await).await;
        let mut expected: Vec<String> = reg.ann_record.clone();
        expected.extend(reg.bob_record.iter().cloned());
        expected.extend([key("Patient", &reg.ann), key("Patient", &reg.bob)]);
        expected.sort();
        expected.dedup();
        assert_eq!(
            files.keys().cloned().collect::<Vec<_>>(),
            expected,
            "[{name}]"
        );
        let job = stored_job(&a, &status).await;
        assert_eq!(job.attempt, 1, "[{name}] claimed once");
        assert!(job.worker.is_some(), "[{name}]");

        // A Group export kicked off on A, cancelled on A while B has it: it is gone everywhere.
        let g = a
            .create(group(&[(&format!("Patient/{}", id_of(&reg.ann)), false)]))
            .await;
        let status =
            start_export(&a, &a.token, &format!("/fhir/Group/{}/$export", id_of(&g))).await;
        let r = a.delete(&status).await;
        assert_eq!(r.status, 202, "[{name}] {}", r.text);
        for s in [&a, &b] {
            let r = s.get(&status).await;
            assert_outcome(&r, 404, "not-found", &format!("[{name}] after cancel"));
        }
        let mut gone = false;
        for _ in 0..400 {
            let left = exports.path().read_dir().unwrap().count();
            let records = a.state.store.state_list("export").await.unwrap();
            // The first export is still there: one folder, one record.
            if left == 1 && records.len() == 1 {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert!(
            gone,
            "[{name}] the cancelled export's files and records are removed"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_workers_claim_each_job_exactly_once() {
    use web::export::worker::{Worker, WorkerOptions};
    for (a, _b, _exports) in two_servers().await {
        let name = a.backend;
        region(&a).await;
        // Eight jobs, recorded on A (four per client, the most one client may have).
        let mut statuses = Vec::new();
        for client in ["racer-1", "racer-2"] {
            let token = a.state.issue_token(client, "system/*.read").unwrap();
            for _ in 0..4 {
                statuses.push((
                    token.clone(),
                    start_export(&a, &token, "/fhir/$export?_type=Patient").await,
                ));
            }
        }
        // B's own worker is racing too; two more workers, each of a server state of its own.
        let options = WorkerOptions {
            max_running: 100,
            ..WorkerOptions::default()
        };
        let config = (*a.state.config).clone();
        let mut workers = Vec::new();
        for _ in 0..2 {
            let state = AppState::new(a.state.store.clone(), Arc::new(config.clone()))
                .await
                .expect("app state");
            workers.push(Worker::new(&state, options.clone()));
        }
        let (one, two) = tokio::join!(workers[0].claim(), workers[1].claim());
        let (one, two) = (one.expect("claim"), two.expect("claim"));
        let both: BTreeSet<&String> = one.iter().collect();
        assert!(
            two.iter().all(|id| !both.contains(id)),
            "[{name}] a job claimed by both: {one:?} {two:?}"
        );
        for (token, status) in &statuses {
            wait_for(&a, token, status).await;
            let job = stored_job(&a, status).await;
            assert_eq!(job.attempt, 1, "[{name}] claimed exactly once");
            let id = status.rsplit('/').next().unwrap().to_string();
            let by = job.worker.unwrap_or_default();
            if one.contains(&id) {
                assert_eq!(by, workers[0].name(), "[{name}]");
            } else if two.contains(&id) {
                assert_eq!(by, workers[1].name(), "[{name}]");
            } else {
                assert!(
                    by != workers[0].name() && by != workers[1].name(),
                    "[{name}]"
                );
            }
        }
    }
}
