//! "Who has looked at your record": a patient sees the records about their own record in plain
//! words — staff by organisation, themselves as "You", emergency access highlighted with its
//! reason — and nothing about anyone else's; a proxy sees it only with the audit feature. A
//! module of the `http` test binary, on every available backend.

use chrono::TimeDelta;
use serde_json::json;
use store::accounts::{IdentityLevel, Role};
use store::audit::{AgentKind, AuditAction, AuditContext, AuditOutcome};
use store::{Prepared, WriteOp};
use web::signin::provision::{self, NewAccount};

use crate::signin::{apps, cheap, App, PASSWORD};

async fn put(app: &App, value: serde_json::Value) {
    let id = value["id"].as_str().expect("id").to_string();
    app.state
        .store
        .write(WriteOp::Update {
            id,
            resource: Prepared::new(value).expect("valid"),
            if_match: None,
            full_url: None,
        })
        .await
        .expect("write");
}

async fn account(
    app: &App,
    username: &str,
    role: Role,
    patient: Option<&str>,
    rp: Option<&str>,
) -> (String, identity::totp::Secret) {
    let secret = identity::totp::Secret::generate();
    let a = provision::create_account(
        app.state.store.as_ref(),
        &cheap(),
        NewAccount {
            username: username.into(),
            role: Some(role),
            patient_id: patient.map(str::to_string),
            related_person_id: rp.map(str::to_string),
            identity_level: Some(IdentityLevel::P9),
            totp_secret: Some(secret.to_base32()),
            ..NewAccount::default()
        },
        PASSWORD,
        app.now(),
    )
    .await
    .expect("store")
    .expect("accepted");
    (a.account_id, secret)
}

fn staff(ods: &str) -> AuditContext {
    AuditContext {
        agent_kind: AgentKind::Staff,
        agent: "staff-account-1".into(),
        organisation: Some(ods.into()),
        on_behalf_of: None,
        purpose: "treatment".into(),
        reason: None,
        source: Some("10.0.0.9".into()),
    }
}

