//! Portal state beside the resources: writes that commit with a transaction's resources
//! ([`WriteOp::PutState`]), and compare-and-put ([`Store::state_compare_and_put`]), the claim
//! that lets exactly one of several server instances take a piece of background work.

use std::sync::Arc;

use super::*;
use crate::model::{WriteOp, WriteOutcome};
use crate::{Store, StoreError};

fn put_state(key: &str, value: &str) -> WriteOp {
    WriteOp::PutState {
        key: key.into(),
        value: value.into(),
    }
}

pub async fn put_state_commits_and_rolls_back_with_the_transaction(store: Arc<dyn Store>) {
    let nhs = nhs_number(71);
    let outcomes = match store
        .transaction(vec![
            create_op(patient("Moss", "Ada", &nhs)),
            put_state("import/batch/a", "first"),
        ])
        .await
    {
        Ok(o) => o,
        Err(e) => panic!("a transaction with a state write should commit: {e}"),
    };
    assert_eq!(outcomes.len(), 2, "one outcome per operation");
    assert!(matches!(&outcomes[0], WriteOutcome::Created(_)));
    assert_eq!(outcomes[1], WriteOutcome::StatePut);
    assert_eq!(
        store.state_get("import/batch/a").await.expect("state_get"),
        Some("first".to_string()),
        "the state written in the transaction is stored"
    );
    let id = outcomes[0].version().expect("created").id.clone();

    // A failing entry after the state write rolls the state write back too.
    let e = expect_err(
        store
            .transaction(vec![
                put_state("import/batch/a", "second"),
                put_state("import/batch/b", "new"),
                update_op(&id, patient("Moss", "Ada", &nhs), Some(7)),
            ])
            .await,
        "a transaction whose last entry has a stale If-Match",
    );
    assert!(
        matches!(&e, StoreError::Entry { index: 2, .. }),
        "the error names entry 2, got {e:?}"
    );
    assert_eq!(
        store.state_get("import/batch/a").await.expect("state_get"),
        Some("first".to_string()),
        "the replaced value is back"
    );
    assert_eq!(
        store.state_get("import/batch/b").await.expect("state_get"),
        None,
        "the new key was rolled back"
    );
}

pub async fn compare_and_put_writes_only_over_the_expected_value(store: Arc<dyn Store>) {
    let cas = |expected: Option<&'static str>, value: &'static str| {
        let store = store.clone();
        async move {
            store
                .state_compare_and_put("export/j", expected, value)
                .await
                .expect("state_compare_and_put")
        }
    };
    let get = || {
        let store = store.clone();
        async move { store.state_get("export/j").await.expect("state_get") }
    };
    assert!(!cas(Some("queued"), "x").await, "nothing is there to swap");
    assert_eq!(get().await, None, "a failed swap writes nothing");
    assert!(cas(None, "queued").await, "absent as expected: created");
    assert_eq!(get().await.as_deref(), Some("queued"));
    assert!(!cas(None, "other").await, "no longer absent");
    assert!(!cas(Some("running"), "other").await, "another value");
    assert!(
        !cas(Some("queue"), "other").await,
        "a prefix is not the value"
    );
    assert_eq!(
        get().await.as_deref(),
        Some("queued"),
        "failed swaps change nothing"
    );
    assert!(
        cas(Some("queued"), "running").await,
        "the expected value: swapped"
    );
    assert_eq!(get().await.as_deref(), Some("running"));
    assert!(!cas(Some("queued"), "again").await, "the old value is gone");
    store.state_delete("export/j").await.expect("state_delete");
    assert!(cas(None, "fresh").await, "absent again after a delete");
    assert_eq!(get().await.as_deref(), Some("fresh"));
}

pub async fn racing_compare_and_puts_from_one_value_have_exactly_one_winner(store: Arc<dyn Store>) {
    for round in 0..5 {
        let key = format!("export/race-{round}");
        // From a value, and (in odd rounds) from absent.
        let from = (round % 2 == 0).then(|| "queued".to_string());
        if let Some(v) = &from {
            store.state_put(&key, v).await.expect("state_put");
        }
        let racers: Vec<_> = (0..12)
            .map(|i| {
                let (store, key, from) = (store.clone(), key.clone(), from.clone());
                tokio::spawn(async move {
                    store
                        .state_compare_and_put(&key, from.as_deref(), &format!("claimed by {i}"))
                        .await
                        .expect("state_compare_and_put")
                })
            })
            .collect();
        let mut winners = 0;
        for r in futures::future::join_all(racers).await {
            if r.expect("racer") {
                winners += 1;
            }
        }
        assert_eq!(winners, 1, "round {round}: exactly one claim wins");
        let stored = store.state_get(&key).await.expect("state_get");
        assert!(
            stored
                .as_deref()
                .is_some_and(|v| v.starts_with("claimed by ")),
            "round {round}: the winner's value is stored, got {stored:?}"
        );
    }
}
