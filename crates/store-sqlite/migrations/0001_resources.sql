-- Versioned FHIR resources and their search indexes (layout: crates/store/src/sql.rs).

-- The current version of every resource; `last_updated` in epoch milliseconds, `content` empty
-- for deletions.
CREATE TABLE resources (
    rid          INTEGER PRIMARY KEY,
    res_type     TEXT    NOT NULL,
    res_id       TEXT    NOT NULL,
    version_id   INTEGER NOT NULL,
    last_updated INTEGER NOT NULL,
    deleted      INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)),
    content      TEXT    NOT NULL,
    UNIQUE (res_type, res_id)
);
-- Searches return matches in `rid` order: a search with no condition walks this index.
CREATE INDEX resources_type_rid ON resources (res_type, rid);
CREATE INDEX resources_type_updated ON resources (res_type, last_updated);
CREATE INDEX resources_updated ON resources (last_updated);

-- Every older version.
CREATE TABLE resource_history (
    res_type     TEXT    NOT NULL,
    res_id       TEXT    NOT NULL,
    version_id   INTEGER NOT NULL,
    last_updated INTEGER NOT NULL,
    deleted      INTEGER NOT NULL CHECK (deleted IN (0, 1)),
    content      TEXT    NOT NULL,
    PRIMARY KEY (res_type, res_id, version_id)
) WITHOUT ROWID;

-- One row per extracted search value of a current, non-deleted version. Each lookup index ends
-- with `rid` so that the `rid IN (SELECT rid …)` subqueries are answered from the index alone;
-- the `(rid, param)` index serves replacing a resource's rows and the `_sort` subqueries.
-- `rid` always names a row of `resources`, which are never deleted (a deletion is a version),
-- so no foreign key is declared: checking one would cost every index row a lookup and a
-- statement journal.

CREATE TABLE idx_token (
    rid      INTEGER NOT NULL,
    res_type TEXT    NOT NULL,
    param    TEXT    NOT NULL,
    system   TEXT,
    code     TEXT    NOT NULL
);
CREATE INDEX idx_token_lookup ON idx_token (res_type, param, code, system, rid);
CREATE INDEX idx_token_rid ON idx_token (rid, param);

CREATE TABLE idx_string (
    rid         INTEGER NOT NULL,
    res_type    TEXT    NOT NULL,
    param       TEXT    NOT NULL,
    value_norm  TEXT    NOT NULL,
    value_exact TEXT    NOT NULL
);
CREATE INDEX idx_string_lookup ON idx_string (res_type, param, value_norm, rid);
CREATE INDEX idx_string_rid ON idx_string (rid, param);

-- Both orders: `gt`/`sa` (and half of `ge`) range over `high`, `lt`/`eb` (and half of `le`)
-- over `low`.
CREATE TABLE idx_date (
    rid      INTEGER NOT NULL,
    res_type TEXT    NOT NULL,
    param    TEXT    NOT NULL,
    low      INTEGER NOT NULL,
    high     INTEGER NOT NULL
);
CREATE INDEX idx_date_low ON idx_date (res_type, param, low, high, rid);
CREATE INDEX idx_date_high ON idx_date (res_type, param, high, low, rid);
CREATE INDEX idx_date_rid ON idx_date (rid, param);

CREATE TABLE idx_reference (
    rid         INTEGER NOT NULL,
    res_type    TEXT    NOT NULL,
    param       TEXT    NOT NULL,
    target_type TEXT,
    target_id   TEXT,
    url         TEXT    NOT NULL
);
CREATE INDEX idx_reference_lookup ON idx_reference (res_type, param, target_id, target_type, rid);
CREATE INDEX idx_reference_url ON idx_reference (res_type, param, url, rid);
CREATE INDEX idx_reference_rid ON idx_reference (rid, param);

CREATE TABLE idx_quantity (
    rid      INTEGER NOT NULL,
    res_type TEXT    NOT NULL,
    param    TEXT    NOT NULL,
    value    REAL    NOT NULL,
    system   TEXT,
    code     TEXT
);
CREATE INDEX idx_quantity_lookup ON idx_quantity (res_type, param, value, rid);
CREATE INDEX idx_quantity_rid ON idx_quantity (rid, param);

CREATE TABLE idx_uri (
    rid      INTEGER NOT NULL,
    res_type TEXT    NOT NULL,
    param    TEXT    NOT NULL,
    value    TEXT    NOT NULL
);
CREATE INDEX idx_uri_lookup ON idx_uri (res_type, param, value, rid);
CREATE INDEX idx_uri_rid ON idx_uri (rid, param);
