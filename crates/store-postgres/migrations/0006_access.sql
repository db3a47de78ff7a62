-- The access facts of every older version (crates/store/src/access.rs): the label level, the
-- authoring organisation and the compartment patients a version had while it was current, so
-- that history is filtered by each version's own content. The access index rows of the current
-- version live in idx_token / idx_reference under the `_portico-` parameters; the trigger below
-- copies them here when a write moves that version to resource_history (the row trigger fires
-- at the end of that statement, before the statement that replaces the resource's index rows).
-- Rows of data stored before this migration are computed by the store's access reindex when
-- the database is next opened.
-- The version of the rules the access index was built by (store::access::ACCESS_INDEX_VERSION):
-- none yet, so the store builds it when it next opens the database. One row.
CREATE TABLE access_index (
    version TEXT NOT NULL
);

CREATE TABLE history_access (
    res_type   TEXT COLLATE "C" NOT NULL,
    res_id     TEXT COLLATE "C" NOT NULL,
    version_id BIGINT NOT NULL,
    param      TEXT COLLATE "C" NOT NULL,
    value      TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (res_type, res_id, version_id, param, value)
);
-- Type history confined to some patients starts from the resources that ever were theirs.
CREATE INDEX history_access_value ON history_access (res_type, param, value) INCLUDE (res_id);

CREATE FUNCTION history_access_keep() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO history_access (res_type, res_id, version_id, param, value)
    SELECT NEW.res_type, NEW.res_id, NEW.version_id, t.param, t.code
      FROM resources r JOIN idx_token t ON t.rid = r.rid
     WHERE r.res_type = NEW.res_type AND r.res_id = NEW.res_id
       AND t.param IN ('_portico-label', '_portico-author')
    UNION ALL
    SELECT NEW.res_type, NEW.res_id, NEW.version_id, x.param, x.target_id
      FROM resources r JOIN idx_reference x ON x.rid = r.rid
     WHERE r.res_type = NEW.res_type AND r.res_id = NEW.res_id
       AND x.param = '_portico-patient' AND x.target_type = 'Patient'
       AND x.target_id IS NOT NULL
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;

CREATE TRIGGER history_access_keep AFTER INSERT ON resource_history
    FOR EACH ROW EXECUTE FUNCTION history_access_keep();
