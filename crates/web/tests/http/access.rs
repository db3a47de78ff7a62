//! The access policy and the audit trail at the FHIR API: people's tokens (patients, proxies,
//! staff) see only what the policy admits — in reads, searches (with their includes, chains and
//! totals), history and `$everything` — a resource out of reach answers exactly as an absent one,
//! writes are decided and stamped with their author, break-glass access is audited and the
//! patient told, and every access is recorded before it is answered.

use chrono::{Datelike, Utc};
use reqwest::Method;
use serde_json::{json, Value};
use store::accounts::{Account, IdentityLevel, OAuthGrant, Role, SmartApp};
use store::audit::{AuditAction, AuditOutcome, AuditRecord};
use web::auth::{Claims, TokenKind, TokenSigner};

use super::{send, servers, Resp, Server};

const OUR_ODS: &str = "A81001";
const OTHER_ODS: &str = "B82002";
const APP: &str = "access-test-app";
const ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
const CONFIDENTIALITY: &str = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";
const ROLE_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-RoleCode";
const ODS: &str = "https://fhir.nhs.uk/Id/ods-organization-code";

/// The people and records of one test.
struct World {
    /// Related to our organisation (managing organisation).
    a: String,
    /// Not related to anyone.
    b: String,
    obs_a: String,
    obs_b: String,
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

fn observation(patient: &str, text: &str) -> Value {
    json!({
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": text},
        "subject": {"reference": format!("Patient/{patient}")},
    })
}

async fn world(s: &Server) -> World {
    let org = s
        .create(
            json!({"resourceType": "Organization", "name": "Our practice",
            "identifier": [{"system": ODS, "value": OUR_ODS}]}),
        )
        .await;
    let a = s
        .create(
            json!({"resourceType": "Patient", "name": [{"family": "Pond"}],
            "birthDate": "1980-02-03",
            "managingOrganization": {"reference": format!("Organization/{}", id_of(&org))}}),
        )
        .await;
    let b = s
        .create(
            json!({"resourceType": "Patient", "name": [{"family": "Williams"}],
            "birthDate": "1979-05-06"}),
        )
        .await;
    let (a, b) = (id_of(&a), id_of(&b));
    let obs_a = id_of(&s.create(observation(&a, "pulse")).await);
    let obs_b = id_of(&s.create(observation(&b, "pulse")).await);
    World { a, b, obs_a, obs_b }
}

/// A SMART app token for a new account of `role` (set up by `edit`), as the token endpoint
/// would issue it after the person approved `scopes`.
async fn user_token(
    s: &Server,
    role: Role,
    scopes: &str,
    patient: Option<&str>,
    edit: impl FnOnce(&mut Account),
) -> String {
    let store = s.state.store.as_ref();
    let now = Utc::now();
    if store
        .accounts()
        .smart_app(APP)
        .await
        .expect("app lookup")
        .is_none()
    {
        store
            .accounts()
            .create_smart_app(&SmartApp {
                client_id: APP.into(),
                name: "Access test".into(),
                redirect_uris: vec!["http://127.0.0.1:9/cb".into()],
                created_at: now,
            })
            .await
            .expect("app");
    }
    let mut account = Account::new(&format!("user-{}", uuid_like()), role, now);
    account.identity_level = IdentityLevel::P9;
    edit(&mut account);
    store
        .accounts()
        .create_account(&account)
        .await
        .expect("account");
    let grant = OAuthGrant {
        grant_id: uuid_like(),
        account_id: account.account_id.clone(),
        client_id: APP.into(),
        scopes: scopes.into(),
        patient_id: patient.map(str::to_string),
        created_at: now,
        revoked_at: None,
    };
    store.accounts().create_grant(&grant).await.expect("grant");
    let signer = TokenSigner::new(&store.signing_key().await.expect("key")).expect("signer");
    let mut claims = Claims::new(APP, scopes, 900, now.timestamp());
    claims.kind = TokenKind::User;
    claims.sub = Some(account.account_id.clone());
    claims.patient = patient.map(str::to_string);
    claims.grant = Some(grant.grant_id);
    signer.sign_claims(&claims).expect("token")
}

fn uuid_like() -> String {
    uuid::Uuid::new_v4().to_string()
}

async fn patient_token(s: &Server, patient: &str) -> String {
    let p = patient.to_string();
    user_token(
        s,
        Role::Patient,
        "launch/patient patient/*.rs patient/Observation.c",
        Some(patient),
        move |a| a.patient_id = Some(p),
    )
    .await
}

async fn staff_token(s: &Server, ods: &str) -> String {
    let ods = ods.to_string();
    user_token(s, Role::Clinician, "user/*.cruds", None, move |a| {
        a.ods_code = Some(ods);
        a.practitioner_role_id = Some("role-1".into());
    })
    .await
}

async fn get_as(s: &Server, token: &str, path: &str) -> Resp {
    send(s.with_token(token, Method::GET, path)).await
}

fn entries(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .map(|es| {
            es.iter()
                .map(|e| {
                    format!(
                        "{}/{}",
                        e["resource"]["resourceType"].as_str().unwrap_or(""),
                        e["resource"]["id"].as_str().unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The text without its `[request id …]` (different for every request).
fn without_request_id(text: &str) -> String {
    match text.split_once("[request id ") {
        Some((head, tail)) => {
            let rest = tail.split_once(']').map_or("", |(_, r)| r);
            format!("{head}[request id]{rest}")
        }
        None => text.to_string(),
    }
}

async fn trail(s: &Server, patient: &str) -> Vec<AuditRecord> {
    s.state
        .store
        .audit_for_patient(patient, None, 100)
        .await
        .expect("trail")
        .entries
        .iter()
        .map(|e| e.record().expect("record"))
        .collect()
}

#[tokio::test]
async fn a_patient_reads_their_own_record_and_another_patients_is_absent() {
    for s in servers().await {
        let b = s.backend;
        let w = world(&s).await;
        let token = patient_token(&s, &w.a).await;

        let own = get_as(&s, &token, &format!("/fhir/Observation/{}", w.obs_a)).await;
        assert_eq!(own.status, 200, "[{b}] own: {}", own.text);
        assert_eq!(own.json()["id"], w.obs_a.as_str());

        let other = get_as(&s, &token, &format!("/fhir/Observation/{}", w.obs_b)).await;
        let absent = get_as(&s, &token, "/fhir/Observation/no-such-thing").await;
        assert_eq!(other.status, 404, "[{b}] other: {}", other.text);
        assert_eq!(absent.status, 404, "[{b}] absent: {}", absent.text);
        assert_eq!(
            without_request_id(&other.text.replace(&w.obs_b, "ID")),
            without_request_id(&absent.text.replace("no-such-thing", "ID")),
            "[{b}] a denied read answers exactly as an absent one"
        );
        for path in [
            format!("/fhir/Observation/{}/_history/1", w.obs_b),
            format!("/fhir/Observation/{}/_history", w.obs_b),
            format!("/fhir/Patient/{}", w.b),
            format!("/fhir/Patient/{}/$everything", w.b),
        ] {
            let r = get_as(&s, &token, &path).await;
            assert_eq!(r.status, 404, "[{b}] {path}: {}", r.text);
        }

        // Every read is on the trail by the time the response arrives.
        let records = trail(&s, &w.a).await;
        let read = records
            .iter()
            .find(|r| r.action == AuditAction::Read)
            .expect("a read record");
        assert_eq!(
            read.entity.as_deref(),
            Some(format!("Observation/{}/_history/1", w.obs_a).as_str()),
            "[{b}]"
        );
        assert_eq!(read.outcome, AuditOutcome::Success);
        assert_eq!(read.purpose, "patient-access");
        assert!(
            trail(&s, &w.b)
                .await
                .iter()
                .all(|r| r.action != AuditAction::Read),
            "[{b}] nothing of B's was read"
        );
    }
}

#[tokio::test]
async fn a_patients_searches_return_only_their_own_data_in_every_form() {
    for s in servers().await {
        let b = s.backend;
        let w = world(&s).await;
        let token = patient_token(&s, &w.a).await;

        let r = get_as(&s, &token, "/fhir/Observation?_total=accurate").await;
        assert_eq!(r.status, 200, "[{b}] {}", r.text);
        let bundle = r.json();
        assert_eq!(
            entries(&bundle),
            vec![format!("Observation/{}", w.obs_a)],
            "[{b}]"
        );
        assert_eq!(bundle["total"], 1, "[{b}] the total is filtered");

        let r = get_as(&s, &token, "/fhir/Observation?_include=Observation:subject").await;
        let got = entries(&r.json());
        assert!(got.contains(&format!("Patient/{}", w.a)), "[{b}] {got:?}");
        assert!(
            !got.iter().any(|e| e.contains(&w.b) || e.contains(&w.obs_b)),
            "[{b}] {got:?}"
        );

        let r = get_as(
            &s,
            &token,
            &format!(
                "/fhir/Patient?_id={},{}&_revinclude=Observation:subject",
                w.a, w.b
            ),
        )
        .await;
        let got = entries(&r.json());
        let mut expected = vec![
            format!("Patient/{}", w.a),
            format!("Observation/{}", w.obs_a),
        ];
        expected.sort();
        let mut sorted = got.clone();
        sorted.sort();
        assert_eq!(sorted, expected, "[{b}]");

        // A chain into the other patient finds nothing: the chain is filtered too.
        let r = get_as(
            &s,
            &token,
            "/fhir/Observation?subject:Patient.name=Williams",
        )
        .await;
        assert_eq!(r.status, 200, "[{b}] {}", r.text);
        assert!(entries(&r.json()).is_empty(), "[{b}] {}", r.text);
        let r = get_as(&s, &token, "/fhir/Observation?subject:Patient.name=Pond").await;
        assert_eq!(
            entries(&r.json()),
            vec![format!("Observation/{}", w.obs_a)],
            "[{b}]"
        );

        // `_has` is not supported: refused, so it cannot probe either.
        let r = get_as(
            &s,
            &token,
            &format!("/fhir/Patient?_has:Observation:subject:_id={}", w.obs_b),
        )
        .await;
        assert!(
            r.status == 400 || entries(&r.json()).iter().all(|e| !e.contains(&w.b)),
            "[{b}] {}",
            r.text
        );

        // One record per patient whose data a search returned, naming parameters, not values.
        let records = trail(&s, &w.a).await;
        let search = records
            .iter()
            .find(|r| r.action == AuditAction::Search)
            .expect("a search record");
        assert_eq!(
            search.entity.as_deref(),
            Some("Observation?subject:Patient.name"),
            "[{b}]"
        );
    }
}

#[tokio::test]
async fn history_shows_each_patient_only_the_versions_that_were_theirs() {
    for s in servers().await {
        let b = s.backend;
        let w = world(&s).await;
        let moved = s.create(observation(&w.a, "weight")).await;
        let id = id_of(&moved);
        let mut v2 = observation(&w.b, "weight");
        v2["id"] = Value::from(id.clone());
        let r = s.put_json(&format!("/fhir/Observation/{id}"), &v2).await;
        assert_eq!(r.status, 200, "[{b}] {}", r.text);

        let token_b = patient_token(&s, &w.b).await;
        let r = get_as(&s, &token_b, &format!("/fhir/Observation/{id}/_history")).await;
        assert_eq!(r.status, 200, "[{b}] {}", r.text);
        let versions: Vec<String> = r.json()["entry"]
            .as_array()
            .expect("entries")
            .iter()
            .map(|e| {
                e["resource"]["meta"]["versionId"]
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            })
            .collect();
        assert_eq!(versions, vec!["2"], "[{b}] B sees only the version about B");
        let r = get_as(&s, &token_b, &format!("/fhir/Observation/{id}/_history/1")).await;
        assert_eq!(r.status, 404, "[{b}] {}", r.text);
        let r = get_as(&s, &token_b, &format!("/fhir/Observation/{id}/_history/2")).await;
        assert_eq!(r.status, 200, "[{b}] {}", r.text);

        let token_a = patient_token(&s, &w.a).await;
        let r = get_as(&s, &token_a, &format!("/fhir/Observation/{id}")).await;
        assert_eq!(
            r.status, 404,
            "[{b}] the current version is B's: {}",
            r.text
        );
        let r = get_as(&s, &token_a, "/fhir/Observation/_history").await;
        let ids = entries(&r.json());
        assert!(
            !ids.contains(&format!("Observation/{}", w.obs_b)),
            "[{b}] {ids:?}"
        );
    }
}

#[tokio::test]
async fn staff_see_related_patients_and_restricted_items_of_their_own_organisation_only() {
    for s in servers().await {
        let b = s.backend;
        let w = world(&s).await;
        let mut ours = observation(&w.a, "our restricted note");
        ours["meta"] = json!({"security": [{"system": CONFIDENTIALITY, "code": "R"}],
            "tag": [{"system": ODS, "code": OUR_ODS}]});
        let ours = id_of(&s.create(ours).await);
        let mut theirs = observation(&w.a, "their restricted note");
        theirs["meta"] = json!({"security": [{"system": CONFIDENTIALITY, "code": "R"}],
            "tag": [{"system": ODS, "code": OTHER_ODS}]});
        let theirs = id_of(&s.create(theirs).await);

        let token = staff_token(&s, OUR_ODS).await;
        let r = get_as(&s, &token, "/fhir/Observation?_total=accurate").await;
        assert_eq!(r.status, 200, "[{b}] {}", r.text);
        let mut got = entries(&r.json());
        got.sort();
        let mut expected = vec![
            format!("Observation/{}", w.obs_a),
            format!("Observation/{ours}"),
        ];
        expected.sort();
        assert_eq!(got, expected, "[{b}]");
        assert_eq!(r.json()["total"], 2, "[{b}]");
        for (path, status) in [
            (format!("/fhir/Observation/{}", w.obs_a), 200),
            (format!("/fhir/Observation/{theirs}"), 404),
            (format!("/fhir/Observation/{}", w.obs_b), 404),
            (format!("/fhir/Patient/{}", w.b), 404),
        ] {
            let r = get_as(&s, &token, &path).await;
            assert_eq!(r.status, status, "[{b}] {path}: {}", r.text);
        }

        // Staff write as their organisation, whatever tag they send.
        let mut forged = observation(&w.a, "forged");
        forged["meta"] = json!({"tag": [{"system": ODS, "code": OTHER_ODS}]});
        let r = send(
            s.with_token(&token, Method::POST, "/fhir/Observation")
                .header("content-type", "application/fhir+json")
                .body(forged.to_string()),
        )
        .await;
        assert_eq!(r.status, 201, "[{b}] {}", r.text);
        assert_eq!(
            r.json()["meta"]["tag"],
            json!([{"system": ODS, "code": OUR_ODS}]),
            "[{b}]"
        );
        // And not into the record of a patient they have no relationship with.
        let r = send(
            s.with_token(&token, Method::POST, "/fhir/Observation")
                .header("content-type", "application/fhir+json")
                .body(observation(&w.b, "unrelated").to_string()),
        )
        .await;
        assert!(matches!(r.status, 403 | 404), "[{b}] {}", r.text);
        // An update of an item out of reach is as absent.
        let mut edit = observation(&w.a, "moved in");
        edit["id"] = Value::from(w.obs_b.clone());
        let r = send(
            s.with_token(
                &token,
                Method::PUT,
                &format!("/fhir/Observation/{}", w.obs_b),
            )
            .header("content-type", "application/fhir+json")
            .body(edit.to_string()),
        )
        .await;
        assert_eq!(r.status, 404, "[{b}] {}", r.text);
    }
}

#[tokio::test]
async fn patients_cannot_claim_an_organisations_authorship() {
    for s in servers().await {
        let b = s.backend;
        let w = world(&s).await;
        let token = patient_token(&s, &w.a).await;
        let mut reading = observation(&w.a, "home blood pressure");
        reading["meta"] = json!({"tag": [{"system": ODS, "code": OUR_ODS}]});
        let r = send(
            s.with_token(&token, Method::POST, "/fhir/Observation")
                .header("content-type", "application/fhir+json")
                .body(reading.to_string()),
        )
        .await;
        assert_eq!(r.status, 201, "[{b}] {}", r.text);
        assert!(r.json()["meta"].get("tag").is_none(), "[{b}] {}", r.text);
        // Not into another patient's record.
        let r = send(
            s.with_token(&token, Method::POST, "/fhir/Observation")
                .header("content-type", "application/fhir+json")
                .body(observation(&w.b, "not mine").to_string()),
        )
        .await;
        assert_eq!(r.status, 404, "[{b}] {}", r.text);
        let creates: Vec<AuditRecord> = trail(&s, &w.a)
            .await
            .into_iter()
            .filter(|r| r.action == AuditAction::Create && r.purpose == "patient-access")
            .collect();
        assert_eq!(creates.len(), 1, "[{b}] the write left one record");
    }
}

#[tokio::test]
async fn breaking_glass_opens_one_record_and_is_audited_and_told_to_the_patient() {
    for s in servers().await {
        let b = s.backend;
        let w = world(&s).await;
        let token = staff_token(&s, OUR_ODS).await;
        let path = format!("/fhir/Observation/{}", w.obs_b);
        assert_eq!(get_as(&s, &token, &path).await.status, 404, "[{b}]");

        let reason = "unconscious in A&E, allergies needed";
        let r = send(
            s.with_token(&token, Method::GET, &path)
                .header("portico-break-glass-reason", reason)
                .header("portico-break-glass-patient", &w.b),
        )
        .await;
        assert_eq!(r.status, 200, "[{b}] {}", r.text);
        // A reason too short is refused.
        let r = send(
            s.with_token(&token, Method::GET, &path)
                .header("portico-break-glass-reason", "urgent")
                .header("portico-break-glass-patient", &w.b),
        )
        .await;
        assert_eq!(r.status, 400, "[{b}] {}", r.text);

        let records = trail(&s, &w.b).await;
        let read = records
            .iter()
            .find(|r| r.action == AuditAction::Read && r.outcome == AuditOutcome::Success)
            .expect("the read");
        assert_eq!(read.purpose, "break-glass", "[{b}]");
        assert_eq!(read.reason.as_deref(), Some(reason), "[{b}]");
        assert!(
            records.iter().any(|r| r.action == AuditAction::BreakGlass),
            "[{b}] a break-glass record"
        );

        let r = s
            .get(&format!("/fhir/Communication?subject=Patient/{}", w.b))
            .await;
        let bundle = r.json();
        let texts: Vec<&str> = bundle["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["resource"]["payload"][0]["contentString"].as_str())
            .collect();
        assert_eq!(texts.len(), 1, "[{b}] one notification: {}", r.text);
        assert!(
            texts[0].starts_with(&format!(
                "Your record was opened in an emergency by {OUR_ODS} on "
            )) && texts[0].ends_with(reason),
            "[{b}] {}",
            texts[0]
        );
    }
}

#[tokio::test]
async fn the_parent_of_a_twelve_year_old_does_not_see_sensitive_items() {
    for s in servers().await {
        let b = s.backend;
        let today = Utc::now().date_naive();
        let birth = format!("{}-01-01", today.year() - 12);
        let child = id_of(
            &s.create(
                json!({"resourceType": "Patient", "name": [{"family": "Child"}],
                "birthDate": birth}),
            )
            .await,
        );
        let ordinary = id_of(&s.create(observation(&child, "height")).await);
        let mut sensitive = observation(&child, "mood");
        sensitive["meta"] = json!({"security": [{"system": ACT_CODE, "code": "PSY"}]});
        let sensitive = id_of(&s.create(sensitive).await);
        let mother = id_of(
            &s.create(json!({"resourceType": "RelatedPerson",
                "patient": {"reference": format!("Patient/{child}")},
                "relationship": [{"coding": [{"system": ROLE_CODE, "code": "MTH"}]}]}))
                .await,
        );
        let token = user_token(
            &s,
            Role::Proxy,
            "launch/patient patient/*.rs",
            Some(&child),
            move |a| a.related_person_id = Some(mother),
        )
        .await;
        let r = get_as(&s, &token, "/fhir/Observation?_total=accurate").await;
        assert_eq!(r.status, 200, "[{b}] {}", r.text);
        assert_eq!(
            entries(&r.json()),
            vec![format!("Observation/{ordinary}")],
            "[{b}]"
        );
        assert_eq!(r.json()["total"], 1, "[{b}]");
        let r = get_as(&s, &token, &format!("/fhir/Observation/{sensitive}")).await;
        assert_eq!(r.status, 404, "[{b}] {}", r.text);
        let r = get_as(&s, &token, &format!("/fhir/Patient/{child}/$everything")).await;
        assert_eq!(r.status, 200, "[{b}] {}", r.text);
        let got = entries(&r.json());
        assert!(
            got.contains(&format!("Observation/{ordinary}")),
            "[{b}] {got:?}"
        );
        assert!(
            !got.contains(&format!("Observation/{sensitive}")),
            "[{b}] {got:?}"
        );
        let everything = trail(&s, &child)
            .await
            .into_iter()
            .find(|r| r.action == AuditAction::Everything)
            .expect("$everything recorded");
        assert_eq!(
            everything.on_behalf_of.as_deref(),
            Some(child.as_str()),
            "[{b}]"
        );
    }
}

#[tokio::test]
async fn a_system_search_leaves_one_record_per_patient_returned() {
    for s in servers().await {
        let b = s.backend;
        let w = world(&s).await;
        let r = s.get("/fhir/Observation?status=final&_count=50").await;
        assert_eq!(r.status, 200, "[{b}] {}", r.text);
        for p in [&w.a, &w.b] {
            let search: Vec<AuditRecord> = trail(&s, p)
                .await
                .into_iter()
                .filter(|r| r.action == AuditAction::Search)
                .collect();
            assert_eq!(search.len(), 1, "[{b}] one record for {p}");
            assert_eq!(
                search[0].entity.as_deref(),
                Some("Observation?_count&status"),
                "[{b}]"
            );
            assert_eq!(search[0].purpose, "system", "[{b}]");
        }
    }
}

#[tokio::test]
async fn bundle_entries_are_decided_one_by_one_and_refusals_are_recorded() {
    for s in servers().await {
        let b = s.backend;
        let w = world(&s).await;
        let token = patient_token(&s, &w.a).await;
        let post = |body: Value| {
            s.with_token(&token, Method::POST, "/fhir")
                .header("content-type", "application/fhir+json")
                .body(body.to_string())
        };
        let get = |url: String| json!({"request": {"method": "GET", "url": url}});
        let r = send(post(
            json!({"resourceType": "Bundle", "type": "batch", "entry": [
                get(format!("Observation/{}", w.obs_a)),
                get(format!("Observation/{}", w.obs_b)),
                get("Observation?_total=accurate".into()),
            ]}),
        ))
        .await;
        assert_eq!(r.status, 200, "[{b}] {}", r.text);
        let statuses: Vec<String> = r.json()["entry"]
            .as_array()
            .expect("entries")
            .iter()
            .map(|e| e["response"]["status"].as_str().unwrap_or("").to_string())
            .collect();
        assert_eq!(statuses.len(), 3, "[{b}]");
        assert!(statuses[0].starts_with("200"), "[{b}] {statuses:?}");
        assert!(statuses[1].starts_with("404"), "[{b}] {statuses:?}");
        assert_eq!(
            r.json()["entry"][2]["resource"]["total"],
            1,
            "[{b}] {}",
            r.text
        );

        // A transaction with one entry out of reach fails as a whole.
        let create = |patient: &str| {
            json!({"request": {"method": "POST", "url": "Observation"},
                "resource": observation(patient, "home reading")})
        };
        let before = s.get("/fhir/Observation?_summary=count").await.json()["total"].clone();
        let r = send(post(
            json!({"resourceType": "Bundle", "type": "transaction", "entry": [
                create(&w.a),
                create(&w.b),
            ]}),
        ))
        .await;
        assert_eq!(r.status, 404, "[{b}] {}", r.text);
        let after = s.get("/fhir/Observation?_summary=count").await.json()["total"].clone();
        assert_eq!(before, after, "[{b}] nothing was written");

        // The refused read and the refused write are on the trail too.
        s.state.store.seal_audit().await.expect("seal");
        let chain = s.state.store.audit_chain(0, 10_000).await.expect("chain");
        let refused: Vec<AuditRecord> = chain
            .iter()
            .filter_map(|e| e.record().ok())
            .filter(|r| r.outcome == AuditOutcome::Denied && r.purpose == "patient-access")
            .collect();
        assert!(
            refused.iter().any(|r| r.action == AuditAction::Read
                && r.entity.as_deref() == Some(format!("Observation/{}", w.obs_b).as_str())
                && r.status == Some(404)),
            "[{b}] {refused:?}"
        );
        assert!(
            refused.iter().any(|r| r.action == AuditAction::Create),
            "[{b}] {refused:?}"
        );
    }
}

#[tokio::test]
async fn a_binary_is_reached_through_the_letter_that_names_it() {
    for s in servers().await {
        let b = s.backend;
        let w = world(&s).await;
        let mut binaries = Vec::new();
        for patient in [&w.a, &w.b] {
            let binary = id_of(
                &s.create(
                    json!({"resourceType": "Binary", "contentType": "text/plain",
                    "data": "bGV0dGVy"}),
                )
                .await,
            );
            s.create(
                json!({"resourceType": "DocumentReference", "status": "current",
                "subject": {"reference": format!("Patient/{patient}")},
                "content": [{"attachment": {"contentType": "text/plain",
                    "url": format!("Binary/{binary}")}}]}),
            )
            .await;
            binaries.push(binary);
        }
        let token = patient_token(&s, &w.a).await;
        let r = get_as(&s, &token, &format!("/fhir/Binary/{}", binaries[0])).await;
        assert_eq!(r.status, 200, "[{b}] own letter: {}", r.text);
        let r = get_as(&s, &token, &format!("/fhir/Binary/{}", binaries[1])).await;
        assert_eq!(r.status, 404, "[{b}] another's letter: {}", r.text);
        let read = trail(&s, &w.a)
            .await
            .into_iter()
            .find(|r| r.action == AuditAction::Read)
            .expect("the read is recorded");
        assert_eq!(
            read.entity.as_deref(),
            Some(format!("Binary/{}/_history/1", binaries[0]).as_str()),
            "[{b}]"
        );
    }
}
