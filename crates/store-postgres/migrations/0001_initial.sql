-- The store's tables, as crates/store/src/sql.rs documents them (same names and columns as the
-- SQLite backend, so that the shared SQL runs on both).
--
-- Text that is compared or sorted uses COLLATE "C": comparisons by code point, as SQLite's
-- BINARY does, so that ranges (string prefix search) and sort orders are the same on both
-- backends and btree indexes serve them whatever the database's default collation is.

-- The current version of every resource. `last_updated` is epoch milliseconds; `deleted` is 0/1;
-- `content` is empty for deletions.
CREATE TABLE resources (
    rid          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    res_type     TEXT COLLATE "C" NOT NULL,
    res_id       TEXT COLLATE "C" NOT NULL,
    version_id   BIGINT NOT NULL,
    last_updated BIGINT NOT NULL,
    deleted      SMALLINT NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)),
    content      TEXT NOT NULL,
    CONSTRAINT resources_type_id UNIQUE (res_type, res_id)
);
CREATE INDEX resources_type_updated ON resources (res_type, last_updated);
CREATE INDEX resources_updated ON resources (last_updated);

-- Every older version.
CREATE TABLE resource_history (
    res_type     TEXT COLLATE "C" NOT NULL,
    res_id       TEXT COLLATE "C" NOT NULL,
    version_id   BIGINT NOT NULL,
    last_updated BIGINT NOT NULL,
    deleted      SMALLINT NOT NULL CHECK (deleted IN (0, 1)),
    content      TEXT NOT NULL,
    PRIMARY KEY (res_type, res_id, version_id)
);
CREATE INDEX resource_history_type_updated ON resource_history (res_type, last_updated);
CREATE INDEX resource_history_updated ON resource_history (last_updated);

-- Search indexes: one row per extracted value of the current, non-deleted version, keyed by the
-- resource's rid. Each has a lookup index leading with (res_type, param, value columns) that
-- carries rid, so `rid IN (SELECT rid … WHERE res_type = … AND param = … AND …)` is an
-- index-only scan, and an index on (rid, param) for replacing a resource's rows, `_include`
-- and sorting.

CREATE TABLE idx_token (
    rid      BIGINT NOT NULL,
    res_type TEXT COLLATE "C" NOT NULL,
    param    TEXT COLLATE "C" NOT NULL,
    system   TEXT COLLATE "C",
    code     TEXT COLLATE "C" NOT NULL
);
CREATE INDEX idx_token_lookup ON idx_token (res_type, param, code, system) INCLUDE (rid);
CREATE INDEX idx_token_rid ON idx_token (rid, param);

CREATE TABLE idx_string (
    rid         BIGINT NOT NULL,
    res_type    TEXT COLLATE "C" NOT NULL,
    param       TEXT COLLATE "C" NOT NULL,
    value_norm  TEXT COLLATE "C" NOT NULL,
    value_exact TEXT COLLATE "C" NOT NULL
);
CREATE INDEX idx_string_lookup ON idx_string (res_type, param, value_norm) INCLUDE (rid);
CREATE INDEX idx_string_exact ON idx_string (res_type, param, value_exact) INCLUDE (rid);
CREATE INDEX idx_string_rid ON idx_string (rid, param);

-- `low` and `high`: the inclusive epoch-millisecond range the value covers. Comparisons test
-- either bound (`gt` tests high, `lt` low, `eq` both), so each leads one index.
CREATE TABLE idx_date (
    rid      BIGINT NOT NULL,
    res_type TEXT COLLATE "C" NOT NULL,
    param    TEXT COLLATE "C" NOT NULL,
    low      BIGINT NOT NULL,
    high     BIGINT NOT NULL
);
CREATE INDEX idx_date_lookup ON idx_date (res_type, param, low, high) INCLUDE (rid);
CREATE INDEX idx_date_high ON idx_date (res_type, param, high, low) INCLUDE (rid);
CREATE INDEX idx_date_rid ON idx_date (rid, param);

CREATE TABLE idx_reference (
    rid         BIGINT NOT NULL,
    res_type    TEXT COLLATE "C" NOT NULL,
    param       TEXT COLLATE "C" NOT NULL,
    target_type TEXT COLLATE "C",
    target_id   TEXT COLLATE "C",
    url         TEXT COLLATE "C" NOT NULL
);
CREATE INDEX idx_reference_lookup ON idx_reference (res_type, param, target_id, target_type) INCLUDE (rid);
CREATE INDEX idx_reference_url ON idx_reference (res_type, param, url) INCLUDE (rid);
CREATE INDEX idx_reference_rid ON idx_reference (rid, param);

CREATE TABLE idx_quantity (
    rid      BIGINT NOT NULL,
    res_type TEXT COLLATE "C" NOT NULL,
    param    TEXT COLLATE "C" NOT NULL,
    value    DOUBLE PRECISION NOT NULL,
    system   TEXT COLLATE "C",
    code     TEXT COLLATE "C"
);
CREATE INDEX idx_quantity_lookup ON idx_quantity (res_type, param, value) INCLUDE (rid, system, code);
CREATE INDEX idx_quantity_rid ON idx_quantity (rid, param);

CREATE TABLE idx_uri (
    rid      BIGINT NOT NULL,
    res_type TEXT COLLATE "C" NOT NULL,
    param    TEXT COLLATE "C" NOT NULL,
    value    TEXT COLLATE "C" NOT NULL
);
CREATE INDEX idx_uri_lookup ON idx_uri (res_type, param, value) INCLUDE (rid);
CREATE INDEX idx_uri_rid ON idx_uri (rid, param);

-- System API clients (OAuth2 client credentials); the secret is stored only as its hash.
CREATE TABLE api_clients (
    client_id   TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    scopes      TEXT NOT NULL,
    created_at  BIGINT NOT NULL -- epoch milliseconds
);

-- Server secrets shared by every instance (e.g. the access-token signing key).
CREATE TABLE server_keys (
    name  TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);
