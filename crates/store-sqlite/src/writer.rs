//! The one writer: a thread that owns the only write connection and commits many requests in
//! one transaction (group commit), answering each only after that commit is on disk.

use std::sync::LazyLock;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use fhir::index::{IndexEntry, IndexValue};
use rusqlite::{params, CachedStatement, Connection, OptionalExtension};
use store::search::ReadConn;
use store::sql::{self, Sql, SqliteDialect};
use store::write::WriteTx;
use store::{ApiClient, ResourceVersion, Result, StoreError, WriteOp, WriteOutcome};
use tokio::sync::{mpsc, oneshot};

use crate::checkpoint::Nudge;
use crate::conn::{db_err, query_count, query_versions, version_from_row};

/// The WAL size past which the writer resets it (the file itself is then cut back to this size
/// by `journal_size_limit`).
pub const WAL_LIMIT_BYTES: u64 = 64 << 20;

/// Most requests committed together.
pub(crate) const MAX_BATCH: usize = 256;

/// The name of the token signing key in `server_keys`.
pub(crate) const SIGNING_KEY: &str = "token-signing";

/// One request to the writer; its answer is sent only after the batch holding it commits.
pub(crate) enum Job {
    Write {
        ops: Vec<WriteOp>,
        audit: Option<store::AuditContext>,
        reply: oneshot::Sender<Result<Vec<WriteOutcome>>>,
    },
    /// Appends records to the audit trail.
    Audit {
        records: Vec<store::AuditRecord>,
        reply: oneshot::Sender<Result<()>>,
    },
    InsertClient {
        client: ApiClient,
        reply: oneshot::Sender<Result<()>>,
    },
    /// Puts (`Some`) or deletes (`None`) a `server_state` row.
    State {
        name: String,
        value: Option<String>,
        reply: oneshot::Sender<Result<()>>,
    },
    /// Puts `value` under `name` only if the row holds `expected` now (`None`: no row); answers
    /// whether it did.
    StateSwap {
        name: String,
        expected: Option<String>,
        value: String,
        reply: oneshot::Sender<Result<bool>>,
    },
    /// Statements of the account tables ([`crate::accounts`]), run in order.
    Accounts {
        statements: Vec<store::accounts::Statement>,
        reply: oneshot::Sender<Result<Vec<store::accounts::Written>>>,
    },
    /// Stores `candidate` under `name` unless a key is already there; answers the stored key.
    ServerKey {
        name: &'static str,
        candidate: Vec<u8>,
        reply: oneshot::Sender<Result<Vec<u8>>>,
    },
}

/// Runs one request, turning a panic (a bug) into that request's error so that the writer,
/// and every other request, carry on; its savepoint is then rolled back like any failure.
fn contain_panic<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| {
        tracing::error!("a write request panicked; it was rolled back");
        failure("the write failed on an internal error and was rolled back")
    })
}

fn failure<T>(msg: &str) -> Result<T> {
    Err(StoreError::Database(msg.to_string()))
}

/// A job's result waiting for the commit.
enum Pending {
    Write(
        oneshot::Sender<Result<Vec<WriteOutcome>>>,
        Result<Vec<WriteOutcome>>,
    ),
    Unit(oneshot::Sender<Result<()>>, Result<()>),
    Key(oneshot::Sender<Result<Vec<u8>>>, Result<Vec<u8>>),
    Accounts(
        oneshot::Sender<Result<Vec<store::accounts::Written>>>,
        Result<Vec<store::accounts::Written>>,
    ),
    Bool(oneshot::Sender<Result<bool>>, Result<bool>),
}

impl Pending {
    fn is_ok(&self) -> bool {
        match self {
            Pending::Write(_, r) => r.is_ok(),
            Pending::Unit(_, r) => r.is_ok(),
            Pending::Key(_, r) => r.is_ok(),
            Pending::Accounts(_, r) => r.is_ok(),
            Pending::Bool(_, r) => r.is_ok(),
        }
    }

    /// Replaces a success by `msg`: its changes were not committed.
    fn fail(&mut self, msg: &str) {
        match self {
            Pending::Write(_, r) if r.is_ok() => *r = failure(msg),
            Pending::Unit(_, r) if r.is_ok() => *r = failure(msg),
            Pending::Key(_, r) if r.is_ok() => *r = failure(msg),
            Pending::Accounts(_, r) if r.is_ok() => *r = failure(msg),
            Pending::Bool(_, r) if r.is_ok() => *r = failure(msg),
            _ => {}
        }
    }

