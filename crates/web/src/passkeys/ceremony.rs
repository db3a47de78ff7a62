//! The server's half of a WebAuthn ceremony, kept between its start and its finish.
//!
//! A ceremony's state holds the challenge the authenticator must sign; whoever holds the state
//! decides which answer is accepted, so it never leaves the server (webauthn-rs warns that a
//! client-held state opens replays). It is stored in the portal state table
//! (`Store::state_put`) under a random handle that the browser gets instead and sends back, so
//! every server instance can finish a ceremony another one started.
//!
//! A state is **taken once**: the finish swaps it for a marker with one compare-and-put, which
//! exactly one of several racing requests wins, on any instance, and then deletes it. A replayed
//! answer finds nothing. A state lives [`TTL`] (the authenticator's own time limit); an expired
//! one is refused, and puts now and then sweep away states that were never finished.

use chrono::{DateTime, TimeDelta, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::{AppState, WebError};

/// How long a started ceremony may be finished: webauthn-rs's authenticator timeout (5 minutes).
pub const TTL: TimeDelta = TimeDelta::minutes(5);

/// Every ceremony key starts with this.
const PREFIX: &str = "passkey-ceremony/";

/// What a taken state is replaced by until it is deleted.
const TAKEN: &str = "taken";

/// One in this many puts sweeps expired states.
const SWEEP_ONE_IN: u32 = 32;

/// Longest handle accepted back from a browser (ours are 43 characters).
const MAX_HANDLE_LEN: usize = 64;

/// Which ceremony a state belongs to: a state of one kind never finishes the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Adding a passkey to a signed-in account.
    Registration,
    /// Signing in with a passkey.
    SignIn,
}

impl Kind {
    fn key(self, handle: &str) -> String {
        let kind = match self {
            Kind::Registration => "registration",
            Kind::SignIn => "sign-in",
        };
        format!("{PREFIX}{kind}/{handle}")
    }
}

/// A stored ceremony.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ceremony<S> {
    /// The session that started it (its token hash), for a registration: only that session
    /// may finish it. None for a sign-in, which has no session yet.
    pub session: Option<String>,
    pub expires_at: DateTime<Utc>,
    /// The webauthn-rs ceremony state.
    pub state: S,
}

/// Just the expiry of a stored ceremony, for the sweep.
#[derive(Deserialize)]
struct Expiry {
    expires_at: DateTime<Utc>,
}

fn internal(what: &str, e: impl std::fmt::Display) -> WebError {
    WebError::Internal(format!("passkey ceremony state {what}: {e}"))
}

/// Whether `handle` could be one of ours: base64url, not too long.
fn is_handle(handle: &str) -> bool {
    !handle.is_empty()
        && handle.len() <= MAX_HANDLE_LEN
        && handle
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Stores a new ceremony's state; the handle to give the browser.
pub async fn put<S: Serialize>(
    state: &AppState,
    kind: Kind,
    session: Option<&str>,
    ceremony_state: &S,
) -> Result<String, WebError> {
    let now = state.now();
    let ceremony = Ceremony {
        session: session.map(str::to_string),
        expires_at: now + TTL,
        state: ceremony_state,
    };
    let json = serde_json::to_string(&ceremony).map_err(|e| internal("not serialisable", e))?;
    let handle = identity::token::new_token();
    state.store.state_put(&kind.key(&handle), &json).await?;
    if rand::random_ratio(1, SWEEP_ONE_IN) {
        sweep(state).await?;
    }
    Ok(handle)
}

/// Takes the ceremony `handle` names, once: None when there is no such ceremony (never started,
/// finished already, of the other kind) or it has expired.
pub async fn take<S: DeserializeOwned>(
    state: &AppState,
    kind: Kind,
    handle: &str,
) -> Result<Option<Ceremony<S>>, WebError> {
    if !is_handle(handle) {
        return Ok(None);
    }
    let key = kind.key(handle);
    let store = &state.store;
    let Some(value) = store.state_get(&key).await? else {
        return Ok(None);
    };
    if value == TAKEN
        || !store
            .state_compare_and_put(&key, Some(&value), TAKEN)
            .await?
    {
        // Another request took it first.
        return Ok(None);
    }
    store.state_delete(&key).await?;
    let Ok(ceremony) = serde_json::from_str::<Ceremony<S>>(&value) else {
        return Ok(None);
    };
    if state.now() >= ceremony.expires_at {
        return Ok(None);
    }
    Ok(Some(ceremony))
}

/// Deletes every expired (or unreadable) ceremony state; how many.
pub async fn sweep(state: &AppState) -> Result<u64, WebError> {
    let now = state.now();
    let mut removed = 0;
    for (key, value) in state.store.state_list(PREFIX).await? {
        let expired = serde_json::from_str::<Expiry>(&value).map_or(true, |e| now >= e.expires_at);
        if expired {
            state.store.state_delete(&key).await?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_plain_base64url_tokens_of_bounded_length() {
        assert!(is_handle(&identity::token::new_token()));
        assert!(is_handle("abc-DEF_123"));
        for bad in ["", "a/b", "../x", "a b", "a%2F", "ä", &"a".repeat(65)] {
            assert!(!is_handle(bad), "{bad:?}");
        }
    }

    #[test]
    fn the_two_kinds_never_share_a_key() {
        assert_ne!(Kind::Registration.key("h"), Kind::SignIn.key("h"));
        assert!(Kind::SignIn.key("h").starts_with(PREFIX));
    }
}
