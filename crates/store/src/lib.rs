//! The Portico store: versioned FHIR resources with search indexes, behind one [`Store`] trait
//! that the SQLite and PostgreSQL backends implement.
//!
//! What is the same on every backend lives here: the write rules ([`write`]), the search
//! language ([`query`]), the SQL ([`sql`]), the steps of a search ([`search`]) and of a scan by
//! store order and patient compartment ([`scan`], for `$everything` and bulk export), and the
//! access policy's filters applied in all of them ([`access`], [`relationships`]). A backend
//! supplies connections, transactions and migrations. [`contract`] is the test suite every
//! backend must pass.

pub mod access;
pub mod accounts;
pub mod audit;
pub mod clients;
#[cfg(any(test, feature = "contract"))]
pub mod contract;
pub mod error;
pub mod eval;
pub mod model;
pub mod query;
pub mod relationships;
pub mod scan;
pub mod search;
pub mod sql;
pub mod write;

use async_trait::async_trait;

pub use access::Access;
pub use accounts::AccountStore;
pub use audit::{AuditContext, AuditEntry, AuditPage, AuditRecord};
pub use clients::ApiClient;
pub use error::{Result, StoreError};
pub use model::{
    HistoryPage, HistoryQuery, HistoryScope, Prepared, ResourceVersion, SearchResult, WriteOp,
    WriteOutcome,
};
pub use query::SearchQuery;
pub use scan::{Compartment, ScanPage, ScanQuery};

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// Whether the database answers (for `/readyz`).
    async fn ping(&self) -> Result<()>;

    /// The current version of `Type/id` (which may be a deletion), or None if it never existed.
    async fn read(&self, resource_type: &str, id: &str) -> Result<Option<ResourceVersion>>;

    /// One version of `Type/id`.
    async fn vread(
        &self,
        resource_type: &str,
        id: &str,
        version_id: i64,
    ) -> Result<Option<ResourceVersion>>;

    async fn history(&self, query: &HistoryQuery) -> Result<HistoryPage>;

    async fn search(&self, query: &SearchQuery) -> Result<SearchResult>;

    /// One page of current, non-deleted resources of a type in `rid` order, optionally within
    /// patients' compartments and a `lastUpdated` window ([`scan`]): the read that whole-record
    /// and bulk reads page through, each page as cheap as the first.
    async fn scan(&self, query: &ScanQuery) -> Result<ScanPage>;

    /// Runs the operations in one database transaction: all are committed, or none is. The
    /// outcomes are in the order of `ops`, and are returned only after the commit is durable.
    /// With `audit`, each resource written leaves an audit record in the same transaction.
    async fn transaction_audited(
        &self,
        ops: Vec<WriteOp>,
        audit: Option<&AuditContext>,
    ) -> Result<Vec<WriteOutcome>>;

    /// [`Store::transaction_audited`] without audit records: for Portico's own bulk work (an
    /// import is audited once per run, not per resource).
    async fn transaction(&self, ops: Vec<WriteOp>) -> Result<Vec<WriteOutcome>> {
        self.transaction_audited(ops, None).await
    }

    /// Appends records to the audit trail (reads, sign-ins, refusals); durable when this
    /// returns, so that a read can be answered only once its record is safe.
    async fn append_audit(&self, records: Vec<AuditRecord>) -> Result<()>;

    /// The records concerning one patient, newest first, a page of at most `limit` older than
    /// the `before` key ([`AuditPage::next_before`]).
    async fn audit_for_patient(
        &self,
        patient_id: &str,
        before: Option<i64>,
        limit: usize,
    ) -> Result<AuditPage>;

    /// Chains the records not yet in the chain (on backends that chain after commit) and
    /// answers how many it chained.
    async fn seal_audit(&self) -> Result<u64>;

    /// Chained records with `seq > after_seq`, in chain order, at most `limit`: for
    /// verification ([`audit::Verifier`]).
    async fn audit_chain(&self, after_seq: i64, limit: usize) -> Result<Vec<AuditEntry>>;

    /// Registers an API client (its secret already hashed).
    async fn insert_api_client(&self, client: &ApiClient) -> Result<()>;

    async fn api_client(&self, client_id: &str) -> Result<Option<ApiClient>>;

    /// The server's secret key for signing access tokens: made once, kept in the database so
    /// that every server instance shares it, never in configuration or the repository.
    async fn signing_key(&self) -> Result<Vec<u8>>;

    /// Portal-only state kept beside the resources (the import journal, Bulk Data export jobs):
    /// the value stored under `key`, if any.
    async fn state_get(&self, key: &str) -> Result<Option<String>>;

    /// Stores `value` under `key`, replacing what was there; durable when this returns.
    async fn state_put(&self, key: &str, value: &str) -> Result<()>;

    /// Removes `key` (nothing to remove is not an error).
    async fn state_delete(&self, key: &str) -> Result<()>;

    /// Every key starting with `prefix`, with its value, in key order.
    async fn state_list(&self, prefix: &str) -> Result<Vec<(String, String)>>;

    /// Stores `value` under `key` only if `key` holds exactly `expected` now (`None`: `key` is
    /// absent), atomically against every other writer on any server instance; answers whether
    /// it did. Durable when it returns true. What claims are built on (Bulk Data export jobs).
    async fn state_compare_and_put(
        &self,
        key: &str,
        expected: Option<&str>,
        value: &str,
    ) -> Result<bool>;

    /// Accounts, sessions and sign-in state ([`accounts`]).
    fn accounts(&self) -> &dyn AccountStore;

    /// Recomputes the access index ([`access`]) of every version, as the backends do by
    /// themselves when they open a database built by other rules ([`access::reindex`]); answers
    /// how many versions it recomputed. The default, for wrappers and test doubles, cannot.
    async fn reindex_access(&self) -> Result<u64> {
        Err(StoreError::Database(
            "this store cannot rebuild its access index".into(),
        ))
    }

    /// Brings the query planner's statistics up to date after a bulk load (PostgreSQL's
    /// `ANALYZE`: before it, a filtered search on freshly loaded data can take seconds instead
    /// of milliseconds). SQLite's statistics are fixed by its migrations and need nothing.
    async fn refresh_statistics(&self) -> Result<()>;

    /// Applies one operation (convenience over [`Store::transaction`]).
    async fn write(&self, op: WriteOp) -> Result<WriteOutcome> {
        self.transaction(vec![op])
            .await?
            .pop()
            .ok_or_else(|| StoreError::Database("a write produced no outcome".into()))
    }
}

/// The smallest string greater than every string starting with `prefix` (None when there is
/// none, e.g. for an empty prefix): `prefix <= key < prefix_end(prefix)` selects a key range in
/// any byte-ordered (`C` collation) index.
pub fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        // The code point after `last`, skipping the surrogates (which are not chars).
        let after = if last as u32 == 0xD7FF {
            0xE000
        } else {
            last as u32 + 1
        };
        if let Some(next) = char::from_u32(after) {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn prefix_end_bounds_the_keys_with_the_prefix() {
        assert_eq!(prefix_end("export/").as_deref(), Some("export0"));
        assert_eq!(prefix_end(""), None);
        let end = prefix_end("import/a").unwrap();
        for key in ["import/a", "import/a/x", "import/a\u{10FFFF}"] {
            assert!(key >= "import/a" && key < end.as_str(), "{key}");
        }
        assert!("import/b" >= end.as_str());
    }
}
