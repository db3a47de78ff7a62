//! The PostgreSQL backend of the Portico store.
//!
//! [`PgStore`] keeps a pool of connections and runs the SQL that `store::sql` builds: the same
//! statements as the SQLite backend, over the schema in `migrations/` (applied on connect).
//! Writes run [`store::write::apply`] in one PostgreSQL transaction each. Several server
//! instances may share one database: `current` locks the row it reads (`SELECT … FOR UPDATE`),
//! so concurrent updates with the same `If-Match` serialise and one of them wins, and
//! conditional writes take a transaction-scoped advisory lock on their criteria.

mod accounts;
mod audit;
mod reindex;

use std::borrow::Cow;
use std::str::FromStr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use fhir::index::{IndexEntry, IndexValue};
use sqlx::postgres::{PgArguments, PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::{Connection, Postgres, Row, Transaction};
use store::scan::ScanConn;
use store::search::ReadConn;
use store::sql::{PostgresDialect, Sql, SqlValue};
use store::write::WriteTx;
use store::{
    ApiClient, HistoryPage, HistoryQuery, ResourceVersion, Result, ScanPage, ScanQuery,
    SearchQuery, SearchResult, Store, StoreError, WriteOp, WriteOutcome,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The `server_keys` row holding the access-token signing key.
const SIGNING_KEY_NAME: &str = "access_token_signing";

/// Prefix of the databases [`PgStore::connect_fresh_for_tests`] creates.
const TEST_DATABASE_PREFIX: &str = "portico_t_";

/// Test databases older than this (and not in use) are dropped by the next
/// [`PgStore::connect_fresh_for_tests`]: those whose store could not drop them itself.
const TEST_DATABASE_MAX_AGE_SECS: i64 = 10 * 60;

/// Most connections a test store opens, so that parallel tests stay within the server's limit.
const TEST_POOL_SIZE: u32 = 10;

/// How often a transaction runs at most when resources it writes turn out to have been written
/// at a later instant than its own (see `transaction` in `impl Store for PgStore`).
const CLOCK_ATTEMPTS: usize = 10;

/// How the store connects.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// Most connections the pool keeps open.
    pub max_connections: u32,
    /// How long opening a connection may take before the server counts as unreachable.
    pub connect_timeout: Duration,
    /// How long an operation waits for a free connection from the pool.
    pub acquire_timeout: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            max_connections: 16,
            connect_timeout: Duration::from_secs(10),
            acquire_timeout: Duration::from_secs(30),
        }
    }
}

/// The PostgreSQL store.
pub struct PgStore {
    pool: PgPool,
    /// Commits audit records of concurrent requests together, and seals the trail.
    audit: audit::Appender,
    /// The latest `last_updated` this instance handed out (epoch ms), so that its writes never
    /// go back in time even if the system clock does.
    clock: AtomicI64,
    database: String,
    /// How long [`Store::ping`] waits for an answer (readiness checks must not hang).
    ping_timeout: Duration,
    /// Set for a database made by [`PgStore::connect_fresh_for_tests`]: dropped with the store.
    test_database: Option<TestDatabase>,
}

/// A test database and how to reach the server to drop it.
struct TestDatabase {
    admin: PgConnectOptions,
    name: String,
}

impl Drop for PgStore {
    fn drop(&mut self) {
        let Some(test) = self.test_database.take() else {
            return;
        };
        // Drop cannot wait, and the test's runtime may be shutting down: a thread of its own
        // drops the database (forcing off the pool's connections). If the process exits first,
        // the next `connect_fresh_for_tests` sweeps it up.
        let _ = std::thread::Builder::new()
            .name("portico-test-db-drop".into())
            .spawn(move || {
                let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                runtime.block_on(async move {
                    if let Ok(mut conn) = PgConnection::connect_with(&test.admin).await {
                        let _ = sqlx::query(&format!(
                            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                            test.name
                        ))
                        .execute(&mut conn)
                        .await;
                        let _ = conn.close().await;
                    }
                });
            });
    }
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects to `url` (`postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`) with the default
    /// [`PgOptions`] and applies pending migrations.
    pub async fn connect(url: &str) -> Result<PgStore> {
        Self::connect_with(url, &PgOptions::default()).await
    }

    /// Connects to `url` and applies pending migrations. Errors name what is wrong (URL, server,
    /// database, credentials) and how to fix it, and never show the password.
    pub async fn connect_with(url: &str, options: &PgOptions) -> Result<PgStore> {
        let target = Target::parse(url)?;
        Self::open(&target, options).await
    }

