-- The audit trail (crates/store/src/audit.rs): one row per access or change, chained by hashes.
-- The single writer numbers and hashes each row as it commits, so `seq` is the chain's order.
CREATE TABLE audit_log (
    seq        INTEGER PRIMARY KEY,
    -- Epoch milliseconds.
    recorded   INTEGER NOT NULL,
    -- Whose record was touched (Patient id), for "who has looked at my record".
    patient_id TEXT,
    -- The canonical JSON the hash covers.
    detail     TEXT    NOT NULL,
    prev_hash  TEXT    NOT NULL,
    hash       TEXT    NOT NULL
);
CREATE INDEX audit_log_patient ON audit_log (patient_id, seq) WHERE patient_id IS NOT NULL;