    fn send(self) {
        // A caller that stopped waiting no longer needs the answer.
        let _ = match self {
            Pending::Write(tx, r) => tx.send(r).map_err(|_| ()),
            Pending::Unit(tx, r) => tx.send(r).map_err(|_| ()),
            Pending::Key(tx, r) => tx.send(r).map_err(|_| ()),
            Pending::Accounts(tx, r) => tx.send(r).map_err(|_| ()),
            Pending::Bool(tx, r) => tx.send(r).map_err(|_| ()),
        };
    }
}

impl Job {
    fn failed(self, msg: &str) -> Pending {
        match self {
            Job::Write { reply, .. } => Pending::Write(reply, failure(msg)),
            Job::InsertClient { reply, .. }
            | Job::State { reply, .. }
            | Job::Audit { reply, .. } => Pending::Unit(reply, failure(msg)),
            Job::ServerKey { reply, .. } => Pending::Key(reply, failure(msg)),
            Job::Accounts { reply, .. } => Pending::Accounts(reply, failure(msg)),
            Job::StateSwap { reply, .. } => Pending::Bool(reply, failure(msg)),
        }
    }
}

static CURRENT_SQL: LazyLock<String> = LazyLock::new(|| sql::read(&SqliteDialect, "", "").text);

const MOVE_TO_HISTORY: &str = "INSERT INTO resource_history (res_type, res_id, version_id, last_updated, deleted, content) \
     SELECT res_type, res_id, version_id, last_updated, deleted, content FROM resources WHERE res_type = ?1 AND res_id = ?2";
const UPDATE_CURRENT: &str =
    "UPDATE resources SET version_id = ?3, last_updated = ?4, deleted = ?5, content = ?6 \
     WHERE res_type = ?1 AND res_id = ?2 RETURNING rid";
const INSERT_CURRENT: &str =
    "INSERT INTO resources (res_type, res_id, version_id, last_updated, deleted, content) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
const DELETE_INDEX: [&str; 6] = [
    "DELETE FROM idx_token WHERE rid = ?1",
    "DELETE FROM idx_string WHERE rid = ?1",
    "DELETE FROM idx_date WHERE rid = ?1",
    "DELETE FROM idx_reference WHERE rid = ?1",
    "DELETE FROM idx_quantity WHERE rid = ?1",
    "DELETE FROM idx_uri WHERE rid = ?1",
];
const INSERT_TOKEN: &str =
    "INSERT INTO idx_token (rid, res_type, param, system, code) VALUES (?1, ?2, ?3, ?4, ?5)";
const INSERT_STRING: &str =
    "INSERT INTO idx_string (rid, res_type, param, value_norm, value_exact) VALUES (?1, ?2, ?3, ?4, ?5)";
const INSERT_DATE: &str =
    "INSERT INTO idx_date (rid, res_type, param, low, high) VALUES (?1, ?2, ?3, ?4, ?5)";
const INSERT_REFERENCE: &str =
    "INSERT INTO idx_reference (rid, res_type, param, target_type, target_id, url) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
const INSERT_QUANTITY: &str =
    "INSERT INTO idx_quantity (rid, res_type, param, value, system, code) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
const INSERT_URI: &str =
    "INSERT INTO idx_uri (rid, res_type, param, value) VALUES (?1, ?2, ?3, ?4)";
const INSERT_CLIENT: &str =
    "INSERT INTO api_clients (client_id, name, secret_hash, scopes, created_at) VALUES (?1, ?2, ?3, ?4, ?5)";
const PUT_STATE: &str = "INSERT INTO server_state (name, value, updated_at) VALUES (?1, ?2, ?3) \
     ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at";
const DELETE_STATE: &str = "DELETE FROM server_state WHERE name = ?1";
const SELECT_STATE: &str = "SELECT value FROM server_state WHERE name = ?1";
const INSERT_KEY: &str = "INSERT OR IGNORE INTO server_keys (name, value) VALUES (?1, ?2)";
const SELECT_KEY: &str = "SELECT value FROM server_keys WHERE name = ?1";

/// The write connection, and the state the writer keeps between batches.
pub(crate) struct Writer {
    conn: Connection,
    checkpoint: Nudge,
    /// The WAL file, watched so that it cannot grow without bound (see [`WAL_LIMIT_BYTES`]).
    wal: std::path::PathBuf,
    /// The latest `last_updated` given out: timestamps never go backwards, even if the clock does.
    last_ms: i64,
    /// The audit trail's last link, read when a transaction starts ([`crate::audit`]).
    chain: store::audit::Chain,
}

fn newest_timestamp(conn: &Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT COALESCE(MAX(last_updated), 0) FROM resources")?
        .query_row([], |r| r.get(0))
}

