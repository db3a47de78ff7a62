//! Password hashing off the async executor: an Argon2id hash takes tens of milliseconds of
//! CPU and 19 MiB, which would stall every other request on the worker thread, so it runs on
//! the blocking pool.

use identity::password::Verification;

use crate::{AppState, WebError};

/// Checks `password` against `stored`; with no stored hash (no such account, or one that may
/// not sign in) does the same work and answers Invalid, so timing does not tell them apart.
pub async fn verify(
    state: &AppState,
    password: &str,
    stored: Option<String>,
) -> Result<Verification, WebError> {
    let policy = state.passwords.clone();
    let password = password.to_string();
    tokio::task::spawn_blocking(move || match stored {
        Some(phc) => policy.verify(&password, &phc),
        None => {
            policy.dummy_verify(&password);
            Verification::Invalid
        }
    })
    .await
    .map_err(|e| WebError::Internal(format!("password check stopped: {e}")))
}

/// A new hash of `password` under the server's policy.
pub async fn hash(state: &AppState, password: &str) -> Result<String, WebError> {
    let policy = state.passwords.clone();
    let password = password.to_string();
    tokio::task::spawn_blocking(move || policy.hash(&password))
        .await
        .map_err(|e| WebError::Internal(format!("password hashing stopped: {e}")))?
        .map_err(|e| WebError::Internal(format!("password hashing failed: {e}")))
}
