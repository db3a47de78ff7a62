//! The audit trail on PostgreSQL ([`store::audit`]).
//!
//! Many servers append at once, so a record is stored unsealed (no `seq`, no hash) with the id
//! of the transaction that wrote it (migration 0005); the [`seal`] step, run by one server at a
//! time (an advisory lock), takes the records of finished transactions in `(xid, id)` order,
//! numbers them and chains their hashes. A transaction still running has an xid at or after the
//! snapshot's `xmin`, so no record can later appear before one already sealed.
//!
//! Reads are audited too, and a read is answered only once its record is durable; a commit per
//! read would cost a WAL flush each, so the [`Appender`] gathers the records of concurrent
//! requests into one statement and one commit.

use std::time::Duration;

use sqlx::{PgPool, Postgres, Row, Transaction};
use store::audit::{self, AuditEntry, AuditPage, AuditRecord, Chain};
use store::{Result, StoreError};
use tokio::sync::{mpsc, oneshot};

use crate::db_err;

/// Most records one appender commit takes.
const BATCH_RECORDS: usize = 2000;
/// Most records one sealing step chains.
const SEAL_BATCH: i64 = 5000;
/// How often each server tries to seal.
const SEAL_EVERY: Duration = Duration::from_millis(250);
/// The advisory lock that lets one server seal at a time ("portico audit").
const SEAL_LOCK: i64 = 0x706f_7274_6175_6469;

const INSERT: &str = "INSERT INTO audit_log (recorded, patient_id, detail) \
     SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[])";
const LAST_LINK: &str =
    "SELECT seq, hash FROM audit_log WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1";
const UNSEALED: &str = "SELECT id, detail FROM audit_log \
     WHERE seq IS NULL AND xid < pg_snapshot_xmin(pg_current_snapshot()) \
     ORDER BY xid, id LIMIT $1";
const SEAL: &str = "UPDATE audit_log AS a SET seq = u.seq, prev_hash = u.prev_hash, hash = u.hash \
     FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[]) AS u(id, seq, prev_hash, hash) \
     WHERE a.id = u.id";
const FOR_PATIENT: &str = "SELECT id, detail, COALESCE(prev_hash, ''), COALESCE(hash, '') \
     FROM audit_log WHERE patient_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3";
const CHAIN: &str = "SELECT seq, detail, prev_hash, hash FROM audit_log \
     WHERE seq > $1 ORDER BY seq LIMIT $2";

/// Inserts `records` (unsealed) with `executor`: in a resource transaction, or a batch's own.
pub(crate) async fn insert<'e, E>(executor: E, records: &[AuditRecord]) -> Result<()>
where
    E: sqlx::Executor<'e, Database = Postgres>,
{
    if records.is_empty() {
        return Ok(());
    }
    let recorded: Vec<i64> = records
        .iter()
        .map(|r| audit::to_millis(r.recorded))
        .collect();
    let patients: Vec<Option<String>> = records.iter().map(|r| r.patient.clone()).collect();
    let details: Vec<String> = records.iter().map(AuditRecord::detail).collect();
    sqlx::query(INSERT)
        .bind(recorded)
        .bind(patients)
        .bind(details)
        .execute(executor)
        .await
        .map_err(db_err)?;
    Ok(())
}

type Request = (Vec<AuditRecord>, oneshot::Sender<Result<()>>);

/// Gathers the records of concurrent requests into one commit, and seals in the pauses.
#[derive(Debug, Clone)]
pub(crate) struct Appender {
    requests: mpsc::Sender<Request>,
}

impl Appender {
    /// Starts the task; it ends when the last `Appender` is dropped.
    pub(crate) fn start(pool: PgPool) -> Appender {
        let (requests, receiver) = mpsc::channel(4096);
        tokio::spawn(run(pool, receiver));
        Appender { requests }
    }

    /// Appends `records`; returns once they are committed.
    pub(crate) async fn append(&self, records: Vec<AuditRecord>) -> Result<()> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send((records, reply))
            .await
            .map_err(|_| StoreError::Unavailable)?;
        answer.await.map_err(|_| StoreError::Unavailable)?
    }
}

async fn run(pool: PgPool, mut receiver: mpsc::Receiver<Request>) {
    let mut ticker = tokio::time::interval(SEAL_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            request = receiver.recv() => {
                let Some(first) = request else { return };
                let mut batch = vec![first];
                let mut records = batch[0].0.len();
                while records < BATCH_RECORDS {
                    match receiver.try_recv() {
                        Ok(next) => {
                            records += next.0.len();
                            batch.push(next);
                        }
                        Err(_) => break,
                    }
                }
                let all: Vec<AuditRecord> =
                    batch.iter_mut().flat_map(|(r, _)| std::mem::take(r)).collect();
                let result = commit(&pool, &all).await;
                for (_, reply) in batch {
                    let _ = reply.send(match &result {
                        Ok(()) => Ok(()),
                        Err(e) => Err(StoreError::Database(e.to_string())),
                    });
                }
            }
            _ = ticker.tick() => {
                if let Err(e) = seal_pending(&pool).await {
                    tracing::warn!(error = %e, "sealing the audit trail failed; it will be retried");
                }
            }
        }
    }
}

async fn commit(pool: &PgPool, records: &[AuditRecord]) -> Result<()> {
    let mut tx = pool.begin().await.map_err(db_err)?;
    insert(&mut *tx, records).await?;
    tx.commit().await.map_err(db_err)
}

/// Chains the records of finished transactions; how many. Another server sealing at the same
/// moment makes this one return 0 (the background step: it runs again shortly).
pub(crate) async fn seal_pending(pool: &PgPool) -> Result<u64> {
    seal_with(pool, false).await
}