impl Writer {
    pub(crate) fn new(conn: Connection, checkpoint: Nudge, db_path: &std::path::Path) -> Writer {
        let mut wal = db_path.as_os_str().to_owned();
        wal.push("-wal");
        Writer {
            conn,
            checkpoint,
            wal: wal.into(),
            last_ms: 0,
            chain: store::audit::Chain::after(None),
        }
    }

    fn exec(&self, sql: &str, what: &str) -> std::result::Result<(), String> {
        self.conn
            .prepare_cached(sql)
            .and_then(|mut s| s.execute([]))
            .map(|_| ())
            .map_err(|e| format!("{what}: {e}"))
    }

    /// Runs until every sender is gone, then returns (closing the connection).
    pub(crate) fn run(mut self, mut jobs: mpsc::Receiver<Job>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while let Some(first) = jobs.blocking_recv() {
            batch.push(first);
            while batch.len() < MAX_BATCH {
                match jobs.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            for p in self.commit_batch(&mut batch) {
                p.send();
            }
            self.bound_wal();
        }
    }

    /// Resets the WAL once it is larger than [`WAL_LIMIT_BYTES`]. The checkpoint thread's PASSIVE
    /// checkpoints copy pages back but can never reset the log while writes keep coming (the
    /// writer always appends before the copy catches up): under sustained load the WAL grew to
    /// 12 GB and every read and write slowed tenfold. Only the writer can reset it without
    /// waiting on itself; by now the checkpoint thread has copied most pages, so this is short.
    fn bound_wal(&mut self) {
        let size = std::fs::metadata(&self.wal).map(|m| m.len()).unwrap_or(0);
        if size <= WAL_LIMIT_BYTES {
            return;
        }
        if let Err(e) = self
            .conn
            .query_row("PRAGMA wal_checkpoint(RESTART)", [], |r| r.get::<_, i64>(0))
        {
            tracing::warn!(error = %e, "could not reset the WAL; it will be retried after the next batch");
        }
    }

    fn begin(&mut self) -> std::result::Result<(), String> {
        self.exec("BEGIN IMMEDIATE", "starting a write transaction")?;
        // Another process may have written since (e.g. an import); stay after its timestamps.
        let newest = newest_timestamp(&self.conn)
            .map_err(|e| format!("reading the newest timestamp: {e}"))?;
        self.last_ms = self.last_ms.max(newest);
        self.chain = crate::audit::load_chain(&self.conn)
            .map_err(|e| format!("reading the audit trail: {e}"))?;
        Ok(())
    }

    /// Runs `batch` (emptying it) in one transaction, each job in its own savepoint, and commits.
    fn commit_batch(&mut self, batch: &mut Vec<Job>) -> Vec<Pending> {
        let mut done: Vec<Pending> = Vec::with_capacity(batch.len());
        // Index in `done` of the first job of the open transaction.
        let mut tx_start = 0;
        let mut in_tx = false;
        for job in batch.drain(..) {
            if !in_tx {
                if let Err(msg) = self.begin() {
                    tracing::error!(error = %msg, "write transaction could not start");
                    done.push(job.failed(&msg));
                    continue;
                }
                in_tx = true;
                tx_start = done.len();
            }
            if let Err(msg) = self.exec("SAVEPOINT job", "starting a savepoint") {
                done.push(job.failed(&msg));
            } else {
                let chain = self.chain.clone();
                let mut p = self.execute(job);
                let end = if p.is_ok() {
                    self.exec("RELEASE job", "releasing a savepoint")
                } else {
                    // The job's audit records are rolled back with it: so is the chain.
                    self.chain = chain;
                    self.exec("ROLLBACK TO job", "rolling back a savepoint")
                        .and_then(|_| self.exec("RELEASE job", "releasing a savepoint"))
                };
                if let Err(msg) = end {
                    p.fail(&msg);
                }
                done.push(p);
            }
            if self.conn.is_autocommit() {
                // SQLite rolled back the whole transaction (e.g. disk full or I/O error): the
                // jobs before this one in it are lost too.
                let msg =
                    "the write transaction was rolled back by the database after an error; retry";
                tracing::error!("{msg}");
                for p in &mut done[tx_start..] {
                    p.fail(msg);
                }
                in_tx = false;
            }
        }
        if in_tx {
            if let Err(msg) = self.exec("COMMIT", "committing") {
                tracing::error!(error = %msg, "write transaction could not commit");
                if !self.conn.is_autocommit() {
                    let _ = self.exec("ROLLBACK", "rolling back");
                }
                for p in &mut done[tx_start..] {
                    p.fail(&msg);
                }
            } else {
                self.checkpoint.committed();
            }
        }
        done
    }

    /// The timestamp of the next request: now, or the latest one given if the clock went back.
    fn next_now(&mut self) -> DateTime<Utc> {
        let now = fhir::datetime::now_millis();
        let ms = now.timestamp_millis();
        if ms >= self.last_ms {
            self.last_ms = ms;
            now
        } else {
            DateTime::from_timestamp_millis(self.last_ms).unwrap_or(now)
        }
    }

    fn execute(&mut self, job: Job) -> Pending {
        match job {
            Job::Write { ops, audit, reply } => {
                let now = self.next_now();
                let r = contain_panic(|| {
                    futures::executor::block_on(store::write::apply(
                        self,
                        crate::dialect(),
                        ops,
                        now,
                        audit.as_ref(),
                    ))
                });
                Pending::Write(reply, r)
            }
            Job::Audit { records, reply } => {
                let r =
                    contain_panic(|| crate::audit::insert(&self.conn, &mut self.chain, &records));
                Pending::Unit(reply, r)
            }
            Job::InsertClient { client, reply } => {
                let r = self
                    .conn
                    .prepare_cached(INSERT_CLIENT)
                    .and_then(|mut s| {
                        s.execute(params![
                            client.client_id,
                            client.name,
                            client.secret_hash,
                            client.scopes,
                            client.created_at.timestamp_millis()
                        ])
                    })
                    .map(|_| ())
                    .map_err(|e| match db_err("registering an API client", e) {
                        StoreError::Conflict(_) => StoreError::Conflict(
                            "an API client with this client_id already exists".into(),
                        ),
                        other => other,
                    });
                Pending::Unit(reply, r)
            }
            Job::State { name, value, reply } => {
                let now = fhir::datetime::now_millis().timestamp_millis();
                let r = match &value {
                    Some(v) => self
                        .conn
                        .prepare_cached(PUT_STATE)
                        .and_then(|mut s| s.execute(params![name, v, now])),
                    None => self
                        .conn
                        .prepare_cached(DELETE_STATE)
                        .and_then(|mut s| s.execute(params![name])),
                }
                .map(|_| ())
                .map_err(|e| db_err("writing server state", e));
                Pending::Unit(reply, r)
            }
            Job::StateSwap {
                name,
                expected,
                value,
                reply,
            } => {
                // The writer is the only one writing, so reading and then writing is atomic.
                let r = self
                    .conn
                    .prepare_cached(SELECT_STATE)
                    .and_then(|mut s| s.query_row([&name], |r| r.get::<_, String>(0)).optional())
                    .and_then(|current| {
                        if current != expected {
                            return Ok(false);
                        }
                        let now = fhir::datetime::now_millis().timestamp_millis();
                        self.conn
                            .prepare_cached(PUT_STATE)?
                            .execute(params![name, value, now])
                            .map(|_| true)
                    })
                    .map_err(|e| db_err("writing server state", e));
                Pending::Bool(reply, r)
            }
            Job::Accounts { statements, reply } => {
                let r = contain_panic(|| crate::accounts::write(&self.conn, &statements));
                Pending::Accounts(reply, r)
            }
            Job::ServerKey {
                name,
                candidate,
                reply,
            } => {
                let r = self
                    .conn
                    .prepare_cached(INSERT_KEY)
                    .and_then(|mut s| s.execute(params![name, candidate]))
                    .and_then(|_| {
                        self.conn
                            .prepare_cached(SELECT_KEY)?
                            .query_row([name], |r| r.get(0))
                    })
                    .map_err(|e| db_err("storing a server key", e));
                Pending::Key(reply, r)
            }
        }
    }

    fn prepare(&self, sql: &str) -> Result<CachedStatement<'_>> {
        self.conn
            .prepare_cached(sql)
            .map_err(|e| db_err("preparing a write", e))
    }

