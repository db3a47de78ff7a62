-- Statistics for SQLite's query planner, written by hand as the SQLite documentation allows
-- (https://sqlite.org/fileformat2.html#stat1tab), so that plans are good from the first request
-- and do not change as data grows. Each row says, for an index: how many rows the table has,
-- then how many rows on average share a value of its first column, first two columns, and so on.
--
-- What they tell the planner: a resource type and a parameter name select a large share of
-- their table; a code, a reference target, a string or a date selects few rows; a resource's
-- own index rows are few. So a search starts from the rows its conditions select, never from
-- every resource of the type.

ANALYZE sqlite_schema;
DELETE FROM sqlite_stat1;
INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES
    ('resources', 'sqlite_autoindex_resources_1', '1000000 100000 1'),
    ('resources', 'resources_type_rid', '1000000 100000 1'),
    ('resources', 'resources_type_updated', '1000000 100000 2'),
    ('resources', 'resources_updated', '1000000 3'),
    -- A WITHOUT ROWID table's primary key is the table itself.
    ('resource_history', 'resource_history', '1000000 100000 3 1'),
    ('idx_token', 'idx_token_lookup', '10000000 1000000 100000 200 200 1'),
    ('idx_token', 'idx_token_rid', '10000000 10 2'),
    ('idx_string', 'idx_string_lookup', '2000000 200000 50000 5 1'),
    ('idx_string', 'idx_string_rid', '2000000 4 2'),
    ('idx_date', 'idx_date_low', '3000000 300000 100000 3 2 1'),
    ('idx_date', 'idx_date_high', '3000000 300000 100000 3 2 1'),
    ('idx_date', 'idx_date_rid', '3000000 3 2'),
    ('idx_reference', 'idx_reference_lookup', '5000000 500000 100000 20 20 1'),
    ('idx_reference', 'idx_reference_url', '5000000 500000 100000 20 1'),
    ('idx_reference', 'idx_reference_rid', '5000000 5 2'),
    ('idx_quantity', 'idx_quantity_lookup', '1000000 100000 50000 5 1'),
    ('idx_quantity', 'idx_quantity_rid', '1000000 2 1'),
    ('idx_uri', 'idx_uri_lookup', '200000 20000 10000 5 1'),
    ('idx_uri', 'idx_uri_rid', '200000 2 1');
-- Loads the rows above into this connection's planner.
ANALYZE sqlite_schema;
