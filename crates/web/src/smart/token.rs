//! The SMART app grants of `POST /oauth/token` (the endpoint itself, and the client
//! credentials grant of system clients, are in [`crate::auth`]).
//!
//! - **authorization_code** (RFC 6749 §4.1.3 with RFC 7636): the app (a public client, so
//!   `client_id` and no secret) sends the code, the same `redirect_uri` and the PKCE
//!   `code_verifier`. The code is taken from the store once; a code presented again means it
//!   was copied, so the grant it was issued under is revoked with its refresh tokens (RFC 6749
//!   §4.1.2), as is a grant whose code came with the wrong client, redirect URI or verifier.
//! - **refresh_token** (RFC 6749 §6, with rotation): each refresh token works once and the
//!   answer carries its successor. A used one presented again means one of the two copies is
//!   not the app's: the grant is revoked with every refresh token. The store refuses refresh
//!   tokens of a revoked grant, of a disabled account, or issued before the account's password
//!   last changed ([`store::AccountStore::take_refresh_token`]).
//!
//! The answer: a short-lived access token of kind `user` ([`crate::auth::Claims`]), the granted
//! `scope`, the `patient` in context, a `refresh_token` when `offline_access` was granted, and
//! an `id_token` ([`super::id_token`]) when `openid` was.

use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, TimeDelta, Utc};
use identity::token::{hash_token, new_token};
use serde_json::{json, Value};
use store::accounts::{Account, AccountStatus, OAuthGrant, RefreshToken};
use store::audit::{AgentKind, AuditAction, AuditOutcome, AuditRecord};

use super::grantable::{OFFLINE_ACCESS, OPENID};
use super::{code, id_token};
use crate::auth::{token_error, token_response, Claims, TokenForm, TokenKind};
use crate::{AppState, WebError};

/// How long a refresh token lives unused (each refresh issues a new one).
pub const REFRESH_TTL: TimeDelta = TimeDelta::days(30);

fn invalid_grant(description: &str) -> WebError {
    token_error(StatusCode::BAD_REQUEST, "invalid_grant", description)
}

fn invalid_request(description: impl Into<String>) -> WebError {
    token_error(StatusCode::BAD_REQUEST, "invalid_request", description)
}

fn required<'a>(fields: &TokenForm<'a>, name: &str) -> Result<&'a str, WebError> {
    fields
        .get(name)
        .copied()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| invalid_request(format!("{name} is missing")))
}

/// The app named by `client_id`: a registered public client that sent no secret.
async fn public_client(
    state: &AppState,
    basic_auth: bool,
    fields: &TokenForm<'_>,
) -> Result<String, WebError> {
    if basic_auth || fields.contains_key("client_secret") {
        return Err(token_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "SMART apps are public clients: send client_id without a secret, and prove the \
             code with code_verifier",
        ));
    }
    let client_id = fields.get("client_id").copied().unwrap_or_default();
    match state.store.accounts().smart_app(client_id).await? {
        Some(app) => Ok(app.client_id),
        None => Err(token_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client_id is missing or names no registered app",
        )),
    }
}

/// `grant_type=authorization_code`.
pub async fn authorization_code(
    state: &AppState,
    basic_auth: bool,
    fields: &TokenForm<'_>,
) -> Result<Response, WebError> {
    let client_id = public_client(state, basic_auth, fields).await?;
    let presented = required(fields, "code")?;
    let redirect_uri = required(fields, "redirect_uri")?;
    let verifier = required(fields, "code_verifier")?;
    let unusable = "the code is unknown, expired or already used; start the authorisation again";
    let parts = code::parse(presented).ok_or_else(|| invalid_grant(unusable))?;
    let accounts = state.store.accounts();
    let now = state.now();
    let hash = hash_token(presented);
    let Some(taken) = accounts.take_oauth_code(&hash, now).await? else {
        if let Some(used) = accounts.oauth_code(&hash).await? {
            if used.used_at.is_some() {
                revoke_issued_grant(state, &parts.grant_id, &used.account_id, &used.client_id)
                    .await?;
            }
        }
        return Err(invalid_grant(unusable));
    };
    let proof_ok = taken.client_id == client_id
        && taken.redirect_uri == redirect_uri
        && identity::pkce::verify_s256(verifier, &taken.code_challenge);
    if !proof_ok {
        revoke_issued_grant(state, &parts.grant_id, &taken.account_id, &taken.client_id).await?;
        return Err(invalid_grant(
            "the code was not issued to this client and redirect_uri, or code_verifier does not \
             match its code_challenge",
        ));
    }
    let grant = accounts
        .grant(&parts.grant_id)
        .await?
        .filter(|g| {
            g.revoked_at.is_none() && g.account_id == taken.account_id && g.client_id == client_id
        })
        .ok_or_else(|| invalid_grant("the person has disconnected this app"))?;
    let account = active_account(state, &grant.account_id).await?;
    issue(
        state,
        &grant,
        &account,
        &grant.scopes,
        parts.nonce.as_deref(),
        now,
    )
    .await
}