    fn insert_index(&self, rid: i64, resource_type: &str, index: &[IndexEntry]) -> Result<()> {
        let mut stmts: [Option<CachedStatement<'_>>; 6] = Default::default();
        let c = &self.conn;
        for e in index {
            let p = e.param;
            let r = match &e.value {
                IndexValue::Token { system, code } => statement(&mut stmts, c, 0, INSERT_TOKEN)?
                    .execute(params![rid, resource_type, p, system, code]),
                IndexValue::String { normalized, exact } => {
                    statement(&mut stmts, c, 1, INSERT_STRING)?.execute(params![
                        rid,
                        resource_type,
                        p,
                        normalized,
                        exact
                    ])
                }
                IndexValue::Date(range) => statement(&mut stmts, c, 2, INSERT_DATE)?
                    .execute(params![rid, resource_type, p, range.low, range.high]),
                IndexValue::Reference {
                    target_type,
                    target_id,
                    url,
                } => statement(&mut stmts, c, 3, INSERT_REFERENCE)?.execute(params![
                    rid,
                    resource_type,
                    p,
                    target_type,
                    target_id,
                    url
                ]),
                IndexValue::Quantity {
                    value,
                    system,
                    code,
                } => statement(&mut stmts, c, 4, INSERT_QUANTITY)?.execute(params![
                    rid,
                    resource_type,
                    p,
                    value,
                    system,
                    code
                ]),
                IndexValue::Uri(v) => statement(&mut stmts, c, 5, INSERT_URI)?.execute(params![
                    rid,
                    resource_type,
                    p,
                    v
                ]),
            };
            r.map_err(|e| db_err("writing a search index row", e))?;
        }
        Ok(())
    }
}

/// The `i`th of a set of statements prepared on first use.
fn statement<'a, 'c>(
    stmts: &'a mut [Option<CachedStatement<'c>>; 6],
    conn: &'c Connection,
    i: usize,
    sql: &str,
) -> Result<&'a mut CachedStatement<'c>> {
    let slot = &mut stmts[i];
    if slot.is_none() {
        *slot = Some(
            conn.prepare_cached(sql)
                .map_err(|e| db_err("preparing a write", e))?,
        );
    }
    slot.as_mut()
        .ok_or_else(|| StoreError::Database("a prepared statement went missing".into()))
}

