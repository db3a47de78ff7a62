-- Portal-only state that is neither a resource nor a secret: small JSON documents under a key,
-- e.g. the import journal (`import/…`) and Bulk Data export jobs (`export/…`).
CREATE TABLE server_state (
    name       TEXT    PRIMARY KEY,
    value      TEXT    NOT NULL,
    -- Epoch milliseconds of the last write.
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;