    /// For tests only: creates a new, empty database (`portico_t_…`) on the server `admin_url`
    /// points at, and connects to it, so that tests can run in parallel without seeing each
    /// other's data. The database is dropped when the store is; ones left behind (the process
    /// ended first) are dropped by a later call once they are ten minutes old and unused.
    pub async fn connect_fresh_for_tests(admin_url: &str) -> Result<PgStore> {
        let admin = Target::parse(admin_url)?;
        let mut conn = admin.connect(&PgOptions::default()).await?;
        drop_stale_test_databases(&mut conn).await;
        let name = format!(
            "{TEST_DATABASE_PREFIX}{}_{:016x}",
            Utc::now().timestamp(),
            rand::random::<u64>()
        );
        // template0 never has connections, so concurrent creates cannot trip over each other.
        sqlx::query(&format!("CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8'"))
            .execute(&mut conn)
            .await
            .map_err(|e| {
                StoreError::Database(format!(
                    "could not create the test database {name} on {}: {}; the user in the URL needs the CREATEDB privilege",
                    admin.shown,
                    describe_sqlx(&e)
                ))
            })?;
        let _ = conn.close().await;
        let target = Target {
            options: admin.options.clone().database(&name),
            shown: format!("{} (test database {name})", admin.shown),
            password: admin.password.clone(),
        };
        let options = PgOptions {
            max_connections: TEST_POOL_SIZE,
            ..PgOptions::default()
        };
        let mut store = Self::open(&target, &options).await?;
        store.test_database = Some(TestDatabase {
            admin: admin.options,
            name,
        });
        Ok(store)
    }

    /// The name of the database this store uses.
    pub fn database(&self) -> &str {
        &self.database
    }

    async fn open(target: &Target, options: &PgOptions) -> Result<PgStore> {
        let mut conn = target.connect(options).await?;
        check_encoding(&mut conn, target).await?;
        MIGRATOR
            .run(&mut conn)
            .await
            .map_err(|e| migrate_error(e, target))?;
        reindex::run(&mut conn, false)
            .await
            .map_err(|e| target.error(format!("rebuilding the access index failed: {e}")))?;
        let _ = conn.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            .connect_lazy_with(target.options.clone());
        Ok(PgStore {
            audit: audit::Appender::start(pool.clone()),
            pool,
            clock: AtomicI64::new(0),
            database: target.database().to_string(),
            ping_timeout: options.connect_timeout,
            test_database: None,
        })
    }

    /// The instant of the next write: now, but never before `not_before` nor before any instant
    /// this instance handed out already.
    fn next_instant(&self, not_before: i64) -> Result<DateTime<Utc>> {
        let now = fhir::datetime::now_millis()
            .timestamp_millis()
            .max(not_before);
        let previous = self.clock.fetch_max(now, Ordering::SeqCst);
        let ms = now.max(previous);
        DateTime::from_timestamp_millis(ms).ok_or_else(|| {
            StoreError::Database(format!(
                "the clock reads {ms} ms, which is not a valid instant"
            ))
        })
    }

    async fn acquire(&self) -> Result<sqlx::pool::PoolConnection<Postgres>> {
        self.pool.acquire().await.map_err(db_err)
    }

