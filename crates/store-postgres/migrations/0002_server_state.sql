-- Portal-only state that is neither a resource nor a secret: small JSON documents under a key,
-- e.g. the import journal (`import/…`) and Bulk Data export jobs (`export/…`).
CREATE TABLE server_state (
    name       TEXT COLLATE "C" PRIMARY KEY,
    value      TEXT   NOT NULL,
    updated_at BIGINT NOT NULL -- epoch milliseconds of the last write
);
