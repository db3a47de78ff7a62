//! The Portico store: versioned FHIR resources with search indexes, behind one [`Store`] trait
//! that the SQLite and PostgreSQL backends implement.
//!
//! What is the same on every backend lives here: the write rules ([`write`]), the search
//! language ([`query`]), the SQL ([`sql`]) and the steps of a search ([`search`]). A backend
//! supplies connections, transactions and migrations. [`contract`] is the test suite every
//! backend must pass.

pub mod clients;
#[cfg(any(test, feature = "contract"))]
pub mod contract;
pub mod error;
pub mod eval;
pub mod model;
pub mod query;
pub mod search;
pub mod sql;
pub mod write;

use async_trait::async_trait;

pub use clients::ApiClient;
pub use error::{Result, StoreError};
pub use model::{
    HistoryPage, HistoryQuery, HistoryScope, Prepared, ResourceVersion, SearchResult, WriteOp,
    WriteOutcome,
};
pub use query::SearchQuery;

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

    /// Runs the operations in one database transaction: all are committed, or none is. The
    /// outcomes are in the order of `ops`, and are returned only after the commit is durable.
    async fn transaction(&self, ops: Vec<WriteOp>) -> Result<Vec<WriteOutcome>>;

    /// Registers an API client (its secret already hashed).
    async fn insert_api_client(&self, client: &ApiClient) -> Result<()>;

    async fn api_client(&self, client_id: &str) -> Result<Option<ApiClient>>;

    /// The server's secret key for signing access tokens: made once, kept in the database so
    /// that every server instance shares it, never in configuration or the repository.
    async fn signing_key(&self) -> Result<Vec<u8>>;

    /// Applies one operation (convenience over [`Store::transaction`]).
    async fn write(&self, op: WriteOp) -> Result<WriteOutcome> {
        self.transaction(vec![op])
            .await?
            .pop()
            .ok_or_else(|| StoreError::Database("a write produced no outcome".into()))
    }
}