    /// A read-only snapshot for operations that run more than one statement (a page and its
    /// count, includes), so they agree with each other.
    async fn snapshot(&self) -> Result<Transaction<'static, Postgres>> {
        self.pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await
            .map_err(db_err)
    }
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn accounts(&self) -> &dyn store::AccountStore {
        self
    }

    async fn ping(&self) -> Result<()> {
        let answer = sqlx::query("SELECT 1").execute(&self.pool);
        match tokio::time::timeout(self.ping_timeout, answer).await {
            Ok(result) => result.map(|_| ()).map_err(db_err),
            Err(_) => Err(StoreError::Database(format!(
                "PostgreSQL did not answer within {} s",
                self.ping_timeout.as_secs_f64()
            ))),
        }
    }

    async fn read(&self, resource_type: &str, id: &str) -> Result<Option<ResourceVersion>> {
        let mut conn = self.acquire().await?;
        store::search::read(&mut PgRead(&mut conn), &PostgresDialect, resource_type, id).await
    }

    async fn vread(
        &self,
        resource_type: &str,
        id: &str,
        version_id: i64,
    ) -> Result<Option<ResourceVersion>> {
        let mut conn = self.acquire().await?;
        store::search::vread(
            &mut PgRead(&mut conn),
            &PostgresDialect,
            resource_type,
            id,
            version_id,
        )
        .await
    }

    async fn history(&self, query: &HistoryQuery) -> Result<HistoryPage> {
        let mut tx = self.snapshot().await?;
        let page = store::search::history(&mut PgRead(&mut tx), &PostgresDialect, query).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(page)
    }

    async fn search(&self, query: &SearchQuery) -> Result<SearchResult> {
        let single_statement = !query.total
            && !query.summary_count
            && query.include.is_empty()
            && query.revinclude.is_empty();
        if single_statement {
            let mut conn = self.acquire().await?;
            return store::search::search(&mut PgRead(&mut conn), &PostgresDialect, query).await;
        }
        let mut tx = self.snapshot().await?;
        let result = store::search::search(&mut PgRead(&mut tx), &PostgresDialect, query).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(result)
    }

    async fn scan(&self, query: &ScanQuery) -> Result<ScanPage> {
        let mut conn = self.acquire().await?;
        store::scan::scan(&mut PgRead(&mut conn), &PostgresDialect, query).await
    }

    async fn append_audit(&self, records: Vec<store::AuditRecord>) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        self.audit.append(records).await
    }

    async fn audit_for_patient(
        &self,
        patient_id: &str,
        before: Option<i64>,
        limit: usize,
    ) -> Result<store::AuditPage> {
        audit::for_patient(&self.pool, patient_id, before, limit).await
    }

    async fn refresh_statistics(&self) -> Result<()> {
        sqlx::query("ANALYZE")
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn seal_audit(&self) -> Result<u64> {
        audit::seal(&self.pool).await
    }

    async fn audit_chain(&self, after_seq: i64, limit: usize) -> Result<Vec<store::AuditEntry>> {
        audit::chain(&self.pool, after_seq, limit).await
    }

    async fn transaction_audited(
        &self,
        ops: Vec<WriteOp>,
        audit: Option<&store::AuditContext>,
    ) -> Result<Vec<WriteOutcome>> {
        // A transaction reads the clock when it starts, but may then wait for a row that another
        // one (started later, or on an instance whose clock is ahead) writes with a later
        // instant. Writing after it with our earlier instant would take the resource back in
        // time, so `put` refuses and we run the operations again; this time the resources that
        // were ahead are locked first, and the clock is read after that.
        let mut not_before = 0;
        let mut ahead: Vec<(String, String)> = Vec::new();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let tx = self.pool.begin().await.map_err(db_err)?;
            let mut tx = PgTx {
                tx,
                clock_behind: None,
            };
            for (resource_type, id) in &ahead {
                if let Some(ms) = tx.lock_last_updated(resource_type, id).await? {
                    not_before = not_before.max(ms);
                }
            }
            let now = self.next_instant(not_before)?;
            match store::write::apply(&mut tx, &PostgresDialect, ops.clone(), now, audit).await {
                Ok(outcomes) => {
                    tx.tx.commit().await.map_err(db_err)?;
                    return Ok(outcomes);
                }
                Err(e) => {
                    let clock_behind = tx.clock_behind.take();
                    if let Err(rollback) = tx.tx.rollback().await {
                        tracing::warn!(error = %describe_sqlx(&rollback), "rolling back a failed PostgreSQL transaction failed");
                    }
                    match clock_behind {
                        Some(behind) if attempt < CLOCK_ATTEMPTS => {
                            not_before = not_before.max(behind.last_updated);
                            let key = (behind.resource_type, behind.id);
                            if !ahead.contains(&key) {
                                ahead.push(key);
                                // One order for every transaction, so these locks cannot deadlock.
                                ahead.sort();
                            }
                        }
                        _ => return Err(e),
                    }
                }
            }
        }
    }

    async fn insert_api_client(&self, client: &ApiClient) -> Result<()> {
        let result = sqlx::query(
            "INSERT INTO api_clients (client_id, name, secret_hash, scopes, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&client.client_id)
        .bind(&client.name)
        .bind(&client.secret_hash)
        .bind(&client.scopes)
        .bind(client.created_at.timestamp_millis())
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(d)) if d.code().as_deref() == Some("23505") => {
                Err(StoreError::Conflict(format!(
                    "an API client with id {:?} already exists; choose another id",
                    client.client_id
                )))
            }
            Err(e) => Err(db_err(e)),
        }
    }

    async fn api_client(&self, client_id: &str) -> Result<Option<ApiClient>> {
        let row = sqlx::query(
            "SELECT client_id, name, secret_hash, scopes, created_at FROM api_clients WHERE client_id = $1",
        )
        .bind(client_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let created_ms: i64 = row.try_get(4).map_err(decode_err)?;
        Ok(Some(ApiClient {
            client_id: row.try_get(0).map_err(decode_err)?,
            name: row.try_get(1).map_err(decode_err)?,
            secret_hash: row.try_get(2).map_err(decode_err)?,
            scopes: row.try_get(3).map_err(decode_err)?,
            created_at: instant(created_ms)?,
        }))
    }

    async fn state_get(&self, key: &str) -> Result<Option<String>> {
        sqlx::query_scalar::<_, String>("SELECT value FROM server_state WHERE name = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)
    }

    async fn state_put(&self, key: &str, value: &str) -> Result<()> {
        sqlx::query(PUT_STATE)
            .bind(key)
            .bind(value)
            .bind(fhir::datetime::now_millis().timestamp_millis())
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(db_err)
    }

    async fn state_delete(&self, key: &str) -> Result<()> {
        sqlx::query("DELETE FROM server_state WHERE name = $1")
            .bind(key)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(db_err)
    }

    async fn state_list(&self, prefix: &str) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT name, value FROM server_state WHERE name >= $1 AND ($2::text IS NULL OR name < $2) ORDER BY name",
        )
        .bind(prefix)
        .bind(store::prefix_end(prefix))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get(0).map_err(decode_err)?,
                    r.try_get(1).map_err(decode_err)?,
                ))
            })
            .collect()
    }

    async fn state_compare_and_put(
        &self,
        key: &str,
        expected: Option<&str>,
        value: &str,
    ) -> Result<bool> {
        let now = fhir::datetime::now_millis().timestamp_millis();
        // Under READ COMMITTED a racing UPDATE waits for the first one's row lock and then
        // checks its condition again against the row as committed, so exactly one of several
        // swaps from the same value wins; a racing INSERT waits and then does nothing.
        let query = match expected {
            Some(old) => sqlx::query(
                "UPDATE server_state SET value = $2, updated_at = $3 WHERE name = $1 AND value = $4",
            )
            .bind(key)
            .bind(value)
            .bind(now)
            .bind(old),
            None => sqlx::query(
                "INSERT INTO server_state (name, value, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind(key)
            .bind(value)
            .bind(now),
        };
        let done = query.execute(&self.pool).await.map_err(db_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn reindex_access(&self) -> Result<u64> {
        let mut conn = self.acquire().await?;
        Ok(reindex::run(&mut conn, true).await?.unwrap_or(0))
    }

    async fn signing_key(&self) -> Result<Vec<u8>> {
        let candidate: [u8; 32] = rand::random();
        // The first instance to get here makes the key; the others keep theirs out and read it.
        sqlx::query(
            "INSERT INTO server_keys (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(SIGNING_KEY_NAME)
        .bind(&candidate[..])
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        sqlx::query_scalar::<_, Vec<u8>>("SELECT value FROM server_keys WHERE name = $1")
            .bind(SIGNING_KEY_NAME)
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)
    }
}

/// A database URL, parsed, with what may be shown of it.
struct Target {
    options: PgConnectOptions,
    /// The URL without its password.
    shown: String,
    /// Kept only to scrub it from error messages.
    password: Option<String>,
}

impl Target {
    fn parse(url: &str) -> Result<Target> {
        let shown = redact_url(url);
        let password = url_password(url);
        let scheme_ok = url.starts_with("postgres://") || url.starts_with("postgresql://");
        let parsed = if scheme_ok {
            PgConnectOptions::from_str(url).map_err(|e| describe_sqlx(&e))
        } else {
            Err("it does not start with postgres:// or postgresql://".to_string())
        };
        match parsed {
            Ok(options) => Ok(Target {
                options: options.application_name("portico"),
                shown,
                password,
            }),
            Err(reason) => Err(StoreError::Database(scrub(
                format!(
                    "the database URL {shown} is not a valid PostgreSQL URL ({reason}); write it as postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE, with special characters in the password percent-encoded"
                ),
                password.as_deref(),
            ))),
        }
    }

    fn database(&self) -> &str {
        self.options
            .get_database()
            .unwrap_or_else(|| self.options.get_username())
    }

    /// Where the URL points, for messages: `host:port` or the socket path.
    fn server(&self) -> String {
        match self.options.get_socket() {
            Some(path) => format!("socket {}", path.display()),
            None => format!("{}:{}", self.options.get_host(), self.options.get_port()),
        }
    }

    /// Opens one connection, turning every way it can fail into a message that says what to do.
    async fn connect(&self, options: &PgOptions) -> Result<PgConnection> {
        let attempt = PgConnection::connect_with(&self.options);
        let result = match tokio::time::timeout(options.connect_timeout, attempt).await {
            Ok(r) => r,
            Err(_) => {
                return Err(self.error(format!(
                    "cannot reach PostgreSQL at {}: no answer within {} s; check the host and port in the database URL and that nothing blocks the connection",
                    self.server(),
                    options.connect_timeout.as_secs_f64()
                )))
            }
        };
        result.map_err(|e| self.error(self.connect_failure(&e)))
    }

    fn connect_failure(&self, e: &sqlx::Error) -> String {
        let server = self.server();
        let user = self.options.get_username();
        let database = self.database();
        match e {
            sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => format!(
                "cannot reach PostgreSQL at {server}: connection refused; start the server, or fix the host and port in the database URL"
            ),
            sqlx::Error::Io(io) => format!(
                "cannot reach PostgreSQL at {server}: {io}; check the host and port in the database URL"
            ),
            sqlx::Error::Tls(t) => format!(
                "the TLS handshake with PostgreSQL at {server} failed: {t}; check sslmode and the certificates in the database URL"
            ),
            sqlx::Error::Database(d) => match d.code().as_deref() {
                Some("3D000") => format!(
                    "PostgreSQL at {server} has no database {database:?}; create it (createdb {database}, or CREATE DATABASE \"{database}\") or fix the database name in the URL"
                ),
                Some("28P01") | Some("28000") => format!(
                    "PostgreSQL at {server} refused user {user:?} (authentication failed or not allowed); check the user and password in the database URL and the server's pg_hba.conf"
                ),
                Some("53300") => format!(
                    "PostgreSQL at {server} has too many connections; raise max_connections or lower the pool size"
                ),
                Some("57P03") => format!("PostgreSQL at {server} is starting up or shutting down; try again shortly"),
                Some(code) => format!("PostgreSQL at {server} refused the connection (SQLSTATE {code}): {}", d.message()),
                None => format!("PostgreSQL at {server} refused the connection: {}", d.message()),
            },
            other => format!("cannot connect to PostgreSQL at {server}: {other}"),
        }
    }

    /// A connection error, with the URL (without password) it was about.
    fn error(&self, message: String) -> StoreError {
        StoreError::Database(scrub(
            format!("{message} (database URL: {})", self.shown),
            self.password.as_deref(),
        ))
    }
}

/// The URL with any password replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        // Not URL-shaped; it may still be `user:password@host`.
        return match url.rfind('@') {
            Some(_) => "(not shown: it may contain a password)".to_string(),
            None => url.to_string(),
        };
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_string();
    };
    let userinfo = &authority[..at];
    let Some(colon) = userinfo.find(':') else {
        return url.to_string();
    };
    format!(
        "{}{}:***{}",
        &url[..scheme_end + 3],
        &userinfo[..colon],
        &rest[at..]
    )
}