#[async_trait]
impl ReadConn for Writer {
    async fn versions(&mut self, sql: &Sql) -> Result<Vec<ResourceVersion>> {
        query_versions(&self.conn, sql)
    }

    async fn count(&mut self, sql: &Sql) -> Result<u64> {
        query_count(&self.conn, sql)
    }
}

#[async_trait]
impl WriteTx for Writer {
    async fn current(&mut self, resource_type: &str, id: &str) -> Result<Option<ResourceVersion>> {
        self.prepare(&CURRENT_SQL)?
            .query_row([resource_type, id], version_from_row)
            .optional()
            .map_err(|e| db_err("reading the current version", e))
    }

    async fn put(
        &mut self,
        v: &ResourceVersion,
        replaces_existing: bool,
        index: &[IndexEntry],
    ) -> Result<()> {
        let ms = v.last_updated.timestamp_millis();
        let deleted = i64::from(v.deleted);
        let key = params![v.resource_type, v.id];
        let rid: i64 = if replaces_existing {
            let moved = self
                .prepare(MOVE_TO_HISTORY)?
                .execute(key)
                .map_err(|e| db_err("moving the previous version to history", e))?;
            if moved != 1 {
                return Err(StoreError::Conflict(
                    "the version to replace is no longer current; retry".into(),
                ));
            }
            let rid = self
                .prepare(UPDATE_CURRENT)?
                .query_row(
                    params![v.resource_type, v.id, v.version_id, ms, deleted, v.json],
                    |r| r.get(0),
                )
                .map_err(|e| db_err("updating the current version", e))?;
            for sql in DELETE_INDEX {
                self.prepare(sql)?
                    .execute([rid])
                    .map_err(|e| db_err("removing old search index rows", e))?;
            }
            rid
        } else {
            self.prepare(INSERT_CURRENT)?
                .execute(params![
                    v.resource_type,
                    v.id,
                    v.version_id,
                    ms,
                    deleted,
                    v.json
                ])
                .map_err(|e| match db_err("inserting a resource", e) {
                    StoreError::Conflict(_) => StoreError::Conflict(format!(
                        "{}/{} was created by another request at the same time; retry",
                        v.resource_type, v.id
                    )),
                    other => other,
                })?;
            self.conn.last_insert_rowid()
        };
        if !v.deleted {
            self.insert_index(rid, &v.resource_type, index)?;
        }
        Ok(())
    }

    async fn lock(&mut self, _key: &str) -> Result<()> {
        Ok(())
    }

    async fn append_audit(&mut self, records: &[store::AuditRecord]) -> Result<()> {
        crate::audit::insert(&self.conn, &mut self.chain, records)
    }

    async fn put_state(&mut self, key: &str, value: &str) -> Result<()> {
        let now = fhir::datetime::now_millis().timestamp_millis();
        self.prepare(PUT_STATE)?
            .execute(params![key, value, now])
            .map(|_| ())
            .map_err(|e| db_err("writing server state", e))
    }
}
