-- Portal accounts and sign-in state (crates/store/src/accounts.rs): plain tables, not FHIR.
-- Instants are epoch milliseconds; flags are 0/1. Secrets are never stored in the clear:
-- passwords as PHC strings, session ids, codes and tokens as their hashes.

CREATE TABLE accounts (
    account_id             TEXT    PRIMARY KEY,
    -- Lower-cased by the store, so usernames are unique ignoring case.
    username               TEXT    NOT NULL UNIQUE,
    role                   TEXT    NOT NULL
                           CHECK (role IN ('patient', 'proxy', 'clinician', 'clerical', 'admin')),
    password_hash          TEXT,
    patient_id             TEXT,
    related_person_id      TEXT,
    practitioner_role_id   TEXT,
    ods_code               TEXT,
    nhs_number             TEXT,
    identity_level         TEXT    NOT NULL CHECK (identity_level IN ('P0', 'P5', 'P9')),
    totp_secret            TEXT,
    -- The last TOTP step accepted (replay guard).
    totp_last_step         INTEGER,
    oidc_subject           TEXT    UNIQUE,
    status                 TEXT    NOT NULL CHECK (status IN ('active', 'disabled')),
    failed_sign_ins        INTEGER NOT NULL DEFAULT 0,
    locked_until           INTEGER,
    -- Refresh tokens issued before it are no longer honoured.
    credentials_changed_at INTEGER,
    created_at             INTEGER NOT NULL,
    updated_at             INTEGER NOT NULL
);
-- One patient account per NHS number; a proxy may hold the number of a patient account.
CREATE UNIQUE INDEX accounts_patient_nhs_number ON accounts (nhs_number)
    WHERE role = 'patient' AND nhs_number IS NOT NULL;

CREATE TABLE recovery_codes (
    account_id TEXT NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
    code_hash  TEXT NOT NULL,
    used_at    INTEGER,
    PRIMARY KEY (account_id, code_hash)
) WITHOUT ROWID;

CREATE TABLE webauthn_credentials (
    credential_id TEXT    PRIMARY KEY,
    account_id    TEXT    NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
    name          TEXT    NOT NULL,
    -- The web layer's serialised credential state (JSON).
    passkey       TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER
);
CREATE INDEX webauthn_credentials_account ON webauthn_credentials (account_id);

CREATE TABLE sessions (
    token_hash          TEXT    PRIMARY KEY,
    account_id          TEXT    NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
    created_at          INTEGER NOT NULL,
    last_seen_at        INTEGER NOT NULL,
    idle_expires_at     INTEGER NOT NULL,
    absolute_expires_at INTEGER NOT NULL,
    csrf_secret         TEXT    NOT NULL,
    second_factor_done  INTEGER NOT NULL DEFAULT 0 CHECK (second_factor_done IN (0, 1)),
    acting_for_patient  TEXT,
    ended_at            INTEGER
);
-- "Sign out everywhere".
CREATE INDEX sessions_account ON sessions (account_id);

-- Counters shared by every server instance (one fixed window per key).
CREATE TABLE rate_limits (
    key          TEXT    PRIMARY KEY,
    window_start INTEGER NOT NULL,
    count        INTEGER NOT NULL,
    locked_until INTEGER
) WITHOUT ROWID;

CREATE TABLE invitations (
    code_hash  TEXT    PRIMARY KEY,
    patient_id TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER,
    attempts   INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

CREATE TABLE smart_apps (
    client_id     TEXT    PRIMARY KEY,
    name          TEXT    NOT NULL,
    -- JSON array of exact redirect URIs.
    redirect_uris TEXT    NOT NULL,
    created_at    INTEGER NOT NULL
);

CREATE TABLE oauth_codes (
    code_hash      TEXT    PRIMARY KEY,
    client_id      TEXT    NOT NULL REFERENCES smart_apps (client_id) ON DELETE CASCADE,
    account_id     TEXT    NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
    redirect_uri   TEXT    NOT NULL,
    scopes         TEXT    NOT NULL,
    code_challenge TEXT    NOT NULL,
    patient_id     TEXT,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    used_at        INTEGER
) WITHOUT ROWID;

CREATE TABLE oauth_grants (
    grant_id   TEXT    PRIMARY KEY,
    account_id TEXT    NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
    client_id  TEXT    NOT NULL REFERENCES smart_apps (client_id) ON DELETE CASCADE,
    scopes     TEXT    NOT NULL,
    patient_id TEXT,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX oauth_grants_account ON oauth_grants (account_id);
CREATE INDEX oauth_grants_client ON oauth_grants (client_id);

CREATE TABLE refresh_tokens (
    token_hash TEXT    PRIMARY KEY,
    grant_id   TEXT    NOT NULL REFERENCES oauth_grants (grant_id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
) WITHOUT ROWID;
CREATE INDEX refresh_tokens_grant ON refresh_tokens (grant_id);
