-- One index's scans so far, its size on disk and its CREATE INDEX statement (no row when it no longer exists).
SELECT coalesce(pg_stat_get_numscans(i.indexrelid), 0) AS scans, pg_relation_size(i.indexrelid) AS bytes,
       pg_get_indexdef(i.indexrelid) AS definition
FROM pg_index AS i
WHERE i.indexrelid = %(oid)s