/// The password in a URL, as written and percent-decoded, to scrub from messages.
fn url_password(url: &str) -> Option<String> {
    let rest = &url[url.find("://")? + 3..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let userinfo = &authority[..authority.rfind('@')?];
    let password = &userinfo[userinfo.find(':')? + 1..];
    (!password.is_empty()).then(|| password.to_string())
}

/// Removes any trace of `password` (as written or percent-decoded) from `message`.
fn scrub(message: String, password: Option<&str>) -> String {
    let Some(p) = password else {
        return message;
    };
    let mut out = message.replace(p, "***");
    let decoded = percent_decode(p);
    if !decoded.is_empty() && decoded != p {
        out = out.replace(&decoded, "***");
    }
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn check_encoding(conn: &mut PgConnection, target: &Target) -> Result<()> {
    let encoding: String = sqlx::query_scalar("SHOW server_encoding")
        .fetch_one(&mut *conn)
        .await
        .map_err(db_err)?;
    if encoding.eq_ignore_ascii_case("UTF8") {
        return Ok(());
    }
    let database = target.database();
    Err(target.error(format!(
        "database {database:?} uses the encoding {encoding}, but Portico needs UTF8; create it with CREATE DATABASE \"{database}\" ENCODING 'UTF8' TEMPLATE template0"
    )))
}

fn migrate_error(e: sqlx::migrate::MigrateError, target: &Target) -> StoreError {
    use sqlx::migrate::MigrateError;
    let hint = match &e {
        MigrateError::VersionMissing(_) | MigrateError::VersionTooNew(..) => {
            "; the database was migrated by a newer Portico: run that version, or restore a backup made before the upgrade"
        }
        MigrateError::VersionMismatch(_) => "; a migration file was edited after it was applied: restore it",
        MigrateError::Execute(_) | MigrateError::ExecuteMigration(..) => {
            "; the user in the URL must be allowed to create tables in the database"
        }
        _ => "",
    };
    target.error(format!(
        "applying the PostgreSQL schema migrations failed: {e}{hint}"
    ))
}

/// Drops test databases left behind by earlier runs (best effort: in-use ones stay).
async fn drop_stale_test_databases(conn: &mut PgConnection) {
    let names: Vec<String> =
        match sqlx::query_scalar("SELECT datname FROM pg_database WHERE starts_with(datname, $1)")
            .bind(TEST_DATABASE_PREFIX)
            .fetch_all(&mut *conn)
            .await
        {
            Ok(n) => n,
            Err(_) => return,
        };
    let now = Utc::now().timestamp();
    for name in names {
        let created = name
            .strip_prefix(TEST_DATABASE_PREFIX)
            .and_then(|rest| rest.split('_').next())
            .and_then(|secs| secs.parse::<i64>().ok());
        let is_safe_name = name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if created.is_some_and(|c| now - c > TEST_DATABASE_MAX_AGE_SECS) && is_safe_name {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\""))
                .execute(&mut *conn)
                .await;
        }
    }
}