/// `grant_type=refresh_token`.
pub async fn refresh(
    state: &AppState,
    basic_auth: bool,
    fields: &TokenForm<'_>,
) -> Result<Response, WebError> {
    let client_id = public_client(state, basic_auth, fields).await?;
    let presented = required(fields, "refresh_token")?;
    let accounts = state.store.accounts();
    let now = state.now();
    let hash = hash_token(presented);
    let unusable = "the refresh token is unknown, expired, used or revoked; sign in again";
    let Some(taken) = accounts.take_refresh_token(&hash, now).await? else {
        if let Some(old) = accounts.refresh_token(&hash).await? {
            if old.used_at.is_some() {
                if let Some(grant) = accounts.grant(&old.grant_id).await? {
                    revoke_issued_grant(
                        state,
                        &grant.grant_id,
                        &grant.account_id,
                        &grant.client_id,
                    )
                    .await?;
                }
            }
        }
        return Err(invalid_grant(unusable));
    };
    let grant = accounts
        .grant(&taken.grant_id)
        .await?
        .filter(|g| g.revoked_at.is_none())
        .ok_or_else(|| invalid_grant(unusable))?;
    if grant.client_id != client_id {
        // Someone else's token: it is spent now, and the app that owns it must sign in again.
        revoke_issued_grant(state, &grant.grant_id, &grant.account_id, &grant.client_id).await?;
        return Err(invalid_grant(unusable));
    }
    let scope = narrowed_scope(&grant.scopes, fields.get("scope").copied())?;
    let account = active_account(state, &grant.account_id).await?;
    issue(state, &grant, &account, &scope, None, now).await
}

/// The scope of a refreshed token: the grant's, or the narrower one asked for (RFC 6749 §6).
fn narrowed_scope(granted: &str, asked: Option<&str>) -> Result<String, WebError> {
    let Some(asked) = asked.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(granted.to_string());
    };
    let granted: Vec<&str> = granted.split_whitespace().collect();
    if let Some(extra) = asked.split_whitespace().find(|s| !granted.contains(s)) {
        return Err(token_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            format!("scope {extra} was not granted to this app"),
        ));
    }
    Ok(asked.split_whitespace().collect::<Vec<_>>().join(" "))
}

async fn active_account(state: &AppState, account_id: &str) -> Result<Account, WebError> {
    state
        .store
        .accounts()
        .account_by_id(account_id)
        .await?
        .filter(|a| a.status == AccountStatus::Active)
        .ok_or_else(|| invalid_grant("the account this app acts for can no longer sign in"))
}

/// Revokes grant `grant_id` (if it is the one issued to `account_id` for `client_id`) and its
/// refresh tokens, and records why: a code or refresh token was used twice or by the wrong
/// client.
async fn revoke_issued_grant(
    state: &AppState,
    grant_id: &str,
    account_id: &str,
    client_id: &str,
) -> Result<(), WebError> {
    let accounts = state.store.accounts();
    let Some(grant) = accounts.grant(grant_id).await? else {
        return Ok(());
    };
    if grant.account_id != account_id || grant.client_id != client_id {
        return Ok(());
    }
    let now = state.now();
    let revoked = accounts.revoke_grant(grant_id, now).await?;
    accounts.revoke_refresh_tokens(grant_id, now).await?;
    if revoked {
        tracing::warn!(
            client_id,
            "an authorisation code or refresh token was presented twice or by the wrong client; \
             its grant has been revoked"
        );
        state
            .store
            .append_audit(vec![AuditRecord {
                recorded: now,
                agent_kind: AgentKind::Portico,
                agent: "portico".into(),
                organisation: None,
                on_behalf_of: Some(account_id.to_string()),
                patient: grant.patient_id.clone(),
                action: AuditAction::RevokeApp,
                entity: Some(client_id.to_string()),
                purpose: "token-reuse".into(),
                reason: None,
                outcome: AuditOutcome::Success,
                status: Some(400),
                source: None,
            }])
            .await?;
    }
    Ok(())
}

/// The token response for `grant` with `scope`.
async fn issue(
    state: &AppState,
    grant: &OAuthGrant,
    account: &Account,
    scope: &str,
    nonce: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Response, WebError> {
    let ttl = state.config.token_ttl_secs;
    let mut claims = Claims::new(&grant.client_id, scope, ttl, now.timestamp());
    claims.kind = TokenKind::User;
    claims.sub = Some(grant.account_id.clone());
    claims.patient = grant.patient_id.clone();
    claims.grant = Some(grant.grant_id.clone());
    let mut body = json!({
        "access_token": state.signer.sign_claims(&claims)?,
        "token_type": "Bearer",
        "expires_in": ttl,
        "scope": scope,
    });
    let has = |s: &str| scope.split_whitespace().any(|w| w == s);
    if let Some(patient) = &grant.patient_id {
        body["patient"] = Value::String(patient.clone());
    }
    if has(OFFLINE_ACCESS) {
        let token = new_token();
        state
            .store
            .accounts()
            .insert_refresh_token(&RefreshToken {
                token_hash: hash_token(&token),
                grant_id: grant.grant_id.clone(),
                created_at: now,
                expires_at: now + REFRESH_TTL,
                used_at: None,
            })
            .await?;
        body["refresh_token"] = Value::String(token);
    }
    if has(OPENID) {
        let id_token = id_token::id_token(state, grant, account, scope, nonce, now)?;
        body["id_token"] = Value::String(id_token);
    }
    Ok(token_response(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refresh_may_narrow_the_scope_but_never_widen_it() {
        let granted = "openid patient/*.read offline_access";
        assert_eq!(narrowed_scope(granted, None).ok().as_deref(), Some(granted));
        assert_eq!(
            narrowed_scope(granted, Some("  ")).ok().as_deref(),
            Some(granted)
        );
        assert_eq!(
            narrowed_scope(granted, Some("patient/*.read"))
                .ok()
                .as_deref(),
            Some("patient/*.read")
        );
        assert!(narrowed_scope(granted, Some("patient/*.write")).is_err());
    }
}
