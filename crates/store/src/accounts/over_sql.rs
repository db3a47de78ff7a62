//! [`AccountStore`] for every backend that runs statements ([`AccountSql`]): each operation is
//! a statement of [`super::sql`] with its arguments, and its answer decoded from the rows or
//! the count of rows changed. Being one copy, the rules cannot differ between databases.

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use fhir::{Issue, IssueType};

use super::exec::{AccountSql, Arg, Cell, Statement, Written};
use super::rows::{self, count, int, opt_text, opt_time, text, time};
use super::sql;
use super::{
    Account, AccountStatus, AccountStore, IdentityLevel, Invitation, OAuthCode, OAuthGrant,
    RateCount, RefreshToken, Session, SmartApp, WebauthnCredential,
};
use crate::error::{Result, StoreError};

/// Text with NUL is refused before it reaches a database: PostgreSQL cannot store it and
/// SQLite can, and the two must answer alike.
fn check(statement: &Statement) -> Result<()> {
    let nul = statement
        .args
        .iter()
        .any(|a| matches!(a, Arg::Text(Some(s)) if s.contains('\0')));
    if nul {
        return Err(StoreError::invalid(Issue::error(
            IssueType::Value,
            "text may not contain the NUL character",
        )));
    }
    Ok(())
}

async fn read_all<E, T>(
    db: &E,
    statement: Statement,
    decode: fn(&[Cell]) -> Result<T>,
) -> Result<Vec<T>>
where
    E: AccountSql + ?Sized,
{
    check(&statement)?;
    let rows = db.read_rows(statement).await?;
    rows.iter().map(|r| decode(r)).collect()
}

async fn read_one<E, T>(
    db: &E,
    statement: Statement,
    decode: fn(&[Cell]) -> Result<T>,
) -> Result<Option<T>>
where
    E: AccountSql + ?Sized,
{
    Ok(read_all(db, statement, decode).await?.into_iter().next())
}

async fn write_all<E>(db: &E, statements: Vec<Statement>) -> Result<Vec<Written>>
where
    E: AccountSql + ?Sized,
{
    for s in &statements {
        check(s)?;
    }
    let n = statements.len();
    let written = db.write_rows(statements).await?;
    if written.len() != n {
        return Err(StoreError::Database(format!(
            "{n} account statements ran but {} answered",
            written.len()
        )));
    }
    Ok(written)
}

async fn write<E>(db: &E, statement: Statement) -> Result<Written>
where
    E: AccountSql + ?Sized,
{
    write_all(db, vec![statement])
        .await?
        .pop()
        .ok_or_else(|| StoreError::Database("an account statement answered nothing".into()))
}

/// Whether the statement changed a row.
async fn changed<E>(db: &E, statement: Statement) -> Result<bool>
where
    E: AccountSql + ?Sized,
{
    Ok(write(db, statement).await?.changed > 0)
}

/// The first row a write returned, decoded.
async fn returned<E, T>(
    db: &E,
    statement: Statement,
    decode: impl Fn(&[Cell]) -> Result<T>,
) -> Result<Option<T>>
where
    E: AccountSql + ?Sized,
{
    let w = write(db, statement).await?;
    w.rows.first().map(|r| decode(r)).transpose()
}

/// A unique key taken, said without the value (which may be personal data).
fn taken(e: StoreError, what: &str) -> StoreError {
    match e {
        StoreError::Conflict(_) => StoreError::Conflict(format!("{what} already exists")),
        other => other,
    }
}

/// Which of an account's unique keys was taken; the backends' messages name the column
/// (SQLite) or the constraint named after it (PostgreSQL).
fn account_taken(e: StoreError) -> StoreError {
    match e {
        StoreError::Conflict(m) => StoreError::Conflict(
            if m.contains("username") {
                "an account with this username already exists"
            } else if m.contains("nhs_number") {
                "a patient account with this NHS number already exists"
            } else if m.contains("oidc_subject") {
                "an account linked to this external sign-in already exists"
            } else {
                "an account with this id already exists"
            }
            .into(),
        ),
        other => other,
    }
}

fn single_int(cells: &[Cell]) -> Result<i64> {
    rows::Row::new("accounts", cells).int(0)
}

fn st(sql: &'static str, args: Vec<Arg>) -> Statement {
    Statement::new(sql, args)
}

#[async_trait]
impl<E: AccountSql + ?Sized> AccountStore for E {
    async fn create_account(&self, account: &Account) -> Result<()> {
        write(self, st(sql::INSERT_ACCOUNT, rows::account_args(account)))
            .await
            .map(|_| ())
            .map_err(account_taken)
    }