/// A plain connection (pooled, or in a transaction) that runs the shared search SQL.
struct PgRead<'c>(&'c mut PgConnection);

#[async_trait]
impl ReadConn for PgRead<'_> {
    async fn versions(&mut self, sql: &Sql) -> Result<Vec<ResourceVersion>> {
        versions(self.0, sql).await
    }

    async fn count(&mut self, sql: &Sql) -> Result<u64> {
        count(self.0, sql).await
    }
}

#[async_trait]
impl ScanConn for PgRead<'_> {
    async fn scan_rows(&mut self, sql: &Sql) -> Result<Vec<(ResourceVersion, i64)>> {
        let rows = bind_all(sql)
            .fetch_all(&mut *self.0)
            .await
            .map_err(db_err)?;
        rows.iter()
            .map(|row| Ok((version_from_row(row)?, row.try_get(6).map_err(decode_err)?)))
            .collect()
    }
}

/// One open write transaction.
struct PgTx {
    tx: Transaction<'static, Postgres>,
    /// Set when a resource this transaction updates was last written at a later instant than
    /// the transaction's: it must run again, no earlier than that.
    clock_behind: Option<ClockBehind>,
}

struct ClockBehind {
    resource_type: String,
    id: String,
    last_updated: i64,
}

impl PgTx {
    /// Locks the current row of `Type/id`, if any, and returns its `last_updated`.
    async fn lock_last_updated(&mut self, resource_type: &str, id: &str) -> Result<Option<i64>> {
        sqlx::query_scalar(
            "SELECT last_updated FROM resources WHERE res_type = $1 AND res_id = $2 FOR UPDATE",
        )
        .bind(resource_type)
        .bind(id)
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(db_err)
    }
}

