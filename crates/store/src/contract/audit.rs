//! The audit trail ([`crate::audit`]): records are durable, chained, written with the change
//! they describe (and rolled back with it), and listed per patient.

use std::sync::Arc;

use super::*;
use crate::audit::{
    AgentKind, AuditAction, AuditContext, AuditOutcome, AuditRecord, Verification, Verifier,
};

fn context(agent: &str) -> AuditContext {
    AuditContext {
        agent_kind: AgentKind::Staff,
        agent: agent.to_string(),
        organisation: Some("RX1".into()),
        on_behalf_of: None,
        purpose: "treatment".into(),
        reason: None,
        source: Some("192.0.2.7".into()),
    }
}

fn read_record(agent: &str, patient: &str, entity: &str) -> AuditRecord {
    context(agent).record(
        Utc::now(),
        AuditAction::Read,
        Some(entity.to_string()),
        Some(patient.to_string()),
        AuditOutcome::Success,
        Some(200),
    )
}

/// Seals what is pending and verifies the whole chain.
pub async fn verify_trail(store: &dyn Store) -> Verification {
    store.seal_audit().await.expect("sealing the audit trail");
    let mut verifier = Verifier::default();
    let mut after = 0;
    loop {
        let page = store
            .audit_chain(after, 100)
            .await
            .expect("reading the chain");
        let Some(last) = page.last() else { break };
        after = last.seq;
        for entry in &page {
            if !verifier.check(entry) {
                return verifier.finish();
            }
        }
    }
    verifier.finish()
}

async fn every_record_for(store: &dyn Store, patient: &str) -> Vec<AuditRecord> {
    let mut out = Vec::new();
    let mut before = None;
    loop {
        let page = store
            .audit_for_patient(patient, before, 3)
            .await
            .expect("listing a patient's trail");
        assert!(page.entries.len() <= 3, "a page holds at most the limit");
        for e in &page.entries {
            out.push(e.record().expect("a stored record parses"));
        }
        match page.next_before {
            Some(b) => before = Some(b),
            None => return out,
        }
    }
}

pub async fn appended_audit_records_are_chained_and_listed_per_patient_newest_first(
    store: Arc<dyn Store>,
) {
    for i in 0..7 {
        let patient = if i % 2 == 0 { "pat-a" } else { "pat-b" };
        store
            .append_audit(vec![read_record(
                &format!("agent-{i}"),
                patient,
                &format!("Observation/o{i}"),
            )])
            .await
            .expect("append");
    }
    let v = verify_trail(&*store).await;
    assert_eq!(v.fault, None, "an untouched trail verifies");
    assert_eq!(v.checked, 7, "every appended record is in the chain");
    let a = every_record_for(&*store, "pat-a").await;
    let agents: Vec<&str> = a.iter().map(|r| r.agent.as_str()).collect();
    assert_eq!(
        agents,
        ["agent-6", "agent-4", "agent-2", "agent-0"],
        "pat-a's records only, newest first, across pages"
    );
    assert_eq!(a[0].source.as_deref(), Some("192.0.2.7"));
    assert!(every_record_for(&*store, "pat-nobody").await.is_empty());
}

pub async fn audited_writes_leave_one_record_each_in_their_transaction(store: Arc<dyn Store>) {
    let patient = create(&*store, super::patient("Jones", "Ann", "9000000009")).await;
    let ctx = context("clinician-1");
    let outcomes = store
        .transaction_audited(
            vec![
                create_op(observation(
                    &format!("Patient/{}", patient.id),
                    "8867-4",
                    "Heart rate",
                    72.0,
                    "/min",
                    "2026-01-01T10:00:00Z",
                )),
                update_op(
                    &patient.id,
                    super::patient("Jones", "Annie", "9000000009"),
                    None,
                ),
            ],
            Some(&ctx),
        )
        .await
        .expect("an audited transaction");
    let obs = outcomes[0].version().expect("created").clone();
    let records = every_record_for(&*store, &patient.id).await;
    assert_eq!(records.len(), 2, "one record per write: {records:?}");
    let mut actions: Vec<(AuditAction, String)> = records
        .iter()
        .map(|r| (r.action, r.entity.clone().unwrap_or_default()))
        .collect();
    actions.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(
        actions,
        vec![
            (
                AuditAction::Create,
                format!("Observation/{}/_history/1", obs.id)
            ),
            (
                AuditAction::Update,
                format!("Patient/{}/_history/2", patient.id)
            ),
        ]
    );
    assert!(records.iter().all(|r| r.agent == "clinician-1"
        && r.organisation.as_deref() == Some("RX1")
        && r.outcome == AuditOutcome::Success));

    // A transaction that fails writes no record: they roll back together.
    let failed = store
        .transaction_audited(
            vec![
                create_op(observation(
                    &format!("Patient/{}", patient.id),
                    "8867-4",
                    "Heart rate",
                    80.0,
                    "/min",
                    "2026-01-02T10:00:00Z",
                )),
                update_op(
                    &patient.id,
                    super::patient("Jones", "Anne", "9000000009"),
                    Some(1),
                ),
            ],
            Some(&ctx),
        )
        .await;
    assert!(failed.is_err(), "a stale If-Match fails the transaction");
    assert_eq!(
        every_record_for(&*store, &patient.id).await.len(),
        2,
        "the failed transaction left no audit record"
    );

    // Deleting records whose record it was.
    store
        .transaction_audited(
            vec![WriteOp::Delete {
                resource_type: "Observation".into(),
                id: obs.id.clone(),
            }],
            Some(&ctx),
        )
        .await
        .expect("an audited delete");
    let records = every_record_for(&*store, &patient.id).await;
    assert_eq!(records[0].action, AuditAction::Delete);
    assert_eq!(
        records[0].entity.as_deref(),
        Some(format!("Observation/{}/_history/2", obs.id).as_str())
    );

    // Unaudited writes leave nothing.
    create(
        &*store,
        observation(
            &format!("Patient/{}", patient.id),
            "8867-4",
            "Heart rate",
            75.0,
            "/min",
            "2026-01-03T10:00:00Z",
        ),
    )
    .await;
    assert_eq!(every_record_for(&*store, &patient.id).await.len(), 3);
    let v = verify_trail(&*store).await;
    assert_eq!((v.fault, v.checked), (None, 3));
}

pub async fn racing_appends_all_land_in_one_unbroken_chain(store: Arc<dyn Store>) {
    let tasks: Vec<_> = (0..16)
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..10 {
                    let records = (0..=(i % 3))
                        .map(|k| read_record(&format!("t{t}"), "pat-race", &format!("X/{i}-{k}")))
                        .collect();
                    store.append_audit(records).await.expect("append");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    // 16 tasks x (4 x 1 + 3 x 2 + 3 x 3) records.
    let expected = 16 * (4 + 6 + 9);
    let v = verify_trail(&*store).await;
    assert_eq!(v.fault, None, "racing appends leave an unbroken chain");
    assert_eq!(v.checked, expected, "no record is lost");
    assert_eq!(
        every_record_for(&*store, "pat-race").await.len() as u64,
        expected
    );
    // Sealing again finds nothing new, and the chain still verifies.
    assert_eq!(store.seal_audit().await.expect("seal"), 0);
    assert_eq!(verify_trail(&*store).await.checked, expected);
}
