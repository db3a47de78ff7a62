-- Portal-only state: system API clients and the server's own secret keys.

CREATE TABLE api_clients (
    client_id   TEXT    PRIMARY KEY,
    name        TEXT    NOT NULL,
    -- PHC string (Argon2id) of the secret; the secret itself is never stored.
    secret_hash TEXT    NOT NULL,
    scopes      TEXT    NOT NULL,
    -- Epoch milliseconds.
    created_at  INTEGER NOT NULL
);

CREATE TABLE server_keys (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