#[async_trait]
impl ReadConn for PgTx {
    async fn versions(&mut self, sql: &Sql) -> Result<Vec<ResourceVersion>> {
        versions(&mut self.tx, sql).await
    }

    async fn count(&mut self, sql: &Sql) -> Result<u64> {
        count(&mut self.tx, sql).await
    }
}

/// Puts a `server_state` row: `$1` name, `$2` value, `$3` epoch milliseconds.
const PUT_STATE: &str = "INSERT INTO server_state (name, value, updated_at) VALUES ($1, $2, $3) \
     ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at";

const CURRENT_FOR_UPDATE: &str = "SELECT res_type, res_id, version_id, last_updated, deleted, content FROM resources WHERE res_type = $1 AND res_id = $2 FOR UPDATE";

#[async_trait]
impl WriteTx for PgTx {
    async fn append_audit(&mut self, records: &[store::AuditRecord]) -> Result<()> {
        audit::insert(&mut *self.tx, records).await
    }

    async fn current(&mut self, resource_type: &str, id: &str) -> Result<Option<ResourceVersion>> {
        let locked = sqlx::query(CURRENT_FOR_UPDATE)
            .bind(resource_type)
            .bind(id)
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(db_err)?;
        if let Some(row) = locked {
            return version_from_row(&row).map(Some);
        }
        // No row to lock: serialise with anyone creating the same resource, then look again, so
        // that concurrent creates of one client-chosen id become create-then-update.
        self.lock(&format!("resource {resource_type}/{id}")).await?;
        let row = sqlx::query(CURRENT_FOR_UPDATE)
            .bind(resource_type)
            .bind(id)
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(db_err)?;
        row.as_ref().map(version_from_row).transpose()
    }

    async fn put(
        &mut self,
        version: &ResourceVersion,
        replaces_existing: bool,
        index: &[IndexEntry],
    ) -> Result<()> {
        let last_updated = version.last_updated.timestamp_millis();
        let deleted = i16::from(version.deleted);
        let rid: i64 = if replaces_existing {
            let row = sqlx::query("SELECT rid, last_updated FROM resources WHERE res_type = $1 AND res_id = $2 FOR UPDATE")
                .bind(&version.resource_type)
                .bind(&version.id)
                .fetch_optional(&mut *self.tx)
                .await
                .map_err(db_err)?;
            let Some(row) = row else {
                return Err(StoreError::Database(format!(
                    "{}/{} was to be replaced but has no current version",
                    version.resource_type, version.id
                )));
            };
            let rid: i64 = row.try_get(0).map_err(decode_err)?;
            let current_updated: i64 = row.try_get(1).map_err(decode_err)?;
            if current_updated > last_updated {
                self.clock_behind = Some(ClockBehind {
                    resource_type: version.resource_type.clone(),
                    id: version.id.clone(),
                    last_updated: current_updated,
                });
                return Err(StoreError::Conflict(format!(
                    "{}/{} keeps being written at later instants than this transaction's; retry",
                    version.resource_type, version.id
                )));
            }
            sqlx::query(
                "WITH moved AS (INSERT INTO resource_history (res_type, res_id, version_id, last_updated, deleted, content) \
                 SELECT res_type, res_id, version_id, last_updated, deleted, content FROM resources WHERE rid = $1) \
                 UPDATE resources SET version_id = $2, last_updated = $3, deleted = $4, content = $5 WHERE rid = $1",
            )
            .bind(rid)
            .bind(version.version_id)
            .bind(last_updated)
            .bind(deleted)
            .bind(&version.json)
            .execute(&mut *self.tx)
            .await
            .map_err(db_err)?;
            sqlx::query(
                "WITH t AS (DELETE FROM idx_token WHERE rid = $1), s AS (DELETE FROM idx_string WHERE rid = $1), \
                 d AS (DELETE FROM idx_date WHERE rid = $1), r AS (DELETE FROM idx_reference WHERE rid = $1), \
                 q AS (DELETE FROM idx_quantity WHERE rid = $1), u AS (DELETE FROM idx_uri WHERE rid = $1) SELECT 1",
            )
            .bind(rid)
            .execute(&mut *self.tx)
            .await
            .map_err(db_err)?;
            rid
        } else {
            sqlx::query_scalar(
                "INSERT INTO resources (res_type, res_id, version_id, last_updated, deleted, content) \
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING rid",
            )
            .bind(&version.resource_type)
            .bind(&version.id)
            .bind(version.version_id)
            .bind(last_updated)
            .bind(deleted)
            .bind(&version.json)
            .fetch_one(&mut *self.tx)
            .await
            .map_err(db_err)?
        };
        if !version.deleted && !index.is_empty() {
            insert_index(&mut self.tx, rid, &version.resource_type, index).await?;
        }
        Ok(())
    }

