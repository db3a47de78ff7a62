-- `:exact` string searches compare `value_exact`. Without an index of their own they read
-- every index row of the parameter; PostgreSQL has had `idx_string_exact` from its first
-- migration, and this gives SQLite the same.
CREATE INDEX idx_string_exact ON idx_string (res_type, param, value_exact, rid);

-- Planner statistics for the new index, as 0003 wrote them for the others (every index has
-- them, so plans do not change as data grows): a type and a parameter select a large share of
-- the table, an exact string few rows.
DELETE FROM sqlite_stat1 WHERE idx = 'idx_string_exact';
INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES
    ('idx_string', 'idx_string_exact', '2000000 200000 50000 5 1');
-- Loads the rows into this connection's planner.
ANALYZE sqlite_schema;
