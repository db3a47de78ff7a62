// TEMPORARY: timing of filtered searches; deleted after measuring.
use std::time::Instant;
use store::access::{Filter, PatientScope, RestrictedRule};
use serde_json::json;
use store::contract::*;
use store::{Access, SearchQuery, Store, WriteOp};
use store_sqlite::SqliteStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn perf() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    let store = SqliteStore::open(&format!("sqlite://{}", path.display()), true).unwrap();
    let n_pat = 3000usize;
    let mut ops = Vec::new();
    for o in 0..10 { ops.push(update_op(&format!("org{o}"), organisation(Some(&format!("ODS{o}"))), None)); }
    store.transaction(ops).await.unwrap();
    let t = Instant::now();
    for chunk in 0..(n_pat / 100) {
        let mut ops: Vec<WriteOp> = Vec::new();
        for i in chunk * 100..(chunk + 1) * 100 {
            let mut p = patient("Smith", "Ann", &nhs_number(i as u32));
            p["managingOrganization"] = json!({"reference": format!("Organization/org{}", i % 10)});
            ops.push(update_op(&format!("p{i}"), p, None));
            for k in 0..20 {
                let label = if k % 7 == 0 { Label::Restricted } else { Label::Ordinary };
                ops.push(update_op(&format!("o{i}-{k}"), item(Some(&format!("Patient/p{i}")), if k % 2 == 0 {"A"} else {"B"}, label, Some(&format!("ODS{}", i % 10)), None, None), None));
            }
        }
        store.transaction(ops).await.unwrap();
    }
    println!("load {:?}", t.elapsed());
    let run = |name: &'static str, q: SearchQuery| {
        let store = &store;
        async move {
            let t = Instant::now();
            let mut r = None;
            for _ in 0..5 { r = Some(store.search(&q).await.unwrap()); }
            let r = r.unwrap();
            println!("{name}: {:?} per query, {} matches, total {:?}", t.elapsed() / 5, r.matches.len(), r.total);
        }
    };
    let only = Filter { patients: PatientScope::Only(vec!["p1500".into()]), hide_restricted: RestrictedRule::Show, hide_sensitive: false };
    let related = Filter { patients: PatientScope::RelatedTo("ODS3".into()), hide_restricted: RestrictedRule::HideUnlessAuthor("ODS3".into()), hide_sensitive: false };
    let mut q = query("Observation", &[]); q.access = Some(Access::uniform(only.clone()));
    run("only, all obs", q.clone()).await;
    q.total = true; run("only, all obs, total", q.clone()).await;
    let mut q = query("Observation", &[("code", "A")]); q.access = Some(Access::uniform(only.clone()));
    run("only, code A", q.clone()).await;
    let mut q = query("Observation", &[]); q.access = Some(Access::uniform(related.clone()));
    run("related, all obs", q.clone()).await;
    q.total = true; run("related, all obs, total", q.clone()).await;
    let mut q = query("Observation", &[("code", "B")]); q.access = Some(Access::uniform(related.clone())); q.total = true;
    run("related, code B, total", q.clone()).await;
    let mut q = query("Patient", &[("family", "smith")]); q.access = Some(Access::uniform(related.clone())); q.total = true;
    run("related, patients, total", q.clone()).await;
    let mut q = query("Observation", &[("code", "A")]); q.access = None; q.total = true;
    run("unfiltered code A total", q.clone()).await;
    let t = Instant::now();
    let n = store.reindex_access().await.unwrap();
    println!("reindex {n} in {:?}", t.elapsed());
    let t = Instant::now();
    let h = store.history(&store::HistoryQuery { scope: store::HistoryScope::Type { resource_type: "Observation".into() }, since: None, count: 50, offset: 0, access: Some(Access::uniform(only.clone())) }).await.unwrap();
    println!("type history only: {:?} total {}", t.elapsed(), h.total);
}