/// Chains every record committed before the call ([`store::Store::seal_audit`]): waits for the
/// transactions running at the call to end (at most [`SEAL_WAIT`]) and for any other server's
/// sealing step, then seals.
pub(crate) async fn seal(pool: &PgPool) -> Result<u64> {
    let started: String =
        sqlx::query_scalar("SELECT pg_snapshot_xmax(pg_current_snapshot())::text")
            .fetch_one(pool)
            .await
            .map_err(db_err)?;
    let deadline = tokio::time::Instant::now() + SEAL_WAIT;
    loop {
        let done: bool =
            sqlx::query_scalar("SELECT pg_snapshot_xmin(pg_current_snapshot()) >= $1::text::xid8")
                .bind(&started)
                .fetch_one(pool)
                .await
                .map_err(db_err)?;
        if done || tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    seal_with(pool, true).await
}

/// How long [`seal`] waits for transactions that were running when it was called, and for
/// another server's sealing step.
const SEAL_WAIT: Duration = Duration::from_secs(30);
/// [`SEAL_WAIT`] as the lock timeout of the sealing transaction.
const LOCK_TIMEOUT: &str = "SET LOCAL lock_timeout = '30s'";

async fn seal_with(pool: &PgPool, wait_for_lock: bool) -> Result<u64> {
    let mut total = 0;
    loop {
        let mut tx = pool.begin().await.map_err(db_err)?;
        let sealed = seal_some(&mut tx, wait_for_lock).await?;
        tx.commit().await.map_err(db_err)?;
        total += sealed;
        if sealed < SEAL_BATCH as u64 {
            return Ok(total);
        }
    }
}

async fn seal_some(tx: &mut Transaction<'static, Postgres>, wait_for_lock: bool) -> Result<u64> {
    let locked: bool = if wait_for_lock {
        // Another server's sealing step holds the lock for one batch; if it holds it far
        // longer, that server is stuck mid-transaction: say so rather than wait forever.
        sqlx::query(LOCK_TIMEOUT)
            .execute(&mut **tx)
            .await
            .map_err(db_err)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(SEAL_LOCK)
            .execute(&mut **tx)
            .await
            .map_err(|e| {
                StoreError::Database(format!(
                    "another server has held the audit sealing lock for over {}s ({e}); \
                     look for a session stuck in a transaction in pg_stat_activity, then retry",
                    SEAL_WAIT.as_secs()
                ))
            })?;
        true
    } else {
        sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
            .bind(SEAL_LOCK)
            .fetch_one(&mut **tx)
            .await
            .map_err(db_err)?
    };
    if !locked {
        return Ok(0);
    }
    let last = sqlx::query(LAST_LINK)
        .fetch_optional(&mut **tx)
        .await
        .map_err(db_err)?
        .map(|r| Ok::<_, sqlx::Error>((r.try_get::<i64, _>(0)?, r.try_get::<String, _>(1)?)))
        .transpose()
        .map_err(db_err)?;
    let rows = sqlx::query(UNSEALED)
        .bind(SEAL_BATCH)
        .fetch_all(&mut **tx)
        .await
        .map_err(db_err)?;
    if rows.is_empty() {
        return Ok(0);
    }
    let mut chain = Chain::after(last);
    let (mut ids, mut seqs, mut prevs, mut hashes) = (vec![], vec![], vec![], vec![]);
    for row in rows {
        let id: i64 = row.try_get(0).map_err(db_err)?;
        let detail: String = row.try_get(1).map_err(db_err)?;
        let entry = chain.append_detail(detail);
        ids.push(id);
        seqs.push(entry.seq);
        prevs.push(entry.prev_hash);
        hashes.push(entry.hash);
    }
    let n = ids.len() as u64;
    sqlx::query(SEAL)
        .bind(ids)
        .bind(seqs)
        .bind(prevs)
        .bind(hashes)
        .execute(&mut **tx)
        .await
        .map_err(db_err)?;
    Ok(n)
}

fn entry(row: &sqlx::postgres::PgRow) -> Result<AuditEntry> {
    Ok(AuditEntry {
        seq: row.try_get(0).map_err(db_err)?,
        detail: row.try_get(1).map_err(db_err)?,
        prev_hash: row.try_get(2).map_err(db_err)?,
        hash: row.try_get(3).map_err(db_err)?,
    })
}

/// A patient's records, newest first; `seq` in the entries is the row id (sealed or not).
pub(crate) async fn for_patient(
    pool: &PgPool,
    patient_id: &str,
    before: Option<i64>,
    limit: usize,
) -> Result<AuditPage> {
    let limit = limit.max(1);
    let rows = sqlx::query(FOR_PATIENT)
        .bind(patient_id)
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit as i64 + 1)
        .fetch_all(pool)
        .await
        .map_err(db_err)?;
    let mut entries = rows.iter().map(entry).collect::<Result<Vec<_>>>()?;
    let more = entries.len() > limit;
    entries.truncate(limit);
    let next_before = more.then(|| entries.last().map(|e| e.seq)).flatten();
    Ok(AuditPage {
        entries,
        next_before,
    })
}

pub(crate) async fn chain(pool: &PgPool, after_seq: i64, limit: usize) -> Result<Vec<AuditEntry>> {
    let rows = sqlx::query(CHAIN)
        .bind(after_seq)
        .bind(limit as i64)
        .fetch_all(pool)
        .await
        .map_err(db_err)?;
    rows.iter().map(entry).collect()
}
