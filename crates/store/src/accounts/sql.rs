//! The SQL of the account tables, one text for both databases: standard SQL that SQLite and
//! PostgreSQL read alike (instants are epoch milliseconds, flags 0/1, no backend functions).
//! Placeholders are `$1`, `$2`…; SQLite reads them as `?1`, `?2`… ([`super::Statement`]).
//!
//! Each "only once" rule is one conditional `UPDATE … WHERE <still allowed> … RETURNING`: the
//! database applies it to the row under its lock, so of two racing requests exactly one sees
//! the row still allowed — across connections, processes and server instances.

/// Columns of a row decoded by `rows::account`, in order.
macro_rules! account_columns {
    () => {
        "account_id, username, role, password_hash, patient_id, related_person_id, \
         practitioner_role_id, ods_code, nhs_number, identity_level, totp_secret, totp_last_step, \
         oidc_subject, status, failed_sign_ins, locked_until, credentials_changed_at, created_at, \
         updated_at"
    };
}
macro_rules! webauthn_columns {
    () => {
        "credential_id, account_id, name, passkey, created_at, last_used_at"
    };
}
macro_rules! session_columns {
    () => {
        "token_hash, account_id, created_at, last_seen_at, idle_expires_at, absolute_expires_at, \
         csrf_secret, second_factor_done, acting_for_patient, ended_at"
    };
}
macro_rules! invitation_columns {
    () => {
        "code_hash, patient_id, created_at, expires_at, used_at, attempts"
    };
}
macro_rules! smart_app_columns {
    () => {
        "client_id, name, redirect_uris, created_at"
    };
}
macro_rules! oauth_code_columns {
    () => {
        "code_hash, client_id, account_id, redirect_uri, scopes, code_challenge, patient_id, \
         created_at, expires_at, used_at"
    };
}
macro_rules! grant_columns {
    () => {
        "grant_id, account_id, client_id, scopes, patient_id, created_at, revoked_at"
    };
}
macro_rules! refresh_columns {
    () => {
        "token_hash, grant_id, created_at, expires_at, used_at"
    };
}

// ----- Accounts -----

pub const INSERT_ACCOUNT: &str = concat!(
    "INSERT INTO accounts (",
    account_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)"
);
pub const ACCOUNT_BY_ID: &str = concat!(
    "SELECT ",
    account_columns!(),
    " FROM accounts WHERE account_id = $1"
);
pub const ACCOUNT_BY_USERNAME: &str = concat!(
    "SELECT ",
    account_columns!(),
    " FROM accounts WHERE username = $1"
);
/// Matches the partial unique index on patients' NHS numbers.
pub const ACCOUNT_BY_NHS_NUMBER: &str = concat!(
    "SELECT ",
    account_columns!(),
    " FROM accounts WHERE nhs_number = $1 AND role = 'patient'"
);
pub const ACCOUNT_BY_OIDC_SUBJECT: &str = concat!(
    "SELECT ",
    account_columns!(),
    " FROM accounts WHERE oidc_subject = $1"
);
pub const UPDATE_PASSWORD: &str = "UPDATE accounts SET password_hash = $2, \
     credentials_changed_at = $3, updated_at = $3 WHERE account_id = $1";
pub const REHASH_PASSWORD: &str =
    "UPDATE accounts SET password_hash = $2, updated_at = $3 WHERE account_id = $1";
pub const SET_TOTP: &str = "UPDATE accounts SET totp_secret = $2, totp_last_step = $3, \
     updated_at = $4 WHERE account_id = $1";
/// The replay guard: only a step later than the last one recorded.
pub const RECORD_TOTP_STEP: &str = "UPDATE accounts SET totp_last_step = $2 \
     WHERE account_id = $1 AND (totp_last_step IS NULL OR totp_last_step < $2)";
pub const RECORD_SIGN_IN_FAILURE: &str = "UPDATE accounts SET failed_sign_ins = \
     failed_sign_ins + 1, updated_at = $2 WHERE account_id = $1 RETURNING failed_sign_ins";
pub const RESET_SIGN_IN_FAILURES: &str = "UPDATE accounts SET failed_sign_ins = 0, \
     locked_until = NULL, updated_at = $2 WHERE account_id = $1";