    async fn account_by_id(&self, account_id: &str) -> Result<Option<Account>> {
        read_one(
            self,
            st(sql::ACCOUNT_BY_ID, vec![text(account_id)]),
            rows::account,
        )
        .await
    }

    async fn account_by_username(&self, username: &str) -> Result<Option<Account>> {
        let name = username.to_lowercase();
        read_one(
            self,
            st(sql::ACCOUNT_BY_USERNAME, vec![text(&name)]),
            rows::account,
        )
        .await
    }

    async fn account_by_nhs_number(&self, nhs_number: &str) -> Result<Option<Account>> {
        let s = st(sql::ACCOUNT_BY_NHS_NUMBER, vec![text(nhs_number)]);
        read_one(self, s, rows::account).await
    }

    async fn account_by_oidc_subject(&self, subject: &str) -> Result<Option<Account>> {
        let s = st(sql::ACCOUNT_BY_OIDC_SUBJECT, vec![text(subject)]);
        read_one(self, s, rows::account).await
    }

    async fn update_password(
        &self,
        account_id: &str,
        password_hash: &str,
        changed_at: DateTime<Utc>,
    ) -> Result<bool> {
        let args = vec![text(account_id), text(password_hash), time(changed_at)];
        changed(self, st(sql::UPDATE_PASSWORD, args)).await
    }

    async fn rehash_password(
        &self,
        account_id: &str,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let args = vec![text(account_id), text(password_hash), time(now)];
        changed(self, st(sql::REHASH_PASSWORD, args)).await
    }

    async fn set_totp(
        &self,
        account_id: &str,
        secret: Option<&str>,
        last_step: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let args = vec![
            text(account_id),
            opt_text(secret),
            Arg::Int(last_step),
            time(now),
        ];
        changed(self, st(sql::SET_TOTP, args)).await
    }

    async fn record_totp_step(&self, account_id: &str, step: i64) -> Result<bool> {
        changed(
            self,
            st(sql::RECORD_TOTP_STEP, vec![text(account_id), int(step)]),
        )
        .await
    }