#[tokio::test]
async fn a_patient_sees_who_looked_at_their_record_in_plain_words() {
    for (app, _db) in apps().await {
        put(&app, json!({"resourceType": "Organization", "id": "org-1", "name": "Northmoor Hospitals NHS Trust",
            "identifier": [{"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "RX1"}]})).await;
        for p in ["pat-a", "pat-b"] {
            put(&app, json!({"resourceType": "Patient", "id": p, "name": [{"family": "Smith", "given": ["Jo"]}]})).await;
        }
        let (me, secret) = account(&app, "patient-a", Role::Patient, Some("pat-a"), None).await;
        let now = app.now();
        let store = &app.state.store;
        let ctx = staff("RX1");
        let mut emergency = staff("RX1");
        emergency.purpose = "break-glass".into();
        emergency.reason = Some("Unconscious in the emergency department".into());
        let mine = AuditContext {
            agent_kind: AgentKind::Patient,
            agent: me.clone(),
            organisation: None,
            on_behalf_of: None,
            purpose: "patient-access".into(),
            reason: None,
            source: None,
        };
        store
            .append_audit(vec![
                ctx.record(
                    now - TimeDelta::hours(3),
                    AuditAction::Read,
                    Some("Observation/o1/_history/1".into()),
                    Some("pat-a".into()),
                    AuditOutcome::Success,
                    Some(200),
                ),
                emergency.record(
                    now - TimeDelta::hours(2),
                    AuditAction::Read,
                    Some("Condition/c1/_history/1".into()),
                    Some("pat-a".into()),
                    AuditOutcome::Success,
                    Some(200),
                ),
                mine.record(
                    now - TimeDelta::hours(1),
                    AuditAction::Search,
                    Some("Appointment?date".into()),
                    Some("pat-a".into()),
                    AuditOutcome::Success,
                    Some(200),
                ),
                ctx.record(
                    now,
                    AuditAction::Read,
                    Some("Observation/secret-of-b/_history/1".into()),
                    Some("pat-b".into()),
                    AuditOutcome::Success,
                    Some(200),
                ),
            ])
            .await
            .expect("append");

        let mut b = app.browser();
        b.sign_in(&app, "patient-a", &secret).await;
        let page = b.get("/account/access-log").await;
        assert_eq!(page.status, 200, "[{}] {}", app.backend, page.body);
        assert_eq!(page.title(), "Who has looked at your record – Portico");
        let body = &page.body;
        assert!(
            body.contains("Staff at Northmoor Hospitals NHS Trust"),
            "[{}] {body}",
            app.backend
        );
        assert!(body.contains("Looked at a test result or measurement"));
        assert!(body.contains("Emergency access"));
        assert!(body.contains("Unconscious in the emergency department"));
        assert!(body.contains("access-log__entry--emergency"));
        assert!(body.contains(">You<"));
        assert!(body.contains("Searched the record for an appointment"));
        assert!(!body.contains("secret-of-b") && body.matches("access-log__entry").count() >= 3);
        // Newest first: the patient's own search comes before the staff read.
        let own = body.find("Searched the record").expect("own entry");
        let staff_read = body.find("Looked at a test result").expect("staff entry");
        assert!(own < staff_read, "newest first");
        // Exactly the entries about pat-a: the three above and the patient's own sign-in.
        assert!(body.contains("Signed in"), "[{}] {body}", app.backend);
        assert_eq!(
            body.matches("<li class=\"access-log__entry").count(),
            4,
            "[{}]",
            app.backend
        );
    }
}

#[tokio::test]
async fn a_proxy_sees_the_log_only_with_the_audit_feature_and_others_not_at_all() {
    for (app, _db) in apps().await {
        put(&app, json!({"resourceType": "Patient", "id": "child-1", "name": [{"family": "Smith", "given": ["Sam"]}], "birthDate": "2019-05-01"})).await;
        let feature = |codes: &[&str]| {
            json!([{"url": policy::PROXY_ACCESS_EXTENSION, "extension":
            codes.iter().map(|c| json!({"url": "feature", "valueCode": c})).collect::<Vec<_>>()}])
        };
        put(&app, json!({"resourceType": "RelatedPerson", "id": "rp-with", "patient": {"reference": "Patient/child-1"},
            "relationship": [{"coding": [{"code": "CAREGIVER"}]}], "name": [{"family": "Jones", "given": ["Pat"]}],
            "extension": feature(&["appointments", "audit"])})).await;
        put(&app, json!({"resourceType": "RelatedPerson", "id": "rp-without", "patient": {"reference": "Patient/child-1"},
            "relationship": [{"coding": [{"code": "CAREGIVER"}]}], "extension": feature(&["appointments"])})).await;
        app.state
            .store
            .append_audit(vec![staff("RX1").record(
                app.now(),
                AuditAction::Read,
                Some("Appointment/a1/_history/1".into()),
                Some("child-1".into()),
                AuditOutcome::Success,
                Some(200),
            )])
            .await
            .expect("append");

        let (_, with) = account(&app, "carer-with", Role::Proxy, None, Some("rp-with")).await;
        let mut b = app.browser();
        b.sign_in(&app, "carer-with", &with).await;
        let page = b.get("/account/access-log").await;
        assert_eq!(page.status, 200, "[{}] {}", app.backend, page.body);
        assert!(
            page.body.contains("Sam Smith"),
            "says whose record: {}",
            page.body
        );
        assert!(page.body.contains("Looked at an appointment"));

        let (_, without) =
            account(&app, "carer-without", Role::Proxy, None, Some("rp-without")).await;
        let mut b = app.browser();
        b.sign_in(&app, "carer-without", &without).await;
        let page = b.get("/account/access-log").await;
        assert_eq!(
            page.status, 404,
            "[{}] no audit feature, nothing to show",
            app.backend
        );
        assert!(!page.body.contains("Looked at"));

        let (_, staff_secret) = account(&app, "clerk", Role::Admin, None, None).await;
        let mut b = app.browser();
        b.sign_in(&app, "clerk", &staff_secret).await;
        assert_eq!(b.get("/account/access-log").await.status, 404);
    }
}
