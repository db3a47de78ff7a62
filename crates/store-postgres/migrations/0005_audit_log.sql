-- The audit trail (crates/store/src/audit.rs): one row per access or change, chained by hashes.
-- Many servers append at once, so a row is first stored unsealed (`seq` NULL) with the id of
-- the transaction that wrote it; a sealer then takes the rows of finished transactions in
-- (xid, id) order, numbers them and chains their hashes. A transaction still running has an
-- xid at or after the oldest running one, so no row can later appear before a sealed one.
CREATE TABLE audit_log (
    id         BIGSERIAL PRIMARY KEY,
    xid        xid8   NOT NULL DEFAULT pg_current_xact_id(),
    -- Epoch milliseconds.
    recorded   BIGINT NOT NULL,
    patient_id TEXT,
    detail     TEXT   NOT NULL,
    seq        BIGINT UNIQUE,
    prev_hash  TEXT,
    hash       TEXT,
    CHECK ((seq IS NULL) = (hash IS NULL) AND (seq IS NULL) = (prev_hash IS NULL))
);
CREATE INDEX audit_log_unsealed ON audit_log (xid, id) WHERE seq IS NULL;
CREATE INDEX audit_log_patient ON audit_log (patient_id, id) WHERE patient_id IS NOT NULL;