pub const LOCK_ACCOUNT_UNTIL: &str =
    "UPDATE accounts SET locked_until = $2, updated_at = $3 WHERE account_id = $1";
pub const SET_ACCOUNT_STATUS: &str =
    "UPDATE accounts SET status = $2, updated_at = $3 WHERE account_id = $1";
pub const LINK_OIDC_SUBJECT: &str = "UPDATE accounts SET oidc_subject = $2, \
     identity_level = $3, updated_at = $4 WHERE account_id = $1";

// ----- Recovery codes -----

pub const DELETE_RECOVERY_CODES: &str = "DELETE FROM recovery_codes WHERE account_id = $1";
pub const INSERT_RECOVERY_CODE: &str =
    "INSERT INTO recovery_codes (account_id, code_hash, used_at) VALUES ($1, $2, NULL)";
pub const USE_RECOVERY_CODE: &str = "UPDATE recovery_codes SET used_at = $3 \
     WHERE account_id = $1 AND code_hash = $2 AND used_at IS NULL";
pub const RECOVERY_CODES_LEFT: &str =
    "SELECT COUNT(*) FROM recovery_codes WHERE account_id = $1 AND used_at IS NULL";

// ----- Passkeys -----

pub const INSERT_WEBAUTHN: &str = concat!(
    "INSERT INTO webauthn_credentials (",
    webauthn_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6)"
);
pub const WEBAUTHN_BY_ID: &str = concat!(
    "SELECT ",
    webauthn_columns!(),
    " FROM webauthn_credentials WHERE credential_id = $1"
);
pub const WEBAUTHN_BY_ACCOUNT: &str = concat!(
    "SELECT ",
    webauthn_columns!(),
    " FROM webauthn_credentials WHERE account_id = $1 ORDER BY created_at, credential_id"
);
pub const UPDATE_WEBAUTHN: &str = "UPDATE webauthn_credentials SET passkey = $2, \
     last_used_at = $3 WHERE credential_id = $1";
pub const REMOVE_WEBAUTHN: &str =
    "DELETE FROM webauthn_credentials WHERE account_id = $1 AND credential_id = $2";

// ----- Sessions -----

pub const INSERT_SESSION: &str = concat!(
    "INSERT INTO sessions (",
    session_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
);
pub const SESSION_BY_HASH: &str = concat!(
    "SELECT ",
    session_columns!(),
    " FROM sessions WHERE token_hash = $1"
);
/// Live sessions only; the idle expiry never passes the absolute one.
pub const TOUCH_SESSION: &str = "UPDATE sessions SET last_seen_at = $2, idle_expires_at = \
     CASE WHEN $3 < absolute_expires_at THEN $3 ELSE absolute_expires_at END \
     WHERE token_hash = $1 AND ended_at IS NULL AND idle_expires_at > $2 \
     AND absolute_expires_at > $2";
pub const COMPLETE_SECOND_FACTOR: &str = "UPDATE sessions SET second_factor_done = 1 \
     WHERE token_hash = $1 AND ended_at IS NULL";
pub const SET_ACTING_FOR: &str = "UPDATE sessions SET acting_for_patient = $2 \
     WHERE token_hash = $1 AND ended_at IS NULL";
pub const END_SESSION: &str =
    "UPDATE sessions SET ended_at = $2 WHERE token_hash = $1 AND ended_at IS NULL";
pub const END_ALL_SESSIONS: &str = "UPDATE sessions SET ended_at = $2 WHERE account_id = $1 \
     AND ended_at IS NULL AND ($3 IS NULL OR token_hash <> $3)";

// ----- Rate limits -----

/// `$1` key, `$2` now, `$3` window (ms), `$4` maximum. A hit after the window ended starts a
/// new one; the SET expressions all read the row as it was before this hit.
pub const RATE_LIMIT_HIT: &str =
    "INSERT INTO rate_limits (key, window_start, count, locked_until) \
     VALUES ($1, $2, 1, CASE WHEN 1 > $4 THEN $2 + $3 END) \
     ON CONFLICT (key) DO UPDATE SET \
     window_start = CASE WHEN rate_limits.window_start + $3 <= $2 THEN $2 \
         ELSE rate_limits.window_start END, \
     count = CASE WHEN rate_limits.window_start + $3 <= $2 THEN 1 \
         ELSE rate_limits.count + 1 END, \
     locked_until = CASE \
         WHEN rate_limits.window_start + $3 <= $2 THEN CASE WHEN 1 > $4 THEN $2 + $3 END \
         WHEN rate_limits.count + 1 > $4 THEN rate_limits.window_start + $3 \
         ELSE NULL END \
     RETURNING count, window_start, locked_until";
