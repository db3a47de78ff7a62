//! The audit trail on SQLite ([`store::audit`]). The one writer numbers and hashes each record
//! as it inserts it, so the chain's order is the commit order and no sealing step is needed.
//! The writer reads the chain's last link when it starts a transaction (another process, e.g. an
//! import, may have appended since) and rewinds it when a request's savepoint is rolled back.

use rusqlite::{params, Connection, OptionalExtension};
use store::audit::{self, AuditEntry, AuditPage, AuditRecord, Chain};
use store::Result;

use crate::conn::db_err;

const LAST_LINK: &str = "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1";
const INSERT: &str = "INSERT INTO audit_log (seq, recorded, patient_id, detail, prev_hash, hash) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
const FOR_PATIENT: &str = "SELECT seq, detail, prev_hash, hash FROM audit_log \
     WHERE patient_id = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3";
const CHAIN: &str = "SELECT seq, detail, prev_hash, hash FROM audit_log \
     WHERE seq > ?1 ORDER BY seq LIMIT ?2";

/// The chain as stored: it continues from the last record.
pub(crate) fn load_chain(conn: &Connection) -> Result<Chain> {
    let last = conn
        .prepare_cached(LAST_LINK)
        .and_then(|mut s| {
            s.query_row([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
                .optional()
        })
        .map_err(|e| db_err("reading the audit trail's last record", e))?;
    Ok(Chain::after(last))
}

/// Appends `records` to the chain and the table (inside the caller's transaction).
pub(crate) fn insert(conn: &Connection, chain: &mut Chain, records: &[AuditRecord]) -> Result<()> {
    let mut stmt = conn
        .prepare_cached(INSERT)
        .map_err(|e| db_err("preparing an audit record", e))?;
    for record in records {
        let entry = chain.append(record);
        stmt.execute(params![
            entry.seq,
            audit::to_millis(record.recorded),
            record.patient,
            entry.detail,
            entry.prev_hash,
            entry.hash
        ])
        .map_err(|e| db_err("writing an audit record", e))?;
    }
    Ok(())
}

fn entries(
    conn: &Connection,
    sql: &str,
    args: impl rusqlite::Params,
    what: &str,
) -> Result<Vec<AuditEntry>> {
    conn.prepare_cached(sql)
        .and_then(|mut s| {
            s.query_map(args, |r| {
                Ok(AuditEntry {
                    seq: r.get(0)?,
                    detail: r.get(1)?,
                    prev_hash: r.get(2)?,
                    hash: r.get(3)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(|e| db_err(what, e))
}

pub(crate) fn for_patient(
    conn: &Connection,
    patient_id: &str,
    before: Option<i64>,
    limit: usize,
) -> Result<AuditPage> {
    let limit = limit.max(1);
    let mut found = entries(
        conn,
        FOR_PATIENT,
        params![patient_id, before.unwrap_or(i64::MAX), limit as i64 + 1],
        "reading a patient's audit trail",
    )?;
    let more = found.len() > limit;
    found.truncate(limit);
    let next_before = more.then(|| found.last().map(|e| e.seq)).flatten();
    Ok(AuditPage {
        entries: found,
        next_before,
    })
}

pub(crate) fn chain(conn: &Connection, after_seq: i64, limit: usize) -> Result<Vec<AuditEntry>> {
    entries(
        conn,
        CHAIN,
        params![after_seq, limit as i64],
        "reading the audit trail",
    )
}