    async fn lock(&mut self, key: &str) -> Result<()> {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(key)
            .execute(&mut *self.tx)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn put_state(&mut self, key: &str, value: &str) -> Result<()> {
        sqlx::query(PUT_STATE)
            .bind(key)
            .bind(value)
            .bind(fhir::datetime::now_millis().timestamp_millis())
            .execute(&mut *self.tx)
            .await
            .map(|_| ())
            .map_err(db_err)
    }
}

/// Every index table's new rows in one statement: one array per column, unnested per table.
const INSERT_INDEX: &str = "WITH \
 t AS (INSERT INTO idx_token (rid, res_type, param, system, code) \
   SELECT $1::int8, $2::text, u.* FROM UNNEST($3::text[], $4::text[], $5::text[]) AS u), \
 s AS (INSERT INTO idx_string (rid, res_type, param, value_norm, value_exact) \
   SELECT $1::int8, $2::text, u.* FROM UNNEST($6::text[], $7::text[], $8::text[]) AS u), \
 d AS (INSERT INTO idx_date (rid, res_type, param, low, high) \
   SELECT $1::int8, $2::text, u.* FROM UNNEST($9::text[], $10::int8[], $11::int8[]) AS u), \
 r AS (INSERT INTO idx_reference (rid, res_type, param, target_type, target_id, url) \
   SELECT $1::int8, $2::text, u.* FROM UNNEST($12::text[], $13::text[], $14::text[], $15::text[]) AS u), \
 q AS (INSERT INTO idx_quantity (rid, res_type, param, value, system, code) \
   SELECT $1::int8, $2::text, u.* FROM UNNEST($16::text[], $17::float8[], $18::text[], $19::text[]) AS u), \
 i AS (INSERT INTO idx_uri (rid, res_type, param, value) \
   SELECT $1::int8, $2::text, u.* FROM UNNEST($20::text[], $21::text[]) AS u) \
 SELECT 1";

type Text<'a> = Cow<'a, str>;
type OptText<'a> = Option<Cow<'a, str>>;

/// A resource's index entries as one array per column of [`INSERT_INDEX`].
#[derive(Default)]
struct IndexColumns<'a> {
    token_param: Vec<&'a str>,
    token_system: Vec<OptText<'a>>,
    token_code: Vec<Text<'a>>,
    string_param: Vec<&'a str>,
    string_norm: Vec<Text<'a>>,
    string_exact: Vec<Text<'a>>,
    date_param: Vec<&'a str>,
    date_low: Vec<i64>,
    date_high: Vec<i64>,
    reference_param: Vec<&'a str>,
    reference_type: Vec<OptText<'a>>,
    reference_id: Vec<OptText<'a>>,
    reference_url: Vec<Text<'a>>,
    quantity_param: Vec<&'a str>,
    quantity_value: Vec<f64>,
    quantity_system: Vec<OptText<'a>>,
    quantity_code: Vec<OptText<'a>>,
    uri_param: Vec<&'a str>,
    uri_value: Vec<Text<'a>>,
}

impl<'a> IndexColumns<'a> {
    fn new(index: &'a [IndexEntry]) -> Self {
        let opt = |s: &'a Option<String>| s.as_deref().map(no_nul);
        let mut c = IndexColumns::default();
        for entry in index {
            let p = entry.param;
            match &entry.value {
                IndexValue::Token { system, code } => {
                    c.token_param.push(p);
                    c.token_system.push(opt(system));
                    c.token_code.push(no_nul(code));
                }
                IndexValue::String { normalized, exact } => {
                    c.string_param.push(p);
                    c.string_norm.push(no_nul(normalized));
                    c.string_exact.push(no_nul(exact));
                }
                IndexValue::Date(range) => {
                    c.date_param.push(p);
                    c.date_low.push(range.low);
                    c.date_high.push(range.high);
                }
                IndexValue::Reference {
                    target_type,
                    target_id,
                    url,
                } => {
                    c.reference_param.push(p);
                    c.reference_type.push(opt(target_type));
                    c.reference_id.push(opt(target_id));
                    c.reference_url.push(no_nul(url));
                }
                IndexValue::Quantity {
                    value,
                    system,
                    code,
                } => {
                    c.quantity_param.push(p);
                    c.quantity_value.push(*value);
                    c.quantity_system.push(opt(system));
                    c.quantity_code.push(opt(code));
                }
                IndexValue::Uri(value) => {
                    c.uri_param.push(p);
                    c.uri_value.push(no_nul(value));
                }
            }
        }
        c
    }
}

