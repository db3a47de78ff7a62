//! `portico audit verify`: walks the audit trail's chain of hashes ([`store::audit`]).

use std::sync::Arc;

use store::audit::Verifier;

use crate::app::{open_store, IfMissing};
use crate::cli::AuditVerifyArgs;
use crate::config::Config;
use crate::error::{Error, Result};

/// Records read per page.
const PAGE: usize = 5000;

pub async fn verify(config: Arc<Config>, args: AuditVerifyArgs) -> Result<()> {
    let store = open_store(
        &config,
        IfMissing::Refuse {
            fix: "point PORTICO_DATABASE_URL at the server's database",
        },
    )
    .await?;
    // Records committed but not yet chained (PostgreSQL chains after commit) are chained first.
    store.seal_audit().await?;
    let mut verifier = Verifier::default();
    let mut after = 0;
    'pages: loop {
        let page = store.audit_chain(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for entry in &page {
            if !verifier.check(entry) {
                break 'pages;
            }
        }
    }
    let result = verifier.finish();
    let (last_seq, last_hash) = match &result.last {
        Some((seq, hash)) => (Some(*seq), Some(hash.clone())),
        None => (None, None),
    };
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "checked": result.checked,
                "last_seq": last_seq,
                "last_hash": last_hash,
                "fault": result.fault.as_ref().map(|f| f.to_string()),
            })
        );
    } else {
        println!("audit records checked: {}", result.checked);
        if let (Some(seq), Some(hash)) = (last_seq, &last_hash) {
            println!("last record: {seq}, hash {hash}");
            println!("Keep this hash outside the database: a later run must reach it again.");
        }
    }
    match result.fault {
        Some(fault) => Err(Error::Tampered(fault.to_string())),
        None => Ok(()),
    }
}