pub const RATE_LIMIT_CLEAR: &str = "DELETE FROM rate_limits WHERE key = $1";

// ----- Invitations -----

pub const INSERT_INVITATION: &str = concat!(
    "INSERT INTO invitations (",
    invitation_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6)"
);
pub const INVITATION_BY_HASH: &str = concat!(
    "SELECT ",
    invitation_columns!(),
    " FROM invitations WHERE code_hash = $1"
);
pub const COUNT_INVITATION_ATTEMPT: &str = "UPDATE invitations SET attempts = attempts + 1 \
     WHERE code_hash = $1 AND used_at IS NULL AND expires_at > $2 AND attempts < $3 \
     RETURNING attempts";
pub const TAKE_INVITATION: &str = "UPDATE invitations SET used_at = $2 \
     WHERE code_hash = $1 AND used_at IS NULL AND expires_at > $2 RETURNING patient_id";

// ----- SMART apps and OAuth -----

pub const INSERT_SMART_APP: &str = concat!(
    "INSERT INTO smart_apps (",
    smart_app_columns!(),
    ") VALUES ($1, $2, $3, $4)"
);
pub const SMART_APP_BY_ID: &str = concat!(
    "SELECT ",
    smart_app_columns!(),
    " FROM smart_apps WHERE client_id = $1"
);
pub const INSERT_OAUTH_CODE: &str = concat!(
    "INSERT INTO oauth_codes (",
    oauth_code_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
);
pub const OAUTH_CODE_BY_HASH: &str = concat!(
    "SELECT ",
    oauth_code_columns!(),
    " FROM oauth_codes WHERE code_hash = $1"
);
pub const TAKE_OAUTH_CODE: &str = concat!(
    "UPDATE oauth_codes SET used_at = $2 \
     WHERE code_hash = $1 AND used_at IS NULL AND expires_at > $2 RETURNING ",
    oauth_code_columns!()
);
pub const INSERT_GRANT: &str = concat!(
    "INSERT INTO oauth_grants (",
    grant_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7)"
);
pub const GRANT_BY_ID: &str = concat!(
    "SELECT ",
    grant_columns!(),
    " FROM oauth_grants WHERE grant_id = $1"
);
pub const ACTIVE_GRANTS: &str = concat!(
    "SELECT ",
    grant_columns!(),
    " FROM oauth_grants WHERE account_id = $1 AND revoked_at IS NULL \
     ORDER BY created_at, grant_id"
);
pub const REVOKE_GRANT: &str =
    "UPDATE oauth_grants SET revoked_at = $2 WHERE grant_id = $1 AND revoked_at IS NULL";
pub const INSERT_REFRESH_TOKEN: &str = concat!(
    "INSERT INTO refresh_tokens (",
    refresh_columns!(),
    ") VALUES ($1, $2, $3, $4, $5)"
);
pub const REFRESH_TOKEN_BY_HASH: &str = concat!(
    "SELECT ",
    refresh_columns!(),
    " FROM refresh_tokens WHERE token_hash = $1"
);
/// Single use, and only while the grant stands, the account is active and the token is newer
/// than the account's last credential change.
pub const TAKE_REFRESH_TOKEN: &str = concat!(
    "UPDATE refresh_tokens SET used_at = $2 \
     WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 AND EXISTS (\
         SELECT 1 FROM oauth_grants g JOIN accounts a ON a.account_id = g.account_id \
         WHERE g.grant_id = refresh_tokens.grant_id AND g.revoked_at IS NULL \
         AND a.status = 'active' AND (a.credentials_changed_at IS NULL \
             OR a.credentials_changed_at < refresh_tokens.created_at)) \
     RETURNING ",
    refresh_columns!()
);
pub const REVOKE_REFRESH_TOKENS: &str =
    "UPDATE refresh_tokens SET used_at = $2 WHERE grant_id = $1 AND used_at IS NULL";
