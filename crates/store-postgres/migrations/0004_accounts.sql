-- Portal accounts and sign-in state (crates/store/src/accounts.rs): plain tables, not FHIR,
-- with the same names and columns as SQLite's 0006_accounts so that one SQL text serves both.
-- Instants are epoch milliseconds (BIGINT, as elsewhere in this schema); flags are 0/1.
-- Secrets are never stored in the clear: passwords as PHC strings, session ids, codes and
-- tokens as their hashes. Unique constraints are named after their column: the store reports
-- which one a conflict hit from the name.

CREATE TABLE accounts (
    account_id             TEXT COLLATE "C" NOT NULL,
    -- Lower-cased by the store, so usernames are unique ignoring case.
    username               TEXT COLLATE "C" NOT NULL,
    role                   TEXT   NOT NULL
                           CHECK (role IN ('patient', 'proxy', 'clinician', 'clerical', 'admin')),
    password_hash          TEXT,
    patient_id             TEXT COLLATE "C",
    related_person_id      TEXT COLLATE "C",
    practitioner_role_id   TEXT COLLATE "C",
    ods_code               TEXT COLLATE "C",
    nhs_number             TEXT COLLATE "C",
    identity_level         TEXT   NOT NULL CHECK (identity_level IN ('P0', 'P5', 'P9')),
    totp_secret            TEXT,
    -- The last TOTP step accepted (replay guard).
    totp_last_step         BIGINT,
    oidc_subject           TEXT COLLATE "C",
    status                 TEXT   NOT NULL CHECK (status IN ('active', 'disabled')),
    failed_sign_ins        BIGINT NOT NULL DEFAULT 0,
    locked_until           BIGINT,
    -- Refresh tokens issued before it are no longer honoured.
    credentials_changed_at BIGINT,
    created_at             BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL,
    CONSTRAINT accounts_account_id PRIMARY KEY (account_id),
    CONSTRAINT accounts_username UNIQUE (username),
    CONSTRAINT accounts_oidc_subject UNIQUE (oidc_subject)
);
-- One patient account per NHS number; a proxy may hold the number of a patient account.
CREATE UNIQUE INDEX accounts_patient_nhs_number ON accounts (nhs_number)
    WHERE role = 'patient' AND nhs_number IS NOT NULL;

CREATE TABLE recovery_codes (
    account_id TEXT COLLATE "C" NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
    code_hash  TEXT COLLATE "C" NOT NULL,
    used_at    BIGINT,
    CONSTRAINT recovery_codes_code_hash PRIMARY KEY (account_id, code_hash)
);

CREATE TABLE webauthn_credentials (
    credential_id TEXT COLLATE "C" PRIMARY KEY,
    account_id    TEXT COLLATE "C" NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
    name          TEXT   NOT NULL,
    -- The web layer's serialised credential state (JSON).
    passkey       TEXT   NOT NULL,
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT
);
CREATE INDEX webauthn_credentials_account ON webauthn_credentials (account_id);

CREATE TABLE sessions (
    token_hash          TEXT COLLATE "C" PRIMARY KEY,
    account_id          TEXT COLLATE "C" NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
    created_at          BIGINT   NOT NULL,
    last_seen_at        BIGINT   NOT NULL,
    idle_expires_at     BIGINT   NOT NULL,
    absolute_expires_at BIGINT   NOT NULL,
    csrf_secret         TEXT     NOT NULL,
    second_factor_done  SMALLINT NOT NULL DEFAULT 0 CHECK (second_factor_done IN (0, 1)),
    acting_for_patient  TEXT COLLATE "C",
    ended_at            BIGINT
);
-- "Sign out everywhere".
CREATE INDEX sessions_account ON sessions (account_id);

-- Counters shared by every server instance (one fixed window per key).
CREATE TABLE rate_limits (
    key          TEXT COLLATE "C" PRIMARY KEY,
    window_start BIGINT NOT NULL,
    count        BIGINT NOT NULL,
    locked_until BIGINT
);

CREATE TABLE invitations (
    code_hash  TEXT COLLATE "C" PRIMARY KEY,
    patient_id TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT,
    attempts   BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE smart_apps (
    client_id     TEXT COLLATE "C" PRIMARY KEY,
    name          TEXT   NOT NULL,
    -- JSON array of exact redirect URIs.
    redirect_uris TEXT   NOT NULL,
    created_at    BIGINT NOT NULL
);

CREATE TABLE oauth_codes (
    code_hash      TEXT COLLATE "C" PRIMARY KEY,
    client_id      TEXT COLLATE "C" NOT NULL REFERENCES smart_apps (client_id) ON DELETE CASCADE,
    account_id     TEXT COLLATE "C" NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
    redirect_uri   TEXT   NOT NULL,
    scopes         TEXT   NOT NULL,
    code_challenge TEXT   NOT NULL,
    patient_id     TEXT COLLATE "C",
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    used_at        BIGINT
);

CREATE TABLE oauth_grants (
    grant_id   TEXT COLLATE "C" PRIMARY KEY,
    account_id TEXT COLLATE "C" NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
    client_id  TEXT COLLATE "C" NOT NULL REFERENCES smart_apps (client_id) ON DELETE CASCADE,
    scopes     TEXT   NOT NULL,
    patient_id TEXT COLLATE "C",
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX oauth_grants_account ON oauth_grants (account_id);
CREATE INDEX oauth_grants_client ON oauth_grants (client_id);

CREATE TABLE refresh_tokens (
    token_hash TEXT COLLATE "C" PRIMARY KEY,
    grant_id   TEXT COLLATE "C" NOT NULL REFERENCES oauth_grants (grant_id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX refresh_tokens_grant ON refresh_tokens (grant_id);