async fn insert_index(
    conn: &mut PgConnection,
    rid: i64,
    resource_type: &str,
    index: &[IndexEntry],
) -> Result<()> {
    let c = IndexColumns::new(index);
    sqlx::query(INSERT_INDEX)
        .bind(rid)
        .bind(resource_type)
        .bind(&c.token_param)
        .bind(&c.token_system)
        .bind(&c.token_code)
        .bind(&c.string_param)
        .bind(&c.string_norm)
        .bind(&c.string_exact)
        .bind(&c.date_param)
        .bind(&c.date_low)
        .bind(&c.date_high)
        .bind(&c.reference_param)
        .bind(&c.reference_type)
        .bind(&c.reference_id)
        .bind(&c.reference_url)
        .bind(&c.quantity_param)
        .bind(&c.quantity_value)
        .bind(&c.quantity_system)
        .bind(&c.quantity_code)
        .bind(&c.uri_param)
        .bind(&c.uri_value)
        .execute(conn)
        .await
        .map_err(db_err)?;
    Ok(())
}

/// PostgreSQL text cannot hold NUL; it is dropped from index values and from search values alike,
/// so that they still compare the same way.
fn no_nul(s: &str) -> Cow<'_, str> {
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', ""))
    } else {
        Cow::Borrowed(s)
    }
}

fn bind_all(sql: &Sql) -> sqlx::query::Query<'_, Postgres, PgArguments> {
    let mut query = sqlx::query(&sql.text);
    for p in &sql.params {
        query = match p {
            SqlValue::Text(s) => query.bind(no_nul(s)),
            SqlValue::Int(i) => query.bind(*i),
            SqlValue::Real(f) => query.bind(*f),
        };
    }
    query
}

async fn versions(conn: &mut PgConnection, sql: &Sql) -> Result<Vec<ResourceVersion>> {
    let rows = bind_all(sql).fetch_all(conn).await.map_err(db_err)?;
    rows.iter().map(version_from_row).collect()
}

async fn count(conn: &mut PgConnection, sql: &Sql) -> Result<u64> {
    let row = bind_all(sql).fetch_one(conn).await.map_err(db_err)?;
    let n: i64 = row.try_get(0).map_err(decode_err)?;
    Ok(n.max(0) as u64)
}

/// Decodes the columns of [`store::sql::VERSION_COLUMNS`].
fn version_from_row(row: &PgRow) -> Result<ResourceVersion> {
    let deleted: i16 = row.try_get(4).map_err(decode_err)?;
    Ok(ResourceVersion {
        resource_type: row.try_get(0).map_err(decode_err)?,
        id: row.try_get(1).map_err(decode_err)?,
        version_id: row.try_get(2).map_err(decode_err)?,
        last_updated: instant(row.try_get(3).map_err(decode_err)?)?,
        deleted: deleted != 0,
        json: row.try_get(5).map_err(decode_err)?,
    })
}

fn instant(ms: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| StoreError::Database(format!("stored instant {ms} ms is out of range")))
}

fn decode_err(e: sqlx::Error) -> StoreError {
    StoreError::Database(format!("a stored row could not be read: {e}"))
}

/// The error of a statement, without bind values (and without the message of data errors, which
/// may quote a value).
fn db_err(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(d) = &e {
        match d.code().as_deref() {
            Some("23505") => {
                return StoreError::Conflict(format!(
                    "a concurrent transaction wrote the same row first ({}); retry",
                    d.constraint().unwrap_or("unique key")
                ))
            }
            Some("40001") | Some("40P01") => {
                return StoreError::Conflict(
                    "the transaction collided with a concurrent one; retry".into(),
                )
            }
            _ => {}
        }
    }
    match e {
        sqlx::Error::PoolClosed => StoreError::Unavailable,
        other => StoreError::Database(describe_sqlx(&other)),
    }
}

fn describe_sqlx(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(d) => match d.code() {
            Some(code) if code.starts_with("22") => format!("PostgreSQL rejected a value (SQLSTATE {code})"),
            Some(code) => format!("PostgreSQL error {code}: {}", d.message()),
            None => format!("PostgreSQL error: {}", d.message()),
        },
        sqlx::Error::PoolTimedOut => {
            "no PostgreSQL connection became free in time: the database is overloaded or unreachable".into()
        }
        other => format!("PostgreSQL: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_the_password() {
        assert_eq!(
            redact_url("postgres://alice:s3cr%40t@db.example:5432/portico?sslmode=require"),
            "postgres://alice:***@db.example:5432/portico?sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://alice@db/portico"),
            "postgres://alice@db/portico"
        );
        assert_eq!(redact_url("postgres://db/portico"), "postgres://db/portico");
        assert_eq!(
            redact_url("alice:pw@db"),
            "(not shown: it may contain a password)"
        );
    }

    #[test]
    fn scrubs_the_password_as_written_and_decoded() {
        let p = url_password("postgres://alice:s3cr%40t@db/x");
        assert_eq!(p.as_deref(), Some("s3cr%40t"));
        assert_eq!(
            scrub("bad s3cr@t and s3cr%40t".into(), p.as_deref()),
            "bad *** and ***"
        );
        assert_eq!(url_password("postgres://alice@db/x"), None);
    }

    #[test]
    fn nul_is_dropped_from_text() {
        assert_eq!(no_nul("a\0b"), "ab");
        assert!(matches!(no_nul("ab"), Cow::Borrowed(_)));
    }
}