    async fn record_sign_in_failure(
        &self,
        account_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<u32>> {
        let s = st(
            sql::RECORD_SIGN_IN_FAILURE,
            vec![text(account_id), time(now)],
        );
        Ok(returned(self, s, single_int).await?.map(count))
    }

    async fn reset_sign_in_failures(&self, account_id: &str, now: DateTime<Utc>) -> Result<bool> {
        let s = st(
            sql::RESET_SIGN_IN_FAILURES,
            vec![text(account_id), time(now)],
        );
        changed(self, s).await
    }

    async fn lock_account_until(
        &self,
        account_id: &str,
        until: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let args = vec![text(account_id), opt_time(until), time(now)];
        changed(self, st(sql::LOCK_ACCOUNT_UNTIL, args)).await
    }

    async fn set_account_status(
        &self,
        account_id: &str,
        status: AccountStatus,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let args = vec![text(account_id), text(status.as_str()), time(now)];
        changed(self, st(sql::SET_ACCOUNT_STATUS, args)).await
    }

    async fn link_oidc_subject(
        &self,
        account_id: &str,
        subject: &str,
        level: IdentityLevel,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let args = vec![
            text(account_id),
            text(subject),
            text(level.as_str()),
            time(now),
        ];
        changed(self, st(sql::LINK_OIDC_SUBJECT, args))
            .await
            .map_err(account_taken)
    }

    async fn replace_recovery_codes(&self, account_id: &str, code_hashes: &[String]) -> Result<()> {
        let mut statements = vec![st(sql::DELETE_RECOVERY_CODES, vec![text(account_id)])];
        statements.extend(
            code_hashes
                .iter()
                .map(|h| st(sql::INSERT_RECOVERY_CODE, vec![text(account_id), text(h)])),
        );
        write_all(self, statements)
            .await
            .map(|_| ())
            .map_err(|e| taken(e, "a recovery code with this hash"))
    }

    async fn use_recovery_code(
        &self,
        account_id: &str,
        code_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let args = vec![text(account_id), text(code_hash), time(now)];
        changed(self, st(sql::USE_RECOVERY_CODE, args)).await
    }

    async fn recovery_codes_left(&self, account_id: &str) -> Result<u32> {
        let s = st(sql::RECOVERY_CODES_LEFT, vec![text(account_id)]);
        Ok(read_one(self, s, single_int).await?.map_or(0, count))
    }

    async fn add_webauthn_credential(&self, credential: &WebauthnCredential) -> Result<()> {
        write(
            self,
            st(sql::INSERT_WEBAUTHN, rows::webauthn_args(credential)),
        )
        .await
        .map(|_| ())
        .map_err(|e| taken(e, "a passkey with this credential id"))
    }

    async fn webauthn_credential(&self, credential_id: &str) -> Result<Option<WebauthnCredential>> {
        let s = st(sql::WEBAUTHN_BY_ID, vec![text(credential_id)]);
        read_one(self, s, rows::webauthn).await
    }

    async fn webauthn_credentials(&self, account_id: &str) -> Result<Vec<WebauthnCredential>> {
        let s = st(sql::WEBAUTHN_BY_ACCOUNT, vec![text(account_id)]);
        read_all(self, s, rows::webauthn).await
    }

    async fn update_webauthn_credential(
        &self,
        credential_id: &str,
        passkey: &str,
        used_at: DateTime<Utc>,
    ) -> Result<bool> {
        let args = vec![text(credential_id), text(passkey), time(used_at)];
        changed(self, st(sql::UPDATE_WEBAUTHN, args)).await
    }

    async fn remove_webauthn_credential(
        &self,
        account_id: &str,
        credential_id: &str,
    ) -> Result<bool> {
        let args = vec![text(account_id), text(credential_id)];
        changed(self, st(sql::REMOVE_WEBAUTHN, args)).await
    }

    async fn create_session(&self, session: &Session) -> Result<()> {
        write(self, st(sql::INSERT_SESSION, rows::session_args(session)))
            .await
            .map(|_| ())
            .map_err(|e| taken(e, "a session with this token"))
    }

    async fn session(&self, token_hash: &str) -> Result<Option<Session>> {
        let s = st(sql::SESSION_BY_HASH, vec![text(token_hash)]);
        read_one(self, s, rows::session).await
    }

    async fn touch_session(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
        idle_expires_at: DateTime<Utc>,
    ) -> Result<bool> {
        let args = vec![text(token_hash), time(now), time(idle_expires_at)];
        changed(self, st(sql::TOUCH_SESSION, args)).await
    }

    async fn complete_second_factor(&self, token_hash: &str) -> Result<bool> {
        changed(
            self,
            st(sql::COMPLETE_SECOND_FACTOR, vec![text(token_hash)]),
        )
        .await
    }

    async fn set_acting_for(&self, token_hash: &str, patient_id: Option<&str>) -> Result<bool> {
        let args = vec![text(token_hash), opt_text(patient_id)];
        changed(self, st(sql::SET_ACTING_FOR, args)).await
    }

    async fn end_session(&self, token_hash: &str, now: DateTime<Utc>) -> Result<bool> {
        changed(
            self,
            st(sql::END_SESSION, vec![text(token_hash), time(now)]),
        )
        .await
    }

    async fn end_all_sessions(
        &self,
        account_id: &str,
        keep: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let args = vec![text(account_id), time(now), opt_text(keep)];
        Ok(write(self, st(sql::END_ALL_SESSIONS, args)).await?.changed)
    }

    async fn rate_limit_hit(
        &self,
        key: &str,
        now: DateTime<Utc>,
        window: TimeDelta,
        max: u32,
    ) -> Result<RateCount> {
        let window_ms = window.num_milliseconds();
        if window_ms < 1 {
            return Err(StoreError::invalid(Issue::error(
                IssueType::Value,
                "a rate-limit window must be at least a millisecond",
            )));
        }
        let args = vec![text(key), time(now), int(window_ms), int(i64::from(max))];
        let decode = |cells: &[Cell]| {
            let r = rows::Row::new("rate_limits", cells);
            Ok(RateCount {
                count: count(r.int(0)?),
                window_start: r.time(1)?,
                locked_until: r.opt_time(2)?,
            })
        };
        returned(self, st(sql::RATE_LIMIT_HIT, args), decode)
            .await?
            .ok_or_else(|| StoreError::Database("a rate-limit hit returned no counter".into()))
    }

    async fn rate_limit_clear(&self, key: &str) -> Result<()> {
        write(self, st(sql::RATE_LIMIT_CLEAR, vec![text(key)]))
            .await
            .map(|_| ())
    }

    async fn create_invitation(&self, invitation: &Invitation) -> Result<()> {
        let s = st(sql::INSERT_INVITATION, rows::invitation_args(invitation));
        write(self, s)
            .await
            .map(|_| ())
            .map_err(|e| taken(e, "an invitation with this code"))
    }

    async fn invitation(&self, code_hash: &str) -> Result<Option<Invitation>> {
        let s = st(sql::INVITATION_BY_HASH, vec![text(code_hash)]);
        read_one(self, s, rows::invitation).await
    }

    async fn count_invitation_attempt(
        &self,
        code_hash: &str,
        now: DateTime<Utc>,
        max_attempts: u32,
    ) -> Result<Option<u32>> {
        let args = vec![text(code_hash), time(now), int(i64::from(max_attempts))];
        let s = st(sql::COUNT_INVITATION_ATTEMPT, args);
        Ok(returned(self, s, single_int).await?.map(count))
    }

    async fn take_invitation(&self, code_hash: &str, now: DateTime<Utc>) -> Result<Option<String>> {
        let s = st(sql::TAKE_INVITATION, vec![text(code_hash), time(now)]);
        returned(self, s, |cells| {
            rows::Row::new("invitations", cells).text(0)
        })
        .await
    }

    async fn create_smart_app(&self, app: &SmartApp) -> Result<()> {
        write(self, st(sql::INSERT_SMART_APP, rows::smart_app_args(app)?))
            .await
            .map(|_| ())
            .map_err(|e| taken(e, "a SMART app with this client id"))
    }

    async fn smart_app(&self, client_id: &str) -> Result<Option<SmartApp>> {
        let s = st(sql::SMART_APP_BY_ID, vec![text(client_id)]);
        read_one(self, s, rows::smart_app).await
    }

    async fn insert_oauth_code(&self, code: &OAuthCode) -> Result<()> {
        write(
            self,
            st(sql::INSERT_OAUTH_CODE, rows::oauth_code_args(code)),
        )
        .await
        .map(|_| ())
        .map_err(|e| taken(e, "an authorisation code with this hash"))
    }

    async fn take_oauth_code(
        &self,
        code_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<OAuthCode>> {
        let s = st(sql::TAKE_OAUTH_CODE, vec![text(code_hash), time(now)]);
        returned(self, s, rows::oauth_code).await
    }

    async fn oauth_code(&self, code_hash: &str) -> Result<Option<OAuthCode>> {
        let s = st(sql::OAUTH_CODE_BY_HASH, vec![text(code_hash)]);
        read_one(self, s, rows::oauth_code).await
    }

    async fn create_grant(&self, grant: &OAuthGrant) -> Result<()> {
        write(self, st(sql::INSERT_GRANT, rows::grant_args(grant)))
            .await
            .map(|_| ())
            .map_err(|e| taken(e, "a grant with this id"))
    }

    async fn grant(&self, grant_id: &str) -> Result<Option<OAuthGrant>> {
        read_one(
            self,
            st(sql::GRANT_BY_ID, vec![text(grant_id)]),
            rows::grant,
        )
        .await
    }

    async fn active_grants(&self, account_id: &str) -> Result<Vec<OAuthGrant>> {
        read_all(
            self,
            st(sql::ACTIVE_GRANTS, vec![text(account_id)]),
            rows::grant,
        )
        .await
    }

    async fn revoke_grant(&self, grant_id: &str, now: DateTime<Utc>) -> Result<bool> {
        changed(self, st(sql::REVOKE_GRANT, vec![text(grant_id), time(now)])).await
    }

    async fn insert_refresh_token(&self, token: &RefreshToken) -> Result<()> {
        write(
            self,
            st(sql::INSERT_REFRESH_TOKEN, rows::refresh_args(token)),
        )
        .await
        .map(|_| ())
        .map_err(|e| taken(e, "a refresh token with this hash"))
    }

    async fn take_refresh_token(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<RefreshToken>> {
        let s = st(sql::TAKE_REFRESH_TOKEN, vec![text(token_hash), time(now)]);
        returned(self, s, rows::refresh).await
    }

    async fn refresh_token(&self, token_hash: &str) -> Result<Option<RefreshToken>> {
        let s = st(sql::REFRESH_TOKEN_BY_HASH, vec![text(token_hash)]);
        read_one(self, s, rows::refresh).await
    }

    async fn revoke_refresh_tokens(&self, grant_id: &str, now: DateTime<Utc>) -> Result<u64> {
        let s = st(sql::REVOKE_REFRESH_TOKENS, vec![text(grant_id), time(now)]);
        Ok(write(self, s).await?.changed)
    }
}
