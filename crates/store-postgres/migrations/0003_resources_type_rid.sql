-- Scans (Patient/$everything, Bulk Data export) and searches without conditions walk one type's
-- resources in rid order, a page at a time from a cursor. SQLite has had this index from its
-- first migration (resources_type_rid); without it PostgreSQL answered each page by reading
-- every rid after the cursor (a 1M-resource export never finished).
CREATE INDEX resources_type_rid ON resources (res_type, rid);
