//! The audit records of sign-in events: one per success, failure, lockout, sign-out,
//! sign-out everywhere, password or authenticator change and registration, written (durably)
//! before the answer is sent. Identifiers only: the account id, never the username typed, a
//! password, a code or an NHS number. A failure for a username that names no account is
//! recorded against `unknown`.

use store::accounts::{Account, Role};
use store::audit::{AgentKind, AuditAction, AuditOutcome, AuditRecord};

use crate::client_ip::ClientIp;
use crate::{AppState, WebError};

/// The purpose every sign-in record carries.
pub const PURPOSE: &str = "sign-in";

/// What a sign-in event was about, beyond its action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The whole sign-in (second factor included) succeeded.
    SignedIn,
    /// A wrong or refused password, code or recovery code (`status` 401), a rate limit (429) or
    /// a locked or disabled account (423).
    Failed {
        status: u16,
    },
    /// This failure locked the account.
    LockedOut,
    SignedOut,
    /// Every other session ended.
    SignedOutEverywhere,
    PasswordChanged,
    SecondFactorChanged,
    /// A new account made by registration (NHS number or invitation).
    Registered,
}

/// The agent kind of an account's role.
pub fn agent_kind(role: Role) -> AgentKind {
    match role {
        Role::Patient => AgentKind::Patient,
        Role::Proxy => AgentKind::Proxy,
        Role::Clinician | Role::Clerical => AgentKind::Staff,
        Role::Admin => AgentKind::Admin,
    }
}

/// The record of `event` by `account` (None: no account was named or found).
pub fn record(
    state: &AppState,
    event: Event,
    account: Option<&Account>,
    ip: &ClientIp,
) -> AuditRecord {
    let (action, outcome, status, entity) = match event {
        Event::SignedIn => (AuditAction::SignIn, AuditOutcome::Success, 200, None),
        Event::Failed { status } => (
            AuditAction::SignInFailed,
            AuditOutcome::Denied,
            status,
            None,
        ),
        Event::LockedOut => (
            AuditAction::SignInFailed,
            AuditOutcome::Denied,
            423,
            Some("lockout"),
        ),
        Event::SignedOut => (AuditAction::SignOut, AuditOutcome::Success, 200, None),
        Event::SignedOutEverywhere => (
            AuditAction::SignOut,
            AuditOutcome::Success,
            200,
            Some("all-other-sessions"),
        ),
        Event::PasswordChanged => (
            AuditAction::CredentialChange,
            AuditOutcome::Success,
            200,
            Some("password"),
        ),
        Event::SecondFactorChanged => (
            AuditAction::CredentialChange,
            AuditOutcome::Success,
            200,
            Some("totp"),
        ),
        Event::Registered => (
            AuditAction::CredentialChange,
            AuditOutcome::Success,
            201,
            Some("registration"),
        ),
    };
    AuditRecord {
        recorded: state.now(),
        agent_kind: account.map_or(AgentKind::Anonymous, |a| agent_kind(a.role)),
        agent: account.map_or_else(|| "unknown".to_string(), |a| a.account_id.clone()),
        organisation: account.and_then(|a| a.ods_code.clone()),
        on_behalf_of: None,
        patient: account
            .filter(|a| a.role == Role::Patient)
            .and_then(|a| a.patient_id.clone()),
        action,
        entity: entity.map(str::to_string),
        purpose: PURPOSE.to_string(),
        reason: None,
        outcome,
        status: Some(status),
        source: ip.0.map(|ip| ip.to_string()),
    }
}

/// Writes the records of these events; durable when it returns.
pub async fn log(
    state: &AppState,
    events: &[Event],
    account: Option<&Account>,
    ip: &ClientIp,
) -> Result<(), WebError> {
    let records = events
        .iter()
        .map(|e| record(state, *e, account, ip))
        .collect();
    state.store.append_audit(records).await?;
    Ok(())
}
