//! System API clients (OAuth2 client credentials). Portal-only state: a plain table, not FHIR.

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, PartialEq)]
pub struct ApiClient {
    pub client_id: String,
    pub name: String,
    /// PHC string (Argon2id) of the client secret; the secret itself is never stored.
    pub secret_hash: String,
    /// Space-separated scopes the client may be granted, e.g. `system/*.read`.
    pub scopes: String,
    pub created_at: DateTime<Utc>,
}
